/* The SNS HTTP/HTTPS message format: the envelope JSON, the canonical string SNS signs
 * and its RSA signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA), and the
 * signing key and self-signed certificate served at SigningCertURL. Subscribers check
 * the signature as AWS documents it, so the string to sign must match byte for byte. */
#include "feedback/feedback.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *feedback_sns_type_name(enum feedback_sns_type type)
{
    switch (type) {
    case FEEDBACK_SNS_SUBSCRIPTION_CONFIRMATION:
        return "SubscriptionConfirmation";
    case FEEDBACK_SNS_UNSUBSCRIBE_CONFIRMATION:
        return "UnsubscribeConfirmation";
    case FEEDBACK_SNS_NOTIFICATION:
    default:
        return "Notification";
    }
}

static void sign_pair(struct buf *out, const char *key, const char *value)
{
    buf_printf(out, "%s\n%s\n", key, value ? value : "");
}

void feedback_sns_string_to_sign(const struct feedback_sns_message *m, struct buf *out)
{
    char ts[32];
    feedback_iso8601_ms(m->timestamp_ms, ts, sizeof ts);
    sign_pair(out, "Message", m->message);
    sign_pair(out, "MessageId", m->message_id);
    if (m->type == FEEDBACK_SNS_NOTIFICATION) {
        if (m->subject) /* absent, not empty, when the publisher gave none */
            sign_pair(out, "Subject", m->subject);
    } else {
        sign_pair(out, "SubscribeURL", m->subscribe_url);
    }
    sign_pair(out, "Timestamp", ts);
    if (m->type != FEEDBACK_SNS_NOTIFICATION)
        sign_pair(out, "Token", m->token);
    sign_pair(out, "TopicArn", m->topic_arn);
    sign_pair(out, "Type", feedback_sns_type_name(m->type));
}

static void log_openssl(const char *what)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    log_error("feedback: %s: %s", what, detail);
}

/* The base64 RSA PKCS#1 v1.5 signature of the string to sign; malloc'd, NULL on error. */
static char *sns_signature(const struct feedback_sns_message *m, EVP_PKEY *key)
{
    const EVP_MD *md = m->signature_version == 1 ? EVP_sha1() : EVP_sha256();
    struct buf text;
    buf_init(&text);
    feedback_sns_string_to_sign(m, &text);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL;
    size_t siglen = 0;
    char *b64 = NULL;
    if (ctx && EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 &&
        EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)text.data, text.len) == 1 &&
        (sig = malloc(siglen)) &&
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)text.data, text.len) == 1 &&
        (b64 = malloc(4 * ((siglen + 2) / 3) + 1)))
        core_base64_encode(sig, siglen, b64);
    else
        log_openssl("SNS signature");
    free(sig);
    EVP_MD_CTX_free(ctx);
    buf_free(&text);
    return b64;
}

static int set_text(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value ? value : ""));
}

/* The envelope's fields in the order SNS writes them. */
static int envelope_fields(json_t *env, const struct feedback_sns_message *m, const char *sig)
{
    char ts[32];
    feedback_iso8601_ms(m->timestamp_ms, ts, sizeof ts);
    bool note = m->type == FEEDBACK_SNS_NOTIFICATION;
    int rc = set_text(env, "Type", feedback_sns_type_name(m->type));
    rc |= set_text(env, "MessageId", m->message_id);
    if (!note)
        rc |= set_text(env, "Token", m->token);
    rc |= set_text(env, "TopicArn", m->topic_arn);
    if (note && m->subject)
        rc |= set_text(env, "Subject", m->subject);
    rc |= set_text(env, "Message", m->message);
    if (!note)
        rc |= set_text(env, "SubscribeURL", m->subscribe_url);
    rc |= set_text(env, "Timestamp", ts);
    rc |= set_text(env, "SignatureVersion", m->signature_version == 1 ? "1" : "2");
    rc |= set_text(env, "Signature", sig);
    rc |= set_text(env, "SigningCertURL", m->signing_cert_url);
    if (note)
        rc |= set_text(env, "UnsubscribeURL", m->unsubscribe_url);
    return rc;
}

char *feedback_sns_envelope(const struct feedback_sns_message *m, EVP_PKEY *key)
{
    if (m->signature_version != 1 && m->signature_version != 2) {
        log_error("feedback: SNS SignatureVersion %d (1 or 2)", m->signature_version);
        return NULL;
    }
    char *sig = sns_signature(m, key);
    if (!sig)
        return NULL;
    json_t *env = json_object();
    char *text = NULL;
    if (env && !envelope_fields(env, m, sig))
        text = json_dumps(env, JSON_COMPACT);
    else
        log_error("feedback: SNS envelope: a field is not valid UTF-8 or memory ran out");
    json_decref(env);
    free(sig);
    return text;
}

/* ---- the signing key and certificate ---- */

static void openssl_err(const char *what, char *err, size_t errlen)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    snprintf(err, errlen, "%s: %s", what, detail);
}

/* A file's bytes, NUL-terminated; malloc'd, NULL with err. */
static char *file_read(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(&b, chunk, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "%s: read error", path);
        buf_free(&b);
        return NULL;
    }
    buf_cstr(&b);
    *len = b.len;
    return b.data;
}

