/* The header section as raw bytes (RFC 5322 §2.2): splitting into fields with their
 * continuation lines, and the acceptance rewrites (DECISIONS 10, 11, 13). The rewrites
 * never reformat a field they keep, so a customer's DKIM signature over those fields
 * still verifies after Sesame has touched the message. */
#include "mail/mail_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mail_fields_init(struct mail_fields *it, const char *msg, size_t len)
{
    it->msg = msg;
    it->len = len;
    it->pos = 0;
    it->header_len = 0;
}

/* End of the line at pos without its ending; *next: the start of the following line.
 * LF ends a line and a CR before it is the ending's, so non-canonical input stays safe. */
static size_t line_end(const struct mail_fields *it, size_t pos, size_t *next)
{
    const char *lf = memchr(it->msg + pos, '\n', it->len - pos);
    if (!lf) {
        *next = it->len;
        return it->len;
    }
    size_t e = (size_t)(lf - it->msg);
    *next = e + 1;
    return (e > pos && it->msg[e - 1] == '\r') ? e - 1 : e;
}

/* Length of "name:" at p, or 0 when the line is not a field. WSP between the name and
 * the colon is obsolete syntax that receivers must still accept (RFC 5322 §4.5). */
static size_t field_name(const char *p, size_t n, size_t *name_len)
{
    size_t i = 0;
    while (i < n && p[i] >= 33 && p[i] <= 126 && p[i] != ':')
        i++;
    *name_len = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (*name_len == 0 || i >= n || p[i] != ':')
        return 0;
    return i + 1;
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

int mail_fields_next(struct mail_fields *it, struct mail_field *f)
{
    size_t next = it->len, end = it->len, name_len;
    if (it->pos < it->len)
        end = line_end(it, it->pos, &next);
    if (end == it->pos) { /* an empty line, or the end of a message without a body */
        if (it->pos == 0)
            return -1; /* no header at all */
        it->header_len = next;
        return 0;
    }
    size_t colon = field_name(it->msg + it->pos, end - it->pos, &name_len);
    if (colon == 0)
        return -1;
    f->start = it->pos;
    f->name = it->msg + it->pos;
    f->name_len = name_len;
    f->value = it->msg + it->pos + colon;
    while (next < it->len && is_wsp(it->msg[next]))
        end = line_end(it, next, &next);
    f->value_len = (size_t)(it->msg + end - f->value);
    f->end = next;
    it->pos = next;
    return 1;
}

bool mail_field_is(const struct mail_field *f, const char *name)
{
    size_t n = strlen(name);
    if (f->name_len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = f->name[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

char *mail_field_unfold(const struct mail_field *f)
{
    char *out = malloc(f->value_len + 1);
    if (!out)
        abort(); /* out of memory: nothing sensible to do mid-request */
    size_t n = 0;
    for (size_t i = 0; i < f->value_len; i++) {
        if (f->value[i] != '\r' && f->value[i] != '\n')
            out[n++] = f->value[i];
    }
    while (n > 0 && is_wsp(out[n - 1]))
        n--;
    out[n] = '\0';
    size_t lead = strspn(out, " \t");
    memmove(out, out + lead, n - lead + 1);
    return out;
}

void mail_date_format(int64_t ms, char *out, size_t outlen)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, outlen, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The fields Sesame replaces or removes at acceptance. */
static bool rewrite_drops(const struct mail_field *f)
{
    return mail_field_is(f, "Date") || mail_field_is(f, "Message-ID") ||
           mail_field_is(f, "Return-Path") || mail_field_is(f, "Bcc");
}

/* A value Sesame writes into a new field must stay one field on one line. */
static enum mail_status check_value(const char *name, const char *value)
{
    if (!value)
        return MAIL_OK;
    if (strpbrk(value, "\r\n"))
        return MAIL_INJECTION;
    if (strlen(name) + 2 + strlen(value) > MAIL_MAX_LINE)
        return MAIL_LINE_TOO_LONG;
    return MAIL_OK;
}

static void put_field(struct buf *out, const char *name, const char *value)
{
    if (value)
        buf_printf(out, "%s: %s\r\n", name, value);
}

enum mail_status mail_rewrite(const char *msg, size_t len, const struct mail_rewrite *rw,
                              struct buf *out)
{
    enum mail_status st = check_value("Message-ID", rw->message_id);
    if (st == MAIL_OK)
        st = check_value("From", rw->add_from);
    if (st != MAIL_OK)
        return st;
    if (!msg)
        msg = ""; /* an empty buffer may have no storage yet */
    size_t start_len = out->len, copied = 0;
    char date[32];
    mail_date_format(rw->date_ms, date, sizeof date);
    put_field(out, "Date", date);
    put_field(out, "Message-ID", rw->message_id);
    put_field(out, "From", rw->add_from);
    struct mail_fields it;
    struct mail_field f;
    int r;
    mail_fields_init(&it, msg, len);
    while ((r = mail_fields_next(&it, &f)) == 1) {
        if (!rewrite_drops(&f))
            continue;
        buf_append(out, msg + copied, f.start - copied);
        copied = f.end;
    }
    if (r < 0) {
        out->len = start_len;
        out->data[start_len] = '\0';
        return MAIL_BAD_HEADER;
    }
    buf_append(out, msg + copied, len - copied);
    return MAIL_OK;
}
