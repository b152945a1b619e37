/* store: the only code that touches persistence. Callers see records and functions on a
 * connection; the backend (SQLite here, PostgreSQL later) sits behind struct store_backend
 * in store.c, so adding one touches no caller.
 *
 * Reads run on the caller's own connection. Writes from sesamed go through the writer
 * thread (store_submit), which groups many requests into one transaction and one fsync;
 * a request hears "done" only after its transaction is durable. */
#ifndef SESAME_STORE_H
#define SESAME_STORE_H

#include "core/core.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct store;
struct store_conn;

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,
    STORE_EXISTS = 2,
    STORE_ERROR = -1,
};

#define STORE_ID_LEN 16
#define STORE_REGION_LEN 32
#define STORE_IDENTITY_LEN 320
#define STORE_USER_LEN 65    /* IAM: 64 characters */
#define STORE_POLICY_LEN 129 /* IAM: 128 characters */

struct store_account {
    char id[STORE_ID_LEN]; /* 12 digits, like an AWS account id */
    char name[64];
    char contact[256];
    bool suspended; /* sending refused, everything else works */
    bool disabled;  /* everything refused */
    int64_t created_ms;
};

/* Sandbox status and limits are per account per region (DECISIONS 8). */
struct store_account_region {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    bool production;
    double max_24h;
    double max_rate;
};

struct store_key {
    char key_id[32];
    char secret[128]; /* in clear here; sealed (AES-256-GCM) in the store */
    char account_id[STORE_ID_LEN];
    char user[STORE_USER_LEN]; /* empty: the account's root key */
    bool active;
    int64_t created_ms;
};

struct store_user {
    char account_id[STORE_ID_LEN];
    char name[STORE_USER_LEN];
    int64_t created_ms;
};

/* An inline policy of a user; the document is the JSON as it was put. */
struct store_policy {
    char account_id[STORE_ID_LEN];
    char user[STORE_USER_LEN];
    char name[STORE_POLICY_LEN];
    const char *document; /* borrowed in callbacks; malloc'd by store_policy_get */
    int64_t updated_ms;
};

/* An entry of an account's suppression list. */
struct store_suppression {
    char account_id[STORE_ID_LEN];
    char address[STORE_IDENTITY_LEN];
    char reason[16]; /* BOUNCE or COMPLAINT */
    int64_t created_ms;
};

enum store_identity_kind { IDENTITY_EMAIL = 0, IDENTITY_DOMAIN = 1 };

struct store_identity {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char identity[STORE_IDENTITY_LEN]; /* domains are stored lower-case */
    int kind;                          /* enum store_identity_kind */
    char status[24];                   /* Pending, Success, Failed, TemporaryFailure */
    char token[64];                    /* domain: the TXT token; email: the link token */
    int64_t created_ms;
    int64_t status_ms;        /* when status last changed */
    int64_t checked_ms;       /* last DNS check (domains) */
    int64_t missing_since_ms; /* a verified domain's record first seen missing; 0: present */
    bool dkim_enabled;        /* DkimEnabled (spec 20 §2.5.3): false until set */
};

struct store_email_link {
    char token[64];
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char identity[STORE_IDENTITY_LEN];
    int64_t expires_ms;
};

struct store_stat_point {
    int64_t bucket_ms; /* start of the 15-minute interval */
    int64_t delivery_attempts, bounces, complaints, rejects;
};

/* An accepted message: the bytes to deliver and what the capture endpoint shows. */
struct store_message {
    char id[80]; /* the MessageId (DECISIONS 5) */
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char source[STORE_IDENTITY_LEN];   /* where feedback goes (spec 10 §4.5) */
    char identity[STORE_IDENTITY_LEN]; /* the verified identity that governs the From */
    int64_t created_ms;
    const char *data; /* the message as it will be delivered (CRLF) */
    size_t data_len;
    const char *meta; /* JSON in the LocalStack capture shape */
    bool captured;    /* delivery.mode = capture: kept for /_aws/ses, never delivered */
    /* Per recipient: queued for delivery (else captured). NULL: all, unless captured. In
     * capture mode the simulator's recipients are still queued: their outcomes happen. */
    const bool *queued;
};

