/* send: the accept pipeline (DESIGN.md, "Accept"), one for SendEmail, SendRawEmail and,
 * later, SMTP DATA. It resolves and checks the identities, applies the sandbox, message
 * and recipient limits, the quota and the rate, builds or rewrites the message, and
 * stores it; the caller hears the MessageId only after the store says it is durable. */
#ifndef SESAME_SEND_H
#define SESAME_SEND_H

#include "core/core.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct send_shared;

/* The outcome, in the Query API's terms (the SMTP layer maps them to its replies). */
enum send_error {
    SEND_OK = 0,
    SEND_REJECTED,  /* MessageRejected */
    SEND_THROTTLED, /* Throttling */
    SEND_INVALID,   /* InvalidParameterValue */
    SEND_INTERNAL,  /* InternalFailure */
};

struct send_result {
    enum send_error error;
    char message[1024]; /* the error's text */
    char message_id[80];
};

/* Who sends: the caller's own store connection (identity reads), account and region. */
struct send_identity_cache;

struct send_sender {
    struct store_conn *conn;
    const struct store_account *account;
    const char *region;
    const struct store_account_region *limits;
    struct send_identity_cache *identities; /* the calling thread's, or NULL */
};

/* A per-thread cache of which verified identity governs an address. Only successful
 * lookups are kept, for ttl_s seconds; an identity written by this process clears it at
 * once (store_generation), one written by another process within ttl_s. */
struct send_identity_cache *send_identity_cache_new(int64_t ttl_s);
void send_identity_cache_free(struct send_identity_cache *c);

/* SendEmail's parameters (spec 10 §1.3). Addresses as given (they may carry display
 * names); charsets NULL for UTF-8. */
struct send_formatted {
    const char *source;
    const char *return_path;
    const char *const *to, *const *cc, *const *bcc, *const *reply_to;
    int to_count, cc_count, bcc_count, reply_to_count;
    const char *subject, *subject_charset;
    const char *text, *text_charset;
    const char *html, *html_charset;
};

/* SendRawEmail's (spec 10 §1.4) and SMTP's: the message bytes, an optional Source and
 * optional envelope recipients (else To, Cc and Bcc). */
struct send_raw {
    const char *data;
    size_t len;
    const char *source;
    const char *const *destinations;
    int destination_count;
};

typedef void (*send_done_fn)(const struct send_result *res, void *arg);

struct send_shared *send_shared_new(const struct sesame_config *cfg, struct store *store);
/* A message the store just made durable, for the delivery engine. */
struct send_queued {
    const char *id, *account_id, *region, *source;
    int64_t created_ms;
    const char *data;
    size_t len;
    const char *const *recipients;
    int recipient_count;
    const bool *queued; /* which recipients are queued (NULL: all) */
};
typedef void (*send_queued_fn)(const struct send_queued *q, void *ctx);
/* fn hears of every stored message with queued recipients, on the committing request's
 * thread, before its caller hears the MessageId. Set before any send. */
void send_shared_on_queued(struct send_shared *sh, send_queued_fn fn, void *ctx);
void send_shared_free(struct send_shared *sh);
/* The pool that signs (DKIM) and makes keys; set before any send. NULL: the caller's thread. */
void send_shared_use_pool(struct send_shared *sh, struct core_pool *pool);
struct core_pool *send_shared_pool(const struct send_shared *sh);
/* Loads (creating it on first use) the operator's signing key for dkim.operator_domain;
 * conn reads it, creation goes through the writer. -1 on failure (logged). */
int send_dkim_operator_setup(struct send_shared *sh, struct store_conn *conn);
/* A new token set for a domain (VerifyDomainDkim): tokens and keys per the [dkim]
 * configuration (dkim.key_bits, dkim.ed25519). Slow (RSA key generation): call it on the
 * pool. 0 on success. */
int send_dkim_generate(const struct sesame_config *cfg, struct store_dkim *out);

/* Accepts or refuses. done is called exactly once: at once for a refusal, on base's
 * thread after the commit for an acceptance. */
void send_formatted(struct send_shared *sh, const struct send_sender *who,
                    const struct send_formatted *f, struct event_base *base, send_done_fn done,
                    void *arg);
void send_raw(struct send_shared *sh, const struct send_sender *who, const struct send_raw *r,
              struct event_base *base, send_done_fn done, void *arg);

/* A message from Sesame itself (the verification email). Its account is
 * SEND_NOTICE_ACCOUNT, which is no tenant's: it counts in no quota or statistics. */
#define SEND_NOTICE_ACCOUNT "sesame"
struct send_notice {
    char id[80];
    char region[STORE_REGION_LEN];
    char from[STORE_IDENTITY_LEN];
    char to[STORE_IDENTITY_LEN];
    int64_t created_ms;
    bool captured; /* delivery.mode = capture */
    struct buf data;
};
/* Builds it (From: verification.sender); -1 on failure (logged). */
int send_notice_build(const struct sesame_config *cfg, const char *region, const char *to,
                      const char *subject, const char *text, struct send_notice *out);
/* Stores it in the caller's transaction (the writer's). */
int send_notice_store(struct store_conn *c, const struct send_notice *n);
/* After the commit: to the delivery engine. */
void send_notice_hand_over(struct send_shared *sh, const struct send_notice *n);
void send_notice_free(struct send_notice *n);

/* Easy DKIM's lifecycle emails (spec 20 §2.4) to the account's contact address. */
enum send_dkim_event {
    SEND_DKIM_SUCCESS, /* the records were found */
    SEND_DKIM_FAILURE, /* not found within dkim.failure_window */
    SEND_DKIM_MISSING, /* a verified set's records went missing: restore them in time */
    SEND_DKIM_REVOKED, /* missing for dkim.revocation_window: signing stopped */
};
/* Stores the email in the caller's transaction (the writer's); *out is NULL when the account
 * has no contact address. Returns a store status. */
int send_dkim_notice_store(struct send_shared *sh, struct store_conn *c, const struct store_dkim *d,
                           enum send_dkim_event event, struct send_notice **out);
/* After the transaction: to delivery if it committed; frees n. */
void send_dkim_notice_after(struct send_shared *sh, struct send_notice *n, bool committed);

/* Recipients sent in the last 24 hours (GetSendQuota's SentLast24Hours): the same count
 * the quota check uses, so it is exact the moment a send is answered. -1 on a store error. */
double send_sent_last_24h(struct send_shared *sh, const struct send_sender *who);

/* True for addresses of the mailbox simulator (spec 20 §9), case-insensitive. */
bool send_is_simulator(const char *address);

#endif
