/* The operations on an account's suppression list and on its identities' verification
 * status that the command and the HTTP API share. */
#include "admin/admin_internal.h"
#include "mail/mail.h"

#include <stdlib.h>
#include <string.h>

/* ---- suppression list ---- */

int admin_op_suppression_put(struct store_conn *c, const char *account_id, const char *address,
                             const char *reason, struct store_suppression *out, char *err)
{
    if (!mail_address_valid(address))
        return admin_op_fail(err, ADMIN_OP_INVALID, "invalid email address: %.320s", address);
    if (strcmp(reason, "BOUNCE") && strcmp(reason, "COMPLAINT"))
        return admin_op_fail(err, ADMIN_OP_INVALID,
                             "the reason is BOUNCE or COMPLAINT, not '%.40s'", reason);
    int rc = store_suppression_get(c, account_id, address, out);
    if (rc == STORE_ERROR)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot read the suppression list");
    if (rc == STORE_NOT_FOUND) {
        memset(out, 0, sizeof *out);
        core_strlcpy(out->account_id, account_id, sizeof out->account_id);
        core_strlcpy(out->address, address, sizeof out->address);
        for (char *p = out->address; *p; p++) /* as the store keeps it */
            if (*p >= 'A' && *p <= 'Z')
                *p += 32;
        out->created_ms = core_now_ms();
    }
    core_strlcpy(out->reason, reason, sizeof out->reason);
    if (store_suppression_put(c, out) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the suppression list entry");
    return ADMIN_OP_OK;
}

int admin_op_suppression_delete(struct store_conn *c, const char *account_id, const char *address,
                                char *err)
{
    int rc = store_suppression_delete(c, account_id, address);
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "not on the suppression list: %.320s",
                             address);
    if (rc != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot change the suppression list");
    return ADMIN_OP_OK;
}

/* ---- identities ---- */

int admin_identity_name(const char *given, char *out, char *err)
{
    bool email = strchr(given, '@') != NULL;
    if (!core_strlcpy(out, given, STORE_IDENTITY_LEN) ||
        (email ? !mail_address_valid(out) : !mail_domain_valid(out)))
        return admin_op_fail(err, ADMIN_OP_INVALID, "invalid %s: %.320s",
                             email ? "email address" : "domain name", given);
    mail_identity_normalize(out);
    return ADMIN_OP_OK;
}

static bool status_known(const char *status)
{
    static const char *const known[] = {"Success", "Failed", "Pending", "TemporaryFailure"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(status, known[i]))
            return true;
    return false;
}

/* A new identity as `sesame identity verify --force` makes it; a domain gets its TXT
 * token, so that the DNS check can take over later. */
static void identity_new(const char *account_id, const char *region, const char *name,
                         struct store_identity *id)
{
    memset(id, 0, sizeof *id);
    core_strlcpy(id->account_id, account_id, sizeof id->account_id);
    core_strlcpy(id->region, region, sizeof id->region);
    core_strlcpy(id->identity, name, sizeof id->identity);
    id->kind = strchr(name, '@') ? IDENTITY_EMAIL : IDENTITY_DOMAIN;
    id->created_ms = core_now_ms();
    if (id->kind == IDENTITY_DOMAIN) {
        unsigned char raw[32];
        if (core_random_bytes(raw, sizeof raw) != 0)
            abort(); /* no entropy: as core_uuid4, never hand out a guessable token */
        core_base64_encode(raw, sizeof raw, id->token);
    }
}

int admin_op_identity_set_status(struct store_conn *c, const char *account_id, const char *region,
                                 const char *identity, const char *status,
                                 struct store_identity *out, char *err)
{
    char name[STORE_IDENTITY_LEN];
    int rc = admin_identity_name(identity, name, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    if (!status_known(status))
        return admin_op_fail(err, ADMIN_OP_INVALID,
                             "the status is Success, Failed, Pending or TemporaryFailure, not "
                             "'%.40s'",
                             status);
    rc = store_identity_get(c, account_id, region, name, out);
    if (rc == STORE_ERROR)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot read identities");
    if (rc == STORE_NOT_FOUND)
        identity_new(account_id, region, name, out);
    core_strlcpy(out->status, status, sizeof out->status);
    out->status_ms = core_now_ms();
    out->missing_since_ms = 0;
    if (store_identity_put(c, out) != STORE_OK)
        return admin_op_fail(err, ADMIN_OP_ERROR, "cannot store the identity");
    return ADMIN_OP_OK;
}

int admin_op_identity_delete(struct store_conn *c, const char *account_id, const char *region,
                             const char *identity, char *err)
{
    char name[STORE_IDENTITY_LEN];
    int rc = admin_identity_name(identity, name, err);
    if (rc != ADMIN_OP_OK)
        return rc;
    rc = store_identity_delete(c, account_id, region, name);
    if (rc == STORE_OK && store_email_link_delete_for(c, account_id, region, name) == STORE_ERROR)
        rc = STORE_ERROR;
    if (rc == STORE_NOT_FOUND)
        return admin_op_fail(err, ADMIN_OP_NOT_FOUND, "no identity %s in %s", name, region);
    return rc == STORE_OK ? ADMIN_OP_OK
                          : admin_op_fail(err, ADMIN_OP_ERROR, "cannot delete %s", name);
}
