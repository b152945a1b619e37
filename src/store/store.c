/* The store interface: backend selection, dispatch, and the group-commit writer. */
#include "store/store_backend.h"
#include "store/store_secrets.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct store_op {
    store_write_fn write;
    store_done_fn done;
    void *ctx;
    struct event_base *base;
    int status;
    struct store_op *next;
};

struct store {
    struct sesame_config cfg;
    const struct store_backend *be;
    unsigned char secret_key[STORE_SECRET_KEY_LEN];
    /* writer */
    pthread_t writer;
    pthread_t maintainer;
    bool writer_running;
    bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t maintain_wake;
    struct store_op *head, *tail;
};

/* Bumped when this process writes, and again once the transaction holding the write has
 * ended: a cache that read the old row in between sees the second bump. */
static atomic_uint_fast64_t generations[STORE_TOPIC_COUNT];
static _Thread_local bool written[STORE_TOPIC_COUNT];

static int changed(enum store_change_topic topic, int rc)
{
    atomic_fetch_add(&generations[topic], 1);
    written[topic] = true;
    return rc;
}

static void generations_settled(void)
{
    for (int t = 0; t < STORE_TOPIC_COUNT; t++)
        if (written[t])
            atomic_fetch_add(&generations[t], 1);
    memset(written, 0, sizeof written);
}

uint64_t store_generation(enum store_change_topic topic)
{
    return atomic_load(&generations[topic]);
}

const struct sesame_config *store_config(const struct store *s)
{
    return &s->cfg;
}

/* ---- sealed secrets ---- */

struct secret_scan {
    int sealed;
    struct store_key *clear; /* rows written before secrets were sealed */
    int clear_count, clear_cap;
};

static void secret_scan_one(const char *key_id, const char *secret, void *arg)
{
    struct secret_scan *sc = arg;
    if (!strncmp(secret, "v1:", 3)) {
        sc->sealed++;
        return;
    }
    if (sc->clear_count == sc->clear_cap) {
        int cap = sc->clear_cap ? 2 * sc->clear_cap : 16;
        struct store_key *grown = realloc(sc->clear, (size_t)cap * sizeof *grown);
        if (!grown)
            return; /* left in clear until the next start */
        sc->clear = grown;
        sc->clear_cap = cap;
    }
    struct store_key *k = &sc->clear[sc->clear_count++];
    memset(k, 0, sizeof *k);
    core_strlcpy(k->key_id, key_id, sizeof k->key_id);
    core_strlcpy(k->secret, secret, sizeof k->secret);
}

/* DKIM keys were sealed from the start: they only count. */
static void secret_scan_dkim(const struct store_dkim_sealed *row, void *arg)
{
    struct secret_scan *sc = arg;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        sc->sealed += row->keys[i][0] != '\0';
}

/* Seals the secrets a store from before sealing (schema 2) still holds in clear. */
static int secrets_seal_clear(struct store *s, struct store_conn *c, struct secret_scan *sc)
{
    if (!sc->clear_count)
        return 0;
    bool ok = s->be->begin(c) == STORE_OK;
    for (int i = 0; ok && i < sc->clear_count; i++) {
        char sealed[sizeof sc->clear[i].secret];
        ok = store_secret_seal(s->secret_key, sc->clear[i].key_id, sc->clear[i].secret, sealed,
                               sizeof sealed) == 0 &&
             s->be->key_secret_set(c, sc->clear[i].key_id, sealed) == STORE_OK;
    }
    if (ok && s->be->commit(c) == STORE_OK) {
        log_info("store: sealed %d access key secrets kept in clear", sc->clear_count);
        return 0;
    }
    s->be->rollback(c);
    return -1;
}

/* Loads the secret key, creating it only while no secret is sealed yet (a new store, or
 * one from before sealing): a lost key must never be silently replaced. */
static int store_secrets_ready(struct store *s, char *err, size_t errlen)
{
    struct store_conn *c = store_conn_open(s);
    struct secret_scan sc = {0};
    int rc = -1;
    if (!c || s->be->key_secrets(c, secret_scan_one, &sc) != STORE_OK ||
        s->be->dkim_list(c, NULL, secret_scan_dkim, &sc) != STORE_OK)
        snprintf(err, errlen, "cannot read the access keys and DKIM keys");
    else if (store_secret_key_load(&s->cfg, sc.sealed == 0, s->secret_key, err, errlen) == 0 &&
             (rc = secrets_seal_clear(s, c, &sc)) != 0)
        snprintf(err, errlen, "cannot seal the access key secrets kept in clear");
    for (int i = 0; i < sc.clear_count; i++)
        OPENSSL_cleanse(sc.clear[i].secret, sizeof sc.clear[i].secret);
    free(sc.clear);
    store_conn_close(c);
    return rc;
}

