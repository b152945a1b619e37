/* auth: AWS Signature Version 4, in the Authorization header and in presigned query strings.
 * The server rebuilds the canonical request from the bytes it received and signs it with
 * the stored secret; the client's signature must match in constant time. */
#include "auth/auth_int.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"
#define SIGV4_MAX_EXPIRES 604800 /* seven days: AWS's limit for presigned requests */

/* What the client claims, gathered from the header or the query. */
struct sigv4_auth {
    char key_id[64];
    char scope_date[9];
    char region[32];
    char service[32];
    char *signed_headers; /* malloc'd */
    char *signature;      /* malloc'd, hex as received */
    int64_t t;            /* request time */
    char amz_date[17];    /* t in ISO 8601 basic form */
};

static void sigv4_auth_free(struct sigv4_auth *a)
{
    free(a->signed_headers);
    free(a->signature);
}

/* ---- canonical request ---- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* RFC 3986: unreserved bytes as they are, every other byte as %XX in upper case. */
static void uri_encode(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            buf_append(b, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

struct span {
    const char *p;
    size_t len;
};

/* Non-S3 services normalise the path: empty and "." segments go, ".." removes the segment
 * before it, a trailing slash stays. Each segment is then encoded once more, because SDKs
 * sign the path as it goes on the wire ("%20" there is "%2520" here). */
static void canonical_uri(struct buf *b, const char *path)
{
    size_t n = strlen(path), count = 0;
    struct span *segs = calloc(n / 2 + 1, sizeof *segs); /* a segment needs a byte and a '/' */
    if (!segs)
        abort();
    for (const char *p = path; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            count -= count > 0;
        } else if (len > 0 && !(len == 1 && p[0] == '.')) {
            segs[count++] = (struct span){p, len};
        }
        p += len + (end != NULL);
    }
    buf_puts(b, "/");
    for (size_t i = 0; i < count; i++) {
        if (i)
            buf_puts(b, "/");
        uri_encode(b, segs[i].p, segs[i].len);
    }
    if (count && path[n - 1] == '/')
        buf_puts(b, "/");
    free(segs);
}

struct qparam {
    char *name; /* both re-encoded */
    char *value;
};

static int qparam_cmp(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Decodes and encodes again, so that every client's spelling of a byte ("%7e", "~", "%7E")
 * ends up the same. '+' is a literal plus in SigV4, hence %2B. */
static char *reencode(const char *raw, size_t len)
{
    char *dec = malloc(len + 1);
    struct buf b;
    if (!dec)
        abort();
    size_t n = auth_pct_decode(raw, len, dec);
    buf_init(&b);
    uri_encode(&b, dec, n);
    free(dec);
    buf_cstr(&b);
    return b.data;
}

static void canonical_query(struct buf *b, const char *query, bool presigned)
{
    struct auth_kv it;
    size_t count = 0, n = 0;
    for (const char *cur = query; auth_query_next(&cur, &it);)
        count++;
    struct qparam *params = calloc(count + 1, sizeof *params);
    if (!params)
        abort();
    for (const char *cur = query; auth_query_next(&cur, &it);) {
        char *name = reencode(it.name, it.name_len);
        if (presigned && strcmp(name, "X-Amz-Signature") == 0) {
            free(name);
            continue;
        }
        params[n++] = (struct qparam){name, reencode(it.value, it.value_len)};
    }
    qsort(params, n, sizeof *params, qparam_cmp);
    for (size_t i = 0; i < n; i++) {
        buf_printf(b, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value);
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
}

/* Trimmed, and each run of blanks (folded lines included) made one space. */
static void append_trimmed(struct buf *b, const char *v)
{
    bool blank = false, started = false;
    for (; *v; v++) {
        if (auth_is_space((unsigned char)*v)) {
            blank = started;
            continue;
        }
        if (blank)
            buf_puts(b, " ");
        buf_append(b, v, 1);
        started = true;
        blank = false;
    }
}

/* "name:v1,v2\n": every header of that name, in the order received. */
static void canonical_header(struct buf *b, const struct auth_request *req, const char *name,
                             size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] + 32) : name[i];
        buf_append(b, &c, 1);
    }
    buf_puts(b, ":");
    bool first = true;
    for (size_t i = 0; i < req->header_count; i++) {
        const struct auth_header *h = &req->headers[i];
        if (!h->name || !h->value || !auth_span_eq_ci(name, len, h->name))
            continue;
        if (!first)
            buf_puts(b, ",");
        append_trimmed(b, h->value);
        first = false;
    }
    buf_puts(b, "\n");
}

