/* The `sesame` command line: global options, verb lookup, option parsing, help. */
#include "admin/admin.h"
#include "admin/admin_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct admin_group {
    const char *name;
    const struct admin_verb *verbs;
    const char *summary;
};

static const struct admin_group groups[] = {
    {"account", admin_account_verbs, "accounts: sandbox or production, quota, rate, states"},
    {"key", admin_key_verbs, "access keys and their SMTP passwords"},
    {"user", admin_user_verbs, "users of an account: each with its own keys and policies"},
    {"policy", admin_policy_verbs, "users' inline IAM policies"},
    {"identity", admin_identity_verbs, "verified email addresses and domains"},
    {"queue", admin_queue_verbs, "messages waiting for delivery: why, retry now, drop"},
    {"suppression", admin_suppression_verbs, "the suppression list of hard-bounced addresses"},
    {"feedback", admin_feedback_verbs, "reports the feedback listener kept aside"},
    {"notifications", admin_notifications_verbs, "SNS deliveries waiting or given up on"},
};

static void admin_help(FILE *out)
{
    fprintf(out,
            "usage: sesame [-c CONFIG] COMMAND [ARGS]\n\n"
            "  -c CONFIG   the instance's config (default: $SESAME_CONFIG, else "
            "./var/sesame.conf)\n\n"
            "commands:\n  %s\n",
            admin_init_verb.usage);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (const struct admin_verb *v = groups[g].verbs; v->name; v++)
            fprintf(out, "  %s\n", v->usage);
    fprintf(out, "  %s\n", admin_dkim_zone_verb.usage);
    fprintf(out, "\nEvery command takes --help. Exit status: 0 done, 1 failed, 2 usage error.\n");
}

int admin_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sesame: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return ADMIN_FAILED;
}

int admin_op_report(int status, const char *err)
{
    return status == ADMIN_OP_OK ? ADMIN_OK : admin_fail("%s", err);
}

int admin_usage_error(const struct admin_verb *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sesame: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nusage: %s\n", verb->usage);
    va_end(ap);
    return ADMIN_USAGE;
}

const char *admin_opt(const struct admin_ctx *ctx, const char *name)
{
    for (int i = ctx->opts.count - 1; i >= 0; i--)
        if (!strcmp(ctx->opts.names[i], name))
            return ctx->opts.values[i];
    return NULL;
}

bool admin_flag(const struct admin_ctx *ctx, const char *name)
{
    for (int i = 0; i < ctx->opts.count; i++)
        if (!strcmp(ctx->opts.names[i], name))
            return true;
    return false;
}

int admin_opt_all(const struct admin_ctx *ctx, const char *name, const char **out, int max)
{
    int n = 0;
    for (int i = 0; i < ctx->opts.count && n < max; i++)
        if (!strcmp(ctx->opts.names[i], name))
            out[n++] = ctx->opts.values[i];
    return n;
}

static bool in_list(const char *const *list, const char *name)
{
    for (const char *const *o = list; o && *o; o++)
        if (!strcmp(*o, name))
            return true;
    return false;
}

static int parse_opts(const struct admin_verb *verb, int argc, char **argv, struct admin_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            if (o->positional_count == ADMIN_MAX_ARGS)
                return admin_usage_error(verb, "too many arguments");
            o->positional[o->positional_count++] = a;
            continue;
        }
        if (o->count == 64)
            return admin_usage_error(verb, "too many options");
        o->names[o->count] = a + 2;
        o->values[o->count] = NULL;
        if (in_list(verb->value_opts, a + 2)) {
            if (i + 1 >= argc)
                return admin_usage_error(verb, "option %s needs a value", a);
            o->values[o->count] = argv[++i];
        } else if (strcmp(a + 2, "help") && !in_list(verb->flag_opts, a + 2)) {
            return admin_usage_error(verb, "unknown option %s", a);
        }
        o->count++;
    }
    return ADMIN_OK;
}

int admin_open(struct admin_ctx *ctx)
{
    char err[1024];
    config_defaults(&ctx->cfg);
    if (config_load(ctx->config_path, &ctx->cfg, err, sizeof err) != 0)
        return admin_fail("%s", err);
    if (store_open(&ctx->cfg, &ctx->store, err, sizeof err) != STORE_OK)
        return admin_fail("store: %s", err);
    ctx->conn = store_conn_open(ctx->store);
    if (!ctx->conn)
        return admin_fail("cannot open the store %s", ctx->cfg.store_path);
    return ADMIN_OK;
}

