/* Easy DKIM's lifecycle emails (spec 20 §2.4.2-§2.4.5) to the account's contact address:
 * stored in the transaction that records the status change, like the verification email,
 * and handed to delivery once that transaction is durable. */
#include "send/send_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void notice_text(const struct sesame_config *cfg, const struct store_dkim *d,
                        enum send_dkim_event event, char *subject, size_t slen, char *text,
                        size_t tlen)
{
    const char *what[] = {"setup successful", "FAILURE", "records missing", "REVOCATION"};
    snprintf(subject, slen, "DKIM %s: %s in region %s", what[event], d->domain, d->region);
    long long window_h = (long long)(cfg->dkim_failure_window_s / 3600);
    long long revoke_h = (long long)(cfg->dkim_revocation_window_s / 3600);
    switch (event) {
    case SEND_DKIM_SUCCESS:
        snprintf(text, tlen,
                 "The DKIM records of %s were found in DNS (account %s, region %s).\n\nMail "
                 "from %s is signed once DKIM signing is enabled for it:\n\n  aws ses "
                 "set-identity-dkim-enabled --identity %s --dkim-enabled\n",
                 d->domain, d->account_id, d->region, d->domain, d->domain);
        break;
    case SEND_DKIM_FAILURE:
        snprintf(text, tlen,
                 "The DKIM records of %s (account %s, region %s) were not found within %lld "
                 "hours. Mail from %s is sent without a DKIM signature.\n\nTo start again, "
                 "call VerifyDomainDkim for %s and publish the three CNAME records of the new "
                 "tokens.\n",
                 d->domain, d->account_id, d->region, window_h, d->domain, d->domain);
        break;
    case SEND_DKIM_MISSING:
        snprintf(text, tlen,
                 "The DKIM records of %s (account %s, region %s) are no longer found in DNS. "
                 "Restore the three CNAME records within %lld hours, or DKIM signing for %s "
                 "stops and its setup must start over.\n",
                 d->domain, d->account_id, d->region, revoke_h, d->domain);
        break;
    case SEND_DKIM_REVOKED:
        snprintf(text, tlen,
                 "The DKIM records of %s (account %s, region %s) have been missing for %lld "
                 "hours: DKIM signing for %s has stopped. Mail from it is sent without a "
                 "DKIM signature.\n\nTo set it up again, call VerifyDomainDkim for %s, publish "
                 "the new records and enable signing.\n",
                 d->domain, d->account_id, d->region, revoke_h, d->domain, d->domain);
        break;
    }
}

int send_dkim_notice_store(struct send_shared *sh, struct store_conn *c, const struct store_dkim *d,
                           enum send_dkim_event event, struct send_notice **out)
{
    *out = NULL;
    struct store_account account;
    int rc = store_account_get(c, d->account_id, &account);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_OK : rc;
    if (!account.contact[0]) {
        log_info("dkim: no email about %s: account %s has no contact address", d->domain,
                 d->account_id);
        return STORE_OK;
    }
    char subject[STORE_IDENTITY_LEN + 96], text[4096];
    notice_text(&sh->cfg, d, event, subject, sizeof subject, text, sizeof text);
    struct send_notice *n = calloc(1, sizeof *n);
    if (!n)
        abort();
    if (send_notice_build(&sh->cfg, d->region, account.contact, subject, text, n) != 0 ||
        send_notice_store(c, n) != STORE_OK) {
        send_notice_free(n);
        free(n);
        return STORE_ERROR;
    }
    *out = n;
    return STORE_OK;
}

void send_dkim_notice_after(struct send_shared *sh, struct send_notice *n, bool committed)
{
    if (!n)
        return;
    if (committed)
        send_notice_hand_over(sh, n);
    send_notice_free(n);
    free(n);
}
