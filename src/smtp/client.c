/* The SMTP client's life: creation, deadlines, failures, and the deferred event that runs
 * the caller's callbacks. The caller's callbacks run only from that event, with nothing of
 * ours on the stack above them, so they may free the client; and the client frees itself
 * only from it too (after QUIT). The bytes on the wire are client_io.c's. */
#include "smtp/smtp_internal.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 5321 §4.5.3.2's values, for a config that leaves a timeout at 0. */
#define CLIENT_DEFAULT_CONNECT_MS (30 * 1000)
#define CLIENT_DEFAULT_COMMAND_MS (5 * 60 * 1000)
#define CLIENT_DEFAULT_DATA_MS (3 * 60 * 1000)
#define CLIENT_DEFAULT_FINAL_MS (10 * 60 * 1000)

/* ---- replies and small helpers ---- */

void smtp_client_reply_set(struct smtp_client_reply *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->code = code;
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
    smtp_enhanced_parse(code, r->text, strlen(r->text), r->enhanced, sizeof r->enhanced);
}

static char *client_strdup(const char *s)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static void client_config_copy(struct smtp_client *c, const struct smtp_client_config *cfg)
{
    c->cfg = *cfg;
    c->helo_name = client_strdup(cfg->helo_name ? cfg->helo_name : "localhost");
    c->server_name = client_strdup(cfg->server_name);
    c->auth_user = client_strdup(cfg->auth_user);
    c->auth_pass = client_strdup(cfg->auth_user ? cfg->auth_pass : NULL);
    if (c->auth_user && !c->auth_pass)
        c->auth_pass = client_strdup("");
    c->cfg.helo_name = c->helo_name;
    c->cfg.server_name = c->server_name;
    c->cfg.auth_user = c->auth_user;
    c->cfg.auth_pass = c->auth_pass;
    int64_t *t[] = {&c->cfg.connect_timeout_ms, &c->cfg.greeting_timeout_ms,
                    &c->cfg.command_timeout_ms, &c->cfg.data_timeout_ms, &c->cfg.final_timeout_ms};
    int64_t dflt[] = {CLIENT_DEFAULT_CONNECT_MS, CLIENT_DEFAULT_COMMAND_MS,
                      CLIENT_DEFAULT_COMMAND_MS, CLIENT_DEFAULT_DATA_MS, CLIENT_DEFAULT_FINAL_MS};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (*t[i] <= 0)
            *t[i] = dflt[i];
}

/* ---- states and deadlines ---- */

/* BODY while the message is still leaving: its deadline is progress, not the reply. A
 * lone dot is no message: its 3 bytes leave at once, then the final reply is awaited. */
static bool client_taking_data(struct smtp_client *c)
{
    return c->state == SMTP_CLIENT_STATE_BODY && !c->lone_dot && smtp_client_unsent(c);
}

static int64_t client_timeout_ms(struct smtp_client *c)
{
    switch (c->state) {
    case SMTP_CLIENT_STATE_CONNECTING:
    case SMTP_CLIENT_STATE_TLS_HANDSHAKE:
        return c->cfg.connect_timeout_ms;
    case SMTP_CLIENT_STATE_GREETING:
    case SMTP_CLIENT_STATE_EHLO:
    case SMTP_CLIENT_STATE_HELO:
    case SMTP_CLIENT_STATE_STARTTLS:
    case SMTP_CLIENT_STATE_EHLO_AFTER_TLS:
        return c->cfg.greeting_timeout_ms;
    case SMTP_CLIENT_STATE_BODY: /* no progress while sending, then the final reply */
        return client_taking_data(c) ? c->cfg.data_timeout_ms : c->cfg.final_timeout_ms;
    case SMTP_CLIENT_STATE_READY:
    case SMTP_CLIENT_STATE_DEAD:
        return -1;
    default:
        return c->cfg.command_timeout_ms;
    }
}

