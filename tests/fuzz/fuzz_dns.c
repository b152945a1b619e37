/* libFuzzer target: the reading of DNS answers for MX resolution. The input is an MX
 * answer; the same bytes are then an A and an AAAA answer for each exchange found (a
 * packet may hold records of every type), and the result is assembled. The invariants of
 * dns.h's contract are checked on the way: limits, order, loopback, TTL bounds. The same
 * bytes are then a CNAME answer and a DKIM key record (Easy DKIM checks). */
#include "dns/dns_internal.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void check_list(const struct dns_mx_list *l)
{
    if (l->count < 0 || l->count > DNS_MX_HOSTS_MAX || l->ttl_s < 0)
        abort();
    if (l->kind != DNS_MX_ANSWER_HOSTS && l->count != 0)
        abort();
    for (int i = 0; i < l->count; i++) {
        if (!memchr(l->names[i].name, '\0', sizeof l->names[i].name) || !l->names[i].name[0])
            abort();
        if (i > 0 && l->names[i].preference < l->names[i - 1].preference)
            abort();
    }
}

static void check_result(const struct dns_mx_result *res, bool allow_loopback)
{
    if ((res->status == DNS_MX_OK) != (res->host_count > 0))
        abort();
    if (res->host_count > DNS_MX_HOSTS_MAX || res->ttl_s < 1 || res->ttl_s > DNS_MX_TTL_MAX)
        abort();
    if (!memchr(res->error, '\0', sizeof res->error) ||
        (res->status != DNS_MX_OK) != !!res->error[0])
        abort();
    for (int i = 0; i < res->host_count; i++) {
        const struct dns_mx_host *h = &res->hosts[i];
        if (h->addr_count < 1 || h->addr_count > DNS_MX_ADDRS_MAX)
            abort();
        for (int k = 0; k < h->addr_count; k++) {
            int family = h->addrs[k].family;
            if ((family != AF_INET && family != AF_INET6) ||
                (!allow_loopback && dns_mx_addr_is_loopback(&h->addrs[k])))
                abort();
        }
    }
}

static void fuzz_answers(const uint8_t *data, size_t size, bool allow_loopback)
{
    int len = size > INT32_MAX ? INT32_MAX : (int)size;
    struct dns_mx_list l;
    dns_mx_answer_parse(ARES_SUCCESS, data, len, (uint32_t)size, &l);
    check_list(&l);
    struct dns_mx_candidate *c = calloc(DNS_MX_HOSTS_MAX, sizeof *c);
    if (!c)
        abort();
    int n = l.kind == DNS_MX_ANSWER_HOSTS ? l.count : 1;
    for (int i = 0; i < n; i++) {
        memcpy(c[i].name, l.names[i].name, sizeof c[i].name);
        c[i].preference = l.names[i].preference;
        dns_mx_addr_answer(ARES_SUCCESS, data, len, AF_INET, allow_loopback, &c[i]);
        dns_mx_addr_answer(ARES_SUCCESS, data, len, AF_INET6, allow_loopback, &c[i]);
        if (c[i].count[0] > DNS_MX_ADDRS_MAX || c[i].count[1] > DNS_MX_ADDRS_MAX)
            abort();
    }
    struct dns_mx_result *res = malloc(sizeof *res);
    if (!res)
        abort();
    dns_mx_assemble("fuzz.test", &l, c, n, res);
    check_result(res, allow_loopback);
    free(res);
    free(c);
}

/* A target is lower-case, without a trailing dot, and only there with DNS_FOUND. */
static void fuzz_cname(const uint8_t *data, int len)
{
    char target[256];
    enum dns_result r = dns_cname_answer_parse(ARES_SUCCESS, data, len, target, sizeof target);
    size_t n = strnlen(target, sizeof target);
    if (n == sizeof target || (r == DNS_FOUND) != (n > 0) || (n && target[n - 1] == '.'))
        abort();
    for (size_t i = 0; i < n; i++)
        if (isupper((unsigned char)target[i]))
            abort();
    char small[4];
    if (dns_cname_answer_parse(ARES_SUCCESS, data, len, small, sizeof small) == DNS_FOUND &&
        strlen(small) >= sizeof small)
        abort();
}

/* The bytes as a key record, against the value of their last "p=" (whitespace removed)
 * and against a key they cannot hold. */
static void fuzz_key_record(const uint8_t *data, size_t size)
{
    char *txt = malloc(size + 1);
    if (!txt)
        abort();
    memcpy(txt, data, size);
    txt[size] = '\0';
    const char *p = txt, *last = NULL;
    while ((p = strstr(p, "p=")))
        last = p += 2;
    char key[128];
    size_t n = 0;
    for (; last && *last && *last != ';' && n < sizeof key - 1; last++)
        if (!strchr(" \t\r\n", *last))
            key[n++] = *last;
    key[n] = '\0';
    dns_dkim_txt_matches(txt, key);
    if (dns_dkim_txt_matches(txt, "A B") || dns_dkim_txt_matches(txt, ""))
        abort();
    free(txt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cname(data, (int)(size > INT32_MAX ? INT32_MAX : size));
    fuzz_key_record(data, size);
    fuzz_answers(data, size, false);
    fuzz_answers(data, size, true);
    /* A negative answer: only its TTL (the SOA's) is read. */
    struct dns_mx_list l;
    dns_mx_answer_parse(ARES_ENODATA, data, (int)(size > INT32_MAX ? INT32_MAX : size), 0, &l);
    check_list(&l);
    /* The bytes as a relay's address. */
    char text[80];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    struct dns_mx_candidate c = {0};
    bool literal = dns_mx_addr_literal(text, false, &c);
    int kept = c.count[0] + c.count[1];
    /* A literal is kept or refused as loopback; anything else leaves c alone. */
    if (kept > 1 || (literal ? (kept == 1) == c.loopback : (kept || c.loopback)))
        abort();
    return 0;
}
