/* Reports received at the bounce domain: RFC 3464 DSNs, RFC 5965 ARF reports and RFC 3834
 * auto-replies. GMime parses the MIME structure; the "name: value" blocks inside a
 * delivery-status or feedback-report part (RFC 3464 §2.1, RFC 5965 §3.1) and a
 * text/rfc822-headers part are read here from the part's decoded content.
 *
 * The input comes from anyone on the Internet. GMime parses a copy whose address fields
 * are hidden from it (mail_gmime_defuse, see gmime_quirks.c); the walk of the MIME tree is
 * bounded; the fields are read in one linear scan; every output is printable ASCII cut to
 * its buffer. */
#include "feedback/feedback.h"
/* mail_gmime_init, mail_gmime_defuse and mail_first_mailbox: GMime is initialised, and
 * worked around, in one place. */
#include "mail/mail.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Report parts nest at most this deep (a DSN wrapped in a multipart/mixed is at 2). */
#define REPORT_MAX_DEPTH 8
/* What GMime is given at most: it builds an object per part and per header field, some
 * fifty times the bytes for a message made of nothing else; real reports have a few. */
#define REPORT_MAX_ENTITIES 1000 /* Content-Type fields, '--' (boundary) lines */
#define REPORT_MAX_HEADERS 10000 /* header lines, folded ones included */
/* Longest value read for a date or a message-id: no valid one comes near it. */
#define REPORT_SHORT_VALUE 1000

/* ---- text: what the report says, made safe for the output ---- */

struct span {
    const char *p;
    size_t n;
};

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_space(char c)
{
    return is_wsp(c) || c == '\r' || c == '\n';
}

/* Copies s into out as printable ASCII: a line break and the whitespace around it (a fold)
 * become one space, a tab a space, any other control or 8-bit byte '?' (one per UTF-8
 * character). Trimmed, cut to outlen, NUL-terminated. */
static void text_put(char *out, size_t outlen, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen;) {
        unsigned char c = (unsigned char)s[i];
        if (is_space((char)c)) {
            size_t j = i;
            bool fold = false;
            while (j < n && is_space(s[j]))
                fold |= s[j] == '\r' || s[j] == '\n', j++;
            if (o > 0 && j < n) { /* none leading, none trailing */
                for (size_t k = fold ? j - 1 : i; k < j && o + 1 < outlen; k++)
                    out[o++] = ' ';
            }
            i = j;
            continue;
        }
        bool continuation = c >= 0x80 && c < 0xc0 && i > 0 && (unsigned char)s[i - 1] >= 0x80;
        if (!continuation)
            out[o++] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
        i++;
    }
    while (o > 0 && out[o - 1] == ' ') /* a cut in the middle of a run of spaces */
        o--;
    out[o] = '\0';
}

static void text_put_str(char *out, size_t outlen, const char *s)
{
    text_put(out, outlen, s ? s : "", s ? strlen(s) : 0);
}

/* The first word of s (up to whitespace, ';' or a comment), lower-case: an Action or a
 * Feedback-Type without whatever an MTA wrote after it. */
static void word_put_lower(char *out, size_t outlen, struct span s)
{
    out[0] = '\0';
    if (!s.p)
        return;
    size_t i = 0;
    while (i < s.n && is_space(s.p[i]))
        i++;
    size_t start = i;
    while (i < s.n && !is_space(s.p[i]) && s.p[i] != ';' && s.p[i] != '(')
        i++;
    text_put(out, outlen, s.p + start, i - start);
    for (char *p = out; *p; p++)
        *p = (char)g_ascii_tolower(*p);
}

/* The bare address of a field value: "<a@b>", "Name <a@b>", "a@b (comment)" give a@b;
 * with strip_type, the address type of a DSN field ("rfc822; a@b") goes first. */
