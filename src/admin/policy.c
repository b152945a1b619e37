/* sesame policy put|get|list|delete: a user's inline IAM policies. A document is checked
 * by the same parser that the API evaluates it with, before anything is stored. */
#include "admin/admin_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct policy_args {
    struct store_account acct;
    const char *user, *name;
    struct buf doc;
    char err[ADMIN_ERR_LEN];
};

/* The account, USER and (when the verb takes one) NAME. */
static int policy_prepare(struct admin_ctx *ctx, const struct admin_verb *verb, bool named,
                          struct policy_args *a)
{
    memset(a, 0, sizeof *a);
    buf_init(&a->doc);
    if (ctx->opts.positional_count != (named ? 2 : 1))
        return admin_usage_error(verb, named ? "give a user name and a policy name"
                                             : "give one user name");
    a->user = ctx->opts.positional[0];
    a->name = named ? ctx->opts.positional[1] : NULL;
    int rc = admin_op_report(admin_check_user_name(a->user, a->err), a->err);
    if (rc == ADMIN_OK && named)
        rc = admin_op_report(admin_check_policy_name(a->name, a->err), a->err);
    return rc == ADMIN_OK ? admin_account(ctx, NULL, &a->acct) : rc;
}

static int user_check(struct admin_ctx *ctx, const struct policy_args *a)
{
    struct store_user u;
    int rc = store_user_get(ctx->conn, a->acct.id, a->user, &u);
    if (rc == STORE_NOT_FOUND)
        return admin_fail("no user %s in account %s", a->user, a->acct.id);
    return rc == STORE_OK ? ADMIN_OK : admin_fail("cannot read users");
}

/* The document from path, or from stdin for NULL or "-"; one byte past the limit is
 * enough to refuse it without reading the rest. */
static int policy_read(const char *path, struct buf *doc)
{
    bool std = !path || !strcmp(path, "-");
    FILE *f = std ? stdin : fopen(path, "rb");
    if (!f)
        return admin_fail("cannot read %s: %s", path, strerror(errno));
    char chunk[8192];
    size_t n;
    while (doc->len <= ADMIN_MAX_POLICY_BYTES && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(doc, chunk, n);
    bool failed = ferror(f);
    if (!std)
        fclose(f);
    if (failed)
        return admin_fail("cannot read %s", std ? "the standard input" : path);
    if (doc->len > ADMIN_MAX_POLICY_BYTES)
        return admin_fail("the policy document is over %d bytes (the limit)",
                          ADMIN_MAX_POLICY_BYTES);
    buf_cstr(doc);
    return ADMIN_OK;
}

static int policy_put_tx(struct admin_ctx *ctx, void *arg)
{
    struct policy_args *a = arg;
    int rc = admin_check_policy_name(a->name, a->err);
    if (rc == ADMIN_OP_OK)
        rc = admin_check_policy(buf_cstr(&a->doc), a->doc.len, a->err);
    if (rc == ADMIN_OP_OK)
        rc =
            admin_op_policy_put(ctx->conn, a->acct.id, a->user, a->name, buf_cstr(&a->doc), a->err);
    return admin_op_report(rc, a->err);
}

static int policy_put(struct admin_ctx *ctx)
{
    struct policy_args a;
    int rc = policy_prepare(ctx, &admin_policy_verbs[0], true, &a);
    if (rc == ADMIN_OK)
        rc = policy_read(admin_opt(ctx, "file"), &a.doc);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, policy_put_tx, &a);
    if (rc == ADMIN_OK)
        printf("stored: policy %s of user %s (account %s)\n", a.name, a.user, a.acct.id);
    buf_free(&a.doc);
    return rc;
}

static int policy_get(struct admin_ctx *ctx)
{
    struct policy_args a;
    int rc = policy_prepare(ctx, &admin_policy_verbs[1], true, &a);
    if (rc == ADMIN_OK)
        rc = user_check(ctx, &a);
    if (rc != ADMIN_OK)
        return rc;
    struct store_policy p;
    rc = store_policy_get(ctx->conn, a.acct.id, a.user, a.name, &p);
    if (rc == STORE_NOT_FOUND)
        return admin_fail("user %s has no policy %s", a.user, a.name);
    if (rc != STORE_OK)
        return admin_fail("cannot read policies");
    size_t n = strlen(p.document);
    printf("%s%s", p.document, n && p.document[n - 1] == '\n' ? "" : "\n");
    free((char *)p.document);
    return ADMIN_OK;
}

static void policy_line(const struct store_policy *p, void *ctx)
{
    (void)ctx;
    printf("%s\n", p->name);
}

static int policy_list(struct admin_ctx *ctx)
{
    struct policy_args a;
    int rc = policy_prepare(ctx, &admin_policy_verbs[2], false, &a);
    if (rc == ADMIN_OK)
        rc = user_check(ctx, &a);
    if (rc != ADMIN_OK)
        return rc;
    return store_policy_list(ctx->conn, a.acct.id, a.user, policy_line, NULL) == STORE_OK
               ? ADMIN_OK
               : admin_fail("cannot read policies");
}

static int policy_delete_tx(struct admin_ctx *ctx, void *arg)
{
    struct policy_args *a = arg;
    int rc = admin_op_policy_delete(ctx->conn, a->acct.id, a->user, a->name, a->err);
    return admin_op_report(rc, a->err);
}

static int policy_delete(struct admin_ctx *ctx)
{
    struct policy_args a;
    int rc = policy_prepare(ctx, &admin_policy_verbs[3], true, &a);
    if (rc == ADMIN_OK)
        rc = admin_write(ctx, policy_delete_tx, &a);
    if (rc == ADMIN_OK)
        printf("deleted: policy %s of user %s (account %s)\n", a.name, a.user, a.acct.id);
    return rc;
}

static const char *const policy_value_opts[] = {"account", NULL};
static const char *const policy_put_opts[] = {"account", "file", NULL};

const struct admin_verb admin_policy_verbs[] = {
    {"put", "policy put USER NAME [--file PATH|-] [--account ID]", policy_put_opts, NULL,
     policy_put},
    {"get", "policy get USER NAME [--account ID]", policy_value_opts, NULL, policy_get},
    {"list", "policy list USER [--account ID]", policy_value_opts, NULL, policy_list},
    {"delete", "policy delete USER NAME [--account ID]", policy_value_opts, NULL, policy_delete},
    {NULL, NULL, NULL, NULL, NULL},
};
