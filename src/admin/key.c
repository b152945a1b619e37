/* sesame key create|list|revoke: an account's root keys and its users' keys. */
#include "admin/admin_internal.h"
#include "auth/auth.h"

#include <string.h>

void admin_key_print(const struct store_key *k, const struct sesame_config *cfg, bool secrets)
{
    printf("access_key_id: %s\n", k->key_id);
    printf("account: %s\n", k->account_id);
    if (k->user[0])
        printf("user: %s\n", k->user);
    printf("status: %s\n", k->active ? "Active" : "Inactive");
    if (!secrets)
        return;
    char v2[AUTH_SMTP_PASSWORD_LEN + 1], v4[AUTH_SMTP_PASSWORD_LEN + 1];
    printf("secret_access_key: %s\n", k->secret);
    printf("smtp_username: %s\n", k->key_id);
    auth_smtp_password_v2(k->secret, v2);
    printf("smtp_password_v2: %s\n", v2);
    for (int i = 0; i < cfg->region_count; i++) {
        auth_smtp_password_v4(k->secret, cfg->regions[i], v4);
        printf("smtp_password_v4 (%s): %s\n", cfg->regions[i], v4);
    }
}

void admin_key_line(const struct store_key *k, void *ctx)
{
    (void)ctx;
    printf("key: %s %s%s%s\n", k->key_id, k->active ? "Active" : "Inactive",
           k->user[0] ? " user=" : "", k->user);
}

struct key_create_args {
    struct store_key key;
    char err[ADMIN_ERR_LEN];
};

static int key_create_tx(struct admin_ctx *ctx, void *arg)
{
    struct key_create_args *a = arg;
    struct store_account acct;
    const char *user = admin_opt(ctx, "user");
    int rc = admin_account(ctx, NULL, &acct);
    if (rc != ADMIN_OK)
        return rc;
    /* --user "" names no user: refused rather than read as a root key. */
    rc = user ? admin_check_user_name(user, a->err) : ADMIN_OP_OK;
    if (rc == ADMIN_OP_OK)
        rc = admin_op_key_create(ctx->conn, acct.id, user, &a->key, a->err);
    return admin_op_report(rc, a->err);
}

static int key_create(struct admin_ctx *ctx)
{
    struct key_create_args a;
    int rc = admin_write(ctx, key_create_tx, &a);
    if (rc == ADMIN_OK)
        admin_key_print(&a.key, &ctx->cfg, true);
    return rc;
}

static int key_list(struct admin_ctx *ctx)
{
    struct store_account a;
    int rc = admin_account(ctx, NULL, &a);
    if (rc != ADMIN_OK)
        return rc;
    return store_key_list(ctx->conn, a.id, admin_key_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read keys");
}

static int key_revoke_tx(struct admin_ctx *ctx, void *arg)
{
    (void)arg;
    struct store_key key;
    char err[ADMIN_ERR_LEN];
    int rc = admin_op_key_revoke(ctx->conn, NULL, ctx->opts.positional[0], &key, err);
    return admin_op_report(rc, err);
}

static int key_revoke(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count != 1)
        return admin_usage_error(&admin_key_verbs[2], "give one access key id");
    int rc = admin_write(ctx, key_revoke_tx, NULL);
    if (rc == ADMIN_OK)
        printf("revoked: %s\n", ctx->opts.positional[0]);
    return rc;
}

static const char *const key_value_opts[] = {"account", "user", NULL};

const struct admin_verb admin_key_verbs[] = {
    {"create", "key create [--account ID] [--user NAME]", key_value_opts, NULL, key_create},
    {"list", "key list [--account ID]", key_value_opts, NULL, key_list},
    {"revoke", "key revoke ACCESS_KEY_ID", NULL, NULL, key_revoke},
    {NULL, NULL, NULL, NULL, NULL},
};
