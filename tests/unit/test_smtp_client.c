/* The SMTP client: the pure protocol helpers (EHLO capabilities, enhanced status codes,
 * the data as sent), then real exchanges: against Postfix's smtp-sink (started here, when
 * installed) and against a scripted server thread that sends exact bytes (split replies,
 * garbage, a close mid-reply, silence) to check how failures are classified.
 *
 * By hand: test_smtp_client --send HOST PORT none|opportunistic|required|implicit
 * [verify] [USER PASS] connects, sends one message and prints what happened. */
#include "smtp/smtp_internal.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- EHLO capabilities ---- */

static void caps_of(const char *text, struct smtp_ehlo_caps *caps)
{
    smtp_ehlo_parse(text, strlen(text), caps);
}

static void test_ehlo_caps(void)
{
    struct smtp_ehlo_caps caps;
    caps_of("mx.example.com Hello\nPIPELINING\nSIZE 35882577\n8BITMIME\nSTARTTLS\n"
            "ENHANCEDSTATUSCODES\nAUTH PLAIN LOGIN XOAUTH2",
            &caps);
    CHECK(caps.pipelining && caps.eightbitmime && caps.starttls && caps.enhancedstatuscodes);
    CHECK(caps.size && caps.max_size == 35882577);
    CHECK(caps.auth_plain && caps.auth_login);

    caps_of("x\nsize\nauth=login\npipelining  ", &caps); /* lower case, old AUTH=, spaces */
    CHECK(caps.size && caps.max_size == 0 && caps.auth_login && !caps.auth_plain);
    CHECK(caps.pipelining && !caps.starttls);

    caps_of("PIPELINING STARTTLS SIZE 10", &caps); /* the first line is the server's name */
    CHECK(!caps.pipelining && !caps.starttls && !caps.size);

    caps_of("x\nSIZE 12x\nSIZE99\nAUTH CRAM-MD5\nPIPELININGX\nSTARTTLS", &caps);
    CHECK(caps.size && caps.max_size == 0 && !caps.auth_plain && !caps.auth_login);
    CHECK(!caps.pipelining && caps.starttls);

    caps_of("x\nSIZE 99999999999999999999999", &caps);
    CHECK(caps.max_size == INT64_MAX);

    caps_of("", &caps);
    CHECK(!caps.size && !caps.pipelining);
}

/* ---- enhanced status codes ---- */

static const char *enhanced(int code, const char *text)
{
    static char out[16];
    smtp_enhanced_parse(code, text, strlen(text), out, sizeof out);
    return out;
}

static void test_enhanced(void)
{
    CHECK_STR(enhanced(550, "5.1.1 <a@b>: Recipient address rejected"), "5.1.1");
    CHECK_STR(enhanced(250, "2.0.0 Ok: queued as 1234"), "2.0.0");
    CHECK_STR(enhanced(452, "4.5.3 Too many recipients"), "4.5.3");
    CHECK_STR(enhanced(552, "5.3.4"), "5.3.4");
    CHECK_STR(enhanced(550, "5.123.456 long"), "5.123.456");
    CHECK_STR(enhanced(550, "5.7.1\nsecond line"), "5.7.1");
    CHECK_STR(enhanced(0, "4.2.2 any class"), "4.2.2");

    CHECK_STR(enhanced(550, "2.0.0 class differs from the code"), "");
    CHECK_STR(enhanced(550, "3.1.1 bad class"), "");
    CHECK_STR(enhanced(550, "5.1234.1 subject too long"), "");
    CHECK_STR(enhanced(550, "5.1.1234 detail too long"), "");
    CHECK_STR(enhanced(550, "5..1 empty subject"), "");
    CHECK_STR(enhanced(550, "5.1. empty detail"), "");
    CHECK_STR(enhanced(550, "5.1.1x glued"), "");
    CHECK_STR(enhanced(550, "No such user"), "");
    CHECK_STR(enhanced(550, ""), "");
    CHECK_STR(enhanced(550, " 5.1.1 leading space"), "");
    char small[4];
    CHECK(!smtp_enhanced_parse(550, "5.1.1", 5, small, sizeof small));
}

/* ---- the data as sent ---- */

static void stuffed_is(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b);
    smtp_data_stuff_buf(in, strlen(in), &b);
    CHECK_STR(buf_cstr(&b), want);
    buf_free(&b);
}

static void test_stuffing(void)
{
    stuffed_is("Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n\r\nbody\r\n.\r\n");
    stuffed_is("a\r\n.b\r\n..c\r\n.\r\n", "a\r\n..b\r\n...c\r\n..\r\n.\r\n");
    stuffed_is(".first", "..first\r\n.\r\n");
    stuffed_is("lf\n.only\nlines\n", "lf\r\n..only\r\nlines\r\n.\r\n"); /* LF only */
    stuffed_is("no final newline", "no final newline\r\n.\r\n");        /* unterminated */
    stuffed_is("", ".\r\n");                                            /* empty */
    stuffed_is("\n", "\r\n.\r\n");
    stuffed_is("a\r.b\rc", "a\r\n..b\r\nc\r\n.\r\n"); /* bare CR: no smuggled end of data */
    stuffed_is("x\n.\r\ny", "x\r\n..\r\ny\r\n.\r\n");
    stuffed_is("mid.dot\r\n", "mid.dot\r\n.\r\n");

    bool as_is = false;
    CHECK(smtp_data_size("", 0, &as_is) == 0 && as_is);
    CHECK(smtp_data_size("ab\r\n", 4, &as_is) == 4 && as_is);
    CHECK(smtp_data_size("ab\n.c", 5, &as_is) == 8 && !as_is); /* CRLF counted, the dot not */
    CHECK(smtp_data_size("ab", 2, &as_is) == 4 && !as_is);
    CHECK(smtp_data_size("ab\r\n.c\r\n", 8, &as_is) == 8 && !as_is);
    CHECK(smtp_data_size("ab\rc\r\n", 6, &as_is) == 7 && !as_is);
    CHECK(smtp_data_size("ab\r\n", 4, NULL) == 4);
}

