/* SQLite backend, continued: notifications (migration 6): identities' notification
 * settings, SNS-compatible topics and their subscriptions, the outbox of HTTP(S)
 * deliveries, and the feedback reports kept aside for inspection. */
#include "store/store_sqlite.h"

#include <string.h>

enum notify_stmt {
    NS_NOTIFY_GET,
    NS_NOTIFY_PUT,
    NS_NOTIFY_DELETE,
    NS_NOTIFY_LIST_TOPIC,
    NS_TOPIC_INSERT,
    NS_TOPIC_GET,
    NS_TOPIC_DELETE,
    NS_TOPIC_SUBSCRIPTIONS_DELETE,
    NS_TOPIC_OUTBOX_DELETE,
    NS_TOPIC_LIST,
    NS_SUBSCRIPTION_PUT,
    NS_SUBSCRIPTION_GET,
    NS_SUBSCRIPTION_FIND,
    NS_SUBSCRIPTION_BY_TOKEN,
    NS_SUBSCRIPTION_DELETE,
    NS_SUBSCRIPTION_LIST_TOPIC,
    NS_SUBSCRIPTION_LIST_ACCOUNT,
    NS_OUTBOX_INSERT,
    NS_OUTBOX_FORWARDED,
    NS_OUTBOX_TRIM_FAILED,
    NS_OUTBOX_DUE,
    NS_OUTBOX_DELETE,
    NS_OUTBOX_UPDATE,
    NS_OUTBOX_LIST_ALL,
    NS_OUTBOX_LIST_STATE,
    NS_REPORT_INSERT,
    NS_REPORT_LIST,
    NS_REPORT_GET,
    NS_REPORT_TRIM,
    NS_CONFIRM_EMAILS,
    NS_CONFIRM_LAST,
    NS_CONFIRM_INSERT,
    NS_CONFIRM_TRIM,
    NS_COUNT
};
_Static_assert(SQLITE_NOTIFY_SLOT + NS_COUNT <= SQLITE_MORE_STMTS, "too few sqlite_cached slots");

#define NOTIFY_COLS                                                                                \
    "account_id, region, identity, bounce_topic, complaint_topic, delivery_topic, forwarding"
#define TOPIC_COLS "arn, account_id, region, name, display_name, created_ms"
#define SUBSCRIPTION_COLS                                                                          \
    "arn, topic_arn, account_id, region, protocol, endpoint, token, confirmed, created_ms,"        \
    " authenticate_unsubscribe"
#define OUTBOX_COLS                                                                                \
    "id, subscription_arn, topic_arn, url, message_type, message_id, body, attempts,"              \
    " created_ms, next_ms, state, last_error, forwarded"
#define REPORT_COLS "id, received_ms, mail_from, rcpt, kind, reason, data"

