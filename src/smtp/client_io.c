/* The SMTP client's connection: the bufferevent (plain, implicit TLS, or a TLS filter after
 * STARTTLS), the reply reader, connection events, and the output during the message.
 * Nothing here calls the caller: results go through smtp_client_post. */
#include "smtp/smtp_internal.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const int client_bev_options = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
/* Ciphertext a STARTTLS filter may pile up in the socket's buffer: without a bound it
 * encrypts a whole 10 MB message at once, a second copy of it. */
#define CLIENT_TLS_WRITE_MAX (64 * 1024)

/* ---- writing ---- */

void smtp_client_write(struct smtp_client *c, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

size_t smtp_client_unsent(struct smtp_client *c)
{
    if (!c->bev)
        return 0;
    size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

void smtp_client_output_discard(struct smtp_client *c)
{
    if (!c->bev)
        return;
    smtp_client_watch_output(c, false);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_drain(out, evbuffer_get_length(out));
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    if (under) {
        out = bufferevent_get_output(under);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    bufferevent_disable(c->bev, EV_WRITE);
}

/* ---- reading replies ---- */

static bool client_reading(const struct smtp_client *c)
{
    return c->state >= SMTP_CLIENT_STATE_GREETING && c->state != SMTP_CLIENT_STATE_DEAD &&
           c->state != SMTP_CLIENT_STATE_TLS_HANDSHAKE;
}

static void client_malformed(struct smtp_client *c, const char *line, size_t len)
{
    char shown[64];
    size_t n = len < sizeof shown - 1 ? len : sizeof shown - 1;
    for (size_t i = 0; i < n; i++)
        shown[i] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
    shown[n] = '\0';
    smtp_client_fail_local(c, "malformed reply while waiting for %s: \"%s%s\"",
                           smtp_client_waiting_for(c), shown, len > n ? "..." : "");
}

/* A reply while idle answers nothing we sent: a 421 before an idle close, or a server
 * out of step (say, two replies to one dot). Its code must not pass for the next
 * transaction's, so it is a local failure quoting what was said. */
static void client_dispatch(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 421)
        c->got_421 = true;
    if (c->state == SMTP_CLIENT_STATE_QUIT) {
        smtp_client_quit_over(c);
    } else if (c->state == SMTP_CLIENT_STATE_READY) {
        smtp_client_fail_local(c, "unexpected reply while idle: %d %s", r->code, r->text);
    } else if (c->state < SMTP_CLIENT_STATE_READY) {
        smtp_client_session_reply(c, r);
    } else {
        smtp_client_tx_reply(c, r);
    }
}

/* One line; a complete reply goes to the state's handler, which may read the reader's
 * full text (EHLO's) before it is reset. A line over SMTP_REPLY_LINE_MAX keeps its code
 * and loses the tail of its text: long 5xx explanations are common, and failing the
 * connection over one would turn a refusal into hours of retries. */
static void client_line(struct smtp_client *c, const char *line, size_t len)
{
    size_t kept = len < SMTP_REPLY_LINE_MAX ? len : SMTP_REPLY_LINE_MAX;
    int rc = smtp_reply_feed(&c->reader, line, kept);
    if (rc < 0) {
        client_malformed(c, line, len);
        return;
    }
    if (rc == 0)
        return;
    struct smtp_client_reply r;
    smtp_client_reply_set(&r, c->reader.code, "%s", buf_cstr(&c->reader.text));
    client_dispatch(c, &r);
    smtp_reply_reset(&c->reader);
}

/* Servers end lines with CRLF, some with a bare LF; both are accepted. Only complete
 * lines are read, so a reply split across packets waits for its end; a line past
 * SMTP_CLIENT_LINE_HARD_MAX is no SMTP server's and fails the connection. */
static void client_read(struct smtp_client *c)
{
    while (client_reading(c)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if ((eol.pos < 0 && evbuffer_get_length(in) > SMTP_CLIENT_LINE_HARD_MAX + 1) ||
            eol.pos > SMTP_CLIENT_LINE_HARD_MAX) {
            smtp_client_fail_local(c, "reply line too long while waiting for %s",
                                   smtp_client_waiting_for(c));
            return;
        }
        if (eol.pos < 0)
            return;
        char line[SMTP_CLIENT_LINE_HARD_MAX + 1];
        size_t len = (size_t)eol.pos;
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        client_line(c, line, len);
    }
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client_read(arg);
}

/* ---- connection events ---- */

/* The socket's pending error. errno is no use here: this runs deferred, long after the
 * failed call, so it holds whatever the last system call left. SO_ERROR is read from the
 * socket itself; libevent has usually consumed it already (a failed recv or connect check
 * clears it), and then the text says what happened without a cause. */
static int client_socket_error(struct smtp_client *c)
{
    if (!c->bev)
        return 0;
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    evutil_socket_t fd = bufferevent_getfd(under ? under : c->bev);
    int err = 0;
    socklen_t len = sizeof err;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return 0;
    return err;
}

static void client_plain_error(struct smtp_client *c, short what, char *out, size_t outlen)
{
    int err = client_socket_error(c);
    if (what & BEV_EVENT_EOF)
        snprintf(out, outlen, "connection closed by server");
    else if (err)
        snprintf(out, outlen, "%s", strerror(err));
    else if (c->state == SMTP_CLIENT_STATE_CONNECTING)
        snprintf(out, outlen, "connection failed");
    else
        snprintf(out, outlen, "connection reset");
}

static void client_error_text(struct smtp_client *c, short what, char *out, size_t outlen)
{
    unsigned long ssl_err = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
    SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    /* without verification OpenSSL still records a bad chain; it is no reason then */
    long verify = ssl && c->cfg.tls_verify ? SSL_get_verify_result(ssl) : X509_V_OK;
    char detail[256];
    if (verify != X509_V_OK)
        snprintf(detail, sizeof detail, "certificate: %s", X509_verify_cert_error_string(verify));
    else if (ssl_err)
        ERR_error_string_n(ssl_err, detail, sizeof detail);
    else
        client_plain_error(c, what, detail, sizeof detail);
    while (c->bev && bufferevent_get_openssl_error(c->bev))
        ; /* the rest of the queue says the same */
    ERR_clear_error();
    snprintf(out, outlen, "%s while waiting for %s", detail, smtp_client_waiting_for(c));
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct smtp_client *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SMTP_CLIENT_STATE_CONNECTING) {
            c->tls = c->cfg.tls == SMTP_CLIENT_TLS_IMPLICIT;
            smtp_client_session_start(c);
        } else if (c->state == SMTP_CLIENT_STATE_TLS_HANDSHAKE) {
            smtp_client_session_tls_done(c);
        }
        return;
    }
    client_read(c); /* replies that came with the close */
    if (c->state == SMTP_CLIENT_STATE_DEAD)
        return;
    char text[SMTP_REPLY_MAX];
    client_error_text(c, what, text, sizeof text);
    if (c->state == SMTP_CLIENT_STATE_QUIT) {
        smtp_client_quit_over(c);
        return;
    }
    smtp_client_fail_local(c, "%s", text);
}

