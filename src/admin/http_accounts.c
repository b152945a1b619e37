/* Admin HTTP API: accounts and access keys. */
#include "admin/admin_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- accounts ---- */

struct account_array {
    struct store_account *items;
    size_t count, cap;
};

static void account_collect(const struct store_account *a, void *ctx)
{
    struct account_array *arr = ctx;
    if (arr->count == arr->cap) {
        arr->cap = arr->cap ? arr->cap * 2 : 16;
        if (!(arr->items = realloc(arr->items, arr->cap * sizeof *arr->items)))
            abort();
    }
    arr->items[arr->count++] = *a;
}

/* Collected first: each account's limits are read on the same connection. */
void admin_accounts_list(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    struct account_array arr = {0};
    if (store_account_list(admin_http_conn(r->h), account_collect, &arr) != STORE_OK) {
        free(arr.items);
        return admin_reply_store_error(r);
    }
    json_t *list = json_array();
    for (size_t i = 0; i < arr.count; i++)
        json_array_append_new(list, admin_json_account(r->h, &arr.items[i]));
    free(arr.items);
    json_t *body = json_object();
    json_object_set_new(body, "accounts", list);
    admin_reply(r, 200, body);
}

struct account_create_op {
    const char *name, *contact; /* in r->body */
    bool production;
    struct store_account acct;
    struct store_key key;
};

static int account_create_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct account_create_op *op = r->op;
    return admin_op_account_create(c, admin_http_config(r->h), op->name, op->contact,
                                   op->production, &op->acct, &op->key, r->err);
}

static void account_create_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct account_create_op *op = r->op;
    if (!admin_req_done_ok(r, status))
        return;
    json_t *body = json_object();
    json_object_set_new(body, "account", admin_json_account(r->h, &op->acct));
    json_object_set_new(body, "access_key",
                        admin_json_key(admin_http_config(r->h), &op->key, true));
    admin_reply(r, 201, body);
}

void admin_accounts_create(struct admin_req *r)
{
    static const struct admin_field fields[] = {{"name", ADMIN_JSON_STRING, false},
                                                {"contact", ADMIN_JSON_STRING, false},
                                                {"production", ADMIN_JSON_BOOL, false},
                                                {NULL, 0, false}};
    if (!admin_req_query(r, NULL) || !admin_req_body(r, fields))
        return;
    struct account_create_op *op = admin_op_new(sizeof *op);
    op->name = json_string_value(json_object_get(r->body, "name"));
    op->contact = json_string_value(json_object_get(r->body, "contact"));
    op->production = json_is_true(json_object_get(r->body, "production"));
    admin_req_write(r, op, account_create_write, account_create_done);
}

void admin_account_get(struct admin_req *r)
{
    if (admin_req_query(r, NULL))
        admin_reply(r, 200, admin_json_account(r->h, &r->account));
}

static const struct admin_field region_fields[] = {{"production", ADMIN_JSON_BOOL, false},
                                                   {"max_24h", ADMIN_JSON_NUMBER, false},
                                                   {"max_rate", ADMIN_JSON_NUMBER, false},
                                                   {NULL, 0, false}};

static int json_flag(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return v ? json_is_true(v) : -1;
}

/* One member of "regions"; false after replying 400. */
static bool region_change_parse(struct admin_req *r, const char *region, json_t *v,
                                struct admin_region_change *out)
{
    char where[STORE_REGION_LEN + 16], err[256];
    if (!config_has_region(admin_http_config(r->h), region)) {
        admin_reply_error(r, 400, "ValidationError", "region %.64s is not served by this instance",
                          region);
        return false;
    }
    snprintf(where, sizeof where, "regions.%s.", region);
    if (!json_is_object(v) || !admin_json_check(v, region_fields, where, err, sizeof err)) {
        admin_reply_error(r, 400, "ValidationError", "%s",
                          json_is_object(v) ? err : "each member of regions must be an object");
        return false;
    }
    core_strlcpy(out->region, region, sizeof out->region);
    out->production = json_flag(v, "production");
    json_t *n = json_object_get(v, "max_24h");
    out->set_max_24h = n != NULL;
    out->max_24h = json_number_value(n);
    n = json_object_get(v, "max_rate");
    out->set_max_rate = n != NULL;
    out->max_rate = json_number_value(n);
    return true;
}

struct account_patch_op {
    struct admin_account_change change; /* strings in r->body */
};

static int account_patch_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct account_patch_op *op = r->op;
    return admin_op_account_update(c, admin_http_config(r->h), r->account.id, &op->change, r->err);
}

static void account_patch_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    if (!admin_req_done_ok(r, status))
        return;
    if (store_account_get(admin_http_conn(r->h), r->account.id, &r->account) != STORE_OK)
        return admin_reply_store_error(r);
    admin_reply(r, 200, admin_json_account(r->h, &r->account));
}

