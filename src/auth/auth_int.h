/* Private to the auth module: helpers shared by auth.c, sigv4.c and aws3.c.
 * Other modules include only auth.h. */
#ifndef SESAME_AUTH_INT_H
#define SESAME_AUTH_INT_H

#include "auth/auth.h"
#include "core/core.h"

/* AWS's own wording, so that SDK error handling and user searches find them. */
#define AUTH_MSG_BAD_SIGNATURE                                                                     \
    "The request signature we calculated does not match the signature you provided. Check your "   \
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
#define AUTH_MSG_UNKNOWN_KEY "The security token included in the request is invalid."
#define AUTH_MSG_MISSING "Request is missing Authentication Token"

#define AUTH_SHA256_LEN 32
#define AUTH_MAX_DIGEST 64

/* Writes the message into out (when out is set) and returns st. */
enum auth_status auth_fail(struct auth_result *out, enum auth_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* First header named name (case-insensitive), or NULL. */
const char *auth_header_get(const struct auth_request *req, const char *name);
/* True when s starts with prefix, ASCII case-insensitive. */
bool auth_prefix_ci(const char *s, const char *prefix);
/* True when the len bytes at p equal s, ASCII case-insensitive. */
bool auth_span_eq_ci(const char *p, size_t len, const char *s);
bool auth_is_space(int c);

/* HTTP and AWS dates: ISO 8601 basic (20150830T123600Z), RFC 1123 with GMT or a numeric
 * zone, RFC 850 and asctime. Returns false when s is none of them. */
bool auth_parse_date(const char *s, int64_t *out_s);
/* 20150830T123600Z */
void auth_format_amz_date(int64_t t, char out[17]);
/* AUTH_EXPIRED, with AWS's explanation, when t is more than max_skew_s from now_s. */
enum auth_status auth_check_skew(const struct auth_request *req, int64_t t,
                                 struct auth_result *out);

enum auth_md { AUTH_MD_SHA256, AUTH_MD_SHA1 };

/* Returns the digest length, 0 on failure. */
size_t auth_hmac(enum auth_md md, const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char out[AUTH_MAX_DIGEST]);
void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_SHA256_LEN]);
/* The SigV4 key chain: HMAC("AWS4"+secret, date), region, service, "aws4_request". */
void auth_sigv4_signing_key(const char *secret, const char *scope_date, const char *region,
                            const char *service, unsigned char key[AUTH_SHA256_LEN]);

/* Percent-decodes len bytes of s into out (room for len + 1); '+' stays '+', and a '%'
 * not followed by two hex digits stays as it is. Returns the decoded length. */
size_t auth_pct_decode(const char *s, size_t len, char *out);

/* One raw name=value item of a query string (still percent-encoded) or of an
 * authorization header's parameter list. */
struct auth_kv {
    const char *name;
    size_t name_len;
    const char *value; /* empty when the item has no '=' */
    size_t value_len;
};
/* Next &-separated item from *cursor (which may point at NULL); false at the end.
 * Empty items ("a=1&&b=2") are skipped. */
bool auth_query_next(const char **cursor, struct auth_kv *it);
/* Next comma-separated name=value parameter of an authorization header, split at the
 * first '=' and with blanks around names and values dropped; false at the end. */
bool auth_param_next(const char **cursor, struct auth_kv *it);
/* Decoded value of the first query parameter whose decoded name is name (exact case);
 * malloc'd, or NULL when absent. */
char *auth_query_get(const char *query, const char *name);

enum auth_status auth_sigv4_verify_header(const struct auth_request *req, const char *value,
                                          auth_secret_lookup lookup, void *ctx,
                                          struct auth_result *out);
enum auth_status auth_sigv4_verify_query(const struct auth_request *req, auth_secret_lookup lookup,
                                         void *ctx, struct auth_result *out);
/* value: "AWS3-HTTPS ..." or "AWS3 ..." from X-Amzn-Authorization (or Authorization). */
enum auth_status auth_aws3_verify_header(const struct auth_request *req, const char *value,
                                         auth_secret_lookup lookup, void *ctx,
                                         struct auth_result *out);
/* AWSAccessKeyId, Signature and Algorithm in the query, signing the Date header. */
enum auth_status auth_aws3_verify_query(const struct auth_request *req, auth_secret_lookup lookup,
                                        void *ctx, struct auth_result *out);

/* ---- IAM policies: the compiled form, shared by policy_parse.c and policy_eval.c ---- */

#define POLICY_ACTION_COUNT 113 /* the SES API 2010-12-01 operations, then SNS 2010-03-31's */
#define POLICY_ACTION_WORDS ((POLICY_ACTION_COUNT + 63) / 64)

/* "ses:SendEmail", "sns:CreateTopic", ...: sorted; byte order and case-insensitive order
 * agree for these names (the unit test checks), so lookups can bisect either way. */
extern const char *const policy_action_names[POLICY_ACTION_COUNT];
/* Index of name ("ses:SendEmail") in policy_action_names (case-insensitive), or -1. */
int policy_action_index(const char *name);
/* Matches s against pattern, where '*' is any run and '?' any one character; with ci,
 * ASCII letters compare case-insensitively. */
bool policy_glob(const char *pattern, const char *s, bool ci);

enum policy_key {
    POLICY_KEY_CURRENT_TIME,
    POLICY_KEY_EPOCH_TIME,
    POLICY_KEY_SECURE_TRANSPORT,
    POLICY_KEY_SOURCE_IP,
    POLICY_KEY_USER_AGENT,
};

enum policy_family {
    POLICY_STRING,
    POLICY_NUMERIC,
    POLICY_DATE,
    POLICY_BOOL,
    POLICY_IP,
    POLICY_NULL
};

/* How a value is compared with the request's: for LT, request < value. */
enum policy_cmp {
    POLICY_EQ,
    POLICY_EQ_CI,
    POLICY_LIKE,
    POLICY_LT,
    POLICY_LE,
    POLICY_GT,
    POLICY_GE
};

/* An address or CIDR block. IPv4-mapped IPv6 addresses are stored as IPv4. */
struct policy_ip {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix; /* bits that must match; the rest of addr is zero */
    uint8_t addr[16];
};
/* Parses a textual address without prefix; false when it is neither IPv4 nor IPv6. */
bool policy_ip_parse(const char *text, size_t len, struct policy_ip *out);

union policy_value {
    const char *str; /* String*: as written */
    double num;      /* Numeric* */
    int64_t date_s;  /* Date*: seconds since the epoch */
    bool flag;       /* Bool, Null */
    struct policy_ip ip;
};

/* One key under one operator, e.g. "StringLike": {"aws:UserAgent": ["boto*", "aws-cli*"]}. */
struct policy_cond {
    enum policy_family family;
    enum policy_cmp cmp;
    bool negated;   /* StringNot*, NumericNotEquals, DateNotEquals, NotIpAddress */
    bool if_exists; /* ...IfExists: true when the key is absent */
    enum policy_key key;
    int value_count;
    const union policy_value *values; /* any of them may match */
};

struct policy_statement {
    bool deny;
    bool not_action;
    uint64_t action_mask[POLICY_ACTION_WORDS]; /* the table's actions that Action names */
    int pattern_count;
    const char *const *patterns; /* "ses:Send*": for actions not in the table */
    int cond_count;
    const struct policy_cond *conds;
};

/* One allocation: this header, then the arrays that the statements point into. */
struct auth_policy {
    int statement_count;
    const struct policy_statement *statements;
};

#endif
