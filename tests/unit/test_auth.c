/* auth: SigV4 against the AWS test suite and botocore (sigv4-vectors/, see its README),
 * AWS3-HTTPS and AWS3 against values computed with Python's hmac module, SMTP passwords,
 * dispatch and key generation. Runs from tests/unit. */
#include "auth/auth.h"
#include "unit.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>

#define VEC_KEY_ID "AKIDEXAMPLE"
#define VEC_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VEC_TIME 1440938160 /* 20150830T123600Z */
#define VEC_DIR "sigv4-vectors"

/* The spec's AWS3 vector: a different secret, and the Date from the 2010 guide. */
#define SPEC_KEY_ID "AKIAIOSFODNN7EXAMPLE"
#define SPEC_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define SPEC_DATE "Tue, 25 May 2010 21:20:27 +0000"
#define SPEC_TIME 1274822427

struct keys {
    const char *id, *secret;
};

static const char *lookup(void *ctx, const char *key_id)
{
    const struct keys *k = ctx;
    return strcmp(key_id, k->id) == 0 ? k->secret : NULL;
}

static struct keys vec_keys = {VEC_KEY_ID, VEC_SECRET};
static struct keys spec_keys = {SPEC_KEY_ID, SPEC_SECRET};

/* ---- reading vector files ---- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, VEC_DIR "/%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

#define MAX_HEADERS 32

struct parsed {
    char *method, *path, *query;
    struct auth_header headers[MAX_HEADERS];
    size_t header_count;
    const char *body;
    size_t body_len;
};

/* Cuts the request line into method, path and query (the target may hold spaces). */
static bool parse_request_line(char *line, struct parsed *p)
{
    char *sp1 = strchr(line, ' '), *sp2 = strrchr(line, ' ');
    if (!sp1 || sp1 == sp2)
        return false;
    *sp1 = *sp2 = '\0';
    p->method = line;
    p->path = sp1 + 1;
    char *q = strchr(p->path, '?');
    p->query = q ? q + 1 : "";
    if (q)
        *q = '\0';
    return true;
}

/* Request files: request line, Name:value headers (a line starting with a blank
 * continues the previous one), a blank line, the body. Edits text in place. */
static bool parse_request(char *text, size_t len, struct parsed *p)
{
    memset(p, 0, sizeof *p);
    char *line = strchr(text, '\n');
    if (!line)
        return false;
    *line++ = '\0';
    if (!parse_request_line(text, p))
        return false;
    while (*line && *line != '\n' && p->header_count < MAX_HEADERS) {
        char *end = line;
        while ((end = strchr(end, '\n')) && (end[1] == ' ' || end[1] == '\t'))
            end++;
        if (!end)
            end = line + strlen(line);
        char *next = *end ? end + 1 : end;
        *end = '\0';
        char *colon = strchr(line, ':');
        if (!colon)
            return false;
        *colon = '\0';
        p->headers[p->header_count++] = (struct auth_header){line, colon + 1};
        line = next;
    }
    p->body = *line == '\n' ? line + 1 : line;
    p->body_len = len - (size_t)(p->body - text);
    return true;
}

static struct auth_request request_of(const struct parsed *p, int64_t now)
{
    return (struct auth_request){
        p->method,   p->path, p->query, p->headers, p->header_count, (const unsigned char *)p->body,
        p->body_len, now,     900,      NULL};
}

static const char *header_of(const struct parsed *p, const char *name)
{
    for (size_t i = 0; i < p->header_count; i++) {
        if (!strcasecmp(p->headers[i].name, name))
            return p->headers[i].value;
    }
    return NULL;
}

/* Copies the text after key up to a stop character, percent-decoding it. */
static void extract(const char *s, const char *key, const char *stops, char *out, size_t outlen)
{
    const char *v = s ? strstr(s, key) : NULL;
    size_t n = 0;
    if (v) {
        for (v += strlen(key); *v && !strchr(stops, *v) && n + 1 < outlen; v++) {
            unsigned int c;
            if (*v == '%' && sscanf(v + 1, "%2x", &c) == 1) {
                out[n++] = (char)c;
                v += 2;
            } else {
                out[n++] = *v;
            }
        }
    }
    out[n] = '\0';
}

