/* sesamed: the daemon. N I/O threads, each with its own event loop and its own sockets
 * on the shared listener addresses (SO_REUSEPORT); one store writer thread; the main
 * thread waits for SIGTERM or SIGINT and then drains. */
#include "admin/admin.h"
#include "api/api.h"
#include "auth/auth.h"
#include "core/core.h"
#include "delivery/delivery.h"
#include "dns/dns.h"
#include "feedback/feedback.h"
#include "net/net.h"
#include "send/send.h"
#include "smtp/smtp.h"
#include "store/store.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_IO_THREADS 64
#define SMTP_DRAIN_MS 15000 /* how long SIGTERM waits for SMTP sessions to finish */

struct io_thread {
    pthread_t thread;
    struct event_base *base;
    struct api_thread *api;
    struct admin_http *admin;
    struct smtp_thread *smtp;
    struct smtp_thread *feedback; /* the bounce domain's listener */
    struct dns_verifier *verifier;
};

struct daemon {
    struct sesame_config cfg;
    struct store *store;
    struct auth_failures *failures; /* failed authentications, shared by every interface */
    struct send_shared *send;       /* the accept pipeline, shared by the API and SMTP */
    struct api_shared *api;
    struct smtp_shared *smtp; /* NULL when no SMTP listener is configured */
    struct delivery *delivery;
    struct feedback *feedback; /* notifications, forwarding, the feedback listener's intake */
    struct core_pool *pool;    /* DKIM signing and key generation */
    SSL_CTX *tls;
    int thread_count;
    struct io_thread threads[MAX_IO_THREADS];
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sesamed -c CONFIG\n"
                 "  Runs a Sesame instance in the foreground; logs go to stderr.\n"
                 "  SIGTERM or SIGINT drains and exits.\n");
}

static int open_listener(const char *addr, const char *what)
{
    if (!addr[0])
        return -1;
    char err[256];
    int fd = net_listen(addr, err, sizeof err);
    if (fd < 0)
        log_error("cannot listen for %s: %s", what, err);
    return fd;
}

/* The DKIM checker's news become emails to the account (spec 20 §2.4). */
static int dkim_note(struct store_conn *c, const struct store_dkim *set, enum dns_dkim_event e,
                     void **kept, void *ctx)
{
    static const enum send_dkim_event events[] = {
        [DNS_DKIM_SUCCESS] = SEND_DKIM_SUCCESS,
        [DNS_DKIM_FAILURE] = SEND_DKIM_FAILURE,
        [DNS_DKIM_MISSING] = SEND_DKIM_MISSING,
        [DNS_DKIM_REVOKED] = SEND_DKIM_REVOKED,
    };
    return send_dkim_notice_store(ctx, c, set, events[e], (struct send_notice **)kept);
}

static void dkim_note_after(void *kept, bool committed, void *ctx)
{
    send_dkim_notice_after(ctx, kept, committed);
}

static int io_thread_setup(struct daemon *d, struct io_thread *t, bool first)
{
    t->base = net_event_base();
    if (!t->base)
        return -1;
    int http_fd = open_listener(d->cfg.api_http_listen, "api.http_listen");
    int https_fd = open_listener(d->cfg.api_https_listen, "api.https_listen");
    if ((d->cfg.api_http_listen[0] && http_fd < 0) || (d->cfg.api_https_listen[0] && https_fd < 0))
        return -1;
    t->api = api_thread_new(d->api, t->base, d->tls, http_fd, https_fd);
    if (!t->api)
        return -1;
    if (d->cfg.admin_listen[0]) {
        int admin_fd = open_listener(d->cfg.admin_listen, "admin.listen");
        if (admin_fd < 0 ||
            !(t->admin = admin_http_new(&d->cfg, d->store, d->failures, t->base, admin_fd)))
            return -1;
    }
    if (smtp_configured(&d->cfg) && !(t->smtp = smtp_thread_new(d->smtp, t->base)))
        return -1;
    if (d->cfg.feedback_listen[0]) {
        struct smtp_feedback_hooks hooks;
        feedback_listener_hooks(d->feedback, &hooks);
        if (!(t->feedback = smtp_feedback_thread_new(d->smtp, t->base, &hooks)))
            return -1;
    }
    if (first && !d->cfg.auto_verify) {
        const struct dns_dkim_hooks hooks = {dkim_note, dkim_note_after, d->send};
        t->verifier = dns_verifier_start(t->base, &d->cfg, d->store, &hooks);
        if (!t->verifier)
            return log_error("cannot start domain verification"), -1;
    }
    return 0;
}

