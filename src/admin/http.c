/* The admin HTTP API: one evhttp per I/O thread on its own SO_REUSEPORT socket, bearer
 * token check, routing of /v1/... paths, and the JSON request and reply helpers. Reads use
 * the thread's own store connection; writes go through the store's writer and are
 * answered once durable, so a change is in force when its reply arrives. */
#include "admin/admin.h"
#include "admin/admin_internal.h"
#include "auth/auth.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct admin_http {
    const struct sesame_config *cfg;
    struct auth_failures *failures;
    struct store *store;
    struct store_conn *conn;
    struct evhttp *http;
    struct evhttp_bound_socket *socket;
    struct event_base *base;
};

const struct sesame_config *admin_http_config(const struct admin_http *h)
{
    return h->cfg;
}

struct store_conn *admin_http_conn(const struct admin_http *h)
{
    return h->conn;
}

/* ---- the request ---- */

static void admin_req_free(struct admin_req *r)
{
    for (int i = 0; i < r->segment_count; i++)
        free(r->segments[i]);
    if (r->query) {
        evhttp_clear_headers(r->query);
        free(r->query);
    }
    json_decref(r->body);
    free(r->raw_body);
    free(r->op);
    free(r);
}

static const char *method_name(int method)
{
    switch (method) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    default:
        return "OTHER";
    }
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    default:
        return "Internal Server Error";
    }
}

void admin_reply(struct admin_req *r, int status, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    struct evkeyvalq *headers = evhttp_request_get_output_headers(r->req);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text) {
        status = 500;
        text = strdup("{\"error\":{\"code\":\"InternalError\",\"message\":\"out of memory\"}}");
    }
    if (text) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
        evhttp_add_header(headers, "Content-Type", "application/json");
    }
    if (r->method != EVHTTP_REQ_GET || status >= 400)
        log_info("admin: %s %s -> %d", method_name(r->method), r->log_path, status);
    evhttp_send_reply(r->req, status, status_reason(status), out);
    evbuffer_free(out);
    free(text);
    json_decref(body);
    admin_req_free(r);
}

void admin_reply_error(struct admin_req *r, int status, const char *code, const char *fmt, ...)
{
    char message[ADMIN_ERR_LEN + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *error = json_object();
    json_object_set_new(error, "code", json_string(code));
    json_object_set_new(error, "message", admin_json_text(message));
    json_t *body = json_object();
    json_object_set_new(body, "error", error);
    admin_reply(r, status, body);
}

void admin_reply_op_error(struct admin_req *r, int status)
{
    switch (status) {
    case ADMIN_OP_INVALID:
        return admin_reply_error(r, 400, "ValidationError", "%s", r->err);
    case ADMIN_OP_MALFORMED_POLICY:
        return admin_reply_error(r, 400, "MalformedPolicyDocument", "%s", r->err);
    case ADMIN_OP_NOT_FOUND:
        return admin_reply_error(r, 404, "NotFound", "%s", r->err);
    case ADMIN_OP_EXISTS:
        return admin_reply_error(r, 409, "Conflict", "%s", r->err);
    case ADMIN_OP_LIMIT:
        return admin_reply_error(r, 409, "LimitExceeded", "%s", r->err);
    default:
        log_error("admin: %s %s failed: %s", method_name(r->method), r->log_path,
                  r->err[0] ? r->err : "the transaction did not commit");
        return admin_reply_error(r, 500, "InternalError", "%s",
                                 r->err[0] ? r->err : "the change could not be stored");
    }
}

void admin_reply_store_error(struct admin_req *r)
{
    admin_reply_error(r, 500, "InternalError", "the store could not be read");
}

/* ---- bodies and query parameters ---- */

static const struct admin_field *field_find(const struct admin_field *fields, const char *name)
{
    for (const struct admin_field *f = fields; f && f->name; f++)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

static bool field_type_ok(enum admin_json_type type, json_t *v)
{
    switch (type) {
    case ADMIN_JSON_STRING:
        return json_is_string(v);
    case ADMIN_JSON_BOOL:
        return json_is_boolean(v);
    case ADMIN_JSON_NUMBER:
        return json_is_number(v);
    case ADMIN_JSON_OBJECT:
        return json_is_object(v);
    }
    return false;
}

static const char *const type_names[] = {"a string", "true or false", "a number", "an object"};

bool admin_json_check(json_t *obj, const struct admin_field *fields, const char *where, char *err,
                      size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const struct admin_field *f = field_find(fields, key);
        if (!f)
            return snprintf(err, errlen, "unknown field '%s%.100s'", where, key), false;
        if (!field_type_ok(f->type, v))
            return snprintf(err, errlen, "field '%s%s' must be %s", where, key,
                            type_names[f->type]),
                   false;
    }
    for (const struct admin_field *f = fields; f && f->name; f++)
        if (f->required && !json_object_get(obj, f->name))
            return snprintf(err, errlen, "field '%s%s' is required", where, f->name), false;
    return true;
}

bool admin_req_body(struct admin_req *r, const struct admin_field *fields)
{
    size_t len;
    const char *raw = admin_req_raw_body(r, &len);
    json_error_t e;
    r->body = len ? json_loadb(raw, len, JSON_REJECT_DUPLICATES, &e) : json_object();
    if (!r->body) {
        admin_reply_error(r, 400, "BadRequest", "malformed JSON: line %d, column %d: %s", e.line,
                          e.column, e.text);
        return false;
    }
    if (!json_is_object(r->body)) {
        admin_reply_error(r, 400, "BadRequest", "the body must be a JSON object");
        return false;
    }
    char err[256];
    if (!admin_json_check(r->body, fields, "", err, sizeof err)) {
        admin_reply_error(r, 400, "ValidationError", "%s", err);
        return false;
    }
    return true;
}

const char *admin_req_raw_body(struct admin_req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    *len = evbuffer_get_length(in);
    if (!r->raw_body) {
        if (!(r->raw_body = malloc(*len + 1)))
            abort();
        evbuffer_copyout(in, r->raw_body, *len);
        r->raw_body[*len] = '\0';
    }
    return r->raw_body;
}

bool admin_req_query(struct admin_req *r, const char *const *allowed)
{
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, r->query, next)
    {
        bool known = false;
        for (const char *const *a = allowed; a && *a && !known; a++)
            known = !strcmp(*a, kv->key);
        if (!known) {
            admin_reply_error(r, 400, "ValidationError", "unknown query parameter '%.100s'",
                              kv->key);
            return false;
        }
    }
    return true;
}

