/* The HTTP(S) side of the Query API: one evhttp per listener per I/O thread, request
 * intake (parameters from the query string and form body), authentication, dispatch. */
#include "api/api_internal.h"
#include "auth/auth.h"
#include "feedback/feedback.h"
#include "net/net.h"
#include "send/send.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#define API_MAX_HEADERS 64

void api_call_free(struct api_call *call)
{
    query_params_free(&call->params);
    buf_free(&call->out);
    free(call);
}

struct api_shared *api_shared_new(const struct sesame_config *cfg, struct store *store,
                                  struct send_shared *send, struct auth_failures *failures)
{
    struct api_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->cfg = *cfg;
    sh->store = store;
    pthread_mutex_init(&sh->throttle_lock, NULL);
    sh->send = send;
    sh->failures = failures;
    return sh;
}

void api_shared_use_feedback(struct api_shared *sh, struct feedback *fb)
{
    sh->fb = fb;
}

void api_shared_free(struct api_shared *sh)
{
    if (!sh)
        return;
    api_throttle_free_all(sh);
    pthread_mutex_destroy(&sh->throttle_lock);
    free(sh);
}

/* ---- parameters ---- */

static bool api_form_body(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    return ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

/* Query string and form body together; false after replying with the error. */
static bool api_call_parse(struct api_call *call, const char *query, const char *body,
                           size_t body_len)
{
    char bad[128] = "";
    enum query_error err =
        query_parse(&call->params, query ? query : "", query ? strlen(query) : 0, bad, sizeof bad);
    if (err == QUERY_OK && evhttp_request_get_command(call->req) == EVHTTP_REQ_POST &&
        api_form_body(call->req))
        err = query_parse(&call->params, body, body_len, bad, sizeof bad);
    switch (err) {
    case QUERY_OK:
        return true;
    case QUERY_MALFORMED:
        api_reply_error(call, "MalformedQueryString", "The query string is malformed near '%s'.",
                        bad);
        break;
    case QUERY_DUPLICATE:
        api_reply_error(call, "InvalidQueryParameter", "Parameter %s is given more than once.",
                        bad);
        break;
    case QUERY_NOT_UTF8:
        api_reply_error(call, "InvalidParameterValue", "The value of %s is not valid UTF-8.", bad);
        break;
    case QUERY_TOO_MANY:
        api_reply_error(call, "InvalidQueryParameter", "Too many parameters.");
        break;
    }
    return false;
}

/* ---- authentication ---- */

static const char *api_secret_lookup(void *ctx, const char *key_id)
{
    struct api_call *call = ctx;
    int rc = api_cache_key(call->t, key_id, &call->key, &call->account);
    call->store_failed = rc == STORE_ERROR;
    if (rc != STORE_OK || !call->key.active)
        return NULL;
    return call->key.secret;
}

static const char *auth_error_code(enum auth_status st)
{
    switch (st) {
    case AUTH_MISSING_TOKEN:
        return "MissingAuthenticationToken";
    case AUTH_INCOMPLETE:
        return "IncompleteSignature";
    case AUTH_UNKNOWN_KEY:
        return "InvalidClientTokenId";
    case AUTH_BAD_SIGNATURE:
        return "SignatureDoesNotMatch";
    case AUTH_EXPIRED:
        return "RequestExpired";
    default:
        return "InternalFailure";
    }
}

/* The service a SigV4 scope names: ses (or email, the endpoint prefix), or sns. */
static bool api_scope_service(const char *name, enum api_service *out)
{
    if (!strcmp(name, "ses") || !strcmp(name, "email"))
        *out = API_SES;
    else if (!strcmp(name, "sns"))
        *out = API_SNS;
    else
        return false;
    return true;
}

static bool api_call_region(struct api_call *call, const struct auth_result *res)
{
    const struct sesame_config *cfg = &call->t->sh->cfg;
    if (!res->region[0]) { /* AWS3 schemes carry no scope: the default region, SES only */
        core_strlcpy(call->region, cfg->regions[0], sizeof call->region);
        return true;
    }
    if (!api_scope_service(res->service, &call->service)) {
        api_reply_error(call, "SignatureDoesNotMatch",
                        "Credential should be scoped to correct service: 'ses' or 'sns'.");
        return false;
    }
    if (!config_has_region(cfg, res->region)) {
        api_reply_error(call, "SignatureDoesNotMatch",
                        "Credential should be scoped to a valid region, not '%s'.", res->region);
        return false;
    }
    core_strlcpy(call->region, res->region, sizeof call->region);
    return true;
}

/* Counts the failure against the client's address; the moment it reaches the limit is
 * logged (each refusal is logged once by the reply itself, never with a secret). */
static void api_auth_failed(struct api_call *call)
{
    const struct sesame_config *cfg = &call->t->sh->cfg;
    int count = auth_failures_record(call->t->sh->failures, call->peer, core_now_ms());
    if (count > 0 && count == cfg->auth_failure_limit)
        log_warn("api: %s failed to authenticate %d times within %llds; refused until the "
                 "window ends",
                 call->peer, cfg->auth_failure_limit, (long long)cfg->auth_failure_window_s);
}

/* SubscribeURL and UnsubscribeURL are opened unsigned, by whoever got the confirmation
 * (DECISIONS 28): the token or the subscription's ARN is the credential. Region and
 * account come from the ARN; the action checks the rest. */
static bool api_call_anonymous(struct api_call *call)
{
    const char *action = query_get(&call->params, "Action");
    if (evhttp_request_get_command(call->req) != EVHTTP_REQ_GET || !action)
        return false;
    struct api_sns_arn arn;
    char topic[STORE_ARN_LEN];
    bool parsed;
    if (!strcmp(action, "ConfirmSubscription")) {
        const char *v = query_get(&call->params, "TopicArn");
        parsed = v && api_sns_arn_parse(v, &arn);
    } else if (!strcmp(action, "Unsubscribe")) {
        const char *v = query_get(&call->params, "SubscriptionArn");
        parsed = v && api_sns_subscription_arn_parse(v, &arn, topic);
    } else {
        return false;
    }
    call->anonymous = true;
    call->service = API_SNS;
    if (parsed && config_has_region(&call->t->sh->cfg, arn.region)) {
        core_strlcpy(call->region, arn.region, sizeof call->region);
        core_strlcpy(call->account.id, arn.account_id, sizeof call->account.id);
    }
    return true;
}

static bool api_call_authenticate(struct api_call *call, const char *path, const char *query,
                                  const unsigned char *body, size_t body_len)
{
    struct auth_header headers[API_MAX_HEADERS];
    size_t n = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(call->req), next)
    {
        if (n < API_MAX_HEADERS)
            headers[n++] = (struct auth_header){kv->key, kv->value};
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(call->req);
    struct auth_request ar = {
        .method = cmd == EVHTTP_REQ_POST ? "POST" : "GET",
        .path = path,
        .query = query,
        .headers = headers,
        .header_count = n,
        .body = body,
        .body_len = body_len,
        .now_s = core_now_ms() / 1000,
        .max_skew_s = call->t->sh->cfg.api_signature_skew_s,
        .key_cache = call->t->keys,
    };
    struct auth_result res;
    memset(&res, 0, sizeof res);
    if (auth_failures_blocked(call->t->sh->failures, call->peer, core_now_ms())) {
        api_reply_error(call, "Throttling",
                        "Too many failed authentication attempts from this address; try again "
                        "later.");
        return false;
    }
    enum auth_status st = auth_verify(&ar, api_secret_lookup, call, &res);
    api_scope_service(res.service, &call->service); /* errors in the caller's namespace */
    if (st == AUTH_MISSING_TOKEN && api_call_anonymous(call))
        return true;
    if (call->store_failed) { /* not the client's fault: neither refused nor counted */
        api_reply_error(call, "InternalFailure", "The access key could not be read.");
        return false;
    }
    if (st == AUTH_UNKNOWN_KEY || st == AUTH_BAD_SIGNATURE)
        api_auth_failed(call); /* guesses; a missing or malformed signature guesses nothing */
    if (st != AUTH_OK) {
        api_reply_error(call, auth_error_code(st), "%s", res.message);
        return false;
    }
    if (!api_call_region(call, &res))
        return false;
    if (call->account.disabled) {
        api_reply_error(call, "OptInRequired",
                        "The AWS Access Key Id needs a subscription for the service.");
        return false;
    }
    return true;
}

/* ---- dispatch ---- */

static const char *api_service_version(enum api_service service)
{
    return service == API_SNS ? "2010-03-31" : "2010-12-01";
}

static bool api_call_check_version(struct api_call *call)
{
    const char *version = query_get(&call->params, "Version");
    if (!version || !strcmp(version, api_service_version(call->service)))
        return true;
    api_reply_error(call, "InvalidAction", "Could not find operation %s for version %s",
                    call->action, version);
    return false;
}

/* Root keys have full access to their account; a user's key what its policies allow
 * (spec 20 §8.5): ses: actions for SES's API, sns: actions for the topics'. */
static bool api_call_authorize(struct api_call *call)
{
    if (call->anonymous || !call->key.user[0])
        return true;
    struct auth_policy *const *policies;
    int count;
    if (api_cache_policies(call->t, call->account.id, call->key.user, &policies, &count) !=
        STORE_OK) {
        api_reply_error(call, "InternalFailure", "The user's policies could not be read.");
        return false;
    }
    const char *agent =
        evhttp_find_header(evhttp_request_get_input_headers(call->req), "User-Agent");
    bool sns = call->service == API_SNS;
    struct auth_policy_request pr = {call->action,  call->peer, call->secure,
                                     core_now_ms(), agent,      sns ? "sns" : "ses"};
    if (auth_policy_evaluate(policies, count, &pr) == AUTH_POLICY_ALLOW)
        return true;
    /* Each service's own words: SNS answers AuthorizationError, SES AccessDenied. */
    api_reply_error(call, sns ? "AuthorizationError" : "AccessDenied",
                    "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s:%s",
                    call->account.id, call->key.user, sns ? "SNS" : "ses", call->action);
    return false;
}

static void api_call_dispatch(struct api_call *call)
{
    const char *action = query_get(&call->params, "Action");
    if (!action || !*action) {
        call->action = NULL;
        api_reply_error(call, "MissingAction", "Missing Action");
        return;
    }
    const struct api_action *a = api_action_find(action);
    if (!a || a->service != call->service) { /* each service sees only its own actions */
        call->action = NULL;
        api_reply_error(call, "InvalidAction", "Could not find operation %s for version %s", action,
                        api_service_version(call->service));
        return;
    }
    call->action = a->name;
    if (!api_call_check_version(call) || !api_call_authorize(call))
        return;
    if (!a->is_send && !call->anonymous && !api_throttle_allow(call->t->sh, call->account.id)) {
        api_reply_error(call, "Throttling", "Rate exceeded");
        return;
    }
    a->run(call);
}

static void api_call_peer(struct api_call *call)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(call->req);
    if (conn)
        evhttp_connection_get_peer(conn, &host, &port);
    core_strlcpy(call->peer, host ? host : "", sizeof call->peer);
}

