/* SQLite backend, continued: the delivery queue (recipients' progress), events, the
 * region-wide suppression list and the control counters. */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

enum queue_stmt {
    QS_LIST_ALL,
    QS_LIST_QUEUED,
    QS_LIST_ONE,
    QS_DATA,
    QS_MESSAGE_GET,
    QS_MESSAGE_HEAD,
    QS_UPDATE,
    QS_RETRY_ALL,
    QS_RETRY_ONE,
    QS_DROP,
    QS_RELEASE,
    QS_RELEASE_PUT,
    QS_EVENT_INSERT,
    QS_EVENT_LIST,
    QS_SUPPRESSED_PUT,
    QS_SUPPRESSED_GET,
    QS_SUPPRESSED_LIST,
    QS_SUPPRESSED_DELETE,
    QS_CONTROL_GET,
    QS_CONTROL_BUMP,
    QS_COUNT
};
_Static_assert(QS_COUNT <= SQLITE_DKIM_SLOT, "the queue's sqlite_cached slots overlap DKIM's");

#define RECIPIENT_SELECT                                                                           \
    "SELECT r.message_id, r.idx, r.address, r.state, r.attempts, r.next_ms, r.last_result,"        \
    " m.account_id, m.region, m.source, m.created_ms, length(m.data)"                              \
    " FROM recipients r JOIN messages m ON m.id = r.message_id"
#define EVENT_COLS                                                                                 \
    "message_id, idx, account_id, region, type, bounce_type, bounce_subtype, recipient,"           \
    " created_ms, processing_ms, smtp_response, status, action, diagnostic, remote_mta,"           \
    " reporting_mta, simulator, feedback_id, feedback_type, user_agent, arrival_ms, report_ms,"    \
    " final_recipient"
#define SUPPRESSED_COLS "region, address, reason, message_id, created_ms, expires_ms"

static const char *const queue_sql[QS_COUNT] = {
    [QS_LIST_ALL] = RECIPIENT_SELECT " ORDER BY m.created_ms, r.message_id, r.idx",
    /* Its own statement, so that the partial index on queued recipients serves it. */
    [QS_LIST_QUEUED] = RECIPIENT_SELECT " WHERE r.state = 'queued'"
                                        " ORDER BY m.created_ms, r.message_id, r.idx",
    [QS_LIST_ONE] = RECIPIENT_SELECT " WHERE r.message_id = ?2 AND (?1 = 0 OR r.state = 'queued')"
                                     " ORDER BY r.idx",
    [QS_DATA] = "SELECT data FROM messages WHERE id=?",
    [QS_MESSAGE_GET] = "SELECT id, account_id, region, source, identity, created_ms, captured,"
                       " meta FROM messages WHERE id=?",
    /* The columns before data: the rest of a row sits after the body, on its overflow
     * pages, which SQLite reads through to reach them. */
    [QS_MESSAGE_HEAD] = "SELECT id, account_id, region, source, identity, created_ms"
                        " FROM messages WHERE id=?",
    [QS_UPDATE] = "UPDATE recipients SET state=?3, attempts=?4, next_ms=?5, last_result=?6"
                  " WHERE message_id=?1 AND idx=?2 AND state='queued'",
    [QS_RETRY_ALL] = "UPDATE recipients SET next_ms=?1 WHERE state='queued'",
    [QS_RETRY_ONE] = "UPDATE recipients SET next_ms=?1 WHERE state='queued' AND message_id=?2",
    [QS_DROP] = "UPDATE recipients SET state='dropped', last_result='dropped by the operator'"
                " WHERE state='queued' AND message_id=?",
    /* Deleted and put back without its bytes (same rowid), not updated: an update that
     * shrinks a row leaves its page as it was, and every message kept a 4 KB page to
     * itself (its first 2 KB of body had made it the only row there). A delete lets
     * SQLite merge the page with its neighbours, so released rows share pages. The two
     * statements name every column of messages: a column added by a later migration must
     * be added to both. */
    [QS_RELEASE] = "DELETE FROM messages WHERE id=?1 AND captured=0 AND length(data)>0 AND NOT"
                   " EXISTS (SELECT 1 FROM recipients WHERE message_id=?1 AND state='queued')"
                   " RETURNING rowid, account_id, region, source, identity, created_ms, meta,"
                   " captured",
    [QS_RELEASE_PUT] = "INSERT INTO messages (rowid, id, account_id, region, source, identity,"
                       " created_ms, data, meta, captured) VALUES (?,?,?,?,?,?,?,x'',?,?)",
    [QS_EVENT_INSERT] = "INSERT INTO events (" EVENT_COLS ") VALUES"
                        " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [QS_EVENT_LIST] = "SELECT " EVENT_COLS " FROM events WHERE message_id=? ORDER BY id",
    [QS_SUPPRESSED_PUT] = "INSERT OR REPLACE INTO suppressed (" SUPPRESSED_COLS ")"
                          " VALUES (?,?,?,?,?,?)",
    [QS_SUPPRESSED_GET] = "SELECT " SUPPRESSED_COLS " FROM suppressed WHERE region=? AND"
                          " address=? AND expires_ms > ?",
    [QS_SUPPRESSED_LIST] = "SELECT " SUPPRESSED_COLS " FROM suppressed WHERE expires_ms > ?1"
                           " AND (?2 IS NULL OR address=?2) ORDER BY address, region",
    [QS_SUPPRESSED_DELETE] = "DELETE FROM suppressed WHERE address=?",
    [QS_CONTROL_GET] = "SELECT value FROM control WHERE name=?",
    [QS_CONTROL_BUMP] = "INSERT INTO control VALUES (?, 1) ON CONFLICT DO UPDATE"
                        " SET value=value+1",
};

