/* Domain verification (DECISIONS 25): poll the TXT records of domain identities that are
 * due, move them through Pending -> Success / Failed, and revoke a verified domain whose
 * record has been missing for the revocation window. The same tick and resolver drive the
 * Easy DKIM checks (dkim_check.c). */
#include "dns/dns.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_BATCH 256

struct dns_verifier {
    struct event_base *base;
    struct sesame_config cfg;
    struct store *store;
    struct store_conn *conn;
    struct dns_resolver *resolver;
    struct dns_dkim_checker *dkim;
    struct event *tick;
    struct verify_check *asking; /* checks waiting for DNS, freed here if the resolver goes */
    int in_flight;               /* checks not yet written back; a new round waits for them */
    int64_t tick_ms;
    bool stopping;
};

/* One domain's check: two names asked, then one store write. */
struct verify_check {
    struct dns_verifier *v;
    struct verify_check *prev, *next; /* in v->asking until both answers are in */
    struct store_identity id;
    int answers;
    bool found, failed;
};

bool dns_verify_next(struct store_identity *id, bool found, bool failed, int64_t now_ms,
                     int64_t failure_window_ms, int64_t revocation_window_ms)
{
    char before[sizeof id->status];
    core_strlcpy(before, id->status, sizeof before);
    id->checked_ms = now_ms;
    if (!strcmp(id->status, "Success")) {
        if (found)
            id->missing_since_ms = 0;
        else if (!failed && !id->missing_since_ms)
            id->missing_since_ms = now_ms;
        if (!found && !failed && now_ms - id->missing_since_ms >= revocation_window_ms)
            core_strlcpy(id->status, "Failed", sizeof id->status); /* revoked */
    } else if (found) {
        core_strlcpy(id->status, "Success", sizeof id->status);
        id->missing_since_ms = 0;
    } else if (now_ms - id->created_ms >= failure_window_ms) {
        core_strlcpy(id->status, "Failed", sizeof id->status);
    } else {
        core_strlcpy(id->status, failed ? "TemporaryFailure" : "Pending", sizeof id->status);
    }
    bool changed = strcmp(before, id->status) != 0;
    if (changed)
        id->status_ms = now_ms;
    return changed;
}

/* Runs on the writer: applies the result to the row as it is now, if it is still the
 * same verification (not deleted, not restarted with another token). */
static int verify_check_write(struct store_conn *c, void *ctx)
{
    struct verify_check *k = ctx;
    struct store_identity cur;
    if (store_identity_get(c, k->id.account_id, k->id.region, k->id.identity, &cur) != STORE_OK ||
        strcmp(cur.token, k->id.token) || !strcmp(cur.status, "Failed"))
        return STORE_OK;
    char before[sizeof cur.status];
    core_strlcpy(before, cur.status, sizeof before);
    const struct sesame_config *cfg = &k->v->cfg;
    if (dns_verify_next(&cur, k->found, k->failed, core_now_ms(),
                        cfg->verify_failure_window_s * 1000,
                        cfg->verify_revocation_window_s * 1000))
        log_info("verification: domain %s (account %s, %s): %s -> %s%s", cur.identity,
                 cur.account_id, cur.region, before, cur.status,
                 !strcmp(before, "Success") ? " (revoked: record missing)" : "");
    return store_identity_put(c, &cur);
}

static void verify_check_done(int status, void *ctx)
{
    struct verify_check *k = ctx;
    if (status != STORE_OK)
        log_warn("verification: could not store the check of %s", k->id.identity);
    k->v->in_flight--;
    free(k);
}

static void verify_asking_unlink(struct verify_check *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        k->v->asking = k->next;
    if (k->next)
        k->next->prev = k->prev;
}

static void verify_txt_cb(enum dns_result result, const char *const *texts, int count, void *ctx)
{
    struct verify_check *k = ctx;
    for (int i = 0; i < count; i++)
        k->found |= !strcmp(texts[i], k->id.token);
    k->failed |= result == DNS_FAILED;
    if (++k->answers < 2)
        return;
    verify_asking_unlink(k);
    if (k->found)
        k->failed = false; /* one name answered with the token: that settles it */
    if (k->v->stopping) {
        verify_check_done(STORE_OK, k);
        return;
    }
    store_submit(k->v->store, k->v->base, verify_check_write, verify_check_done, k);
}

static void verify_start_check(const struct store_identity *id, void *ctx)
{
    struct dns_verifier *v = ctx;
    struct verify_check *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->v = v;
    k->id = *id;
    k->next = v->asking;
    if (k->next)
        k->next->prev = k;
    v->asking = k;
    v->in_flight++;
    /* Both spellings (DECISIONS 25): with the configured prefix, and without its '_'. */
    const char *prefix = v->cfg.dns_prefix;
    const char *bare = prefix[0] == '_' ? prefix + 1 : prefix;
    char name[2][600];
    snprintf(name[0], sizeof name[0], "%s.%s", prefix, id->identity);
    snprintf(name[1], sizeof name[1], "%s.%s", bare, id->identity);
    dns_resolve_txt(v->resolver, name[0], verify_txt_cb, k);
    dns_resolve_txt(v->resolver, name[1], verify_txt_cb, k);
}

static void verify_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct dns_verifier *v = arg;
    /* Half a tick of slack: a check stored just after the last tick is due at this one. */
    int64_t due_before = core_now_ms() - v->cfg.verify_poll_interval_s * 1000 + v->tick_ms / 2;
    dns_dkim_checker_poll(v->dkim, due_before);
    if (v->in_flight > 0)
        return;
    if (store_identity_list_due(v->conn, due_before, VERIFY_BATCH, verify_start_check, v) !=
        STORE_OK)
        log_warn("verification: cannot read the identities that are due");
}

struct dns_verifier *dns_verifier_start(struct event_base *base, const struct sesame_config *cfg,
                                        struct store *store, const struct dns_dkim_hooks *hooks)
{
    struct dns_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->base = base;
    v->cfg = *cfg;
    v->store = store;
    v->conn = store_conn_open(store);
    v->resolver = dns_resolver_new(base, cfg);
    if (v->conn && v->resolver)
        v->dkim = dns_dkim_checker_new(base, cfg, store, v->conn, v->resolver);
    if (!v->dkim) {
        dns_verifier_free(v);
        return NULL;
    }
    dns_dkim_checker_hooks(v->dkim, hooks);
    /* Ticks are at most a second apart so a short poll interval (tests) is honoured. */
    int64_t every = cfg->verify_poll_interval_s < 10 ? 1 : 10;
    v->tick_ms = every * 1000;
    struct timeval tv = {(time_t)every, 0};
    v->tick = event_new(base, -1, EV_PERSIST, verify_tick, v);
    event_add(v->tick, &tv);
    return v;
}

void dns_verifier_free(struct dns_verifier *v)
{
    if (!v)
        return;
    v->stopping = true;
    if (v->tick)
        event_free(v->tick);
    dns_resolver_free(v->resolver); /* calls back no pending lookup: their checks are here */
    while (v->asking) {
        struct verify_check *k = v->asking;
        verify_asking_unlink(k);
        free(k);
    }
    dns_dkim_checker_free(v->dkim);
    store_conn_close(v->conn);
    free(v);
}
