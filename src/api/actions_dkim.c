/* Easy DKIM actions (spec 20 §2.5, DECISIONS 27): VerifyDomainDkim, GetIdentityDkimAttributes,
 * SetIdentityDkimEnabled. Key generation runs on the CPU pool; writes go through the
 * store's writer and are answered after the commit. */
#include "api/api_internal.h"
#include "mail/mail.h"
#include "send/send.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dkim_write {
    struct api_call *call;
    struct store_dkim set; /* the new set; after the write, the one in force */
    bool auto_verify;
    bool failed; /* key generation */
};

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s += 32;
}

/* A set still in progress or verified is kept: repeated calls return its tokens (Q6). */
static bool dkim_set_current(const struct store_dkim *d)
{
    return strcmp(d->status, "Failed") != 0;
}

static void dkim_tokens_reply(struct api_call *call, const struct store_dkim *d)
{
    api_reply_begin(call);
    buf_puts(&call->out, "<VerifyDomainDkimResult><DkimTokens>");
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        xml_element(&call->out, "member", d->tokens[i]);
    buf_puts(&call->out, "</DkimTokens></VerifyDomainDkimResult>");
    api_reply_finish(call);
}

static int dkim_verify_write(struct store_conn *c, void *ctx)
{
    struct dkim_write *w = ctx;
    struct store_dkim *cur = malloc(sizeof *cur);
    if (!cur)
        abort();
    int rc = store_dkim_get(c, w->set.account_id, w->set.region, w->set.domain, cur);
    if (rc == STORE_OK && dkim_set_current(cur)) {
        w->set = *cur; /* another call made one meanwhile */
    } else if (rc != STORE_ERROR) {
        int64_t now = core_now_ms();
        core_strlcpy(w->set.status, w->auto_verify ? "Success" : "Pending", sizeof w->set.status);
        w->set.created_ms = w->set.status_ms = now;
        w->set.checked_ms = w->set.missing_since_ms = 0; /* a new set: nothing seen yet */
        rc = store_dkim_put(c, &w->set);
    }
    OPENSSL_cleanse(cur, sizeof *cur);
    free(cur);
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK;
}

static void dkim_write_free(struct dkim_write *w)
{
    OPENSSL_cleanse(&w->set, sizeof w->set); /* private keys */
    free(w);
}

static void dkim_verify_done(int status, void *ctx)
{
    struct dkim_write *w = ctx;
    if (status != STORE_OK)
        api_reply_error(w->call, "InternalFailure", "The request could not be stored.");
    else {
        log_info("dkim: %s tokens for %s (account %s, %s)", w->set.status, w->set.domain,
                 w->set.account_id, w->set.region);
        dkim_tokens_reply(w->call, &w->set);
    }
    dkim_write_free(w);
}

static void dkim_generate_work(void *ctx)
{
    struct dkim_write *w = ctx;
    w->failed = send_dkim_generate(&w->call->t->sh->cfg, &w->set) != 0;
}

static void dkim_generate_done(void *ctx)
{
    struct dkim_write *w = ctx;
    if (w->failed) {
        api_reply_error(w->call, "InternalFailure", "The DKIM keys could not be made.");
        return dkim_write_free(w);
    }
    struct api_thread *t = w->call->t;
    store_submit(t->sh->store, t->base, dkim_verify_write, dkim_verify_done, w);
}

void action_verify_domain_dkim(struct api_call *call)
{
    const char *domain = query_get(&call->params, "Domain");
    if (!domain)
        return api_reply_missing(call, "domain");
    if (strchr(domain, '@') || !mail_domain_valid(domain))
        return api_reply_error(call, "InvalidParameterValue", "Invalid domain name %s.", domain);
    struct dkim_write *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    w->call = call;
    w->auto_verify = call->t->sh->cfg.auto_verify;
    core_strlcpy(w->set.account_id, call->account.id, sizeof w->set.account_id);
    core_strlcpy(w->set.region, call->region, sizeof w->set.region);
    core_strlcpy(w->set.domain, domain, sizeof w->set.domain);
    lower(w->set.domain);
    struct store_dkim *cur = &w->set; /* read into place; replaced if not current */
    int rc = store_dkim_get(call->t->conn, call->account.id, call->region, w->set.domain, cur);
    if (rc == STORE_ERROR) {
        dkim_write_free(w);
        return api_reply_error(call, "InternalFailure", "The DKIM settings could not be read.");
    }
    if (rc == STORE_OK && dkim_set_current(cur)) {
        dkim_tokens_reply(call, cur);
        return dkim_write_free(w);
    }
    struct core_pool *pool = send_shared_pool(call->t->sh->send);
    if (!pool) {
        dkim_generate_work(w);
        return dkim_generate_done(w);
    }
    core_pool_run(pool, call->t->base, dkim_generate_work, dkim_generate_done, w);
}

/* ---- attributes ---- */

/* Spec 20 §2.5.2 and Q3: an email identity reports its DkimEnabled, NotStarted and no
 * tokens; a domain its set's status and tokens. Unknown identities are left out (Q7). */
