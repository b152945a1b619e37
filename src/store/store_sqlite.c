/* SQLite backend: one file in WAL mode. Each connection keeps its prepared statements;
 * the writer's commits are fsynced when store.fsync is on (synchronous=FULL). */
#include "store/store_sqlite.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Versioned migrations: entry N brings the schema from version N to N+1. Never edit a
 * released entry; append a new one. */
static const char *const migrations[] = {
    "CREATE TABLE accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, contact TEXT NOT NULL,"
    " suspended INTEGER NOT NULL, disabled INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE account_regions (account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " production INTEGER NOT NULL, max_24h REAL NOT NULL, max_rate REAL NOT NULL,"
    " PRIMARY KEY (account_id, region));"
    "CREATE TABLE access_keys (key_id TEXT PRIMARY KEY, secret TEXT NOT NULL,"
    " account_id TEXT NOT NULL, user TEXT NOT NULL, active INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX access_keys_account ON access_keys (account_id);"
    "CREATE TABLE identities (account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " identity TEXT NOT NULL, kind INTEGER NOT NULL, status TEXT NOT NULL, token TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, status_ms INTEGER NOT NULL, checked_ms INTEGER NOT NULL,"
    " missing_since_ms INTEGER NOT NULL, PRIMARY KEY (account_id, region, identity));"
    "CREATE INDEX identities_due ON identities (kind, checked_ms);"
    "CREATE TABLE email_links (token TEXT PRIMARY KEY, account_id TEXT NOT NULL,"
    " region TEXT NOT NULL, identity TEXT NOT NULL, expires_ms INTEGER NOT NULL);"
    "CREATE INDEX email_links_identity ON email_links (account_id, region, identity);"
    "CREATE TABLE send_stats (account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " bucket_ms INTEGER NOT NULL, delivery_attempts INTEGER NOT NULL, bounces INTEGER NOT NULL,"
    " complaints INTEGER NOT NULL, rejects INTEGER NOT NULL,"
    " PRIMARY KEY (account_id, region, bucket_ms));"
    "CREATE TABLE sent_counts (account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " minute_ms INTEGER NOT NULL, recipients REAL NOT NULL,"
    " PRIMARY KEY (account_id, region, minute_ms));",
    /* 2: accepted messages and their envelope recipients. */
    "CREATE TABLE messages (id TEXT PRIMARY KEY, account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " source TEXT NOT NULL, identity TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " data BLOB NOT NULL, meta TEXT NOT NULL, captured INTEGER NOT NULL);"
    "CREATE INDEX messages_captured ON messages (captured, created_ms) WHERE captured = 1;"
    "CREATE TABLE recipients (message_id TEXT NOT NULL, idx INTEGER NOT NULL,"
    " address TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (message_id, idx));",
    /* 3: users with inline policies, and the account-level suppression list. Access key
     * secrets are sealed from here on (store_secrets.h). */
    "CREATE TABLE users (account_id TEXT NOT NULL, name TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, PRIMARY KEY (account_id, name));"
    "CREATE TABLE policies (account_id TEXT NOT NULL, user TEXT NOT NULL, name TEXT NOT NULL,"
    " document TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (account_id, user, name));"
    "CREATE TABLE suppressions (account_id TEXT NOT NULL, address TEXT NOT NULL,"
    " reason TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY (account_id, address));"
    "CREATE INDEX access_keys_user ON access_keys (account_id, user);",
    /* 4: the delivery queue (recipients' progress), events, the region-wide suppression
     * list, and counters the admin command bumps. */
    "ALTER TABLE recipients ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE recipients ADD COLUMN next_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE recipients ADD COLUMN last_result TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX recipients_queued ON recipients (message_id) WHERE state = 'queued';"
    "CREATE TABLE events (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL, idx INTEGER NOT NULL,"
    " account_id TEXT NOT NULL, region TEXT NOT NULL, type TEXT NOT NULL,"
    " bounce_type TEXT NOT NULL, bounce_subtype TEXT NOT NULL, recipient TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, processing_ms INTEGER NOT NULL, smtp_response TEXT NOT NULL,"
    " status TEXT NOT NULL, action TEXT NOT NULL, diagnostic TEXT NOT NULL,"
    " remote_mta TEXT NOT NULL, reporting_mta TEXT NOT NULL, simulator INTEGER NOT NULL);"
    "CREATE INDEX events_message ON events (message_id);"
    "CREATE TABLE suppressed (region TEXT NOT NULL, address TEXT NOT NULL, reason TEXT NOT NULL,"
    " message_id TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    " PRIMARY KEY (region, address));"
    "CREATE TABLE control (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    /* 5: Easy DKIM: identities' DkimEnabled, and each domain's tokens with their key pairs
     * (private keys sealed, store_secrets.h; "" for an empty slot). */
    "ALTER TABLE identities ADD COLUMN dkim_enabled INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE dkim (account_id TEXT NOT NULL, region TEXT NOT NULL, domain TEXT NOT NULL,"
    " token1 TEXT NOT NULL, token2 TEXT NOT NULL, token3 TEXT NOT NULL, key1 TEXT NOT NULL,"
    " key2 TEXT NOT NULL, key3 TEXT NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " status_ms INTEGER NOT NULL, checked_ms INTEGER NOT NULL,"
    " missing_since_ms INTEGER NOT NULL, PRIMARY KEY (account_id, region, domain));"
    "CREATE INDEX dkim_due ON dkim (checked_ms);",
    /* 6: feedback and notifications: complaint fields of events, identities' notification
     * settings (no row: the defaults), SNS-compatible topics and subscriptions, the outbox
     * of HTTP(S) deliveries, and feedback reports kept aside for inspection. */
    "ALTER TABLE events ADD COLUMN feedback_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE events ADD COLUMN feedback_type TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE events ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE events ADD COLUMN arrival_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE events ADD COLUMN report_ms INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE identity_notify (account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " identity TEXT NOT NULL, bounce_topic TEXT NOT NULL, complaint_topic TEXT NOT NULL,"
    " delivery_topic TEXT NOT NULL, forwarding INTEGER NOT NULL,"
    " PRIMARY KEY (account_id, region, identity));"
    "CREATE TABLE topics (arn TEXT PRIMARY KEY, account_id TEXT NOT NULL, region TEXT NOT NULL,"
    " name TEXT NOT NULL, display_name TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX topics_account ON topics (account_id, region, arn);"
    "CREATE TABLE subscriptions (arn TEXT PRIMARY KEY, topic_arn TEXT NOT NULL,"
    " account_id TEXT NOT NULL, region TEXT NOT NULL, protocol TEXT NOT NULL,"
    " endpoint TEXT NOT NULL, token TEXT NOT NULL, confirmed INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX subscriptions_topic ON subscriptions (topic_arn);"
    "CREATE INDEX subscriptions_account ON subscriptions (account_id);"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, subscription_arn TEXT NOT NULL,"
    " topic_arn TEXT NOT NULL, url TEXT NOT NULL, message_type TEXT NOT NULL,"
    " message_id TEXT NOT NULL, body TEXT NOT NULL, attempts INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, next_ms INTEGER NOT NULL, state TEXT NOT NULL,"
    " last_error TEXT NOT NULL);"
    "CREATE INDEX outbox_due ON outbox (next_ms) WHERE state = 'pending';"
    "CREATE TABLE feedback_reports (id INTEGER PRIMARY KEY, received_ms INTEGER NOT NULL,"
    " mail_from TEXT NOT NULL, rcpt TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,"
    " data BLOB NOT NULL);",
    /* 6 -> 7: subscription confirmations sent, for Subscribe's limits; subscriptions
     * confirmed with AuthenticateOnUnsubscribe; outbox rows whose event went by email too */
    "CREATE TABLE sns_confirmations (id INTEGER PRIMARY KEY, account_id TEXT NOT NULL,"
    " topic_arn TEXT NOT NULL, endpoint TEXT NOT NULL, email INTEGER NOT NULL,"
    " sent_ms INTEGER NOT NULL);"
    "CREATE INDEX sns_confirmations_sent ON sns_confirmations (account_id, email, sent_ms);"
    "CREATE INDEX sns_confirmations_endpoint ON sns_confirmations (topic_arn, endpoint, sent_ms);"
    "ALTER TABLE subscriptions ADD COLUMN authenticate_unsubscribe INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE outbox ADD COLUMN forwarded INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX outbox_message ON outbox (message_id);"
    "CREATE INDEX outbox_failed ON outbox (id) WHERE state = 'failed';",
    /* 7 -> 8: a received DSN's Final-Recipient, which bouncedRecipients reports (spec 20
     * §5.5.4); it differs from the address sent to when the mail was forwarded. */
    "ALTER TABLE events ADD COLUMN final_recipient TEXT NOT NULL DEFAULT '';",
};
#define MIGRATION_COUNT ((int)(sizeof migrations / sizeof migrations[0]))

