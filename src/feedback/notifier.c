/* The notifier: one thread that makes the outbox's HTTP(S) POSTs with libcurl's multi
 * interface, many at once. A row leaves the outbox only after its endpoint answered 2xx;
 * anything else (timeout, refused connection, redirect, 4xx/5xx, a bad certificate) is
 * retried with doubling delays up to notifications.max_attempts, then kept as failed.
 * Delivery is at least once, as SNS's: a crash between the answer and the row's deletion
 * sends it again. Messages are signed when sent, so signing never holds up the writer. */
#include "feedback/feedback_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_POLL_MS 250 /* how often due retries are looked for when nothing wakes us */

struct fb_transfer {
    struct fb_notifier *nt;
    char *message;           /* a Notification's payload, for the fallback if it is given up on */
    struct store_outbox row; /* what the fallback needs of it: url, message_id, forwarded */
    struct fb_transfer *prev, *next; /* the notifier's transfers in flight */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    int64_t id;
    int attempts;
    char url[STORE_ENDPOINT_LEN];
    char error[CURL_ERROR_SIZE];
    bool refused; /* the address was private (curl's own message would hide why) */
};

struct fb_busy {
    int64_t id;
    bool done; /* its outcome is committed */
};

struct fb_notifier {
    struct feedback *fb;
    struct store_conn *conn; /* the thread's reads */
    CURLM *multi;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    bool stopping;
    /* Rows being sent or whose result is being written: not picked up again. */
    struct fb_busy *busy;
    int busy_count, busy_cap;
    int inflight;
    int failed_since_trim; /* the writer thread's alone (outcome_write) */
    struct fb_transfer *transfers;
};

/* ---- the busy set (shared with the writer thread's callbacks) ----
 * A row is busy from the moment it is taken until its outcome is committed and the
 * notifier has seen that: entries are marked done by the writer's callback but removed
 * by the notifier itself before its next query, so no query whose snapshot predates the
 * commit can find the row free and send it again. */

static bool busy_has(struct fb_notifier *nt, int64_t id)
{
    for (int i = 0; i < nt->busy_count; i++)
        if (nt->busy[i].id == id)
            return true;
    return false;
}

static bool busy_add(struct fb_notifier *nt, int64_t id)
{
    if (nt->busy_count == nt->busy_cap) {
        int cap = nt->busy_cap ? nt->busy_cap * 2 : 64;
        struct fb_busy *b = realloc(nt->busy, (size_t)cap * sizeof *b);
        if (!b)
            return false;
        nt->busy = b;
        nt->busy_cap = cap;
    }
    nt->busy[nt->busy_count++] = (struct fb_busy){id, false};
    return true;
}

static void busy_mark_done(struct fb_notifier *nt, int64_t id)
{
    pthread_mutex_lock(&nt->lock);
    for (int i = 0; i < nt->busy_count; i++)
        if (nt->busy[i].id == id)
            nt->busy[i].done = true;
    pthread_mutex_unlock(&nt->lock);
}

static void busy_sweep(struct fb_notifier *nt)
{
    pthread_mutex_lock(&nt->lock);
    for (int i = 0; i < nt->busy_count;)
        if (nt->busy[i].done)
            nt->busy[i] = nt->busy[--nt->busy_count];
        else
            i++;
    pthread_mutex_unlock(&nt->lock);
}

/* ---- results, written through the store writer ---- */

struct outcome {
    struct fb_notifier *nt;
    char *message;           /* set when a Notification is given up on */
    struct store_outbox row; /* its row, for the fallback */
    struct feedback_outgoing out;
    int64_t id;
    int attempts;
    int64_t next_ms;
    bool ok, failed;
    char error[256];
};

static int outcome_write(struct store_conn *c, void *ctx)
{
    struct outcome *o = ctx;
    int rc = o->ok ? store_outbox_delete(c, o->id)
                   : store_outbox_update(c, o->id, o->attempts, o->next_ms, o->failed, o->error);
    if (rc == STORE_NOT_FOUND)
        return STORE_OK; /* its topic went meanwhile */
    if (rc == STORE_OK && o->message)
        rc = feedback_delivery_failed(o->nt->fb, c, &o->row, o->message, &o->out);
    /* failed rows are kept for the operator, the newest only: a dead endpoint must not
     * fill the disk; trimmed every hundred, as each trim walks the kept ones' index */
    if (rc == STORE_OK && o->failed && ++o->nt->failed_since_trim >= 100) {
        o->nt->failed_since_trim = 0;
        rc = store_outbox_trim_failed(c, o->nt->fb->cfg.notify_failed_kept);
    }
    return rc;
}

