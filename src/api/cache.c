/* A per-thread cache of what every request reads: the access key with its account, an
 * account's limits in a region, and a user's compiled policies. Entries live
 * api.cache_ttl, so a key revoked or an account changed by the admin command takes
 * effect within that time, while a busy thread does no store reads at all for them; a
 * change made inside sesamed (the admin HTTP API) moves the store's access generation
 * and is seen at once. No locks: one per thread. */
#include "api/api_internal.h"
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 512 /* power of two */

#define POLICY_SLOTS 128 /* power of two */

struct cache_key_entry {
    bool used;
    int64_t loaded_us;
    uint64_t generation;
    int status; /* STORE_OK or STORE_NOT_FOUND: unknown keys are cached too */
    struct store_key key;
    struct store_account account;
};

struct cache_quota_entry {
    bool used;
    int64_t loaded_us;
    uint64_t generation;
    struct store_account_region limits;
};

struct cache_policy_entry {
    bool used;
    int64_t loaded_us;
    uint64_t generation;
    char account_id[STORE_ID_LEN];
    char user[STORE_USER_LEN];
    struct auth_policy_set policies;
};

struct api_cache {
    int64_t ttl_us;
    struct cache_key_entry keys[CACHE_SLOTS];
    struct cache_quota_entry quotas[CACHE_SLOTS];
    struct cache_policy_entry policies[POLICY_SLOTS];
};

static unsigned cache_hash(const char *a, const char *b)
{
    unsigned h = core_hash(CORE_HASH_SEED, a);
    return (b ? core_hash(h, b) : h) & (CACHE_SLOTS - 1);
}

struct api_cache *api_cache_new(int64_t ttl_s)
{
    struct api_cache *c = calloc(1, sizeof *c);
    if (c)
        c->ttl_us = ttl_s * 1000000;
    return c;
}

static void policies_forget(struct cache_policy_entry *e)
{
    auth_policy_set_free(&e->policies);
    memset(e, 0, sizeof *e);
}

void api_cache_free(struct api_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < POLICY_SLOTS; i++)
        policies_forget(&c->policies[i]);
    free(c);
}

static bool fresh(const struct api_cache *c, bool used, int64_t loaded_us, uint64_t generation)
{
    return used && generation == store_generation(STORE_TOPIC_ACCESS) &&
           core_monotonic_us() - loaded_us < c->ttl_us;
}

/* The key and its account: STORE_OK, STORE_NOT_FOUND (no such key or account) or STORE_ERROR. */
int api_cache_key(struct api_thread *t, const char *key_id, struct store_key *key,
                  struct store_account *account)
{
    struct cache_key_entry *e = &t->cache->keys[cache_hash(key_id, NULL)];
    if (!fresh(t->cache, e->used, e->loaded_us, e->generation) || strcmp(e->key.key_id, key_id)) {
        memset(e, 0, sizeof *e);
        e->generation = store_generation(STORE_TOPIC_ACCESS); /* before reading: see store.h */
        int rc = store_key_get(t->conn, key_id, &e->key);
        if (rc == STORE_OK)
            rc = store_account_get(t->conn, e->key.account_id, &e->account);
        if (rc == STORE_ERROR)
            return STORE_ERROR; /* not cached: the next request asks again */
        core_strlcpy(e->key.key_id, key_id, sizeof e->key.key_id);
        e->status = rc;
        e->used = true;
        e->loaded_us = core_monotonic_us();
    }
    *key = e->key;
    *account = e->account;
    return e->status;
}

int api_cache_limits(struct api_thread *t, const char *account_id, const char *region,
                     struct store_account_region *limits)
{
    struct cache_quota_entry *e = &t->cache->quotas[cache_hash(account_id, region)];
    if (!fresh(t->cache, e->used, e->loaded_us, e->generation) ||
        strcmp(e->limits.account_id, account_id) || strcmp(e->limits.region, region)) {
        memset(e, 0, sizeof *e);
        e->generation = store_generation(STORE_TOPIC_ACCESS);
        const struct sesame_config *cfg = &t->sh->cfg;
        int rc = store_account_region_get(t->conn, account_id, region, &e->limits);
        if (rc == STORE_NOT_FOUND) { /* no stored row: the sandbox defaults */
            e->limits.production = false;
            e->limits.max_24h = cfg->sandbox_max_24h;
            e->limits.max_rate = cfg->sandbox_max_rate;
        } else if (rc != STORE_OK) {
            return STORE_ERROR;
        }
        core_strlcpy(e->limits.account_id, account_id, sizeof e->limits.account_id);
        core_strlcpy(e->limits.region, region, sizeof e->limits.region);
        e->used = true;
        e->loaded_us = core_monotonic_us();
    }
    *limits = e->limits;
    return STORE_OK;
}

/* ---- policies ---- */

int api_cache_policies(struct api_thread *t, const char *account_id, const char *user,
                       struct auth_policy *const **policies, int *count)
{
    struct cache_policy_entry *e =
        &t->cache->policies[cache_hash(account_id, user) & (POLICY_SLOTS - 1)];
    if (!fresh(t->cache, e->used, e->loaded_us, e->generation) ||
        strcmp(e->account_id, account_id) || strcmp(e->user, user)) {
        policies_forget(e);
        e->generation = store_generation(STORE_TOPIC_ACCESS);
        if (auth_policy_set_load(t->conn, account_id, user, &e->policies) != STORE_OK) {
            policies_forget(e);
            return STORE_ERROR;
        }
        core_strlcpy(e->account_id, account_id, sizeof e->account_id);
        core_strlcpy(e->user, user, sizeof e->user);
        e->used = true;
        e->loaded_us = core_monotonic_us();
    }
    *policies = e->policies.items;
    *count = e->policies.count;
    return STORE_OK;
}
