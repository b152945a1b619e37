/* Protocol pieces of the client that need no connection: what an EHLO reply offers, the
 * enhanced status code at the start of a reply, and the message as it goes on the wire
 * after DATA. Bytes in, values out; the fuzz target feeds them untrusted replies. */
#include "smtp/smtp_internal.h"

#include <string.h>

/* ---- EHLO keywords (RFC 5321 §4.1.1.1) ---- */

static bool proto_token_is(const char *p, size_t n, const char *word)
{
    size_t wlen = strlen(word);
    if (n != wlen)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = p[i], b = word[i];
        if (a >= 'a' && a <= 'z')
            a = (char)(a - 'a' + 'A');
        if (a != b)
            return false;
    }
    return true;
}

/* SIZE's argument: digits only, saturating; 0 (no limit known) when it is anything else. */
static int64_t proto_size_value(const char *p, size_t n)
{
    int64_t v = 0;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        int d = p[i] - '0';
        v = v > (INT64_MAX - d) / 10 ? INT64_MAX : v * 10 + d;
    }
    return v;
}

static void proto_auth_mechanisms(const char *p, size_t n, struct smtp_ehlo_caps *caps)
{
    const char *end = p + n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *word = p;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
        if (proto_token_is(word, (size_t)(p - word), "PLAIN"))
            caps->auth_plain = true;
        else if (proto_token_is(word, (size_t)(p - word), "LOGIN"))
            caps->auth_login = true;
    }
}

/* One line after the first: "KEYWORD[ params]" (AUTH also in its old "AUTH=" form). */
static void proto_ehlo_line(const char *p, size_t n, struct smtp_ehlo_caps *caps)
{
    size_t k = 0;
    while (k < n && p[k] != ' ' && p[k] != '\t' && p[k] != '=')
        k++;
    const char *params = k < n ? p + k + 1 : p + n;
    size_t plen = k < n ? n - k - 1 : 0;
    while (plen > 0 && (params[plen - 1] == ' ' || params[plen - 1] == '\t'))
        plen--;
    if (proto_token_is(p, k, "PIPELINING")) {
        caps->pipelining = true;
    } else if (proto_token_is(p, k, "8BITMIME")) {
        caps->eightbitmime = true;
    } else if (proto_token_is(p, k, "STARTTLS")) {
        caps->starttls = true;
    } else if (proto_token_is(p, k, "ENHANCEDSTATUSCODES")) {
        caps->enhancedstatuscodes = true;
    } else if (proto_token_is(p, k, "SIZE")) {
        caps->size = true;
        caps->max_size = proto_size_value(params, plen);
    } else if (proto_token_is(p, k, "AUTH")) {
        proto_auth_mechanisms(params, plen, caps);
    }
}

void smtp_ehlo_parse(const char *text, size_t len, struct smtp_ehlo_caps *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) /* text may then be NULL (an empty struct buf) */
        return;
    const char *p = memchr(text, '\n', len); /* the first line names the server */
    const char *end = text + len;
    while (p && p < end) {
        p++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        proto_ehlo_line(p, (size_t)(stop - p), out);
        p = nl;
    }
}

/* ---- enhanced status codes (RFC 3463 §2) ---- */

/* 1 to 3 digits at text[*i]; advances *i. */
static bool proto_digits(const char *text, size_t len, size_t *i)
{
    size_t start = *i;
    while (*i < len && *i - start < 4 && text[*i] >= '0' && text[*i] <= '9')
        (*i)++;
    size_t n = *i - start;
    return n >= 1 && n <= 3;
}

bool smtp_enhanced_parse(int code, const char *text, size_t len, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.')
        return false;
    if (code != 0 && text[0] - '0' != code / 100)
        return false; /* "550 2.0.0" would tell two stories; the code wins */
    size_t i = 2;
    if (!proto_digits(text, len, &i) || i >= len || text[i] != '.')
        return false;
    i++;
    if (!proto_digits(text, len, &i))
        return false;
    if (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n')
        return false;
    if (i >= outlen)
        return false;
    memcpy(out, text, i);
    out[i] = '\0';
    return true;
}

/* ---- the data (RFC 5321 §4.5.2) ---- */

/* The next CR or LF at or after from, or end. Each byte's position is searched for once
 * per kind: next_cr and next_lf cache the last memchr hits (NULL: not searched yet;
 * end: none left). */
struct proto_scan {
    const char *data, *end;
    const char *next_cr, *next_lf;
};

static const char *proto_next_eol(struct proto_scan *s, const char *from)
{
    if (!s->next_cr || s->next_cr < from)
        s->next_cr = memchr(from, '\r', (size_t)(s->end - from));
    if (!s->next_cr)
        s->next_cr = s->end;
    if (!s->next_lf || s->next_lf < from)
        s->next_lf = memchr(from, '\n', (size_t)(s->end - from));
    if (!s->next_lf)
        s->next_lf = s->end;
    return s->next_cr < s->next_lf ? s->next_cr : s->next_lf;
}

static void proto_emit(smtp_stuff_fn emit, void *arg, const char *p, size_t n)
{
    if (emit && n > 0)
        emit(p, n, arg);
}

/* The stuffing and the size in one scan (emit NULL: the size only). Unchanged stretches,
 * CRLF line ends included, go out whole; a stretch breaks only where a bare CR or LF
 * becomes CRLF or a line's leading dot is doubled. Returns the size without the stuffing
 * dots and the final ".\r\n" (RFC 1870); *as_is says whether nothing was changed. */
static uint64_t proto_scan(const char *data, size_t len, smtp_stuff_fn emit, void *arg, bool *as_is)
{
    *as_is = true;
    if (len == 0) /* data may be NULL: no arithmetic on it */
        return 0;
    struct proto_scan s = {data, data + len, NULL, NULL};
    uint64_t size = len;
    const char *from = data, *p = data; /* p: a line's start */
    while (p < s.end) {
        if (*p == '.') {
            *as_is = false;
            proto_emit(emit, arg, from, (size_t)(p - from));
            proto_emit(emit, arg, ".", 1); /* the line's own dot follows in the next stretch */
            from = p;
        }
        const char *eol = proto_next_eol(&s, p);
        if (eol == s.end) { /* an unterminated last line */
            *as_is = false;
            proto_emit(emit, arg, from, (size_t)(s.end - from));
            proto_emit(emit, arg, "\r\n", 2);
            return size + 2;
        }
        if (*eol == '\r' && eol + 1 < s.end && eol[1] == '\n') {
            p = eol + 2;
            continue;
        }
        *as_is = false;
        proto_emit(emit, arg, from, (size_t)(eol - from)); /* bare CR or LF: CRLF instead */
        proto_emit(emit, arg, "\r\n", 2);
        size++;
        from = p = eol + 1;
    }
    proto_emit(emit, arg, from, (size_t)(s.end - from));
    return size;
}

void smtp_data_stuff(const char *data, size_t len, smtp_stuff_fn emit, void *arg)
{
    bool as_is;
    proto_scan(data, len, emit, arg, &as_is);
    emit(".\r\n", 3, arg);
}

static void proto_buf_emit(const char *piece, size_t len, void *arg)
{
    buf_append(arg, piece, len);
}

void smtp_data_stuff_buf(const char *data, size_t len, struct buf *out)
{
    smtp_data_stuff(data, len, proto_buf_emit, out);
}

uint64_t smtp_data_size(const char *data, size_t len, bool *as_is)
{
    bool unused;
    return proto_scan(data, len, NULL, NULL, as_is ? as_is : &unused);
}
