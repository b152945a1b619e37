/* Outcomes: an attempt's reply becomes a delivery, a bounce (spec 20 §5.5.4) or a retry
 * with backoff; the mailbox simulator and the suppression list settle recipients before
 * any attempt. Results are written in batches through the store's group commit: the
 * recipient's state, its event, the statistics and the suppression list move together. */
#include "delivery/delivery_internal.h"
#include "feedback/feedback.h"
#include "send/send.h"

#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUPPRESSED_TEXT                                                                            \
    "Amazon SES did not send the message to this address because it is on the suppression "        \
    "list."

static struct dl_result *result_new(struct delivery *d, const struct dl_rcpt *r)
{
    if (d->result_count == d->result_cap) {
        d->result_cap = d->result_cap ? d->result_cap * 2 : 64;
        d->results = realloc(d->results, (size_t)d->result_cap * sizeof *d->results);
        if (!d->results)
            abort();
    }
    struct dl_result *res = &d->results[d->result_count++];
    memset(res, 0, sizeof *res);
    const struct dl_message *m = r->msg;
    struct store_recipient *sr = &res->rcpt;
    core_strlcpy(sr->message_id, m->id, sizeof sr->message_id);
    sr->idx = r->idx;
    core_strlcpy(sr->address, r->address, sizeof sr->address);
    sr->attempts = r->attempts;
    core_strlcpy(sr->account_id, m->account_id, sizeof sr->account_id);
    core_strlcpy(sr->region, m->region, sizeof sr->region);
    if (d->flush_ev)
        event_active(d->flush_ev, EV_READ, 0);
    return res;
}

static void event_fill(struct delivery *d, struct dl_result *res, const struct dl_rcpt *r,
                       const char *type, const char *remote)
{
    struct store_event *e = &res->event;
    const struct dl_message *m = r->msg;
    int64_t now = core_now_ms();
    core_strlcpy(e->message_id, m->id, sizeof e->message_id);
    e->idx = r->idx;
    core_strlcpy(e->account_id, m->account_id, sizeof e->account_id);
    core_strlcpy(e->region, m->region, sizeof e->region);
    core_strlcpy(e->type, type, sizeof e->type);
    core_strlcpy(e->recipient, r->address, sizeof e->recipient);
    e->created_ms = now;
    e->processing_ms = now - m->created_ms;
    core_strlcpy(e->remote_mta, remote, sizeof e->remote_mta);
    /* bounce.reportingMTA is a DSN's field, typed (spec 20 Q15); delivery's a bare host. */
    const char *mta_type = strcmp(type, "Bounce") ? "" : "dns; ";
    size_t typed = strlen(mta_type);
    memcpy(e->reporting_mta, mta_type, typed);
    core_strlcpy(e->reporting_mta + typed, d->cfg.hostname, sizeof e->reporting_mta - typed);
}

/* Sesame's own messages (verification emails) count in no statistics. */
static bool notice(const struct dl_message *m)
{
    return !strcmp(m->account_id, SEND_NOTICE_ACCOUNT);
}

/* A final outcome: the recipient is written with its event and forgotten. The message's
 * bytes are released with its last queued recipient (the store checks which is last). */
static void finish(struct delivery *d, struct dl_rcpt *r, struct dl_result *res, const char *state)
{
    core_strlcpy(res->rcpt.state, state, sizeof res->rcpt.state);
    res->release = true;
    dl_rcpt_done(d, r);
}

void dl_outcome_direct(struct delivery *d, struct dl_rcpt *r, const char *type,
                       const char *bounce_type, const char *subtype, const char *status,
                       const char *diagnostic, bool simulator, bool list_address)
{
    struct dl_result *res = result_new(d, r);
    event_fill(d, res, r, type, simulator ? "simulator.amazonses.com" : "");
    struct store_event *e = &res->event;
    bool bounce = !strcmp(type, "Bounce");
    core_strlcpy(e->bounce_type, bounce_type, sizeof e->bounce_type);
    core_strlcpy(e->bounce_subtype, subtype, sizeof e->bounce_subtype);
    core_strlcpy(e->status, status, sizeof e->status);
    core_strlcpy(e->action, bounce ? "failed" : "", sizeof e->action);
    core_strlcpy(bounce ? e->diagnostic : e->smtp_response, diagnostic,
                 bounce ? sizeof e->diagnostic : sizeof e->smtp_response);
    e->simulator = simulator;
    core_strlcpy(res->rcpt.last_result, diagnostic, sizeof res->rcpt.last_result);
    res->list_address = list_address;
    res->count = !simulator && !notice(r->msg);
    finish(d, r, res, bounce ? "bounced" : "delivered");
}