static void outcome_done(int status, void *ctx)
{
    struct outcome *o = ctx;
    /* not written: the row is still due, and is sent again */
    feedback_after(o->nt->fb, &o->out, status == STORE_OK);
    busy_mark_done(o->nt, o->id);
    free(o->message);
    free(o);
}

static int64_t backoff_ms(const struct sesame_config *cfg, int attempts)
{
    int64_t s = cfg->notify_retry_initial_s;
    for (int i = 1; i < attempts && s < cfg->notify_retry_max_s; i++)
        s *= 2;
    return (s > cfg->notify_retry_max_s ? cfg->notify_retry_max_s : s) * 1000;
}

static void transfer_finish(struct fb_transfer *t, CURLcode res)
{
    struct fb_notifier *nt = t->nt;
    const struct sesame_config *cfg = &nt->fb->cfg;
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    struct outcome *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->nt = nt;
    o->id = t->id;
    o->attempts = t->attempts + 1;
    o->ok = res == CURLE_OK && code >= 200 && code < 300;
    if (!o->ok) {
        if (t->refused)
            snprintf(o->error, sizeof o->error,
                     "refused: the endpoint is on a private or loopback address "
                     "(notifications.allow_private_endpoints)");
        else if (res != CURLE_OK)
            snprintf(o->error, sizeof o->error, "%s",
                     t->error[0] ? t->error : curl_easy_strerror(res));
        else
            snprintf(o->error, sizeof o->error, "HTTP %ld", code);
        o->failed = o->attempts >= cfg->notify_max_attempts;
        if (o->failed && t->message) {
            o->message = t->message;
            t->message = NULL;
            o->row = t->row;
        }
        o->next_ms = core_now_ms() + backoff_ms(cfg, o->attempts);
        log_warn("notifications: POST %lld to %s failed (attempt %d%s): %s", (long long)t->id,
                 t->url, o->attempts, o->failed ? ", the last: kept as failed" : "", o->error);
    }
    store_submit(nt->fb->store, NULL, outcome_write, outcome_done, o);
}

static void transfer_free(struct fb_transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else if (t->nt->transfers == t)
        t->nt->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    free(t->message);
    free(t);
}

/* ---- starting a POST ---- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    (void)ptr;
    (void)ctx;
    return size * nmemb;
}

/* The signed envelope of a row, for its subscription (confirmations carry its token). */
static char *envelope_for(struct fb_notifier *nt, const struct store_outbox *o,
                          const struct store_subscription *sub)
{
    const struct sesame_config *cfg = &nt->fb->cfg;
    char cert[CONFIG_ADDR_LEN + 300], unsubscribe[(STORE_ARN_LEN + 40) * 3 + 400];
    char subscribe[STORE_ARN_LEN * 3 + 600];
    feedback_cert_url(cfg, cert, sizeof cert);
    struct feedback_sns_message m = {.message_id = o->message_id,
                                     .topic_arn = o->topic_arn,
                                     .message = o->body,
                                     .timestamp_ms = o->created_ms,
                                     .signing_cert_url = cert,
                                     .signature_version = cfg->notify_signature_version};
    if (!strcmp(o->message_type, "Notification")) {
        m.type = FEEDBACK_SNS_NOTIFICATION;
        feedback_unsubscribe_url(cfg, o->subscription_arn, unsubscribe, sizeof unsubscribe);
        m.unsubscribe_url = unsubscribe;
    } else {
        m.type = FEEDBACK_SNS_SUBSCRIPTION_CONFIRMATION;
        m.token = sub->token;
        feedback_subscribe_url(cfg, sub->topic_arn, sub->token, subscribe, sizeof subscribe);
        m.subscribe_url = subscribe;
    }
    return feedback_sns_envelope(&m, nt->fb->key);
}