enum stmt_id {
    ST_ACCOUNT_INSERT,
    ST_ACCOUNT_UPDATE,
    ST_ACCOUNT_GET,
    ST_ACCOUNT_LIST,
    ST_REGION_GET,
    ST_REGION_PUT,
    ST_KEY_INSERT,
    ST_KEY_GET,
    ST_KEY_LIST,
    ST_KEY_ACTIVE,
    ST_KEY_DELETE,
    ST_KEY_SECRETS,
    ST_KEY_SECRET_SET,
    ST_USER_INSERT,
    ST_USER_GET,
    ST_USER_LIST,
    ST_USER_DELETE,
    ST_USER_KEYS_DELETE,
    ST_USER_POLICIES_DELETE,
    ST_POLICY_PUT,
    ST_POLICY_GET,
    ST_POLICY_LIST,
    ST_POLICY_DELETE,
    ST_SUPPRESSION_PUT,
    ST_SUPPRESSION_GET,
    ST_SUPPRESSION_LIST,
    ST_SUPPRESSION_DELETE,
    ST_IDENTITY_PUT,
    ST_IDENTITY_GET,
    ST_IDENTITY_DELETE,
    ST_IDENTITY_COUNT,
    ST_IDENTITY_LIST,
    ST_IDENTITY_DUE,
    ST_IDENTITY_SET_DKIM,
    ST_LINK_PUT,
    ST_LINK_GET,
    ST_LINK_DELETE,
    ST_LINK_FIND,
    ST_LINK_DELETE_FOR,
    ST_STATS_LIST,
    ST_STATS_ADD,
    ST_SENT_SUM,
    ST_SENT_ADD,
    ST_SENT_LIST,
    ST_MESSAGE_INSERT,
    ST_RECIPIENT_INSERT,
    ST_CAPTURE_LIST,
    ST_CAPTURE_CLEAR_ALL,
    ST_CAPTURE_CLEAR_ONE,
    ST_CAPTURE_RECIPIENTS_CLEAR,
    ST_BEGIN,
    ST_READ_BEGIN,
    ST_COMMIT,
    ST_SAVEPOINT,
    ST_SAVEPOINT_ROLLBACK,
    ST_SAVEPOINT_RELEASE,
    ST_COUNT
};

#define ACCOUNT_COLS "id, name, contact, suspended, disabled, created_ms"
#define IDENTITY_COLS                                                                              \
    "account_id, region, identity, kind, status, token, created_ms, status_ms, checked_ms,"        \
    " missing_since_ms, dkim_enabled"
