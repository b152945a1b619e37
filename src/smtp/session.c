/* An SMTP session's connection: the bufferevent (plain, implicit TLS, or a TLS filter after
 * STARTTLS), the input loop that cuts commands into lines and hands DATA bytes to the
 * transaction, replies, timeouts, and closing. Sessions are freed only from event
 * callbacks, never inside the input loop, so no caller ever holds a freed session. */
#include "smtp/smtp_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_write_cb(struct bufferevent *bev, void *arg);
static void session_event_cb(struct bufferevent *bev, short what, void *arg);
static void session_unblock(struct smtp_session *s);

static const int bev_options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

/* ---- creation and freeing ---- */

/* Out of memory is the only way to fail here: abort, as elsewhere (after a partial
 * failure libevent may or may not own the SSL and the socket). */
static SSL *session_ssl_new(struct smtp_session *s)
{
    SSL *ssl = SSL_new(s->t->sh->tls);
    if (!ssl)
        abort();
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS); /* an idle TLS session then holds no buffers */
    return ssl;
}

static void session_link(struct smtp_session *s)
{
    struct smtp_thread *t = s->t;
    s->next = t->sessions;
    if (t->sessions)
        t->sessions->prev = s;
    t->sessions = s;
    atomic_fetch_add(&t->active, 1);
}

static void session_unlink(struct smtp_session *s)
{
    struct smtp_thread *t = s->t;
    if (s->prev)
        s->prev->next = s->next;
    else
        t->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    atomic_fetch_sub(&t->active, 1);
}

static struct bufferevent *session_bev_new(struct smtp_session *s, int fd, bool implicit_tls)
{
    struct event_base *base = s->t->base;
    struct bufferevent *bev =
        implicit_tls ? bufferevent_openssl_socket_new(base, fd, session_ssl_new(s),
                                                      BUFFEREVENT_SSL_ACCEPTING, bev_options)
                     : bufferevent_socket_new(base, fd, bev_options);
    if (!bev)
        abort();
    return bev;
}

static void session_bev_start(struct smtp_session *s)
{
    if (s->state == SMTP_STATE_HANDSHAKE) /* a client closing without close_notify is EOF */
        bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
    bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
    int64_t cmd = s->t->sh->cfg.smtp_command_timeout_s;
    struct timeval read = {cmd, 0}, write = {cmd, 0};
    bufferevent_set_timeouts(s->bev, &read, &write);
    s->timeout_s = (int)cmd;
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    /* The read timeout restarts at each handshake step: the timer ends a handshake
     * dragged out step by step. */
    if (s->state == SMTP_STATE_HANDSHAKE)
        smtp_session_set_timer(s, cmd * 1000);
}

void smtp_session_accept(struct smtp_thread *t, int fd, const char *peer, bool implicit_tls)
{
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->t = t;
    /* STARTTLS is always possible on submission; the feedback listener may have no TLS. */
    s->starttls_listener = !implicit_tls && t->sh->tls;
    s->state = implicit_tls ? SMTP_STATE_HANDSHAKE : SMTP_STATE_COMMAND;
    s->started_us = core_monotonic_us();
    core_strlcpy(s->peer, peer, sizeof s->peer);
    s->bev = session_bev_new(s, fd, implicit_tls);
    session_link(s);
    session_bev_start(s);
    log_debug("smtp: connection from %s (%s)", peer, implicit_tls ? "TLS" : "plain");
    if (!implicit_tls)
        smtp_session_greet(s);
}

/* The drain callback goes first: the underlying bufferevent may outlive the filter. */
static void session_bev_free(struct smtp_session *s)
{
    if (!s->bev)
        return;
    if (s->drained)
        evbuffer_remove_cb_entry(bufferevent_get_output(bufferevent_get_underlying(s->bev)),
                                 s->drained);
    s->drained = NULL;
    bufferevent_free(s->bev);
    s->bev = NULL;
}

void smtp_session_free(struct smtp_session *s)
{
    session_unlink(s);
    smtp_auth_end(s);
    smtp_tx_free(s);
    session_bev_free(s);
    if (s->timer)
        event_free(s->timer);
    free(s);
}

/* Closes the connection now. A session whose message is with the pipeline lives on
 * without it until the pipeline answers (the answer frees it). */
void smtp_session_abort(struct smtp_session *s)
{
    if (s->state != SMTP_STATE_COMMIT) {
        smtp_session_free(s);
        return;
    }
    if (s->timer) /* it would find no connection */
        evtimer_del(s->timer);
    session_bev_free(s);
    s->gone = true;
}

/* ---- replies ---- */

