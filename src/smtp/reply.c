/* Server replies as an SMTP client reads them (RFC 5321 §4.2): "ddd text" ends a reply,
 * "ddd-text" continues it, every line with the same code. Strict, because the code
 * decides what happens to a message and a confused reader could report a delivery
 * that did not happen. */
#include "smtp/smtp_internal.h"

#include <string.h>

void smtp_reply_init(struct smtp_reply *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text);
}

void smtp_reply_reset(struct smtp_reply *r)
{
    buf_reset(&r->text);
    if (r->text.data)
        r->text.data[0] = '\0'; /* buf_reset keeps the old bytes, and buf_cstr shows them */
    r->code = 0;
    r->done = false;
    r->lines = 0;
}

void smtp_reply_free(struct smtp_reply *r)
{
    buf_free(&r->text);
    smtp_reply_init(r);
}

/* The code of a line, or -1 when it does not start with 2xx-5xx. */
static int reply_code(const char *line, size_t len)
{
    if (len < 3 || line[0] < '2' || line[0] > '5')
        return -1;
    for (int i = 1; i < 3; i++)
        if (line[i] < '0' || line[i] > '9')
            return -1;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

int smtp_reply_feed(struct smtp_reply *r, const char *line, size_t len)
{
    if (r->done || r->lines >= SMTP_REPLY_LINES_MAX || len > SMTP_REPLY_LINE_MAX ||
        memchr(line, '\0', len))
        return -1;
    int code = reply_code(line, len);
    if (code < 0 || (r->lines > 0 && code != r->code))
        return -1;
    bool last = len == 3 || line[3] == ' ';
    if (!last && line[3] != '-')
        return -1;
    if (r->lines > 0)
        buf_append(&r->text, "\n", 1);
    if (len > 4)
        buf_append(&r->text, line + 4, len - 4);
    r->code = code;
    r->lines++;
    r->done = last;
    return last ? 1 : 0;
}
