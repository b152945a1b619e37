/* sesame identity list|show|verify|delete: the operator's view of verification. */
#include "admin/admin_internal.h"
#include "api/api.h"
#include "mail/mail.h"

#include <string.h>

struct identity_args {
    const struct store_account *account;
    const char *region;
    char name[STORE_IDENTITY_LEN];
    struct store_identity result;
};

static void identity_line(const struct store_identity *i, void *ctx)
{
    (void)ctx;
    printf("%s\t%s\t%s\n", i->identity, i->kind == IDENTITY_DOMAIN ? "Domain" : "EmailAddress",
           i->status);
}

/* Resolves the account, the region and the identity argument. */
static int identity_prepare(struct admin_ctx *ctx, struct store_account *acct,
                            struct identity_args *a, const struct admin_verb *verb)
{
    memset(a, 0, sizeof *a);
    int rc = admin_account(ctx, NULL, acct);
    if (rc == ADMIN_OK)
        rc = admin_region(ctx, &a->region);
    if (rc != ADMIN_OK)
        return rc;
    a->account = acct;
    if (verb) {
        if (ctx->opts.positional_count != 1)
            return admin_usage_error(verb, "give one identity");
        core_strlcpy(a->name, ctx->opts.positional[0], sizeof a->name);
        mail_identity_normalize(a->name);
    }
    return ADMIN_OK;
}

static int identity_list(struct admin_ctx *ctx)
{
    struct store_account acct;
    struct identity_args a;
    int rc = identity_prepare(ctx, &acct, &a, NULL);
    if (rc != ADMIN_OK)
        return rc;
    return store_identity_list(ctx->conn, acct.id, a.region, -1, "", 1 << 30, identity_line,
                               NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read identities");
}

static int identity_show(struct admin_ctx *ctx)
{
    struct store_account acct;
    struct identity_args a;
    struct store_identity id;
    int rc = identity_prepare(ctx, &acct, &a, &admin_identity_verbs[1]);
    if (rc != ADMIN_OK)
        return rc;
    rc = store_identity_get(ctx->conn, acct.id, a.region, a.name, &id);
    if (rc == STORE_NOT_FOUND)
        return admin_fail("no identity %s in %s for account %s", a.name, a.region, acct.id);
    if (rc != STORE_OK)
        return admin_fail("cannot read identities");
    char stamp[32];
    core_iso8601(id.status_ms, stamp, sizeof stamp);
    printf("identity: %s\ntype: %s\nregion: %s\naccount: %s\nstatus: %s\nsince: %s\n", id.identity,
           id.kind == IDENTITY_DOMAIN ? "Domain" : "EmailAddress", id.region, id.account_id,
           id.status, stamp);
    struct store_email_link link;
    if (id.kind == IDENTITY_DOMAIN) {
        printf("txt_record: %s.%s TXT \"%s\"\n", ctx->cfg.dns_prefix, id.identity, id.token);
    } else if (strcmp(id.status, "Success") &&
               store_email_link_find(ctx->conn, acct.id, a.region, id.identity, &link) ==
                   STORE_OK) {
        char url[512];
        api_verify_link(&ctx->cfg, link.token, url, sizeof url);
        core_iso8601(link.expires_ms, stamp, sizeof stamp);
        printf("verification_link: %s\nlink_expires: %s\n", url, stamp);
    }
    return ADMIN_OK;
}

static int identity_verify_tx(struct admin_ctx *ctx, void *arg)
{
    struct identity_args *a = arg;
    char err[ADMIN_ERR_LEN];
    int rc = admin_op_identity_set_status(ctx->conn, a->account->id, a->region, a->name, "Success",
                                          &a->result, err);
    return admin_op_report(rc, err);
}

static int identity_verify(struct admin_ctx *ctx)
{
    struct store_account acct;
    struct identity_args a;
    int rc = identity_prepare(ctx, &acct, &a, &admin_identity_verbs[2]);
    if (rc != ADMIN_OK)
        return rc;
    if (!admin_flag(ctx, "force"))
        return admin_usage_error(&admin_identity_verbs[2],
                                 "--force is required: it marks the identity verified without "
                                 "the DNS or email check");
    rc = admin_write(ctx, identity_verify_tx, &a);
    if (rc == ADMIN_OK)
        printf("verified: %s (%s, account %s)\n", a.name, a.region, acct.id);
    return rc;
}

static int identity_delete_tx(struct admin_ctx *ctx, void *arg)
{
    struct identity_args *a = arg;
    char err[ADMIN_ERR_LEN];
    int rc = admin_op_identity_delete(ctx->conn, a->account->id, a->region, a->name, err);
    return admin_op_report(rc, err);
}

static int identity_delete(struct admin_ctx *ctx)
{
    struct store_account acct;
    struct identity_args a;
    int rc = identity_prepare(ctx, &acct, &a, &admin_identity_verbs[3]);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, identity_delete_tx, &a);
    if (rc == ADMIN_OK)
        printf("deleted: %s (%s)\n", a.name, a.region);
    return rc;
}

static const char *const identity_value_opts[] = {"account", "region", NULL};
static const char *const identity_flags[] = {"force", NULL};

const struct admin_verb admin_identity_verbs[] = {
    {"list", "identity list [--region R] [--account ID]", identity_value_opts, NULL, identity_list},
    {"show", "identity show IDENTITY [--region R] [--account ID]", identity_value_opts, NULL,
     identity_show},
    {"verify", "identity verify --force IDENTITY [--region R] [--account ID]", identity_value_opts,
     identity_flags, identity_verify},
    {"delete", "identity delete IDENTITY [--region R] [--account ID]", identity_value_opts, NULL,
     identity_delete},
    {NULL, NULL, NULL, NULL, NULL},
};
