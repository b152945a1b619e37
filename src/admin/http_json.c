/* The admin HTTP API's JSON for accounts, keys, users, suppression list entries and
 * identities. Secrets appear only where a key is created. */
#include "admin/admin_internal.h"
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

json_t *admin_json_text(const char *s)
{
    size_t n = strlen(s);
    if (core_utf8_valid(s, n))
        return json_stringn(s, n);
    /* Written by something other than this API (a config, an old row): keep what can be read. */
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    json_t *j = json_string(copy);
    free(copy);
    return j;
}

json_t *admin_json_time(int64_t ms)
{
    char stamp[32];
    core_iso8601(ms, stamp, sizeof stamp);
    return json_string(stamp);
}

json_t *admin_json_number(double d)
{
    if (d >= -9e15 && d <= 9e15 && (double)(json_int_t)d == d)
        return json_integer((json_int_t)d);
    return json_real(d);
}

static json_t *region_json(const struct store_account_region *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "production", json_boolean(r->production));
    json_object_set_new(j, "max_24h", admin_json_number(r->max_24h));
    json_object_set_new(j, "max_rate", admin_json_number(r->max_rate));
    return j;
}

json_t *admin_json_account(struct admin_http *h, const struct store_account *a)
{
    const struct sesame_config *cfg = admin_http_config(h);
    json_t *regions = json_object();
    for (int i = 0; i < cfg->region_count; i++) {
        struct store_account_region r;
        admin_account_region(admin_http_conn(h), cfg, a->id, cfg->regions[i], &r);
        json_object_set_new(regions, cfg->regions[i], region_json(&r));
    }
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(a->id));
    json_object_set_new(j, "name", admin_json_text(a->name));
    json_object_set_new(j, "contact", admin_json_text(a->contact));
    json_object_set_new(j, "suspended", json_boolean(a->suspended));
    json_object_set_new(j, "disabled", json_boolean(a->disabled));
    json_object_set_new(j, "created", admin_json_time(a->created_ms));
    json_object_set_new(j, "regions", regions);
    return j;
}

static void key_secrets(json_t *j, const struct sesame_config *cfg, const struct store_key *k)
{
    char password[AUTH_SMTP_PASSWORD_LEN + 1];
    json_object_set_new(j, "secret_access_key", json_string(k->secret));
    auth_smtp_password_v2(k->secret, password);
    json_object_set_new(j, "smtp_password_v2", json_string(password));
    json_t *v4 = json_object();
    for (int i = 0; i < cfg->region_count; i++) {
        auth_smtp_password_v4(k->secret, cfg->regions[i], password);
        json_object_set_new(v4, cfg->regions[i], json_string(password));
    }
    json_object_set_new(j, "smtp_passwords_v4", v4);
}

json_t *admin_json_key(const struct sesame_config *cfg, const struct store_key *k, bool secrets)
{
    json_t *j = json_object();
    json_object_set_new(j, "access_key_id", json_string(k->key_id));
    json_object_set_new(j, "user", k->user[0] ? admin_json_text(k->user) : json_null());
    json_object_set_new(j, "active", json_boolean(k->active));
    json_object_set_new(j, "created", admin_json_time(k->created_ms));
    if (secrets)
        key_secrets(j, cfg, k);
    return j;
}

json_t *admin_json_user(const struct store_user *u)
{
    char arn[128];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:user/%s", u->account_id, u->name);
    json_t *j = json_object();
    json_object_set_new(j, "name", admin_json_text(u->name));
    json_object_set_new(j, "arn", admin_json_text(arn));
    json_object_set_new(j, "created", admin_json_time(u->created_ms));
    return j;
}

json_t *admin_json_suppression(const struct store_suppression *s)
{
    json_t *j = json_object();
    json_object_set_new(j, "address", admin_json_text(s->address));
    json_object_set_new(j, "reason", admin_json_text(s->reason));
    json_object_set_new(j, "created", admin_json_time(s->created_ms));
    return j;
}

json_t *admin_json_identity(const struct store_identity *i)
{
    bool domain = i->kind == IDENTITY_DOMAIN;
    json_t *j = json_object();
    json_object_set_new(j, "identity", admin_json_text(i->identity));
    json_object_set_new(j, "type", json_string(domain ? "Domain" : "EmailAddress"));
    json_object_set_new(j, "region", admin_json_text(i->region));
    json_object_set_new(j, "status", admin_json_text(i->status));
    json_object_set_new(j, "created", admin_json_time(i->created_ms));
    json_object_set_new(j, "status_changed", admin_json_time(i->status_ms));
    if (domain)
        json_object_set_new(j, "verification_token", admin_json_text(i->token));
    return j;
}
