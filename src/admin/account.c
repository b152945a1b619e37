/* sesame account create|list|show|set, and key create|list|revoke. */
#include "admin/admin_internal.h"
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

static void random_account_id(char out[STORE_ID_LEN])
{
    unsigned char raw[12];
    core_random_bytes(raw, sizeof raw);
    for (int i = 0; i < 12; i++)
        out[i] = (char)('0' + raw[i] % 10);
    out[0] = (char)('1' + raw[0] % 9); /* no leading zero, so it reads as a number everywhere */
    out[12] = '\0';
}

int admin_key_create_for(struct store_conn *c, const char *account_id, struct store_key *key)
{
    memset(key, 0, sizeof *key);
    if (auth_key_generate(key->key_id, key->secret) != 0)
        return admin_fail("no randomness for a new key");
    core_strlcpy(key->account_id, account_id, sizeof key->account_id);
    key->active = true;
    key->created_ms = core_now_ms();
    return store_key_insert(c, key) == STORE_OK ? ADMIN_OK : admin_fail("cannot store the key");
}

static void region_defaults(const struct sesame_config *cfg, bool production,
                            struct store_account_region *r)
{
    r->production = production;
    r->max_24h = production ? cfg->production_max_24h : cfg->sandbox_max_24h;
    r->max_rate = production ? cfg->production_max_rate : cfg->sandbox_max_rate;
}

int admin_account_create(struct store_conn *c, const struct sesame_config *cfg, const char *name,
                         const char *contact, bool production, struct store_account *acct,
                         struct store_key *key)
{
    memset(acct, 0, sizeof *acct);
    random_account_id(acct->id);
    core_strlcpy(acct->name, name ? name : "default", sizeof acct->name);
    core_strlcpy(acct->contact, contact ? contact : "", sizeof acct->contact);
    acct->created_ms = core_now_ms();
    if (store_account_insert(c, acct) != STORE_OK)
        return admin_fail("cannot store the account");
    for (int i = 0; i < cfg->region_count; i++) {
        struct store_account_region r = {0};
        core_strlcpy(r.account_id, acct->id, sizeof r.account_id);
        core_strlcpy(r.region, cfg->regions[i], sizeof r.region);
        region_defaults(cfg, production, &r);
        if (store_account_region_put(c, &r) != STORE_OK)
            return admin_fail("cannot store the account's limits");
    }
    return admin_key_create_for(c, acct->id, key);
}

