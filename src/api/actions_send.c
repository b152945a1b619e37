/* SendEmail and SendRawEmail: parameters in, the accept pipeline (send/), MessageId out
 * once the message is durable. Tags are checked first, as SES does (DECISIONS 9c). */
#include "api/api_internal.h"
#include "send/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TAGS 50

static const char *send_error_code(enum send_error e)
{
    switch (e) {
    case SEND_REJECTED:
        return "MessageRejected";
    case SEND_THROTTLED:
        return "Throttling";
    case SEND_INVALID:
        return "InvalidParameterValue";
    default:
        return "InternalFailure";
    }
}

static void send_reply(const struct send_result *res, void *arg)
{
    struct api_call *call = arg;
    if (res->error != SEND_OK)
        return api_reply_error(call, send_error_code(res->error), "%s", res->message);
    api_reply_begin(call);
    buf_printf(&call->out, "<%sResult>", call->action);
    xml_element(&call->out, "MessageId", res->message_id);
    buf_printf(&call->out, "</%sResult>", call->action);
    api_reply_finish(call);
}

/* ---- tags (DECISIONS 9c) ---- */

static bool tag_chars_ok(const char *s, const char *extra)
{
    for (; *s; s++) {
        char c = *s;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr(extra, c))
            return false;
    }
    return true;
}

/* SES's message for a tag's name or value (DECISIONS 9c), or NULL when it is valid. */
static const char *tag_field_problem(const char *kind, const char *v, const char *extra,
                                     const char *allowed, char *text, size_t len)
{
    if (!v || !*v)
        snprintf(text, len, "The tag %s must be specified.", kind);
    else if (strlen(v) > 255)
        snprintf(text, len, "Tag %s cannot exceed 255 characters.", kind);
    else if (!tag_chars_ok(v, extra))
        snprintf(text, len,
                 "Invalid tag %s <%.300s>: only alphanumeric ASCII characters, %s are allowed.",
                 kind, v, allowed);
    else
        return NULL;
    return text;
}

/* N of "Tags.member.N.<field>", 0 when the name is not a tag field. */
static long tag_index(const char *name, const char **field)
{
    if (strncmp(name, "Tags.member.", 12))
        return 0;
    char *end;
    long n = strtol(name + 12, &end, 10);
    if (n < 1 || *end != '.')
        return 0;
    if (n > MAX_TAGS)
        return -1; /* a tag, but past the limit: refused, never skipped */
    *field = end + 1;
    return n;
}

static bool tags_valid(struct api_call *call)
{
    const char *names[MAX_TAGS + 1] = {0}, *values[MAX_TAGS + 1] = {0};
    bool present[MAX_TAGS + 1] = {0};
    for (size_t i = 0; i < call->params.count; i++) {
        const char *field;
        long n = tag_index(call->params.items[i].name, &field);
        if (!n)
            continue;
        if (n < 0) {
            api_reply_error(call, "InvalidParameterValue", "At most %d tags may be given.",
                            MAX_TAGS);
            return false;
        }
        present[n] = true;
        if (!strcmp(field, "Name"))
            names[n] = call->params.items[i].value;
        else if (!strcmp(field, "Value"))
            values[n] = call->params.items[i].value;
    }
    for (int n = 1; n <= MAX_TAGS; n++) {
        if (!present[n])
            continue;
        char text[600];
        const char *problem =
            tag_field_problem("name", names[n], "_-", "'_',  '-'", text, sizeof text);
        if (!problem)
            problem = tag_field_problem("value", values[n], "_-.@", "'_',  '-' , '.', '@'", text,
                                        sizeof text);
        if (problem) {
            api_reply_error(call, "InvalidParameterValue", "%s", problem);
            return false;
        }
    }
    return true;
}

/* ---- the sender ---- */

struct send_params {
    struct store_account_region limits;
    struct send_sender who;
};