int store_open(const struct sesame_config *cfg, struct store **out, char *err, size_t errlen)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return snprintf(err, errlen, "out of memory"), STORE_ERROR;
    s->cfg = *cfg;
    s->be = &store_sqlite_backend;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->maintain_wake, NULL);
    if (s->be->open(s, err, errlen) != STORE_OK || store_secrets_ready(s, err, errlen) != 0) {
        store_close(s);
        return STORE_ERROR;
    }
    *out = s;
    return STORE_OK;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    store_writer_stop(s);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->maintain_wake);
    OPENSSL_cleanse(s->secret_key, sizeof s->secret_key);
    free(s);
}

struct store_conn *store_conn_open(struct store *s)
{
    return s->be->conn_open(s);
}

void store_conn_close(struct store_conn *c)
{
    if (c)
        c->be->conn_close(c);
}

int store_schema_version(struct store_conn *c)
{
    return c->be->schema_version(c);
}

int store_begin(struct store_conn *c)
{
    return c->be->begin(c);
}

int store_read_begin(struct store_conn *c)
{
    return c->be->read_begin(c);
}

void store_read_end(struct store_conn *c)
{
    c->be->read_end(c);
}

int store_commit(struct store_conn *c)
{
    int rc = c->be->commit(c);
    generations_settled();
    return rc;
}

void store_rollback(struct store_conn *c)
{
    c->be->rollback(c);
    generations_settled();
}

/* ---- writer ---- */

static void store_op_complete(evutil_socket_t fd, short what, void *arg);

static void store_op_deliver(struct store_op *op)
{
    if (!op->base) {
        if (op->done)
            op->done(op->status, op->ctx);
        free(op);
        return;
    }
    /* event_active from another thread is safe: sesamed enables libevent's pthreads locking. */
    struct event *ev = event_new(op->base, -1, 0, store_op_complete, op);
    event_active(ev, 0, 0);
}

static void store_op_complete(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct store_op *op = arg;
    struct event *self = event_base_get_running_event(op->base);
    if (op->done)
        op->done(op->status, op->ctx);
    free(op);
    event_free(self);
}

/* Runs one batch in one transaction: one commit, one fsync, however many ops. If the
 * database ends the transaction by itself (an I/O error, a full disk), nothing after that
 * point runs: a savepoint would silently open and commit a transaction of its own. */
static void store_writer_run_batch(struct store_conn *c, struct store_op *batch)
{
    bool live = c->be->begin(c) == STORE_OK;
    for (struct store_op *op = batch; op; op = op->next) {
        live = live && c->be->in_transaction(c);
        if (!live || c->be->savepoint(c) != STORE_OK) {
            op->status = STORE_ERROR;
            continue;
        }
        op->status = op->write(c, op->ctx);
        if (!c->be->in_transaction(c)) {
            live = false;
            continue;
        }
        if (op->status < 0)
            c->be->savepoint_rollback(c);
        c->be->savepoint_release(c);
    }
    if (!live || c->be->commit(c) != STORE_OK) {
        log_error("store: the batch's transaction failed; every request of it is refused");
        c->be->rollback(c);
        for (struct store_op *op = batch; op; op = op->next)
            op->status = STORE_ERROR;
    }
    generations_settled();
}

static struct store_op *store_writer_take(struct store *s, int max)
{
    pthread_mutex_lock(&s->lock);
    while (!s->head && !s->stopping)
        pthread_cond_wait(&s->wake, &s->lock);
    struct store_op *batch = s->head, *last = s->head;
    for (int n = 1; last && last->next && n < max; n++)
        last = last->next;
    if (last) {
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    return batch;
}

static void *store_writer_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "sesamed-writer");
    struct store_conn *c = store_conn_open(s);
    for (;;) {
        struct store_op *batch = store_writer_take(s, s->cfg.store_batch_max);
        if (!batch)
            break; /* stopping and drained */
        if (c)
            store_writer_run_batch(c, batch);
        while (batch) {
            struct store_op *next = batch->next;
            if (!c)
                batch->status = STORE_ERROR;
            store_op_deliver(batch);
            batch = next;
        }
        if (c && c->be->settle && c->be->settle(c)) {
            pthread_mutex_lock(&s->lock);
            pthread_cond_signal(&s->maintain_wake);
            pthread_mutex_unlock(&s->lock);
        }
    }
    store_conn_close(c);
    return NULL;
}