static void addr_put(char *out, size_t outlen, struct span s, bool strip_type)
{
    char value[1024];
    text_put(value, sizeof value, s.p, s.n);
    char *v = value;
    char *semi = strip_type ? strchr(v, ';') : NULL;
    if (semi && semi > v &&
        strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789-") == (size_t)(semi - v))
        v = semi + 1;
    v += strspn(v, " ");
    char *lt = strchr(v, '<');
    if (lt) {
        v = lt + 1;
        v[strcspn(v, ">")] = '\0';
    } else {
        v[strcspn(v, " (")] = '\0';
    }
    text_put_str(out, outlen, v);
}

/* A message-id without its angle brackets (GMime's reading of msg-id). */
static void msgid_put(char *out, size_t outlen, const char *value)
{
    char raw[REPORT_SHORT_VALUE];
    text_put_str(raw, sizeof raw, value);
    char *id = g_mime_utils_decode_message_id(raw);
    text_put_str(out, outlen, id ? id : "");
    g_free(id);
}

static int64_t date_ms(GDateTime *dt)
{
    return dt ? g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000 : 0;
}

/* An RFC 5322 date-time in milliseconds; 0 when it does not parse. */
static int64_t date_parse(struct span s)
{
    char value[REPORT_SHORT_VALUE];
    text_put(value, sizeof value, s.p, s.n);
    GDateTime *dt = g_mime_utils_header_decode_date(value);
    int64_t ms = date_ms(dt);
    if (dt)
        g_date_time_unref(dt);
    return ms;
}

/* ---- "name: value" blocks separated by blank lines ---- */

struct field {
    struct span name;
    struct span value; /* through its last continuation line, line breaks included */
    int block;         /* the first block is 0 */
};

struct field_reader {
    const char *p, *end;
    int block;
    bool block_used; /* a field was read in the current block */
};

static void field_reader_init(struct field_reader *r, const char *data, size_t len)
{
    if (!data) /* an empty GByteArray may have no storage */
        data = "", len = 0;
    *r = (struct field_reader){.p = data, .end = data + len};
}

/* The next line without its line break; false at the end. */
static bool line_next(const char **p, const char *end, struct span *line)
{
    if (*p >= end)
        return false;
    const char *lf = memchr(*p, '\n', (size_t)(end - *p));
    const char *eol = lf ? lf : end;
    line->p = *p;
    line->n = (size_t)(eol - *p);
    if (line->n > 0 && eol[-1] == '\r')
        line->n--;
    *p = lf ? lf + 1 : end;
    return true;
}

/* Whitespace-only lines separate blocks too: some MTAs write them. */
static bool line_blank(struct span line)
{
    for (size_t i = 0; i < line.n; i++) {
        if (!is_space(line.p[i]))
            return false;
    }
    return true;
}

static bool line_continues(struct span line)
{
    return !line_blank(line) && is_wsp(line.p[0]);
}

/* Lines that are not fields (no colon, or a continuation with nothing before it) are
 * skipped: a report is read for what it holds, not judged. */
static bool field_next(struct field_reader *r, struct field *f)
{
    struct span line;
    while (line_next(&r->p, r->end, &line)) {
        if (line_blank(line)) {
            r->block += r->block_used;
            r->block_used = false;
            continue;
        }
        const char *colon = memchr(line.p, ':', line.n);
        if (is_wsp(line.p[0]) || !colon)
            continue;
        size_t name_len = (size_t)(colon - line.p);
        while (name_len > 0 && is_wsp(line.p[name_len - 1]))
            name_len--;
        f->name = (struct span){line.p, name_len};
        f->block = r->block;
        r->block_used = true;
        const char *value_end = line.p + line.n;
        const char *next = r->p;
        while (line_next(&next, r->end, &line) && line_continues(line)) {
            value_end = line.p + line.n;
            r->p = next;
        }
        f->value = (struct span){colon + 1, (size_t)(value_end - (colon + 1))};
        return true;
    }
    return false;
}

static bool field_is(const struct field *f, const char *name)
{
    return f->name.n == strlen(name) && !g_ascii_strncasecmp(f->name.p, name, f->name.n);
}

/* Keeps the first occurrence of a field. */
static void span_take(struct span *to, const struct field *f)
{
    if (!to->p)
        *to = f->value;
}

/* ---- the MIME parts of a report ---- */

struct report_parts {
    GMimeObject *status;   /* message/delivery-status */
    GMimeObject *feedback; /* message/feedback-report */
    GMimeObject *original; /* the returned message or its header */
};

static bool type_is(GMimeObject *obj, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    return ct && g_mime_content_type_is_type(ct, type, subtype);
}

static bool part_is_status(GMimeObject *obj)
{
    return type_is(obj, "message", "delivery-status") ||
           type_is(obj, "message", "global-delivery-status");
}

static bool part_is_original(GMimeObject *obj)
{
    return GMIME_IS_MESSAGE_PART(obj) || type_is(obj, "text", "rfc822-headers") ||
           type_is(obj, "message", "rfc822-headers") || type_is(obj, "message", "global-headers");
}

/* The first part of each kind, in tree order. Attached messages are not entered: they
 * are the returned original (or something forwarded), whose reports are not this one. */
static void parts_find(GMimeObject *obj, int depth, struct report_parts *found)
{
    if (part_is_status(obj)) {
        if (!found->status)
            found->status = obj;
    } else if (type_is(obj, "message", "feedback-report")) {
        if (!found->feedback)
            found->feedback = obj;
    } else if (part_is_original(obj)) {
        if (!found->original)
            found->original = obj;
    } else if (GMIME_IS_MULTIPART(obj) && depth < REPORT_MAX_DEPTH) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
            parts_find(g_mime_multipart_get_part(mp, i), depth + 1, found);
    }
}

