/* The address-list grammar of RFC 5322 §3.4, as a recognizer: it says whether a value is
 * valid and extracts nothing (GMime does that). It exists because GMime 3.2.13 (Debian
 * 12) leaks memory on several of its error paths for invalid addresses (fixed upstream
 * in 3.2.15) and resynchronizes at any comma after an error, so only values that parse
 * cleanly are handed to it. Accepted: the current syntax plus the obsolete forms that
 * still occur (dots in display names, CFWS around dots and '@', empty list elements, a
 * group missing its final ';'); addr-specs in ASCII only (no SMTPUTF8); display names
 * may carry 8-bit text (RFC 6532). Not accepted: source routes, nested groups, unquoted
 * specials in display names. No recursion deeper than group → mailbox. */
#include "mail/mail_internal.h"

#include <string.h>

/* atext (RFC 5322 §3.2.3); 8-bit octets too where UTF-8 text is allowed. */
static bool is_atext(char c, bool utf8)
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x80)
        return utf8;
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Skips whitespace and (nested) comments; false on a comment that never closes. */
static bool cfws(const char **p)
{
    const char *s = *p;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        if (*s != '(')
            break;
        int depth = 0;
        do {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '(')
                depth++;
            else if (*s == ')')
                depth--;
            s++;
        } while (*s && depth > 0);
        if (depth > 0)
            return false;
    }
    *p = s;
    return true;
}

static bool quoted_string(const char **p, bool utf8)
{
    const char *s = *p + 1;
    for (; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        if (!utf8 && (*s < ' ' || *s > '~'))
            return false; /* a quoted local part: printable ASCII */
    }
    if (*s != '"')
        return false;
    *p = s + 1;
    return true;
}

/* atom or quoted-string, then CFWS */
static bool word(const char **p, bool utf8)
{
    if (**p == '"') {
        if (!quoted_string(p, utf8))
            return false;
    } else {
        const char *s = *p;
        while (is_atext(*s, utf8))
            s++;
        if (s == *p)
            return false;
        *p = s;
    }
    return cfws(p);
}

/* word *("." word), CFWS allowed around the dots (obs-local-part, obs-domain) */
static bool dotted(const char **p, bool quoted_ok)
{
    if ((**p == '"' && !quoted_ok) || !word(p, false))
        return false;
    while (**p == '.') {
        (*p)++;
        if (!cfws(p) || (**p == '"' && !quoted_ok) || !word(p, false))
            return false;
    }
    return true;
}

/* "[" dtext "]": printable ASCII without "[", "]" or "\" (IPv4, IPv6:...) */
static bool domain_literal(const char **p)
{
    const char *s = *p + 1;
    while (*s > ' ' && *s <= '~' && *s != '[' && *s != ']' && *s != '\\')
        s++;
    if (*s != ']' || s == *p + 1)
        return false;
    *p = s + 1;
    return cfws(p);
}

static bool addr_spec(const char **p)
{
    if (!dotted(p, true) || **p != '@')
        return false;
    (*p)++;
    if (!cfws(p))
        return false;
    return **p == '[' ? domain_literal(p) : dotted(p, false);
}

/* obs-phrase: a word, then words and dots */
static bool phrase(const char **p)
{
    if (!word(p, true))
        return false;
    while (**p == '.' || **p == '"' || is_atext(**p, true)) {
        if (**p == '.') {
            (*p)++;
            if (!cfws(p))
                return false;
        } else if (!word(p, true)) {
            return false;
        }
    }
    return true;
}

static bool angle_addr(const char **p)
{
    (*p)++;
    if (!cfws(p) || !addr_spec(p) || **p != '>')
        return false;
    (*p)++;
    return cfws(p);
}

/* mailbox (name-addr or addr-spec) followed by one of the ends; CFWS consumed. */
static bool mailbox(const char **p, const char *ends)
{
    const char *start = *p;
    if (addr_spec(p) && strchr(ends, **p))
        return true;
    *p = start;
    if (**p != '<' && !phrase(p))
        return false;
    return **p == '<' && angle_addr(p) && strchr(ends, **p);
}

/* After "display-name:": [mailbox *("," [mailbox])] ";" (a missing ";" at the very end
 * is tolerated: "undisclosed-recipients:" is written that way). */
static bool group_rest(const char **p)
{
    (*p)++;
    if (!cfws(p))
        return false;
    if (**p != ';' && **p && !mailbox(p, ",;"))
        return false;
    while (**p == ',') {
        (*p)++;
        if (!cfws(p))
            return false;
        if (**p != ',' && **p != ';' && **p && !mailbox(p, ",;"))
            return false;
    }
    if (**p == ';')
        (*p)++;
    else if (**p)
        return false;
    return cfws(p);
}

static bool address(const char **p)
{
    const char *start = *p;
    if (mailbox(p, ","))
        return true;
    *p = start;
    return phrase(p) && **p == ':' && group_rest(p);
}

bool mail_address_list_syntax(const char *value)
{
    const char *p = value;
    if (!cfws(&p) || !*p || !address(&p))
        return false;
    while (*p == ',') {
        p++;
        if (!cfws(&p))
            return false;
        if (*p && *p != ',' && !address(&p))
            return false;
    }
    return *p == '\0';
}
