/* Private to the store module: the backend interface that store.c dispatches through.
 * One file per backend implements it (store_sqlite.c; store_pg.c later). */
#ifndef SESAME_STORE_BACKEND_H
#define SESAME_STORE_BACKEND_H

#include "store/store.h"
#include "store/store_secrets.h"

/* A DKIM set as a backend keeps it: d as the caller gave it but for d.keys, which the
 * backend neither reads nor fills, and the private keys sealed ("" for an empty slot).
 * store.c seals and opens them; sealed, they outgrow struct store_dkim's slots. */
#define STORE_DKIM_SEALED_LEN STORE_SEALED_LEN(STORE_DKIM_KEY_LEN)
struct store_dkim_sealed {
    struct store_dkim d;
    char keys[STORE_DKIM_TOKENS][STORE_DKIM_SEALED_LEN];
};
typedef void (*store_dkim_sealed_cb)(const struct store_dkim_sealed *d, void *ctx);

struct store_backend {
    const char *name;
    int (*open)(struct store *s, char *err, size_t errlen); /* create and migrate */
    struct store_conn *(*conn_open)(struct store *s);
    void (*conn_close)(struct store_conn *c);
    int (*schema_version)(struct store_conn *c);
    int (*begin)(struct store_conn *c);
    int (*commit)(struct store_conn *c);
    void (*rollback)(struct store_conn *c);
    int (*savepoint)(struct store_conn *c);
    void (*savepoint_rollback)(struct store_conn *c);
    int (*savepoint_release)(struct store_conn *c);
    /* A read-only transaction: one snapshot for several reads, opened once. */
    int (*read_begin)(struct store_conn *c);
    void (*read_end)(struct store_conn *c);
    /* False once the database has ended the transaction by itself (I/O error, full disk). */
    bool (*in_transaction)(struct store_conn *c);
    /* Periodic housekeeping off the writer's path (SQLite: the WAL checkpoint). */
    void (*maintain)(struct store_conn *c);
    /* On the writer, between batches, after their callers have been answered. True when
     * maintain, on its own thread, should run now rather than at its next second. */
    bool (*settle)(struct store_conn *c);