/* A leaf part's content, its transfer encoding undone; NULL when it has none. */
static GByteArray *part_content(GMimeObject *obj)
{
    GMimeDataWrapper *content =
        GMIME_IS_PART(obj) ? g_mime_part_get_content(GMIME_PART(obj)) : NULL;
    if (!content)
        return NULL;
    GByteArray *bytes = g_byte_array_new();
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(bytes);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    g_mime_data_wrapper_write_to_stream(content, stream);
    g_object_unref(stream);
    return bytes;
}

/* ---- DSN (RFC 3464) ---- */

/* One block's per-recipient fields (first occurrence each). */
struct dsn_block {
    struct span final_recipient, original_recipient, action, status, diagnostic, remote_mta;
};

static bool dsn_block_is_recipient(const struct dsn_block *b)
{
    return b->final_recipient.p || b->original_recipient.p || b->action.p || b->status.p;
}

static bool status_digits(const char **p, const char *end, size_t min, size_t max)
{
    size_t n = 0;
    while (*p + n < end && n <= max && g_ascii_isdigit((*p)[n]))
        n++;
    *p += n;
    return n >= min && n <= max;
}

/* An RFC 3463 status code, class 2, 4 or 5: "5.1.1", "5.1.10". Anything after it (a
 * comment some MTAs add) is dropped; anything else gives "". */
static void status_put(char *out, size_t outlen, struct span s)
{
    char value[64];
    text_put(value, sizeof value, s.p, s.n);
    const char *end = value + strcspn(value, " (");
    const char *p = value;
    bool valid = p < end && strchr("245", *p) && status_digits(&p, end, 1, 1) && p < end &&
                 *p++ == '.' && status_digits(&p, end, 1, 3) && p < end && *p++ == '.' &&
                 status_digits(&p, end, 1, 3) && p == end;
    text_put(out, outlen, value, valid ? (size_t)(end - value) : 0);
}

static void dsn_recipient_put(struct feedback_report_recipient *r, const struct dsn_block *b)
{
    addr_put(r->final_recipient, sizeof r->final_recipient, b->final_recipient, true);
    addr_put(r->original_recipient, sizeof r->original_recipient, b->original_recipient, true);
    word_put_lower(r->action, sizeof r->action, b->action);
    status_put(r->status, sizeof r->status, b->status);
    text_put(r->diagnostic, sizeof r->diagnostic, b->diagnostic.p, b->diagnostic.n);
    text_put(r->remote_mta, sizeof r->remote_mta, b->remote_mta.p, b->remote_mta.n);
}

