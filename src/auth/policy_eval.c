/* IAM policy evaluation (spec 20 §8.5): any matching Deny wins, else any matching Allow,
 * else the implicit deny. Everything was compiled at parse time; per call, only the
 * action is looked up in the table and the source address parsed, once, when a condition
 * first needs it. */
#include "auth/auth_int.h"

#include <arpa/inet.h>
#include <string.h>

/* The operations of the SES API 2010-12-01 and of SNS 2010-03-31 (Sesame answers some of
 * SNS's, for topics), from botocore's models, with their service prefix. */
const char *const policy_action_names[POLICY_ACTION_COUNT] = {
    "ses:CloneReceiptRuleSet",
    "ses:CreateConfigurationSet",
    "ses:CreateConfigurationSetEventDestination",
    "ses:CreateConfigurationSetTrackingOptions",
    "ses:CreateCustomVerificationEmailTemplate",
    "ses:CreateReceiptFilter",
    "ses:CreateReceiptRule",
    "ses:CreateReceiptRuleSet",
    "ses:CreateTemplate",
    "ses:DeleteConfigurationSet",
    "ses:DeleteConfigurationSetEventDestination",
    "ses:DeleteConfigurationSetTrackingOptions",
    "ses:DeleteCustomVerificationEmailTemplate",
    "ses:DeleteIdentity",
    "ses:DeleteIdentityPolicy",
    "ses:DeleteReceiptFilter",
    "ses:DeleteReceiptRule",
    "ses:DeleteReceiptRuleSet",
    "ses:DeleteTemplate",
    "ses:DeleteVerifiedEmailAddress",
    "ses:DescribeActiveReceiptRuleSet",
    "ses:DescribeConfigurationSet",
    "ses:DescribeReceiptRule",
    "ses:DescribeReceiptRuleSet",
    "ses:GetAccountSendingEnabled",
    "ses:GetCustomVerificationEmailTemplate",
    "ses:GetIdentityDkimAttributes",
    "ses:GetIdentityMailFromDomainAttributes",
    "ses:GetIdentityNotificationAttributes",
    "ses:GetIdentityPolicies",
    "ses:GetIdentityVerificationAttributes",
    "ses:GetSendQuota",
    "ses:GetSendStatistics",
    "ses:GetTemplate",
    "ses:ListConfigurationSets",
    "ses:ListCustomVerificationEmailTemplates",
    "ses:ListIdentities",
    "ses:ListIdentityPolicies",
    "ses:ListReceiptFilters",
    "ses:ListReceiptRuleSets",
    "ses:ListTemplates",
    "ses:ListVerifiedEmailAddresses",
    "ses:PutConfigurationSetDeliveryOptions",
    "ses:PutIdentityPolicy",
    "ses:ReorderReceiptRuleSet",
    "ses:SendBounce",
    "ses:SendBulkTemplatedEmail",
    "ses:SendCustomVerificationEmail",
    "ses:SendEmail",
    "ses:SendRawEmail",
    "ses:SendTemplatedEmail",
    "ses:SetActiveReceiptRuleSet",
    "ses:SetIdentityDkimEnabled",
    "ses:SetIdentityFeedbackForwardingEnabled",
    "ses:SetIdentityHeadersInNotificationsEnabled",
    "ses:SetIdentityMailFromDomain",
    "ses:SetIdentityNotificationTopic",
    "ses:SetReceiptRulePosition",
    "ses:TestRenderTemplate",
    "ses:UpdateAccountSendingEnabled",
    "ses:UpdateConfigurationSetEventDestination",
    "ses:UpdateConfigurationSetReputationMetricsEnabled",
    "ses:UpdateConfigurationSetSendingEnabled",
    "ses:UpdateConfigurationSetTrackingOptions",
    "ses:UpdateCustomVerificationEmailTemplate",
    "ses:UpdateReceiptRule",
    "ses:UpdateTemplate",
    "ses:VerifyDomainDkim",
    "ses:VerifyDomainIdentity",
    "ses:VerifyEmailAddress",
    "ses:VerifyEmailIdentity",
    "sns:AddPermission",
    "sns:CheckIfPhoneNumberIsOptedOut",
    "sns:ConfirmSubscription",
    "sns:CreatePlatformApplication",
    "sns:CreatePlatformEndpoint",
    "sns:CreateSMSSandboxPhoneNumber",
    "sns:CreateTopic",
    "sns:DeleteEndpoint",
    "sns:DeletePlatformApplication",
    "sns:DeleteSMSSandboxPhoneNumber",
    "sns:DeleteTopic",
    "sns:GetDataProtectionPolicy",
    "sns:GetEndpointAttributes",
    "sns:GetPlatformApplicationAttributes",
    "sns:GetSMSAttributes",
    "sns:GetSMSSandboxAccountStatus",
    "sns:GetSubscriptionAttributes",
    "sns:GetTopicAttributes",
    "sns:ListEndpointsByPlatformApplication",
    "sns:ListOriginationNumbers",
    "sns:ListPhoneNumbersOptedOut",
    "sns:ListPlatformApplications",
    "sns:ListSMSSandboxPhoneNumbers",
    "sns:ListSubscriptions",
    "sns:ListSubscriptionsByTopic",
    "sns:ListTagsForResource",
    "sns:ListTopics",
    "sns:OptInPhoneNumber",
    "sns:Publish",
    "sns:PublishBatch",
    "sns:PutDataProtectionPolicy",
    "sns:RemovePermission",
    "sns:SetEndpointAttributes",
    "sns:SetPlatformApplicationAttributes",
    "sns:SetSMSAttributes",
    "sns:SetSubscriptionAttributes",
    "sns:SetTopicAttributes",
    "sns:Subscribe",
    "sns:TagResource",
    "sns:Unsubscribe",
    "sns:UntagResource",
    "sns:VerifySMSSandboxPhoneNumber"};

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int bisect(const char *name, int (*compare)(const char *, const char *))
{
    int lo = 0, hi = POLICY_ACTION_COUNT - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int cmp = compare(name, policy_action_names[mid]);
        if (cmp == 0)
            return mid;
        if (cmp < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return -1;
}

/* Requests name actions as the API spells them, so the exact comparison usually finds
 * them and costs a third of the case-insensitive one. */
int policy_action_index(const char *name)
{
    int i = bisect(name, strcmp);
    return i >= 0 ? i : bisect(name, core_strcasecmp);
}

static bool same_char(int p, int c, bool ci)
{
    return ci ? ascii_lower(p) == ascii_lower(c) : p == c;
}

/* Backtracks only to the last '*', so the cost stays O(pattern * s). A '?' takes a whole
 * UTF-8 character, as user agents may carry them. */
bool policy_glob(const char *pattern, const char *s, bool ci)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pattern == '*') {
            while (pattern[1] == '*')
                pattern++;
            if (pattern[1] == '\0')
                return true; /* a trailing star takes the rest */
            star = pattern++;
            resume = s;
        } else if (*pattern == '?') {
            pattern++;
            while (((unsigned char)*++s & 0xC0) == 0x80)
                ;
        } else if (*pattern && same_char((unsigned char)*pattern, (unsigned char)*s, ci)) {
            pattern++;
            s++;
        } else if (star) {
            pattern = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

bool policy_ip_parse(const char *text, size_t len, struct policy_ip *out)
{
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN];
    if (len >= sizeof buf)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        out->prefix = 32;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->addr) != 1)
        return false;
    out->family = 6;
    out->prefix = 128;
    /* A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; IPv4 blocks must match them. */
    if (memcmp(out->addr, v4_mapped, sizeof v4_mapped) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = 4;
        out->prefix = 32;
    }
    return true;
}

