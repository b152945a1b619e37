/* A per-thread cache of what every request reads: the access key with its account, and an
 * account's limits in a region. Entries live api.cache_ttl, so a key
 * revoked or an account changed by the admin command takes effect within that time,
 * while a busy thread does no store reads at all for them. No locks: one per thread. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 512 /* power of two */

struct cache_key_entry {
    bool used;
    int64_t loaded_us;
    int status; /* STORE_OK or STORE_NOT_FOUND: unknown keys are cached too */
    struct store_key key;
    struct store_account account;
};

struct cache_quota_entry {
    bool used;
    int64_t loaded_us;
    struct store_account_region limits;
};

struct api_cache {
    int64_t ttl_us;
    struct cache_key_entry keys[CACHE_SLOTS];
    struct cache_quota_entry quotas[CACHE_SLOTS];
};

static unsigned cache_hash(const char *a, const char *b)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    for (; b && *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h & (CACHE_SLOTS - 1);
}

struct api_cache *api_cache_new(int64_t ttl_s)
{
    struct api_cache *c = calloc(1, sizeof *c);
    if (c)
        c->ttl_us = ttl_s * 1000000;
    return c;
}

void api_cache_free(struct api_cache *c)
{
    free(c);
}

static bool fresh(const struct api_cache *c, bool used, int64_t loaded_us)
{
    return used && core_monotonic_us() - loaded_us < c->ttl_us;
}

/* The key and its account: STORE_OK, STORE_NOT_FOUND (no such key or account) or STORE_ERROR. */
int api_cache_key(struct api_thread *t, const char *key_id, struct store_key *key,
                  struct store_account *account)
{
    struct cache_key_entry *e = &t->cache->keys[cache_hash(key_id, NULL)];
    if (!fresh(t->cache, e->used, e->loaded_us) || strcmp(e->key.key_id, key_id)) {
        memset(e, 0, sizeof *e);
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
    if (!fresh(t->cache, e->used, e->loaded_us) || strcmp(e->limits.account_id, account_id) ||
        strcmp(e->limits.region, region)) {
        memset(e, 0, sizeof *e);
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