void smtp_client_expect(struct smtp_client *c, enum smtp_client_state state)
{
    c->state = state;
    int64_t ms = client_timeout_ms(c);
    if (ms < 0) {
        evtimer_del(c->timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

enum smtp_client_stage smtp_client_stage_of(const struct smtp_client *c)
{
    static const enum smtp_client_stage stages[] = {
        [SMTP_CLIENT_STATE_CONNECTING] = SMTP_CLIENT_CONNECT,
        [SMTP_CLIENT_STATE_TLS_HANDSHAKE] = SMTP_CLIENT_STARTTLS,
        [SMTP_CLIENT_STATE_GREETING] = SMTP_CLIENT_GREETING,
        [SMTP_CLIENT_STATE_EHLO] = SMTP_CLIENT_EHLO,
        [SMTP_CLIENT_STATE_HELO] = SMTP_CLIENT_EHLO,
        [SMTP_CLIENT_STATE_STARTTLS] = SMTP_CLIENT_STARTTLS,
        [SMTP_CLIENT_STATE_EHLO_AFTER_TLS] = SMTP_CLIENT_EHLO,
        [SMTP_CLIENT_STATE_AUTH] = SMTP_CLIENT_AUTH,
        [SMTP_CLIENT_STATE_READY] = SMTP_CLIENT_MAIL,
        [SMTP_CLIENT_STATE_RSET] = SMTP_CLIENT_MAIL,
        [SMTP_CLIENT_STATE_MAIL] = SMTP_CLIENT_MAIL,
        [SMTP_CLIENT_STATE_RCPT] = SMTP_CLIENT_RCPT,
        [SMTP_CLIENT_STATE_DATA] = SMTP_CLIENT_DATA,
        [SMTP_CLIENT_STATE_BODY] = SMTP_CLIENT_FINAL,
        [SMTP_CLIENT_STATE_QUIT] = SMTP_CLIENT_FINAL,
        [SMTP_CLIENT_STATE_DEAD] = SMTP_CLIENT_MAIL,
    };
    return stages[c->state];
}

/* For local failures: "timeout waiting for <this>". */
const char *smtp_client_waiting_for(struct smtp_client *c)
{
    static const char *what[] = {
        [SMTP_CLIENT_STATE_CONNECTING] = "the connection",
        [SMTP_CLIENT_STATE_TLS_HANDSHAKE] = "the TLS handshake",
        [SMTP_CLIENT_STATE_GREETING] = "the greeting",
        [SMTP_CLIENT_STATE_EHLO] = "the reply to EHLO",
        [SMTP_CLIENT_STATE_HELO] = "the reply to HELO",
        [SMTP_CLIENT_STATE_STARTTLS] = "the reply to STARTTLS",
        [SMTP_CLIENT_STATE_EHLO_AFTER_TLS] = "the reply to EHLO",
        [SMTP_CLIENT_STATE_AUTH] = "the reply to AUTH",
        [SMTP_CLIENT_STATE_READY] = "the next transaction",
        [SMTP_CLIENT_STATE_RSET] = "the reply to RSET",
        [SMTP_CLIENT_STATE_MAIL] = "the reply to MAIL",
        [SMTP_CLIENT_STATE_RCPT] = "the reply to RCPT",
        [SMTP_CLIENT_STATE_DATA] = "the reply to DATA",
        [SMTP_CLIENT_STATE_BODY] = "the reply to the end of data",
        [SMTP_CLIENT_STATE_QUIT] = "the reply to QUIT",
        [SMTP_CLIENT_STATE_DEAD] = "nothing",
    };
    if (client_taking_data(c))
        return "the server to take the message data";
    return what[c->state];
}

/* ---- failures and the deferred callbacks ---- */

void smtp_client_post(struct smtp_client *c, enum smtp_client_pending what)
{
    c->pending = what;
    event_active(c->deferred, EV_TIMEOUT, 1);
}

void smtp_client_stop(struct smtp_client *c, const struct smtp_client_reply *r)
{
    smtp_client_output_discard(c);
    if (c->bev)
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    c->broken_reply = *r;
    smtp_client_expect(c, SMTP_CLIENT_STATE_DEAD);
}

void smtp_client_fail_at(struct smtp_client *c, enum smtp_client_stage stage,
                         const struct smtp_client_reply *r)
{
    enum smtp_client_state was = c->state;
    if (was == SMTP_CLIENT_STATE_DEAD)
        return;
    log_debug("smtp client: failed at stage %d: %d %s", (int)stage, r->code, r->text);
    smtp_client_tx_note_sent(c); /* before stop discards what is left */
    smtp_client_stop(c, r);
    if (was == SMTP_CLIENT_STATE_QUIT) {
        smtp_client_post(c, SMTP_CLIENT_PENDING_FREE);
    } else if (was >= SMTP_CLIENT_STATE_RSET) {
        smtp_client_tx_fail(c, stage, r);
    } else if (was < SMTP_CLIENT_STATE_READY) {
        c->ready =
            (struct smtp_client_ready){.ok = false, .stage = stage, .reply = *r, .tls = c->tls};
        smtp_client_post(c, SMTP_CLIENT_PENDING_READY);
    }
    /* READY: nobody is waiting; the next smtp_client_send reports r */
}

void smtp_client_fail(struct smtp_client *c, const struct smtp_client_reply *r)
{
    smtp_client_fail_at(c, smtp_client_stage_of(c), r);
}

void smtp_client_fail_local(struct smtp_client *c, const char *fmt, ...)
{
    struct smtp_client_reply r = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    smtp_client_fail(c, &r);
}

static void client_destroy(struct smtp_client *c)
{
    if (c->bev) {
        smtp_client_output_discard(c);
        bufferevent_free(c->bev);
    }
    event_free(c->timer);
    event_free(c->deferred);
    smtp_reply_free(&c->reader);
    free(c->rcpt_buf[0]);
    free(c->rcpt_buf[1]);
    free(c->helo_name);
    free(c->server_name);
    free(c->auth_user);
    if (c->auth_pass)
        OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
    free(c->auth_pass);
    free(c);
}

/* A client that died after posting its news (a reply while idle, a close) must not be
 * handed back as usable: the caller would start a transaction on it. */
static void client_ready_report(struct smtp_client *c)
{
    struct smtp_client_ready r = c->ready;
    if (r.ok && c->state == SMTP_CLIENT_STATE_DEAD)
        r = (struct smtp_client_ready){
            .ok = false, .stage = SMTP_CLIENT_MAIL, .reply = c->broken_reply, .tls = c->tls};
    smtp_client_ready_fn fn = c->ready_fn;
    c->ready_fn = NULL;
    fn(c, &r, c->ready_ctx);
}

/* r.rcpt stays valid through the callback: a transaction started from it fills the
 * client's other rcpt buffer (smtp_client_send). */
static void client_result_report(struct smtp_client *c)
{
    struct smtp_client_result r = c->result;
    if (c->state == SMTP_CLIENT_STATE_DEAD)
        r.reusable = false;
    smtp_client_tx_fn fn = c->done_fn;
    c->done_fn = NULL;
    fn(c, &r, c->done_ctx);
}

/* The caller's callback is the last thing this does: it may free c or start the next
 * transaction. The result is copied out first so that either leaves it intact. */
static void client_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_client *c = arg;
    enum smtp_client_pending pending = c->pending;
    c->pending = SMTP_CLIENT_PENDING_NONE;
    if (pending == SMTP_CLIENT_PENDING_FREE)
        client_destroy(c);
    else if (pending == SMTP_CLIENT_PENDING_READY && c->ready_fn)
        client_ready_report(c);
    else if (pending == SMTP_CLIENT_PENDING_RESULT && c->done_fn)
        client_result_report(c);
}

/* QUIT's reply, the close, or its deadline: the client frees itself (deferred, since this
 * runs inside a bufferevent callback). */
void smtp_client_quit_over(struct smtp_client *c)
{
    struct smtp_client_reply r = {0};
    smtp_client_reply_set(&r, 0, "connection closed after QUIT");
    smtp_client_stop(c, &r);
    smtp_client_post(c, SMTP_CLIENT_PENDING_FREE);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_client *c = arg;
    if (c->state == SMTP_CLIENT_STATE_QUIT) {
        smtp_client_quit_over(c);
        return;
    }
    smtp_client_fail_local(c, "timeout waiting for %s", smtp_client_waiting_for(c));
}

/* ---- the public API ---- */

struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *addr,
                                        int addrlen, const struct smtp_client_config *cfg,
                                        smtp_client_ready_fn ready, void *ctx)
{
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->base = base;
    c->ready_fn = ready;
    c->ready_ctx = ctx;
    client_config_copy(c, cfg);
    smtp_reply_init(&c->reader);
    c->timer = evtimer_new(base, client_timer_cb, c);
    c->deferred = event_new(base, -1, 0, client_deferred_cb, c);
    if (!c->timer || !c->deferred)
        abort();
    smtp_client_expect(c, SMTP_CLIENT_STATE_CONNECTING);
    if (cfg->tls != SMTP_CLIENT_TLS_NONE && !cfg->tls_ctx) {
        smtp_client_fail_local(c, "no TLS context for a TLS connection");
        return c;
    }
    smtp_client_bev_open(c);
    if (bufferevent_socket_connect(c->bev, addr, addrlen) < 0) /* its event comes later */
        smtp_client_fail_local(c, "connect: %s", strerror(errno ? errno : EINVAL));
    return c;
}

void smtp_client_quit(struct smtp_client *c)
{
    if (!c)
        return;
    c->ready_fn = NULL;
    c->done_fn = NULL;
    c->pending = SMTP_CLIENT_PENDING_NONE;
    event_del(c->deferred);
    if (c->state != SMTP_CLIENT_STATE_READY) { /* mid-way or dead: nothing polite to do */
        client_destroy(c);
        return;
    }
    smtp_client_write(c, "QUIT");
    smtp_client_expect(c, SMTP_CLIENT_STATE_QUIT);
}

void smtp_client_free(struct smtp_client *c)
{
    if (c)
        client_destroy(c);
}

SSL_CTX *smtp_client_tls_ctx(char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
        SSL_CTX_set_default_verify_paths(ctx) == 1)
        return ctx;
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    snprintf(err, errlen, "client TLS context: %s", detail);
    SSL_CTX_free(ctx);
    return NULL;
}