/* ---- SigV4 vectors ---- */

struct form {
    const char *prefix; /* "header" or "query" */
    bool presigned;
};

static void check_canonical(const char *dir, const struct form *f, const struct parsed *p,
                            const char *signed_headers, const char *expected)
{
    char *creq = NULL;
    const char *hash = strrchr(expected, '\n') + 1; /* the payload hash the signer used */
    struct auth_request req = request_of(p, VEC_TIME);
    CHECK(auth_sigv4_canonical_request(&req, signed_headers, hash, f->presigned, &creq) == 0);
    if (!creq || strcmp(creq, expected) != 0)
        fprintf(stderr, "%s (%s): canonical request\n--- got\n%s\n--- expected\n%s\n", dir,
                f->prefix, creq ? creq : "(null)", expected);
    CHECK(creq && strcmp(creq, expected) == 0);
    free(creq);
}

static void check_signature_fn(const char *credential, const char *creq, const char *signature)
{
    char region[32] = "", service[32] = "", hex[65] = "";
    sscanf(credential, "%*[^/]/%*8s/%31[^/]/%31[^/]/", region, service);
    CHECK(auth_sigv4_signature(VEC_SECRET, "20150830T123600Z", "20150830", region, service, creq,
                               hex) == 0);
    CHECK_STR(hex, signature);
}

/* Verifies the request, then one changed thing at a time. */
static void check_verify(const char *dir, const struct form *f, struct parsed *p,
                         char *signature_in_request)
{
    struct auth_result res;
    struct auth_request req = request_of(p, VEC_TIME);
    enum auth_status st = auth_verify(&req, lookup, &vec_keys, &res);
    if (st != AUTH_OK)
        fprintf(stderr, "%s (%s): status %d: %s\n", dir, f->prefix, st, res.message);
    CHECK(st == AUTH_OK);
    CHECK_STR(res.key_id, VEC_KEY_ID);
    CHECK_STR(res.scheme, f->presigned ? "AWS4-presigned" : "AWS4-HMAC-SHA256");

    /* With a signing-key cache: the same answers, the second time from the cache, and a
     * cached key never stands in for another secret. */
    struct auth_key_cache *cache = auth_key_cache_new();
    req.key_cache = cache;
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_OK);
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_OK);
    struct keys other_secret = {VEC_KEY_ID, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY2"};
    CHECK(auth_verify(&req, lookup, &other_secret, &res) == AUTH_BAD_SIGNATURE);
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_OK);
    req.key_cache = NULL;
    auth_key_cache_free(cache);

    char saved = signature_in_request[0];
    signature_in_request[0] = saved == '0' ? '1' : '0';
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_BAD_SIGNATURE);
    signature_in_request[0] = saved;

    struct keys other = {"AKIDOTHER", VEC_SECRET};
    CHECK(auth_verify(&req, lookup, &other, &res) == AUTH_UNKNOWN_KEY);
    struct keys wrong_secret = {VEC_KEY_ID, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEX"};
    CHECK(auth_verify(&req, lookup, &wrong_secret, &res) == AUTH_BAD_SIGNATURE);

    req.now_s = VEC_TIME + 1000; /* past the 900 s skew; inside a presigned hour */
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == (f->presigned ? AUTH_OK : AUTH_EXPIRED));
    req.now_s = VEC_TIME + 3601;
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_EXPIRED);
    req.now_s = VEC_TIME - 1000;
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_EXPIRED);
}

