/* Easy DKIM at acceptance (spec 20 §2.1, §2.3; DECISIONS 27): which signatures a message
 * gets, decided on the I/O thread from a shared cache of loaded keys, and the signing
 * itself on the CPU pool. Mail is never refused for DKIM: without a usable key it goes
 * out unsigned, and the reason is logged when the cache entry is loaded. */
#include "mail/mail.h"
#include "send/send_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_SLOTS 1024 /* power of two */
#define DKIM_CACHE_TTL_US (10 * 1000000LL)

/* A domain's loaded keys; shared by the cache and the jobs signing with it. */
struct send_dkim_keys {
    int refs; /* under sh->dkim_lock */
    char domain[STORE_IDENTITY_LEN];
    char selectors[STORE_DKIM_TOKENS][STORE_DKIM_TOKEN_LEN];
    struct mail_dkim_key *keys[STORE_DKIM_TOKENS]; /* [0] RSA; [1] may be Ed25519 */
};

struct dkim_entry {
    bool used;
    uint64_t generation;
    int64_t loaded_us;
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char governing[STORE_IDENTITY_LEN];
    char domain[STORE_IDENTITY_LEN];
    struct send_dkim_keys *keys; /* NULL: this From is not signed */
};

struct send_dkim_cache {
    struct dkim_entry slots[DKIM_SLOTS];
};

static void keys_release(struct send_shared *sh, struct send_dkim_keys *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&sh->dkim_lock);
    bool last = --k->refs == 0;
    pthread_mutex_unlock(&sh->dkim_lock);
    if (!last)
        return;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        mail_dkim_key_free(k->keys[i]);
    free(k);
}

/* Loads a stored set's keys; NULL (and why in reason) when none is usable. */
static struct send_dkim_keys *keys_load(const struct store_dkim *d, char *reason, size_t len)
{
    struct send_dkim_keys *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->refs = 1;
    core_strlcpy(k->domain, d->domain, sizeof k->domain);
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        core_strlcpy(k->selectors[i], d->tokens[i], sizeof k->selectors[i]);
        char err[256];
        if (d->keys[i][0] && !(k->keys[i] = mail_dkim_key_load(d->keys[i], err, sizeof err)))
            log_warn("dkim: key %d of %s (account %s, %s) does not load: %s", i + 1, d->domain,
                     d->account_id, d->region, err);
    }
    if (k->keys[0] && mail_dkim_key_alg(k->keys[0]) == MAIL_DKIM_RSA_SHA256)
        return k;
    snprintf(reason, len, "its first key is unusable");
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        mail_dkim_key_free(k->keys[i]);
    free(k);
    return NULL;
}

static unsigned dkim_hash(const char *account, const char *region, const char *governing,
                          const char *domain)
{
    return core_hash(core_hash(core_hash(core_hash(2166136261u, account), region), governing),
                     domain);
}

/* Spec 20 §2.1.3–§2.1.4: the governing identity's own DkimEnabled decides, and the keys
 * are those of the From's exact domain, verified (Success). */
static struct send_dkim_keys *dkim_decide(const struct send_sender *who, const char *governing,
                                          const char *domain)
{
    struct store_identity id;
    struct store_dkim *d = malloc(sizeof *d);
    if (!d)
        abort();
    char reason[STORE_IDENTITY_LEN + 96] = "";
    struct send_dkim_keys *k = NULL;
    bool is_email = strchr(governing, '@') != NULL;
    if (store_identity_get(who->conn, who->account->id, who->region, governing, &id) != STORE_OK ||
        !id.dkim_enabled)
        goto out; /* not asked for: nothing to log */
    if (!is_email && strcmp(governing, domain))
        snprintf(reason, sizeof reason, "Easy DKIM is per domain and %s has none", domain);
    else if (store_dkim_get(who->conn, who->account->id, who->region, domain, d) != STORE_OK)
        snprintf(reason, sizeof reason, "%s has no DKIM tokens", domain);
    else if (strcmp(d->status, "Success"))
        snprintf(reason, sizeof reason, "the DKIM status of %s is %s", domain, d->status);
    else
        k = keys_load(d, reason, sizeof reason);
out:
    if (reason[0])
        log_warn("dkim: mail from %s (account %s, %s) goes out unsigned: %s", governing,
                 who->account->id, who->region, reason);
    free(d);
    return k;
}

