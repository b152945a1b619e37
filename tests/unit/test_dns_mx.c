/* MX resolution: the pure steps on hand-built answer packets, then the whole path against
 * a real DNS server (dnslib, started by this test on a free loopback port). */
#include "dns/dns_internal.h"
#include "unit.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- building answers ---- */

struct pkt {
    unsigned char b[4096];
    int len;
};

static void put8(struct pkt *p, int v)
{
    p->b[p->len++] = (unsigned char)v;
}

static void put16(struct pkt *p, int v)
{
    put8(p, v >> 8);
    put8(p, v);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, (int)(v >> 16));
    put16(p, (int)(v & 0xffff));
}

static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        int n = dot ? (int)(dot - name) : (int)strlen(name);
        put8(p, n);
        memcpy(p->b + p->len, name, (size_t)n);
        p->len += n;
        name += n + (dot ? 1 : 0);
    }
    put8(p, 0);
}

/* Header and question; rcode 0 is NOERROR. */
static void pkt_start(struct pkt *p, int rcode, const char *qname, int qtype, int an, int ns)
{
    p->len = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | rcode);
    put16(p, 1);
    put16(p, an);
    put16(p, ns);
    put16(p, 0);
    put_name(p, qname);
    put16(p, qtype);
    put16(p, ns_c_in);
}

/* RR header; returns where rdlength goes, for rr_end. */
static int rr_start(struct pkt *p, const char *name, int type, uint32_t ttl)
{
    put_name(p, name);
    put16(p, type);
    put16(p, ns_c_in);
    put32(p, ttl);
    put16(p, 0);
    return p->len;
}

static void rr_end(struct pkt *p, int start)
{
    int n = p->len - start;
    p->b[start - 2] = (unsigned char)(n >> 8);
    p->b[start - 1] = (unsigned char)n;
}

static void rr_mx(struct pkt *p, const char *name, uint32_t ttl, int pref, const char *exchange)
{
    int s = rr_start(p, name, ns_t_mx, ttl);
    put16(p, pref);
    put_name(p, exchange);
    rr_end(p, s);
}

static void rr_a(struct pkt *p, const char *name, uint32_t ttl, const char *ip)
{
    int s = rr_start(p, name, ns_t_a, ttl);
    inet_pton(AF_INET, ip, p->b + p->len);
    p->len += 4;
    rr_end(p, s);
}

static void rr_aaaa(struct pkt *p, const char *name, uint32_t ttl, const char *ip)
{
    int s = rr_start(p, name, ns_t_aaaa, ttl);
    inet_pton(AF_INET6, ip, p->b + p->len);
    p->len += 16;
    rr_end(p, s);
}

static void parse_mx(const struct pkt *p, uint32_t seed, struct dns_mx_list *out)
{
    dns_mx_answer_parse(ARES_SUCCESS, p->b, p->len, seed, out);
}

/* ---- pure checks ---- */

static void test_sorting(void)
{
    struct pkt p;
    pkt_start(&p, 0, "x.test", ns_t_mx, 4, 0);
    rr_mx(&p, "x.test", 300, 20, "b.x.test");
    rr_mx(&p, "x.test", 120, 10, "a1.x.test");
    rr_mx(&p, "x.test", 300, 10, "a2.x.test");
    rr_mx(&p, "x.test", 900, 5, "c.x.test");
    bool first_a1 = false, first_a2 = false;
    for (uint32_t seed = 0; seed < 64; seed++) {
        struct dns_mx_list l;
        parse_mx(&p, seed, &l);
        CHECK(l.kind == DNS_MX_ANSWER_HOSTS && l.count == 4);
        CHECK_STR(l.names[0].name, "c.x.test");
        CHECK(l.names[0].preference == 5 && l.names[1].preference == 10);
        CHECK_STR(l.names[3].name, "b.x.test");
        CHECK(l.ttl_s == 120);
        first_a1 |= !strcmp(l.names[1].name, "a1.x.test");
        first_a2 |= !strcmp(l.names[1].name, "a2.x.test");
    }
    CHECK(first_a1 && first_a2); /* equal preferences come in both orders */
}