#define queue_prepare(c, id, ...) sqlite_cached_bind(c, (int)(id), queue_sql[id], __VA_ARGS__)

struct emit_cb {
    void (*cb)(void);
    void *ctx;
};

/* ---- recipients ---- */

static void read_recipient(sqlite3_stmt *st, void *out)
{
    struct store_recipient *r = out;
    col_text(st, 0, r->message_id, sizeof r->message_id);
    r->idx = sqlite3_column_int(st, 1);
    col_text(st, 2, r->address, sizeof r->address);
    col_text(st, 3, r->state, sizeof r->state);
    r->attempts = sqlite3_column_int(st, 4);
    r->next_ms = sqlite3_column_int64(st, 5);
    col_text(st, 6, r->last_result, sizeof r->last_result);
    col_text(st, 7, r->account_id, sizeof r->account_id);
    col_text(st, 8, r->region, sizeof r->region);
    col_text(st, 9, r->source, sizeof r->source);
    r->created_ms = sqlite3_column_int64(st, 10);
    r->size = sqlite3_column_int64(st, 11);
}

static void emit_recipient(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_recipient_cb)e->cb)(rec, e->ctx);
}

int sqlite_queue_list(struct store_conn *c, const char *message_id, bool queued_only,
                      store_recipient_cb cb, void *ctx)
{
    struct store_recipient *r = malloc(sizeof *r);
    if (!r)
        return STORE_ERROR;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st;
    if (message_id)
        st = queue_prepare(c, QS_LIST_ONE, "bs", (int)queued_only, message_id);
    else
        st = queue_prepare(c, queued_only ? QS_LIST_QUEUED : QS_LIST_ALL, "");
    int rc = sqlite_rows(c, st, read_recipient, r, emit_recipient, &e);
    free(r);
    return rc;
}

struct data_out {
    char *data;
    size_t len;
};

static void read_data(sqlite3_stmt *st, void *out)
{
    struct data_out *d = out;
    d->len = (size_t)sqlite3_column_bytes(st, 0);
    d->data = malloc(d->len + 1);
    if (!d->data)
        abort();
    if (d->len)
        memcpy(d->data, sqlite3_column_blob(st, 0), d->len);
    d->data[d->len] = '\0';
}

int sqlite_message_data(struct store_conn *c, const char *id, char **data, size_t *len)
{
    struct data_out d = {NULL, 0};
    int rc = sqlite_one(c, queue_prepare(c, QS_DATA, "s", id), read_data, &d);
    *data = d.data;
    *len = d.len;
    return rc;
}

struct message_row {
    struct store_message *m;
    char *meta;
};

static void read_message(sqlite3_stmt *st, void *out)
{
    struct message_row *r = out;
    struct store_message *m = r->m;
    col_text(st, 0, m->id, sizeof m->id);
    col_text(st, 1, m->account_id, sizeof m->account_id);
    col_text(st, 2, m->region, sizeof m->region);
    col_text(st, 3, m->source, sizeof m->source);
    col_text(st, 4, m->identity, sizeof m->identity);
    m->created_ms = sqlite3_column_int64(st, 5);
    if (sqlite3_column_count(st) < 8)
        return; /* QS_MESSAGE_HEAD */
    m->captured = sqlite3_column_int(st, 6);
    const unsigned char *meta = sqlite3_column_text(st, 7);
    r->meta = strdup(meta ? (const char *)meta : "");
    if (!r->meta)
        abort();
}