static void api_handle_query(struct api_thread *t, struct evhttp_request *req, const char *path,
                             const char *query, bool secure)
{
    struct api_call *call = calloc(1, sizeof *call);
    if (!call)
        abort();
    call->t = t;
    call->req = req;
    call->secure = secure;
    api_call_peer(call);
    query_params_init(&call->params);
    buf_init(&call->out);
    core_uuid4(call->request_id);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(in);
    const char *body = body_len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (!api_call_parse(call, query, body, body_len))
        return;
    if (!api_call_authenticate(call, path, query, (const unsigned char *)body, body_len))
        return;
    api_call_dispatch(call);
}

/* ---- the email verification link (DECISIONS 26) ---- */

struct api_link {
    struct api_thread *t;
    struct evhttp_request *req;
    char token[64];
    int outcome; /* 0 verified, 1 unknown or used, 2 expired */
};

static int api_link_write(struct store_conn *c, void *ctx)
{
    struct api_link *l = ctx;
    struct store_email_link link;
    struct store_identity id;
    if (store_email_link_take(c, l->token, &link) != STORE_OK)
        return l->outcome = 1, STORE_OK;
    if (link.expires_ms < core_now_ms())
        return l->outcome = 2, STORE_OK; /* taking it spends it either way */
    if (store_identity_get(c, link.account_id, link.region, link.identity, &id) != STORE_OK)
        return l->outcome = 1, STORE_OK;
    core_strlcpy(id.status, "Success", sizeof id.status);
    id.status_ms = core_now_ms();
    l->outcome = 0;
    log_info("verification: %s verified in %s for account %s", id.identity, id.region,
             id.account_id);
    return store_identity_put(c, &id);
}

