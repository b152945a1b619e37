/* Destinations: a domain's (or the relay's) ready recipients, its route (MX hosts, cached
 * for the answer's TTL), its connections and their reuse, and its rate. Connections are
 * opened only while there is work and fewer than delivery.max_connections are open; each
 * takes a message's recipients at this destination (up to delivery.max_recipients) per
 * transaction. */
#include "delivery/delivery_internal.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ROUTE_FAILED_TTL_MS 5000 /* a failed lookup is not repeated sooner */

struct dl_conn {
    struct delivery *d;
    struct dl_dest *dest;
    struct smtp_client *client;
    struct dl_conn *prev, *next; /* every connection of the destination */
    struct dl_conn *idle_next;
    bool idle;
    struct dns_mx_result route; /* this connection's copy: a refresh cannot move it */
    int host, addr;             /* the route position being tried */
    bool all_5xx;               /* every host tried so far refused with a 5xx */
    enum smtp_client_tls tls;
    char remote[256];
    struct event *idle_timer;
    int tx_count;
    /* the transaction in flight */
    struct dl_rcpt *batch[1000];
    const char *rcpt_ptrs[1000];
    int batch_count;
    char mail_from[400];
    struct smtp_client_tx tx;
};

/* delivery.tls, or this domain's entry in delivery.tls_policy ("domain=policy, ..."). */
static enum smtp_client_tls tls_policy_for(const struct sesame_config *cfg, const char *domain,
                                           bool relay)
{
    const char *policy = relay ? cfg->delivery_relay_tls : cfg->delivery_tls;
    char list[sizeof cfg->delivery_tls_policy];
    core_strlcpy(list, cfg->delivery_tls_policy, sizeof list);
    char *save = NULL;
    for (char *item = strtok_r(list, ", ", &save); item && !relay;
         item = strtok_r(NULL, ", ", &save)) {
        char *eq = strchr(item, '=');
        if (eq && (size_t)(eq - item) == strlen(domain) &&
            !strncasecmp(item, domain, strlen(domain)))
            policy = eq + 1;
    }
    if (!strcmp(policy, "none"))
        return SMTP_CLIENT_TLS_NONE;
    if (!strcmp(policy, "required"))
        return SMTP_CLIENT_TLS_REQUIRED;
    if (!strcmp(policy, "implicit"))
        return SMTP_CLIENT_TLS_IMPLICIT;
    return SMTP_CLIENT_TLS_OPPORTUNISTIC;
}