/* Housekeeping once a second (sooner when the writer asks), on its own connection, so
 * that the writer's commits never wait for it. With SQLite most of a checkpoint's copying
 * and its fsyncs happen here; the writer only finishes one between batches (settle). */
static void *store_maintainer_main(void *arg)
{
    struct store *s = arg;
    pthread_setname_np(pthread_self(), "sesamed-maint");
    struct store_conn *c = store_conn_open(s);
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&s->maintain_wake, &s->lock, &until);
        if (s->stopping || !c)
            continue;
        pthread_mutex_unlock(&s->lock);
        c->be->maintain(c);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    store_conn_close(c);
    return NULL;
}

int store_writer_start(struct store *s)
{
    if (s->writer_running)
        return STORE_OK;
    s->stopping = false;
    if (pthread_create(&s->writer, NULL, store_writer_main, s) != 0)
        return STORE_ERROR;
    s->writer_running = true; /* before the maintainer, so a failure below joins the writer */
    if (pthread_create(&s->maintainer, NULL, store_maintainer_main, s) != 0) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->writer, NULL);
        s->writer_running = false;
        return STORE_ERROR;
    }
    return STORE_OK;
}

void store_writer_stop(struct store *s)
{
    pthread_mutex_lock(&s->lock);
    bool running = s->writer_running;
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_cond_signal(&s->maintain_wake);
    pthread_mutex_unlock(&s->lock);
    if (!running)
        return;
    pthread_join(s->writer, NULL);
    pthread_join(s->maintainer, NULL);
    pthread_mutex_lock(&s->lock);
    s->writer_running = false;
    pthread_mutex_unlock(&s->lock);
}

void store_submit(struct store *s, struct event_base *base, store_write_fn write,
                  store_done_fn done, void *ctx)
{
    struct store_op *op = calloc(1, sizeof *op);
    if (!op)
        abort();
    *op = (struct store_op){write, done, ctx, base, 0, NULL};
    pthread_mutex_lock(&s->lock);
    if (!s->writer_running || s->stopping) {
        /* Shutting down: refuse at once rather than queue work nobody will run. */
        pthread_mutex_unlock(&s->lock);
        op->status = STORE_ERROR;
        store_op_deliver(op);
        return;
    }
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}

/* ---- dispatch ---- */

int store_account_insert(struct store_conn *c, const struct store_account *a)
{
    return changed(STORE_TOPIC_ACCESS, c->be->account_insert(c, a));
}
int store_account_update(struct store_conn *c, const struct store_account *a)
{
    return changed(STORE_TOPIC_ACCESS, c->be->account_update(c, a));
}
int store_account_get(struct store_conn *c, const char *id, struct store_account *out)
{
    return c->be->account_get(c, id, out);
}

static void store_account_copy(const struct store_account *a, void *ctx)
{
    *(struct store_account *)ctx = *a;
}

int store_account_first(struct store_conn *c, struct store_account *out)
{
    out->id[0] = '\0';
    int rc = c->be->account_list(c, 1, store_account_copy, out);
    if (rc == STORE_OK && !out->id[0])
        return STORE_NOT_FOUND;
    return rc;
}
int store_account_list(struct store_conn *c, store_account_cb cb, void *ctx)
{
    return c->be->account_list(c, -1, cb, ctx);
}
int store_account_region_get(struct store_conn *c, const char *account_id, const char *region,
                             struct store_account_region *out)
{
    return c->be->account_region_get(c, account_id, region, out);
}
int store_account_region_put(struct store_conn *c, const struct store_account_region *r)
{
    return changed(STORE_TOPIC_ACCESS, c->be->account_region_put(c, r));
}
int store_key_insert(struct store_conn *c, const struct store_key *k)
{
    struct store_key sealed = *k;
    if (store_secret_seal(c->store->secret_key, k->key_id, k->secret, sealed.secret,
                          sizeof sealed.secret) != 0) {
        log_error("store: cannot seal the secret of key %s", k->key_id);
        return STORE_ERROR;
    }
    return changed(STORE_TOPIC_ACCESS, c->be->key_insert(c, &sealed));
}

