/* SQLite backend, continued: Easy DKIM sets (table dkim, migration 5). The private keys
 * arrive sealed and leave sealed: store.c seals and opens them. */
#include "store/store_sqlite.h"

#include <stdlib.h>
#include <string.h>

enum dkim_stmt {
    DS_PUT,
    DS_GET,
    DS_DELETE,
    DS_LIST_ALL,
    DS_LIST_ACCOUNT,
    DS_DUE,
    DS_DISABLE,
    DS_COUNT
};
_Static_assert(SQLITE_DKIM_SLOT + DS_COUNT <= SQLITE_NOTIFY_SLOT, "too few sqlite_cached slots");

#define DKIM_COLS                                                                                  \
    "account_id, region, domain, token1, token2, token3, key1, key2, key3, status, created_ms,"    \
    " status_ms, checked_ms, missing_since_ms"

static const char *const dkim_sql[DS_COUNT] = {
    [DS_PUT] = "INSERT OR REPLACE INTO dkim (" DKIM_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [DS_GET] = "SELECT " DKIM_COLS " FROM dkim WHERE account_id=? AND region=? AND domain=?",
    [DS_DELETE] = "DELETE FROM dkim WHERE account_id=? AND region=? AND domain=?",
    [DS_LIST_ALL] = "SELECT " DKIM_COLS " FROM dkim ORDER BY account_id, region, domain",
    [DS_LIST_ACCOUNT] = "SELECT " DKIM_COLS " FROM dkim WHERE account_id=?"
                        " ORDER BY account_id, region, domain",
    /* The operator's set has no customer to tell: its records are the operator's affair. */
    [DS_DUE] = "SELECT " DKIM_COLS " FROM dkim WHERE checked_ms < ?"
               " AND status IN ('Pending','TemporaryFailure','Success')"
               " AND account_id != '" STORE_DKIM_OPERATOR "' ORDER BY checked_ms LIMIT ?",
    /* The domain and every email identity at it (domains are kept lower-case, so are
     * the domain parts of addresses: mail_identity_normalize). */
    [DS_DISABLE] = "UPDATE identities SET dkim_enabled=0 WHERE account_id=?1 AND region=?2"
                   " AND (identity=?3 OR (kind=0 AND substr(identity, instr(identity, '@') + 1)"
                   " = ?3))",
};

#define dkim_prepare(c, id, ...)                                                                   \
    sqlite_cached_bind(c, SQLITE_DKIM_SLOT + (int)(id), dkim_sql[id], __VA_ARGS__)

static void read_dkim(sqlite3_stmt *st, void *out)
{
    struct store_dkim_sealed *s = out;
    struct store_dkim *d = &s->d;
    col_text(st, 0, d->account_id, sizeof d->account_id);
    col_text(st, 1, d->region, sizeof d->region);
    col_text(st, 2, d->domain, sizeof d->domain);
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        col_text(st, 3 + i, d->tokens[i], sizeof d->tokens[i]);
        col_text(st, 6 + i, s->keys[i], sizeof s->keys[i]);
        d->keys[i][0] = '\0';
    }
    col_text(st, 9, d->status, sizeof d->status);
    d->created_ms = sqlite3_column_int64(st, 10);
    d->status_ms = sqlite3_column_int64(st, 11);
    d->checked_ms = sqlite3_column_int64(st, 12);
    d->missing_since_ms = sqlite3_column_int64(st, 13);
}

int sqlite_dkim_put(struct store_conn *c, const struct store_dkim_sealed *s)
{
    const struct store_dkim *d = &s->d;
    return sqlite_run(c, dkim_prepare(c, DS_PUT, "ssssssssssiiii", d->account_id, d->region,
                                      d->domain, d->tokens[0], d->tokens[1], d->tokens[2],
                                      s->keys[0], s->keys[1], s->keys[2], d->status, d->created_ms,
                                      d->status_ms, d->checked_ms, d->missing_since_ms));
}

int sqlite_dkim_get(struct store_conn *c, const char *account_id, const char *region,
                    const char *domain, struct store_dkim_sealed *out)
{
    return sqlite_one(c, dkim_prepare(c, DS_GET, "sss", account_id, region, domain), read_dkim,
                      out);
}

int sqlite_dkim_delete(struct store_conn *c, const char *account_id, const char *region,
                       const char *domain)
{
    return sqlite_run(c, dkim_prepare(c, DS_DELETE, "sss", account_id, region, domain));
}

struct emit_dkim_ctx {
    store_dkim_sealed_cb cb;
    void *ctx;
};

static void emit_dkim(const void *rec, void *ctx)
{
    struct emit_dkim_ctx *e = ctx;
    e->cb(rec, e->ctx);
}

/* The scratch row is some 30 KB: on the heap, not on an I/O thread's stack. */
static int dkim_rows(struct store_conn *c, sqlite3_stmt *st, store_dkim_sealed_cb cb, void *ctx)
{
    struct store_dkim_sealed *row = calloc(1, sizeof *row);
    if (!row) {
        sqlite3_reset(st);
        return STORE_ERROR;
    }
    struct emit_dkim_ctx e = {cb, ctx};
    int rc = sqlite_rows(c, st, read_dkim, row, emit_dkim, &e);
    free(row);
    return rc;
}

int sqlite_dkim_list(struct store_conn *c, const char *account_id, store_dkim_sealed_cb cb,
                     void *ctx)
{
    sqlite3_stmt *st = account_id ? dkim_prepare(c, DS_LIST_ACCOUNT, "s", account_id)
                                  : dkim_prepare(c, DS_LIST_ALL, "");
    return st ? dkim_rows(c, st, cb, ctx) : STORE_ERROR;
}

int sqlite_dkim_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                         store_dkim_sealed_cb cb, void *ctx)
{
    sqlite3_stmt *st = dkim_prepare(c, DS_DUE, "ii", checked_before_ms, (int64_t)limit);
    return st ? dkim_rows(c, st, cb, ctx) : STORE_ERROR;
}

int sqlite_dkim_disable_domain(struct store_conn *c, const char *account_id, const char *region,
                               const char *domain)
{
    return sqlite_run(c, dkim_prepare(c, DS_DISABLE, "sss", account_id, region, domain));
}
