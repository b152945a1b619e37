/* The scheduler thread: its event loop, the inbox the accept pipeline fills, the retry
 * heap, the messages in memory, and the resumption from the store at start. */
#include "delivery/delivery_internal.h"
#include "feedback/feedback.h"
#include "net/net.h"
#include "send/send.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_POLL_MS 1000 /* how soon the admin command's retry and drop are seen */

/* ---- messages ---- */

struct dl_message *dl_message_find(struct delivery *d, const char *id)
{
    for (struct dl_message *m = d->messages[core_hash(CORE_HASH_SEED, id) % DL_MSG_BUCKETS]; m;
         m = m->hash_next)
        if (!strcmp(m->id, id))
            return m;
    return NULL;
}

static struct dl_message *message_add(struct delivery *d, const struct store_recipient *r)
{
    struct dl_message *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    core_strlcpy(m->id, r->message_id, sizeof m->id);
    core_strlcpy(m->account_id, r->account_id, sizeof m->account_id);
    core_strlcpy(m->region, r->region, sizeof m->region);
    core_strlcpy(m->source, r->source, sizeof m->source);
    m->created_ms = r->created_ms;
    struct dl_message **head = &d->messages[core_hash(CORE_HASH_SEED, m->id) % DL_MSG_BUCKETS];
    m->hash_next = *head;
    *head = m;
    return m;
}

/* Eight bytes at a time: every message passes here once. */
static bool has_8bit(const char *data, size_t len)
{
    size_t i = 0;
    for (uint64_t w; i + 8 <= len; i += 8) {
        memcpy(&w, data + i, 8);
        if (w & 0x8080808080808080ull)
            return true;
    }
    for (; i < len; i++)
        if ((unsigned char)data[i] >= 0x80)
            return true;
    return false;
}

static void message_set_data(struct delivery *d, struct dl_message *m, char *data, size_t len)
{
    d->data_bytes += len;
    m->data = data;
    m->len = len;
    m->eightbit = has_8bit(data, len);
}

bool dl_message_load(struct delivery *d, struct dl_message *m)
{
    if (m->data)
        return true;
    char *data;
    size_t len;
    if (store_message_data(d->conn, m->id, &data, &len) != STORE_OK) {
        log_error("delivery: message %s: cannot read its bytes from the store", m->id);
        return false;
    }
    message_set_data(d, m, data, len);
    return true;
}

static void message_drop_data(struct delivery *d, struct dl_message *m)
{
    if (!m->data)
        return;
    d->data_bytes -= m->len;
    free(m->data);
    m->data = NULL;
}

void dl_message_idle(struct delivery *d, struct dl_message *m)
{
    if (m->data && !m->sending &&
        (m->active == 0 || d->data_bytes > (size_t)d->cfg.delivery_memory_bytes))
        message_drop_data(d, m);
}

void dl_rcpt_done(struct delivery *d, struct dl_rcpt *r)
{
    struct dl_message *m = r->msg;
    for (int i = 0; i < m->rcpt_count; i++)
        if (m->rcpts[i] == r)
            m->rcpts[i] = NULL;
    m->pending--;
    free(r);
    dl_message_unref(d, m);
}

void dl_message_unref(struct delivery *d, struct dl_message *m)
{
    if (m->pending > 0)
        return;
    struct dl_message **p = &d->messages[core_hash(CORE_HASH_SEED, m->id) % DL_MSG_BUCKETS];
    while (*p && *p != m)
        p = &(*p)->hash_next;
    if (*p)
        *p = m->hash_next;
    free(m->rcpts);
    message_drop_data(d, m);
    free(m);
}

/* ---- the retry heap ---- */

static void heap_swap(struct delivery *d, size_t a, size_t b)
{
    struct dl_rcpt *t = d->heap[a];
    d->heap[a] = d->heap[b];
    d->heap[b] = t;
    d->heap[a]->heap_pos = a;
    d->heap[b]->heap_pos = b;
}

