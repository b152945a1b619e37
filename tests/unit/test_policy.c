/* IAM policies: every condition operator both ways, IfExists and Null with an absent user
 * agent, the action table, actions and wildcards, addresses, Deny over Allow across
 * policies, every kind of rejection with its message and position, the size limit and a
 * 10x10 policy set. */
#include "auth/auth.h"
#include "auth/auth_int.h"
#include "unit.h"

#include <ctype.h>
#include <stdlib.h>
#include <strings.h>

/* JSON without escaping: JSON({"a": 1}) is the string "{\"a\": 1}". */
#define JSON(...) #__VA_ARGS__

#define NOW_S 1780315200 /* 2026-06-01T12:00:00Z */
#define UA "aws-cli/2.15.0 Python/3.11"

enum { PARSE_ERROR = -1 };

static struct auth_policy_request request(const char *action)
{
    return (struct auth_policy_request){action, "203.0.113.7", true, NOW_S * 1000LL, UA, "ses"};
}

/* The decision of one policy, or PARSE_ERROR. */
static int decide(const char *json, const struct auth_policy_request *req)
{
    char err[512];
    struct auth_policy *p = auth_policy_parse(json, strlen(json), err, sizeof err);
    if (!p) {
        fprintf(stderr, "parse error: %s\n", err);
        return PARSE_ERROR;
    }
    int d = (int)auth_policy_evaluate(&p, 1, req);
    auth_policy_free(p);
    return d;
}

/* 1 when a statement allowing ses:* under condition allows req, 0 when it does not. */
static int holds_for(const char *condition, const struct auth_policy_request *req)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"Version\": \"2012-10-17\", \"Statement\": {\"Effect\": \"Allow\", "
             "\"Action\": \"ses:*\", \"Resource\": \"*\", \"Condition\": %s}}",
             condition);
    int d = decide(json, req);
    return d == PARSE_ERROR ? PARSE_ERROR : d == AUTH_POLICY_ALLOW;
}

static int holds(const char *condition)
{
    struct auth_policy_request req = request("SendEmail");
    return holds_for(condition, &req);
}

/* The error message, or "(parsed)". */
static const char *parse_error(const char *json)
{
    static char err[512];
    struct auth_policy *p = auth_policy_parse(json, strlen(json), err, sizeof err);
    if (!p)
        return err;
    auth_policy_free(p);
    return "(parsed)";
}

static bool contains(const char *s, const char *part)
{
    bool found = strstr(s, part) != NULL;
    if (!found)
        fprintf(stderr, "'%s' lacks '%s'\n", s, part);
    return found;
}

/* ---- operators ---- */

static void test_string_operators(void)
{
    CHECK(holds(JSON({"StringEquals" : {"aws:UserAgent" : "aws-cli/2.15.0 Python/3.11"}})) == 1);
    CHECK(holds(JSON({"StringEquals" : {"aws:UserAgent" : "AWS-CLI/2.15.0 Python/3.11"}})) == 0);
    CHECK(holds(JSON({"StringNotEquals" : {"aws:UserAgent" : [ "boto3", "curl" ]}})) == 1);
    CHECK(holds(JSON({"StringNotEquals" : {"aws:UserAgent" : ["aws-cli/2.15.0 Python/3.11"]}})) ==
          0);
    CHECK(holds(JSON(
              {"StringEqualsIgnoreCase" : {"aws:UserAgent" : "AWS-CLI/2.15.0 PYTHON/3.11"}})) == 1);
    CHECK(holds(JSON({"StringEqualsIgnoreCase" : {"aws:UserAgent" : "aws-cli"}})) == 0);
    CHECK(holds(JSON({"StringNotEqualsIgnoreCase" : {"aws:UserAgent" : "aws-cli"}})) == 1);
    CHECK(holds(JSON(
              {"StringNotEqualsIgnoreCase" : {"aws:UserAgent" : "AWS-CLI/2.15.0 python/3.11"}})) ==
          0);
    CHECK(holds(JSON({"StringLike" : {"aws:UserAgent" : [ "boto3*", "aws-cli/*" ]}})) == 1);
    CHECK(holds(JSON({"StringLike" : {"aws:UserAgent" : "aws-cli/2.1?.0 *"}})) == 1);
    CHECK(holds(JSON({"StringLike" : {"aws:UserAgent" : "AWS-CLI/*"}})) == 0); /* case counts */
    CHECK(holds(JSON({"StringLike" : {"aws:UserAgent" : "aws-cli/?"}})) == 0);
    CHECK(holds(JSON({"StringNotLike" : {"aws:UserAgent" : "boto*"}})) == 1);
    CHECK(holds(JSON({"StringNotLike" : {"aws:UserAgent" : [ "boto*", "*Python*" ]}})) == 0);
    /* Numbers and booleans compare as written. */
    struct auth_policy_request req = request("SendEmail");
    req.user_agent = "1.50";
    CHECK(holds_for(JSON({"StringEquals" : {"aws:UserAgent" : 1.50}}), &req) == 1);
    req.user_agent = "true";
    CHECK(holds_for(JSON({"StringEquals" : {"aws:UserAgent" : true}}), &req) == 1);
}

