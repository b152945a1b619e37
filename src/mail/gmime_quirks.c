/* Work-arounds for defects of the GMime Debian 12 ships (3.2.13).
 *
 * When GMime builds a message object, for the message itself and for every attached
 * message/rfc822 part, it parses the address fields (From, To, Cc, Bcc, Sender,
 * Reply-To) at once, and its address parser leaks memory on some invalid input (fixed
 * in 3.2.15) and recurses once per nested group, so that "To: a:a:a:..." of a few
 * hundred kilobytes in an attached message overflows the stack. Sesame checks the
 * top-level address fields itself (syntax.c) and never reads addresses from that parse,
 * so in the copy GMime parses for inspection every line that starts like an address
 * field gets its name's first letter replaced ("To:" becomes "Xo:"): GMime then keeps it
 * as an ordinary field. Nothing Sesame reads from the parse (the MIME structure,
 * content types, file names) is in those lines. */
#include "mail/mail_internal.h"

#include <string.h>

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

void mail_gmime_defuse(char *msg, size_t len)
{
    char *end = msg + len;
    for (char *p = msg; p < end;) {
        if (address_field(p, end))
            *p = 'X';
        char *lf = memchr(p, '\n', (size_t)(end - p));
        p = lf ? lf + 1 : end;
    }
}