/* ---- opening ---- */
/* Opens (creating if needed) the configured store and brings its schema up to date. */
int store_open(const struct sesame_config *cfg, struct store **out, char *err, size_t errlen);
void store_close(struct store *s);
struct store_conn *store_conn_open(struct store *s); /* NULL on failure (logged) */
void store_conn_close(struct store_conn *c);
int store_schema_version(struct store_conn *c);

/* Explicit transactions, for the admin command (sesamed writes through store_submit). */
int store_begin(struct store_conn *c);
/* A read-only transaction around several reads: they see one snapshot, and the store
 * opens it once rather than for each. Ended by store_read_end, never by store_commit. */
int store_read_begin(struct store_conn *c);
void store_read_end(struct store_conn *c);
int store_commit(struct store_conn *c);
void store_rollback(struct store_conn *c);

/* ---- the writer (group commit) ---- */
typedef int (*store_write_fn)(struct store_conn *c, void *ctx); /* runs on the writer thread */
typedef void (*store_done_fn)(int status, void *ctx);           /* runs on base's thread */
int store_writer_start(struct store *s);
void store_writer_stop(struct store *s); /* finishes what was submitted, then returns */
/* write runs inside a shared transaction; a negative return undoes only its own changes.
 * done gets write's status, or STORE_ERROR if the commit failed, after the commit is
 * durable. base NULL: done runs on the writer thread. */
void store_submit(struct store *s, struct event_base *base, store_write_fn write,
                  store_done_fn done, void *ctx);

/* ---- accounts ---- */
typedef void (*store_account_cb)(const struct store_account *a, void *ctx);
int store_account_insert(struct store_conn *c, const struct store_account *a);
int store_account_update(struct store_conn *c, const struct store_account *a);
int store_account_get(struct store_conn *c, const char *id, struct store_account *out);
int store_account_first(struct store_conn *c, struct store_account *out);
int store_account_list(struct store_conn *c, store_account_cb cb, void *ctx);
int store_account_region_get(struct store_conn *c, const char *account_id, const char *region,
                             struct store_account_region *out);
int store_account_region_put(struct store_conn *c, const struct store_account_region *r);

/* ---- access keys ---- */
typedef void (*store_key_cb)(const struct store_key *k, void *ctx);
int store_key_insert(struct store_conn *c, const struct store_key *k);
int store_key_get(struct store_conn *c, const char *key_id, struct store_key *out);
/* The same without the secret (out->secret left empty): for checks that a key is still
 * active and whose it is, which need not pay for unsealing. Unlike store_key_get it does
 * not mark inactive a key whose sealed secret no longer opens (a changed key file). */
int store_key_state(struct store_conn *c, const char *key_id, struct store_key *out);
int store_key_list(struct store_conn *c, const char *account_id, store_key_cb cb, void *ctx);
int store_key_set_active(struct store_conn *c, const char *key_id, bool active);

int store_key_delete(struct store_conn *c, const char *key_id);

/* ---- users and their policies ---- */
typedef void (*store_user_cb)(const struct store_user *u, void *ctx);
typedef void (*store_policy_cb)(const struct store_policy *p, void *ctx);
int store_user_insert(struct store_conn *c, const struct store_user *u); /* STORE_EXISTS */
int store_user_get(struct store_conn *c, const char *account_id, const char *name,
                   struct store_user *out);
int store_user_list(struct store_conn *c, const char *account_id, store_user_cb cb, void *ctx);
/* The user with its access keys and policies. */
int store_user_delete(struct store_conn *c, const char *account_id, const char *name);
int store_policy_put(struct store_conn *c, const struct store_policy *p); /* insert or replace */
/* out->document is malloc'd: the caller frees it. */
int store_policy_get(struct store_conn *c, const char *account_id, const char *user,
                     const char *name, struct store_policy *out);
