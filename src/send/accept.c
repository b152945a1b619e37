/* The accept pipeline: checks in SES's order, then one durable write. Every refusal
 * happens before anything is reserved or stored, so a refused send leaves no trace. */
#include "mail/mail.h"
#include "send/send_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDR_LEN 321

struct send_job {
    struct send_shared *sh;
    struct send_sender who;
    struct store_account account;
    struct store_account_region limits;
    char region[STORE_REGION_LEN];
    int64_t now_ms;
    struct send_result res;
    struct buf message;
    char (*recipients)[ADDR_LEN];
    int recipient_count;
    int quota_recipients;
    char source[ADDR_LEN];             /* where feedback goes */
    char identity[STORE_IDENTITY_LEN]; /* governs the From */
    char from[ADDR_LEN];               /* the From address it governs (DKIM's d=) */
    struct buf unverified;             /* identities that failed the check, comma-joined */
    struct buf meta; /* members of the capture entry's JSON object, comma-joined */
    bool raw;        /* SendRawEmail or SMTP: the size was checked on the bytes as sent */
    send_done_fn done;
    void *arg;
};

struct send_shared *send_shared_new(const struct sesame_config *cfg, struct store *store)
{
    struct send_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->cfg = *cfg;
    sh->store = store;
    pthread_mutex_init(&sh->lock, NULL);
    if (send_dkim_cache_init(sh) != 0) {
        send_shared_free(sh);
        return NULL;
    }
    return sh;
}

void send_shared_use_pool(struct send_shared *sh, struct core_pool *pool)
{
    sh->pool = pool;
}

struct core_pool *send_shared_pool(const struct send_shared *sh)
{
    return sh->pool;
}

void send_shared_on_queued(struct send_shared *sh, send_queued_fn fn, void *ctx)
{
    sh->queued_fn = fn;
    sh->queued_ctx = ctx;
}

void send_shared_free(struct send_shared *sh)
{
    if (!sh)
        return;
    send_limits_free(sh);
    send_dkim_cache_free(sh);
    pthread_mutex_destroy(&sh->lock);
    free(sh);
}

static struct send_job *job_new(struct send_shared *sh, const struct send_sender *who,
                                send_done_fn done, void *arg)
{
    struct send_job *j = calloc(1, sizeof *j);
    if (!j)
        abort();
    j->sh = sh;
    j->account = *who->account;
    j->limits = *who->limits;
    core_strlcpy(j->region, who->region, sizeof j->region);
    j->who = (struct send_sender){who->conn, &j->account, j->region, &j->limits, who->identities};
    j->now_ms = core_now_ms();
    core_message_id(j->now_ms, j->res.message_id, sizeof j->res.message_id);
    buf_init(&j->message);
    buf_init(&j->unverified);
    buf_init(&j->meta);
    j->done = done;
    j->arg = arg;
    return j;
}

static void job_free(struct send_job *j)
{
    buf_free(&j->message);
    buf_free(&j->unverified);
    free(j->recipients);
    buf_free(&j->meta);
    free(j);
}

/* Ends the job with a refusal: nothing was reserved or stored. */
static void job_refuse(struct send_job *j, enum send_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void job_refuse(struct send_job *j, enum send_error e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->res.message, sizeof j->res.message, fmt, ap);
    va_end(ap);
    j->res.error = e;
    j->res.message_id[0] = '\0';
    j->done(&j->res, j->arg);
    job_free(j);
}

/* ---- addresses ---- */