static int signing_read(const char *key_path, const char *cert_path, EVP_PKEY **key,
                        char **cert_pem, char *err, size_t errlen)
{
    size_t key_len = 0, cert_len = 0;
    char *key_text = file_read(key_path, &key_len, err, errlen);
    char *cert_text = key_text ? file_read(cert_path, &cert_len, err, errlen) : NULL;
    EVP_PKEY *k = NULL;
    X509 *cert = NULL;
    int rc = -1;
    if (cert_text) {
        BIO *kb = BIO_new_mem_buf(key_text, (int)key_len);
        BIO *cb = BIO_new_mem_buf(cert_text, (int)cert_len);
        k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
        cert = k && cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
        if (!k)
            openssl_err(key_path, err, errlen);
        else if (!EVP_PKEY_is_a(k, "RSA"))
            snprintf(err, errlen, "%s: not an RSA key (SNS signatures are RSA)", key_path);
        else if (!cert)
            openssl_err(cert_path, err, errlen);
        else if (X509_check_private_key(cert, k) != 1)
            snprintf(err, errlen, "%s does not hold the public key of %s", cert_path, key_path);
        else
            rc = 0;
        BIO_free(kb);
        BIO_free(cb);
    }
    X509_free(cert);
    OPENSSL_cleanse(key_text, key_len);
    free(key_text);
    if (rc == 0) {
        *key = k;
        *cert_pem = cert_text;
    } else {
        EVP_PKEY_free(k);
        free(cert_text);
    }
    return rc;
}

static X509 *signing_cert_new(EVP_PKEY *key, const char *common_name)
{
    X509 *cert = X509_new();
    BIGNUM *serial = BN_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext = NULL;
    int ok = cert && serial && BN_rand(serial, 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
             BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) && X509_set_version(cert, 2) &&
             X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600) &&
             X509_set_pubkey(cert, key);
    X509_NAME *name = ok ? X509_get_subject_name(cert) : NULL;
    ok = ok &&
         X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name,
                                    -1, -1, 0) &&
         X509_set_issuer_name(cert, name);
    if (ok) {
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,digitalSignature");
        ok = ext && X509_add_ext(cert, ext, -1) && X509_sign(cert, key, EVP_sha256());
    }
    X509_EXTENSION_free(ext);
    BN_free(serial);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* Writes data to path through a temporary name and a rename, so a crash never leaves a
 * half-written key; mode is set whatever the umask. */
static int file_write_atomic(const char *path, const char *data, size_t len, mode_t mode, char *err,
                             size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    bool ok = fchmod(fd, mode) == 0;
    for (size_t off = 0; ok && off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        off += ok ? (size_t)n : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* PEM text of a key or certificate; malloc'd into *out. */
static int pem_text(EVP_PKEY *key, X509 *cert, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                       : PEM_write_bio_X509(b, cert));
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    *out = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (*out) {
        memcpy(*out, data, (size_t)n);
        (*out)[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(b);
    return *out ? 0 : -1;
}

static int signing_create(const char *key_path, const char *cert_path, const char *common_name,
                          EVP_PKEY **key, char **cert_pem, char *err, size_t errlen)
{
    EVP_PKEY *k = EVP_RSA_gen(2048);
    X509 *cert = k ? signing_cert_new(k, common_name) : NULL;
    char *key_text = NULL, *cert_text = NULL;
    size_t key_len = 0, cert_len = 0;
    int rc = -1;
    if (!cert || pem_text(k, NULL, &key_text, &key_len) ||
        pem_text(NULL, cert, &cert_text, &cert_len))
        openssl_err("SNS signing certificate", err, errlen);
    else if (!file_write_atomic(key_path, key_text, key_len, 0600, err, errlen) &&
             !file_write_atomic(cert_path, cert_text, cert_len, 0644, err, errlen))
        rc = 0;
    if (key_text)
        OPENSSL_cleanse(key_text, key_len);
    free(key_text);
    X509_free(cert);
    if (rc == 0) {
        log_info("feedback: created the SNS signing key %s and certificate %s", key_path,
                 cert_path);
        *key = k;
        *cert_pem = cert_text;
    } else {
        EVP_PKEY_free(k);
        free(cert_text);
    }
    return rc;
}

int feedback_sns_signing_load(const char *key_path, const char *cert_path, const char *common_name,
                              EVP_PKEY **key, char **cert_pem, char *err, size_t errlen)
{
    *key = NULL;
    *cert_pem = NULL;
    bool have_key = access(key_path, F_OK) == 0, have_cert = access(cert_path, F_OK) == 0;
    if (have_key && have_cert)
        return signing_read(key_path, cert_path, key, cert_pem, err, errlen);
    if (!have_key && !have_cert)
        return signing_create(key_path, cert_path, common_name, key, cert_pem, err, errlen);
    /* Making the missing half would not match the other: the operator must decide. */
    snprintf(err, errlen, "%s exists but %s does not: provide both or remove the other",
             have_key ? key_path : cert_path, have_key ? cert_path : key_path);
    return -1;
}