void admin_close(struct admin_ctx *ctx)
{
    store_conn_close(ctx->conn);
    store_close(ctx->store);
}

int admin_account(struct admin_ctx *ctx, const char *id, struct store_account *out)
{
    if (!id)
        id = admin_opt(ctx, "account");
    int rc = id ? store_account_get(ctx->conn, id, out) : store_account_first(ctx->conn, out);
    if (rc == STORE_NOT_FOUND)
        return id ? admin_fail("no account %s", id) : admin_fail("no account yet: run sesame init");
    return rc == STORE_OK ? ADMIN_OK : admin_fail("cannot read accounts");
}

int admin_region(struct admin_ctx *ctx, const char **out)
{
    const char *r = admin_opt(ctx, "region");
    if (r && !config_has_region(&ctx->cfg, r))
        return admin_fail("region %s is not served by this instance ([regions] names)", r);
    *out = r ? r : ctx->cfg.regions[0];
    return ADMIN_OK;
}

int admin_write(struct admin_ctx *ctx, int (*fn)(struct admin_ctx *ctx, void *arg), void *arg)
{
    if (store_begin(ctx->conn) != STORE_OK)
        return admin_fail("the store is busy or unwritable");
    int rc = fn(ctx, arg);
    if (rc != ADMIN_OK) {
        store_rollback(ctx->conn);
        return rc;
    }
    if (store_commit(ctx->conn) != STORE_OK) {
        store_rollback(ctx->conn);
        return admin_fail("commit failed");
    }
    return ADMIN_OK;
}

static const struct admin_verb *find_verb(const struct admin_verb *verbs, const char *name)
{
    for (const struct admin_verb *v = verbs; v->name; v++)
        if (!strcmp(v->name, name))
            return v;
    return NULL;
}

static void group_help(const struct admin_group *g, FILE *out)
{
    fprintf(out, "sesame %s: %s\n", g->name, g->summary);
    for (const struct admin_verb *v = g->verbs; v->name; v++)
        fprintf(out, "  %s\n", v->usage);
}

static int run_verb(const struct admin_verb *verb, struct admin_ctx *ctx, int argc, char **argv)
{
    int rc = parse_opts(verb, argc, argv, &ctx->opts);
    if (rc != ADMIN_OK)
        return rc;
    if (admin_flag(ctx, "help")) {
        printf("usage: %s\n", verb->usage);
        return ADMIN_OK;
    }
    if (verb != &admin_init_verb && (rc = admin_open(ctx)) != ADMIN_OK)
        return admin_close(ctx), rc;
    rc = verb->run(ctx);
    if (verb != &admin_init_verb)
        admin_close(ctx);
    return rc;
}

static int run_group(const struct admin_group *g, struct admin_ctx *ctx, int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
        group_help(g, argc < 1 ? stderr : stdout);
        return argc < 1 ? ADMIN_USAGE : ADMIN_OK;
    }
    const struct admin_verb *verb = find_verb(g->verbs, argv[0]);
    if (!verb) {
        fprintf(stderr, "sesame: unknown command '%s %s'\n", g->name, argv[0]);
        group_help(g, stderr);
        return ADMIN_USAGE;
    }
    return run_verb(verb, ctx, argc - 1, argv + 1);
}

int admin_main(int argc, char **argv)
{
    static struct admin_ctx ctx;
    const char *env = getenv("SESAME_CONFIG");
    ctx.config_path = env && *env ? env : "var/sesame.conf";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            ctx.config_path = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return admin_help(stdout), ADMIN_OK;
        else
            return admin_help(stderr), ADMIN_USAGE;
    }
    if (i >= argc)
        return admin_help(stderr), ADMIN_USAGE;
    if (!strcmp(argv[i], "init"))
        return run_verb(&admin_init_verb, &ctx, argc - i - 1, argv + i + 1);
    if (!strcmp(argv[i], "dkim-zone"))
        return run_verb(&admin_dkim_zone_verb, &ctx, argc - i - 1, argv + i + 1);
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        if (!strcmp(argv[i], groups[g].name))
            return run_group(&groups[g], &ctx, argc - i - 1, argv + i + 1);
    fprintf(stderr, "sesame: unknown command '%s'\n", argv[i]);
    admin_help(stderr);
    return ADMIN_USAGE;
}