const char *admin_req_param(struct admin_req *r, const char *name)
{
    return evhttp_find_header(r->query, name);
}

void *admin_op_new(size_t size)
{
    void *op = calloc(1, size);
    if (!op)
        abort();
    return op;
}

void admin_req_write(struct admin_req *r, void *op, store_write_fn write, store_done_fn done)
{
    r->op = op;
    r->err[0] = '\0';
    store_submit(r->h->store, r->h->base, write, done, r);
}

bool admin_req_done_ok(struct admin_req *r, int status)
{
    if (status == ADMIN_OP_OK)
        return true;
    admin_reply_op_error(r, status);
    return false;
}

/* ---- authorization ---- */

/* The bearer token, compared in constant time; an empty admin.token refuses everyone. */
static const char *admin_token_problem(const struct admin_req *r)
{
    const char *token = r->h->cfg->admin_token;
    const char *auth =
        evhttp_find_header(evhttp_request_get_input_headers(r->req), "Authorization");
    size_t n = strlen(token);
    if (!n)
        return "admin.token is not set, so the admin API refuses every request";
    if (!auth || strncasecmp(auth, "Bearer ", 7))
        return "missing bearer token";
    const char *given = auth + 7;
    while (*given == ' ')
        given++;
    if (strlen(given) != n || CRYPTO_memcmp(given, token, n) != 0)
        return "wrong token";
    return NULL;
}

static const char *admin_peer(struct admin_req *r)
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    if (conn)
        evhttp_connection_get_peer(conn, &peer, &port);
    return peer ? peer : "?";
}

/* Wrong tokens count as failed authentications of the client's address, so guessing the
 * token is as slow as guessing a key. */