static int dkim_entry(struct api_call *call, const char *name)
{
    struct store_identity id;
    struct store_dkim *d = malloc(sizeof *d);
    if (!d)
        abort();
    struct store_conn *c = call->t->conn;
    int has_id = store_identity_get(c, call->account.id, call->region, name, &id);
    int has_set = strchr(name, '@') ? STORE_NOT_FOUND
                                    : store_dkim_get(c, call->account.id, call->region, name, d);
    int rc = has_id == STORE_ERROR || has_set == STORE_ERROR ? STORE_ERROR : STORE_OK;
    if (rc == STORE_OK && (has_id == STORE_OK || has_set == STORE_OK)) {
        buf_puts(&call->out, "<entry>");
        xml_element(&call->out, "key", name);
        buf_puts(&call->out, "<value>");
        xml_element(&call->out, "DkimEnabled",
                    has_id == STORE_OK && id.dkim_enabled ? "true" : "false");
        xml_element(&call->out, "DkimVerificationStatus",
                    has_set == STORE_OK ? d->status : "NotStarted");
        if (has_set == STORE_OK) {
            buf_puts(&call->out, "<DkimTokens>");
            for (int i = 0; i < STORE_DKIM_TOKENS; i++)
                xml_element(&call->out, "member", d->tokens[i]);
            buf_puts(&call->out, "</DkimTokens>");
        }
        buf_puts(&call->out, "</value></entry>");
    }
    OPENSSL_cleanse(d, sizeof *d);
    free(d);
    return rc;
}

void action_get_identity_dkim_attributes(struct api_call *call)
{
    api_identity_attributes(call, "DkimAttributes", dkim_entry);
}

/* ---- enable ---- */

struct dkim_enable {
    struct api_call *call;
    char identity[STORE_IDENTITY_LEN];
    bool enabled;
    char error[STORE_IDENTITY_LEN + 64]; /* InvalidParameterValue's text; "" when done */
};

/* Checked on the writer, so the answer matches what is stored (spec 20 §2.5.3, Q8). */
static int dkim_enable_write(struct store_conn *c, void *ctx)
{
    struct dkim_enable *e = ctx;
    struct api_call *call = e->call;
    const char *at = strrchr(e->identity, '@');
    const char *domain = at ? at + 1 : e->identity;
    struct store_identity id;
    int rc = store_identity_get(c, call->account.id, call->region, e->identity, &id);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (rc == STORE_NOT_FOUND || strcmp(id.status, "Success")) {
        snprintf(e->error, sizeof e->error,
                 at ? "Email address %s ownership not confirmed."
                    : "Domain %s ownership not confirmed.",
                 e->identity);
        return STORE_OK;
    }
    if (e->enabled) {
        struct store_dkim *d = malloc(sizeof *d);
        if (!d)
            abort();
        char lowered[STORE_IDENTITY_LEN];
        core_strlcpy(lowered, domain, sizeof lowered);
        lower(lowered);
        rc = store_dkim_get(c, call->account.id, call->region, lowered, d);
        bool usable = rc == STORE_OK && dkim_set_current(d);
        OPENSSL_cleanse(d, sizeof *d);
        free(d);
        if (rc == STORE_ERROR)
            return STORE_ERROR;
        if (!usable) {
            snprintf(e->error, sizeof e->error, "Domain %s is not verified for DKIM signing.",
                     lowered);
            return STORE_OK;
        }
    }
    return store_identity_set_dkim(c, call->account.id, call->region, e->identity, e->enabled);
}

static void dkim_enable_done(int status, void *ctx)
{
    struct dkim_enable *e = ctx;
    struct api_call *call = e->call;
    if (status != STORE_OK)
        api_reply_error(call, "InternalFailure", "The request could not be stored.");
    else if (e->error[0])
        api_reply_error(call, "InvalidParameterValue", "%s", e->error);
    else {
        log_info("dkim: signing %s for %s (account %s, %s)", e->enabled ? "enabled" : "disabled",
                 e->identity, call->account.id, call->region);
        api_reply_begin(call);
        buf_puts(&call->out, "<SetIdentityDkimEnabledResult/>");
        api_reply_finish(call);
    }
    free(e);
}

void action_set_identity_dkim_enabled(struct api_call *call)
{
    const char *identity = query_get(&call->params, "Identity");
    const char *enabled = query_get(&call->params, "DkimEnabled");
    if (!identity)
        return api_reply_missing(call, "identity");
    if (!enabled)
        return api_reply_missing(call, "dkimEnabled");
    if (core_strcasecmp(enabled, "true") && core_strcasecmp(enabled, "false"))
        return api_reply_error(call, "InvalidParameterValue", "DkimEnabled must be true or false.");
    struct dkim_enable *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->call = call;
    core_strlcpy(e->identity, identity, sizeof e->identity);
    mail_identity_normalize(e->identity);
    e->enabled = !core_strcasecmp(enabled, "true");
    store_submit(call->t->sh->store, call->t->base, dkim_enable_write, dkim_enable_done, e);
}