static int test_vector_form(const char *dir, const struct form *f)
{
    char name[64], signed_headers[256], credential[128];
    size_t len;
    snprintf(name, sizeof name, "%s-signed-request.txt", f->prefix);
    char *text = read_file(dir, name, &len);
    if (!text)
        return 0;
    snprintf(name, sizeof name, "%s-canonical-request.txt", f->prefix);
    char *expected = read_file(dir, name, NULL);
    snprintf(name, sizeof name, "%s-signature.txt", f->prefix);
    char *signature = read_file(dir, name, NULL);
    struct parsed p;
    bool ok = expected && signature && parse_request(text, len, &p);
    CHECK(ok);
    if (!ok)
        goto out;
    const char *auth = f->presigned ? p.query : header_of(&p, "Authorization");
    extract(auth, f->presigned ? "X-Amz-SignedHeaders=" : "SignedHeaders=", ",& ", signed_headers,
            sizeof signed_headers);
    extract(auth, f->presigned ? "X-Amz-Credential=" : "Credential=", ",& ", credential,
            sizeof credential);
    check_canonical(dir, f, &p, signed_headers, expected);
    check_signature_fn(credential, expected, signature);
    char *sig_in_request = auth ? strstr(auth, signature) : NULL;
    CHECK(sig_in_request != NULL);
    if (sig_in_request)
        check_verify(dir, f, &p, sig_in_request);
out:
    free(text);
    free(expected);
    free(signature);
    return 1;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_sigv4_vectors(void)
{
    static const struct form forms[] = {{"header", false}, {"query", true}};
    char *names[128];
    size_t count = 0;
    DIR *d = opendir(VEC_DIR);
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d)) && count < 128;) {
        if (e->d_name[0] != '.' && !strchr(e->d_name, '.') && strcmp(e->d_name, "__pycache__"))
            names[count++] = strdup(e->d_name);
    }
    if (d)
        closedir(d);
    qsort(names, count, sizeof *names, name_cmp);
    int forms_run = 0;
    for (size_t i = 0; i < count; i++) {
        int before = unit_failed, n = 0;
        for (size_t k = 0; k < 2; k++)
            n += test_vector_form(names[i], &forms[k]);
        forms_run += n;
        printf("%-44s %s\n", names[i], n == 0 ? "NO FILES" : unit_failed > before ? "FAIL" : "ok");
        CHECK(n > 0);
        free(names[i]);
    }
    CHECK(count >= 38 && forms_run >= 68);
}

/* ---- SigV4 details the vectors do not cover ---- */

static void test_sigv4_edges(void)
{
    size_t len;
    char *text = read_file("get-vanilla", "header-signed-request.txt", &len);
    struct parsed p;
    struct auth_result res;
    CHECK(text && parse_request(text, len, &p));
    if (!text)
        return;
    struct auth_request req = request_of(&p, VEC_TIME);
    char *auth = (char *)header_of(&p, "Authorization");

    /* The scope's date must be the request's date. */
    char *scope_date = strstr(auth, "/20150830/");
    scope_date[8] = '1';
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_BAD_SIGNATURE);
    CHECK(strstr(res.message, "Credential scope") != NULL);
    scope_date[8] = '0';

    /* A claimed payload hash must describe the body. */
    p.headers[p.header_count++] = (struct auth_header){"X-Amz-Content-Sha256", "0000"};
    req = request_of(&p, VEC_TIME);
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_BAD_SIGNATURE);
    p.header_count--;

    /* Missing parts are named. */
    p.headers[2].value = "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00";
    req = request_of(&p, VEC_TIME);
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "requires 'Credential' parameter") != NULL);
    CHECK(strstr(res.message, "'Signature' parameter") == NULL);
    p.headers[2].value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                         "aws4_request, SignedHeaders=x-amz-date, Signature=00";
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    p.headers[2].value = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                         "aws5_request, SignedHeaders=host;x-amz-date, Signature=00";
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "terminator") != NULL);
    p.headers[2].value = "Bearer abc";
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "Authorization=Bearer abc") != NULL);
    free(text);

    /* Paths are signed as sent, so an encoded byte is encoded again (as botocore does). */
    char *creq = NULL;
    struct auth_header host = {"Host", "example.com"};
    struct auth_request r = {
        "GET", "/a%20b/./c/../d", "b=%7e&a=x+y&a=", &host, 1, NULL, 0, VEC_TIME, 900, NULL};
    CHECK(auth_sigv4_canonical_request(&r, "host", "UNSIGNED-PAYLOAD", false, &creq) == 0);
    CHECK_STR(creq, "GET\n/a%2520b/d\na=&a=x%2By&b=~\nhost:example.com\n\nhost\nUNSIGNED-PAYLOAD");
    free(creq);
    r.path = "";
    r.query = NULL;
    CHECK(auth_sigv4_canonical_request(&r, "host", "x", false, &creq) == 0);
    CHECK_STR(creq, "GET\n/\n\nhost:example.com\n\nhost\nx");
    free(creq);
}

