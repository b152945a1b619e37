/* auth: request signatures (SigV4 header and presigned, AWS3-HTTPS, AWS3), SMTP password
 * derivation and access-key generation. Pure functions over the request's bytes: no I/O,
 * no store access; the caller supplies the secret lookup. */
#ifndef SESAME_AUTH_H
#define SESAME_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_ID_LEN 20 /* AKIA + 16 characters of base32 */
#define AUTH_SECRET_LEN 40 /* base64 alphabet, like AWS secrets */
#define AUTH_SMTP_PASSWORD_LEN 44

enum auth_status {
    AUTH_OK = 0,
    AUTH_MISSING_TOKEN, /* no credentials at all: MissingAuthenticationToken 403 */
    AUTH_INCOMPLETE,    /* malformed or partial signature: IncompleteSignature 400 */
    AUTH_UNKNOWN_KEY,   /* InvalidClientTokenId 403 */
    AUTH_BAD_SIGNATURE, /* SignatureDoesNotMatch 403 */
    AUTH_EXPIRED,       /* RequestExpired 400 */
};

struct auth_header {
    const char *name; /* as received; compared case-insensitively */
    const char *value;
};

/* Derived SigV4 signing keys, reused while key, secret, date, region and service repeat
 * (the key chain is four HMACs). One per thread; optional. */
struct auth_key_cache;
struct auth_key_cache *auth_key_cache_new(void);
void auth_key_cache_free(struct auth_key_cache *c);

struct auth_request {
    const char *method; /* "GET", "POST" */
    const char *path;   /* raw path as received, without the query, e.g. "/" */
    const char *query;  /* raw query string without '?', may be NULL or "" */
    const struct auth_header *headers;
    size_t header_count;
    const unsigned char *body;
    size_t body_len;
    int64_t now_s;                    /* server time, seconds since the epoch */
    int64_t max_skew_s;               /* 900 */
    struct auth_key_cache *key_cache; /* NULL: derive the signing key every time */
};

/* Returns the secret for key_id (NUL-terminated) or NULL when the key is unknown or not
 * active. The returned pointer must stay valid until auth_verify returns. */
typedef const char *(*auth_secret_lookup)(void *ctx, const char *key_id);

struct auth_result {
    char key_id[64];
    char region[32];   /* from the SigV4 credential scope; empty for AWS3 schemes */
    char service[32];  /* from the SigV4 credential scope */
    char scheme[24];   /* "AWS4-HMAC-SHA256", "AWS4-presigned", "AWS3-HTTPS", "AWS3" */
    char message[256]; /* explanation for a failure, in AWS's words where known */
};

/* Finds the credentials in the request (Authorization header, X-Amz-* query parameters,
 * or X-Amzn-Authorization) and verifies them. Signature comparison is constant-time. */
enum auth_status auth_verify(const struct auth_request *req, auth_secret_lookup lookup,
                             void *lookup_ctx, struct auth_result *out);

/* True when the query-string parameter belongs to authentication and must not be seen
 * as an action parameter (X-Amz-*, AWSAccessKeyId, Signature, SignatureVersion, ...). */
bool auth_is_signature_param(const char *name);

/* SMTP passwords (spec 20 §10.2, DECISIONS 21): base64 of version byte + HMAC. out: 45 bytes. */
void auth_smtp_password_v2(const char *secret, char *out);
void auth_smtp_password_v4(const char *secret, const char *region, char *out);

/* Failed authentications per source address (failures.c), shared by every thread and
 * interface. limit 0: off. */
struct auth_failures;
struct auth_failures *auth_failures_new(int limit, int64_t window_ms);
void auth_failures_free(struct auth_failures *f);
/* True while address has failed `limit` times in its current window: refuse it unchecked. */
bool auth_failures_blocked(struct auth_failures *f, const char *address, int64_t now_ms);
/* Counts a failure; returns the address's failures in its current window, this one
 * included (0 when the limiter is off). The count equals `limit` exactly once per window:
 * the moment to log it. */
int auth_failures_record(struct auth_failures *f, const char *address, int64_t now_ms);

/* New access key: id "AKIA" + 16 base32 characters, 40-character secret. */
int auth_key_generate(char key_id[AUTH_KEY_ID_LEN + 1], char secret[AUTH_SECRET_LEN + 1]);

/* Builds SigV4 pieces; exposed so unit tests can check them against the AWS test suite. */
int auth_sigv4_canonical_request(const struct auth_request *req, const char *signed_headers,
                                 const char *payload_hash, bool presigned, char **out);
int auth_sigv4_signature(const char *secret, const char *amz_date, const char *scope_date,
                         const char *region, const char *service, const char *canonical_request,
                         char out_hex[65]);

/* ---- IAM policies (policy_parse.c, policy_eval.c): spec 20 §8 ---- */
#define AUTH_POLICY_MAX_CHARS 6144 /* IAM's limit, whitespace not counted */

struct auth_policy; /* a parsed, validated, compiled policy document */

/* Parses and validates a policy document. NULL on error, with err set to
 * "line L, column C: <message>" (1-based) pointing at the offending token. */
struct auth_policy *auth_policy_parse(const char *json, size_t len, char *err, size_t errlen);
void auth_policy_free(struct auth_policy *p);

/* What a request is evaluated against. */
struct auth_policy_request {
    const char *action;     /* the API action without its prefix, e.g. "SendEmail" */
    const char *source_ip;  /* the peer address, textual IPv4 or IPv6 */
    bool secure_transport;  /* came over TLS */
    int64_t now_ms;         /* aws:CurrentTime and aws:EpochTime */
    const char *user_agent; /* NULL when the request has no User-Agent (the key is then absent) */
    const char *service;    /* the action's prefix: "sns", or NULL for "ses" */
};

enum auth_policy_decision {
    AUTH_POLICY_IMPLICIT_DENY,
    AUTH_POLICY_EXPLICIT_DENY,
    AUTH_POLICY_ALLOW
};

/* Standard IAM evaluation over every statement of every policy: any matching Deny wins,
 * else any matching Allow, else implicit deny. NULL entries in policies are skipped. */
enum auth_policy_decision auth_policy_evaluate(struct auth_policy *const *policies, int count,
                                               const struct auth_policy_request *req);

/* A user's policies compiled together (policy_set.c). One document that does not
 * compile (or no memory) fails the whole set, logged with `what`: leaving it out could
 * drop a Deny. */
struct auth_policy_set {
    struct auth_policy **items;
    int count, cap;
    bool failed;
};
void auth_policy_set_add(struct auth_policy_set *set, const char *doc, const char *what);
/* Every policy of an account's user from the store, compiled into set (empty on entry).
 * STORE_OK, or STORE_ERROR when the store fails or a policy does not compile. */
struct store_conn;
int auth_policy_set_load(struct store_conn *c, const char *account_id, const char *user,
                         struct auth_policy_set *set);
void auth_policy_set_free(struct auth_policy_set *set); /* empties it for reuse */

#endif