static void test_many_and_repeated(void)
{
    struct pkt p;
    pkt_start(&p, 0, "x.test", ns_t_mx, 40, 0);
    char name[32];
    for (int i = 0; i < 38; i++) {
        snprintf(name, sizeof name, "mx%d.x.test", i);
        rr_mx(&p, "x.test", 300, 100 - i, name); /* the last ones are the best */
    }
    rr_mx(&p, "x.test", 300, 1, "MX37.x.test"); /* the same exchange, better preference */
    rr_mx(&p, "x.test", 300, 200, "mx30.x.test");
    struct dns_mx_list l;
    parse_mx(&p, 7, &l);
    CHECK(l.count == DNS_MX_HOSTS_MAX);
    CHECK_STR(l.names[0].name, "MX37.x.test");
    CHECK(l.names[0].preference == 1);
    CHECK_STR(l.names[1].name, "mx36.x.test");
    CHECK(l.names[DNS_MX_HOSTS_MAX - 1].preference == 100 - 22);
    for (int i = 1; i < l.count; i++)
        CHECK(strcasecmp(l.names[i].name, "mx37.x.test") != 0);
}

static void test_null_mx(void)
{
    struct pkt p;
    struct dns_mx_list l;
    struct dns_mx_result res;
    pkt_start(&p, 0, "null.test", ns_t_mx, 1, 0);
    rr_mx(&p, "null.test", 300, 0, "");
    parse_mx(&p, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_NULL);
    dns_mx_assemble("null.test", &l, NULL, 0, &res);
    CHECK(res.status == DNS_MX_PERMANENT && res.host_count == 0);
    CHECK_STR(res.error, "Domain null.test does not accept mail (null MX)");
    CHECK(res.ttl_s == 300);

    /* Among real ones, the null MX is ignored. */
    pkt_start(&p, 0, "mixed.test", ns_t_mx, 2, 0);
    rr_mx(&p, "mixed.test", 300, 0, "");
    rr_mx(&p, "mixed.test", 300, 10, "mx.mixed.test");
    parse_mx(&p, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_HOSTS && l.count == 1);
    CHECK_STR(l.names[0].name, "mx.mixed.test");
}

static void test_statuses_and_garbage(void)
{
    struct dns_mx_list l;
    struct dns_mx_result res;
    dns_mx_answer_parse(ARES_ENOTFOUND, NULL, 0, 1, &l);
    dns_mx_assemble("nx.test", &l, NULL, 0, &res);
    CHECK(res.status == DNS_MX_PERMANENT);
    CHECK_STR(res.error, "Domain nx.test does not exist");
    dns_mx_answer_parse(ARES_ENODATA, NULL, 0, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_NODATA);
    dns_mx_answer_parse(ARES_ESERVFAIL, NULL, 0, 1, &l);
    dns_mx_assemble("fail.test", &l, NULL, 0, &res);
    CHECK(res.status == DNS_MX_TEMPORARY && strstr(res.error, "SERVFAIL") && res.ttl_s == 1);
    dns_mx_answer_parse(ARES_ETIMEOUT, NULL, 0, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_TEMPORARY && strstr(l.why, "timed out"));

    /* Garbage, a truncated answer and an empty one cannot be read: temporary. */
    unsigned char junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    dns_mx_answer_parse(ARES_SUCCESS, junk, sizeof junk, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_TEMPORARY);
    struct pkt p;
    pkt_start(&p, 0, "x.test", ns_t_mx, 2, 0);
    rr_mx(&p, "x.test", 300, 10, "mx1.x.test");
    rr_mx(&p, "x.test", 300, 20, "mx2.x.test");
    dns_mx_answer_parse(ARES_SUCCESS, p.b, p.len - 5, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_TEMPORARY);
    dns_mx_answer_parse(ARES_SUCCESS, NULL, 0, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_TEMPORARY);

    /* NOERROR with only a CNAME and no MX: no MX, so the implicit one. */
    pkt_start(&p, 0, "alias.test", ns_t_mx, 1, 0);
    int s = rr_start(&p, "alias.test", ns_t_cname, 300);
    put_name(&p, "real.test");
    rr_end(&p, s);
    dns_mx_answer_parse(ARES_SUCCESS, p.b, p.len, 1, &l);
    CHECK(l.kind == DNS_MX_ANSWER_NODATA);
}