int auth_sigv4_canonical_request(const struct auth_request *req, const char *signed_headers,
                                 const char *payload_hash, bool presigned, char **out)
{
    struct buf b;
    *out = NULL;
    if (!req || !req->method || !signed_headers || !payload_hash)
        return -1;
    buf_init(&b);
    buf_printf(&b, "%s\n", req->method);
    canonical_uri(&b, req->path && *req->path ? req->path : "/");
    buf_puts(&b, "\n");
    canonical_query(&b, req->query, presigned);
    buf_puts(&b, "\n");
    for (const char *p = signed_headers; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        canonical_header(&b, req, p, len);
        p += len + (end != NULL);
    }
    buf_printf(&b, "\n%s\n%s", signed_headers, payload_hash);
    *out = b.data;
    return 0;
}

/* ---- signature ---- */

#define KEY_CACHE_SLOTS 64

struct auth_key_cache_entry {
    bool used;
    char secret[AUTH_SECRET_LEN * 2];
    char scope_date[16], region[32], service[32];
    unsigned char key[AUTH_SHA256_LEN];
};

struct auth_key_cache {
    struct auth_key_cache_entry slots[KEY_CACHE_SLOTS];
};

struct auth_key_cache *auth_key_cache_new(void)
{
    return calloc(1, sizeof(struct auth_key_cache));
}