static void test_numeric_operators(void)
{
    CHECK(holds(JSON({"NumericEquals" : {"aws:EpochTime" : 1780315200}})) == 1);
    CHECK(holds(JSON({"NumericEquals" : {"aws:EpochTime" : "1780315200"}})) == 1);
    CHECK(holds(JSON({"NumericEquals" : {"aws:EpochTime" : 1780315201}})) == 0);
    CHECK(holds(JSON({"NumericNotEquals" : {"aws:EpochTime" : [ 1, 2 ]}})) == 1);
    CHECK(holds(JSON({"NumericNotEquals" : {"aws:EpochTime" : [ 1, 1780315200 ]}})) == 0);
    CHECK(holds(JSON({"NumericLessThan" : {"aws:EpochTime" : 1780315201}})) == 1);
    CHECK(holds(JSON({"NumericLessThan" : {"aws:EpochTime" : 1780315200}})) == 0);
    CHECK(holds(JSON({"NumericLessThanEquals" : {"aws:EpochTime" : 1780315200}})) == 1);
    CHECK(holds(JSON({"NumericLessThanEquals" : {"aws:EpochTime" : 1.7803151995e9}})) == 0);
    CHECK(holds(JSON({"NumericGreaterThan" : {"aws:EpochTime" : "1780315199.5"}})) == 1);
    CHECK(holds(JSON({"NumericGreaterThan" : {"aws:EpochTime" : 1780315200}})) == 0);
    CHECK(holds(JSON({"NumericGreaterThanEquals" : {"aws:EpochTime" : 1780315200}})) == 1);
    CHECK(holds(JSON({"NumericGreaterThanEquals" : {"aws:EpochTime" : 1780315201}})) == 0);
}

static void test_date_operators(void)
{
    CHECK(holds(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:00Z"}})) == 1);
    CHECK(holds(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T14:00:00+02:00"}})) == 1);
    CHECK(holds(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T07:30:00-0430"}})) == 1);
    CHECK(holds(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:00.750Z"}})) == 1);
    CHECK(holds(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:01Z"}})) == 0);
    /* Whole seconds: 999 ms later is still the same second. */
    struct auth_policy_request req = request("SendEmail");
    req.now_ms += 999;
    CHECK(holds_for(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:00Z"}}), &req) ==
          1);
    req.now_ms += 1;
    CHECK(holds_for(JSON({"DateEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:00Z"}}), &req) ==
          0);
    CHECK(holds(JSON({"DateNotEquals" : {"aws:CurrentTime" : "2026-06-01"}})) == 1);
    CHECK(holds(JSON({"DateNotEquals" : {"aws:CurrentTime" : "2026-06-01T12:00Z"}})) == 0);
    CHECK(holds(JSON({"DateLessThan" : {"aws:CurrentTime" : "2026-06-02"}})) == 1);
    CHECK(holds(JSON({"DateLessThan" : {"aws:CurrentTime" : "2026-06-01"}})) == 0);
    CHECK(holds(JSON({"DateLessThanEquals" : {"aws:CurrentTime" : "2026-06-01T12:00:00Z"}})) == 1);
    CHECK(holds(JSON({"DateLessThanEquals" : {"aws:CurrentTime" : "2026-06-01T11:59:59Z"}})) == 0);
    CHECK(holds(JSON({"DateGreaterThan" : {"aws:CurrentTime" : "2026-01-01"}})) == 1);
    CHECK(holds(JSON({"DateGreaterThan" : {"aws:CurrentTime" : "2027-01-01"}})) == 0);
    CHECK(holds(JSON({"DateGreaterThanEquals" : {"aws:EpochTime" : 1780315200}})) == 1);
    CHECK(holds(JSON({"DateGreaterThanEquals" : {"aws:EpochTime" : "1780315201"}})) == 0);
    CHECK(holds(JSON({"DateGreaterThanEquals" : {"aws:EpochTime" : "2026-06-01T12:00:00Z"}})) == 1);
    CHECK(holds(JSON({"DateLessThan" : {"aws:EpochTime" : "2024-02-29T00:00:00Z"}})) == 0);
}

static void test_bool_and_ip_operators(void)
{
    struct auth_policy_request plain = request("SendEmail");
    plain.secure_transport = false;
    CHECK(holds(JSON({"Bool" : {"aws:SecureTransport" : "true"}})) == 1);
    CHECK(holds(JSON({"Bool" : {"aws:SecureTransport" : false}})) == 0);
    CHECK(holds_for(JSON({"Bool" : {"aws:SecureTransport" : "false"}}), &plain) == 1);
    CHECK(holds_for(JSON({"Bool" : {"aws:SecureTransport" : true}}), &plain) == 0);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "203.0.113.0/24"}})) == 1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : [ "198.51.100.0/24", "203.0.113.7" ]}})) ==
          1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "198.51.100.0/24"}})) == 0);
    CHECK(holds(JSON({"NotIpAddress" : {"aws:SourceIp" : "198.51.100.0/24"}})) == 1);
    CHECK(holds(JSON({"NotIpAddress" : {"aws:SourceIp" : [ "10.0.0.0/8", "203.0.113.0/24" ]}})) ==
          0);
}

/* aws:UserAgent is the only key a request can lack. */
static void test_absent_key(void)
{
    struct auth_policy_request req = request("SendEmail");
    req.user_agent = NULL;
    CHECK(holds_for(JSON({"StringEquals" : {"aws:UserAgent" : "x"}}), &req) == 0);
    CHECK(holds_for(JSON({"StringLike" : {"aws:UserAgent" : "*"}}), &req) == 0);
    CHECK(holds_for(JSON({"StringNotEquals" : {"aws:UserAgent" : "x"}}), &req) == 1);
    CHECK(holds_for(JSON({"StringNotLike" : {"aws:UserAgent" : "*"}}), &req) == 1);
    CHECK(holds_for(JSON({"StringLikeIfExists" : {"aws:UserAgent" : "aws-cli/*"}}), &req) == 1);
    CHECK(holds_for(JSON({"StringEqualsIfExists" : {"aws:UserAgent" : "x"}}), &req) == 1);
    CHECK(holds_for(JSON({"Null" : {"aws:UserAgent" : true}}), &req) == 1);
    CHECK(holds_for(JSON({"Null" : {"aws:UserAgent" : "false"}}), &req) == 0);
    /* With the key present, IfExists is the plain operator. */
    CHECK(holds(JSON({"StringLikeIfExists" : {"aws:UserAgent" : "aws-cli/*"}})) == 1);
    CHECK(holds(JSON({"StringLikeIfExists" : {"aws:UserAgent" : "boto*"}})) == 0);
    CHECK(holds(JSON({"NotIpAddressIfExists" : {"aws:SourceIp" : "10.0.0.0/8"}})) == 1);
    CHECK(holds(JSON({"NumericLessThanIfExists" : {"aws:EpochTime" : 5}})) == 0);
    CHECK(holds(JSON({"DateGreaterThanIfExists" : {"aws:CurrentTime" : "2026-01-01"}})) == 1);
    CHECK(holds(JSON({"BoolIfExists" : {"aws:SecureTransport" : false}})) == 0);
    CHECK(holds(JSON({"Null" : {"aws:UserAgent" : "false"}})) == 1);
    CHECK(holds(JSON({"Null" : {"aws:UserAgent" : true}})) == 0);
    CHECK(holds(JSON({"Null" : {"aws:SourceIp" : true}})) == 0);
}