static const char *const notify_sql[NS_COUNT] = {
    [NS_NOTIFY_GET] = "SELECT " NOTIFY_COLS " FROM identity_notify WHERE account_id=? AND"
                      " region=? AND identity=?",
    [NS_NOTIFY_PUT] = "INSERT OR REPLACE INTO identity_notify (" NOTIFY_COLS ")"
                      " VALUES (?,?,?,?,?,?,?)",
    [NS_NOTIFY_DELETE] = "DELETE FROM identity_notify WHERE account_id=? AND region=? AND"
                         " identity=?",
    /* "" is no topic: it names none of them. */
    [NS_NOTIFY_LIST_TOPIC] = "SELECT " NOTIFY_COLS " FROM identity_notify WHERE ?1 != '' AND"
                             " (bounce_topic=?1 OR complaint_topic=?1 OR delivery_topic=?1)"
                             " ORDER BY account_id, region, identity",
    [NS_TOPIC_INSERT] = "INSERT INTO topics (" TOPIC_COLS ") VALUES (?,?,?,?,?,?)",
    [NS_TOPIC_GET] = "SELECT " TOPIC_COLS " FROM topics WHERE arn=?",
    [NS_TOPIC_DELETE] = "DELETE FROM topics WHERE arn=?",
    [NS_TOPIC_SUBSCRIPTIONS_DELETE] = "DELETE FROM subscriptions WHERE topic_arn=?",
    [NS_TOPIC_OUTBOX_DELETE] = "DELETE FROM outbox WHERE state='pending' AND topic_arn=?",
    [NS_TOPIC_LIST] = "SELECT " TOPIC_COLS " FROM topics WHERE account_id=? AND region=?"
                      " AND arn > ? ORDER BY arn LIMIT ?",
    [NS_SUBSCRIPTION_PUT] = "INSERT OR REPLACE INTO subscriptions (" SUBSCRIPTION_COLS ")"
                            " VALUES (?,?,?,?,?,?,?,?,?,?)",
    [NS_SUBSCRIPTION_GET] = "SELECT " SUBSCRIPTION_COLS " FROM subscriptions WHERE arn=?",
    [NS_SUBSCRIPTION_FIND] = "SELECT " SUBSCRIPTION_COLS " FROM subscriptions WHERE topic_arn=?"
                             " AND protocol=? AND endpoint=? ORDER BY created_ms, arn",
    /* through the topic_arn index: one topic's subscriptions, filtered in SQLite */
    [NS_SUBSCRIPTION_BY_TOKEN] = "SELECT " SUBSCRIPTION_COLS " FROM subscriptions WHERE"
                                 " topic_arn=? AND token=? AND token != ''",
    [NS_SUBSCRIPTION_DELETE] = "DELETE FROM subscriptions WHERE arn=?",
    [NS_SUBSCRIPTION_LIST_TOPIC] = "SELECT " SUBSCRIPTION_COLS " FROM subscriptions WHERE"
                                   " topic_arn=? AND account_id=? AND arn > ? ORDER BY arn LIMIT ?",
    [NS_SUBSCRIPTION_LIST_ACCOUNT] = "SELECT " SUBSCRIPTION_COLS " FROM subscriptions WHERE"
                                     " account_id=? AND arn > ? ORDER BY arn LIMIT ?",
    /* A row is pending unless said otherwise. */
    [NS_OUTBOX_INSERT] =
        "INSERT INTO outbox (subscription_arn, topic_arn, url, message_type,"
        " message_id, body, attempts, created_ms, next_ms, state, last_error,"
        " forwarded) VALUES (?,?,?,?,?,?,?,?,?,coalesce(nullif(?,''),'pending'),?,?)",
    /* the failed rows but the newest ?: through the partial index, id order */
    [NS_OUTBOX_TRIM_FAILED] = "DELETE FROM outbox WHERE state='failed' AND id <= (SELECT id FROM"
                              " outbox WHERE state='failed' ORDER BY id DESC LIMIT 1 OFFSET ?)",
    [NS_OUTBOX_FORWARDED] = "UPDATE outbox SET forwarded=1 WHERE message_id=? AND forwarded=0",
    [NS_OUTBOX_DUE] = "SELECT " OUTBOX_COLS " FROM outbox WHERE state='pending' AND next_ms <= ?"
                      " AND id > ? ORDER BY id LIMIT ?",
    [NS_OUTBOX_DELETE] = "DELETE FROM outbox WHERE id=?",
    [NS_OUTBOX_UPDATE] = "UPDATE outbox SET attempts=?2, next_ms=?3,"
                         " state=CASE WHEN ?4 THEN 'failed' ELSE 'pending' END, last_error=?5"
                         " WHERE id=?1",
    [NS_OUTBOX_LIST_ALL] = "SELECT " OUTBOX_COLS " FROM outbox ORDER BY id DESC LIMIT ?",
    [NS_OUTBOX_LIST_STATE] = "SELECT " OUTBOX_COLS " FROM outbox WHERE state=?"
                             " ORDER BY id DESC LIMIT ?",
    [NS_REPORT_INSERT] = "INSERT INTO feedback_reports (received_ms, mail_from, rcpt, kind,"
                         " reason, data) VALUES (?,?,?,?,?,?)",
    [NS_REPORT_LIST] = "SELECT " REPORT_COLS " FROM feedback_reports ORDER BY id DESC LIMIT ?",
    [NS_REPORT_GET] = "SELECT " REPORT_COLS " FROM feedback_reports WHERE id=?",
    /* the oldest go once more than STORE_FEEDBACK_REPORTS_KEPT are kept (ids only grow) */
    [NS_REPORT_TRIM] = "DELETE FROM feedback_reports WHERE id <= ?",
    [NS_CONFIRM_EMAILS] = "SELECT count(*) FROM sns_confirmations WHERE account_id=? AND email=1"
                          " AND sent_ms>=?",
    [NS_CONFIRM_LAST] = "SELECT coalesce(max(sent_ms), 0) FROM sns_confirmations WHERE"
                        " topic_arn=? AND endpoint=? AND sent_ms>=?",
    [NS_CONFIRM_INSERT] = "INSERT INTO sns_confirmations (account_id, topic_arn, endpoint, email,"
                          " sent_ms) VALUES (?,?,?,?,?)",
    [NS_CONFIRM_TRIM] = "DELETE FROM sns_confirmations WHERE account_id=? AND sent_ms<?",
};