#define POLICY_COLS "account_id, user, name, document, updated_ms"
#define SUPPRESSION_COLS "account_id, address, reason, created_ms"
static const char *const stmt_sql[ST_COUNT] = {
    [ST_ACCOUNT_INSERT] = "INSERT INTO accounts (" ACCOUNT_COLS ") VALUES (?,?,?,?,?,?)",
    [ST_ACCOUNT_UPDATE] = "UPDATE accounts SET name=?2, contact=?3, suspended=?4, disabled=?5"
                          " WHERE id=?1",
    [ST_ACCOUNT_GET] = "SELECT " ACCOUNT_COLS " FROM accounts WHERE id=?",
    [ST_ACCOUNT_LIST] = "SELECT " ACCOUNT_COLS " FROM accounts ORDER BY created_ms, id LIMIT ?",
    [ST_REGION_GET] = "SELECT production, max_24h, max_rate FROM account_regions"
                      " WHERE account_id=? AND region=?",
    [ST_REGION_PUT] = "INSERT OR REPLACE INTO account_regions VALUES (?,?,?,?,?)",
    [ST_KEY_INSERT] = "INSERT INTO access_keys VALUES (?,?,?,?,?,?)",
    [ST_KEY_GET] = "SELECT key_id, secret, account_id, user, active, created_ms FROM access_keys"
                   " WHERE key_id=?",
    [ST_KEY_LIST] = "SELECT key_id, secret, account_id, user, active, created_ms FROM access_keys"
                    " WHERE account_id=? ORDER BY created_ms, key_id",
    [ST_KEY_ACTIVE] = "UPDATE access_keys SET active=? WHERE key_id=?",
    [ST_KEY_DELETE] = "DELETE FROM access_keys WHERE key_id=?",
    [ST_KEY_SECRETS] = "SELECT key_id, secret FROM access_keys",
    [ST_KEY_SECRET_SET] = "UPDATE access_keys SET secret=? WHERE key_id=?",
    [ST_USER_INSERT] = "INSERT INTO users VALUES (?,?,?)",
    [ST_USER_GET] = "SELECT account_id, name, created_ms FROM users WHERE account_id=? AND name=?",
    [ST_USER_LIST] = "SELECT account_id, name, created_ms FROM users WHERE account_id=?"
                     " ORDER BY name",
    [ST_USER_DELETE] = "DELETE FROM users WHERE account_id=? AND name=?",
    [ST_USER_KEYS_DELETE] = "DELETE FROM access_keys WHERE account_id=? AND user=?",
    [ST_USER_POLICIES_DELETE] = "DELETE FROM policies WHERE account_id=? AND user=?",
    [ST_POLICY_PUT] = "INSERT OR REPLACE INTO policies VALUES (?,?,?,?,?)",
    [ST_POLICY_GET] = "SELECT " POLICY_COLS " FROM policies WHERE account_id=? AND user=?"
                      " AND name=?",
    [ST_POLICY_LIST] = "SELECT " POLICY_COLS " FROM policies WHERE account_id=? AND user=?"
                       " ORDER BY name",
    [ST_POLICY_DELETE] = "DELETE FROM policies WHERE account_id=? AND user=? AND name=?",
    [ST_SUPPRESSION_PUT] = "INSERT OR REPLACE INTO suppressions VALUES (?,?,?,?)",
    [ST_SUPPRESSION_GET] = "SELECT " SUPPRESSION_COLS " FROM suppressions WHERE account_id=?"
                           " AND address=?",
    [ST_SUPPRESSION_LIST] = "SELECT " SUPPRESSION_COLS " FROM suppressions WHERE account_id=?"
                            " AND address > ? ORDER BY address LIMIT ?",
    [ST_SUPPRESSION_DELETE] = "DELETE FROM suppressions WHERE account_id=? AND address=?",
    [ST_IDENTITY_PUT] =
        "INSERT OR REPLACE INTO identities (" IDENTITY_COLS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    [ST_IDENTITY_GET] =
        "SELECT " IDENTITY_COLS " FROM identities WHERE account_id=? AND region=? AND identity=?",
    [ST_IDENTITY_DELETE] = "DELETE FROM identities WHERE account_id=? AND region=? AND identity=?",
    [ST_IDENTITY_COUNT] = "SELECT count(*) FROM identities WHERE account_id=? AND region=?",
    [ST_IDENTITY_LIST] = "SELECT " IDENTITY_COLS " FROM identities WHERE account_id=?1 AND"
                         " region=?2 AND (?3 < 0 OR kind=?3) AND identity > ?4"
                         " ORDER BY identity LIMIT ?5",
    [ST_IDENTITY_DUE] = "SELECT " IDENTITY_COLS " FROM identities WHERE kind=1 AND checked_ms < ?"
                        " AND status IN ('Pending','TemporaryFailure','Success')"
                        " ORDER BY checked_ms LIMIT ?",
    [ST_IDENTITY_SET_DKIM] = "UPDATE identities SET dkim_enabled=? WHERE account_id=? AND"
                             " region=? AND identity=?",
    [ST_LINK_PUT] = "INSERT OR REPLACE INTO email_links VALUES (?,?,?,?,?)",
    [ST_LINK_GET] = "SELECT token, account_id, region, identity, expires_ms FROM email_links"
                    " WHERE token=?",
    [ST_LINK_DELETE] = "DELETE FROM email_links WHERE token=?",
    [ST_LINK_DELETE_FOR] = "DELETE FROM email_links WHERE account_id=? AND region=? AND"
                           " identity=?",
    [ST_LINK_FIND] = "SELECT token, account_id, region, identity, expires_ms FROM email_links"
                     " WHERE account_id=? AND region=? AND identity=? ORDER BY expires_ms DESC",
    [ST_STATS_LIST] = "SELECT bucket_ms, delivery_attempts, bounces, complaints, rejects FROM"
                      " send_stats WHERE account_id=? AND region=? AND bucket_ms >= ?"
                      " ORDER BY bucket_ms",
    [ST_STATS_ADD] = "INSERT INTO send_stats VALUES (?1,?2,?3,?4,?5,?6,?7) ON CONFLICT DO UPDATE"
                     " SET delivery_attempts=delivery_attempts+?4, bounces=bounces+?5,"
                     " complaints=complaints+?6, rejects=rejects+?7",
    [ST_SENT_SUM] = "SELECT coalesce(sum(recipients),0) FROM sent_counts WHERE account_id=? AND"
                    " region=? AND minute_ms >= ?",
    [ST_SENT_ADD] = "INSERT INTO sent_counts VALUES (?1,?2,?3,?4) ON CONFLICT DO UPDATE"
                    " SET recipients=recipients+?4",
    [ST_SENT_LIST] = "SELECT minute_ms, recipients FROM sent_counts WHERE account_id=? AND"
                     " region=? AND minute_ms >= ?",
    [ST_MESSAGE_INSERT] = "INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)",
    [ST_RECIPIENT_INSERT] = "INSERT INTO recipients (message_id, idx, address, state)"
                            " VALUES (?,?,?,?)",
    [ST_CAPTURE_LIST] = "SELECT meta, data FROM messages WHERE captured=1 AND (?1 IS NULL OR id=?1)"
                        " ORDER BY created_ms, id",
    [ST_CAPTURE_CLEAR_ALL] = "DELETE FROM messages WHERE captured=1",
    [ST_CAPTURE_CLEAR_ONE] = "DELETE FROM messages WHERE captured=1 AND id=?",
    [ST_CAPTURE_RECIPIENTS_CLEAR] = "DELETE FROM recipients WHERE message_id NOT IN"
                                    " (SELECT id FROM messages)",
    /* The writer's transaction control, prepared once: it runs for every request. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_READ_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_SAVEPOINT_ROLLBACK] = "ROLLBACK TO op",
    [ST_SAVEPOINT_RELEASE] = "RELEASE op",
};

struct sqlite_conn {
    struct store_conn base;
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    sqlite3_stmt *more[SQLITE_MORE_STMTS]; /* statements of the other files (sqlite_cached) */
    int wal_frames;                        /* the WAL's length after this connection's commit */
    int wal_woken; /* wal_frames / WAL_EARLY_FRAMES when the maintainer was last woken */
};

sqlite3 *sqlite_conn_db(struct store_conn *c)
{
    return ((struct sqlite_conn *)c)->db;
}

