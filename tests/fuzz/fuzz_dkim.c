/* libFuzzer target: DKIM canonicalization and signing over arbitrary messages. Besides
 * the sanitizers it checks properties every input must keep: a trailing empty line never
 * changes a body hash, relaxed body canonicalization does not tell SP from HTAB, relaxed
 * header canonicalization is idempotent on well-formed fields, and a signature field
 * starts as expected, ends in CRLF and folds within 78 columns. */
#include "mail/mail.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* RFC 8032's first Ed25519 test key, as in RFC 8463 Appendix A: Ed25519 keeps runs fast. */
static const char key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                              "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
                              "-----END PRIVATE KEY-----\n";

static const struct mail_dkim_key *fuzz_key(void)
{
    static struct mail_dkim_key *key;
    if (!key) {
        char err[256];
        key = mail_dkim_key_load(key_pem, err, sizeof err);
        if (!key)
            abort();
    }
    return key;
}

static void check_body(const char *body, size_t len)
{
    unsigned char a[32], b[32];
    char *copy = malloc(len + 2);
    if (len)
        memcpy(copy, body, len);
    memcpy(copy + len, "\r\n", 2);
    for (int relaxed = 0; relaxed < 2; relaxed++) {
        mail_dkim_body_hash(body, len, relaxed, a);
        mail_dkim_body_hash(copy, len + 2, relaxed, b);
        if (memcmp(a, b, 32))
            abort(); /* a trailing empty line changed the hash */
    }
    for (size_t i = 0; i < len; i++)
        copy[i] = copy[i] == ' ' ? '\t' : copy[i];
    mail_dkim_body_hash(copy, len, true, b);
    if (memcmp(a, b, 32))
        abort(); /* relaxed told SP from HTAB */
    free(copy);
}

/* Every CR in a CRLF and every LF after a CR: the shape of fields in canonical messages. */
static bool well_formed(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
            return false;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return false;
    }
    return true;
}

static void check_field(const char *f, size_t n, struct buf *once, struct buf *twice)
{
    buf_reset(once);
    buf_reset(twice);
    mail_dkim_canon_header_relaxed(f, n, once);
    if (!well_formed(f, n))
        return;
    mail_dkim_canon_header_relaxed(once->data, once->len, twice);
    if (once->len != twice->len || memcmp(once->data, twice->data, once->len))
        abort(); /* relaxed canonicalization is not idempotent */
}

/* Header fields run to a CRLF not followed by WSP; the section to the first empty line. */
static size_t check_header(const char *msg, size_t len)
{
    struct buf once, twice;
    buf_init(&once);
    buf_init(&twice);
    size_t i = 0;
    while (i < len && !(i + 1 < len && msg[i] == '\r' && msg[i + 1] == '\n')) {
        size_t start = i;
        for (;;) {
            const char *crlf = memmem(msg + i, len - i, "\r\n", 2);
            i = crlf ? (size_t)(crlf - msg) + 2 : len;
            if (!crlf || i >= len || (msg[i] != ' ' && msg[i] != '\t'))
                break;
        }
        check_field(msg + start, i - start, &once, &twice);
    }
    buf_free(&once);
    buf_free(&twice);
    return i + 2 <= len ? i + 2 : len;
}

static void check_signature(const struct buf *out)
{
    static const char start[] = "DKIM-Signature: v=1; a=ed25519-sha256; q=dns/txt; c=relaxed/";
    if (out->len < sizeof start || memcmp(out->data, start, sizeof start - 1) ||
        memcmp(out->data + out->len - 2, "\r\n", 2))
        abort();
    size_t col = 0;
    for (size_t i = 0; i < out->len; i++) {
        if (out->data[i] == '\r' || out->data[i] == '\n') {
            col = 0;
            continue;
        }
        col += out->data[i] == '\t' ? 8 : 1;
        if (col > 78)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    size_t body = check_header(msg, size);
    check_body(msg + body, size - body);
    check_body(msg, size);

    struct mail_dkim_signer s = {.domain = "example.com",
                                 .selector = "fuzz",
                                 .key = fuzz_key(),
                                 .time_s = 1796161810,
                                 .relaxed_body = size & 1};
    struct buf out;
    char err[256];
    buf_init(&out);
    if (mail_dkim_sign(msg, size, &s, &out, err, sizeof err) == 0)
        check_signature(&out);
    buf_reset(&out);
    s.headers = "From:Subject:Subject:To:X-Fuzz"; /* oversigning, repeated names */
    if (mail_dkim_sign(msg, size, &s, &out, err, sizeof err) == 0)
        check_signature(&out);
    buf_free(&out);
    return 0;
}
