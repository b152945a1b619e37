/* Admin HTTP API: an account's users and their inline policies. Paths:
 * accounts/{account}/users/{user}[/keys | /policies[/{name}]]. */
#include "admin/admin_internal.h"

#include <stdlib.h>
#include <string.h>

#define USER_SEGMENT 3
#define POLICY_SEGMENT 5

/* The path's user, read on this thread; false after replying 404 or 500. */
static bool user_find(struct admin_req *r, struct store_user *out)
{
    const char *name = r->segments[USER_SEGMENT];
    int rc = strlen(name) < STORE_USER_LEN
                 ? store_user_get(admin_http_conn(r->h), r->account.id, name, out)
                 : STORE_NOT_FOUND;
    if (rc == STORE_OK)
        return true;
    if (rc == STORE_NOT_FOUND)
        admin_reply_error(r, 404, "NotFound", "no user %.64s in account %s", name, r->account.id);
    else
        admin_reply_store_error(r);
    return false;
}

/* ---- users ---- */

static void user_append(const struct store_user *u, void *ctx)
{
    json_array_append_new(ctx, admin_json_user(u));
}

void admin_users_list(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    json_t *users = json_array();
    if (store_user_list(admin_http_conn(r->h), r->account.id, user_append, users) != STORE_OK) {
        json_decref(users);
        return admin_reply_store_error(r);
    }
    json_t *body = json_object();
    json_object_set_new(body, "users", users);
    admin_reply(r, 200, body);
}

struct user_op {
    const char *name; /* in r->body or r->segments */
    struct store_user user;
    int keys, policies;
};

static int user_create_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct user_op *op = r->op;
    return admin_op_user_create(c, r->account.id, op->name, &op->user, r->err);
}

static void user_create_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct user_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 201, admin_json_user(&op->user));
}

void admin_users_create(struct admin_req *r)
{
    static const struct admin_field fields[] = {{"name", ADMIN_JSON_STRING, true},
                                                {NULL, 0, false}};
    if (!admin_req_query(r, NULL) || !admin_req_body(r, fields))
        return;
    struct user_op *op = admin_op_new(sizeof *op);
    op->name = json_string_value(json_object_get(r->body, "name"));
    admin_req_write(r, op, user_create_write, user_create_done);
}

static void policy_name_append(const struct store_policy *p, void *ctx)
{
    json_array_append_new(ctx, admin_json_text(p->name));
}

static json_t *policy_names(struct admin_req *r)
{
    json_t *names = json_array();
    if (store_policy_list(admin_http_conn(r->h), r->account.id, r->segments[USER_SEGMENT],
                          policy_name_append, names) == STORE_OK)
        return names;
    json_decref(names);
    return NULL;
}

void admin_user_get(struct admin_req *r)
{
    struct store_user u;
    if (!admin_req_query(r, NULL) || !user_find(r, &u))
        return;
    json_t *keys = admin_keys_json(r, u.name), *policies = policy_names(r);
    if (!keys || !policies) {
        json_decref(keys);
        json_decref(policies);
        return admin_reply_store_error(r);
    }
    json_t *body = admin_json_user(&u);
    json_object_set_new(body, "keys", keys);
    json_object_set_new(body, "policies", policies);
    admin_reply(r, 200, body);
}

static int user_delete_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct user_op *op = r->op;
    return admin_op_user_delete(c, r->account.id, op->name, &op->keys, &op->policies, r->err);
}

static void user_delete_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct user_op *op = r->op;
    if (!admin_req_done_ok(r, status))
        return;
    json_t *body = json_object();
    json_object_set_new(body, "name", admin_json_text(op->name));
    json_object_set_new(body, "deleted_access_keys", json_integer(op->keys));
    json_object_set_new(body, "deleted_policies", json_integer(op->policies));
    admin_reply(r, 200, body);
}

void admin_user_delete(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    struct user_op *op = admin_op_new(sizeof *op);
    op->name = r->segments[USER_SEGMENT];
    admin_req_write(r, op, user_delete_write, user_delete_done);
}

void admin_user_keys_list(struct admin_req *r)
{
    struct store_user u;
    if (!admin_req_query(r, NULL) || !user_find(r, &u))
        return;
    json_t *keys = admin_keys_json(r, u.name);
    if (!keys)
        return admin_reply_store_error(r);
    json_t *body = json_object();
    json_object_set_new(body, "keys", keys);
    admin_reply(r, 200, body);
}

/* ---- policies ---- */

void admin_policies_list(struct admin_req *r)
{
    struct store_user u;
    if (!admin_req_query(r, NULL) || !user_find(r, &u))
        return;
    json_t *names = policy_names(r);
    if (!names)
        return admin_reply_store_error(r);
    json_t *body = json_object();
    json_object_set_new(body, "policies", names);
    admin_reply(r, 200, body);
}

/* {"name","document"}: the document as JSON (it was checked when it was put). */
static json_t *policy_json(const char *name, const char *doc)
{
    json_t *j = json_object();
    json_t *parsed = json_loads(doc, JSON_DECODE_ANY, NULL);
    json_object_set_new(j, "name", admin_json_text(name));
    json_object_set_new(j, "document", parsed ? parsed : admin_json_text(doc));
    return j;
}

void admin_policy_get(struct admin_req *r)
{
    struct store_user u;
    struct store_policy p;
    if (!admin_req_query(r, NULL) || !user_find(r, &u))
        return;
    const char *name = r->segments[POLICY_SEGMENT];
    int rc = strlen(name) < STORE_POLICY_LEN
                 ? store_policy_get(admin_http_conn(r->h), r->account.id, u.name, name, &p)
                 : STORE_NOT_FOUND;
    if (rc == STORE_NOT_FOUND)
        return admin_reply_error(r, 404, "NotFound", "user %s has no policy %.128s", u.name, name);
    if (rc != STORE_OK)
        return admin_reply_store_error(r);
    json_t *body = policy_json(p.name, p.document);
    free((char *)p.document);
    admin_reply(r, 200, body);
}

struct policy_op {
    const char *doc; /* r->raw_body */
    size_t len;
};

static int policy_put_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct policy_op *op = r->op;
    return admin_op_policy_put(c, r->account.id, r->segments[USER_SEGMENT],
                               r->segments[POLICY_SEGMENT], op->doc, r->err);
}

static void policy_put_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct policy_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 200, policy_json(r->segments[POLICY_SEGMENT], op->doc));
}

/* The body is the policy document itself, as IAM's PutUserPolicy takes it. */
void admin_policy_put(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    size_t len;
    const char *doc = admin_req_raw_body(r, &len);
    /* Checked here, on the I/O thread: parsing up to 64 KiB must not hold up the writer's
     * shared commit. The write checks again that the user exists. */
    int rc = admin_check_policy_name(r->segments[POLICY_SEGMENT], r->err);
    if (rc == ADMIN_OP_OK)
        rc = admin_check_policy(doc, len, r->err);
    if (rc != ADMIN_OP_OK)
        return admin_reply_op_error(r, rc);
    struct policy_op *op = admin_op_new(sizeof *op);
    op->doc = doc;
    op->len = len;
    admin_req_write(r, op, policy_put_write, policy_put_done);
}

static int policy_delete_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    return admin_op_policy_delete(c, r->account.id, r->segments[USER_SEGMENT],
                                  r->segments[POLICY_SEGMENT], r->err);
}

static void policy_delete_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 204, NULL);
}

void admin_policy_delete(struct admin_req *r)
{
    if (admin_req_query(r, NULL))
        admin_req_write(r, NULL, policy_delete_write, policy_delete_done);
}
