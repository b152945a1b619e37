/* The email verification link served by sesamed (DECISIONS 26). */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

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