/* ---- running a client ---- */

#define MAX_RCPTS 8
#define CLIENT_TEST_MS 2000

struct run {
    struct event_base *base;
    struct event *guard;
    struct smtp_client *c;
    bool ready_called, done_called;
    bool free_on_failure; /* smtp_client_free from inside the ready callback */
    struct smtp_client_ready ready;
    struct smtp_client_result res;
    struct smtp_client_reply rcpt[MAX_RCPTS];
};

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static void on_ready(struct smtp_client *c, const struct smtp_client_ready *r, void *ctx)
{
    struct run *run = ctx;
    run->ready = *r;
    run->ready_called = true;
    if (!r->ok && run->free_on_failure) {
        smtp_client_free(c);
        run->c = NULL;
    }
    event_base_loopbreak(run->base);
}

static void on_done(struct smtp_client *c, const struct smtp_client_result *r, void *ctx)
{
    (void)c;
    struct run *run = ctx;
    run->res = *r;
    for (int i = 0; i < r->rcpt_count && i < MAX_RCPTS; i++)
        run->rcpt[i] = r->rcpt[i];
    run->res.rcpt = run->rcpt;
    run->done_called = true;
    event_base_loopbreak(run->base);
}

/* Runs the loop until flag is set or 5 s have passed. */
static bool run_wait(struct run *run, const bool *flag)
{
    struct timeval limit = {5, 0};
    evtimer_add(run->guard, &limit);
    while (!*flag && event_base_dispatch(run->base) == 0 && !event_base_got_break(run->base))
        ;
    evtimer_del(run->guard);
    return *flag;
}

static struct smtp_client_config client_config(enum smtp_client_tls tls, SSL_CTX *ctx)
{
    return (struct smtp_client_config){
        .helo_name = "client.test",
        .server_name = "localhost",
        .tls = tls,
        .tls_ctx = ctx,
        .connect_timeout_ms = CLIENT_TEST_MS,
        .greeting_timeout_ms = CLIENT_TEST_MS,
        .command_timeout_ms = CLIENT_TEST_MS,
        .data_timeout_ms = CLIENT_TEST_MS,
        .final_timeout_ms = CLIENT_TEST_MS,
    };
}

static void run_init(struct run *run)
{
    memset(run, 0, sizeof *run);
    run->base = event_base_new();
    run->guard = evtimer_new(run->base, guard_cb, run->base);
}

static bool run_connect(struct run *run, int port, const struct smtp_client_config *cfg)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    run->ready_called = false;
    run->c =
        smtp_client_connect(run->base, (struct sockaddr *)&sin, sizeof sin, cfg, on_ready, run);
    CHECK(!run->ready_called); /* deferred, never from inside the call */
    return run_wait(run, &run->ready_called) && run->ready.ok;
}

static void run_send(struct run *run, const struct smtp_client_tx *tx)
{
    run->done_called = false;
    memset(&run->res, 0, sizeof run->res);
    smtp_client_send(run->c, tx, on_done, run);
    CHECK(!run->done_called);
    CHECK(run_wait(run, &run->done_called));
}

/* Quits politely (or frees) and runs the loop until the client is gone. */
static void run_end(struct run *run, bool quit)
{
    if (quit)
        smtp_client_quit(run->c);
    else
        smtp_client_free(run->c);
    run->c = NULL;
    event_free(run->guard);
    event_base_dispatch(run->base); /* returns once the client's events are all gone */
    event_base_free(run->base);
}

static const char *const two_rcpts[] = {"one@rcpt.test", "two@rcpt.test"};

static struct smtp_client_tx tx_of(const char *data, const char *const *rcpts, int n)
{
    return (struct smtp_client_tx){.mail_from = "sender@from.test",
                                   .rcpts = rcpts,
                                   .rcpt_count = n,
                                   .data = data,
                                   .len = strlen(data)};
}

/* About size bytes: long CRLF lines (sent by reference), then short LF-only lines and
 * dot-led lines (copied as they are fixed). */
static char *big_message(size_t size)
{
    char *m = malloc(size + 1);
    size_t n = 0;
    while (n + 1000 < size / 2) {
        memset(m + n, 'a' + (int)(n % 26), 998);
        memcpy(m + n + 998, "\r\n", 2);
        n += 1000;
    }
    while (n + 40 < size) {
        n += (size_t)snprintf(m + n, size + 1 - n, "%s line %zu\n", n % 3 ? "short" : ".dot", n);
    }
    m[n] = '\0';
    return m;
}

