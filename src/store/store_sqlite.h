/* Private to the store module: what the SQLite backend's files share. store_sqlite.c
 * holds the connection, the schema and the older records; store_sqlite_queue.c the
 * delivery queue, events and the suppression list; store_sqlite_dkim.c the Easy DKIM sets;
 * store_sqlite_notify.c notification settings, topics, subscriptions, the outbox and kept
 * feedback reports. */
#ifndef SESAME_STORE_SQLITE_H
#define SESAME_STORE_SQLITE_H

#include "store/store_backend.h"

#include <sqlite3.h>
#include <stdarg.h>

#define SQLITE_MORE_STMTS 72 /* statement slots for sqlite_cached */
/* Each file's share of them: store_sqlite_queue.c from 0, then the others from here. */
#define SQLITE_DKIM_SLOT 24
#define SQLITE_NOTIFY_SLOT 32 /* after DKIM's 24..30 */

sqlite3 *sqlite_conn_db(struct store_conn *c);
int sqlite_exec(struct store_conn *c, const char *sql);
/* The statement in slot (0..SQLITE_MORE_STMTS-1) of this connection, prepared from sql on
 * first use; reset and with bindings cleared. */
sqlite3_stmt *sqlite_cached(struct store_conn *c, int slot, const char *sql);
/* Binds by a format: s string, i int64, d double, b bool. */
void sqlite_bind(sqlite3_stmt *st, const char *fmt, va_list ap);
/* sqlite_cached, then its parameters bound by fmt (NULL when it cannot be prepared). */
sqlite3_stmt *sqlite_cached_bind(struct store_conn *c, int slot, const char *sql, const char *fmt,
                                 ...);
/* Runs a statement that returns no rows: STORE_OK when it changed a row, else NOT_FOUND. */
int sqlite_run(struct store_conn *c, sqlite3_stmt *st);
void col_text(sqlite3_stmt *st, int col, char *out, size_t outlen);
typedef void (*row_reader)(sqlite3_stmt *st, void *out);
/* Steps through the rows; each is read into a scratch record and handed to emit. */
int sqlite_rows(struct store_conn *c, sqlite3_stmt *st, row_reader read, void *scratch,
                void (*emit)(const void *rec, void *ctx), void *ctx);
/* Reads the first row into out: STORE_NOT_FOUND when there is none. */
int sqlite_one(struct store_conn *c, sqlite3_stmt *st, row_reader read, void *out);

/* store_sqlite_walbuf.c: the name of the VFS that writes each WAL frame's header with its
 * page (NULL if it could not be registered: then the default VFS). Only where every commit
 * syncs (synchronous=FULL): a header rewritten alone is written at the sync. */
const char *sqlite_walbuf_vfs(void);

/* store_sqlite_queue.c's entries of the backend table. */
int sqlite_queue_list(struct store_conn *c, const char *message_id, bool queued_only,
                      store_recipient_cb cb, void *ctx);
int sqlite_message_data(struct store_conn *c, const char *id, char **data, size_t *len);
int sqlite_message_get(struct store_conn *c, const char *id, struct store_message *out,
                       char **meta);
int sqlite_recipient_update(struct store_conn *c, const struct store_recipient *r);
int sqlite_queue_retry(struct store_conn *c, const char *message_id, int64_t now_ms, int *n);
int sqlite_queue_drop(struct store_conn *c, const char *message_id, int *n);
int sqlite_message_release(struct store_conn *c, const char *id);
int sqlite_event_insert(struct store_conn *c, const struct store_event *e);
int sqlite_event_list(struct store_conn *c, const char *message_id, store_event_cb cb, void *ctx);
int sqlite_suppressed_put(struct store_conn *c, const struct store_suppressed *s);
int sqlite_suppressed_get(struct store_conn *c, const char *region, const char *address,
                          int64_t now_ms, struct store_suppressed *out);
int sqlite_suppressed_list(struct store_conn *c, const char *address, int64_t now_ms,
                           store_suppressed_cb cb, void *ctx);
int sqlite_suppressed_delete(struct store_conn *c, const char *address);
int sqlite_control_get(struct store_conn *c, const char *name, int64_t *out);
int sqlite_control_bump(struct store_conn *c, const char *name);
#define SQLITE_QUEUE_FUNCTIONS                                                                     \
    .queue_list = sqlite_queue_list, .message_data = sqlite_message_data,                          \
    .message_get = sqlite_message_get, .recipient_update = sqlite_recipient_update,                \
    .queue_retry = sqlite_queue_retry, .queue_drop = sqlite_queue_drop,                            \
    .message_release = sqlite_message_release, .event_insert = sqlite_event_insert,                \
    .event_list = sqlite_event_list, .suppressed_put = sqlite_suppressed_put,                      \
    .suppressed_get = sqlite_suppressed_get, .suppressed_list = sqlite_suppressed_list,            \
    .suppressed_delete = sqlite_suppressed_delete, .control_get = sqlite_control_get,              \
    .control_bump = sqlite_control_bump

/* store_sqlite_dkim.c's entries of the backend table. */
int sqlite_dkim_put(struct store_conn *c, const struct store_dkim_sealed *d);
int sqlite_dkim_get(struct store_conn *c, const char *account_id, const char *region,
                    const char *domain, struct store_dkim_sealed *out);
