/* The pure half of MX resolution (RFC 5321 §5.1, RFC 7505): DNS answers in, lists and
 * results out, no network and no clock, so that tests and the fuzzer can reach every
 * branch. mx.c asks the questions and feeds the answers here. */
#include "dns/dns_internal.h"

#include <ares_dns.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* More A or AAAA records than this in one answer are not read: DNS_MX_ADDRS_MAX are
 * kept, and the margin leaves room for loopback ones that get dropped. */
#define ADDR_READ_MAX 32

const char *dns_mx_cause(int ares_status)
{
    switch (ares_status) {
    case ARES_ESERVFAIL:
        return "the DNS server failed (SERVFAIL)";
    case ARES_EREFUSED:
        return "the DNS server refused the query (REFUSED)";
    case ARES_ENOTIMP:
        return "the DNS server does not implement the query (NOTIMP)";
    case ARES_EFORMERR:
        return "the DNS server could not read the query (FORMERR)";
    case ARES_ETIMEOUT:
        return "the DNS query timed out";
    case ARES_ECONNREFUSED:
        /* c-ares 1.18 also ends here after SERVFAIL, REFUSED or NOTIMP answers from
         * every server it tried (it does not keep their rcode). */
        return "the DNS server failed (SERVFAIL or REFUSED) or refused the connection";
    case ARES_EBADRESP:
        return "the DNS answer could not be read";
    default:
        return ares_strerror(ares_status);
    }
}

/* acc keeps the smallest TTL folded in; 0 means none yet, so a TTL of 0 counts as 1. A
 * TTL with the top bit set is read as 0 (RFC 2181 §8). */
static void ttl_fold(int64_t *acc, int64_t ttl)
{
    if (ttl < 1 || ttl > INT32_MAX)
        ttl = 1;
    if (*acc == 0 || ttl < *acc)
        *acc = ttl;
}

