/* SMTP load generator for Sesame's submission interface (bench/README.md, "SMTP").
 *
 * One libevent loop, many connections, each a small state machine: connect, 220, EHLO,
 * STARTTLS (or implicit TLS with -i), EHLO, AUTH PLAIN with an initial response, then
 * by mode:
 *   send:    messages back to back on every connection for -d seconds; MAIL, RCPT and
 *            DATA go in one write (PIPELINING), then the -s byte message and its dot;
 *            latency is from MAIL to "250 Ok <id>"; a 421 to MAIL (smtp.max_messages,
 *            the connection's age) is answered by connecting again, as SES asks;
 *   connect: QUIT right after AUTH and connect again: full TLS handshakes per second
 *            (-r: resume the TLS session the previous connection got);
 *   idle:    hold -c authenticated TLS connections open for -d seconds (sesamed's RSS is
 *            read by the calling script).
 * Any reply other than the expected one stops the run with an error. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_SEND, MODE_CONNECT, MODE_IDLE };

enum step {
    S_GREETING,
    S_EHLO1,
    S_STARTTLS,
    S_EHLO2,
    S_AUTH,
    S_MAIL,
    S_RCPT,
    S_DATA,
    S_SENT,
    S_QUIT,
    S_IDLE
};

struct options {
    const char *host, *user, *password, *from, *to;
    int port, connections, seconds, size;
    bool implicit, resume;
    enum mode mode;
};

struct conn {
    struct bench *b;
    struct bufferevent *bev;
    enum step step;
    SSL_SESSION *session; /* for -r */
    double started;       /* of the message in flight */
};

struct bench {
    struct options o;
    struct event_base *base;
    SSL_CTX *tls;
    char *message; /* the DATA payload with its final dot */
    size_t message_len;
    char auth[640];
    double start, stop_at;
    long done, connected, failed, reconnects;
    double *latencies;
    long latency_count, latency_cap;
    bool stopping;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void conn_start(struct bench *b, SSL_SESSION *session);

static void conn_fail(struct conn *c, const char *why, const char *line)
{
    fprintf(stderr, "smtp_load: %s%s%s\n", why, line ? ": " : "", line ? line : "");
    c->b->failed++;
    event_base_loopbreak(c->b->base);
}

static void conn_send(struct conn *c, const char *text)
{
    bufferevent_write(c->bev, text, strlen(text));
}

static void conn_close(struct conn *c, bool again)
{
    struct bench *b = c->b;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    SSL_SESSION *session = b->o.resume && ssl ? SSL_get1_session(ssl) : NULL;
    bufferevent_free(c->bev);
    if (c->session)
        SSL_SESSION_free(c->session);
    free(c);
    if (again && !b->stopping)
        conn_start(b, session);
    else if (session)
        SSL_SESSION_free(session);
}

static void latency_add(struct bench *b, double seconds)
{
    if (b->latency_count == b->latency_cap) {
        b->latency_cap = b->latency_cap ? 2 * b->latency_cap : 65536;
        b->latencies = realloc(b->latencies, b->latency_cap * sizeof *b->latencies);
        if (!b->latencies)
            abort();
    }
    b->latencies[b->latency_count++] = seconds;
}

static void message_begin(struct conn *c)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n", c->b->o.from,
             c->b->o.to);
    c->started = now_s();
    c->step = S_MAIL;
    conn_send(c, cmd);
}

/* Wraps the plain connection in TLS (STARTTLS) on the same socket. */
static bool conn_starttls(struct conn *c)
{
    SSL *ssl = SSL_new(c->b->tls);
    if (!ssl)
        return false;
    if (c->session)
        SSL_set_session(ssl, c->session);
    struct bufferevent *tls =
        bufferevent_openssl_filter_new(c->b->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tls)
        return false;
    c->bev = tls;
    return true;
}

static void conn_read(struct bufferevent *bev, void *arg);
static void conn_event(struct bufferevent *bev, short what, void *arg);

