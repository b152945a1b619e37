/* Easy DKIM status through DNS (spec 20 §2.2, §2.4, §2.7; DECISIONS 27): for each token set
 * that is due, ask for the CNAME and the TXT of every <token>._domainkey.<domain>, move the
 * set through Pending -> Success / Failed, and revoke a Success set whose records have been
 * missing for the revocation window. Driven by the domain verifier's tick (verify.c). */
#include "dns/dns.h"
#include "mail/mail.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DKIM_BATCH 256

struct dns_dkim_checker {
    struct event_base *base;
    struct store *store;
    struct store_conn *conn;         /* the verifier's: reads happen on this thread only */
    struct dns_resolver *resolver;   /* the verifier's */
    char zone[sizeof "dkim." + 256]; /* CNAME targets are <token>.<zone> */
    int64_t failure_window_ms, revocation_window_ms;
    struct dkim_check *asking; /* checks waiting for DNS, freed here if the resolver goes */
    int in_flight;             /* checks not yet written back; a new round waits for them */
    bool stopping;
    struct dns_dkim_hooks hooks; /* note NULL: nobody to tell */
};

struct dkim_lookup {
    struct dkim_check *k;
    int slot;
};

/* One token set's check: six names asked at once, then one store write. Only what the
 * check needs is copied from the set: the private keys stay out of it. */
struct dkim_check {
    struct dns_dkim_checker *ch;
    struct dkim_check *prev, *next; /* in ch->asking until every answer is in */
    char account_id[STORE_ID_LEN];
    char region[STORE_REGION_LEN];
    char domain[STORE_IDENTITY_LEN];
    char tokens[STORE_DKIM_TOKENS][STORE_DKIM_TOKEN_LEN];
    char *expected[STORE_DKIM_TOKENS]; /* each key's p=; NULL: the key cannot be read */
    struct dkim_lookup lookups[STORE_DKIM_TOKENS];
    int pending; /* lookups not answered yet, plus one while they are being started */
    bool cname_ok[STORE_DKIM_TOKENS], txt_ok[STORE_DKIM_TOKENS];
    bool found, failed;
    void *kept; /* what hooks.note kept for after the commit */
};

/* ---- the key record ---- */

static bool dkim_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* s[0..n) with whitespace removed equals want. */
static bool dkim_equal_nows(const char *s, size_t n, const char *want)
{
    for (size_t i = 0; i < n; i++) {
        if (dkim_wsp(s[i]))
            continue;
        if (*want++ != s[i])
            return false;
    }
    return !*want;
}

/* [s, e) without surrounding whitespace. */
static void dkim_trim(const char **s, const char **e)
{
    while (*s < *e && dkim_wsp(**s))
        (*s)++;
    while (*e > *s && dkim_wsp((*e)[-1]))
        (*e)--;
}

