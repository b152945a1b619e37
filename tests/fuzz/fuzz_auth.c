/* libFuzzer target for auth_verify. The input is split at '\n' into
 *   Authorization, X-Amzn-Authorization, query, Date, X-Amz-Date, path
 * (an empty field leaves that header out) and the rest is the body. Every key id is known,
 * except "AKIDUNKNOWN", so the signature paths run. */
#include "auth/auth.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIELDS 6

static const char *lookup(void *ctx, const char *key_id)
{
    (void)ctx;
    return strcmp(key_id, "AKIDUNKNOWN") == 0 ? NULL : "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
}

/* Cuts text (NUL-terminated, owned) into fields; returns where the body starts. */
static char *split(char *text, char *fields[FIELDS])
{
    char *p = text;
    for (int i = 0; i < FIELDS; i++) {
        fields[i] = p;
        char *nl = strchr(p, '\n');
        if (!nl) {
            p += strlen(p);
            continue;
        }
        *nl = '\0';
        p = nl + 1;
    }
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0'; /* header values are C strings; an embedded NUL just ends them */
    char *f[FIELDS];
    char *body = split(text, f);
    static const char *const names[] = {"Authorization", "X-Amzn-Authorization", NULL, "Date",
                                        "X-Amz-Date"};
    struct auth_header headers[6] = {{"Host", "email.eu-west-1.amazonaws.com"}};
    size_t n = 1;
    for (int i = 0; i < 5; i++) {
        if (names[i] && *f[i])
            headers[n++] = (struct auth_header){names[i], f[i]};
    }
    struct auth_request req = {
        "POST",       *f[5] ? f[5] : "/", f[2], headers, n, (const unsigned char *)body,
        strlen(body), 1440938160,         900,  NULL};
    struct auth_result res;
    auth_verify(&req, lookup, NULL, &res);
    char *creq = NULL;
    if (auth_sigv4_canonical_request(&req, f[1], f[3], f[4][0] != '\0', &creq) == 0)
        free(creq);
    auth_is_signature_param(f[2]);
    free(text);
    return 0;
}
