/* Private to the send module. */
#ifndef SESAME_SEND_INTERNAL_H
#define SESAME_SEND_INTERNAL_H

#include "send/send.h"

#include <pthread.h>

struct send_window; /* one account's rolling 24-hour count and rate bucket in one region */
struct send_dkim_cache;
struct send_dkim_keys;

struct send_shared {
    struct sesame_config cfg;
    struct store *store;
    pthread_mutex_t lock; /* guards the windows */
    struct send_window *windows;
    send_queued_fn queued_fn;
    void *queued_ctx;
    struct core_pool *pool;    /* DKIM signing; NULL: on the caller's thread */
    pthread_mutex_t dkim_lock; /* guards the DKIM cache and key reference counts */
    struct send_dkim_cache *dkim_cache;
    struct send_dkim_keys *dkim_operator; /* dkim.operator_domain's key; NULL: none */
};

/* Quota and rate (DECISIONS 18). On success the recipients are reserved: the quota counts
 * them and the bucket is charged; send_limits_release undoes the quota part if the
 * message is then not stored. */
enum send_error send_limits_reserve(struct send_shared *sh, const struct send_sender *who,
                                    int64_t at_ms, int recipients, int quota_recipients, char *msg,
                                    size_t msglen);
/* Undoes a reservation made at at_ms (the same minute, so the window stays exact). */
void send_limits_release(struct send_shared *sh, const struct send_sender *who, int64_t at_ms,
                         int quota_recipients);
void send_limits_free(struct send_shared *sh);

/* The verified identity that governs address (most specific wins: the address, the
 * address without its +label, the domain, then each parent domain). False when none. */
bool send_identity_find(const struct send_sender *who, const char *address, char *governing,
                        size_t len);

/* ---- Easy DKIM (dkim.c) ---- */
int send_dkim_cache_init(struct send_shared *sh);
void send_dkim_cache_free(struct send_shared *sh);
/* The keys that sign mail from `from` governed by `governing` (a reference the caller
 * releases), or NULL when it goes out unsigned (the reason logged). Reads the store on a
 * cache miss, with who's connection. */
struct send_dkim_keys *send_dkim_find(struct send_shared *sh, const struct send_sender *who,
                                      const char *governing, const char *from);
struct send_dkim_keys *send_dkim_operator(struct send_shared *sh); /* a reference, or NULL */
void send_dkim_release(struct send_shared *sh, struct send_dkim_keys *k);
/* Appends the signatures of each set (NULL entries skipped), then msg, to out. */
void send_dkim_sign(const char *msg, size_t len, struct send_dkim_keys *const *sets, int count,
                    int64_t time_s, struct buf *out);
int send_dkim_operator_load(struct send_shared *sh, const struct store_dkim *d);

#endif