void auth_key_cache_free(struct auth_key_cache *c)
{
    if (c)
        OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static unsigned key_cache_slot(const char *secret, const char *scope_date, const char *region)
{
    unsigned h = core_hash(core_hash(core_hash(CORE_HASH_SEED, secret), scope_date), region);
    return h % KEY_CACHE_SLOTS;
}

/* The signing key from the cache, or derived (and cached when the strings fit). */
static void signing_key(struct auth_key_cache *cache, const char *secret, const char *scope_date,
                        const char *region, const char *service, unsigned char key[AUTH_SHA256_LEN])
{
    struct auth_key_cache_entry *e =
        cache ? &cache->slots[key_cache_slot(secret, scope_date, region)] : NULL;
    if (e && e->used && !strcmp(e->secret, secret) && !strcmp(e->scope_date, scope_date) &&
        !strcmp(e->region, region) && !strcmp(e->service, service)) {
        memcpy(key, e->key, AUTH_SHA256_LEN);
        return;
    }
    auth_sigv4_signing_key(secret, scope_date, region, service, key);
    if (!e)
        return;
    e->used = core_strlcpy(e->secret, secret, sizeof e->secret) &&
              core_strlcpy(e->scope_date, scope_date, sizeof e->scope_date) &&
              core_strlcpy(e->region, region, sizeof e->region) &&
              core_strlcpy(e->service, service, sizeof e->service);
    memcpy(e->key, key, AUTH_SHA256_LEN);
}

static void sigv4_sign(struct auth_key_cache *cache, const char *secret, const char *amz_date,
                       const char *scope_date, const char *region, const char *service,
                       const char *creq, unsigned char sig[AUTH_SHA256_LEN])
{
    unsigned char hash[AUTH_SHA256_LEN], key[AUTH_SHA256_LEN], mac[AUTH_MAX_DIGEST];
    char hash_hex[2 * AUTH_SHA256_LEN + 1];
    struct buf sts;
    auth_sha256(creq, strlen(creq), hash);
    core_hex_encode(hash, sizeof hash, hash_hex);
    buf_init(&sts);
    buf_printf(&sts, SIGV4_ALGORITHM "\n%s\n%s/%s/%s/" SIGV4_TERMINATOR "\n%s", amz_date,
               scope_date, region, service, hash_hex);
    signing_key(cache, secret, scope_date, region, service, key);
    auth_hmac(AUTH_MD_SHA256, key, sizeof key, sts.data, sts.len, mac);
    memcpy(sig, mac, AUTH_SHA256_LEN);
    OPENSSL_cleanse(key, sizeof key);
    buf_free(&sts);
}

int auth_sigv4_signature(const char *secret, const char *amz_date, const char *scope_date,
                         const char *region, const char *service, const char *canonical_request,
                         char out_hex[65])
{
    unsigned char sig[AUTH_SHA256_LEN];
    if (!secret || !amz_date || !scope_date || !region || !service || !canonical_request)
        return -1;
    sigv4_sign(NULL, secret, amz_date, scope_date, region, service, canonical_request, sig);
    core_hex_encode(sig, sizeof sig, out_hex);
    return 0;
}

static bool hex_decode_32(const char *hex, unsigned char out[AUTH_SHA256_LEN])
{
    return strlen(hex) == 2 * AUTH_SHA256_LEN && core_hex_decode(hex, AUTH_SHA256_LEN, out);
}

/* Tries each payload hash the client may have signed; every candidate is computed, so the
 * time taken does not say which one matched. */
static enum auth_status check_signature(const struct auth_request *req, const struct sigv4_auth *a,
                                        const char *const *hashes, size_t nhash, bool presigned,
                                        auth_secret_lookup lookup, void *ctx,
                                        struct auth_result *out)
{
    unsigned char given[AUTH_SHA256_LEN], sig[AUTH_SHA256_LEN];
    const char *secret = lookup(ctx, a->key_id);
    if (!secret)
        return auth_fail(out, AUTH_UNKNOWN_KEY, AUTH_MSG_UNKNOWN_KEY);
    bool given_ok = hex_decode_32(a->signature, given);
    int match = 0;
    for (size_t i = 0; i < nhash; i++) {
        char *creq;
        if (auth_sigv4_canonical_request(req, a->signed_headers, hashes[i], presigned, &creq) < 0)
            break;
        sigv4_sign(req->key_cache, secret, a->amz_date, a->scope_date, a->region, a->service, creq,
                   sig);
        free(creq);
        match |= given_ok && CRYPTO_memcmp(sig, given, sizeof sig) == 0;
    }
    if (!match)
        return auth_fail(out, AUTH_BAD_SIGNATURE, AUTH_MSG_BAD_SIGNATURE);
    return AUTH_OK;
}

/* ---- parsing what the client sent ---- */

static bool copy_span(char *out, size_t outlen, const char *p, size_t len)
{
    if (len == 0 || len >= outlen || memchr(p, '\0', len))
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* <key id>/<yyyymmdd>/<region>/<service>/aws4_request */
static enum auth_status parse_credential(const char *cred, struct sigv4_auth *a,
                                         struct auth_result *out)
{
    struct span parts[5];
    size_t n = 0;
    const char *p = cred;
    for (; n < 5; n++) {
        const char *end = strchr(p, '/');
        parts[n] = (struct span){p, end ? (size_t)(end - p) : strlen(p)};
        if (!end) {
            n++;
            break;
        }
        p = end + 1;
    }
    if (n != 5 || strchr(parts[4].p, '/') ||
        !copy_span(a->key_id, sizeof a->key_id, parts[0].p, parts[0].len) ||
        !copy_span(a->scope_date, sizeof a->scope_date, parts[1].p, parts[1].len) ||
        strlen(a->scope_date) != 8 || strspn(a->scope_date, "0123456789") != 8)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Credential must have the form <access key id>/<yyyymmdd>/<region>/"
                         "<service>/aws4_request, not '%.120s'.",
                         cred);
    core_strlcpy(out->key_id, a->key_id, sizeof out->key_id);
    if (!copy_span(a->region, sizeof a->region, parts[2].p, parts[2].len))
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Credential should be scoped to a valid region, not '%.*s'.",
                         (int)(parts[2].len > 64 ? 64 : parts[2].len), parts[2].p);
    if (!copy_span(a->service, sizeof a->service, parts[3].p, parts[3].len))
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Credential should be scoped to a valid service, not '%.*s'.",
                         (int)(parts[3].len > 64 ? 64 : parts[3].len), parts[3].p);
    core_strlcpy(out->region, a->region, sizeof out->region);
    core_strlcpy(out->service, a->service, sizeof out->service);
    if (strcmp(parts[4].p, SIGV4_TERMINATOR) != 0)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Credential should be scoped with a valid terminator: 'aws4_request', "
                         "not '%.64s'.",
                         parts[4].p);
    return AUTH_OK;
}

/* SigV4 signs "host"; without it a signature could be replayed against another endpoint. */
static bool signs_host(const char *signed_headers)
{
    for (const char *p = signed_headers; *p;) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (auth_span_eq_ci(p, len, "host"))
            return true;
        p += len + (end != NULL);
    }
    return false;
}

/* The time in the scope's date must be the request's date, or the window is not honest. */
static enum auth_status check_scope_date(const struct sigv4_auth *a, struct auth_result *out)
{
    if (strncmp(a->scope_date, a->amz_date, 8) == 0)
        return AUTH_OK;
    return auth_fail(out, AUTH_BAD_SIGNATURE,
                     "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                     "date from HTTP: '%s' != '%.8s', from '%s'.",
                     a->scope_date, a->amz_date, a->amz_date);
}

