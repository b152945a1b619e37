/* The SQLite store: migrations, records, and the group-commit writer. */
#include "store/store.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static struct store *open_store(char *dir)
{
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    struct store *s = NULL;
    char err[256];
    CHECK(store_open(&cfg, &s, err, sizeof err) == STORE_OK);
    return s;
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
        store_close(s);
        /* Reopening runs no migration twice. */
        s = open_store(dir);
        store_close(s);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return UNIT_END();
}