/* A secret that does not open (another store's key file, a tampered row) makes the key
 * unusable rather than exposing what the row holds. */
static void key_unseal(struct store_conn *c, struct store_key *k)
{
    char plain[sizeof k->secret] = "";
    if (store_secret_open(c->store->secret_key, k->key_id, k->secret, plain, sizeof plain) != 0) {
        log_error("store: the secret of key %s does not open with store.secret_key_file",
                  k->key_id);
        memset(plain, 0, sizeof plain);
        k->active = false;
    }
    memcpy(k->secret, plain, sizeof plain);
    OPENSSL_cleanse(plain, sizeof plain);
}

int store_key_get(struct store_conn *c, const char *key_id, struct store_key *out)
{
    int rc = c->be->key_get(c, key_id, out);
    if (rc == STORE_OK)
        key_unseal(c, out);
    return rc;
}

int store_key_state(struct store_conn *c, const char *key_id, struct store_key *out)
{
    int rc = c->be->key_get(c, key_id, out);
    OPENSSL_cleanse(out->secret, sizeof out->secret); /* still sealed: not for the caller */
    return rc;
}

struct key_list_ctx {
    struct store_conn *c;
    store_key_cb cb;
    void *ctx;
};

static void key_list_unseal(const struct store_key *k, void *arg)
{
    struct key_list_ctx *l = arg;
    struct store_key copy = *k;
    key_unseal(l->c, &copy);
    l->cb(&copy, l->ctx);
}

int store_key_list(struct store_conn *c, const char *account_id, store_key_cb cb, void *ctx)
{
    struct key_list_ctx l = {c, cb, ctx};
    return c->be->key_list(c, account_id, key_list_unseal, &l);
}

int store_key_set_active(struct store_conn *c, const char *key_id, bool active)
{
    return changed(STORE_TOPIC_ACCESS, c->be->key_set_active(c, key_id, active));
}

int store_key_delete(struct store_conn *c, const char *key_id)
{
    return changed(STORE_TOPIC_ACCESS, c->be->key_delete(c, key_id));
}

int store_user_insert(struct store_conn *c, const struct store_user *u)
{
    return changed(STORE_TOPIC_ACCESS, c->be->user_insert(c, u));
}
int store_user_get(struct store_conn *c, const char *account_id, const char *name,
                   struct store_user *out)
{
    return c->be->user_get(c, account_id, name, out);
}
int store_user_list(struct store_conn *c, const char *account_id, store_user_cb cb, void *ctx)
{
    return c->be->user_list(c, account_id, cb, ctx);
}
int store_user_delete(struct store_conn *c, const char *account_id, const char *name)
{
    return changed(STORE_TOPIC_ACCESS, c->be->user_delete(c, account_id, name));
}
int store_policy_put(struct store_conn *c, const struct store_policy *p)
{
    return changed(STORE_TOPIC_ACCESS, c->be->policy_put(c, p));
}
int store_policy_get(struct store_conn *c, const char *account_id, const char *user,
                     const char *name, struct store_policy *out)
{
    return c->be->policy_get(c, account_id, user, name, out);
}
int store_policy_list(struct store_conn *c, const char *account_id, const char *user,
                      store_policy_cb cb, void *ctx)
{
    return c->be->policy_list(c, account_id, user, cb, ctx);
}
int store_policy_delete(struct store_conn *c, const char *account_id, const char *user,
                        const char *name)
{
    return changed(STORE_TOPIC_ACCESS, c->be->policy_delete(c, account_id, user, name));
}
/* Suppression entries are kept and looked up lower-case: one address, however written. */
static void address_lower(const char *address, char out[STORE_IDENTITY_LEN])
{
    core_strlcpy(out, address, STORE_IDENTITY_LEN);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
}