static bool admin_authorized(struct admin_req *r)
{
    const char *peer = admin_peer(r);
    int64_t now = core_now_ms();
    if (auth_failures_blocked(r->h->failures, peer, now)) {
        admin_reply_error(r, 429, "TooManyRequests",
                          "too many failed authentications from this address; try again later");
        return false;
    }
    const char *problem = admin_token_problem(r);
    if (!problem)
        return true;
    int count = auth_failures_record(r->h->failures, peer, now);
    if (count > 0 && count == r->h->cfg->auth_failure_limit)
        log_warn("admin: %s reached the limit of failed authentications", peer);
    log_warn("admin: refused %s %s from %s: %s", method_name(r->method), r->log_path, peer,
             problem);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "WWW-Authenticate", "Bearer");
    admin_reply_error(r, 401, "Unauthorized", "%s: send Authorization: Bearer <admin.token>",
                      problem);
    return false;
}

/* ---- routing ---- */

struct admin_route {
    int method;
    const char *pattern; /* segments after /v1/; "*" matches any one */
    void (*handle)(struct admin_req *r);
};

static const struct admin_route routes[] = {
    {EVHTTP_REQ_GET, "accounts", admin_accounts_list},
    {EVHTTP_REQ_POST, "accounts", admin_accounts_create},
    {EVHTTP_REQ_GET, "accounts/*", admin_account_get},
    {EVHTTP_REQ_PATCH, "accounts/*", admin_account_patch},
    {EVHTTP_REQ_GET, "accounts/*/keys", admin_keys_list},
    {EVHTTP_REQ_POST, "accounts/*/keys", admin_keys_create},
    {EVHTTP_REQ_GET, "accounts/*/keys/*", admin_key_get},
    {EVHTTP_REQ_DELETE, "accounts/*/keys/*", admin_key_revoke},
    {EVHTTP_REQ_GET, "accounts/*/users", admin_users_list},
    {EVHTTP_REQ_POST, "accounts/*/users", admin_users_create},
    {EVHTTP_REQ_GET, "accounts/*/users/*", admin_user_get},
    {EVHTTP_REQ_DELETE, "accounts/*/users/*", admin_user_delete},
    {EVHTTP_REQ_GET, "accounts/*/users/*/keys", admin_user_keys_list},
    {EVHTTP_REQ_POST, "accounts/*/users/*/keys", admin_user_keys_create},
    {EVHTTP_REQ_GET, "accounts/*/users/*/policies", admin_policies_list},
    {EVHTTP_REQ_GET, "accounts/*/users/*/policies/*", admin_policy_get},
    {EVHTTP_REQ_PUT, "accounts/*/users/*/policies/*", admin_policy_put},
    {EVHTTP_REQ_DELETE, "accounts/*/users/*/policies/*", admin_policy_delete},
    {EVHTTP_REQ_GET, "accounts/*/suppressions", admin_suppressions_list},
    {EVHTTP_REQ_GET, "accounts/*/suppressions/*", admin_suppression_get},
    {EVHTTP_REQ_PUT, "accounts/*/suppressions/*", admin_suppression_put},
    {EVHTTP_REQ_DELETE, "accounts/*/suppressions/*", admin_suppression_delete},
    {EVHTTP_REQ_GET, "accounts/*/identities", admin_identities_list},
    {EVHTTP_REQ_GET, "accounts/*/identities/*", admin_identity_get},
    {EVHTTP_REQ_PUT, "accounts/*/identities/*", admin_identity_put},
    {EVHTTP_REQ_DELETE, "accounts/*/identities/*", admin_identity_delete},
    {EVHTTP_REQ_GET, "suppressed", admin_suppressed_list},
    {EVHTTP_REQ_DELETE, "suppressed/*", admin_suppressed_delete},
};

static bool route_matches(const char *pattern, const struct admin_req *r)
{
    int i = 0;
    for (const char *p = pattern; *p; i++) {
        size_t n = strcspn(p, "/");
        if (i >= r->segment_count ||
            (strncmp(p, "*", n) && (strlen(r->segments[i]) != n || strncmp(p, r->segments[i], n))))
            return false;
        p += n + (p[n] == '/');
    }
    return i == r->segment_count;
}

/* The {account} of the path; false after replying 404 or 500. */
static bool admin_req_account(struct admin_req *r)
{
    const char *id = r->segments[1];
    int rc = strlen(id) == 12 && strspn(id, "0123456789") == 12
                 ? store_account_get(r->h->conn, id, &r->account)
                 : STORE_NOT_FOUND;
    if (rc == STORE_OK)
        return true;
    if (rc == STORE_NOT_FOUND)
        admin_reply_error(r, 404, "NotFound", "no account %.40s", id);
    else
        admin_reply_store_error(r);
    return false;
}

