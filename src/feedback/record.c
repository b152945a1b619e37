/* What an event causes, decided inside the store writer's transaction so that the event,
 * its SNS deliveries (outbox rows) and its forwarded email commit together or not at all
 * (spec 20 §5.6): a crash never loses a notification of an event that was recorded. */
#include "feedback/feedback_internal.h"
#include "mail/mail.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void feedback_outgoing_init(struct feedback_outgoing *o)
{
    memset(o, 0, sizeof *o);
}

int fb_email_store(struct feedback *fb, struct store_conn *c, struct feedback_outgoing *out,
                   const char *region, const char *from, const char *to, const char *id,
                   struct buf *data)
{
    if (out->count == out->cap) {
        int cap = out->cap ? out->cap * 2 : 4;
        struct feedback_email *e = realloc(out->emails, (size_t)cap * sizeof *e);
        if (!e) {
            buf_free(data);
            return STORE_ERROR;
        }
        out->emails = e;
        out->cap = cap;
    }
    struct send_notice *n = &out->emails[out->count].n;
    memset(n, 0, sizeof *n);
    core_strlcpy(n->id, id, sizeof n->id);
    core_strlcpy(n->region, region, sizeof n->region);
    core_strlcpy(n->from, from, sizeof n->from);
    core_strlcpy(n->to, to, sizeof n->to);
    n->created_ms = core_now_ms();
    n->captured = !strcmp(fb->cfg.delivery_mode, "capture");
    n->data = *data;
    buf_init(data);
    out->count++;
    return send_notice_store(c, n);
}

/* A new email's id, and what every email this module writes shares. */
static struct feedback_compose compose_for(const struct feedback *fb, const char *to, char *id,
                                           size_t idlen)
{
    core_message_id(core_now_ms(), id, idlen);
    return (struct feedback_compose){fb->forward_from,
                                     to,
                                     fb->cfg.hostname,
                                     id,
                                     fb->cfg.message_id_domain,
                                     core_now_ms(),
                                     NULL,
                                     0};
}

/* A plain-text email to `to`, stored in the caller's transaction. */
static int text_email_store(struct feedback *fb, struct store_conn *c,
                            struct feedback_outgoing *out, const char *region, const char *to,
                            const char *subject, const char *text)
{
    char id[80];
    struct feedback_compose comp = compose_for(fb, to, id, sizeof id);
    struct buf mail;
    buf_init(&mail);
    if (feedback_compose_text(&comp, subject, text, &mail) != 0) {
        buf_free(&mail);
        return STORE_ERROR;
    }
    return fb_email_store(fb, c, out, region, fb->forward_from, to, id, &mail);
}

/* ---- the original message, as the notification's mail object needs it ---- */

struct mail_info {
    struct store_message msg;
    char *meta;
    char source[STORE_IDENTITY_LEN];
    char **destination;
    int destination_count, destination_cap;
};

static void destination_add(const struct store_recipient *r, void *ctx)
{
    struct mail_info *mi = ctx;
    if (mi->destination_count == mi->destination_cap) {
        int cap = mi->destination_cap ? mi->destination_cap * 2 : 8;
        char **d = realloc(mi->destination, (size_t)cap * sizeof *d);
        if (!d)
            return;
        mi->destination = d;
        mi->destination_cap = cap;
    }
    char *copy = strdup(r->address);
    if (copy)
        mi->destination[mi->destination_count++] = copy;
}

/* mail.source is the address of the Source (or MAIL FROM) the customer gave (spec 20
 * Q14), which the capture metadata keeps as given ("Name <a@b>" too); the message row's
 * source is where feedback goes. */
static void source_from_meta(struct mail_info *mi)
{
    core_strlcpy(mi->source, mi->msg.source, sizeof mi->source);
    json_t *root = mi->meta ? json_loads(mi->meta, 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(root, "Source"));
    char bare[321]; /* mail_mailbox_address's size */
    if (s && *s && mail_mailbox_address(s, bare, sizeof bare))
        core_strlcpy(mi->source, bare, sizeof mi->source);
    json_decref(root);
}