static void session_vreply_plain(struct smtp_session *s, const char *fmt, va_list ap)
{
    if (!s->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    evbuffer_add_vprintf(out, fmt, ap);
    evbuffer_add(out, "\r\n", 2);
}

/* The enhanced status code a reply gets when it names none (RFC 3463): what the shared
 * replies mean on the whole (syntax, sequence, a service closing), else the class's. */
static const char *reply_enhanced_default(int code)
{
    switch (code) {
    case 421:
        return "4.3.2";
    case 500:
        return "5.5.2";
    case 501:
    case 504:
    case 555:
        return "5.5.4";
    case 502:
    case 503:
        return "5.5.1";
    case 552:
        return "5.3.4";
    case 553:
        return "5.1.3";
    default:
        return code < 300 ? "2.0.0" : code < 500 ? "4.0.0" : "5.0.0";
    }
}

/* "ddd text" or "ddd-text" with an enhanced status code: one is added when missing. */
static void session_vreply_enhanced(struct smtp_session *s, const char *fmt, va_list ap)
{
    char line[2 * SMTP_REPLY_MAX];
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n < 0 || !s->bev)
        return;
    size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int code = len >= 4 ? atoi(line) : 0; /* the reply texts are ours: "ddd" then ' ' or '-' */
    char found[16];
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if ((code / 100 == 2 || code / 100 == 4 || code / 100 == 5) &&
        !smtp_enhanced_parse(code, line + 4, len - 4, found, sizeof found)) {
        evbuffer_add(out, line, 4);
        evbuffer_add_printf(out, "%s ", reply_enhanced_default(code));
        evbuffer_add(out, line + 4, len - 4);
    } else {
        evbuffer_add(out, line, len);
    }
    evbuffer_add(out, "\r\n", 2);
}

static void session_vreply(struct smtp_session *s, const char *fmt, va_list ap)
{
    if (s->t->feedback)
        session_vreply_enhanced(s, fmt, ap);
    else
        session_vreply_plain(s, fmt, ap);
}

void smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_vreply(s, fmt, ap);
    va_end(ap);
}

void smtp_session_reply_plain(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_vreply_plain(s, fmt, ap);
    va_end(ap);
}

void smtp_session_close_with(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    session_vreply(s, fmt, ap);
    va_end(ap);
    smtp_auth_end(s);
    smtp_tx_free(s);
    s->state = SMTP_STATE_CLOSING;
    s->closing_us = core_monotonic_us();
    if (s->bev)
        bufferevent_disable(s->bev, EV_READ);
    /* The write callback frees the session once the reply has left. */
}

/* Bytes not yet handed to the kernel, including a STARTTLS filter's underlying buffer. */
static size_t session_unsent(struct smtp_session *s)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

/* The last reply has left: a TLS session then says close_notify (clients complain of a
 * truncated stream without it), and the connection ends once that has left too. */
static void session_close_when_sent(struct smtp_session *s)
{
    int64_t left_us =
        s->closing_us + s->t->sh->cfg.smtp_command_timeout_s * 1000000 - core_monotonic_us();
    bool stuck = left_us < 0;
    if (session_unsent(s) > 0 && !stuck) {
        /* The write callback or session_drained calls again; the timer is the deadline
         * for a client that reads a byte at a time. */
        smtp_session_set_timer(s, left_us / 1000 + 1);
        return;
    }
    if (s->tls && !s->shutdown_sent && !stuck) {
        s->shutdown_sent = true;
        SSL_shutdown(bufferevent_openssl_get_ssl(s->bev));
        ERR_clear_error(); /* a peer already gone must not leave errors for other sessions */
        if (session_unsent(s) > 0) {
            smtp_session_set_timer(s, left_us / 1000 + 1);
            return;
        }
    }
    smtp_session_free(s);
}

static void session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct smtp_session *s = arg;
    if (s->state == SMTP_STATE_HANDSHAKE) {
        log_debug("smtp: %s: TLS handshake took too long", s->peer);
        smtp_session_abort(s);
    } else if (s->state == SMTP_STATE_AUTH_DELAY) {
        smtp_auth_delay_over(s);
    } else if (s->state == SMTP_STATE_CLOSING) {
        session_close_when_sent(s);
    } else if (s->output_blocked) {
        session_unblock(s);
    }
}

void smtp_session_set_timer(struct smtp_session *s, int64_t ms)
{
    if (!s->timer && !(s->timer = evtimer_new(s->t->base, session_timer_cb, s)))
        abort();
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

/* ---- timeouts ---- */

static int64_t session_age_s(const struct smtp_session *s)
{
    return (core_monotonic_us() - s->started_us) / 1000000;
}

static bool session_too_old(const struct smtp_session *s)
{
    return session_age_s(s) >= s->t->sh->cfg.smtp_max_connection_age_s;
}

/* The read timeout: data_timeout in DATA, else command_timeout, cut short so that an idle
 * session notices the end of its max_connection_age. */
static void session_timeouts(struct smtp_session *s)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    int64_t limit = cfg->smtp_command_timeout_s;
    if (s->state == SMTP_STATE_DATA) {
        limit = cfg->smtp_data_timeout_s;
    } else {
        int64_t left = cfg->smtp_max_connection_age_s - session_age_s(s);
        if (left < limit)
            limit = left > 1 ? left : 1;
    }
    if (limit == s->timeout_s)
        return;
    s->timeout_s = (int)limit;
    struct timeval read = {limit, 0}, write = {cfg->smtp_command_timeout_s, 0};
    bufferevent_set_timeouts(s->bev, &read, &write);
}

