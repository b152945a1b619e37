/* The action table: every Query action Sesame answers, by its SES or SNS name, with the
 * service whose signing scope, Version and namespace it uses (DECISIONS 28). */
#include "api/api_internal.h"

#include <string.h>

static const struct api_action actions[] = {
    {"DeleteIdentity", action_delete_identity, false, API_SES},
    {"DeleteVerifiedEmailAddress", action_delete_verified_email_address, false, API_SES},
    {"GetIdentityDkimAttributes", action_get_identity_dkim_attributes, false, API_SES},
    {"GetIdentityNotificationAttributes", action_get_identity_notification_attributes, false,
     API_SES},
    {"GetIdentityVerificationAttributes", action_get_identity_verification_attributes, false,
     API_SES},
    {"GetSendQuota", action_get_send_quota, false, API_SES},
    {"GetSendStatistics", action_get_send_statistics, false, API_SES},
    {"ListIdentities", action_list_identities, false, API_SES},
    {"ListVerifiedEmailAddresses", action_list_verified_email_addresses, false, API_SES},
    {"SendEmail", action_send_email, true, API_SES},
    {"SendRawEmail", action_send_raw_email, true, API_SES},
    {"SetIdentityDkimEnabled", action_set_identity_dkim_enabled, false, API_SES},
    {"SetIdentityFeedbackForwardingEnabled", action_set_identity_feedback_forwarding_enabled, false,
     API_SES},
    {"SetIdentityNotificationTopic", action_set_identity_notification_topic, false, API_SES},
    {"VerifyDomainDkim", action_verify_domain_dkim, false, API_SES},
    {"VerifyDomainIdentity", action_verify_domain_identity, false, API_SES},
    {"VerifyEmailAddress", action_verify_email_address, false, API_SES},
    {"VerifyEmailIdentity", action_verify_email_identity, false, API_SES},
    /* SNS */
    {"ConfirmSubscription", action_sns_confirm_subscription, false, API_SNS},
    {"CreateTopic", action_sns_create_topic, false, API_SNS},
    {"DeleteTopic", action_sns_delete_topic, false, API_SNS},
    {"GetTopicAttributes", action_sns_get_topic_attributes, false, API_SNS},
    {"ListSubscriptions", action_sns_list_subscriptions, false, API_SNS},
    {"ListSubscriptionsByTopic", action_sns_list_subscriptions_by_topic, false, API_SNS},
    {"ListTopics", action_sns_list_topics, false, API_SNS},
    {"Subscribe", action_sns_subscribe, false, API_SNS},
    {"Unsubscribe", action_sns_unsubscribe, false, API_SNS},
};

const struct api_action *api_action_find(const char *name)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (!strcmp(actions[i].name, name))
            return &actions[i];
    return NULL;
}