int store_suppression_put(struct store_conn *c, const struct store_suppression *s)
{
    struct store_suppression lower = *s;
    address_lower(s->address, lower.address);
    return c->be->suppression_put(c, &lower);
}
int store_suppression_get(struct store_conn *c, const char *account_id, const char *address,
                          struct store_suppression *out)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(address, lower);
    return c->be->suppression_get(c, account_id, lower, out);
}
int store_suppression_list(struct store_conn *c, const char *account_id, const char *after,
                           int limit, store_suppression_cb cb, void *ctx)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(after, lower);
    return c->be->suppression_list(c, account_id, lower, limit, cb, ctx);
}
int store_suppression_delete(struct store_conn *c, const char *account_id, const char *address)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(address, lower);
    return c->be->suppression_delete(c, account_id, lower);
}
int store_identity_put(struct store_conn *c, const struct store_identity *i)
{
    return changed(STORE_TOPIC_IDENTITIES, c->be->identity_put(c, i));
}
int store_identity_get(struct store_conn *c, const char *account_id, const char *region,
                       const char *identity, struct store_identity *out)
{
    return c->be->identity_get(c, account_id, region, identity, out);
}
int store_identity_delete(struct store_conn *c, const char *account_id, const char *region,
                          const char *identity)
{
    return changed(STORE_TOPIC_IDENTITIES, c->be->identity_delete(c, account_id, region, identity));
}
int store_identity_count(struct store_conn *c, const char *account_id, const char *region,
                         int64_t *out)
{
    return c->be->identity_count(c, account_id, region, out);
}
int store_identity_list(struct store_conn *c, const char *account_id, const char *region, int kind,
                        const char *after, int limit, store_identity_cb cb, void *ctx)
{
    return c->be->identity_list(c, account_id, region, kind, after, limit, cb, ctx);
}
int store_identity_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                            store_identity_cb cb, void *ctx)
{
    return c->be->identity_list_due(c, checked_before_ms, limit, cb, ctx);
}
int store_identity_set_dkim(struct store_conn *c, const char *account_id, const char *region,
                            const char *identity, bool enabled)
{
    return changed(STORE_TOPIC_IDENTITIES,
                   c->be->identity_set_dkim(c, account_id, region, identity, enabled));
}

/* ---- Easy DKIM: private keys sealed like access key secrets, each bound to its set and
 * slot, so that a key moved to another domain or slot does not open. ---- */

static void dkim_aad(const struct store_dkim *d, int slot, char *out, size_t outlen)
{
    snprintf(out, outlen, "dkim:%s:%s:%s:%d", d->account_id, d->region, d->domain, slot + 1);
}

/* row->d gets d without its keys; row->keys the keys sealed ("" stays ""). */
static int dkim_seal(struct store_conn *c, const struct store_dkim *d,
                     struct store_dkim_sealed *row)
{
    row->d = *d;
    OPENSSL_cleanse(row->d.keys, sizeof row->d.keys);
    address_lower(d->domain, row->d.domain);
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        char aad[512];
        dkim_aad(&row->d, i, aad, sizeof aad);
        row->keys[i][0] = '\0';
        if (d->keys[i][0] && store_secret_seal(c->store->secret_key, aad, d->keys[i], row->keys[i],
                                               sizeof row->keys[i]) != 0) {
            log_error("store: cannot seal DKIM key %d of %s", i + 1, d->domain);
            return STORE_ERROR;
        }
    }
    return STORE_OK;
}

/* out gets row in clear. A key that does not open (another store's key file, a tampered
 * row) is left empty rather than exposing what the row holds. */
static void dkim_open(struct store_conn *c, const struct store_dkim_sealed *row,
                      struct store_dkim *out)
{
    *out = row->d;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        char aad[512];
        dkim_aad(&row->d, i, aad, sizeof aad);
        out->keys[i][0] = '\0';
        if (row->keys[i][0] && store_secret_open(c->store->secret_key, aad, row->keys[i],
                                                 out->keys[i], sizeof out->keys[i]) != 0) {
            log_error("store: DKIM key %d of %s does not open with store.secret_key_file", i + 1,
                      row->d.domain);
            OPENSSL_cleanse(out->keys[i], sizeof out->keys[i]);
        }
    }
}

int store_dkim_put(struct store_conn *c, const struct store_dkim *d)
{
    struct store_dkim_sealed *row = calloc(1, sizeof *row);
    if (!row)
        return STORE_ERROR;
    int rc = dkim_seal(c, d, row);
    if (rc == STORE_OK)
        rc = changed(STORE_TOPIC_IDENTITIES, c->be->dkim_put(c, row));
    free(row); /* sealed only: nothing to cleanse */
    return rc;
}

