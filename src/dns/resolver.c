/* c-ares driven by libevent: c-ares tells us which sockets to watch (sock_state_cb), we
 * tell it when they are ready, and a timer covers its retransmissions. */
#include "dns/dns_internal.h"

#include <ares.h>
#include <ares_dns.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_MAX_SOCKETS 16

struct dns_socket {
    ares_socket_t fd;
    struct event *ev;
};

struct dns_resolver {
    struct event_base *base;
    ares_channel channel;
    struct event *timer;
    struct dns_socket sockets[DNS_MAX_SOCKETS];
    struct dns_deferred *deferred; /* waiting for the base's next turn */
};

static void dns_schedule_timer(struct dns_resolver *r)
{
    struct timeval max = {1, 0}, tv;
    struct timeval *t = ares_timeout(r->channel, &max, &tv);
    evtimer_add(r->timer, t);
}

static void dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dns_resolver *r = arg;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_schedule_timer(r);
}

static void dns_on_socket(evutil_socket_t fd, short what, void *arg)
{
    struct dns_resolver *r = arg;
    ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_schedule_timer(r);
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns_resolver *r = data;
    struct dns_socket *slot = NULL, *free_slot = NULL;
    for (int i = 0; i < DNS_MAX_SOCKETS; i++) {
        if (r->sockets[i].ev && r->sockets[i].fd == fd)
            slot = &r->sockets[i];
        else if (!r->sockets[i].ev && !free_slot)
            free_slot = &r->sockets[i];
    }
    if (slot) {
        event_free(slot->ev);
        slot->ev = NULL;
    } else {
        slot = free_slot;
    }
    if ((!readable && !writable) || !slot)
        return;
    short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    slot->fd = fd;
    slot->ev = event_new(r->base, fd, what, dns_on_socket, r);
    event_add(slot->ev, NULL);
}

struct dns_resolver *dns_resolver_new(struct event_base *base, const struct sesame_config *cfg)
{
    static int library_ready;
    if (!library_ready++)
        ares_library_init(ARES_LIB_INIT_ALL);
    struct dns_resolver *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base = base;
    struct ares_options opts = {.sock_state_cb = dns_sock_state,
                                .sock_state_cb_data = r,
                                .timeout = (int)cfg->dns_timeout_ms,
                                .tries = 2};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    if (ares_init_options(&r->channel, &opts, mask) != ARES_SUCCESS) {
        free(r);
        return NULL;
    }
    if (cfg->dns_resolver[0] &&
        ares_set_servers_ports_csv(r->channel, cfg->dns_resolver) != ARES_SUCCESS)
        log_warn("dns: cannot use resolver %s; using the system's", cfg->dns_resolver);
    r->timer = evtimer_new(base, dns_on_timer, r);
    return r;
}

ares_channel dns_resolver_channel(struct dns_resolver *r)
{
    return r->channel;
}

void dns_resolver_kick(struct dns_resolver *r)
{
    dns_schedule_timer(r);
}

static void dns_deferred_unlink(struct dns_resolver *r, struct dns_deferred *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        r->deferred = d->next;
    if (d->next)
        d->next->prev = d->prev;
    event_free(d->ev);
    d->ev = NULL;
}

static void dns_deferred_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dns_deferred *d = arg;
    dns_deferred_unlink(d->owner, d);
    d->run(d); /* last: it may free d, or the resolver */
}

void dns_resolver_defer(struct dns_resolver *r, struct dns_deferred *d)
{
    static const struct timeval now = {0, 0};
    d->owner = r;
    d->prev = NULL;
    d->next = r->deferred;
    if (d->next)
        d->next->prev = d;
    r->deferred = d;
    d->ev = evtimer_new(r->base, dns_deferred_fire, d);
    if (!d->ev)
        abort();
    evtimer_add(d->ev, &now);
}

void dns_resolver_free(struct dns_resolver *r)
{
    if (!r)
        return;
    /* Pending queries are called back with ARES_EDESTRUCTION; our callbacks (here and in
     * mx.c) then free their own state without calling the user's. */
    ares_destroy(r->channel);
    while (r->deferred) {
        struct dns_deferred *d = r->deferred;
        dns_deferred_unlink(r, d);
        d->drop(d);
    }
    for (int i = 0; i < DNS_MAX_SOCKETS; i++)
        if (r->sockets[i].ev)
            event_free(r->sockets[i].ev);
    event_free(r->timer);
    free(r);
}

struct dns_txt_query {
    dns_txt_cb cb;
    void *ctx;
};

/* Joins the strings of each record: one TXT record may hold several strings. */
static void dns_txt_answer(struct dns_txt_query *q, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *txt = NULL;
    if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
        q->cb(DNS_FAILED, NULL, 0, q->ctx);
        return;
    }
    int records = 0;
    for (struct ares_txt_ext *t = txt; t; t = t->next)
        records += t->record_start || records == 0;
    struct buf *joined = calloc((size_t)records + 1, sizeof *joined);
    const char **texts = calloc((size_t)records + 1, sizeof *texts);
    if (!joined || !texts)
        abort();
    int n = 0;
    for (struct ares_txt_ext *t = txt; t; t = t->next) {
        if (t->record_start || n == 0)
            buf_init(&joined[n++]);
        buf_append(&joined[n - 1], t->txt, t->length);
    }
    for (int i = 0; i < n; i++)
        texts[i] = buf_cstr(&joined[i]);
    q->cb(n ? DNS_FOUND : DNS_NOT_FOUND, texts, n, q->ctx);
    for (int i = 0; i < n; i++)
        buf_free(&joined[i]);
    free(joined);
    free(texts);
    ares_free_data(txt);
}

