/* libFuzzer target for auth_policy_parse: the input is a policy document. When it parses,
 * it is evaluated against a few fixed requests (IPv4, IPv6, mapped and invalid addresses,
 * with and without a user agent, actions inside and outside the table, odd times), alone
 * and as a set of two, then freed. The small error buffer exercises truncation. */
#include "auth/auth.h"

#include <stdint.h>

static const struct auth_policy_request requests[] = {
    {"SendEmail", "203.0.113.7", true, 1780315200000, "aws-cli/2.15.0 Python/3.11", "ses"},
    {"GetSendQuota", "::ffff:10.1.2.3", false, 0, NULL, "sns"},
    {"sendrawemail", "2001:db8::1", true, 253402300799999, "", NULL},
    {"NotAnAction", "not-an-address", false, -1, "boto3/1.34 \xc3\xa9", "sns"},
    {"", NULL, true, INT64_MAX, "\xff", "ses"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[48];
    struct auth_policy *p = auth_policy_parse((const char *)data, size, err, sizeof err);
    if (!p)
        return 0;
    struct auth_policy *set[2] = {p, p};
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        auth_policy_evaluate(set, 1, &requests[i]);
        auth_policy_evaluate(set, 2, &requests[i]);
    }
    auth_policy_free(p);
    return 0;
}
