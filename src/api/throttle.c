/* Non-send actions are throttled per account (DECISIONS 7): a token bucket refilled at
 * api.non_send_rate per second holding up to api.non_send_burst requests. */
#include "api/api_internal.h"

#include <stdlib.h>
#include <string.h>

struct api_throttle {
    char account_id[STORE_ID_LEN];
    double tokens;
    int64_t last_us;
    struct api_throttle *next;
};

bool api_throttle_allow(struct api_shared *sh, const char *account_id)
{
    double rate = sh->cfg.api_non_send_rate;
    if (rate <= 0)
        return true; /* off, as in the development config */
    double burst = sh->cfg.api_non_send_burst;
    int64_t now = core_monotonic_us();
    pthread_mutex_lock(&sh->throttle_lock);
    struct api_throttle *b = sh->throttles;
    while (b && strcmp(b->account_id, account_id))
        b = b->next;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b)
            abort();
        core_strlcpy(b->account_id, account_id, sizeof b->account_id);
        b->tokens = burst;
        b->last_us = now;
        b->next = sh->throttles;
        sh->throttles = b;
    }
    b->tokens += (double)(now - b->last_us) / 1e6 * rate;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_us = now;
    bool allowed = b->tokens >= 1;
    if (allowed)
        b->tokens -= 1;
    pthread_mutex_unlock(&sh->throttle_lock);
    return allowed;
}

void api_throttle_free_all(struct api_shared *sh)
{
    while (sh->throttles) {
        struct api_throttle *next = sh->throttles->next;
        free(sh->throttles);
        sh->throttles = next;
    }
}
