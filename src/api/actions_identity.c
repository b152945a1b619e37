/* Identity actions: Verify*, List*, Delete*, GetIdentityVerificationAttributes.
 * Identities live per account per region (DECISIONS 8); writes go through the store's
 * writer, and the reply is sent only after the write is durable. */
#include "api/api_internal.h"
#include "mail/mail.h"
#include "send/send.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_LIMIT_REACHED 10 /* a write's own status: the identity limit was reached */
#define MAX_LIST_ITEMS 1000
#define MAX_ATTRIBUTE_IDENTITIES 100

struct identity_write {
    struct api_call *call;
    struct store_identity identity; /* what the caller asked for */
    int max_identities;
    bool auto_verify;
    int64_t link_ttl_ms;
    const struct sesame_config *cfg;
    struct send_notice notice; /* the verification email, when one is sent */
    bool has_notice;
    bool deleted;
    bool result_element; /* the older Verify/Delete*EmailAddress actions have no Result */
};

static void random_token(char *out, size_t bytes)
{
    unsigned char raw[32];
    core_random_bytes(raw, bytes);
    core_base64_encode(raw, bytes, out);
}

/* A new link for an unverified email identity; the old one stops working. */
static int identity_write_link(struct store_conn *c, struct identity_write *w,
                               struct store_identity *id)
{
    struct store_email_link link = {0};
    unsigned char raw[24];
    core_random_bytes(raw, sizeof raw);
    core_hex_encode(raw, sizeof raw, link.token);
    core_strlcpy(link.account_id, id->account_id, sizeof link.account_id);
    core_strlcpy(link.region, id->region, sizeof link.region);
    core_strlcpy(link.identity, id->identity, sizeof link.identity);
    link.expires_ms = core_now_ms() + w->link_ttl_ms;
    core_strlcpy(id->token, link.token, sizeof id->token);
    if (store_email_link_delete_for(c, id->account_id, id->region, id->identity) != STORE_OK)
        return STORE_ERROR;
    return store_email_link_put(c, &link) == STORE_OK ? STORE_OK : STORE_ERROR;
}

/* The verification email (DECISIONS 26), stored with its link in one transaction. */
static int identity_write_notice(struct store_conn *c, struct identity_write *w,
                                 const struct store_identity *id)
{
    char url[512], text[2048], subject[160], region[STORE_REGION_LEN];
    api_verify_link(w->cfg, id->token, url, sizeof url);
    core_strlcpy(region, id->region, sizeof region);
    snprintf(subject, sizeof subject, "Email address verification request in region %s", region);
    snprintf(text, sizeof text,
             "Hello,\n\nSomeone asked to verify %s for sending email through this service in "
             "region %s.\nIf it was you, confirm by opening this link:\n\n%s\n\nThe link works "
             "once and expires in %lld hours. If you did not ask for this, ignore this "
             "message; nothing will be sent on your behalf.\n",
             id->identity, region, url, (long long)(w->link_ttl_ms / 3600000));
    if (send_notice_build(w->cfg, region, id->identity, subject, text, &w->notice) != 0)
        return STORE_ERROR;
    w->has_notice = true;
    return send_notice_store(c, &w->notice) == STORE_OK ? STORE_OK : STORE_ERROR;
}

