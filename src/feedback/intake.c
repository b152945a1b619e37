/* Intake: what the feedback listener receives. A report (DSN, ARF, auto-reply) is mapped to
 * our message and recipients through the VERP address it was sent to (its MAC proves the
 * address is ours), else through the returned original's Return-Path or Message-ID; then
 * recorded like any event, with statistics and the suppression list. A report that maps
 * to nothing, or cannot be read, is kept whole for the operator (`sesame feedback`); the
 * sender hears 250 only once either is durable. */
#include "feedback/feedback_internal.h"
#include "smtp/smtp.h"

#include <ctype.h>
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FEEDBACK_KEEP_BYTES (64 * 1024) /* of a kept report */

struct intake_job {
    struct feedback *fb;
    struct feedback_report *report;
    char *data;
    size_t len;
    char mail_from[STORE_IDENTITY_LEN];
    char rcpt[STORE_IDENTITY_LEN];
    char message_id[80]; /* from the VERP address, when one was used */
    int idx;             /* the recipient a per-recipient VERP address names; -1: none */
    int batch_idx;       /* the first recipient of the batch a batch's address names; -1 */
    bool by_rcpt;        /* mapped by the VERP address the report was sent to */
    char batch_domain[STORE_IDENTITY_LEN]; /* the batch's recipients' domain, once known */
    struct feedback_outgoing out;
    void (*done)(void *arg, bool ok);
    void *arg;
    struct event_base *base; /* the session's thread */
    char kept_reason[256];   /* set when the report was kept aside */
};

/* ---- RCPT ---- */

static bool local_accepted(const char *list, const char *local, size_t len)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && n == len && !strncasecmp(p, local, len))
            return true;
        p += n;
    }
    return false;
}

static bool intake_rcpt_ok(const char *address, void *ctx)
{
    struct feedback *fb = ctx;
    char id[80];
    int idx;
    bool batch;
    if (delivery_verp_decode(fb->verp_key, address, fb->bounce_domain, id, sizeof id, &idx, &batch))
        return true;
    const char *at = strrchr(address, '@');
    return at && !strcasecmp(at + 1, fb->bounce_domain) &&
           local_accepted(fb->cfg.feedback_accept_local, address, (size_t)(at - address));
}

/* ---- mapping a report to the message ---- */

struct rcpt_list {
    struct store_recipient *items;
    int count, cap;
};

static void rcpt_add(const struct store_recipient *r, void *ctx)
{
    struct rcpt_list *l = ctx;
    if (l->count == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        struct store_recipient *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items)
            return;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = *r;
}

static const struct store_recipient *rcpt_by_address(const struct rcpt_list *l, const char *a)
{
    for (int i = 0; a[0] && i < l->count; i++)
        if (!strcasecmp(l->items[i].address, a))
            return &l->items[i];
    return NULL;
}

static const struct store_recipient *rcpt_by_idx(const struct rcpt_list *l, int idx)
{
    for (int i = 0; idx >= 0 && i < l->count; i++)
        if (l->items[i].idx == idx)
            return &l->items[i];
    return NULL;
}

/* The MessageId in a Message-ID we wrote: <MessageId@message_id_domain>. */
static bool message_id_from_header(const struct feedback *fb, const char *mid, char *out,
                                   size_t outlen)
{
    const char *at = strrchr(mid, '@');
    if (!at || strcasecmp(at + 1, fb->cfg.message_id_domain) || (size_t)(at - mid) >= outlen ||
        at - mid != 60)
        return false;
    memcpy(out, mid, (size_t)(at - mid));
    out[at - mid] = '\0';
    return true;
}

/* A VERP address's message, and its recipient or its batch's first into the job. */
static bool job_verp(struct intake_job *j, const char *address)
{
    int idx;
    bool batch;
    if (!delivery_verp_decode(j->fb->verp_key, address, j->fb->bounce_domain, j->message_id,
                              sizeof j->message_id, &idx, &batch))
        return false;
    j->idx = batch ? -1 : idx;
    j->batch_idx = batch ? idx : -1;
    return true;
}

/* Which message: the VERP address it came to, else the returned original's. */
static bool job_message(struct intake_job *j)
{
    if (j->message_id[0])
        return true;
    const struct feedback_report *r = j->report;
    if (r->original_return_path[0] && job_verp(j, r->original_return_path))
        return true;
    j->idx = j->batch_idx = -1;
    return r->original_message_id[0] && message_id_from_header(j->fb, r->original_message_id,
                                                               j->message_id, sizeof j->message_id);
}

