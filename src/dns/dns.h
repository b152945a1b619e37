/* dns: the asynchronous resolver (c-ares on libevent) and domain verification: TXT
 * records at _amazonses.<domain> (or amazonses.<domain>) polled until they match the
 * token, and rechecked after, so that a removed record revokes (DECISIONS 25); Easy DKIM
 * token sets checked the same way through their CNAMEs and key records (DECISIONS 27). */
#ifndef SESAME_DNS_H
#define SESAME_DNS_H

#include "core/core.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct dns_resolver;
struct dns_verifier;

enum dns_result { DNS_FOUND, DNS_NOT_FOUND, DNS_FAILED };

/* TXT lookup: cb gets every TXT string of the answer (multi-string records joined), or
 * none with DNS_NOT_FOUND / DNS_FAILED. */
typedef void (*dns_txt_cb)(enum dns_result result, const char *const *texts, int count, void *ctx);

struct dns_resolver *dns_resolver_new(struct event_base *base, const struct sesame_config *cfg);
void dns_resolver_free(struct dns_resolver *r);
void dns_resolve_txt(struct dns_resolver *r, const char *name, dns_txt_cb cb, void *ctx);

/* What the DKIM checker tells its owner of a token set's progress (the lifecycle emails):
 * note runs on the store's writer, inside the transaction that records the change, and may
 * keep something for after (its return is a store status); after runs on the verifier's
 * thread once that transaction has ended, committed or not. */
enum dns_dkim_event { DNS_DKIM_SUCCESS, DNS_DKIM_FAILURE, DNS_DKIM_MISSING, DNS_DKIM_REVOKED };
struct dns_dkim_hooks {
    int (*note)(struct store_conn *c, const struct store_dkim *d, enum dns_dkim_event e,
                void **kept, void *ctx);
    void (*after)(void *kept, bool committed, void *ctx);
    void *ctx;
};

/* Starts polling on base (one verifier per sesamed); hooks may be NULL. */
struct dns_verifier *dns_verifier_start(struct event_base *base, const struct sesame_config *cfg,
                                        struct store *store, const struct dns_dkim_hooks *hooks);
void dns_verifier_free(struct dns_verifier *v);

/* The state machine of one check, pure so it can be tested: updates id after a lookup.
 * found: a TXT value equals the token; failed: the lookup itself failed (timeout,
 * SERVFAIL). Returns true when the status changed. */
bool dns_verify_next(struct store_identity *id, bool found, bool failed, int64_t now_ms,
                     int64_t failure_window_ms, int64_t revocation_window_ms);

/* ---- Easy DKIM status (dkim_check.c; spec 20 §2.2, §2.4, DECISIONS 27) ---- */

/* CNAME lookup: cb gets the target, lower-case and without a trailing dot, with
 * DNS_FOUND; NULL with DNS_NOT_FOUND (NXDOMAIN, no CNAME) or DNS_FAILED (SERVFAIL,
 * timeout, an unreadable answer). Not called once the resolver is freed. */
typedef void (*dns_cname_cb)(enum dns_result result, const char *target, void *ctx);
void dns_resolve_cname(struct dns_resolver *r, const char *name, dns_cname_cb cb, void *ctx);
/* The reading of a CNAME answer (status as c-ares's query callback gives it), pure for
 * tests and the fuzzer: the target of the CNAME owned by the question's name. */
enum dns_result dns_cname_answer_parse(int status, const unsigned char *abuf, int alen,
                                       char *target, size_t target_len);

/* Whether txt is a DKIM key record (RFC 6376 §3.6.1) whose p= is public_b64, the
 * whitespace inside p= ignored. A record with v= other than DKIM1, v= not first, two p=
 * or a tag without '=' never matches. */
bool dns_dkim_txt_matches(const char *txt, const char *public_b64);

/* The state machine of one token set, as dns_verify_next: found when every token's
 * CNAME and key record are right; failed when a lookup failed and the set was not found. */
bool dns_dkim_next(struct store_dkim *d, bool found, bool failed, int64_t now_ms,
                   int64_t failure_window_ms, int64_t revocation_window_ms);

/* The polling of token sets, driven by the domain verifier's tick and resolver (verify.c):
 * poll starts checks of the sets last checked before due_before_ms, unless a round is
 * still running; free after dns_resolver_free, which leaves no lookup to answer. */
struct dns_dkim_checker;
struct dns_dkim_checker *dns_dkim_checker_new(struct event_base *base,
                                              const struct sesame_config *cfg, struct store *store,
                                              struct store_conn *conn, struct dns_resolver *r);
void dns_dkim_checker_poll(struct dns_dkim_checker *c, int64_t due_before_ms);
void dns_dkim_checker_hooks(struct dns_dkim_checker *c, const struct dns_dkim_hooks *hooks);
void dns_dkim_checker_free(struct dns_dkim_checker *c);

/* ---- MX resolution (mx.c): where mail for a domain goes (RFC 5321 §5.1) ---- */
#define DNS_MX_HOSTS_MAX 16
#define DNS_MX_ADDRS_MAX 8 /* per host */

enum dns_mx_status {
    DNS_MX_OK,
    DNS_MX_PERMANENT, /* NXDOMAIN, null MX (RFC 7505), no MX and no address, loopback refused */
    DNS_MX_TEMPORARY, /* SERVFAIL, timeouts, truncated or unreadable answers */
};

struct dns_mx_addr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
};

struct dns_mx_host {
    char name[256];
    int preference;
    int addr_count; /* at least 1: a host without a usable address is left out */
    struct dns_mx_addr addrs[DNS_MX_ADDRS_MAX]; /* IPv4 ones first, then IPv6 */
};

struct dns_mx_result {
    enum dns_mx_status status;
    char error[256]; /* why, for logs and bounces ("Domain example.invalid does not exist") */
    bool implicit;   /* no MX: the domain's own A/AAAA (RFC 5321 §5.1) */
    int host_count;  /* hosts with at least one address, by preference (ties shuffled) */
    struct dns_mx_host hosts[DNS_MX_HOSTS_MAX];
    /* How long the answer may be cached: the smallest TTL seen (MX, A, AAAA, CNAME, the SOA
     * of a negative answer), within 1..3600; 3600 if no record was seen (a literal); 1 for
     * TEMPORARY, which is not worth caching. */
    int64_t ttl_s;
};
typedef void (*dns_mx_cb)(const struct dns_mx_result *res, void *ctx);

/* Resolves domain's MX hosts and their A/AAAA addresses. allow_loopback false: addresses
 * in 127/8, ::1, 0/8 and unspecified are dropped, and a domain left with none is
 * PERMANENT ("points to a loopback address"). cb runs once, on the resolver's base, never
 * from inside this call; not at all if the resolver is freed first. */
void dns_resolve_mx(struct dns_resolver *r, const char *domain, bool allow_loopback, dns_mx_cb cb,
                    void *ctx);
/* One host's addresses (a relay's name or literal: "192.0.2.1", "2001:db8::1", and the
 * SMTP spellings "[192.0.2.1]", "[IPv6:2001:db8::1]"), same result shape with one host at
 * preference 0; same loopback rule, same callback guarantees. */
void dns_resolve_host(struct dns_resolver *r, const char *host, bool allow_loopback, dns_mx_cb cb,
                      void *ctx);

#endif