static void *io_thread_main(void *arg)
{
    struct io_thread *t = arg;
    pthread_setname_np(pthread_self(), "sesamed-io");
    event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The accept pipeline's committed messages go to the delivery engine. */
static void hand_to_delivery(const struct send_queued *q, void *ctx)
{
    struct delivery_message m = {
        q->id,   q->account_id, q->region,     q->source,          q->created_ms,
        q->data, q->len,        q->recipients, q->recipient_count, q->queued};
    delivery_enqueue(ctx, &m);
}

/* Before the writer starts: the operator's key is made and stored directly, once. */
static int dkim_operator_setup(struct daemon *d)
{
    struct store_conn *c = store_conn_open(d->store);
    int rc = c ? send_dkim_operator_setup(d->send, c) : -1;
    store_conn_close(c);
    return rc;
}

static int daemon_start(struct daemon *d)
{
    char err[512];
    if ((d->cfg.api_https_listen[0] || smtp_configured(&d->cfg)) &&
        !(d->tls = net_tls_server_ctx(d->cfg.tls_cert, d->cfg.tls_key, err, sizeof err)))
        return log_error("tls: %s", err), -1;
    if (store_open(&d->cfg, &d->store, err, sizeof err) != STORE_OK)
        return log_error("store: %s", err), -1;
    d->failures = auth_failures_new(d->cfg.auth_failure_limit, d->cfg.auth_failure_window_s * 1000);
    d->send = send_shared_new(&d->cfg, d->store);
    d->pool = core_pool_new(d->cfg.dkim_threads, "sesamed-cpu");
    if (!d->failures || !d->send || !d->pool || dkim_operator_setup(d) != 0 ||
        store_writer_start(d->store) != STORE_OK ||
        !(d->feedback = feedback_start(&d->cfg, d->store)) ||
        !(d->delivery = delivery_start(&d->cfg, d->store, d->feedback)) ||
        !(d->api = api_shared_new(&d->cfg, d->store, d->send, d->failures)))
        return -1;
    send_shared_on_queued(d->send, hand_to_delivery, d->delivery);
    send_shared_use_pool(d->send, d->pool);
    feedback_use_pool(d->feedback, d->pool);
    api_shared_use_feedback(d->api, d->feedback);
    if ((smtp_configured(&d->cfg) || d->cfg.feedback_listen[0]) &&
        !(d->smtp = smtp_shared_new(&d->cfg, d->store, d->send, d->failures, d->tls)))
        return -1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    d->thread_count = d->cfg.threads > 0 ? d->cfg.threads : (int)(cores > 0 ? cores : 1);
    if (d->thread_count > MAX_IO_THREADS)
        d->thread_count = MAX_IO_THREADS;
    for (int i = 0; i < d->thread_count; i++)
        if (io_thread_setup(d, &d->threads[i], i == 0))
            return -1;
    for (int i = 0; i < d->thread_count; i++)
        if (pthread_create(&d->threads[i].thread, NULL, io_thread_main, &d->threads[i]) != 0) {
            d->threads[i].thread = 0;
            return log_error("cannot start I/O thread %d", i), -1;
        }
    return 0;
}

static void io_thread_stop_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct io_thread *t = arg;
    api_thread_stop_accepting(t->api);
    admin_http_stop_accepting(t->admin);
    smtp_thread_stop_accepting(t->smtp);
    smtp_thread_stop_accepting(t->feedback);
}

static void io_thread_close_smtp(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct io_thread *t = arg;
    smtp_thread_close_sessions(t->smtp);
    smtp_thread_close_sessions(t->feedback);
}

static int smtp_sessions_open(struct daemon *d)
{
    int open = 0;
    for (int i = 0; i < d->thread_count; i++)
        if (d->threads[i].thread)
            open +=
                smtp_thread_active(d->threads[i].smtp) + smtp_thread_active(d->threads[i].feedback);
    return open;
}

/* SMTP sessions finish the message they are receiving or committing (the others were
 * told 421); the store writer must still run for them. After the bound, what is left is
 * closed. */
static void smtp_drain(struct daemon *d)
{
    if (!d->smtp)
        return;
    int64_t deadline = core_monotonic_us() + (int64_t)SMTP_DRAIN_MS * 1000;
    while (smtp_sessions_open(d) > 0 && core_monotonic_us() < deadline)
        usleep(20 * 1000);
    int left = smtp_sessions_open(d);
    if (left > 0)
        log_warn("smtp: %d sessions still open after %ds; closing them", left,
                 SMTP_DRAIN_MS / 1000);
    for (int i = 0; i < d->thread_count; i++)
        if (d->threads[i].thread)
            event_base_once(d->threads[i].base, -1, EV_TIMEOUT, io_thread_close_smtp,
                            &d->threads[i], NULL);
}