/* ---- a scripted server ----
 * Steps: S sends arg, L reads n lines, D reads lines up to a lone ".", W sleeps n ms, C
 * closes. Everything read is kept in got, for the test to look at after the join. */

struct step {
    char op;
    const char *arg;
    int n;
};

struct script {
    const struct step *steps;
    int listen_fd, port;
    pthread_t thread;
    struct buf got;
};

static bool script_line(int fd, struct buf *got, bool *dot)
{
    size_t start = got->len;
    char ch;
    for (;;) {
        if (recv(fd, &ch, 1, 0) != 1)
            return false;
        buf_append(got, &ch, 1);
        if (ch == '\n')
            break;
    }
    *dot = got->len - start == 3 && !memcmp(got->data + start, ".\r\n", 3);
    return true;
}

static void *script_run(void *arg)
{
    struct script *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool dot = false, ok = true;
    for (const struct step *st = s->steps; ok && st->op != 'C'; st++) {
        if (st->op == 'S')
            ok = send(fd, st->arg, strlen(st->arg), MSG_NOSIGNAL) >= 0;
        for (int i = 0; ok && st->op == 'L' && i < st->n; i++)
            ok = script_line(fd, &s->got, &dot);
        for (dot = false; ok && st->op == 'D' && !dot;)
            ok = script_line(fd, &s->got, &dot);
        if (st->op == 'W')
            usleep((useconds_t)st->n * 1000);
    }
    close(fd);
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    /* A fixed small window (no autotuning): a server that stops reading stalls the
     * client soon, whatever the host's tcp_rmem. */
    int rcvbuf = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        abort();
    *port = ntohs(sin.sin_port);
    return fd;
}

static void script_start(struct script *s, const struct step *steps)
{
    memset(s, 0, sizeof *s);
    s->steps = steps;
    buf_init(&s->got);
    s->listen_fd = listen_loopback(&s->port);
    if (pthread_create(&s->thread, NULL, script_run, s))
        abort();
}

static void script_join(struct script *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static bool got_has(struct script *s, const char *what)
{
    return strstr(buf_cstr(&s->got), what) != NULL;
}

/* Split greeting, SIZE, a local 552, one of two recipients refused (pipelined), the data
 * as sent, QUIT. */
static void test_script_pipelined(void)
{
    static const struct step steps[] = {
        {'S', "220-first line\r\n220 sec", 0},
        {'W', NULL, 100},
        {'S', "ond\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-srv.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n", 0},
        {'L', NULL, 4},
        {'S', "250 2.1.0 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n354 go ahead\r\n", 0},
        {'D', NULL, 0},
        {'S', "250 2.0.0 queued as X\r\n", 0},
        {'L', NULL, 1},
        {'S', "221 bye\r\n", 0},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    CHECK(run_connect(&run, s.port, &cfg));
    CHECK_STR(run.ready.reply.text, "first line\nsecond");
    CHECK(run.ready.pipelining && run.ready.eightbitmime && run.ready.max_size == 1000);
    CHECK(!run.ready.tls);

    char big[2001];
    memset(big, 'x', 2000);
    big[2000] = '\0';
    struct smtp_client_tx tx = tx_of(big, two_rcpts, 2);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_MAIL && run.res.mail.code == 552);
    CHECK_STR(run.res.mail.enhanced, "5.3.4");
    CHECK_STR(run.res.mail.text, "5.3.4 Message size exceeds fixed maximum message size");
    CHECK(run.res.reusable && !run.res.final_sent);

    tx = tx_of(".leading\nline2\r\n..two\r\nlast", two_rcpts, 2);
    tx.eightbit = true;
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.reusable && run.res.final_sent);
    CHECK(run.res.mail.code == 250 && run.res.rcpt_count == 2);
    CHECK(run.rcpt[0].code == 550 && !strcmp(run.rcpt[0].enhanced, "5.1.1"));
    CHECK(run.rcpt[1].code == 250 && run.res.data.code == 354);
    CHECK(run.res.final.code == 250 && !strcmp(run.res.final.enhanced, "2.0.0"));
    CHECK_STR(run.res.final.text, "2.0.0 queued as X");
    run_end(&run, true);
    script_join(&s);
    CHECK(got_has(&s, "EHLO client.test\r\nMAIL FROM:<sender@from.test> SIZE=30 BODY=8BITMIME"
                      "\r\nRCPT TO:<one@rcpt.test>\r\nRCPT TO:<two@rcpt.test>\r\nDATA\r\n"
                      "..leading\r\nline2\r\n...two\r\nlast\r\n.\r\nQUIT\r\n"));
    buf_free(&s.got);
}

