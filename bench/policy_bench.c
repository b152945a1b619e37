/* Micro-benchmark of IAM policy evaluation (bench/README.md, "Policy evaluation").
 *
 * Ten policies of ten statements each, in five shapes (Allow and Deny, Action lists with
 * wildcards, one NotAction, conditions on aws:SourceIp, aws:CurrentTime, aws:UserAgent
 * and aws:SecureTransport), and two requests that both walk all hundred statements:
 *   - worst case: SendEmail, allowed only by the last statement of the last policy;
 *   - implicit deny: the same request over plain HTTP, which no statement allows.
 * Each is evaluated EVALUATIONS times after a warm-up, in ROUNDS rounds; the mean cost
 * per evaluation of every round is printed, then the median round. */
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLICIES 10
#define STATEMENTS 10
#define EVALUATIONS 1000000
#define WARMUP 100000
#define ROUNDS 5
#define PARSES 1000 /* of the whole set, to time parsing */

/* Statement j of policy i; none of them matches the benchmark's requests except the very
 * last, but most need their conditions checked to find that out. */
static int statement_json(char *out, size_t cap, int i, int j)
{
    if (i == POLICIES - 1 && j == STATEMENTS - 1)
        return snprintf(out, cap,
                        "{\"Sid\": \"Last\", \"Effect\": \"Allow\", \"Action\": "
                        "[\"ses:SendEmail\", \"ses:SendRawEmail\"], \"Resource\": \"*\", "
                        "\"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}, "
                        "\"IpAddress\": {\"aws:SourceIp\": [\"198.51.100.0/24\", "
                        "\"203.0.113.0/24\"]}, \"DateGreaterThan\": {\"aws:CurrentTime\": "
                        "\"2026-01-01T00:00:00Z\"}, \"StringLikeIfExists\": "
                        "{\"aws:UserAgent\": \"aws-cli/*\"}}}");
    switch (j % 5) {
    case 0:
        return snprintf(out, cap,
                        "{\"Effect\": \"Allow\", \"Action\": [\"ses:Get*\", \"ses:List*\", "
                        "\"ses:Describe*\"], \"Resource\": \"*\", \"Condition\": {\"IpAddress\": "
                        "{\"aws:SourceIp\": [\"10.%d.%d.0/24\", \"2001:db8:%d:%d::/64\"]}}}",
                        i, j, i, j);
    case 1:
        return snprintf(out, cap,
                        "{\"Effect\": \"Deny\", \"Action\": [\"ses:Delete*\", \"ses:Update*\"], "
                        "\"Resource\": \"*\", \"Condition\": {\"StringLike\": "
                        "{\"aws:UserAgent\": [\"evil-%d-%d/*\", \"*scanner*\"]}}}",
                        i, j);
    case 2: /* matches SendEmail's action; the date has passed */
        return snprintf(out, cap,
                        "{\"Effect\": \"Allow\", \"Action\": \"ses:Send*\", \"Resource\": \"*\", "
                        "\"Condition\": {\"Bool\": {\"aws:SecureTransport\": \"true\"}, "
                        "\"DateLessThan\": {\"aws:CurrentTime\": \"2020-0%d-1%dT00:00:00Z\"}}}",
                        1 + i % 9, j % 10);
    case 3: /* matches SendEmail's action; the address is in the list */
        return snprintf(out, cap,
                        "{\"Effect\": \"Deny\", \"Action\": [\"ses:SendEmail\", "
                        "\"ses:SendRawEmail\"], \"Resource\": \"*\", \"Condition\": "
                        "{\"NotIpAddress\": {\"aws:SourceIp\": [\"10.0.0.0/8\", "
                        "\"203.0.113.0/24\", \"2001:db8::/32\"]}}}");
    default:
        return snprintf(out, cap,
                        "{\"Effect\": \"Allow\", \"NotAction\": \"ses:*\", \"Resource\": \"*\", "
                        "\"Condition\": {\"StringEqualsIgnoreCase\": {\"aws:UserAgent\": "
                        "\"console-%d-%d\"}}}",
                        i, j);
    }
}

static void policy_json(char *json, size_t cap, int i)
{
    int n = snprintf(json, cap, "{\"Version\": \"2012-10-17\", \"Statement\": [");
    for (int j = 0; j < STATEMENTS; j++) {
        n += snprintf(json + n, cap - (size_t)n, j ? ", " : "");
        n += statement_json(json + n, cap - (size_t)n, i, j);
    }
    snprintf(json + n, cap - (size_t)n, "]}");
}

static struct auth_policy *parse(const char *json)
{
    char err[256];
    struct auth_policy *p = auth_policy_parse(json, strlen(json), err, sizeof err);
    if (!p) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return p;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean ns per evaluation of each round, then the median round. */
static void measure(const char *name, struct auth_policy *const *set,
                    const struct auth_policy_request *req, enum auth_policy_decision expected)
{
    if (auth_policy_evaluate(set, POLICIES, req) != expected) {
        fprintf(stderr, "%s: unexpected decision\n", name);
        exit(1);
    }
    volatile int sink = 0;
    for (int k = 0; k < WARMUP; k++)
        sink += (int)auth_policy_evaluate(set, POLICIES, req);
    double rounds[ROUNDS];
    printf("%-14s", name);
    for (int r = 0; r < ROUNDS; r++) {
        double start = now_ns();
        for (int k = 0; k < EVALUATIONS; k++)
            sink += (int)auth_policy_evaluate(set, POLICIES, req);
        rounds[r] = (now_ns() - start) / EVALUATIONS;
        printf(" %7.1f", rounds[r]);
    }
    qsort(rounds, ROUNDS, sizeof rounds[0], compare_doubles);
    printf("  | median %.1f ns/request\n", rounds[ROUNDS / 2]);
    (void)sink;
}

int main(void)
{
    static char json[POLICIES][4096];
    struct auth_policy *set[POLICIES];
    for (int i = 0; i < POLICIES; i++)
        policy_json(json[i], sizeof json[i], i);
    double start = now_ns();
    for (int k = 0; k < PARSES; k++) {
        for (int i = 0; i < POLICIES; i++)
            auth_policy_free(parse(json[i]));
    }
    double parse_us = (now_ns() - start) / 1e3 / (PARSES * POLICIES);
    for (int i = 0; i < POLICIES; i++)
        set[i] = parse(json[i]);

    printf("policy_bench: %d policies x %d statements; each request walks all %d statements.\n"
           "Method: %d evaluations per round after %d warm-up ones, %d rounds, "
           "CLOCK_MONOTONIC;\nthe figures are the mean ns per evaluation of each round "
           "(auth_policy_evaluate over the whole set,\nincluding the action lookup and the "
           "one parse of the source address).\n",
           POLICIES, STATEMENTS, POLICIES * STATEMENTS, EVALUATIONS, WARMUP, ROUNDS);
    printf("auth_policy_parse: %.1f us per policy of %zu bytes (mean of %d parses of the set)\n",
           parse_us, strlen(json[POLICIES - 1]), PARSES);

    struct auth_policy_request req = {
        "SendEmail", "203.0.113.7", true, 1780315200000LL, "aws-cli/2.15.0 Python/3.11", "ses"};
    measure("allow (last)", set, &req, AUTH_POLICY_ALLOW);
    req.secure_transport = false;
    measure("implicit deny", set, &req, AUTH_POLICY_IMPLICIT_DENY);

    for (int i = 0; i < POLICIES; i++)
        auth_policy_free(set[i]);
    return 0;
}