/* ---- AWS3-HTTPS and AWS3 ---- */

static enum auth_status aws3(const char *header_name, const char *value, const char *date_name,
                             const char *date, int64_t now, struct auth_result *res)
{
    struct auth_header h[3] = {
        {"Host", "email.us-east-1.amazonaws.com"}, {date_name, date}, {header_name, value}};
    struct auth_request req = {
        "POST", "/", "", h, 3, (const unsigned char *)"Action=GetSendQuota", 19, now, 900, NULL};
    return auth_verify(&req, lookup, &spec_keys, res);
}

#define AMZN "X-Amzn-Authorization"

static void test_aws3_https(void)
{
    struct auth_result res;
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=mAI0YswwuAR/ZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo=",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_OK);
    CHECK_STR(res.scheme, "AWS3-HTTPS");
    CHECK_STR(res.key_id, SPEC_KEY_ID);
    /* Any order, no blanks, upper-case algorithm. */
    CHECK(aws3(AMZN,
               "AWS3-HTTPS Signature=Us8bpeClhNEdlLPaiFF2QbQj5Z0=,Algorithm=HMACSHA1,"
               "AWSAccessKeyId=" SPEC_KEY_ID,
               "Date", SPEC_DATE, SPEC_TIME + 600, &res) == AUTH_OK);
    /* Percent-encoded signature, as some clients send it. */
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=mAI0YswwuAR%2FZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo%3D",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_OK);
    /* Other date forms, each signed as sent (values from Python's hmac). */
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=2KhM06nasOcNPriCK6u+XyXHyD10+oMIcMh0ZUbxIcA=",
               "Date", "Tue, 25 May 2010 21:20:27 GMT", SPEC_TIME, &res) == AUTH_OK);
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA1, "
               "Signature=k9lLd8qqjWclRcj7GVn4wVgUQEo=",
               "Date", "Tuesday, 25-May-10 21:20:27 GMT", SPEC_TIME, &res) == AUTH_OK);
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=qpKGe5WXtW/9Qn6gvjvED6PMnveMnYB3IKM5zde+NP0=",
               "Date", "Tue May 25 21:20:27 2010", SPEC_TIME, &res) == AUTH_OK);
    /* +0200 is two hours east: 23:20 there is 21:20 UTC. */
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=HCoP8xPjuPdU1fm4LiuWq+nQ+2xYLK6diWUJSOwYO7I=",
               "Date", "Tue, 25 May 2010 23:20:27 +0200", SPEC_TIME, &res) == AUTH_OK);
    /* X-Amz-Date when there is no Date header, ISO basic form. */
    CHECK(aws3("Authorization",
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA1, "
               "Signature=rYV/RMS5d2BsAB1LmU4PRE10Nis=",
               "X-Amz-Date", "20100525T212027Z", SPEC_TIME, &res) == AUTH_OK);
}

