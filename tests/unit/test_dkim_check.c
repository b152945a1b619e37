/* Easy DKIM status through DNS (DECISIONS 27): the state machine, the reading of key
 * records and CNAME answers, then whole checks against a real DNS server (dnslib, started
 * by this test on a free loopback port) through the domain verifier's tick. */
#include "dns/dns.h"
#include "mail/mail.h"
#include "unit.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define H (3600 * 1000LL)
#define DAY (24 * H)

/* ---- the state machine ---- */

static struct store_dkim *pending(struct store_dkim *d, int64_t created)
{
    memset(d, 0, sizeof *d);
    core_strlcpy(d->status, "Pending", sizeof d->status);
    d->created_ms = created;
    return d;
}

static void test_next(void)
{
    int64_t fail = 72 * H, revoke = 5 * DAY;
    struct store_dkim *d = malloc(sizeof *d);
    pending(d, 0);

    CHECK(!dns_dkim_next(d, false, false, 1 * H, fail, revoke));
    CHECK_STR(d->status, "Pending");
    CHECK(d->checked_ms == 1 * H && d->status_ms == 0);
    CHECK(dns_dkim_next(d, false, true, 2 * H, fail, revoke));
    CHECK_STR(d->status, "TemporaryFailure");
    CHECK(d->status_ms == 2 * H);
    CHECK(!dns_dkim_next(d, false, true, 3 * H, fail, revoke)); /* still failing */
    CHECK(dns_dkim_next(d, false, false, 4 * H, fail, revoke)); /* answered: not there */
    CHECK_STR(d->status, "Pending");
    CHECK(dns_dkim_next(d, false, true, 5 * H, fail, revoke));
    CHECK(dns_dkim_next(d, true, false, 6 * H, fail, revoke)); /* TemporaryFailure -> */
    CHECK_STR(d->status, "Success");
    CHECK(d->status_ms == 6 * H && d->missing_since_ms == 0);
    CHECK(!dns_dkim_next(d, true, false, 7 * H, fail, revoke)); /* stays while found */
    CHECK(d->checked_ms == 7 * H && d->status_ms == 6 * H);

    /* A Success set: a failed lookup changes nothing; missing records start the clock, and
     * records restored before the window stop it. */
    CHECK(!dns_dkim_next(d, false, true, 8 * H, fail, revoke));
    CHECK(d->missing_since_ms == 0);
    CHECK(!dns_dkim_next(d, false, false, 9 * H, fail, revoke));
    CHECK(d->missing_since_ms == 9 * H);
    CHECK(!dns_dkim_next(d, false, false, 10 * H, fail, revoke));
    CHECK(d->missing_since_ms == 9 * H); /* the first sighting counts */
    CHECK(!dns_dkim_next(d, false, true, 9 * H + revoke, fail, revoke)); /* not a verdict */
    CHECK_STR(d->status, "Success");
    CHECK(!dns_dkim_next(d, true, false, 9 * H + revoke + 1, fail, revoke));
    CHECK(d->missing_since_ms == 0);
    CHECK_STR(d->status, "Success");

    /* Missing for the whole window: revoked. */
    int64_t t = 20 * DAY;
    CHECK(!dns_dkim_next(d, false, false, t, fail, revoke));
    CHECK(!dns_dkim_next(d, false, false, t + revoke - 1, fail, revoke));
    CHECK_STR(d->status, "Success");
    CHECK(dns_dkim_next(d, false, false, t + revoke, fail, revoke));
    CHECK_STR(d->status, "Failed");
    CHECK(d->status_ms == t + revoke);

    /* Never found: Failed once the window since creation has passed, failing or not. */
    pending(d, 1 * H);
    CHECK(!dns_dkim_next(d, false, false, 1 * H + fail - 1, fail, revoke));
    CHECK(dns_dkim_next(d, false, false, 1 * H + fail, fail, revoke));
    CHECK_STR(d->status, "Failed");
    pending(d, 0);
    CHECK(dns_dkim_next(d, false, true, fail + 1, fail, revoke));
    CHECK_STR(d->status, "Failed");
    pending(d, 0); /* found at the last moment still counts */
    CHECK(dns_dkim_next(d, true, false, fail + 1, fail, revoke));
    CHECK_STR(d->status, "Success");
    free(d);
}

/* ---- key records ---- */

