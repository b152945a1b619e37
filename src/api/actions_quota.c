/* GetSendQuota and GetSendStatistics (spec 20 §6, §7.7): per account per region. */
#include "api/api_internal.h"
#include "send/send.h"

#include <stdio.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

/* Doubles as SES prints them: 200.0, 1.0, 0.5. */
static void xml_double(struct buf *b, const char *name, double v)
{
    char text[64];
    if (v == (double)(long long)v)
        snprintf(text, sizeof text, "%lld.0", (long long)v);
    else
        snprintf(text, sizeof text, "%.17g", v);
    xml_element(b, name, text);
}

void action_get_send_quota(struct api_call *call)
{
    struct store_account_region limits;
    if (api_cache_limits(call->t, call->account.id, call->region, &limits) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The quota could not be read.");
    struct send_sender who = {call->t->conn, &call->account, call->region, &limits, NULL};
    double sent = send_sent_last_24h(call->t->sh->send, &who);
    if (sent < 0)
        return api_reply_error(call, "InternalFailure", "The quota could not be read.");
    api_reply_begin(call);
    buf_puts(&call->out, "<GetSendQuotaResult>");
    xml_double(&call->out, "SentLast24Hours", sent);
    xml_double(&call->out, "Max24HourSend", limits.max_24h);
    xml_double(&call->out, "MaxSendRate", limits.max_rate);
    buf_puts(&call->out, "</GetSendQuotaResult>");
    api_reply_finish(call);
}

static void stat_point_emit(const struct store_stat_point *p, void *ctx)
{
    struct buf *b = ctx;
    char stamp[32];
    core_iso8601(p->bucket_ms, stamp, sizeof stamp);
    buf_printf(b,
               "<member><DeliveryAttempts>%lld</DeliveryAttempts><Timestamp>%s</Timestamp>"
               "<Rejects>%lld</Rejects><Bounces>%lld</Bounces><Complaints>%lld</Complaints>"
               "</member>",
               (long long)p->delivery_attempts, stamp, (long long)p->rejects, (long long)p->bounces,
               (long long)p->complaints);
}

void action_get_send_statistics(struct api_call *call)
{
    api_reply_begin(call);
    buf_puts(&call->out, "<GetSendStatisticsResult><SendDataPoints>");
    /* Two weeks of 15-minute buckets; empty intervals are not stored, so not listed. */
    if (store_stats_list(call->t->conn, call->account.id, call->region, core_now_ms() - 14 * DAY_MS,
                         stat_point_emit, &call->out) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The statistics could not be read.");
    buf_puts(&call->out, "</SendDataPoints></GetSendStatisticsResult>");
    api_reply_finish(call);
}
