/* dns: the asynchronous resolver (c-ares on libevent) and domain verification: TXT
 * records at _amazonses.<domain> (or amazonses.<domain>) polled until they match the
 * token, and rechecked after, so that a removed record revokes (DECISIONS 25). */
#ifndef SESAME_DNS_H
#define SESAME_DNS_H

#include "core/core.h"
#include "store/store.h"

#include <stdbool.h>

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

/* Starts polling on base (one verifier per sesamed). */
struct dns_verifier *dns_verifier_start(struct event_base *base, const struct sesame_config *cfg,
                                        struct store *store);
void dns_verifier_free(struct dns_verifier *v);

/* The state machine of one check, pure so it can be tested: updates id after a lookup.
 * found: a TXT value equals the token; failed: the lookup itself failed (timeout,
 * SERVFAIL). Returns true when the status changed. */
bool dns_verify_next(struct store_identity *id, bool found, bool failed, int64_t now_ms,
                     int64_t failure_window_ms, int64_t revocation_window_ms);

#endif
