/* XML replies: the 2010-12-01 namespace on success and error (DECISIONS 3), or SNS's
 * 2010-03-31 one for its actions (DECISIONS 28); RequestId in ResponseMetadata or directly
 * under ErrorResponse, and x-amzn-RequestId on every reply. */
#include "api/api_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_call_free(struct api_call *call);

struct api_error_kind {
    const char *code;
    int status;
    bool receiver; /* Type Receiver: the service's fault, not the caller's */
};

static const struct api_error_kind error_kinds[] = {
    {"MessageRejected", 400, false},
    {"IncompleteSignature", 400, false},
    {"InternalFailure", 500, true},
    {"InvalidAction", 400, false},
    {"InvalidClientTokenId", 403, false},
    {"InvalidParameterCombination", 400, false},
    {"InvalidParameterValue", 400, false},
    {"InvalidQueryParameter", 400, false},
    {"MalformedQueryString", 404, false},
    {"MissingAction", 400, false},
    {"MissingAuthenticationToken", 403, false},
    {"MissingParameter", 400, false},
    {"OptInRequired", 403, false},
    {"RequestExpired", 400, false},
    {"ServiceUnavailable", 503, true},
    {"Throttling", 400, false},
    {"SignatureDoesNotMatch", 403, false},
    {"AccessDenied", 403, false},
    {"ValidationError", 400, false},
    {"LimitExceeded", 400, false},
    {"RequestEntityTooLarge", 413, false},
    /* SNS's own (botocore's sns model) */
    {"NotFound", 404, false},
    {"InvalidParameter", 400, false},
    {"AuthorizationError", 403, false},
    {"SubscriptionLimitExceeded", 403, false},
    {"InternalError", 500, true},
};

static const struct api_error_kind *error_kind(const char *code)
{
    for (size_t i = 0; i < sizeof error_kinds / sizeof error_kinds[0]; i++)
        if (!strcmp(error_kinds[i].code, code))
            return &error_kinds[i];
    return &error_kinds[2]; /* InternalFailure */
}

int api_error_status(const char *code)
{
    return error_kind(code)->status;
}

void xml_escape(struct buf *b, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        case '\r':
            buf_puts(b, "&#13;"); /* a literal CR would be normalized away by XML parsers */
            break;
        default:
            buf_append(b, p, 1);
        }
    }
}

void xml_element(struct buf *b, const char *name, const char *text)
{
    buf_printf(b, "<%s>", name);
    xml_escape(b, text);
    buf_printf(b, "</%s>", name);
}

static void api_send(struct api_call *call, int status, const char *reason)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(call->req);
    evhttp_add_header(h, "Content-Type", "text/xml");
    evhttp_add_header(h, "x-amzn-RequestId", call->request_id);
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, call->out.data, call->out.len);
    evhttp_send_reply(call->req, status, reason, body);
    evbuffer_free(body);
    api_call_free(call);
}

static const char *api_namespace(const struct api_call *call)
{
    return call->service == API_SNS ? API_SNS_NAMESPACE : API_NAMESPACE;
}

void api_reply_begin(struct api_call *call)
{
    buf_reset(&call->out);
    buf_printf(&call->out, "<%sResponse xmlns=\"%s\">", call->action, api_namespace(call));
}

void api_reply_finish(struct api_call *call)
{
    buf_printf(&call->out,
               "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>",
               call->request_id, call->action);
    api_send(call, 200, "OK");
}

void api_reply_error(struct api_call *call, const char *code, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (call->service == API_SNS && !strcmp(code, "InternalFailure"))
        code = "InternalError"; /* SNS's name for it */
    const struct api_error_kind *k = error_kind(code);
    /* Logged once, here, without secrets: the message never holds one. */
    log_info("api %s %s: %s %s", call->request_id, call->action ? call->action : "-", code,
             message);
    buf_reset(&call->out);
    buf_printf(&call->out, "<ErrorResponse xmlns=\"%s\"><Error>", api_namespace(call));
    xml_element(&call->out, "Type", k->receiver ? "Receiver" : "Sender");
    xml_element(&call->out, "Code", code);
    xml_element(&call->out, "Message", message);
    buf_printf(&call->out, "</Error><RequestId>%s</RequestId></ErrorResponse>", call->request_id);
    api_send(call, k->status, code);
}

void api_reply_missing(struct api_call *call, const char *member)
{
    api_reply_error(call, "ValidationError",
                    "Value null at '%s' failed to satisfy constraint: Member must not be null",
                    member);
}

void api_reply_sns_invalid(struct api_call *call, const char *what)
{
    api_reply_error(call, "InvalidParameter", "Invalid parameter: %s", what);
}