/* The message's row: enough to decide whether anything is to be published or forwarded
 * (most deliveries: nothing, so nothing more is read for them). */
static int mail_row_load(struct store_conn *c, const char *message_id, struct mail_info *mi)
{
    memset(mi, 0, sizeof *mi);
    return store_message_get(c, message_id, &mi->msg, &mi->meta);
}

/* What the notification's mail object adds: every recipient, the Source as given. */
static int mail_details_load(struct store_conn *c, struct mail_info *mi)
{
    if (store_queue_list(c, mi->msg.id, false, destination_add, mi) != STORE_OK)
        return STORE_ERROR;
    source_from_meta(mi);
    return STORE_OK;
}

static int mail_info_load(struct store_conn *c, const char *message_id, struct mail_info *mi)
{
    int rc = mail_row_load(c, message_id, mi);
    return rc == STORE_OK ? mail_details_load(c, mi) : rc;
}

static void mail_info_free(struct mail_info *mi)
{
    for (int i = 0; i < mi->destination_count; i++)
        free(mi->destination[i]);
    free(mi->destination);
    free(mi->meta);
}

/* ---- SNS ---- */

static const char *topic_for(const struct store_notify *n, const char *type)
{
    if (!strcmp(type, "Bounce"))
        return n->bounce_topic;
    if (!strcmp(type, "Complaint"))
        return n->complaint_topic;
    if (!strcmp(type, "Delivery"))
        return n->delivery_topic;
    return ""; /* auto-replies have no SNS format (spec 20 Q11): email only */
}

/* The topic is gone (deleted, or its owner lost it): it leaves every type of this identity
 * that names it, forwarding comes back on and the account is told (spec 20 §5.2.6). */
static int topic_lost(struct feedback *fb, struct store_conn *c, struct store_notify *n,
                      const char *arn, struct feedback_outgoing *out)
{
    char lost[STORE_ARN_LEN];
    core_strlcpy(lost, arn, sizeof lost);
    /* Forwarding covers bounces and complaints: losing only the Delivery topic leaves it
     * as it was (spec 20 §5.2.6). */
    bool feedback_lost = !strcmp(n->bounce_topic, lost) || !strcmp(n->complaint_topic, lost);
    char *topics[] = {n->bounce_topic, n->complaint_topic, n->delivery_topic};
    for (size_t i = 0; i < sizeof topics / sizeof topics[0]; i++)
        if (!strcmp(topics[i], lost))
            topics[i][0] = '\0';
    bool was_off = !n->forwarding;
    n->forwarding = n->forwarding || feedback_lost;
    log_warn("feedback: publishing to %s for %s (account %s, region %s) failed: the topic "
             "does not exist; removed from the identity%s",
             lost, n->identity, n->account_id, n->region,
             feedback_lost ? ", email forwarding on" : "");
    if (store_notify_put(c, n) != STORE_OK)
        return STORE_ERROR;
    char why[STORE_ARN_LEN + 160];
    snprintf(why, sizeof why, "publishing to %s failed: the topic does not exist and was removed%s",
             lost, was_off && feedback_lost ? "; email forwarding was turned back on" : "");
    return feedback_forwarding_notice(fb, c, n, why, out);
}

static int publish(struct feedback *fb, struct store_conn *c, const char *topic_arn,
                   const char *subject, const char *message, bool forwarded,
                   struct feedback_outgoing *out);

