/* VERP envelope senders (spec 20 §3.1): <MessageId>-<recipient index>@<bounce domain>, or
 * <MessageId>@<bounce domain> for a transaction with several recipients, whose bounces
 * name the recipient themselves (the DSN's Final-Recipient). A bounce sent to such an
 * address maps back to the message and recipient. */
#include "delivery/delivery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void delivery_verp_encode(const char *message_id, int idx, const char *bounce_domain, char *out,
                          size_t outlen)
{
    if (idx >= 0)
        snprintf(out, outlen, "%s-%d@%s", message_id, idx, bounce_domain);
    else
        snprintf(out, outlen, "%s@%s", message_id, bounce_domain);
}

/* A MessageId as DECISIONS 5 writes it: 16 hex, '-', a UUID (36), '-', 6 digits. */
static bool message_id_shape(const char *s, size_t len)
{
    if (len != 16 + 1 + 36 + 1 + 6 || s[16] != '-' || s[53] != '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (i != 16 && i != 53 && !strchr("0123456789abcdef-", s[i]))
            return false;
    return true;
}

bool delivery_verp_decode(const char *address, const char *bounce_domain, char *message_id,
                          size_t idlen, int *idx)
{
    const char *at = strrchr(address, '@');
    if (!at || strcasecmp(at + 1, bounce_domain))
        return false;
    size_t local = (size_t)(at - address);
    size_t id_len = 16 + 1 + 36 + 1 + 6;
    if (local < id_len || !message_id_shape(address, id_len) || idlen <= id_len)
        return false;
    *idx = -1;
    if (local > id_len) {
        const char *p = address + id_len;
        if (*p != '-' || local - id_len < 2 || local - id_len > 6)
            return false;
        int n = 0;
        for (p++; p < at; p++) {
            if (*p < '0' || *p > '9')
                return false;
            n = n * 10 + (*p - '0');
        }
        *idx = n;
    }
    memcpy(message_id, address, id_len);
    message_id[id_len] = '\0';
    return true;
}