static void event_base_fill(const struct intake_job *j, const struct store_message *m,
                            const struct store_recipient *r, const char *type,
                            struct store_event *e)
{
    memset(e, 0, sizeof *e);
    core_strlcpy(e->message_id, m->id, sizeof e->message_id);
    e->idx = r->idx;
    core_strlcpy(e->account_id, m->account_id, sizeof e->account_id);
    core_strlcpy(e->region, m->region, sizeof e->region);
    core_strlcpy(e->type, type, sizeof e->type);
    core_strlcpy(e->recipient, r->address, sizeof e->recipient);
    e->created_ms = core_now_ms();
    e->processing_ms = e->created_ms - m->created_ms;
    e->report_ms = j->report->date_ms;
    core_strlcpy(e->reporting_mta, j->report->reporting_mta, sizeof e->reporting_mta);
}

/* A DSN's status as SES's type and subtype: 5.x.x permanent, a failed 4.x.x transient
 * (the remote side gave up), none at all undetermined (spec 20 §5.5.4). */
static void dsn_classify(const struct feedback_report_recipient *b, struct store_event *e)
{
    struct delivery_bounce_class cls = {"Undetermined", "Undetermined"};
    if (b->status[0] == '5' || b->status[0] == '4')
        delivery_classify(b->status[0] == '5' ? 550 : 450, b->status, b->diagnostic, true, &cls);
    core_strlcpy(e->bounce_type, cls.type, sizeof e->bounce_type);
    core_strlcpy(e->bounce_subtype, cls.subtype, sizeof e->bounce_subtype);
    core_strlcpy(e->status, b->status, sizeof e->status);
    core_strlcpy(e->action, b->action, sizeof e->action);
    core_strlcpy(e->diagnostic, b->diagnostic, sizeof e->diagnostic);
    core_strlcpy(e->remote_mta, b->remote_mta, sizeof e->remote_mta);
    /* another address type (x400; ...) names no mailbox: the recipient stands */
    if (strchr(b->final_recipient, '@'))
        core_strlcpy(e->final_recipient, b->final_recipient, sizeof e->final_recipient);
}

static const char *domain_of(const char *address)
{
    const char *at = strrchr(address, '@');
    return at ? at + 1 : "";
}

/* The message's recipient a DSN block is about. A per-recipient VERP address (its idx)
 * bounds what a report may say: only that recipient, whatever the blocks name, so that a
 * report cannot be aimed at the other recipients; a batch's, only its domain's. */
static const struct store_recipient *dsn_recipient(const struct intake_job *j,
                                                   const struct rcpt_list *l,
                                                   const struct feedback_report_recipient *b,
                                                   int failed_blocks)
{
    const struct store_recipient *one = rcpt_by_idx(l, j->idx);
    const struct store_recipient *named = rcpt_by_address(l, b->final_recipient);
    if (!named)
        named = rcpt_by_address(l, b->original_recipient);
    /* a batch's address: only its recipients, who are of one domain */
    if (named && j->batch_domain[0] && strcasecmp(domain_of(named->address), j->batch_domain))
        named = NULL;
    if (!one)
        return named;
    /* the VERP recipient: named by the block, or the only failed block (forwarded mail) */
    return named == one || (!named && failed_blocks == 1) ? one : NULL;
}

static int dsn_events(const struct intake_job *j, const struct store_message *m,
                      const struct rcpt_list *l, struct store_event *evs)
{
    const struct feedback_report *r = j->report;
    int failed = 0, n = 0;
    for (int i = 0; i < r->recipient_count; i++)
        failed += !strcmp(r->recipients[i].action, "failed");
    for (int i = 0; i < r->recipient_count; i++) {
        const struct feedback_report_recipient *b = &r->recipients[i];
        if (strcmp(b->action, "failed"))
            continue; /* delayed, delivered, relayed, expanded: not a bounce */
        const struct store_recipient *rc = dsn_recipient(j, l, b, failed);
        bool seen = false;
        for (int k = 0; rc && k < n; k++)
            seen |= evs[k].idx == rc->idx;
        if (!rc || seen)
            continue;
        event_base_fill(j, m, rc, "Bounce", &evs[n]);
        dsn_classify(b, &evs[n++]);
    }
    return n;
}