static int publish_event(struct feedback *fb, struct store_conn *c, struct store_notify *n,
                         struct mail_info *mi, const struct store_event *events, int count,
                         bool forwarded, struct feedback_outgoing *out)
{
    const char *topic = topic_for(n, events[0].type);
    if (!topic[0])
        return STORE_OK;
    if (mail_details_load(c, mi) != STORE_OK)
        return STORE_ERROR;
    const struct store_event **ptrs = malloc((size_t)count * sizeof *ptrs);
    if (!ptrs)
        return STORE_ERROR;
    for (int i = 0; i < count; i++)
        ptrs[i] = &events[i];
    struct feedback_mail mail = {mi->msg.id, mi->msg.created_ms, mi->source,
                                 (const char *const *)mi->destination, mi->destination_count};
    char *json = feedback_json_notification(&mail, ptrs, count);
    free(ptrs);
    if (!json)
        return STORE_ERROR;
    int rc = publish(fb, c, topic, NULL, json, forwarded, out);
    free(json);
    if (rc == STORE_NOT_FOUND)
        rc = topic_lost(fb, c, n, topic, out);
    return rc;
}

struct sub_list {
    struct store_subscription *items;
    int count, cap;
};

static void sub_add(const struct store_subscription *s, void *ctx)
{
    struct sub_list *l = ctx;
    if (!s->confirmed)
        return;
    if (l->count == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        struct store_subscription *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items)
            return;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = *s;
}

/* message_id: SNS's, one per published message, the same for every subscription. */
static int outbox_add(struct store_conn *c, const struct store_subscription *s, const char *type,
                      const char *message_id, const char *message, bool forwarded)
{
    struct store_outbox o = {.body = message, .created_ms = core_now_ms(), .forwarded = forwarded};
    o.next_ms = o.created_ms;
    core_strlcpy(o.subscription_arn, s->arn, sizeof o.subscription_arn);
    core_strlcpy(o.topic_arn, s->topic_arn, sizeof o.topic_arn);
    core_strlcpy(o.url, s->endpoint, sizeof o.url);
    core_strlcpy(o.message_type, type, sizeof o.message_type);
    core_strlcpy(o.message_id, message_id, sizeof o.message_id);
    core_strlcpy(o.state, "pending", sizeof o.state);
    return store_outbox_insert(c, &o);
}

/* An email subscription: "email" gets the message itself, "email-json" the envelope. */
static int email_publish(struct feedback *fb, struct store_conn *c,
                         const struct store_subscription *s, const char *message_id,
                         const char *subject, const char *message, struct feedback_outgoing *out)
{
    char unsubscribe[STORE_ARN_LEN * 3 + 400], cert[CONFIG_ADDR_LEN + 300];
    feedback_unsubscribe_url(&fb->cfg, s->arn, unsubscribe, sizeof unsubscribe);
    feedback_cert_url(&fb->cfg, cert, sizeof cert);
    struct feedback_sns_message m = {FEEDBACK_SNS_NOTIFICATION,
                                     message_id,
                                     s->topic_arn,
                                     subject,
                                     message,
                                     core_now_ms(),
                                     NULL,
                                     NULL,
                                     unsubscribe,
                                     cert,
                                     fb->cfg.notify_signature_version};
    char *envelope = NULL;
    struct buf text;
    buf_init(&text);
    if (!strcmp(s->protocol, "email-json")) {
        if (!(envelope = feedback_sns_envelope(&m, fb->key)))
            return STORE_ERROR;
        buf_puts(&text, envelope);
    } else {
        buf_printf(&text,
                   "%s\n\n--\nIf you wish to stop receiving notifications from this topic, "
                   "please click or visit the link below to unsubscribe:\n%s\n",
                   message, unsubscribe);
    }
    free(envelope);
    int rc = text_email_store(fb, c, out, s->region, s->endpoint,
                              subject ? subject : "AWS Notification Message", buf_cstr(&text));
    buf_free(&text);
    return rc;
}

/* forwarded: the event also goes by email, so a subscriber given up on needs no fallback
 * forward of it. */