int store_policy_list(struct store_conn *c, const char *account_id, const char *user,
                      store_policy_cb cb, void *ctx);
int store_policy_delete(struct store_conn *c, const char *account_id, const char *user,
                        const char *name);

/* ---- suppression list (addresses kept and matched lower-case) ---- */
typedef void (*store_suppression_cb)(const struct store_suppression *s, void *ctx);
int store_suppression_put(struct store_conn *c, const struct store_suppression *s);
int store_suppression_get(struct store_conn *c, const char *account_id, const char *address,
                          struct store_suppression *out);
/* Ordered by address, after `after` ("" for the start). */
int store_suppression_list(struct store_conn *c, const char *account_id, const char *after,
                           int limit, store_suppression_cb cb, void *ctx);
int store_suppression_delete(struct store_conn *c, const char *account_id, const char *address);

/* ---- change generations ---- */
/* Each changes whenever this process writes what it covers, once when written and once
 * when the transaction holding the write ends: per-thread caches compare it, so what
 * sesamed itself changes is seen at once. Another process's writes (the admin command)
 * are seen when cache entries expire. */
enum store_change_topic {
    STORE_TOPIC_IDENTITIES, /* identities */
    STORE_TOPIC_ACCESS,     /* accounts, regions' limits, keys, users, policies */
    STORE_TOPIC_COUNT
};
uint64_t store_generation(enum store_change_topic topic);

/* ---- identities ---- */
typedef void (*store_identity_cb)(const struct store_identity *i, void *ctx);
int store_identity_put(struct store_conn *c,
                       const struct store_identity *i); /* insert or replace */
int store_identity_get(struct store_conn *c, const char *account_id, const char *region,
                       const char *identity, struct store_identity *out);
int store_identity_delete(struct store_conn *c, const char *account_id, const char *region,
                          const char *identity);
int store_identity_count(struct store_conn *c, const char *account_id, const char *region,
                         int64_t *out);
/* kind -1: both kinds. Ordered by identity; starts after `after` ("" for the start). */
int store_identity_list(struct store_conn *c, const char *account_id, const char *region, int kind,
                        const char *after, int limit, store_identity_cb cb, void *ctx);
/* Domain identities whose DNS check is due: status Pending, TemporaryFailure or Success
 * and last checked before checked_before_ms. */
int store_identity_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                            store_identity_cb cb, void *ctx);

/* Sets an identity's DkimEnabled; STORE_NOT_FOUND when there is no such identity. */
int store_identity_set_dkim(struct store_conn *c, const char *account_id, const char *region,
                            const char *identity, bool enabled);

/* ---- Easy DKIM (spec 20 §2, DECISIONS 27): a domain's three tokens and key pairs ---- */
#define STORE_DKIM_TOKENS 3
#define STORE_DKIM_TOKEN_LEN 40
#define STORE_DKIM_KEY_LEN 4096 /* PKCS#8 PEM of up to RSA-4096 */
/* The account of the operator's own signing key (dkim.operator_domain): no tenant's. */
#define STORE_DKIM_OPERATOR "sesame"
struct store_dkim {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char domain[STORE_IDENTITY_LEN];                      /* lower-case */
    char tokens[STORE_DKIM_TOKENS][STORE_DKIM_TOKEN_LEN]; /* the selectors */
    /* Private keys, PKCS#8 PEM, in clear here; sealed (AES-256-GCM) in the store. */
    char keys[STORE_DKIM_TOKENS][STORE_DKIM_KEY_LEN];
    char status[24]; /* Pending, Success, Failed, TemporaryFailure */
    int64_t created_ms;
    int64_t status_ms;        /* when status last changed */
    int64_t checked_ms;       /* last DNS check */
    int64_t missing_since_ms; /* records of a Success set first seen missing; 0: present */
};
typedef void (*store_dkim_cb)(const struct store_dkim *d, void *ctx);
int store_dkim_put(struct store_conn *c, const struct store_dkim *d); /* insert or replace */
int store_dkim_get(struct store_conn *c, const char *account_id, const char *region,
                   const char *domain, struct store_dkim *out);
