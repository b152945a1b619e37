/* SNS-compatible topics (DECISIONS 28): CreateTopic, DeleteTopic, ListTopics,
 * GetTopicAttributes, Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions and
 * ListSubscriptionsByTopic, answered in SNS's 2010-03-31 shapes and error codes. A topic
 * belongs to one account in one region; writes go through the store's writer, and what
 * they publish (confirmations) is handed over after the commit. */
#include "api/api_internal.h"
#include "feedback/feedback.h"
#include "mail/mail.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SNS_PAGE 100                  /* ListTopics and the ListSubscriptions* page size, as SNS */
#define SNS_RESEND_MS (5 * 60 * 1000) /* a pending subscription's confirmation, again */
#define SNS_TOKEN_BYTES 32            /* the confirmation token: 64 hex digits */
#define SNS_NAME_MAX 256              /* topic names: 1-256 of [A-Za-z0-9_-] */
#define SNS_PENDING "PendingConfirmation" /* a pending subscription's ARN in lists */
/* Confirmation emails go out as Sesame's own mail, outside the account's quota and its
 * sandbox; so an account may send only so many (notifications.confirmation_emails) within
 * SNS's 3-day confirmation window, or Subscribe would send mail for it to anyone. */
#define SNS_CONFIRM_WINDOW_MS (3LL * 24 * 3600 * 1000)

/* ---- ARNs ---- */