/* Every RCPT refused, yet 354 to the pipelined DATA: a lone dot, the refusals reported. */
static void test_script_all_refused(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-x\r\n250 PIPELINING\r\n", 0},
        {'L', NULL, 3},
        {'S', "250 ok\r\n550 5.1.1 nope\r\n354 go\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},
        {'L', NULL, 1},
        {'S', "221 bye\r\n", 0},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    CHECK(run_connect(&run, s.port, &cfg));
    struct smtp_client_tx tx = tx_of("Subject: x\r\n\r\nbody\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_RCPT && run.rcpt[0].code == 550);
    CHECK(run.res.data.code == 354 && run.res.final.code == 0 && !run.res.final_sent);
    CHECK(run.res.reusable);
    run_end(&run, true);
    script_join(&s);
    CHECK(got_has(&s, "DATA\r\n.\r\nQUIT\r\n"));
    buf_free(&s.got);
}

/* One command at a time; a refusal, then RSET before the next transaction; 421 ends it. */
static void test_script_rset_421(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 x\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},
        {'L', NULL, 1},
        {'S', "550 5.7.1 no\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 reset\r\n", 0},
        {'L', NULL, 1},
        {'S', "421 4.3.2 shutting down\r\n", 0},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    CHECK(run_connect(&run, s.port, &cfg));
    CHECK(!run.ready.pipelining);
    struct smtp_client_tx tx = tx_of("x\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_RCPT && run.rcpt[0].code == 550 && run.res.reusable);
    CHECK(run.res.data.code == 0);
    tx = tx_of("x\r\n", two_rcpts, 2);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_MAIL && run.res.mail.code == 421 && !run.res.reusable);
    CHECK(run.rcpt[0].code == 421 && run.rcpt[1].code == 421);
    run_end(&run, false);
    script_join(&s);
    CHECK(got_has(&s, "RCPT TO:<one@rcpt.test>\r\nRSET\r\nMAIL FROM:<sender@from.test>\r\n"));
    CHECK(!got_has(&s, "DATA"));
    buf_free(&s.got);
}

/* The connection fails before READY: the ready callback says where and why. */
static void expect_ready_failure(const struct step *steps, enum smtp_client_tls tls,
                                 enum smtp_client_stage stage, int code, const char *text)
{
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    run.free_on_failure = true;
    char err[256];
    SSL_CTX *ctx = tls != SMTP_CLIENT_TLS_NONE ? smtp_client_tls_ctx(err, sizeof err) : NULL;
    struct smtp_client_config cfg = client_config(tls, ctx);
    cfg.greeting_timeout_ms = 200;
    CHECK(!run_connect(&run, s.port, &cfg));
    CHECK(run.ready_called && !run.ready.ok && run.c == NULL);
    CHECK(run.ready.stage == stage && run.ready.reply.code == code);
    if (!strstr(run.ready.reply.text, text))
        fprintf(stderr, "reply text: %s (wanted %s)\n", run.ready.reply.text, text);
    CHECK(strstr(run.ready.reply.text, text) != NULL);
    run_end(&run, false);
    script_join(&s);
    buf_free(&s.got);
    SSL_CTX_free(ctx);
}

static void test_script_failures(void)
{
    const struct step garbage[] = {{'S', "hello there\r\n", 0}, {'W', NULL, 150}, {'C', 0, 0}};
    expect_ready_failure(garbage, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 0,
                         "malformed reply while waiting for the greeting: \"hello there\"");
    const struct step cut[] = {{'S', "220-partial\r\n", 0}, {'C', 0, 0}};
    expect_ready_failure(cut, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 0,
                         "connection closed by server while waiting for the greeting");
    const struct step silent[] = {{'W', NULL, 500}, {'C', 0, 0}};
    expect_ready_failure(silent, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 0,
                         "timeout waiting for the greeting");
    const struct step changed[] = {{'S', "220 hi\r\n", 0},
                                   {'L', NULL, 1},
                                   {'S', "250-a\r\n251 b\r\n", 0},
                                   {'W', NULL, 150},
                                   {'C', 0, 0}};
    expect_ready_failure(changed, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_EHLO, 0, "malformed reply");
    static char longline[SMTP_CLIENT_LINE_HARD_MAX + 10];
    memset(longline, 'x', sizeof longline - 3);
    memcpy(longline, "220 ", 4);
    memcpy(longline + sizeof longline - 3, "\r\n", 3);
    const struct step toolong[] = {{'S', longline, 0}, {'W', NULL, 150}, {'C', 0, 0}};
    expect_ready_failure(toolong, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 0, "too long");
    static char many[(SMTP_REPLY_LINES_MAX + 1) * 7 + 1];
    for (int i = 0; i <= SMTP_REPLY_LINES_MAX; i++)
        memcpy(many + i * 7, "220-x\r\n", 7);
    const struct step manylines[] = {{'S', many, 0}, {'W', NULL, 150}, {'C', 0, 0}};
    expect_ready_failure(manylines, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 0,
                         "malformed reply");
    const struct step refused[] = {
        {'S', "554 5.7.1 go away\r\n", 0}, {'W', NULL, 150}, {'C', 0, 0}};
    expect_ready_failure(refused, SMTP_CLIENT_TLS_NONE, SMTP_CLIENT_GREETING, 554, "go away");
    const struct step notls[] = {{'S', "220 hi\r\n", 0},
                                 {'L', NULL, 1},
                                 {'S', "250 x\r\n", 0},
                                 {'W', NULL, 150},
                                 {'C', 0, 0}};
    expect_ready_failure(notls, SMTP_CLIENT_TLS_REQUIRED, SMTP_CLIENT_STARTTLS, 0,
                         "STARTTLS not offered");
    const struct step badtls[] = {{'S', "220 hi\r\n", 0},
                                  {'L', NULL, 1},
                                  {'S', "250-x\r\n250 STARTTLS\r\n", 0},
                                  {'L', NULL, 1},
                                  {'S', "220 go\r\nnot TLS at all\r\n", 0},
                                  {'W', NULL, 150},
                                  {'C', 0, 0}};
    expect_ready_failure(badtls, SMTP_CLIENT_TLS_OPPORTUNISTIC, SMTP_CLIENT_STARTTLS, 0, "");
}

/* EHLO refused: HELO; replies ending in bare LF; the message then sent one step at a time. */
static void test_script_helo(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\n", 0}, {'L', NULL, 1},         {'S', "502 what\n", 0},
        {'L', NULL, 1},       {'S', "250 ok\n", 0},   /* HELO */
        {'L', NULL, 1},       {'S', "250 ok\n", 0},   /* MAIL */
        {'L', NULL, 1},       {'S', "250 ok\n", 0},   /* RCPT */
        {'L', NULL, 1},       {'S', "354 go\n", 0},   /* DATA */
        {'D', NULL, 0},       {'S', "250 done\n", 0}, /* . */
        {'L', NULL, 1},       {'W', NULL, 500},       /* MAIL, then silence */
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    cfg.command_timeout_ms = 300;
    CHECK(run_connect(&run, s.port, &cfg));
    CHECK(!run.ready.pipelining && run.ready.max_size == 0);
    struct smtp_client_tx tx = tx_of("hello", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.final.code == 250 && run.res.reusable);
    run_send(&run, &tx); /* no reply to MAIL: a timeout at MAIL */
    CHECK(run.res.stage == SMTP_CLIENT_MAIL && run.res.mail.code == 0 && !run.res.reusable);
    CHECK_STR(run.res.mail.text, "timeout waiting for the reply to MAIL");
    CHECK(run.rcpt[0].code == 0);
    run_send(&run, &tx); /* a dead client reports its failure again */
    CHECK(run.res.stage == SMTP_CLIENT_MAIL && !run.res.reusable);
    run_end(&run, false);
    script_join(&s);
    CHECK(got_has(&s, "EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<sender@from.test>\r\n"));
    CHECK(got_has(&s, "DATA\r\nhello\r\n.\r\n"));
    buf_free(&s.got);
}

/* A timeout waiting for RCPT's reply, which the server never sends. */
static void test_script_rcpt_timeout(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0}, {'L', NULL, 1}, {'S', "250 x\r\n", 0}, {'L', NULL, 1},
        {'S', "250 ok\r\n", 0}, {'L', NULL, 1}, {'W', NULL, 500},      {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    cfg.command_timeout_ms = 300;
    CHECK(run_connect(&run, s.port, &cfg));
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 2);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_RCPT && !run.res.reusable && run.res.mail.code == 250);
    CHECK(run.rcpt[0].code == 0 && run.rcpt[1].code == 0);
    CHECK_STR(run.rcpt[0].text, "timeout waiting for the reply to RCPT");
    run_end(&run, false);
    script_join(&s);
    buf_free(&s.got);
}