static void dns_txt_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_txt_query *q = arg;
    if (status == ARES_EDESTRUCTION) { /* the resolver is being freed: no answer is expected */
        free(q);
        return;
    }
    if (status == ARES_SUCCESS)
        dns_txt_answer(q, abuf, alen);
    else if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
        q->cb(DNS_NOT_FOUND, NULL, 0, q->ctx);
    else
        q->cb(DNS_FAILED, NULL, 0, q->ctx);
    free(q);
}

void dns_resolve_txt(struct dns_resolver *r, const char *name, dns_txt_cb cb, void *ctx)
{
    struct dns_txt_query *q = malloc(sizeof *q);
    if (!q)
        abort();
    q->cb = cb;
    q->ctx = ctx;
    ares_query(r->channel, name, ns_c_in, ns_t_txt, dns_txt_done, q);
    dns_schedule_timer(r);
}

/* Reads one name at *p and moves past it; out (malloc'd by c-ares) if asked for. */
static bool dns_read_name(const unsigned char *abuf, int alen, const unsigned char **p, char **out)
{
    char *name;
    long enclen;
    if (*p >= abuf + alen || ares_expand_name(*p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
        return false;
    *p += enclen;
    if (out)
        *out = name;
    else
        ares_free_string(name);
    return *p <= abuf + alen;
}

/* The target of a CNAME record owned by qname, in the answer section at p. */
static enum dns_result dns_cname_find(const unsigned char *abuf, int alen, const unsigned char *p,
                                      const char *qname, char *target, size_t target_len)
{
    const unsigned char *end = abuf + alen;
    for (int i = 0, n = DNS_HEADER_ANCOUNT(abuf); i < n; i++) {
        char *owner = NULL;
        if (!dns_read_name(abuf, alen, &p, &owner) || end - p < RRFIXEDSZ) {
            ares_free_string(owner);
            return DNS_FAILED;
        }
        bool mine =
            DNS_RR_TYPE(p) == ns_t_cname && DNS_RR_CLASS(p) == ns_c_in && !strcasecmp(owner, qname);
        ares_free_string(owner);
        int rdlen = DNS_RR_LEN(p);
        p += RRFIXEDSZ;
        if (end - p < rdlen)
            return DNS_FAILED;
        char *name = NULL;
        const unsigned char *rdata = p;
        if (mine && (!dns_read_name(abuf, alen, &rdata, &name) || rdata > p + rdlen)) {
            ares_free_string(name);
            return DNS_FAILED;
        }
        if (mine) {
            size_t len = strlen(name);
            while (len > 0 && name[len - 1] == '.')
                len--;
            name[len] = '\0';
            /* A name that does not fit is not a target this caller could be looking for. */
            bool fits = len > 0 && core_strlcpy(target, name, target_len);
            ares_free_string(name);
            for (char *c = target; fits && *c; c++)
                *c = (char)tolower((unsigned char)*c);
            return fits ? DNS_FOUND : DNS_NOT_FOUND;
        }
        p += rdlen;
    }
    return DNS_NOT_FOUND; /* other records only: the name has no CNAME */
}

enum dns_result dns_cname_answer_parse(int status, const unsigned char *abuf, int alen,
                                       char *target, size_t target_len)
{
    if (target_len)
        target[0] = '\0';
    if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
        return DNS_NOT_FOUND;
    if (status != ARES_SUCCESS || !abuf || alen < HFIXEDSZ || DNS_HEADER_QDCOUNT(abuf) != 1)
        return DNS_FAILED;
    const unsigned char *p = abuf + HFIXEDSZ;
    char *qname = NULL;
    if (!dns_read_name(abuf, alen, &p, &qname) || abuf + alen - p < QFIXEDSZ) {
        ares_free_string(qname);
        return DNS_FAILED;
    }
    enum dns_result res = dns_cname_find(abuf, alen, p + QFIXEDSZ, qname, target, target_len);
    ares_free_string(qname);
    if (res != DNS_FOUND && target_len)
        target[0] = '\0';
    return res;
}

struct dns_cname_query {
    dns_cname_cb cb;
    void *ctx;
};

static void dns_cname_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct dns_cname_query *q = arg;
    if (status != ARES_EDESTRUCTION) { /* else the resolver is being freed: no call */
        char target[256];
        enum dns_result res = dns_cname_answer_parse(status, abuf, alen, target, sizeof target);
        q->cb(res, res == DNS_FOUND ? target : NULL, q->ctx);
    }
    free(q);
}

void dns_resolve_cname(struct dns_resolver *r, const char *name, dns_cname_cb cb, void *ctx)
{
    struct dns_cname_query *q = malloc(sizeof *q);
    if (!q)
        abort();
    q->cb = cb;
    q->ctx = ctx;
    ares_query(r->channel, name, ns_c_in, ns_t_cname, dns_cname_done, q);
    dns_schedule_timer(r);
}