static void dsn_block_end(const struct dsn_block *b, struct feedback_report *out)
{
    if (!dsn_block_is_recipient(b))
        return;
    if (out->recipient_count < FEEDBACK_REPORT_RECIPIENTS)
        dsn_recipient_put(&out->recipients[out->recipient_count++], b);
    else
        out->recipient_overflow++;
}

/* The per-message fields are taken wherever they first appear: some MTAs write no blank
 * line between them and the first recipient's. */
static void dsn_field(const struct field *f, struct dsn_block *b, struct span *reporting_mta,
                      struct span *arrival)
{
    if (field_is(f, "Reporting-MTA"))
        span_take(reporting_mta, f);
    else if (field_is(f, "Arrival-Date"))
        span_take(arrival, f);
    else if (field_is(f, "Final-Recipient"))
        span_take(&b->final_recipient, f);
    else if (field_is(f, "Original-Recipient"))
        span_take(&b->original_recipient, f);
    else if (field_is(f, "Action"))
        span_take(&b->action, f);
    else if (field_is(f, "Status"))
        span_take(&b->status, f);
    else if (field_is(f, "Diagnostic-Code"))
        span_take(&b->diagnostic, f);
    else if (field_is(f, "Remote-MTA"))
        span_take(&b->remote_mta, f);
}

static void dsn_read(const char *data, size_t len, struct feedback_report *out)
{
    struct field_reader r;
    struct field f;
    struct dsn_block block = {0};
    struct span reporting_mta = {0}, arrival = {0};
    int block_index = 0;
    field_reader_init(&r, data, len);
    while (field_next(&r, &f)) {
        if (f.block != block_index) {
            dsn_block_end(&block, out);
            block = (struct dsn_block){0};
            block_index = f.block;
        }
        dsn_field(&f, &block, &reporting_mta, &arrival);
    }
    dsn_block_end(&block, out);
    text_put(out->reporting_mta, sizeof out->reporting_mta, reporting_mta.p, reporting_mta.n);
    if (arrival.p)
        out->arrival_ms = date_parse(arrival);
}

/* ---- ARF (RFC 5965): one block, though fields are taken from anywhere in the part ---- */

struct arf_fields {
    struct span feedback_type, user_agent, mail_from, rcpt_to, arrival, received, reporting_mta;
};

static void arf_field(const struct field *f, struct arf_fields *a)
{
    if (field_is(f, "Feedback-Type"))
        span_take(&a->feedback_type, f);
    else if (field_is(f, "User-Agent"))
        span_take(&a->user_agent, f);
    else if (field_is(f, "Original-Mail-From"))
        span_take(&a->mail_from, f);
    else if (field_is(f, "Original-Rcpt-To"))
        span_take(&a->rcpt_to, f);
    else if (field_is(f, "Arrival-Date"))
        span_take(&a->arrival, f);
    else if (field_is(f, "Received-Date"))
        span_take(&a->received, f);
    else if (field_is(f, "Reporting-MTA"))
        span_take(&a->reporting_mta, f);
}

static void arf_read(const char *data, size_t len, struct feedback_report *out)
{
    struct field_reader r;
    struct field f;
    struct arf_fields a = {0};
    field_reader_init(&r, data, len);
    while (field_next(&r, &f))
        arf_field(&f, &a);
    word_put_lower(out->feedback_type, sizeof out->feedback_type, a.feedback_type);
    text_put(out->user_agent, sizeof out->user_agent, a.user_agent.p, a.user_agent.n);
    addr_put(out->original_mail_from, sizeof out->original_mail_from, a.mail_from, false);
    addr_put(out->original_rcpt, sizeof out->original_rcpt, a.rcpt_to, false);
    if (!strchr(out->original_rcpt, '@')) /* redacted (RFC 6590) to something that is not one */
        out->original_rcpt[0] = '\0';
    if (a.arrival.p || a.received.p)
        out->arrival_ms = date_parse(a.arrival.p ? a.arrival : a.received);
    text_put(out->reporting_mta, sizeof out->reporting_mta, a.reporting_mta.p, a.reporting_mta.n);
}

/* ---- the returned original ---- */

