/* auth: the 2010 SES guide's signature version 3 (spec 10 §2.5).
 * AWS3-HTTPS: HMAC of the Date header's exact bytes; relies on TLS for the rest.
 * AWS3 (boto2's HmacAuthV3HTTPHandler): HMAC of the SHA-256 of
 * METHOD\nPATH\n\n<signed headers>\n\n<body>. Signatures are base64. */
#include "auth/auth_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct aws3_auth {
    bool https;                                            /* AWS3-HTTPS, not AWS3 */
    char *key_id, *algorithm, *signature, *signed_headers; /* malloc'd */
    enum auth_md md;
};

static void aws3_auth_free(struct aws3_auth *a)
{
    free(a->key_id);
    free(a->algorithm);
    free(a->signature);
    free(a->signed_headers);
}

static void take_param(const struct auth_kv *it, struct aws3_auth *a)
{
    static const char *const names[] = {"AWSAccessKeyId", "Algorithm", "Signature",
                                        "SignedHeaders"};
    char **slots[] = {&a->key_id, &a->algorithm, &a->signature, &a->signed_headers};
    for (size_t i = 0; i < 4; i++) {
        if (auth_span_eq_ci(it->name, it->name_len, names[i]) && !*slots[i])
            *slots[i] = strndup(it->value, it->value_len);
    }
}

static enum auth_status check_params(struct aws3_auth *a, struct auth_result *out)
{
    bool need_headers = !a->https && !a->signed_headers;
    if (!a->key_id || !a->algorithm || !a->signature || need_headers)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "%s authorization requires the 'AWSAccessKeyId', 'Algorithm' and "
                         "'Signature' parameters%s.%s%s%s%s",
                         a->https ? "AWS3-HTTPS" : "AWS3", a->https ? "" : " and 'SignedHeaders'",
                         a->key_id ? "" : " AWSAccessKeyId is missing.",
                         a->algorithm ? "" : " Algorithm is missing.",
                         a->signature ? "" : " Signature is missing.",
                         need_headers ? " SignedHeaders is missing." : "");
    if (core_strcasecmp(a->algorithm, "HmacSHA256") == 0)
        a->md = AUTH_MD_SHA256;
    else if (core_strcasecmp(a->algorithm, "HmacSHA1") == 0)
        a->md = AUTH_MD_SHA1;
    else
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Invalid Algorithm '%.64s': use HmacSHA256 or HmacSHA1.", a->algorithm);
    return AUTH_OK;
}

/* "AWS3-HTTPS AWSAccessKeyId=..., Algorithm=..., Signature=..." in any order. */
static enum auth_status parse_header(const char *value, struct aws3_auth *a,
                                     struct auth_result *out)
{
    struct auth_kv it;
    while (auth_is_space((unsigned char)*value))
        value++;
    size_t scheme_len = strcspn(value, " \t");
    if (auth_span_eq_ci(value, scheme_len, "AWS3-HTTPS"))
        a->https = true;
    else if (!auth_span_eq_ci(value, scheme_len, "AWS3"))
        return auth_fail(out, AUTH_INCOMPLETE, "Unsupported authorization scheme '%.*s'.",
                         (int)(scheme_len > 32 ? 32 : scheme_len), value);
    core_strlcpy(out->scheme, a->https ? "AWS3-HTTPS" : "AWS3", sizeof out->scheme);
    for (const char *cur = value + scheme_len; auth_param_next(&cur, &it);)
        take_param(&it, a);
    return check_params(a, out);
}

static bool in_signed_headers(const char *signed_headers, const char *name)
{
    for (const char *p = signed_headers; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (auth_span_eq_ci(p, len, name))
            return true;
        p += len + (end != NULL);
    }
    return false;
}

/* The header that dates the request. AWS3-HTTPS signs Date (X-Amz-Date when there is no
 * Date); boto2's AWS3 sends X-Amz-Date, which must then be among the signed headers or the
 * freshness check would rest on an unsigned value. */
static enum auth_status request_date(const struct auth_request *req, const struct aws3_auth *a,
                                     const char **date, struct auth_result *out)
{
    const char *name = a->https ? "Date" : "X-Amz-Date";
    const char *other = a->https ? "X-Amz-Date" : "Date";
    int64_t t;
    *date = auth_header_get(req, name);
    if (!*date) {
        *date = auth_header_get(req, other);
        name = other;
    }
    if (!*date)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Authorization header requires existence of either a 'X-Amz-Date' or "
                         "a 'Date' header.");
    if (!a->https && !in_signed_headers(a->signed_headers, name))
        return auth_fail(out, AUTH_INCOMPLETE, "SignedHeaders must include '%s'.", name);
    if (!auth_parse_date(*date, &t))
        return auth_fail(out, AUTH_INCOMPLETE, "Invalid date in the %s header: '%.64s'.", name,
                         *date);
    return auth_check_skew(req, t, out);
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One "name:value" line: lower-case name, trimmed values joined by commas. */
static char *header_line(const struct auth_request *req, const char *name, size_t len)
{
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < len; i++) {
        char c = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];
        buf_append(&b, &c, 1);
    }
    buf_puts(&b, ":");
    bool first = true;
    for (size_t i = 0; i < req->header_count; i++) {
        const struct auth_header *h = &req->headers[i];
        if (!h->name || !h->value || !auth_span_eq_ci(name, len, h->name))
            continue;
        const char *v = h->value;
        size_t vlen = strlen(v);
        while (vlen && auth_is_space((unsigned char)*v))
            v++, vlen--;
        while (vlen && auth_is_space((unsigned char)v[vlen - 1]))
            vlen--;
        if (!first)
            buf_puts(&b, ",");
        buf_append(&b, v, vlen);
        first = false;
    }
    return b.data;
}

