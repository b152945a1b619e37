/* SendEmail's message (spec 10 §1.3): the structure is written here, the encodings are
 * GMime's (quoted-printable and base64 encoders, RFC 2047 encoded-words, header folding).
 * Building the message as a GMime object tree cost 120 µs per message, most of it
 * GObject bookkeeping and IDN conversions of addresses that are already checked ASCII.
 * The parameters are checked first (DECISIONS 17): any CR or LF in a value that becomes
 * a header is an injection attempt, and addresses are ASCII only. */
#include "mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum mail_status refuse(enum mail_status st, const char *what, const char *value, char *err,
                               size_t errlen)
{
    if (st == MAIL_INJECTION)
        snprintf(err, errlen, "%s must not contain CR or LF.", what);
    else if (st == MAIL_NOT_ASCII)
        snprintf(err, errlen, "%s must be 7-bit ASCII: %.320s", what, value);
    else
        snprintf(err, errlen, "%s is not a valid mailbox: %.320s", what, value);
    return st;
}

static enum mail_status check_text(const char *what, const char *value, char *err, size_t errlen)
{
    if (value && strpbrk(value, "\r\n"))
        return refuse(MAIL_INJECTION, what, value, err, errlen);
    return MAIL_OK;
}

/* Each address parameter must be exactly one mailbox, "a@b" or "Name <a@b>". */
static enum mail_status check_addresses(const char *what, const char *const *list, int count,
                                        char *err, size_t errlen)
{
    char addr[512];
    for (int i = 0; i < count; i++) {
        const char *v = list[i] ? list[i] : "";
        if (strpbrk(v, "\r\n"))
            return refuse(MAIL_INJECTION, what, v, err, errlen);
        for (const char *p = v; *p; p++) {
            if ((unsigned char)*p > 127)
                return refuse(MAIL_NOT_ASCII, what, v, err, errlen);
        }
        if (!mail_mailbox_address(v, addr, sizeof addr))
            return refuse(MAIL_BAD_ADDRESS, what, v, err, errlen);
    }
    return MAIL_OK;
}

static enum mail_status check_params(const struct mail_formatted *f, char *err, size_t errlen)
{
    const char *source = f->source ? f->source : "";
    enum mail_status st = check_addresses("Source", &source, 1, err, errlen);
    if (st == MAIL_OK)
        st = check_addresses("Destination.ToAddresses", f->to, f->to_count, err, errlen);
    if (st == MAIL_OK)
        st = check_addresses("Destination.CcAddresses", f->cc, f->cc_count, err, errlen);
    if (st == MAIL_OK)
        st = check_addresses("ReplyToAddresses", f->reply_to, f->reply_to_count, err, errlen);
    const char *texts[][2] = {{"Message.Subject.Data", f->subject},
                              {"Message.Subject.Charset", f->subject_charset},
                              {"Message.Body.Text.Charset", f->text_charset},
                              {"Message.Body.Html.Charset", f->html_charset},
                              {"Message-ID", f->message_id}};
    for (size_t i = 0; st == MAIL_OK && i < sizeof texts / sizeof texts[0]; i++)
        st = check_text(texts[i][0], texts[i][1], err, errlen);
    return st;
}

/* A charset name Sesame can write as a parameter and convert to; else UTF-8. */
static const char *charset_or_utf8(const char *charset)
{
    if (!charset || !*charset || strlen(charset) > 40)
        return "UTF-8";
    for (const char *p = charset; *p; p++) {
        if (*p <= ' ' || *p > '~' || strchr("()<>@,;:\\\"/[]?=", *p))
            return "UTF-8";
    }
    return charset;
}

static bool is_utf8(const char *charset)
{
    return !g_ascii_strcasecmp(charset, "UTF-8") || !g_ascii_strcasecmp(charset, "UTF8");
}

/* Text in canonical form (RFC 2046 §4.1.1): every line break a CRLF, whatever the
 * caller sent, so that base64 carries CRLFs and no bare CR reaches the wire. */
static void text_canonical(const char *text, struct buf *out)
{
    buf_append(out, "", 0);
    const char *run = text;
    for (const char *p = text; *p; p++) {
        if (*p != '\r' && *p != '\n')
            continue;
        buf_append(out, run, (size_t)(p - run));
        buf_append(out, "\r\n", 2);
        if (p[0] == '\r' && p[1] == '\n')
            p++;
        run = p + 1;
    }
    buf_puts(out, run);
}

/* The canonical text converted to charset; falls back to UTF-8 when it cannot be (an
 * unknown charset, or a character the charset lacks), since the text must not be lost. */