/* Runs on the writer: checks the limit and the current state under the writer's lock. */
static int identity_verify_write(struct store_conn *c, void *ctx)
{
    struct identity_write *w = ctx;
    struct store_identity cur, *id = &w->identity;
    int64_t now = core_now_ms();
    int rc = store_identity_get(c, id->account_id, id->region, id->identity, &cur);
    if (rc == STORE_ERROR)
        return STORE_ERROR;
    if (rc == STORE_NOT_FOUND) {
        int64_t count = 0;
        if (store_identity_count(c, id->account_id, id->region, &count) != STORE_OK)
            return STORE_ERROR;
        if (count >= w->max_identities)
            return STORE_LIMIT_REACHED;
    } else {
        if (!strcmp(cur.status, "Success"))
            return *id = cur, STORE_OK; /* already verified: nothing changes */
        if (id->kind == IDENTITY_DOMAIN)
            core_strlcpy(id->token, cur.token, sizeof id->token); /* same token on every call */
    }
    core_strlcpy(id->status, w->auto_verify ? "Success" : "Pending", sizeof id->status);
    id->created_ms = id->status_ms = now;
    id->checked_ms = id->missing_since_ms = 0;
    if (id->kind == IDENTITY_EMAIL && !w->auto_verify &&
        (identity_write_link(c, w, id) != STORE_OK || identity_write_notice(c, w, id) != STORE_OK))
        return STORE_ERROR;
    return store_identity_put(c, id);
}

static void identity_verify_done(int status, void *ctx)
{
    struct identity_write *w = ctx;
    struct api_call *call = w->call;
    if (status == STORE_LIMIT_REACHED) {
        api_reply_error(call, "LimitExceeded",
                        "Maximum number of identities (%d) reached in region %s.",
                        w->max_identities, call->region);
    } else if (status != STORE_OK) {
        api_reply_error(call, "InternalFailure", "The request could not be stored.");
    } else {
        if (w->identity.kind == IDENTITY_EMAIL && !strcmp(w->identity.status, "Pending"))
            log_info("verification: %s pending in %s; link token issued", w->identity.identity,
                     call->region);
        api_reply_begin(call);
        if (w->identity.kind == IDENTITY_DOMAIN) {
            buf_puts(&call->out, "<VerifyDomainIdentityResult>");
            xml_element(&call->out, "VerificationToken", w->identity.token);
            buf_puts(&call->out, "</VerifyDomainIdentityResult>");
        } else if (w->result_element) {
            buf_printf(&call->out, "<%sResult/>", call->action);
        }
        struct send_shared *send = call->t->sh->send; /* the reply may free call */
        api_reply_finish(call);
        if (w->has_notice)
            send_notice_hand_over(send, &w->notice);
    }
    if (w->has_notice)
        send_notice_free(&w->notice);
    free(w);
}

static struct identity_write *identity_write_new(struct api_call *call, const char *identity,
                                                 int kind)
{
    struct identity_write *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    const struct sesame_config *cfg = &call->t->sh->cfg;
    w->call = call;
    w->max_identities = cfg->api_max_identities;
    w->auto_verify = cfg->auto_verify;
    w->link_ttl_ms = cfg->email_link_ttl_s * 1000;
    w->cfg = cfg;
    w->result_element = true;
    core_strlcpy(w->identity.account_id, call->account.id, sizeof w->identity.account_id);
    core_strlcpy(w->identity.region, call->region, sizeof w->identity.region);
    core_strlcpy(w->identity.identity, identity, sizeof w->identity.identity);
    mail_identity_normalize(w->identity.identity);
    w->identity.kind = kind;
    return w;
}

static void verify_email(struct api_call *call, bool result_element)
{
    const char *addr = query_get(&call->params, "EmailAddress");
    if (!addr)
        return api_reply_missing(call, "emailAddress");
    if (!mail_address_valid(addr))
        return api_reply_error(call, "InvalidParameterValue", "Invalid email address <%s>.", addr);
    struct identity_write *w = identity_write_new(call, addr, IDENTITY_EMAIL);
    w->result_element = result_element;
    store_submit(call->t->sh->store, call->t->base, identity_verify_write, identity_verify_done, w);
}

void action_verify_email_identity(struct api_call *call)
{
    verify_email(call, true);
}

void action_verify_email_address(struct api_call *call)
{
    verify_email(call, false);
}

void action_verify_domain_identity(struct api_call *call)
{
    const char *domain = query_get(&call->params, "Domain");
    if (!domain)
        return api_reply_missing(call, "domain");
    if (!mail_domain_valid(domain))
        return api_reply_error(call, "InvalidParameterValue", "Invalid domain name %s.", domain);
    struct identity_write *w = identity_write_new(call, domain, IDENTITY_DOMAIN);
    random_token(w->identity.token, 32);
    store_submit(call->t->sh->store, call->t->base, identity_verify_write, identity_verify_done, w);
}

