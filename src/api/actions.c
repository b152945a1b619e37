/* The action table: every Query action Sesame answers, by its SES name. */
#include "api/api_internal.h"

#include <string.h>

static const struct api_action actions[] = {
    {"DeleteIdentity", action_delete_identity, false},
    {"DeleteVerifiedEmailAddress", action_delete_verified_email_address, false},
    {"GetIdentityDkimAttributes", action_get_identity_dkim_attributes, false},
    {"GetIdentityVerificationAttributes", action_get_identity_verification_attributes, false},
    {"GetSendQuota", action_get_send_quota, false},
    {"GetSendStatistics", action_get_send_statistics, false},
    {"ListIdentities", action_list_identities, false},
    {"ListVerifiedEmailAddresses", action_list_verified_email_addresses, false},
    {"SendEmail", action_send_email, true},
    {"SendRawEmail", action_send_raw_email, true},
    {"SetIdentityDkimEnabled", action_set_identity_dkim_enabled, false},
    {"VerifyDomainDkim", action_verify_domain_dkim, false},
    {"VerifyDomainIdentity", action_verify_domain_identity, false},
    {"VerifyEmailAddress", action_verify_email_address, false},
    {"VerifyEmailIdentity", action_verify_email_identity, false},
};

const struct api_action *api_action_find(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (!strcmp(actions[i].name, name))
            return &actions[i];
    return NULL;
}