/* Operators AND, keys within one AND, values OR; key names ignore case. */
static void test_condition_logic(void)
{
    CHECK(holds(JSON({
              "IpAddress" : {"aws:SourceIp" : "203.0.113.0/24"},
              "Bool" : {"aws:SecureTransport" : "true"}
          })) == 1);
    CHECK(holds(JSON({
              "IpAddress" : {"aws:SourceIp" : "203.0.113.0/24"},
              "Bool" : {"aws:SecureTransport" : "false"}
          })) == 0);
    CHECK(holds(JSON({
              "DateGreaterThan" : {"aws:CurrentTime" : "2026-01-01", "aws:EpochTime" : 1780315199}
          })) == 1);
    CHECK(holds(JSON({
              "DateGreaterThan" : {"aws:CurrentTime" : "2026-01-01", "aws:EpochTime" : 1780315200}
          })) == 0);
    CHECK(holds(JSON({"IpAddress" : {"AWS:sourceip" : "203.0.113.0/24"}})) == 1);
    CHECK(holds(JSON({"StringLike" : {"AWS:USERAGENT" : "aws-cli*"}})) == 1);
    CHECK(holds(JSON({"DateLessThan" : {"aws:current-time" : "2027-01-01"}})) == 1);
    CHECK(holds(JSON({})) == 1);
}

