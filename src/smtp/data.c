/* The DATA reader (RFC 5321 §4.1.1.4, §4.5.2): finds the end of the message, undoes
 * dot-stuffing and keeps everything else byte for byte, fed chunks of any size.
 *
 * The end is only CRLF "." CRLF. A dot line with a bare LF on either side is where some
 * other server may see the end and we would not: that gap is SMTP smuggling, so such a
 * message is refused outright (DECISIONS 23). Dot-stuffing is undone only after a CRLF,
 * the protocol's line end; after a bare LF a dot is ordinary text. */
#include "smtp/smtp_internal.h"

#include <string.h>

/* Where the reader is. "Held" bytes are not yet in the message: they may turn out to be
 * the terminator or a stuffing dot. */
enum data_state {
    DATA_BOL,        /* at a line start after CRLF (or the first line) */
    DATA_TEXT,       /* inside a line */
    DATA_CR,         /* just after a CR inside a line (kept) */
    DATA_DOT,        /* CRLF "." (the dot held) */
    DATA_DOT_CR,     /* CRLF "." CR (both held) */
    DATA_BOL_LF,     /* at a line start after a bare LF */
    DATA_LF_DOT,     /* LF "." (the dot held) */
    DATA_LF_DOT_CR,  /* LF "." CR (both held) */
    DATA_END,        /* the terminator was consumed */
    DATA_BARE_LF_END /* a bare LF next to a dot line was consumed */
};

void smtp_data_start(struct smtp_data *d, size_t limit)
{
    memset(d, 0, sizeof *d);
    buf_init(&d->message);
    d->limit = limit;
    d->state = DATA_BOL;
}

void smtp_data_free(struct smtp_data *d)
{
    buf_free(&d->message);
    memset(d, 0, sizeof *d);
    buf_init(&d->message);
}

/* Adds message bytes, keeping only what fits under the limit. */
static void data_keep(struct smtp_data *d, const char *p, size_t n)
{
    d->total += n;
    size_t room = d->limit - d->message.len;
    if (n > room) {
        d->too_big = true;
        n = room;
    }
    if (n > 0)
        buf_append(&d->message, p, n);
}

/* A byte inside a line: the state after it, once kept. */
static int data_text_byte(struct smtp_data *d, char c)
{
    data_keep(d, &c, 1);
    if (c == '\r')
        return DATA_CR;
    if (c == '\n')
        return DATA_BOL_LF;
    return DATA_TEXT;
}

/* Advances over one byte. Bytes that were held and turn out to be text are kept first,
 * then c is taken as text. */
static int data_step(struct smtp_data *d, char c)
{
    switch (d->state) {
    case DATA_TEXT:
        return data_text_byte(d, c);
    case DATA_BOL:
        return c == '.' ? DATA_DOT : data_text_byte(d, c);
    case DATA_BOL_LF:
        return c == '.' ? DATA_LF_DOT : data_text_byte(d, c);
    case DATA_CR:
        return c == '\n' ? (data_keep(d, "\n", 1), DATA_BOL) : data_text_byte(d, c);
    case DATA_DOT:
        if (c == '\r')
            return DATA_DOT_CR;
        if (c == '\n')
            return DATA_BARE_LF_END;
        return data_text_byte(d, c); /* "..x" -> ".x": a line's first dot was stuffing */
    case DATA_DOT_CR:
        if (c == '\n')
            return DATA_END;
        data_keep(d, "\r", 1); /* the stuffing dot dropped, the bare CR kept */
        return data_text_byte(d, c);
    case DATA_LF_DOT:
        if (c == '\r')
            return DATA_LF_DOT_CR;
        if (c == '\n')
            return DATA_BARE_LF_END;
        data_keep(d, ".", 1);
        return data_text_byte(d, c);
    case DATA_LF_DOT_CR:
        if (c == '\n')
            return DATA_BARE_LF_END;
        data_keep(d, ".\r", 2);
        return data_text_byte(d, c);
    default:
        return DATA_TEXT; /* unreachable: the feed stops at DATA_END and DATA_BARE_LF_END */
    }
}

/* Bytes from in, read inside a line, that leave the reader inside a line: the rest of this
 * line, and whole lines after it as long as each ends in CRLF with no other CR and the next
 * starts with a byte that is neither a dot nor a line end. Found with memchr so that a
 * message of ordinary lines is kept in one append, not a byte at a time. */
static size_t data_text_run(const char *in, size_t len)
{
    size_t n = 0;
    for (;;) {
        const char *lf = memchr(in + n, '\n', len - n);
        size_t end = lf ? (size_t)(lf - in) : len;
        const char *cr = memchr(in + n, '\r', end - n);
        if (!lf || !cr || (size_t)(cr - in) != end - 1)
            return cr ? (size_t)(cr - in) : end;
        if (end + 1 >= len || in[end + 1] == '.' || in[end + 1] == '\r' || in[end + 1] == '\n')
            return end - 1; /* the CRLF and what follows go a byte at a time */
        n = end + 1;
    }
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t len,
                      enum smtp_data_status *status)
{
    size_t i = 0;
    while (i < len && d->state != DATA_END && d->state != DATA_BARE_LF_END) {
        size_t run = d->state == DATA_TEXT ? data_text_run(in + i, len - i) : 0;
        if (run > 0) {
            data_keep(d, in + i, run); /* the common case: one append per line */
            i += run;
            continue;
        }
        d->state = data_step(d, in[i]);
        i++;
    }
    if (d->state == DATA_END)
        *status = SMTP_DATA_DONE;
    else if (d->state == DATA_BARE_LF_END)
        *status = SMTP_DATA_BARE_LF_DOT;
    else
        *status = SMTP_DATA_MORE;
    return i;
}