static struct curl_slist *sns_headers(const struct store_outbox *o)
{
    char line[STORE_ARN_LEN + 96];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/plain; charset=UTF-8");
    h = curl_slist_append(h, "User-Agent: Amazon Simple Notification Service Agent");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "x-amz-sns-message-type: %s", o->message_type);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-amz-sns-message-id: %s", o->message_id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-amz-sns-topic-arn: %s", o->topic_arn);
    h = curl_slist_append(h, line);
    if (!strcmp(o->message_type, "Notification")) {
        snprintf(line, sizeof line, "x-amz-sns-subscription-arn: %s", o->subscription_arn);
        h = curl_slist_append(h, line);
    }
    return h;
}

/* Loopback, private, link-local (cloud metadata) and unspecified addresses: a tenant's
 * subscription must not make sesamed reach inside its own network. The IPv4 address 4
 * bytes at p hold. */
static bool ipv4_private_at(const unsigned char *p)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    memcpy(&v4.sin_addr, p, 4);
    return feedback_address_private((const struct sockaddr *)&v4);
}

/* 0/8, 10/8, 127/8, 169.254/16, 172.16/12, 192.168/16, 100.64/10 (shared), 192.0.0/24
 * (protocol assignments), 198.18/15 (benchmarking), 224/4 and above (multicast, reserved). */
static bool ipv4_private(uint32_t a)
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || (a >> 16) == 0xa9fe ||
           (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 || (a >> 22) == (100 << 2 | 1) ||
           (a >> 8) == 0xc00000 || (a >> 17) == (0xc612 >> 1) || (a >> 28) >= 0xe;
}

bool feedback_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ipv4_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
        /* IPv4 inside IPv6: mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16) */
        if (IN6_IS_ADDR_V4MAPPED(a) || !memcmp(a->s6_addr, nat64, 12))
            return ipv4_private_at(a->s6_addr + 12);
        if (a->s6_addr[0] == 0x20 && a->s6_addr[1] == 0x02)
            return ipv4_private_at(a->s6_addr + 2);
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

/* Checked at connect time, on the address actually used (DNS rebinding gains nothing). */
static curl_socket_t open_public_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct fb_transfer *t = ctx;
    if (purpose == CURLSOCKTYPE_IPCXN && feedback_address_private(&addr->addr)) {
        t->refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static void easy_setup(struct fb_transfer *t, const struct sesame_config *cfg)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is a failure, as in SNS */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->notify_timeout_s * 1000);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->notify_tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->notify_tls_verify ? 2L : 0L);
    if (cfg->notify_ca_file[0])
        curl_easy_setopt(e, CURLOPT_CAINFO, cfg->notify_ca_file);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    if (!cfg->notify_allow_private) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_public_socket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
}

/* A row whose subscription is gone has nowhere to go: it is deleted. */
static void drop_row(struct fb_notifier *nt, int64_t id)
{
    struct outcome *o = calloc(1, sizeof *o);
    if (!o)
        abort();
    o->nt = nt;
    o->id = id;
    o->ok = true;
    store_submit(nt->fb->store, NULL, outcome_write, outcome_done, o);
}

/* Whether the row can be sent now: a row whose subscription is gone (unsubscribed) is
 * deleted; one that cannot be read or signed now is left for the next pass. */
static bool transfer_ready(struct fb_notifier *nt, const struct store_outbox *o,
                           struct store_subscription *sub, char **body)
{
    int rc = store_subscription_get(nt->conn, o->subscription_arn, sub);
    if (rc == STORE_NOT_FOUND) {
        log_info("notifications: %s %lld for %s dropped: the subscription is gone", o->message_type,
                 (long long)o->id, o->url);
        drop_row(nt, o->id);
        return false;
    }
    if (rc == STORE_OK && (*body = envelope_for(nt, o, sub)))
        return true;
    busy_mark_done(nt, o->id); /* logged where it failed; nothing written, so free at once */
    return false;
}

static void transfer_start(struct fb_notifier *nt, const struct store_outbox *o)
{
    struct store_subscription sub;
    char *body = NULL;
    if (!transfer_ready(nt, o, &sub, &body))
        return;
    struct fb_transfer *t = calloc(1, sizeof *t);
    if (!t)
        abort();
    t->nt = nt;
    t->id = o->id;
    t->attempts = o->attempts;
    t->body = body;
    core_strlcpy(t->url, o->url, sizeof t->url);
    t->row = *o;
    t->row.body = NULL; /* borrowed from the query's row: gone after this callback */
    t->headers = sns_headers(o);
    if (!strcmp(o->message_type, "Notification") && !(t->message = strdup(o->body)))
        abort();
    if (!(t->easy = curl_easy_init()))
        abort();
    easy_setup(t, &nt->fb->cfg);
    t->next = nt->transfers;
    if (t->next)
        t->next->prev = t;
    nt->transfers = t;
    curl_multi_add_handle(nt->multi, t->easy);
    nt->inflight++;
}