/* The server stops reading during the message, or never answers its end. */
static void body_timeout(const struct step *steps, const char *data, const char *text,
                         bool final_sent)
{
    struct script s;
    struct run run;
    script_start(&s, steps);
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    cfg.data_timeout_ms = cfg.final_timeout_ms = 300;
    CHECK(run_connect(&run, s.port, &cfg));
    struct smtp_client_tx tx = tx_of(data, two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && !run.res.reusable);
    CHECK(run.res.final_sent == final_sent); /* the dot never left: nothing delivered */
    CHECK(run.res.final.code == 0);
    CHECK_STR(run.res.final.text, text);
    run_end(&run, false);
    script_join(&s);
    buf_free(&s.got);
}

static void test_script_body_timeouts(void)
{
    static const struct step stalled[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-x\r\n250 PIPELINING\r\n", 0},
        {'L', NULL, 3},
        {'S', "250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {'W', NULL, 1200},
        {'C', NULL, 0},
    };
    char *big = big_message(16 * 1024 * 1024); /* more than the socket buffers hold */
    body_timeout(stalled, big, "timeout waiting for the server to take the message data", false);
    free(big);
    static const struct step silent[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-x\r\n250 PIPELINING\r\n", 0},
        {'L', NULL, 3},
        {'S', "250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {'D', NULL, 0},
        {'W', NULL, 500},
        {'C', NULL, 0},
    };
    body_timeout(silent, "short\r\n", "timeout waiting for the reply to the end of data", true);
}

/* ---- replies out of protocol ---- */

/* Runs the loop for ms: replies the server sends while the client is idle get read. */
static void run_idle(struct run *run, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(run->base, &tv);
    event_base_dispatch(run->base);
}

static void script_client(struct script *s, struct run *run, const struct step *steps,
                          const struct smtp_client_config *cfg)
{
    script_start(s, steps);
    run_init(run);
    CHECK(run_connect(run, s->port, cfg));
}

/* Frees the client and waits for the server; s->got is the test's to check and free. */
static void script_end(struct script *s, struct run *run)
{
    run_end(run, false);
    script_join(s);
}

/* A dead client's next transaction: a local failure at MAIL, never a reply's code. */
static void check_dead_send(struct run *run, const char *text)
{
    struct smtp_client_tx tx = tx_of("x\r\n", two_rcpts, 2);
    run_send(run, &tx);
    CHECK(run->res.stage == SMTP_CLIENT_MAIL && run->res.mail.code == 0 && !run->res.reusable);
    CHECK_STR(run->res.mail.text, text);
    CHECK(run->rcpt[0].code == 0 && run->rcpt[1].code == 0 && !run->res.final_sent);
}

/* Two replies to one dot in one packet: the first is the verdict, the second kills the
 * client before the caller is told, so the result says it cannot be reused; a later
 * send reports code 0, not the stray 250 as MAIL's and every RCPT's reply. */
static void test_script_idle_reply(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-x\r\n250 PIPELINING\r\n", 0},
        {'L', NULL, 3},
        {'S', "250 ok\r\n250 ok\r\n354 go\r\n", 0},
        {'D', NULL, 0},
        {'S', "250 queued\r\n250 extra\r\n", 0},
        {'W', NULL, 300},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.final.code == 250);
    CHECK(run.res.final_sent && !run.res.reusable);
    check_dead_send(&run, "unexpected reply while idle: 250 extra");
    script_end(&s, &run);
    buf_free(&s.got);
}

/* A reply that comes later, while the client waits for work: it dies, and says so. */
static void test_script_idle_reply_later(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 x\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},
        {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},
        {'L', NULL, 1},
        {'S', "354 go\r\n", 0},
        {'D', NULL, 0},
        {'S', "250 queued\r\n", 0},
        {'W', NULL, 100},
        {'S', "250 late\r\n", 0},
        {'W', NULL, 300},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.final.code == 250 && run.res.reusable);
    run_idle(&run, 250);
    check_dead_send(&run, "unexpected reply while idle: 250 late");
    script_end(&s, &run);
    CHECK(got_has(&s, "DATA\r\nhello\r\n.\r\n") && !got_has(&s, ".\r\nMAIL"));
    buf_free(&s.got);
}