#define notify_prepare(c, id, ...)                                                                 \
    sqlite_cached_bind(c, SQLITE_NOTIFY_SLOT + (int)(id), notify_sql[id], __VA_ARGS__)

struct emit_cb {
    void (*cb)(void);
    void *ctx;
};

/* Deletes that may find nothing to delete: only an error is one. */
static int run_any(struct store_conn *c, sqlite3_stmt *st)
{
    return sqlite_run(c, st) == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* ---- identities' notification settings ---- */

static void read_notify(sqlite3_stmt *st, void *out)
{
    struct store_notify *n = out;
    col_text(st, 0, n->account_id, sizeof n->account_id);
    col_text(st, 1, n->region, sizeof n->region);
    col_text(st, 2, n->identity, sizeof n->identity);
    col_text(st, 3, n->bounce_topic, sizeof n->bounce_topic);
    col_text(st, 4, n->complaint_topic, sizeof n->complaint_topic);
    col_text(st, 5, n->delivery_topic, sizeof n->delivery_topic);
    n->forwarding = sqlite3_column_int(st, 6);
}

static void emit_notify(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_notify_cb)e->cb)(rec, e->ctx);
}

int sqlite_notify_get(struct store_conn *c, const char *account_id, const char *region,
                      const char *identity, struct store_notify *out)
{
    return sqlite_one(c, notify_prepare(c, NS_NOTIFY_GET, "sss", account_id, region, identity),
                      read_notify, out);
}

int sqlite_notify_put(struct store_conn *c, const struct store_notify *n)
{
    return sqlite_run(c, notify_prepare(c, NS_NOTIFY_PUT, "ssssssb", n->account_id, n->region,
                                        n->identity, n->bounce_topic, n->complaint_topic,
                                        n->delivery_topic, (int)n->forwarding));
}

int sqlite_notify_delete(struct store_conn *c, const char *account_id, const char *region,
                         const char *identity)
{
    return sqlite_run(c, notify_prepare(c, NS_NOTIFY_DELETE, "sss", account_id, region, identity));
}

int sqlite_notify_list_topic(struct store_conn *c, const char *topic_arn, store_notify_cb cb,
                             void *ctx)
{
    struct store_notify n;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, notify_prepare(c, NS_NOTIFY_LIST_TOPIC, "s", topic_arn), read_notify, &n,
                       emit_notify, &e);
}

/* ---- topics ---- */

static void read_topic(sqlite3_stmt *st, void *out)
{
    struct store_topic *t = out;
    col_text(st, 0, t->arn, sizeof t->arn);
    col_text(st, 1, t->account_id, sizeof t->account_id);
    col_text(st, 2, t->region, sizeof t->region);
    col_text(st, 3, t->name, sizeof t->name);
    col_text(st, 4, t->display_name, sizeof t->display_name);
    t->created_ms = sqlite3_column_int64(st, 5);
}