/* ALPHA *(ALPHA / DIGIT / "_") (RFC 6376 §3.2). */
static bool dkim_tag_name_valid(const char *s, size_t n)
{
    if (n == 0 || !isalpha((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

/* Tags other than v= and p= are not looked at beyond their syntax: k= in particular, as
 * p= alone tells the key (an Ed25519 p= is never an RSA one). */
bool dns_dkim_txt_matches(const char *txt, const char *public_b64)
{
    if (!txt || !public_b64 || !public_b64[0])
        return false;
    const char *end = txt + strlen(txt);
    int tags = 0, keys = 0;
    bool matched = false;
    for (const char *s = txt; s < end;) {
        const char *semi = memchr(s, ';', (size_t)(end - s));
        const char *spec_end = semi ? semi : end;
        const char *eq = memchr(s, '=', (size_t)(spec_end - s));
        const char *ts = s, *te = eq ? eq : spec_end;
        s = semi ? semi + 1 : end;
        dkim_trim(&ts, &te);
        if (!eq && ts == te)
            continue; /* empty, as after a final ';' */
        size_t n = (size_t)(te - ts);
        if (!eq || !dkim_tag_name_valid(ts, n))
            return false;
        const char *vs = eq + 1, *ve = spec_end;
        dkim_trim(&vs, &ve);
        bool is_v = n == 1 && ts[0] == 'v', is_p = n == 1 && ts[0] == 'p';
        /* v=, if there, comes first and says DKIM1 (RFC 6376 §3.6.1); one p= only (§3.2). */
        if (is_v && (tags > 0 || ve - vs != 5 || memcmp(vs, "DKIM1", 5)))
            return false;
        if (is_p && keys++ > 0)
            return false;
        if (is_p)
            matched = dkim_equal_nows(vs, (size_t)(ve - vs), public_b64);
        tags++;
    }
    return matched;
}

/* ---- the state machine ---- */

bool dns_dkim_next(struct store_dkim *d, bool found, bool failed, int64_t now_ms,
                   int64_t failure_window_ms, int64_t revocation_window_ms)
{
    char before[sizeof d->status];
    core_strlcpy(before, d->status, sizeof before);
    d->checked_ms = now_ms;
    if (!strcmp(d->status, "Success")) {
        if (found)
            d->missing_since_ms = 0;
        else if (!failed && !d->missing_since_ms)
            d->missing_since_ms = now_ms;
        if (!found && !failed && now_ms - d->missing_since_ms >= revocation_window_ms)
            core_strlcpy(d->status, "Failed", sizeof d->status); /* revoked */
    } else if (found) {
        core_strlcpy(d->status, "Success", sizeof d->status);
        d->missing_since_ms = 0;
    } else if (now_ms - d->created_ms >= failure_window_ms) {
        core_strlcpy(d->status, "Failed", sizeof d->status);
    } else {
        core_strlcpy(d->status, failed ? "TemporaryFailure" : "Pending", sizeof d->status);
    }
    bool changed = strcmp(before, d->status) != 0;
    if (changed)
        d->status_ms = now_ms;
    return changed;
}

/* ---- one check ---- */

static void dkim_check_free(struct dkim_check *k)
{
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        free(k->expected[i]);
    free(k);
}

/* Tells the owner what the change means for the customer (spec 20 §2.4): the records were
 * found, never found, went missing, or stayed missing until revocation. */
static int dkim_check_note(struct store_conn *c, struct dkim_check *k, const struct store_dkim *cur,
                           const char *before, int64_t missing_before)
{
    const struct dns_dkim_hooks *h = &k->ch->hooks;
    bool was_success = !strcmp(before, "Success");
    int e = -1; /* nothing to say */
    if (!strcmp(cur->status, before))
        e = was_success && !missing_before && cur->missing_since_ms ? DNS_DKIM_MISSING : -1;
    else if (!strcmp(cur->status, "Success"))
        e = DNS_DKIM_SUCCESS;
    else if (!strcmp(cur->status, "Failed"))
        e = was_success ? DNS_DKIM_REVOKED : DNS_DKIM_FAILURE;
    if (!h->note || e < 0)
        return STORE_OK;
    return h->note(c, cur, (enum dns_dkim_event)e, &k->kept, h->ctx);
}

/* Runs on the writer: applies the result to the row as it is now, if it is still the
 * same token set (not deleted, not replaced by a new VerifyDomainDkim) and not over. */
static int dkim_check_apply(struct store_conn *c, struct dkim_check *k, struct store_dkim *cur)
{
    if (store_dkim_get(c, k->account_id, k->region, k->domain, cur) != STORE_OK ||
        strcmp(cur->tokens[0], k->tokens[0]) || !strcmp(cur->status, "Failed"))
        return STORE_OK;
    char before[sizeof cur->status];
    core_strlcpy(before, cur->status, sizeof before);
    int64_t missing_before = cur->missing_since_ms;
    const struct dns_dkim_checker *ch = k->ch;
    bool changed = dns_dkim_next(cur, k->found, k->failed, core_now_ms(), ch->failure_window_ms,
                                 ch->revocation_window_ms);
    bool revoked = changed && !strcmp(before, "Success");
    int rc = store_dkim_put(c, cur);
    if (rc != STORE_OK)
        return rc;
    if ((rc = dkim_check_note(c, k, cur, before, missing_before)) != STORE_OK)
        return rc;
    if (revoked) { /* signing stops with the records (§2.4.4) */
        rc = store_dkim_disable_domain(c, cur->account_id, cur->region, cur->domain);
        if (rc != STORE_OK && rc != STORE_NOT_FOUND)
            return rc;
    }
    if (changed)
        log_info("dkim: domain %s (account %s, region %s): %s -> %s%s", cur->domain,
                 cur->account_id, cur->region, before, cur->status,
                 revoked ? " (revoked: records missing)" : "");
    return STORE_OK;
}

static int dkim_check_write(struct store_conn *c, void *ctx)
{
    struct store_dkim *cur = malloc(sizeof *cur); /* 12 KiB of keys: not on the stack */
    if (!cur)
        abort();
    int rc = dkim_check_apply(c, ctx, cur);
    free(cur);
    return rc;
}

static void dkim_check_done(int status, void *ctx)
{
    struct dkim_check *k = ctx;
    if (status != STORE_OK)
        log_warn("dkim: could not store the check of %s", k->domain);
    k->ch->in_flight--;
    if (k->kept && k->ch->hooks.after)
        k->ch->hooks.after(k->kept, status == STORE_OK, k->ch->hooks.ctx);
    dkim_check_free(k);
}

static void dkim_asking_unlink(struct dkim_check *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        k->ch->asking = k->next;
    if (k->next)
        k->next->prev = k->prev;
}

/* One answer less to wait for; after the last, the verdict goes to the writer. */
static void dkim_check_settle(struct dkim_check *k, enum dns_result result)
{
    k->failed |= result == DNS_FAILED;
    if (--k->pending > 0)
        return;
    dkim_asking_unlink(k);
    k->found = true;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        k->found &= k->cname_ok[i] && k->txt_ok[i];
    if (k->found)
        k->failed = false;
    if (k->ch->stopping) {
        dkim_check_done(STORE_OK, k);
        return;
    }
    store_submit(k->ch->store, k->ch->base, dkim_check_write, dkim_check_done, k);
}

static void dkim_cname_cb(enum dns_result result, const char *target, void *ctx)
{
    struct dkim_lookup *l = ctx;
    struct dkim_check *k = l->k;
    char want[STORE_DKIM_TOKEN_LEN + sizeof k->ch->zone + 1];
    snprintf(want, sizeof want, "%s.%s", k->tokens[l->slot], k->ch->zone);
    k->cname_ok[l->slot] = result == DNS_FOUND && !strcasecmp(target, want);
    dkim_check_settle(k, result);
}

static void dkim_txt_cb(enum dns_result result, const char *const *texts, int count, void *ctx)
{
    struct dkim_lookup *l = ctx;
    struct dkim_check *k = l->k;
    for (int i = 0; i < count && k->expected[l->slot]; i++)
        k->txt_ok[l->slot] |= dns_dkim_txt_matches(texts[i], k->expected[l->slot]);
    dkim_check_settle(k, result);
}

/* The p= a key record must carry for one stored private key; NULL if it cannot be read
 * (then that token never matches, and the set stays short of Success). */
static char *dkim_expected_public(const struct store_dkim *d, int slot)
{
    char err[256] = "";
    struct mail_dkim_key *key = mail_dkim_key_load(d->keys[slot], err, sizeof err);
    struct buf b;
    buf_init(&b);
    char *out = NULL;
    if (key && mail_dkim_key_public(key, &b) == 0)
        out = strdup(buf_cstr(&b));
    else
        log_warn("dkim: domain %s (account %s, region %s): key %s unusable: %s", d->domain,
                 d->account_id, d->region, d->tokens[slot], err[0] ? err : "no public key");
    buf_free(&b);
    if (key)
        mail_dkim_key_free(key);
    return out;
}

static struct dkim_check *dkim_check_new(struct dns_dkim_checker *ch, const struct store_dkim *d)
{
    struct dkim_check *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->ch = ch;
    core_strlcpy(k->account_id, d->account_id, sizeof k->account_id);
    core_strlcpy(k->region, d->region, sizeof k->region);
    core_strlcpy(k->domain, d->domain, sizeof k->domain);
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        core_strlcpy(k->tokens[i], d->tokens[i], sizeof k->tokens[i]);
        k->expected[i] = dkim_expected_public(d, i);
        k->lookups[i] = (struct dkim_lookup){k, i};
    }
    return k;
}

/* pending counts a lookup before it is asked: the resolver may answer from inside. */
static void dkim_start_check(const struct store_dkim *d, void *ctx)
{
    struct dns_dkim_checker *ch = ctx;
    struct dkim_check *k = dkim_check_new(ch, d);
    k->next = ch->asking;
    if (k->next)
        k->next->prev = k;
    ch->asking = k;
    ch->in_flight++;
    k->pending = 1;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++) {
        char name[STORE_DKIM_TOKEN_LEN + sizeof k->domain + 16];
        snprintf(name, sizeof name, "%s._domainkey.%s", k->tokens[i], k->domain);
        k->pending += 2;
        dns_resolve_cname(ch->resolver, name, dkim_cname_cb, &k->lookups[i]);
        dns_resolve_txt(ch->resolver, name, dkim_txt_cb, &k->lookups[i]);
    }
    dkim_check_settle(k, DNS_FOUND);
}

/* ---- polling ---- */

void dns_dkim_checker_poll(struct dns_dkim_checker *ch, int64_t due_before_ms)
{
    if (ch->in_flight > 0)
        return;
    if (store_dkim_list_due(ch->conn, due_before_ms, DKIM_BATCH, dkim_start_check, ch) != STORE_OK)
        log_warn("dkim: cannot read the token sets that are due");
}

/* The zone as DNS gives names back: lower-case, no trailing dot. */
static void dkim_zone(const struct sesame_config *cfg, char *out, size_t outlen)
{
    if (cfg->dkim_host_zone[0])
        snprintf(out, outlen, "%s", cfg->dkim_host_zone);
    else
        snprintf(out, outlen, "dkim.%s", cfg->hostname);
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '.')
        out[--len] = '\0';
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

struct dns_dkim_checker *dns_dkim_checker_new(struct event_base *base,
                                              const struct sesame_config *cfg, struct store *store,
                                              struct store_conn *conn, struct dns_resolver *r)
{
    struct dns_dkim_checker *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    ch->base = base;
    ch->store = store;
    ch->conn = conn;
    ch->resolver = r;
    dkim_zone(cfg, ch->zone, sizeof ch->zone);
    ch->failure_window_ms = cfg->dkim_failure_window_s * 1000;
    ch->revocation_window_ms = cfg->dkim_revocation_window_s * 1000;
    return ch;
}

void dns_dkim_checker_hooks(struct dns_dkim_checker *ch, const struct dns_dkim_hooks *hooks)
{
    if (hooks)
        ch->hooks = *hooks;
}

void dns_dkim_checker_free(struct dns_dkim_checker *ch)
{
    if (!ch)
        return;
    ch->stopping = true;
    while (ch->asking) {
        struct dkim_check *k = ch->asking;
        dkim_asking_unlink(k);
        dkim_check_free(k);
    }
    free(ch);
}
