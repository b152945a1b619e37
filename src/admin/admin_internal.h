/* Private to the admin module: the command line's context and helpers, the operations
 * that the command and the HTTP API share, and the HTTP API's request helpers. */
#ifndef SESAME_ADMIN_INTERNAL_H
#define SESAME_ADMIN_INTERNAL_H

#include "core/core.h"
#include "store/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* ==== the command line ==== */

#define ADMIN_OK 0
#define ADMIN_FAILED 1
#define ADMIN_USAGE 2
#define ADMIN_MAX_ARGS 16
#define ADMIN_MAX_REPEAT 16

/* Options of one invocation: `--name value` pairs, flags and positional arguments. */
struct admin_opts {
    const char *positional[ADMIN_MAX_ARGS];
    int positional_count;
    const char *names[64];
    const char *values[64]; /* NULL for a flag */
    int count;
};

struct admin_ctx {
    const char *config_path;
    struct sesame_config cfg;
    struct store *store;
    struct store_conn *conn;
    struct admin_opts opts;
};

/* A verb: its name, its usage text and the function that runs it. */
struct admin_verb {
    const char *name;
    const char *usage;
    const char *const *value_opts; /* options that take a value */
    const char *const *flag_opts;  /* options that stand alone */
    int (*run)(struct admin_ctx *ctx);
};

