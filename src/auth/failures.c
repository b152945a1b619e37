/* Failed authentications per source address, shared by every I/O thread and every
 * interface (the Query API, SMTP AUTH). An address that fails `limit` times within
 * `window` is refused without checking until that window ends: guessing keys or SMTP
 * passwords then costs a window per `limit` guesses. A fixed table: an address spraying
 * from many sources can push others out, which only forgets failures, never blocks anyone
 * wrongly. Addresses are counted by what one client controls: an IPv4 address (also when
 * it arrives IPv4-mapped) or an IPv6 /64. */
#include "auth/auth.h"
#include "core/core.h"

#include <arpa/inet.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define FAILURE_SLOTS 4096 /* power of two */
#define FAILURE_PROBE 8

struct failure_entry {
    char address[64];
    int64_t window_start_ms;
    int count;
};

struct auth_failures {
    int limit;
    int64_t window_ms;
    atomic_int_fast64_t last_failure_ms; /* lets the common case skip the lock */
    pthread_mutex_t lock;
    struct failure_entry slots[FAILURE_SLOTS];
};

struct auth_failures *auth_failures_new(int limit, int64_t window_ms)
{
    struct auth_failures *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->limit = limit;
    f->window_ms = window_ms;
    atomic_init(&f->last_failure_ms, INT64_MIN / 2);
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

void auth_failures_free(struct auth_failures *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static unsigned failure_hash(const char *address)
{
    return core_hash(CORE_HASH_SEED, address);
}

/* The key an address is counted under: IPv4 as is, IPv6 by its /64 (one host may use its
 * whole /64), anything unparsable as given. */
static void failure_key(const char *address, char *out, size_t outlen)
{
    char bare[64];
    core_strlcpy(bare, address, sizeof bare);
    bare[strcspn(bare, "%")] = 0; /* a zone index names an interface, not a host */
    unsigned char a[16];
    if (inet_pton(AF_INET6, bare, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a, mapped, sizeof mapped))
            inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
        else {
            memset(a + 8, 0, 8);
            inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
            strncat(out, "/64", outlen - strlen(out) - 1);
        }
        return;
    }
    core_strlcpy(out, bare, outlen);
}

static bool entry_live(const struct auth_failures *f, const struct failure_entry *e, int64_t now)
{
    return e->count > 0 && now - e->window_start_ms < f->window_ms;
}

/* The address's entry, or NULL; with create, a free or expired slot (else the oldest). */
static struct failure_entry *failure_find(struct auth_failures *f, const char *address, int64_t now,
                                          bool create)
{
    unsigned h = failure_hash(address);
    struct failure_entry *spare = NULL;
    for (int i = 0; i < FAILURE_PROBE; i++) {
        struct failure_entry *e = &f->slots[(h + i) & (FAILURE_SLOTS - 1)];
        if (entry_live(f, e, now) && !strcmp(e->address, address))
            return e;
        if (!spare || (entry_live(f, spare, now) &&
                       (!entry_live(f, e, now) || e->window_start_ms < spare->window_start_ms)))
            spare = e;
    }
    if (!create)
        return NULL;
    memset(spare, 0, sizeof *spare);
    core_strlcpy(spare->address, address, sizeof spare->address);
    spare->window_start_ms = now;
    return spare;
}

bool auth_failures_blocked(struct auth_failures *f, const char *address, int64_t now_ms)
{
    if (!f || f->limit <= 0 || now_ms - atomic_load(&f->last_failure_ms) >= f->window_ms)
        return false;
    char key[64];
    failure_key(address, key, sizeof key);
    pthread_mutex_lock(&f->lock);
    const struct failure_entry *e = failure_find(f, key, now_ms, false);
    bool blocked = e && e->count >= f->limit;
    pthread_mutex_unlock(&f->lock);
    return blocked;
}

int auth_failures_record(struct auth_failures *f, const char *address, int64_t now_ms)
{
    if (!f || f->limit <= 0)
        return 0;
    char key[64];
    failure_key(address, key, sizeof key);
    pthread_mutex_lock(&f->lock);
    atomic_store(&f->last_failure_ms, now_ms);
    struct failure_entry *e = failure_find(f, key, now_ms, true);
    if (e->count < INT_MAX)
        e->count++;
    int count = e->count;
    pthread_mutex_unlock(&f->lock);
    return count;
}