static void api_link_done(int status, void *ctx)
{
    struct api_link *l = ctx;
    static const char *pages[] = {
        "Your email address has been verified. You can now send email from it.\n",
        "This verification link is not valid, or has already been used.\n",
        "This verification link has expired. Ask for a new one.\n",
    };
    int code = status != STORE_OK ? 500 : l->outcome == 0 ? 200 : l->outcome == 1 ? 404 : 410;
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "%s", status != STORE_OK ? "Internal error\n" : pages[l->outcome]);
    evhttp_add_header(evhttp_request_get_output_headers(l->req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(l->req, code, code == 200 ? "OK" : "Not verified", body);
    evbuffer_free(body);
    free(l);
}

static void api_handle_link(struct api_thread *t, struct evhttp_request *req, const char *query)
{
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    const char *token = NULL;
    if (query && evhttp_parse_query_str(query, &params) == 0)
        token = evhttp_find_header(&params, "token");
    struct api_link *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    l->t = t;
    l->req = req;
    core_strlcpy(l->token, token ? token : "", sizeof l->token);
    evhttp_clear_headers(&params);
    store_submit(t->sh->store, t->base, api_link_write, api_link_done, l);
}

/* ---- the SNS signing certificate (SigningCertURL) ---- */

static void api_handle_cert(struct api_thread *t, struct evhttp_request *req)
{
    const char *pem = t->sh->fb ? feedback_signing_cert(t->sh->fb) : NULL;
    if (!pem) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, pem, strlen(pem));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/x-x509-ca-cert");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

/* One per evhttp: the thread, and whether the listener is on loopback (the capture
 * endpoint answers there without credentials). */
struct api_listener {
    struct api_thread *t;
    bool loopback;
    bool tls;
};

static void api_handle(struct evhttp_request *req, void *arg)
{
    struct api_listener *l = arg;
    struct api_thread *t = l->t;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    if (!path || !*path)
        path = "/";
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!strcmp(path, "/_aws/ses")) {
        api_capture_handle(t, req, query, l->loopback);
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST) {
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    if (!strcmp(path, "/verify-email")) {
        api_handle_link(t, req, query);
        return;
    }
    if (!strcmp(path, FEEDBACK_CERT_PATH)) {
        api_handle_cert(t, req);
        return;
    }
    if (strcmp(path, "/")) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    api_handle_query(t, req, path, query, l->tls);
}

/* ---- listeners ---- */

static struct bufferevent *api_tls_bev(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new((SSL_CTX *)arg);
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static struct evhttp *api_http_new(struct api_thread *t, int fd, SSL_CTX *tls,
                                   struct evhttp_bound_socket **bound,
                                   struct api_listener **listener)
{
    struct evhttp *http = evhttp_new(t->base);
    *listener = calloc(1, sizeof **listener);
    if (!http || !*listener) {
        if (http)
            evhttp_free(http);
        return NULL;
    }
    (*listener)->t = t;
    (*listener)->tls = tls != NULL;
    (*listener)->loopback =
        net_addr_is_loopback(tls ? t->sh->cfg.api_https_listen : t->sh->cfg.api_http_listen);
    const struct sesame_config *cfg = &t->sh->cfg;
    evhttp_set_max_body_size(http, cfg->api_max_body_bytes);
    evhttp_set_max_headers_size(http, 64 * 1024);
    evhttp_set_timeout(http, (int)cfg->api_idle_timeout_s);
    /* Every method reaches api_handle, which answers 405 where libevent would say 501. */
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(http, "text/xml");
    evhttp_set_gencb(http, api_handle, *listener);
    if (tls)
        evhttp_set_bevcb(http, api_tls_bev, tls);
    if (!(*bound = evhttp_accept_socket_with_handle(http, fd))) {
        evhttp_free(http);
        return NULL;
    }
    return http;
}

struct api_thread *api_thread_new(struct api_shared *sh, struct event_base *base, SSL_CTX *tls,
                                  int http_fd, int https_fd)
{
    struct api_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->sh = sh;
    t->base = base;
    t->tls = tls;
    t->conn = store_conn_open(sh->store);
    t->cache = api_cache_new(sh->cfg.api_cache_ttl_s);
    t->identities = send_identity_cache_new(sh->cfg.api_cache_ttl_s);
    t->keys = auth_key_cache_new();
    if (!t->conn || !t->cache || !t->identities || !t->keys)
        goto fail;
    if (http_fd >= 0 &&
        !(t->http = api_http_new(t, http_fd, NULL, &t->http_socket, &t->http_listener)))
        goto fail;
    if (https_fd >= 0 &&
        !(t->https = api_http_new(t, https_fd, tls, &t->https_socket, &t->https_listener)))
        goto fail;
    return t;
fail:
    api_thread_free(t);
    return NULL;
}

void api_thread_stop_accepting(struct api_thread *t)
{
    if (t->http_socket)
        evhttp_del_accept_socket(t->http, t->http_socket);
    if (t->https_socket)
        evhttp_del_accept_socket(t->https, t->https_socket);
    t->http_socket = t->https_socket = NULL;
}

void api_thread_free(struct api_thread *t)
{
    if (!t)
        return;
    if (t->http)
        evhttp_free(t->http);
    if (t->https)
        evhttp_free(t->https);
    store_conn_close(t->conn);
    api_cache_free(t->cache);
    send_identity_cache_free(t->identities);
    auth_key_cache_free(t->keys);
    free(t->http_listener);
    free(t->https_listener);
    free(t);
}