int store_dkim_get(struct store_conn *c, const char *account_id, const char *region,
                   const char *domain, struct store_dkim *out)
{
    struct store_dkim_sealed *row = calloc(1, sizeof *row);
    if (!row)
        return STORE_ERROR;
    char lower[STORE_IDENTITY_LEN];
    address_lower(domain, lower);
    int rc = c->be->dkim_get(c, account_id, region, lower, row);
    if (rc == STORE_OK)
        dkim_open(c, row, out);
    free(row);
    return rc;
}

int store_dkim_disable_domain(struct store_conn *c, const char *account_id, const char *region,
                              const char *domain)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(domain, lower);
    return changed(STORE_TOPIC_IDENTITIES,
                   c->be->dkim_disable_domain(c, account_id, region, lower));
}

int store_dkim_delete(struct store_conn *c, const char *account_id, const char *region,
                      const char *domain)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(domain, lower);
    return changed(STORE_TOPIC_IDENTITIES, c->be->dkim_delete(c, account_id, region, lower));
}

struct dkim_list_ctx {
    struct store_conn *c;
    struct store_dkim *clear; /* one row at a time, cleansed after its callback */
    store_dkim_cb cb;
    void *ctx;
};

static void dkim_list_open(const struct store_dkim_sealed *row, void *arg)
{
    struct dkim_list_ctx *l = arg;
    dkim_open(l->c, row, l->clear);
    l->cb(l->clear, l->ctx);
    OPENSSL_cleanse(l->clear->keys, sizeof l->clear->keys);
}

static int dkim_list_run(struct store_conn *c, const char *account_id, bool due,
                         int64_t checked_before_ms, int limit, store_dkim_cb cb, void *ctx)
{
    struct dkim_list_ctx l = {c, calloc(1, sizeof *l.clear), cb, ctx};
    if (!l.clear)
        return STORE_ERROR;
    int rc = due ? c->be->dkim_list_due(c, checked_before_ms, limit, dkim_list_open, &l)
                 : c->be->dkim_list(c, account_id, dkim_list_open, &l);
    free(l.clear);
    return rc;
}

int store_dkim_list(struct store_conn *c, const char *account_id, store_dkim_cb cb, void *ctx)
{
    return dkim_list_run(c, account_id, false, 0, 0, cb, ctx);
}

int store_dkim_list_due(struct store_conn *c, int64_t checked_before_ms, int limit,
                        store_dkim_cb cb, void *ctx)
{
    return dkim_list_run(c, NULL, true, checked_before_ms, limit, cb, ctx);
}
int store_email_link_put(struct store_conn *c, const struct store_email_link *l)
{
    return c->be->email_link_put(c, l);
}
int store_email_link_take(struct store_conn *c, const char *token, struct store_email_link *out)
{
    return c->be->email_link_take(c, token, out);
}
int store_email_link_delete_for(struct store_conn *c, const char *account_id, const char *region,
                                const char *identity)
{
    return c->be->email_link_delete_for(c, account_id, region, identity);
}
int store_email_link_find(struct store_conn *c, const char *account_id, const char *region,
                          const char *identity, struct store_email_link *out)
{
    return c->be->email_link_find(c, account_id, region, identity, out);
}
int store_stats_list(struct store_conn *c, const char *account_id, const char *region,
                     int64_t since_ms, store_stat_cb cb, void *ctx)
{
    return c->be->stats_list(c, account_id, region, since_ms, cb, ctx);
}
int store_stats_add(struct store_conn *c, const char *account_id, const char *region,
                    const struct store_stat_point *delta)
{
    return c->be->stats_add(c, account_id, region, delta);
}
int store_sent_sum(struct store_conn *c, const char *account_id, const char *region,
                   int64_t since_ms, double *out)
{
    return c->be->sent_sum(c, account_id, region, since_ms, out);
}
int store_sent_add(struct store_conn *c, const char *account_id, const char *region, int64_t at_ms,
                   double recipients)
{
    return c->be->sent_add(c, account_id, region, at_ms, recipients);
}
int store_sent_list(struct store_conn *c, const char *account_id, const char *region,
                    int64_t since_ms, store_sent_cb cb, void *ctx)
{
    return c->be->sent_list(c, account_id, region, since_ms, cb, ctx);
}
int store_message_insert(struct store_conn *c, const struct store_message *m,
                         const char *const *recipients, int recipient_count)
{
    return c->be->message_insert(c, m, recipients, recipient_count);
}
int store_capture_list(struct store_conn *c, const char *id, store_capture_cb cb, void *ctx)
{
    return c->be->capture_list(c, id, cb, ctx);
}
int store_capture_clear(struct store_conn *c, const char *id)
{
    return c->be->capture_clear(c, id);
}