static int publish(struct feedback *fb, struct store_conn *c, const char *topic_arn,
                   const char *subject, const char *message, bool forwarded,
                   struct feedback_outgoing *out)
{
    struct store_topic t;
    int rc = store_topic_get(c, topic_arn, &t);
    if (rc != STORE_OK)
        return rc;
    struct sub_list l = {0};
    char message_id[37];
    core_uuid4(message_id);
    rc = store_subscription_list(c, t.account_id, t.arn, "", 100000, sub_add, &l);
    for (int i = 0; rc == STORE_OK && i < l.count; i++) {
        const struct store_subscription *s = &l.items[i];
        if (!strncmp(s->protocol, "http", 4))
            rc = outbox_add(c, s, "Notification", message_id, message, forwarded);
        else
            rc = email_publish(fb, c, s, message_id, subject, message, out);
    }
    free(l.items);
    return rc;
}

int feedback_publish(struct feedback *fb, struct store_conn *c, const char *topic_arn,
                     const char *subject, const char *message, struct feedback_outgoing *out)
{
    return publish(fb, c, topic_arn, subject, message, false, out);
}

int feedback_confirmation(struct feedback *fb, struct store_conn *c,
                          const struct store_subscription *sub, struct feedback_outgoing *out)
{
    char text[STORE_ARN_LEN + 200];
    snprintf(text, sizeof text,
             "You have chosen to subscribe to the topic %s.\nTo confirm the subscription, visit "
             "the SubscribeURL included in this message.",
             sub->topic_arn);
    if (!strncmp(sub->protocol, "http", 4)) {
        char message_id[37];
        core_uuid4(message_id);
        return outbox_add(c, sub, "SubscriptionConfirmation", message_id, text, false);
    }
    char url[STORE_ARN_LEN * 3 + 600];
    feedback_subscribe_url(&fb->cfg, sub->topic_arn, sub->token, url, sizeof url);
    struct buf body;
    buf_init(&body);
    buf_printf(&body, "%s\n\nConfirm subscription:\n%s\n", text, url);
    int rc = text_email_store(fb, c, out, sub->region, sub->endpoint,
                              "AWS Notification - Subscription Confirmation", buf_cstr(&body));
    buf_free(&body);
    return rc;
}

/* ---- email forwarding (spec 20 §5.3) ---- */

static const char *forward_subject(const char *type)
{
    if (!strcmp(type, "Bounce"))
        return "Delivery Status Notification (Failure)";
    if (!strcmp(type, "Complaint"))
        return "Complaint about a message you sent";
    return "Automatic reply to a message you sent";
}

/* The original's header block (up to the empty line), for the DSN's headers part. */
static size_t header_block_len(const char *data, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (!memcmp(data + i, "\r\n\r\n", 4))
            return i + 2;
    return len;
}

/* Sesame speaks for the remote side when no report came from outside: its own DSN for a
 * bounce, and for the simulator the ARF report or auto-reply the recipient's side would
 * have sent, then forwarded like a received one. */
static int forward_synthesized(struct feedback *fb, struct store_conn *c,
                               const struct mail_info *mi, const struct store_event *events,
                               int count, const char *to, struct feedback_outgoing *out)
{
    char *orig = NULL;
    size_t orig_len = 0;
    if (store_message_data(c, mi->msg.id, &orig, &orig_len) != STORE_OK)
        orig = NULL, orig_len = 0; /* released already: no original attached */
    const char *type = events[0].type;
    int rc = STORE_OK;
    for (int i = 0; rc == STORE_OK && i < (strcmp(type, "Bounce") ? count : 1); i++) {
        char id[80];
        struct feedback_compose comp = compose_for(fb, to, id, sizeof id);
        comp.original = orig;
        comp.original_len = orig_len;
        struct buf mail, report;
        buf_init(&mail);
        buf_init(&report);
        int built;
        if (!strcmp(type, "Bounce")) {
            const struct store_event **ptrs = malloc((size_t)count * sizeof *ptrs);
            for (int k = 0; ptrs && k < count; k++)
                ptrs[k] = &events[k];
            comp.original_len = orig ? header_block_len(orig, orig_len) : 0;
            built = ptrs ? feedback_compose_dsn(&comp, ptrs, count, &mail) : -1;
            free(ptrs);
        } else {
            char inner_id[80]; /* the attached report is a message of its own */
            struct feedback_compose inner = compose_for(fb, to, inner_id, sizeof inner_id);
            inner.original = orig;
            inner.original_len = orig_len;
            inner.from = events[i].recipient;
            built = !strcmp(type, "Complaint")
                        ? feedback_compose_arf(&inner, &events[i], &report)
                        : feedback_compose_autoreply(&inner, events[i].recipient, &report);
            if (built == 0)
                built = feedback_compose_forward(&comp, forward_subject(type), report.data,
                                                 report.len, &mail);
        }
        buf_free(&report);
        if (built != 0) {
            buf_free(&mail);
            rc = STORE_ERROR;
            break;
        }
        rc = fb_email_store(fb, c, out, mi->msg.region, fb->forward_from, to, id, &mail);
    }
    free(orig);
    return rc;
}

