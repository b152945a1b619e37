/* The operations on accounts, keys, users and policies that the command and the HTTP API
 * share: checks, then store calls, in the caller's transaction; messages, never output. */
#include "admin/admin_internal.h"
#include "mail/mail.h"
#include "auth/auth.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int admin_op_fail(char *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ADMIN_ERR_LEN, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- names ---- */

static bool iam_name_valid(const char *name, size_t max)
{
    size_t n = strlen(name);
    if (n < 1 || n > max)
        return false;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            !strchr("+=,.@_-", *p))
            return false;
    return true;
}

int admin_check_user_name(const char *name, char *err)
{
    if (iam_name_valid(name, STORE_USER_LEN - 1))
        return ADMIN_OP_OK;
    return admin_op_fail(err, ADMIN_OP_INVALID,
                         "invalid user name '%.80s': 1 to 64 of A-Z a-z 0-9 and +=,.@_-", name);
}

int admin_check_policy_name(const char *name, char *err)
{
    if (iam_name_valid(name, STORE_POLICY_LEN - 1))
        return ADMIN_OP_OK;
    return admin_op_fail(err, ADMIN_OP_INVALID,
                         "invalid policy name '%.140s': 1 to 128 of A-Z a-z 0-9 and +=,.@_-", name);
}

int admin_check_policy(const char *doc, size_t len, char *err)
{
    if (len > ADMIN_MAX_POLICY_BYTES)
        return admin_op_fail(err, ADMIN_OP_INVALID,
                             "the policy document is %zu bytes; the limit is %d bytes", len,
                             ADMIN_MAX_POLICY_BYTES);
    char why[ADMIN_ERR_LEN] = "";
    struct auth_policy *p = auth_policy_parse(doc, len, why, sizeof why);
    if (!p)
        return admin_op_fail(err, ADMIN_OP_MALFORMED_POLICY, "%s", why[0] ? why : "invalid policy");
    auth_policy_free(p);
    /* The store keeps text: a NUL byte would cut the document short. */
    if (strlen(doc) != len)
        return admin_op_fail(err, ADMIN_OP_MALFORMED_POLICY, "the document contains a NUL byte");
    return ADMIN_OP_OK;
}

/* ---- accounts ---- */

static void random_account_id(char out[STORE_ID_LEN])
{
    unsigned char raw[12];
    if (core_random_bytes(raw, sizeof raw) != 0)
        abort(); /* no entropy: as core_uuid4, never hand out a guessable id */
    for (int i = 0; i < 12; i++)
        out[i] = (char)('0' + raw[i] % 10);
    out[0] = (char)('1' + raw[0] % 9); /* no leading zero, so it reads as a number everywhere */
    out[12] = '\0';
}

static void region_defaults(const struct sesame_config *cfg, bool production,
                            struct store_account_region *r)
{
    r->production = production;
    r->max_24h = production ? cfg->production_max_24h : cfg->sandbox_max_24h;
    r->max_rate = production ? cfg->production_max_rate : cfg->sandbox_max_rate;
}

void admin_account_region(struct store_conn *c, const struct sesame_config *cfg,
                          const char *account_id, const char *region,
                          struct store_account_region *out)
{
    if (store_account_region_get(c, account_id, region, out) != STORE_OK)
        region_defaults(cfg, false, out);
    core_strlcpy(out->account_id, account_id, sizeof out->account_id);
    core_strlcpy(out->region, region, sizeof out->region);
}

static int check_account_text(const char *name, const char *contact, char *err)
{
    if (name && (!*name || strlen(name) >= sizeof((struct store_account *)0)->name))
        return admin_op_fail(err, ADMIN_OP_INVALID,
                             "the account name must have 1 to 63 characters");
    if (contact && strlen(contact) >= sizeof((struct store_account *)0)->contact)
        return admin_op_fail(err, ADMIN_OP_INVALID, "the contact address is too long");
    if (contact && *contact && !mail_address_valid(contact))
        return admin_op_fail(err, ADMIN_OP_INVALID,
                             "the contact must be an email address, not '%.300s'", contact);
    return ADMIN_OP_OK;
}