static void heap_up(struct delivery *d, size_t i)
{
    while (i > 0 && d->heap[(i - 1) / 2]->next_ms > d->heap[i]->next_ms) {
        heap_swap(d, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct delivery *d, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < d->heap_len && d->heap[l]->next_ms < d->heap[m]->next_ms)
            m = l;
        if (r < d->heap_len && d->heap[r]->next_ms < d->heap[m]->next_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(d, i, m);
        i = m;
    }
}

static void retry_timer_arm(struct delivery *d)
{
    if (!d->heap_len) {
        evtimer_del(d->retry_timer);
        return;
    }
    int64_t wait = d->heap[0]->next_ms - core_now_ms();
    if (wait < 0)
        wait = 0;
    struct timeval tv = {wait / 1000, (wait % 1000) * 1000};
    evtimer_add(d->retry_timer, &tv);
}

void dl_heap_push(struct delivery *d, struct dl_rcpt *r)
{
    if (d->heap_len == d->heap_cap) {
        d->heap_cap = d->heap_cap ? d->heap_cap * 2 : 256;
        d->heap = realloc(d->heap, d->heap_cap * sizeof *d->heap);
        if (!d->heap)
            abort();
    }
    r->state = DL_WAITING;
    r->heap_pos = d->heap_len;
    d->heap[d->heap_len++] = r;
    heap_up(d, r->heap_pos);
    if (r->heap_pos == 0)
        retry_timer_arm(d);
}

void dl_heap_remove(struct delivery *d, struct dl_rcpt *r)
{
    size_t i = r->heap_pos;
    heap_swap(d, i, --d->heap_len);
    if (i < d->heap_len) {
        heap_up(d, i);
        heap_down(d, i);
    }
    if (i == 0)
        retry_timer_arm(d);
}

/* Recipients whose time has come go to their destinations' ready lists. */
static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct delivery *d = arg;
    int64_t now = core_now_ms();
    while (d->heap_len && d->heap[0]->next_ms <= now) {
        struct dl_rcpt *r = d->heap[0];
        dl_heap_remove(d, r);
        dl_dest_add_ready(d, r);
    }
    retry_timer_arm(d);
}

/* ---- taking recipients in ---- */

/* A recipient read from the store or handed over: settled at once, or scheduled. */
static void rcpt_take(struct delivery *d, struct dl_message *m, const struct store_recipient *sr)
{
    struct dl_rcpt *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->msg = m;
    r->idx = sr->idx;
    core_strlcpy(r->address, sr->address, sizeof r->address);
    r->attempts = sr->attempts;
    r->next_ms = sr->next_ms;
    m->pending++;
    if (m->rcpt_count == m->rcpt_cap) {
        m->rcpt_cap = m->rcpt_cap ? m->rcpt_cap * 2 : 4;
        m->rcpts = realloc(m->rcpts, (size_t)m->rcpt_cap * sizeof *m->rcpts);
        if (!m->rcpts)
            abort();
    }
    m->rcpts[m->rcpt_count++] = r;
    if (r->attempts == 0 && dl_outcome_settled_early(d, r))
        return;
    r->dest = dl_dest_for(d, r->address);
    if (r->next_ms <= core_now_ms())
        dl_dest_add_ready(d, r);
    else
        dl_heap_push(d, r);
}

struct load_ctx {
    struct delivery *d;
    int count;
};

static void load_one(const struct store_recipient *sr, void *arg)
{
    struct load_ctx *l = arg;
    struct dl_message *m = dl_message_find(l->d, sr->message_id);
    if (!m)
        m = message_add(l->d, sr);
    rcpt_take(l->d, m, sr);
    l->count++;
}

/* After a start: everything the store holds queued, with its schedule. */
static void load_queue(struct delivery *d)
{
    struct load_ctx l = {d, 0};
    d->intake = true;
    int rc = store_queue_list(d->conn, NULL, true, load_one, &l);
    d->intake = false;
    dl_dests_kick_pending(d);
    if (rc != STORE_OK)
        log_error("delivery: cannot read the queue from the store");
    else if (l.count)
        log_info("delivery: resumed %d queued recipients from the store", l.count);
    store_control_get(d->conn, "queue", &d->control_seen);
}

static void on_inbox(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct delivery *d = arg;
    pthread_mutex_lock(&d->lock);
    struct dl_inbox *in = d->inbox;
    d->inbox = NULL;
    pthread_mutex_unlock(&d->lock);
    /* The list is newest first; take the oldest first. */
    struct dl_inbox *rev = NULL;
    while (in) {
        struct dl_inbox *next = in->next;
        in->next = rev;
        rev = in;
        in = next;
    }
    /* The suppression lists are read for each new recipient: one snapshot for them all. */
    bool snapshot = rev && store_read_begin(d->conn) == STORE_OK;
    for (in = rev; in;) {
        struct dl_message *m = message_add(d, &in->rcpts[0]);
        message_set_data(d, m, in->data, in->len);
        /* Held while its recipients are taken in: one settled at once must not free it. */
        m->active++;
        m->pending++;
        d->intake = true; /* a message's recipients at one domain share a transaction */
        for (int i = 0; i < in->count; i++)
            rcpt_take(d, m, &in->rcpts[i]);
        d->intake = false;
        dl_dests_kick_pending(d);
        m->active--;
        m->pending--;
        dl_message_idle(d, m);
        dl_message_unref(d, m);
        struct dl_inbox *next = in->next;
        free(in->rcpts);
        free(in);
        in = next;
    }
    if (snapshot)
        store_read_end(d->conn);
}

