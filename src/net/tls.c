/* TLS server contexts and the self-signed certificate that `sesame init` creates. */
#include "net/net.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <sys/stat.h>

static void tls_error(const char *what, char *err, size_t errlen)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof detail);
    snprintf(err, errlen, "%s: %s", what, detail);
}

SSL_CTX *net_tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return tls_error("TLS context", err, errlen), NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        tls_error(cert_path, err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_error(key_path, err, errlen);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return -1;
    int rc = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rc;
}

static X509 *self_signed_cert(EVP_PKEY *key, const char *hostname)
{
    X509 *cert = X509_new();
    char san[512];
    snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", hostname);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)time(NULL));
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Sesame", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    if (add_ext(cert, NID_subject_alt_name, san) ||
        add_ext(cert, NID_basic_constraints, "CA:FALSE") ||
        X509_sign(cert, key, EVP_sha256()) == 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int net_tls_self_signed(const char *cert_path, const char *key_path, const char *hostname,
                        char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *cert = key ? self_signed_cert(key, hostname) : NULL;
    int rc = -1;
    mode_t old = umask(077);
    FILE *kf = cert ? fopen(key_path, "w") : NULL;
    umask(old);
    FILE *cf = kf ? fopen(cert_path, "w") : NULL;
    if (cf && PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL) == 1 &&
        PEM_write_X509(cf, cert) == 1)
        rc = 0;
    else
        tls_error("self-signed certificate", err, errlen);
    if (kf && fclose(kf))
        rc = -1;
    if (cf && fclose(cf))
        rc = -1;
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}