/* ---- the input loop ---- */

static bool session_wants_lines(const struct smtp_session *s)
{
    return s->state == SMTP_STATE_COMMAND || s->state == SMTP_STATE_AUTH_PLAIN ||
           s->state == SMTP_STATE_AUTH_USERNAME || s->state == SMTP_STATE_AUTH_PASSWORD;
}

/* One line from the input. False when none is complete yet, or the session is closing. */
static bool session_next_line(struct smtp_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    size_t buffered = evbuffer_get_length(in);
    if ((eol.pos < 0 && buffered > SMTP_MAX_LINE + 1) || eol.pos > SMTP_MAX_LINE) {
        smtp_session_close_with(s, "500 Line too long");
        return false;
    }
    if (eol.pos < 0)
        return false;
    char line[SMTP_MAX_LINE + 1];
    size_t len = (size_t)eol.pos;
    evbuffer_remove(in, line, len);
    evbuffer_drain(in, eol_len);
    line[len] = '\0';
    if (s->state == SMTP_STATE_COMMAND)
        smtp_session_command(s, line, len);
    else
        smtp_auth_response(s, line, len);
    OPENSSL_cleanse(line, len); /* an AUTH line carries the password in base64 */
    return true;
}

/* Replies pile up when a client pipelines without reading them: stop reading until they
 * are gone (session_unblock). A STARTTLS session's pile is mostly in the filter's
 * underlying buffer, which is why both are counted. */
static bool session_output_full(struct smtp_session *s)
{
    if (session_unsent(s) < SMTP_OUTPUT_MAX)
        return false;
    s->output_blocked = true;
    bufferevent_disable(s->bev, EV_READ);
    return true;
}

static void session_read_lines(struct smtp_session *s)
{
    s->in_read = true;
    for (;;) {
        if (s->state == SMTP_STATE_DATA) {
            if (!smtp_tx_feed(s))
                break;
        } else if (!session_wants_lines(s) || session_output_full(s) || !session_next_line(s)) {
            break;
        }
    }
    s->in_read = false;
    if (s->state == SMTP_STATE_DATA || session_wants_lines(s))
        session_timeouts(s);
}

/* After STARTTLS the TLS filter seals a record for every reply as it is queued; a
 * pipelined MAIL, RCPT and DATA would take three. Writing is held while one read's input
 * is processed, so that its replies leave in one record. (Implicit TLS writes from its
 * write event, which gathers them already.) */
static void session_process(struct smtp_session *s)
{
    struct bufferevent *held = s->tls && bufferevent_get_underlying(s->bev) ? s->bev : NULL;
    if (held)
        bufferevent_disable(held, EV_WRITE);
    session_read_lines(s);
    if (!held || s->bev != held)
        return;
    bufferevent_enable(held, EV_WRITE);
    /* Enabling starts the filter's write timeout even with nothing to send (a pause in
     * DATA would end at the command timeout); setting the timeouts again drops it while
     * the output is empty. */
    if (evbuffer_get_length(bufferevent_get_output(held)) == 0) {
        struct timeval read = {s->timeout_s, 0}, write = {s->t->sh->cfg.smtp_command_timeout_s, 0};
        bufferevent_set_timeouts(held, &read, &write);
    }
}

void smtp_session_resume(struct smtp_session *s)
{
    if (s->state != SMTP_STATE_COMMAND || !s->bev)
        return;
    session_timeouts(s);
    if (!s->output_blocked)
        bufferevent_enable(s->bev, EV_READ);
    if (!s->in_read) /* pipelined commands may be waiting in the buffer already */
        session_process(s);
}

/* Called by the write callback and session_drained as the output goes. */
static void session_unblock(struct smtp_session *s)
{
    if (!s->bev || session_unsent(s) >= SMTP_OUTPUT_MAX / 2)
        return;
    s->output_blocked = false;
    if (session_wants_lines(s)) {
        bufferevent_enable(s->bev, EV_READ);
        session_process(s);
    }
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct smtp_session *s = arg;
    if (s->state == SMTP_STATE_CLOSING) {
        session_close_when_sent(s);
        return;
    }
    if (s->output_blocked)
        session_unblock(s);
}

/* ---- events: handshake done, timeouts, the client gone ---- */

