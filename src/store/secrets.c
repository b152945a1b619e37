/* Secrets at rest (access key secrets, DKIM private keys): sealed with AES-256-GCM under a
 * key kept outside the store (store.secret_key_file), so that a copy of the database alone
 * reveals none of them. The secrets must stay usable (SigV4 and SMTP passwords derive from
 * them, DKIM signs with them), so they are encrypted, not hashed. What names the row (the
 * key id; the DKIM set and key slot) is authenticated with each secret: a sealed value
 * moved to another row does not open. */
#include "store/store_secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEAL_PREFIX "v1:"
#define NONCE_LEN 12
#define TAG_LEN 16
_Static_assert(NONCE_LEN + TAG_LEN == 28, "STORE_SEALED_LEN counts 28 bytes besides the text");

void store_secret_key_path(const struct sesame_config *cfg, char *out, size_t outlen)
{
    if (cfg->store_secret_key_file[0])
        core_strlcpy(out, cfg->store_secret_key_file, outlen);
    else
        snprintf(out, outlen, "%s.key", cfg->store_path);
}

static int key_parse(const char *text, unsigned char key[STORE_SECRET_KEY_LEN])
{
    if (strcspn(text, "\r\n") != 2 * STORE_SECRET_KEY_LEN)
        return -1;
    return core_hex_decode(text, STORE_SECRET_KEY_LEN, key) ? 0 : -1;
}

static int key_create(const char *path, unsigned char key[STORE_SECRET_KEY_LEN], char *err,
                      size_t errlen)
{
    char hex[2 * STORE_SECRET_KEY_LEN + 2];
    if (core_random_bytes(key, STORE_SECRET_KEY_LEN) != 0)
        return snprintf(err, errlen, "no random bytes for the secret key"), -1;
    core_hex_encode(key, STORE_SECRET_KEY_LEN, hex);
    strcat(hex, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno)), -1;
    bool ok = write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex) && fsync(fd) == 0;
    OPENSSL_cleanse(hex, sizeof hex);
    close(fd);
    if (!ok)
        return snprintf(err, errlen, "cannot write %s", path), -1;
    return 0;
}

int store_secret_key_load(const struct sesame_config *cfg, bool may_create,
                          unsigned char key[STORE_SECRET_KEY_LEN], char *err, size_t errlen)
{
    char path[CONFIG_PATH_LEN + 8];
    store_secret_key_path(cfg, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT && may_create)
        return key_create(path, key, err, errlen);
    if (!f)
        return snprintf(err, errlen, "cannot read the secret key %s: %s", path, strerror(errno)),
               -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        fclose(f);
        return snprintf(err, errlen, "%s must be readable by its owner only (chmod 600 %s)", path,
                        path),
               -1;
    }
    char line[256] = "";
    bool read = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    int rc = read ? key_parse(line, key) : -1;
    OPENSSL_cleanse(line, sizeof line);
    if (rc != 0)
        return snprintf(err, errlen, "%s must hold %d hexadecimal digits", path,
                        2 * STORE_SECRET_KEY_LEN),
               -1;
    return 0;
}

static bool gcm_run(bool seal, const unsigned char *key, const unsigned char *nonce,
                    const char *aad, const unsigned char *in, int len, unsigned char *out,
                    unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    bool ok = ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce, seal) == 1 &&
              EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
              EVP_CipherUpdate(ctx, out, &n, in, len) == 1 &&
              (seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1) &&
              EVP_CipherFinal_ex(ctx, out + n, &n) == 1 &&
              (!seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int store_secret_seal(const unsigned char *key, const char *aad, const char *plain, char *out,
                      size_t outlen)
{
    unsigned char raw[NONCE_LEN + STORE_SECRET_MAX + TAG_LEN];
    size_t len = strlen(plain);
    if (len > STORE_SECRET_MAX || core_random_bytes(raw, NONCE_LEN) != 0)
        return -1;
    if (!gcm_run(true, key, raw, aad, (const unsigned char *)plain, (int)len, raw + NONCE_LEN,
                 raw + NONCE_LEN + len))
        return -1;
    size_t total = NONCE_LEN + len + TAG_LEN;
    if (outlen < strlen(SEAL_PREFIX) + 4 * ((total + 2) / 3) + 1)
        return -1;
    strcpy(out, SEAL_PREFIX);
    core_base64_encode(raw, total, out + strlen(SEAL_PREFIX));
    return 0; /* raw holds only ciphertext */
}

int store_secret_open(const unsigned char *key, const char *aad, const char *sealed, char *out,
                      size_t outlen)
{
    unsigned char raw[NONCE_LEN + STORE_SECRET_MAX + TAG_LEN + 4];
    if (strncmp(sealed, SEAL_PREFIX, strlen(SEAL_PREFIX)))
        return -1;
    const char *b64 = sealed + strlen(SEAL_PREFIX);
    if (strlen(b64) > 4 * (sizeof raw / 3))
        return -1; /* decodes to at most 3/4 of its length: it fits */
    long total = core_base64_decode(b64, strlen(b64), raw);
    if (total < NONCE_LEN + TAG_LEN)
        return -1;
    int len = (int)total - NONCE_LEN - TAG_LEN;
    if ((size_t)len >= outlen)
        return -1;
    unsigned char *tag = raw + NONCE_LEN + len;
    if (!gcm_run(false, key, raw, aad, raw + NONCE_LEN, len, (unsigned char *)out, tag)) {
        OPENSSL_cleanse(out, outlen); /* GCM wrote the unauthenticated plaintext there */
        return -1;
    }
    out[len] = 0;
    return 0;
}
