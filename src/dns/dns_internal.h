/* dns module internals: what mx.c needs from the resolver, and the pure answer-processing
 * steps of MX resolution (mx_parse.c), apart so that unit tests and the fuzzer can drive
 * them with bytes instead of a network. */
#ifndef SESAME_DNS_INTERNAL_H
#define SESAME_DNS_INTERNAL_H

#include "dns/dns.h"

#include <ares.h>
#include <stdint.h>

struct event;

/* ---- resolver.c ---- */
ares_channel dns_resolver_channel(struct dns_resolver *r);
/* Call after starting queries: re-arms the retransmission timer. */
void dns_resolver_kick(struct dns_resolver *r);

/* A piece of work run on the resolver's base at its next turn, or dropped (never run) if
 * the resolver is freed first. Unlike event_base_once, it can be taken back. */
struct dns_deferred {
    struct dns_resolver *owner;
    struct dns_deferred *prev, *next;
    struct event *ev;
    void (*run)(struct dns_deferred *d);
    void (*drop)(struct dns_deferred *d);
};
void dns_resolver_defer(struct dns_resolver *r, struct dns_deferred *d);

/* ---- mx_parse.c ---- */
#define DNS_MX_TTL_MAX 3600
#define DNS_MX_WHY_LEN 160

enum dns_mx_answer {
    DNS_MX_ANSWER_HOSTS,     /* names[] to resolve */
    DNS_MX_ANSWER_NODATA,    /* the domain exists without MX: implicit MX */
    DNS_MX_ANSWER_NXDOMAIN,  /* the domain does not exist */
    DNS_MX_ANSWER_NULL,      /* RFC 7505: the domain accepts no mail */
    DNS_MX_ANSWER_BADNAME,   /* not a name that can be asked */
    DNS_MX_ANSWER_TEMPORARY, /* ask again later; why says what went wrong */
    DNS_MX_ANSWER_HOST,      /* dns_resolve_host: one named host, no MX step */
};

struct dns_mx_name {
    int preference;
    char name[256];
};

/* What the MX question gave: the exchanges in the order to try them. */
struct dns_mx_list {
    enum dns_mx_answer kind;
    int count;
    struct dns_mx_name names[DNS_MX_HOSTS_MAX];
    int64_t ttl_s; /* smallest TTL in the answer, 0: none seen */
    char why[DNS_MX_WHY_LEN];
};

/* One exchange (or the domain itself, or a relay) while its addresses come in. */
struct dns_mx_candidate {
    char name[256];
    int preference;
    int count[2]; /* [0] IPv4, [1] IPv6 */
    struct dns_mx_addr addrs[2][DNS_MX_ADDRS_MAX];
    int64_t ttl_s; /* 0: none seen */
    bool failed;   /* a lookup failed in a way that may pass (SERVFAIL, timeout) */
    bool loopback; /* an address was dropped because it is a loopback one */
    char why[DNS_MX_WHY_LEN];
};

/* The words for a c-ares status other than success, NXDOMAIN and NODATA. */
const char *dns_mx_cause(int ares_status);
/* Smallest TTL of the answer and authority sections (the SOA of a negative answer),
 * 0 if there is none or the packet cannot be walked. */
int64_t dns_answer_min_ttl(const unsigned char *abuf, int alen);

/* The MX answer (status as c-ares's query callback gives it) -> list. Exchanges are sorted
 * by preference, equal ones in an order drawn from seed, repeats and null exchanges
 * dropped, and the first DNS_MX_HOSTS_MAX kept. */
void dns_mx_answer_parse(int status, const unsigned char *abuf, int alen, uint32_t seed,
                         struct dns_mx_list *out);
/* An A (family AF_INET) or AAAA answer for c: adds its addresses, minus loopback ones
 * unless allowed, and notes a temporary failure. */
void dns_mx_addr_answer(int status, const unsigned char *abuf, int alen, int family,
                        bool allow_loopback, struct dns_mx_candidate *c);
/* A literal address for c; false if text is not one. */
bool dns_mx_addr_literal(const char *text, bool allow_loopback, struct dns_mx_candidate *c);
bool dns_mx_addr_is_loopback(const struct dns_mx_addr *a);
/* The final result: hosts with addresses, in list order, or the status that says why
 * there are none. domain names the domain (or the host) in messages. */
void dns_mx_assemble(const char *domain, const struct dns_mx_list *mx,
                     const struct dns_mx_candidate *cands, int n, struct dns_mx_result *out);

#endif
