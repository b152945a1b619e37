/* The emails Sesame writes about feedback: DSNs (RFC 3464) and ARF reports (RFC 5965) for
 * outcomes it decided itself, the simulator's auto-reply (RFC 3834), forwarded reports
 * and plain-text SNS email notifications. Fixed layouts, written as CRLF text with lines
 * of at most 998 octets. Values that come from events or from the original message are
 * untrusted: they are reduced to printable ASCII on one line before they reach a header
 * or a report field. */
#include "feedback/feedback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FIELD_MAX 900 /* a value's share of a 998-octet line */

/* RFC 5322 date-time in UTC: "Tue, 01 Dec 2026 21:50:10 +0000" (the C locale's day and
 * month names are English; sesamed never changes its locale). */
static void compose_date(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof tm);
    if (!strftime(out, outlen, "%a, %d %b %Y %H:%M:%S +0000", &tm))
        core_strlcpy(out, "Thu, 01 Jan 1970 00:00:00 +0000", outlen);
}

/* Appends s as one line's worth of printable ASCII: line breaks and other controls become
 * spaces, other bytes '?', and it is cut at FIELD_MAX octets. */
static void put_clean(struct buf *out, const char *s)
{
    char line[FIELD_MAX + 1];
    size_t n = 0;
    for (; s && *s && n < FIELD_MAX; s++) {
        unsigned char ch = (unsigned char)*s;
        line[n++] = ch < 0x20 || ch == 0x7f ? ' ' : ch >= 0x80 ? '?' : (char)ch;
    }
    buf_append(out, line, n);
}

static void field(struct buf *out, const char *name, const char *value)
{
    buf_printf(out, "%s: ", name);
    put_clean(out, value);
    buf_puts(out, "\r\n");
}

/* A Subject: printable ASCII as it is; anything else as RFC 2047 base64 encoded-words of
 * whole UTF-8 characters, one per folded line. */
static void subject_field(struct buf *out, const char *subject)
{
    size_t len = strlen(subject);
    bool plain = len <= FIELD_MAX;
    for (size_t i = 0; plain && i < len; i++)
        plain = subject[i] >= 0x20 && subject[i] < 0x7f;
    if (plain)
        return field(out, "Subject", subject);
    buf_puts(out, "Subject:");
    for (size_t i = 0, words = 0; i < len && words < 40; words++) {
        size_t n = len - i < 45 ? len - i : 45;
        while (n > 1 && i + n < len && ((unsigned char)subject[i + n] & 0xc0) == 0x80)
            n--; /* do not split a character between two words */
        char b64[64];
        core_base64_encode((const unsigned char *)subject + i, n, b64);
        buf_printf(out, "%s=?UTF-8?B?%s?=", words ? "\r\n " : " ", b64);
        i += n;
    }
    buf_puts(out, "\r\n");
}

/* A boundary no part can contain: "=_" never occurs in base64 or quoted-printable text,
 * and the rest is 128 random bits. */
static int make_boundary(char out[40])
{
    unsigned char rnd[16];
    if (core_random_bytes(rnd, sizeof rnd))
        return -1;
    memcpy(out, "=_", 2);
    core_hex_encode(rnd, sizeof rnd, out + 2);
    return 0;
}

static void headers(struct buf *out, const struct feedback_compose *c, const char *from,
                    const char *subject, const char *auto_submitted)
{
    char date[64];
    compose_date(c->now_ms, date, sizeof date);
    field(out, "From", from);
    field(out, "To", c->to);
    subject_field(out, subject);
    field(out, "Date", date);
    buf_puts(out, "Message-ID: <");
    put_clean(out, c->message_id);
    buf_puts(out, "@");
    put_clean(out, c->message_id_domain ? c->message_id_domain : c->hostname);
    buf_puts(out, ">\r\nMIME-Version: 1.0\r\n");
    field(out, "Auto-Submitted", auto_submitted);
}

/* ---- the original message ---- */

/* Length of the original's header section (without the empty line ending it); the whole
 * of it when there is no body. */
