/* The email verification link served by sesamed (DECISIONS 26). */
#include "api/api.h"

#include <stdio.h>

void api_verify_link(const struct sesame_config *cfg, const char *token, char *out, size_t outlen)
{
    char base[CONFIG_ADDR_LEN + 300];
    config_public_url(cfg, base, sizeof base);
    snprintf(out, outlen, "%s/verify-email?token=%s", base, token);
}