static void session_handshake_done(struct smtp_session *s)
{
    bool implicit = !s->starttls_listener;
    if (s->timer) /* the handshake's deadline */
        evtimer_del(s->timer);
    s->tls = true;
    s->state = SMTP_STATE_COMMAND;
    log_debug("smtp: %s: TLS established (%s)", s->peer,
              SSL_get_version(bufferevent_openssl_get_ssl(s->bev)));
    if (implicit)
        smtp_session_greet(s);
    session_timeouts(s);
}

static void session_timed_out(struct smtp_session *s, short what)
{
    if ((what & BEV_EVENT_WRITING) || s->state == SMTP_STATE_HANDSHAKE ||
        s->state == SMTP_STATE_CLOSING) {
        smtp_session_abort(s);
        return;
    }
    const char *host = s->t->sh->cfg.hostname;
    if (s->state == SMTP_STATE_COMMAND && session_too_old(s)) { /* idle at the end of its age */
        smtp_session_close_with(s, "421 %s Closing connection; please reconnect", host);
        return;
    }
    if (s->state == SMTP_STATE_DATA)
        log_info("smtp: %s: timeout during DATA; nothing stored", s->peer);
    smtp_session_close_with(s, "421 %s Timeout waiting for client input", host);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct smtp_session *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        session_handshake_done(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        session_timed_out(s, what);
        return;
    }
    if (s->state == SMTP_STATE_DATA)
        log_info("smtp: %s: connection lost during DATA; nothing stored", s->peer);
    else if (s->state == SMTP_STATE_HANDSHAKE)
        log_debug("smtp: %s: TLS handshake failed", s->peer);
    smtp_session_abort(s);
}

/* ---- STARTTLS (RFC 3207) ---- */

/* A STARTTLS filter's underlying buffer drains without a write callback of ours: this
 * watches it. It runs inside whatever libevent call drained the buffer, so it only arms
 * the timer; session_timer_cb does the work. */
static void session_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct smtp_session *s = arg;
    if (!info->n_deleted || !s->bev)
        return;
    size_t unsent = session_unsent(s);
    if ((s->state == SMTP_STATE_CLOSING && unsent == 0) ||
        (s->state != SMTP_STATE_CLOSING && s->output_blocked && unsent < SMTP_OUTPUT_MAX / 2))
        smtp_session_set_timer(s, 0);
}

/* Called after the 220 was queued. Bytes the client sent after STARTTLS, before the
 * handshake, are thrown away: read as commands they would run inside the TLS session
 * (the STARTTLS command injection attack). The 220 leaves first: the filter writes its
 * handshake bytes after it in the same buffer. */
void smtp_session_starttls(struct smtp_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    /* The filter keeps its own read timeouts; the socket's write timeout still ends a
     * client that stops reading. */
    struct timeval write = {s->t->sh->cfg.smtp_command_timeout_s, 0};
    bufferevent_set_timeouts(s->bev, NULL, &write);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        s->t->base, s->bev, session_ssl_new(s), BUFFEREVENT_SSL_ACCEPTING, bev_options);
    if (!tls)
        abort(); /* out of memory, as in session_bev_new */
    s->bev = tls;
    s->drained = evbuffer_add_cb(bufferevent_get_output(bufferevent_get_underlying(tls)),
                                 session_drained, s);
    if (!s->drained)
        abort();
    s->state = SMTP_STATE_HANDSHAKE;
    s->helo = false; /* RFC 3207: the client starts over with EHLO */
    smtp_tx_free(s);
    session_bev_start(s);
}

/* ---- closing after the current transaction ---- */

bool smtp_session_close_if_due(struct smtp_session *s)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    if (s->t->draining)
        smtp_session_close_with(s, "421 %s Service shutting down", cfg->hostname);
    else if (s->messages >= cfg->smtp_max_messages || session_too_old(s))
        smtp_session_close_with(s, "421 %s Closing connection; please reconnect", cfg->hostname);
    else
        return false;
    return true;
}

/* SIGTERM: a session between transactions hears 421 now; one inside DATA or its commit
 * is told after its reply (smtp_session_close_if_due). */
void smtp_session_drain(struct smtp_session *s)
{
    switch (s->state) {
    case SMTP_STATE_HANDSHAKE:
        smtp_session_abort(s);
        break;
    case SMTP_STATE_COMMAND:
    case SMTP_STATE_AUTH_PLAIN:
    case SMTP_STATE_AUTH_USERNAME:
    case SMTP_STATE_AUTH_PASSWORD:
    case SMTP_STATE_AUTH_DELAY:
        if (s->timer)
            evtimer_del(s->timer);
        smtp_session_close_with(s, "421 %s Service shutting down", s->t->sh->cfg.hostname);
        break;
    default:
        break;
    }
}