static size_t original_header_len(const struct feedback_compose *c)
{
    const char *p = c->original, *end = c->original + c->original_len;
    while (p < end) {
        if (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'))
            return (size_t)(p - c->original); /* the empty line (LF alone is taken too) */
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        p = lf ? lf + 1 : end;
    }
    return c->original_len;
}

/* Appends data with every line ending in CRLF (a bare LF becomes CRLF, a last line gets
 * one). A line over 998 octets, which no valid message has, is broken with a continuation
 * line rather than sent as it is. */
static void append_lines(struct buf *out, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *eol = lf ? lf : end;
        if (lf && eol > p && eol[-1] == '\r')
            eol--;
        size_t n = (size_t)(eol - p);
        while (n > 998) {
            buf_append(out, p, 990);
            buf_puts(out, "\r\n ");
            p += 990, n -= 990;
        }
        buf_append(out, p, n);
        buf_puts(out, "\r\n");
        p = lf ? lf + 1 : end;
    }
}

/* The value of the original's first header field called name, unfolded and cleaned. */
static bool original_header(const struct feedback_compose *c, const char *name, char *out,
                            size_t outlen)
{
    size_t hlen = c->original ? original_header_len(c) : 0, nlen = strlen(name);
    const char *p = c->original, *end = p + hlen;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *next = lf ? lf + 1 : end;
        if ((size_t)(end - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
            size_t n = 0;
            for (const char *v = p + nlen + 1; v < end && n + 1 < outlen; v++) {
                if (*v == '\n' && (v + 1 >= end || (v[1] != ' ' && v[1] != '\t')))
                    break; /* the field ends where no continuation line follows */
                if (*v != '\r' && *v != '\n')
                    out[n++] = *v >= 0x20 && *v < 0x7f ? *v : ' ';
            }
            out[n] = '\0';
            return true;
        }
        p = next;
    }
    return false;
}

/* The <...> of a Message-ID field value, with its brackets; false when none. */
static bool message_id_token(const char *value, char *out, size_t outlen)
{
    const char *lt = strchr(value, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!gt || gt == lt + 1 || (size_t)(gt - lt) + 2 > outlen || memchr(lt, ' ', (size_t)(gt - lt)))
        return false;
    memcpy(out, lt, (size_t)(gt - lt) + 1);
    out[gt - lt + 1] = '\0';
    return true;
}

/* ---- parts ---- */

static void part_start(struct buf *out, const char *boundary, const char *content_type)
{
    buf_printf(out, "\r\n--%s\r\nContent-Type: %s\r\n", boundary, content_type);
}

/* Each part's content ends in CRLF, then the CRLF before the next delimiter. */
static void multipart_end(struct buf *out, const char *boundary)
{
    buf_printf(out, "\r\n--%s--\r\n", boundary);
}

static void multipart_start(struct buf *out, const char *type, const char *boundary)
{
    buf_printf(out, "Content-Type: %s;\r\n boundary=\"%s\"\r\n\r\n", type, boundary);
    buf_puts(out, "This is a multi-part message in MIME format.\r\n");
}

static void text_part(struct buf *out, const char *boundary, const struct buf *text)
{
    part_start(out, boundary, "text/plain; charset=us-ascii");
    buf_puts(out, "Content-Transfer-Encoding: 7bit\r\n\r\n");
    buf_append(out, text->data, text->len);
}

/* The original's header section as a text/rfc822-headers part. */
static void headers_part(struct buf *out, const char *boundary, const struct feedback_compose *c)
{
    part_start(out, boundary, "text/rfc822-headers");
    buf_puts(out, "\r\n");
    append_lines(out, c->original, original_header_len(c));
}

/* Whether data can travel as a message/rfc822 part over SMTP without BINARYMIME: no NUL
 * and no line over 998 octets. *eightbit says whether it needs 8BITMIME. */
static bool message_transportable(const char *data, size_t len, bool *eightbit)
{
    size_t line = 0;
    *eightbit = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\0')
            return false;
        *eightbit |= ch >= 0x80;
        line = ch == '\n' ? 0 : line + 1;
        if (line > 998)
            return false;
    }
    return true;
}

static void message_part(struct buf *out, const char *boundary, const char *data, size_t len,
                         bool eightbit)
{
    part_start(out, boundary, "message/rfc822");
    if (eightbit)
        buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
    buf_puts(out, "Content-Disposition: attachment\r\n\r\n");
    append_lines(out, data, len);
}

/* ---- DSN ---- */

/* When the original arrived: the first event's acceptance time, else now. */
static int64_t dsn_arrival(const struct feedback_compose *c, const struct store_event *e)
{
    if (e->created_ms > 0 && e->processing_ms >= 0 && e->processing_ms <= e->created_ms)
        return e->created_ms - e->processing_ms;
    return c->now_ms;
}

