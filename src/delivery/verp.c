/* VERP envelope senders (spec 20 §3.1): <id>-<recipient index>-<mac>@<bounce domain>, or
 * <id>-b<index of its first recipient>-<mac>@<bounce domain> for a transaction with several
 * recipients (of one domain), whose bounces name the recipient themselves (the DSN's
 * Final-Recipient); <id>-<mac>@..., the whole message, is still read. <id> is the MessageId's 48
 * hex digits without its dashes and fixed "-000000" tail, so that the local part stays
 * within RFC 5321's 64 octets. The MAC (HMAC-SHA256 under a key only sesamed knows, 40
 * bits in base32) makes forged addresses fail: reports for messages we never sent, or
 * aimed at other recipients, are refused at RCPT. */
#include "delivery/delivery.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ID_LEN (16 + 1 + 36 + 1 + 6) /* the MessageId (DECISIONS 5) */
#define HEX_LEN 48                   /* its hex digits */
#define MAC_LEN 8

/* HMAC-SHA256 under the key, set up once and copied for each address: OpenSSL's one-shot
 * HMAC looks the algorithms up by name every time, which cost as much as the rest of
 * writing the envelope. One key in the process (delivery.verp_key); a new one replaces it. */
static struct {
    pthread_mutex_t lock;
    unsigned char key[DELIVERY_VERP_KEY_LEN];
    EVP_MAC_CTX *keyed;
} verp_hmac = {PTHREAD_MUTEX_INITIALIZER, {0}, NULL};

static EVP_MAC_CTX *verp_hmac_keyed(const unsigned char key[DELIVERY_VERP_KEY_LEN])
{
    if (verp_hmac.keyed && !memcmp(verp_hmac.key, key, DELIVERY_VERP_KEY_LEN))
        return verp_hmac.keyed;
    EVP_MAC_CTX_free(verp_hmac.keyed);
    verp_hmac.keyed = NULL;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, key, DELIVERY_VERP_KEY_LEN, params)) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    memcpy(verp_hmac.key, key, DELIVERY_VERP_KEY_LEN);
    return verp_hmac.keyed = ctx;
}

static void verp_hmac_sha256(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *local,
                             size_t len, unsigned char md[EVP_MAX_MD_SIZE])
{
    pthread_mutex_lock(&verp_hmac.lock);
    EVP_MAC_CTX *keyed = verp_hmac_keyed(key);
    EVP_MAC_CTX *ctx = keyed ? EVP_MAC_CTX_dup(keyed) : NULL;
    pthread_mutex_unlock(&verp_hmac.lock);
    size_t md_len = 0;
    if (!ctx || !EVP_MAC_update(ctx, (const unsigned char *)local, len) ||
        !EVP_MAC_final(ctx, md, &md_len, EVP_MAX_MD_SIZE))
        abort(); /* out of memory, or OpenSSL without HMAC-SHA256: nothing can be sent */
    EVP_MAC_CTX_free(ctx);
}

static void verp_mac(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *local, size_t len,
                     char out[MAC_LEN + 1])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char md[EVP_MAX_MD_SIZE];
    verp_hmac_sha256(key, local, len, md);
    uint64_t bits = 0;
    for (int i = 0; i < 5; i++)
        bits = bits << 8 | md[i];
    for (int i = 0; i < MAC_LEN; i++)
        out[i] = b32[(bits >> (35 - 5 * i)) & 31];
    out[MAC_LEN] = '\0';
}

/* A MessageId as DECISIONS 5 writes it: 16 hex, '-', a UUID (36), '-', "000000". */
static bool message_id_shape(const char *s)
{
    if (strlen(s) != ID_LEN || s[16] != '-' || s[53] != '-' || strcmp(s + 54, "000000"))
        return false;
    for (size_t i = 0; i < 53; i++)
        if (i != 16 && !strchr("0123456789abcdef-", s[i]))
            return false;
    return true;
}

void delivery_verp_encode(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *message_id,
                          int idx, bool batch, const char *bounce_domain, char *out, size_t outlen)
{
    char local[96], mac[MAC_LEN + 1];
    size_t n = 0;
    for (const char *p = message_id; *p && p < message_id + 53 && n < HEX_LEN; p++)
        if (*p != '-')
            local[n++] = *p;
    local[n] = '\0';
    if (!message_id_shape(message_id))
        snprintf(local, sizeof local, "%s", "invalid"); /* never ours: cannot be decoded */
    if (idx >= 0)
        snprintf(local + strlen(local), sizeof local - strlen(local), "-%s%d", batch ? "b" : "",
                 idx);
    verp_mac(key, local, strlen(local), mac);
    snprintf(out, outlen, "%s-%s@%s", local, mac, bounce_domain);
}

/* "-<digits>" between the id and the MAC: the recipient's index; "-b<digits>": a batch's. */
static bool index_part(const char *p, size_t len, int *idx, bool *batch)
{
    *batch = len > 2 && p[1] == 'b';
    size_t from = *batch ? 2 : 1;
    if (len <= from || len - from > 5 || p[0] != '-')
        return false;
    int n = 0;
    for (size_t i = from; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        n = n * 10 + (p[i] - '0');
    }
    *idx = n;
    return true;
}

static void message_id_from_hex(const char *hex, char *out)
{
    snprintf(out, ID_LEN + 1, "%.16s-%.8s-%.4s-%.4s-%.4s-%.12s-000000", hex, hex + 16, hex + 24,
             hex + 28, hex + 32, hex + 36);
}

bool delivery_verp_decode(const unsigned char key[DELIVERY_VERP_KEY_LEN], const char *address,
                          const char *bounce_domain, char *message_id, size_t idlen, int *idx,
                          bool *batch)
{
    const char *at = strrchr(address, '@');
    if (!at || strcasecmp(at + 1, bounce_domain) || idlen <= ID_LEN)
        return false;
    size_t local = (size_t)(at - address);
    if (local < HEX_LEN + 1 + MAC_LEN || strspn(address, "0123456789abcdef") < HEX_LEN)
        return false;
    size_t signed_len = local - 1 - MAC_LEN;
    if (address[signed_len] != '-')
        return false;
    int n = -1;
    bool b = false;
    if (signed_len > HEX_LEN && !index_part(address + HEX_LEN, signed_len - HEX_LEN, &n, &b))
        return false;
    char want[MAC_LEN + 1];
    verp_mac(key, address, signed_len, want);
    if (strncasecmp(want, address + signed_len + 1, MAC_LEN))
        return false;
    *idx = n;
    *batch = b;
    message_id_from_hex(address, message_id);
    return true;
}
