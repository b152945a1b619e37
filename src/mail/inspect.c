/* What the accept pipeline needs from a raw message: the header section must parse
 * (DECISIONS 12), address headers must parse, and the MIME tree is walked for
 * message/delivery-status parts (DECISIONS 16) and blocked attachment names
 * (DECISIONS 15). The header section is checked on the raw bytes first, so GMime only
 * ever sees top-level headers Sesame has already accepted. */
#include "mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t line_number(const char *msg, size_t pos)
{
    size_t line = 1;
    for (const char *p = msg; (p = memchr(p, '\n', pos - (size_t)(p - msg))) != NULL; p++)
        line++;
    return line;
}

/* Parses an address field; list NULL: checked only (Reply-To). */
static enum mail_status take_list(const struct mail_field *f, char ***list, int *count,
                                  bool empty_ok)
{
    char *value = mail_field_unfold(f);
    enum mail_status st = MAIL_OK;
    if (value[0] == '\0') {
        st = empty_ok ? MAIL_OK : MAIL_BAD_ADDRESS; /* only Bcc may be empty (§3.6.3) */
    } else if (!mail_address_list_take(value, list, count)) {
        st = MAIL_BAD_ADDRESS;
    }
    free(value);
    return st;
}

/* Sender and Return-Path hold one mailbox; the first field of the name counts. A
 * Return-Path of "<>" (the null reverse-path) names nobody and counts as absent. */
static enum mail_status take_one(const struct mail_field *f, char **out, bool null_ok)
{
    char *value = mail_field_unfold(f);
    char addr[512];
    enum mail_status st = MAIL_OK;
    if (null_ok && strcmp(value, "<>") == 0)
        ;
    else if (!mail_mailbox_address(value, addr, sizeof addr))
        st = MAIL_BAD_ADDRESS;
    else if (!*out && !(*out = strdup(addr)))
        abort(); /* out of memory: nothing sensible to do mid-request */
    free(value);
    return st;
}

static void take_subject(const struct mail_field *f, char **out)
{
    if (*out)
        return;
    char *raw = mail_field_unfold(f);
    char *decoded = g_mime_utils_header_decode_text(NULL, raw);
    *out = strdup(decoded ? decoded : raw);
    if (!*out)
        abort(); /* out of memory: nothing sensible to do mid-request */
    g_free(decoded);
    free(raw);
}

/* Whether the message is one text part, decided conservatively from its top-level
 * header: anything that could make parts, attachments or a delivery-status report keeps
 * the full MIME walk. */
static void note_mime_field(const struct mail_field *f, struct mail_inspection *in)
{
    if (f->name_len < 8 || strncasecmp(f->name, "Content-", 8) ||
        mail_field_is(f, "Content-Transfer-Encoding"))
        return;
    if (!mail_field_is(f, "Content-Type")) { /* Disposition, or anything unusual */
        in->single_text = false;
        return;
    }
    char *value = mail_field_unfold(f);
    const char *v = value + strspn(value, " \t");
    if (++in->content_types > 1 || strncasecmp(v, "text/", 5) || strcasestr(v, "name"))
        in->single_text = false;
    free(value);
}

static enum mail_status take_field(const struct mail_field *f, struct mail_inspection *in)
{
    note_mime_field(f, in);
    if (mail_field_is(f, "From"))
        return take_list(f, &in->from, &in->from_count, false);
    if (mail_field_is(f, "To"))
        return take_list(f, &in->to, &in->to_count, false);
    if (mail_field_is(f, "Cc"))
        return take_list(f, &in->cc, &in->cc_count, false);
    if (mail_field_is(f, "Bcc"))
        return take_list(f, &in->bcc, &in->bcc_count, true);
    if (mail_field_is(f, "Reply-To"))
        return take_list(f, NULL, NULL, false);
    if (mail_field_is(f, "Sender"))
        return take_one(f, &in->sender, false);
    if (mail_field_is(f, "Return-Path"))
        return take_one(f, &in->return_path, true);
    if (mail_field_is(f, "Subject"))
        take_subject(f, &in->subject);
    return MAIL_OK;
}

static enum mail_status inspect_header(const char *msg, size_t len, struct mail_inspection *in,
                                       char *err, size_t errlen)
{
    struct mail_fields it;
    struct mail_field f;
    int r;
    in->single_text = true; /* no Content-Type at all is text/plain (RFC 2045 §5.2) */
    mail_fields_init(&it, msg, len);
    while ((r = mail_fields_next(&it, &f)) == 1) {
        if (take_field(&f, in) != MAIL_OK) {
            snprintf(err, errlen, "The %.*s header does not hold valid addresses.",
                     (int)(f.name_len < 64 ? f.name_len : 64), f.name);
            return MAIL_BAD_ADDRESS;
        }
    }
    if (r < 0) {
        snprintf(err, errlen, "The message header does not parse (line %zu).",
                 line_number(msg, it.pos));
        return MAIL_BAD_HEADER;
    }
    in->header_len = it.header_len;
    return MAIL_OK;
}