static void test_aws3_https_failures(void)
{
    struct auth_result res;
    const char *good = "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
                       "Signature=mAI0YswwuAR/ZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo=";
    CHECK(aws3(AMZN, good, "Date", SPEC_DATE, SPEC_TIME + 901, &res) == AUTH_EXPIRED);
    CHECK(aws3(AMZN, good, "Date", SPEC_DATE, SPEC_TIME - 901, &res) == AUTH_EXPIRED);
    CHECK(aws3(AMZN, good, "Date", "Tue, 25 May 2010 21:20:28 +0000", SPEC_TIME, &res) ==
          AUTH_BAD_SIGNATURE);
    CHECK_STR(res.message, "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.");
    CHECK(aws3(AMZN, good, "X-Other", SPEC_DATE, SPEC_TIME, &res) == AUTH_INCOMPLETE);
    CHECK(aws3(AMZN, good, "Date", "yesterday", SPEC_TIME, &res) == AUTH_INCOMPLETE);
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=AKIAUNKNOWN, Algorithm=HmacSHA256, "
               "Signature=mAI0YswwuAR/ZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo=",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_UNKNOWN_KEY);
    CHECK_STR(res.message, "The security token included in the request is invalid.");
    CHECK(aws3(AMZN, "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256", "Date",
               SPEC_DATE, SPEC_TIME, &res) == AUTH_INCOMPLETE);
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacMD5, "
               "Signature=mAI0YswwuAR/ZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo=",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_INCOMPLETE);
    /* A SHA-1 signature under Algorithm=HmacSHA256 is the wrong length. */
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=Us8bpeClhNEdlLPaiFF2QbQj5Z0=",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_BAD_SIGNATURE);
    CHECK(aws3(AMZN,
               "AWS3-HTTPS AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA256, "
               "Signature=!!!!",
               "Date", SPEC_DATE, SPEC_TIME, &res) == AUTH_BAD_SIGNATURE);
}

/* boto2's AWS3 over POST / with body "Action=GetSendQuota"; expected values computed with
 * Python's hashlib and hmac from the string to sign. */
static void test_aws3_plain(void)
{
    struct auth_result res;
    const char *date = "Tue, 25 May 2010 21:20:27 GMT";
    CHECK(aws3(AMZN,
               "AWS3 AWSAccessKeyId=" SPEC_KEY_ID ",Algorithm=HmacSHA256,"
               "SignedHeaders=Host;X-Amz-Date,"
               "Signature=BJ+LWBNzkYZqj9wbHJhBhzfwHHK3FW5bUu7++yDMcMQ=",
               "X-Amz-Date", date, SPEC_TIME, &res) == AUTH_OK);
    CHECK_STR(res.scheme, "AWS3");
    CHECK(aws3(AMZN,
               "AWS3 AWSAccessKeyId=" SPEC_KEY_ID ", Algorithm=HmacSHA1, "
               "SignedHeaders=X-Amz-Date;Host, Signature=28QEG/EoyR/cFh6DgSxPvXm6ccI=",
               "X-Amz-Date", date, SPEC_TIME, &res) == AUTH_OK);
    /* The date that proves freshness must be signed. */
    CHECK(aws3(AMZN,
               "AWS3 AWSAccessKeyId=" SPEC_KEY_ID ",Algorithm=HmacSHA256,SignedHeaders=Host,"
               "Signature=BJ+LWBNzkYZqj9wbHJhBhzfwHHK3FW5bUu7++yDMcMQ=",
               "X-Amz-Date", date, SPEC_TIME, &res) == AUTH_INCOMPLETE);
    CHECK(aws3(AMZN,
               "AWS3 AWSAccessKeyId=" SPEC_KEY_ID ",Algorithm=HmacSHA256,"
               "Signature=BJ+LWBNzkYZqj9wbHJhBhzfwHHK3FW5bUu7++yDMcMQ=",
               "X-Amz-Date", date, SPEC_TIME, &res) == AUTH_INCOMPLETE);
    /* The body is signed: a different body fails. */
    struct auth_header h[3] = {{"Host", "email.us-east-1.amazonaws.com"},
                               {"X-Amz-Date", date},
                               {AMZN, "AWS3 AWSAccessKeyId=" SPEC_KEY_ID ",Algorithm=HmacSHA256,"
                                      "SignedHeaders=Host;X-Amz-Date,"
                                      "Signature=BJ+LWBNzkYZqj9wbHJhBhzfwHHK3FW5bUu7++yDMcMQ="}};
    struct auth_request req = {
        "POST", "/", "", h, 3, (const unsigned char *)"Action=SendEmail", 16, SPEC_TIME, 900, NULL};
    CHECK(auth_verify(&req, lookup, &spec_keys, &res) == AUTH_BAD_SIGNATURE);
}

