/* libFuzzer target: the Query form parser and list collection. */
#include "api/api.h"
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
            mail_address_valid(q.items[i].value);
            mail_domain_valid(q.items[i].value);
        }
    }
    query_params_free(&q);
    return 0;
}
