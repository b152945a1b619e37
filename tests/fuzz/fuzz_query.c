/* libFuzzer target: the Query form parser and list collection, and what reads values:
 * addresses, domains, SNS topic and subscription ARNs. */
#include "api/api.h"
#include "api/api_internal.h"
#include "mail/mail.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct query_params q;
    char bad[64];
    const char *items[16];
    query_params_init(&q);
    if (query_parse(&q, (const char *)data, size, bad, sizeof bad) == QUERY_OK) {
        query_get(&q, "Action");
        query_list(&q, "Destinations", items, 16);
        query_list(&q, "Identities", items, 16);
        for (size_t i = 0; i < q.count; i++) {
            struct api_sns_arn parts;
            char topic[STORE_ARN_LEN];
            mail_address_valid(q.items[i].value);
            mail_domain_valid(q.items[i].value);
            api_sns_arn_parse(q.items[i].value, &parts);
            api_sns_subscription_arn_parse(q.items[i].value, &parts, topic);
        }
    }
    query_params_free(&q);
    return 0;
}