static int forward_event(struct feedback *fb, struct store_conn *c, const struct mail_info *mi,
                         const struct store_event *events, int count, const char *report,
                         size_t report_len, struct feedback_outgoing *out)
{
    const char *to = mi->msg.source; /* the destination spec 20 §5.3.2 picked at acceptance */
    if (!to[0])
        return STORE_OK;
    if (!report)
        return forward_synthesized(fb, c, mi, events, count, to, out);
    char id[80];
    struct feedback_compose comp = compose_for(fb, to, id, sizeof id);
    struct buf mail;
    buf_init(&mail);
    if (feedback_compose_forward(&comp, forward_subject(events[0].type), report, report_len,
                                 &mail) != 0) {
        buf_free(&mail);
        return STORE_ERROR;
    }
    return fb_email_store(fb, c, out, mi->msg.region, fb->forward_from, to, id, &mail);
}

/* ---- the entry point ---- */

static bool forwarded_type(const char *type)
{
    return !strcmp(type, "Bounce") || !strcmp(type, "Complaint") || !strcmp(type, "AutoResponse");
}

static int record_causes(struct feedback *fb, struct store_conn *c, const struct store_event *evs,
                         int count, const char *report, size_t report_len, bool forward,
                         struct feedback_outgoing *out)
{
    struct store_message head;
    int rc = store_message_get(c, evs[0].message_id, &head, NULL);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && !strcmp(head.account_id, SEND_NOTICE_ACCOUNT)))
        return STORE_OK; /* Sesame's own notices notify nobody */
    struct store_notify n = {0};
    if (rc == STORE_OK) {
        rc = store_notify_get(c, head.account_id, head.region, head.identity, &n);
        rc = rc == STORE_NOT_FOUND ? STORE_OK : rc;
    }
    if (rc != STORE_OK)
        return rc;
    /* the event goes by email when its identity forwards: here, or with its report's first
     * group (forward false) */
    bool by_email = forwarded_type(evs[0].type);
    if (!topic_for(&n, evs[0].type)[0] && !(forward && by_email && n.forwarding))
        return STORE_OK; /* nobody to tell (most deliveries): the rest of the row is not read */
    struct mail_info mi;
    rc = mail_row_load(c, evs[0].message_id, &mi);
    if (rc != STORE_OK) {
        mail_info_free(&mi);
        return rc == STORE_NOT_FOUND ? STORE_OK : rc;
    }
    rc = publish_event(fb, c, &n, &mi, evs, count, by_email && n.forwarding, out);
    /* a topic found gone while publishing turns forwarding on: n says so now */
    if (rc == STORE_OK && forward && by_email && n.forwarding)
        rc = forward_event(fb, c, &mi, evs, count, report, report_len, out);
    mail_info_free(&mi);
    return rc;
}