static void admin_dispatch(struct admin_req *r)
{
    char allow[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct admin_route *route = &routes[i];
        if (!route_matches(route->pattern, r))
            continue;
        if (route->method == r->method) {
            if (strncmp(route->pattern, "accounts/", 9) || admin_req_account(r))
                route->handle(r);
            return;
        }
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 method_name(route->method));
    }
    if (!allow[0])
        return admin_reply_error(r, 404, "NotFound", "no such endpoint: %s", r->log_path);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow", allow);
    admin_reply_error(r, 405, "MethodNotAllowed", "%s is not allowed on %s (allowed: %s)",
                      method_name(r->method), r->log_path, allow);
}

/* A printable copy of the path for log lines and messages: nothing a client sends can
 * forge a log line. */
static void log_path_set(struct admin_req *r, const char *path)
{
    size_t n = 0;
    for (; *path && n + 1 < sizeof r->log_path; path++)
        r->log_path[n++] = *path > ' ' && *path < 127 ? *path : '?';
    r->log_path[n] = '\0';
}

/* Splits /v1/... into percent-decoded segments; false after replying. */
static bool admin_req_parse_path(struct admin_req *r, const char *path)
{
    if (strncmp(path, "/v1/", 4)) {
        admin_reply_error(r, 404, "NotFound", "no such endpoint: %s (the API is under /v1/)",
                          r->log_path);
        return false;
    }
    for (const char *p = path + 4;; p++) {
        size_t n = strcspn(p, "/"), len;
        char raw[1024];
        if (!n || n >= sizeof raw || r->segment_count == ADMIN_MAX_SEGMENTS) {
            admin_reply_error(r, 404, "NotFound", "no such endpoint: %s", r->log_path);
            return false;
        }
        memcpy(raw, p, n);
        raw[n] = '\0';
        char *seg = evhttp_uridecode(raw, 0, &len);
        if (!seg || strlen(seg) != len) {
            free(seg);
            admin_reply_error(r, 400, "BadRequest", "the path has a NUL byte");
            return false;
        }
        r->segments[r->segment_count++] = seg;
        p += n;
        if (!*p)
            break;
    }
    return true;
}

static bool admin_req_parse_query(struct admin_req *r, const char *query)
{
    if (!(r->query = calloc(1, sizeof *r->query)))
        abort();
    TAILQ_INIT(r->query);
    if (query && evhttp_parse_query_str(query, r->query) != 0) {
        admin_reply_error(r, 400, "BadRequest", "malformed query string");
        return false;
    }
    return true;
}

static void admin_handle(struct evhttp_request *req, void *arg)
{
    struct admin_req *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->h = arg;
    r->req = req;
    r->method = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    log_path_set(r, path && *path ? path : "/");
    if (!admin_authorized(r) || !admin_req_parse_query(r, evhttp_uri_get_query(uri)) ||
        !admin_req_parse_path(r, path ? path : "/"))
        return;
    admin_dispatch(r);
}

/* ---- the listener ---- */

struct admin_http *admin_http_new(const struct sesame_config *cfg, struct store *store,
                                  struct auth_failures *failures, struct event_base *base, int fd)
{
    struct admin_http *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->cfg = cfg;
    h->failures = failures;
    h->store = store;
    h->base = base;
    h->conn = store_conn_open(store);
    h->http = evhttp_new(base);
    if (!h->conn || !h->http) {
        admin_http_free(h);
        return NULL;
    }
    evhttp_set_max_body_size(h->http, ADMIN_MAX_BODY_BYTES);
    evhttp_set_max_headers_size(h->http, 64 * 1024);
    evhttp_set_timeout(h->http, (int)cfg->api_idle_timeout_s);
    /* Every method reaches admin_handle, which answers 405 where libevent would say 501. */
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(h->http, "application/json");
    evhttp_set_gencb(h->http, admin_handle, h);
    if (!(h->socket = evhttp_accept_socket_with_handle(h->http, fd))) {
        admin_http_free(h);
        return NULL;
    }
    return h;
}

void admin_http_stop_accepting(struct admin_http *h)
{
    if (h && h->socket)
        evhttp_del_accept_socket(h->http, h->socket);
    if (h)
        h->socket = NULL;
}

void admin_http_free(struct admin_http *h)
{
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    store_conn_close(h->conn);
    free(h);
}