static bool listed(struct delivery *d, const struct dl_rcpt *r)
{
    const struct dl_message *m = r->msg;
    struct store_suppression account_entry;
    return store_suppressed_get(d->conn, m->region, r->address, core_now_ms(), NULL) == STORE_OK ||
           store_suppression_get(d->conn, m->account_id, r->address, &account_entry) == STORE_OK;
}

/* The second event of the result just made: the simulator's complaint (ARF, Feedback-Type
 * abuse) or out-of-the-office auto-reply, about the same recipient. */
static void simulator_feedback(struct delivery *d, bool complaint)
{
    struct dl_result *res = &d->results[d->result_count - 1];
    struct store_event *x = &res->extra;
    *x = res->event;
    core_strlcpy(x->type, complaint ? "Complaint" : "AutoResponse", sizeof x->type);
    x->smtp_response[0] = '\0';
    if (complaint) {
        core_strlcpy(x->feedback_type, "abuse", sizeof x->feedback_type);
        core_strlcpy(x->user_agent, "Sesame Mailbox Simulator", sizeof x->user_agent);
        x->arrival_ms = x->created_ms;
    }
}

bool dl_outcome_settled_early(struct delivery *d, struct dl_rcpt *r)
{
    static const char bounce_diag[] = "smtp; 550 5.1.1 user unknown";
    enum delivery_sim sim = delivery_simulator(r->address);
    switch (sim) {
    case DELIVERY_SIM_NONE:
        if (!listed(d, r))
            return false;
        dl_outcome_direct(d, r, "Bounce", "Permanent", "Suppressed", "5.1.1", SUPPRESSED_TEXT,
                          false, false);
        return true;
    case DELIVERY_SIM_SUCCESS:
        dl_outcome_direct(d, r, "Delivery", "", "", "", "250 2.6.0 Message received", true, false);
        return true;
    case DELIVERY_SIM_OOTO:      /* delivered, then the auto-reply comes back */
    case DELIVERY_SIM_COMPLAINT: /* delivered, then the recipient marks it as spam */
        dl_outcome_direct(d, r, "Delivery", "", "", "", "250 2.6.0 Message received", true, false);
        simulator_feedback(d, sim == DELIVERY_SIM_COMPLAINT);
        return true;
    case DELIVERY_SIM_BOUNCE: /* bounces, but is never listed (spec 20 §9) */
        dl_outcome_direct(d, r, "Bounce", "Permanent", "General", "5.1.1", bounce_diag, true,
                          false);
        return true;
    case DELIVERY_SIM_SUPPRESSED:
        dl_outcome_direct(d, r, "Bounce", "Permanent", "Suppressed", "5.1.1", SUPPRESSED_TEXT, true,
                          false);
        return true;
    case DELIVERY_SIM_UNKNOWN: /* listed by its first bounce, suppressed after */
        if (listed(d, r))
            dl_outcome_direct(d, r, "Bounce", "Permanent", "Suppressed", "5.1.1", SUPPRESSED_TEXT,
                              true, false);
        else
            dl_outcome_direct(d, r, "Bounce", "Permanent", "General", "5.1.1", bounce_diag, true,
                              true);
        return true;
    }
    return false;
}

/* The delay before attempt n+1 (n >= 1): retry_initial * factor^(n-1), at most retry_max. */
static int64_t backoff_ms(const struct sesame_config *cfg, int attempts)
{
    double s =
        (double)cfg->delivery_retry_initial_s * pow(cfg->delivery_retry_factor, attempts - 1);
    if (s > (double)cfg->delivery_retry_max_s)
        s = (double)cfg->delivery_retry_max_s;
    return (int64_t)(s * 1000);
}

