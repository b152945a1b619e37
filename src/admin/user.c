/* sesame user create|list|delete: an account's users, each with its own access keys
 * (key create --user) and inline policies (sesame policy). */
#include "admin/admin_internal.h"

struct user_args {
    struct store_account acct;
    const char *name;
    struct store_user user;
    int keys, policies;
    char err[ADMIN_ERR_LEN];
};

/* The account and, for verbs that name one, the user; a usage error without it. */
static int user_prepare(struct admin_ctx *ctx, const struct admin_verb *verb, struct user_args *a)
{
    if (ctx->opts.positional_count != (verb ? 1 : 0))
        return verb ? admin_usage_error(verb, "give one user name")
                    : admin_usage_error(&admin_user_verbs[1], "takes no arguments");
    a->name = verb ? ctx->opts.positional[0] : NULL;
    return admin_account(ctx, NULL, &a->acct);
}

static int user_create_tx(struct admin_ctx *ctx, void *arg)
{
    struct user_args *a = arg;
    return admin_op_report(admin_op_user_create(ctx->conn, a->acct.id, a->name, &a->user, a->err),
                           a->err);
}

static int user_create(struct admin_ctx *ctx)
{
    struct user_args a;
    int rc = user_prepare(ctx, &admin_user_verbs[0], &a);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, user_create_tx, &a);
    if (rc == ADMIN_OK)
        printf("user: %s\naccount: %s\narn: arn:aws:iam::%s:user/%s\n", a.user.name, a.acct.id,
               a.acct.id, a.user.name);
    return rc;
}

static void user_line(const struct store_user *u, void *ctx)
{
    (void)ctx;
    char created[32];
    core_iso8601(u->created_ms, created, sizeof created);
    printf("%s\tarn:aws:iam::%s:user/%s\t%s\n", u->name, u->account_id, u->name, created);
}

static int user_list(struct admin_ctx *ctx)
{
    struct user_args a;
    int rc = user_prepare(ctx, NULL, &a);
    if (rc != ADMIN_OK)
        return rc;
    return store_user_list(ctx->conn, a.acct.id, user_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read users");
}

static int user_delete_tx(struct admin_ctx *ctx, void *arg)
{
    struct user_args *a = arg;
    int rc = admin_op_user_delete(ctx->conn, a->acct.id, a->name, &a->keys, &a->policies, a->err);
    return admin_op_report(rc, a->err);
}

static int user_delete(struct admin_ctx *ctx)
{
    struct user_args a;
    int rc = user_prepare(ctx, &admin_user_verbs[2], &a);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, user_delete_tx, &a);
    if (rc == ADMIN_OK)
        printf("deleted: user %s (account %s), with its %d access key%s and %d polic%s\n", a.name,
               a.acct.id, a.keys, a.keys == 1 ? "" : "s", a.policies,
               a.policies == 1 ? "y" : "ies");
    return rc;
}

static const char *const user_value_opts[] = {"account", NULL};

const struct admin_verb admin_user_verbs[] = {
    {"create", "user create NAME [--account ID]", user_value_opts, NULL, user_create},
    {"list", "user list [--account ID]", user_value_opts, NULL, user_list},
    {"delete", "user delete NAME [--account ID]", user_value_opts, NULL, user_delete},
    {NULL, NULL, NULL, NULL, NULL},
};