int feedback_record(struct feedback *fb, struct store_conn *c, const struct store_event *events,
                    int count, const char *report, size_t report_len, bool forward,
                    struct feedback_outgoing *out)
{
    if (count <= 0)
        return STORE_OK;
    struct store_event *evs = malloc((size_t)count * sizeof *evs);
    if (!evs)
        return STORE_ERROR;
    memcpy(evs, events, (size_t)count * sizeof *evs);
    char feedback_id[80] = "";
    if (strcmp(evs[0].type, "Delivery"))
        core_message_id(core_now_ms(), feedback_id, sizeof feedback_id);
    int rc = STORE_OK;
    for (int i = 0; rc == STORE_OK && i < count; i++) {
        if (!evs[i].feedback_id[0])
            core_strlcpy(evs[i].feedback_id, feedback_id, sizeof evs[i].feedback_id);
        rc = store_event_insert(c, &evs[i]);
    }
    if (rc == STORE_OK)
        rc = record_causes(fb, c, evs, count, report, report_len, forward, out);
    free(evs);
    return rc;
}

/* ---- a subscriber that never answered ---- */

struct event_pick {
    const char *feedback_id;
    struct store_event *items;
    int count, cap;
};

static void event_pick(const struct store_event *e, void *ctx)
{
    struct event_pick *p = ctx;
    if (strcmp(e->feedback_id, p->feedback_id))
        return;
    if (p->count == p->cap) {
        int cap = p->cap ? p->cap * 2 : 4;
        struct store_event *items = realloc(p->items, (size_t)cap * sizeof *items);
        if (!items)
            return;
        p->items = items;
        p->cap = cap;
    }
    p->items[p->count++] = *e;
}

/* The identity of the notification's message gets forwarding back on (and the account
 * is told), and the bounce or complaint itself is forwarded now unless it went by email
 * when it happened: while forwarding was off, that subscriber was its only way to the
 * sender. Once for the SNS message, whichever of its subscriptions fail. */
static int fallback_forward(struct feedback *fb, struct store_conn *c, const char *message_id,
                            const char *feedback_id, const char *why, struct feedback_outgoing *out)
{
    struct mail_info mi;
    int rc = mail_info_load(c, message_id, &mi);
    struct store_notify n = {0};
    if (rc == STORE_OK)
        rc = store_notify_get(c, mi.msg.account_id, mi.msg.region, mi.msg.identity, &n);
    if (rc != STORE_OK) { /* an identity without settings forwards: it was forwarded */
        mail_info_free(&mi);
        return rc == STORE_ERROR ? rc : STORE_OK;
    }
    if (!n.forwarding) {
        n.forwarding = true;
        rc = store_notify_put(c, &n);
        if (rc == STORE_OK)
            rc = feedback_forwarding_notice(fb, c, &n, why, out);
    }
    struct event_pick pick = {feedback_id, NULL, 0, 0};
    if (rc == STORE_OK)
        rc = store_event_list(c, message_id, event_pick, &pick);
    if (rc == STORE_OK && pick.count)
        rc = forward_event(fb, c, &mi, pick.items, pick.count, NULL, 0, out);
    free(pick.items);
    mail_info_free(&mi);
    return rc;
}

int feedback_delivery_failed(struct feedback *fb, struct store_conn *c,
                             const struct store_outbox *row, const char *message,
                             struct feedback_outgoing *out)
{
    /* Claimed in this transaction: the rows' copies the notifier holds may be stale, and
     * several subscriptions of one SNS message may give up in the same pass. */
    int claim = store_outbox_forwarded(c, row->message_id);
    if (claim != STORE_OK) /* it went by email when it happened, or by an earlier fallback */
        return claim == STORE_NOT_FOUND ? STORE_OK : STORE_ERROR;
    json_t *root = json_loads(message, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "notificationType"));
    const char *mid =
        json_string_value(json_object_get(json_object_get(root, "mail"), "messageId"));
    json_t *body = json_object_get(root, type && !strcmp(type, "Bounce") ? "bounce" : "complaint");
    const char *fid = json_string_value(json_object_get(body, "feedbackId"));
    int rc = STORE_OK;
    if (type && mid && fid && (!strcmp(type, "Bounce") || !strcmp(type, "Complaint"))) {
        char why[STORE_ENDPOINT_LEN + 96];
        snprintf(why, sizeof why, "a %s notification could not be delivered to %s", type, row->url);
        rc = fallback_forward(fb, c, mid, fid, why, out);
    }
    json_decref(root);
    return rc;
}