int sqlite_message_get(struct store_conn *c, const char *id, struct store_message *out, char **meta)
{
    memset(out, 0, sizeof *out);
    struct message_row r = {out, NULL};
    int rc = sqlite_one(c, queue_prepare(c, meta ? QS_MESSAGE_GET : QS_MESSAGE_HEAD, "s", id),
                        read_message, &r);
    out->meta = r.meta;
    if (meta)
        *meta = r.meta;
    return rc;
}

int sqlite_recipient_update(struct store_conn *c, const struct store_recipient *r)
{
    return sqlite_run(c, queue_prepare(c, QS_UPDATE, "sisiis", r->message_id, (int64_t)r->idx,
                                       r->state, (int64_t)r->attempts, r->next_ms, r->last_result));
}

int sqlite_queue_retry(struct store_conn *c, const char *message_id, int64_t now_ms, int *n)
{
    int rc = sqlite_run(c, message_id ? queue_prepare(c, QS_RETRY_ONE, "is", now_ms, message_id)
                                      : queue_prepare(c, QS_RETRY_ALL, "i", now_ms));
    *n = rc == STORE_OK ? sqlite3_changes(sqlite_conn_db(c)) : 0;
    return rc;
}

int sqlite_queue_drop(struct store_conn *c, const char *message_id, int *n)
{
    int rc = sqlite_run(c, queue_prepare(c, QS_DROP, "s", message_id));
    *n = rc == STORE_OK ? sqlite3_changes(sqlite_conn_db(c)) : 0;
    if (rc == STORE_OK)
        rc = sqlite_message_release(c, message_id); /* nothing left to send: the bytes go */
    return rc;
}

#define RELEASE_COLS 8 /* QS_RELEASE's RETURNING columns */

/* The row QS_RELEASE took out goes back in, its columns as they were but the bytes:
 * rowid first, then id, then the rest (QS_RELEASE_PUT's parameters 3..9). */
static int release_put(struct store_conn *c, sqlite3_value *const *row, const char *id)
{
    sqlite3_stmt *put = sqlite_cached(c, QS_RELEASE_PUT, queue_sql[QS_RELEASE_PUT]);
    if (!put)
        return STORE_ERROR;
    sqlite3_bind_value(put, 1, row[0]);
    sqlite3_bind_text(put, 2, id, -1, SQLITE_STATIC);
    for (int col = 1; col < RELEASE_COLS; col++)
        sqlite3_bind_value(put, col + 2, row[col]);
    return sqlite_run(c, put);
}

int sqlite_message_release(struct store_conn *c, const char *id)
{
    sqlite3_stmt *taken = queue_prepare(c, QS_RELEASE, "s", id);
    if (!taken)
        return STORE_ERROR;
    sqlite3_value *row[RELEASE_COLS] = {0};
    int step = sqlite3_step(taken);
    bool found = step == SQLITE_ROW;
    for (int col = 0; found && col < RELEASE_COLS; col++)
        if (!(row[col] = sqlite3_value_dup(sqlite3_column_value(taken, col))))
            found = false, step = SQLITE_NOMEM;
    while (step == SQLITE_ROW)
        step = sqlite3_step(taken);
    sqlite3_reset(taken);
    int rc = step != SQLITE_DONE ? STORE_ERROR : found ? release_put(c, row, id) : STORE_OK;
    for (int col = 0; col < RELEASE_COLS; col++)
        sqlite3_value_free(row[col]);
    if (step != SQLITE_DONE)
        log_error("store: releasing %s: %s", id, sqlite3_errmsg(sqlite_conn_db(c)));
    return rc == STORE_ERROR || rc == STORE_EXISTS ? STORE_ERROR : STORE_OK;
}

/* ---- events ---- */

int sqlite_event_insert(struct store_conn *c, const struct store_event *e)
{
    return sqlite_run(
        c, queue_prepare(c, QS_EVENT_INSERT, "sissssssiissssssbsssiis", e->message_id,
                         (int64_t)e->idx, e->account_id, e->region, e->type, e->bounce_type,
                         e->bounce_subtype, e->recipient, e->created_ms, e->processing_ms,
                         e->smtp_response, e->status, e->action, e->diagnostic, e->remote_mta,
                         e->reporting_mta, (int)e->simulator, e->feedback_id, e->feedback_type,
                         e->user_agent, e->arrival_ms, e->report_ms, e->final_recipient));
}