static void text_convert(struct buf *text, const char **charset)
{
    if (is_utf8(*charset))
        return;
    gsize written = 0;
    char *conv = g_convert(text->data, (gssize)text->len, g_mime_charset_iconv_name(*charset),
                           "UTF-8", NULL, &written, NULL);
    if (!conv) {
        *charset = "UTF-8";
        return;
    }
    buf_reset(text);
    buf_append(text, conv, written);
    g_free(conv);
}

/* 7bit when every octet is ASCII text and no line exceeds 998 octets; else
 * quoted-printable while most of it is ASCII; else base64. */
static GMimeContentEncoding text_encoding(const struct buf *text)
{
    size_t high = 0, line = 0, longest = 0;
    for (size_t i = 0; i < text->len; i++) {
        unsigned char c = (unsigned char)text->data[i];
        if (c == '\n') {
            line = 0;
            continue;
        }
        if (++line > longest)
            longest = line;
        if (c >= 0x80 || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
            high++;
    }
    if (high == 0 && longest <= MAIL_MAX_LINE + 1)
        return GMIME_CONTENT_ENCODING_7BIT;
    return high * 6 < text->len ? GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE
                                : GMIME_CONTENT_ENCODING_BASE64;
}

/* Appends bytes with every LF as CRLF (GMime's encoders write bare LFs). */
static void append_crlf(struct buf *out, const char *data, size_t len)
{
    const char *run = data, *end = data + len;
    for (const char *p = data; p < end; p++) {
        if (*p != '\n')
            continue;
        buf_append(out, run, (size_t)(p - run));
        buf_append(out, "\r\n", 2);
        run = p + 1;
    }
    buf_append(out, run, (size_t)(end - run));
}

/* Encodes with GMime's encoder. Quoted-printable takes the text with LF line breaks (it
 * writes its own hard breaks); base64 takes the canonical CRLF bytes. */
static void encode_body(struct buf *out, const struct buf *text, GMimeContentEncoding encoding)
{
    struct buf in;
    buf_init(&in);
    if (encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        for (size_t i = 0; i < text->len; i++)
            if (!(text->data[i] == '\r' && i + 1 < text->len && text->data[i + 1] == '\n'))
                buf_append(&in, &text->data[i], 1);
    } else {
        buf_append(&in, text->data, text->len);
    }
    GMimeEncoding state;
    g_mime_encoding_init_encode(&state, encoding);
    size_t cap = g_mime_encoding_outlen(&state, in.len) + 16;
    char *encoded = malloc(cap);
    if (!encoded)
        abort();
    size_t n = g_mime_encoding_flush(&state, in.data ? in.data : "", in.len, encoded);
    append_crlf(out, encoded, n);
    /* Text that does not end in a line break ends in a soft one: a hard CRLF there would
     * add a line break to the decoded text. */
    if (n && encoded[n - 1] != '\n')
        buf_puts(out, encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ? "=\r\n" : "\r\n");
    free(encoded);
    buf_free(&in);
}

static void text_part(struct buf *out, const char *subtype, const char *text, const char *charset)
{
    static const char *names[] = {[GMIME_CONTENT_ENCODING_7BIT] = "7bit",
                                  [GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE] = "quoted-printable",
                                  [GMIME_CONTENT_ENCODING_BASE64] = "base64"};
    struct buf body;
    buf_init(&body);
    text_canonical(text, &body);
    const char *cs = charset_or_utf8(charset);
    text_convert(&body, &cs);
    GMimeContentEncoding enc = text_encoding(&body);
    buf_printf(out, "Content-Type: text/%s; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n",
               subtype, cs, names[enc]);
    if (enc == GMIME_CONTENT_ENCODING_7BIT) {
        buf_append(out, body.data, body.len);
        if (body.len < 2 || memcmp(body.data + body.len - 2, "\r\n", 2))
            buf_puts(out, "\r\n");
    } else {
        encode_body(out, &body, enc);
    }
    buf_free(&body);
}

static void body(struct buf *out, const struct mail_formatted *f)
{
    if (!f->html)
        return text_part(out, "plain", f->text ? f->text : "", f->text_charset);
    if (!f->text)
        return text_part(out, "html", f->html, f->html_charset);
    unsigned char rnd[16];
    char boundary[48] = "=_";
    if (core_random_bytes(rnd, sizeof rnd) != 0)
        abort(); /* no entropy: continuing would make guessable boundaries */
    core_hex_encode(rnd, sizeof rnd, boundary + 2);
    /* "=_" cannot occur in quoted-printable or base64, and the rest is random. */
    buf_printf(out, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n", boundary);
    buf_printf(out, "--%s\r\n", boundary);
    text_part(out, "plain", f->text, f->text_charset); /* plain first: clients show the last */
    buf_printf(out, "--%s\r\n", boundary);
    text_part(out, "html", f->html, f->html_charset);
    buf_printf(out, "--%s--\r\n", boundary);
}

/* An address header: the mailboxes as given (checked ASCII and valid), folded after a
 * comma when a line would pass 78 characters. */
static void address_header(struct buf *out, const char *name, const char *const *list, int count)
{
    if (count == 0)
        return;
    size_t line = strlen(name) + 2;
    buf_printf(out, "%s: ", name);
    for (int i = 0; i < count; i++) {
        size_t n = strlen(list[i]);
        if (i > 0) {
            buf_puts(out, line + n + 2 > 78 ? ",\r\n " : ", ");
            line = line + n + 2 > 78 ? 1 : line + 2;
        }
        buf_puts(out, list[i]);
        line += n;
    }
    buf_puts(out, "\r\n");
}

static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* The subject: as it is when short plain ASCII; else GMime encodes (RFC 2047, in the
 * given charset, UTF-8 by default) and folds it. */
static size_t longest_word(const char *s)
{
    size_t longest = 0, n = 0;
    for (; *s; s++) {
        n = *s == ' ' || *s == '\t' ? 0 : n + 1;
        if (n > longest)
            longest = n;
    }
    return longest;
}

/* An ASCII subject with a word too long to fold: encoded-words of 45 octets each, which
 * can be split anywhere (RFC 2047 §2 limits each to 75 characters). */
static void subject_words(struct buf *out, const char *subject)
{
    size_t len = strlen(subject);
    buf_puts(out, "Subject:");
    for (size_t i = 0; i < len; i += 45) {
        char b64[64];
        core_base64_encode((const unsigned char *)subject + i, len - i < 45 ? len - i : 45, b64);
        buf_printf(out, "%s=?UTF-8?B?%s?=", i ? "\r\n " : " ", b64);
    }
    buf_puts(out, "\r\n");
}

static void subject_header(struct buf *out, const char *subject, const char *charset)
{
    bool ascii = plain_ascii(subject);
    if (ascii && strlen(subject) < 70 && (!charset || !*charset)) {
        buf_printf(out, "Subject: %s\r\n", subject);
        return;
    }
    if (ascii && longest_word(subject) > 900)
        return subject_words(out, subject);
    char *encoded = ascii
                        ? g_strdup(subject)
                        : g_mime_utils_header_encode_text(NULL, subject, charset_or_utf8(charset));
    char *field = g_strdup_printf("Subject: %s", encoded);
    char *folded = g_mime_utils_unstructured_header_fold(NULL, NULL, field);
    size_t n = strlen(folded);
    while (n && (folded[n - 1] == '\n' || folded[n - 1] == '\r'))
        n--;
    append_crlf(out, folded, n);
    buf_puts(out, "\r\n");
    g_free(folded);
    g_free(field);
    g_free(encoded);
}

/* The whole message, assembled here; GMime does the encodings (transfer encodings,
 * RFC 2047 words, folding), without a GObject per part and address. */
static void message(const struct mail_formatted *f, struct buf *out)
{
    char date[32];
    mail_date_format(f->date_ms, date, sizeof date);
    buf_printf(out, "Date: %s\r\n", date);
    address_header(out, "From", &f->source, 1);
    address_header(out, "Reply-To", f->reply_to, f->reply_to_count);
    address_header(out, "To", f->to, f->to_count);
    address_header(out, "Cc", f->cc, f->cc_count);
    if (f->subject)
        subject_header(out, f->subject, f->subject_charset);
    if (f->message_id)
        buf_printf(out, "Message-ID: %s\r\n", f->message_id);
    buf_puts(out, "MIME-Version: 1.0\r\n");
    body(out, f);
}

enum mail_status mail_build(const struct mail_formatted *f, struct buf *out, char *err,
                            size_t errlen)
{
    char scratch[1];
    if (!err || !errlen)
        err = scratch, errlen = sizeof scratch;
    enum mail_status st = check_params(f, err, errlen);
    if (st != MAIL_OK)
        return st;
    mail_gmime_init();
    struct buf built;
    buf_init(&built);
    message(f, &built);
    /* One unbreakable header word could still exceed 998 octets; the same check as for
     * raw messages makes sure nothing bad leaves. */
    st = mail_normalize(built.data, built.len, out, err, errlen);
    buf_free(&built);
    return st;
}