/* ---- the delivery queue ---- */

int store_queue_list(struct store_conn *c, const char *message_id, bool queued_only,
                     store_recipient_cb cb, void *ctx)
{
    return c->be->queue_list(c, message_id, queued_only, cb, ctx);
}
int store_message_data(struct store_conn *c, const char *id, char **data, size_t *len)
{
    return c->be->message_data(c, id, data, len);
}
int store_message_get(struct store_conn *c, const char *id, struct store_message *out, char **meta)
{
    return c->be->message_get(c, id, out, meta);
}
int store_recipient_update(struct store_conn *c, const struct store_recipient *r)
{
    return c->be->recipient_update(c, r);
}
int store_queue_retry(struct store_conn *c, const char *message_id, int64_t now_ms, int *n)
{
    return c->be->queue_retry(c, message_id, now_ms, n);
}
int store_queue_drop(struct store_conn *c, const char *message_id, int *n)
{
    return c->be->queue_drop(c, message_id, n);
}
int store_message_release(struct store_conn *c, const char *id)
{
    return c->be->message_release(c, id);
}
int store_event_insert(struct store_conn *c, const struct store_event *e)
{
    return c->be->event_insert(c, e);
}
int store_event_list(struct store_conn *c, const char *message_id, store_event_cb cb, void *ctx)
{
    return c->be->event_list(c, message_id, cb, ctx);
}
int store_suppressed_put(struct store_conn *c, const struct store_suppressed *s)
{
    struct store_suppressed lower = *s;
    address_lower(s->address, lower.address);
    return c->be->suppressed_put(c, &lower);
}
int store_suppressed_get(struct store_conn *c, const char *region, const char *address,
                         int64_t now_ms, struct store_suppressed *out)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(address, lower);
    return c->be->suppressed_get(c, region, lower, now_ms, out);
}
int store_suppressed_list(struct store_conn *c, const char *address, int64_t now_ms,
                          store_suppressed_cb cb, void *ctx)
{
    char lower[STORE_IDENTITY_LEN];
    if (address)
        address_lower(address, lower);
    return c->be->suppressed_list(c, address ? lower : NULL, now_ms, cb, ctx);
}
int store_suppressed_delete(struct store_conn *c, const char *address)
{
    char lower[STORE_IDENTITY_LEN];
    address_lower(address, lower);
    return c->be->suppressed_delete(c, lower);
}

/* ---- notifications ---- */

