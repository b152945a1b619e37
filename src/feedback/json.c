/* The notification JSON (spec 20 §5.5): one object per notification, of one type, for one
 * message. Built with jansson, written compact; key order follows the spec's examples. */
#include "feedback/feedback.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void feedback_iso8601_ms(int64_t ms, char *out, size_t outlen)
{
    int64_t secs = ms / 1000, milli = ms % 1000;
    if (milli < 0) /* floor, for times before the epoch */
        secs--, milli += 1000;
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, outlen, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
}

/* A JSON string that never fails on content: jansson refuses invalid UTF-8, so such a
 * value is written with every non-ASCII byte as '?'. NULL is written as "". */
static json_t *json_text(const char *s)
{
    if (!s)
        s = "";
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *json_time(int64_t ms)
{
    char ts[32];
    feedback_iso8601_ms(ms, ts, sizeof ts);
    return json_string(ts);
}

/* Sets key to value (a new reference); a NULL value fails, so one check at the end of a
 * builder covers every allocation. */
static int set(json_t *obj, const char *key, json_t *value)
{
    return json_object_set_new(obj, key, value);
}

static json_t *mail_object(const struct feedback_mail *mail)
{
    json_t *m = json_object(), *dest = json_array();
    int rc = !m || !dest;
    if (!rc) {
        rc |= set(m, "timestamp", json_time(mail->timestamp_ms));
        rc |= set(m, "messageId", json_text(mail->message_id));
        rc |= set(m, "source", json_text(mail->source));
        for (int i = 0; i < mail->destination_count; i++)
            rc |= json_array_append_new(dest, json_text(mail->destination[i]));
        rc |= set(m, "destination", dest);
        dest = NULL;
    }
    json_decref(dest);
    if (rc) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The time the ISP sent the report, or when the event happened when there was none. */
static int64_t report_time(const struct store_event *e)
{
    return e->report_ms ? e->report_ms : e->created_ms;
}

/* complaintFeedbackType takes only RFC 5965's registered values (spec 20 §5.5.6); a
 * report's other Feedback-Type (opt-out, an extension) is "other". */
static const char *feedback_type(const char *type)
{
    static const char *const known[] = {"abuse",    "auth-failure", "fraud",
                                        "not-spam", "other",        "virus"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!core_strcasecmp(type, known[i]))
            return known[i];
    return "other";
}

static json_t *bounced_recipient(const struct store_event *e)
{
    json_t *r = json_object();
    if (!r)
        return NULL;
    /* a DSN's Final-Recipient when there was one: the forwarded-to address that failed */
    const char *address = e->final_recipient[0] ? e->final_recipient : e->recipient;
    int rc = set(r, "emailAddress", json_text(address));
    if (e->status[0]) { /* the DSN's fields, present only when there is a DSN */
        rc |= set(r, "status", json_text(e->status));
        rc |= set(r, "action", json_text(e->action[0] ? e->action : "failed"));
        if (e->diagnostic[0])
            rc |= set(r, "diagnosticCode", json_text(e->diagnostic));
    }
    if (rc) {
        json_decref(r);
        return NULL;
    }
    return r;
}

static json_t *bounce_object(const struct store_event *const *events, int count)
{
    const struct store_event *first = events[0];
    json_t *b = json_object(), *list = json_array();
    int rc = !b || !list;
    if (!rc) {
        rc |= set(b, "bounceType", json_text(first->bounce_type));
        rc |= set(b, "bounceSubType", json_text(first->bounce_subtype));
        for (int i = 0; i < count; i++)
            rc |= json_array_append_new(list, bounced_recipient(events[i]));
        rc |= set(b, "bouncedRecipients", list);
        list = NULL;
        rc |= set(b, "timestamp", json_time(report_time(first)));
        rc |= set(b, "feedbackId", json_text(first->feedback_id));
        if (first->reporting_mta[0])
            rc |= set(b, "reportingMTA", json_text(first->reporting_mta));
    }
    json_decref(list);
    if (rc) {
        json_decref(b);
        return NULL;
    }
    return b;
}

static json_t *complaint_object(const struct store_event *const *events, int count)
{
    const struct store_event *first = events[0];
    json_t *c = json_object(), *list = json_array();
    int rc = !c || !list;
    if (!rc) {
        for (int i = 0; i < count; i++) {
            json_t *r = json_object();
            rc |= !r || set(r, "emailAddress", json_text(events[i]->recipient));
            rc |= json_array_append_new(list, r);
        }
        rc |= set(c, "complainedRecipients", list);
        list = NULL;
        rc |= set(c, "timestamp", json_time(report_time(first)));
        rc |= set(c, "feedbackId", json_text(first->feedback_id));
        /* The feedback report's fields, present only when there was a report. */
        if (first->user_agent[0])
            rc |= set(c, "userAgent", json_text(first->user_agent));
        if (first->feedback_type[0])
            rc |= set(c, "complaintFeedbackType", json_text(feedback_type(first->feedback_type)));
        if (first->arrival_ms)
            rc |= set(c, "arrivalDate", json_time(first->arrival_ms));
    }
    json_decref(list);
    if (rc) {
        json_decref(c);
        return NULL;
    }
    return c;
}

static json_t *delivery_object(const struct store_event *const *events, int count)
{
    const struct store_event *first = events[0];
    json_t *d = json_object(), *list = json_array();
    int rc = !d || !list;
    if (!rc) {
        rc |= set(d, "timestamp", json_time(first->created_ms));
        rc |= set(d, "processingTimeMillis", json_integer(first->processing_ms));
        for (int i = 0; i < count; i++)
            rc |= json_array_append_new(list, json_text(events[i]->recipient));
        rc |= set(d, "recipients", list);
        list = NULL;
        rc |= set(d, "smtpResponse", json_text(first->smtp_response));
        rc |= set(d, "reportingMTA", json_text(first->reporting_mta)); /* a host, no type */
    }
    json_decref(list);
    if (rc) {
        json_decref(d);
        return NULL;
    }
    return d;
}

char *feedback_json_notification(const struct feedback_mail *mail,
                                 const struct store_event *const *events, int count)
{
    if (count <= 0)
        return NULL;
    const char *type = events[0]->type, *key;
    json_t *(*build)(const struct store_event *const *, int);
    if (!strcmp(type, "Bounce"))
        key = "bounce", build = bounce_object;
    else if (!strcmp(type, "Complaint"))
        key = "complaint", build = complaint_object;
    else if (!strcmp(type, "Delivery"))
        key = "delivery", build = delivery_object;
    else
        return NULL; /* AutoResponse events are forwarded, never published */
    json_t *root = json_object();
    if (!root)
        return NULL;
    int rc = set(root, "notificationType", json_string(type));
    rc |= set(root, key, build(events, count));
    rc |= set(root, "mail", mail_object(mail));
    char *text = rc ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

char *feedback_json_subscription_succeeded(const char *topic_arn, const char *type,
                                           const char *identity)
{
    static const char fmt[] = "You have successfully subscribed your Amazon SNS topic '%s' to "
                              "receive '%s' notifications from Amazon SES for identity '%s'.";
    int n = snprintf(NULL, 0, fmt, topic_arn, type, identity);
    char *message = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!message)
        return NULL;
    snprintf(message, (size_t)n + 1, fmt, topic_arn, type, identity);
    json_t *root = json_object();
    char *text = NULL;
    if (root && !set(root, "notificationType", json_string("AmazonSnsSubscriptionSucceeded")) &&
        !set(root, "message", json_text(message)))
        text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    free(message);
    return text;
}
