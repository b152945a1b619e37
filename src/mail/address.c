/* Addresses (RFC 5322 §3.4): syntax.c decides whether a value is valid, GMime extracts
 * the mailboxes (decoding display names, flattening groups). GMime skips an address it
 * cannot parse and goes on, so its warning callback is a second check that nothing was
 * skipped. Options are made per call because the callback's flag belongs to one parse,
 * and several I/O threads parse at once. */
#include "mail/mail_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t gmime_once = PTHREAD_ONCE_INIT;

static void gmime_init_once(void)
{
    g_mime_init();
}

void mail_gmime_init(void)
{
    pthread_once(&gmime_once, gmime_init_once);
}

static void on_warning(gint64 offset, GMimeParserWarning code, const gchar *item, gpointer data)
{
    (void)offset;
    (void)item;
    if (code == GMIME_WARN_INVALID_ADDRESS_LIST)
        *(bool *)data = true;
}

/* True for an address GMime's IDN form leaves as it is: printable ASCII with no A-label
 * (xn--), which GMime would have decoded. Asking libidn2 about every ordinary address cost
 * a twentieth of an accepted message's CPU. */
static bool idn_plain(const char *addr)
{
    for (const char *p = addr; *p; p++) {
        if (*p < 32 || *p > 126)
            return false;
        if ((p == addr || p[-1] == '.' || p[-1] == '@') && !strncasecmp(p, "xn--", 4))
            return false;
    }
    return true;
}

const char *mail_mailbox_addr(InternetAddress *ia)
{
    /* GMime turns an A-label domain (xn--) into Unicode; the IDN form gives it back
     * (idn_as_written checks that it is the one written). */
    InternetAddressMailbox *mb = INTERNET_ADDRESS_MAILBOX(ia);
    const char *addr = internet_address_mailbox_get_addr(mb);
    return idn_plain(addr) ? addr : internet_address_mailbox_get_idn_addr(mb);
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

/* GMime decodes an A-label domain (xn--) and encodes it again. An A-label that is not
 * in canonical form (or not valid punycode) comes back different or not at all, and
 * the address reported must be the one written: the domain must appear in the value. */
static bool idn_as_written(InternetAddress *ia, const char *value)
{
    InternetAddressMailbox *mb = INTERNET_ADDRESS_MAILBOX(ia);
    const char *idn = mail_mailbox_addr(ia);
    if (!strcmp(idn, internet_address_mailbox_get_addr(mb)))
        return true; /* nothing was decoded */
    const char *at = strrchr(idn, '@');
    return at && strcasestr(value, at + 1) != NULL;
}

static bool list_valid(InternetAddressList *list, const char *value)
{
    for (int i = 0; i < internet_address_list_length(list); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            if (!list_valid(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), value))
                return false;
        } else if (!addr_spec_valid(mail_mailbox_addr(ia)) || !idn_as_written(ia, value)) {
            return false;
        }
    }
    return true;
}

InternetAddressList *mail_address_list_parse(const char *value)
{
    if (!mail_address_list_syntax(value))
        return NULL; /* GMime never sees an invalid value (syntax.c says why) */
    mail_gmime_init();
    bool bad = false;
    GMimeParserOptions *opts = g_mime_parser_options_new();
    g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_STRICT);
    g_mime_parser_options_set_allow_addresses_without_domain(opts, FALSE);
    g_mime_parser_options_set_warning_callback(opts, on_warning, &bad);
    InternetAddressList *list = internet_address_list_parse(opts, value);
    g_mime_parser_options_free(opts);
    if (list && (bad || !list_valid(list, value))) {
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
            mail_address_list_flatten(
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out, count);
        else
            push(out, count, mail_mailbox_addr(ia));
    }
}

bool mail_first_mailbox(const char *value, char *out, size_t outlen)
{
    InternetAddressList *list = mail_address_list_parse(value);
    char **addrs = NULL;
    int count = 0;
    if (list) {
        mail_address_list_flatten(list, &addrs, &count);
        g_object_unref(list);
    }
    bool ok = count > 0 && core_strlcpy(out, addrs[0], outlen);
    for (int i = 0; i < count; i++)
        free(addrs[i]);
    free(addrs);
    return ok;
}

/* local@domain made only of dot-atom characters: already an addr-spec, no parser needed
 * (the common case, which GMime would take 7 µs to confirm). */
static bool plain_addr_spec(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || !at[1] || s[0] == '.' || at[-1] == '.' ||
        at[1] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '@' && !strchr(p < at ? ".!#$%&'*+-/=?^_`{|}~" : ".-", c))
            return false;
    }
    return true;
}

bool mail_address_plain(const char *value)
{
    return plain_addr_spec(value) && idn_plain(value);
}

bool mail_address_list_take(const char *value, char ***out, int *count)
{
    if (mail_address_plain(value)) { /* the usual To: and From:, at a tenth of the cost */
        if (out)
            push(out, count, value);
        return true;
    }
    InternetAddressList *list = mail_address_list_parse(value);
    if (!list)
        return false;
    if (out)
        mail_address_list_flatten(list, out, count);
    g_object_unref(list);
    return true;
}

bool mail_mailbox_address(const char *mailbox, char *out, size_t outlen)
{
    if (plain_addr_spec(mailbox))
        return core_strlcpy(out, mailbox, outlen);
    InternetAddressList *list = mail_address_list_parse(mailbox);
    if (!list)
        return false;
    InternetAddress *ia =
        internet_address_list_length(list) == 1 ? internet_address_list_get_address(list, 0) : NULL;
    bool ok =
        ia && INTERNET_ADDRESS_IS_MAILBOX(ia) && core_strlcpy(out, mail_mailbox_addr(ia), outlen);
    g_object_unref(list);
    return ok;
}