    int (*account_insert)(struct store_conn *c, const struct store_account *a);
    int (*account_update)(struct store_conn *c, const struct store_account *a);
    int (*account_get)(struct store_conn *c, const char *id, struct store_account *out);
    int (*account_list)(struct store_conn *c, int limit, store_account_cb cb, void *ctx);
    int (*account_region_get)(struct store_conn *c, const char *account_id, const char *region,
                              struct store_account_region *out);
    int (*account_region_put)(struct store_conn *c, const struct store_account_region *r);
    int (*key_insert)(struct store_conn *c, const struct store_key *k);
    int (*key_get)(struct store_conn *c, const char *key_id, struct store_key *out);
    int (*key_list)(struct store_conn *c, const char *account_id, store_key_cb cb, void *ctx);
    int (*key_set_active)(struct store_conn *c, const char *key_id, bool active);
    int (*key_delete)(struct store_conn *c, const char *key_id);
    /* Every key's stored (sealed) secret, and replacing one: for sealing old stores. */
    int (*key_secrets)(struct store_conn *c,
                       void (*cb)(const char *key_id, const char *secret, void *ctx), void *ctx);
    int (*key_secret_set)(struct store_conn *c, const char *key_id, const char *secret);
    int (*user_insert)(struct store_conn *c, const struct store_user *u);
    int (*user_get)(struct store_conn *c, const char *account_id, const char *name,
                    struct store_user *out);
    int (*user_list)(struct store_conn *c, const char *account_id, store_user_cb cb, void *ctx);
    int (*user_delete)(struct store_conn *c, const char *account_id, const char *name);
    int (*policy_put)(struct store_conn *c, const struct store_policy *p);
    int (*policy_get)(struct store_conn *c, const char *account_id, const char *user,
                      const char *name, struct store_policy *out);
    int (*policy_list)(struct store_conn *c, const char *account_id, const char *user,
                       store_policy_cb cb, void *ctx);
    int (*policy_delete)(struct store_conn *c, const char *account_id, const char *user,
                         const char *name);
    int (*suppression_put)(struct store_conn *c, const struct store_suppression *s);
    int (*suppression_get)(struct store_conn *c, const char *account_id, const char *address,
                           struct store_suppression *out);
    int (*suppression_list)(struct store_conn *c, const char *account_id, const char *after,
                            int limit, store_suppression_cb cb, void *ctx);
    int (*suppression_delete)(struct store_conn *c, const char *account_id, const char *address);
    int (*identity_put)(struct store_conn *c, const struct store_identity *i);
    int (*identity_get)(struct store_conn *c, const char *account_id, const char *region,
                        const char *identity, struct store_identity *out);
    /* With its notification settings, and a domain with the DKIM set of the same (account,
     * region, domain), if any. */
    int (*identity_delete)(struct store_conn *c, const char *account_id, const char *region,
                           const char *identity);
    int (*identity_count)(struct store_conn *c, const char *account_id, const char *region,
                          int64_t *out);
    int (*identity_list)(struct store_conn *c, const char *account_id, const char *region, int kind,
                         const char *after, int limit, store_identity_cb cb, void *ctx);
    int (*identity_list_due)(struct store_conn *c, int64_t checked_before_ms, int limit,
                             store_identity_cb cb, void *ctx);
    int (*identity_set_dkim)(struct store_conn *c, const char *account_id, const char *region,
                             const char *identity, bool enabled);
    int (*dkim_put)(struct store_conn *c, const struct store_dkim_sealed *d);
    int (*dkim_disable_domain)(struct store_conn *c, const char *account_id, const char *region,
                               const char *domain);
    int (*dkim_get)(struct store_conn *c, const char *account_id, const char *region,
                    const char *domain, struct store_dkim_sealed *out);
    int (*dkim_delete)(struct store_conn *c, const char *account_id, const char *region,
                       const char *domain);
    int (*dkim_list)(struct store_conn *c, const char *account_id, store_dkim_sealed_cb cb,
                     void *ctx);
    int (*dkim_list_due)(struct store_conn *c, int64_t checked_before_ms, int limit,
                         store_dkim_sealed_cb cb, void *ctx);
    int (*email_link_put)(struct store_conn *c, const struct store_email_link *l);
    int (*email_link_take)(struct store_conn *c, const char *token, struct store_email_link *out);
    int (*email_link_delete_for)(struct store_conn *c, const char *account_id, const char *region,
                                 const char *identity);
    int (*email_link_find)(struct store_conn *c, const char *account_id, const char *region,
                           const char *identity, struct store_email_link *out);
    int (*stats_list)(struct store_conn *c, const char *account_id, const char *region,
                      int64_t since_ms, store_stat_cb cb, void *ctx);
    int (*stats_add)(struct store_conn *c, const char *account_id, const char *region,
                     const struct store_stat_point *delta);
    int (*sent_sum)(struct store_conn *c, const char *account_id, const char *region,
                    int64_t since_ms, double *out);
    int (*sent_add)(struct store_conn *c, const char *account_id, const char *region, int64_t at_ms,
                    double recipients);
    int (*sent_list)(struct store_conn *c, const char *account_id, const char *region,
                     int64_t since_ms, store_sent_cb cb, void *ctx);
    int (*message_insert)(struct store_conn *c, const struct store_message *m,
                          const char *const *recipients, int recipient_count);
    int (*capture_list)(struct store_conn *c, const char *id, store_capture_cb cb, void *ctx);
    int (*capture_clear)(struct store_conn *c, const char *id);
    int (*queue_list)(struct store_conn *c, const char *message_id, bool queued_only,
                      store_recipient_cb cb, void *ctx);
    int (*message_data)(struct store_conn *c, const char *id, char **data, size_t *len);
    int (*message_get)(struct store_conn *c, const char *id, struct store_message *out,
                       char **meta);
    int (*recipient_update)(struct store_conn *c, const struct store_recipient *r);
    int (*queue_retry)(struct store_conn *c, const char *message_id, int64_t now_ms, int *n);
    int (*queue_drop)(struct store_conn *c, const char *message_id, int *n);
    int (*message_release)(struct store_conn *c, const char *id);
    int (*event_insert)(struct store_conn *c, const struct store_event *e);
    int (*event_list)(struct store_conn *c, const char *message_id, store_event_cb cb, void *ctx);
    int (*suppressed_put)(struct store_conn *c, const struct store_suppressed *s);
    int (*suppressed_get)(struct store_conn *c, const char *region, const char *address,
                          int64_t now_ms, struct store_suppressed *out);
    int (*suppressed_list)(struct store_conn *c, const char *address, int64_t now_ms,
                           store_suppressed_cb cb, void *ctx);
    int (*suppressed_delete)(struct store_conn *c, const char *address);
    int (*control_get)(struct store_conn *c, const char *name, int64_t *out);
    int (*control_bump)(struct store_conn *c, const char *name);
    /* No row: STORE_NOT_FOUND, out untouched (store.c fills the defaults). */
    int (*notify_get)(struct store_conn *c, const char *account_id, const char *region,
                      const char *identity, struct store_notify *out);
    int (*notify_put)(struct store_conn *c, const struct store_notify *n);
    int (*notify_delete)(struct store_conn *c, const char *account_id, const char *region,
                         const char *identity);
    int (*notify_list_topic)(struct store_conn *c, const char *topic_arn, store_notify_cb cb,
                             void *ctx);
    int (*topic_insert)(struct store_conn *c, const struct store_topic *t);
    int (*topic_get)(struct store_conn *c, const char *arn, struct store_topic *out);
    int (*topic_delete)(struct store_conn *c, const char *arn);
    int (*topic_list)(struct store_conn *c, const char *account_id, const char *region,
                      const char *after, int limit, store_topic_cb cb, void *ctx);
    int (*subscription_put)(struct store_conn *c, const struct store_subscription *s);
    int (*subscription_get)(struct store_conn *c, const char *arn, struct store_subscription *out);
    int (*subscription_by_token)(struct store_conn *c, const char *topic_arn, const char *token,
                                 struct store_subscription *out);
    int (*subscription_find)(struct store_conn *c, const char *topic_arn, const char *protocol,
                             const char *endpoint, struct store_subscription *out);
    int (*subscription_delete)(struct store_conn *c, const char *arn);
    int (*subscription_list)(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *after, int limit, store_subscription_cb cb, void *ctx);
    int (*outbox_insert)(struct store_conn *c, struct store_outbox *o);
    int (*outbox_forwarded)(struct store_conn *c, const char *message_id);
    int (*outbox_trim_failed)(struct store_conn *c, int keep);
    int (*outbox_due)(struct store_conn *c, int64_t now_ms, int64_t after_id, int limit,
                      store_outbox_cb cb, void *ctx);
    int (*outbox_delete)(struct store_conn *c, int64_t id);
    int (*outbox_update)(struct store_conn *c, int64_t id, int attempts, int64_t next_ms,
                         bool failed, const char *last_error);
    int (*outbox_list)(struct store_conn *c, const char *state, int limit, store_outbox_cb cb,
                       void *ctx);
    int (*confirmations_get)(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, int64_t since_ms,
                             struct store_confirmations *out);
    int (*confirmation_note)(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, bool email, int64_t now_ms, int64_t since_ms);
    int (*feedback_report_insert)(struct store_conn *c, struct store_feedback_report *r);
    int (*feedback_report_list)(struct store_conn *c, int64_t id, int limit,
                                store_feedback_report_cb cb, void *ctx);
};

/* Every backend's connection starts with this, so store.c can dispatch. */
struct store_conn {
    const struct store_backend *be;
    struct store *store;
};

/* What store.c keeps for the backends. */
const struct sesame_config *store_config(const struct store *s);

extern const struct store_backend store_sqlite_backend;

#endif