static void emit_topic(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_topic_cb)e->cb)(rec, e->ctx);
}

int sqlite_topic_insert(struct store_conn *c, const struct store_topic *t)
{
    return sqlite_run(c, notify_prepare(c, NS_TOPIC_INSERT, "sssssi", t->arn, t->account_id,
                                        t->region, t->name, t->display_name, t->created_ms));
}

int sqlite_topic_get(struct store_conn *c, const char *arn, struct store_topic *out)
{
    return sqlite_one(c, notify_prepare(c, NS_TOPIC_GET, "s", arn), read_topic, out);
}

/* Its subscriptions and waiting deliveries go too, even when the topic row is already gone:
 * nothing is left that names it. Failed deliveries stay for inspection. */
int sqlite_topic_delete(struct store_conn *c, const char *arn)
{
    int rc = sqlite_run(c, notify_prepare(c, NS_TOPIC_DELETE, "s", arn));
    if (rc == STORE_ERROR ||
        run_any(c, notify_prepare(c, NS_TOPIC_SUBSCRIPTIONS_DELETE, "s", arn)) != STORE_OK ||
        run_any(c, notify_prepare(c, NS_TOPIC_OUTBOX_DELETE, "s", arn)) != STORE_OK)
        return STORE_ERROR;
    return rc;
}

int sqlite_topic_list(struct store_conn *c, const char *account_id, const char *region,
                      const char *after, int limit, store_topic_cb cb, void *ctx)
{
    struct store_topic t;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st =
        notify_prepare(c, NS_TOPIC_LIST, "sssi", account_id, region, after, (int64_t)limit);
    return sqlite_rows(c, st, read_topic, &t, emit_topic, &e);
}

/* ---- subscriptions ---- */

static void read_subscription(sqlite3_stmt *st, void *out)
{
    struct store_subscription *s = out;
    col_text(st, 0, s->arn, sizeof s->arn);
    col_text(st, 1, s->topic_arn, sizeof s->topic_arn);
    col_text(st, 2, s->account_id, sizeof s->account_id);
    col_text(st, 3, s->region, sizeof s->region);
    col_text(st, 4, s->protocol, sizeof s->protocol);
    col_text(st, 5, s->endpoint, sizeof s->endpoint);
    col_text(st, 6, s->token, sizeof s->token);
    s->confirmed = sqlite3_column_int(st, 7);
    s->created_ms = sqlite3_column_int64(st, 8);
    s->authenticate_unsubscribe = sqlite3_column_int(st, 9);
}

static void emit_subscription(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_subscription_cb)e->cb)(rec, e->ctx);
}

int sqlite_subscription_put(struct store_conn *c, const struct store_subscription *s)
{
    return sqlite_run(c, notify_prepare(c, NS_SUBSCRIPTION_PUT, "sssssssbib", s->arn, s->topic_arn,
                                        s->account_id, s->region, s->protocol, s->endpoint,
                                        s->token, (int)s->confirmed, s->created_ms,
                                        (int)s->authenticate_unsubscribe));
}

int sqlite_subscription_get(struct store_conn *c, const char *arn, struct store_subscription *out)
{
    return sqlite_one(c, notify_prepare(c, NS_SUBSCRIPTION_GET, "s", arn), read_subscription, out);
}

int sqlite_subscription_find(struct store_conn *c, const char *topic_arn, const char *protocol,
                             const char *endpoint, struct store_subscription *out)
{
    return sqlite_one(c,
                      notify_prepare(c, NS_SUBSCRIPTION_FIND, "sss", topic_arn, protocol, endpoint),
                      read_subscription, out);
}

int sqlite_subscription_by_token(struct store_conn *c, const char *topic_arn, const char *token,
                                 struct store_subscription *out)
{
    return sqlite_one(c, notify_prepare(c, NS_SUBSCRIPTION_BY_TOKEN, "ss", topic_arn, token),
                      read_subscription, out);
}

