/* Admin HTTP API: the region-wide suppression list (DECISIONS 30), filled by hard
 * bounces; an address is removed from every region at once (spec 30 §7.4). */
#include "admin/admin_internal.h"

#include <string.h>

static json_t *suppressed_json(const struct store_suppressed *s)
{
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "address", admin_json_text(s->address),
                     "region", admin_json_text(s->region), "reason", admin_json_text(s->reason),
                     "message_id", admin_json_text(s->message_id), "created",
                     admin_json_time(s->created_ms), "expires", admin_json_time(s->expires_ms));
}

static void suppressed_append(const struct store_suppressed *s, void *ctx)
{
    json_array_append_new(ctx, suppressed_json(s));
}

void admin_suppressed_list(struct admin_req *r)
{
    static const char *const allowed[] = {"address", NULL};
    if (!admin_req_query(r, allowed))
        return;
    json_t *list = json_array();
    if (store_suppressed_list(admin_http_conn(r->h), admin_req_param(r, "address"), core_now_ms(),
                              suppressed_append, list) != STORE_OK) {
        json_decref(list);
        return admin_reply_store_error(r);
    }
    admin_reply(r, 200, json_pack("{s:o}", "suppressed", list));
}

static int suppressed_delete_write(struct store_conn *c, void *ctx)
{
    struct admin_req *r = ctx;
    int rc = store_suppressed_delete(c, r->segments[1]);
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(r->err, ADMIN_OP_NOT_FOUND, "not on the suppression list: %.320s",
                             r->segments[1]);
    return rc == STORE_OK ? ADMIN_OP_OK : ADMIN_OP_ERROR;
}

static void suppressed_delete_done(int status, void *ctx)
{
    struct admin_req *r = ctx;
    if (admin_req_done_ok(r, status))
        admin_reply(r, 204, NULL);
}

void admin_suppressed_delete(struct admin_req *r)
{
    if (admin_req_query(r, NULL))
        admin_req_write(r, NULL, suppressed_delete_write, suppressed_delete_done);
}