int sqlite_dkim_disable_domain(struct store_conn *c, const char *account_id, const char *region,
                               const char *domain);
int sqlite_dkim_delete(struct store_conn *c, const char *account_id, const char *region,
                       const char *domain);
int sqlite_dkim_list(struct store_conn *c, const char *account_id, store_dkim_sealed_cb cb,
                     void *ctx);
int sqlite_dkim_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                         store_dkim_sealed_cb cb, void *ctx);
#define SQLITE_DKIM_FUNCTIONS                                                                      \
    .dkim_put = sqlite_dkim_put, .dkim_get = sqlite_dkim_get, .dkim_delete = sqlite_dkim_delete,   \
    .dkim_list = sqlite_dkim_list, .dkim_list_due = sqlite_dkim_list_due,                          \
    .dkim_disable_domain = sqlite_dkim_disable_domain

/* store_sqlite_notify.c's entries of the backend table. */
int sqlite_notify_get(struct store_conn *c, const char *account_id, const char *region,
                      const char *identity, struct store_notify *out);
int sqlite_notify_put(struct store_conn *c, const struct store_notify *n);
int sqlite_notify_delete(struct store_conn *c, const char *account_id, const char *region,
                         const char *identity);
int sqlite_notify_list_topic(struct store_conn *c, const char *topic_arn, store_notify_cb cb,
                             void *ctx);
int sqlite_topic_insert(struct store_conn *c, const struct store_topic *t);
int sqlite_topic_get(struct store_conn *c, const char *arn, struct store_topic *out);
int sqlite_topic_delete(struct store_conn *c, const char *arn);
int sqlite_topic_list(struct store_conn *c, const char *account_id, const char *region,
                      const char *after, int limit, store_topic_cb cb, void *ctx);
int sqlite_subscription_put(struct store_conn *c, const struct store_subscription *s);
int sqlite_subscription_get(struct store_conn *c, const char *arn, struct store_subscription *out);
int sqlite_subscription_by_token(struct store_conn *c, const char *topic_arn, const char *token,
                                 struct store_subscription *out);
int sqlite_subscription_find(struct store_conn *c, const char *topic_arn, const char *protocol,
                             const char *endpoint, struct store_subscription *out);
int sqlite_subscription_delete(struct store_conn *c, const char *arn);
int sqlite_subscription_list(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *after, int limit, store_subscription_cb cb, void *ctx);
int sqlite_outbox_insert(struct store_conn *c, struct store_outbox *o);
int sqlite_outbox_due(struct store_conn *c, int64_t now_ms, int64_t after_id, int limit,
                      store_outbox_cb cb, void *ctx);
int sqlite_outbox_delete(struct store_conn *c, int64_t id);
int sqlite_outbox_update(struct store_conn *c, int64_t id, int attempts, int64_t next_ms,
                         bool failed, const char *last_error);
int sqlite_outbox_list(struct store_conn *c, const char *state, int limit, store_outbox_cb cb,
                       void *ctx);
int sqlite_outbox_forwarded(struct store_conn *c, const char *message_id);
int sqlite_outbox_trim_failed(struct store_conn *c, int keep);
int sqlite_feedback_report_insert(struct store_conn *c, struct store_feedback_report *r);
int sqlite_confirmations_get(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, int64_t since_ms,
                             struct store_confirmations *out);
int sqlite_confirmation_note(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, bool email, int64_t now_ms, int64_t since_ms);
int sqlite_feedback_report_list(struct store_conn *c, int64_t id, int limit,
                                store_feedback_report_cb cb, void *ctx);
#define SQLITE_NOTIFY_FUNCTIONS                                                                    \
    .notify_get = sqlite_notify_get, .notify_put = sqlite_notify_put,                              \
    .notify_delete = sqlite_notify_delete, .notify_list_topic = sqlite_notify_list_topic,          \
    .topic_insert = sqlite_topic_insert, .topic_get = sqlite_topic_get,                            \
    .topic_delete = sqlite_topic_delete, .topic_list = sqlite_topic_list,                          \
    .subscription_put = sqlite_subscription_put, .subscription_get = sqlite_subscription_get,      \
    .subscription_find = sqlite_subscription_find,                                                 \
    .subscription_by_token = sqlite_subscription_by_token,                                         \
    .subscription_delete = sqlite_subscription_delete,                                             \
    .subscription_list = sqlite_subscription_list, .outbox_insert = sqlite_outbox_insert,          \
    .outbox_forwarded = sqlite_outbox_forwarded, .outbox_trim_failed = sqlite_outbox_trim_failed,  \
    .outbox_due = sqlite_outbox_due, .outbox_delete = sqlite_outbox_delete,                        \
    .outbox_update = sqlite_outbox_update, .outbox_list = sqlite_outbox_list,                      \
    .confirmations_get = sqlite_confirmations_get, .confirmation_note = sqlite_confirmation_note,  \
    .feedback_report_insert = sqlite_feedback_report_insert,                                       \
    .feedback_report_list = sqlite_feedback_report_list

#endif
