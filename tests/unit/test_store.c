/* The SQLite store: migrations, records, and the group-commit writer. */
#include "store/store.h"
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

int main(void)
{
    char dir[] = "/tmp/sesame-store-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct store *s = open_store(dir);
    if (s) {
        test_records(s);
        test_writer(s);
        test_users_and_policies(s);
        store_close(s);
        test_sealed_secrets(dir);
        /* Reopening runs no migration twice. */
        s = open_store(dir);
        store_close(s);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return UNIT_END();
}
