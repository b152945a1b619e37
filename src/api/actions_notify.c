/* SES notification settings (spec 20 §5.2–5.4, DECISIONS 29): SetIdentityNotificationTopic,
 * SetIdentityFeedbackForwardingEnabled, GetIdentityNotificationAttributes. Bounces and
 * complaints always keep a channel: forwarding goes off only while both topics are set,
 * and clearing one of them turns it back on and tells the account's contact (Q13). The
 * checks run on the writer, so the answer matches what is stored. */
#include "api/api_internal.h"
#include "feedback/feedback.h"
#include "mail/mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_UNVERIFIED "Invalid identity. Must be a verified email address or domain."

struct notify_write {
    struct api_call *call;
    struct feedback *fb; /* NULL: nothing is published (no feedback module) */
    struct feedback_outgoing out;
    char identity[STORE_IDENTITY_LEN];
    const char *type;          /* Bounce, Complaint or Delivery (SetIdentityNotificationTopic) */
    char topic[STORE_ARN_LEN]; /* "" clears */
    bool forwarding;           /* SetIdentityFeedbackForwardingEnabled */
    bool turned_on;            /* clearing a topic turned forwarding back on */
    char error[STORE_ARN_LEN + 128]; /* InvalidParameterValue's text; "" when done */
};

static struct notify_write *notify_write_new(struct api_call *call, const char *identity)
{
    struct notify_write *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->call = call;
    w->fb = call->t->sh->fb;
    feedback_outgoing_init(&w->out);
    core_strlcpy(w->identity, identity, sizeof w->identity);
    mail_identity_normalize(w->identity);
    return w;
}

/* The identity's settings (the defaults when it has none), once it is known to be
 * verified (spec 20 §5.2.4); otherwise w->error says why not. */