int sqlite_subscription_delete(struct store_conn *c, const char *arn)
{
    return sqlite_run(c, notify_prepare(c, NS_SUBSCRIPTION_DELETE, "s", arn));
}

/* A topic's list is still the account's: another account's topic lists nothing. */
int sqlite_subscription_list(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *after, int limit, store_subscription_cb cb, void *ctx)
{
    struct store_subscription s;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = topic_arn ? notify_prepare(c, NS_SUBSCRIPTION_LIST_TOPIC, "sssi", topic_arn,
                                                  account_id, after, (int64_t)limit)
                                 : notify_prepare(c, NS_SUBSCRIPTION_LIST_ACCOUNT, "ssi",
                                                  account_id, after, (int64_t)limit);
    return sqlite_rows(c, st, read_subscription, &s, emit_subscription, &e);
}

/* ---- the outbox ---- */

/* o->body points into the statement's row: valid until the callback returns. */
static void read_outbox(sqlite3_stmt *st, void *out)
{
    struct store_outbox *o = out;
    o->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, o->subscription_arn, sizeof o->subscription_arn);
    col_text(st, 2, o->topic_arn, sizeof o->topic_arn);
    col_text(st, 3, o->url, sizeof o->url);
    col_text(st, 4, o->message_type, sizeof o->message_type);
    col_text(st, 5, o->message_id, sizeof o->message_id);
    const unsigned char *body = sqlite3_column_text(st, 6);
    o->body = body ? (const char *)body : "";
    o->attempts = sqlite3_column_int(st, 7);
    o->created_ms = sqlite3_column_int64(st, 8);
    o->next_ms = sqlite3_column_int64(st, 9);
    col_text(st, 10, o->state, sizeof o->state);
    col_text(st, 11, o->last_error, sizeof o->last_error);
    o->forwarded = sqlite3_column_int(st, 12);
}

static void emit_outbox(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_outbox_cb)e->cb)(rec, e->ctx);
}

static int outbox_rows(struct store_conn *c, sqlite3_stmt *st, store_outbox_cb cb, void *ctx)
{
    struct store_outbox o;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, st, read_outbox, &o, emit_outbox, &e);
}

int sqlite_outbox_insert(struct store_conn *c, struct store_outbox *o)
{
    int rc =
        sqlite_run(c, notify_prepare(c, NS_OUTBOX_INSERT, "ssssssiiissb", o->subscription_arn,
                                     o->topic_arn, o->url, o->message_type, o->message_id,
                                     o->body ? o->body : "", (int64_t)o->attempts, o->created_ms,
                                     o->next_ms, o->state, o->last_error, (int)o->forwarded));
    if (rc == STORE_OK)
        o->id = sqlite3_last_insert_rowid(sqlite_conn_db(c));
    return rc;
}

int sqlite_outbox_trim_failed(struct store_conn *c, int keep)
{
    return run_any(c, notify_prepare(c, NS_OUTBOX_TRIM_FAILED, "i", (int64_t)keep));
}

int sqlite_outbox_forwarded(struct store_conn *c, const char *message_id)
{
    return sqlite_run(c, notify_prepare(c, NS_OUTBOX_FORWARDED, "s", message_id));
}

int sqlite_outbox_due(struct store_conn *c, int64_t now_ms, int64_t after_id, int limit,
                      store_outbox_cb cb, void *ctx)
{
    return outbox_rows(c, notify_prepare(c, NS_OUTBOX_DUE, "iii", now_ms, after_id, (int64_t)limit),
                       cb, ctx);
}

int sqlite_outbox_delete(struct store_conn *c, int64_t id)
{
    return sqlite_run(c, notify_prepare(c, NS_OUTBOX_DELETE, "i", id));
}

int sqlite_outbox_update(struct store_conn *c, int64_t id, int attempts, int64_t next_ms,
                         bool failed, const char *last_error)
{
    return sqlite_run(c, notify_prepare(c, NS_OUTBOX_UPDATE, "iiibs", id, (int64_t)attempts,
                                        next_ms, (int)failed, last_error ? last_error : ""));
}

