/* Address and domain rules for identities (spec 30 §1.3): ASCII only, RFC 5321 lengths,
 * DNS labels of at most 63 characters and names of at most 253. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool api_domain_valid(const char *domain)
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

bool api_email_valid(const char *addr)
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
    return api_domain_valid(at + 1);
}

void api_identity_normalize(char *identity)
{
    if (strchr(identity, '@'))
        return; /* email identities are case-sensitive over the whole address */
    for (char *p = identity; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
}

void api_verify_link(const struct sesame_config *cfg, const char *token, char *out, size_t outlen)
{
    if (cfg->link_base_url[0]) {
        snprintf(out, outlen, "%s/verify-email?token=%s", cfg->link_base_url, token);
        return;
    }
    bool tls = cfg->api_https_listen[0] != '\0';
    char host[CONFIG_ADDR_LEN] = "localhost";
    int port = tls ? 443 : 80;
    config_split_addr(tls ? cfg->api_https_listen : cfg->api_http_listen, host, sizeof host, &port);
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
        core_strlcpy(host, cfg->hostname, sizeof host);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, outlen, "%s://%s%s%s:%d/verify-email?token=%s", tls ? "https" : "http",
             v6 ? "[" : "", host, v6 ? "]" : "", port, token);
}