const char *admin_opt(const struct admin_ctx *ctx, const char *name);
bool admin_flag(const struct admin_ctx *ctx, const char *name);
/* Every value of a repeatable option, in order; returns the count. */
int admin_opt_all(const struct admin_ctx *ctx, const char *name, const char **out, int max);
int admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int admin_usage_error(const struct admin_verb *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Opens the instance's store (config from -c, $SESAME_CONFIG or ./var/sesame.conf). */
int admin_open(struct admin_ctx *ctx);
void admin_close(struct admin_ctx *ctx);
/* The account named by id, else by --account, else the first one. */
int admin_account(struct admin_ctx *ctx, const char *id, struct store_account *out);
/* --region, checked against the config; the default region without it. */
int admin_region(struct admin_ctx *ctx, const char **out);
/* Runs fn inside one transaction on the admin connection. */
int admin_write(struct admin_ctx *ctx, int (*fn)(struct admin_ctx *ctx, void *arg), void *arg);
/* An operation's outcome as an exit status: ADMIN_OK, or its message printed and
 * ADMIN_FAILED. */
int admin_op_report(int status, const char *err);

void admin_key_print(const struct store_key *k, const struct sesame_config *cfg, bool secrets);
/* "key: ID Active|Inactive[ user=NAME]", as store_key_list's callback. */
void admin_key_line(const struct store_key *k, void *ctx);

extern const struct admin_verb admin_init_verb;
extern const struct admin_verb admin_dkim_zone_verb;
extern const struct admin_verb admin_account_verbs[];
extern const struct admin_verb admin_key_verbs[];
extern const struct admin_verb admin_user_verbs[];
extern const struct admin_verb admin_policy_verbs[];
extern const struct admin_verb admin_identity_verbs[];
extern const struct admin_verb admin_queue_verbs[];
extern const struct admin_verb admin_suppression_verbs[];
extern const struct admin_verb admin_feedback_verbs[];
extern const struct admin_verb admin_notifications_verbs[];

/* ==== operations shared by the command and the HTTP API (ops.c, ops_lists.c) ====
 * Each runs on a connection inside the caller's transaction (the command's own, or the
 * store writer's in sesamed), prints nothing, and on failure returns a negative status
 * with a message for the user in err (ADMIN_ERR_LEN bytes). Negative, so that the writer
 * undoes whatever the failed operation had changed. */

#define ADMIN_ERR_LEN 512
#define ADMIN_MAX_USER_KEYS 2        /* active keys per user, as IAM */
#define ADMIN_MAX_POLICY_BYTES 65536 /* refused before parsing */
#define ADMIN_MAX_LIMIT_VALUE 1e12   /* quota and rate */

enum admin_op_status {
    ADMIN_OP_OK = 0,
    ADMIN_OP_ERROR = STORE_ERROR,   /* the store failed */
    ADMIN_OP_INVALID = -2,          /* bad input */
    ADMIN_OP_MALFORMED_POLICY = -3, /* the policy document does not parse */
    ADMIN_OP_NOT_FOUND = -4,
    ADMIN_OP_EXISTS = -5,
    ADMIN_OP_LIMIT = -6, /* e.g. a user's third active key */
};

/* Writes the message into err (ADMIN_ERR_LEN bytes) and returns status. */
int admin_op_fail(char *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* IAM's name rules: [A-Za-z0-9+=,.@_-], 1-64 characters for users, 1-128 for policies. */
int admin_check_user_name(const char *name, char *err);
int admin_check_policy_name(const char *name, char *err);
/* Size, then the policy parser; its "line L, column C: ..." message on failure. */
int admin_check_policy(const char *doc, size_t len, char *err);

int admin_op_account_create(struct store_conn *c, const struct sesame_config *cfg, const char *name,
                            const char *contact, bool production, struct store_account *acct,
                            struct store_key *key, char *err);

/* A change to one region's sending limits. */
struct admin_region_change {
    char region[STORE_REGION_LEN];
    int production; /* 1: production (its default limits unless given), 0: sandbox, -1: as is */
    bool set_max_24h, set_max_rate;
    double max_24h, max_rate;
};

/* A change to an account: NULL strings and -1 flags stay as they are. The strings must
 * live until the operation has run. */
struct admin_account_change {
    const char *name;
    const char *contact;
    int suspended, disabled;
    struct admin_region_change regions[CONFIG_MAX_REGIONS];
    int region_count;
};

void admin_account_change_init(struct admin_account_change *ch);
int admin_op_account_update(struct store_conn *c, const struct sesame_config *cfg,
                            const char *account_id, const struct admin_account_change *ch,
                            char *err);
/* An account's limits in a region: the stored ones, else the sandbox defaults. */
void admin_account_region(struct store_conn *c, const struct sesame_config *cfg,
                          const char *account_id, const char *region,
                          struct store_account_region *out);

/* A new active key of the account, or of one of its users (user NULL or "": a root key). */
int admin_op_key_create(struct store_conn *c, const char *account_id, const char *user,
                        struct store_key *key, char *err);
/* Makes a key inactive; account_id NULL: whichever account holds it. */
int admin_op_key_revoke(struct store_conn *c, const char *account_id, const char *key_id,
                        struct store_key *key, char *err);

int admin_op_user_create(struct store_conn *c, const char *account_id, const char *name,
                         struct store_user *out, char *err);
/* Deletes the user with its keys and policies, and says how many of each went. */
int admin_op_user_delete(struct store_conn *c, const char *account_id, const char *name, int *keys,
                         int *policies, char *err);
/* The user's keys: the number, and how many of them are active. */
int admin_user_key_count(struct store_conn *c, const char *account_id, const char *user, int *all,
                         int *active);

/* doc: NUL-terminated, already checked with admin_check_policy_name and admin_check_policy. */
int admin_op_policy_put(struct store_conn *c, const char *account_id, const char *user,
                        const char *name, const char *doc, char *err);
int admin_op_policy_delete(struct store_conn *c, const char *account_id, const char *user,
                           const char *name, char *err);

/* reason: BOUNCE or COMPLAINT. Keeps the entry's first creation time. */
int admin_op_suppression_put(struct store_conn *c, const char *account_id, const char *address,
                             const char *reason, struct store_suppression *out, char *err);
int admin_op_suppression_delete(struct store_conn *c, const char *account_id, const char *address,
                                char *err);

/* Sets an identity's verification status, creating the identity when it is missing (an
 * operator's override: no DNS or email check). Domains are lower-cased. */
int admin_op_identity_set_status(struct store_conn *c, const char *account_id, const char *region,
                                 const char *identity, const char *status,
                                 struct store_identity *out, char *err);
int admin_op_identity_delete(struct store_conn *c, const char *account_id, const char *region,
                             const char *identity, char *err);
/* The identity as stored: a checked, normalized copy of what was given (out: at least
 * STORE_IDENTITY_LEN bytes). */
int admin_identity_name(const char *given, char *out, char *err);

/* ==== the HTTP API (http.c and http_*.c) ==== */

struct admin_http;
struct evhttp_request;
struct evkeyvalq;

#define ADMIN_MAX_SEGMENTS 8
#define ADMIN_MAX_BODY_BYTES (1024 * 1024)

/* One request, from routing to its reply. Owned by the thread that received it. */
struct admin_req {
    struct admin_http *h;
    struct evhttp_request *req;
    int method;                         /* enum evhttp_cmd_type */
    char *segments[ADMIN_MAX_SEGMENTS]; /* the path after /v1/, percent-decoded */
    int segment_count;
    struct evkeyvalq *query;
    json_t *body;                 /* the parsed JSON body, once asked for */
    char *raw_body;               /* a NUL-terminated copy of the body, once asked for */
    char log_path[160];           /* the path, printable, for log lines */
    struct store_account account; /* the path's {account}, once resolved */
    char err[ADMIN_ERR_LEN];      /* a write's message */
    void *op;                     /* a write's own data; freed with the request */
};

const struct sesame_config *admin_http_config(const struct admin_http *h);
struct store_conn *admin_http_conn(const struct admin_http *h);

/* Replies end the request and free it. body is taken (NULL: no body). */
void admin_reply(struct admin_req *r, int status, json_t *body);
void admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The HTTP status and code for an operation's failure, with r->err as the message. */
void admin_reply_op_error(struct admin_req *r, int status);
/* Replies 500 for a failed read. */
void admin_reply_store_error(struct admin_req *r);

/* What a JSON body may hold: each member's name, type and whether it must be there. */
enum admin_json_type { ADMIN_JSON_STRING, ADMIN_JSON_BOOL, ADMIN_JSON_NUMBER, ADMIN_JSON_OBJECT };
struct admin_field {
    const char *name;
    enum admin_json_type type;
    bool required;
};
/* Checks obj against fields (a NULL name ends them): unknown members, wrong types and
 * missing required ones are refused with a message naming where (e.g. "regions.x."). */
bool admin_json_check(json_t *obj, const struct admin_field *fields, const char *where, char *err,
                      size_t errlen);
/* Parses the body into r->body (an empty body counts as {}) and checks it; false after
 * replying 400. */
bool admin_req_body(struct admin_req *r, const struct admin_field *fields);
/* The body as it came, NUL-terminated (a copy that lives as long as the request). */
const char *admin_req_raw_body(struct admin_req *r, size_t *len);
/* Checks that the query has only the named parameters (NULL-terminated); false after
 * replying 400. */
bool admin_req_query(struct admin_req *r, const char *const *allowed);
const char *admin_req_param(struct admin_req *r, const char *name);
/* A write's zeroed data (aborts when memory is out, as the rest of sesamed does). */
void *admin_op_new(size_t size);
/* Runs write on the store's writer thread and done on this thread once it is durable;
 * op (malloc'd, may be NULL) becomes r->op. */
void admin_req_write(struct admin_req *r, void *op, store_write_fn write, store_done_fn done);
/* In a done callback: true when the write succeeded, else replies its error. */
bool admin_req_done_ok(struct admin_req *r, int status);

/* JSON of the records (http_json.c). */
json_t *admin_json_text(const char *s); /* a string; bytes that are not UTF-8 become '?' */
json_t *admin_json_time(int64_t ms);
json_t *admin_json_number(double d);
json_t *admin_json_account(struct admin_http *h, const struct store_account *a);
json_t *admin_json_key(const struct sesame_config *cfg, const struct store_key *k, bool secrets);
json_t *admin_json_user(const struct store_user *u);
json_t *admin_json_suppression(const struct store_suppression *s);
json_t *admin_json_identity(const struct store_identity *i);
/* The keys of r's account (all, or the user's), without secrets; NULL when unreadable. */
json_t *admin_keys_json(struct admin_req *r, const char *user);

/* The handlers, by resource (http_accounts.c, http_users.c, http_lists.c). */
void admin_accounts_list(struct admin_req *r);
void admin_accounts_create(struct admin_req *r);
void admin_account_get(struct admin_req *r);
void admin_account_patch(struct admin_req *r);
void admin_keys_list(struct admin_req *r);
void admin_keys_create(struct admin_req *r);
void admin_key_get(struct admin_req *r);
void admin_key_revoke(struct admin_req *r);
void admin_users_list(struct admin_req *r);
void admin_users_create(struct admin_req *r);
void admin_user_get(struct admin_req *r);
void admin_user_delete(struct admin_req *r);
void admin_user_keys_list(struct admin_req *r);
void admin_user_keys_create(struct admin_req *r);
void admin_policies_list(struct admin_req *r);
void admin_policy_get(struct admin_req *r);
void admin_policy_put(struct admin_req *r);
void admin_policy_delete(struct admin_req *r);
void admin_suppressions_list(struct admin_req *r);
void admin_suppressed_list(struct admin_req *r);
void admin_suppressed_delete(struct admin_req *r);
void admin_suppression_get(struct admin_req *r);
void admin_suppression_put(struct admin_req *r);
void admin_suppression_delete(struct admin_req *r);
void admin_identities_list(struct admin_req *r);
void admin_identity_get(struct admin_req *r);
void admin_identity_put(struct admin_req *r);
void admin_identity_delete(struct admin_req *r);

#endif