int store_dkim_delete(struct store_conn *c, const char *account_id, const char *region,
                      const char *domain);
/* DkimEnabled off for the domain and every email identity at it (a revoked set: setup and
 * enabling start over, spec 20 §2.4.4). */
int store_dkim_disable_domain(struct store_conn *c, const char *account_id, const char *region,
                              const char *domain);
/* Every set (account_id NULL) or one account's, ordered by account, region, domain. */
int store_dkim_list(struct store_conn *c, const char *account_id, store_dkim_cb cb, void *ctx);
/* Sets whose DNS check is due: status Pending, TemporaryFailure or Success, last checked
 * before checked_before_ms; never the operator's. */
int store_dkim_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                        store_dkim_cb cb, void *ctx);

/* ---- email verification links ---- */
int store_email_link_put(struct store_conn *c, const struct store_email_link *l);
/* Fetches and deletes: a link works once. */
int store_email_link_take(struct store_conn *c, const char *token, struct store_email_link *out);
/* Forgets every link of an identity (a new link replaces them; a deleted identity has none). */
int store_email_link_delete_for(struct store_conn *c, const char *account_id, const char *region,
                                const char *identity);
int store_email_link_find(struct store_conn *c, const char *account_id, const char *region,
                          const char *identity, struct store_email_link *out);

/* ---- statistics ---- */
typedef void (*store_stat_cb)(const struct store_stat_point *p, void *ctx);
int store_stats_list(struct store_conn *c, const char *account_id, const char *region,
                     int64_t since_ms, store_stat_cb cb, void *ctx);
int store_stats_add(struct store_conn *c, const char *account_id, const char *region,
                    const struct store_stat_point *delta);
/* Recipients sent since since_ms (the rolling 24-hour quota window). */
int store_sent_sum(struct store_conn *c, const char *account_id, const char *region,
                   int64_t since_ms, double *out);
int store_sent_add(struct store_conn *c, const char *account_id, const char *region, int64_t at_ms,
                   double recipients);
/* Per-minute counts since since_ms, for rebuilding the in-memory quota window. */
typedef void (*store_sent_cb)(int64_t minute_ms, double recipients, void *ctx);
int store_sent_list(struct store_conn *c, const char *account_id, const char *region,
                    int64_t since_ms, store_sent_cb cb, void *ctx);

/* ---- messages ---- */
/* The message and one row per envelope recipient, in the caller's transaction. */
int store_message_insert(struct store_conn *c, const struct store_message *m,
                         const char *const *recipients, int recipient_count);
/* Captured messages, oldest first: the meta JSON and the stored bytes; all, or the one
 * with id. */
typedef void (*store_capture_cb)(const char *meta, const char *data, size_t data_len, void *ctx);
int store_capture_list(struct store_conn *c, const char *id, store_capture_cb cb, void *ctx);
/* Forgets captured messages (all, or the one with id). */
int store_capture_clear(struct store_conn *c, const char *id);

/* ---- the delivery queue: recipients, events, the suppression list ---- */

/* A recipient with what delivery needs of its message. */
struct store_recipient {
    char message_id[80];
    int idx; /* its place in the envelope */
    char address[STORE_IDENTITY_LEN];
    char state[16]; /* queued, delivered, bounced, dropped, captured */
    int attempts;
    int64_t next_ms; /* when a queued recipient is due */
    char last_result[512];
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char source[STORE_IDENTITY_LEN];
    int64_t created_ms; /* the message's acceptance */
    int64_t size;       /* the message's bytes */
};
typedef void (*store_recipient_cb)(const struct store_recipient *r, void *ctx);
/* message_id NULL: every message; queued_only: only state queued. By message, then idx. */
int store_queue_list(struct store_conn *c, const char *message_id, bool queued_only,
                     store_recipient_cb cb, void *ctx);
