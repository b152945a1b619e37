/* SendEmail's message (spec 10 §1.3), built with GMime: GMime chooses the transfer
 * encoding from the content (7bit, quoted-printable or base64), writes RFC 2047
 * encoded-words for non-ASCII subjects and display names, and folds long header fields.
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
    for (const char *p = text; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            buf_append(out, "\r\n", 2);
            if (p[0] == '\r' && p[1] == '\n')
                p++;
        } else {
            buf_append(out, p, 1);
        }
    }
}

/* The text converted to charset; falls back to UTF-8 when it cannot be (an unknown
 * charset, or a character the charset lacks), since the text must not be lost. */
static GMimeStream *text_stream(const struct buf *text, const char **charset)
{
    if (!is_utf8(*charset)) {
        gsize written = 0;
        char *conv = g_convert(text->data, (gssize)text->len, g_mime_charset_iconv_name(*charset),
                               "UTF-8", NULL, &written, NULL);
        if (conv) {
            GMimeStream *s = g_mime_stream_mem_new_with_buffer(conv, written);
            g_free(conv);
            return s;
        }
        *charset = "UTF-8";
    }
    return g_mime_stream_mem_new_with_buffer(text->data, text->len);
}

static GMimeObject *text_part(const char *subtype, const char *text, const char *charset)
{
    struct buf canon;
    buf_init(&canon);
    text_canonical(text, &canon);
    const char *cs = charset_or_utf8(charset);
    GMimeStream *stream = text_stream(&canon, &cs);
    buf_free(&canon);
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    GMimeDataWrapper *content =
        g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(GMIME_PART(part), content);
    g_object_unref(content);
    g_object_unref(stream);
    g_mime_text_part_set_charset(part, cs);
    /* 8-bit content or a line over 998 octets makes GMime choose QP or base64. */
    GMimeContentEncoding enc =
        g_mime_part_get_best_content_encoding(GMIME_PART(part), GMIME_ENCODING_CONSTRAINT_7BIT);
    g_mime_part_set_content_encoding(GMIME_PART(part), enc == GMIME_CONTENT_ENCODING_DEFAULT
                                                           ? GMIME_CONTENT_ENCODING_7BIT
                                                           : enc);
    return GMIME_OBJECT(part);
}

/* GMime would open /dev/urandom for every boundary; the process has a generator. */
static void set_boundary(GMimeMultipart *mp)
{
    unsigned char rnd[16];
    char boundary[48] = "=_";
    if (core_random_bytes(rnd, sizeof rnd) != 0)
        abort(); /* no entropy: continuing would make guessable boundaries */
    core_hex_encode(rnd, sizeof rnd, boundary + 2);
    g_mime_multipart_set_boundary(mp, boundary);
}

static GMimeObject *body(const struct mail_formatted *f)
{
    if (!f->html)
        return text_part("plain", f->text ? f->text : "", f->text_charset);
    if (!f->text)
        return text_part("html", f->html, f->html_charset);
    GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
    set_boundary(alt);
    GMimeObject *text = text_part("plain", f->text, f->text_charset);
    GMimeObject *html = text_part("html", f->html, f->html_charset);
    g_mime_multipart_add(alt, text); /* plain first: clients show the last they can */
    g_mime_multipart_add(alt, html);
    g_object_unref(text);
    g_object_unref(html);
    return GMIME_OBJECT(alt);
}

static void add_addresses(GMimeMessage *m, GMimeAddressType type, const char *const *list,
                          int count)
{
    InternetAddressList *target = g_mime_message_get_addresses(m, type);
    for (int i = 0; i < count; i++) {
        InternetAddressList *parsed = mail_address_list_parse(list[i]); /* checked before */
        if (parsed) {
            internet_address_list_append(target, parsed);
            g_object_unref(parsed);
        }
    }
}

static GMimeMessage *message(const struct mail_formatted *f)
{
    GMimeMessage *m = g_mime_message_new(FALSE);
    char date[32];
    mail_date_format(f->date_ms, date, sizeof date);
    g_mime_object_set_header(GMIME_OBJECT(m), "Date", date, NULL);
    add_addresses(m, GMIME_ADDRESS_TYPE_FROM, &f->source, 1);
    add_addresses(m, GMIME_ADDRESS_TYPE_REPLY_TO, f->reply_to, f->reply_to_count);
    add_addresses(m, GMIME_ADDRESS_TYPE_TO, f->to, f->to_count);
    add_addresses(m, GMIME_ADDRESS_TYPE_CC, f->cc, f->cc_count);
    if (f->subject) {
        /* Without a charset GMime would pick the smallest that fits (ISO-8859-1, say);
         * SendEmail's default is UTF-8. */
        g_mime_message_set_subject(m, f->subject, charset_or_utf8(f->subject_charset));
    }
    if (f->message_id)
        g_mime_object_set_header(GMIME_OBJECT(m), "Message-ID", f->message_id, NULL);
    GMimeObject *b = body(f);
    g_mime_message_set_mime_part(m, b);
    g_object_unref(b);
    return m;
}

static void write_crlf(GMimeMessage *m, struct buf *out)
{
    GMimeFormatOptions *fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
    GMimeStream *s = g_mime_stream_mem_new();
    g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, s);
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
    buf_append(out, bytes->data, bytes->len);
    g_object_unref(s);
    g_mime_format_options_free(fo);
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
    GMimeMessage *m = message(f);
    struct buf built;
    buf_init(&built);
    write_crlf(m, &built);
    g_object_unref(m);
    /* GMime folds and encodes, but one unbreakable header word could still exceed 998
     * octets; the same check as for raw messages makes sure nothing bad leaves. */
    st = mail_normalize(built.data, built.len, out, err, errlen);
    buf_free(&built);
    return st;
}
