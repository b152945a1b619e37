/* sesame account create|list|show|set. */
#include "admin/admin_internal.h"

#include <stdlib.h>
#include <string.h>

struct account_create_args {
    struct store_account acct;
    struct store_key key;
    char err[ADMIN_ERR_LEN];
};

static int account_create_tx(struct admin_ctx *ctx, void *arg)
{
    struct account_create_args *a = arg;
    int rc = admin_op_account_create(ctx->conn, &ctx->cfg, admin_opt(ctx, "name"),
                                     admin_opt(ctx, "contact"), admin_flag(ctx, "production"),
                                     &a->acct, &a->key, a->err);
    return admin_op_report(rc, a->err);
}

static int account_create(struct admin_ctx *ctx)
{
    struct account_create_args a;
    int rc = admin_write(ctx, account_create_tx, &a);
    if (rc != ADMIN_OK)
        return rc;
    printf("account: %s\n", a.acct.id);
    admin_key_print(&a.key, &ctx->cfg, true);
    return ADMIN_OK;
}

static void account_line(const struct store_account *a, void *ctx)
{
    (void)ctx;
    printf("%s\t%s\t%s%s\t%s\n", a->id, a->name, a->disabled ? "disabled" : "active",
           a->suspended ? ",suspended" : "", a->contact);
}

static int account_list(struct admin_ctx *ctx)
{
    return store_account_list(ctx->conn, account_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read accounts");
}

static int account_show(struct admin_ctx *ctx)
{
    struct store_account a;
    int rc = admin_account(ctx, ctx->opts.positional[0], &a);
    if (rc != ADMIN_OK)
        return rc;
    printf("account: %s\nname: %s\ncontact: %s\nsuspended: %s\ndisabled: %s\n", a.id, a.name,
           a.contact, a.suspended ? "true" : "false", a.disabled ? "true" : "false");
    for (int i = 0; i < ctx->cfg.region_count; i++) {
        struct store_account_region r;
        admin_account_region(ctx->conn, &ctx->cfg, a.id, ctx->cfg.regions[i], &r);
        printf("region %s: %s, quota %.0f per 24h, rate %g/s\n", ctx->cfg.regions[i],
               r.production ? "production" : "sandbox", r.max_24h, r.max_rate);
    }
    return store_key_list(ctx->conn, a.id, admin_key_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read keys");
}

/* -1 when the option is absent, else 1 or 0. */
static int parse_bool_opt(struct admin_ctx *ctx, const char *name, int *out)
{
    const char *v = admin_opt(ctx, name);
    *out = -1;
    if (!v)
        return ADMIN_OK;
    if (!strcmp(v, "true"))
        *out = 1;
    else if (!strcmp(v, "false"))
        *out = 0;
    else
        return admin_fail("--%s takes true or false, not '%s'", name, v);
    return ADMIN_OK;
}

static int parse_number_opt(struct admin_ctx *ctx, const char *name, double *out, bool *given)
{
    const char *v = admin_opt(ctx, name);
    *given = v != NULL;
    if (!v)
        return ADMIN_OK;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < 0 || d > ADMIN_MAX_LIMIT_VALUE)
        return admin_fail("--%s takes a number of at least 0, not '%s'", name, v);
    *out = d;
    return ADMIN_OK;
}

/* --sandbox/--production/--quota/--rate, for every region or only --region's. */
static int account_set_regions(struct admin_ctx *ctx, const char *only,
                               struct admin_account_change *ch)
{
    struct admin_region_change r = {.production = admin_flag(ctx, "production") ? 1
                                                  : admin_flag(ctx, "sandbox")  ? 0
                                                                                : -1};
    if (parse_number_opt(ctx, "quota", &r.max_24h, &r.set_max_24h) ||
        parse_number_opt(ctx, "rate", &r.max_rate, &r.set_max_rate))
        return ADMIN_FAILED;
    for (int i = 0; i < ctx->cfg.region_count; i++) {
        if (only && strcmp(only, ctx->cfg.regions[i]))
            continue;
        core_strlcpy(r.region, ctx->cfg.regions[i], sizeof r.region);
        ch->regions[ch->region_count++] = r;
    }
    return ADMIN_OK;
}

struct account_set_args {
    const char *id;
    struct admin_account_change change;
    char err[ADMIN_ERR_LEN];
};

static int account_set_tx(struct admin_ctx *ctx, void *arg)
{
    struct account_set_args *a = arg;
    int rc = admin_op_account_update(ctx->conn, &ctx->cfg, a->id, &a->change, a->err);
    return admin_op_report(rc, a->err);
}

static int account_set(struct admin_ctx *ctx)
{
    struct store_account acct;
    struct account_set_args a;
    const char *region;
    if (admin_flag(ctx, "sandbox") && admin_flag(ctx, "production"))
        return admin_fail("--sandbox and --production exclude each other");
    int rc = admin_account(ctx, ctx->opts.positional[0], &acct);
    if (rc == ADMIN_OK)
        rc = admin_region(ctx, &region);
    if (rc != ADMIN_OK)
        return rc;
    admin_account_change_init(&a.change);
    a.id = acct.id;
    a.change.contact = admin_opt(ctx, "contact");
    if (parse_bool_opt(ctx, "suspended", &a.change.suspended) ||
        parse_bool_opt(ctx, "disabled", &a.change.disabled) ||
        account_set_regions(ctx, admin_opt(ctx, "region"), &a.change))
        return ADMIN_FAILED;
    rc = admin_write(ctx, account_set_tx, &a);
    return rc == ADMIN_OK ? account_show(ctx) : rc;
}

static const char *const account_value_opts[] = {
    "name", "contact", "account", "quota", "rate", "suspended", "disabled", "region", NULL};
static const char *const account_flags[] = {"production", "sandbox", NULL};

const struct admin_verb admin_account_verbs[] = {
    {"create", "account create [--name NAME] [--contact ADDR] [--production]", account_value_opts,
     account_flags, account_create},
    {"list", "account list", NULL, NULL, account_list},
    {"show", "account show [ID]", account_value_opts, NULL, account_show},
    {"set",
     "account set [ID] [--sandbox|--production] [--quota N] [--rate N] [--suspended true|false] "
     "[--disabled true|false] [--contact ADDR] [--region R]",
     account_value_opts, account_flags, account_set},
    {NULL, NULL, NULL, NULL, NULL},
};