static void test_addresses(void)
{
    struct auth_policy_request req = request("SendEmail");
    req.source_ip = "2001:db8::1";
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "2001:db8::/32"}}), &req) == 1);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "2001:db9::/32"}}), &req) == 0);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "2001:DB8::1"}}), &req) == 1);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "2001:db8::2"}}), &req) == 0);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "2001:db8::/127"}}), &req) == 1);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}}), &req) == 0);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "::/0"}}), &req) == 1);
    req.source_ip = "::ffff:203.0.113.7";
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "203.0.113.0/24"}}), &req) == 1);
    CHECK(holds_for(JSON({"NotIpAddress" : {"aws:SourceIp" : "203.0.113.0/24"}}), &req) == 0);
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "::ffff:203.0.113.0/120"}}), &req) == 1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "::ffff:203.0.113.0/121"}})) == 1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "203.0.113.0/29"}})) == 1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "203.0.113.8/29"}})) == 0);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "203.0.113.6/31"}})) == 1); /* host bits */
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}})) == 1);
    CHECK(holds(JSON({"IpAddress" : {"aws:SourceIp" : "::/0"}})) == 0);
    req.source_ip = "not-an-address";
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}}), &req) == 0);
    CHECK(holds_for(JSON({"NotIpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}}), &req) == 1);
    req.source_ip = NULL;
    CHECK(holds_for(JSON({"IpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}}), &req) == 0);
    CHECK(holds_for(JSON({"NotIpAddress" : {"aws:SourceIp" : "0.0.0.0/0"}}), &req) == 1);
}

/* ---- actions and decisions ---- */

/* Both orders must agree for policy_action_index to bisect either way. */
static void test_action_table(void)
{
    for (int i = 1; i < POLICY_ACTION_COUNT; i++) {
        CHECK(strcmp(policy_action_names[i - 1], policy_action_names[i]) < 0);
        CHECK(strcasecmp(policy_action_names[i - 1], policy_action_names[i]) < 0);
    }
    for (int i = 0; i < POLICY_ACTION_COUNT; i++) {
        char lower[64];
        size_t n = strlen(policy_action_names[i]);
        for (size_t k = 0; k <= n; k++)
            lower[k] = (char)tolower((unsigned char)policy_action_names[i][k]);
        CHECK(policy_action_index(policy_action_names[i]) == i);
        CHECK(policy_action_index(lower) == i);
    }
    CHECK(policy_action_index("ses:SendEmai") == -1);
    CHECK(policy_action_index("SendEmail") == -1); /* names carry their prefix */
    CHECK(policy_action_index("sns:SendEmail") == -1);
    CHECK(policy_action_index("SNS:createtopic") >= 0);
    CHECK(policy_action_index("") == -1);
    CHECK(policy_glob("a*b*c", "aXbYbZc", false));
    CHECK(!policy_glob("a*b*c", "aXbYbZ", false));
    CHECK(policy_glob("caf?", "caf\xc3\xa9", false)); /* one character, two bytes */
    CHECK(!policy_glob("caf??", "caf\xc3\xa9", false));
    CHECK(policy_glob("send*", "SendEmail", true));
    CHECK(!policy_glob("send*", "SendEmail", false));
    CHECK(policy_glob("**", "", false));
    CHECK(!policy_glob("?", "", false));
}

static int decide_action(const char *json, const char *action)
{
    struct auth_policy_request req = request(action);
    return decide(json, &req);
}

static void test_actions(void)
{
    const char *all_ses =
        JSON({"Statement" : {"Effect" : "Allow", "Action" : "ses:*", "Resource" : "*"}});
    const char *star =
        JSON({"Statement" : {"Effect" : "Allow", "Action" : "*", "Resource" : ["*"]}});
    const char *send =
        JSON({"Statement" : {"Effect" : "Allow", "Action" : "ses:Send*", "Resource" : "*"}});
    const char *quota = JSON(
        {"Statement" : {"Effect" : "Allow", "Action" : ["ses:Get?endQuota"], "Resource" : "*"}});
    const char *cased = JSON({
        "Statement" :
            {"Effect" : "Allow", "Action" : [ "SES:sendemail", "Ses:LIST*" ], "Resource" : "*"}
    });
    CHECK(decide_action(all_ses, "GetSendQuota") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(star, "DeleteIdentity") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(send, "SendRawEmail") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(send, "SendEmail") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(send, "GetSendQuota") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_action(quota, "GetSendQuota") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(quota, "GetSendStatistics") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_action(cased, "SendEmail") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(cased, "sendEMAIL") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(cased, "ListIdentities") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(cased, "SendRawEmail") == AUTH_POLICY_IMPLICIT_DENY);
    /* An action outside the 2010-12-01 table still meets wildcards. */
    CHECK(decide_action(all_ses, "SendFuture") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(send, "SendFuture") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(quota, "SendFuture") == AUTH_POLICY_IMPLICIT_DENY);
}

static int decide_sns(const char *json, const char *action)
{
    struct auth_policy_request req = request(action);
    req.service = "sns";
    return decide(json, &req);
}

/* sns: actions are SNS's alone: ses:* gives none of them, sns:* none of SES's. */
static void test_sns_actions(void)
{
    const char *all_ses =
        JSON({"Statement" : {"Effect" : "Allow", "Action" : "ses:*", "Resource" : "*"}});
    const char *all_sns =
        JSON({"Statement" : {"Effect" : "Allow", "Action" : "sns:*", "Resource" : "*"}});
    const char *star = JSON({"Statement" : {"Effect" : "Allow", "Action" : "*", "Resource" : "*"}});
    const char *topics = JSON({
        "Statement" : [
            {"Effect" : "Allow", "Action" : [ "SNS:CreateTopic", "sns:List*" ], "Resource" : "*"},
            {"Effect" : "Deny", "Action" : "sns:DeleteTopic", "Resource" : "*"}
        ]
    });
    CHECK(decide_sns(all_ses, "CreateTopic") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_action(all_sns, "SendEmail") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_sns(all_sns, "CreateTopic") == AUTH_POLICY_ALLOW);
    CHECK(decide_sns(all_sns, "SomethingNew") == AUTH_POLICY_ALLOW);
    CHECK(decide_sns(star, "Subscribe") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(star, "SendEmail") == AUTH_POLICY_ALLOW);
    CHECK(decide_sns(topics, "CreateTopic") == AUTH_POLICY_ALLOW);
    CHECK(decide_sns(topics, "ListSubscriptionsByTopic") == AUTH_POLICY_ALLOW);
    CHECK(decide_sns(topics, "Subscribe") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_sns(topics, "DeleteTopic") == AUTH_POLICY_EXPLICIT_DENY);
    CHECK(decide_action(topics, "ListIdentities") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_action(topics, "CreateTopic") == AUTH_POLICY_IMPLICIT_DENY);
}

static void test_not_action(void)
{
    const char *not_send =
        JSON({"Statement" : {"Effect" : "Allow", "NotAction" : "ses:Send*", "Resource" : "*"}});
    const char *read_only = JSON({
        "Statement" : [
            {"Effect" : "Allow", "Action" : "ses:*", "Resource" : "*"},
            {"Effect" : "Deny", "NotAction" : [ "ses:Get*", "ses:List*" ], "Resource" : "*"}
        ]
    });
    CHECK(decide_action(not_send, "GetSendQuota") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(not_send, "SendEmail") == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(decide_action(not_send, "Unlisted") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(read_only, "ListIdentities") == AUTH_POLICY_ALLOW);
    CHECK(decide_action(read_only, "SendEmail") == AUTH_POLICY_EXPLICIT_DENY);
}

static struct auth_policy *must_parse(const char *json)
{
    char err[512];
    struct auth_policy *p = auth_policy_parse(json, strlen(json), err, sizeof err);
    if (!p)
        fprintf(stderr, "parse error: %s\n", err);
    CHECK(p != NULL);
    return p;
}

static void test_deny_across_policies(void)
{
    struct auth_policy *set[3] = {
        must_parse(
            JSON({"Statement" : {"Effect" : "Allow", "Action" : "ses:*", "Resource" : "*"}})),
        NULL,
        must_parse(JSON({
            "Version" : "2008-10-17",
            "Statement" : {
                "Effect" : "Deny",
                "Action" : "ses:SendEmail",
                "Resource" : "*",
                "Condition" : {"NotIpAddress" : {"aws:SourceIp" : "10.0.0.0/8"}}
            }
        })),
    };
    struct auth_policy *reversed[2] = {set[2], set[0]};
    struct auth_policy_request req = request("SendEmail");
    CHECK(auth_policy_evaluate(set, 3, &req) == AUTH_POLICY_EXPLICIT_DENY);
    CHECK(auth_policy_evaluate(reversed, 2, &req) == AUTH_POLICY_EXPLICIT_DENY);
    CHECK(auth_policy_evaluate(set + 2, 1, &req) == AUTH_POLICY_EXPLICIT_DENY);
    CHECK(auth_policy_evaluate(set + 1, 1, &req) == AUTH_POLICY_IMPLICIT_DENY);
    CHECK(auth_policy_evaluate(set, 0, &req) == AUTH_POLICY_IMPLICIT_DENY);
    req.source_ip = "10.1.2.3";
    CHECK(auth_policy_evaluate(set, 3, &req) == AUTH_POLICY_ALLOW);
    req = request("GetSendQuota");
    CHECK(auth_policy_evaluate(reversed, 2, &req) == AUTH_POLICY_ALLOW);
    auth_policy_free(set[0]);
    auth_policy_free(set[2]);
    auth_policy_free(NULL);
}

/* ---- rejections ---- */

/* "line 1, column N: msg" where N is the column of the first occurrence of at in json. */
static const char *error_at(const char *json, const char *at, const char *msg)
{
    static char expected[512];
    const char *p = strstr(json, at);
    int line = 1, column = 1;
    for (const char *c = json; p && c < p; c++) {
        if (*c == '\n') {
            line++;
            column = 1;
        } else if ((*c & 0xC0) != 0x80) {
            column++;
        }
    }
    snprintf(expected, sizeof expected, "line %d, column %d: %s", line, column,
             p ? msg : "(marker not found)");
    return expected;
}

/* The document must fail with msg, at the token that starts with at. */
#define CHECK_ERROR(json, at, msg) CHECK_STR(parse_error(json), error_at(json, at, msg))

/* A one-statement policy with the given Condition. */
static const char *with_condition(const char *condition)
{
    static char json[2048];
    snprintf(json, sizeof json,
             "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ses:*\", \"Resource\": "
             "\"*\", \"Condition\": %s}}",
             condition);
    return json;
}

static void test_document_errors(void)
{
    CHECK_ERROR(" [1]", "[", "A policy document must be a JSON object");
    CHECK_ERROR("{\"Version\": \"2012-10-18\", \"Statement\": []}", "\"2012-10-18\"",
                "Version must be \"2012-10-17\" or \"2008-10-17\"");
    CHECK_ERROR("{\"Id\": 5}", "5", "Id must be a string");
    CHECK_ERROR("{\"Statements\": []}", "\"Statements\"",
                "Unknown policy element Statements; a policy has Version, Id and Statement");
    CHECK_ERROR("{\"Version\": \"2012-10-17\"}", "{", "The policy has no Statement");
    CHECK_ERROR("{\"Statement\": []}", "[",
                "Statement must be an object or a non-empty array of objects");
    CHECK_ERROR("{\"Statement\": \"Allow\"}", "\"Allow\"",
                "Statement must be an object or a non-empty array of objects");
    CHECK_ERROR("{\"Statement\": [\"Allow\"]}", "\"Allow\"", "A statement must be an object");
    /* jansson's own errors point at the end of the token they stopped at. */
    CHECK_STR(parse_error("{\"Statement\": {\"Effect\": \"Allow\", \"Effect\": \"Deny\"}}"),
              "line 1, column 42: duplicate object key near '\"Effect\"'");
    CHECK_STR(parse_error("{\"Statement\": {}} x"),
              "line 1, column 19: end of file expected near 'x'");
    CHECK(contains(parse_error(""), "line 1, column 1: "));
    char err[64];
    CHECK(auth_policy_parse(NULL, 0, err, sizeof err) == NULL);
    CHECK(auth_policy_parse("{}", 2, NULL, 0) == NULL);
}

static void test_statement_errors(void)
{
    const char *json = "{\"Statement\": {\"Sid\": \"send-only\", \"Effect\": \"Allow\"}}";
    CHECK_ERROR(json, "\"send-only\"", "Sid must contain only letters and digits");
    json = "{\"Statement\": [{\"Sid\": \"A1\", \"Effect\": \"Allow\", \"Action\": \"ses:*\", "
           "\"Resource\": \"*\"}, {\"Sid\": \"A1\", \"Effect\": \"Deny\", \"Action\": \"ses:*\", "
           "\"Resource\": \"*\"}]}";
    CHECK_ERROR(json, "\"A1\", \"Effect\": \"Deny\"",
                "Duplicate Sid A1; each statement needs its own");
    json = "{\"Statement\": {\"Action\": \"ses:*\", \"Resource\": \"*\"}}";
    CHECK_ERROR(json, "{\"Action\"", "Statement has no Effect; it must be \"Allow\" or \"Deny\"");
    json = "{\"Statement\": [{\"Effect\": \"Allow\", \"Resource\": \"*\"}]}";
    CHECK_ERROR(json, "{\"Effect\"", "Statement has no Action or NotAction");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ses:*\", \"NotAction\": "
           "\"ses:Get*\", \"Resource\": \"*\"}}";
    CHECK_ERROR(json, "\"NotAction\"", "A statement has Action or NotAction, not both");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": []}}";
    CHECK_ERROR(json, "[]", "Action must not be an empty array");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"NotAction\": [\"ses:*\", 5]}}";
    CHECK_ERROR(json, "5", "Actions must be strings such as \"ses:SendEmail\"");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ses:*\"}}";
    CHECK_ERROR(json, "{\"Effect\"",
                "Statement has no Resource; SES policies use \"Resource\": \"*\"");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ses:*\", \"Resource\": "
           "\"arn:aws:ses:eu-west-1:123456789012:identity/example.com\"}}";
    CHECK_ERROR(json, "\"arn:",
                "Resource must be \"*\": SES policies do not support resource-level permissions");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"ses:*\", \"Resource\": [\"*\", "
           "\"arn:x\"]}}";
    CHECK_ERROR(json, "\"arn:x\"",
                "Resource must be \"*\": SES policies do not support resource-level permissions");
    json = "{\"Statement\": {\"Effect\": \"Allow\", \"Principal\": \"*\"}}";
    CHECK_ERROR(json, "\"Principal\"",
                "Principal is not allowed in a user policy: it applies to the user it is "
                "attached to");
    json = "{\"Statement\": {\"NotPrincipal\": {\"AWS\": \"x\"}}}";
    CHECK_ERROR(json, "\"NotPrincipal\"",
                "NotPrincipal is not allowed in a user policy: it applies to the user it is "
                "attached to");
    json = "{\"Statement\": {\"NotResource\": \"x\"}}";
    CHECK_ERROR(json, "\"NotResource\"",
                "NotResource is not allowed in a user policy; use \"Resource\": \"*\"");
    json = "{\"Statement\": {\"effect\": \"Allow\"}}";
    CHECK_ERROR(json, "\"effect\"", "Unknown statement element effect");
    json = with_condition("[\"IpAddress\"]");
    CHECK_ERROR(json, "[", "Condition must be an object of condition operators");
}

static void test_action_errors(void)
{
    const char *cases[][2] = {
        {"SendEmail", "Action SendEmail has no service prefix; write ses:SendEmail"},
        {"*:SendEmail", "Wildcards are not allowed in the service prefix of action *:SendEmail"},
        {"se?:SendEmail",
         "Wildcards are not allowed in the service prefix of action se?:SendEmail"},
        {"iam:CreateUser", "Action iam:CreateUser is not an SES or SNS action; only ses: and "
                           "sns: actions are allowed"},
        {"ses:", "Action ses: names no action"},
        {"ses:Xyz", "Unknown action ses:Xyz"},
        {"ses:SendMail", "Unknown action ses:SendMail"},
        {"ses:CreateTopic", "Unknown action ses:CreateTopic"},
        {"sns:SendEmail", "Unknown action sns:SendEmail"},
        {"ses:Xyz*", "Action ses:Xyz* matches no SES or SNS action"},
        {"ses:*Email?", "Action ses:*Email? matches no SES or SNS action"},
        {"sns:*Email", "Action sns:*Email matches no SES or SNS action"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256], at[64];
        snprintf(json, sizeof json,
                 "{\"Statement\": {\"Effect\": \"Allow\", \"Resource\": \"*\", \"Action\": "
                 "[\"ses:SendEmail\", \"%s\"]}}",
                 cases[i][0]);
        snprintf(at, sizeof at, "\"%s\"]", cases[i][0]);
        CHECK_ERROR(json, at, cases[i][1]);
    }
}

static void test_condition_errors(void)
{
    const char *json = with_condition("{\"StringEqualz\": {\"aws:UserAgent\": \"x\"}}");
    CHECK_ERROR(json, "\"StringEqualz\"", "Unknown condition operator StringEqualz");
    json = with_condition("{\"stringEquals\": {\"aws:UserAgent\": \"x\"}}");
    CHECK_ERROR(json, "\"stringEquals\"", "Unknown condition operator stringEquals");
    json = with_condition("{\"NullIfExists\": {\"aws:UserAgent\": true}}");
    CHECK_ERROR(json, "\"NullIfExists\"", "Unknown condition operator NullIfExists");
    json = with_condition("{\"ForAnyValue:StringLike\": {\"aws:UserAgent\": \"x\"}}");
    CHECK_ERROR(json, "\"ForAnyValue",
                "Unknown condition operator ForAnyValue:StringLike; set operators are for "
                "multivalued keys, and SES's keys have one value");
    json = with_condition("{\"Bool\": {}}");
    CHECK_ERROR(json, "{}", "Bool must map condition keys to values");
    json = with_condition("{\"Bool\": {\"aws:MultiFactorAuthPresent\": \"true\"}}");
    CHECK_ERROR(json, "\"aws:Multi",
                "Unknown condition key aws:MultiFactorAuthPresent; SES policies support "
                "aws:CurrentTime, aws:EpochTime, aws:SecureTransport, aws:SourceIp and "
                "aws:UserAgent");
    json = with_condition("{\"StringEquals\": {\"aws:SourceIp\": \"10.0.0.1\"}}");
    CHECK_ERROR(json, "\"aws:SourceIp\"",
                "StringEquals cannot be used with aws:SourceIp; use IpAddress or NotIpAddress");
    json = with_condition("{\"Bool\": {\"aws:useragent\": \"true\"}}");
    CHECK_ERROR(json, "\"aws:useragent\"",
                "Bool cannot be used with aws:UserAgent; use a String operator");
    json = with_condition("{\"NumericLessThan\": {\"aws:CurrentTime\": 5}}");
    CHECK_ERROR(json, "\"aws:CurrentTime\"",
                "NumericLessThan cannot be used with aws:CurrentTime; use a Date operator");
    json = with_condition("{\"DateLessThanIfExists\": {\"aws:SourceIp\": \"2026-01-01\"}}");
    CHECK_ERROR(json, "\"aws:SourceIp\"",
                "DateLessThanIfExists cannot be used with aws:SourceIp; use IpAddress or "
                "NotIpAddress");
    json = with_condition("{\"IpAddress\": {\"aws:SecureTransport\": \"10.0.0.1\"}}");
    CHECK_ERROR(json, "\"aws:SecureTransport\"",
                "IpAddress cannot be used with aws:SecureTransport; use Bool");
    json = with_condition("{\"StringLike\": {\"aws:EpochTime\": \"1*\"}}");
    CHECK_ERROR(json, "\"aws:EpochTime\"",
                "StringLike cannot be used with aws:EpochTime; use a Date or Numeric operator");
}

static void test_value_errors(void)
{
    const char *json = with_condition("{\"StringLike\": {\"aws:UserAgent\": []}}");
    CHECK_ERROR(json, "[]", "A condition's value list must not be an empty array");
    json = with_condition("{\"StringLike\": {\"aws:UserAgent\": null}}");
    CHECK_ERROR(json, "null", "Condition values must be strings, numbers or booleans");
    json = with_condition("{\"StringLike\": {\"aws:UserAgent\": [\"a\", [\"b\"]]}}");
    CHECK_ERROR(json, "[\"b\"]", "Condition values must be strings, numbers or booleans");
    json = with_condition("{\"NumericEquals\": {\"aws:EpochTime\": \"12abc\"}}");
    CHECK_ERROR(json, "\"12abc\"", "Invalid value \"12abc\" for NumericEquals: expected a number");
    json = with_condition("{\"NumericEqualsIfExists\": {\"aws:EpochTime\": [1, true]}}");
    CHECK_ERROR(json, "true", "Invalid value true for NumericEqualsIfExists: expected a number");
    const char *bad_dates[] = {"\"2026-13-01\"",
                               "\"2026-02-29\"",
                               "\"yesterday\"",
                               "\"2026-06-01T25:00:00Z\"",
                               "\"2026-06-01T12:00:00+2\"",
                               "\"2026-06-01 12:00:00\"",
                               "\"2026-06-01T12:00:00.Z\"",
                               "-1",
                               "\"1e300\"",
                               "\"1969-12-31\""};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        char cond[128], msg[256];
        snprintf(cond, sizeof cond, "{\"DateGreaterThan\": {\"aws:CurrentTime\": %s}}",
                 bad_dates[i]);
        snprintf(msg, sizeof msg,
                 "Invalid value %s for DateGreaterThan: expected an ISO 8601 date such as "
                 "2026-01-01T00:00:00Z, or seconds since 1970",
                 bad_dates[i]);
        json = with_condition(cond);
        CHECK_ERROR(json, bad_dates[i], msg);
    }
    json = with_condition("{\"Bool\": {\"aws:SecureTransport\": \"yes\"}}");
    CHECK_ERROR(json, "\"yes\"", "Invalid value \"yes\" for Bool: expected true or false");
    json = with_condition("{\"Null\": {\"aws:UserAgent\": 1}}");
    CHECK_ERROR(json, "1}", "Invalid value 1 for Null: expected true or false");
    const char *bad_ips[] = {"\"10.0.0.0/33\"", "\"::1/129\"",      "\"10.0.0.0/\"",
                             "\"10.0.0\"",      "\"10.0.0.0/+8\"",  "\"::ffff:1.2.3.0/95\"",
                             "167772160",       "\"fe80::1%eth0\"", "\"10.0.0.0/8 \""};
    for (size_t i = 0; i < sizeof bad_ips / sizeof bad_ips[0]; i++) {
        char cond[128], msg[256];
        snprintf(cond, sizeof cond, "{\"IpAddress\": {\"aws:SourceIp\": [\"10.0.0.0/8\", %s]}}",
                 bad_ips[i]);
        snprintf(msg, sizeof msg,
                 "Invalid value %s for IpAddress: expected an IPv4 or IPv6 address with an "
                 "optional /prefix",
                 bad_ips[i]);
        json = with_condition(cond);
        CHECK_ERROR(json, bad_ips[i], msg);
    }
}

/* Multi-line documents: the position is the offending token's, in characters. */
static void test_error_positions(void)
{
    CHECK_STR(parse_error("{\n"
                          "  \"Version\": \"2012-10-17\",\n"
                          "  \"Statement\": [\n"
                          "    {\"Effect\": \"Allow\" \"Action\": \"ses:*\", \"Resource\": \"*\"}\n"
                          "  ]\n"
                          "}\n"),
              "line 4, column 31: '}' expected near '\"Action\"'");
    CHECK_STR(parse_error("{\n"
                          "  \"Statement\": {\n"
                          "    \"Effect\": \"Allow\",\n"
                          "    \"Action\": \"ses:SendEmail\",\n"
                          "    \"Resource\": \"*\",\n"
                          "    \"Condition\": {\n"
                          "      \"StringEqualz\": {\"aws:UserAgent\": \"x\"}\n"
                          "    }\n"
                          "  }\n"
                          "}\n"),
              "line 7, column 7: Unknown condition operator StringEqualz");
    CHECK_STR(
        parse_error("{\n"
                    "  \"Version\": \"2012-10-17\",\n"
                    "  \"Statement\": [\n"
                    "    {\"Effect\": \"Allow\", \"Action\": \"ses:SendEmail\", \"Resource\": "
                    "\"*\"},\n"
                    "    {\n"
                    "      \"Effect\": \"allow\",\n"
                    "      \"Action\": \"ses:SendRawEmail\",\n"
                    "      \"Resource\": \"*\"\n"
                    "    }\n"
                    "  ]\n"
                    "}\n"),
        "line 6, column 17: Effect must be \"Allow\" or \"Deny\"");
    CHECK_STR(parse_error("{\n"
                          "  \"Statement\": [{\n"
                          "    \"Effect\": \"Allow\",\n"
                          "    \"Action\": [\n"
                          "      \"ses:SendEmail\",\n"
                          "      \"s*:SendRawEmail\"\n"
                          "    ],\n"
                          "    \"Resource\": \"*\"\n"
                          "  }]\n"
                          "}\n"),
              "line 6, column 7: Wildcards are not allowed in the service prefix of action "
              "s*:SendRawEmail");
    CHECK_STR(parse_error("{\n"
                          "  \"Statement\": {\n"
                          "    \"Effect\": \"Deny\",\n"
                          "    \"Action\": \"ses:*\",\n"
                          "    \"Resource\": \"*\",\n"
                          "    \"Condition\": {\"NotIpAddress\": {\"aws:SourceIp\": "
                          "[\"10.0.0.0/8\", \"192.168.0.0/33\"]}}\n"
                          "  }\n"
                          "}\n"),
              "line 6, column 67: Invalid value \"192.168.0.0/33\" for NotIpAddress: expected an "
              "IPv4 or IPv6 address with an optional /prefix");
    /* An escaped key, and a two-byte character before the error on the same line. */
    CHECK_STR(parse_error("{\"Id\": \"caf\xc3\xa9\", \"Statement\": {\"Effect\": \"Allow\", "
                          "\"Action\": \"ses:*\", \"Resource\": \"*\", \"Cond\\u0069tion\": "
                          "{\"Bogus\": {}}}}"),
              "line 1, column 104: Unknown condition operator Bogus");
    /* CRLF line ends, tabs and the error under a key that appears earlier as a value. */
    CHECK_STR(parse_error("{\r\n\t\"Id\": \"Statement\",\r\n\t\"Statement\": {\"Effect\": "
                          "\"Allow\", \"Action\": \"Effect\", \"Resource\": \"*\"}\r\n}"),
              "line 3, column 45: Action Effect has no service prefix; write ses:Effect");
}

static char *repeat_items(const char *item, int n)
{
    size_t len = strlen(item);
    char *s = malloc(len * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + len * (size_t)i, item, len);
    s[len * (size_t)n] = '\0';
    return s;
}

/* 6144 characters not counting whitespace outside strings; inside them it counts. */
static void test_size_limit(void)
{
    const char *head = "{ \"Statement\" : { \"Effect\" : \"Allow\" , \"Resource\" : \"*\" , "
                       "\"Action\" : \"ses:*\" ,\n \"Sid\" : \"";
    const char *tail = "\" } }";
    /* The fixed part without its blanks: */
    int fixed = (int)strlen("{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\","
                            "\"Action\":\"ses:*\",\"Sid\":\"\"}}");
    char *sid = repeat_items("A", AUTH_POLICY_MAX_CHARS - fixed + 1);
    size_t cap = strlen(head) + strlen(sid) + strlen(tail) + 1;
    char *doc = malloc(cap);
    snprintf(doc, cap, "%s%s%s", head, sid + 1, tail);
    CHECK_STR(parse_error(doc), "(parsed)");
    snprintf(doc, cap, "%s%s%s", head, sid, tail);
    CHECK_STR(parse_error(doc), "line 1, column 1: Policy document exceeds 6144 characters "
                                "(whitespace not counted)");
    free(doc);
    free(sid);
    char *blanks = repeat_items(" ", 7000);
    size_t n = strlen(blanks) + 200;
    doc = malloc(n);
    snprintf(doc, n,
             "{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\",\"Action\":\"ses:*\","
             "\"Condition\":{\"StringEquals\":{\"aws:UserAgent\":\"%s\"}}}}",
             blanks);
    CHECK(contains(parse_error(doc), "exceeds 6144 characters"));
    snprintf(doc, n,
             "%s{\"Statement\":{\"Effect\":\"Allow\",\"Resource\":\"*\",\"Action\":\"ses:*\"}}",
             blanks);
    CHECK_STR(parse_error(doc), "(parsed)");
    free(doc);
    free(blanks);
}

/* ---- a 10x10 policy set ---- */

/* Policy i, statement j: even j allows Get* and List* from 10.i.j.0/24; odd j denies
 * Delete* to user agents "evil-i-j..."; the last statement of the last policy allows
 * SendEmail over TLS after 2026-01-01. */
static struct auth_policy *policy_10x10(int i)
{
    char json[4096];
    int n = snprintf(json, sizeof json, "{\"Version\": \"2012-10-17\", \"Statement\": [");
    for (int j = 0; j < 10; j++) {
        const char *sep = j ? "," : "";
        if (i == 9 && j == 9)
            n += snprintf(json + n, sizeof json - (size_t)n,
                          "%s{\"Effect\": \"Allow\", \"Action\": \"ses:SendEmail\", \"Resource\": "
                          "\"*\", \"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}, "
                          "\"DateGreaterThan\": {\"aws:CurrentTime\": \"2026-01-01\"}}}",
                          sep);
        else if (j % 2 == 0)
            n += snprintf(json + n, sizeof json - (size_t)n,
                          "%s{\"Effect\": \"Allow\", \"Action\": [\"ses:Get*\", \"ses:List*\"], "
                          "\"Resource\": \"*\", \"Condition\": {\"IpAddress\": {\"aws:SourceIp\": "
                          "\"10.%d.%d.0/24\"}}}",
                          sep, i, j);
        else
            n += snprintf(json + n, sizeof json - (size_t)n,
                          "%s{\"Effect\": \"Deny\", \"Action\": \"ses:Delete*\", \"Resource\": "
                          "\"*\", \"Condition\": {\"StringLike\": {\"aws:UserAgent\": "
                          "\"evil-%d-%d*\"}}}",
                          sep, i, j);
    }
    snprintf(json + n, sizeof json - (size_t)n, "]}");
    return must_parse(json);
}

static void test_policy_set(void)
{
    struct auth_policy *set[10];
    for (int i = 0; i < 10; i++)
        set[i] = policy_10x10(i);
    struct auth_policy_request req = request("SendEmail");
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_ALLOW);
    req.secure_transport = false;
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_IMPLICIT_DENY);
    req = request("GetSendQuota");
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_IMPLICIT_DENY);
    req.source_ip = "10.3.4.9";
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_ALLOW);
    req.source_ip = "10.3.5.9"; /* statement 5 is a Deny for Delete* */
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_IMPLICIT_DENY);
    req = request("DeleteIdentity");
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_IMPLICIT_DENY);
    req.user_agent = "evil-5-7/1.0";
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_EXPLICIT_DENY);
    req = request("ListIdentities");
    req.source_ip = "::ffff:10.9.8.200";
    CHECK(auth_policy_evaluate(set, 10, &req) == AUTH_POLICY_ALLOW);
    for (int i = 0; i < 10; i++)
        auth_policy_free(set[i]);
}