void admin_key_print(const struct store_key *k, const struct sesame_config *cfg, bool secrets)
{
    printf("access_key_id: %s\n", k->key_id);
    printf("account: %s\n", k->account_id);
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

/* ---- account verbs ---- */

struct account_create_args {
    struct store_account acct;
    struct store_key key;
};

static int account_create_tx(struct admin_ctx *ctx, void *arg)
{
    struct account_create_args *a = arg;
    const char *contact = admin_opt(ctx, "contact");
    if (contact && *contact && !strchr(contact, '@'))
        return admin_fail("--contact must be an email address");
    return admin_account_create(ctx->conn, &ctx->cfg, admin_opt(ctx, "name"), contact,
                                admin_flag(ctx, "production"), &a->acct, &a->key);
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

static void key_line(const struct store_key *k, void *ctx)
{
    (void)ctx;
    printf("key: %s %s%s%s\n", k->key_id, k->active ? "Active" : "Inactive",
           k->user[0] ? " user=" : "", k->user);
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
        if (store_account_region_get(ctx->conn, a.id, ctx->cfg.regions[i], &r) != STORE_OK)
            region_defaults(&ctx->cfg, false, &r);
        printf("region %s: %s, quota %.0f per 24h, rate %g/s\n", ctx->cfg.regions[i],
               r.production ? "production" : "sandbox", r.max_24h, r.max_rate);
    }
    return store_key_list(ctx->conn, a.id, key_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read keys");
}

static int parse_bool_opt(struct admin_ctx *ctx, const char *name, bool *out)
{
    const char *v = admin_opt(ctx, name);
    if (!v)
        return ADMIN_OK;
    if (!strcmp(v, "true"))
        *out = true;
    else if (!strcmp(v, "false"))
        *out = false;
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
    if (end == v || *end || d < 0 || d > 1e12)
        return admin_fail("--%s takes a number of at least 0, not '%s'", name, v);
    *out = d;
    return ADMIN_OK;
}

/* Applies --sandbox/--production/--quota/--rate to one region's row. */
static int account_set_region(struct admin_ctx *ctx, const char *id, const char *region)
{
    struct store_account_region r;
    if (store_account_region_get(ctx->conn, id, region, &r) != STORE_OK)
        region_defaults(&ctx->cfg, false, &r);
    if (admin_flag(ctx, "production") && !r.production)
        region_defaults(&ctx->cfg, true, &r);
    if (admin_flag(ctx, "sandbox") && r.production)
        region_defaults(&ctx->cfg, false, &r);
    bool given;
    if (parse_number_opt(ctx, "quota", &r.max_24h, &given) ||
        parse_number_opt(ctx, "rate", &r.max_rate, &given))
        return ADMIN_FAILED;
    core_strlcpy(r.account_id, id, sizeof r.account_id);
    core_strlcpy(r.region, region, sizeof r.region);
    return store_account_region_put(ctx->conn, &r) == STORE_OK ? ADMIN_OK
                                                               : admin_fail("cannot store limits");
}

static int account_set_tx(struct admin_ctx *ctx, void *arg)
{
    struct store_account *a = arg;
    const char *contact = admin_opt(ctx, "contact");
    if (contact) {
        if (*contact && !strchr(contact, '@'))
            return admin_fail("--contact must be an email address");
        core_strlcpy(a->contact, contact, sizeof a->contact);
    }
    if (parse_bool_opt(ctx, "suspended", &a->suspended) ||
        parse_bool_opt(ctx, "disabled", &a->disabled))
        return ADMIN_FAILED;
    if (store_account_update(ctx->conn, a) != STORE_OK)
        return admin_fail("cannot update account %s", a->id);
    const char *only = admin_opt(ctx, "region");
    for (int i = 0; i < ctx->cfg.region_count; i++) {
        if (only && strcmp(only, ctx->cfg.regions[i]))
            continue;
        if (account_set_region(ctx, a->id, ctx->cfg.regions[i]) != ADMIN_OK)
            return ADMIN_FAILED;
    }
    return ADMIN_OK;
}

static int account_set(struct admin_ctx *ctx)
{
    struct store_account a;
    const char *region;
    if (admin_flag(ctx, "sandbox") && admin_flag(ctx, "production"))
        return admin_fail("--sandbox and --production exclude each other");
    int rc = admin_account(ctx, ctx->opts.positional[0], &a);
    if (rc == ADMIN_OK)
        rc = admin_region(ctx, &region);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, account_set_tx, &a);
    if (rc == ADMIN_OK)
        rc = account_show(ctx);
    return rc;
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

/* ---- key verbs ---- */

static int key_create_tx(struct admin_ctx *ctx, void *arg)
{
    struct store_account a;
    int rc = admin_account(ctx, NULL, &a);
    return rc == ADMIN_OK ? admin_key_create_for(ctx->conn, a.id, arg) : rc;
}

static int key_create(struct admin_ctx *ctx)
{
    struct store_key k;
    int rc = admin_write(ctx, key_create_tx, &k);
    if (rc == ADMIN_OK)
        admin_key_print(&k, &ctx->cfg, true);
    return rc;
}

static int key_list(struct admin_ctx *ctx)
{
    struct store_account a;
    int rc = admin_account(ctx, NULL, &a);
    if (rc != ADMIN_OK)
        return rc;
    return store_key_list(ctx->conn, a.id, key_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read keys");
}

static int key_revoke_tx(struct admin_ctx *ctx, void *arg)
{
    (void)arg;
    const char *id = ctx->opts.positional[0];
    int rc = store_key_set_active(ctx->conn, id, false);
    if (rc == STORE_NOT_FOUND)
        return admin_fail("no access key %s", id);
    return rc == STORE_OK ? ADMIN_OK : admin_fail("cannot revoke %s", id);
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

static const char *const key_value_opts[] = {"account", NULL};

const struct admin_verb admin_key_verbs[] = {
    {"create", "key create [--account ID]", key_value_opts, NULL, key_create},
    {"list", "key list [--account ID]", key_value_opts, NULL, key_list},
    {"revoke", "key revoke ACCESS_KEY_ID", NULL, NULL, key_revoke},
    {NULL, NULL, NULL, NULL, NULL},
};