int sqlite_outbox_list(struct store_conn *c, const char *state, int limit, store_outbox_cb cb,
                       void *ctx)
{
    sqlite3_stmt *st = state ? notify_prepare(c, NS_OUTBOX_LIST_STATE, "si", state, (int64_t)limit)
                             : notify_prepare(c, NS_OUTBOX_LIST_ALL, "i", (int64_t)limit);
    return outbox_rows(c, st, cb, ctx);
}

/* ---- feedback reports kept aside ---- */

/* r->data points into the statement's row (NUL-terminated, len bytes before it): valid until
 * the callback returns. */
static void read_report(sqlite3_stmt *st, void *out)
{
    struct store_feedback_report *r = out;
    r->id = sqlite3_column_int64(st, 0);
    r->received_ms = sqlite3_column_int64(st, 1);
    col_text(st, 2, r->mail_from, sizeof r->mail_from);
    col_text(st, 3, r->rcpt, sizeof r->rcpt);
    col_text(st, 4, r->kind, sizeof r->kind);
    col_text(st, 5, r->reason, sizeof r->reason);
    /* As text, so that it ends with a NUL; the length counts the bytes, NULs and all. */
    const unsigned char *data = sqlite3_column_text(st, 6);
    r->len = (size_t)sqlite3_column_bytes(st, 6);
    r->data = data ? (const char *)data : "";
    if (!data)
        r->len = 0;
}

static void emit_report(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_feedback_report_cb)e->cb)(rec, e->ctx);
}

int sqlite_feedback_report_insert(struct store_conn *c, struct store_feedback_report *r)
{
    sqlite3_stmt *st = notify_prepare(c, NS_REPORT_INSERT, "issss", r->received_ms, r->mail_from,
                                      r->rcpt, r->kind, r->reason);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_blob64(st, 6, r->data ? r->data : "", r->data ? r->len : 0, SQLITE_STATIC);
    int rc = sqlite_run(c, st);
    if (rc != STORE_OK)
        return rc;
    r->id = sqlite3_last_insert_rowid(sqlite_conn_db(c));
    if (r->id <= STORE_FEEDBACK_REPORTS_KEPT)
        return STORE_OK;
    rc = sqlite_run(c, notify_prepare(c, NS_REPORT_TRIM, "i", r->id - STORE_FEEDBACK_REPORTS_KEPT));
    return rc == STORE_ERROR ? rc : STORE_OK;
}

int sqlite_feedback_report_list(struct store_conn *c, int64_t id, int limit,
                                store_feedback_report_cb cb, void *ctx)
{
    struct store_feedback_report r;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = id ? notify_prepare(c, NS_REPORT_GET, "i", id)
                          : notify_prepare(c, NS_REPORT_LIST, "i", (int64_t)limit);
    return sqlite_rows(c, st, read_report, &r, emit_report, &e);
}

/* ---- subscription confirmations sent ---- */

static void read_int64(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
}

int sqlite_confirmations_get(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, int64_t since_ms,
                             struct store_confirmations *out)
{
    if (sqlite_one(c, notify_prepare(c, NS_CONFIRM_EMAILS, "si", account_id, since_ms), read_int64,
                   &out->emails) != STORE_OK)
        return STORE_ERROR; /* an aggregate always has its row */
    return sqlite_one(c, notify_prepare(c, NS_CONFIRM_LAST, "ssi", topic_arn, endpoint, since_ms),
                      read_int64, &out->last_endpoint_ms) == STORE_OK
               ? STORE_OK
               : STORE_ERROR;
}

int sqlite_confirmation_note(struct store_conn *c, const char *account_id, const char *topic_arn,
                             const char *endpoint, bool email, int64_t now_ms, int64_t since_ms)
{
    if (run_any(c, notify_prepare(c, NS_CONFIRM_TRIM, "si", account_id, since_ms)) != STORE_OK)
        return STORE_ERROR;
    return sqlite_run(c, notify_prepare(c, NS_CONFIRM_INSERT, "sssbi", account_id, topic_arn,
                                        endpoint, (int)email, now_ms));
}