/* One line for logs and the queue: "421 4.4.2 text" or the local failure. */
static void reply_line(int code, const char *text, char *out, size_t outlen)
{
    if (code)
        snprintf(out, outlen, "%d %s", code, text);
    else
        snprintf(out, outlen, "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static void retry_later(struct delivery *d, struct dl_rcpt *r, const char *line)
{
    const struct dl_message *m = r->msg;
    int64_t now = core_now_ms(), deadline = m->created_ms + d->cfg.delivery_max_age_s * 1000;
    r->next_ms = now + backoff_ms(&d->cfg, r->attempts);
    if (r->next_ms > deadline)
        r->next_ms = deadline; /* the last attempt happens at max_age */
    struct dl_result *res = result_new(d, r);
    core_strlcpy(res->rcpt.state, "queued", sizeof res->rcpt.state);
    res->rcpt.next_ms = r->next_ms;
    core_strlcpy(res->rcpt.last_result, line, sizeof res->rcpt.last_result);
    log_info("delivery: %s to %s deferred (attempt %d): %s", m->id, r->address, r->attempts, line);
    dl_heap_push(d, r);
}

static void bounce(struct delivery *d, struct dl_rcpt *r, const struct delivery_bounce_class *cls,
                   int code, const char *enhanced, const char *line, const char *remote,
                   bool address_level)
{
    struct dl_result *res = result_new(d, r);
    event_fill(d, res, r, "Bounce", remote);
    struct store_event *e = &res->event;
    core_strlcpy(e->bounce_type, cls->type, sizeof e->bounce_type);
    core_strlcpy(e->bounce_subtype, cls->subtype, sizeof e->bounce_subtype);
    if (enhanced && enhanced[0])
        core_strlcpy(e->status, enhanced, sizeof e->status);
    else
        snprintf(e->status, sizeof e->status, "%d.0.0", code >= 500 ? 5 : 4);
    core_strlcpy(e->action, "failed", sizeof e->action);
    /* "smtp; " only for what a server said (RFC 3464 diagnostic-type) */
    snprintf(e->diagnostic, sizeof e->diagnostic, "%s%.590s", code && remote[0] ? "smtp; " : "",
             line);
    core_strlcpy(res->rcpt.last_result, line, sizeof res->rcpt.last_result);
    res->list_address = address_level && !strcmp(cls->type, "Permanent");
    res->count = !notice(r->msg);
    log_info("delivery: %s to %s bounced (%s/%s): %s", r->msg->id, r->address, cls->type,
             cls->subtype, line);
    finish(d, r, res, "bounced");
}

void dl_outcome(struct delivery *d, struct dl_rcpt *r, int code, const char *enhanced,
                const char *text, const char *remote, bool address_level)
{
    struct dl_message *m = r->msg;
    m->active--;
    dl_message_idle(d, m);
    if (r->dropped) {
        dl_rcpt_done(d, r);
        return;
    }
    r->attempts++;
    char line[600];
    reply_line(code, text, line, sizeof line);
    if (code >= 200 && code < 300) {
        struct dl_result *res = result_new(d, r);
        event_fill(d, res, r, "Delivery", remote);
        core_strlcpy(res->event.smtp_response, line, sizeof res->event.smtp_response);
        core_strlcpy(res->rcpt.last_result, line, sizeof res->rcpt.last_result);
        res->count = !notice(m);
        finish(d, r, res, "delivered");
        return;
    }
    bool expired = core_now_ms() >= m->created_ms + d->cfg.delivery_max_age_s * 1000;
    struct delivery_bounce_class cls;
    if (delivery_classify(code, enhanced, text, expired, &cls))
        bounce(d, r, &cls, code, enhanced, line, remote, address_level);
    else
        retry_later(d, r, line);
}

/* ---- writing ---- */

struct result_batch {
    struct dl_result *results;
    int count;
    int64_t suppression_ttl_ms;
    struct feedback *feedback;
    struct feedback_outgoing out; /* emails the events caused, for delivery after the commit */
};

/* The statistics of a batch, summed per account, region and 15-minute bucket first:
 * one upsert per bucket instead of one per recipient. */
struct stat_sum {
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    struct store_stat_point p;
};

static void stat_note(struct stat_sum *sums, int *n, int max, const struct store_event *e)
{
    int64_t bucket = e->created_ms - e->created_ms % (15 * 60 * 1000);
    int64_t bounce = !strcmp(e->bounce_type, "Permanent");
    for (int i = 0; i < *n; i++)
        if (sums[i].p.bucket_ms == bucket && !strcmp(sums[i].account_id, e->account_id) &&
            !strcmp(sums[i].region, e->region)) {
            sums[i].p.delivery_attempts++;
            sums[i].p.bounces += bounce;
            return;
        }
    if (*n == max)
        return; /* cannot happen: one entry per result at most */
    struct stat_sum *s = &sums[(*n)++];
    core_strlcpy(s->account_id, e->account_id, sizeof s->account_id);
    core_strlcpy(s->region, e->region, sizeof s->region);
    s->p = (struct store_stat_point){bucket, 1, bounce, 0, 0};
}

/* The recipient's state, its statistics and its suppression entry; false in *skip when
 * the operator dropped it meanwhile (nothing more to record). */
static int result_state_write(struct store_conn *c, const struct dl_result *res, int64_t ttl_ms,
                              struct stat_sum *sums, int *sum_count, int sum_max, bool *skip)
{
    int rc = store_recipient_update(c, &res->rcpt);
    *skip = rc == STORE_NOT_FOUND;
    if (rc != STORE_OK)
        return *skip ? STORE_OK : rc;
    const struct store_event *e = &res->event;
    if (res->count && e->type[0])
        stat_note(sums, sum_count, sum_max, e);
    if (res->list_address) {
        struct store_suppressed s = {.created_ms = e->created_ms,
                                     .expires_ms = e->created_ms + ttl_ms};
        core_strlcpy(s.region, e->region, sizeof s.region);
        core_strlcpy(s.address, e->recipient, sizeof s.address);
        core_strlcpy(s.reason, "BOUNCE", sizeof s.reason);
        core_strlcpy(s.message_id, e->message_id, sizeof s.message_id);
        if (store_suppressed_put(c, &s) != STORE_OK)
            return STORE_ERROR;
    }
    return STORE_OK;
}

static int event_order(const void *a, const void *b)
{
    const struct store_event *x = *(const struct store_event *const *)a;
    const struct store_event *y = *(const struct store_event *const *)b;
    int c = strcmp(x->message_id, y->message_id);
    if (!c)
        c = strcmp(x->type, y->type);
    if (!c)
        c = strcmp(x->bounce_type, y->bounce_type);
    if (!c)
        c = strcmp(x->bounce_subtype, y->bounce_subtype);
    return c ? c : (x < y ? -1 : x > y);
}

/* One notification covers one message, one type and, for bounces, one type and subtype. */
static bool same_notification(const struct store_event *a, const struct store_event *b)
{
    return !strcmp(a->message_id, b->message_id) && !strcmp(a->type, b->type) &&
           !strcmp(a->bounce_type, b->bounce_type) && !strcmp(a->bounce_subtype, b->bounce_subtype);
}

/* Events of one message and kind make one notification (several bounces of one send come
 * back together, spec 20 §9.4): sorted, then recorded group by group. */
static int events_record(struct result_batch *b, struct store_conn *c,
                         const struct store_event **evs, int n)
{
    qsort(evs, (size_t)n, sizeof *evs, event_order);
    struct store_event *group = malloc((size_t)(n ? n : 1) * sizeof *group);
    if (!group)
        return STORE_ERROR;
    int rc = STORE_OK;
    for (int i = 0; rc == STORE_OK && i < n;) {
        int k = 0;
        do
            group[k++] = *evs[i++];
        while (i < n && same_notification(evs[i], &group[0]));
        if (b->feedback)
            rc = feedback_record(b->feedback, c, group, k, NULL, 0, true, &b->out);
        else
            for (int j = 0; rc == STORE_OK && j < k; j++)
                rc = store_event_insert(c, &group[j]);
    }
    free(group);
    return rc;
}

static int batch_events(struct result_batch *b, struct store_conn *c, const bool *skip)
{
    const struct store_event **evs = malloc((size_t)b->count * 2 * sizeof *evs + 1);
    if (!evs)
        return STORE_ERROR;
    int n = 0;
    for (int i = 0; i < b->count; i++) {
        if (skip[i])
            continue;
        if (b->results[i].event.type[0])
            evs[n++] = &b->results[i].event;
        if (b->results[i].extra.type[0])
            evs[n++] = &b->results[i].extra;
    }
    int rc = events_record(b, c, evs, n);
    free(evs);
    return rc;
}

/* States first, then the events (which may read the message's bytes for a DSN), then the
 * release of the bytes of messages with nothing left queued. */
static int batch_write(struct store_conn *c, void *ctx)
{
    struct result_batch *b = ctx;
    struct stat_sum *sums = malloc((size_t)b->count * sizeof *sums);
    bool *skip = calloc((size_t)b->count, sizeof *skip);
    int n = 0, rc = sums && skip ? STORE_OK : STORE_ERROR;
    for (int i = 0; rc == STORE_OK && i < b->count; i++)
        rc = result_state_write(c, &b->results[i], b->suppression_ttl_ms, sums, &n, b->count,
                                &skip[i]);
    if (rc == STORE_OK)
        rc = batch_events(b, c, skip);
    for (int i = 0; rc == STORE_OK && i < b->count; i++)
        if (!skip[i] && b->results[i].release)
            rc = store_message_release(c, b->results[i].rcpt.message_id);
    for (int i = 0; rc == STORE_OK && i < n; i++)
        rc = store_stats_add(c, sums[i].account_id, sums[i].region, &sums[i].p);
    free(sums);
    free(skip);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR;
}

static void batch_done(int status, void *ctx)
{
    struct result_batch *b = ctx;
    if (status != STORE_OK)
        log_error("delivery: %d results could not be stored; their recipients stay queued and "
                  "will be attempted again after a restart",
                  b->count);
    if (b->feedback)
        feedback_after(b->feedback, &b->out, status == STORE_OK);
    free(b->results);
    free(b);
}

void dl_results_flush(struct delivery *d)
{
    if (!d->result_count)
        return;
    struct result_batch *b = malloc(sizeof *b);
    if (!b)
        abort();
    b->results = d->results;
    b->count = d->result_count;
    b->suppression_ttl_ms = d->cfg.suppression_ttl_s * 1000;
    b->feedback = d->feedback;
    feedback_outgoing_init(&b->out);
    d->results = NULL;
    d->result_count = d->result_cap = 0;
    store_submit(d->store, NULL, batch_write, batch_done, b);
}