/* The guide's GET form: the items in the query, the Date header signed. */
static void test_aws3_query(void)
{
    struct auth_result res;
    struct auth_header h[1] = {{"Date", SPEC_DATE}};
    struct auth_request req = {"GET",
                               "/",
                               "Action=GetSendQuota&AWSAccessKeyId=" SPEC_KEY_ID
                               "&Signature=mAI0YswwuAR%2FZsXBPLjJfHGIszEfpXUYA3G9TN5PlSo%3D"
                               "&Algorithm=HMACSHA256",
                               h,
                               1,
                               NULL,
                               0,
                               SPEC_TIME,
                               900,
                               NULL};
    CHECK(auth_verify(&req, lookup, &spec_keys, &res) == AUTH_OK);
    CHECK_STR(res.scheme, "AWS3-HTTPS");
    req.query = "Action=GetSendQuota&AWSAccessKeyId=" SPEC_KEY_ID "&Signature=abc"
                "&SignatureVersion=2&SignatureMethod=HmacSHA256&Timestamp=2010-05-25";
    CHECK(auth_verify(&req, lookup, &spec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "Version 2") != NULL);
}

/* ---- dispatch, parameters, SMTP passwords, keys ---- */

static void test_dispatch(void)
{
    struct auth_result res;
    struct auth_header h[2] = {{"Host", "x"}, {"Authorization", "  "}};
    struct auth_request req = {"GET", "/", "Action=GetSendQuota", h, 1, NULL, 0, 0, 900, NULL};
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_MISSING_TOKEN);
    CHECK_STR(res.message, "Request is missing Authentication Token");
    req.header_count = 2; /* a blank Authorization header is no credential */
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_MISSING_TOKEN);
    h[1].value = "AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request";
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256";
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "Only one auth mechanism") != NULL);
    req.header_count = 1;
    CHECK(auth_verify(&req, lookup, &vec_keys, &res) == AUTH_INCOMPLETE);
    CHECK(strstr(res.message, "X-Amz-Credential") != NULL);
    CHECK(auth_verify(&req, lookup, &vec_keys, NULL) == AUTH_INCOMPLETE);
}

static void test_signature_params(void)
{
    CHECK(auth_is_signature_param("X-Amz-Signature"));
    CHECK(auth_is_signature_param("x-amz-date"));
    CHECK(auth_is_signature_param("AWSAccessKeyId"));
    CHECK(auth_is_signature_param("Signature"));
    CHECK(auth_is_signature_param("SignatureVersion"));
    CHECK(auth_is_signature_param("Algorithm"));
    CHECK(!auth_is_signature_param("Action"));
    CHECK(!auth_is_signature_param("Source"));
    CHECK(!auth_is_signature_param("Destination.ToAddresses.member.1"));
    CHECK(!auth_is_signature_param(NULL));
}

static void test_smtp_passwords(void)
{
    char out[AUTH_SMTP_PASSWORD_LEN + 1];
    auth_smtp_password_v2(SPEC_SECRET, out);
    CHECK_STR(out, "An60U4ZD3sd4fg+FvXUjayOipTt8LO4rUUmhpdX6ctDy");
    /* v4 values computed with Python's hmac following the same key chain. */
    auth_smtp_password_v4(SPEC_SECRET, "us-east-1", out);
    CHECK_STR(out, "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9");
    auth_smtp_password_v4(SPEC_SECRET, "eu-west-1", out);
    CHECK_STR(out, "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk");
    CHECK(strlen(out) == AUTH_SMTP_PASSWORD_LEN);
}

