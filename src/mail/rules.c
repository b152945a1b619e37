/* Address and domain rules for identities and recipients (spec 30 §1.3): ASCII only, RFC 5321
 * lengths, DNS labels of at most 63 characters and names of at most 253. */
#include "mail/mail.h"

#include <stdio.h>
#include <string.h>

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool mail_domain_valid(const char *domain)
{
    size_t len = strlen(domain);
    if (len == 0 || len > 253 || !strchr(domain, '.'))
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = domain[i];
        if (c == '.' || c == '\0') {
            /* Empty labels, and labels that start or end with '-', are not host names. */
            if (label == 0 || label > 63 || domain[i - 1] == '-' || domain[i - label] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!label_char(c) && c != '_')
            return false;
        label++;
    }
    return true;
}

static bool local_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

bool mail_address_valid(const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (!at || at == addr || strlen(addr) > 254)
        return false;
    size_t local_len = (size_t)(at - addr);
    if (local_len > 64 || addr[0] == '.' || at[-1] == '.')
        return false;
    for (size_t i = 0; i < local_len; i++) {
        if (!local_char(addr[i]) || (addr[i] == '.' && addr[i + 1] == '.'))
            return false;
    }
    return mail_domain_valid(at + 1);
}

void mail_identity_normalize(char *identity)
{
    if (strchr(identity, '@'))
        return; /* email identities are case-sensitive over the whole address */
    for (char *p = identity; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
}