static void test_addresses(void)
{
    struct pkt p;
    struct dns_mx_candidate c = {.name = "mx.x.test"};
    pkt_start(&p, 0, "mx.x.test", ns_t_a, 3, 0);
    rr_a(&p, "mx.x.test", 50, "127.0.0.1");
    rr_a(&p, "mx.x.test", 90, "192.0.2.1");
    rr_a(&p, "mx.x.test", 90, "0.1.2.3");
    dns_mx_addr_answer(ARES_SUCCESS, p.b, p.len, AF_INET, false, &c);
    CHECK(c.count[0] == 1 && c.loopback && !c.failed && c.ttl_s == 50);
    pkt_start(&p, 0, "mx.x.test", ns_t_aaaa, 4, 0);
    rr_aaaa(&p, "mx.x.test", 30, "::1");
    rr_aaaa(&p, "mx.x.test", 30, "::ffff:127.0.0.5");
    rr_aaaa(&p, "mx.x.test", 30, "::");
    rr_aaaa(&p, "mx.x.test", 30, "2001:db8::25");
    dns_mx_addr_answer(ARES_SUCCESS, p.b, p.len, AF_INET6, false, &c);
    CHECK(c.count[1] == 1 && c.ttl_s == 30);

    struct dns_mx_list l = {.kind = DNS_MX_ANSWER_HOSTS, .count = 1, .ttl_s = 7200};
    struct dns_mx_result res;
    dns_mx_assemble("x.test", &l, &c, 1, &res);
    CHECK(res.status == DNS_MX_OK && res.host_count == 1 && res.hosts[0].addr_count == 2);
    CHECK(res.hosts[0].addrs[0].family == AF_INET && res.hosts[0].addrs[1].family == AF_INET6);
    CHECK(res.ttl_s == 30);

    /* Loopback allowed: all of them. */
    struct dns_mx_candidate all = {.name = "mx.x.test"};
    dns_mx_addr_answer(ARES_SUCCESS, p.b, p.len, AF_INET6, true, &all);
    CHECK(all.count[1] == 4 && !all.loopback);

    /* Only loopback: refused, permanently. */
    struct dns_mx_candidate lo = {.name = "lo.x.test"};
    pkt_start(&p, 0, "lo.x.test", ns_t_a, 1, 0);
    rr_a(&p, "lo.x.test", 86400, "127.0.0.1");
    dns_mx_addr_answer(ARES_SUCCESS, p.b, p.len, AF_INET, false, &lo);
    l.ttl_s = 0;
    dns_mx_assemble("x.test", &l, &lo, 1, &res);
    CHECK(res.status == DNS_MX_PERMANENT && res.host_count == 0);
    CHECK_STR(res.error, "MX for x.test points to a loopback address");
    CHECK(res.ttl_s == DNS_MX_TTL_MAX);

    /* Literals. */
    struct dns_mx_candidate lit = {0};
    CHECK(dns_mx_addr_literal("[IPv6:2001:db8::1]", false, &lit) && lit.count[1] == 1);
    CHECK(dns_mx_addr_literal("192.0.2.9", false, &lit) && lit.count[0] == 1);
    CHECK(dns_mx_addr_literal("127.0.0.1", false, &lit) && lit.loopback && lit.count[0] == 1);
    CHECK(!dns_mx_addr_literal("mx.example", false, &lit));
}

