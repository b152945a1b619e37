/* Addresses (RFC 5322 §3.4) through GMime's parser, made strict: GMime skips an address
 * it cannot parse and goes on, so its warning callback is what tells Sesame that a
 * header held one. Options are made per call because the callback's flag belongs to
 * one parse, and several I/O threads parse at once. */
#include "mail/mail_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* GMime parses groups inside groups recursively, so a header of "a:b:c:..." would take
 * the stack as deep as the attacker likes; RFC 5322 allows no nesting at all. */
#define MAIL_MAX_GROUP_DEPTH 8

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
    g_mime_init();
}

void mail_gmime_init(void)
{
    pthread_once(&gmime_once, gmime_init_once);
}

/* Index past the quoted string, comment or domain literal opened at s[i], or 0 when it
 * is never closed. Comments nest (RFC 5322 §3.2.2); a counter, not recursion. */
static size_t skip_enclosed(const char *s, size_t i)
{
    char open = s[i], close = open == '"' ? '"' : open == '(' ? ')' : ']';
    int depth = 1;
    for (i++; s[i]; i++) {
        if (s[i] == '\\') { /* a quoted-pair: the next character is literal */
            if (!s[++i])
                return 0;
            continue;
        }
        if (s[i] == close && --depth == 0)
            return i + 1;
        if (open == '(' && s[i] == '(')
            depth++;
    }
    return 0;
}

/* Index past the angle-addr opened at s[i], or 0 when it is not closed or nests. */
static size_t skip_angle(const char *s, size_t i)
{
    for (i++; s[i] && s[i] != '>'; i++) {
        if (s[i] == '<')
            return 0;
        if (strchr("\"([", s[i])) {
            size_t j = skip_enclosed(s, i);
            if (!j)
                return 0;
            i = j - 1;
        }
    }
    return s[i] ? i + 1 : 0;
}

/* A pass before GMime sees the value. It refuses what strict parsing refuses anyway but
 * reaches through paths that leak memory in GMime 3.2.13 (Debian 12; fixed in 3.2.15):
 * a '>' with no '<', and an unquoted "x@y <z@w>". It also refuses unclosed quotes,
 * comments and brackets, and groups nested past MAIL_MAX_GROUP_DEPTH. */
static bool screen(const char *s)
{
    int groups = 0;
    bool bare_at = false; /* an '@' outside any angle-addr in this address */
    for (size_t i = 0; s[i];) {
        size_t next = i + 1;
        if (s[i] == '"' || s[i] == '(' || s[i] == '[')
            next = skip_enclosed(s, i);
        else if (s[i] == '<')
            next = bare_at ? 0 : skip_angle(s, i);
        else if (s[i] == '>')
            return false;
        else if (s[i] == '@')
            bare_at = true;
        else if (s[i] == ',' || s[i] == ';' || s[i] == ':')
            bare_at = false;
        if (s[i] == ':' && ++groups > MAIL_MAX_GROUP_DEPTH)
            return false;
        if (s[i] == ';' && groups > 0)
            groups--;
        if (next == 0)
            return false;
        i = next;
    }
    return true;
}

static void on_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
    (void)offset;
    (void)item;
    if (code == GMIME_WARN_INVALID_ADDRESS_LIST)
        *(bool *)data = true;
}

const char *mail_mailbox_addr(InternetAddress *ia)
{
    /* The IDN form keeps an ASCII domain as written and turns a UTF-8 one into A-labels. */
    return internet_address_mailbox_get_idn_addr(INTERNET_ADDRESS_MAILBOX(ia));
}

/* local@domain, both parts non-empty, printable ASCII (no SMTPUTF8, spec 10 §4.2). */
static bool addr_spec_valid(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || at[1] == '\0')
        return false;
    for (const char *p = addr; *p; p++) {
        if (*p < 32 || *p > 126)
            return false;
    }
    return true;
}

static bool list_valid(InternetAddressList *list)
{
    for (int i = 0; i < internet_address_list_length(list); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            if (!list_valid(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia))))
                return false;
        } else if (!addr_spec_valid(mail_mailbox_addr(ia))) {
            return false;
        }
    }
    return true;
}

InternetAddressList *mail_address_list_parse(const char *value)
{
    if (!screen(value))
        return NULL;
    mail_gmime_init();
    bool bad = false;
    GMimeParserOptions *opts = g_mime_parser_options_new();
    g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_STRICT);
    g_mime_parser_options_set_allow_addresses_without_domain(opts, FALSE);
    g_mime_parser_options_set_warning_callback(opts, on_warning, &bad);
    InternetAddressList *list = internet_address_list_parse(opts, value);
    g_mime_parser_options_free(opts);
    if (list && (bad || !list_valid(list))) {
        g_object_unref(list);
        list = NULL;
    }
    return list;
}

static void push(char ***out, int *count, const char *addr)
{
    int n = *count;
    if ((n & (n - 1)) == 0) { /* 0 or a power of two: the array is full, double it */
        char **grown = realloc(*out, sizeof **out * (size_t)(n ? 2 * n : 1));
        if (!grown)
            abort(); /* out of memory: nothing sensible to do mid-request */
        *out = grown;
    }
    (*out)[n] = strdup(addr);
    if (!(*out)[n])
        abort();
    *count = n + 1;
}

void mail_address_list_flatten(InternetAddressList *list, char ***out, int *count)
{
    for (int i = 0; i < internet_address_list_length(list); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia))
            mail_address_list_flatten(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                                      out, count);
        else
            push(out, count, mail_mailbox_addr(ia));
    }
}

bool mail_mailbox_address(const char *mailbox, char *out, size_t outlen)
{
    InternetAddressList *list = mail_address_list_parse(mailbox);
    if (!list)
        return false;
    InternetAddress *ia =
        internet_address_list_length(list) == 1 ? internet_address_list_get_address(list, 0) : NULL;
    bool ok = ia && INTERNET_ADDRESS_IS_MAILBOX(ia) && core_strlcpy(out, mail_mailbox_addr(ia), outlen);
    g_object_unref(list);
    return ok;
}