void admin_account_patch(struct admin_req *r)
{
    static const struct admin_field fields[] = {
        {"name", ADMIN_JSON_STRING, false},    {"contact", ADMIN_JSON_STRING, false},
        {"suspended", ADMIN_JSON_BOOL, false}, {"disabled", ADMIN_JSON_BOOL, false},
        {"regions", ADMIN_JSON_OBJECT, false}, {NULL, 0, false}};
    if (!admin_req_query(r, NULL) || !admin_req_body(r, fields))
        return;
    struct account_patch_op *op = admin_op_new(sizeof *op);
    struct admin_account_change *ch = &op->change;
    admin_account_change_init(ch);
    ch->name = json_string_value(json_object_get(r->body, "name"));
    ch->contact = json_string_value(json_object_get(r->body, "contact"));
    ch->suspended = json_flag(r->body, "suspended");
    ch->disabled = json_flag(r->body, "disabled");
    const char *region;
    json_t *v;
    json_object_foreach(json_object_get(r->body, "regions"), region, v)
    {
        /* At most one member per configured region, as names are unique in an object. */
        if (!region_change_parse(r, region, v, &ch->regions[ch->region_count])) {
            free(op);
            return;
        }
        ch->region_count++;
    }
    admin_req_write(r, op, account_patch_write, account_patch_done);
}

/* ---- access keys ---- */

struct key_filter {
    json_t *list;
    const char *user; /* NULL: every key */
};

static void key_append(const struct store_key *k, void *ctx)
{
    struct key_filter *f = ctx;
    if (!f->user || !strcmp(k->user, f->user))
        json_array_append_new(f->list, admin_json_key(NULL, k, false));
}

json_t *admin_keys_json(struct admin_req *r, const char *user)
{
    struct key_filter f = {json_array(), user};
    if (store_key_list(admin_http_conn(r->h), r->account.id, key_append, &f) == STORE_OK)
        return f.list;
    json_decref(f.list);
    return NULL;
}

void admin_keys_list(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    json_t *keys = admin_keys_json(r, NULL);
    if (!keys)
        return admin_reply_store_error(r);
    json_t *body = json_object();
    json_object_set_new(body, "keys", keys);
    admin_reply(r, 200, body);
}

struct key_op {
    char user[STORE_USER_LEN];
    char key_id[64];
    struct store_key key;
};

static int key_create_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct key_op *op = r->op;
    return admin_op_key_create(c, r->account.id, op->user, &op->key, r->err);
}

static void key_create_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct key_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 201, admin_json_key(admin_http_config(r->h), &op->key, true));
}

/* A root key (user NULL) or a user's. */
static void key_create(struct admin_req *r, const char *user)
{
    static const struct admin_field none[] = {{NULL, 0, false}};
    if (!admin_req_query(r, NULL) || !admin_req_body(r, none))
        return;
    struct key_op *op = admin_op_new(sizeof *op);
    if (user && !core_strlcpy(op->user, user, sizeof op->user)) {
        free(op);
        return admin_reply_error(r, 400, "ValidationError", "the user name is too long");
    }
    admin_req_write(r, op, key_create_write, key_create_done);
}

void admin_keys_create(struct admin_req *r)
{
    key_create(r, NULL);
}

void admin_user_keys_create(struct admin_req *r)
{
    key_create(r, r->segments[3]);
}

void admin_key_get(struct admin_req *r)
{
    struct store_key k;
    if (!admin_req_query(r, NULL))
        return;
    int rc = store_key_get(admin_http_conn(r->h), r->segments[3], &k);
    if (rc == STORE_OK && strcmp(k.account_id, r->account.id))
        rc = STORE_NOT_FOUND; /* another account's key is none of this one's business */
    if (rc == STORE_NOT_FOUND)
        return admin_reply_error(r, 404, "NotFound", "no access key %.64s in account %s",
                                 r->segments[3], r->account.id);
    if (rc != STORE_OK)
        return admin_reply_store_error(r);
    admin_reply(r, 200, admin_json_key(NULL, &k, false));
}

static int key_revoke_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct key_op *op = r->op;
    return admin_op_key_revoke(c, r->account.id, op->key_id, &op->key, r->err);
}

static void key_revoke_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct key_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 200, admin_json_key(NULL, &op->key, false));
}

void admin_key_revoke(struct admin_req *r)
{
    if (!admin_req_query(r, NULL))
        return;
    struct key_op *op = admin_op_new(sizeof *op);
    if (!core_strlcpy(op->key_id, r->segments[3], sizeof op->key_id)) {
        free(op);
        return admin_reply_error(r, 404, "NotFound", "no access key %.64s in account %s",
                                 r->segments[3], r->account.id);
    }
    admin_req_write(r, op, key_revoke_write, key_revoke_done);
}