/* Only 354 sends the message: a 250 to DATA is no verdict on a message never sent. */
static void test_script_data_250(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},         {'L', NULL, 1},   {'S', "250 x\r\n", 0},  {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},         {'L', NULL, 1},   {'S', "250 ok\r\n", 0}, {'L', NULL, 1},
        {'S', "250 2.0.0 fine\r\n", 0}, {'W', NULL, 300}, {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_DATA && run.res.data.code == 0 && !run.res.reusable);
    CHECK_STR(run.res.data.text, "unexpected reply to DATA: 250 2.0.0 fine");
    CHECK_STR(run.res.data.enhanced, "");
    CHECK(run.rcpt[0].code == 250 && run.res.final.code == 0 && !run.res.final_sent);
    script_end(&s, &run);
    CHECK(!got_has(&s, "hello"));
    buf_free(&s.got);
}

/* The final reply in the same segment as the 354: the message had not left yet. */
static void test_script_early_final(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},           {'L', NULL, 1},   {'S', "250 x\r\n", 0},  {'L', NULL, 1},
        {'S', "250 ok\r\n", 0},           {'L', NULL, 1},   {'S', "250 ok\r\n", 0}, {'L', NULL, 1},
        {'S', "354 go\r\n250 ok\r\n", 0}, {'W', NULL, 300}, {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.final.code == 0 && !run.res.reusable);
    CHECK_STR(run.res.final.text, "reply before the end of data was sent: 250 ok");
    CHECK(run.res.data.code == 354 && !run.res.final_sent);
    script_end(&s, &run);
    buf_free(&s.got);
}

/* A long refusal keeps its code (the text is cut) and the connection goes on. */
static void test_script_long_reply(void)
{
    static char refusal[1200];
    memset(refusal, 'y', sizeof refusal - 3);
    memcpy(refusal, "550 5.1.1 ", 10);
    memcpy(refusal + sizeof refusal - 3, "\r\n", 3);
    const struct step steps[] = {
        {'S', "220 hi\r\n", 0}, {'L', NULL, 1},         {'S', "250 x\r\n", 0},
        {'L', NULL, 1},         {'S', "250 ok\r\n", 0}, {'L', NULL, 1},
        {'S', refusal, 0},      {'L', NULL, 1},         {'S', "250 reset\r\n", 0},
        {'L', NULL, 1},         {'S', "250 ok\r\n", 0}, {'W', NULL, 300},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_RCPT && run.rcpt[0].code == 550 && run.res.reusable);
    CHECK_STR(run.rcpt[0].enhanced, "5.1.1");
    CHECK(strlen(run.rcpt[0].text) == SMTP_REPLY_LINE_MAX - 4);
    CHECK(!strncmp(run.rcpt[0].text, "5.1.1 yyy", 9));
    run_idle(&run, 50); /* nothing comes while idle */
    run.done_called = false;
    smtp_client_send(run.c, &tx, on_done, &run); /* RSET, then MAIL: the server goes */
    run_wait(&run, &run.done_called);
    script_end(&s, &run);
    CHECK(got_has(&s, "RCPT TO:<one@rcpt.test>\r\nRSET\r\nMAIL FROM:<sender@from.test>\r\n"));
    buf_free(&s.got);
}