struct send_dkim_keys *send_dkim_find(struct send_shared *sh, const struct send_sender *who,
                                      const char *governing, const char *from)
{
    const char *at = strrchr(from, '@');
    if (!sh->dkim_cache || !governing[0] || !at)
        return NULL;
    char domain[STORE_IDENTITY_LEN];
    core_strlcpy(domain, at + 1, sizeof domain);
    for (char *p = domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
    unsigned h = dkim_hash(who->account->id, who->region, governing, domain);
    struct dkim_entry *e = &sh->dkim_cache->slots[h & (DKIM_SLOTS - 1)];
    uint64_t generation = store_generation(STORE_TOPIC_IDENTITIES);
    pthread_mutex_lock(&sh->dkim_lock);
    if (e->used && e->generation == generation &&
        core_monotonic_us() - e->loaded_us < DKIM_CACHE_TTL_US &&
        !strcmp(e->account_id, who->account->id) && !strcmp(e->region, who->region) &&
        !strcmp(e->governing, governing) && !strcmp(e->domain, domain)) {
        struct send_dkim_keys *k = e->keys;
        if (k)
            k->refs++;
        pthread_mutex_unlock(&sh->dkim_lock);
        return k;
    }
    pthread_mutex_unlock(&sh->dkim_lock);
    struct send_dkim_keys *k = dkim_decide(who, governing, domain); /* store reads, unlocked */
    pthread_mutex_lock(&sh->dkim_lock);
    struct send_dkim_keys *old = e->used ? e->keys : NULL;
    *e = (struct dkim_entry){
        .used = true, .generation = generation, .loaded_us = core_monotonic_us(), .keys = k};
    core_strlcpy(e->account_id, who->account->id, sizeof e->account_id);
    core_strlcpy(e->region, who->region, sizeof e->region);
    core_strlcpy(e->governing, governing, sizeof e->governing);
    core_strlcpy(e->domain, domain, sizeof e->domain);
    if (k)
        k->refs++; /* one for the cache, one for the caller */
    pthread_mutex_unlock(&sh->dkim_lock);
    keys_release(sh, old);
    return k;
}

void send_dkim_release(struct send_shared *sh, struct send_dkim_keys *k)
{
    keys_release(sh, k);
}

/* ---- the operator's signature (spec 20 §2.3.4) ---- */

int send_dkim_operator_load(struct send_shared *sh, const struct store_dkim *d)
{
    char reason[STORE_IDENTITY_LEN + 96];
    struct send_dkim_keys *k = keys_load(d, reason, sizeof reason);
    if (!k)
        return log_error("dkim: the operator's key for %s: %s", d->domain, reason), -1;
    pthread_mutex_lock(&sh->dkim_lock);
    struct send_dkim_keys *old = sh->dkim_operator;
    sh->dkim_operator = k;
    pthread_mutex_unlock(&sh->dkim_lock);
    keys_release(sh, old);
    return 0;
}

struct send_dkim_keys *send_dkim_operator(struct send_shared *sh)
{
    pthread_mutex_lock(&sh->dkim_lock);
    struct send_dkim_keys *k = sh->dkim_operator;
    if (k)
        k->refs++;
    pthread_mutex_unlock(&sh->dkim_lock);
    return k;
}

/* ---- signing ---- */

static int sign_one(const char *msg, size_t len, const struct send_dkim_keys *k, int slot,
                    int64_t time_s, struct buf *out)
{
    struct mail_dkim_signer s = {.domain = k->domain,
                                 .selector = k->selectors[slot],
                                 .key = k->keys[slot],
                                 .time_s = time_s};
    char err[256];
    if (mail_dkim_sign(msg, len, &s, out, err, sizeof err) == 0)
        return 0;
    log_warn("dkim: signing for %s with selector %s failed: %s; sent without it", k->domain,
             k->selectors[slot], err);
    return -1;
}

/* Signatures for msg, appended to out (which then takes the message itself). The
 * customer's domain signs first (on top), then the operator's. */
void send_dkim_sign(const char *msg, size_t len, struct send_dkim_keys *const *sets, int count,
                    int64_t time_s, struct buf *out)
{
    for (int i = 0; i < count; i++) {
        if (!sets[i])
            continue;
        sign_one(msg, len, sets[i], 0, time_s, out);
        if (sets[i]->keys[1] && mail_dkim_key_alg(sets[i]->keys[1]) == MAIL_DKIM_ED25519_SHA256)
            sign_one(msg, len, sets[i], 1, time_s, out);
    }
    buf_append(out, msg, len);
}

int send_dkim_cache_init(struct send_shared *sh)
{
    pthread_mutex_init(&sh->dkim_lock, NULL);
    sh->dkim_cache = calloc(1, sizeof *sh->dkim_cache);
    return sh->dkim_cache ? 0 : -1;
}

void send_dkim_cache_free(struct send_shared *sh)
{
    if (!sh->dkim_cache)
        return;
    for (int i = 0; i < DKIM_SLOTS; i++)
        if (sh->dkim_cache->slots[i].used)
            keys_release(sh, sh->dkim_cache->slots[i].keys);
    keys_release(sh, sh->dkim_operator);
    free(sh->dkim_cache);
    pthread_mutex_destroy(&sh->dkim_lock);
}