/* ---- TLS ---- */

static bool client_is_ip(const char *name)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

/* Out of memory is the only way to fail: abort, as session.c does. */
static SSL *client_ssl_new(struct smtp_client *c)
{
    SSL *ssl = SSL_new(c->cfg.tls_ctx);
    if (!ssl)
        abort();
    if (c->server_name && !client_is_ip(c->server_name)) /* RFC 6066: no SNI for addresses */
        SSL_set_tlsext_host_name(ssl, c->server_name);
    if (c->cfg.tls_verify) {
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        if (c->server_name && !SSL_set1_host(ssl, c->server_name))
            abort();
    } else {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL); /* opportunistic: any certificate */
    }
    return ssl;
}

/* Bytes the server sent after its 220 and before the handshake are dropped: read as
 * replies they would pass for the TLS session's (RFC 3207 §6, response injection). */
void smtp_client_starttls(struct smtp_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        c->base, c->bev, client_ssl_new(c), BUFFEREVENT_SSL_CONNECTING, client_bev_options);
    if (!tls)
        abort();
    c->bev = tls;
    bufferevent_setwatermark(bufferevent_get_underlying(tls), EV_WRITE, 0, CLIENT_TLS_WRITE_MAX);
    bufferevent_setcb(tls, client_read_cb, NULL, client_event_cb, c);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
    smtp_client_expect(c, SMTP_CLIENT_STATE_TLS_HANDSHAKE);
}

static struct evbuffer *client_lowest_output(struct smtp_client *c)
{
    struct bufferevent *under = bufferevent_get_underlying(c->bev);
    return bufferevent_get_output(under ? under : c->bev);
}

/* Runs inside libevent's write path: it only re-arms the deadline. */
static void client_progress_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct smtp_client *c = arg;
    if (info->n_deleted && c->state == SMTP_CLIENT_STATE_BODY)
        smtp_client_expect(c, SMTP_CLIENT_STATE_BODY);
}

void smtp_client_watch_output(struct smtp_client *c, bool on)
{
    if (on && !c->progress) {
        c->progress = evbuffer_add_cb(client_lowest_output(c), client_progress_cb, c);
        if (!c->progress)
            abort();
    } else if (!on && c->progress) {
        evbuffer_remove_cb_entry(client_lowest_output(c), c->progress);
        c->progress = NULL;
    }
}

void smtp_client_bev_open(struct smtp_client *c)
{
    c->bev = c->cfg.tls == SMTP_CLIENT_TLS_IMPLICIT
                 ? bufferevent_openssl_socket_new(c->base, -1, client_ssl_new(c),
                                                  BUFFEREVENT_SSL_CONNECTING, client_bev_options)
                 : bufferevent_socket_new(c->base, -1, client_bev_options);
    if (!c->bev)
        abort();
    bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}