/* A transaction the client cannot send: 554 5.5.4 (a bounce, never a retry), nothing
 * written, and the connection carries on. */
static void test_script_invalid_tx(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0}, {'L', NULL, 1}, {'S', "250 x\r\n", 0},    {'L', NULL, 1},
        {'S', "250 ok\r\n", 0}, {'L', NULL, 1}, {'S', "250 ok\r\n", 0},   {'L', NULL, 1},
        {'S', "354 go\r\n", 0}, {'D', NULL, 0}, {'S', "250 done\r\n", 0}, {'W', NULL, 300},
        {'C', NULL, 0},
    };
    static const char *const bad[] = {"x@y.test>\r\nRSET", "ok@y.test"};
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", bad, 2);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_MAIL && run.res.mail.code == 554 && run.res.reusable);
    CHECK_STR(run.res.mail.enhanced, "5.5.4");
    CHECK_STR(run.res.mail.text, "5.5.4 invalid address in transaction (not sent)");
    CHECK(run.rcpt[0].code == 554 && run.rcpt[1].code == 554);
    tx = tx_of("hello\r\n", two_rcpts, 0);
    run_send(&run, &tx);
    CHECK(run.res.mail.code == 554 && run.res.reusable);
    CHECK_STR(run.res.mail.text, "5.5.4 no recipient in transaction (not sent)");
    tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_FINAL && run.res.final.code == 250 && run.res.reusable);
    script_end(&s, &run);
    CHECK(got_has(&s, "EHLO client.test\r\nMAIL FROM:<sender@from.test>\r\n"));
    CHECK(!got_has(&s, "x@y.test") && !got_has(&s, "RSET"));
    buf_free(&s.got);
}

/* After a lone dot the final timeout applies, not the (shorter) data timeout. */
static void test_script_lone_dot_timeout(void)
{
    static const struct step steps[] = {
        {'S', "220 hi\r\n", 0},
        {'L', NULL, 1},
        {'S', "250-x\r\n250 PIPELINING\r\n", 0},
        {'L', NULL, 3},
        {'S', "250 ok\r\n550 5.1.1 nope\r\n354 go\r\n", 0},
        {'L', NULL, 1},
        {'W', NULL, 300},
        {'S', "250 ok\r\n", 0},
        {'W', NULL, 300},
        {'C', NULL, 0},
    };
    struct script s;
    struct run run;
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    cfg.data_timeout_ms = 100;
    cfg.final_timeout_ms = 1500;
    script_client(&s, &run, steps, &cfg);
    struct smtp_client_tx tx = tx_of("hello\r\n", two_rcpts, 1);
    run_send(&run, &tx);
    CHECK(run.res.stage == SMTP_CLIENT_RCPT && run.rcpt[0].code == 550 && run.res.reusable);
    CHECK(run.res.final.code == 0 && !run.res.final_sent);
    script_end(&s, &run);
    buf_free(&s.got);
}

/* ---- Postfix's smtp-sink ---- */

#define SMTP_SINK "/usr/sbin/smtp-sink"