static void test_assemble_failures(void)
{
    struct dns_mx_list l = {.kind = DNS_MX_ANSWER_HOSTS, .count = 3, .ttl_s = 300};
    struct dns_mx_candidate c[3] = {{.name = "a", .preference = 10},
                                    {.name = "b", .preference = 20},
                                    {.name = "c", .preference = 30}};
    struct dns_mx_result res;
    dns_mx_assemble("x.test", &l, c, 3, &res);
    CHECK(res.status == DNS_MX_PERMANENT);
    CHECK_STR(res.error, "No address for the MX hosts of x.test");
    dns_mx_addr_answer(ARES_ETIMEOUT, NULL, 0, AF_INET, false, &c[1]);
    c[2].loopback = true;
    dns_mx_assemble("x.test", &l, c, 3, &res);
    CHECK(res.status == DNS_MX_TEMPORARY && strstr(res.error, "timed out"));
    /* A usable host wins over the others' failures, and keeps its preference. */
    c[2].count[0] = 1;
    c[2].addrs[0][0] = (struct dns_mx_addr){.family = AF_INET, .addr = {192, 0, 2, 1}};
    dns_mx_assemble("x.test", &l, c, 3, &res);
    CHECK(res.status == DNS_MX_OK && res.host_count == 1 && res.hosts[0].preference == 30);

    struct dns_mx_list nodata = {.kind = DNS_MX_ANSWER_NODATA};
    struct dns_mx_candidate self = {.name = "x.test"};
    dns_mx_assemble("x.test", &nodata, &self, 1, &res);
    CHECK(res.status == DNS_MX_PERMANENT && res.implicit);
    CHECK_STR(res.error, "Domain x.test has no MX and no address record");
}

/* ---- against a real server ---- */

static const char server_py[] =
    "from dnslib import RR, QTYPE, RCODE, MX, A\n"
    "from dnslib.dns import DNSError\n"
    "from dnslib.server import BaseResolver\n"
    "def mx(n, p, x, ttl=300): return RR(n, QTYPE.MX, rdata=MX(x, p), ttl=ttl)\n"
    "def a(n, ip, ttl=300): return RR(n, QTYPE.A, rdata=A(ip), ttl=ttl)\n"
    "Z = {('a.test', 'MX'): [mx('a.test', 20, 'mx2.a.test'), mx('a.test', 10, 'mx1.a.test')],\n"
    "     ('mx1.a.test', 'A'): [a('mx1.a.test', '127.0.0.1', 60)],\n"
    "     ('mx2.a.test', 'A'): [a('mx2.a.test', '127.0.0.2', 600)],\n"
    "     ('nomx.test', 'A'): [a('nomx.test', '127.0.0.3')],\n"
    "     ('null.test', 'MX'): [mx('null.test', 0, '.')],\n"
    "     ('big.test', 'MX'): [mx('big.test', 10 + i, 'mx%d.big.test' % i) for i in range(30)]}\n"
    "for i in range(30): Z[('mx%d.big.test' % i, 'A')] = [a('mx%d.big.test' % i, '127.0.1.%d' "
    "% i)]\n"
    "NAMES = {n for n, t in Z}\n"
    "class R(BaseResolver):\n"
    "    def resolve(self, request, handler):\n"
    "        reply = request.reply()\n"
    "        name = str(request.q.qname).rstrip('.').lower()\n"
    "        if name.endswith('drop.test'): raise DNSError('dropped')\n"
    "        if name == 'fail.test': reply.header.rcode = RCODE.SERVFAIL\n"
    "        elif name not in NAMES: reply.header.rcode = RCODE.NXDOMAIN\n"
    "        reply.add_answer(*Z.get((name, QTYPE[request.q.qtype]), []))\n"
    "        return reply\n"
    "from dns_server import serve\n"
    "serve(R())\n";

struct answer {
    int calls;
    struct dns_mx_result res;
};

static void on_result(const struct dns_mx_result *res, void *ctx)
{
    struct answer *a = ctx;
    a->calls++;
    a->res = *res;
}

static void never_called(const struct dns_mx_result *res, void *ctx)
{
    (void)res;
    (*(int *)ctx)++;
}

static void never_txt(enum dns_result result, const char *const *texts, int count, void *ctx)
{
    (void)result, (void)texts, (void)count;
    (*(int *)ctx)++;
}

enum {
    Q_A,
    Q_A_NOLOOP,
    Q_NX,
    Q_NOMX,
    Q_NULL,
    Q_FAIL,
    Q_BIG,
    Q_DROP,
    Q_EMPTY_LABEL,
    Q_LONG,
    H_NAME,
    H_LIT,
    H_NX,
    H_LOOP,
    Q_N
};