static void test_txt_matches(void)
{
    const char *k = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQAB";
    CHECK(dns_dkim_txt_matches("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/"
                               "def+ghiQIDAQAB",
                               k));
    CHECK(dns_dkim_txt_matches("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQAB", k));
    /* Joined strings with whitespace inside p=, other tags and order, a final ';'. */
    CHECK(dns_dkim_txt_matches("v=DKIM1;p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCB iQKBgQC+abc/def+"
                               "ghi\tQIDAQAB ;k=rsa; t=s;",
                               k));
    CHECK(dns_dkim_txt_matches(" k = rsa ; h=sha256; p = MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+"
                               "abc/def+ghiQIDAQAB\r\n ; n=notes",
                               k));
    const char *ed = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    CHECK(dns_dkim_txt_matches("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
                               ed));
    CHECK(!dns_dkim_txt_matches(
        "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", k));
    /* Another key, a prefix of it, or none. */
    CHECK(
        !dns_dkim_txt_matches("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc", k));
    CHECK(!dns_dkim_txt_matches("v=DKIM1; k=rsa; p=", k));
    CHECK(!dns_dkim_txt_matches("v=DKIM1; k=rsa", k));
    CHECK(!dns_dkim_txt_matches("", k));
    CHECK(!dns_dkim_txt_matches("p=", ""));
    /* Not a DKIM1 key record, or not a tag list. */
    CHECK(!dns_dkim_txt_matches("v=DKIM2; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQI"
                                "DAQAB",
                                k));
    CHECK(!dns_dkim_txt_matches("k=rsa; v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/"
                                "def+ghiQIDAQAB",
                                k));
    CHECK(!dns_dkim_txt_matches("p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQAB; "
                                "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQAB",
                                k));
    CHECK(!dns_dkim_txt_matches("v=spf1 -all", k));
    CHECK(!dns_dkim_txt_matches("hello; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQ"
                                "AB",
                                k));
    CHECK(!dns_dkim_txt_matches("1x=y; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQ"
                                "AB",
                                k));
    CHECK(!dns_dkim_txt_matches("P=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC+abc/def+ghiQIDAQAB", k));
    CHECK(!dns_dkim_txt_matches(NULL, k));
}

/* ---- CNAME answers ---- */

struct pkt {
    unsigned char b[1024];
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

static void pkt_start(struct pkt *p, const char *qname, int an)
{
    p->len = 0;
    put16(p, 0x1234);
    put16(p, 0x8180);
    put16(p, 1);
    put16(p, an);
    put16(p, 0);
    put16(p, 0);
    put_name(p, qname);
    put16(p, ns_t_cname);
    put16(p, ns_c_in);
}

static void rr_name(struct pkt *p, const char *owner, int type, const char *target)
{
    put_name(p, owner);
    put16(p, type);
    put16(p, ns_c_in);
    put16(p, 0);
    put16(p, 300);
    int at = p->len;
    put16(p, 0);
    put_name(p, target);
    int n = p->len - at - 2;
    p->b[at] = (unsigned char)(n >> 8);
    p->b[at + 1] = (unsigned char)n;
}

static void test_cname_parse(void)
{
    struct pkt p;
    char t[256];
    pkt_start(&p, "s1._domainkey.Example.com", 1);
    rr_name(&p, "S1._DOMAINKEY.example.com", ns_t_cname, "S1.Dkim.Sesame.Test");
    CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, p.len, t, sizeof t) == DNS_FOUND);
    CHECK_STR(t, "s1.dkim.sesame.test");
    /* Another owner's CNAME first (a chain), then the one asked about. */
    pkt_start(&p, "a.test", 2);
    rr_name(&p, "b.test", ns_t_cname, "c.test");
    rr_name(&p, "a.test", ns_t_cname, "b.test");
    CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, p.len, t, sizeof t) == DNS_FOUND);
    CHECK_STR(t, "b.test");
    /* Other records only: no CNAME. */
    pkt_start(&p, "a.test", 1);
    rr_name(&p, "a.test", ns_t_ns, "ns.test");
    CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, p.len, t, sizeof t) == DNS_NOT_FOUND);
    CHECK_STR(t, "");
    /* A target too long for the caller's buffer cannot be the one it wants. */
    pkt_start(&p, "a.test", 1);
    rr_name(&p, "a.test", ns_t_cname, "a-rather-long-name.test");
    CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, p.len, t, 8) == DNS_NOT_FOUND);
    /* Statuses c-ares gives. */
    CHECK(dns_cname_answer_parse(ARES_ENOTFOUND, NULL, 0, t, sizeof t) == DNS_NOT_FOUND);
    CHECK(dns_cname_answer_parse(ARES_ENODATA, NULL, 0, t, sizeof t) == DNS_NOT_FOUND);
    CHECK(dns_cname_answer_parse(ARES_ETIMEOUT, NULL, 0, t, sizeof t) == DNS_FAILED);
    CHECK(dns_cname_answer_parse(ARES_ECONNREFUSED, NULL, 0, t, sizeof t) == DNS_FAILED);
    /* Unreadable: cut short anywhere, or a record claiming more than there is. */
    pkt_start(&p, "a.test", 1);
    rr_name(&p, "a.test", ns_t_cname, "b.test");
    for (int cut = 0; cut < p.len; cut++)
        CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, cut, t, sizeof t) == DNS_FAILED);
    p.b[p.len - 9] = 40; /* rdlength */
    CHECK(dns_cname_answer_parse(ARES_SUCCESS, p.b, p.len, t, sizeof t) == DNS_FAILED);
}