/* Reads Credential, SignedHeaders and Signature; names what is missing as AWS does. */
static enum auth_status parse_authorization(const struct auth_request *req, const char *value,
                                            struct sigv4_auth *a, struct auth_result *out)
{
    struct auth_kv it;
    char *cred = NULL;
    const char *cur = value + strlen(SIGV4_ALGORITHM);
    while (auth_param_next(&cur, &it)) {
        char **slot = NULL;
        if (it.name_len == 10 && strncmp(it.name, "Credential", 10) == 0)
            slot = &cred;
        else if (it.name_len == 13 && strncmp(it.name, "SignedHeaders", 13) == 0)
            slot = &a->signed_headers;
        else if (it.name_len == 9 && strncmp(it.name, "Signature", 9) == 0)
            slot = &a->signature;
        if (slot && !*slot)
            *slot = strndup(it.value, it.value_len);
    }
    bool has_date = auth_header_get(req, "X-Amz-Date") || auth_header_get(req, "Date");
    if (!cred || !a->signed_headers || !a->signature || !has_date) {
        auth_fail(out, AUTH_INCOMPLETE, "%s%s%s%sAuthorization=%.100s",
                  cred ? "" : "Authorization header requires 'Credential' parameter. ",
                  a->signature ? "" : "Authorization header requires 'Signature' parameter. ",
                  a->signed_headers ? ""
                                    : "Authorization header requires 'SignedHeaders' parameter. ",
                  has_date ? ""
                           : "Authorization header requires existence of either a 'X-Amz-Date' "
                             "or a 'Date' header. ",
                  value);
        free(cred);
        return AUTH_INCOMPLETE;
    }
    enum auth_status st = parse_credential(cred, a, out);
    free(cred);
    return st;
}

/* X-Amz-Date must be ISO 8601 basic, exactly as signed; a Date header is converted. */
static enum auth_status header_time(const struct auth_request *req, struct sigv4_auth *a,
                                    struct auth_result *out)
{
    const char *amz = auth_header_get(req, "X-Amz-Date");
    const char *date = amz ? amz : auth_header_get(req, "Date");
    if (!auth_parse_date(date, &a->t))
        return auth_fail(out, AUTH_INCOMPLETE, "Invalid date in the %s header: '%.64s'.",
                         amz ? "X-Amz-Date" : "Date", date);
    auth_format_amz_date(a->t, a->amz_date);
    if (amz && strcmp(amz, a->amz_date) != 0)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "Date must be in ISO-8601 'basic format'. Got '%.64s'.", amz);
    return check_scope_date(a, out);
}