/* The bytes of a message, malloc'd (the caller frees); STORE_NOT_FOUND when unknown. */
int store_message_data(struct store_conn *c, const char *id, char **data, size_t *len);
/* Records a recipient's progress; only while it is queued, so a dropped one stays so
 * (STORE_NOT_FOUND then). */
int store_recipient_update(struct store_conn *c, const struct store_recipient *r);
/* Queued recipients of a message (NULL: all) become due at now_ms; count changed in *n. */
int store_queue_retry(struct store_conn *c, const char *message_id, int64_t now_ms, int *n);
/* Queued recipients of a message become dropped; count in *n. */
int store_queue_drop(struct store_conn *c, const char *message_id, int *n);
/* Forgets a delivered message's bytes once none of its recipients is queued. */
int store_message_release(struct store_conn *c, const char *id);

/* What happened to one recipient (the notification's fields, spec 20 §5.5). */
struct store_event {
    char message_id[80];
    int idx;
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char type[16];           /* Delivery, Bounce, Complaint, AutoResponse */
    char bounce_type[16];    /* Permanent, Transient, Undetermined; "" for a delivery */
    char bounce_subtype[24]; /* General, NoEmail, Suppressed, ... */
    char recipient[STORE_IDENTITY_LEN];
    int64_t created_ms;
    int64_t processing_ms; /* acceptance to this outcome */
    char smtp_response[512];
    char status[16]; /* enhanced status, "5.1.1" */
    char action[16]; /* failed (bounces) */
    char diagnostic[600];
    char remote_mta[256];
    char reporting_mta[256];
    bool simulator;
    /* Feedback (migration 6): Complaint and AutoResponse events, and the feedbackId
     * shared by the events of one bounce or complaint notification. */
    char feedback_id[80];
    char feedback_type[32]; /* ARF Feedback-Type: abuse, auth-failure, fraud, ... */
    char user_agent[256];   /* ARF User-Agent */
    int64_t arrival_ms;     /* ARF Arrival-Date; 0: none */
    int64_t report_ms;      /* when the ISP sent the report (the report's Date); 0: created_ms */
    /* Migration 8: a received DSN's Final-Recipient, "" when the bounce had none (then
     * the recipient is what a notification names) */
    char final_recipient[STORE_IDENTITY_LEN];
};
typedef void (*store_event_cb)(const struct store_event *e, void *ctx);
int store_event_insert(struct store_conn *c, const struct store_event *e);
int store_event_list(struct store_conn *c, const char *message_id, store_event_cb cb, void *ctx);

/* The SES suppression list (DECISIONS 30): per region, shared by every account; an
 * address is listed until expires_ms. Addresses are kept lower-case. */
struct store_suppressed {
    char region[STORE_REGION_LEN];
    char address[STORE_IDENTITY_LEN];
    char reason[16]; /* BOUNCE */
    char message_id[80];
    int64_t created_ms, expires_ms;
};
typedef void (*store_suppressed_cb)(const struct store_suppressed *s, void *ctx);
int store_suppressed_put(struct store_conn *c, const struct store_suppressed *s);
/* Listed at now_ms in region: STORE_OK (out filled, may be NULL) or STORE_NOT_FOUND. */
int store_suppressed_get(struct store_conn *c, const char *region, const char *address,
                         int64_t now_ms, struct store_suppressed *out);
/* Entries still listed at now_ms; address NULL: all. */
int store_suppressed_list(struct store_conn *c, const char *address, int64_t now_ms,
                          store_suppressed_cb cb, void *ctx);
/* Removes an address from every region (spec 30 §7.4). */
int store_suppressed_delete(struct store_conn *c, const char *address);

/* The message's row without its bytes (data NULL, data_len 0); meta is malloc'd into
 * *meta (the caller frees it; out->meta points at it too). STORE_NOT_FOUND when unknown
 * (*meta NULL). meta NULL: only the columns stored before the bytes, id to created_ms
 * (captured false, meta NULL), which are read without going through the bytes. */
int store_message_get(struct store_conn *c, const char *id, struct store_message *out, char **meta);

