/* The capture endpoint (delivery.mode = capture): GET /_aws/ses lists the accepted
 * messages in LocalStack's shape, filtered by id and email (the Source); DELETE forgets
 * them (all, or one id). Loopback listeners answer without credentials; elsewhere the
 * admin token is required as a bearer token. */
#include "api/api_internal.h"
#include "mail/mail.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct capture_clear {
    struct evhttp_request *req;
    char id[80];
    bool all;
};

static void capture_send(struct evhttp_request *req, int code, const char *reason,
                         struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, reason, body);
}

static void capture_error(struct evhttp_request *req, int code, const char *reason,
                          const char *message)
{
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_printf(body, "{\"error\":\"%s\"}", message);
    capture_send(req, code, reason, body);
    evbuffer_free(body);
}

static bool capture_authorized(struct api_thread *t, struct evhttp_request *req, bool loopback)
{
    if (loopback)
        return true;
    const char *token = t->sh->cfg.admin_token;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    size_t n = strlen(token);
    return n > 0 && auth && !strncmp(auth, "Bearer ", 7) && strlen(auth + 7) == n &&
           CRYPTO_memcmp(auth + 7, token, n) == 0;
}

struct capture_list {
    struct evbuffer *body;
    int count;
    const char *email; /* filter: the entry's Source as given, or its bare address */
};

static bool capture_matches(json_t *m, const char *email)
{
    const char *source = json_string_value(json_object_get(m, "Source"));
    char bare[400];
    if (!email)
        return true;
    if (!source)
        return false;
    return !strcmp(source, email) ||
           (mail_mailbox_address(source, bare, sizeof bare) && !strcmp(bare, email));
}

/* Raw messages are stored once, as their bytes; their RawData is added here, as text, or
 * as base64 when the bytes are not UTF-8 (8-bit content). */
static void capture_emit(const char *meta, const char *data, size_t data_len, void *ctx)
{
    struct capture_list *l = ctx;
    json_t *m = json_loads(meta, 0, NULL);
    if (!m)
        return;
    if (!capture_matches(m, l->email)) {
        json_decref(m);
        return;
    }
    if (json_is_true(json_object_get(m, "Raw"))) {
        json_object_del(m, "Raw");
        json_t *raw = json_stringn(data, data_len);
        if (!raw) {
            char *b64 = malloc(data_len / 3 * 4 + 5);
            if (!b64)
                abort();
            core_base64_encode((const unsigned char *)data, data_len, b64);
            raw = json_string(b64);
            json_object_set_new(m, "RawDataEncoding", json_string("base64"));
            free(b64);
        }
        json_object_set_new(m, "RawData", raw);
    }
    char *text = json_dumps(m, JSON_COMPACT);
    evbuffer_add_printf(l->body, "%s%s", l->count++ ? "," : "", text);
    free(text);
    json_decref(m);
}

static int capture_clear_write(struct store_conn *c, void *ctx)
{
    struct capture_clear *cc = ctx;
    return store_capture_clear(c, cc->all ? NULL : cc->id) == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

static void capture_clear_done(int status, void *ctx)
{
    struct capture_clear *cc = ctx;
    if (status != STORE_OK)
        capture_error(cc->req, 500, "Internal Server Error", "store failure");
    else
        evhttp_send_reply(cc->req, 204, "No Content", NULL);
    free(cc);
}

void api_capture_handle(struct api_thread *t, struct evhttp_request *req, const char *query,
                        bool loopback)
{
    if (!capture_authorized(t, req, loopback))
        return capture_error(req, 403, "Forbidden", "admin token required");
    struct evkeyvalq params;
    TAILQ_INIT(&params);
    if (query && evhttp_parse_query_str(query, &params) != 0) {
        evhttp_clear_headers(&params);
        return capture_error(req, 400, "Bad Request", "malformed query string");
    }
    const char *id = evhttp_find_header(&params, "id");
    const char *email = evhttp_find_header(&params, "email");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_DELETE) {
        struct capture_clear *cc = calloc(1, sizeof *cc);
        if (!cc)
            abort();
        cc->req = req;
        cc->all = !id;
        core_strlcpy(cc->id, id ? id : "", sizeof cc->id);
        store_submit(t->sh->store, t->base, capture_clear_write, capture_clear_done, cc);
    } else if (cmd == EVHTTP_REQ_GET) {
        struct capture_list l = {evbuffer_new(), 0, email};
        evbuffer_add_printf(l.body, "{\"messages\":[");
        int rc = store_capture_list(t->conn, id, capture_emit, &l);
        evbuffer_add_printf(l.body, "]}");
        if (rc == STORE_OK)
            capture_send(req, 200, "OK", l.body);
        else
            capture_error(req, 500, "Internal Server Error", "store failure");
        evbuffer_free(l.body);
    } else {
        capture_error(req, 405, "Method Not Allowed", "GET or DELETE");
    }
    evhttp_clear_headers(&params);
}