/* A set is all or nothing: one document that does not compile fails it. */
static void test_policy_set_all_or_nothing(void)
{
    struct auth_policy_set set = {0};
    auth_policy_set_add(&set,
                        "{\"Statement\":{\"Effect\":\"Allow\",\"Action\":\"ses:*\","
                        "\"Resource\":\"*\"}}",
                        "test: good");
    CHECK(set.count == 1 && !set.failed);
    auth_policy_set_add(&set, "{\"Statement\":{\"Effect\":\"Maybe\"}}", "test: bad");
    CHECK(set.failed && set.count == 1);
    auth_policy_set_add(&set,
                        "{\"Statement\":{\"Effect\":\"Deny\",\"Action\":\"ses:*\","
                        "\"Resource\":\"*\"}}",
                        "test: after the failure");
    CHECK(set.count == 1); /* nothing is added once the set has failed */
    auth_policy_set_free(&set);
    CHECK(set.items == NULL && set.count == 0 && !set.failed);
}

int main(void)
{
    test_string_operators();
    test_numeric_operators();
    test_date_operators();
    test_bool_and_ip_operators();
    test_absent_key();
    test_condition_logic();
    test_addresses();
    test_action_table();
    test_actions();
    test_sns_actions();
    test_not_action();
    test_deny_across_policies();
    test_document_errors();
    test_statement_errors();
    test_action_errors();
    test_condition_errors();
    test_value_errors();
    test_error_positions();
    test_size_limit();
    test_policy_set();
    test_policy_set_all_or_nothing();
    return UNIT_END();
}