/* ---- notifications (spec 20 §5, DECISIONS 28–29) ---- */
#define STORE_ARN_LEN 320
/* An identity's notification settings. No row: forwarding on and no topics (the default
 * of a verified identity, spec 20 §5.2.2). */
struct store_notify {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char identity[STORE_IDENTITY_LEN]; /* as store_identity keeps it */
    char bounce_topic[STORE_ARN_LEN];  /* "" when unset */
    char complaint_topic[STORE_ARN_LEN];
    char delivery_topic[STORE_ARN_LEN];
    bool forwarding;
};
typedef void (*store_notify_cb)(const struct store_notify *n, void *ctx);
/* STORE_NOT_FOUND leaves out filled with the defaults (keys copied, forwarding on). */
int store_notify_get(struct store_conn *c, const char *account_id, const char *region,
                     const char *identity, struct store_notify *out);
int store_notify_put(struct store_conn *c, const struct store_notify *n); /* insert or replace */
int store_notify_delete(struct store_conn *c, const char *account_id, const char *region,
                        const char *identity);
/* Settings naming topic_arn as any of their three topics. */
int store_notify_list_topic(struct store_conn *c, const char *topic_arn, store_notify_cb cb,
                            void *ctx);

/* An SNS-compatible topic: arn:aws:sns:<region>:<account>:<name>. */
struct store_topic {
    char arn[STORE_ARN_LEN];
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char name[257]; /* 1-256 of [A-Za-z0-9_-] */
    char display_name[101];
    int64_t created_ms;
};
typedef void (*store_topic_cb)(const struct store_topic *t, void *ctx);
int store_topic_insert(struct store_conn *c, const struct store_topic *t); /* STORE_EXISTS */
int store_topic_get(struct store_conn *c, const char *arn, struct store_topic *out);
/* The topic, its subscriptions and its pending deliveries (failed ones are kept). */
int store_topic_delete(struct store_conn *c, const char *arn);
/* An account's topics in a region, by ARN, after `after` ("" for the start). */
int store_topic_list(struct store_conn *c, const char *account_id, const char *region,
                     const char *after, int limit, store_topic_cb cb, void *ctx);

/* A subscription: protocol http, https or email. Pending until confirmed with token. */
#define STORE_ENDPOINT_LEN 1024
struct store_subscription {
    char arn[STORE_ARN_LEN + 40]; /* <topic arn>:<uuid> */
    char topic_arn[STORE_ARN_LEN];
    char account_id[STORE_ID_LEN]; /* the topic's owner */
    char region[STORE_REGION_LEN];
    char protocol[16]; /* http, https, email, email-json */
    char endpoint[STORE_ENDPOINT_LEN];
    char token[80];
    bool confirmed;
    int64_t created_ms;
    bool authenticate_unsubscribe; /* confirmed so: only a signed Unsubscribe removes it */
};
typedef void (*store_subscription_cb)(const struct store_subscription *s, void *ctx);
int store_subscription_put(struct store_conn *c, const struct store_subscription *s);
int store_subscription_get(struct store_conn *c, const char *arn, struct store_subscription *out);
/* The topic's subscription to protocol and endpoint, if any (Subscribe is idempotent). */
int store_subscription_find(struct store_conn *c, const char *topic_arn, const char *protocol,
                            const char *endpoint, struct store_subscription *out);
/* The topic's subscription whose confirmation token this is (ConfirmSubscription). */
int store_subscription_by_token(struct store_conn *c, const char *topic_arn, const char *token,
                                struct store_subscription *out);
int store_subscription_delete(struct store_conn *c, const char *arn);
/* A topic's subscriptions (topic_arn; none unless the account owns it) or an account's
 * (topic_arn NULL), by ARN, after `after` ("" for the start). */
int store_subscription_list(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *after, int limit, store_subscription_cb cb, void *ctx);