/* The registrable domain (the Public Suffix List's, libpsl's built-in copy), lower-cased
 * into out: a feedback loop reports from arf.mail.example.com about recipients at
 * example.com, and arf.sky.co.uk about sky.co.uk, not every co.uk. False for a public
 * suffix itself, or a name too long. */
static bool registrable_domain(const char *domain, char *out, size_t outlen)
{
    size_t n = strlen(domain);
    if (!n || n >= outlen)
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)domain[i]);
    const char *reg = psl_registrable_domain(psl_builtin(), out);
    if (!reg)
        return false;
    memmove(out, reg, strlen(reg) + 1);
    return true;
}

static bool same_provider(const char *recipient, const char *reporter)
{
    char a[STORE_IDENTITY_LEN], b[STORE_IDENTITY_LEN];
    return registrable_domain(domain_of(recipient), a, sizeof a) &&
           registrable_domain(domain_of(reporter), b, sizeof b) && !strcmp(a, b);
}

/* ISPs redact who complained (spec 20 §5.5.5.1): the recipient the report names, else the
 * VERP one, else those at the reporting provider's domain, else the only recipient; never
 * a guess among several. */
static int arf_events(const struct intake_job *j, const struct store_message *m,
                      const struct rcpt_list *l, struct store_event *evs)
{
    const struct feedback_report *r = j->report;
    const struct store_recipient *one = rcpt_by_idx(l, j->idx);
    if (!one && j->idx < 0)
        one = rcpt_by_address(l, r->original_rcpt);
    if (!one && l->count == 1)
        one = &l->items[0];
    int n = 0;
    for (int i = 0; i < l->count; i++) {
        const struct store_recipient *rc = &l->items[i];
        if (one ? rc != one : j->idx >= 0 || !same_provider(rc->address, r->from))
            continue;
        event_base_fill(j, m, rc, "Complaint", &evs[n]);
        core_strlcpy(evs[n].feedback_type, r->feedback_type, sizeof evs[n].feedback_type);
        core_strlcpy(evs[n].user_agent, r->user_agent, sizeof evs[n].user_agent);
        evs[n++].arrival_ms = r->arrival_ms;
    }
    return n;
}

static int autoreply_events(const struct intake_job *j, const struct store_message *m,
                            const struct rcpt_list *l, struct store_event *evs)
{
    const struct store_recipient *rc = rcpt_by_idx(l, j->idx);
    if (!rc)
        rc = rcpt_by_address(l, j->report->from);
    if (!rc)
        return 0;
    event_base_fill(j, m, rc, "AutoResponse", &evs[0]);
    return 1;
}

/* ---- recording ---- */

/* Whether the report speaks for e's recipient with authority: it came to the VERP
 * address that recipient's servers saw (whose MAC only they could have seen): its own
 * (the events are then its alone), or its transaction's, when of its own domain. A batch's
 * other recipient could otherwise bounce everyone else of the message. */
static bool vouched(const struct intake_job *j, const struct store_event *e)
{
    return j->by_rcpt && (j->idx >= 0 || (j->batch_domain[0] &&
                                          !strcasecmp(domain_of(e->recipient), j->batch_domain)));
}

/* A hard bounce lists its address (spec 20 §5.5.4), as a 5xx to RCPT does in delivery,
 * on the word of a vouched report. */
static bool suppresses(const struct intake_job *j, const struct store_event *e)
{
    return vouched(j, e) && !strcmp(e->bounce_type, "Permanent");
}

static int stats_and_suppression(struct intake_job *j, struct store_conn *c,
                                 const struct store_message *m, const struct store_event *evs,
                                 int n)
{
    if (!strcmp(m->account_id, SEND_NOTICE_ACCOUNT))
        return STORE_OK;
    struct store_stat_point p = {0};
    p.bucket_ms = evs[0].created_ms - evs[0].created_ms % (15 * 60 * 1000);
    p.complaints = !strcmp(evs[0].type, "Complaint"); /* one report, one complaint */
    for (int i = 0; i < n; i++) {
        /* a bounce rate moves only on reports sent to the message's own VERP address */
        p.bounces += vouched(j, &evs[i]) && !strcmp(evs[i].bounce_type, "Permanent");
        if (!suppresses(j, &evs[i]))
            continue;
        struct store_suppressed s = {.created_ms = evs[i].created_ms,
                                     .expires_ms =
                                         evs[i].created_ms + j->fb->cfg.suppression_ttl_s * 1000};
        core_strlcpy(s.region, m->region, sizeof s.region);
        core_strlcpy(s.address, evs[i].recipient, sizeof s.address);
        core_strlcpy(s.reason, "BOUNCE", sizeof s.reason);
        core_strlcpy(s.message_id, m->id, sizeof s.message_id);
        if (store_suppressed_put(c, &s) != STORE_OK)
            return STORE_ERROR;
    }
    if (!p.bounces && !p.complaints)
        return STORE_OK;
    return store_stats_add(c, m->account_id, m->region, &p);
}

