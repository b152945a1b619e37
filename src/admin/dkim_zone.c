/* sesame dkim-zone [DOMAIN]: the Easy DKIM public keys as a zone file (RFC 1035 master
 * format) that BIND, Knot and NSD load. Customers publish <token>._domainkey.<domain> CNAME
 * <token>.<host zone>, so each key's TXT record lives in the host zone, named by its token.
 * The operator's own key (dkim.operator_domain) belongs to the zone of that domain, where a
 * strict server would refuse it as out-of-zone data: `dkim-zone --operator` prints it as
 * a file of its own. */
#include "admin/admin_internal.h"
#include "mail/mail.h"

#include <string.h>

#define TXT_STRING_MAX 255 /* a character-string's length is one byte */

struct zone_ctx {
    const char *domain; /* NULL: every domain's sets */
    bool operator_pass; /* the operator's set, else the customers' */
    int sets;
    bool failed;
};

/* The host zone without its final dot: dkim.host_zone, else dkim.<server.hostname>. */
static void zone_name(const struct sesame_config *cfg, char *out, size_t outlen)
{
    if (cfg->dkim_host_zone[0])
        core_strlcpy(out, cfg->dkim_host_zone, outlen);
    else
        snprintf(out, outlen, "dkim.%s", cfg->hostname);
    size_t n = strlen(out);
    if (n && out[n - 1] == '.')
        out[n - 1] = '\0';
}

/* Tokens become owner names: one label of letters, digits, '-' or '_', nothing that could
 * change the zone's meaning. */
static bool label_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

/* Record text goes between quotes as is: no quote, backslash or control character. */
static bool text_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* One TXT record. Text over 255 bytes becomes several strings of one record, which DKIM
 * verifiers join (RFC 6376 §3.6.2.2), each on its own line inside parentheses. */
static void txt_print(const char *owner, const char *text)
{
    size_t len = strlen(text);
    if (len <= TXT_STRING_MAX) {
        printf("%s\tIN\tTXT\t\"%s\"\n", owner, text);
        return;
    }
    printf("%s\tIN\tTXT\t(", owner);
    for (size_t at = 0; at < len; at += TXT_STRING_MAX) {
        int n = (int)(len - at < TXT_STRING_MAX ? len - at : TXT_STRING_MAX);
        printf("%s\"%.*s\"", at ? "\n\t\t\t  " : " ", n, text + at);
    }
    printf(" )\n");
}

/* The record of one key slot; false (after saying why) when it cannot be made. */
static bool zone_key(const struct store_dkim *d, int slot, bool operator)
{
    const char *token = d->tokens[slot];
    if (!label_ok(token)) {
        admin_fail("DKIM key %d of %s (account %s, %s): its token is not a DNS label", slot + 1,
                   d->domain, d->account_id, d->region);
        return false;
    }
    char err[256] = "";
    struct buf txt;
    buf_init(&txt);
    struct mail_dkim_key *key = mail_dkim_key_load(d->keys[slot], err, sizeof err);
    bool ok = key && mail_dkim_key_record(key, &txt) == 0 && text_ok(buf_cstr(&txt));
    mail_dkim_key_free(key);
    if (!ok) {
        admin_fail("DKIM key %d of %s (account %s, %s) is unusable: %s", slot + 1, d->domain,
                   d->account_id, d->region, err[0] ? err : "no public key");
    } else if (operator) {
        char owner[STORE_DKIM_TOKEN_LEN + 16];
        snprintf(owner, sizeof owner, "%s._domainkey", token);
        txt_print(owner, buf_cstr(&txt));
    } else {
        txt_print(token, buf_cstr(&txt));
    }
    buf_free(&txt);
    return ok;
}

static void zone_set(const struct store_dkim *d, void *arg)
{
    struct zone_ctx *z = arg;
    if (!strcmp(d->account_id, STORE_DKIM_OPERATOR) != z->operator_pass ||
        (z->domain && strcmp(d->domain, z->domain)))
        return;
    if (z->operator_pass)
        printf("; the operator's key (dkim.operator_domain): records of the zone %s.\n"
               "$ORIGIN %s.\n$TTL 3600\n",
               d->domain, d->domain);
    else
        printf("\n; account %s, region %s, domain %s (%s)\n", d->account_id, d->region, d->domain,
               d->status);
    z->sets++;
    for (int i = 0; i < STORE_DKIM_TOKENS; i++)
        if (d->keys[i][0] && !zone_key(d, i, z->operator_pass))
            z->failed = true;
}

static int zone_print(struct admin_ctx *ctx, struct zone_ctx *z)
{
    if (z->operator_pass)
        return store_dkim_list(ctx->conn, STORE_DKIM_OPERATOR, zone_set, z);
    char zone[300];
    zone_name(&ctx->cfg, zone, sizeof zone);
    printf("; Easy DKIM public keys (sesame dkim-zone): records of the zone %s.\n"
           "; $INCLUDE this from that zone's file, which holds its SOA and NS.%s\n"
           "$ORIGIN %s.\n$TTL 3600\n",
           zone,
           ctx->cfg.dkim_operator_domain[0]
               ? "\n; The operator's key (dkim.operator_domain) is printed by dkim-zone --operator."
               : "",
           zone);
    return store_dkim_list(ctx->conn, NULL, zone_set, z);
}

static int dkim_zone_run(struct admin_ctx *ctx)
{
    if (ctx->opts.positional_count > 1)
        return admin_usage_error(&admin_dkim_zone_verb, "give at most one domain");
    char domain[STORE_IDENTITY_LEN] = "";
    if (ctx->opts.positional_count == 1) {
        core_strlcpy(domain, ctx->opts.positional[0], sizeof domain);
        mail_identity_normalize(domain);
        if (!mail_domain_valid(domain))
            return admin_usage_error(&admin_dkim_zone_verb, "'%s' is not a domain", domain);
    }
    struct zone_ctx z = {domain[0] ? domain : NULL, admin_flag(ctx, "operator"), 0, false};
    int rc = zone_print(ctx, &z);
    if (fflush(stdout) != 0)
        return admin_fail("cannot write the zone");
    if (rc != STORE_OK)
        return admin_fail("cannot read the DKIM keys");
    if (z.operator_pass && !z.sets)
        return admin_fail("no operator key (dkim.operator_domain is empty, or sesamed has not "
                          "started with it yet)");
    if (domain[0] && !z.sets)
        return admin_fail("no DKIM keys for %s", domain);
    return z.failed ? ADMIN_FAILED : ADMIN_OK;
}

static const char *const dkim_zone_flags[] = {"operator", NULL};

const struct admin_verb admin_dkim_zone_verb = {
    "dkim-zone", "dkim-zone [DOMAIN] | dkim-zone --operator", NULL, dkim_zone_flags, dkim_zone_run,
};