/* ---- the loop ---- */

struct due_page {
    struct fb_notifier *nt;
    int room;
    int64_t last_id;
    int seen;
};

static void due_row(const struct store_outbox *o, void *ctx)
{
    struct due_page *p = ctx;
    p->seen++;
    p->last_id = o->id;
    if (p->room <= 0)
        return;
    pthread_mutex_lock(&p->nt->lock);
    bool taken = busy_has(p->nt, o->id) || !busy_add(p->nt, o->id);
    pthread_mutex_unlock(&p->nt->lock);
    if (taken)
        return;
    p->room--;
    transfer_start(p->nt, o);
}

/* Takes due rows until the concurrency is used up, paging past rows already busy. */
static void fill(struct fb_notifier *nt)
{
    busy_sweep(nt);
    int limit = nt->fb->cfg.notify_concurrency;
    struct due_page p = {nt, limit - nt->inflight, 0, 0};
    while (p.room > 0) {
        p.seen = 0;
        if (store_outbox_due(nt->conn, core_now_ms(), p.last_id, limit, due_row, &p) != STORE_OK)
            break;
        if (p.seen < limit)
            break;
    }
}

static void reap(struct fb_notifier *nt)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(nt->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct fb_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode res = msg->data.result;
        curl_multi_remove_handle(nt->multi, msg->easy_handle);
        nt->inflight--;
        transfer_finish(t, res);
        transfer_free(t);
    }
}

static bool stopping(struct fb_notifier *nt)
{
    pthread_mutex_lock(&nt->lock);
    bool s = nt->stopping;
    pthread_mutex_unlock(&nt->lock);
    return s;
}

static void *notifier_main(void *arg)
{
    struct fb_notifier *nt = arg;
    while (!stopping(nt)) {
        fill(nt);
        int running = 0;
        curl_multi_perform(nt->multi, &running);
        reap(nt);
        curl_multi_poll(nt->multi, NULL, 0, IDLE_POLL_MS, NULL);
    }
    return NULL;
}

struct fb_notifier *fb_notifier_start(struct feedback *fb)
{
    struct fb_notifier *nt = calloc(1, sizeof *nt);
    if (!nt)
        return NULL;
    nt->fb = fb;
    pthread_mutex_init(&nt->lock, NULL);
    if (!(nt->conn = store_conn_open(fb->store)) || !(nt->multi = curl_multi_init()) ||
        pthread_create(&nt->thread, NULL, notifier_main, nt) != 0) {
        log_error("notifications: cannot start the notifier");
        fb_notifier_free(nt);
        return NULL;
    }
    nt->running = true;
    return nt;
}

void fb_notifier_wake(struct fb_notifier *nt)
{
    curl_multi_wakeup(nt->multi);
}

/* POSTs in flight are abandoned: their rows stay due and are sent at the next start. */
void fb_notifier_stop(struct fb_notifier *nt)
{
    if (!nt->running)
        return;
    pthread_mutex_lock(&nt->lock);
    nt->stopping = true;
    pthread_mutex_unlock(&nt->lock);
    curl_multi_wakeup(nt->multi);
    pthread_join(nt->thread, NULL);
    nt->running = false;
}

static void abandon_transfers(struct fb_notifier *nt)
{
    while (nt->transfers) {
        struct fb_transfer *t = nt->transfers;
        curl_multi_remove_handle(nt->multi, t->easy);
        transfer_free(t);
    }
}

void fb_notifier_free(struct fb_notifier *nt)
{
    if (!nt)
        return;
    fb_notifier_stop(nt);
    if (nt->multi) {
        abandon_transfers(nt);
        curl_multi_cleanup(nt->multi);
    }
    store_conn_close(nt->conn);
    pthread_mutex_destroy(&nt->lock);
    free(nt->busy);
    free(nt);
}