/* One HTTP(S) POST of an SNS message to a subscription's endpoint, waiting to be made. */
struct store_outbox {
    int64_t id; /* assigned by store_outbox_insert */
    char subscription_arn[STORE_ARN_LEN + 40];
    char topic_arn[STORE_ARN_LEN];
    char url[STORE_ENDPOINT_LEN];
    char message_type[32]; /* x-amz-sns-message-type */
    char message_id[40];
    const char *body; /* the signed envelope JSON; borrowed in callbacks */
    int attempts;
    int64_t created_ms;
    int64_t next_ms; /* due */
    char state[12];  /* pending, failed */
    char last_error[256];
    bool forwarded; /* its event went by email too: a fallback need not forward it again */
};
typedef void (*store_outbox_cb)(const struct store_outbox *o, void *ctx);
/* Sets o->id; state "" is pending. */
int store_outbox_insert(struct store_conn *c, struct store_outbox *o);
/* Marks every row of the SNS message message_id forwarded: STORE_OK when some row was not
 * yet (the caller has the fallback forward to do), STORE_NOT_FOUND when none was left. */
int store_outbox_forwarded(struct store_conn *c, const char *message_id);
/* Deletes the failed rows but the newest keep (kept for the operator, not forever). */
int store_outbox_trim_failed(struct store_conn *c, int keep);
/* Pending rows due at now_ms, oldest first, with id > after_id. */
int store_outbox_due(struct store_conn *c, int64_t now_ms, int64_t after_id, int limit,
                     store_outbox_cb cb, void *ctx);
int store_outbox_delete(struct store_conn *c, int64_t id);
/* Another attempt later; failed: no more attempts (the row is kept for inspection). */
int store_outbox_update(struct store_conn *c, int64_t id, int attempts, int64_t next_ms,
                        bool failed, const char *last_error);
/* Every row (state NULL) or one state's, newest first, for the admin command. */
int store_outbox_list(struct store_conn *c, const char *state, int limit, store_outbox_cb cb,
                      void *ctx);

/* A message the feedback listener received that matched none of ours or could not be
 * parsed: kept for inspection, never dropped. */
struct store_feedback_report {
    int64_t id;
    int64_t received_ms;
    char mail_from[STORE_IDENTITY_LEN];
    char rcpt[STORE_IDENTITY_LEN];
    char kind[16];    /* dsn, arf, autoreply, unknown */
    char reason[256]; /* why it was kept aside */
    const char *data; /* borrowed in callbacks; NUL-terminated after its len bytes */
    size_t len;
};
typedef void (*store_feedback_report_cb)(const struct store_feedback_report *r, void *ctx);
/* Sets r->id. Only the newest STORE_FEEDBACK_REPORTS_KEPT are kept: whatever arrives at the
 * bounce domain cannot fill the disk. */
#define STORE_FEEDBACK_REPORTS_KEPT 10000
int store_feedback_report_insert(struct store_conn *c, struct store_feedback_report *r);

/* Subscription confirmations sent (email or HTTP), kept so that Subscribe can limit them
 * whatever happens to the subscriptions themselves. */
struct store_confirmations {
    int64_t emails;           /* email confirmations the account sent since since_ms */
    int64_t last_endpoint_ms; /* the last sent for the topic to the endpoint since since_ms, or 0 */
};
int store_confirmations_get(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *endpoint, int64_t since_ms,
                            struct store_confirmations *out);
/* Notes one sent at now_ms, and forgets the account's from before since_ms. */
int store_confirmation_note(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *endpoint, bool email, int64_t now_ms, int64_t since_ms);
/* Newest first; id 0: all (up to limit), else the one with that id. */
int store_feedback_report_list(struct store_conn *c, int64_t id, int limit,
                               store_feedback_report_cb cb, void *ctx);

/* A 32-byte key for label, derived from the store's secret key (HMAC-SHA256): keys that
 * must survive restarts without a file of their own (the VERP MAC). */
void store_derive_key(struct store *s, const char *label, unsigned char out[32]);

/* Named counters other processes bump to tell sesamed something changed (the admin
 * command's queue retry and drop). */
int store_control_get(struct store_conn *c, const char *name, int64_t *out);
int store_control_bump(struct store_conn *c, const char *name);

#endif