/* Acts on one complete reply (its last line). Returns false to stop reading. */
static bool conn_reply(struct conn *c, int code, const char *line)
{
    struct bench *b = c->b;
    switch (c->step) {
    case S_GREETING:
        if (code != 220)
            return conn_fail(c, "greeting", line), false;
        c->step = S_EHLO1;
        conn_send(c, "EHLO bench.example\r\n");
        return true;
    case S_EHLO1:
        if (code != 250)
            return conn_fail(c, "EHLO", line), false;
        if (b->o.implicit) {
            c->step = S_AUTH;
            conn_send(c, b->auth);
            return true;
        }
        c->step = S_STARTTLS;
        conn_send(c, "STARTTLS\r\n");
        return true;
    case S_STARTTLS:
        if (code != 220 || !conn_starttls(c))
            return conn_fail(c, "STARTTLS", line), false;
        bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        c->step = S_EHLO2;
        conn_send(c, "EHLO bench.example\r\n");
        return false; /* the old bufferevent is now underneath: read from the new one */
    case S_EHLO2:
        if (code != 250)
            return conn_fail(c, "EHLO after STARTTLS", line), false;
        c->step = S_AUTH;
        conn_send(c, b->auth);
        return true;
    case S_AUTH:
        if (code != 235)
            return conn_fail(c, "AUTH", line), false;
        b->connected++;
        if (b->o.mode == MODE_CONNECT) {
            c->step = S_QUIT;
            conn_send(c, "QUIT\r\n");
        } else if (b->o.mode == MODE_IDLE) {
            c->step = S_IDLE;
            if (b->connected == b->o.connections) {
                printf("all %ld connected after %.1f s\n", b->connected, now_s() - b->start);
                fflush(stdout);
            }
        } else {
            message_begin(c);
        }
        return true;
    case S_MAIL:
        if (code == 421) { /* smtp.max_messages or the connection's age: reconnect */
            b->reconnects++;
            conn_close(c, true);
            return false;
        }
        /* fall through */
    case S_RCPT:
        if (code != 250)
            return conn_fail(c, c->step == S_MAIL ? "MAIL" : "RCPT", line), false;
        c->step++;
        return true;
    case S_DATA:
        if (code != 354)
            return conn_fail(c, "DATA", line), false;
        c->step = S_SENT;
        bufferevent_write(c->bev, b->message, b->message_len);
        return true;
    case S_SENT:
        if (code != 250 || strncmp(line, "250 Ok ", 7))
            return conn_fail(c, "end of data", line), false;
        b->done++;
        latency_add(b, now_s() - c->started);
        if (b->stopping) {
            c->step = S_QUIT;
            conn_send(c, "QUIT\r\n");
        } else {
            message_begin(c);
        }
        return true;
    case S_QUIT:
        conn_close(c, b->o.mode == MODE_CONNECT);
        return false;
    case S_IDLE:
        return conn_fail(c, "unexpected reply while idle", line), false;
    }
    return false;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t len;
    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF))) {
        bool last = len >= 3 && (len == 3 || line[3] == ' ');
        bool go_on = true;
        if (last)
            go_on = conn_reply(c, atoi(line), line);
        free(line);
        if (!go_on)
            return;
    }
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return;
    if (c->step == S_QUIT && (what & BEV_EVENT_EOF)) {
        conn_close(c, c->b->o.mode == MODE_CONNECT);
        return;
    }
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    conn_fail(c, "connection", e ? ERR_error_string(e, NULL) : "closed or failed");
}

static void conn_start(struct bench *b, SSL_SESSION *session)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->b = b;
    c->session = session;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(b->o.port)};
    inet_pton(AF_INET, b->o.host, &sa.sin_addr);
    if (b->o.implicit) {
        SSL *ssl = SSL_new(b->tls);
        if (session)
            SSL_set_session(ssl, session);
        c->bev = bufferevent_openssl_socket_new(b->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    } else {
        c->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa, sizeof sa) < 0)
        conn_fail(c, "connect", NULL);
}

static void make_message(struct bench *b)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "From: %s\r\nTo: %s\r\nSubject: smtp_load\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
                     b->o.from, b->o.to);
    size_t size = b->o.size > n + 5 ? (size_t)b->o.size : (size_t)n + 5;
    b->message = malloc(size + 8);
    if (!b->message)
        abort();
    memcpy(b->message, head, n);
    size_t at = n;
    while (at < size - 2) { /* 76-character lines of text */
        size_t line = size - 2 - at < 78 ? size - 2 - at : 78;
        for (size_t i = 0; i + 2 < line; i++)
            b->message[at + i] = 'a' + (char)((at + i) % 26);
        memcpy(b->message + at + (line >= 2 ? line - 2 : 0), "\r\n", line >= 2 ? 2 : 0);
        at += line >= 2 ? line : 2;
    }
    memcpy(b->message + at, ".\r\n", 3);
    b->message_len = at + 3;
}