/* Copies v without surrounding blanks; false when it does not fit. */
static bool trimmed_copy(const char *v, char *out, size_t outlen)
{
    while (auth_is_space((unsigned char)*v))
        v++;
    size_t len = strlen(v);
    while (len && auth_is_space((unsigned char)v[len - 1]))
        len--;
    if (len >= outlen)
        return false;
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

/* x-amz-content-sha256, when sent, is what the client signed; it must describe this body,
 * or the signature would not cover the parameters we act on. UNSIGNED-PAYLOAD is only
 * harmless when there is no body. */
static enum auth_status header_payload_hash(const struct auth_request *req, char hash[65],
                                            struct auth_result *out)
{
    unsigned char digest[AUTH_SHA256_LEN];
    char claimed[65];
    auth_sha256(req->body, req->body_len, digest);
    core_hex_encode(digest, sizeof digest, hash);
    const char *header = auth_header_get(req, "X-Amz-Content-Sha256");
    if (!header)
        return AUTH_OK;
    if (trimmed_copy(header, claimed, sizeof claimed) &&
        (core_strcasecmp(claimed, hash) == 0 ||
         (strcmp(claimed, SIGV4_UNSIGNED) == 0 && req->body_len == 0))) {
        strcpy(hash, claimed);
        return AUTH_OK;
    }
    return auth_fail(out, AUTH_BAD_SIGNATURE,
                     "The provided 'x-amz-content-sha256' header does not match what was "
                     "computed.");
}

enum auth_status auth_sigv4_verify_header(const struct auth_request *req, const char *value,
                                          auth_secret_lookup lookup, void *ctx,
                                          struct auth_result *out)
{
    struct sigv4_auth a = {0};
    char hash[65];
    core_strlcpy(out->scheme, SIGV4_ALGORITHM, sizeof out->scheme);
    enum auth_status st = parse_authorization(req, value, &a, out);
    if (st == AUTH_OK && !signs_host(a.signed_headers))
        st = auth_fail(out, AUTH_INCOMPLETE,
                       "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                       "Authorization.");
    if (st == AUTH_OK)
        st = header_time(req, &a, out);
    if (st == AUTH_OK)
        st = auth_check_skew(req, a.t, out);
    if (st == AUTH_OK)
        st = header_payload_hash(req, hash, out);
    if (st == AUTH_OK) {
        const char *hashes[] = {hash};
        st = check_signature(req, &a, hashes, 1, false, lookup, ctx, out);
    }
    sigv4_auth_free(&a);
    return st;
}

/* ---- presigned ---- */

struct presigned_params {
    char *algorithm, *credential, *date, *expires;
};

static void presigned_params_free(struct presigned_params *p)
{
    free(p->algorithm);
    free(p->credential);
    free(p->date);
    free(p->expires);
}

static enum auth_status parse_presigned(const struct auth_request *req, struct presigned_params *p,
                                        struct sigv4_auth *a, struct auth_result *out)
{
    p->algorithm = auth_query_get(req->query, "X-Amz-Algorithm");
    p->credential = auth_query_get(req->query, "X-Amz-Credential");
    p->date = auth_query_get(req->query, "X-Amz-Date");
    p->expires = auth_query_get(req->query, "X-Amz-Expires");
    a->signed_headers = auth_query_get(req->query, "X-Amz-SignedHeaders");
    a->signature = auth_query_get(req->query, "X-Amz-Signature");
    if (!p->algorithm || !p->credential || !p->date || !p->expires || !a->signed_headers ||
        !a->signature)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "AWS query-string parameters must include 'X-Amz-Algorithm', "
                         "'X-Amz-Credential', 'X-Amz-Signature', 'X-Amz-Date', "
                         "'X-Amz-SignedHeaders', and 'X-Amz-Expires'. Re-examine the "
                         "query-string parameters.");
    if (strcmp(p->algorithm, SIGV4_ALGORITHM) != 0)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "X-Amz-Algorithm only supports \"" SIGV4_ALGORITHM "\"");
    enum auth_status st = parse_credential(p->credential, a, out);
    if (st != AUTH_OK)
        return st;
    if (!signs_host(a->signed_headers))
        return auth_fail(out, AUTH_INCOMPLETE,
                         "'Host' must be a 'SignedHeader' in the AWS Authorization.");
    if (!auth_parse_date(p->date, &a->t) ||
        (auth_format_amz_date(a->t, a->amz_date), strcmp(p->date, a->amz_date) != 0))
        return auth_fail(out, AUTH_INCOMPLETE,
                         "X-Amz-Date must be in the ISO8601 Long Format "
                         "\"yyyyMMdd'T'HHmmss'Z'\"");
    return check_scope_date(a, out);
}

static enum auth_status presigned_window(const struct auth_request *req, const char *expires,
                                         const struct sigv4_auth *a, struct auth_result *out)
{
    size_t len = strlen(expires);
    if (len == 0 || len > 7 || strspn(expires, "0123456789") != len)
        return auth_fail(out, AUTH_INCOMPLETE, "X-Amz-Expires must be a non-negative integer.");
    long secs = strtol(expires, NULL, 10);
    if (secs > SIGV4_MAX_EXPIRES)
        return auth_fail(out, AUTH_INCOMPLETE,
                         "X-Amz-Expires must be less than a week (in seconds) that is 604800");
    if (req->now_s > a->t + secs)
        return auth_fail(out, AUTH_EXPIRED, "Request has expired.");
    if (a->t - req->now_s > req->max_skew_s)
        return auth_fail(out, AUTH_EXPIRED,
                         "Request is not yet valid: X-Amz-Date %s is in the "
                         "future.",
                         a->amz_date);
    return AUTH_OK;
}

enum auth_status auth_sigv4_verify_query(const struct auth_request *req, auth_secret_lookup lookup,
                                         void *ctx, struct auth_result *out)
{
    struct presigned_params p = {0};
    struct sigv4_auth a = {0};
    unsigned char digest[AUTH_SHA256_LEN];
    char body_hash[65];
    core_strlcpy(out->scheme, "AWS4-presigned", sizeof out->scheme);
    enum auth_status st = parse_presigned(req, &p, &a, out);
    if (st == AUTH_OK)
        st = presigned_window(req, p.expires, &a, out);
    if (st == AUTH_OK) {
        /* botocore signs UNSIGNED-PAYLOAD, the AWS CRT the body's hash (DECISIONS 1). An
         * unsigned body would let whoever holds the URL add parameters, so UNSIGNED-PAYLOAD
         * only counts when there is no body. */
        auth_sha256(req->body, req->body_len, digest);
        core_hex_encode(digest, sizeof digest, body_hash);
        const char *hashes[] = {body_hash, SIGV4_UNSIGNED};
        st = check_signature(req, &a, hashes, req->body_len ? 1 : 2, true, lookup, ctx, out);
    }
    presigned_params_free(&p);
    sigv4_auth_free(&a);
    return st;
}