/* No row: the defaults of a verified identity. */
int store_notify_get(struct store_conn *c, const char *account_id, const char *region,
                     const char *identity, struct store_notify *out)
{
    int rc = c->be->notify_get(c, account_id, region, identity, out);
    if (rc != STORE_NOT_FOUND)
        return rc;
    memset(out, 0, sizeof *out);
    core_strlcpy(out->account_id, account_id, sizeof out->account_id);
    core_strlcpy(out->region, region, sizeof out->region);
    core_strlcpy(out->identity, identity, sizeof out->identity);
    out->forwarding = true;
    return rc;
}
/* Settings belong with their identity: caches of identities see them change. */
int store_notify_put(struct store_conn *c, const struct store_notify *n)
{
    return changed(STORE_TOPIC_IDENTITIES, c->be->notify_put(c, n));
}
int store_notify_delete(struct store_conn *c, const char *account_id, const char *region,
                        const char *identity)
{
    return changed(STORE_TOPIC_IDENTITIES, c->be->notify_delete(c, account_id, region, identity));
}
int store_notify_list_topic(struct store_conn *c, const char *topic_arn, store_notify_cb cb,
                            void *ctx)
{
    return c->be->notify_list_topic(c, topic_arn, cb, ctx);
}
int store_topic_insert(struct store_conn *c, const struct store_topic *t)
{
    return c->be->topic_insert(c, t);
}
int store_topic_get(struct store_conn *c, const char *arn, struct store_topic *out)
{
    return c->be->topic_get(c, arn, out);
}
int store_topic_delete(struct store_conn *c, const char *arn)
{
    return c->be->topic_delete(c, arn);
}
int store_topic_list(struct store_conn *c, const char *account_id, const char *region,
                     const char *after, int limit, store_topic_cb cb, void *ctx)
{
    return c->be->topic_list(c, account_id, region, after, limit, cb, ctx);
}
int store_subscription_put(struct store_conn *c, const struct store_subscription *s)
{
    return c->be->subscription_put(c, s);
}
int store_subscription_get(struct store_conn *c, const char *arn, struct store_subscription *out)
{
    return c->be->subscription_get(c, arn, out);
}
int store_subscription_by_token(struct store_conn *c, const char *topic_arn, const char *token,
                                struct store_subscription *out)
{
    return c->be->subscription_by_token(c, topic_arn, token, out);
}
int store_subscription_find(struct store_conn *c, const char *topic_arn, const char *protocol,
                            const char *endpoint, struct store_subscription *out)
{
    return c->be->subscription_find(c, topic_arn, protocol, endpoint, out);
}
int store_subscription_delete(struct store_conn *c, const char *arn)
{
    return c->be->subscription_delete(c, arn);
}
int store_subscription_list(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *after, int limit, store_subscription_cb cb, void *ctx)
{
    return c->be->subscription_list(c, account_id, topic_arn, after, limit, cb, ctx);
}
int store_outbox_insert(struct store_conn *c, struct store_outbox *o)
{
    return c->be->outbox_insert(c, o);
}
int store_outbox_trim_failed(struct store_conn *c, int keep)
{
    return c->be->outbox_trim_failed(c, keep);
}
int store_outbox_forwarded(struct store_conn *c, const char *message_id)
{
    return c->be->outbox_forwarded(c, message_id);
}
int store_outbox_due(struct store_conn *c, int64_t now_ms, int64_t after_id, int limit,
                     store_outbox_cb cb, void *ctx)
{
    return c->be->outbox_due(c, now_ms, after_id, limit, cb, ctx);
}
int store_outbox_delete(struct store_conn *c, int64_t id)
{
    return c->be->outbox_delete(c, id);
}
int store_outbox_update(struct store_conn *c, int64_t id, int attempts, int64_t next_ms,
                        bool failed, const char *last_error)
{
    return c->be->outbox_update(c, id, attempts, next_ms, failed, last_error);
}
int store_outbox_list(struct store_conn *c, const char *state, int limit, store_outbox_cb cb,
                      void *ctx)
{
    return c->be->outbox_list(c, state, limit, cb, ctx);
}
int store_confirmations_get(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *endpoint, int64_t since_ms, struct store_confirmations *out)
{
    return c->be->confirmations_get(c, account_id, topic_arn, endpoint, since_ms, out);
}
int store_confirmation_note(struct store_conn *c, const char *account_id, const char *topic_arn,
                            const char *endpoint, bool email, int64_t now_ms, int64_t since_ms)
{
    return c->be->confirmation_note(c, account_id, topic_arn, endpoint, email, now_ms, since_ms);
}
int store_feedback_report_insert(struct store_conn *c, struct store_feedback_report *r)
{
    return c->be->feedback_report_insert(c, r);
}
int store_feedback_report_list(struct store_conn *c, int64_t id, int limit,
                               store_feedback_report_cb cb, void *ctx)
{
    return c->be->feedback_report_list(c, id, limit, cb, ctx);
}

/* Keyed with the key that seals the secrets: it already survives restarts and stays off
 * the database; the label keeps each use's key apart from the others and from sealing. */
void store_derive_key(struct store *s, const char *label, unsigned char out[32])
{
    unsigned int len = 32;
    if (!HMAC(EVP_sha256(), s->secret_key, sizeof s->secret_key, (const unsigned char *)label,
              strlen(label), out, &len))
        abort(); /* no SHA-256: nothing could be signed or checked either */
}

int store_control_get(struct store_conn *c, const char *name, int64_t *out)
{
    return c->be->control_get(c, name, out);
}
int store_control_bump(struct store_conn *c, const char *name)
{
    return c->be->control_bump(c, name);
}