/* ---- delete ---- */

static int identity_delete_write(struct store_conn *c, void *ctx)
{
    struct identity_write *w = ctx;
    const struct store_identity *id = &w->identity;
    int rc = store_identity_delete(c, id->account_id, id->region, id->identity);
    w->deleted = rc == STORE_OK;
    if (rc != STORE_ERROR &&
        store_email_link_delete_for(c, id->account_id, id->region, id->identity) != STORE_OK)
        return STORE_ERROR;                            /* a link must not outlive its identity */
    return rc == STORE_ERROR ? STORE_ERROR : STORE_OK; /* deleting nothing succeeds, as in SES */
}

static void identity_delete_done(int status, void *ctx)
{
    struct identity_write *w = ctx;
    struct api_call *call = w->call;
    if (status != STORE_OK) {
        api_reply_error(call, "InternalFailure", "The request could not be stored.");
    } else {
        if (w->deleted)
            log_info("identity %s deleted in %s for account %s", w->identity.identity, call->region,
                     call->account.id);
        api_reply_begin(call);
        if (w->result_element)
            buf_printf(&call->out, "<%sResult/>", call->action);
        api_reply_finish(call);
    }
    free(w);
}

void action_delete_identity(struct api_call *call)
{
    const char *identity = query_get(&call->params, "Identity");
    if (!identity)
        return api_reply_missing(call, "identity");
    struct identity_write *w = identity_write_new(call, identity, -1);
    store_submit(call->t->sh->store, call->t->base, identity_delete_write, identity_delete_done, w);
}

void action_delete_verified_email_address(struct api_call *call)
{
    const char *addr = query_get(&call->params, "EmailAddress");
    if (!addr)
        return api_reply_missing(call, "emailAddress");
    struct identity_write *w = identity_write_new(call, addr, IDENTITY_EMAIL);
    w->result_element = false;
    store_submit(call->t->sh->store, call->t->base, identity_delete_write, identity_delete_done, w);
}

/* ---- list ---- */

struct identity_list {
    struct buf *out;
    int count;
    int limit;
    bool verified_only;
    char last[STORE_IDENTITY_LEN];
};

static void identity_list_emit(const struct store_identity *id, void *ctx)
{
    struct identity_list *l = ctx;
    if (l->verified_only && strcmp(id->status, "Success"))
        return;
    if (++l->count > l->limit)
        return; /* one past the page: there is a next page */
    xml_element(l->out, "member", id->identity);
    core_strlcpy(l->last, id->identity, sizeof l->last);
}

static bool parse_max_items(struct api_call *call, int *out)
{
    const char *v = query_get(&call->params, "MaxItems");
    *out = MAX_LIST_ITEMS;
    if (!v)
        return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > MAX_LIST_ITEMS) {
        api_reply_error(call, "InvalidParameterValue",
                        "MaxItems must be an integer between 1 and %d.", MAX_LIST_ITEMS);
        return false;
    }
    *out = (int)n;
    return true;
}

/* NextToken is the last identity of the page, base64-encoded. */
static bool parse_next_token(struct api_call *call, char *after, size_t afterlen)
{
    const char *v = query_get(&call->params, "NextToken");
    after[0] = '\0';
    if (!v || !*v)
        return true;
    size_t len = strlen(v);
    long n =
        len <= (afterlen - 1) / 3 * 4 ? core_base64_decode(v, len, (unsigned char *)after) : -1;
    if (n <= 0 || memchr(after, '\0', (size_t)n)) {
        api_reply_error(call, "InvalidParameterValue", "Invalid NextToken.");
        return false;
    }
    after[n] = '\0';
    return true;
}

