/* auth: finds the credentials in a request and hands them to their scheme's verifier;
 * SMTP passwords; new access keys. */
#include "auth/auth_int.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* AWS lists each missing part in a sentence of its own; that does not fit in
 * auth_result.message together with the header, so the sentences are merged. */
#define MSG_AUTHORIZATION_PARTS                                                                    \
    "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters "      \
    "(AWS4-HMAC-SHA256) and an 'X-Amz-Date' or 'Date' header. "

static bool query_has(const char *query, const char *name)
{
    char *v = auth_query_get(query, name);
    bool found = v != NULL;
    free(v);
    return found;
}

/* A header that is empty or blank counts as absent. */
static const char *header_nonblank(const struct auth_request *req, const char *name)
{
    const char *v = auth_header_get(req, name);
    while (v && auth_is_space((unsigned char)*v))
        v++;
    return v && *v ? v : NULL;
}

static enum auth_status verify_authorization(const struct auth_request *req, const char *value,
                                             auth_secret_lookup lookup, void *ctx,
                                             struct auth_result *out)
{
    size_t scheme_len = strcspn(value, " \t");
    if (scheme_len == 16 && strncmp(value, "AWS4-HMAC-SHA256", 16) == 0)
        return auth_sigv4_verify_header(req, value, lookup, ctx, out);
    if (auth_span_eq_ci(value, scheme_len, "AWS3-HTTPS") ||
        auth_span_eq_ci(value, scheme_len, "AWS3"))
        return auth_aws3_verify_header(req, value, lookup, ctx, out);
    return auth_fail(out, AUTH_INCOMPLETE, MSG_AUTHORIZATION_PARTS "Authorization=%.80s", value);
}

/* The guide's GET example signs the Date header but carries the items in the query
 * (spec 10 §2.5 b). Signature Version 2 also uses these names; it is not supported. */
static enum auth_status verify_query_v3(const struct auth_request *req, auth_secret_lookup lookup,
                                        void *ctx, struct auth_result *out)
{
    if (query_has(req->query, "SignatureVersion") || query_has(req->query, "SignatureMethod"))
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Signature Version 2 is not supported; sign the request with "
                         "Signature Version 4.");
    return auth_aws3_verify_query(req, lookup, ctx, out);
}

enum auth_status auth_verify(const struct auth_request *req, auth_secret_lookup lookup,
                             void *lookup_ctx, struct auth_result *out)
{
    struct auth_result scratch;
    if (!out)
        out = &scratch;
    memset(out, 0, sizeof *out);
    const char *q = req->query;
    const char *authz = header_nonblank(req, "Authorization");
    const char *amzn = header_nonblank(req, "X-Amzn-Authorization");
    bool presigned = query_has(q, "X-Amz-Algorithm") || query_has(q, "X-Amz-Credential") ||
                     query_has(q, "X-Amz-Signature");
    bool query_v3 = query_has(q, "AWSAccessKeyId") || query_has(q, "Signature");
    int count = (authz != NULL) + (amzn != NULL) + presigned + query_v3;
    if (count == 0)
        return auth_fail(out, AUTH_MISSING_TOKEN, AUTH_MSG_MISSING);
    /* Two sets of credentials could name two keys; refuse rather than pick one. */
    if (count > 1)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Only one auth mechanism allowed; only the X-Amz-Algorithm query "
                         "parameter, Signature query string parameter or the Authorization "
                         "header should be specified");
    if (authz)
        return verify_authorization(req, authz, lookup, lookup_ctx, out);
    if (amzn)
        return auth_aws3_verify_header(req, amzn, lookup, lookup_ctx, out);
    if (presigned)
        return auth_sigv4_verify_query(req, lookup, lookup_ctx, out);
    return verify_query_v3(req, lookup, lookup_ctx, out);
}

bool auth_is_signature_param(const char *name)
{
    static const char *const names[] = {"AWSAccessKeyId",  "Signature",    "SignatureVersion",
                                        "SignatureMethod", "Algorithm",    "Timestamp",
                                        "Expires",         "SecurityToken"};
    if (!name)
        return false;
    if (auth_prefix_ci(name, "X-Amz-"))
        return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0)
            return true;
    }
    return false;
}

/* ---- SMTP passwords (spec 20 §10.2, DECISIONS 21) ---- */

#define SMTP_MESSAGE "SendRawEmail"

static void smtp_password(unsigned char version, const unsigned char mac[AUTH_SHA256_LEN],
                          char *out)
{
    unsigned char raw[1 + AUTH_SHA256_LEN];
    raw[0] = version;
    memcpy(raw + 1, mac, AUTH_SHA256_LEN);
    core_base64_encode(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
}

void auth_smtp_password_v2(const char *secret, char *out)
{
    unsigned char mac[AUTH_MAX_DIGEST];
    auth_hmac(AUTH_MD_SHA256, secret, strlen(secret), SMTP_MESSAGE, strlen(SMTP_MESSAGE), mac);
    smtp_password(0x02, mac, out);
    OPENSSL_cleanse(mac, sizeof mac);
}

/* The SigV4 key chain with AWS's fixed date 11111111 and service "ses". */
void auth_smtp_password_v4(const char *secret, const char *region, char *out)
{
    unsigned char key[AUTH_SHA256_LEN], mac[AUTH_MAX_DIGEST];
    auth_sigv4_signing_key(secret, "11111111", region, "ses", key);
    auth_hmac(AUTH_MD_SHA256, key, sizeof key, SMTP_MESSAGE, strlen(SMTP_MESSAGE), mac);
    smtp_password(0x04, mac, out);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(mac, sizeof mac);
}

/* ---- access keys ---- */

int auth_key_generate(char key_id[AUTH_KEY_ID_LEN + 1], char secret[AUTH_SECRET_LEN + 1])
{
    static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const char base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char r[AUTH_KEY_ID_LEN - 4 + AUTH_SECRET_LEN];
    if (RAND_bytes(r, sizeof r) != 1)
        return -1;
    /* 256 is a multiple of 32 and of 64, so masking picks every character equally often. */
    memcpy(key_id, "AKIA", 4);
    for (size_t i = 0; i < AUTH_KEY_ID_LEN - 4; i++)
        key_id[4 + i] = base32[r[i] & 31];
    key_id[AUTH_KEY_ID_LEN] = '\0';
    for (size_t i = 0; i < AUTH_SECRET_LEN; i++)
        secret[i] = base64[r[AUTH_KEY_ID_LEN - 4 + i] & 63];
    secret[AUTH_SECRET_LEN] = '\0';
    OPENSSL_cleanse(r, sizeof r);
    return 0;
}