static int notify_settings_get(struct store_conn *c, struct notify_write *w, struct store_notify *n)
{
    struct api_call *call = w->call;
    struct store_identity id;
    int rc = store_identity_get(c, call->account.id, call->region, w->identity, &id);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (rc == STORE_NOT_FOUND || strcmp(id.status, "Success")) {
        core_strlcpy(w->error, NOTIFY_UNVERIFIED, sizeof w->error);
        return STORE_OK;
    }
    rc = store_notify_get(c, call->account.id, call->region, id.identity, n);
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

static void notify_write_done(int status, void *ctx)
{
    struct notify_write *w = ctx;
    struct api_call *call = w->call;
    struct feedback *fb = w->fb;
    if (status < 0) {
        api_reply_error(call, "InternalFailure", "The request could not be stored.");
    } else if (w->error[0]) {
        api_reply_error(call, "InvalidParameterValue", "%s", w->error);
    } else {
        if (w->turned_on)
            log_info("notifications: forwarding turned back on for %s in %s (account %s): the %s "
                     "topic was cleared",
                     w->identity, call->region, call->account.id, w->type);
        api_reply_begin(call);
        buf_printf(&call->out, "<%sResult/>", call->action);
        api_reply_finish(call);
    }
    if (fb)
        feedback_after(fb, &w->out, status >= 0);
    free(w);
}

/* ---- SetIdentityNotificationTopic ---- */

static char *notify_slot(struct store_notify *n, const char *type)
{
    if (!strcmp(type, "Bounce"))
        return n->bounce_topic;
    if (!strcmp(type, "Complaint"))
        return n->complaint_topic;
    return n->delivery_topic;
}

/* The topic must still exist: it may have been deleted since the request was checked. */
static int notify_topic_check(struct store_conn *c, struct notify_write *w)
{
    struct store_topic t;
    int rc = store_topic_get(c, w->topic, &t);
    if (rc == STORE_NOT_FOUND)
        snprintf(w->error, sizeof w->error, "Invalid SNS topic ARN: %s. The topic does not exist.",
                 w->topic);
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

/* Attaching publishes AmazonSnsSubscriptionSucceeded to the topic (spec 20 §5.2.7). */
static int notify_publish_attached(struct store_conn *c, struct notify_write *w,
                                   const struct store_notify *n)
{
    char *json = feedback_json_subscription_succeeded(w->topic, w->type, n->identity);
    if (!json)
        return STORE_ERROR;
    int rc = feedback_publish(w->fb, c, w->topic, NULL, json, &w->out);
    free(json);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR;
}

static int notify_topic_write(struct store_conn *c, void *ctx)
{
    struct notify_write *w = ctx;
    struct store_notify n;
    int rc = notify_settings_get(c, w, &n);
    if (rc == STORE_OK && !w->error[0] && w->topic[0])
        rc = notify_topic_check(c, w);
    if (rc != STORE_OK || w->error[0])
        return rc;
    core_strlcpy(notify_slot(&n, w->type), w->topic, STORE_ARN_LEN);
    if (!w->topic[0] && strcmp(w->type, "Delivery") && !n.forwarding)
        n.forwarding = w->turned_on = true; /* bounces and complaints keep a channel (Q13) */
    if (store_notify_put(c, &n) != STORE_OK)
        return STORE_ERROR;
    if (w->fb && w->topic[0] && notify_publish_attached(c, w, &n) != STORE_OK)
        return STORE_ERROR;
    if (w->fb && w->turned_on) {
        char why[64];
        snprintf(why, sizeof why, "the %s topic was cleared", w->type);
        return feedback_forwarding_notice(w->fb, c, &n, why, &w->out);
    }
    return STORE_OK;
}

static const char *notify_type(const char *name)
{
    static const char *const types[] = {"Bounce", "Complaint", "Delivery"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, types[i]))
            return types[i];
    return NULL;
}

/* A topic of this account in this region (spec 20 §5.2.5); its existence is checked on
 * the writer. */
static bool notify_topic_valid(struct api_call *call, const char *arn)
{
    struct api_sns_arn parts;
    if (api_sns_arn_parse(arn, &parts) && !strcmp(parts.region, call->region) &&
        !strcmp(parts.account_id, call->account.id) && strlen(arn) < STORE_ARN_LEN)
        return true;
    api_reply_error(call, "InvalidParameterValue",
                    "Invalid SNS topic ARN: %s. It must name a topic of this account in region "
                    "%s.",
                    arn, call->region);
    return false;
}

void action_set_identity_notification_topic(struct api_call *call)
{
    const char *identity = query_get(&call->params, "Identity");
    const char *type = query_get(&call->params, "NotificationType");
    const char *topic = query_get(&call->params, "SnsTopic");
    if (!identity)
        return api_reply_missing(call, "identity");
    if (!type)
        return api_reply_missing(call, "notificationType");
    if (!notify_type(type)) /* the API model's enum, checked as SES checks it */
        return api_reply_error(call, "ValidationError",
                               "1 validation error detected: Value '%.64s' at 'notificationType' "
                               "failed to satisfy constraint: Member must satisfy enum value set: "
                               "[Delivery, Complaint, Bounce]",
                               type);
    if (topic && *topic && !notify_topic_valid(call, topic))
        return;
    struct notify_write *w = notify_write_new(call, identity);
    w->type = notify_type(type);
    core_strlcpy(w->topic, topic ? topic : "", sizeof w->topic);
    store_submit(call->t->sh->store, call->t->base, notify_topic_write, notify_write_done, w);
}

/* ---- SetIdentityFeedbackForwardingEnabled ---- */

static int notify_forwarding_write(struct store_conn *c, void *ctx)
{
    struct notify_write *w = ctx;
    struct store_notify n;
    int rc = notify_settings_get(c, w, &n);
    if (rc != STORE_OK || w->error[0])
        return rc;
    if (!w->forwarding && (!n.bounce_topic[0] || !n.complaint_topic[0])) {
        core_strlcpy(w->error, "Feedback notification topic not set.", sizeof w->error);
        return STORE_OK; /* spec 20 §5.2.3 */
    }
    n.forwarding = w->forwarding;
    return store_notify_put(c, &n);
}

void action_set_identity_feedback_forwarding_enabled(struct api_call *call)
{
    const char *identity = query_get(&call->params, "Identity");
    const char *enabled = query_get(&call->params, "ForwardingEnabled");
    if (!identity)
        return api_reply_missing(call, "identity");
    if (!enabled)
        return api_reply_missing(call, "forwardingEnabled");
    if (core_strcasecmp(enabled, "true") && core_strcasecmp(enabled, "false"))
        return api_reply_error(call, "InvalidParameterValue",
                               "ForwardingEnabled must be true or false.");
    struct notify_write *w = notify_write_new(call, identity);
    w->forwarding = !core_strcasecmp(enabled, "true");
    store_submit(call->t->sh->store, call->t->base, notify_forwarding_write, notify_write_done, w);
}

/* ---- GetIdentityNotificationAttributes ---- */

/* Known identities only (Q7); topics that are unset are left out (spec 20 §5.4.3). */
static int notify_entry(struct api_call *call, const char *name)
{
    struct store_identity id;
    struct store_notify n;
    struct store_conn *c = call->t->conn;
    int rc = store_identity_get(c, call->account.id, call->region, name, &id);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_OK : rc;
    if (store_notify_get(c, call->account.id, call->region, id.identity, &n) == STORE_ERROR)
        return STORE_ERROR;
    buf_puts(&call->out, "<entry>");
    xml_element(&call->out, "key", id.identity);
    buf_puts(&call->out, "<value>");
    if (n.bounce_topic[0])
        xml_element(&call->out, "BounceTopic", n.bounce_topic);
    if (n.complaint_topic[0])
        xml_element(&call->out, "ComplaintTopic", n.complaint_topic);
    if (n.delivery_topic[0])
        xml_element(&call->out, "DeliveryTopic", n.delivery_topic);
    xml_element(&call->out, "ForwardingEnabled", n.forwarding ? "true" : "false");
    buf_puts(&call->out, "</value></entry>");
    return STORE_OK;
}

void action_get_identity_notification_attributes(struct api_call *call)
{
    api_identity_attributes(call, "NotificationAttributes", notify_entry);
}
