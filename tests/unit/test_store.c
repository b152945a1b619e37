/* The SQLite store: migrations, records, and the group-commit writer. */
#include "store/store.h"
#include "store/store_sqlite.h"
#include "unit.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static struct store *open_store(char *dir)
{
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    struct store *s = NULL;
    char err[256];
    int rc = store_open(&cfg, &s, err, sizeof err);
    CHECK(rc == STORE_OK);
    if (rc != STORE_OK)
        fprintf(stderr, "store_open: %s\n", err);
    return s;
}

/* The raw secret column, as a copy of the database shows it. */
static void raw_secret(const char *dir, const char *key_id, char *out, size_t outlen)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = 0;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return;
    if (sqlite3_prepare_v2(db, "SELECT secret FROM access_keys WHERE key_id=?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

/* The first column of the first row of sql, as a copy of the database shows it. */
static void raw_text(const char *dir, const char *sql, char *out, size_t outlen)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    out[0] = 0;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

static void raw_exec(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test.db", dir);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, 0, 0, 0) == SQLITE_OK);
    sqlite3_close(db);
}

static void test_sealed_secrets(char *dir)
{
    struct store *s = open_store(dir);
    struct store_conn *c = store_conn_open(s);
    struct store_key k = {.key_id = "AKIATESTSEALED000001",
                          .secret = "0123456789abcdefghij0123456789ABCDEFGHIJ",
                          .account_id = "111122223333",
                          .user = "u",
                          .active = true},
                     got;
    CHECK(store_key_insert(c, &k) == STORE_OK);
    CHECK(store_key_get(c, k.key_id, &got) == STORE_OK && !strcmp(got.secret, k.secret) &&
          got.active);
    char raw[256];
    raw_secret(dir, k.key_id, raw, sizeof raw);
    CHECK(!strncmp(raw, "v1:", 3) && !strstr(raw, k.secret));
    store_conn_close(c);
    store_close(s);
    char key_path[256], backup[300], cmd[700];
    snprintf(key_path, sizeof key_path, "%s/test.db.key", dir);
    struct stat st;
    CHECK(stat(key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* A lost key file is never replaced while sealed secrets exist. */
    snprintf(backup, sizeof backup, "%s.bak", key_path);
    CHECK(rename(key_path, backup) == 0);
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    char err[256] = "";
    struct store *none = NULL;
    CHECK(store_open(&cfg, &none, err, sizeof err) == STORE_ERROR && !none &&
          strstr(err, "test.db.key"));
    CHECK(access(key_path, F_OK) != 0);
    /* Readable by others: refused. */
    CHECK(rename(backup, key_path) == 0 && chmod(key_path, 0644) == 0);
    CHECK(store_open(&cfg, &none, err, sizeof err) == STORE_ERROR && strstr(err, "chmod 600"));
    CHECK(chmod(key_path, 0600) == 0);
    /* A row moved to another key id does not open: the key is unusable, not exposed. */
    raw_exec(dir, "INSERT INTO access_keys SELECT 'AKIATESTSEALED000002', secret, account_id,"
                  " user, active, created_ms FROM access_keys WHERE key_id='AKIATESTSEALED000001'");
    s = open_store(dir);
    c = store_conn_open(s);
    CHECK(store_key_get(c, "AKIATESTSEALED000002", &got) == STORE_OK && !got.active &&
          !got.secret[0]);
    store_conn_close(c);
    store_close(s);
    /* A store from before sealing: clear secrets are sealed at start, a key file made. */
    raw_exec(dir, "UPDATE access_keys SET secret='clearsecret0000000000000000000000000000'"
                  " WHERE key_id='AKIATESTSEALED000002'");
    raw_exec(dir, "DELETE FROM access_keys WHERE key_id != 'AKIATESTSEALED000002'");
    CHECK(unlink(key_path) == 0);
    s = open_store(dir);
    c = store_conn_open(s);
    CHECK(store_key_get(c, "AKIATESTSEALED000002", &got) == STORE_OK &&
          !strcmp(got.secret, "clearsecret0000000000000000000000000000"));
    raw_secret(dir, "AKIATESTSEALED000002", raw, sizeof raw);
    CHECK(!strncmp(raw, "v1:", 3));
    CHECK(store_key_delete(c, "AKIATESTSEALED000002") == STORE_OK);
    store_conn_close(c);
    store_close(s);
    snprintf(cmd, sizeof cmd, "rm -f %s", backup);
    CHECK(system(cmd) == 0);
}

static void count_policy(const struct store_policy *p, void *ctx)
{
    (*(int *)ctx)++;
    CHECK(strstr(p->document, "Statement") != NULL);
}

static void test_users_and_policies(struct store *s)
{
    struct store_conn *c = store_conn_open(s);
    struct store_user u = {.account_id = "111122223333", .name = "alice", .created_ms = 1}, gu;
    CHECK(store_user_insert(c, &u) == STORE_OK);
    CHECK(store_user_insert(c, &u) == STORE_EXISTS);
    CHECK(store_user_get(c, "111122223333", "alice", &gu) == STORE_OK);
    CHECK(store_user_get(c, "999922223333", "alice", &gu) == STORE_NOT_FOUND);
    struct store_policy p = {.account_id = "111122223333",
                             .user = "alice",
                             .name = "send",
                             .document = "{\"Statement\": []}"};
    CHECK(store_policy_put(c, &p) == STORE_OK);
    struct store_policy gp;
    CHECK(store_policy_get(c, "111122223333", "alice", "send", &gp) == STORE_OK &&
          !strcmp(gp.document, p.document));
    free((char *)gp.document);
    struct store_key k = {.key_id = "AKIAUSERKEY000000001",
                          .secret = "s",
                          .account_id = "111122223333",
                          .user = "alice",
                          .active = true};
    CHECK(store_key_insert(c, &k) == STORE_OK);
    int n = 0;
    CHECK(store_policy_list(c, "111122223333", "alice", count_policy, &n) == STORE_OK && n == 1);
    uint64_t before = store_generation(STORE_TOPIC_ACCESS);
    CHECK(store_user_delete(c, "111122223333", "alice") == STORE_OK);
    CHECK(store_generation(STORE_TOPIC_ACCESS) != before);
    struct store_key gk;
    CHECK(store_key_get(c, k.key_id, &gk) == STORE_NOT_FOUND);
    n = 0;
    CHECK(store_policy_list(c, "111122223333", "alice", count_policy, &n) == STORE_OK && n == 0);
    struct store_suppression sup = {.account_id = "111122223333",
                                    .address = "a@example.com",
                                    .reason = "BOUNCE"},
                             gs;
    CHECK(store_suppression_put(c, &sup) == STORE_OK);
    CHECK(store_suppression_get(c, "111122223333", "a@example.com", &gs) == STORE_OK &&
          !strcmp(gs.reason, "BOUNCE"));
    CHECK(store_suppression_get(c, "999922223333", "a@example.com", &gs) == STORE_NOT_FOUND);
    CHECK(store_suppression_delete(c, "111122223333", "a@example.com") == STORE_OK);
    store_conn_close(c);
}

static void test_records(struct store *s)
{
    struct store_conn *c = store_conn_open(s);
    CHECK(store_schema_version(c) >= 1);
    struct store_account a = {.id = "111122223333", .name = "t", .created_ms = 1}, got;
    CHECK(store_account_first(c, &got) == STORE_NOT_FOUND);
    CHECK(store_account_insert(c, &a) == STORE_OK);
    CHECK(store_account_insert(c, &a) == STORE_EXISTS);
    a.suspended = true;
    CHECK(store_account_update(c, &a) == STORE_OK);
    CHECK(store_account_get(c, "111122223333", &got) == STORE_OK && got.suspended);
    CHECK(store_account_first(c, &got) == STORE_OK && !strcmp(got.id, a.id));

    struct store_identity id = {.account_id = "111122223333",
                                .region = "us-east-1",
                                .identity = "example.com",
                                .kind = IDENTITY_DOMAIN,
                                .status = "Pending",
                                .token = "tok"};
    CHECK(store_identity_put(c, &id) == STORE_OK);
    struct store_identity other = id;
    strcpy(other.region, "eu-west-1");
    strcpy(other.identity, "b@example.com");
    other.kind = IDENTITY_EMAIL;
    CHECK(store_identity_put(c, &other) == STORE_OK);
    int64_t count = 0;
    CHECK(store_identity_count(c, a.id, "us-east-1", &count) == STORE_OK && count == 1);
    struct store_identity gi;
    CHECK(store_identity_get(c, a.id, "eu-west-1", "example.com", &gi) == STORE_NOT_FOUND);
    CHECK(store_identity_get(c, a.id, "us-east-1", "example.com", &gi) == STORE_OK &&
          !strcmp(gi.token, "tok"));
    CHECK(store_identity_delete(c, a.id, "us-east-1", "example.com") == STORE_OK);
    CHECK(store_identity_delete(c, a.id, "us-east-1", "example.com") == STORE_NOT_FOUND);

    struct store_email_link l = {.token = "abc",
                                 .account_id = "111122223333",
                                 .region = "eu-west-1",
                                 .identity = "b@example.com",
                                 .expires_ms = 5};
    struct store_email_link gl;
    CHECK(store_email_link_put(c, &l) == STORE_OK);
    CHECK(store_email_link_take(c, "abc", &gl) == STORE_OK && gl.expires_ms == 5);
    CHECK(store_email_link_take(c, "abc", &gl) == STORE_NOT_FOUND);

    double sent = -1;
    CHECK(store_sent_add(c, a.id, "us-east-1", 1000, 3) == STORE_OK);
    CHECK(store_sent_add(c, a.id, "us-east-1", 2000, 2) == STORE_OK);
    CHECK(store_sent_sum(c, a.id, "us-east-1", 0, &sent) == STORE_OK && sent == 5);
    CHECK(store_sent_sum(c, a.id, "eu-west-1", 0, &sent) == STORE_OK && sent == 0);
    store_conn_close(c);
}

/* ---- Easy DKIM ---- */

#define PEM1                                                                                       \
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"          \
    "-----END PRIVATE KEY-----\n"
#define PEM2 "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiC\n"

static struct store_dkim *dkim_new(const char *account, const char *region, const char *domain,
                                   const char *status, int64_t checked_ms)
{
    struct store_dkim *d = calloc(1, sizeof *d);
    snprintf(d->account_id, sizeof d->account_id, "%s", account);
    snprintf(d->region, sizeof d->region, "%s", region);
    snprintf(d->domain, sizeof d->domain, "%s", domain);
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        snprintf(d->tokens[i], sizeof d->tokens[i], "tok%d%.20s", i + 1, domain);
    strcpy(d->keys[0], PEM1);
    strcpy(d->keys[1], PEM2);
    snprintf(d->status, sizeof d->status, "%s", status);
    d->created_ms = 100;
    d->status_ms = 200;
    d->checked_ms = checked_ms;
    d->missing_since_ms = 0;
    return d;
}

struct dkim_seen {
    char names[8][400];
    int n;
    bool keys_clear;
};

static void dkim_collect(const struct store_dkim *d, void *ctx)
{
    struct dkim_seen *s = ctx;
    if (s->n < 8)
        snprintf(s->names[s->n], sizeof s->names[0], "%s/%s/%s", d->account_id, d->region,
                 d->domain);
    s->n++;
    s->keys_clear = s->keys_clear && !strcmp(d->keys[0], PEM1);
}

static void test_dkim_round_trip(struct store_conn *c, const char *dir)
{
    struct store_dkim *d = dkim_new("111122223333", "us-east-1", "Dkim.Example", "Pending", 5);
    struct store_dkim *got = calloc(1, sizeof *got);
    uint64_t before = store_generation(STORE_TOPIC_IDENTITIES);
    CHECK(store_dkim_put(c, d) == STORE_OK);
    CHECK(store_generation(STORE_TOPIC_IDENTITIES) != before);
    /* Domains are kept lower-case; keys come back in clear, the empty slot empty. */
    CHECK(store_dkim_get(c, "111122223333", "us-east-1", "dkim.example", got) == STORE_OK);
    CHECK_STR(got->domain, "dkim.example");
    CHECK_STR(got->keys[0], PEM1);
    CHECK_STR(got->keys[1], PEM2);
    CHECK_STR(got->keys[2], "");
    CHECK_STR(got->tokens[2], d->tokens[2]);
    CHECK_STR(got->status, "Pending");
    CHECK(got->created_ms == 100 && got->status_ms == 200 && got->checked_ms == 5 &&
          got->missing_since_ms == 0);
    CHECK(store_dkim_get(c, "111122223333", "eu-west-1", "dkim.example", got) == STORE_NOT_FOUND);
    /* Sealed at rest: the raw column is not the PEM; an empty slot stays "". */
    char raw[8192];
    raw_text(dir, "SELECT key1 FROM dkim WHERE domain='dkim.example'", raw, sizeof raw);
    CHECK(!strncmp(raw, "v1:", 3) && !strstr(raw, "PRIVATE KEY") && !strstr(raw, "MIIEvQ"));
    raw_text(dir, "SELECT key3 = '' FROM dkim WHERE domain='dkim.example'", raw, sizeof raw);
    CHECK_STR(raw, "1");
    /* A key moved to another slot does not open: the slot is empty, not exposed. */
    raw_exec(dir, "UPDATE dkim SET key3 = key1 WHERE domain='dkim.example'");
    CHECK(store_dkim_get(c, "111122223333", "us-east-1", "dkim.example", got) == STORE_OK &&
          !got->keys[2][0] && !strcmp(got->keys[0], PEM1));
    /* Replace: a 4 KB PEM fits; the status changes. */
    memset(d->keys[2], 'A', sizeof d->keys[2] - 1);
    d->keys[2][sizeof d->keys[2] - 1] = '\0';
    strcpy(d->status, "Success");
    d->missing_since_ms = 77;
    before = store_generation(STORE_TOPIC_IDENTITIES);
    CHECK(store_dkim_put(c, d) == STORE_OK);
    CHECK(store_generation(STORE_TOPIC_IDENTITIES) != before);
    CHECK(store_dkim_get(c, "111122223333", "us-east-1", "DKIM.example", got) == STORE_OK &&
          !strcmp(got->keys[2], d->keys[2]) && !strcmp(got->status, "Success") &&
          got->missing_since_ms == 77);
    raw_text(dir, "SELECT count(*) FROM dkim", raw, sizeof raw);
    CHECK_STR(raw, "1");
    before = store_generation(STORE_TOPIC_IDENTITIES);
    CHECK(store_dkim_delete(c, "111122223333", "us-east-1", "dkim.example") == STORE_OK);
    CHECK(store_generation(STORE_TOPIC_IDENTITIES) != before);
    CHECK(store_dkim_delete(c, "111122223333", "us-east-1", "dkim.example") == STORE_NOT_FOUND);
    CHECK(store_dkim_get(c, "111122223333", "us-east-1", "dkim.example", got) == STORE_NOT_FOUND);
    free(d);
    free(got);
}

static void dkim_put_new(struct store_conn *c, const char *account, const char *region,
                         const char *domain, const char *status, int64_t checked_ms)
{
    struct store_dkim *d = dkim_new(account, region, domain, status, checked_ms);
    CHECK(store_dkim_put(c, d) == STORE_OK);
    free(d);
}

static void test_dkim_lists(struct store_conn *c)
{
    dkim_put_new(c, "222233334444", "us-east-1", "b.example", "Success", 30);
    dkim_put_new(c, "111122223333", "us-east-1", "z.example", "Pending", 20);
    dkim_put_new(c, "111122223333", "eu-west-1", "a.example", "TemporaryFailure", 10);
    dkim_put_new(c, "111122223333", "us-east-1", "failed.example", "Failed", 1);
    dkim_put_new(c, "111122223333", "us-east-1", "late.example", "Pending", 500);
    dkim_put_new(c, STORE_DKIM_OPERATOR, "us-east-1", "operator.example", "Pending", 0);
    struct dkim_seen all = {.keys_clear = true};
    CHECK(store_dkim_list(c, NULL, dkim_collect, &all) == STORE_OK && all.n == 6 && all.keys_clear);
    CHECK_STR(all.names[0], "111122223333/eu-west-1/a.example");
    CHECK_STR(all.names[1], "111122223333/us-east-1/failed.example");
    CHECK_STR(all.names[3], "111122223333/us-east-1/z.example");
    CHECK_STR(all.names[4], "222233334444/us-east-1/b.example");
    CHECK_STR(all.names[5], STORE_DKIM_OPERATOR "/us-east-1/operator.example");
    struct dkim_seen one = {.keys_clear = true};
    CHECK(store_dkim_list(c, "222233334444", dkim_collect, &one) == STORE_OK && one.n == 1);
    /* Due: checked before 100, not Failed, not the operator's; oldest check first. */
    struct dkim_seen due = {.keys_clear = true};
    CHECK(store_dkim_list_due(c, 100, 10, dkim_collect, &due) == STORE_OK && due.n == 3 &&
          due.keys_clear);
    CHECK_STR(due.names[0], "111122223333/eu-west-1/a.example");
    CHECK_STR(due.names[1], "111122223333/us-east-1/z.example");
    CHECK_STR(due.names[2], "222233334444/us-east-1/b.example");
    struct dkim_seen limited = {.keys_clear = true};
    CHECK(store_dkim_list_due(c, 100, 2, dkim_collect, &limited) == STORE_OK && limited.n == 2);
    struct dkim_seen none = {.keys_clear = true};
    CHECK(store_dkim_list_due(c, 10, 10, dkim_collect, &none) == STORE_OK && none.n == 0);
}

static void test_dkim_identity(struct store_conn *c)
{
    struct store_identity id = {.account_id = "111122223333",
                                .region = "us-east-1",
                                .identity = "z.example",
                                .kind = IDENTITY_DOMAIN,
                                .status = "Success",
                                .token = "tok"},
                          gi;
    CHECK(store_identity_set_dkim(c, id.account_id, id.region, id.identity, true) ==
          STORE_NOT_FOUND);
    CHECK(store_identity_put(c, &id) == STORE_OK);
    CHECK(store_identity_get(c, id.account_id, id.region, id.identity, &gi) == STORE_OK &&
          !gi.dkim_enabled);
    uint64_t before = store_generation(STORE_TOPIC_IDENTITIES);
    CHECK(store_identity_set_dkim(c, id.account_id, id.region, id.identity, true) == STORE_OK);
    CHECK(store_generation(STORE_TOPIC_IDENTITIES) != before);
    CHECK(store_identity_get(c, id.account_id, id.region, id.identity, &gi) == STORE_OK &&
          gi.dkim_enabled && !strcmp(gi.status, "Success"));
    /* A put writes it: false, then true again. */
    CHECK(store_identity_put(c, &id) == STORE_OK);
    CHECK(store_identity_get(c, id.account_id, id.region, id.identity, &gi) == STORE_OK &&
          !gi.dkim_enabled);
    id.dkim_enabled = true;
    CHECK(store_identity_put(c, &id) == STORE_OK);
    CHECK(store_identity_get(c, id.account_id, id.region, id.identity, &gi) == STORE_OK &&
          gi.dkim_enabled);
    /* An email identity in the same region leaves the domain's set alone. */
    struct store_identity email = id;
    strcpy(email.identity, "a@z.example");
    email.kind = IDENTITY_EMAIL;
    CHECK(store_identity_put(c, &email) == STORE_OK);
    CHECK(store_identity_delete(c, id.account_id, id.region, email.identity) == STORE_OK);
    struct store_dkim *got = calloc(1, sizeof *got);
    CHECK(store_dkim_get(c, id.account_id, id.region, "z.example", got) == STORE_OK);
    /* Deleting the domain forgets its set, and only that one. */
    CHECK(store_identity_delete(c, id.account_id, id.region, id.identity) == STORE_OK);
    CHECK(store_dkim_get(c, id.account_id, id.region, "z.example", got) == STORE_NOT_FOUND);
    CHECK(store_dkim_get(c, id.account_id, "eu-west-1", "a.example", got) == STORE_OK);
    CHECK(store_identity_set_dkim(c, id.account_id, id.region, id.identity, false) ==
          STORE_NOT_FOUND);
    free(got);
}

static void dkim_delete_all(const struct store_dkim *d, void *ctx)
{
    int *n = ctx;
    (*n)++;
    (void)d;
}

static void test_dkim(struct store *s, const char *dir)
{
    struct store_conn *c = store_conn_open(s);
    test_dkim_round_trip(c, dir);
    test_dkim_lists(c);
    test_dkim_identity(c);
    /* Leaves no sealed DKIM key behind for test_sealed_secrets. */
    raw_exec(dir, "DELETE FROM dkim");
    int n = 0;
    CHECK(store_dkim_list(c, NULL, dkim_delete_all, &n) == STORE_OK && n == 0);
    store_conn_close(c);
}

/* A store of schema 4 (before Easy DKIM) keeps its identities; a lost key file is refused
 * once only DKIM keys are sealed. */
static void test_dkim_migration(const char *parent)
{
    char dir[256], cmd[300];
    snprintf(dir, sizeof dir, "%s/v4", parent);
    CHECK(mkdir(dir, 0700) == 0);
    struct store *s = open_store(dir);
    store_close(s);
    /* Migrations 6 to 8's objects go too: a schema-4 store has none of them. */
    raw_exec(dir, "DROP TABLE dkim; ALTER TABLE identities DROP COLUMN dkim_enabled;"
                  "DROP TABLE identity_notify; DROP TABLE topics; DROP TABLE subscriptions;"
                  "DROP TABLE outbox; DROP TABLE feedback_reports; DROP TABLE sns_confirmations;"
                  "ALTER TABLE events DROP COLUMN feedback_id;"
                  "ALTER TABLE events DROP COLUMN feedback_type;"
                  "ALTER TABLE events DROP COLUMN user_agent;"
                  "ALTER TABLE events DROP COLUMN arrival_ms;"
                  "ALTER TABLE events DROP COLUMN report_ms;"
                  "ALTER TABLE events DROP COLUMN final_recipient;"
                  "PRAGMA user_version=4;"
                  "INSERT INTO identities VALUES ('111122223333', 'us-east-1', 'old.example', 1,"
                  " 'Success', 'oldtok', 1, 2, 3, 0)");
    s = open_store(dir);
    struct store_conn *c = store_conn_open(s);
    CHECK(store_schema_version(c) == 8);
    struct store_identity gi;
    CHECK(store_identity_get(c, "111122223333", "us-east-1", "old.example", &gi) == STORE_OK &&
          !strcmp(gi.status, "Success") && !strcmp(gi.token, "oldtok") && gi.checked_ms == 3 &&
          !gi.dkim_enabled);
    CHECK(store_identity_set_dkim(c, "111122223333", "us-east-1", "old.example", true) == STORE_OK);
    dkim_put_new(c, "111122223333", "us-east-1", "old.example", "Pending", 0);
    store_conn_close(c);
    store_close(s);
    snprintf(cmd, sizeof cmd, "%s/test.db.key", dir);
    CHECK(unlink(cmd) == 0);
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    char err[256] = "";
    struct store *none = NULL;
    CHECK(store_open(&cfg, &none, err, sizeof err) == STORE_ERROR && !none &&
          strstr(err, "test.db.key"));
    CHECK(access(cmd, F_OK) != 0);
}

struct counter {
    pthread_mutex_t lock;
    int done, ok, failed;
};

struct key_write {
    struct store_key key;
    struct counter *counter;
};

static int write_key(struct store_conn *c, void *ctx)
{
    return store_key_insert(c, &((struct key_write *)ctx)->key);
}

static void write_done(int status, void *ctx)
{
    struct key_write *w = ctx;
    pthread_mutex_lock(&w->counter->lock);
    w->counter->done++;
    if (status == STORE_OK)
        w->counter->ok++;
    else
        w->counter->failed++;
    pthread_mutex_unlock(&w->counter->lock);
    free(w);
}

/* Many writes through the writer, one of them a duplicate that must fail alone. */
static void test_writer(struct store *s)
{
    struct counter counter = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    CHECK(store_writer_start(s) == STORE_OK);
    int total = 500;
    for (int i = 0; i <= total; i++) {
        struct key_write *w = calloc(1, sizeof *w);
        snprintf(w->key.key_id, sizeof w->key.key_id, "AKIATEST%06d", i == total ? 0 : i);
        strcpy(w->key.secret, "s");
        strcpy(w->key.account_id, "111122223333");
        w->key.active = true;
        w->counter = &counter;
        store_submit(s, NULL, write_key, write_done, w);
    }
    store_writer_stop(s);
    CHECK(counter.done == total + 1);
    CHECK(counter.ok == total);
    CHECK(counter.failed == 1);
    struct store_conn *c = store_conn_open(s);
    struct store_key k;
    CHECK(store_key_get(c, "AKIATEST000499", &k) == STORE_OK && k.active);
    store_conn_close(c);
}

static char wal_body[10240];

static int write_message(struct store_conn *c, void *ctx)
{
    struct key_write *w = ctx;
    struct store_message m = {.account_id = "111122223333",
                              .region = "us-east-1",
                              .source = "from@example.com",
                              .identity = "example.com",
                              .created_ms = 1000,
                              .data = wal_body,
                              .data_len = sizeof wal_body,
                              .meta = "{}"};
    snprintf(m.id, sizeof m.id, "wal-%s", w->key.key_id);
    const char *rcpts[] = {"to@example.net"};
    return store_message_insert(c, &m, rcpts, 1);
}

/* 60 MB of messages written back to back: the WAL starts over instead of growing with
 * them, although the writer never stops long enough for the maintenance thread's
 * checkpoints to finish the WAL. */
static void test_writer_wal_bounded(struct store *s, const char *dir)
{
    memset(wal_body, 'x', sizeof wal_body);
    struct counter counter = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
    struct store_conn *keep = store_conn_open(s); /* else the writer's last close ends the WAL */
    CHECK(store_writer_start(s) == STORE_OK);
    int total = 6000;
    for (int i = 0; i < total; i++) {
        struct key_write *w = calloc(1, sizeof *w);
        snprintf(w->key.key_id, sizeof w->key.key_id, "%06d", i);
        w->counter = &counter;
        store_submit(s, NULL, write_message, write_done, w);
    }
    store_writer_stop(s);
    CHECK(counter.ok == total);
    char path[256];
    snprintf(path, sizeof path, "%s/test.db-wal", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0);
    CHECK(st.st_size < 32 * 1024 * 1024);
    store_conn_close(keep);
}

/* One transaction larger than SQLite's page cache (2 MB): its pages spill into the WAL
 * before the commit and are read back from it by the writing connection; another
 * connection then reads every message whole, and so does a fresh store after a reopen. */
static void check_big_messages(struct store_conn *r, int total)
{
    for (int i = 0; i < total; i += 97) {
        char id[64], *data = NULL;
        size_t len = 0;
        snprintf(id, sizeof id, "wal-big%05d", i);
        CHECK(store_message_data(r, id, &data, &len) == STORE_OK);
        CHECK(len == sizeof wal_body && data && data[0] == 'a' + i % 26 &&
              data[len - 1] == 'a' + i % 26 && data[len / 2] == 'a' + i % 26);
        free(data);
    }
}

static void test_transaction_larger_than_cache(struct store *s, char *dir)
{
    int total = 1500;
    struct store_conn *c = store_conn_open(s), *r = store_conn_open(s);
    CHECK(store_begin(c) == STORE_OK);
    for (int i = 0; i < total; i++) {
        struct key_write w = {0};
        memset(wal_body, 'a' + i % 26, sizeof wal_body);
        snprintf(w.key.key_id, sizeof w.key.key_id, "big%05d", i);
        CHECK(write_message(c, &w) == STORE_OK);
    }
    check_big_messages(c, total); /* the first ones spilled: read back before the commit */
    CHECK(store_commit(c) == STORE_OK);
    check_big_messages(r, total);
    store_conn_close(r);
    store_conn_close(c);
    store_close(s);
    s = open_store(dir);
    r = store_conn_open(s);
    check_big_messages(r, total);
    store_conn_close(r);
    store_close(s);
}

static int message_leaves(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/test.db", dir);
    sqlite3 *db;
    sqlite3_stmt *st;
    int leaves = -1;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(db,
                             "SELECT count(*) FROM dbstat WHERE name='messages' AND"
                             " pagetype='leaf'",
                             -1, &st, NULL) == SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        leaves = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return leaves;
}

/* Released messages share leaf pages: each 10 KB message first has a leaf page to itself
 * (its first 2 KB of body make it the only row there), and releasing must let SQLite merge
 * them instead of leaving one 4 KB page per message for good (300 pages here). */
static void test_released_rows_share_pages(struct store *s, const char *dir)
{
    int total = 300, before = message_leaves(dir);
    struct store_conn *c = store_conn_open(s);
    CHECK(store_begin(c) == STORE_OK);
    for (int i = 0; i < total; i++) {
        struct key_write w = {0};
        snprintf(w.key.key_id, sizeof w.key.key_id, "rel%05d", i);
        CHECK(write_message(c, &w) == STORE_OK);
    }
    CHECK(store_commit(c) == STORE_OK);
    CHECK(store_begin(c) == STORE_OK); /* released later, as delivery does */
    for (int i = 0; i < total; i++) {
        char id[64];
        int dropped = 0;
        snprintf(id, sizeof id, "wal-rel%05d", i);
        CHECK(store_queue_drop(c, id, &dropped) == STORE_OK && dropped == 1); /* releases */
    }
    CHECK(store_commit(c) == STORE_OK);
    char *data = NULL, *meta = NULL;
    size_t len = 1;
    struct store_message kept;
    CHECK(store_message_data(c, "wal-rel00007", &data, &len) == STORE_OK && len == 0);
    CHECK(store_message_get(c, "wal-rel00007", &kept, &meta) == STORE_OK && !strcmp(meta, "{}") &&
          !strcmp(kept.identity, "example.com"));
    free(data);
    free(meta);
    store_conn_close(c);
    int grown = message_leaves(dir) - before;
    CHECK(before > 0 && grown < total / 4);
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    CHECK(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK);
    if (err)
        fprintf(stderr, "%s: %s\n", sql, err);
    sqlite3_free(err);
}

static int count_rows(sqlite3 *db, const char *table)
{
    char sql[128];
    sqlite3_stmt *st;
    int n = -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* store_sqlite_walbuf.c holds nothing past a frame: a transaction that spilled frames into
 * the WAL and rolled back leaves no bytes behind to be written later over the frames that
 * another writer commits at the same offsets (as a version that held whole transactions
 * did). */
static void test_walbuf_rollback_then_other_writer(const char *dir)
{
    char path[256];
    snprintf(path, sizeof path, "%s/walbuf.db", dir);
    sqlite3 *a, *b;
    CHECK(sqlite_walbuf_vfs() != NULL);
    CHECK(sqlite3_open_v2(path, &a, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          sqlite_walbuf_vfs()) == SQLITE_OK);
    exec_ok(a, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=10;"
               "CREATE TABLE t (x BLOB); CREATE TABLE u (n INTEGER);"
               "PRAGMA wal_checkpoint(TRUNCATE)");
    CHECK(sqlite3_open_v2(path, &b, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    exec_ok(a, "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 15)"
               " INSERT INTO t SELECT randomblob(4000) FROM c");
    exec_ok(a, "ROLLBACK"); /* its pages had spilled into the WAL (cache of 10 pages) */
    exec_ok(b, "BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30)"
               " INSERT INTO u SELECT i FROM c; COMMIT");
    CHECK(count_rows(a, "u") == 30); /* a reads the WAL again */
    sqlite3_close(a);
    CHECK(count_rows(b, "u") == 30);
    sqlite3_close(b);
}

/* Without powersafe overwrite and with pages smaller than a sector, SQLite pads a commit to
 * the sector and writes the part of the last frame past the sync point after the sync: 24
 * bytes of page when the boundary falls 24 bytes before a frame's end. That is no frame
 * header and must not be held (it was, and another connection then read a short frame). */
static void test_walbuf_padding_remainder(const char *dir)
{
    char uri[300];
    snprintf(uri, sizeof uri, "file:%s/walpad.db?psow=0", dir);
    sqlite3 *a, *b;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
    CHECK(sqlite3_open_v2(uri, &a, flags, sqlite_walbuf_vfs()) == SQLITE_OK);
    exec_ok(a, "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
               "CREATE TABLE t (x BLOB)");
    CHECK(sqlite3_open_v2(uri, &b, flags, NULL) == SQLITE_OK);
    sqlite3_stmt *ins, *sum;
    CHECK(sqlite3_prepare_v2(a, "INSERT INTO t VALUES (zeroblob(?))", -1, &ins, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(b, "SELECT count(*), total(length(x)) FROM t", -1, &sum, NULL) ==
          SQLITE_OK);
    bool ok = true;
    double bytes = 0;
    for (int i = 1; i <= 700 && ok; i++) { /* commits of 1 to 4 pages: every alignment */
        int len = 100 + (i * 733) % 3500;
        sqlite3_bind_int(ins, 1, len);
        ok = sqlite3_step(ins) == SQLITE_DONE;
        sqlite3_reset(ins);
        bytes += len;
        ok = ok && sqlite3_step(sum) == SQLITE_ROW && sqlite3_column_int(sum, 0) == i &&
             sqlite3_column_double(sum, 1) == bytes;
        sqlite3_reset(sum);
    }
    CHECK(ok);
    sqlite3_finalize(ins);
    sqlite3_finalize(sum);
    sqlite3_close(b);
    sqlite3_close(a);
}

int main(void)
{
    char dir[] = "/tmp/sesame-store-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct store *s = open_store(dir);
    if (s) {
        test_records(s);
        test_writer(s);
        test_writer_wal_bounded(s, dir);
        test_users_and_policies(s);
        test_dkim(s, dir);
        test_released_rows_share_pages(s, dir);
        test_walbuf_rollback_then_other_writer(dir);
        test_walbuf_padding_remainder(dir);
        test_transaction_larger_than_cache(s, dir); /* closes s */
        test_sealed_secrets(dir);
        /* Reopening runs no migration twice. */
        s = open_store(dir);
        store_close(s);
        test_dkim_migration(dir);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return UNIT_END();
}