static struct dl_dest *dest_new(struct delivery *d, const char *name, bool relay)
{
    struct dl_dest *dest = calloc(1, sizeof *dest);
    if (!dest)
        abort();
    core_strlcpy(dest->name, name, sizeof dest->name);
    for (char *p = dest->name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p += 32;
    dest->tls = tls_policy_for(&d->cfg, dest->name, relay);
    dest->d = d;
    dest->tokens = 1;
    dest->tokens_us = core_monotonic_us();
    return dest;
}

struct dl_dest *dl_dest_for(struct delivery *d, const char *address)
{
    if (!strcmp(d->cfg.delivery_mode, "relay")) {
        if (!d->relay)
            d->relay = dest_new(d, d->cfg.delivery_relay, true);
        return d->relay;
    }
    const char *at = strrchr(address, '@');
    const char *domain = at ? at + 1 : address;
    struct dl_dest **head = &d->dests[core_hash_lower(CORE_HASH_SEED, domain) % DL_DEST_BUCKETS];
    for (struct dl_dest *dest = *head; dest; dest = dest->hash_next)
        if (!strcasecmp(dest->name, domain))
            return dest;
    struct dl_dest *dest = dest_new(d, domain, false);
    dest->hash_next = *head;
    *head = dest;
    return dest;
}

/* While a message is taken in, destinations are kicked once all its recipients are in. */
static void kick_later(struct delivery *d, struct dl_dest *dest)
{
    if (dest->kick_queued)
        return;
    dest->kick_queued = true;
    dest->kick_next = d->kick_list;
    d->kick_list = dest;
}

void dl_dests_kick_pending(struct delivery *d)
{
    while (d->kick_list) {
        struct dl_dest *dest = d->kick_list;
        d->kick_list = dest->kick_next;
        dest->kick_queued = false;
        dl_dest_kick(d, dest);
    }
}

void dl_dest_add_ready(struct delivery *d, struct dl_rcpt *r)
{
    struct dl_dest *dest = r->dest;
    r->state = DL_READY;
    r->next = NULL;
    if (dest->ready_tail)
        dest->ready_tail->next = r;
    else
        dest->ready_head = r;
    dest->ready_tail = r;
    dest->ready_count++;
    r->msg->active++;
    if (d->intake)
        kick_later(d, dest);
    else
        dl_dest_kick(d, dest);
}

void dl_dest_remove_ready(struct dl_dest *dest, struct dl_rcpt *r)
{
    struct dl_rcpt **p = &dest->ready_head, *prev = NULL;
    while (*p && *p != r) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = r->next;
    if (dest->ready_tail == r)
        dest->ready_tail = prev;
    dest->ready_count--;
    r->msg->active--;
    dl_message_idle(dest->d, r->msg);
}

/* Takes the first ready recipient off the list (still counted active: the caller gives
 * it an outcome or a transaction). */
static struct dl_rcpt *ready_pop(struct dl_dest *dest)
{
    struct dl_rcpt *r = dest->ready_head;
    if (!r)
        return NULL;
    dest->ready_head = r->next;
    if (!dest->ready_head)
        dest->ready_tail = NULL;
    dest->ready_count--;
    r->next = NULL;
    r->state = DL_IN_FLIGHT;
    return r;
}

/* Every ready recipient of the destination gets this outcome (a route or connection
 * failure that no connection of its own could get past). */
static void fail_ready(struct delivery *d, struct dl_dest *dest, int code, const char *enhanced,
                       const char *text, bool address_level)
{
    struct dl_rcpt *r;
    while ((r = ready_pop(dest)))
        dl_outcome(d, r, code, enhanced, text, "", address_level);
}

/* ---- connections ---- */

static void conn_free(struct dl_conn *c)
{
    if (c->client)
        smtp_client_free(c->client);
    if (c->idle_timer)
        event_free(c->idle_timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void conn_unidle(struct dl_conn *c)
{
    struct dl_conn **p = &c->dest->idle;
    while (*p && *p != c)
        p = &(*p)->idle_next;
    if (*p)
        *p = c->idle_next;
    c->idle = false;
    evtimer_del(c->idle_timer);
}

/* A connection is gone (closed by us or failed): the destination may open another. */
static void conn_end(struct dl_conn *c, bool polite)
{
    struct dl_dest *dest = c->dest;
    struct delivery *d = c->d;
    if (c->idle)
        conn_unidle(c);
    if (polite && c->client) {
        smtp_client_quit(c->client);
        c->client = NULL;
    }
    dest->conns--;
    conn_free(c);
    dl_dest_kick(d, dest);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_end(arg, true);
}

static void conn_idle(struct dl_conn *c)
{
    c->idle = true;
    c->idle_next = c->dest->idle;
    c->dest->idle = c;
    struct timeval tv = {c->d->cfg.delivery_idle_timeout_s, 0};
    evtimer_add(c->idle_timer, &tv);
}

static void conn_try(struct dl_conn *c);

static void on_tx_done(struct smtp_client *client, const struct smtp_client_result *res, void *arg);

/* The reply that decides recipient i's outcome; *address_level: it is about the
 * recipient (its RCPT, or the verdict after the data), not the sender or the session. */
static const struct smtp_client_reply *tx_reply_for(const struct smtp_client_result *res, int i,
                                                    bool *address_level)
{
    *address_level = false;
    if (res->stage == SMTP_CLIENT_MAIL || res->mail.code < 200 || res->mail.code >= 300)
        return &res->mail;
    *address_level = true;
    if (i < res->rcpt_count && (res->rcpt[i].code < 200 || res->rcpt[i].code >= 300))
        return &res->rcpt[i];
    if (res->stage == SMTP_CLIENT_DATA) {
        *address_level = false;
        return &res->data;
    }
    return &res->final;
}

static bool same_domain(const char *a, const char *b)
{
    const char *x = strrchr(a, '@'), *y = strrchr(b, '@');
    return x && y && !strcasecmp(x, y);
}

/* Starts the next transaction: a message's ready recipients of one domain, in queue order.
 * (Only a relay's queue holds several domains: its transactions are split too, so that a
 * transaction's VERP address speaks for one domain's recipients.) */
static bool conn_start_tx(struct dl_conn *c)
{
    struct dl_dest *dest = c->dest;
    struct delivery *d = c->d;
    struct dl_rcpt *first = ready_pop(dest);
    if (!first)
        return false;
    int max = d->cfg.delivery_max_recipients;
    if (max > (int)(sizeof c->batch / sizeof c->batch[0]))
        max = (int)(sizeof c->batch / sizeof c->batch[0]);
    c->batch_count = 0;
    c->batch[c->batch_count++] = first;
    while (c->batch_count < max && dest->ready_head && dest->ready_head->msg == first->msg &&
           same_domain(dest->ready_head->address, first->address))
        c->batch[c->batch_count++] = ready_pop(dest);
    struct dl_message *m = first->msg;
    if (!dl_message_load(d, m)) {
        for (int i = 0; i < c->batch_count; i++)
            dl_outcome(d, c->batch[i], 0, "", "the message could not be read from the store", "",
                       false);
        c->batch_count = 0;
        return false;
    }
    m->sending++;
    for (int i = 0; i < c->batch_count; i++)
        c->rcpt_ptrs[i] = c->batch[i]->address;
    delivery_verp_encode(d->verp_key, m->id, first->idx, c->batch_count > 1, d->bounce_domain,
                         c->mail_from, sizeof c->mail_from);
    c->tx = (struct smtp_client_tx){c->mail_from, c->rcpt_ptrs, c->batch_count,
                                    m->data,      m->len,       m->eightbit};
    smtp_client_send(c->client, &c->tx, on_tx_done, c);
    return true;
}

/* max_rate: true when a message may start now; else a timer kicks the destination. */
static bool rate_allows(struct delivery *d, struct dl_dest *dest);

/* Gives the connection work, or keeps it idle for reuse. */
static void conn_next(struct dl_conn *c)
{
    while (c->dest->ready_head && rate_allows(c->d, c->dest))
        if (conn_start_tx(c))
            return;
    conn_idle(c);
}

/* The batch goes back to the front of the queue untouched: the connection died before
 * the transaction began (a reused connection the server had closed). */
static void batch_requeue(struct dl_conn *c)
{
    struct dl_dest *dest = c->dest;
    for (int i = c->batch_count - 1; i >= 0; i--) {
        struct dl_rcpt *r = c->batch[i];
        r->state = DL_READY;
        r->next = dest->ready_head;
        dest->ready_head = r;
        if (!dest->ready_tail)
            dest->ready_tail = r;
        dest->ready_count++;
    }
    c->batch_count = 0;
}

static void on_tx_done(struct smtp_client *client, const struct smtp_client_result *res, void *arg)
{
    (void)client;
    struct dl_conn *c = arg;
    struct delivery *d = c->d;
    if (c->batch_count)
        c->batch[0]->msg->sending--; /* before the outcomes, which may free the message */
    /* A reused connection the server had closed meanwhile: nothing was attempted. */
    bool stale = c->tx_count > 0 && !res->reusable && res->stage == SMTP_CLIENT_MAIL &&
                 (res->mail.code == 0 || res->mail.code == 421);
    if (stale) {
        batch_requeue(c);
    } else {
        for (int i = 0; i < c->batch_count; i++) {
            bool address_level;
            const struct smtp_client_reply *rep = tx_reply_for(res, i, &address_level);
            const char *text =
                rep->code || rep->text[0] ? rep->text : "connection lost before the reply";
            dl_outcome(d, c->batch[i], rep->code, rep->enhanced, text, c->remote, address_level);
        }
        c->batch_count = 0;
        c->tx_count++;
    }
    if (res->reusable)
        conn_next(c);
    else
        conn_end(c, false);
}

/* The next address of the route after a failure; false when none is left. */
static bool conn_advance(struct dl_conn *c)
{
    const struct dns_mx_result *mx = &c->route;
    if (++c->addr < mx->hosts[c->host].addr_count)
        return true;
    c->addr = 0;
    return ++c->host < mx->host_count;
}

static void on_ready(struct smtp_client *client, const struct smtp_client_ready *r, void *arg)
{
    (void)client;
    struct dl_conn *c = arg;
    struct dl_dest *dest = c->dest;
    struct delivery *d = c->d;
    if (r->ok) {
        dest->opening--;
        conn_next(c);
        return;
    }
    if (r->reply.code)
        snprintf(dest->last_error, sizeof dest->last_error, "%s: %d %.400s", c->remote,
                 r->reply.code, r->reply.text);
    else
        snprintf(dest->last_error, sizeof dest->last_error, "%s: %.400s", c->remote, r->reply.text);
    log_info("delivery: %s: %s", dest->name, dest->last_error);
    if (r->reply.code < 500)
        c->all_5xx = false;
    smtp_client_free(c->client);
    c->client = NULL;
    bool tls_retry = r->stage == SMTP_CLIENT_STARTTLS && r->reply.code == 0 &&
                     c->tls == SMTP_CLIENT_TLS_OPPORTUNISTIC;
    if (tls_retry) {
        c->tls = SMTP_CLIENT_TLS_NONE; /* opportunistic: once more, in clear */
        conn_try(c);
        return;
    }
    c->tls = dest->tls;
    if (conn_advance(c)) {
        conn_try(c);
        return;
    }
    /* Every host failed. Those waiting hear it only if no other connection is left. It is
     * final only when every host refused with a 5xx (RFC 5321 §5.1: a temporary failure
     * of one MX keeps the message queued), and never for the relay: a bad password or
     * address there is the operator's to fix, not the recipients' fault. */
    int code = c->all_5xx && dest != d->relay ? r->reply.code : 0;
    char text[800], enhanced[16];
    core_strlcpy(text, dest->last_error, sizeof text);
    core_strlcpy(enhanced, r->reply.enhanced, sizeof enhanced);
    dest->opening--;
    dest->conns--;
    conn_free(c);
    if (dest->conns == 0)
        fail_ready(d, dest, code, enhanced, text, false);
}

static void conn_try(struct dl_conn *c)
{
    struct delivery *d = c->d;
    const struct dns_mx_host *h = &c->route.hosts[c->host];
    const struct dns_mx_addr *a = &h->addrs[c->addr];
    int port = d->cfg.mx_port;
    char host[CONFIG_ADDR_LEN];
    if (d->relay == c->dest)
        config_split_addr(d->cfg.delivery_relay, host, sizeof host, &port);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int len;
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        memcpy(&s6->sin6_addr, a->addr, 16);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        memcpy(&s4->sin_addr, a->addr, 4);
        len = sizeof *s4;
    }
    char ip[64] = "";
    inet_ntop(a->family, a->addr, ip, sizeof ip);
    snprintf(c->remote, sizeof c->remote, "%.190s[%.60s]", h->name, ip);
    bool relay = d->relay == c->dest;
    struct smtp_client_config cc = {
        .helo_name = d->cfg.hostname,
        .server_name = h->name,
        .tls = c->tls,
        .tls_verify = relay && d->cfg.delivery_relay_tls_verify, /* MX: opportunistic */
        .tls_ctx = d->tls_ctx,
        .auth_user =
            relay && d->cfg.delivery_relay_username[0] ? d->cfg.delivery_relay_username : NULL,
        .auth_pass = relay ? d->cfg.delivery_relay_password : NULL,
        .connect_timeout_ms = d->cfg.delivery_connect_timeout_s * 1000,
        .greeting_timeout_ms = d->cfg.delivery_command_timeout_s * 1000,
        .command_timeout_ms = d->cfg.delivery_command_timeout_s * 1000,
        .data_timeout_ms = d->cfg.delivery_data_timeout_s * 1000,
        .final_timeout_ms = d->cfg.delivery_final_timeout_s * 1000,
    };
    c->client = smtp_client_connect(d->base, (struct sockaddr *)&ss, len, &cc, on_ready, c);
}

static void conn_open(struct delivery *d, struct dl_dest *dest)
{
    struct dl_conn *c = calloc(1, sizeof *c);
    if (!c || !(c->idle_timer = evtimer_new(d->base, on_idle_timeout, c)))
        abort();
    c->d = d;
    c->dest = dest;
    c->tls = dest->tls;
    c->route = dest->route->mx;
    c->all_5xx = true;
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    dest->conns++;
    dest->opening++;
    conn_try(c);
}

/* ---- routes ---- */

static void on_route(const struct dns_mx_result *res, void *arg);

/* The destination is the lookup's context: it outlives the resolver (freed first). */
static void route_resolve(struct delivery *d, struct dl_dest *dest)
{
    dest->resolving = true;
    bool loopback = d->cfg.allow_loopback_mx || dest == d->relay;
    if (dest == d->relay) {
        char host[CONFIG_ADDR_LEN];
        int port;
        config_split_addr(d->cfg.delivery_relay, host, sizeof host, &port);
        dns_resolve_host(d->resolver, host, loopback, on_route, dest);
    } else {
        dns_resolve_mx(d->resolver, dest->name, loopback, on_route, dest);
    }
}

static void on_route(const struct dns_mx_result *res, void *arg)
{
    struct dl_dest *dest = arg;
    struct delivery *d = dest->d;
    dest->resolving = false;
    if (res->status != DNS_MX_OK)
        log_info("delivery: %s: %s", dest->name, res->error);
    int64_t now = core_now_ms();
    if (res->status == DNS_MX_TEMPORARY && dest->route && dest->route->mx.status == DNS_MX_OK) {
        /* A failed refresh: the last good answer serves a little longer. */
        dest->route->expires_ms = now + ROUTE_FAILED_TTL_MS;
        dl_dest_kick(d, dest);
        return;
    }
    if (!dest->route && !(dest->route = malloc(sizeof *dest->route)))
        abort();
    dest->route->mx = *res;
    int64_t ttl_ms = res->status == DNS_MX_OK ? res->ttl_s * 1000 : ROUTE_FAILED_TTL_MS;
    dest->route->expires_ms = now + ttl_ms;
    dl_dest_kick(d, dest);
}

static bool route_fresh(const struct dl_dest *dest)
{
    return dest->route && dest->route->expires_ms > core_now_ms();
}

/* ---- scheduling ---- */

static void on_rate_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dl_dest *dest = arg;
    dl_dest_kick(dest->d, dest);
}

static bool rate_allows(struct delivery *d, struct dl_dest *dest)
{
    double rate = d->cfg.delivery_max_rate;
    if (rate <= 0)
        return true;
    int64_t now = core_monotonic_us();
    double cap = rate < 1 ? 1 : rate;
    dest->tokens += (double)(now - dest->tokens_us) * rate / 1e6;
    if (dest->tokens > cap)
        dest->tokens = cap;
    dest->tokens_us = now;
    if (dest->tokens >= 1) {
        dest->tokens -= 1;
        return true;
    }
    if (!dest->rate_timer)
        dest->rate_timer = evtimer_new(d->base, on_rate_timer, dest);
    int64_t wait_us = (int64_t)((1 - dest->tokens) * 1e6 / rate) + 1000;
    struct timeval tv = {wait_us / 1000000, wait_us % 1000000};
    evtimer_add(dest->rate_timer, &tv);
    return false;
}

void dl_dest_kick(struct delivery *d, struct dl_dest *dest)
{
    while (dest->idle && dest->ready_head) {
        struct dl_conn *c = dest->idle;
        conn_unidle(c);
        conn_next(c);
        if (c->idle)
            return; /* the rate says wait */
    }
    if (!dest->ready_head || dest->conns >= d->cfg.delivery_max_connections)
        return;
    if (!route_fresh(dest)) {
        if (!dest->resolving)
            route_resolve(d, dest);
        return;
    }
    const struct dns_mx_result *mx = &dest->route->mx;
    if (mx->status != DNS_MX_OK || mx->host_count == 0) {
        /* A domain that cannot receive mail: its addresses cannot either (listed). The
         * relay's name failing is the operator's to fix: retried. */
        if (mx->status == DNS_MX_PERMANENT && dest != d->relay)
            fail_ready(d, dest, 550, "5.4.4", mx->error, true);
        else
            fail_ready(d, dest, 0, "", mx->error, false);
        return;
    }
    /* A new connection per ready recipient not already waiting for one, up to the limit. */
    while (dest->conns < d->cfg.delivery_max_connections && dest->opening < dest->ready_count)
        conn_open(d, dest);
}

void dl_dests_free(struct delivery *d)
{
    while (d->conns)
        conn_free(d->conns);
    for (int b = 0; b < DL_DEST_BUCKETS; b++)
        while (d->dests[b]) {
            struct dl_dest *dest = d->dests[b];
            d->dests[b] = dest->hash_next;
            if (dest->rate_timer)
                event_free(dest->rate_timer);
            free(dest->route);
            free(dest);
        }
    if (d->relay) {
        if (d->relay->rate_timer)
            event_free(d->relay->rate_timer);
        free(d->relay->route);
        free(d->relay);
        d->relay = NULL;
    }
}