void action_list_identities(struct api_call *call)
{
    const char *type = query_get(&call->params, "IdentityType");
    int kind = -1;
    if (type && !strcmp(type, "EmailAddress"))
        kind = IDENTITY_EMAIL;
    else if (type && !strcmp(type, "Domain"))
        kind = IDENTITY_DOMAIN;
    else if (type)
        return api_reply_error(call, "InvalidParameterValue",
                               "IdentityType must be EmailAddress or Domain.");
    struct identity_list l = {.out = &call->out};
    char after[STORE_IDENTITY_LEN];
    if (!parse_max_items(call, &l.limit) || !parse_next_token(call, after, sizeof after))
        return;
    api_reply_begin(call);
    buf_puts(&call->out, "<ListIdentitiesResult><Identities>");
    if (store_identity_list(call->t->conn, call->account.id, call->region, kind, after, l.limit + 1,
                            identity_list_emit, &l) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The identities could not be read.");
    buf_puts(&call->out, "</Identities>");
    if (l.count > l.limit) {
        char token[STORE_IDENTITY_LEN * 2];
        core_base64_encode((const unsigned char *)l.last, strlen(l.last), token);
        xml_element(&call->out, "NextToken", token);
    }
    buf_puts(&call->out, "</ListIdentitiesResult>");
    api_reply_finish(call);
}

void action_list_verified_email_addresses(struct api_call *call)
{
    struct identity_list l = {.out = &call->out, .limit = 1 << 30, .verified_only = true};
    api_reply_begin(call);
    buf_puts(&call->out, "<ListVerifiedEmailAddressesResult><VerifiedEmailAddresses>");
    if (store_identity_list(call->t->conn, call->account.id, call->region, IDENTITY_EMAIL, "",
                            call->t->sh->cfg.api_max_identities, identity_list_emit,
                            &l) != STORE_OK)
        return api_reply_error(call, "InternalFailure", "The identities could not be read.");
    buf_puts(&call->out, "</VerifiedEmailAddresses></ListVerifiedEmailAddressesResult>");
    api_reply_finish(call);
}

/* ---- attributes ---- */

static int verification_entry(struct api_call *call, const char *name)
{
    struct store_identity id;
    int rc = store_identity_get(call->t->conn, call->account.id, call->region, name, &id);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_OK : rc; /* unknown identities are left out */
    buf_puts(&call->out, "<entry>");
    xml_element(&call->out, "key", id.identity);
    buf_puts(&call->out, "<value>");
    xml_element(&call->out, "VerificationStatus", id.status);
    if (id.kind == IDENTITY_DOMAIN)
        xml_element(&call->out, "VerificationToken", id.token);
    buf_puts(&call->out, "</value></entry>");
    return STORE_OK;
}

void api_identity_attributes(struct api_call *call, const char *map, api_identity_entry_fn entry)
{
    const char *names[MAX_ATTRIBUTE_IDENTITIES];
    int n = query_list(&call->params, "Identities", names, MAX_ATTRIBUTE_IDENTITIES);
    if (n < 0)
        return api_reply_error(call, "InvalidParameterValue", "At most %d identities may be given.",
                               MAX_ATTRIBUTE_IDENTITIES);
    if (n == 0 && !query_get(&call->params, "Identities"))
        return api_reply_missing(call, "identities");
    api_reply_begin(call);
    buf_printf(&call->out, "<%sResult><%s>", call->action, map);
    for (int i = 0; i < n; i++) {
        char name[STORE_IDENTITY_LEN];
        core_strlcpy(name, names[i], sizeof name);
        mail_identity_normalize(name);
        if (entry(call, name) != STORE_OK)
            return api_reply_error(call, "InternalFailure", "The identities could not be read.");
    }
    buf_printf(&call->out, "</%s></%sResult>", map, call->action);
    api_reply_finish(call);
}

void action_get_identity_verification_attributes(struct api_call *call)
{
    api_identity_attributes(call, "VerificationAttributes", verification_entry);
}