/* ---- evaluation ---- */

enum ip_state { IP_UNPARSED, IP_VALID, IP_INVALID };

#define POLICY_ACTION_MAX 128 /* "service:Action"; longer names are in no table */

struct eval {
    const struct auth_policy_request *req;
    char action[POLICY_ACTION_MAX]; /* "ses:SendEmail" */
    int action_index;               /* in policy_action_names, or -1 */
    int64_t now_s;
    enum ip_state ip_state;
    struct policy_ip ip;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool source_ip(struct eval *e)
{
    if (e->ip_state == IP_UNPARSED) {
        const char *text = e->req->source_ip;
        /* A zone index (fe80::1%eth0) names an interface, not part of the address. */
        bool ok = text && policy_ip_parse(text, strcspn(text, "%"), &e->ip);
        e->ip_state = ok ? IP_VALID : IP_INVALID;
    }
    return e->ip_state == IP_VALID;
}

/* A byte loop rather than memcmp: prefixes are a few bytes, and the call cost more. */
static bool ip_in_block(const struct policy_ip *ip, const struct policy_ip *block)
{
    int bytes = block->prefix / 8, bits = block->prefix % 8;
    if (ip->family != block->family)
        return false;
    for (int i = 0; i < bytes; i++) {
        if (ip->addr[i] != block->addr[i])
            return false;
    }
    return bits == 0 || (ip->addr[bytes] & (uint8_t)(0xff << (8 - bits))) == block->addr[bytes];
}

static bool ordered(enum policy_cmp cmp, double request, double value)
{
    switch (cmp) {
    case POLICY_LT:
        return request < value;
    case POLICY_LE:
        return request <= value;
    case POLICY_GT:
        return request > value;
    case POLICY_GE:
        return request >= value;
    default:
        return request == value;
    }
}

static bool string_matches(enum policy_cmp cmp, const char *request, const char *value)
{
    switch (cmp) {
    case POLICY_EQ_CI:
        return core_strcasecmp(request, value) == 0;
    case POLICY_LIKE:
        return policy_glob(value, request, false);
    default:
        return strcmp(request, value) == 0;
    }
}

/* Only aws:UserAgent can be missing from a request. */
static bool key_present(enum policy_key key, const struct eval *e)
{
    return key != POLICY_KEY_USER_AGENT || e->req->user_agent != NULL;
}

/* The parser only lets each family meet its own keys, so the family says which of the
 * request's fields to compare. Date* compare whole seconds for both time keys, as IAM
 * does for aws:EpochTime: a date value with a fraction is cut to its second. */
static bool value_matches(const struct policy_cond *c, const union policy_value *v, struct eval *e)
{
    switch (c->family) {
    case POLICY_STRING:
        return string_matches(c->cmp, e->req->user_agent, v->str);
    case POLICY_NUMERIC:
        return ordered(c->cmp, (double)e->now_s, v->num);
    case POLICY_DATE:
        return ordered(c->cmp, (double)e->now_s, (double)v->date_s);
    case POLICY_BOOL:
        return v->flag == e->req->secure_transport;
    case POLICY_IP:
        return source_ip(e) && ip_in_block(&e->ip, &v->ip);
    case POLICY_NULL:
        return v->flag == !key_present(c->key, e);
    }
    return false;
}

/* Any value may match; a negated operator holds when none does. Without the key, IAM
 * makes the positive operators false, the negated ones true, and ...IfExists true. */
static bool cond_holds(const struct policy_cond *c, struct eval *e)
{
    if (c->family != POLICY_NULL && !key_present(c->key, e))
        return c->if_exists || c->negated;
    bool any = false;
    for (int i = 0; i < c->value_count && !any; i++)
        any = value_matches(c, &c->values[i], e);
    return any != c->negated;
}

/* Actions outside the table (none of the SES API's) can still meet a wildcard. */
static bool action_named(const struct policy_statement *st, const struct eval *e)
{
    if (e->action_index >= 0)
        return st->action_mask[e->action_index / 64] >> (e->action_index % 64) & 1;
    for (int i = 0; i < st->pattern_count; i++) {
        if (policy_glob(st->patterns[i], e->action, true))
            return true;
    }
    return false;
}

static bool statement_matches(const struct policy_statement *st, struct eval *e)
{
    if (action_named(st, e) == st->not_action)
        return false;
    for (int i = 0; i < st->cond_count; i++) {
        if (!cond_holds(&st->conds[i], e))
            return false;
    }
    return true;
}

/* "ses:" or "sns:" and the action (the APIs' names are far shorter than the buffer). */
static void full_action_name(const struct auth_policy_request *req, char out[POLICY_ACTION_MAX])
{
    const char *service = req->service ? req->service : "ses";
    const char *action = req->action ? req->action : "";
    size_t s = strnlen(service, 8), a = strnlen(action, POLICY_ACTION_MAX - s - 2);
    memcpy(out, service, s);
    out[s] = ':';
    memcpy(out + s + 1, action, a);
    out[s + 1 + a] = '\0';
}

enum auth_policy_decision auth_policy_evaluate(struct auth_policy *const *policies, int count,
                                               const struct auth_policy_request *req)
{
    struct eval e = {.req = req, .now_s = floor_div(req->now_ms, 1000), .ip_state = IP_UNPARSED};
    full_action_name(req, e.action);
    e.action_index = policy_action_index(e.action);
    bool allowed = false;
    for (int i = 0; i < count; i++) {
        const struct auth_policy *p = policies[i];
        for (int j = 0; p && j < p->statement_count; j++) {
            const struct policy_statement *st = &p->statements[j];
            /* Once allowed, only a Deny can change the outcome. */
            if ((!st->deny && allowed) || !statement_matches(st, &e))
                continue;
            if (st->deny)
                return AUTH_POLICY_EXPLICIT_DENY;
            allowed = true;
        }
    }
    return allowed ? AUTH_POLICY_ALLOW : AUTH_POLICY_IMPLICIT_DENY;
}