int sqlite_exec(struct store_conn *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(sqlite_conn_db(c), sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("store: %s: %s", sql, msg ? msg : "error");
        sqlite3_free(msg);
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* Returns the cached statement, reset and with bindings cleared. */
static sqlite3_stmt *stmt_cached(struct sqlite_conn *sc, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot &&
        sqlite3_prepare_v3(sc->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        log_error("store: prepare: %s", sqlite3_errmsg(sc->db));
        return NULL;
    }
    sqlite3_reset(*slot);
    sqlite3_clear_bindings(*slot);
    return *slot;
}

static sqlite3_stmt *sqlite_stmt(struct store_conn *c, enum stmt_id id)
{
    struct sqlite_conn *sc = (struct sqlite_conn *)c;
    return stmt_cached(sc, &sc->stmts[id], stmt_sql[id]);
}

sqlite3_stmt *sqlite_cached(struct store_conn *c, int slot, const char *sql)
{
    struct sqlite_conn *sc = (struct sqlite_conn *)c;
    return stmt_cached(sc, &sc->more[slot], sql);
}

/* Binds by a format: s string, i int64, d double, b bool. */
sqlite3_stmt *sqlite_cached_bind(struct store_conn *c, int slot, const char *sql, const char *fmt,
                                 ...)
{
    sqlite3_stmt *st = sqlite_cached(c, slot, sql);
    if (!st)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    sqlite_bind(st, fmt, ap);
    va_end(ap);
    return st;
}

void sqlite_bind(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    for (int i = 1; *fmt; fmt++, i++) {
        switch (*fmt) {
        case 's':
            sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
            break;
        case 'i':
            sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 'd':
            sqlite3_bind_double(st, i, va_arg(ap, double));
            break;
        case 'b':
            sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        }
    }
}

static sqlite3_stmt *sqlite_prepare(struct store_conn *c, enum stmt_id id, const char *fmt, ...)
{
    sqlite3_stmt *st = sqlite_stmt(c, id);
    if (!st)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    sqlite_bind(st, fmt, ap);
    va_end(ap);
    return st;
}

/* Runs a statement that returns no rows. */
int sqlite_run(struct store_conn *c, sqlite3_stmt *st)
{
    if (!st)
        return STORE_ERROR;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(sqlite_conn_db(c)) > 0 ? STORE_OK : STORE_NOT_FOUND;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return STORE_EXISTS;
    log_error("store: %s", sqlite3_errmsg(sqlite_conn_db(c)));
    return STORE_ERROR;
}

void col_text(sqlite3_stmt *st, int col, char *out, size_t outlen)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    core_strlcpy(out, t ? (const char *)t : "", outlen);
}

/* Steps through the rows; each is read into a scratch record and handed to emit. */
int sqlite_rows(struct store_conn *c, sqlite3_stmt *st, row_reader read, void *scratch,
                void (*emit)(const void *rec, void *ctx), void *ctx)
{
    if (!st)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read(st, scratch);
        emit(scratch, ctx);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        log_error("store: %s", sqlite3_errmsg(sqlite_conn_db(c)));
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* Reads the first row into out: STORE_NOT_FOUND when there is none. */
int sqlite_one(struct store_conn *c, sqlite3_stmt *st, row_reader read, void *out)
{
    if (!st)
        return STORE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        read(st, out);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    if (rc == SQLITE_DONE)
        return STORE_NOT_FOUND;
    log_error("store: %s", sqlite3_errmsg(sqlite_conn_db(c)));
    return STORE_ERROR;
}

/* ---- connections and schema ---- */

static void sqlite_conn_close(struct store_conn *c)
{
    struct sqlite_conn *sc = (struct sqlite_conn *)c;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(sc->stmts[i]);
    for (int i = 0; i < SQLITE_MORE_STMTS; i++)
        sqlite3_finalize(sc->more[i]);
    sqlite3_close(sc->db);
    free(sc);
}

static int sqlite_wal_committed(void *ctx, sqlite3 *db, const char *name, int frames)
{
    (void)db, (void)name;
    ((struct sqlite_conn *)ctx)->wal_frames = frames;
    return SQLITE_OK;
}

static struct store_conn *sqlite_conn_open(struct store *s)
{
    const struct sesame_config *cfg = store_config(s);
    struct sqlite_conn *sc = calloc(1, sizeof *sc);
    if (!sc)
        return NULL;
    sc->base.be = &store_sqlite_backend;
    sc->base.store = s;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* Frame headers join their pages (store_sqlite_walbuf.c) where every commit syncs. */
    const char *vfs = cfg->store_fsync ? sqlite_walbuf_vfs() : NULL;
    if (sqlite3_open_v2(cfg->store_path, &sc->db, flags, vfs) != SQLITE_OK) {
        log_error("store: cannot open %s: %s", cfg->store_path, sqlite3_errmsg(sc->db));
        sqlite_conn_close(&sc->base);
        return NULL;
    }
    /* Other processes (the admin command) write too: wait for their locks, not fail. */
    sqlite3_busy_timeout(sc->db, 10000);
    const char *sync = cfg->store_fsync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
    /* Checkpoints run outside commits (sqlite_maintain, sqlite_settle), never inside one.
     * Statement journals stay in memory (each write inside a savepoint opened a file in
     * /var/tmp). Debian builds SQLite to zero every freed page: FAST zeroes what is freed
     * inside a page but leaves freed overflow pages, a released message's body, for the
     * next message to overwrite, which halves what a released message writes. */
    if (sqlite_exec(&sc->base, "PRAGMA journal_mode=WAL") || sqlite_exec(&sc->base, sync) ||
        sqlite_exec(&sc->base, "PRAGMA wal_autocheckpoint=0") ||
        sqlite_exec(&sc->base, "PRAGMA temp_store=MEMORY") ||
        sqlite_exec(&sc->base, "PRAGMA secure_delete=FAST") ||
        sqlite_exec(&sc->base, "PRAGMA foreign_keys=ON")) {
        sqlite_conn_close(&sc->base);
        return NULL;
    }
    sqlite3_wal_hook(sc->db, sqlite_wal_committed, sc); /* after the pragma, which clears it */
    return &sc->base;
}

static int sqlite_schema_version(struct store_conn *c)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(sqlite_conn_db(c), "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int sqlite_exec_stmt(struct store_conn *c, enum stmt_id id)
{
    sqlite3_stmt *st = sqlite_stmt(c, id);
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    if (st)
        sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    log_error("store: %s: %s", stmt_sql[id], sqlite3_errmsg(sqlite_conn_db(c)));
    return STORE_ERROR;
}

static int sqlite_begin(struct store_conn *c)
{
    /* IMMEDIATE takes the write lock now, so a busy wait happens here and not at commit. */
    return sqlite_exec_stmt(c, ST_BEGIN);
}

static int sqlite_commit(struct store_conn *c)
{
    return sqlite_exec_stmt(c, ST_COMMIT);
}

static void sqlite_rollback(struct store_conn *c)
{
    if (!sqlite3_get_autocommit(sqlite_conn_db(c)))
        sqlite_exec(c, "ROLLBACK");
}

static int sqlite_read_begin(struct store_conn *c)
{
    return sqlite_exec_stmt(c, ST_READ_BEGIN);
}

static void sqlite_read_end(struct store_conn *c)
{
    /* A read transaction left open would pin its snapshot (and the WAL) for good. */
    if (!sqlite3_get_autocommit(sqlite_conn_db(c)) && sqlite_exec_stmt(c, ST_COMMIT) != STORE_OK)
        sqlite_rollback(c);
}

static int sqlite_savepoint(struct store_conn *c)
{
    return sqlite_exec_stmt(c, ST_SAVEPOINT);
}

static void sqlite_savepoint_rollback(struct store_conn *c)
{
    sqlite_exec_stmt(c, ST_SAVEPOINT_ROLLBACK);
}

static int sqlite_savepoint_release(struct store_conn *c)
{
    return sqlite_exec_stmt(c, ST_SAVEPOINT_RELEASE);
}

static bool sqlite_in_transaction(struct store_conn *c)
{
    return !sqlite3_get_autocommit(sqlite_conn_db(c));
}

static void sqlite_maintain(struct store_conn *c)
{
    int wal_frames = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(sqlite_conn_db(c), NULL, SQLITE_CHECKPOINT_PASSIVE,
                                       &wal_frames, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("store: checkpoint: %s", sqlite3_errmsg(sqlite_conn_db(c)));
}

/* The WAL starts over from its beginning only when a write begins with every frame already
 * checkpointed. The maintenance thread's checkpoints never get there while the writer keeps
 * committing, and a WAL that only grows makes every commit write to fresh, zeroed page
 * cache (a third of the writer's CPU at 3,000 messages/s). So once the WAL passes
 * WAL_RESTART_FRAMES (16 MB), the writer checkpoints itself between batches, after
 * answering the last one. Copying is the bulk of a checkpoint: each time the WAL grows by
 * WAL_EARLY_FRAMES the maintenance thread is woken to copy what is there meanwhile, on
 * the other core, so that the writer's own checkpoint finds little left. */
#define WAL_RESTART_FRAMES 4096
#define WAL_EARLY_FRAMES 1024

static bool sqlite_settle(struct store_conn *c)
{
    struct sqlite_conn *sc = (struct sqlite_conn *)c;
    if (sc->wal_frames >= WAL_RESTART_FRAMES) {
        sc->wal_frames = sc->wal_woken = 0;
        sqlite_maintain(c);
        return false;
    }
    int step = sc->wal_frames / WAL_EARLY_FRAMES;
    bool wake = step > sc->wal_woken;
    sc->wal_woken = step;
    return wake;
}

static int sqlite_migrate(struct store_conn *c, char *err, size_t errlen)
{
    if (sqlite_begin(c) != STORE_OK)
        return snprintf(err, errlen, "cannot lock the store for migration"), STORE_ERROR;
    int v = sqlite_schema_version(c);
    if (v > MIGRATION_COUNT) {
        sqlite_rollback(c);
        return snprintf(err, errlen, "store schema version %d is newer than this build (%d)", v,
                        MIGRATION_COUNT),
               STORE_ERROR;
    }
    for (; v < MIGRATION_COUNT; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", v + 1);
        if (sqlite_exec(c, migrations[v]) || sqlite_exec(c, pragma)) {
            sqlite_rollback(c);
            return snprintf(err, errlen, "migration %d failed", v + 1), STORE_ERROR;
        }
    }
    return sqlite_commit(c);
}

static int sqlite_open(struct store *s, char *err, size_t errlen)
{
    /* SQLite's memory statistics take a global mutex on every allocation of every thread;
     * nothing reads them. Only possible before SQLite's first use, so a no-op after. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    struct store_conn *c = sqlite_conn_open(s);
    if (!c)
        return snprintf(err, errlen, "cannot open SQLite store %s", store_config(s)->store_path),
               STORE_ERROR;
    int rc = sqlite_migrate(c, err, errlen);
    sqlite_conn_close(c);
    return rc;
}

/* ---- accounts ---- */

static void read_account(sqlite3_stmt *st, void *out)
{
    struct store_account *a = out;
    col_text(st, 0, a->id, sizeof a->id);
    col_text(st, 1, a->name, sizeof a->name);
    col_text(st, 2, a->contact, sizeof a->contact);
    a->suspended = sqlite3_column_int(st, 3);
    a->disabled = sqlite3_column_int(st, 4);
    a->created_ms = sqlite3_column_int64(st, 5);
}

static int sqlite_account_insert(struct store_conn *c, const struct store_account *a)
{
    return sqlite_run(c, sqlite_prepare(c, ST_ACCOUNT_INSERT, "sssbbi", a->id, a->name, a->contact,
                                        a->suspended, a->disabled, a->created_ms));
}

static int sqlite_account_update(struct store_conn *c, const struct store_account *a)
{
    return sqlite_run(c, sqlite_prepare(c, ST_ACCOUNT_UPDATE, "sssbb", a->id, a->name, a->contact,
                                        a->suspended, a->disabled));
}

static int sqlite_account_get(struct store_conn *c, const char *id, struct store_account *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_ACCOUNT_GET, "s", id), read_account, out);
}

struct emit_ctx {
    void (*cb)(void);
    void *ctx;
};

static void emit_account(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_account_cb)e->cb)(rec, e->ctx);
}

static int sqlite_account_list(struct store_conn *c, int limit, store_account_cb cb, void *ctx)
{
    struct store_account a;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, sqlite_prepare(c, ST_ACCOUNT_LIST, "i", (int64_t)limit), read_account, &a,
                       emit_account, &e);
}