static const char *dsn_status(const struct store_event *e)
{
    if (e->status[0])
        return e->status;
    return !strcmp(e->bounce_type, "Transient") ? "4.0.0" : "5.0.0";
}

/* Whether a diagnostic already names its type ("smtp; 550 ...", "X-Postfix; ..."). */
static bool diagnostic_typed(const char *d)
{
    if (!strncasecmp(d, "smtp;", 5))
        return true;
    if (strncasecmp(d, "x-", 2))
        return false;
    const char *p = d + 2;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '-')
        p++;
    return p > d + 2 && *p == ';';
}

static void dsn_human(struct buf *out, const struct feedback_compose *c,
                      const struct store_event *const *events, int count)
{
    buf_puts(out, "This is the mail system at host ");
    put_clean(out, c->hostname);
    buf_puts(out, ".\r\n\r\nYour message could not be delivered to the following recipients.\r\n"
                  "No further attempts will be made.\r\n");
    for (int i = 0; i < count; i++) {
        const struct store_event *e = events[i];
        buf_puts(out, "\r\n  ");
        put_clean(out, e->recipient);
        buf_puts(out, "\r\n    Status: ");
        put_clean(out, dsn_status(e));
        buf_puts(out, "\r\n");
        const char *why = e->diagnostic[0] ? e->diagnostic : e->smtp_response;
        if (why[0]) {
            buf_puts(out, "    ");
            put_clean(out, why);
            buf_puts(out, "\r\n");
        }
    }
}

static void dsn_recipient(struct buf *out, const struct store_event *e)
{
    buf_puts(out, "\r\nFinal-Recipient: rfc822; ");
    put_clean(out, e->recipient);
    buf_puts(out, "\r\nAction: failed\r\n");
    field(out, "Status", dsn_status(e));
    if (e->diagnostic[0]) {
        buf_puts(out, "Diagnostic-Code: ");
        if (!diagnostic_typed(e->diagnostic))
            buf_puts(out, "X-Sesame; ");
        put_clean(out, e->diagnostic);
        buf_puts(out, "\r\n");
    }
    if (e->remote_mta[0]) { /* a host name, or a received DSN's value with its type */
        buf_puts(out, strchr(e->remote_mta, ';') ? "Remote-MTA: " : "Remote-MTA: dns; ");
        put_clean(out, e->remote_mta);
        buf_puts(out, "\r\n");
    }
}

int feedback_compose_dsn(const struct feedback_compose *c, const struct store_event *const *events,
                         int count, struct buf *out)
{
    char boundary[40], date[40];
    if (count <= 0 || make_boundary(boundary))
        return -1;
    headers(out, c, c->from, "Delivery Status Notification (Failure)", "auto-replied");
    multipart_start(out, "multipart/report; report-type=delivery-status", boundary);
    struct buf text;
    buf_init(&text);
    dsn_human(&text, c, events, count);
    text_part(out, boundary, &text);
    buf_free(&text);
    part_start(out, boundary, "message/delivery-status");
    buf_puts(out, "\r\nReporting-MTA: dns; ");
    put_clean(out, c->hostname);
    compose_date(dsn_arrival(c, events[0]), date, sizeof date);
    buf_printf(out, "\r\nArrival-Date: %s\r\n", date);
    /* an extension field (RFC 3464 §3.2): which message, even once its bytes are gone */
    buf_puts(out, "X-Original-Message-ID: <");
    put_clean(out, events[0]->message_id);
    buf_puts(out, "@");
    put_clean(out, c->message_id_domain);
    buf_puts(out, ">\r\n");
    for (int i = 0; i < count; i++)
        dsn_recipient(out, events[i]);
    if (c->original)
        headers_part(out, boundary, c);
    multipart_end(out, boundary);
    return 0;
}

/* ---- ARF ---- */