/* ---- against a real server ---- */

/* Records come as JSON [name, type, value] on argv; a name's CNAME is followed for other
 * types, as a recursive resolver does. Names with "drop" get no answer, TXT questions
 * about names with "servfail" get SERVFAIL (spec 20 §2.7). */
static const char server_py[] =
    "import json, sys\n"
    "from dnslib import RR, QTYPE, RCODE, CNAME, TXT\n"
    "from dnslib.dns import DNSError\n"
    "from dnslib.server import BaseResolver\n"
    "Z = {}\n"
    "for n, t, v in json.loads(sys.argv[1]): Z.setdefault((n.lower(), t), []).append(v)\n"
    "NAMES = {n for n, t in Z}\n"
    "def rr(n, t, v):\n"
    "    if t == 'CNAME': return RR(n, QTYPE.CNAME, rdata=CNAME(v), ttl=60)\n"
    "    return RR(n, QTYPE.TXT, rdata=TXT([v[i:i + 100] for i in range(0, len(v), 100)]))\n"
    "class R(BaseResolver):\n"
    "    def resolve(self, request, handler):\n"
    "        reply = request.reply()\n"
    "        name = str(request.q.qname).rstrip('.').lower(); qt = QTYPE[request.q.qtype]\n"
    "        if 'drop' in name: raise DNSError('dropped')\n"
    "        if 'servfail' in name and qt == 'TXT':\n"
    "            reply.header.rcode = RCODE.SERVFAIL; return reply\n"
    "        for hop in range(8):\n"
    "            if (name, qt) in Z:\n"
    "                reply.add_answer(*[rr(name, qt, v) for v in Z[(name, qt)]]); return reply\n"
    "            if (name, 'CNAME') not in Z: break\n"
    "            target = Z[(name, 'CNAME')][0]; reply.add_answer(rr(name, 'CNAME', target))\n"
    "            name = target.rstrip('.').lower()\n"
    "        if name not in NAMES: reply.header.rcode = RCODE.NXDOMAIN\n"
    "        return reply\n"
    "from dns_server import serve\n"
    "serve(R())\n";

/* The keys of the test sets: two RSA and one Ed25519, and one published by mistake. */
#define KEYS 4
struct keys {
    struct buf pem[KEYS], pub[KEYS];
};

static bool keys_make(struct keys *k)
{
    static const int bits[KEYS] = {1024, 0, 1024, 1024};
    bool ok = true;
    for (int i = 0; i < KEYS; i++) {
        buf_init(&k->pem[i]);
        buf_init(&k->pub[i]);
        ok &= mail_dkim_keygen(bits[i], &k->pem[i], &k->pub[i]) == 0;
    }
    return ok;
}

static void keys_free(struct keys *k)
{
    for (int i = 0; i < KEYS; i++) {
        buf_free(&k->pem[i]);
        buf_free(&k->pub[i]);
    }
}

/* The selector of token i of a test domain: "t<i>-<first label>". */
static void token_of(char *out, size_t outlen, int i, const char *domain)
{
    snprintf(out, outlen, "t%d-%.*s", i, (int)strcspn(domain, "."), domain);
}

