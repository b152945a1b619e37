/* The sending quota and rate of an account in a region (DECISIONS 18): a rolling 24-hour
 * count of recipients kept per minute in memory (rebuilt from the store on first use, so
 * a restart forgets nothing), and a token bucket refilled at MaxSendRate per second with
 * capacity max(MaxSendRate, 1). Shared by every I/O thread under one lock. */
#include "send/send_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW_MINUTES 1440
#define MINUTE_MS 60000LL

struct send_window {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    int64_t minute[WINDOW_MINUTES]; /* which minute each slot holds */
    double count[WINDOW_MINUTES];
    double tokens;
    int64_t refilled_us;
    int64_t sum_minute; /* the minute `sum` was computed for */
    double sum;         /* the window's total at sum_minute, kept current by window_add */
    struct send_window *next;
};

static double window_sum(struct send_window *w, int64_t now_ms)
{
    int64_t now_minute = now_ms / MINUTE_MS;
    if (now_minute == w->sum_minute)
        return w->sum; /* the common case: no slot has aged out since the last look */
    int64_t oldest = now_minute - WINDOW_MINUTES + 1;
    double sum = 0;
    for (int i = 0; i < WINDOW_MINUTES; i++)
        if (w->minute[i] >= oldest)
            sum += w->count[i];
    w->sum_minute = now_minute;
    w->sum = sum;
    return sum;
}

static void window_add(struct send_window *w, int64_t at_ms, double n)
{
    int64_t minute = at_ms / MINUTE_MS;
    int slot = (int)(minute % WINDOW_MINUTES);
    if (w->minute[slot] != minute) {
        w->minute[slot] = minute;
        w->count[slot] = 0;
    }
    w->count[slot] += n;
    if (minute == w->sum_minute)
        w->sum += n;
}

static void window_load_cb(int64_t minute_ms, double recipients, void *ctx)
{
    window_add(ctx, minute_ms, recipients);
}

/* Finds or creates the window; the caller holds the lock. */
static struct send_window *window_get(struct send_shared *sh, const struct send_sender *who)
{
    struct send_window *w = sh->windows;
    while (w && (strcmp(w->account_id, who->account->id) || strcmp(w->region, who->region)))
        w = w->next;
    if (w)
        return w;
    w = calloc(1, sizeof *w);
    if (!w)
        abort();
    core_strlcpy(w->account_id, who->account->id, sizeof w->account_id);
    core_strlcpy(w->region, who->region, sizeof w->region);
    for (int i = 0; i < WINDOW_MINUTES; i++)
        w->minute[i] = -1;
    w->sum_minute = -1;
    if (store_sent_list(who->conn, w->account_id, w->region,
                        core_now_ms() - WINDOW_MINUTES * MINUTE_MS, window_load_cb,
                        w) != STORE_OK) {
        free(w);
        return NULL;
    }
    w->tokens = who->limits->max_rate > 1 ? who->limits->max_rate : 1;
    w->refilled_us = core_monotonic_us();
    w->next = sh->windows;
    sh->windows = w;
    return w;
}

static void bucket_refill(struct send_window *w, double rate)
{
    int64_t now = core_monotonic_us();
    double capacity = rate > 1 ? rate : 1;
    w->tokens += (double)(now - w->refilled_us) / 1e6 * rate;
    if (w->tokens > capacity)
        w->tokens = capacity;
    w->refilled_us = now;
}

enum send_error send_limits_reserve(struct send_shared *sh, const struct send_sender *who,
                                    int64_t at_ms, int recipients, int quota_recipients, char *msg,
                                    size_t msglen)
{
    int64_t now = at_ms;
    enum send_error rc = SEND_OK;
    pthread_mutex_lock(&sh->lock);
    struct send_window *w = window_get(sh, who);
    if (!w) {
        rc = SEND_INTERNAL;
        snprintf(msg, msglen, "The sending quota could not be read.");
    } else if (quota_recipients > 0 && window_sum(w, now) >= who->limits->max_24h) {
        rc = SEND_THROTTLED;
        snprintf(msg, msglen, "Daily message quota exceeded.");
    } else {
        bucket_refill(w, who->limits->max_rate);
        if (w->tokens < 1) {
            rc = SEND_THROTTLED;
            snprintf(msg, msglen, "Maximum sending rate exceeded.");
        } else {
            /* The whole count is charged, even past zero: the debt is paid by waiting. */
            w->tokens -= recipients;
            window_add(w, now, quota_recipients);
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

void send_limits_release(struct send_shared *sh, const struct send_sender *who, int64_t at_ms,
                         int quota_recipients)
{
    pthread_mutex_lock(&sh->lock);
    struct send_window *w = window_get(sh, who);
    if (w)
        window_add(w, at_ms, -quota_recipients);
    pthread_mutex_unlock(&sh->lock);
}

void send_limits_free(struct send_shared *sh)
{
    while (sh->windows) {
        struct send_window *next = sh->windows->next;
        free(sh->windows);
        sh->windows = next;
    }
}

double send_sent_last_24h(struct send_shared *sh, const struct send_sender *who)
{
    pthread_mutex_lock(&sh->lock);
    struct send_window *w = window_get(sh, who);
    double sent = w ? window_sum(w, core_now_ms()) : -1;
    pthread_mutex_unlock(&sh->lock);
    return sent;
}