static void read_region(sqlite3_stmt *st, void *out)
{
    struct store_account_region *r = out;
    r->production = sqlite3_column_int(st, 0);
    r->max_24h = sqlite3_column_double(st, 1);
    r->max_rate = sqlite3_column_double(st, 2);
}

static int sqlite_account_region_get(struct store_conn *c, const char *account_id,
                                     const char *region, struct store_account_region *out)
{
    core_strlcpy(out->account_id, account_id, sizeof out->account_id);
    core_strlcpy(out->region, region, sizeof out->region);
    return sqlite_one(c, sqlite_prepare(c, ST_REGION_GET, "ss", account_id, region), read_region,
                      out);
}

static int sqlite_account_region_put(struct store_conn *c, const struct store_account_region *r)
{
    return sqlite_run(c, sqlite_prepare(c, ST_REGION_PUT, "ssbdd", r->account_id, r->region,
                                        r->production, r->max_24h, r->max_rate));
}

/* ---- keys ---- */

static void read_key(sqlite3_stmt *st, void *out)
{
    struct store_key *k = out;
    col_text(st, 0, k->key_id, sizeof k->key_id);
    col_text(st, 1, k->secret, sizeof k->secret);
    col_text(st, 2, k->account_id, sizeof k->account_id);
    col_text(st, 3, k->user, sizeof k->user);
    k->active = sqlite3_column_int(st, 4);
    k->created_ms = sqlite3_column_int64(st, 5);
}

static int sqlite_key_insert(struct store_conn *c, const struct store_key *k)
{
    return sqlite_run(c, sqlite_prepare(c, ST_KEY_INSERT, "ssssbi", k->key_id, k->secret,
                                        k->account_id, k->user, k->active, k->created_ms));
}

static int sqlite_key_get(struct store_conn *c, const char *key_id, struct store_key *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_KEY_GET, "s", key_id), read_key, out);
}

static void emit_key(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_key_cb)e->cb)(rec, e->ctx);
}

