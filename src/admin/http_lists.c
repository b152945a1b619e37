/* Admin HTTP API: an account's suppression list, and its identities' verification status
 * per region (the operator's override of the DNS and email checks). */
#include "admin/admin_internal.h"

#include <stdlib.h>
#include <string.h>

#define ITEM_SEGMENT 3
#define SUPPRESSION_PAGE 100
#define SUPPRESSION_PAGE_MAX 1000

/* ---- suppression list ---- */

struct suppression_page {
    json_t *list;
    int limit, count;
    char last[STORE_IDENTITY_LEN];
};

/* One row past the page is asked for: its presence says there is a next page. */
static void suppression_append(const struct store_suppression *s, void *ctx)
{
    struct suppression_page *p = ctx;
    if (p->count++ >= p->limit)
        return;
    json_array_append_new(p->list, admin_json_suppression(s));
    core_strlcpy(p->last, s->address, sizeof p->last);
}

static bool page_limit(struct admin_req *r, int *out)
{
    const char *v = admin_req_param(r, "limit");
    *out = SUPPRESSION_PAGE;
    if (!v)
        return true;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < 1 || n > SUPPRESSION_PAGE_MAX) {
        admin_reply_error(r, 400, "ValidationError", "limit takes 1 to %d, not '%.40s'",
                          SUPPRESSION_PAGE_MAX, v);
        return false;
    }
    *out = (int)n;
    return true;
}

void admin_suppressions_list(struct admin_req *r)
{
    static const char *const params[] = {"after", "limit", NULL};
    struct suppression_page p = {.list = json_array()};
    const char *after = admin_req_param(r, "after");
    if (!admin_req_query(r, params) || !page_limit(r, &p.limit)) {
        json_decref(p.list);
        return;
    }
    if (store_suppression_list(admin_http_conn(r->h), r->account.id, after ? after : "",
                               p.limit + 1, suppression_append, &p) != STORE_OK) {
        json_decref(p.list);
        return admin_reply_store_error(r);
    }
    json_t *body = json_object();
    json_object_set_new(body, "suppressions", p.list);
    json_object_set_new(body, "next", p.count > p.limit ? admin_json_text(p.last) : json_null());
    admin_reply(r, 200, body);
}

void admin_suppression_get(struct admin_req *r)
{
    struct store_suppression s;
    const char *address = r->segments[ITEM_SEGMENT];
    if (!admin_req_query(r, NULL))
        return;
    int rc = store_suppression_get(admin_http_conn(r->h), r->account.id, address, &s);
    if (rc == STORE_NOT_FOUND)
        return admin_reply_error(r, 404, "NotFound", "not on the suppression list: %.320s",
                                 address);
    if (rc != STORE_OK)
        return admin_reply_store_error(r);
    admin_reply(r, 200, admin_json_suppression(&s));
}

struct suppression_op {
    const char *reason; /* in r->body */
    struct store_suppression entry;
};

static int suppression_put_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct suppression_op *op = r->op;
    return admin_op_suppression_put(c, r->account.id, r->segments[ITEM_SEGMENT], op->reason,
                                    &op->entry, r->err);
}

static void suppression_put_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct suppression_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 200, admin_json_suppression(&op->entry));
}

void admin_suppression_put(struct admin_req *r)
{
    static const struct admin_field fields[] = {{"reason", ADMIN_JSON_STRING, true},
                                                {NULL, 0, false}};
    if (!admin_req_query(r, NULL) || !admin_req_body(r, fields))
        return;
    struct suppression_op *op = admin_op_new(sizeof *op);
    op->reason = json_string_value(json_object_get(r->body, "reason"));
    admin_req_write(r, op, suppression_put_write, suppression_put_done);
}

static int suppression_delete_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    return admin_op_suppression_delete(c, r->account.id, r->segments[ITEM_SEGMENT], r->err);
}

static void deleted_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 204, NULL);
}

void admin_suppression_delete(struct admin_req *r)
{
    if (admin_req_query(r, NULL))
        admin_req_write(r, NULL, suppression_delete_write, deleted_done);
}

/* ---- identities ---- */

static const char *const region_param[] = {"region", NULL};

/* ?region=R, a configured one; the default region without it. False after replying. */
static bool identity_region(struct admin_req *r, const char **out)
{
    const struct sesame_config *cfg = admin_http_config(r->h);
    if (!admin_req_query(r, region_param))
        return false;
    const char *region = admin_req_param(r, "region");
    if (region && !config_has_region(cfg, region)) {
        admin_reply_error(r, 400, "ValidationError", "region %.64s is not served by this instance",
                          region);
        return false;
    }
    *out = region ? region : cfg->regions[0];
    return true;
}

static void identity_append(const struct store_identity *i, void *ctx)
{
    json_array_append_new(ctx, admin_json_identity(i));
}

void admin_identities_list(struct admin_req *r)
{
    const char *region;
    if (!identity_region(r, &region))
        return;
    json_t *list = json_array();
    if (store_identity_list(admin_http_conn(r->h), r->account.id, region, -1, "", 1 << 30,
                            identity_append, list) != STORE_OK) {
        json_decref(list);
        return admin_reply_store_error(r);
    }
    json_t *body = json_object();
    json_object_set_new(body, "identities", list);
    admin_reply(r, 200, body);
}

void admin_identity_get(struct admin_req *r)
{
    const char *region;
    char name[STORE_IDENTITY_LEN];
    struct store_identity id;
    if (!identity_region(r, &region))
        return;
    int rc = admin_identity_name(r->segments[ITEM_SEGMENT], name, r->err);
    if (rc != ADMIN_OP_OK)
        return admin_reply_op_error(r, rc);
    rc = store_identity_get(admin_http_conn(r->h), r->account.id, region, name, &id);
    if (rc == STORE_NOT_FOUND)
        return admin_reply_error(r, 404, "NotFound", "no identity %s in %s", name, region);
    if (rc != STORE_OK)
        return admin_reply_store_error(r);
    admin_reply(r, 200, admin_json_identity(&id));
}

struct identity_op {
    const char *region; /* the config's or r->query's */
    const char *status; /* in r->body */
    struct store_identity identity;
};

static int identity_put_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct identity_op *op = r->op;
    return admin_op_identity_set_status(c, r->account.id, op->region, r->segments[ITEM_SEGMENT],
                                        op->status, &op->identity, r->err);
}

static void identity_put_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    struct identity_op *op = r->op;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 200, admin_json_identity(&op->identity));
}

void admin_identity_put(struct admin_req *r)
{
    static const struct admin_field fields[] = {{"status", ADMIN_JSON_STRING, true},
                                                {NULL, 0, false}};
    const char *region;
    if (!identity_region(r, &region) || !admin_req_body(r, fields))
        return;
    struct identity_op *op = admin_op_new(sizeof *op);
    op->region = region;
    op->status = json_string_value(json_object_get(r->body, "status"));
    admin_req_write(r, op, identity_put_write, identity_put_done);
}

static int identity_delete_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    struct identity_op *op = r->op;
    return admin_op_identity_delete(c, r->account.id, op->region, r->segments[ITEM_SEGMENT],
                                    r->err);
}

void admin_identity_delete(struct admin_req *r)
{
    const char *region;
    if (!identity_region(r, &region))
        return;
    struct identity_op *op = admin_op_new(sizeof *op);
    op->region = region;
    admin_req_write(r, op, identity_delete_write, deleted_done);
}
