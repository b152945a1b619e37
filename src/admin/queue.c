/* sesame queue list|show|retry|drop and sesame suppression list|show|remove: what waits
 * for delivery and why, and the region-wide suppression list. Writes bump the "queue"
 * control counter, which sesamed polls, so a running instance acts on them at once. */
#include "admin/admin_internal.h"

#include <jansson.h>
#include <string.h>

/* ---- queue ---- */

static void queue_line(const struct store_recipient *r, void *ctx)
{
    (void)ctx;
    char next[32];
    core_iso8601(r->next_ms ? r->next_ms : r->created_ms, next, sizeof next);
    printf("%s %s attempts=%d next=%s last=%s\n", r->message_id, r->address, r->attempts, next,
           r->last_result[0] ? r->last_result : "-");
}

static int queue_list(struct admin_ctx *ctx)
{
    return store_queue_list(ctx->conn, NULL, true, queue_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read the queue");
}

static json_t *iso_json(int64_t ms)
{
    char stamp[32];
    core_iso8601(ms, stamp, sizeof stamp);
    return json_string(stamp);
}

struct show_ctx {
    json_t *root, *recipients, *events;
};

static void show_recipient(const struct store_recipient *r, void *arg)
{
    struct show_ctx *s = arg;
    if (!s->root) {
        s->root = json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "MessageId", r->message_id, "Account",
                            r->account_id, "Region", r->region, "Source", r->source, "Created",
                            iso_json(r->created_ms), "Size", (json_int_t)r->size);
        s->recipients = json_array();
    }
    bool queued = !strcmp(r->state, "queued");
    json_array_append_new(
        s->recipients,
        json_pack("{s:s, s:s, s:i, s:o, s:s}", "Address", r->address, "State", r->state, "Attempts",
                  r->attempts, "NextAttempt",
                  queued ? iso_json(r->next_ms ? r->next_ms : r->created_ms) : json_null(),
                  "LastResult", r->last_result));
}

static void show_event(const struct store_event *e, void *arg)
{
    struct show_ctx *s = arg;
    json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:s}", "Type", e->type, "Recipient", e->recipient,
                          "Timestamp", iso_json(e->created_ms), "ReportingMTA", e->reporting_mta,
                          "RemoteMTA", e->remote_mta);
    if (!strcmp(e->type, "Delivery")) {
        json_object_set_new(o, "SmtpResponse", json_string(e->smtp_response));
        json_object_set_new(o, "ProcessingTimeMillis", json_integer(e->processing_ms));
    } else if (!strcmp(e->type, "Complaint")) {
        json_object_set_new(o, "FeedbackType", json_string(e->feedback_type));
        json_object_set_new(o, "UserAgent", json_string(e->user_agent));
        json_object_set_new(o, "ArrivalDate",
                            e->arrival_ms ? iso_json(e->arrival_ms) : json_null());
    } else if (!strcmp(e->type, "Bounce")) {
        json_object_set_new(o, "BounceType", json_string(e->bounce_type));
        json_object_set_new(o, "BounceSubType", json_string(e->bounce_subtype));
        json_object_set_new(o, "Status", json_string(e->status));
        json_object_set_new(o, "Action", json_string(e->action));
        json_object_set_new(o, "DiagnosticCode", json_string(e->diagnostic));
        if (e->final_recipient[0])
            json_object_set_new(o, "FinalRecipient", json_string(e->final_recipient));
    }
    if (e->feedback_id[0])
        json_object_set_new(o, "FeedbackId", json_string(e->feedback_id));
    json_object_set_new(o, "Simulator", json_boolean(e->simulator));
    json_array_append_new(s->events, o);
}

static int queue_show(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_queue_verbs[1], "give one MessageId");
    const char *id = ctx->opts.positional[0];
    struct show_ctx s = {NULL, NULL, json_array()};
    int rc = store_queue_list(ctx->conn, id, false, show_recipient, &s);
    if (rc == STORE_OK && s.root)
        rc = store_event_list(ctx->conn, id, show_event, &s);
    if (rc != STORE_OK || !s.root) {
        json_decref(s.root);
        json_decref(s.events);
        return rc != STORE_OK ? admin_fail("cannot read the queue")
                              : admin_fail("no message %s", id);
    }
    json_object_set_new(s.root, "Recipients", s.recipients);
    json_object_set_new(s.root, "Events", s.events);
    char *text = json_dumps(s.root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(s.root);
    return ADMIN_OK;
}

