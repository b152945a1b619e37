/* DKIM canonicalization (RFC 6376 §3.4): relaxed header fields, and the body hash under
 * simple or relaxed canonicalization. Octets are opaque: 8-bit bytes and NULs are data,
 * and only CRLF ends a line. The signer runs on canonical messages (mail_normalize), so a
 * bare CR or LF never reaches it from the accept pipeline; here it is an ordinary octet,
 * which is also what a verifier does with it. */
#include "mail/mail.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_crlf(const char *p, size_t i, size_t len)
{
    return p[i] == '\r' && i + 1 < len && p[i + 1] == '\n';
}

/* The name unfolded, lower-cased and without WSP before the colon (§3.4.2). */
static size_t canon_name(const char *name, size_t len, char *w)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_crlf(name, i, len)) {
            i++;
            continue;
        }
        char c = name[i];
        w[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    while (n > 0 && is_wsp(w[n - 1]))
        n--;
    return n;
}

/* The value unfolded, each WSP run one SP, no WSP at either end (§3.4.2). */
static size_t canon_value(const char *value, size_t len, char *w)
{
    size_t n = 0;
    bool space = false, started = false;
    for (size_t i = 0; i < len; i++) {
        if (is_crlf(value, i, len)) {
            i++;
            continue;
        }
        if (is_wsp(value[i])) {
            space = started;
            continue;
        }
        if (space)
            w[n++] = ' ';
        space = false;
        started = true;
        w[n++] = value[i];
    }
    return n;
}

void mail_dkim_canon_header_relaxed(const char *field, size_t len, struct buf *out)
{
    if (len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n')
        len -= 2;
    /* Text without a colon is not a field; it is taken as a name with an empty value so
     * that every input has one defined form. */
    const char *colon = len ? memchr(field, ':', len) : NULL;
    size_t name_len = colon ? (size_t)(colon - field) : len;
    /* The result is never longer than the field plus ":\r\n": grow out once by that much
     * and write in place, rather than appending octet by octet. */
    size_t start = out->len;
    if (len)
        buf_append(out, field, len);
    buf_append(out, ":\r\n", 3);
    char *w = out->data + start;
    size_t n = canon_name(field, name_len, w);
    w[n++] = ':';
    if (colon)
        n += canon_value(colon + 1, len - name_len - 1, w + n);
    w[n++] = '\r';
    w[n++] = '\n';
    out->len = start + n;
    out->data[out->len] = '\0';
}

/* Canonical body octets go through a buffer so that the digest is updated in large
 * blocks, not once per line or per word. */
struct body_sink {
    EVP_MD_CTX *md;
    size_t n;
    unsigned char buf[8192];
};

static void sink_flush(struct body_sink *s)
{
    EVP_DigestUpdate(s->md, s->buf, s->n);
    s->n = 0;
}

static void sink_put(struct body_sink *s, const char *p, size_t n)
{
    if (s->n + n > sizeof s->buf) {
        sink_flush(s);
        if (n > sizeof s->buf) {
            EVP_DigestUpdate(s->md, p, n);
            return;
        }
    }
    memcpy(s->buf + s->n, p, n);
    s->n += n;
}

static void sink_crlfs(struct body_sink *s, size_t count)
{
    for (; count > 0; count--)
        sink_put(s, "\r\n", 2);
}

/* End of the line at pos (its CRLF, or len); *next: past the CRLF. A bare LF is data. */
static size_t line_end(const char *p, size_t pos, size_t len, size_t *next)
{
    for (size_t from = pos; from < len;) {
        const char *lf = memchr(p + from, '\n', len - from);
        if (!lf)
            break;
        size_t j = (size_t)(lf - p);
        if (j > pos && p[j - 1] == '\r') {
            *next = j + 1;
            return j - 1;
        }
        from = j + 1;
    }
    *next = len;
    return len;
}

/* One line's content: each WSP run one SP, none at the end (the caller cut it off). The
 * loop writes through a local pointer, in chunks whose output (at most one octet more
 * than their input: a carried SP) fits the buffer. */
static void relaxed_line(struct body_sink *s, const char *p, size_t n)
{
    bool space = false;
    while (n > 0) {
        if (sizeof s->buf - s->n < 2)
            sink_flush(s);
        size_t take = sizeof s->buf - s->n - 1;
        take = take < n ? take : n;
        unsigned char *w = s->buf + s->n, *start = w;
        for (size_t i = 0; i < take; i++) {
            if (is_wsp(p[i])) {
                space = true;
                continue;
            }
            if (space)
                *w++ = ' ';
            space = false;
            *w++ = (unsigned char)p[i];
        }
        s->n += (size_t)(w - start);
        p += take;
        n -= take;
    }
}

/* §3.4.4, a line at a time: WSP runs become one SP, WSP at line ends goes, and empty
 * lines are only counted until a line with content shows they are not trailing. An
 * empty body stays empty, unlike under simple. A last line without CRLF gets one and
 * loses its trailing WSP, as it will at the receiver once SMTP has ended that line with
 * CRLF (dkimpy and OpenDKIM, verifying such a message as a file, keep one SP there). */
static void body_relaxed(struct body_sink *s, const char *body, size_t len)
{
    size_t pending = 0; /* empty lines not yet known to be followed by content */
    for (size_t i = 0, next; i < len; i = next) {
        size_t end = line_end(body, i, len, &next);
        while (end > i && is_wsp(body[end - 1]))
            end--;
        if (end == i) {
            pending++;
            continue;
        }
        sink_crlfs(s, pending);
        pending = 0;
        relaxed_line(s, body + i, end - i);
        sink_crlfs(s, 1);
    }
}

/* §3.4.3: the body without its trailing CRLFs, then exactly one CRLF. This also covers a
 * missing final CRLF and the empty body (which hashes as a single CRLF). */
static void body_simple(struct body_sink *s, const char *body, size_t len)
{
    while (len >= 2 && body[len - 2] == '\r' && body[len - 1] == '\n')
        len -= 2;
    if (len)
        EVP_DigestUpdate(s->md, body, len);
    EVP_DigestUpdate(s->md, "\r\n", 2);
}

void mail_dkim_body_hash(const char *body, size_t len, bool relaxed, unsigned char out[32])
{
    struct body_sink s;
    s.n = 0;
    s.md = EVP_MD_CTX_new();
    if (!s.md || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1)
        abort(); /* out of memory: nothing sensible to do mid-request */
    if (relaxed)
        body_relaxed(&s, body, len);
    else
        body_simple(&s, body, len);
    sink_flush(&s);
    EVP_DigestFinal_ex(s.md, out, NULL);
    EVP_MD_CTX_free(s.md);
}