static void read_event(sqlite3_stmt *st, void *out)
{
    struct store_event *e = out;
    col_text(st, 0, e->message_id, sizeof e->message_id);
    e->idx = sqlite3_column_int(st, 1);
    col_text(st, 2, e->account_id, sizeof e->account_id);
    col_text(st, 3, e->region, sizeof e->region);
    col_text(st, 4, e->type, sizeof e->type);
    col_text(st, 5, e->bounce_type, sizeof e->bounce_type);
    col_text(st, 6, e->bounce_subtype, sizeof e->bounce_subtype);
    col_text(st, 7, e->recipient, sizeof e->recipient);
    e->created_ms = sqlite3_column_int64(st, 8);
    e->processing_ms = sqlite3_column_int64(st, 9);
    col_text(st, 10, e->smtp_response, sizeof e->smtp_response);
    col_text(st, 11, e->status, sizeof e->status);
    col_text(st, 12, e->action, sizeof e->action);
    col_text(st, 13, e->diagnostic, sizeof e->diagnostic);
    col_text(st, 14, e->remote_mta, sizeof e->remote_mta);
    col_text(st, 15, e->reporting_mta, sizeof e->reporting_mta);
    e->simulator = sqlite3_column_int(st, 16);
    col_text(st, 17, e->feedback_id, sizeof e->feedback_id);
    col_text(st, 18, e->feedback_type, sizeof e->feedback_type);
    col_text(st, 19, e->user_agent, sizeof e->user_agent);
    e->arrival_ms = sqlite3_column_int64(st, 20);
    e->report_ms = sqlite3_column_int64(st, 21);
    col_text(st, 22, e->final_recipient, sizeof e->final_recipient);
}

static void emit_event(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_event_cb)e->cb)(rec, e->ctx);
}

int sqlite_event_list(struct store_conn *c, const char *message_id, store_event_cb cb, void *ctx)
{
    struct store_event *ev = malloc(sizeof *ev);
    if (!ev)
        return STORE_ERROR;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    int rc = sqlite_rows(c, queue_prepare(c, QS_EVENT_LIST, "s", message_id), read_event, ev,
                         emit_event, &e);
    free(ev);
    return rc;
}

/* ---- the suppression list ---- */

int sqlite_suppressed_put(struct store_conn *c, const struct store_suppressed *s)
{
    return sqlite_run(c, queue_prepare(c, QS_SUPPRESSED_PUT, "ssssii", s->region, s->address,
                                       s->reason, s->message_id, s->created_ms, s->expires_ms));
}

static void read_suppressed(sqlite3_stmt *st, void *out)
{
    struct store_suppressed *s = out;
    col_text(st, 0, s->region, sizeof s->region);
    col_text(st, 1, s->address, sizeof s->address);
    col_text(st, 2, s->reason, sizeof s->reason);
    col_text(st, 3, s->message_id, sizeof s->message_id);
    s->created_ms = sqlite3_column_int64(st, 4);
    s->expires_ms = sqlite3_column_int64(st, 5);
}

int sqlite_suppressed_get(struct store_conn *c, const char *region, const char *address,
                          int64_t now_ms, struct store_suppressed *out)
{
    struct store_suppressed scratch;
    return sqlite_one(c, queue_prepare(c, QS_SUPPRESSED_GET, "ssi", region, address, now_ms),
                      read_suppressed, out ? out : &scratch);
}

static void emit_suppressed(const void *rec, void *ctx)
{
    struct emit_cb *e = ctx;
    ((store_suppressed_cb)e->cb)(rec, e->ctx);
}

int sqlite_suppressed_list(struct store_conn *c, const char *address, int64_t now_ms,
                           store_suppressed_cb cb, void *ctx)
{
    struct store_suppressed s;
    struct emit_cb e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = queue_prepare(c, QS_SUPPRESSED_LIST, "i", now_ms);
    if (st && address)
        sqlite3_bind_text(st, 2, address, -1, SQLITE_TRANSIENT);
    return sqlite_rows(c, st, read_suppressed, &s, emit_suppressed, &e);
}

int sqlite_suppressed_delete(struct store_conn *c, const char *address)
{
    return sqlite_run(c, queue_prepare(c, QS_SUPPRESSED_DELETE, "s", address));
}

/* ---- control counters ---- */

static void read_int(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
}

int sqlite_control_get(struct store_conn *c, const char *name, int64_t *out)
{
    *out = 0;
    int rc = sqlite_one(c, queue_prepare(c, QS_CONTROL_GET, "s", name), read_int, out);
    return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

int sqlite_control_bump(struct store_conn *c, const char *name)
{
    return sqlite_run(c, queue_prepare(c, QS_CONTROL_BUMP, "s", name));
}