static int sqlite_key_list(struct store_conn *c, const char *account_id, store_key_cb cb, void *ctx)
{
    struct store_key k;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, sqlite_prepare(c, ST_KEY_LIST, "s", account_id), read_key, &k, emit_key,
                       &e);
}

static int sqlite_key_set_active(struct store_conn *c, const char *key_id, bool active)
{
    return sqlite_run(c, sqlite_prepare(c, ST_KEY_ACTIVE, "bs", active, key_id));
}

static int sqlite_key_delete(struct store_conn *c, const char *key_id)
{
    return sqlite_run(c, sqlite_prepare(c, ST_KEY_DELETE, "s", key_id));
}

static int sqlite_key_secrets(struct store_conn *c,
                              void (*cb)(const char *key_id, const char *secret, void *ctx),
                              void *ctx)
{
    sqlite3_stmt *st = sqlite_prepare(c, ST_KEY_SECRETS, "");
    if (!st)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1), ctx);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_OK : STORE_ERROR;
}

static int sqlite_key_secret_set(struct store_conn *c, const char *key_id, const char *secret)
{
    return sqlite_run(c, sqlite_prepare(c, ST_KEY_SECRET_SET, "ss", secret, key_id));
}

/* ---- users and policies ---- */

static void read_user(sqlite3_stmt *st, void *out)
{
    struct store_user *u = out;
    col_text(st, 0, u->account_id, sizeof u->account_id);
    col_text(st, 1, u->name, sizeof u->name);
    u->created_ms = sqlite3_column_int64(st, 2);
}

static int sqlite_user_insert(struct store_conn *c, const struct store_user *u)
{
    return sqlite_run(
        c, sqlite_prepare(c, ST_USER_INSERT, "ssi", u->account_id, u->name, u->created_ms));
}

static int sqlite_user_get(struct store_conn *c, const char *account_id, const char *name,
                           struct store_user *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_USER_GET, "ss", account_id, name), read_user, out);
}

static void emit_user(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_user_cb)e->cb)(rec, e->ctx);
}

static int sqlite_user_list(struct store_conn *c, const char *account_id, store_user_cb cb,
                            void *ctx)
{
    struct store_user u;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, sqlite_prepare(c, ST_USER_LIST, "s", account_id), read_user, &u,
                       emit_user, &e);
}

/* In the caller's transaction, so the user never half-exists. */
static int sqlite_user_delete(struct store_conn *c, const char *account_id, const char *name)
{
    int rc = sqlite_run(c, sqlite_prepare(c, ST_USER_DELETE, "ss", account_id, name));
    if (rc != STORE_OK)
        return rc;
    if (sqlite_run(c, sqlite_prepare(c, ST_USER_KEYS_DELETE, "ss", account_id, name)) < 0 ||
        sqlite_run(c, sqlite_prepare(c, ST_USER_POLICIES_DELETE, "ss", account_id, name)) < 0)
        return STORE_ERROR;
    return STORE_OK;
}

/* The document points into the row: valid until the statement steps again. */
static void read_policy(sqlite3_stmt *st, void *out)
{
    struct store_policy *p = out;
    col_text(st, 0, p->account_id, sizeof p->account_id);
    col_text(st, 1, p->user, sizeof p->user);
    col_text(st, 2, p->name, sizeof p->name);
    const unsigned char *doc = sqlite3_column_text(st, 3);
    p->document = doc ? (const char *)doc : "";
    p->updated_ms = sqlite3_column_int64(st, 4);
}

static int sqlite_policy_put(struct store_conn *c, const struct store_policy *p)
{
    return sqlite_run(c, sqlite_prepare(c, ST_POLICY_PUT, "ssssi", p->account_id, p->user, p->name,
                                        p->document, p->updated_ms));
}

static void read_policy_copy(sqlite3_stmt *st, void *out)
{
    struct store_policy *p = out;
    read_policy(st, p);
    p->document = strdup(p->document);
}

static int sqlite_policy_get(struct store_conn *c, const char *account_id, const char *user,
                             const char *name, struct store_policy *out)
{
    out->document = NULL;
    int rc = sqlite_one(c, sqlite_prepare(c, ST_POLICY_GET, "sss", account_id, user, name),
                        read_policy_copy, out);
    if (rc == STORE_OK && !out->document)
        return STORE_ERROR;
    return rc;
}

static void emit_policy(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_policy_cb)e->cb)(rec, e->ctx);
}

static int sqlite_policy_list(struct store_conn *c, const char *account_id, const char *user,
                              store_policy_cb cb, void *ctx)
{
    struct store_policy p;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    return sqlite_rows(c, sqlite_prepare(c, ST_POLICY_LIST, "ss", account_id, user), read_policy,
                       &p, emit_policy, &e);
}

static int sqlite_policy_delete(struct store_conn *c, const char *account_id, const char *user,
                                const char *name)
{
    return sqlite_run(c, sqlite_prepare(c, ST_POLICY_DELETE, "sss", account_id, user, name));
}

/* ---- suppression list ---- */

static void read_suppression(sqlite3_stmt *st, void *out)
{
    struct store_suppression *s = out;
    col_text(st, 0, s->account_id, sizeof s->account_id);
    col_text(st, 1, s->address, sizeof s->address);
    col_text(st, 2, s->reason, sizeof s->reason);
    s->created_ms = sqlite3_column_int64(st, 3);
}

static int sqlite_suppression_put(struct store_conn *c, const struct store_suppression *s)
{
    return sqlite_run(c, sqlite_prepare(c, ST_SUPPRESSION_PUT, "sssi", s->account_id, s->address,
                                        s->reason, s->created_ms));
}

static int sqlite_suppression_get(struct store_conn *c, const char *account_id, const char *address,
                                  struct store_suppression *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_SUPPRESSION_GET, "ss", account_id, address),
                      read_suppression, out);
}

static void emit_suppression(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_suppression_cb)e->cb)(rec, e->ctx);
}

static int sqlite_suppression_list(struct store_conn *c, const char *account_id, const char *after,
                                   int limit, store_suppression_cb cb, void *ctx)
{
    struct store_suppression s;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    return sqlite_rows(
        c, sqlite_prepare(c, ST_SUPPRESSION_LIST, "ssi", account_id, after, (int64_t)limit),
        read_suppression, &s, emit_suppression, &e);
}

static int sqlite_suppression_delete(struct store_conn *c, const char *account_id,
                                     const char *address)
{
    return sqlite_run(c, sqlite_prepare(c, ST_SUPPRESSION_DELETE, "ss", account_id, address));
}

/* ---- identities ---- */

