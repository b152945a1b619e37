/* SMTP protocol code: commands, paths and parameters, AUTH decoding, the DATA reader
 * (DECISIONS 23) and reply reading; then the feedback listener, served on a loopback port
 * by a loop thread and driven by a raw client. */
#include "smtp/smtp_internal.h"
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* ---- commands ---- */

static int cmd(const char *line, struct smtp_command *c)
{
    return smtp_command_parse(line, strlen(line), c);
}

static bool arg_is(const struct smtp_command *c, const char *want)
{
    return c->arg_len == strlen(want) && !memcmp(c->arg, want, c->arg_len);
}

static void test_verbs(void)
{
    static const struct {
        const char *line;
        enum smtp_verb verb;
    } cases[] = {
        {"HELO x", SMTP_VERB_HELO},
        {"ehlo x", SMTP_VERB_EHLO},
        {"Mail FROM:<a@b.c>", SMTP_VERB_MAIL},
        {"RCPT TO:<a@b.c>", SMTP_VERB_RCPT},
        {"DATA", SMTP_VERB_DATA},
        {"rset", SMTP_VERB_RSET},
        {"NOOP", SMTP_VERB_NOOP},
        {"QUIT", SMTP_VERB_QUIT},
        {"VRFY x", SMTP_VERB_VRFY},
        {"EXPN x", SMTP_VERB_EXPN},
        {"HELP", SMTP_VERB_HELP},
        {"StartTLS", SMTP_VERB_STARTTLS},
        {"AUTH PLAIN", SMTP_VERB_AUTH},
        {"BDAT 10 LAST", SMTP_VERB_BDAT},
        {"XYZZY", SMTP_VERB_UNKNOWN},
        {"DATAX", SMTP_VERB_UNKNOWN},
        {"MAIL:", SMTP_VERB_UNKNOWN},
        {" DATA", SMTP_VERB_UNKNOWN},
    };
    struct smtp_command c;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cmd(cases[i].line, &c) == 0);
        CHECK(c.verb == cases[i].verb);
    }
}

static void test_command_args(void)
{
    struct smtp_command c;
    CHECK(cmd("EHLO bob-desktop.example.com", &c) == 0 && arg_is(&c, "bob-desktop.example.com"));
    CHECK(cmd("MAIL FROM:<a@b.c> SIZE=10", &c) == 0 && arg_is(&c, "FROM:<a@b.c> SIZE=10"));
    CHECK(cmd("AUTH   PLAIN   ", &c) == 0 && arg_is(&c, "PLAIN"));
    CHECK(cmd("DATA", &c) == 0 && c.arg_len == 0);
    CHECK(cmd("QUIT   ", &c) == 0 && c.verb == SMTP_VERB_QUIT && c.arg_len == 0);
    CHECK(cmd("RCPT TO:\xc3\xa9@x.com", &c) == 0 &&
          c.verb == SMTP_VERB_RCPT); /* arg judged later */

    CHECK(cmd("", &c) == -1);
    CHECK(smtp_command_parse("DATA\0x", 6, &c) == -1);
    CHECK(smtp_command_parse("NOOP \0", 6, &c) == -1);
    CHECK(cmd("D\xc3\xa4TA", &c) == -1);
    char *longline = malloc(SMTP_MAX_LINE + 2);
    memset(longline, 'x', SMTP_MAX_LINE + 1);
    memcpy(longline, "NOOP ", 5);
    CHECK(smtp_command_parse(longline, SMTP_MAX_LINE, &c) == 0);
    CHECK(smtp_command_parse(longline, SMTP_MAX_LINE + 1, &c) == -1);
    free(longline);
}

/* ---- MAIL FROM / RCPT TO ---- */

static char reply[SMTP_REPLY_MAX];

static bool mail(const char *arg, struct smtp_path *p)
{
    return smtp_mail_parse(arg, strlen(arg), p, reply, sizeof reply);
}

static bool rcpt(const char *arg, struct smtp_path *p)
{
    return smtp_rcpt_parse(arg, strlen(arg), p, reply, sizeof reply);
}

static void test_paths(void)
{
    struct smtp_path p;
    CHECK(mail("FROM:<bob@example.com>", &p));
    CHECK_STR(p.address, "bob@example.com");
    CHECK(!p.null_path && !p.has_size && !p.body_8bit);
    CHECK(mail("FROM:bob@example.com", &p)); /* the seed's transcript */
    CHECK_STR(p.address, "bob@example.com");
    CHECK(mail("FROM: <bob@example.com>", &p));
    CHECK_STR(p.address, "bob@example.com");
    CHECK(mail("from:<Bob@Example.com>", &p));
    CHECK_STR(p.address, "Bob@Example.com");
    CHECK(mail("FROM:<>", &p) && p.null_path && p.address[0] == '\0');
    CHECK(mail("FROM: <>", &p) && p.null_path);
    CHECK(mail("FROM:<@relay.example,@b.example:bob@example.com>", &p));
    CHECK_STR(p.address, "bob@example.com");
    CHECK(rcpt("TO:alice@example.com", &p));
    CHECK_STR(p.address, "alice@example.com");
    CHECK(rcpt("To:<alice@example.com>", &p));
    CHECK_STR(p.address, "alice@example.com");
    CHECK(rcpt("TO:  <alice@example.com>", &p));
}

static void test_path_errors(void)
{
    struct smtp_path p;
    const char *mail_syntax = "501 Syntax: MAIL FROM:<address>";
    const char *rcpt_syntax = "501 Syntax: RCPT TO:<address>";
    const char *bad_mail[] = {"FROM",
                              "FROM:",
                              "FROM:   ",
                              "TO:<a@b.com>",
                              "FROM :<a@b.com>",
                              "FROM:<a@b.com",
                              "FROM:<a@b.com>x",
                              "FROM:<@relay:>",
                              "FROM:<@relay>",
                              "FROM:<@a @b:x@y.com>",
                              "FROMX:<a@b.com>"};
    for (size_t i = 0; i < sizeof bad_mail / sizeof bad_mail[0]; i++) {
        CHECK(!mail(bad_mail[i], &p));
        CHECK_STR(reply, mail_syntax);
    }
    CHECK(!rcpt("TO:<>", &p));
    CHECK_STR(reply, rcpt_syntax);
    CHECK(!rcpt("FROM:<a@b.com>", &p));
    CHECK_STR(reply, rcpt_syntax);

    CHECK(!mail("FROM:<bob@localhost>", &p));
    CHECK_STR(reply, "553 Invalid address: <bob@localhost>");
    CHECK(!rcpt("TO:bob", &p));
    CHECK_STR(reply, "553 Invalid address: <bob>");
    CHECK(!rcpt("TO:<a\tb@example.com>", &p));
    CHECK_STR(reply, "553 Invalid address: <a?b@example.com>");
    CHECK(p.address[0] == '\0');
    CHECK(!rcpt("TO:<\xc3\xa9@example.com>", &p));
    CHECK_STR(reply, "553 Address must be ASCII (SMTPUTF8 is not supported)");
    CHECK(!smtp_rcpt_parse("TO:<a\0b@example.com>", 20, &p, reply, sizeof reply));
    CHECK_STR(reply, "553 Invalid address: <a?b@example.com>");

    char big[400];
    strcpy(big, "TO:<");
    memset(big + 4, 'a', 321);
    strcpy(big + 325, ">");
    CHECK(!rcpt(big, &p));
    CHECK_STR(reply, "501 Path too long");
    /* 320 bytes fits the path but not the validator's RFC lengths */
    strcpy(big + 4 + 320 - 12, "@example.com>");
    CHECK(!rcpt(big, &p));
    CHECK(!strncmp(reply, "553 Invalid address: <aaa", 25));

    char tiny[16];
    CHECK(!smtp_mail_parse("FROM:x", 6, &p, tiny, sizeof tiny));
    CHECK_STR(tiny, "553 Invalid add");
}