void delivery_enqueue(struct delivery *d, const struct delivery_message *msg)
{
    if (!d)
        return;
    struct dl_inbox *in = calloc(1, sizeof *in);
    int n = 0;
    if (!in || !(in->rcpts = calloc((size_t)msg->recipient_count + 1, sizeof *in->rcpts)) ||
        !(in->data = malloc(msg->len + 1)))
        abort();
    for (int i = 0; i < msg->recipient_count; i++) {
        if (msg->queued && !msg->queued[i])
            continue;
        struct store_recipient *r = &in->rcpts[n++];
        core_strlcpy(r->message_id, msg->id, sizeof r->message_id);
        r->idx = i;
        core_strlcpy(r->address, msg->recipients[i], sizeof r->address);
        core_strlcpy(r->account_id, msg->account_id, sizeof r->account_id);
        core_strlcpy(r->region, msg->region, sizeof r->region);
        core_strlcpy(r->source, msg->source, sizeof r->source);
        r->created_ms = msg->created_ms;
    }
    memcpy(in->data, msg->data, msg->len);
    in->len = msg->len;
    in->count = n;
    pthread_mutex_lock(&d->lock);
    bool drop = d->stopped || n == 0; /* stopped: the store has it; the next start resumes it */
    if (!drop) {
        in->next = d->inbox;
        d->inbox = in;
    }
    pthread_mutex_unlock(&d->lock);
    if (drop) {
        free(in->rcpts);
        free(in->data);
        free(in);
        return;
    }
    event_active(d->inbox_ev, EV_READ, 0);
}

/* ---- the admin command's retry and drop ---- */

static struct dl_rcpt *message_rcpt(struct dl_message *m, int idx)
{
    for (int i = 0; i < m->rcpt_count; i++)
        if (m->rcpts[i] && m->rcpts[i]->idx == idx)
            return m->rcpts[i];
    return NULL;
}

/* A queued recipient as the store has it now: made due earlier (retry) goes ready. */
static void reconcile_one(const struct store_recipient *sr, void *arg)
{
    struct delivery *d = arg;
    struct dl_message *m = dl_message_find(d, sr->message_id);
    struct dl_rcpt *r = m ? message_rcpt(m, sr->idx) : NULL;
    if (!r)
        return; /* accepted a moment ago and still in the inbox */
    r->seen = true;
    if (r->state == DL_WAITING && sr->next_ms < r->next_ms) {
        dl_heap_remove(d, r);
        r->next_ms = sr->next_ms;
        dl_dest_add_ready(d, r);
    }
}

/* Recipients the store no longer has queued were dropped by the operator. */
static void reconcile_sweep(struct delivery *d, struct dl_message *m)
{
    for (int i = 0; i < m->rcpt_count; i++) {
        struct dl_rcpt *r = m->rcpts[i];
        if (!r || r->seen) {
            if (r)
                r->seen = false;
            continue;
        }
        if (r->state == DL_IN_FLIGHT) {
            r->dropped = true;
            continue;
        }
        if (r->state == DL_WAITING)
            dl_heap_remove(d, r);
        else
            dl_dest_remove_ready(r->dest, r);
        log_info("delivery: %s to %s dropped by the operator", m->id, r->address);
        bool last = m->pending == 1;
        dl_rcpt_done(d, r);
        if (last)
            return; /* m is gone with it */
    }
}

static void control_changed(struct delivery *d)
{
    if (store_queue_list(d->conn, NULL, true, reconcile_one, d) != STORE_OK)
        return;
    for (int b = 0; b < DL_MSG_BUCKETS; b++)
        for (struct dl_message *m = d->messages[b], *next; m; m = next) {
            next = m->hash_next;
            reconcile_sweep(d, m);
        }
}

static void on_control_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct delivery *d = arg;
    int64_t v = d->control_seen;
    if (store_control_get(d->conn, "queue", &v) == STORE_OK && v != d->control_seen) {
        d->control_seen = v;
        control_changed(d);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct delivery *d = arg;
    event_base_loopbreak(d->base);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    dl_results_flush(arg);
}