static void original_from_headers(const char *data, size_t len, struct feedback_report *out)
{
    struct field_reader r;
    struct field f;
    struct span message_id = {0}, return_path = {0};
    field_reader_init(&r, data, len);
    while (field_next(&r, &f) && f.block == 0) {
        if (field_is(&f, "Message-ID"))
            span_take(&message_id, &f);
        else if (field_is(&f, "Return-Path"))
            span_take(&return_path, &f);
    }
    char value[REPORT_SHORT_VALUE];
    text_put(value, sizeof value, message_id.p, message_id.n);
    if (message_id.p)
        msgid_put(out->original_message_id, sizeof out->original_message_id, value);
    addr_put(out->original_return_path, sizeof out->original_return_path, return_path, false);
}

static void original_read(GMimeObject *obj, struct feedback_report *out)
{
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (!m)
            return;
        const char *id = g_mime_object_get_header(GMIME_OBJECT(m), "Message-ID");
        const char *rp = g_mime_object_get_header(GMIME_OBJECT(m), "Return-Path");
        if (id)
            msgid_put(out->original_message_id, sizeof out->original_message_id, id);
        if (rp)
            addr_put(out->original_return_path, sizeof out->original_return_path,
                     (struct span){rp, strlen(rp)}, false);
        return;
    }
    GByteArray *content = part_content(obj);
    if (content) {
        original_from_headers((const char *)content->data, content->len, out);
        g_byte_array_free(content, TRUE);
    }
}

/* ---- auto-replies (RFC 3834) ---- */

enum auto_kind { AUTO_NONE, AUTO_REPLY, AUTO_GENERATED };

static bool header_value_starts(GMimeObject *obj, const char *name, const char *prefix)
{
    const char *v = g_mime_object_get_header(obj, name);
    if (!v)
        return false;
    while (is_space(*v))
        v++;
    return !g_ascii_strncasecmp(v, prefix, strlen(prefix));
}

/* Auto-Submitted decides when present; otherwise the common non-standard markers. */
static enum auto_kind auto_kind(GMimeObject *obj)
{
    if (g_mime_object_get_header(obj, "Auto-Submitted")) {
        if (header_value_starts(obj, "Auto-Submitted", "auto-replied"))
            return AUTO_REPLY;
        return header_value_starts(obj, "Auto-Submitted", "no") ? AUTO_NONE : AUTO_GENERATED;
    }
    if (g_mime_object_get_header(obj, "X-Autoreply") ||
        g_mime_object_get_header(obj, "X-Autorespond"))
        return AUTO_REPLY;
    const char *precedence = g_mime_object_get_header(obj, "Precedence");
    char value[32];
    text_put_str(value, sizeof value, precedence);
    return !g_ascii_strcasecmp(value, "auto_reply") ? AUTO_REPLY : AUTO_NONE;
}

/* GMime's reading of a msg-id list (phrases and comments skipped), from at most
 * REPORT_SHORT_VALUE bytes of it: its first id, or with last, the id at its last '<'. */
static bool msgid_list_put(char *out, size_t outlen, const char *value, bool last)
{
    const char *lt = last ? strrchr(value, '<') : NULL;
    char *bounded = g_strndup(lt ? lt : value, REPORT_SHORT_VALUE);
    GMimeReferences *refs = g_mime_references_parse(NULL, bounded);
    int n = refs ? g_mime_references_length(refs) : 0;
    if (n > 0)
        text_put_str(out, outlen, g_mime_references_get_message_id(refs, last ? n - 1 : 0));
    if (refs)
        g_mime_references_free(refs);
    g_free(bounded);
    return n > 0;
}

/* The message replied to: In-Reply-To's first msg-id, else the last of References. */
static void autoreply_original(GMimeObject *obj, struct feedback_report *out)
{
    const char *in_reply_to = g_mime_object_get_header(obj, "In-Reply-To");
    const char *references = g_mime_object_get_header(obj, "References");
    char *id = out->original_message_id;
    if (in_reply_to && msgid_list_put(id, sizeof out->original_message_id, in_reply_to, false))
        return;
    if (references && msgid_list_put(id, sizeof out->original_message_id, references, true))
        return;
    if (in_reply_to) /* an id without its brackets */
        msgid_put(id, sizeof out->original_message_id, in_reply_to);
}