int admin_op_account_create(struct store_conn *c, const struct sesame_config *cfg, const char *name,
                            const char *contact, bool production, struct store_account *acct,
                            struct store_key *key, char *err)
{
    int rc = check_account_text(name, contact, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    memset(acct, 0, sizeof *acct);
    random_account_id(acct->id);
    core_strlcpy(acct->name, name ? name : "default", sizeof acct->name);
    core_strlcpy(acct->contact, contact ? contact : "", sizeof acct->contact);
    acct->created_ms = core_now_ms();
    if (store_account_insert(c, acct) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the account");
    for (int i = 0; i < cfg->region_count; i++) {
        struct store_account_region r = {0};
        core_strlcpy(r.account_id, acct->id, sizeof r.account_id);
        core_strlcpy(r.region, cfg->regions[i], sizeof r.region);
        region_defaults(cfg, production, &r);
        if (store_account_region_put(c, &r) != STORE_OK)
            return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the account's limits");
    }
    return admin_op_key_create(c, acct->id, NULL, key, err);
}

void admin_account_change_init(struct admin_account_change *ch)
{
    memset(ch, 0, sizeof *ch);
    ch->suspended = ch->disabled = -1;
}

static int check_limit(const char *what, double v, char *err)
{
    if (v >= 0 && v <= ADMIN_MAX_LIMIT_VALUE)
        return ADMIN_OP_OK;
    return admin_op_fail(err, ADMIN_OP_INVALID, "%s takes a number from 0 to 1e12, not %g", what,
                         v);
}

/* Moving to production without explicit limits gives the configured production limits,
 * and back to the sandbox the sandbox ones; given limits apply on top. */
static int account_region_apply(struct store_conn *c, const struct sesame_config *cfg,
                                const char *account_id, const struct admin_region_change *ch,
                                char *err)
{
    if (!config_has_region(cfg, ch->region))
        return admin_op_fail(err, ADMIN_OP_INVALID, "region %s is not served by this instance",
                             ch->region);
    struct store_account_region r;
    admin_account_region(c, cfg, account_id, ch->region, &r);
    if (ch->production >= 0 && r.production != (ch->production == 1))
        region_defaults(cfg, ch->production == 1, &r);
    if (ch->set_max_24h && check_limit("the quota (max_24h)", ch->max_24h, err))
        return ADMIN_OP_INVALID;
    if (ch->set_max_rate && check_limit("the rate (max_rate)", ch->max_rate, err))
        return ADMIN_OP_INVALID;
    if (ch->set_max_24h)
        r.max_24h = ch->max_24h;
    if (ch->set_max_rate)
        r.max_rate = ch->max_rate;
    if (store_account_region_put(c, &r) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the limits of %s", ch->region);
    return ADMIN_OP_OK;
}

int admin_op_account_update(struct store_conn *c, const struct sesame_config *cfg,
                            const char *account_id, const struct admin_account_change *ch,
                            char *err)
{
    struct store_account a;
    int rc = store_account_get(c, account_id, &a);
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "no account %s", account_id);
    if (rc != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot read accounts");
    if ((rc = check_account_text(ch->name, ch->contact, err)) != ADMIN_OP_OK)
        return rc;
    if (ch->name)
        core_strlcpy(a.name, ch->name, sizeof a.name);
    if (ch->contact)
        core_strlcpy(a.contact, ch->contact, sizeof a.contact);
    if (ch->suspended >= 0)
        a.suspended = ch->suspended == 1;
    if (ch->disabled >= 0)
        a.disabled = ch->disabled == 1;
    if (store_account_update(c, &a) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot update account %s", account_id);
    for (int i = 0; i < ch->region_count; i++)
        if ((rc = account_region_apply(c, cfg, account_id, &ch->regions[i], err)) != ADMIN_OP_OK)
            return rc;
    return ADMIN_OP_OK;
}

/* ---- keys ---- */

struct key_count {
    const char *user;
    int all, active;
};

static void key_count_one(const struct store_key *k, void *ctx)
{
    struct key_count *n = ctx;
    if (strcmp(k->user, n->user))
        return;
    n->all++;
    n->active += k->active;
}

int admin_user_key_count(struct store_conn *c, const char *account_id, const char *user, int *all,
                         int *active)
{
    struct key_count n = {user, 0, 0};
    int rc = store_key_list(c, account_id, key_count_one, &n);
    *all = n.all;
    *active = n.active;
    return rc == STORE_OK ? ADMIN_OP_OK : ADMIN_OP_ERROR;
}

static int user_must_exist(struct store_conn *c, const char *account_id, const char *user,
                           char *err)
{
    int rc = admin_check_user_name(user, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    struct store_user u;
    rc = store_user_get(c, account_id, user, &u);
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "no user %s in account %s", user, account_id);
    return rc == STORE_OK ? ADMIN_OP_OK : admin_op_fail(err, ADMIN_OP_ERROR, "cannot read users");
}

/* IAM allows a user two active keys: one in use and one being rotated in. */
static int user_key_room(struct store_conn *c, const char *account_id, const char *user, char *err)
{
    int rc = user_must_exist(c, account_id, user, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    int all, active;
    if (admin_user_key_count(c, account_id, user, &all, &active) != ADMIN_OP_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot read keys");
    if (active >= ADMIN_MAX_USER_KEYS)
        return admin_op_fail(err, ADMIN_OP_LIMIT,
                             "user %s already has %d active access keys (the limit)", user,
                             ADMIN_MAX_USER_KEYS);
    return ADMIN_OP_OK;
}

int admin_op_key_create(struct store_conn *c, const char *account_id, const char *user,
                        struct store_key *key, char *err)
{
    int rc;
    if (user && strlen(user) >= sizeof key->user)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "no user %.64s...", user);
    if (user && *user && (rc = user_key_room(c, account_id, user, err)) != ADMIN_OP_OK)
        return rc;
    memset(key, 0, sizeof *key);
    if (auth_key_generate(key->key_id, key->secret) != 0)
        return admin_op_fail(err, ADMIN_OP_ERROR, "no randomness for a new key");
    core_strlcpy(key->account_id, account_id, sizeof key->account_id);
    core_strlcpy(key->user, user ? user : "", sizeof key->user);
    key->active = true;
    key->created_ms = core_now_ms();
    if (store_key_insert(c, key) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the key");
    return ADMIN_OP_OK;
}

int admin_op_key_revoke(struct store_conn *c, const char *account_id, const char *key_id,
                        struct store_key *key, char *err)
{
    int rc = store_key_get(c, key_id, key);
    /* Another account's key is as unknown as a key that does not exist. */
    if (rc == STORE_NOT_FOUND ||
        (rc == STORE_OK && account_id && strcmp(key->account_id, account_id)))
        return account_id ? admin_op_fail(err, ADMIN_OP_NOT_FOUND,
                                          "no access key %.64s in account %s", key_id, account_id)
                          : admin_op_fail(err, ADMIN_OP_NOT_FOUND, "no access key %.64s", key_id);
    if (rc != STORE_OK || store_key_set_active(c, key_id, false) == STORE_ERROR)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot revoke %s", key_id);
    key->active = false;
    return ADMIN_OP_OK;
}

/* ---- users and their policies ---- */

int admin_op_user_create(struct store_conn *c, const char *account_id, const char *name,
                         struct store_user *out, char *err)
{
    int rc = admin_check_user_name(name, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    memset(out, 0, sizeof *out);
    core_strlcpy(out->account_id, account_id, sizeof out->account_id);
    core_strlcpy(out->name, name, sizeof out->name);
    out->created_ms = core_now_ms();
    rc = store_user_insert(c, out);
    if (rc == STORE_EXISTS)
        return admin_op_fail(err, ADMIN_OP_EXISTS, "user %s already exists in account %s", name,
                             account_id);
    return rc == STORE_OK ? ADMIN_OP_OK
                          : admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the user");
}

static void policy_count_one(const struct store_policy *p, void *ctx)
{
    (void)p;
    (*(int *)ctx)++;
}

int admin_op_user_delete(struct store_conn *c, const char *account_id, const char *name, int *keys,
                         int *policies, char *err)
{
    int rc = user_must_exist(c, account_id, name, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    int active;
    *policies = 0;
    if (admin_user_key_count(c, account_id, name, keys, &active) != ADMIN_OP_OK ||
        store_policy_list(c, account_id, name, policy_count_one, policies) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot read the user's keys and policies");
    if (store_user_delete(c, account_id, name) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot delete user %s", name);
    return ADMIN_OP_OK;
}

/* The name and document are checked by the caller (admin_check_policy_name and
 * admin_check_policy), off the writer thread. */
int admin_op_policy_put(struct store_conn *c, const char *account_id, const char *user,
                        const char *name, const char *doc, char *err)
{
    int rc = user_must_exist(c, account_id, user, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    struct store_policy p = {.document = doc, .updated_ms = core_now_ms()};
    core_strlcpy(p.account_id, account_id, sizeof p.account_id);
    core_strlcpy(p.user, user, sizeof p.user);
    core_strlcpy(p.name, name, sizeof p.name);
    if (store_policy_put(c, &p) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the policy");
    return ADMIN_OP_OK;
}

int admin_op_policy_delete(struct store_conn *c, const char *account_id, const char *user,
                           const char *name, char *err)
{
    int rc = user_must_exist(c, account_id, user, err);
    if (rc == ADMIN_OP_OK)
        rc = admin_check_policy_name(name, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    rc = store_policy_delete(c, account_id, user, name);
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "user %s has no policy %s", user, name);
    return rc == STORE_OK ? ADMIN_OP_OK
                          : admin_op_fail(err, ADMIN_OP_ERROR, "cannot delete the policy");
}
