/* Easy DKIM token sets and the operator's key: made here, stored by the caller. */
#include "mail/mail.h"
#include "send/send_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

/* 32 characters of lowercase RFC 4648 base32: 160 random bits (DECISIONS 27). */
static void dkim_token(char *out)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char raw[20];
    core_random_bytes(raw, sizeof raw);
    for (int i = 0; i < 32; i++) {
        int bit = i * 5, byte = bit / 8, shift = bit % 8;
        unsigned v = (unsigned)raw[byte] << 8 | (byte + 1 < 20 ? raw[byte + 1] : 0);
        out[i] = alphabet[(v >> (11 - shift)) & 31];
    }
    out[32] = '\0';
}

static int dkim_key(int bits, char *pem, size_t len)
{
    struct buf priv, pub;
    buf_init(&priv);
    buf_init(&pub);
    int rc = mail_dkim_keygen(bits, &priv, &pub);
    if (rc == 0 && priv.len < len)
        memcpy(pem, priv.data, priv.len + 1);
    else
        rc = -1;
    buf_free(&priv);
    buf_free(&pub);
    return rc;
}

int send_dkim_generate(const struct sesame_config *cfg, struct store_dkim *out)
{
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        dkim_token(out->tokens[i]);
        int bits = i == 1 && cfg->dkim_ed25519 ? 0 : cfg->dkim_key_bits;
        if (dkim_key(bits, out->keys[i], sizeof out->keys[i]) != 0)
            return log_error("dkim: key generation failed"), -1;
    }
    return 0;
}

/* The operator's key lives in the store under account STORE_DKIM_OPERATOR, so every
 * sesamed sharing the store signs with the same key and dkim-zone can print it. */
static int operator_create(const struct sesame_config *cfg, const char *domain,
                           struct store_conn *conn, struct store_dkim *d)
{
    memset(d, 0, sizeof *d);
    core_strlcpy(d->account_id, STORE_DKIM_OPERATOR, sizeof d->account_id);
    core_strlcpy(d->domain, domain, sizeof d->domain);
    core_strlcpy(d->tokens[0], cfg->dkim_operator_selector, sizeof d->tokens[0]);
    if (dkim_key(cfg->dkim_key_bits, d->keys[0], sizeof d->keys[0]) != 0)
        return log_error("dkim: cannot make the operator's key"), -1;
    core_strlcpy(d->status, "Success", sizeof d->status);
    d->created_ms = d->status_ms = core_now_ms();
    if (store_begin(conn) != STORE_OK)
        return -1;
    if (store_dkim_put(conn, d) != STORE_OK) {
        store_rollback(conn);
        return -1;
    }
    if (store_commit(conn) != STORE_OK)
        return -1;
    log_info("dkim: made the operator's key for %s (selector %s); publish it: sesame dkim-zone",
             d->domain, d->tokens[0]);
    return 0;
}

int send_dkim_operator_setup(struct send_shared *sh, struct store_conn *conn)
{
    const struct sesame_config *cfg = &sh->cfg;
    if (!cfg->dkim_operator_domain[0])
        return 0;
    struct store_dkim *d = calloc(1, sizeof *d);
    if (!d)
        abort();
    char domain[STORE_IDENTITY_LEN];
    core_strlcpy(domain, cfg->dkim_operator_domain, sizeof domain);
    for (char *p = domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
    int rc = store_dkim_get(conn, STORE_DKIM_OPERATOR, "", domain, d);
    if (rc == STORE_OK && strcmp(d->tokens[0], cfg->dkim_operator_selector))
        rc = STORE_NOT_FOUND; /* a new selector: a new key */
    if (rc == STORE_NOT_FOUND)
        rc = operator_create(cfg, domain, conn, d) == 0 ? STORE_OK : STORE_ERROR;
    if (rc == STORE_OK)
        rc = send_dkim_operator_load(sh, d) == 0 ? STORE_OK : STORE_ERROR;
    OPENSSL_cleanse(d, sizeof *d); /* private keys */
    free(d);
    return rc == STORE_OK ? 0 : -1;
}