int feedback_compose_arf(const struct feedback_compose *c, const struct store_event *e,
                         struct buf *out)
{
    char boundary[40], date[40];
    if (make_boundary(boundary))
        return -1;
    compose_date(e->arrival_ms ? e->arrival_ms : c->now_ms, date, sizeof date);
    headers(out, c, c->from, "Complaint about message", "auto-generated");
    multipart_start(out, "multipart/report; report-type=feedback-report", boundary);
    struct buf text;
    buf_init(&text);
    buf_puts(&text, "This is an email abuse report for an email message sent from ");
    put_clean(&text, c->hostname);
    buf_printf(&text, "\r\nand received on %s.\r\n", date);
    text_part(out, boundary, &text);
    buf_free(&text);
    part_start(out, boundary, "message/feedback-report");
    buf_puts(out, "\r\n");
    field(out, "Feedback-Type", e->feedback_type[0] ? e->feedback_type : "abuse");
    field(out, "User-Agent", e->user_agent[0] ? e->user_agent : "Sesame mailbox simulator");
    buf_puts(out, "Version: 1\r\n");
    field(out, "Original-Rcpt-To", e->recipient);
    buf_printf(out, "Arrival-Date: %s\r\nReporting-MTA: dns; ", date);
    put_clean(out, c->hostname);
    buf_puts(out, "\r\n");
    bool eightbit = false;
    if (c->original && c->original_len > original_header_len(c) &&
        message_transportable(c->original, c->original_len, &eightbit))
        message_part(out, boundary, c->original, c->original_len, eightbit);
    else if (c->original)
        headers_part(out, boundary, c);
    multipart_end(out, boundary);
    return 0;
}

/* ---- the rest ---- */

int feedback_compose_autoreply(const struct feedback_compose *c, const char *responder,
                               struct buf *out)
{
    headers(out, c, responder, "Out of the office", "auto-replied");
    char value[1000], id[1000];
    if (c->original && original_header(c, "Message-ID", value, sizeof value) &&
        message_id_token(value, id, sizeof id))
        buf_printf(out, "In-Reply-To: %s\r\nReferences: %s\r\n", id, id);
    buf_puts(out, "Content-Type: text/plain; charset=us-ascii\r\n"
                  "Content-Transfer-Encoding: 7bit\r\n\r\n"
                  "I am out of the office and will not be reading email until my return.\r\n"
                  "Your message has been received.\r\n");
    return 0;
}

int feedback_compose_forward(const struct feedback_compose *c, const char *subject,
                             const char *report, size_t report_len, struct buf *out)
{
    char boundary[40];
    bool eightbit = false;
    if (make_boundary(boundary))
        return -1;
    if (!message_transportable(report, report_len, &eightbit))
        eightbit = true; /* kept unchanged all the same: it is the evidence */
    headers(out, c, c->from, subject ? subject : "Feedback report", "auto-generated");
    multipart_start(out, "multipart/mixed", boundary);
    struct buf text;
    buf_init(&text);
    buf_puts(&text, "The attached report was received for a message you sent through ");
    put_clean(&text, c->hostname);
    buf_puts(&text, ".\r\n");
    text_part(out, boundary, &text);
    buf_free(&text);
    part_start(out, boundary, "message/rfc822");
    if (eightbit)
        buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
    buf_puts(out, "Content-Disposition: attachment\r\n\r\n");
    buf_append(out, report, report_len);
    if (report_len < 2 || memcmp(report + report_len - 2, "\r\n", 2))
        buf_puts(out, "\r\n");
    multipart_end(out, boundary);
    return 0;
}

/* Quoted-printable (RFC 2045 §6.7) of text whose line breaks are LF or CRLF: lines of at
 * most 76 characters, soft breaks where a line is longer. */
static void quoted_printable(struct buf *out, const char *text)
{
    size_t col = 0;
    for (const char *p = text; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\n' || (ch == '\r' && p[1] == '\n')) {
            buf_puts(out, "\r\n");
            col = 0;
            p += ch == '\r';
            continue;
        }
        bool at_eol = !p[1] || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        bool literal =
            (ch >= 33 && ch <= 126 && ch != '=') || ((ch == ' ' || ch == '\t') && !at_eol);
        size_t width = literal ? 1 : 3;
        if (col + width > 75) { /* leave room for the soft break's '=' */
            buf_puts(out, "=\r\n");
            col = 0;
        }
        if (literal)
            buf_append(out, p, 1);
        else
            buf_printf(out, "=%02X", ch);
        col += width;
    }
    if (col)
        buf_puts(out, "=\r\n"); /* text without a final line break: a soft one */
}

int feedback_compose_text(const struct feedback_compose *c, const char *subject, const char *text,
                          struct buf *out)
{
    headers(out, c, c->from, subject ? subject : "", "auto-generated");
    buf_puts(out, "Content-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    quoted_printable(out, text ? text : "");
    return 0;
}