static void read_identity(sqlite3_stmt *st, void *out)
{
    struct store_identity *i = out;
    col_text(st, 0, i->account_id, sizeof i->account_id);
    col_text(st, 1, i->region, sizeof i->region);
    col_text(st, 2, i->identity, sizeof i->identity);
    i->kind = sqlite3_column_int(st, 3);
    col_text(st, 4, i->status, sizeof i->status);
    col_text(st, 5, i->token, sizeof i->token);
    i->created_ms = sqlite3_column_int64(st, 6);
    i->status_ms = sqlite3_column_int64(st, 7);
    i->checked_ms = sqlite3_column_int64(st, 8);
    i->missing_since_ms = sqlite3_column_int64(st, 9);
    i->dkim_enabled = sqlite3_column_int(st, 10);
}

static int sqlite_identity_put(struct store_conn *c, const struct store_identity *i)
{
    return sqlite_run(c, sqlite_prepare(c, ST_IDENTITY_PUT, "sssissiiiib", i->account_id, i->region,
                                        i->identity, (int64_t)i->kind, i->status, i->token,
                                        i->created_ms, i->status_ms, i->checked_ms,
                                        i->missing_since_ms, (int)i->dkim_enabled));
}

static int sqlite_identity_get(struct store_conn *c, const char *account_id, const char *region,
                               const char *identity, struct store_identity *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_IDENTITY_GET, "sss", account_id, region, identity),
                      read_identity, out);
}

/* A deleted identity forgets its notification settings, and a domain its DKIM setup, as SES
 * does; in the caller's transaction, so neither is left behind its identity. */
static int sqlite_identity_delete(struct store_conn *c, const char *account_id, const char *region,
                                  const char *identity)
{
    int rc =
        sqlite_run(c, sqlite_prepare(c, ST_IDENTITY_DELETE, "sss", account_id, region, identity));
    if (rc == STORE_ERROR || sqlite_notify_delete(c, account_id, region, identity) == STORE_ERROR)
        return STORE_ERROR;
    if (strchr(identity, '@'))
        return rc;
    /* A domain's DKIM set goes with it, even one made without the identity (SES forgets
     * the setup), and its addresses' DkimEnabled with it: a new setup is enabled anew. */
    if (sqlite_dkim_delete(c, account_id, region, identity) == STORE_ERROR ||
        sqlite_dkim_disable_domain(c, account_id, region, identity) == STORE_ERROR)
        return STORE_ERROR;
    return rc;
}

static int sqlite_identity_set_dkim(struct store_conn *c, const char *account_id,
                                    const char *region, const char *identity, bool enabled)
{
    return sqlite_run(c, sqlite_prepare(c, ST_IDENTITY_SET_DKIM, "bsss", (int)enabled, account_id,
                                        region, identity));
}

static void read_count(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
}

static int sqlite_identity_count(struct store_conn *c, const char *account_id, const char *region,
                                 int64_t *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_IDENTITY_COUNT, "ss", account_id, region), read_count,
                      out);
}

static void emit_identity(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_identity_cb)e->cb)(rec, e->ctx);
}

static int sqlite_identity_list(struct store_conn *c, const char *account_id, const char *region,
                                int kind, const char *after, int limit, store_identity_cb cb,
                                void *ctx)
{
    struct store_identity i;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = sqlite_prepare(c, ST_IDENTITY_LIST, "ssisi", account_id, region,
                                      (int64_t)kind, after, (int64_t)limit);
    return sqlite_rows(c, st, read_identity, &i, emit_identity, &e);
}

static int sqlite_identity_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                                    store_identity_cb cb, void *ctx)
{
    struct store_identity i;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = sqlite_prepare(c, ST_IDENTITY_DUE, "ii", checked_before_ms, (int64_t)limit);
    return sqlite_rows(c, st, read_identity, &i, emit_identity, &e);
}

/* ---- email links ---- */

static void read_link(sqlite3_stmt *st, void *out)
{
    struct store_email_link *l = out;
    col_text(st, 0, l->token, sizeof l->token);
    col_text(st, 1, l->account_id, sizeof l->account_id);
    col_text(st, 2, l->region, sizeof l->region);
    col_text(st, 3, l->identity, sizeof l->identity);
    l->expires_ms = sqlite3_column_int64(st, 4);
}

static int sqlite_email_link_put(struct store_conn *c, const struct store_email_link *l)
{
    return sqlite_run(c, sqlite_prepare(c, ST_LINK_PUT, "ssssi", l->token, l->account_id, l->region,
                                        l->identity, l->expires_ms));
}

static int sqlite_email_link_take(struct store_conn *c, const char *token,
                                  struct store_email_link *out)
{
    int rc = sqlite_one(c, sqlite_prepare(c, ST_LINK_GET, "s", token), read_link, out);
    if (rc != STORE_OK)
        return rc;
    return sqlite_run(c, sqlite_prepare(c, ST_LINK_DELETE, "s", token));
}

static int sqlite_email_link_delete_for(struct store_conn *c, const char *account_id,
                                        const char *region, const char *identity)
{
    int rc =
        sqlite_run(c, sqlite_prepare(c, ST_LINK_DELETE_FOR, "sss", account_id, region, identity));
    return rc == STORE_ERROR ? rc : STORE_OK;
}

static int sqlite_email_link_find(struct store_conn *c, const char *account_id, const char *region,
                                  const char *identity, struct store_email_link *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_LINK_FIND, "sss", account_id, region, identity),
                      read_link, out);
}

/* ---- statistics ---- */

static void read_stat(sqlite3_stmt *st, void *out)
{
    struct store_stat_point *p = out;
    p->bucket_ms = sqlite3_column_int64(st, 0);
    p->delivery_attempts = sqlite3_column_int64(st, 1);
    p->bounces = sqlite3_column_int64(st, 2);
    p->complaints = sqlite3_column_int64(st, 3);
    p->rejects = sqlite3_column_int64(st, 4);
}

static void emit_stat(const void *rec, void *ctx)
{
    struct emit_ctx *e = ctx;
    ((store_stat_cb)e->cb)(rec, e->ctx);
}

static int sqlite_stats_list(struct store_conn *c, const char *account_id, const char *region,
                             int64_t since_ms, store_stat_cb cb, void *ctx)
{
    struct store_stat_point p;
    struct emit_ctx e = {(void (*)(void))cb, ctx};
    sqlite3_stmt *st = sqlite_prepare(c, ST_STATS_LIST, "ssi", account_id, region, since_ms);
    return sqlite_rows(c, st, read_stat, &p, emit_stat, &e);
}

static int sqlite_stats_add(struct store_conn *c, const char *account_id, const char *region,
                            const struct store_stat_point *d)
{
    int64_t bucket = d->bucket_ms - d->bucket_ms % (15 * 60 * 1000);
    return sqlite_run(c,
                      sqlite_prepare(c, ST_STATS_ADD, "ssiiiii", account_id, region, bucket,
                                     d->delivery_attempts, d->bounces, d->complaints, d->rejects));
}

static void read_double(sqlite3_stmt *st, void *out)
{
    *(double *)out = sqlite3_column_double(st, 0);
}

static int sqlite_sent_sum(struct store_conn *c, const char *account_id, const char *region,
                           int64_t since_ms, double *out)
{
    return sqlite_one(c, sqlite_prepare(c, ST_SENT_SUM, "ssi", account_id, region, since_ms),
                      read_double, out);
}

