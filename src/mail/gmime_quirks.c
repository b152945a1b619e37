/* Work-arounds for defects of the GMime Debian 12 ships (3.2.13).
 *
 * GMime's address parser leaks an allocation when an address is a domain literal
 * followed by a comment that never closes ("a@[192.0.2.1] (x"); 3.2.15 fixes it. The
 * top-level address fields are screened before GMime sees them (address.c), but GMime
 * also parses the address fields of every attached message on its own, and an attacker
 * could repeat such a field to leak memory with every message. So in the copy that GMime
 * parses for inspection, such a '(' is blanked. Only the inspection copy changes, and
 * only in lines that start like an address field: neither the MIME structure nor any
 * attachment name can change. */
#include "mail/mail_internal.h"

#include <string.h>

/* The address fields GMime parses when it builds a message object. */
static bool address_field(const char *p, const char *end)
{
    static const char *const names[] = {"From", "To", "Cc", "Bcc", "Sender", "Reply-To"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i]);
        if ((size_t)(end - p) > n && !g_ascii_strncasecmp(p, names[i], n)) {
            const char *q = p + n;
            while (q < end && (*q == ' ' || *q == '\t'))
                q++;
            if (q < end && *q == ':')
                return true;
        }
    }
    return false;
}

/* Whether the comment opened at p closes before end, the way GMime skips comments. */
static bool comment_closes(const char *p, const char *end)
{
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        else if (*p == '(')
            depth++;
        else if (*p == ')' && --depth == 0)
            return true;
    }
    return false;
}

static bool is_lwsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void defuse_field(char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ']')
            continue;
        char *q = p + 1;
        while (q < end && is_lwsp(*q))
            q++;
        if (q < end && *q == '(' && !comment_closes(q, end))
            *q = ' ';
    }
}

/* The end of the field starting at p: past its last continuation line. */
static char *field_end(char *p, char *end)
{
    for (;;) {
        char *lf = memchr(p, '\n', (size_t)(end - p));
        if (!lf || lf + 1 >= end || (lf[1] != ' ' && lf[1] != '\t'))
            return lf ? lf + 1 : end;
        p = lf + 1;
    }
}

void mail_gmime_defuse(char *msg, size_t len)
{
    char *end = msg + len;
    for (char *p = msg; p < end;) {
        char *next = address_field(p, end) ? field_end(p, end) : NULL;
        if (next) {
            defuse_field(p, next);
        } else {
            char *lf = memchr(p, '\n', (size_t)(end - p));
            next = lf ? lf + 1 : end;
        }
        p = next;
    }
}