/* Every parameter of that name counts: a duplicate must not hide a blocked name. */
static void check_names(GMimeParamList *params, const char *name, struct mail_inspection *in)
{
    for (int i = 0; params && i < g_mime_param_list_length(params); i++) {
        GMimeParam *p = g_mime_param_list_get_parameter_at(params, i);
        const char *value = g_mime_param_get_value(p);
        if (value && !core_strcasecmp(g_mime_param_get_name(p), name) &&
            mail_extension_blocked(value) && !in->blocked_attachment[0])
            core_strlcpy(in->blocked_attachment, value, sizeof in->blocked_attachment);
    }
}

static void check_object(GMimeObject *obj, struct mail_inspection *in)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    if (ct && (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
               g_mime_content_type_is_type(ct, "message", "global-delivery-status")))
        in->has_delivery_status = true;
    GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
    if (cd)
        check_names(g_mime_content_disposition_get_parameters(cd), "filename", in);
    if (ct)
        check_names(g_mime_content_type_get_parameters(ct), "name", in);
}

/* Depth is bounded by GMime's parser, which stops nesting at 1024 levels. */
static void walk(GMimeObject *obj, struct mail_inspection *in)
{
    check_object(obj, in);
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
            walk(g_mime_multipart_get_part(mp, i), in);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        /* An attached message is walked too: a forwarded bounce is still a bounce. */
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (inner && g_mime_message_get_mime_part(inner))
            walk(g_mime_message_get_mime_part(inner), in);
    }
}

/* GMime stops nesting at 1024 levels and keeps anything deeper as opaque content, where
 * a blocked attachment would go unseen: such a message is refused. */
static void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                              gpointer data)
{
    (void)offset;
    (void)item;
    if (code == GMIME_CRIT_NESTING_OVERFLOW)
        *(bool *)data = true;
}

static GMimeMessage *parse_copy(const char *msg, size_t len, bool *too_deep)
{
    GByteArray *copy = g_byte_array_sized_new((guint)len);
    g_byte_array_append(copy, (const guint8 *)msg, (guint)len);
    mail_gmime_defuse((char *)copy->data, copy->len);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(copy); /* owns copy */
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeParserOptions *opts = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(opts, on_parser_warning, too_deep);
    GMimeMessage *m = g_mime_parser_construct_message(parser, opts);
    g_mime_parser_options_free(opts);
    g_object_unref(parser);
    g_object_unref(stream);
    return m;
}

static enum mail_status inspect_mime(const char *msg, size_t len, struct mail_inspection *in,
                                     char *err, size_t errlen)
{
    if (len > G_MAXUINT) { /* GByteArray's limit; far above any message size limit */
        snprintf(err, errlen, "The message is too large to parse.");
        return MAIL_BAD_HEADER;
    }
    mail_gmime_init();
    bool too_deep = false;
    GMimeMessage *m = parse_copy(msg, len, &too_deep);
    if (!m || too_deep) {
        snprintf(err, errlen,
                 m ? "The MIME structure of the message is nested too deeply."
                   : "The message does not parse.");
        if (m)
            g_object_unref(m);
        return MAIL_BAD_HEADER;
    }
    if (g_mime_message_get_mime_part(m))
        walk(g_mime_message_get_mime_part(m), in);
    g_object_unref(m);
    return MAIL_OK;
}

enum mail_status mail_inspect(const char *msg, size_t len, struct mail_inspection *out, char *err,
                              size_t errlen)
{
    char scratch[1];
    if (!err || !errlen)
        err = scratch, errlen = sizeof scratch;
    memset(out, 0, sizeof *out);
    if (!msg)
        msg = ""; /* an empty buffer may have no storage yet */
    /* GMime decodes the Subject even when no address needed it (mail_address_list_take) */
    mail_gmime_init();
    enum mail_status st = inspect_header(msg, len, out, err, errlen);
    if (st == MAIL_OK && !out->single_text) /* one text part has nothing to walk */
        st = inspect_mime(msg, len, out, err, errlen);
    if (st != MAIL_OK)
        mail_inspection_free(out);
    return st;
}

static void free_list(char **list, int count)
{
    for (int i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

void mail_inspection_free(struct mail_inspection *in)
{
    free_list(in->from, in->from_count);
    free_list(in->to, in->to_count);
    free_list(in->cc, in->cc_count);
    free_list(in->bcc, in->bcc_count);
    free(in->sender);
    free(in->return_path);
    free(in->subject);
    memset(in, 0, sizeof *in);
}