static int keep(struct store_conn *c, struct intake_job *j, const char *reason)
{
    core_strlcpy(j->kept_reason, reason, sizeof j->kept_reason);
    static const char *const kinds[] = {"unknown", "dsn", "arf", "autoreply"};
    /* what an operator needs to see; the rest of a huge message would only fill the disk */
    size_t len = j->len < FEEDBACK_KEEP_BYTES ? j->len : FEEDBACK_KEEP_BYTES;
    struct store_feedback_report r = {.received_ms = core_now_ms(), .data = j->data, .len = len};
    core_strlcpy(r.mail_from, j->mail_from, sizeof r.mail_from);
    core_strlcpy(r.rcpt, j->rcpt, sizeof r.rcpt);
    core_strlcpy(r.kind, kinds[j->report->kind], sizeof r.kind);
    core_strlcpy(r.reason, reason, sizeof r.reason);
    return store_feedback_report_insert(c, &r);
}

static int record_groups(struct intake_job *j, struct store_conn *c, struct store_event *evs,
                         int n);

struct seen_events {
    struct store_event *evs;
    int n;
};

static void drop_seen(const struct store_event *e, void *ctx)
{
    struct seen_events *s = ctx;
    for (int i = 0; i < s->n;)
        if (s->evs[i].idx == e->idx && !strcmp(s->evs[i].type, e->type))
            s->evs[i] = s->evs[--s->n];
        else
            i++;
}

/* A report says once what it says: the same bounce, complaint or auto-reply for a
 * recipient again (a report sent twice, or replayed) changes nothing, counts nothing and
 * is forwarded to nobody. */
static int drop_repeats(struct store_conn *c, const char *message_id, struct store_event *evs,
                        int *n)
{
    struct seen_events s = {evs, *n};
    int rc = store_event_list(c, message_id, drop_seen, &s);
    *n = s.n;
    return rc;
}

static int record_mapped(struct store_conn *c, struct intake_job *j, const struct store_message *m,
                         const struct rcpt_list *l)
{
    int cap = FEEDBACK_REPORT_RECIPIENTS > l->count ? FEEDBACK_REPORT_RECIPIENTS : l->count;
    struct store_event *evs = calloc((size_t)cap, sizeof *evs);
    if (!evs)
        return STORE_ERROR;
    int n = 0;
    switch (j->report->kind) {
    case FEEDBACK_REPORT_DSN:
        n = dsn_events(j, m, l, evs);
        break;
    case FEEDBACK_REPORT_ARF:
        n = arf_events(j, m, l, evs);
        break;
    case FEEDBACK_REPORT_AUTOREPLY:
        n = autoreply_events(j, m, l, evs);
        break;
    default:
        break;
    }
    int found = n;
    if (n && drop_repeats(c, m->id, evs, &n) != STORE_OK) {
        free(evs);
        return STORE_ERROR;
    }
    int rc = n ? stats_and_suppression(j, c, m, evs, n)
             : found
                 ? keep(c, j, "repeats what was recorded for its recipients already")
                 : keep(c, j, "names none of the message's recipients as failed or complaining");
    if (n && rc == STORE_OK)
        rc = record_groups(j, c, evs, n);
    free(evs);
    return rc;
}

static int event_kind_order(const void *a, const void *b)
{
    const struct store_event *x = a, *y = b;
    int c = strcmp(x->bounce_type, y->bounce_type);
    if (!c)
        c = strcmp(x->bounce_subtype, y->bounce_subtype);
    return c ? c : x->idx - y->idx;
}

/* One notification per bounce type and subtype (a DSN may report a full mailbox and an
 * unknown user together); the report is forwarded once, with the first. */