static void test_key_generate(void)
{
    char id1[AUTH_KEY_ID_LEN + 1], id2[AUTH_KEY_ID_LEN + 1];
    char s1[AUTH_SECRET_LEN + 1], s2[AUTH_SECRET_LEN + 1];
    CHECK(auth_key_generate(id1, s1) == 0 && auth_key_generate(id2, s2) == 0);
    CHECK(strlen(id1) == AUTH_KEY_ID_LEN && !strncmp(id1, "AKIA", 4));
    CHECK(strspn(id1 + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == 16);
    CHECK(strlen(s1) == AUTH_SECRET_LEN);
    CHECK(strspn(s1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") ==
          AUTH_SECRET_LEN);
    CHECK(strcmp(id1, id2) != 0 && strcmp(s1, s2) != 0);
}

static void test_failure_limits(void)
{
    struct auth_failures *f = auth_failures_new(3, 1000);
    CHECK(!auth_failures_blocked(f, "192.0.2.1", 0));
    CHECK(auth_failures_record(f, "192.0.2.1", 0) == 1); /* the count in the window */
    CHECK(auth_failures_record(f, "192.0.2.1", 10) == 2);
    CHECK(!auth_failures_blocked(f, "192.0.2.1", 20));
    CHECK(auth_failures_record(f, "192.0.2.1", 20) == 3); /* the third reaches the limit */
    CHECK(auth_failures_blocked(f, "192.0.2.1", 30));
    CHECK(auth_failures_record(f, "192.0.2.1", 40) == 4); /* equals the limit only once */
    CHECK(!auth_failures_blocked(f, "192.0.2.2", 30));
    CHECK(!auth_failures_blocked(f, "2001:db8::1", 30));
    CHECK(auth_failures_blocked(f, "::ffff:192.0.2.1", 30)); /* IPv4-mapped: the same host */
    for (int k = 0; k < 3; k++)
        auth_failures_record(f, k ? "2001:db8::2:1" : "2001:db8::1%eth0", 50);
    CHECK(auth_failures_blocked(f, "2001:db8::ffff:1", 60)); /* the same /64 */
    CHECK(!auth_failures_blocked(f, "2001:db8:0:1::1", 60)); /* another /64 */
    CHECK(auth_failures_blocked(f, "192.0.2.1", 999));
    CHECK(!auth_failures_blocked(f, "192.0.2.1", 1000));    /* the window has ended */
    CHECK(auth_failures_record(f, "192.0.2.1", 1000) == 1); /* a new window counts from one */
    CHECK(!auth_failures_blocked(f, "192.0.2.1", 1001));
    /* Many addresses: each keeps its own count as long as the table holds them. */
    char addr[32];
    for (int i = 0; i < 500; i++) {
        snprintf(addr, sizeof addr, "198.51.100.%d", i);
        for (int k = 0; k < 3; k++)
            auth_failures_record(f, addr, 2000);
    }
    CHECK(auth_failures_blocked(f, "198.51.100.7", 2001));
    CHECK(!auth_failures_blocked(f, "203.0.113.9", 2001));
    auth_failures_free(f);
    struct auth_failures *off = auth_failures_new(0, 1000);
    for (int k = 0; k < 10; k++)
        CHECK(auth_failures_record(off, "192.0.2.1", 0) == 0); /* off: nothing counted */
    CHECK(!auth_failures_blocked(off, "192.0.2.1", 1));
    auth_failures_free(off);
}

int main(void)
{
    test_sigv4_vectors();
    test_sigv4_edges();
    test_aws3_https();
    test_aws3_https_failures();
    test_aws3_plain();
    test_aws3_query();
    test_dispatch();
    test_signature_params();
    test_smtp_passwords();
    test_key_generate();
    test_failure_limits();
    return UNIT_END();
}