/* What a domain publishes: each token's CNAME (to T.zones[i], spelt in capitals), and at
 * that target the key record of key txt_key[i]. */
static void publish(struct buf *json, struct keys *k, const char *domain, const char *zones[3],
                    const int txt_key[3])
{
    for (int i = 0; i < 3; i++) {
        char t[64];
        token_of(t, sizeof t, i, domain);
        const char *alg = txt_key[i] == 1 ? "ed25519" : "rsa";
        buf_printf(json, "%s[\"%s._domainkey.%s\", \"CNAME\", \"T%s.%s.\"]",
                   json->len > 1 ? "," : "", t, domain, t + 1, zones[i]);
        buf_printf(json, ",[\"%s.%s\", \"TXT\", \"v=DKIM1; k=%s; p=%s\"]", t, zones[i], alg,
                   buf_cstr(&k->pub[txt_key[i]]));
    }
}

static void set_make(struct store_dkim *d, struct keys *k, const char *domain, const char *status,
                     int64_t created_ms)
{
    memset(d, 0, sizeof *d);
    core_strlcpy(d->account_id, "000000000001", sizeof d->account_id);
    core_strlcpy(d->region, "us-east-1", sizeof d->region);
    core_strlcpy(d->domain, domain, sizeof d->domain);
    for (int i = 0; i < 3; i++) {
        token_of(d->tokens[i], sizeof d->tokens[i], i, domain);
        core_strlcpy(d->keys[i], buf_cstr(&k->pem[i]), sizeof d->keys[i]);
    }
    core_strlcpy(d->status, status, sizeof d->status);
    d->created_ms = created_ms;
    d->status_ms = created_ms;
}

struct cname_answer {
    int calls;
    enum dns_result result;
    char target[256];
};

static void on_cname(enum dns_result result, const char *target, void *ctx)
{
    struct cname_answer *a = ctx;
    a->calls++;
    a->result = result;
    core_strlcpy(a->target, target ? target : "(null)", sizeof a->target);
}