/* ---- the report's own header ---- */

/* The raw value of the first field of that name in the message's header section, which
 * GMime only sees defused (address fields renamed). */
static bool header_raw(const char *data, size_t len, const char *name, struct span *value)
{
    struct field_reader r;
    struct field f;
    struct span first;
    const char *p = data;
    if (line_next(&p, data + len, &first) && line_blank(first))
        return false; /* no header section at all */
    field_reader_init(&r, data, len);
    while (field_next(&r, &f) && f.block == 0) {
        if (field_is(&f, name)) {
            *value = f.value;
            return true;
        }
    }
    return false;
}

/* The first mailbox of From; an invalid From (MAILER-DAEMON without a domain, say) still
 * gives its address-looking part. */
static void from_put(const char *data, size_t len, struct feedback_report *out)
{
    struct span raw;
    if (!header_raw(data, len, "From", &raw))
        return;
    char value[1024];
    text_put(value, sizeof value, raw.p, raw.n);
    char first[STORE_IDENTITY_LEN];
    if (mail_first_mailbox(value, first, sizeof first))
        text_put_str(out->from, sizeof out->from, first);
    else
        addr_put(out->from, sizeof out->from, (struct span){value, strlen(value)}, false);
}

static void common_put(GMimeMessage *m, const char *data, size_t len, struct feedback_report *out)
{
    out->date_ms = date_ms(g_mime_message_get_date(m));
    text_put_str(out->subject, sizeof out->subject, g_mime_message_get_subject(m));
    from_put(data, len, out);
}

/* ---- classification ---- */

static enum feedback_report_kind unknown(struct feedback_report *out, const char *why,
                                         const char *what)
{
    char safe[64] = "";
    text_put_str(safe, sizeof safe, what);
    snprintf(out->error, sizeof out->error, "%s%s", why, safe);
    return FEEDBACK_REPORT_UNKNOWN;
}

static enum feedback_report_kind dsn_take(GMimeObject *status, GMimeObject *original,
                                          struct feedback_report *out)
{
    GByteArray *content = part_content(status);
    if (content) {
        dsn_read((const char *)content->data, content->len, out);
        g_byte_array_free(content, TRUE);
    }
    if (out->recipient_count == 0)
        return unknown(out, "delivery-status part without a per-recipient block", NULL);
    if (original)
        original_read(original, out);
    return FEEDBACK_REPORT_DSN;
}

static enum feedback_report_kind arf_take(GMimeObject *feedback, GMimeObject *original,
                                          struct feedback_report *out)
{
    GByteArray *content = part_content(feedback);
    if (content) {
        arf_read((const char *)content->data, content->len, out);
        g_byte_array_free(content, TRUE);
    }
    if (original)
        original_read(original, out);
    return FEEDBACK_REPORT_ARF;
}

/* multipart/report says which report it is; a report's part found elsewhere (the top
 * level, a multipart/mixed) is taken for what it is. *found: there was a report part. */
static enum feedback_report_kind report_take(GMimeObject *top, struct feedback_report *out,
                                             bool *found)
{
    struct report_parts parts = {0};
    parts_find(top, 0, &parts);
    const char *type = type_is(top, "multipart", "report")
                           ? g_mime_object_get_content_type_parameter(top, "report-type")
                           : NULL;
    bool dsn = !type || !g_ascii_strcasecmp(type, "delivery-status") ||
               !g_ascii_strcasecmp(type, "global-delivery-status");
    bool arf = !type || !g_ascii_strcasecmp(type, "feedback-report");
    *found = (dsn && parts.status) || (arf && parts.feedback);
    if (dsn && parts.status)
        return dsn_take(parts.status, parts.original, out);
    if (arf && parts.feedback)
        return arf_take(parts.feedback, parts.original, out);
    if (type && dsn)
        return unknown(out, "report without a delivery-status part", NULL);
    if (type && arf)
        return unknown(out, "report without a feedback-report part", NULL);
    if (type)
        return unknown(out, "not a DSN or ARF report: report-type=", type);
    return unknown(out, "report without a delivery-status or feedback-report part", NULL);
}