static bool has_line_break(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* A SendEmail address parameter (DECISIONS 17): ASCII, one line, one valid mailbox. */
static bool job_address(struct send_job *j, const char *param, char *bare)
{
    if (has_line_break(param)) {
        job_refuse(j, SEND_INVALID, "Header injection: line break in address '%s'.", param);
        return false;
    }
    if (!is_ascii(param)) {
        job_refuse(j, SEND_INVALID,
                   "Non-ASCII characters in address '%s': use SendRawEmail with RFC 2047 "
                   "encoded-words.",
                   param);
        return false;
    }
    if (!mail_mailbox_address(param, bare, ADDR_LEN) || !mail_address_valid(bare)) {
        job_refuse(j, SEND_INVALID, "Illegal address '%s'.", param);
        return false;
    }
    return true;
}

static bool job_add_recipient(struct send_job *j, const char *bare)
{
    int max = j->sh->cfg.max_recipients;
    /* Header addresses come here unchecked by job_address: the same rules apply. */
    if (strlen(bare) >= ADDR_LEN || !mail_address_valid(bare)) {
        job_refuse(j, SEND_REJECTED, "Illegal address '%.320s'.", bare);
        return false;
    }
    if (j->recipient_count >= max) {
        job_refuse(j, SEND_REJECTED, "Recipient count exceeds %d.", max);
        return false;
    }
    if (!j->recipients)
        j->recipients = malloc((size_t)max * ADDR_LEN);
    if (!j->recipients)
        abort();
    core_strlcpy(j->recipients[j->recipient_count++], bare, ADDR_LEN);
    if (!send_is_simulator(bare))
        j->quota_recipients++; /* simulator recipients count for the rate only */
    return true;
}

/* ---- verification ---- */

static void note_unverified(struct send_job *j, const char *address)
{
    /* Each failing identity once, in the order met. */
    if (j->unverified.len) {
        const char *list = buf_cstr(&j->unverified);
        size_t n = strlen(address);
        for (const char *p = list; (p = strstr(p, address)); p += n)
            if ((p == list || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
                return;
        buf_puts(&j->unverified, ", ");
    }
    buf_puts(&j->unverified, address);
}

static void check_sender(struct send_job *j, const char *address, bool governs)
{
    char governing[STORE_IDENTITY_LEN];
    if (!send_identity_find(&j->who, address, governing, sizeof governing))
        note_unverified(j, address);
    else if (governs && !j->identity[0]) {
        core_strlcpy(j->identity, governing, sizeof j->identity);
        core_strlcpy(j->from, address, sizeof j->from);
    }
}

/* Sandbox: every recipient but the simulator's must be verified too (spec 20 §7.6). */
static bool job_verified(struct send_job *j)
{
    char governing[STORE_IDENTITY_LEN];
    if (!j->limits.production)
        for (int i = 0; i < j->recipient_count; i++)
            if (!send_is_simulator(j->recipients[i]) &&
                !send_identity_find(&j->who, j->recipients[i], governing, sizeof governing))
                note_unverified(j, j->recipients[i]);
    if (!j->unverified.len)
        return true;
    char region[STORE_REGION_LEN];
    core_strlcpy(region, j->region, sizeof region);
    for (char *p = region; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p -= 32;
    job_refuse(j, SEND_REJECTED,
               "Email address is not verified. The following identities failed the check in "
               "region %s: %s",
               region, buf_cstr(&j->unverified));
    return false;
}

/* ---- commit ---- */

/* Adds "name":value to the capture entry (value already JSON). */
static void meta_member(struct send_job *j, const char *name)
{
    if (j->meta.len)
        buf_puts(&j->meta, ",");
    buf_json_string(&j->meta, name);
    buf_puts(&j->meta, ":");
}

static void meta_string(struct send_job *j, const char *name, const char *value)
{
    meta_member(j, name);
    buf_json_string(&j->meta, value);
}

/* The capture entry in LocalStack's shape (SendEmail: Destination, Source, Subject, Body;
 * raw: Source, and RawData added when listed). */
static char *capture_meta(struct send_job *j)
{
    char stamp[32];
    core_iso8601(j->now_ms, stamp, sizeof stamp);
    meta_string(j, "Id", j->res.message_id);
    meta_string(j, "Region", j->region);
    meta_string(j, "Timestamp", stamp);
    struct buf out;
    buf_init(&out);
    buf_puts(&out, "{");
    buf_append(&out, j->meta.data, j->meta.len);
    buf_puts(&out, "}");
    return out.data;
}

struct send_write {
    struct send_job *job;
    struct store_message msg;
    char *meta;
    const char **recipients;
    bool *queued; /* per recipient; NULL: all */
    bool any_queued;
};

static int send_write_run(struct store_conn *c, void *ctx)
{
    struct send_write *w = ctx;
    struct send_job *j = w->job;
    int rc = store_message_insert(c, &w->msg, w->recipients, j->recipient_count);
    if (rc == STORE_OK && j->quota_recipients > 0)
        rc = store_sent_add(c, j->account.id, j->region, j->now_ms, j->quota_recipients);
    return rc == STORE_OK ? STORE_OK : STORE_ERROR;
}

/* The committed message goes to the delivery engine. */
static void send_hand_over(struct send_write *w)
{
    struct send_job *j = w->job;
    struct send_queued q = {
        .id = w->msg.id,
        .account_id = w->msg.account_id,
        .region = w->msg.region,
        .source = w->msg.source,
        .created_ms = w->msg.created_ms,
        .data = w->msg.data,
        .len = w->msg.data_len,
        .recipients = w->recipients,
        .recipient_count = j->recipient_count,
        .queued = w->queued,
    };
    j->sh->queued_fn(&q, j->sh->queued_ctx);
}

static void send_write_done(int status, void *ctx)
{
    struct send_write *w = ctx;
    struct send_job *j = w->job;
    if (status != STORE_OK) {
        send_limits_release(j->sh, &j->who, j->now_ms, j->quota_recipients);
        j->res.error = SEND_INTERNAL;
        j->res.message_id[0] = '\0';
        snprintf(j->res.message, sizeof j->res.message, "The message could not be stored.");
    } else if (w->any_queued && j->sh->queued_fn)
        send_hand_over(w);
    j->done(&j->res, j->arg);
    free(w->meta);
    free(w->recipients);
    free(w->queued);
    free(w);
    job_free(j);
}

static void job_store(struct send_job *j, struct event_base *base);

/* DKIM (spec 20 §2.3.3): after every rewrite, before the bytes are stored, on the pool. */
struct sign_job {
    struct send_job *job;
    struct event_base *base;
    struct send_dkim_keys *sets[2]; /* the From domain's, the operator's */
};

static void sign_work(void *ctx)
{
    struct sign_job *s = ctx;
    struct send_job *j = s->job;
    struct buf signed_message;
    buf_init(&signed_message);
    send_dkim_sign(j->message.data, j->message.len, s->sets, 2, j->now_ms / 1000, &signed_message);
    buf_free(&j->message);
    j->message = signed_message;
}

static void sign_done(void *ctx)
{
    struct sign_job *s = ctx;
    for (int i = 0; i < 2; i++)
        send_dkim_release(s->job->sh, s->sets[i]);
    job_store(s->job, s->base);
    free(s);
}

static void job_sign(struct send_job *j, struct event_base *base)
{
    struct send_dkim_keys *customer = send_dkim_find(j->sh, &j->who, j->identity, j->from);
    struct send_dkim_keys *operator_keys = send_dkim_operator(j->sh);
    if (!customer && !operator_keys)
        return job_store(j, base);
    struct sign_job *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    *s = (struct sign_job){j, base, {customer, operator_keys}};
    if (!j->sh->pool) {
        sign_work(s);
        return sign_done(s);
    }
    core_pool_run(j->sh->pool, base, sign_work, sign_done, s);
}

/* Size, quota and rate, then signing and the durable write; done hears the MessageId
 * after the commit. */
static void job_commit(struct send_job *j, struct event_base *base)
{
    int64_t max = j->sh->cfg.max_message_bytes;
    /* Raw messages were measured as sent (DECISIONS 14), before Sesame's own headers. */
    if (!j->raw && (int64_t)j->message.len > max)
        return job_refuse(j, SEND_REJECTED, "Message length is more than %lld bytes long: '%zu'.",
                          (long long)max, j->message.len);
    char msg[256];
    enum send_error e = send_limits_reserve(j->sh, &j->who, j->now_ms, j->recipient_count,
                                            j->quota_recipients, msg, sizeof msg);
    if (e != SEND_OK)
        return job_refuse(j, e, "%s", msg);
    job_sign(j, base);
}

static void job_store(struct send_job *j, struct event_base *base)
{
    struct send_write *w = calloc(1, sizeof *w);
    if (!w || !(w->recipients = calloc((size_t)j->recipient_count, sizeof *w->recipients)))
        abort();
    for (int i = 0; i < j->recipient_count; i++)
        w->recipients[i] = j->recipients[i];
    w->job = j;
    w->meta = capture_meta(j);
    struct store_message *m = &w->msg;
    core_strlcpy(m->id, j->res.message_id, sizeof m->id);
    core_strlcpy(m->account_id, j->account.id, sizeof m->account_id);
    core_strlcpy(m->region, j->region, sizeof m->region);
    core_strlcpy(m->source, j->source, sizeof m->source);
    core_strlcpy(m->identity, j->identity, sizeof m->identity);
    m->created_ms = j->now_ms;
    m->data = j->message.data;
    m->data_len = j->message.len;
    m->meta = w->meta;
    m->captured = !strcmp(j->sh->cfg.delivery_mode, "capture");
    w->any_queued = !m->captured;
    if (m->captured) { /* the simulator's outcomes still happen (DECISIONS 30) */
        if (!(w->queued = calloc((size_t)j->recipient_count, sizeof *w->queued)))
            abort();
        for (int i = 0; i < j->recipient_count; i++)
            w->any_queued |= w->queued[i] = send_is_simulator(j->recipients[i]);
        m->queued = w->queued;
    }
    store_submit(j->sh->store, base, send_write_run, send_write_done, w);
}

static void message_id_header(struct send_job *j, char *out, size_t outlen)
{
    snprintf(out, outlen, "<%s@%s>", j->res.message_id, j->sh->cfg.message_id_domain);
}

/* ---- SendEmail ---- */

static bool formatted_recipients(struct send_job *j, const struct send_formatted *f)
{
    const char *const *lists[3] = {f->to, f->cc, f->bcc};
    const int counts[3] = {f->to_count, f->cc_count, f->bcc_count};
    const char *names[3] = {"ToAddresses", "CcAddresses", "BccAddresses"};
    char bare[ADDR_LEN];
    meta_member(j, "Destination");
    for (int l = 0; l < 3; l++) {
        buf_puts(&j->meta, l ? "," : "{");
        buf_json_string(&j->meta, names[l]);
        buf_puts(&j->meta, ":[");
        for (int i = 0; i < counts[l]; i++) {
            if (!job_address(j, lists[l][i], bare) || !job_add_recipient(j, bare))
                return false;
            if (i)
                buf_puts(&j->meta, ",");
            buf_json_string(&j->meta, lists[l][i]);
        }
        buf_puts(&j->meta, "]");
    }
    buf_puts(&j->meta, "}");
    return true;
}

static bool formatted_check(struct send_job *j, const struct send_formatted *f)
{
    char bare[ADDR_LEN];
    if (!job_address(j, f->source, bare))
        return false;
    core_strlcpy(j->source, bare, sizeof j->source);
    check_sender(j, bare, true);
    if (f->return_path) {
        if (!job_address(j, f->return_path, bare))
            return false;
        check_sender(j, bare, false);
        core_strlcpy(j->source, bare, sizeof j->source); /* feedback goes to ReturnPath */
    }
    for (int i = 0; i < f->reply_to_count; i++) /* Reply-To need not be verified */
        if (!job_address(j, f->reply_to[i], bare))
            return false;
    if (has_line_break(f->subject)) {
        job_refuse(j, SEND_INVALID, "Header injection: line break in the subject.");
        return false;
    }
    if (!formatted_recipients(j, f))
        return false;
    if (j->recipient_count == 0) {
        job_refuse(j, SEND_REJECTED, "There are no recipients specified");
        return false;
    }
    return job_verified(j);
}

void send_formatted(struct send_shared *sh, const struct send_sender *who,
                    const struct send_formatted *f, struct event_base *base, send_done_fn done,
                    void *arg)
{
    struct send_job *j = job_new(sh, who, done, arg);
    if (j->account.suspended)
        return job_refuse(j, SEND_REJECTED, "Customer is suspended");
    if (!formatted_check(j, f))
        return;
    char mid[400], err[256];
    message_id_header(j, mid, sizeof mid);
    struct mail_formatted mf = {
        .source = f->source,
        .to = f->to,
        .to_count = f->to_count,
        .cc = f->cc,
        .cc_count = f->cc_count,
        .reply_to = f->reply_to,
        .reply_to_count = f->reply_to_count,
        .subject = f->subject,
        .subject_charset = f->subject_charset,
        .text = f->text,
        .text_charset = f->text_charset,
        .html = f->html,
        .html_charset = f->html_charset,
        .date_ms = j->now_ms,
        .message_id = mid,
    };
    if (mail_build(&mf, &j->message, err, sizeof err) != MAIL_OK)
        return job_refuse(j, SEND_INVALID, "%s", err);
    meta_string(j, "Source", f->source);
    meta_string(j, "Subject", f->subject);
    meta_member(j, "Body");
    buf_puts(&j->meta, "{\"text_part\":");
    buf_json_string(&j->meta, f->text);
    buf_puts(&j->meta, ",\"html_part\":");
    buf_json_string(&j->meta, f->html);
    buf_puts(&j->meta, "}");
    job_commit(j, base);
}

/* ---- SendRawEmail ---- */

static bool raw_recipients(struct send_job *j, const struct send_raw *r,
                           const struct mail_inspection *in)
{
    char bare[ADDR_LEN];
    for (int i = 0; i < r->destination_count; i++)
        if (!job_address(j, r->destinations[i], bare) || !job_add_recipient(j, bare))
            return false;
    if (r->destination_count == 0) {
        char **lists[3] = {in->to, in->cc, in->bcc};
        int counts[3] = {in->to_count, in->cc_count, in->bcc_count};
        for (int l = 0; l < 3; l++)
            for (int i = 0; i < counts[l]; i++)
                if (!job_add_recipient(j, lists[l][i]))
                    return false;
    }
    if (j->recipient_count == 0) {
        job_refuse(j, SEND_REJECTED, "There are no recipients specified");
        return false;
    }
    return true;
}

/* From, Sender, Return-Path and Source must be verified (DECISIONS 9); feedback goes to
 * Source, else the Return-Path header, else From (spec 10 §4.5). */
static bool raw_senders(struct send_job *j, const struct send_raw *r,
                        const struct mail_inspection *in)
{
    char source[ADDR_LEN] = "";
    if (r->source && !job_address(j, r->source, source))
        return false;
    if (!in->from_count && !source[0]) {
        job_refuse(j, SEND_REJECTED, "Missing required header 'From'.");
        return false;
    }
    const char *header_senders[] = {in->sender, in->return_path};
    for (int i = 0; i < in->from_count + 2; i++) {
        const char *a = i < in->from_count ? in->from[i] : header_senders[i - in->from_count];
        if (a && (strlen(a) >= ADDR_LEN || !mail_address_valid(a))) {
            job_refuse(j, SEND_REJECTED, "Illegal address '%.320s'.", a);
            return false;
        }
    }
    for (int i = 0; i < in->from_count; i++)
        check_sender(j, in->from[i], true);
    if (!in->from_count)
        check_sender(j, source, true);
    if (in->sender)
        check_sender(j, in->sender, false);
    if (in->return_path)
        check_sender(j, in->return_path, false);
    if (source[0] && in->from_count)
        check_sender(j, source, false);
    core_strlcpy(j->source,
                 source[0]         ? source
                 : in->return_path ? in->return_path
                                   : in->from[0],
                 sizeof j->source);
    return true;
}

static bool raw_check(struct send_job *j, const struct send_raw *r, struct buf *canonical,
                      struct mail_inspection *in)
{
    char err[256];
    int64_t max = j->sh->cfg.max_message_bytes;
    if ((int64_t)r->len > max) {
        job_refuse(j, SEND_REJECTED, "Message length is more than %lld bytes long: '%zu'.",
                   (long long)max, r->len);
        return false;
    }
    if (mail_normalize(r->data, r->len, canonical, err, sizeof err) != MAIL_OK ||
        mail_inspect(canonical->data, canonical->len, in, err, sizeof err) != MAIL_OK) {
        job_refuse(j, SEND_REJECTED, "%s", err);
        return false;
    }
    if (in->has_delivery_status) {
        job_refuse(j, SEND_REJECTED,
                   "Messages with a message/delivery-status part are not accepted.");
        return false;
    }
    if (in->blocked_attachment[0]) {
        job_refuse(j, SEND_REJECTED, "Illegal filename '%s': the extension is not allowed.",
                   in->blocked_attachment);
        return false;
    }
    return raw_senders(j, r, in) && raw_recipients(j, r, in) && job_verified(j);
}

void send_raw(struct send_shared *sh, const struct send_sender *who, const struct send_raw *r,
              struct event_base *base, send_done_fn done, void *arg)
{
    struct send_job *j = job_new(sh, who, done, arg);
    j->raw = true;
    if (j->account.suspended)
        return job_refuse(j, SEND_REJECTED, "Customer is suspended");
    struct buf canonical;
    struct mail_inspection in;
    buf_init(&canonical);
    memset(&in, 0, sizeof in);
    bool ok = raw_check(j, r, &canonical, &in);
    if (ok) {
        char mid[400];
        message_id_header(j, mid, sizeof mid);
        struct mail_rewrite rw = {j->now_ms, mid, in.from_count ? NULL : r->source};
        ok = mail_rewrite(canonical.data, canonical.len, &rw, &j->message) == MAIL_OK;
        if (!ok)
            job_refuse(j, SEND_REJECTED, "The message's header section could not be rewritten.");
    }
    if (ok) {
        /* The bytes are stored once; the capture endpoint adds them as RawData. */
        buf_puts(&j->meta, "\"Raw\":true");
        meta_string(j, "Source", r->source ? r->source : in.from_count ? in.from[0] : j->source);
    }
    mail_inspection_free(&in);
    buf_free(&canonical);
    if (!ok)
        return;
    job_commit(j, base);
}
