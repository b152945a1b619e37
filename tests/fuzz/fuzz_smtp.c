/* libFuzzer target: the SMTP protocol code. The input's lines go through the command
 * parser and, by verb, the path and AUTH parsers, the AUTH decoders, the reply reader and
 * the enhanced status code reader; the whole input goes through the DATA reader twice, in
 * chunks sized by the input's first bytes and byte by byte, and the two runs must agree;
 * and through the client's EHLO capability parser and its data stuffing, whose output
 * must read back, through the DATA reader, as the input with CRLF line ends. */
#include "smtp/smtp_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void fuzz_command(const char *line, size_t len)
{
    struct smtp_command c;
    struct smtp_path path;
    struct smtp_auth_start start;
    struct smtp_credentials creds;
    char reply[SMTP_REPLY_MAX];
    if (smtp_command_parse(line, len, &c) != 0)
        return;
    if (c.verb == SMTP_VERB_MAIL)
        smtp_mail_parse(c.arg, c.arg_len, &path, reply, sizeof reply);
    if (c.verb == SMTP_VERB_RCPT)
        smtp_rcpt_parse(c.arg, c.arg_len, &path, reply, sizeof reply);
    if (c.verb == SMTP_VERB_AUTH && !smtp_auth_parse(c.arg, c.arg_len, &start) &&
        start.has_initial) {
        if (start.mechanism == SMTP_AUTH_PLAIN)
            smtp_auth_plain_decode(start.initial, start.initial_len, &creds);
        else
            smtp_auth_login_decode(start.initial, start.initial_len, creds.username,
                                   sizeof creds.username);
    }
}

/* A line as an AUTH continuation, then as a line of a server's reply. */
static void fuzz_line(const char *line, size_t len, struct smtp_reply *r)
{
    struct smtp_credentials creds;
    fuzz_command(line, len);
    if (!smtp_auth_cancelled(line, len)) {
        smtp_auth_plain_decode(line, len, &creds);
        smtp_auth_login_decode(line, len, creds.password, sizeof creds.password);
    }
    int rc = smtp_reply_feed(r, line, len);
    if (rc == 1) {
        char enhanced[16];
        if (smtp_enhanced_parse(r->code, r->text.data, r->text.len, enhanced, sizeof enhanced) &&
            (strlen(enhanced) < 5 || enhanced[0] - '0' != r->code / 100))
            abort();
        struct smtp_ehlo_caps caps;
        smtp_ehlo_parse(r->text.data, r->text.len, &caps);
        if (caps.max_size < 0)
            abort();
    }
    if (rc != 0)
        smtp_reply_reset(r);
    char enhanced[16];
    smtp_enhanced_parse(0, line, len, enhanced, sizeof enhanced);
}

/* The DATA reader over in[], chunk sizes taken in turn from sizes[] (1..64 each). */
static void data_run(const uint8_t *in, size_t len, const uint8_t *sizes, size_t nsizes,
                     size_t limit, struct smtp_data *d, enum smtp_data_status *st, size_t *used)
{
    smtp_data_start(d, limit);
    *st = SMTP_DATA_MORE;
    *used = 0;
    for (size_t k = 0; *used < len && *st == SMTP_DATA_MORE; k++) {
        size_t n = nsizes ? (size_t)sizes[k % nsizes] % 64 + 1 : 1;
        if (n > len - *used)
            n = len - *used;
        size_t got = smtp_data_feed(d, (const char *)in + *used, n, st);
        if (got != n && *st == SMTP_DATA_MORE)
            abort();
        *used += got;
    }
    if (d->message.len > limit || d->message.len > d->total || d->too_big != (d->total > limit))
        abort();
}

static void fuzz_data(const uint8_t *data, size_t size)
{
    size_t nsizes = size < 4 ? size : 4;
    size_t limit = size > 0 ? (size_t)data[0] * 8 : 0;
    struct smtp_data a, b;
    enum smtp_data_status sa, sb;
    size_t ua, ub;
    data_run(data, size, data, nsizes, limit, &a, &sa, &ua);
    data_run(data, size, NULL, 0, limit, &b, &sb, &ub);
    if (sa != sb || ua != ub || a.total != b.total || a.message.len != b.message.len ||
        (a.message.len && memcmp(a.message.data, b.message.data, a.message.len)))
        abort();
    smtp_data_free(&a);
    smtp_data_free(&b);
}

/* The message with every line end (CRLF, bare CR, bare LF) made CRLF and a CRLF after an
 * unterminated last line: what the client's stuffing must read back as. */
static void stuff_expected(const uint8_t *in, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\r' || in[i] == '\n') {
            buf_append(out, "\r\n", 2);
            if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
        } else {
            buf_append(out, &in[i], 1);
        }
    }
    if (len && in[len - 1] != '\r' && in[len - 1] != '\n')
        buf_append(out, "\r\n", 2);
}

/* smtp_data_stuff promises no empty piece: the client's output would get empty chains. */
static void stuff_emit(const char *piece, size_t len, void *arg)
{
    if (len == 0)
        abort();
    buf_append(arg, piece, len);
}

/* The client's stuffing, read back by the server's DATA reader: all of it consumed, the
 * end found exactly at its end, the message as stuff_expected says, and SIZE's count
 * equal to its length. Also the EHLO parser over the whole input. */
static void fuzz_stuff(const uint8_t *data, size_t size)
{
    struct smtp_ehlo_caps caps;
    smtp_ehlo_parse((const char *)data, size, &caps);
    struct buf out, want;
    buf_init(&out);
    buf_init(&want);
    smtp_data_stuff((const char *)data, size, stuff_emit, &out);
    stuff_expected(data, size, &want);
    struct smtp_data d;
    enum smtp_data_status st;
    bool as_is;
    smtp_data_start(&d, out.len + 1);
    size_t used = smtp_data_feed(&d, out.data, out.len, &st);
    if (st != SMTP_DATA_DONE || used != out.len || d.message.len != want.len ||
        (want.len && memcmp(d.message.data, want.data, want.len)) ||
        smtp_data_size((const char *)data, size, &as_is) != want.len)
        abort();
    /* as is: the client sends the data and ".\r\n" without stuffing it */
    if (as_is && (out.len != size + 3 || (size && memcmp(out.data, data, size))))
        abort();
    smtp_data_free(&d);
    buf_free(&out);
    buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_reply r;
    smtp_reply_init(&r);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        fuzz_line(p, len, &r);
        p = nl ? nl + 1 : end;
    }
    smtp_reply_free(&r);
    fuzz_data(data, size);
    fuzz_stuff(data, size);
    return 0;
}
