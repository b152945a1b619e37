/* The feedback module's lifetime: the SNS signing key and certificate, the VERP key, and
 * the notifier thread. */
#include "feedback/feedback_internal.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void signing_paths(const struct sesame_config *cfg, char *key, char *cert, size_t len)
{
    if (cfg->notify_signing_key[0])
        snprintf(key, len, "%s", cfg->notify_signing_key);
    else
        snprintf(key, len, "%s.sns.key", cfg->store_path);
    if (cfg->notify_signing_cert[0])
        snprintf(cert, len, "%s", cfg->notify_signing_cert);
    else
        snprintf(cert, len, "%s.sns.crt", cfg->store_path);
}

struct feedback *feedback_start(const struct sesame_config *cfg, struct store *store)
{
    pthread_once(&curl_once, curl_init);
    struct feedback *fb = calloc(1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->cfg = *cfg;
    fb->store = store;
    if (cfg->feedback_forward_from[0])
        core_strlcpy(fb->forward_from, cfg->feedback_forward_from, sizeof fb->forward_from);
    else
        snprintf(fb->forward_from, sizeof fb->forward_from, "MAILER-DAEMON@%s", cfg->hostname);
    core_strlcpy(fb->bounce_domain, cfg->bounce_domain[0] ? cfg->bounce_domain : cfg->hostname,
                 sizeof fb->bounce_domain);
    store_derive_key(store, DELIVERY_VERP_KEY_LABEL, fb->verp_key);
    char key[CONFIG_PATH_LEN + 16], cert[CONFIG_PATH_LEN + 16], err[256];
    signing_paths(cfg, key, cert, sizeof key);
    if (feedback_sns_signing_load(key, cert, cfg->hostname, &fb->key, &fb->cert_pem, err,
                                  sizeof err) != 0) {
        log_error("notifications: signing key: %s", err);
        feedback_free(fb);
        return NULL;
    }
    if (!(fb->notifier = fb_notifier_start(fb))) {
        feedback_free(fb);
        return NULL;
    }
    return fb;
}

void feedback_on_email(struct feedback *fb, feedback_enqueue_fn fn, void *ctx)
{
    fb->enqueue = fn;
    fb->enqueue_ctx = ctx;
}

void feedback_use_pool(struct feedback *fb, struct core_pool *pool)
{
    fb->pool = pool;
}

const char *feedback_signing_cert(const struct feedback *fb)
{
    return fb->cert_pem;
}

void feedback_stop(struct feedback *fb)
{
    if (fb && fb->notifier)
        fb_notifier_stop(fb->notifier);
}

void feedback_free(struct feedback *fb)
{
    if (!fb)
        return;
    if (fb->notifier) {
        fb_notifier_stop(fb->notifier);
        fb_notifier_free(fb->notifier);
    }
    EVP_PKEY_free(fb->key);
    free(fb->cert_pem);
    free(fb);
}
