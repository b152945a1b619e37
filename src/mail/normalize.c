/* Canonical line endings (DECISIONS 12). Every line must end in CRLF before the message
 * is stored, signed or relayed. A bare LF becomes CRLF wherever it appears: AWS accepts
 * messages with LF-only lines, and a message mixing CRLF and LF lines (a CRLF template
 * with LF-only parts pasted in, say) has the same single reading, so it is converted too
 * rather than refused. A bare CR has no safe reading (SMTP smuggling relies on it), and a
 * NUL or an over-long line cannot be relayed, so those are refused. */
#include "mail/mail.h"

#include <stdio.h>
#include <string.h>

static enum mail_status refuse(enum mail_status st, size_t line, char *err, size_t errlen)
{
    const char *what = st == MAIL_NUL       ? "contains a NUL octet"
                       : st == MAIL_BARE_CR ? "contains a CR not followed by LF"
                                            : "is longer than 998 octets";
    if (err && errlen)
        snprintf(err, errlen, "Line %zu of the message %s.", line, what);
    return st;
}

/* Checks one line's content (without its ending). */
static enum mail_status check_line(const char *p, size_t n)
{
    if (memchr(p, '\0', n))
        return MAIL_NUL;
    if (memchr(p, '\r', n))
        return MAIL_BARE_CR;
    if (n > MAIL_MAX_LINE)
        return MAIL_LINE_TOO_LONG;
    return MAIL_OK;
}

/* True when raw is already what mail_normalize makes of it: every line ends in CRLF (the
 * last may have no ending), none holds another CR, none is too long, and there is no NUL.
 * Most messages are; they are then copied whole instead of a line at a time. */
static bool already_canonical(const char *raw, size_t len)
{
    if (memchr(raw, '\0', len))
        return false;
    for (size_t pos = 0; pos < len;) {
        const char *lf = memchr(raw + pos, '\n', len - pos);
        size_t end = lf ? (size_t)(lf - raw) : len;
        size_t content_end = lf ? end - 1 : end;
        if ((lf && (end == pos || raw[end - 1] != '\r')) || content_end - pos > MAIL_MAX_LINE ||
            memchr(raw + pos, '\r', content_end - pos))
            return false;
        pos = end + 1;
    }
    return true;
}

enum mail_status mail_normalize(const char *raw, size_t len, struct buf *out, char *err,
                                size_t errlen)
{
    if (raw && len > 0 && already_canonical(raw, len)) {
        buf_append(out, raw, len);
        return MAIL_OK;
    }
    size_t start_len = out->len, pos = 0, line = 1;
    while (raw && pos < len) {
        const char *lf = memchr(raw + pos, '\n', len - pos);
        size_t end = lf ? (size_t)(lf - raw) : len;
        size_t content_end = (lf && end > pos && raw[end - 1] == '\r') ? end - 1 : end;
        enum mail_status st = check_line(raw + pos, content_end - pos);
        if (st != MAIL_OK) {
            out->len = start_len; /* nothing of a refused message is kept */
            if (out->data)
                out->data[start_len] = '\0';
            return refuse(st, line, err, errlen);
        }
        buf_append(out, raw + pos, content_end - pos);
        if (lf)
            buf_append(out, "\r\n", 2);
        pos = lf ? end + 1 : len;
        line++;
    }
    return MAIL_OK;
}