static void *delivery_main(void *arg)
{
    struct delivery *d = arg;
    pthread_setname_np(pthread_self(), "sesamed-deliver");
    event_base_loop(d->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static bool delivery_setup(struct delivery *d)
{
    char err[256];
    if (!(d->base = net_event_base()) || !(d->conn = store_conn_open(d->store)) ||
        !(d->resolver = dns_resolver_new(d->base, &d->cfg)))
        return false;
    if (!(d->tls_ctx = smtp_client_tls_ctx(err, sizeof err))) {
        log_error("delivery: TLS: %s", err);
        return false;
    }
    d->inbox_ev = event_new(d->base, -1, EV_PERSIST, on_inbox, d);
    d->stop_ev = event_new(d->base, -1, 0, on_stop, d);
    d->flush_ev = event_new(d->base, -1, 0, on_flush, d);
    d->retry_timer = evtimer_new(d->base, on_retry_timer, d);
    d->control_timer = event_new(d->base, -1, EV_PERSIST, on_control_timer, d);
    struct timeval poll = {CONTROL_POLL_MS / 1000, (CONTROL_POLL_MS % 1000) * 1000};
    event_add(d->control_timer, &poll);
    return d->inbox_ev && d->stop_ev && d->flush_ev && d->retry_timer && d->control_timer;
}

/* Emails the feedback module stored (forwarded reports, email subscriptions, notices),
 * once committed: delivered like Sesame's other notices. */
static void feedback_email_in(const struct feedback_email_view *e, void *ctx)
{
    const char *rcpts[1] = {e->to};
    struct delivery_message m = {
        e->id, SEND_NOTICE_ACCOUNT, e->region, e->from, e->created_ms, e->data, e->len, rcpts, 1,
        NULL};
    delivery_enqueue(ctx, &m);
}

struct delivery *delivery_start(const struct sesame_config *cfg, struct store *store,
                                struct feedback *feedback)
{
    struct delivery *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->cfg = *cfg;
    d->store = store;
    d->feedback = feedback;
    store_derive_key(store, DELIVERY_VERP_KEY_LABEL, d->verp_key);
    core_strlcpy(d->bounce_domain, cfg->bounce_domain[0] ? cfg->bounce_domain : cfg->hostname,
                 sizeof d->bounce_domain);
    pthread_mutex_init(&d->lock, NULL);
    /* The queue is read before any message can be handed over, so none is taken twice. */
    bool ok = delivery_setup(d);
    if (ok)
        load_queue(d);
    if (ok && feedback) /* before the thread: its first results may cause emails */
        feedback_on_email(feedback, feedback_email_in, d);
    if (!ok || pthread_create(&d->thread, NULL, delivery_main, d) != 0) {
        log_error("delivery: cannot start the scheduler");
        delivery_free(d);
        return NULL;
    }
    d->running = true;
    return d;
}

void delivery_stop(struct delivery *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopped = true;
    pthread_mutex_unlock(&d->lock);
    if (d->running) {
        event_active(d->stop_ev, EV_READ, 0);
        pthread_join(d->thread, NULL);
        d->running = false;
    }
    dns_resolver_free(d->resolver); /* pending lookups are dropped with their callbacks */
    d->resolver = NULL;
    dl_dests_free(d); /* connections close; what was in flight stays queued in the store */
    /* A freed bufferevent with deferred callbacks pending is finalized by the loop: give
     * it one last pass, with nothing left that could start new work. */
    if (d->base) {
        struct event *quiet[] = {d->inbox_ev, d->retry_timer, d->control_timer};
        for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
            if (quiet[i])
                event_del(quiet[i]);
        event_base_loop(d->base, EVLOOP_NONBLOCK);
    }
    dl_results_flush(d);
}

static void free_messages(struct delivery *d)
{
    free(d->heap);
    for (int b = 0; b < DL_MSG_BUCKETS; b++)
        while (d->messages[b]) {
            struct dl_message *m = d->messages[b];
            d->messages[b] = m->hash_next;
            for (int i = 0; i < m->rcpt_count; i++)
                free(m->rcpts[i]);
            free(m->rcpts);
            free(m->data);
            free(m);
        }
    while (d->inbox) {
        struct dl_inbox *in = d->inbox;
        d->inbox = in->next;
        free(in->rcpts);
        free(in->data);
        free(in);
    }
}

void delivery_free(struct delivery *d)
{
    if (!d)
        return;
    delivery_stop(d);
    free_messages(d);
    free(d->results);
    struct event *events[] = {d->inbox_ev, d->stop_ev, d->flush_ev, d->retry_timer,
                              d->control_timer};
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (events[i])
            event_free(events[i]);
    if (d->tls_ctx)
        SSL_CTX_free(d->tls_ctx);
    store_conn_close(d->conn);
    if (d->base)
        event_base_free(d->base);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