/* Draining: stop accepting, let SMTP sessions finish their messages, let the writer
 * finish what it was given (its completions reach the still-running loops, which answer
 * them), give the answers a moment to be flushed, then stop the loops and free
 * everything. */
static void daemon_stop(struct daemon *d)
{
    const struct timeval flush = {0, 300 * 1000};
    for (int i = 0; i < d->thread_count; i++)
        if (d->threads[i].thread)
            event_base_once(d->threads[i].base, -1, EV_TIMEOUT, io_thread_stop_accepting,
                            &d->threads[i], NULL);
    smtp_drain(d);
    core_pool_stop(d->pool);    /* signatures in progress finish and reach their threads */
    delivery_stop(d->delivery); /* before the writer: its last results are written */
    feedback_stop(d->feedback); /* POSTs in flight stay in the outbox for the next start */
    if (d->store)
        store_writer_stop(d->store);
    for (int i = 0; i < d->thread_count; i++)
        if (d->threads[i].thread)
            event_base_loopexit(d->threads[i].base, &flush);
    for (int i = 0; i < d->thread_count; i++)
        if (d->threads[i].thread)
            pthread_join(d->threads[i].thread, NULL);
    for (int i = 0; i < d->thread_count; i++) {
        struct io_thread *t = &d->threads[i];
        if (t->base)
            event_base_loop(t->base, EVLOOP_NONBLOCK); /* completions posted after the exit */
        dns_verifier_free(t->verifier);
        api_thread_free(t->api);
        admin_http_free(t->admin);
        smtp_thread_free(t->smtp);
        smtp_thread_free(t->feedback);
        if (t->base)
            event_base_free(t->base);
    }
    api_shared_free(d->api);
    smtp_shared_free(d->smtp);
    delivery_free(d->delivery);
    feedback_free(d->feedback); /* after the writer: its last callbacks have run */
    core_pool_free(d->pool);    /* no I/O thread is left to call it */
    send_shared_free(d->send);
    auth_failures_free(d->failures);
    store_close(d->store);
    if (d->tls)
        SSL_CTX_free(d->tls);
}

static void log_listeners(const struct sesame_config *cfg)
{
    if (cfg->api_http_listen[0])
        log_info("api (http) listening on %s", cfg->api_http_listen);
    if (cfg->api_https_listen[0])
        log_info("api (https) listening on %s", cfg->api_https_listen);
    if (cfg->admin_listen[0])
        log_info("admin api listening on %s%s", cfg->admin_listen,
                 cfg->admin_token[0] ? "" : " (admin.token is empty: every request is refused)");
    if (cfg->smtp_starttls_listen[0])
        log_info("smtp (STARTTLS) listening on %s", cfg->smtp_starttls_listen);
    if (cfg->smtp_tls_listen[0])
        log_info("smtp (implicit TLS) listening on %s", cfg->smtp_tls_listen);
    if (cfg->feedback_listen[0])
        log_info("feedback (bounce domain %s) listening on %s",
                 cfg->bounce_domain[0] ? cfg->bounce_domain : cfg->hostname, cfg->feedback_listen);
    if (cfg->admin_listen[0] && !net_addr_is_loopback(cfg->admin_listen))
        log_warn("admin api on %s: plain HTTP off loopback sends the token in clear; keep it "
                 "on a private network or behind a TLS proxy",
                 cfg->admin_listen);
    log_info("regions: %s%s (default %s)", cfg->regions[0], cfg->region_count > 1 ? ", ..." : "",
             cfg->regions[0]);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:h")) != -1) {
        if (opt == 'c')
            config_path = optarg;
        else
            return usage(opt == 'h' ? stdout : stderr), opt == 'h' ? 0 : 2;
    }
    if (!config_path)
        return usage(stderr), 2;
    static struct daemon d;
    char err[1024];
    config_defaults(&d.cfg);
    if (config_load(config_path, &d.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "sesamed: %s\n", err);
        return 2;
    }
    if (!strcmp(d.cfg.log_level, "debug"))
        log_set_level(LOG_DEBUG);
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* every thread inherits the mask */
    int rc = daemon_start(&d);
    if (rc == 0) {
        log_listeners(&d.cfg);
        log_info("sesamed ready: %d I/O threads, store %s", d.thread_count, d.cfg.store_path);
        int sig;
        sigwait(&stop, &sig);
        log_info("signal %d: draining", sig);
    }
    daemon_stop(&d);
    log_info("sesamed stopped");
    libevent_global_shutdown();
    return rc == 0 ? 0 : 1;
}