/* dns_resolve_cname itself: found (lower-cased, no dot), missing, failing, freed. */
static void test_cname_live(struct event_base *base, const struct sesame_config *cfg)
{
    static const char *names[] = {"t0-good._domainkey.good.test", "nx.test",
                                  "t0-good.dkim.sesame.test", "drop.test", "a..test"};
    enum { N = 5 };
    struct cname_answer ans[N] = {0};
    struct dns_resolver *r = dns_resolver_new(base, cfg);
    for (int i = 0; i < N; i++)
        dns_resolve_cname(r, names[i], on_cname, &ans[i]);
    time_t deadline = time(NULL) + 8;
    for (bool done = false; !done && time(NULL) < deadline;) {
        event_base_loop(base, EVLOOP_ONCE);
        done = true;
        for (int i = 0; i < N; i++)
            done &= ans[i].calls > 0;
    }
    for (int i = 0; i < N; i++)
        CHECK(ans[i].calls == 1);
    CHECK(ans[0].result == DNS_FOUND);
    CHECK_STR(ans[0].target, "t0-good.dkim.sesame.test");
    CHECK(ans[1].result == DNS_NOT_FOUND);
    CHECK(ans[2].result == DNS_NOT_FOUND); /* the name exists, with TXT only */
    CHECK(ans[3].result == DNS_FAILED);
    CHECK(ans[4].result != DNS_FOUND);
    /* Freed with questions in the air: never called. */
    struct cname_answer never = {0};
    dns_resolve_cname(r, "drop.test", on_cname, &never);
    dns_resolve_cname(r, "t0-good._domainkey.good.test", on_cname, &never);
    dns_resolver_free(r);
    struct timeval tv = {0, 200000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    CHECK(never.calls == 0);
}

struct expect {
    const char *domain;
    const char *status;
};

/* The sets the checker is given, and where they must end. */
static const struct expect expected[] = {
    {"good.test", "Success"},              /* all three right, one key Ed25519 */
    {"wrong.test", "Pending"},             /* one CNAME to another zone (its TXT is right) */
    {"otherkey.test", "Pending"},          /* one key record with another key */
    {"servfail.test", "TemporaryFailure"}, /* CNAMEs there, TXT answers SERVFAIL (§2.7) */
    {"gone.test", "Failed"},               /* Success, records missing too long: revoked */
    {"old.test", "Failed"},                /* never found within the window */
    {"drop.test", "TemporaryFailure"},     /* no answer at all */
    {"drop-replaced.test", "Pending"},     /* tokens replaced while checked: untouched */
};
#define SETS ((int)(sizeof expected / sizeof expected[0]))
static int64_t replaced_checked_ms; /* the replacement: not due, so never written over */

static void publish_all(struct buf *json, struct keys *k)
{
    static const int right[3] = {0, 1, 2}, other[3] = {0, 3, 2};
    const char *ours[3] = {"dkim.sesame.test", "dkim.sesame.test", "dkim.sesame.test"};
    const char *caps[3] = {"DKIM.Sesame.Test", "dkim.sesame.test", "dkim.SESAME.test"};
    const char *away[3] = {"dkim.sesame.test", "dkim.elsewhere.test", "dkim.sesame.test"};
    buf_puts(json, "[");
    publish(json, k, "good.test", caps, right);
    publish(json, k, "wrong.test", away, right);
    publish(json, k, "otherkey.test", ours, other);
    publish(json, k, "servfail.test", ours, right);
    buf_puts(json, "]");
}

static void store_sets(struct store *st, struct keys *k, int64_t now)
{
    struct store_conn *c = store_conn_open(st);
    struct store_dkim *d = malloc(sizeof *d);
    for (int i = 0; i < SETS; i++) {
        const char *domain = expected[i].domain;
        bool gone = !strcmp(domain, "gone.test"), old = !strcmp(domain, "old.test");
        set_make(d, k, domain, gone ? "Success" : "Pending", old || gone ? 1 : now);
        d->missing_since_ms = gone ? 1 : 0;
        CHECK(store_dkim_put(c, d) == STORE_OK);
        struct store_identity id = {.account_id = "000000000001",
                                    .region = "us-east-1",
                                    .kind = IDENTITY_DOMAIN,
                                    .status = "Success",
                                    .token = "t",
                                    .created_ms = 1,
                                    .checked_ms = now + DAY, /* not due for verification */
                                    .dkim_enabled = true};
        core_strlcpy(id.identity, domain, sizeof id.identity);
        CHECK(store_identity_put(c, &id) == STORE_OK);
    }
    free(d);
    store_conn_close(c);
}

/* drop-replaced.test gets new tokens while its first check waits for DNS. */
static void replace_set(struct store *st, struct keys *k)
{
    struct store_conn *c = store_conn_open(st);
    struct store_dkim *d = malloc(sizeof *d);
    set_make(d, k, "drop-replaced.test", "Pending", core_now_ms());
    core_strlcpy(d->tokens[0], "new0", sizeof d->tokens[0]);
    d->checked_ms = replaced_checked_ms = core_now_ms() + DAY;
    CHECK(store_dkim_put(c, d) == STORE_OK);
    free(d);
    store_conn_close(c);
}

static bool set_done(const struct store_dkim *d, const struct expect *e)
{
    if (strcmp(d->status, e->status))
        return false;
    if (!strcmp(e->domain, "drop-replaced.test"))
        return d->checked_ms == replaced_checked_ms && !strcmp(d->tokens[0], "new0");
    return d->checked_ms > 0;
}

static bool sets_done(struct store_conn *c, bool report)
{
    struct store_dkim *d = malloc(sizeof *d);
    bool done = true;
    for (int i = 0; i < SETS; i++) {
        bool ok =
            store_dkim_get(c, "000000000001", "us-east-1", expected[i].domain, d) == STORE_OK &&
            set_done(d, &expected[i]);
        if (report && !ok)
            fprintf(stderr, "%s: %s, checked %lld\n", expected[i].domain, d->status,
                    (long long)d->checked_ms);
        done &= ok;
    }
    free(d);
    return done;
}

static void check_identities(struct store_conn *c)
{
    for (int i = 0; i < SETS; i++) {
        struct store_identity id;
        CHECK(store_identity_get(c, "000000000001", "us-east-1", expected[i].domain, &id) ==
              STORE_OK);
        /* Only the revoked set turns signing off. */
        CHECK(id.dkim_enabled == !!strcmp(expected[i].domain, "gone.test"));
    }
}

static void remove_dir(const char *dir)
{
    char path[300];
    const char *files[] = {"test.db", "test.db-wal", "test.db-shm", "test.db.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0);
}

/* A store in a new directory (dir, a mkdtemp template) and the config of the checks:
 * the test server's resolver, checks due every second, a host zone in mixed case with
 * its final dot (both must not matter). */
static struct store *checker_store(const struct sesame_config *dns_cfg, char *dir,
                                   struct sesame_config *cfg)
{
    CHECK(mkdtemp(dir) != NULL);
    *cfg = *dns_cfg;
    snprintf(cfg->store_path, sizeof cfg->store_path, "%s/test.db", dir);
    cfg->verify_poll_interval_s = 1;
    snprintf(cfg->dkim_host_zone, sizeof cfg->dkim_host_zone, "dkim.Sesame.test.");
    struct store *st = NULL;
    char err[256];
    CHECK(store_open(cfg, &st, err, sizeof err) == STORE_OK);
    return st;
}

/* Whole checks through the verifier's tick, with the store's writer. */
static void test_checker(struct event_base *base, const struct sesame_config *dns_cfg,
                         struct keys *k)
{
    char dir[] = "/tmp/test_dkim_check.XXXXXX";
    struct sesame_config cfg;
    struct store *st = checker_store(dns_cfg, dir, &cfg);
    if (!st)
        return;
    CHECK(store_writer_start(st) == STORE_OK);
    store_sets(st, k, core_now_ms());
    struct dns_verifier *v = dns_verifier_start(base, &cfg, st, NULL);
    CHECK(v != NULL);
    struct timeval first = {1, 100000}; /* the first tick has started its checks */
    event_base_loopexit(base, &first);
    event_base_dispatch(base);
    replace_set(st, k);
    struct store_conn *c = store_conn_open(st);
    time_t deadline = time(NULL) + 10;
    while (!sets_done(c, false) && time(NULL) < deadline) {
        struct timeval tv = {0, 200000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    CHECK(sets_done(c, true));
    check_identities(c);
    store_conn_close(c);
    store_writer_stop(st);
    event_base_loop(base, EVLOOP_NONBLOCK); /* the writer's last completions */
    dns_verifier_free(v);
    store_close(st);
    remove_dir(dir);
}

/* The verifier freed while DKIM lookups are in the air: their checks are freed (ASan). */
static void test_free_asking(struct event_base *base, const struct sesame_config *dns_cfg,
                             struct keys *k)
{
    char dir[] = "/tmp/test_dkim_check.XXXXXX";
    struct sesame_config cfg;
    struct store *st = checker_store(dns_cfg, dir, &cfg);
    if (!st)
        return;
    struct store_conn *c = store_conn_open(st);
    struct store_dkim *d = malloc(sizeof *d);
    set_make(d, k, "drop.test", "Pending", core_now_ms());
    CHECK(store_dkim_put(c, d) == STORE_OK);
    free(d);
    store_conn_close(c);
    struct dns_verifier *v = dns_verifier_start(base, &cfg, st, NULL);
    CHECK(v != NULL);
    struct timeval tv = {1, 200000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    dns_verifier_free(v);
    store_close(st);
    remove_dir(dir);
}

static void test_live(void)
{
    struct keys k;
    bool keys = keys_make(&k);
    CHECK(keys);
    struct buf json;
    buf_init(&json);
    publish_all(&json, &k);
    struct unit_server s;
    bool up = keys && unit_server_start(&s, server_py, buf_cstr(&json));
    buf_free(&json);
    CHECK(up);
    if (!up) {
        keys_free(&k);
        return;
    }
    struct sesame_config cfg;
    config_defaults(&cfg);
    snprintf(cfg.dns_resolver, sizeof cfg.dns_resolver, "127.0.0.1:%d", s.port);
    cfg.dns_timeout_ms = 300;
    cfg.dkim_failure_window_s = 3600;
    cfg.dkim_revocation_window_s = 3600;
    struct event_base *base = event_base_new();
    test_cname_live(base, &cfg);
    test_checker(base, &cfg, &k);
    test_free_asking(base, &cfg, &k);
    event_base_free(base);
    unit_server_stop(&s);
    keys_free(&k);
}

int main(void)
{
    evthread_use_pthreads(); /* the store's writer posts completions to the base */
    log_set_level(LOG_WARN);
    test_next();
    test_txt_matches();
    test_cname_parse();
    test_live();
    return UNIT_END();
}