struct queue_change {
    const char *id; /* NULL: every message */
    bool drop;
    int changed;
};

static int queue_change_tx(struct admin_ctx *ctx, void *arg)
{
    struct queue_change *q = arg;
    int rc = q->drop ? store_queue_drop(ctx->conn, q->id, &q->changed)
                     : store_queue_retry(ctx->conn, q->id, core_now_ms(), &q->changed);
    if (rc == STORE_ERROR || store_control_bump(ctx->conn, "queue") != STORE_OK)
        return admin_fail("cannot change the queue");
    return ADMIN_OK;
}

static int queue_retry(struct admin_ctx *ctx)
{
    bool all = admin_flag(ctx, "all");
    if (all == (ctx->opts.positional_count == 1) || ctx->opts.positional_count > 1)
        return admin_usage_error(&admin_queue_verbs[2], "give one MessageId, or --all");
    struct queue_change q = {all ? NULL : ctx->opts.positional[0], false, 0};
    int rc = admin_write(ctx, queue_change_tx, &q);
    if (rc != ADMIN_OK)
        return rc;
    if (!all && q.changed == 0)
        return admin_fail("no queued recipient for message %s", q.id);
    printf("retry: %d recipients due now\n", q.changed);
    return ADMIN_OK;
}

static int queue_drop(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_queue_verbs[3], "give one MessageId");
    struct queue_change q = {ctx->opts.positional[0], true, 0};
    int rc = admin_write(ctx, queue_change_tx, &q);
    if (rc != ADMIN_OK)
        return rc;
    if (q.changed == 0)
        return admin_fail("no queued recipient for message %s", q.id);
    printf("dropped: %d recipients of %s\n", q.changed, q.id);
    return ADMIN_OK;
}

static const char *const queue_flags[] = {"all", NULL};

const struct admin_verb admin_queue_verbs[] = {
    {"list", "queue list", NULL, NULL, queue_list},
    {"show", "queue show MESSAGE_ID", NULL, NULL, queue_show},
    {"retry", "queue retry MESSAGE_ID | queue retry --all", NULL, queue_flags, queue_retry},
    {"drop", "queue drop MESSAGE_ID", NULL, NULL, queue_drop},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- the suppression list ---- */

static void suppressed_line(const struct store_suppressed *s, void *arg)
{
    int *count = arg;
    char created[32], expires[32];
    core_iso8601(s->created_ms, created, sizeof created);
    core_iso8601(s->expires_ms, expires, sizeof expires);
    printf("%s %s %s %s %s\n", s->address, s->region, s->reason, created, expires);
    (*count)++;
}

static int suppression_list(struct admin_ctx *ctx)
{
    int count = 0;
    return store_suppressed_list(ctx->conn, NULL, core_now_ms(), suppressed_line, &count) ==
                   STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read the suppression list");
}

static int suppression_show(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_suppression_verbs[1], "give one address");
    int count = 0;
    const char *address = ctx->opts.positional[0];
    if (store_suppressed_list(ctx->conn, address, core_now_ms(), suppressed_line, &count) !=
        STORE_OK)
        return admin_fail("cannot read the suppression list");
    return count ? ADMIN_OK : admin_fail("%s is not on the suppression list", address);
}

static int suppression_remove_tx(struct admin_ctx *ctx, void *arg)
{
    int rc = store_suppressed_delete(ctx->conn, arg);
    if (rc == STORE_ERROR)
        return admin_fail("cannot change the suppression list");
    if (rc == STORE_NOT_FOUND)
        return admin_fail("%s is not on the suppression list", (const char *)arg);
    return ADMIN_OK;
}

static int suppression_remove(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_suppression_verbs[2], "give one address");
    const char *address = ctx->opts.positional[0];
    int rc = admin_write(ctx, suppression_remove_tx, (void *)address);
    if (rc == ADMIN_OK)
        printf("removed: %s (every region)\n", address);
    return rc;
}

const struct admin_verb admin_suppression_verbs[] = {
    {"list", "suppression list", NULL, NULL, suppression_list},
    {"show", "suppression show ADDRESS", NULL, NULL, suppression_show},
    {"remove", "suppression remove ADDRESS", NULL, NULL, suppression_remove},
    {NULL, NULL, NULL, NULL, NULL},
};