static void test_params(void)
{
    struct smtp_path p;
    CHECK(mail("FROM:<a@example.com> SIZE=10485760", &p));
    CHECK(p.has_size && p.size == 10485760);
    CHECK(mail("FROM:<a@example.com> size=0 body=8bitmime", &p));
    CHECK(p.has_size && p.size == 0 && p.body_8bit);
    CHECK(mail("FROM:a@example.com BODY=7BIT  AUTH=<>", &p) && !p.body_8bit && !p.has_size);
    CHECK(mail("FROM:<> AUTH=a+40example.com SIZE=1", &p) && p.null_path && p.size == 1);
    CHECK(mail("FROM:<a@example.com> SIZE=99999999999999999999999999", &p));
    CHECK(p.size == UINT64_MAX);
    CHECK(mail("FROM:<a@example.com> SIZE=18446744073709551615", &p) && p.size == UINT64_MAX);
    CHECK(mail("FROM:<a@example.com> SIZE=18446744073709551614", &p));
    CHECK(p.size == UINT64_MAX - 1);

    CHECK(!mail("FROM:<a@example.com> SMTPUTF8", &p));
    CHECK_STR(reply, "555 Unsupported parameter: SMTPUTF8");
    CHECK(!mail("FROM:<a@example.com> BODY=BINARYMIME", &p));
    CHECK_STR(reply, "555 Unsupported parameter: BODY=BINARYMIME");
    CHECK(!mail("FROM:<a@example.com> RET=HDRS", &p));
    CHECK_STR(reply, "555 Unsupported parameter: RET=HDRS");
    CHECK(!mail("FROM:<a@example.com> SIZE=12a", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: SIZE=12a");
    CHECK(!mail("FROM:<a@example.com> SIZE", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: SIZE");
    CHECK(!mail("FROM:<a@example.com> SIZE=", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: SIZE=");
    CHECK(!mail("FROM:<a@example.com> SIZE=1 SIZE=2", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: SIZE=2");
    CHECK(!mail("FROM:<a@example.com> BODY=7BIT BODY=7BIT", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: BODY=7BIT");
    CHECK(!mail("FROM:<a@example.com> BODY", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: BODY");
    CHECK(!mail("FROM:<a@example.com> AUTH", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: AUTH");
    CHECK(!mail("FROM:<a@example.com> AUTH=<> AUTH=<>", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: AUTH=<>");
    CHECK(!mail("FROM:<a@example.com> -X=1", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: -X=1");
    CHECK(!mail("FROM:<a@example.com> =1", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: =1");
    CHECK(!mail("FROM:<a@example.com> X\x01Y", &p));
    CHECK_STR(reply, "501 Syntax error in parameter: X?Y");

    char big[200] = "FROM:<a@example.com> ";
    memset(big + strlen(big), 'Z', 100);
    CHECK(!mail(big, &p));
    CHECK(strlen(reply) == strlen("555 Unsupported parameter: ") + 64);

    CHECK(rcpt("TO:<a@example.com>   ", &p));
    CHECK(!rcpt("TO:<a@example.com> SIZE=10", &p));
    CHECK_STR(reply, "555 Unsupported parameter: SIZE=10");
    CHECK(!rcpt("TO:<a@example.com> NOTIFY=NEVER", &p));
    CHECK_STR(reply, "555 Unsupported parameter: NOTIFY=NEVER");
}

/* ---- AUTH ---- */

static const char *auth(const char *arg, struct smtp_auth_start *a)
{
    return smtp_auth_parse(arg, strlen(arg), a);
}

static void test_auth_start(void)
{
    struct smtp_auth_start a;
    CHECK(auth("PLAIN", &a) == NULL && a.mechanism == SMTP_AUTH_PLAIN && !a.has_initial);
    CHECK(auth("login", &a) == NULL && a.mechanism == SMTP_AUTH_LOGIN && !a.has_initial);
    CHECK(auth("Plain AGJvYgBzZWNyZXQ=", &a) == NULL && a.has_initial);
    CHECK(a.initial_len == 16 && !memcmp(a.initial, "AGJvYgBzZWNyZXQ=", 16));
    CHECK(auth("LOGIN   Ym9i", &a) == NULL && a.has_initial && a.initial_len == 4);
    CHECK(auth("PLAIN =", &a) == NULL && a.has_initial && a.initial_len == 0);
    CHECK_STR(auth("CRAM-MD5", &a), "504 Unrecognized authentication type");
    CHECK_STR(auth("PLAINX", &a), "504 Unrecognized authentication type");
    CHECK_STR(auth("", &a), "501 Syntax: AUTH mechanism [initial-response]");
    CHECK_STR(auth("PLAIN a b", &a), "501 Syntax: AUTH mechanism [initial-response]");
}

/* base64 of raw bytes (may hold NULs). */
static const char *b64(const char *raw, size_t len)
{
    static char out[2048];
    core_base64_encode((const unsigned char *)raw, len, out);
    return out;
}

static const char *plain(const char *raw, size_t len, struct smtp_credentials *c)
{
    const char *e = b64(raw, len);
    return smtp_auth_plain_decode(e, strlen(e), c);
}

static void test_auth_plain(void)
{
    struct smtp_credentials c;
    CHECK(plain("\0AKIAEXAMPLE\0secret", 19, &c) == NULL);
    CHECK_STR(c.username, "AKIAEXAMPLE");
    CHECK_STR(c.password, "secret");
    CHECK(plain("bob\0bob\0pw", 10, &c) == NULL);
    CHECK_STR(c.username, "bob");
    CHECK_STR(plain("eve\0bob\0pw", 10, &c), "535 Authentication Credentials Invalid");
    CHECK(c.username[0] == '\0' && c.password[0] == '\0');
    CHECK_STR(plain("bo\0bob\0pw", 9, &c), "535 Authentication Credentials Invalid");
    CHECK_STR(plain("\0bob\0", 5, &c), "535 Authentication Credentials Invalid");
    CHECK_STR(plain("\0\0pw", 4, &c), "535 Authentication Credentials Invalid");
    CHECK_STR(plain("\0bob\0p\0w", 8, &c), "501 Malformed authentication data");
    CHECK_STR(plain("\0bobpw", 6, &c), "501 Malformed authentication data");
    CHECK_STR(plain("bobpw", 5, &c), "501 Malformed authentication data");
    CHECK_STR(plain("", 0, &c), "501 Malformed authentication data");

    char raw[600] = {0};
    memset(raw + 1, 'u', 128);
    memset(raw + 130, 'p', 256);
    CHECK(plain(raw, 386, &c) == NULL && strlen(c.username) == 128 && strlen(c.password) == 256);
    CHECK_STR(plain(raw, 387, &c), "501 Malformed authentication data"); /* NUL in password */
    raw[386] = 'p';
    CHECK_STR(plain(raw, 387, &c), "535 Authentication Credentials Invalid"); /* 257 bytes */
    memset(raw + 1, 'u', 129);
    raw[130] = '\0';
    CHECK_STR(plain(raw, 387, &c), "535 Authentication Credentials Invalid"); /* 129 bytes */

    const char *bad[] = {"AGJvYgBzZWNyZXQ", "AGJvYgBzZWNyZXQ=x", "AGJv YgBz", "=",
                         "AGJvYg==BzZWNy",  "AGJvYgBz\r\n",      "AG==AGJv"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_STR(smtp_auth_plain_decode(bad[i], strlen(bad[i]), &c), "501 Cannot decode response");
    char *huge = malloc(SMTP_MAX_LINE + 4);
    memset(huge, 'A', SMTP_MAX_LINE + 4);
    CHECK_STR(smtp_auth_plain_decode(huge, SMTP_MAX_LINE + 4, &c), "501 Cannot decode response");
    free(huge);
}

static void test_auth_login(void)
{
    struct smtp_credentials c;
    /* the seed's exchange: base64 username, then base64 password */
    CHECK(smtp_auth_login_decode("Ym9i", 4, c.username, sizeof c.username) == NULL);
    CHECK_STR(c.username, "bob");
    const char *pw = b64("s3cr3t/+=", 9);
    CHECK(smtp_auth_login_decode(pw, strlen(pw), c.password, sizeof c.password) == NULL);
    CHECK_STR(c.password, "s3cr3t/+=");
    CHECK_STR(smtp_auth_login_decode("", 0, c.username, sizeof c.username),
              "535 Authentication Credentials Invalid"); /* "=" as an initial response */
    CHECK(c.username[0] == '\0');
    const char *nul = b64("b\0b", 3);
    CHECK_STR(smtp_auth_login_decode(nul, strlen(nul), c.username, sizeof c.username),
              "501 Malformed authentication data");
    CHECK_STR(smtp_auth_login_decode("Ym9", 3, c.username, sizeof c.username),
              "501 Cannot decode response");
    CHECK_STR(smtp_auth_login_decode("=", 1, c.username, sizeof c.username),
              "501 Cannot decode response");
    char longname[200];
    memset(longname, 'u', 129);
    const char *e = b64(longname, 128);
    CHECK(smtp_auth_login_decode(e, strlen(e), c.username, sizeof c.username) == NULL);
    e = b64(longname, 129);
    CHECK_STR(smtp_auth_login_decode(e, strlen(e), c.username, sizeof c.username),
              "535 Authentication Credentials Invalid");

    CHECK(smtp_auth_cancelled("*", 1));
    CHECK(!smtp_auth_cancelled("**", 2));
    CHECK(!smtp_auth_cancelled("* ", 2));
    CHECK(!smtp_auth_cancelled("", 0));
    CHECK(!smtp_auth_cancelled("Kg==", 4));
}

/* ---- DATA ---- */

struct data_result {
    enum smtp_data_status status;
    size_t consumed;
    struct buf message;
    size_t total;
    bool too_big;
};

static unsigned rng = 12345;
static size_t next_chunk(size_t max)
{
    rng = rng * 1103515245u + 12345u;
    return 1 + (rng >> 16) % max;
}

/* Feeds in[] in chunks of chunk bytes (0: random sizes up to 17), as a server would:
 * stopping at the end of data and leaving the rest unconsumed. */
static void data_run(const char *in, size_t len, size_t limit, size_t chunk, struct data_result *r)
{
    struct smtp_data d;
    smtp_data_start(&d, limit);
    size_t off = 0;
    bool short_read = false; /* consumed less than given without finishing */
    r->status = SMTP_DATA_MORE;
    while (off < len && r->status == SMTP_DATA_MORE) {
        size_t n = chunk ? chunk : next_chunk(17);
        if (n > len - off)
            n = len - off;
        size_t used = smtp_data_feed(&d, in + off, n, &r->status);
        short_read |= used != n && r->status == SMTP_DATA_MORE;
        off += used;
    }
    CHECK(!short_read);
    r->consumed = off;
    buf_init(&r->message);
    buf_append(&r->message, d.message.data ? d.message.data : "", d.message.len);
    r->total = d.total;
    r->too_big = d.too_big;
    smtp_data_free(&d);
}

/* Runs in[] whole, byte by byte and in random chunks; all must agree. Fills r from the
 * whole run. */
static void data_all_ways(const char *in, size_t len, size_t limit, struct data_result *r)
{
    data_run(in, len, limit, len ? len : 1, r);
    for (int way = 0; way < 4; way++) {
        struct data_result o;
        data_run(in, len, limit, way == 0 ? 1 : 0, &o);
        CHECK(o.status == r->status && o.consumed == r->consumed && o.total == r->total &&
              o.too_big == r->too_big && o.message.len == r->message.len &&
              !memcmp(o.message.data, r->message.data, o.message.len));
        buf_free(&o.message);
    }
}

/* Expects the message want (wantlen bytes) and the DONE status after consumed bytes. */
static void data_expect(const char *in, size_t len, const char *want, size_t wantlen,
                        size_t consumed)
{
    struct data_result r;
    data_all_ways(in, len, 1 << 20, &r);
    CHECK(r.status == SMTP_DATA_DONE);
    CHECK(r.consumed == consumed);
    CHECK(r.message.len == wantlen && !memcmp(r.message.data, want, wantlen));
    CHECK(r.total == wantlen && !r.too_big);
    buf_free(&r.message);
}

#define DATA_EXPECT(in, want) data_expect(in, sizeof in - 1, want, sizeof want - 1, sizeof in - 1)

static void test_data_messages(void)
{
    DATA_EXPECT(".\r\n", "");
    DATA_EXPECT("Subject:Hello\r\n\r\nbody\r\n.\r\n", "Subject:Hello\r\n\r\nbody\r\n");
    DATA_EXPECT("..x\r\n.\r\n", ".x\r\n");
    DATA_EXPECT("a\r\n..\r\n...\r\n.b\r\n.\r\n", "a\r\n.\r\n..\r\nb\r\n");
    DATA_EXPECT("a\r\nx.\r\n.\r\n", "a\r\nx.\r\n"); /* a dot not at a line start */
    DATA_EXPECT("a\r\n. \r\n.\r\n", "a\r\n \r\n");
    DATA_EXPECT("a\r\n\r\n.\r\n", "a\r\n\r\n");
    DATA_EXPECT("lf only\nlines\n\r\n.\r\n", "lf only\nlines\n\r\n");
    DATA_EXPECT("a\n.x\r\n.\r\n", "a\n.x\r\n"); /* no unstuffing after a bare LF */
    DATA_EXPECT("a\n..\r\n.\r\n", "a\n..\r\n");
    DATA_EXPECT("a\r\r\n.\r\n", "a\r\r\n");
    DATA_EXPECT("a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n"); /* bare CR kept for the pipeline */
    DATA_EXPECT("a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n");
    DATA_EXPECT("a\n.\rb\r\n.\r\n", "a\n.\rb\r\n");
    DATA_EXPECT("a\r.\r\n.\r\n", "a\r.\r\n");
    DATA_EXPECT("nul\0byte\r\n.\r\n", "nul\0byte\r\n");
    DATA_EXPECT("\x80\xff\r\n.\r\n", "\x80\xff\r\n");

    char line[1200 + 6];
    memset(line, 'x', 1200);
    memcpy(line + 1200, "\r\n.\r\n", 5);
    data_expect(line, 1205, line, 1202, 1205); /* over 998: the pipeline judges it */
}

static void test_data_pipelined(void)
{
    const char in[] = "hi\r\n.\r\nQUIT\r\n";
    data_expect(in, sizeof in - 1, "hi\r\n", 4, 7);
    const char at_start[] = ".\r\nMAIL FROM:<a@b.com>\r\n";
    data_expect(at_start, sizeof at_start - 1, "", 0, 3);

    /* after DONE the reader takes nothing more */
    struct smtp_data d;
    enum smtp_data_status st;
    smtp_data_start(&d, 100);
    CHECK(smtp_data_feed(&d, in, sizeof in - 1, &st) == 7 && st == SMTP_DATA_DONE);
    CHECK(smtp_data_feed(&d, "x", 1, &st) == 0 && st == SMTP_DATA_DONE);
    CHECK(smtp_data_feed(&d, "", 0, &st) == 0 && st == SMTP_DATA_DONE);
    smtp_data_free(&d);
    CHECK(d.message.data == NULL && d.message.len == 0);
    smtp_data_start(&d, 100);
    CHECK(smtp_data_feed(&d, "", 0, &st) == 0 && st == SMTP_DATA_MORE);
    CHECK(smtp_data_feed(&d, "abc", 3, &st) == 3 && st == SMTP_DATA_MORE);
    CHECK(smtp_data_feed(&d, "\r\n.", 3, &st) == 3 && st == SMTP_DATA_MORE);
    CHECK(d.message.len == 5); /* the dot is held */
    CHECK(smtp_data_feed(&d, "\r", 1, &st) == 1 && st == SMTP_DATA_MORE);
    CHECK(smtp_data_feed(&d, "\nRSET", 5, &st) == 1 && st == SMTP_DATA_DONE);
    CHECK(d.message.len == 5 && !memcmp(d.message.data, "abc\r\n", 5));
    smtp_data_free(&d);
}

/* Expects BARE_LF_DOT with consumed bytes. */
static void data_expect_bare(const char *in, size_t len, size_t consumed)
{
    struct data_result r;
    data_all_ways(in, len, 1 << 20, &r);
    CHECK(r.status == SMTP_DATA_BARE_LF_DOT);
    CHECK(r.consumed == consumed);
    buf_free(&r.message);
}

#define DATA_BARE(in, consumed) data_expect_bare(in, sizeof in - 1, consumed)

static void test_data_bare_lf(void)
{
    DATA_BARE(".\n", 2);
    DATA_BARE("a\n.\r\n.\r\n", 5);
    DATA_BARE("a\r\n.\nb\r\n.\r\n", 5);
    DATA_BARE("a\n.\nb\r\n.\r\n", 4);
    DATA_BARE("a\n.\r\nrest", 5);
    DATA_BARE("\n.\n", 3);
    DATA_BARE("\n.\r\n", 4);

    struct smtp_data d;
    enum smtp_data_status st;
    smtp_data_start(&d, 100);
    CHECK(smtp_data_feed(&d, "x\n.\nmore", 8, &st) == 4 && st == SMTP_DATA_BARE_LF_DOT);
    CHECK(smtp_data_feed(&d, "y", 1, &st) == 0 && st == SMTP_DATA_BARE_LF_DOT);
    smtp_data_free(&d);
}

static void test_data_limit(void)
{
    const char in[] = "0123456789\r\n..abc\r\n.\r\nNOOP\r\n";
    struct data_result r;
    data_all_ways(in, sizeof in - 1, 5, &r);
    CHECK(r.status == SMTP_DATA_DONE && r.consumed == 22);
    CHECK(r.too_big && r.total == 18 && r.message.len == 5 && !memcmp(r.message.data, "01234", 5));
    buf_free(&r.message);

    data_all_ways(in, sizeof in - 1, 18, &r); /* exactly the limit */
    CHECK(r.status == SMTP_DATA_DONE && !r.too_big && r.total == 18 && r.message.len == 18);
    buf_free(&r.message);
    data_all_ways(in, sizeof in - 1, 17, &r);
    CHECK(r.too_big && r.total == 18 && r.message.len == 17);
    buf_free(&r.message);
    data_all_ways(in, sizeof in - 1, 0, &r);
    CHECK(r.status == SMTP_DATA_DONE && r.too_big && r.message.len == 0 && r.total == 18);
    buf_free(&r.message);
}

/* A long message in random pieces: the reader must agree with a simple reference. */
static void test_data_random(void)
{
    struct buf in, want;
    buf_init(&in);
    buf_init(&want);
    static const char *const lines[] = {"Subject: x", "", ".", "..", ".x", "body", "a.b", "\t."};
    for (int i = 0; i < 2000; i++) {
        const char *l = lines[next_chunk(8) - 1];
        if (l[0] == '.')
            buf_append(&in, ".", 1); /* the client's dot-stuffing */
        buf_puts(&in, l);
        buf_append(&in, "\r\n", 2);
        buf_puts(&want, l);
        buf_append(&want, "\r\n", 2);
    }
    buf_append(&in, ".\r\nQUIT\r\n", 9);
    data_expect(in.data, in.len, want.data, want.len, in.len - 6);
    buf_free(&in);
    buf_free(&want);
}

/* ---- replies ---- */

static int feed(struct smtp_reply *r, const char *line)
{
    return smtp_reply_feed(r, line, strlen(line));
}

static void test_replies(void)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    CHECK(feed(&r, "220 localhost ESMTP SES 2010-12-03") == 1);
    CHECK(r.code == 220 && r.done && r.lines == 1);
    CHECK_STR(buf_cstr(&r.text), "localhost ESMTP SES 2010-12-03");
    CHECK(feed(&r, "250 Ok") == -1); /* complete: reset first */
    smtp_reply_reset(&r);

    CHECK(feed(&r, "250-localhost") == 0 && !r.done);
    CHECK(feed(&r, "250-8BITMIME") == 0);
    CHECK(feed(&r, "250-AUTH PLAIN LOGIN") == 0);
    CHECK(feed(&r, "250 Ok") == 1 && r.done && r.lines == 4 && r.code == 250);
    CHECK_STR(buf_cstr(&r.text), "localhost\n8BITMIME\nAUTH PLAIN LOGIN\nOk");
    smtp_reply_reset(&r);

    CHECK(feed(&r, "354") == 1 && r.code == 354);
    CHECK_STR(buf_cstr(&r.text), "");
    smtp_reply_reset(&r);
    CHECK(feed(&r, "250-") == 0 && feed(&r, "250 ") == 1);
    CHECK_STR(buf_cstr(&r.text), "\n");
    smtp_reply_reset(&r);
    CHECK(feed(&r, "599 x") == 1 && r.code == 599);
    smtp_reply_reset(&r);

    const char *bad[] = {"",      "25",    "250x",   "2500 x", "199 x", "600 x",
                         "2a0 x", "25a x", "250\tx", "a50 x",  "-50 x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(feed(&r, bad[i]) == -1);
        smtp_reply_reset(&r);
    }
    CHECK(smtp_reply_feed(&r, "250 a\0b", 7) == -1);
    smtp_reply_reset(&r);
    CHECK(feed(&r, "250-a") == 0 && feed(&r, "251 b") == -1);
    smtp_reply_reset(&r);

    char line[SMTP_REPLY_LINE_MAX + 2];
    memset(line, 'x', sizeof line);
    memcpy(line, "250 ", 4);
    CHECK(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX) == 1);
    smtp_reply_reset(&r);
    CHECK(smtp_reply_feed(&r, line, SMTP_REPLY_LINE_MAX + 1) == -1);
    smtp_reply_reset(&r);

    for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
        CHECK(feed(&r, "250-x") == 0);
    CHECK(feed(&r, "250 x") == 1 && r.lines == SMTP_REPLY_LINES_MAX);
    smtp_reply_reset(&r);
    for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
        feed(&r, "250-x");
    CHECK(feed(&r, "250 x") == -1);
    smtp_reply_free(&r);
    CHECK(r.text.data == NULL && r.lines == 0);
}

/* ---- the feedback listener ---- */

#define FB_HOST "fb.test"
#define FB_LIMIT 2000 /* feedback.max_message_bytes */

/* How the receive hook answers. */
enum fb_answer {
    FB_OK,         /* done(true) from a later event */
    FB_FAIL,       /* done(false) from a later event */
    FB_OK_AT_ONCE, /* done(true) inside the call */
    FB_HOLD,       /* kept until fb_release */
};

/* What the hooks saw; written on the loop thread, read by the test's. */
static struct {
    pthread_mutex_t lock;
    enum fb_answer answer;
    int calls;
    char mail_from[SMTP_ADDRESS_MAX + 1];
    char rcpts[4][SMTP_ADDRESS_MAX + 1];
    int rcpt_count;
    struct buf data;
    void (*held_done)(void *arg, bool ok);
    void *held_arg;
    bool release_ok;
} fb = {.lock = PTHREAD_MUTEX_INITIALIZER};

struct fb_server {
    struct event_base *base;
    struct smtp_shared *sh;
    struct smtp_thread *t;
    pthread_t loop;
    int port;
};

static bool fb_rcpt_ok(const char *address, void *ctx)
{
    (void)ctx;
    return !strcmp(address, "x@bounce.test");
}

struct fb_later {
    void (*done)(void *arg, bool ok);
    void *arg;
    bool ok;
};

static void fb_later_cb(evutil_socket_t fd, short what, void *p)
{
    (void)fd, (void)what;
    struct fb_later *l = p;
    l->done(l->arg, l->ok);
    free(l);
}

static void fb_receive(const char *mail_from, const char *const *rcpts, int rcpt_count,
                       const char *data, size_t len, struct event_base *base,
                       void (*done)(void *arg, bool ok), void *arg, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&fb.lock);
    fb.calls++;
    core_strlcpy(fb.mail_from, mail_from, sizeof fb.mail_from);
    fb.rcpt_count = rcpt_count;
    for (int i = 0; i < rcpt_count && i < 4; i++)
        core_strlcpy(fb.rcpts[i], rcpts[i], sizeof fb.rcpts[i]);
    buf_reset(&fb.data);
    buf_append(&fb.data, data, len);
    enum fb_answer answer = fb.answer;
    if (answer == FB_HOLD) {
        fb.held_done = done;
        fb.held_arg = arg;
    }
    pthread_mutex_unlock(&fb.lock);
    if (answer == FB_OK_AT_ONCE) {
        done(arg, true);
    } else if (answer != FB_HOLD) {
        struct fb_later *l = malloc(sizeof *l);
        *l = (struct fb_later){done, arg, answer == FB_OK};
        const struct timeval now = {0, 0};
        event_base_once(base, -1, EV_TIMEOUT, fb_later_cb, l, &now);
    }
}

static void fb_set_answer(enum fb_answer answer)
{
    pthread_mutex_lock(&fb.lock);
    fb.answer = answer;
    pthread_mutex_unlock(&fb.lock);
}

static int fb_calls(void)
{
    pthread_mutex_lock(&fb.lock);
    int n = fb.calls;
    pthread_mutex_unlock(&fb.lock);
    return n;
}

/* The message the hook got last, as a string. */
static const char *fb_data(void)
{
    static char copy[4 * FB_LIMIT];
    pthread_mutex_lock(&fb.lock);
    size_t n = fb.data.len < sizeof copy - 1 ? fb.data.len : sizeof copy - 1;
    memcpy(copy, fb.data.data ? fb.data.data : "", n);
    copy[n] = '\0';
    pthread_mutex_unlock(&fb.lock);
    return copy;
}

/* ---- running something on the loop thread ---- */

struct fb_job {
    void (*fn)(struct smtp_thread *t);
    struct smtp_thread *t;
    atomic_bool over;
};

static void fb_job_cb(evutil_socket_t fd, short what, void *p)
{
    (void)fd, (void)what;
    struct fb_job *j = p;
    j->fn(j->t);
    atomic_store(&j->over, true);
}

static void fb_sleep_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void fb_on_loop(struct fb_server *srv, void (*fn)(struct smtp_thread *t))
{
    struct fb_job j = {fn, srv->t, false};
    const struct timeval now = {0, 0};
    event_base_once(srv->base, -1, EV_TIMEOUT, fb_job_cb, &j, &now);
    for (int i = 0; i < 5000 && !atomic_load(&j.over); i++)
        fb_sleep_ms(1);
}

static void fb_release_cb(struct smtp_thread *t)
{
    (void)t;
    pthread_mutex_lock(&fb.lock);
    void (*done)(void *, bool) = fb.held_done;
    void *arg = fb.held_arg;
    bool ok = fb.release_ok;
    fb.held_done = NULL;
    pthread_mutex_unlock(&fb.lock);
    if (done)
        done(arg, ok);
}

/* The held message's done(ok), on the loop thread. */
static void fb_release(struct fb_server *srv, bool ok)
{
    pthread_mutex_lock(&fb.lock);
    fb.release_ok = ok;
    pthread_mutex_unlock(&fb.lock);
    fb_on_loop(srv, fb_release_cb);
}

static bool fb_wait_calls(int n)
{
    for (int i = 0; i < 5000 && fb_calls() < n; i++)
        fb_sleep_ms(1);
    return fb_calls() == n;
}

static bool fb_wait_active(struct fb_server *srv, int n)
{
    for (int i = 0; i < 5000 && smtp_thread_active(srv->t) != n; i++)
        fb_sleep_ms(1);
    return smtp_thread_active(srv->t) == n;
}

/* ---- the server ---- */

static void *fb_loop(void *arg)
{
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static bool fb_start(struct fb_server *srv)
{
    struct sesame_config cfg;
    config_defaults(&cfg);
    strcpy(cfg.hostname, FB_HOST);
    strcpy(cfg.feedback_listen, "127.0.0.1:0"); /* the kernel picks the port */
    cfg.feedback_max_message_bytes = FB_LIMIT;
    cfg.smtp_max_messages = 50;
    memset(srv, 0, sizeof *srv);
    srv->base = event_base_new();
    /* Only the feedback listener: no store, pipeline, failures or TLS. */
    srv->sh = smtp_shared_new(&cfg, NULL, NULL, NULL, NULL);
    const struct smtp_feedback_hooks hooks = {fb_rcpt_ok, fb_receive, NULL};
    srv->t = smtp_feedback_thread_new(srv->sh, srv->base, &hooks);
    if (!srv->t || srv->t->listener_count != 1)
        return false;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (getsockname(evconnlistener_get_fd(srv->t->listeners[0].lev), (struct sockaddr *)&sin, &len))
        return false;
    srv->port = ntohs(sin.sin_port);
    return pthread_create(&srv->loop, NULL, fb_loop, srv->base) == 0;
}

static void fb_stop(struct fb_server *srv)
{
    event_base_loopexit(srv->base, NULL);
    pthread_join(srv->loop, NULL);
    smtp_thread_free(srv->t);
    smtp_shared_free(srv->sh);
    event_base_free(srv->base);
}

/* ---- the client ---- */

static int fb_connect(struct fb_server *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void fb_send(int fd, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(fd, text + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* One reply, its lines joined with "\n" without their CRLFs; what came before the end of
 * the stream or a timeout otherwise. A byte at a time: pipelined replies stay unread. */
static const char *fb_reply(int fd)
{
    static char out[16384];
    size_t n = 0, line_start = 0;
    char c;
    while (n + 1 < sizeof out && recv(fd, &c, 1, 0) == 1) {
        if (c == '\r')
            continue;
        if (c != '\n') {
            out[n++] = c;
            continue;
        }
        if (n - line_start < 4 || out[line_start + 3] != '-')
            break;
        out[n++] = '\n';
        line_start = n;
    }
    out[n] = '\0';
    return out;
}

static const char *fb_cmd(int fd, const char *line)
{
    fb_send(fd, line);
    fb_send(fd, "\r\n");
    return fb_reply(fd);
}

static bool fb_closed(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

static bool fb_starts(const char *reply, const char *prefix)
{
    if (!strncmp(reply, prefix, strlen(prefix)))
        return true;
    fprintf(stderr, "  reply: '%s', expected '%s...'\n", reply, prefix);
    return false;
}

/* ---- the tests ---- */

static void test_feedback_dialogue(struct fb_server *srv)
{
    int fd = fb_connect(srv);
    CHECK_STR(fb_reply(fd), "220 " FB_HOST " ESMTP Sesame feedback");
    CHECK_STR(fb_cmd(fd, "EHLO mx.example.org"), "250-" FB_HOST "\n250-PIPELINING\n250-8BITMIME\n"
                                                 "250-SIZE 2000\n250-ENHANCEDSTATUSCODES\n250 Ok");
    CHECK(fb_starts(fb_cmd(fd, "AUTH PLAIN AGEAYg=="), "503 5.5.1 "));
    CHECK(fb_starts(fb_cmd(fd, "STARTTLS"), "503 5.5.1 ")); /* no TLS context given */
    CHECK_STR(fb_cmd(fd, "HELO mx.example.org"), "250 " FB_HOST);
    CHECK_STR(fb_cmd(fd, "NOOP"), "250 2.0.0 Ok");
    CHECK_STR(fb_cmd(fd, "RSET"), "250 2.0.0 Ok");
    CHECK_STR(fb_cmd(fd, "VRFY x"), "252 2.0.0 Cannot VRFY user; try RCPT to attempt delivery");
    CHECK_STR(fb_cmd(fd, "HELP"), "214 2.0.0 See RFC 5321");
    CHECK_STR(fb_cmd(fd, "EXPN x"), "502 5.5.1 Command not implemented");
    CHECK_STR(fb_cmd(fd, "XYZZY"), "500 5.5.2 Unrecognized command");
    CHECK_STR(fb_cmd(fd, "EHLO"), "501 5.5.4 Syntax: EHLO hostname");
    CHECK_STR(fb_cmd(fd, "RCPT TO:<x@bounce.test>"), "503 5.5.1 Bad sequence of commands");
    CHECK_STR(fb_cmd(fd, "DATA"), "503 5.5.1 Bad sequence of commands");
    CHECK_STR(fb_cmd(fd, "MAIL FROM:<> SIZE=2001"),
              "552 5.3.4 Message size exceeds fixed maximum message size");
    CHECK_STR(fb_cmd(fd, "MAIL FROM"), "501 5.5.4 Syntax: MAIL FROM:<address>");
    CHECK_STR(fb_cmd(fd, "MAIL FROM:<> SIZE=2000"), "250 2.1.0 Ok");
    CHECK_STR(fb_cmd(fd, "MAIL FROM:<>"), "503 5.5.1 Bad sequence of commands");
    CHECK_STR(fb_cmd(fd, "RCPT TO:<y@bounce.test>"),
              "550 5.1.1 Recipient address rejected: not a feedback address");
    CHECK_STR(fb_cmd(fd, "RCPT TO:<x@Bounce.test.other>"),
              "550 5.1.1 Recipient address rejected: not a feedback address");
    CHECK_STR(fb_cmd(fd, "DATA"), "554 5.5.1 No valid recipients");
    CHECK_STR(fb_cmd(fd, "QUIT"), "221 2.0.0 Bye");
    CHECK(fb_closed(fd));
    close(fd);
    CHECK(fb_calls() == 0);
}

/* One message from MAIL to the reply after the dot. */
static const char *fb_message(int fd, const char *from, const char *body)
{
    char line[512];
    snprintf(line, sizeof line, "MAIL FROM:%s", from);
    if (!fb_starts(fb_cmd(fd, line), "250 2.1.0") ||
        !fb_starts(fb_cmd(fd, "RCPT TO:<x@bounce.test>"), "250 2.1.5") ||
        !fb_starts(fb_cmd(fd, "DATA"), "354 "))
        return "(transaction failed)";
    fb_send(fd, body);
    return fb_reply(fd);
}

static void test_feedback_messages(struct fb_server *srv)
{
    int fd = fb_connect(srv);
    fb_reply(fd);
    fb_cmd(fd, "EHLO mx.example.org");

    fb_set_answer(FB_OK);
    CHECK_STR(fb_message(fd, "<>", "Subject: t\r\n\r\n..dot\r\nline\r\n.\r\n"),
              "250 2.0.0 Ok: queued");
    CHECK(fb_calls() == 1);
    CHECK_STR(fb_data(), "Subject: t\r\n\r\n.dot\r\nline\r\n"); /* unstuffed, exact */
    CHECK_STR(fb.mail_from, "");
    CHECK(fb.rcpt_count == 1);
    CHECK_STR(fb.rcpts[0], "x@bounce.test");

    fb_set_answer(FB_FAIL);
    CHECK_STR(fb_message(fd, "<mailer-daemon@mx.example.org>", "a\r\n.\r\n"),
              "451 4.3.0 Error: try again later");
    CHECK(fb_calls() == 2);
    CHECK_STR(fb.mail_from, "mailer-daemon@mx.example.org");

    fb_set_answer(FB_OK_AT_ONCE);
    CHECK_STR(fb_message(fd, "<>", ".\r\n"), "250 2.0.0 Ok: queued"); /* empty message */
    CHECK(fb_calls() == 3);
    CHECK_STR(fb_data(), "");

    /* Over the limit: read to the end, refused, never handed over; the session goes on. */
    char big[FB_LIMIT + 64];
    memset(big, 'x', sizeof big);
    memcpy(big + sizeof big - 6, "\r\n.\r\n", 6);
    CHECK_STR(fb_message(fd, "<>", big),
              "552 5.3.4 Message size exceeds fixed maximum message size");
    CHECK(fb_calls() == 3);
    CHECK_STR(fb_cmd(fd, "NOOP"), "250 2.0.0 Ok");
    /* Exactly the limit is taken. */
    memset(big, 'y', FB_LIMIT);
    memcpy(big + FB_LIMIT, "\r\n.\r\n", 6);
    fb_set_answer(FB_OK);
    CHECK_STR(fb_message(fd, "<>", big + 2), "250 2.0.0 Ok: queued");
    CHECK(fb_calls() == 4 && strlen(fb_data()) == FB_LIMIT);
    CHECK_STR(fb_cmd(fd, "QUIT"), "221 2.0.0 Bye");
    close(fd);
}

static void test_feedback_pipelining(struct fb_server *srv)
{
    int fd = fb_connect(srv);
    fb_reply(fd);
    fb_set_answer(FB_OK);
    int calls = fb_calls();
    fb_send(fd, "EHLO mx.example.org\r\nMAIL FROM:<a@mx.example.org>\r\n"
                "RCPT TO:<x@bounce.test>\r\nRCPT TO:<z@bounce.test>\r\nDATA\r\n");
    CHECK(fb_starts(fb_reply(fd), "250-" FB_HOST));
    CHECK_STR(fb_reply(fd), "250 2.1.0 Ok");
    CHECK_STR(fb_reply(fd), "250 2.1.5 Ok");
    CHECK(fb_starts(fb_reply(fd), "550 5.1.1"));
    CHECK(fb_starts(fb_reply(fd), "354 "));
    /* The commands after the dot wait for the hook's answer, then run. */
    fb_send(fd, "body\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<x@bounce.test>\r\nDATA\r\n"
                "second\r\n.\r\nNOOP\r\nQUIT\r\n");
    CHECK_STR(fb_reply(fd), "250 2.0.0 Ok: queued");
    CHECK_STR(fb_reply(fd), "250 2.1.0 Ok");
    CHECK_STR(fb_reply(fd), "250 2.1.5 Ok");
    CHECK(fb_starts(fb_reply(fd), "354 "));
    CHECK_STR(fb_reply(fd), "250 2.0.0 Ok: queued");
    CHECK_STR(fb_reply(fd), "250 2.0.0 Ok");
    CHECK_STR(fb_reply(fd), "221 2.0.0 Bye");
    CHECK(fb_closed(fd));
    close(fd);
    CHECK(fb_calls() == calls + 2);
    CHECK_STR(fb_data(), "second\r\n");

    /* 100 recipients at most (the same one is fine: the hook sees each). */
    fd = fb_connect(srv);
    fb_reply(fd);
    struct buf cmds;
    buf_init(&cmds);
    buf_puts(&cmds, "MAIL FROM:<>\r\n");
    for (int i = 0; i < SMTP_FEEDBACK_MAX_RCPTS + 1; i++)
        buf_puts(&cmds, "RCPT TO:<x@bounce.test>\r\n");
    fb_send(fd, buf_cstr(&cmds));
    buf_free(&cmds);
    CHECK_STR(fb_reply(fd), "250 2.1.0 Ok");
    int ok = 0;
    for (int i = 0; i < SMTP_FEEDBACK_MAX_RCPTS; i++)
        ok += !strcmp(fb_reply(fd), "250 2.1.5 Ok");
    CHECK(ok == SMTP_FEEDBACK_MAX_RCPTS);
    CHECK_STR(fb_reply(fd), "452 4.5.3 Too many recipients");
    CHECK(fb_starts(fb_cmd(fd, "DATA"), "354 "));
    CHECK_STR(fb_cmd(fd, "x\r\n."), "250 2.0.0 Ok: queued");
    CHECK(fb.rcpt_count == SMTP_FEEDBACK_MAX_RCPTS);
    close(fd);
}

static void test_feedback_bare_lf(struct fb_server *srv)
{
    int fd = fb_connect(srv);
    fb_reply(fd);
    int calls = fb_calls();
    /* A bare LF inside a line is kept; one next to a dot line ends the connection. */
    CHECK_STR(fb_message(fd, "<>", "a\nb\r\n.\r\n"), "250 2.0.0 Ok: queued");
    CHECK_STR(fb_data(), "a\nb\r\n");
    CHECK(fb_starts(fb_message(fd, "<>", "a\r\n.\nb\r\n.\r\n"), "554 5.0.0 Message rejected"));
    CHECK(fb_closed(fd));
    close(fd);
    CHECK(fb_calls() == calls + 1);
}

static void close_sessions(struct smtp_thread *t)
{
    smtp_thread_close_sessions(t);
}

/* The client gone while its message is with the hook: done must still be safe. */
static void test_feedback_gone(struct fb_server *srv)
{
    CHECK(fb_wait_active(srv, 0));
    int fd = fb_connect(srv);
    fb_reply(fd);
    fb_set_answer(FB_HOLD);
    int calls = fb_calls();
    fb_send(fd, "MAIL FROM:<>\r\nRCPT TO:<x@bounce.test>\r\nDATA\r\n");
    fb_reply(fd), fb_reply(fd), fb_reply(fd);
    fb_send(fd, "held\r\n.\r\n");
    CHECK(fb_wait_calls(calls + 1));
    close(fd);
    fb_on_loop(srv, close_sessions); /* the session lives on without its connection */
    CHECK(smtp_thread_active(srv->t) == 1);
    fb_release(srv, true);
    CHECK(fb_wait_active(srv, 0));

    /* The same, the client gone and the answer a failure, without close_sessions. */
    fd = fb_connect(srv);
    fb_reply(fd);
    fb_send(fd, "MAIL FROM:<>\r\nRCPT TO:<x@bounce.test>\r\nDATA\r\nheld\r\n.\r\n");
    CHECK(fb_wait_calls(calls + 2));
    close(fd);
    fb_release(srv, false);
    CHECK(fb_wait_active(srv, 0));
}

static void stop_accepting(struct smtp_thread *t)
{
    smtp_thread_stop_accepting(t);
}

/* Draining: an idle session hears 421 at once, a held one after its answer. */
static void test_feedback_drain(void)
{
    struct fb_server srv;
    CHECK(fb_start(&srv));
    int idle = fb_connect(&srv), busy = fb_connect(&srv);
    fb_reply(idle), fb_reply(busy);
    CHECK_STR(fb_cmd(idle, "EHLO mx.example.org"), "250-" FB_HOST "\n250-PIPELINING\n"
                                                   "250-8BITMIME\n250-SIZE 2000\n"
                                                   "250-ENHANCEDSTATUSCODES\n250 Ok");
    fb_set_answer(FB_HOLD);
    int calls = fb_calls();
    fb_send(busy, "MAIL FROM:<>\r\nRCPT TO:<x@bounce.test>\r\nDATA\r\nlast\r\n.\r\n");
    fb_reply(busy), fb_reply(busy), fb_reply(busy);
    CHECK(fb_wait_calls(calls + 1));
    CHECK(smtp_thread_active(srv.t) == 2);
    fb_on_loop(&srv, stop_accepting);
    CHECK_STR(fb_reply(idle), "421 4.3.2 " FB_HOST " Service shutting down");
    CHECK(fb_closed(idle));
    CHECK(fb_connect(&srv) < 0); /* the socket is closed */
    fb_release(&srv, true);
    CHECK_STR(fb_reply(busy), "250 2.0.0 Ok: queued");
    CHECK_STR(fb_reply(busy), "421 4.3.2 " FB_HOST " Service shutting down");
    CHECK(fb_closed(busy));
    CHECK(fb_wait_active(&srv, 0));
    close(idle);
    close(busy);
    fb_stop(&srv);
}

static void test_feedback(void)
{
    CHECK(evthread_use_pthreads() == 0); /* the loop runs in its own thread */
    signal(SIGPIPE, SIG_IGN);            /* as sesamed: a reply to a client gone is EPIPE */
    struct fb_server srv;
    CHECK(fb_start(&srv));
    test_feedback_dialogue(&srv);
    test_feedback_messages(&srv);
    test_feedback_pipelining(&srv);
    test_feedback_bare_lf(&srv);
    test_feedback_gone(&srv);
    fb_stop(&srv);
    test_feedback_drain();
    buf_free(&fb.data);

    /* Without feedback.listen, or with submission listeners and no TLS: no thread. */
    struct sesame_config cfg;
    config_defaults(&cfg);
    struct event_base *base = event_base_new();
    struct smtp_shared *sh = smtp_shared_new(&cfg, NULL, NULL, NULL, NULL);
    const struct smtp_feedback_hooks hooks = {fb_rcpt_ok, fb_receive, NULL};
    CHECK(smtp_feedback_thread_new(sh, base, &hooks) == NULL);
    strcpy(sh->cfg.smtp_starttls_listen, "127.0.0.1:0");
    CHECK(smtp_thread_new(sh, base) == NULL);
    smtp_shared_free(sh);
    event_base_free(base);
}

int main(void)
{
    test_verbs();
    test_command_args();
    test_paths();
    test_path_errors();
    test_params();
    test_auth_start();
    test_auth_plain();
    test_auth_login();
    test_data_messages();
    test_data_pipelined();
    test_data_bare_lf();
    test_data_limit();
    test_data_random();
    test_replies();
    test_feedback();
    return UNIT_END();
}