static enum feedback_report_kind classify(GMimeMessage *m, struct feedback_report *out)
{
    GMimeObject *top = g_mime_message_get_mime_part(m);
    bool report = top && type_is(top, "multipart", "report");
    if (top && (report || type_is(top, "multipart", "mixed") || part_is_status(top) ||
                type_is(top, "message", "feedback-report"))) {
        bool found = false;
        enum feedback_report_kind kind = report_take(top, out, &found);
        if (report || found) /* a report that fails to parse is not an auto-reply */
            return kind;
    }
    switch (auto_kind(GMIME_OBJECT(m))) {
    case AUTO_REPLY:
        autoreply_original(GMIME_OBJECT(m), out);
        return FEEDBACK_REPORT_AUTOREPLY;
    case AUTO_GENERATED:
        return unknown(out, "auto-generated, not an auto-reply", NULL);
    case AUTO_NONE:
        break;
    }
    GMimeContentType *ct = top ? g_mime_object_get_content_type(top) : NULL;
    char *type = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
    unknown(out, "not a report: ", type ? type : "no content");
    g_free(type);
    return FEEDBACK_REPORT_UNKNOWN;
}

/* GMime parses a copy with the address fields hidden from its address parser (see
 * gmime_quirks.c); From is read from the raw bytes instead. */
static GMimeMessage *report_mime_parse(const char *data, size_t len)
{
    GByteArray *copy = g_byte_array_sized_new((guint)len);
    g_byte_array_append(copy, (const guint8 *)data, (guint)len);
    mail_gmime_defuse((char *)copy->data, copy->len);
    GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(copy); /* owns copy */
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    return m;
}

static bool line_starts_ci(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    return (size_t)(end - p) >= n && !strncasecmp(p, word, n);
}

/* One pass over the bytes before GMime: NULL, or why the report is too complex to parse.
 * Header lines are those from the start, or from a '--' line, to the next empty line. */
static const char *report_too_complex(const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    size_t entities = 0, headers = 0;
    bool in_header = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        bool empty = eol == p || (eol == p + 1 && *p == '\r');
        if (line_starts_ci(p, eol, "--")) {
            const char *last = eol;
            while (last > p + 2 && (last[-1] == '\r' || last[-1] == ' ' || last[-1] == '\t'))
                last--;
            entities++;
            /* a part's headers follow a delimiter, none the closing one ("--b--") */
            in_header = !(last - p > 4 && last[-1] == '-' && last[-2] == '-');
        } else if (empty) {
            in_header = false;
        } else {
            headers += in_header;
            entities += line_starts_ci(p, eol, "content-type:");
        }
        if (entities > REPORT_MAX_ENTITIES)
            return "too many MIME parts to parse";
        if (headers > REPORT_MAX_HEADERS)
            return "too many header lines to parse";
        p = nl ? nl + 1 : end;
    }
    return NULL;
}

enum feedback_report_kind feedback_report_parse(const char *data, size_t len,
                                                struct feedback_report *out)
{
    memset(out, 0, sizeof *out);
    if (!data || len == 0) {
        out->kind = unknown(out, "empty message", NULL);
        return out->kind;
    }
    if (len > G_MAXUINT) { /* GByteArray's limit; far above the listener's */
        out->kind = unknown(out, "message too large", NULL);
        return out->kind;
    }
    const char *complex = report_too_complex(data, len);
    if (complex) {
        out->kind = unknown(out, complex, NULL);
        return out->kind;
    }
    mail_gmime_init();
    GMimeMessage *m = report_mime_parse(data, len);
    if (!m) {
        out->kind = unknown(out, "unparseable MIME", NULL);
        return out->kind;
    }
    common_put(m, data, len, out);
    out->kind = classify(m, out);
    g_object_unref(m);
    if (out->kind != FEEDBACK_REPORT_UNKNOWN) /* a failed attempt at one shape of report */
        memset(out->error, 0, sizeof out->error);
    return out->kind;
}