static int sqlite_sent_add(struct store_conn *c, const char *account_id, const char *region,
                           int64_t at_ms, double recipients)
{
    int64_t minute = at_ms - at_ms % 60000;
    return sqlite_run(
        c, sqlite_prepare(c, ST_SENT_ADD, "ssid", account_id, region, minute, recipients));
}

struct sent_emit {
    store_sent_cb cb;
    void *ctx;
};

static void read_sent(sqlite3_stmt *st, void *out)
{
    int64_t *minute = out;
    minute[0] = sqlite3_column_int64(st, 0);
    double d = sqlite3_column_double(st, 1);
    memcpy(&minute[1], &d, sizeof d);
}

static void emit_sent(const void *rec, void *ctx)
{
    const int64_t *minute = rec;
    double d;
    memcpy(&d, &minute[1], sizeof d);
    struct sent_emit *e = ctx;
    e->cb(minute[0], d, e->ctx);
}

static int sqlite_sent_list(struct store_conn *c, const char *account_id, const char *region,
                            int64_t since_ms, store_sent_cb cb, void *ctx)
{
    int64_t row[2];
    struct sent_emit e = {cb, ctx};
    sqlite3_stmt *st = sqlite_prepare(c, ST_SENT_LIST, "ssi", account_id, region, since_ms);
    return sqlite_rows(c, st, read_sent, row, emit_sent, &e);
}

/* ---- messages ---- */

static int sqlite_message_insert(struct store_conn *c, const struct store_message *m,
                                 const char *const *recipients, int recipient_count)
{
    sqlite3_stmt *st = sqlite_prepare(c, ST_MESSAGE_INSERT, "sssssi", m->id, m->account_id,
                                      m->region, m->source, m->identity, m->created_ms);
    if (!st)
        return STORE_ERROR;
    sqlite3_bind_blob64(st, 7, m->data, m->data_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, m->meta, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 9, m->captured);
    int rc = sqlite_run(c, st);
    for (int i = 0; rc == STORE_OK && i < recipient_count; i++)
        rc = sqlite_run(
            c, sqlite_prepare(c, ST_RECIPIENT_INSERT, "siss", m->id, (int64_t)i, recipients[i],
                              (m->queued ? m->queued[i] : !m->captured) ? "queued" : "captured"));
    return rc;
}

struct capture_emit {
    store_capture_cb cb;
    void *ctx;
};

struct capture_row {
    const char *meta, *data;
    size_t data_len;
};

static void read_capture(sqlite3_stmt *st, void *out)
{
    struct capture_row *r = out;
    r->meta = (const char *)sqlite3_column_text(st, 0);
    r->data = sqlite3_column_blob(st, 1);
    r->data_len = (size_t)sqlite3_column_bytes(st, 1);
}

static void emit_capture(const void *rec, void *ctx)
{
    const struct capture_row *r = rec;
    struct capture_emit *e = ctx;
    e->cb(r->meta, r->data, r->data_len, e->ctx);
}

static int sqlite_capture_list(struct store_conn *c, const char *id, store_capture_cb cb, void *ctx)
{
    sqlite3_stmt *st = sqlite_stmt(c, ST_CAPTURE_LIST);
    if (!st)
        return STORE_ERROR;
    if (id)
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    struct capture_row row;
    struct capture_emit e = {cb, ctx};
    return sqlite_rows(c, st, read_capture, &row, emit_capture, &e);
}

static int sqlite_capture_clear(struct store_conn *c, const char *id)
{
    int rc = id ? sqlite_run(c, sqlite_prepare(c, ST_CAPTURE_CLEAR_ONE, "s", id))
                : sqlite_run(c, sqlite_stmt(c, ST_CAPTURE_CLEAR_ALL));
    if (rc == STORE_ERROR)
        return rc;
    int rc2 = sqlite_run(c, sqlite_stmt(c, ST_CAPTURE_RECIPIENTS_CLEAR));
    return rc2 == STORE_ERROR ? rc2 : STORE_OK;
}

const struct store_backend store_sqlite_backend = {
    .name = "sqlite",
    .open = sqlite_open,
    .conn_open = sqlite_conn_open,
    .conn_close = sqlite_conn_close,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .savepoint = sqlite_savepoint,
    .savepoint_rollback = sqlite_savepoint_rollback,
    .savepoint_release = sqlite_savepoint_release,
    .read_begin = sqlite_read_begin,
    .read_end = sqlite_read_end,
    .maintain = sqlite_maintain,
    .settle = sqlite_settle,
    .in_transaction = sqlite_in_transaction,
    .account_insert = sqlite_account_insert,
    .account_update = sqlite_account_update,
    .account_get = sqlite_account_get,
    .account_list = sqlite_account_list,
    .account_region_get = sqlite_account_region_get,
    .account_region_put = sqlite_account_region_put,
    .key_insert = sqlite_key_insert,
    .key_get = sqlite_key_get,
    .key_list = sqlite_key_list,
    .key_set_active = sqlite_key_set_active,
    .key_delete = sqlite_key_delete,
    .key_secrets = sqlite_key_secrets,
    .key_secret_set = sqlite_key_secret_set,
    .user_insert = sqlite_user_insert,
    .user_get = sqlite_user_get,
    .user_list = sqlite_user_list,
    .user_delete = sqlite_user_delete,
    .policy_put = sqlite_policy_put,
    .policy_get = sqlite_policy_get,
    .policy_list = sqlite_policy_list,
    .policy_delete = sqlite_policy_delete,
    .suppression_put = sqlite_suppression_put,
    .suppression_get = sqlite_suppression_get,
    .suppression_list = sqlite_suppression_list,
    .suppression_delete = sqlite_suppression_delete,
    .identity_put = sqlite_identity_put,
    .identity_get = sqlite_identity_get,
    .identity_delete = sqlite_identity_delete,
    .identity_count = sqlite_identity_count,
    .identity_list = sqlite_identity_list,
    .identity_list_due = sqlite_identity_list_due,
    .identity_set_dkim = sqlite_identity_set_dkim,
    .email_link_put = sqlite_email_link_put,
    .email_link_take = sqlite_email_link_take,
    .email_link_delete_for = sqlite_email_link_delete_for,
    .email_link_find = sqlite_email_link_find,
    .stats_list = sqlite_stats_list,
    .stats_add = sqlite_stats_add,
    .sent_sum = sqlite_sent_sum,
    .sent_add = sqlite_sent_add,
    .sent_list = sqlite_sent_list,
    .message_insert = sqlite_message_insert,
    .capture_list = sqlite_capture_list,
    .capture_clear = sqlite_capture_clear,
    SQLITE_QUEUE_FUNCTIONS,
    SQLITE_DKIM_FUNCTIONS,
    SQLITE_NOTIFY_FUNCTIONS,
};
