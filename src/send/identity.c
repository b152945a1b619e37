/* Which verified identity governs an address (spec 20 §1.2, DECISIONS 9): the address
 * itself (case-sensitive), the address without its +label, then the domain and each
 * parent domain (case-insensitive). The first verified one wins. */
#include "send/send_internal.h"

#include <stdlib.h>
#include <string.h>

#define IDENTITY_SLOTS 256 /* power of two */

struct identity_entry {
    bool used;
    int64_t loaded_us;
    uint64_t generation;
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char address[STORE_IDENTITY_LEN];
    char governing[STORE_IDENTITY_LEN];
};

struct send_identity_cache {
    int64_t ttl_us;
    struct identity_entry slots[IDENTITY_SLOTS];
};

struct send_identity_cache *send_identity_cache_new(int64_t ttl_s)
{
    struct send_identity_cache *c = calloc(1, sizeof *c);
    if (c)
        c->ttl_us = ttl_s * 1000000;
    return c;
}

void send_identity_cache_free(struct send_identity_cache *c)
{
    free(c);
}

static struct identity_entry *cache_slot(const struct send_sender *who, const char *address)
{
    unsigned h = 2166136261u; /* FNV-1a over account, region and address */
    for (const char *s = who->account->id; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    for (const char *s = who->region; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    for (const char *s = address; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return &who->identities->slots[h & (IDENTITY_SLOTS - 1)];
}

static bool cache_find(const struct send_sender *who, const char *address, char *governing,
                       size_t len)
{
    if (!who->identities)
        return false;
    const struct identity_entry *e = cache_slot(who, address);
    if (!e->used || e->generation != store_generation(STORE_TOPIC_IDENTITIES) ||
        core_monotonic_us() - e->loaded_us >= who->identities->ttl_us ||
        strcmp(e->address, address) || strcmp(e->account_id, who->account->id) ||
        strcmp(e->region, who->region))
        return false;
    core_strlcpy(governing, e->governing, len);
    return true;
}

static void cache_keep(const struct send_sender *who, uint64_t generation, const char *address,
                       const char *governing)
{
    if (!who->identities || strlen(address) >= STORE_IDENTITY_LEN)
        return;
    struct identity_entry *e = cache_slot(who, address);
    e->used = true;
    e->loaded_us = core_monotonic_us();
    e->generation = generation;
    core_strlcpy(e->account_id, who->account->id, sizeof e->account_id);
    core_strlcpy(e->region, who->region, sizeof e->region);
    core_strlcpy(e->address, address, sizeof e->address);
    core_strlcpy(e->governing, governing, sizeof e->governing);
}

static bool identity_verified(const struct send_sender *who, const char *name)
{
    struct store_identity id;
    return store_identity_get(who->conn, who->account->id, who->region, name, &id) == STORE_OK &&
           !strcmp(id.status, "Success");
}

static bool try_identity(const struct send_sender *who, const char *name, char *governing,
                         size_t len)
{
    if (!identity_verified(who, name))
        return false;
    core_strlcpy(governing, name, len);
    return true;
}

static bool identity_lookup(const struct send_sender *who, const char *address, char *governing,
                            size_t len)
{
    const char *at = strrchr(address, '@');
    if (!at)
        return false;
    if (try_identity(who, address, governing, len))
        return true;
    const char *plus = memchr(address, '+', (size_t)(at - address));
    if (plus) {
        char base[STORE_IDENTITY_LEN];
        size_t local = (size_t)(plus - address);
        if (local + strlen(at) < sizeof base) {
            memcpy(base, address, local);
            strcpy(base + local, at);
            if (try_identity(who, base, governing, len))
                return true;
        }
    }
    char domain[STORE_IDENTITY_LEN];
    core_strlcpy(domain, at + 1, sizeof domain);
    for (char *p = domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
    /* Parents down to two labels: a verified example.com covers a.b.example.com. */
    for (const char *d = domain; d && strchr(d, '.');
         d = strchr(d, '.') ? strchr(d, '.') + 1 : NULL)
        if (try_identity(who, d, governing, len))
            return true;
    return false;
}

bool send_identity_find(const struct send_sender *who, const char *address, char *governing,
                        size_t len)
{
    if (cache_find(who, address, governing, len))
        return true;
    /* The generation is read before the store: a write landing during the lookup makes
     * the entry stale rather than letting it outlive the write. */
    uint64_t generation = store_generation(STORE_TOPIC_IDENTITIES);
    if (!identity_lookup(who, address, governing, len))
        return false;
    cache_keep(who, generation, address, governing);
    return true;
}

bool send_is_simulator(const char *address)
{
    const char *at = strrchr(address, '@');
    return at && !core_strcasecmp(at + 1, "simulator.amazonses.com");
}