static void run_live(struct event_base *base, struct dns_resolver *r, struct answer *ans)
{
    dns_resolve_mx(r, "a.test", true, on_result, &ans[Q_A]);
    dns_resolve_mx(r, "a.test", false, on_result, &ans[Q_A_NOLOOP]);
    dns_resolve_mx(r, "nx.test", true, on_result, &ans[Q_NX]);
    dns_resolve_mx(r, "nomx.test", true, on_result, &ans[Q_NOMX]);
    dns_resolve_mx(r, "null.test", true, on_result, &ans[Q_NULL]);
    dns_resolve_mx(r, "fail.test", true, on_result, &ans[Q_FAIL]);
    dns_resolve_mx(r, "big.test", true, on_result, &ans[Q_BIG]);
    dns_resolve_mx(r, "drop.test", true, on_result, &ans[Q_DROP]);
    dns_resolve_host(r, "mx2.a.test", true, on_result, &ans[H_NAME]);
    dns_resolve_host(r, "[192.0.2.7]", false, on_result, &ans[H_LIT]);
    dns_resolve_host(r, "nx.test", true, on_result, &ans[H_NX]);
    dns_resolve_host(r, "[IPv6:::1]", false, on_result, &ans[H_LOOP]);
    /* c-ares refuses these from inside ares_query: still called back later. */
    dns_resolve_mx(r, "a..test", true, on_result, &ans[Q_EMPTY_LABEL]);
    char long_name[400];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    dns_resolve_mx(r, long_name, true, on_result, &ans[Q_LONG]);
    int before = 0;
    for (int i = 0; i < Q_N; i++)
        before += ans[i].calls;
    CHECK(before == 0); /* never from inside the call */
    time_t deadline = time(NULL) + 8;
    for (bool done = false; !done && time(NULL) < deadline;) {
        event_base_loop(base, EVLOOP_ONCE);
        done = true;
        for (int i = 0; i < Q_N; i++)
            done &= ans[i].calls > 0;
    }
}

static void check_live(const struct answer *ans)
{
    for (int i = 0; i < Q_N; i++)
        CHECK(ans[i].calls == 1);
    const struct dns_mx_result *a = &ans[Q_A].res;
    CHECK(a->status == DNS_MX_OK && a->host_count == 2 && !a->implicit);
    CHECK_STR(a->hosts[0].name, "mx1.a.test");
    CHECK(a->hosts[0].preference == 10 && a->hosts[0].addr_count == 1);
    CHECK(a->hosts[0].addrs[0].addr[0] == 127 && a->hosts[0].addrs[0].addr[3] == 1);
    CHECK_STR(a->hosts[1].name, "mx2.a.test");
    CHECK(a->hosts[1].addrs[0].addr[3] == 2);
    CHECK(a->ttl_s == 60);
    CHECK(ans[Q_A_NOLOOP].res.status == DNS_MX_PERMANENT);
    CHECK_STR(ans[Q_A_NOLOOP].res.error, "MX for a.test points to a loopback address");
    CHECK(ans[Q_NX].res.status == DNS_MX_PERMANENT);
    CHECK_STR(ans[Q_NX].res.error, "Domain nx.test does not exist");
    const struct dns_mx_result *n = &ans[Q_NOMX].res;
    CHECK(n->status == DNS_MX_OK && n->implicit && n->host_count == 1);
    CHECK_STR(n->hosts[0].name, "nomx.test");
    CHECK(n->hosts[0].preference == 0 && n->hosts[0].addrs[0].addr[3] == 3);
    CHECK_STR(ans[Q_NULL].res.error, "Domain null.test does not accept mail (null MX)");
    CHECK(ans[Q_FAIL].res.status == DNS_MX_TEMPORARY && strstr(ans[Q_FAIL].res.error, "SERVFAIL"));
    /* 30 MX records do not fit in 512 bytes: c-ares asked again over TCP. */
    const struct dns_mx_result *b = &ans[Q_BIG].res;
    CHECK(b->status == DNS_MX_OK && b->host_count == DNS_MX_HOSTS_MAX);
    CHECK_STR(b->hosts[0].name, "mx0.big.test");
    CHECK(ans[Q_DROP].res.status == DNS_MX_TEMPORARY && strstr(ans[Q_DROP].res.error, "timed out"));
    CHECK(ans[H_NAME].res.status == DNS_MX_OK && ans[H_NAME].res.hosts[0].addrs[0].addr[3] == 2);
    CHECK(ans[H_LIT].res.status == DNS_MX_OK && ans[H_LIT].res.hosts[0].addrs[0].addr[3] == 7);
    CHECK(ans[H_NX].res.status == DNS_MX_PERMANENT);
    CHECK_STR(ans[H_NX].res.error, "Host nx.test has no address record");
    CHECK_STR(ans[H_LOOP].res.error, "Host [IPv6:::1] points to a loopback address");
    CHECK_STR(ans[Q_EMPTY_LABEL].res.error, "Domain a..test is not a valid domain name");
    CHECK(ans[Q_LONG].res.status == DNS_MX_PERMANENT);
    for (int i = 0; unit_failed && i < Q_N; i++) /* what the server said, to debug */
        fprintf(stderr, "query %d: status %d, %d hosts, '%s'\n", i, ans[i].res.status,
                ans[i].res.host_count, ans[i].res.error);
}