int feedback_forwarding_notice(struct feedback *fb, struct store_conn *c,
                               const struct store_notify *n, const char *why,
                               struct feedback_outgoing *out)
{
    struct store_account account;
    int rc = store_account_get(c, n->account_id, &account);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && !account.contact[0])) {
        log_info("feedback: no email about %s: account %s has no contact address", n->identity,
                 n->account_id);
        return STORE_OK;
    }
    if (rc != STORE_OK)
        return rc;
    char subject[STORE_IDENTITY_LEN + 96], text[2048];
    snprintf(subject, sizeof subject, "Notification settings changed for %s in region %s",
             n->identity, n->region);
    snprintf(text, sizeof text,
             "The notification settings of the identity %s in region %s changed, because %s.\n\n"
             "Email feedback forwarding is %s. %s\n",
             n->identity, n->region, why, n->forwarding ? "on" : "off",
             n->forwarding ? "Bounces and complaints for this identity are forwarded by email to "
                             "the address that sent the original message, in addition to any "
                             "Amazon SNS topic still set. Set the topics again and turn forwarding "
                             "off with SetIdentityFeedbackForwardingEnabled if you want "
                             "notifications only through Amazon SNS."
                           : "Bounces and complaints still go to the Bounce and Complaint topics.");
    struct send_notice notice;
    if (send_notice_build(&fb->cfg, n->region, account.contact, subject, text, &notice) != 0)
        return STORE_OK; /* logged; the change itself must not fail for it */
    return fb_email_store(fb, c, out, notice.region, notice.from, notice.to, notice.id,
                          &notice.data);
}

void feedback_after(struct feedback *fb, struct feedback_outgoing *out, bool committed)
{
    for (int i = 0; i < out->count; i++) {
        struct send_notice *n = &out->emails[i].n;
        if (committed && !n->captured && fb->enqueue) {
            struct feedback_email_view v = {n->id,         n->region,    n->from,    n->to,
                                            n->created_ms, n->data.data, n->data.len};
            fb->enqueue(&v, fb->enqueue_ctx);
        }
        send_notice_free(n);
    }
    free(out->emails);
    feedback_outgoing_init(out);
    if (committed && fb->notifier)
        fb_notifier_wake(fb->notifier);
}

/* ---- the URLs in SNS messages ---- */

static void url_encode(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < outlen; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

/* The public URL with a path and query appended, cut to outlen (callers' buffers fit
 * every URL a valid configuration makes). */
static void url_join(const struct sesame_config *cfg, const char *fmt, const char *a, const char *b,
                     char *out, size_t outlen)
{
    char base[CONFIG_ADDR_LEN + 300];
    config_public_url(cfg, base, sizeof base);
    struct buf u;
    buf_init(&u);
    buf_puts(&u, base);
    buf_printf(&u, fmt, a, b);
    core_strlcpy(out, buf_cstr(&u), outlen);
    buf_free(&u);
}

void feedback_cert_url(const struct sesame_config *cfg, char *out, size_t outlen)
{
    url_join(cfg, "%s%s", FEEDBACK_CERT_PATH, "", out, outlen);
}

void feedback_subscribe_url(const struct sesame_config *cfg, const char *topic_arn,
                            const char *token, char *out, size_t outlen)
{
    char arn[STORE_ARN_LEN * 3 + 1];
    url_encode(topic_arn, arn, sizeof arn);
    url_join(cfg, "/?Action=ConfirmSubscription&TopicArn=%s&Token=%s", arn, token, out, outlen);
}

void feedback_unsubscribe_url(const struct sesame_config *cfg, const char *subscription_arn,
                              char *out, size_t outlen)
{
    char arn[(STORE_ARN_LEN + 40) * 3 + 1];
    url_encode(subscription_arn, arn, sizeof arn);
    url_join(cfg, "/?Action=Unsubscribe&SubscriptionArn=%s%s", arn, "", out, outlen);
}