static pid_t sink_start(const char *opts[], int *port)
{
    int fd = listen_loopback(port); /* a free port, released for smtp-sink */
    close(fd);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", *port);
    const char *argv[16] = {SMTP_SINK};
    int n = 1;
    if (geteuid() == 0) { /* it refuses to run as root */
        argv[n++] = "-u";
        argv[n++] = "nobody";
    }
    for (int i = 0; opts && opts[i]; i++)
        argv[n++] = opts[i];
    argv[n++] = addr;
    argv[n++] = "100";
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(SMTP_SINK, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 150; i++) { /* up to 3 s for it to listen */
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(s, (struct sockaddr *)&sin, sizeof sin);
        close(s);
        if (rc == 0)
            return pid;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void sink_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static struct run *sink_connect(const char *opts[], pid_t *pid)
{
    static struct run run;
    int port;
    *pid = sink_start(opts, &port);
    CHECK(*pid > 0);
    if (*pid <= 0)
        return NULL;
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    bool ok = run_connect(&run, port, &cfg);
    CHECK(ok);
    if (ok)
        return &run;
    run_end(&run, false);
    sink_stop(*pid);
    return NULL;
}

static void test_sink_transactions(void)
{
    pid_t pid;
    struct run *run = sink_connect(NULL, &pid);
    if (!run)
        return;
    CHECK(run->ready.pipelining && run->ready.eightbitmime);
    struct smtp_client_tx tx = tx_of("Subject: t\r\n\r\n.dot line\nbody\r\n", two_rcpts, 2);
    for (int i = 0; i < 3; i++) {
        run_send(run, &tx);
        CHECK(run->res.stage == SMTP_CLIENT_FINAL && run->res.reusable && run->res.final_sent);
        CHECK(run->res.mail.code == 250 && run->rcpt[0].code == 250 && run->rcpt[1].code == 250);
        CHECK(run->res.data.code == 354 && run->res.final.code == 250);
    }
    char *big = big_message(4 * 1024 * 1024);
    tx = tx_of(big, two_rcpts, 2);
    run_send(run, &tx);
    CHECK(run->res.stage == SMTP_CLIENT_FINAL && run->res.final.code == 250);
    CHECK(run->res.reusable);
    free(big);
    run_end(run, true);
    sink_stop(pid);
}

/* -f RCPT: every RCPT gets 5xx (and PIPELINING is off); RSET keeps the connection going. */
static void test_sink_refusals(void)
{
    pid_t pid;
    const char *opts[] = {"-f", "RCPT", NULL};
    struct run *run = sink_connect(opts, &pid);
    if (!run)
        return;
    CHECK(!run->ready.pipelining);
    struct smtp_client_tx tx = tx_of("x\r\n", two_rcpts, 2);
    for (int i = 0; i < 2; i++) {
        run_send(run, &tx);
        CHECK(run->res.stage == SMTP_CLIENT_RCPT && run->res.reusable);
        CHECK(run->rcpt[0].code == 500 && run->rcpt[1].code == 500);
        CHECK_STR(run->rcpt[0].enhanced, "5.3.0");
        CHECK(run->res.data.code == 0 && !run->res.final_sent);
    }
    run_end(run, true);
    sink_stop(pid);

    const char *final_opts[] = {"-f", ".", NULL};
    run = sink_connect(final_opts, &pid);
    if (!run)
        return;
    run_send(run, &tx);
    CHECK(run->res.stage == SMTP_CLIENT_FINAL && run->res.final.code == 500);
    CHECK(run->res.final_sent && run->res.reusable);
    run_end(run, true);
    sink_stop(pid);

    const char *close_opts[] = {"-Q", "MAIL", NULL};
    run = sink_connect(close_opts, &pid);
    if (!run)
        return;
    run_send(run, &tx);
    CHECK(run->res.stage == SMTP_CLIENT_MAIL && run->res.mail.code == 421 && !run->res.reusable);
    run_end(run, false);
    sink_stop(pid);
}

/* ---- by hand ---- */

static int manual_send(int argc, char **argv)
{
    static const char *modes[] = {"none", "opportunistic", "required", "implicit"};
    struct run run;
    char err[256];
    run_init(&run);
    struct smtp_client_config cfg = client_config(SMTP_CLIENT_TLS_NONE, NULL);
    cfg.server_name = argv[2];
    for (int i = 0; i < 4; i++)
        if (!strcmp(argv[4], modes[i]))
            cfg.tls = (enum smtp_client_tls)i;
    cfg.tls_ctx = smtp_client_tls_ctx(err, sizeof err);
    int next = 5;
    if (argc > next && !strcmp(argv[next], "verify"))
        cfg.tls_verify = true, next++;
    if (argc > next + 1)
        cfg.auth_user = argv[next], cfg.auth_pass = argv[next + 1];
    cfg.connect_timeout_ms = cfg.greeting_timeout_ms = 10000;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &sin.sin_addr);
    run.c =
        smtp_client_connect(run.base, (struct sockaddr *)&sin, sizeof sin, &cfg, on_ready, &run);
    run_wait(&run, &run.ready_called);
    printf("ready: ok=%d stage=%d tls=%d pipelining=%d 8bit=%d size=%lld: %d [%s] %s\n",
           run.ready.ok, run.ready.stage, run.ready.tls, run.ready.pipelining,
           run.ready.eightbitmime, (long long)run.ready.max_size, run.ready.reply.code,
           run.ready.reply.enhanced, run.ready.reply.text);
    if (run.ready.ok) {
        const char *big = getenv("BIG"); /* BIG=bytes: a large message instead */
        char *data = big ? big_message((size_t)atol(big)) : NULL;
        struct smtp_client_tx tx =
            tx_of(data ? data : "Subject: by hand\r\n\r\n.hello\n", two_rcpts, 2);
        run_send(&run, &tx);
        printf("result: stage=%d reusable=%d final_sent=%d mail=%d rcpt=%d,%d data=%d "
               "final=%d [%s] %s\n",
               run.res.stage, run.res.reusable, run.res.final_sent, run.res.mail.code,
               run.rcpt[0].code, run.rcpt[1].code, run.res.data.code, run.res.final.code,
               run.res.final.enhanced, run.res.final.text);
        free(data);
    }
    run_end(&run, run.ready.ok);
    SSL_CTX_free(cfg.tls_ctx);
    return run.ready.ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && !strcmp(argv[1], "--send"))
        return manual_send(argc, argv);
    test_ehlo_caps();
    test_enhanced();
    test_stuffing();
    char err[256];
    SSL_CTX *ctx = smtp_client_tls_ctx(err, sizeof err);
    CHECK(ctx != NULL);
    SSL_CTX_free(ctx);
    test_script_pipelined();
    test_script_all_refused();
    test_script_rset_421();
    test_script_failures();
    test_script_helo();
    test_script_rcpt_timeout();
    test_script_body_timeouts();
    test_script_idle_reply();
    test_script_idle_reply_later();
    test_script_data_250();
    test_script_early_final();
    test_script_long_reply();
    test_script_invalid_tx();
    test_script_lone_dot_timeout();
    if (access(SMTP_SINK, X_OK) == 0) {
        test_sink_transactions();
        test_sink_refusals();
    } else {
        printf("skipped the smtp-sink exchanges: %s not installed\n", SMTP_SINK);
    }
    return UNIT_END();
}
