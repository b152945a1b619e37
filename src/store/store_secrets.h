/* Private to the store module: sealing secrets at rest (secrets.c): access key secrets
 * and DKIM private keys. */
#ifndef SESAME_STORE_SECRETS_H
#define SESAME_STORE_SECRETS_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>

#define STORE_SECRET_KEY_LEN 32 /* AES-256 */
/* Longest secret sealed: a DKIM private key's PEM (an access key secret is 40 bytes). */
#define STORE_SECRET_MAX 4096
/* The sealed form of plain_len bytes, with its NUL: "v1:" and the base64 of the nonce (12),
 * the ciphertext and the tag (16). */
#define STORE_SEALED_LEN(plain_len) (3 + 4 * (((plain_len) + 28 + 2) / 3) + 1)

/* store.secret_key_file, or the store's path with ".key" appended when that is empty. */
void store_secret_key_path(const struct sesame_config *cfg, char *out, size_t outlen);
/* Reads the key file (64 hex digits); creates it (mode 0600) when missing and may_create,
 * which only a store being created may do: a lost key must not be silently replaced. */
int store_secret_key_load(const struct sesame_config *cfg, bool may_create,
                          unsigned char key[STORE_SECRET_KEY_LEN], char *err, size_t errlen);
/* "v1:" base64(nonce | ciphertext | tag); aad is authenticated with it. 0 on success. */
int store_secret_seal(const unsigned char *key, const char *aad, const char *plain, char *out,
                      size_t outlen);
int store_secret_open(const unsigned char *key, const char *aad, const char *sealed, char *out,
                      size_t outlen);

#endif
