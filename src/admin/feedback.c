/* sesame feedback list|show and sesame notifications list: the reports the feedback
 * listener kept aside (unparseable, or naming no message of ours) and the SNS deliveries
 * still waiting or given up on. Nothing received is ever dropped silently; this is where
 * the operator looks. */
#include "admin/admin_internal.h"

#include <stdlib.h>
#include <string.h>

static void report_line(const struct store_feedback_report *r, void *arg)
{
    int *count = arg;
    char at[32];
    core_iso8601(r->received_ms, at, sizeof at);
    printf("%lld %s kind=%s from=<%s> to=<%s> bytes=%zu reason=%s\n", (long long)r->id, at, r->kind,
           r->mail_from, r->rcpt, r->len, r->reason);
    (*count)++;
}

static int feedback_list(struct admin_ctx *ctx)
{
    int count = 0;
    if (store_feedback_report_list(ctx->conn, 0, 1000, report_line, &count) != STORE_OK)
        return admin_fail("cannot read the kept reports");
    return ADMIN_OK;
}

static void report_bytes(const struct store_feedback_report *r, void *arg)
{
    int *found = arg;
    fwrite(r->data, 1, r->len, stdout);
    *found = 1;
}

static int feedback_show(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_feedback_verbs[1], "give one report id");
    char *end;
    long long id = strtoll(ctx->opts.positional[0], &end, 10);
    if (*end || id <= 0)
        return admin_usage_error(&admin_feedback_verbs[1], "a report id is a positive number");
    int found = 0;
    if (store_feedback_report_list(ctx->conn, id, 1, report_bytes, &found) != STORE_OK)
        return admin_fail("cannot read the kept reports");
    return found ? ADMIN_OK : admin_fail("no kept report %lld", id);
}

const struct admin_verb admin_feedback_verbs[] = {
    {"list", "feedback list", NULL, NULL, feedback_list},
    {"show", "feedback show ID", NULL, NULL, feedback_show},
    {NULL, NULL, NULL, NULL, NULL},
};

static void outbox_line(const struct store_outbox *o, void *arg)
{
    (void)arg;
    char created[32], next[32];
    core_iso8601(o->created_ms, created, sizeof created);
    core_iso8601(o->next_ms, next, sizeof next);
    printf("%lld %s %s state=%s attempts=%d created=%s next=%s url=%s last=%s\n", (long long)o->id,
           o->message_type, o->subscription_arn, o->state, o->attempts, created, next, o->url,
           o->last_error[0] ? o->last_error : "-");
}

static int notifications_list(struct admin_ctx *ctx)
{
    const char *state = admin_flag(ctx, "failed") ? "failed" : NULL;
    if (store_outbox_list(ctx->conn, state, 1000, outbox_line, NULL) != STORE_OK)
        return admin_fail("cannot read the notification outbox");
    return ADMIN_OK;
}

static const char *const notifications_flags[] = {"failed", NULL};

const struct admin_verb admin_notifications_verbs[] = {
    {"list", "notifications list [--failed]", NULL, notifications_flags, notifications_list},
    {NULL, NULL, NULL, NULL, NULL},
};