static bool sns_name_valid(const char *name, size_t len)
{
    if (len < 1 || len > SNS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Copies the field up to the next ':' into out; returns what follows the ':', or NULL. */
static const char *arn_field(const char *p, char *out, size_t outlen)
{
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : 0;
    if (!colon || len == 0 || len >= outlen)
        return NULL;
    memcpy(out, p, len);
    out[len] = '\0';
    return colon + 1;
}

bool api_sns_arn_parse(const char *arn, struct api_sns_arn *out)
{
    static const char prefix[] = "arn:aws:sns:";
    if (strncmp(arn, prefix, sizeof prefix - 1))
        return false;
    const char *p = arn_field(arn + sizeof prefix - 1, out->region, sizeof out->region);
    if (p)
        p = arn_field(p, out->account_id, sizeof out->account_id);
    if (!p || strspn(out->account_id, "0123456789") != strlen(out->account_id))
        return false;
    size_t len = strlen(p);
    if (!sns_name_valid(p, len))
        return false;
    memcpy(out->name, p, len + 1);
    return true;
}

bool api_sns_subscription_arn_parse(const char *arn, struct api_sns_arn *out, char *topic_arn)
{
    const char *id = strrchr(arn, ':');
    size_t topic_len = id ? (size_t)(id - arn) : 0;
    if (!id || topic_len >= STORE_ARN_LEN || !id[1] || strlen(id + 1) > 36 ||
        strspn(id + 1, "0123456789abcdef-") != strlen(id + 1))
        return false;
    memcpy(topic_arn, arn, topic_len);
    topic_arn[topic_len] = '\0';
    return api_sns_arn_parse(topic_arn, out);
}

/* False when the ARN would not fit the store's column. */
static bool sns_topic_arn(const char *region, const char *account_id, const char *name, char *out)
{
    int n = snprintf(out, STORE_ARN_LEN, "arn:aws:sns:%s:%s:%s", region, account_id, name);
    return n > 0 && n < STORE_ARN_LEN;
}

/* ---- checks shared by the actions (each false after replying) ---- */

static bool sns_required(struct api_call *call, const char *name, const char **out)
{
    *out = query_get(&call->params, name);
    if (*out && **out)
        return true;
    api_reply_sns_invalid(call, name);
    return false;
}

static void sns_reply_denied(struct api_call *call, const char *resource)
{
    bool user = call->key.user[0] != '\0';
    api_reply_error(call, "AuthorizationError",
                    "User: arn:aws:iam::%s:%s%s is not authorized to perform: SNS:%s on "
                    "resource: %s",
                    call->account.id, user ? "user/" : "root", user ? call->key.user : "",
                    call->action, resource);
}

/* A topic ARN of the caller's region and account (another account's topic: its policy,
 * owner only, refuses the caller). */
static bool sns_arn_of_caller(struct api_call *call, const char *arn, struct api_sns_arn *parts)
{
    if (!api_sns_arn_parse(arn, parts) || strcmp(parts->region, call->region)) {
        api_reply_sns_invalid(call, "TopicArn");
        return false;
    }
    if (strcmp(parts->account_id, call->account.id)) {
        sns_reply_denied(call, arn);
        return false;
    }
    return true;
}

/* The caller's topic named by the TopicArn parameter. */
static bool sns_topic_of_caller(struct api_call *call, struct store_topic *topic)
{
    const char *arn;
    struct api_sns_arn parts;
    if (!sns_required(call, "TopicArn", &arn) || !sns_arn_of_caller(call, arn, &parts))
        return false;
    int rc = store_topic_get(call->t->conn, arn, topic);
    if (rc == STORE_OK)
        return true;
    if (rc == STORE_NOT_FOUND)
        api_reply_error(call, "NotFound", "Topic does not exist");
    else
        api_reply_error(call, "InternalFailure", "The topic could not be read.");
    return false;
}

/* NextToken: the last ARN of the previous page, base64-encoded. */
static bool sns_next_token(struct api_call *call, char *after, size_t afterlen)
{
    const char *v = query_get(&call->params, "NextToken");
    after[0] = '\0';
    if (!v || !*v)
        return true;
    size_t len = strlen(v);
    long n =
        len <= (afterlen - 1) / 3 * 4 ? core_base64_decode(v, len, (unsigned char *)after) : -1;
    if (n <= 0 || memchr(after, '\0', (size_t)n)) {
        api_reply_sns_invalid(call, "NextToken");
        return false;
    }
    after[n] = '\0';
    return true;
}

static void sns_next_token_element(struct buf *out, const char *last)
{
    char token[(STORE_ARN_LEN + 40) * 2];
    core_base64_encode((const unsigned char *)last, strlen(last), token);
    xml_element(out, "NextToken", token);
}

/* ---- writes ---- */

/* One SNS write: the action fills what it asks for, the write what it found, and reply
 * answers once the transaction is durable. */
struct sns_write {
    struct api_call *call;
    struct feedback *fb; /* NULL: nothing is published (no feedback module) */
    struct feedback_outgoing out;
    struct store_topic topic;
    struct store_subscription sub;
    bool display_given;
    bool return_arn;
    bool authenticate_unsubscribe; /* ConfirmSubscription's AuthenticateOnUnsubscribe */
    int confirmation_emails;       /* Subscribe: notifications.confirmation_emails */
    const char *error_code;        /* set by the write: refused, nothing changed */
    char error[STORE_ARN_LEN + 128];
    void (*reply)(struct sns_write *w);
};

static struct sns_write *sns_write_new(struct api_call *call, void (*reply)(struct sns_write *))
{
    struct sns_write *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->call = call;
    w->fb = call->t->sh->fb;
    w->reply = reply;
    feedback_outgoing_init(&w->out);
    return w;
}

static int sns_write_refuse(struct sns_write *w, const char *code, const char *message)
{
    w->error_code = code;
    core_strlcpy(w->error, message, sizeof w->error);
    return STORE_OK;
}

static void sns_write_done(int status, void *ctx)
{
    struct sns_write *w = ctx;
    struct feedback *fb = w->fb;
    if (status < 0)
        api_reply_error(w->call, "InternalFailure", "The request could not be stored.");
    else if (w->error_code)
        api_reply_error(w->call, w->error_code, "%s", w->error);
    else
        w->reply(w);
    if (fb)
        feedback_after(fb, &w->out, status >= 0);
    free(w);
}

static void sns_submit(struct sns_write *w, store_write_fn write)
{
    struct api_thread *t = w->call->t;
    store_submit(t->sh->store, t->base, write, sns_write_done, w);
}

/* ---- CreateTopic ---- */

/* Attributes.entry.N.key/value: DisplayName is the only one a topic keeps. */
static bool sns_create_attributes(struct api_call *call, struct sns_write *w)
{
    static const char prefix[] = "Attributes.entry.";
    for (size_t i = 0; i < call->params.count; i++) {
        const char *name = call->params.items[i].name;
        size_t len = strlen(name);
        if (strncmp(name, prefix, sizeof prefix - 1) || len < 4 || len > 64 ||
            strcmp(name + len - 4, ".key"))
            continue;
        char value_name[72];
        snprintf(value_name, sizeof value_name, "%.*s.value", (int)(len - 4), name);
        const char *key = call->params.items[i].value;
        const char *value = query_get(&call->params, value_name);
        if (strcmp(key, "DisplayName")) {
            char what[160];
            snprintf(what, sizeof what, "Attributes Reason: %.64s is not supported", key);
            api_reply_sns_invalid(call, what);
            return false;
        }
        if (!core_strlcpy(w->topic.display_name, value ? value : "",
                          sizeof w->topic.display_name)) {
            api_reply_sns_invalid(call, "Attributes Reason: DisplayName is too long");
            return false;
        }
        /* XML has no place for control characters: such a name could never be listed. */
        for (const unsigned char *p = (const unsigned char *)w->topic.display_name; *p; p++)
            if (*p < ' ' || *p == 0x7f) {
                api_reply_sns_invalid(call, "Attributes Reason: DisplayName may not hold "
                                            "control characters");
                return false;
            }
        w->display_given = true;
    }
    return true;
}

static int sns_create_write(struct store_conn *c, void *ctx)
{
    struct sns_write *w = ctx;
    w->topic.created_ms = core_now_ms();
    int rc = store_topic_insert(c, &w->topic);
    if (rc != STORE_EXISTS)
        return rc == STORE_OK ? STORE_OK : STORE_ERROR;
    struct store_topic cur; /* the same name again: the same topic (idempotent) */
    if (store_topic_get(c, w->topic.arn, &cur) != STORE_OK)
        return STORE_ERROR;
    if (w->display_given && strcmp(cur.display_name, w->topic.display_name))
        return sns_write_refuse(w, "InvalidParameter",
                                "Invalid parameter: Attributes Reason: Topic already exists with "
                                "different attributes");
    return STORE_OK;
}

static void sns_create_reply(struct sns_write *w)
{
    struct api_call *call = w->call;
    api_reply_begin(call);
    buf_puts(&call->out, "<CreateTopicResult>");
    xml_element(&call->out, "TopicArn", w->topic.arn);
    buf_puts(&call->out, "</CreateTopicResult>");
    api_reply_finish(call);
}

void action_sns_create_topic(struct api_call *call)
{
    const char *name;
    if (!sns_required(call, "Name", &name))
        return;
    if (!sns_name_valid(name, strlen(name)))
        return api_reply_sns_invalid(call, "Topic Name");
    struct sns_write *w = sns_write_new(call, sns_create_reply);
    struct store_topic *t = &w->topic;
    if (!sns_topic_arn(call->region, call->account.id, name, t->arn)) {
        free(w);
        return api_reply_sns_invalid(call, "Topic Name");
    }
    if (!sns_create_attributes(call, w))
        return free(w);
    core_strlcpy(t->account_id, call->account.id, sizeof t->account_id);
    core_strlcpy(t->region, call->region, sizeof t->region);
    core_strlcpy(t->name, name, sizeof t->name);
    sns_submit(w, sns_create_write);
}

/* ---- DeleteTopic ---- */

static int sns_delete_write(struct store_conn *c, void *ctx)
{
    struct sns_write *w = ctx;
    int rc = store_topic_delete(c, w->topic.arn);
    if (rc == STORE_OK)
        log_info("sns: topic %s deleted", w->topic.arn);
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK; /* deleting nothing succeeds, as in SNS */
}

static void sns_empty_reply(struct sns_write *w)
{
    api_reply_begin(w->call);
    api_reply_finish(w->call);
}

void action_sns_delete_topic(struct api_call *call)
{
    const char *arn;
    struct api_sns_arn parts;
    if (!sns_required(call, "TopicArn", &arn) || !sns_arn_of_caller(call, arn, &parts))
        return;
    struct sns_write *w = sns_write_new(call, sns_empty_reply);
    core_strlcpy(w->topic.arn, arn, sizeof w->topic.arn);
    sns_submit(w, sns_delete_write);
}

/* ---- ListTopics ---- */

struct sns_list {
    struct buf *out;
    int count;
    const char *prefix; /* subscriptions: the region's ARN prefix; others are skipped */
    bool past_prefix;
    char last[STORE_ARN_LEN + 40];
};

static void sns_topic_emit(const struct store_topic *t, void *ctx)
{
    struct sns_list *l = ctx;
    if (++l->count > SNS_PAGE)
        return; /* one past the page: there is a next page */
    buf_puts(l->out, "<member>");
    xml_element(l->out, "TopicArn", t->arn);
    buf_puts(l->out, "</member>");
    core_strlcpy(l->last, t->arn, sizeof l->last);
}

void action_sns_list_topics(struct api_call *call)
{
    char after[STORE_ARN_LEN + 40];
    if (!sns_next_token(call, after, sizeof after))
        return;
    struct sns_list l = {.out = &call->out};
    api_reply_begin(call);
    buf_puts(&call->out, "<ListTopicsResult><Topics>");
    if (store_topic_list(call->t->conn, call->account.id, call->region, after, SNS_PAGE + 1,
                         sns_topic_emit, &l) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The topics could not be read.");
    buf_puts(&call->out, "</Topics>");
    if (l.count > SNS_PAGE)
        sns_next_token_element(&call->out, l.last);
    buf_puts(&call->out, "</ListTopicsResult>");
    api_reply_finish(call);
}

/* ---- GetTopicAttributes ---- */

struct sns_counts {
    int64_t confirmed, pending;
    char last[STORE_ARN_LEN + 40];
    int seen;
};

static void sns_count_one(const struct store_subscription *s, void *ctx)
{
    struct sns_counts *n = ctx;
    if (s->confirmed)
        n->confirmed++;
    else
        n->pending++;
    n->seen++;
    core_strlcpy(n->last, s->arn, sizeof n->last);
}

static int sns_count_subscriptions(struct api_call *call, const struct store_topic *t,
                                   struct sns_counts *n)
{
    memset(n, 0, sizeof *n);
    for (;;) {
        char after[sizeof n->last];
        memcpy(after, n->last, sizeof after);
        n->seen = 0;
        if (store_subscription_list(call->t->conn, t->account_id, t->arn, after, 1000,
                                    sns_count_one, n) != STORE_OK)
            return STORE_ERROR;
        if (n->seen < 1000)
            return STORE_OK;
    }
}

static void sns_attribute(struct buf *out, const char *key, const char *value)
{
    buf_puts(out, "<entry>");
    xml_element(out, "key", key);
    xml_element(out, "value", value);
    buf_puts(out, "</entry>");
}

/* The policy a new SNS topic gets: the owner's account may do everything with it. */
static void sns_default_policy(const struct store_topic *t, struct buf *out)
{
    buf_printf(out,
               "{\"Version\":\"2008-10-17\",\"Id\":\"__default_policy_ID\",\"Statement\":[{"
               "\"Sid\":\"__default_statement_ID\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":"
               "\"*\"},\"Action\":[\"SNS:GetTopicAttributes\",\"SNS:SetTopicAttributes\","
               "\"SNS:AddPermission\",\"SNS:RemovePermission\",\"SNS:DeleteTopic\","
               "\"SNS:Subscribe\",\"SNS:ListSubscriptionsByTopic\",\"SNS:Publish\"],"
               "\"Resource\":\"%s\",\"Condition\":{\"StringEquals\":{\"AWS:SourceOwner\":\"%s\"}}"
               "}]}",
               t->arn, t->account_id);
}

/* What the notifier really does with HTTP(S) deliveries, in SNS's delivery-policy words. */
static void sns_delivery_policy(const struct sesame_config *cfg, struct buf *out)
{
    buf_printf(out,
               "{\"http\":{\"defaultHealthyRetryPolicy\":{\"minDelayTarget\":%lld,"
               "\"maxDelayTarget\":%lld,\"numRetries\":%d,\"numMaxDelayRetries\":0,"
               "\"numNoDelayRetries\":0,\"numMinDelayRetries\":0,\"backoffFunction\":"
               "\"exponential\"},\"disableSubscriptionOverrides\":false,"
               "\"defaultRequestPolicy\":{\"headerContentType\":\"text/plain; charset=UTF-8\"}}}",
               (long long)cfg->notify_retry_initial_s, (long long)cfg->notify_retry_max_s,
               cfg->notify_max_attempts > 0 ? cfg->notify_max_attempts - 1 : 0);
}

void action_sns_get_topic_attributes(struct api_call *call)
{
    struct store_topic t;
    struct sns_counts n;
    if (!sns_topic_of_caller(call, &t))
        return;
    if (sns_count_subscriptions(call, &t, &n) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The subscriptions could not be read.");
    const struct sesame_config *cfg = &call->t->sh->cfg;
    char number[32];
    struct buf json;
    buf_init(&json);
    api_reply_begin(call);
    buf_puts(&call->out, "<GetTopicAttributesResult><Attributes>");
    sns_default_policy(&t, &json);
    sns_attribute(&call->out, "Policy", buf_cstr(&json));
    sns_attribute(&call->out, "Owner", t.account_id);
    snprintf(number, sizeof number, "%d", cfg->notify_signature_version);
    sns_attribute(&call->out, "SignatureVersion", number);
    snprintf(number, sizeof number, "%lld", (long long)n.pending);
    sns_attribute(&call->out, "SubscriptionsPending", number);
    sns_attribute(&call->out, "TopicArn", t.arn);
    buf_reset(&json);
    sns_delivery_policy(cfg, &json);
    sns_attribute(&call->out, "EffectiveDeliveryPolicy", buf_cstr(&json));
    snprintf(number, sizeof number, "%lld", (long long)n.confirmed);
    sns_attribute(&call->out, "SubscriptionsConfirmed", number);
    sns_attribute(&call->out, "DisplayName", t.display_name);
    sns_attribute(&call->out, "SubscriptionsDeleted", "0");
    buf_puts(&call->out, "</Attributes></GetTopicAttributesResult>");
    buf_free(&json);
    api_reply_finish(call);
}

/* ---- Subscribe ---- */

static bool sns_url_valid(const char *url, const char *scheme)
{
    size_t n = strlen(scheme);
    if (strncasecmp(url, scheme, n) || !url[n] || url[n] == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* The protocol (lower-cased into out) and an endpoint that fits it. */
static bool sns_subscribe_target(struct api_call *call, struct store_subscription *s)
{
    const char *protocol, *endpoint;
    if (!sns_required(call, "Protocol", &protocol))
        return false;
    static const char *const known[] = {"http", "https", "email", "email-json"};
    size_t i = 0;
    while (i < 4 && core_strcasecmp(protocol, known[i]))
        i++;
    if (i == 4 || !core_strlcpy(s->protocol, known[i], sizeof s->protocol)) {
        char what[128];
        snprintf(what, sizeof what, "Amazon SNS does not support this protocol string: %.64s",
                 protocol);
        api_reply_sns_invalid(call, what);
        return false;
    }
    if (!sns_required(call, "Endpoint", &endpoint))
        return false;
    bool ok =
        strlen(endpoint) < sizeof s->endpoint && (i == 0   ? sns_url_valid(endpoint, "http://")
                                                  : i == 1 ? sns_url_valid(endpoint, "https://")
                                                           : mail_address_valid(endpoint));
    if (!ok) {
        api_reply_sns_invalid(call, i < 2 ? "Endpoint" : "Email address");
        return false;
    }
    core_strlcpy(s->endpoint, endpoint, sizeof s->endpoint);
    return true;
}

/* Whether a confirmation may go to s's endpoint now: STORE_OK with *send set or not, or
 * STORE_ERROR. Not within SNS_RESEND_MS of the topic's last one to the same endpoint,
 * whatever became of that subscription (Unsubscribe and Subscribe again cannot flood an
 * address or a URL); an email not beyond the account's max_emails in the
 * window, whatever became of those topics (*full then). Noted when it may go. */
static int sns_confirmation_allowed(struct store_conn *c, const struct store_subscription *s,
                                    int max_emails, bool *send, bool *full)
{
    int64_t now = core_now_ms(), since = now - SNS_CONFIRM_WINDOW_MS;
    bool email = !strncmp(s->protocol, "email", 5);
    struct store_confirmations sent;
    if (store_confirmations_get(c, s->account_id, s->topic_arn, s->endpoint, since, &sent) !=
        STORE_OK)
        return STORE_ERROR;
    *full = email && sent.emails >= max_emails;
    *send = !*full && (!sent.last_endpoint_ms || now - sent.last_endpoint_ms >= SNS_RESEND_MS);
    if (*send && store_confirmation_note(c, s->account_id, s->topic_arn, s->endpoint, email, now,
                                         since) != STORE_OK)
        return STORE_ERROR;
    return STORE_OK;
}

static int sns_subscribe_write(struct store_conn *c, void *ctx)
{
    struct sns_write *w = ctx;
    struct store_subscription *s = &w->sub;
    struct store_topic t;
    int rc = store_topic_get(c, s->topic_arn, &t);
    if (rc == STORE_NOT_FOUND)
        return sns_write_refuse(w, "NotFound", "Topic does not exist"); /* deleted meanwhile */
    if (rc != STORE_OK)
        return STORE_ERROR;
    struct store_subscription cur;
    rc = store_subscription_find(c, s->topic_arn, s->protocol, s->endpoint, &cur);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (rc == STORE_OK && cur.confirmed) { /* subscribed already: the same subscription */
        *s = cur;
        return STORE_OK;
    }
    bool send, full;
    if (sns_confirmation_allowed(c, s, w->confirmation_emails, &send, &full) != STORE_OK)
        return STORE_ERROR;
    if (rc == STORE_OK) { /* pending: asked again, when the limits allow */
        *s = cur;
        return send && w->fb ? feedback_confirmation(w->fb, c, s, &w->out) : STORE_OK;
    }
    if (full)
        return sns_write_refuse(w, "SubscriptionLimitExceeded",
                                "Too many email subscriptions are awaiting confirmation");
    char id[37];
    unsigned char raw[SNS_TOKEN_BYTES];
    core_uuid4(id);
    snprintf(s->arn, sizeof s->arn, "%s:%s", s->topic_arn, id);
    if (core_random_bytes(raw, sizeof raw) != 0)
        return STORE_ERROR;
    core_hex_encode(raw, sizeof raw, s->token);
    s->created_ms = core_now_ms();
    if (store_subscription_put(c, s) != STORE_OK)
        return STORE_ERROR;
    return send && w->fb ? feedback_confirmation(w->fb, c, s, &w->out) : STORE_OK;
}

static void sns_subscribe_reply(struct sns_write *w)
{
    struct api_call *call = w->call;
    log_info("sns: %s subscription %s (%s)", w->sub.confirmed ? "confirmed" : "pending", w->sub.arn,
             w->sub.protocol);
    api_reply_begin(call);
    buf_puts(&call->out, "<SubscribeResult>");
    xml_element(&call->out, "SubscriptionArn",
                w->sub.confirmed || w->return_arn ? w->sub.arn : "pending confirmation");
    buf_puts(&call->out, "</SubscribeResult>");
    api_reply_finish(call);
}

void action_sns_subscribe(struct api_call *call)
{
    struct store_topic t;
    if (!sns_topic_of_caller(call, &t))
        return;
    struct sns_write *w = sns_write_new(call, sns_subscribe_reply);
    w->confirmation_emails = call->t->sh->cfg.notify_confirmation_emails;
    struct store_subscription *s = &w->sub;
    if (!sns_subscribe_target(call, s))
        return free(w);
    for (size_t i = 0; i < call->params.count; i++)
        if (!strncmp(call->params.items[i].name, "Attributes.", 11)) {
            free(w);
            return api_reply_sns_invalid(call, "Attributes Reason: subscription attributes are "
                                               "not supported");
        }
    const char *ret = query_get(&call->params, "ReturnSubscriptionArn");
    w->return_arn = ret && !core_strcasecmp(ret, "true");
    core_strlcpy(s->topic_arn, t.arn, sizeof s->topic_arn);
    core_strlcpy(s->account_id, t.account_id, sizeof s->account_id);
    core_strlcpy(s->region, t.region, sizeof s->region);
    sns_submit(w, sns_subscribe_write);
}

/* ---- ConfirmSubscription ---- */

/* The topic's subscription with this token: STORE_OK, STORE_NOT_FOUND or STORE_ERROR. The
 * store finds it through the topic's index; the tokens are compared again here in
 * constant time. */
static int sns_subscription_by_token(struct store_conn *c, const struct store_topic *t,
                                     const char *token, struct store_subscription *out)
{
    size_t len = strlen(token);
    if (!len || len >= sizeof out->token)
        return STORE_NOT_FOUND;
    int rc = store_subscription_by_token(c, t->arn, token, out);
    if (rc != STORE_OK)
        return rc;
    bool same = strlen(out->token) == len && !CRYPTO_memcmp(out->token, token, len) &&
                !strcmp(out->account_id, t->account_id);
    return same ? STORE_OK : STORE_NOT_FOUND;
}

static int sns_confirm_write(struct store_conn *c, void *ctx)
{
    struct sns_write *w = ctx;
    char token[sizeof w->sub.token]; /* the one read before: w->sub is refilled */
    memcpy(token, w->sub.token, sizeof token);
    int rc = sns_subscription_by_token(c, &w->topic, token, &w->sub);
    if (rc == STORE_NOT_FOUND)
        return sns_write_refuse(w, "InvalidParameter", "Invalid token");
    if (rc != STORE_OK)
        return rc;
    w->sub.confirmed = true;
    w->sub.authenticate_unsubscribe |= w->authenticate_unsubscribe;
    return store_subscription_put(c, &w->sub);
}

static void sns_confirm_reply(struct sns_write *w)
{
    struct api_call *call = w->call;
    log_info("sns: subscription %s confirmed", w->sub.arn);
    api_reply_begin(call);
    buf_puts(&call->out, "<ConfirmSubscriptionResult>");
    xml_element(&call->out, "SubscriptionArn", w->sub.arn);
    buf_puts(&call->out, "</ConfirmSubscriptionResult>");
    api_reply_finish(call);
}

/* The topic and the token's subscription, read before any write: a wrong token never
 * reaches the writer. False after replying. */
static bool sns_confirm_read(struct api_call *call, const char *arn, const char *token,
                             struct sns_write *w)
{
    struct store_conn *c = call->t->conn;
    int rc = call->region[0] ? store_topic_get(c, arn, &w->topic) : STORE_NOT_FOUND;
    if (rc == STORE_NOT_FOUND) {
        api_reply_error(call, "NotFound", "Topic does not exist");
        return false;
    }
    if (rc == STORE_OK)
        rc = sns_subscription_by_token(c, &w->topic, token, &w->sub);
    if (rc == STORE_NOT_FOUND)
        api_reply_error(call, "InvalidParameter", "Invalid token");
    else if (rc != STORE_OK)
        api_reply_error(call, "InternalFailure", "The subscription could not be read.");
    return rc == STORE_OK;
}

/* Anyone holding the token may confirm (it was sent to the endpoint): the topic may be
 * another account's, but must be in the region the request is for. */
void action_sns_confirm_subscription(struct api_call *call)
{
    const char *arn, *token;
    struct api_sns_arn parts;
    if (!sns_required(call, "TopicArn", &arn) || !sns_required(call, "Token", &token))
        return;
    if (!api_sns_arn_parse(arn, &parts) || (!call->anonymous && strcmp(parts.region, call->region)))
        return api_reply_sns_invalid(call, "TopicArn");
    /* SNS heeds AuthenticateOnUnsubscribe only on a signed request */
    const char *authenticate = query_get(&call->params, "AuthenticateOnUnsubscribe");
    if (authenticate && core_strcasecmp(authenticate, "true") &&
        core_strcasecmp(authenticate, "false"))
        return api_reply_sns_invalid(call, "AuthenticateOnUnsubscribe");
    struct sns_write *w = sns_write_new(call, sns_confirm_reply);
    w->authenticate_unsubscribe =
        !call->anonymous && authenticate && !core_strcasecmp(authenticate, "true");
    if (!sns_confirm_read(call, arn, token, w))
        return free(w);
    if (w->sub.confirmed && w->sub.authenticate_unsubscribe >= w->authenticate_unsubscribe) {
        /* again: the same answer, nothing to write */
        sns_confirm_reply(w);
        return free(w);
    }
    sns_submit(w, sns_confirm_write);
}

/* ---- Unsubscribe ---- */

static int sns_unsubscribe_write(struct store_conn *c, void *ctx)
{
    struct sns_write *w = ctx;
    int rc = store_subscription_delete(c, w->sub.arn);
    if (rc == STORE_OK)
        log_info("sns: subscription %s deleted", w->sub.arn);
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* Signed: the topic's owner only. Unsigned (UnsubscribeURL): the ARN, sent only to the
 * endpoint, is the credential, as in SNS. */
void action_sns_unsubscribe(struct api_call *call)
{
    const char *arn;
    struct api_sns_arn parts;
    char topic_arn[STORE_ARN_LEN];
    if (!sns_required(call, "SubscriptionArn", &arn))
        return;
    if (!api_sns_subscription_arn_parse(arn, &parts, topic_arn) ||
        (!call->anonymous && strcmp(parts.region, call->region)))
        return api_reply_sns_invalid(call, "SubscriptionArn");
    if (!call->anonymous && strcmp(parts.account_id, call->account.id))
        return sns_reply_denied(call, arn);
    struct sns_write *w = sns_write_new(call, sns_empty_reply);
    int rc =
        call->region[0] ? store_subscription_get(call->t->conn, arn, &w->sub) : STORE_NOT_FOUND;
    if (rc != STORE_OK) {
        free(w);
        if (rc == STORE_NOT_FOUND)
            return api_reply_error(call, "NotFound", "Subscription does not exist");
        return api_reply_error(call, "InternalFailure", "The subscription could not be read.");
    }
    if (call->anonymous && w->sub.authenticate_unsubscribe) {
        free(w);
        return api_reply_error(call, "AuthorizationError",
                               "This subscription was confirmed with AuthenticateOnUnsubscribe: "
                               "only a signed request may unsubscribe it");
    }
    sns_submit(w, sns_unsubscribe_write);
}

/* ---- ListSubscriptions, ListSubscriptionsByTopic ---- */

static void sns_subscription_emit(const struct store_subscription *s, void *ctx)
{
    struct sns_list *l = ctx;
    if (l->prefix && strncmp(s->arn, l->prefix, strlen(l->prefix))) {
        l->past_prefix = true; /* another region's: ARNs sort by region, so the page ends */
        return;
    }
    if (l->past_prefix || ++l->count > SNS_PAGE)
        return;
    buf_puts(l->out, "<member>");
    xml_element(l->out, "TopicArn", s->topic_arn);
    xml_element(l->out, "Protocol", s->protocol);
    xml_element(l->out, "SubscriptionArn", s->confirmed ? s->arn : SNS_PENDING);
    xml_element(l->out, "Owner", s->account_id);
    xml_element(l->out, "Endpoint", s->endpoint);
    buf_puts(l->out, "</member>");
    core_strlcpy(l->last, s->arn, sizeof l->last);
}

static void sns_subscriptions_reply(struct api_call *call, const char *account_id,
                                    const char *topic_arn, const char *prefix, const char *after)
{
    struct sns_list l = {.out = &call->out, .prefix = prefix};
    api_reply_begin(call);
    buf_printf(&call->out, "<%sResult><Subscriptions>", call->action);
    if (store_subscription_list(call->t->conn, account_id, topic_arn, after, SNS_PAGE + 1,
                                sns_subscription_emit, &l) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The subscriptions could not be read.");
    buf_puts(&call->out, "</Subscriptions>");
    if (l.count > SNS_PAGE)
        sns_next_token_element(&call->out, l.last);
    buf_printf(&call->out, "</%sResult>", call->action);
    api_reply_finish(call);
}

void action_sns_list_subscriptions_by_topic(struct api_call *call)
{
    struct store_topic t;
    char after[STORE_ARN_LEN + 40];
    if (!sns_topic_of_caller(call, &t) || !sns_next_token(call, after, sizeof after))
        return;
    sns_subscriptions_reply(call, t.account_id, t.arn, NULL, after);
}

/* The account's subscriptions in this region: their ARNs all start with the region's
 * prefix, so the listing starts there and ends at the first ARN without it. */
void action_sns_list_subscriptions(struct api_call *call)
{
    char after[STORE_ARN_LEN + 40], prefix[STORE_ARN_LEN];
    if (!sns_next_token(call, after, sizeof after))
        return;
    snprintf(prefix, sizeof prefix, "arn:aws:sns:%s:%s:", call->region, call->account.id);
    if (!after[0])
        core_strlcpy(after, prefix, sizeof after);
    else if (strncmp(after, prefix, strlen(prefix)))
        return api_reply_sns_invalid(call, "NextToken");
    sns_subscriptions_reply(call, call->account.id, NULL, prefix, after);
}