static bool skip_name(const unsigned char *abuf, int alen, const unsigned char **p)
{
    char *name;
    long enclen;
    if (*p >= abuf + alen || ares_expand_name(*p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
        return false;
    ares_free_string(name);
    *p += enclen;
    return *p <= abuf + alen;
}

/* ares_parse_*_reply of c-ares 1.18 (Debian 12) give no TTL for MX, so the records are
 * walked here for theirs; c-ares still does the reading of the records themselves. */
int64_t dns_answer_min_ttl(const unsigned char *abuf, int alen)
{
    if (!abuf || alen < HFIXEDSZ)
        return 0;
    const unsigned char *p = abuf + HFIXEDSZ, *end = abuf + alen;
    int questions = DNS_HEADER_QDCOUNT(abuf);
    int records = DNS_HEADER_ANCOUNT(abuf) + DNS_HEADER_NSCOUNT(abuf);
    for (int i = 0; i < questions; i++) {
        if (!skip_name(abuf, alen, &p) || end - p < QFIXEDSZ)
            return 0;
        p += QFIXEDSZ;
    }
    int64_t min = 0;
    for (int i = 0; i < records; i++) {
        if (!skip_name(abuf, alen, &p) || end - p < RRFIXEDSZ)
            break;
        uint32_t ttl = (uint32_t)DNS_RR_TTL(p);
        int rdlen = DNS_RR_LEN(p);
        p += RRFIXEDSZ;
        if (end - p < rdlen)
            break;
        p += rdlen;
        ttl_fold(&min, ttl > INT32_MAX ? 0 : (int64_t)ttl);
    }
    return min;
}

struct mx_entry {
    int preference;
    uint32_t key; /* random: orders equal preferences */
    const char *name;
};

static int mx_entry_cmp(const void *a, const void *b)
{
    const struct mx_entry *x = a, *y = b;
    if (x->preference != y->preference)
        return x->preference < y->preference ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

static uint32_t xorshift32(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* RFC 7505: "." as the exchange. c-ares spells the root as "". */
static bool mx_is_null(const char *host)
{
    return !host[0] || !strcmp(host, ".");
}

static bool mx_list_has(const struct dns_mx_list *out, const char *name)
{
    for (int i = 0; i < out->count; i++)
        if (!strcasecmp(out->names[i].name, name))
            return true;
    return false;
}

/* Sorted entries -> the list: the best DNS_MX_HOSTS_MAX distinct names. */
static void mx_list_fill(struct dns_mx_list *out, const struct mx_entry *e, int n)
{
    for (int i = 0; i < n && out->count < DNS_MX_HOSTS_MAX; i++) {
        if (mx_list_has(out, e[i].name))
            continue; /* one name at two preferences: the better one is already in */
        struct dns_mx_name *m = &out->names[out->count++];
        m->preference = e[i].preference;
        core_strlcpy(m->name, e[i].name, sizeof m->name);
    }
}

static int mx_read(const unsigned char *abuf, int alen, uint32_t seed, struct dns_mx_list *out)
{
    struct ares_mx_reply *mx = NULL;
    int status = ares_parse_mx_reply(abuf, alen, &mx);
    if (status != ARES_SUCCESS)
        return status;
    int total = 0, n = 0, nulls = 0;
    for (struct ares_mx_reply *m = mx; m; m = m->next)
        total++;
    if (total == 0) /* other records only, such as a CNAME: no MX */
        return ARES_ENODATA;
    struct mx_entry *e = calloc((size_t)total, sizeof *e);
    if (!e)
        abort();
    uint32_t rng = seed ^ 0x9e3779b9u;
    rng = rng ? rng : 1;
    for (struct ares_mx_reply *m = mx; m; m = m->next) {
        if (mx_is_null(m->host))
            nulls++;
        else if (strlen(m->host) < sizeof out->names[0].name) /* longer: not a usable name */
            e[n++] = (struct mx_entry){m->priority, xorshift32(&rng), m->host};
    }
    qsort(e, (size_t)n, sizeof *e, mx_entry_cmp);
    mx_list_fill(out, e, n);
    /* A null MX among real ones is a mistake in the zone: the real ones are used. */
    out->kind = n == 0 && nulls > 0 ? DNS_MX_ANSWER_NULL : DNS_MX_ANSWER_HOSTS;
    free(e);
    ares_free_data(mx);
    return n > 0 || nulls > 0 ? ARES_SUCCESS : ARES_EBADRESP;
}

void dns_mx_answer_parse(int status, const unsigned char *abuf, int alen, uint32_t seed,
                         struct dns_mx_list *out)
{
    memset(out, 0, sizeof *out);
    out->ttl_s = dns_answer_min_ttl(abuf, alen);
    if (status == ARES_SUCCESS)
        status = mx_read(abuf, alen, seed, out);
    if (status == ARES_SUCCESS)
        return;
    out->count = 0;
    if (status == ARES_ENODATA)
        out->kind = DNS_MX_ANSWER_NODATA;
    else if (status == ARES_ENOTFOUND)
        out->kind = DNS_MX_ANSWER_NXDOMAIN;
    else if (status == ARES_EBADNAME)
        out->kind = DNS_MX_ANSWER_BADNAME;
    else
        out->kind = DNS_MX_ANSWER_TEMPORARY;
    if (out->kind == DNS_MX_ANSWER_TEMPORARY)
        snprintf(out->why, sizeof out->why, "%s", dns_mx_cause(status));
}

bool dns_mx_addr_is_loopback(const struct dns_mx_addr *a)
{
    static const unsigned char zero[16];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *v4 = a->addr;
    if (a->family == AF_INET6) {
        if (!memcmp(a->addr, zero, 15) && a->addr[15] <= 1)
            return true; /* :: and ::1 */
        if (memcmp(a->addr, mapped, sizeof mapped))
            return false;
        v4 = a->addr + 12; /* ::ffff:127.0.0.1 reaches the same place */
    }
    return v4[0] == 127 || v4[0] == 0;
}

static void candidate_add(struct dns_mx_candidate *c, const struct dns_mx_addr *a,
                          bool allow_loopback)
{
    if (!allow_loopback && dns_mx_addr_is_loopback(a)) {
        c->loopback = true;
        return;
    }
    int f = a->family == AF_INET6;
    size_t len = f ? 16 : 4;
    for (int i = 0; i < c->count[f]; i++)
        if (!memcmp(c->addrs[f][i].addr, a->addr, len))
            return;
    if (c->count[f] < DNS_MX_ADDRS_MAX)
        c->addrs[f][c->count[f]++] = *a;
}

static int addr_read(const unsigned char *abuf, int alen, int family, bool allow_loopback,
                     struct dns_mx_candidate *c)
{
    struct ares_addrttl v4[ADDR_READ_MAX];
    struct ares_addr6ttl v6[ADDR_READ_MAX];
    int n = ADDR_READ_MAX, status;
    if (family == AF_INET)
        status = ares_parse_a_reply(abuf, alen, NULL, v4, &n);
    else
        status = ares_parse_aaaa_reply(abuf, alen, NULL, v6, &n);
    if (status != ARES_SUCCESS)
        return status;
    for (int i = 0; i < n && i < ADDR_READ_MAX; i++) {
        struct dns_mx_addr a = {.family = family};
        if (family == AF_INET)
            memcpy(a.addr, &v4[i].ipaddr, 4);
        else
            memcpy(a.addr, &v6[i].ip6addr, 16);
        candidate_add(c, &a, allow_loopback);
    }
    return ARES_SUCCESS;
}

void dns_mx_addr_answer(int status, const unsigned char *abuf, int alen, int family,
                        bool allow_loopback, struct dns_mx_candidate *c)
{
    int64_t ttl = dns_answer_min_ttl(abuf, alen);
    if (ttl)
        ttl_fold(&c->ttl_s, ttl);
    if (status == ARES_SUCCESS)
        status = addr_read(abuf, alen, family, allow_loopback, c);
    /* No such name, no such record, or a name that cannot be asked: no address, and
     * asking again will not change that. */
    if (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA ||
        status == ARES_EBADNAME)
        return;
    if (!c->failed)
        snprintf(c->why, sizeof c->why, "%s", dns_mx_cause(status));
    c->failed = true;
}

/* Accepts "192.0.2.1", "2001:db8::1", and the SMTP spellings "[192.0.2.1]" and
 * "[IPv6:2001:db8::1]" (RFC 5321 §4.1.3). */
bool dns_mx_addr_literal(const char *text, bool allow_loopback, struct dns_mx_candidate *c)
{
    char s[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(text);
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
        if (len >= 5 && !strncasecmp(text, "IPv6:", 5))
            text += 5, len -= 5;
    }
    if (len >= sizeof s)
        return false;
    memcpy(s, text, len);
    s[len] = '\0';
    struct dns_mx_addr a = {0};
    if (inet_pton(AF_INET, s, a.addr) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, s, a.addr) == 1)
        a.family = AF_INET6;
    else
        return false;
    candidate_add(c, &a, allow_loopback);
    return true;
}

__attribute__((format(printf, 4, 5))) static void
result_set(struct dns_mx_result *out, enum dns_mx_status status, int64_t ttl, const char *fmt, ...)
{
    out->status = status;
    /* Failures are not for caching: the next attempt should ask again. */
    if (status == DNS_MX_TEMPORARY)
        ttl = 1;
    else if (ttl == 0 || ttl > DNS_MX_TTL_MAX)
        ttl = DNS_MX_TTL_MAX; /* 0: no record seen, as for a literal address */
    out->ttl_s = ttl;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
}

/* IPv4 first, then IPv6: receivers are stricter with IPv6 senders (PTR, SPF). */
static bool host_take(struct dns_mx_host *h, const struct dns_mx_candidate *c)
{
    memset(h, 0, sizeof *h);
    core_strlcpy(h->name, c->name, sizeof h->name);
    h->preference = c->preference;
    for (int f = 0; f < 2; f++)
        for (int i = 0; i < c->count[f] && h->addr_count < DNS_MX_ADDRS_MAX; i++)
            h->addrs[h->addr_count++] = c->addrs[f][i];
    return h->addr_count > 0;
}

/* No candidate had an address: the reason, from the most hopeful down. */
static void hosts_none(const char *domain, const struct dns_mx_list *mx,
                       const struct dns_mx_candidate *cands, int n, int64_t ttl,
                       struct dns_mx_result *out)
{
    bool host = mx->kind == DNS_MX_ANSWER_HOST, implicit = mx->kind == DNS_MX_ANSWER_NODATA;
    const struct dns_mx_candidate *failed = NULL, *loopback = NULL;
    for (int i = n - 1; i >= 0; i--) {
        failed = cands[i].failed ? &cands[i] : failed;
        loopback = cands[i].loopback ? &cands[i] : loopback;
    }
    if (failed)
        result_set(out, DNS_MX_TEMPORARY, ttl, "Temporary DNS failure resolving %s%s: %s",
                   host || implicit ? "" : "the MX hosts of ", domain, failed->why);
    else if (loopback)
        result_set(out, DNS_MX_PERMANENT, ttl, "%s %s points to a loopback address",
                   host ? "Host" : "MX for", domain);
    else if (host)
        result_set(out, DNS_MX_PERMANENT, ttl, "Host %s has no address record", domain);
    else if (implicit)
        result_set(out, DNS_MX_PERMANENT, ttl, "Domain %s has no MX and no address record", domain);
    else
        result_set(out, DNS_MX_PERMANENT, ttl, "No address for the MX hosts of %s", domain);
}

/* The MX answer alone settles it: no host to look at. */
static bool answer_final(const char *domain, const struct dns_mx_list *mx,
                         struct dns_mx_result *out)
{
    int64_t ttl = mx->ttl_s;
    if (mx->kind == DNS_MX_ANSWER_NXDOMAIN)
        result_set(out, DNS_MX_PERMANENT, ttl, "Domain %s does not exist", domain);
    else if (mx->kind == DNS_MX_ANSWER_NULL)
        result_set(out, DNS_MX_PERMANENT, ttl, "Domain %s does not accept mail (null MX)", domain);
    else if (mx->kind == DNS_MX_ANSWER_BADNAME)
        result_set(out, DNS_MX_PERMANENT, ttl, "Domain %s is not a valid domain name", domain);
    else if (mx->kind == DNS_MX_ANSWER_TEMPORARY)
        result_set(out, DNS_MX_TEMPORARY, ttl, "Temporary DNS failure looking up MX of %s: %s",
                   domain, mx->why);
    else
        return false;
    return true;
}

void dns_mx_assemble(const char *domain, const struct dns_mx_list *mx,
                     const struct dns_mx_candidate *cands, int n, struct dns_mx_result *out)
{
    memset(out, 0, sizeof *out);
    if (answer_final(domain, mx, out))
        return;
    out->implicit = mx->kind == DNS_MX_ANSWER_NODATA;
    int64_t ttl = mx->ttl_s;
    for (int i = 0; i < n; i++)
        if (cands[i].ttl_s && (ttl == 0 || cands[i].ttl_s < ttl))
            ttl = cands[i].ttl_s;
    for (int i = 0; i < n && out->host_count < DNS_MX_HOSTS_MAX; i++)
        out->host_count += host_take(&out->hosts[out->host_count], &cands[i]);
    if (out->host_count > 0) {
        result_set(out, DNS_MX_OK, ttl, "%s", "");
        return;
    }
    memset(out->hosts, 0, sizeof out->hosts);
    hosts_none(domain, mx, cands, n, ttl, out);
}