static bool send_sender_init(struct api_call *call, struct send_params *p)
{
    if (api_cache_limits(call->t, call->account.id, call->region, &p->limits) != STORE_OK) {
        api_reply_error(call, "InternalFailure", "The account's limits could not be read.");
        return false;
    }
    p->who = (struct send_sender){call->t->conn, &call->account, call->region, &p->limits,
                                  call->t->identities};
    return true;
}

/* One list parameter, at most max_recipients + 1 members: one more than allowed is
 * enough for the pipeline to refuse with SES's message. */
static bool collect(struct api_call *call, const char *prefix, const char **out, int *count)
{
    *count = query_list(&call->params, prefix, out, call->t->sh->cfg.max_recipients + 1);
    if (*count >= 0)
        return true;
    api_reply_error(call, "MessageRejected", "Recipient count exceeds %d.",
                    call->t->sh->cfg.max_recipients);
    return false;
}

void action_send_email(struct api_call *call)
{
    struct send_formatted f = {0};
    f.source = query_get(&call->params, "Source");
    f.subject = query_get(&call->params, "Message.Subject.Data");
    f.text = query_get(&call->params, "Message.Body.Text.Data");
    f.html = query_get(&call->params, "Message.Body.Html.Data");
    if (!f.source)
        return api_reply_missing(call, "source");
    if (!f.subject)
        return api_reply_missing(call, "message.subject");
    if (!f.text && !f.html)
        return api_reply_missing(call, "message.body");
    if (!tags_valid(call))
        return;
    f.return_path = query_get(&call->params, "ReturnPath");
    f.subject_charset = query_get(&call->params, "Message.Subject.Charset");
    f.text_charset = query_get(&call->params, "Message.Body.Text.Charset");
    f.html_charset = query_get(&call->params, "Message.Body.Html.Charset");
    size_t max = (size_t)call->t->sh->cfg.max_recipients + 1;
    const char **to = malloc(4 * max * sizeof *to);
    if (!to)
        abort();
    const char **cc = to + max, **bcc = cc + max, **reply = bcc + max;
    struct send_params p;
    if (collect(call, "Destination.ToAddresses", to, &f.to_count) &&
        collect(call, "Destination.CcAddresses", cc, &f.cc_count) &&
        collect(call, "Destination.BccAddresses", bcc, &f.bcc_count) &&
        collect(call, "ReplyToAddresses", reply, &f.reply_to_count) && send_sender_init(call, &p)) {
        f.to = to, f.cc = cc, f.bcc = bcc, f.reply_to = reply;
        send_formatted(call->t->sh->send, &p.who, &f, call->t->base, send_reply, call);
    }
    free(to);
}

/* RawMessage.Data: base64, possibly wrapped in lines by the client. */
static unsigned char *raw_decode(const char *b64, size_t *out_len)
{
    size_t len = strlen(b64), n = 0;
    char *clean = malloc(len + 1);
    unsigned char *raw = malloc(len / 4 * 3 + 3);
    if (!clean || !raw)
        abort();
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", b64[i]))
            clean[n++] = b64[i];
    long got = core_base64_decode(clean, n, raw);
    free(clean);
    if (got < 0) {
        free(raw);
        return NULL;
    }
    *out_len = (size_t)got;
    return raw;
}

void action_send_raw_email(struct api_call *call)
{
    const char *data = query_get(&call->params, "RawMessage.Data");
    if (!data)
        return api_reply_missing(call, "rawMessage.data");
    if (!tags_valid(call))
        return;
    struct send_raw r = {0};
    unsigned char *raw = raw_decode(data, &r.len);
    if (!raw)
        return api_reply_error(call, "InvalidParameterValue",
                               "RawMessage.Data is not valid base64.");
    const char **dest = malloc(((size_t)call->t->sh->cfg.max_recipients + 1) * sizeof *dest);
    if (!dest)
        abort();
    struct send_params p;
    r.data = (const char *)raw;
    r.source = query_get(&call->params, "Source");
    if (collect(call, "Destinations", dest, &r.destination_count) && send_sender_init(call, &p)) {
        r.destinations = dest;
        send_raw(call->t->sh->send, &p.who, &r, call->t->base, send_reply, call);
    }
    free(dest);
    free(raw);
}