/* Canonical headers as boto2 builds them: the "name:value" lines sorted, joined by '\n'. */
static void canonical_headers(struct buf *b, const struct auth_request *req,
                              const char *signed_headers)
{
    size_t count = 1, n = 0;
    for (const char *p = signed_headers; *p; p++)
        count += *p == ';';
    char **lines = calloc(count, sizeof *lines);
    if (!lines)
        abort();
    for (const char *p = signed_headers; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len)
            lines[n++] = header_line(req, p, len);
        p += len + (end != NULL);
    }
    qsort(lines, n, sizeof *lines, line_cmp);
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "%s%s", i ? "\n" : "", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

static void aws3_string_to_sign_hash(const struct auth_request *req, const char *signed_headers,
                                     unsigned char hash[AUTH_SHA256_LEN])
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s\n%s\n\n", req->method ? req->method : "",
               req->path && *req->path ? req->path : "/");
    canonical_headers(&b, req, signed_headers);
    buf_puts(&b, "\n\n");
    if (req->body_len)
        buf_append(&b, req->body, req->body_len);
    auth_sha256(b.data, b.len, hash);
    buf_free(&b);
}

/* Longest base64 we decode: a SHA-512-sized digest, more than any algorithm here needs. */
#define AWS3_MAX_SIG_CHARS (4 * ((AUTH_MAX_DIGEST + 2) / 3))

/* Base64 digest; some clients percent-encode it or drop the padding. */
static long decode_signature(const char *sig, unsigned char out[AWS3_MAX_SIG_CHARS / 4 * 3])
{
    size_t len = strlen(sig);
    char *tmp = malloc(len + 4);
    if (!tmp)
        abort();
    size_t n = auth_pct_decode(sig, len, tmp);
    while (n % 4)
        tmp[n++] = '=';
    long r = n > AWS3_MAX_SIG_CHARS ? -1 : core_base64_decode(tmp, n, out);
    free(tmp);
    return r;
}

static enum auth_status check_signature(const struct auth_request *req, const struct aws3_auth *a,
                                        const char *date, auth_secret_lookup lookup, void *ctx,
                                        struct auth_result *out)
{
    unsigned char mac[AUTH_MAX_DIGEST], given[AWS3_MAX_SIG_CHARS / 4 * 3], hash[AUTH_SHA256_LEN];
    const char *secret = lookup(ctx, a->key_id);
    if (!secret)
        return auth_fail(out, AUTH_UNKNOWN_KEY, AUTH_MSG_UNKNOWN_KEY);
    size_t n;
    if (a->https) {
        n = auth_hmac(a->md, secret, strlen(secret), date, strlen(date), mac);
    } else {
        aws3_string_to_sign_hash(req, a->signed_headers, hash);
        n = auth_hmac(a->md, secret, strlen(secret), hash, sizeof hash, mac);
    }
    long glen = decode_signature(a->signature, given);
    if (n == 0 || glen != (long)n || CRYPTO_memcmp(mac, given, n) != 0)
        return auth_fail(out, AUTH_BAD_SIGNATURE, AUTH_MSG_BAD_SIGNATURE);
    return AUTH_OK;
}

static enum auth_status verify(const struct auth_request *req, struct aws3_auth *a,
                               auth_secret_lookup lookup, void *ctx, struct auth_result *out)
{
    const char *date = NULL;
    core_strlcpy(out->key_id, a->key_id, sizeof out->key_id);
    enum auth_status st = request_date(req, a, &date, out);
    if (st == AUTH_OK)
        st = check_signature(req, a, date, lookup, ctx, out);
    return st;
}

enum auth_status auth_aws3_verify_header(const struct auth_request *req, const char *value,
                                         auth_secret_lookup lookup, void *ctx,
                                         struct auth_result *out)
{
    struct aws3_auth a = {0};
    enum auth_status st = parse_header(value, &a, out);
    if (st == AUTH_OK)
        st = verify(req, &a, lookup, ctx, out);
    aws3_auth_free(&a);
    return st;
}

enum auth_status auth_aws3_verify_query(const struct auth_request *req, auth_secret_lookup lookup,
                                        void *ctx, struct auth_result *out)
{
    struct aws3_auth a = {.https = true};
    core_strlcpy(out->scheme, "AWS3-HTTPS", sizeof out->scheme);
    a.key_id = auth_query_get(req->query, "AWSAccessKeyId");
    a.algorithm = auth_query_get(req->query, "Algorithm");
    a.signature = auth_query_get(req->query, "Signature");
    enum auth_status st = check_params(&a, out);
    if (st == AUTH_OK)
        st = verify(req, &a, lookup, ctx, out);
    aws3_auth_free(&a);
    return st;
}
