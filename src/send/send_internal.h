/* Private to the send module. */
#ifndef SESAME_SEND_INTERNAL_H
#define SESAME_SEND_INTERNAL_H

#include "send/send.h"

#include <pthread.h>

struct send_window; /* one account's rolling 24-hour count and rate bucket in one region */

struct send_shared {
    struct sesame_config cfg;
    struct store *store;
    pthread_mutex_t lock; /* guards the windows */
    struct send_window *windows;
    send_queued_fn queued_fn;
    void *queued_ctx;
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

#endif
