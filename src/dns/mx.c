/* MX resolution (RFC 5321 §5.1, RFC 7505): ask for the MX records, then for the A and
 * AAAA records of every exchange at once, and report when the last answer is in. The
 * reading of answers and the final verdict are in mx_parse.c; this file only asks. */
#include "dns/dns_internal.h"

#include <arpa/nameser.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct mx_query;

/* One A or AAAA question: which candidate it is for. */
struct mx_lookup {
    struct mx_query *q;
    int index;
    int family;
};

struct mx_query {
    struct dns_deferred deferred; /* the user's callback, at the base's next turn */
    struct dns_resolver *r;
    char domain[256];
    bool allow_loopback;
    bool destroyed; /* the resolver went away: free, never call back */
    dns_mx_cb cb;
    void *ctx;
    int pending; /* c-ares questions not answered yet, plus one while starting them */
    int ncands;
    struct dns_mx_list mx;
    struct dns_mx_candidate cands[DNS_MX_HOSTS_MAX];
    struct mx_lookup lookups[DNS_MX_HOSTS_MAX][2];
    struct dns_mx_result res;
};

static void mx_query_run(struct dns_deferred *d)
{
    struct mx_query *q = (struct mx_query *)((char *)d - offsetof(struct mx_query, deferred));
    q->cb(&q->res, q->ctx);
    free(q);
}

static void mx_query_drop(struct dns_deferred *d)
{
    free((char *)d - offsetof(struct mx_query, deferred));
}

/* Always through the base, even when every answer is in already: c-ares may answer from
 * inside ares_query (a name it cannot send, no server), and the caller must not be
 * called back from inside dns_resolve_mx. */
static void mx_query_finish(struct mx_query *q)
{
    dns_mx_assemble(q->domain, &q->mx, q->cands, q->ncands, &q->res);
    q->deferred.run = mx_query_run;
    q->deferred.drop = mx_query_drop;
    dns_resolver_defer(q->r, &q->deferred);
}

/* One question less to wait for; ARES_EDESTRUCTION marks the query as abandoned. */
static void mx_query_settle(struct mx_query *q, int status)
{
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED)
        q->destroyed = true;
    if (--q->pending > 0)
        return;
    if (q->destroyed)
        free(q);
    else
        mx_query_finish(q);
}

static struct mx_query *mx_query_new(struct dns_resolver *r, const char *name, bool allow_loopback,
                                     dns_mx_cb cb, void *ctx)
{
    struct mx_query *q = calloc(1, sizeof *q);
    if (!q)
        abort();
    q->r = r;
    q->allow_loopback = allow_loopback;
    q->cb = cb;
    q->ctx = ctx;
    q->pending = 1; /* released when the asking is done */
    if (!core_strlcpy(q->domain, name, sizeof q->domain))
        q->mx.kind = DNS_MX_ANSWER_BADNAME;
    return q;
}

static void mx_on_addr(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct mx_lookup *l = arg;
    struct mx_query *q = l->q;
    if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED)
        dns_mx_addr_answer(status, abuf, alen, l->family, q->allow_loopback, &q->cands[l->index]);
    mx_query_settle(q, status);
}

/* Both families of every candidate at once. pending counts a question before it is
 * asked: c-ares may answer it before ares_query returns. */
static void mx_ask_addresses(struct mx_query *q)
{
    static const int families[2] = {AF_INET, AF_INET6};
    ares_channel channel = dns_resolver_channel(q->r);
    for (int i = 0; i < q->ncands; i++) {
        for (int f = 0; f < 2; f++) {
            q->lookups[i][f] = (struct mx_lookup){q, i, families[f]};
            q->pending++;
            ares_query(channel, q->cands[i].name, ns_c_in, f ? ns_t_aaaa : ns_t_a, mx_on_addr,
                       &q->lookups[i][f]);
        }
    }
    dns_resolver_kick(q->r);
}

static void mx_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct mx_query *q = arg;
    if (status != ARES_EDESTRUCTION && status != ARES_ECANCELLED) {
        dns_mx_answer_parse(status, abuf, alen, arc4random(), &q->mx);
        if (q->mx.kind == DNS_MX_ANSWER_HOSTS) {
            for (int i = 0; i < q->mx.count; i++) {
                core_strlcpy(q->cands[i].name, q->mx.names[i].name, sizeof q->cands[i].name);
                q->cands[i].preference = q->mx.names[i].preference;
            }
            q->ncands = q->mx.count;
        } else if (q->mx.kind == DNS_MX_ANSWER_NODATA) {
            /* No MX: the domain itself is the one host, at preference 0 (§5.1). */
            core_strlcpy(q->cands[0].name, q->domain, sizeof q->cands[0].name);
            q->ncands = 1;
        }
        if (q->ncands > 0)
            mx_ask_addresses(q);
    }
    mx_query_settle(q, status);
}

void dns_resolve_mx(struct dns_resolver *r, const char *domain, bool allow_loopback, dns_mx_cb cb,
                    void *ctx)
{
    struct mx_query *q = mx_query_new(r, domain, allow_loopback, cb, ctx);
    if (q->mx.kind == DNS_MX_ANSWER_BADNAME) {
        mx_query_settle(q, ARES_SUCCESS);
        return;
    }
    /* ares_query, not ares_search: the domain is absolute, no search list applies. */
    ares_query(dns_resolver_channel(r), q->domain, ns_c_in, ns_t_mx, mx_on_answer, q);
    dns_resolver_kick(r);
}

void dns_resolve_host(struct dns_resolver *r, const char *host, bool allow_loopback, dns_mx_cb cb,
                      void *ctx)
{
    struct mx_query *q = mx_query_new(r, host, allow_loopback, cb, ctx);
    if (q->mx.kind != DNS_MX_ANSWER_BADNAME) {
        q->mx.kind = DNS_MX_ANSWER_HOST;
        core_strlcpy(q->cands[0].name, q->domain, sizeof q->cands[0].name);
        q->ncands = 1;
        if (!dns_mx_addr_literal(q->domain, allow_loopback, &q->cands[0]))
            mx_ask_addresses(q);
    }
    mx_query_settle(q, ARES_SUCCESS);
}