static void make_auth(struct bench *b)
{
    unsigned char plain[400];
    size_t ul = strlen(b->o.user), pl = strlen(b->o.password);
    if (ul + pl + 2 > sizeof plain)
        abort();
    plain[0] = 0;
    memcpy(plain + 1, b->o.user, ul);
    plain[1 + ul] = 0;
    memcpy(plain + 2 + ul, b->o.password, pl);
    char b64[600];
    EVP_EncodeBlock((unsigned char *)b64, plain, (int)(ul + pl + 2));
    snprintf(b->auth, sizeof b->auth, "AUTH PLAIN %s\r\n", b64);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bench *b = arg;
    if (now_s() >= b->stop_at) {
        b->stopping = true;
        event_base_loopexit(b->base, NULL);
    }
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(struct bench *b, double elapsed)
{
    printf("mode %s, %d connections, %s, %d s\n",
           b->o.mode == MODE_SEND      ? "send"
           : b->o.mode == MODE_CONNECT ? "connect"
                                       : "idle",
           b->o.connections, b->o.implicit ? "implicit TLS" : "STARTTLS", b->o.seconds);
    if (b->o.mode == MODE_SEND) {
        qsort(b->latencies, b->latency_count, sizeof *b->latencies, compare_double);
        double p50 = b->latency_count ? b->latencies[b->latency_count / 2] : 0;
        double p99 = b->latency_count ? b->latencies[b->latency_count * 99 / 100] : 0;
        printf("messages: %ld (%d bytes each) in %.1f s: %.0f/s; p50 %.2f ms, p99 %.2f ms; "
               "%ld reconnections after 421\n",
               b->done, b->o.size, elapsed, b->done / elapsed, p50 * 1e3, p99 * 1e3, b->reconnects);
    } else if (b->o.mode == MODE_CONNECT) {
        printf("authenticated TLS connections: %ld in %.1f s: %.0f/s (%s)\n", b->connected, elapsed,
               b->connected / elapsed, b->o.resume ? "sessions resumed" : "full handshakes");
    } else {
        printf("idle authenticated TLS connections held: %ld\n", b->connected);
    }
}

static int usage(void)
{
    fprintf(stderr,
            "usage: smtp_load -h HOST -p PORT -u USER -w PASSWORD -f FROM -t TO\n"
            "  [-m send|connect|idle] [-c CONNECTIONS] [-d SECONDS] [-s BYTES] [-i] [-r]\n");
    return 2;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.host = "127.0.0.1", .connections = 50, .seconds = 10, .size = 10240};
    int opt;
    while ((opt = getopt(argc, argv, "h:p:u:w:f:t:m:c:d:s:ir")) != -1) {
        switch (opt) {
        case 'h':
            o->host = optarg;
            break;
        case 'p':
            o->port = atoi(optarg);
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'w':
            o->password = optarg;
            break;
        case 'f':
            o->from = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'c':
            o->connections = atoi(optarg);
            break;
        case 'd':
            o->seconds = atoi(optarg);
            break;
        case 's':
            o->size = atoi(optarg);
            break;
        case 'i':
            o->implicit = true;
            break;
        case 'r':
            o->resume = true;
            break;
        case 'm':
            o->mode = !strcmp(optarg, "connect") ? MODE_CONNECT
                      : !strcmp(optarg, "idle")  ? MODE_IDLE
                                                 : MODE_SEND;
            break;
        default:
            return -1;
        }
    }
    return o->port && o->user && o->password && o->from && o->to && o->connections > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct bench b;
    if (parse_options(argc, argv, &b.o) != 0)
        return usage();
    b.base = event_base_new();
    b.tls = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(b.tls, SSL_VERIFY_NONE, NULL); /* the dev instance's self-signed cert */
    SSL_CTX_set_session_cache_mode(b.tls, SSL_SESS_CACHE_CLIENT);
    make_message(&b);
    make_auth(&b);
    for (int i = 0; i < b.o.connections; i++)
        conn_start(&b, NULL);
    b.start = now_s();
    b.stop_at = b.start + b.o.seconds;
    struct event *tick = event_new(b.base, -1, EV_PERSIST, on_tick, &b);
    struct timeval every = {0, 100000};
    event_add(tick, &every);
    event_base_dispatch(b.base);
    double elapsed = now_s() - b.start;
    if (b.failed)
        return 1;
    report(&b, elapsed);
    return 0;
}