/* Freed with questions in the air and an answer waiting for the base: no call, no leak. */
static void test_free_pending(struct event_base *base, const struct sesame_config *cfg)
{
    int calls = 0;
    struct dns_resolver *r = dns_resolver_new(base, cfg);
    dns_resolve_mx(r, "drop.test", true, never_called, &calls);
    dns_resolve_mx(r, "a.test", true, never_called, &calls);
    dns_resolve_host(r, "192.0.2.1", true, never_called, &calls);
    dns_resolve_txt(r, "a.test", never_txt, &calls);
    dns_resolver_free(r);
    struct timeval tv = {0, 200000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    CHECK(calls == 0);
}

/* The verifier freed while its TXT lookups are in the air: its checks are freed (ASan). */
static void test_verifier_free(struct event_base *base, const struct sesame_config *dns_cfg)
{
    char dir[] = "/tmp/test_dns_mx.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct sesame_config cfg = *dns_cfg;
    snprintf(cfg.store_path, sizeof cfg.store_path, "%s/test.db", dir);
    cfg.verify_poll_interval_s = 1;
    struct store *st = NULL;
    char err[256];
    CHECK(store_open(&cfg, &st, err, sizeof err) == STORE_OK);
    if (!st)
        return;
    struct store_conn *c = store_conn_open(st);
    struct store_identity id = {.account_id = "000000000001",
                                .region = "us-east-1",
                                .identity = "drop.test",
                                .kind = IDENTITY_DOMAIN,
                                .status = "Pending",
                                .token = "t",
                                .created_ms = 1};
    CHECK(store_identity_put(c, &id) == STORE_OK);
    store_conn_close(c);
    struct dns_verifier *v = dns_verifier_start(base, &cfg, st, NULL);
    CHECK(v != NULL);
    struct timeval tv = {1, 500000}; /* past the first tick: its lookups never get answers */
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    dns_verifier_free(v);
    store_close(st);
    char path[300];
    const char *files[] = {"test.db", "test.db-wal", "test.db-shm", "test.db.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

static void test_live(void)
{
    struct unit_server s;
    bool up = unit_server_start(&s, server_py, NULL);
    CHECK(up);
    if (!up)
        return;
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.dns_resolver, sizeof cfg.dns_resolver, "127.0.0.1:%d", s.port);
    cfg.dns_timeout_ms = 300;
    struct event_base *base = event_base_new();
    struct dns_resolver *r = dns_resolver_new(base, &cfg);
    struct answer ans[Q_N] = {0};
    run_live(base, r, ans);
    check_live(ans);
    dns_resolver_free(r);
    test_free_pending(base, &cfg);
    test_verifier_free(base, &cfg);
    event_base_free(base);
    unit_server_stop(&s);
}

int main(void)
{
    test_sorting();
    test_many_and_repeated();
    test_null_mx();
    test_statuses_and_garbage();
    test_addresses();
    test_assemble_failures();
    test_live();
    return UNIT_END();
}