static int record_groups(struct intake_job *j, struct store_conn *c, struct store_event *evs, int n)
{
    qsort(evs, (size_t)n, sizeof *evs, event_kind_order);
    int rc = STORE_OK;
    for (int i = 0, first = 1; rc == STORE_OK && i < n; first = 0) {
        int k = i + 1;
        while (k < n && !strcmp(evs[k].bounce_type, evs[i].bounce_type) &&
               !strcmp(evs[k].bounce_subtype, evs[i].bounce_subtype))
            k++;
        rc = feedback_record(j->fb, c, &evs[i], k - i, j->data, j->len, first, &j->out);
        i = k;
    }
    return rc;
}

static int intake_write(struct store_conn *c, void *ctx)
{
    struct intake_job *j = ctx;
    if (j->report->kind == FEEDBACK_REPORT_UNKNOWN)
        return keep(c, j, j->report->error[0] ? j->report->error : "not a report");
    if (!job_message(j))
        return keep(c, j, "names no message sent by this service");
    struct store_message m;
    char *meta = NULL;
    int rc = store_message_get(c, j->message_id, &m, &meta);
    free(meta);
    if (rc == STORE_NOT_FOUND)
        return keep(c, j, "names a message this service does not know");
    if (rc != STORE_OK)
        return rc;
    struct rcpt_list l = {0};
    rc = store_queue_list(c, j->message_id, false, rcpt_add, &l);
    const struct store_recipient *first = rcpt_by_idx(&l, j->batch_idx);
    if (first)
        core_strlcpy(j->batch_domain, domain_of(first->address), sizeof j->batch_domain);
    if (rc == STORE_OK)
        rc = record_mapped(c, j, &m, &l);
    free(l.items);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR; /* all or nothing: the sender retries */
}

static void intake_done(int status, void *ctx)
{
    struct intake_job *j = ctx;
    bool ok = status == STORE_OK;
    static const char *const kinds[] = {"report", "DSN", "ARF report", "auto-reply"};
    if (!ok)
        log_error("feedback: a %s from <%s> could not be stored; the sender will retry",
                  kinds[j->report->kind], j->mail_from);
    else if (j->kept_reason[0])
        log_info("feedback: a %s from <%s> to <%s> kept aside: %s", kinds[j->report->kind],
                 j->mail_from, j->rcpt, j->kept_reason);
    else
        log_info("feedback: a %s from <%s> recorded for %s", kinds[j->report->kind], j->mail_from,
                 j->message_id);
    feedback_after(j->fb, &j->out, ok);
    j->done(j->arg, ok);
    free(j->report);
    free(j->data);
    free(j);
}

static void intake_parse(void *ctx)
{
    struct intake_job *j = ctx;
    feedback_report_parse(j->data, j->len, j->report);
}

static void intake_submit(void *ctx)
{
    struct intake_job *j = ctx;
    store_submit(j->fb->store, j->base, intake_write, intake_done, j);
}

static void intake_receive(const char *mail_from, const char *const *rcpts, int rcpt_count,
                           const char *data, size_t len, struct event_base *base,
                           void (*done)(void *arg, bool ok), void *arg, void *ctx)
{
    struct feedback *fb = ctx;
    struct intake_job *j = calloc(1, sizeof *j);
    if (!j || !(j->report = malloc(sizeof *j->report)) || !(j->data = malloc(len ? len : 1))) {
        if (j)
            free(j->report);
        free(j);
        done(arg, false);
        return;
    }
    memcpy(j->data, data, len);
    j->len = len;
    j->fb = fb;
    j->done = done;
    j->arg = arg;
    j->idx = j->batch_idx = -1;
    feedback_outgoing_init(&j->out);
    core_strlcpy(j->mail_from, mail_from, sizeof j->mail_from);
    core_strlcpy(j->rcpt, rcpt_count ? rcpts[0] : "", sizeof j->rcpt);
    for (int i = 0; i < rcpt_count && !j->by_rcpt; i++)
        j->by_rcpt = job_verp(j, rcpts[i]);
    j->base = base;
    if (fb->pool) /* GMime on a 10 MB report takes a while: not on the I/O thread */
        core_pool_run(fb->pool, base, intake_parse, intake_submit, j);
    else {
        intake_parse(j);
        intake_submit(j);
    }
}

void feedback_listener_hooks(struct feedback *fb, struct smtp_feedback_hooks *out)
{
    out->rcpt_ok = intake_rcpt_ok;
    out->receive = intake_receive;
    out->ctx = fb;
}
