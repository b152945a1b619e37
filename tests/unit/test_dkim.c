/* DKIM signing (RFC 6376, RFC 8463): canonicalization against the RFC examples, the
 * RFC 8463 Appendix A signatures checked by a small verifier written here (test-only:
 * it shares the canonicalization under test, and OpenSSL does the cryptography), and
 * sign-then-verify round trips with generated keys. */
#include "mail/mail.h"
#include "unit.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>

#define T_SIGN 1366720445 /* the t= of SES's example signature */

struct text {
    const char *p;
    size_t len;
};
#define TEXT(s)                                                                                    \
    {                                                                                              \
        s, sizeof s - 1                                                                            \
    }

/* ---- RFC 8463 Appendix A ---- */

/* A.1: the Ed25519 private key (RFC 8032 test 1 seed) and the RSA key, PKCS#1 PEM. */
static const char rfc_ed_seed[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char rfc_rsa_pem[] =
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n"
    "Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n"
    "KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n"
    "AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n"
    "6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n"
    "zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n"
    "6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n"
    "uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n"
    "WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n"
    "WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n"
    "licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n"
    "o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n"
    "uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n"
    "-----END RSA PRIVATE KEY-----\n";

/* A.2: the p= values of brisbane._domainkey and test._domainkey. */
static const char rfc_ed_pub[] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char rfc_rsa_pub[] =
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
    "J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2"
    "EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

/* A.3: the signed message (the RFC's text with CRLF line ends). */
#define RFC_UNSIGNED                                                                               \
    "From: Joe SixPack <joe@football.example.com>\r\n"                                             \
    "To: Suzie Q <suzie@shopping.example.net>\r\n"                                                 \
    "Subject: Is dinner ready?\r\n"                                                                \
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"                                              \
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"                             \
    "\r\n"                                                                                         \
    "Hi.\r\n"                                                                                      \
    "\r\n"                                                                                         \
    "We lost the game.  Are you hungry yet?\r\n"                                                   \
    "\r\n"                                                                                         \
    "Joe.\r\n"
static const char rfc_signed[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n" RFC_UNSIGNED;

/* ---- a minimal verifier (relaxed header canonicalization only) ---- */

struct tv_field {
    const char *p; /* the whole field, with its CRLF */
    size_t len;
    size_t name_len; /* without WSP before the colon */
    bool taken;
};
#define TV_MAX_FIELDS 64

static bool tv_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits the header section into fields (a field runs to a CRLF not followed by WSP);
 * *body: where the body starts. */
static int tv_fields(const char *msg, size_t len, struct tv_field *f, size_t *body)
{
    int n = 0;
    size_t i = 0;
    while (i < len && !(msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')) {
        size_t start = i;
        for (;;) {
            const char *crlf = memmem(msg + i, len - i, "\r\n", 2);
            i = crlf ? (size_t)(crlf - msg) + 2 : len;
            if (!crlf || i >= len || (msg[i] != ' ' && msg[i] != '\t'))
                break;
        }
        if (n == TV_MAX_FIELDS)
            return -1;
        const char *colon = memchr(msg + start, ':', i - start);
        size_t nl = colon ? (size_t)(colon - msg) - start : 0;
        while (nl > 0 && tv_wsp(msg[start + nl - 1]))
            nl--;
        f[n++] = (struct tv_field){msg + start, i - start, nl, false};
    }
    *body = i < len ? i + 2 : len;
    return n;
}

static bool tv_name_is(const struct tv_field *f, const char *name, size_t len)
{
    return f->name_len == len && strncasecmp(f->p, name, len) == 0;
}

/* The tags of a DKIM-Signature (value unfolded; whitespace dropped from b= and bh=). */
struct tv_tags {
    char a[32], c[40], h[1024], bh[128], b[1024];
};

static void tv_put(char *dst, size_t cap, const char *v, size_t n, bool squeeze)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        if (!squeeze || !tv_wsp(v[i]))
            dst[k++] = v[i];
    }
    dst[k] = '\0';
}

static void tv_parse_tags(const struct tv_field *f, struct tv_tags *t)
{
    memset(t, 0, sizeof *t);
    const char *end = f->p + f->len;
    const char *p = (const char *)memchr(f->p, ':', f->len) + 1;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        while (p < stop && tv_wsp(*p))
            p++;
        if (eq) {
            size_t nl = (size_t)(eq - p);
            while (nl > 0 && tv_wsp(p[nl - 1]))
                nl--;
            const char *v = eq + 1;
            size_t vl = (size_t)(stop - v);
            if (nl == 1 && *p == 'a')
                tv_put(t->a, sizeof t->a, v, vl, true);
            else if (nl == 1 && *p == 'c')
                tv_put(t->c, sizeof t->c, v, vl, true);
            else if (nl == 1 && *p == 'h')
                tv_put(t->h, sizeof t->h, v, vl, true);
            else if (nl == 1 && *p == 'b')
                tv_put(t->b, sizeof t->b, v, vl, true);
            else if (nl == 2 && !memcmp(p, "bh", 2))
                tv_put(t->bh, sizeof t->bh, v, vl, true);
        }
        p = stop + 1;
    }
}

/* The field with the b= value taken out (RFC 6376 §3.7), into out. */
static void tv_strip_b(const struct tv_field *f, struct buf *out)
{
    const char *p = f->p, *end = f->p + f->len;
    const char *tag = (const char *)memchr(p, ':', f->len) + 1;
    while (tag && tag < end) {
        const char *t = tag;
        while (t < end && tv_wsp(*t))
            t++;
        const char *e = t + 1;
        while (e < end && tv_wsp(*e))
            e++;
        if (t < end && *t == 'b' && e < end && *e == '=') {
            const char *semi = memchr(e, ';', (size_t)(end - e));
            buf_append(out, p, (size_t)(e + 1 - p));
            if (semi)
                buf_append(out, semi, (size_t)(end - semi));
            return;
        }
        tag = memchr(tag, ';', (size_t)(end - tag));
        tag = tag ? tag + 1 : NULL;
    }
    buf_append(out, p, f->len);
}

/* The signed data of §3.7 for the signature field sig, from the other fields. */
static void tv_signed_data(struct tv_field *fields, int n, const struct tv_field *sig,
                           const char *h, struct buf *data)
{
    const char *p = h;
    while (*p) {
        size_t len = strcspn(p, ":");
        for (int i = n - 1; i >= 0; i--) {
            if (!fields[i].taken && tv_name_is(&fields[i], p, len)) {
                fields[i].taken = true;
                mail_dkim_canon_header_relaxed(fields[i].p, fields[i].len, data);
                break;
            }
        }
        p += len + (p[len] == ':');
    }
    struct buf stripped;
    buf_init(&stripped);
    tv_strip_b(sig, &stripped);
    mail_dkim_canon_header_relaxed(stripped.data, stripped.len, data);
    data->len -= 2; /* hashed without its CRLF */
    buf_free(&stripped);
}

static EVP_PKEY *tv_public_key(const char *p_b64, bool ed25519)
{
    unsigned char der[1024];
    long n = core_base64_decode(p_b64, strlen(p_b64), der);
    if (ed25519)
        return n == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32) : NULL;
    const unsigned char *p = der;
    return n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
}

static bool tv_check(const struct tv_tags *t, const struct buf *data, const char *p_b64)
{
    bool ed = !strcmp(t->a, "ed25519-sha256");
    if (!ed && strcmp(t->a, "rsa-sha256"))
        return false;
    unsigned char sig[1024], digest[32];
    long siglen = core_base64_decode(t->b, strlen(t->b), sig);
    EVP_PKEY *pkey = tv_public_key(p_b64, ed);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = pkey && siglen > 0;
    if (ok && ed) {
        EVP_Digest(data->data, data->len, digest, NULL, EVP_sha256(), NULL);
        ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)siglen, digest, 32) == 1;
    } else if (ok) {
        ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)siglen, (const unsigned char *)data->data,
                              data->len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

/* Verifies the which-th DKIM-Signature of msg with the key record's p= value. */
static bool tv_verify(const char *msg, size_t len, int which, const char *p_b64)
{
    struct tv_field f[TV_MAX_FIELDS];
    size_t body;
    int n = tv_fields(msg, len, f, &body), sig = -1;
    for (int i = 0; i < n && sig < 0; i++) {
        if (tv_name_is(&f[i], "DKIM-Signature", 14) && which-- == 0)
            sig = i;
    }
    if (sig < 0)
        return false;
    struct tv_tags t;
    tv_parse_tags(&f[sig], &t);
    bool relaxed_body = !strcmp(t.c, "relaxed/relaxed");
    if (!relaxed_body && strcmp(t.c, "relaxed/simple") && strcmp(t.c, "relaxed"))
        return false;
    unsigned char bh[32];
    char bh64[45];
    mail_dkim_body_hash(msg + body, len - body, relaxed_body, bh);
    core_base64_encode(bh, 32, bh64);
    if (strcmp(bh64, t.bh))
        return false;
    struct buf data;
    buf_init(&data);
    tv_signed_data(f, n, &f[sig], t.h, &data);
    bool ok = tv_check(&t, &data, p_b64);
    buf_free(&data);
    return ok;
}

/* ---- helpers ---- */

static void canon(const char *field, struct buf *out)
{
    buf_reset(out);
    mail_dkim_canon_header_relaxed(field, strlen(field), out);
}

static bool body_is(const char *body, size_t len, bool relaxed, const char *canonical, size_t clen)
{
    unsigned char got[32], want[32];
    mail_dkim_body_hash(body, len, relaxed, got);
    EVP_Digest(canonical, clen, want, NULL, EVP_sha256(), NULL);
    return !memcmp(got, want, 32);
}
#define BODY_IS(body, relaxed, canonical)                                                          \
    body_is(body, sizeof body - 1, relaxed, canonical, sizeof canonical - 1)

static struct mail_dkim_key *load(const char *pem)
{
    char err[256] = "";
    struct mail_dkim_key *k = mail_dkim_key_load(pem, err, sizeof err);
    if (!k)
        fprintf(stderr, "key load: %s\n", err);
    return k;
}

/* The RFC's Ed25519 key: its 32-byte seed wrapped as the PKCS#8 PEM the loader takes. */
static struct mail_dkim_key *load_seed(const char *seed_b64)
{
    unsigned char seed[32];
    if (core_base64_decode(seed_b64, strlen(seed_b64), seed) != 32)
        return NULL;
    EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long n = 0;
    if (pk && PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1)
        n = BIO_get_mem_data(bio, &pem);
    struct buf text;
    buf_init(&text);
    buf_append(&text, pem ? pem : "", (size_t)n);
    struct mail_dkim_key *k = load(buf_cstr(&text));
    buf_free(&text);
    BIO_free(bio);
    EVP_PKEY_free(pk);
    return k;
}

static char *public_of(const struct mail_dkim_key *k)
{
    struct buf p;
    buf_init(&p);
    mail_dkim_key_public(k, &p); /* on failure the empty text fails every comparison */
    return (char *)buf_cstr(&p);
}

/* Signs msg, then verifies the signature placed before it. */
static bool sign_verify(const struct mail_dkim_signer *s, const char *msg, size_t len,
                        struct buf *signed_msg)
{
    char err[256] = "";
    buf_reset(signed_msg);
    if (mail_dkim_sign(msg, len, s, signed_msg, err, sizeof err) != 0) {
        fprintf(stderr, "sign: %s\n", err);
        return false;
    }
    buf_append(signed_msg, msg, len);
    char *pub = public_of(s->key);
    bool ok = tv_verify(signed_msg->data, signed_msg->len, 0, pub);
    free(pub);
    return ok;
}

/* Lines within 78 columns (a tab counted as 8), continuation lines indented. */
static bool folded_ok(const char *field, size_t len)
{
    size_t col = 0, line = 0;
    for (size_t i = 0; i < len; i++) {
        if (field[i] == '\r' && i + 1 < len && field[i + 1] == '\n') {
            i++;
            line++;
            col = 0;
            if (i + 1 < len && field[i + 1] != '\t' && field[i + 1] != ' ')
                return false;
            continue;
        }
        col += field[i] == '\t' ? 8 : 1;
        if (col > 78)
            return false;
    }
    return line > 0 && len >= 2 && !memcmp(field + len - 2, "\r\n", 2);
}

/* Spaces, tabs and line breaks taken out, to compare a folded field with its tags. */
static void squeeze(const char *in, size_t len, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        if (!strchr(" \t\r\n", in[i]) || in[i] == '\0')
            out[n++] = in[i];
    }
    out[n] = '\0';
}

/* ---- canonicalization ---- */

static void test_canon_header(void)
{
    struct buf out;
    buf_init(&out);
    /* RFC 6376 §3.4.5 */
    canon("A: X\r\n", &out);
    CHECK_STR(buf_cstr(&out), "a:X\r\n");
    canon("B : Y\t\r\n\tZ  \r\n", &out);
    CHECK_STR(buf_cstr(&out), "b:Y Z\r\n");
    canon("B : Y\t\r\n\tZ  ", &out); /* the final CRLF is optional */
    CHECK_STR(buf_cstr(&out), "b:Y Z\r\n");

    canon("Subject:   many \t  spaces\r\n   folded \r\n\t here\t\r\n", &out);
    CHECK_STR(buf_cstr(&out), "subject:many spaces folded here\r\n");
    canon("X-Empty:\r\n", &out);
    CHECK_STR(buf_cstr(&out), "x-empty:\r\n");
    canon("X-Blank: \t \r\n \r\n", &out);
    CHECK_STR(buf_cstr(&out), "x-blank:\r\n");
    canon("MIME-Version:1.0", &out);
    CHECK_STR(buf_cstr(&out), "mime-version:1.0\r\n");
    canon("Subject: Gr\xc3\xbc\xc3\x9f"
          "e  \xff\r\n",
          &out); /* 8-bit: opaque octets */
    CHECK_STR(buf_cstr(&out), "subject:Gr\xc3\xbc\xc3\x9f"
                              "e \xff\r\n");
    canon("Sub:a:b ; c", &out); /* only the first colon separates */
    CHECK_STR(buf_cstr(&out), "sub:a:b ; c\r\n");
    canon("no colon here", &out); /* not a field: a name with an empty value */
    CHECK_STR(buf_cstr(&out), "no colon here:\r\n");
    buf_reset(&out);
    mail_dkim_canon_header_relaxed("", 0, &out);
    CHECK_STR(buf_cstr(&out), ":\r\n");
    buf_reset(&out);
    mail_dkim_canon_header_relaxed("X: a\0b\r\n", 8, &out);
    CHECK(out.len == 7 && !memcmp(out.data, "x:a\0b\r\n", 7));

    buf_reset(&out); /* appends */
    buf_puts(&out, "keep|");
    mail_dkim_canon_header_relaxed("To: x\r\n", 7, &out);
    CHECK_STR(buf_cstr(&out), "keep|to:x\r\n");
    buf_free(&out);
}

/* Bodies larger than the hashing buffer, with WSP runs across its edges: short lines,
 * then one line longer than the buffer. The reference applies the RFC's rules octet by
 * octet. */
static void big_bodies(void)
{
    size_t n = 40000;
    char *big = malloc(n), *canonical = malloc(n + 2);
    const size_t periods[] = {97, n + 2}; /* a CRLF every 97 octets, or none */
    for (size_t p = 0; p < 2; p++) {
        size_t c = 0, period = periods[p];
        for (size_t i = 0; i < n; i++) {
            size_t k = i % period;
            big[i] = k == period - 1 ? '\n' : k == period - 2 ? '\r' : (i % 5 < 2) ? ' ' : 'x';
        }
        bool space = false;
        for (size_t i = 0; i < n; i++) {
            if (big[i] == ' ') {
                space = true;
                continue;
            }
            if (space && big[i] != '\r')
                canonical[c++] = ' ';
            space = false;
            canonical[c++] = big[i];
        }
        while (c >= 2 && canonical[c - 1] == '\n' && canonical[c - 2] == '\r')
            c -= 2;
        canonical[c++] = '\r';
        canonical[c++] = '\n';
        CHECK(body_is(big, n, true, canonical, c));
    }
    free(big);
    free(canonical);
}

static void test_body_hash(void)
{
    /* RFC 6376 §3.4.5 */
    CHECK(BODY_IS(" C \r\nD \t E\r\n\r\n\r\n", true, " C\r\nD E\r\n"));
    CHECK(BODY_IS(" C \r\nD \t E\r\n\r\n\r\n", false, " C \r\nD \t E\r\n"));
    /* empty bodies: one CRLF under simple, nothing under relaxed */
    CHECK(BODY_IS("", false, "\r\n"));
    CHECK(BODY_IS("", true, ""));
    CHECK(BODY_IS("\r\n\r\n\r\n", false, "\r\n"));
    CHECK(BODY_IS("\r\n\r\n\r\n", true, ""));
    CHECK(BODY_IS(" \r\n\t\r\n  ", true, "")); /* lines of WSP only are empty lines */
    CHECK(BODY_IS(" \r\n\t\r\n", false, " \r\n\t\r\n"));
    /* no final CRLF: one is added */
    CHECK(BODY_IS("abc", false, "abc\r\n"));
    CHECK(BODY_IS("abc", true, "abc\r\n"));
    CHECK(BODY_IS("a\r\nlast  \t", true, "a\r\nlast\r\n"));
    CHECK(BODY_IS("a\r\nlast  \t", false, "a\r\nlast  \t\r\n"));
    CHECK(BODY_IS("a\r\n\r", false, "a\r\n\r\r\n")); /* a bare CR is an octet */
    /* empty lines inside the body stay */
    CHECK(BODY_IS("a\r\n\r\n \r\nb\r\n\r\n", true, "a\r\n\r\n\r\nb\r\n"));
    CHECK(BODY_IS("a\r\n\r\n \r\nb\r\n\r\n", false, "a\r\n\r\n \r\nb\r\n"));
    CHECK(BODY_IS("\t lead\r\n", true, " lead\r\n"));
    /* 8-bit octets and NULs are data */
    CHECK(BODY_IS("\xc3\xa4\xff  \x80\r\n", true, "\xc3\xa4\xff \x80\r\n"));
    CHECK(BODY_IS("a\0 \0b\r\n\r\n", true, "a\0 \0b\r\n"));
    CHECK(BODY_IS("a\0 \0b\r\n\r\n", false, "a\0 \0b\r\n"));
    CHECK(BODY_IS("x\n y\r\r\n", true, "x\n y\r\r\n")); /* bare LF and CR: octets */

    big_bodies();
}

/* ---- RFC 8463 Appendix A ---- */

static void test_rfc8463(void)
{
    size_t len = sizeof rfc_signed - 1;
    CHECK(tv_verify(rfc_signed, len, 0, rfc_ed_pub));  /* ed25519-sha256, s=brisbane */
    CHECK(tv_verify(rfc_signed, len, 1, rfc_rsa_pub)); /* rsa-sha256, s=test */
    CHECK(!tv_verify(rfc_signed, len, 0, rfc_rsa_pub));
    CHECK(!tv_verify(rfc_signed, len, 1, rfc_ed_pub));

    /* the verifier rejects what it should: a changed body, a changed signed header */
    char *bad = strdup(rfc_signed);
    *strstr(bad, "hungry") = 'H';
    CHECK(!tv_verify(bad, len, 0, rfc_ed_pub) && !tv_verify(bad, len, 1, rfc_rsa_pub));
    strcpy(bad, rfc_signed);
    *strstr(bad, "dinner") = 'D';
    CHECK(!tv_verify(bad, len, 0, rfc_ed_pub) && !tv_verify(bad, len, 1, rfc_rsa_pub));
    free(bad);

    unsigned char bh[32];
    char bh64[45];
    const char *body = strstr(rfc_signed, "\r\n\r\n") + 4;
    mail_dkim_body_hash(body, strlen(body), true, bh);
    core_base64_encode(bh, 32, bh64);
    CHECK_STR(bh64, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");

    /* the appendix's keys: the seed gives the published Ed25519 key, and the RSA private
     * key's public half is the published p= (it also loads from PKCS#1 PEM) */
    struct mail_dkim_key *ed = load_seed(rfc_ed_seed), *rsa = load(rfc_rsa_pem);
    CHECK(ed && rsa);
    if (!ed || !rsa)
        return;
    char *p = public_of(ed);
    CHECK_STR(p, rfc_ed_pub);
    free(p);
    p = public_of(rsa);
    CHECK_STR(p, rfc_rsa_pub);
    free(p);
    struct buf txt;
    buf_init(&txt);
    CHECK(mail_dkim_key_record(ed, &txt) == 0);
    CHECK_STR(buf_cstr(&txt), "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
    buf_reset(&txt);
    CHECK(mail_dkim_key_record(rsa, &txt) == 0);
    CHECK(!strncmp(buf_cstr(&txt), "v=DKIM1; k=rsa; p=MIGfMA0G", 26));
    CHECK(mail_dkim_key_alg(ed) == MAIL_DKIM_ED25519_SHA256);
    CHECK(mail_dkim_key_alg(rsa) == MAIL_DKIM_RSA_SHA256);

    /* signing the appendix's message as the RFC did (its h= list, relaxed/relaxed) gives
     * signatures that verify with the published keys */
    struct mail_dkim_signer s = {.domain = "football.example.com",
                                 .selector = "brisbane",
                                 .key = ed,
                                 .time_s = 1528637909,
                                 .relaxed_body = true,
                                 .headers = "from : to : subject : date : message-id : from : "
                                            "subject : date"};
    const char msg[] = RFC_UNSIGNED;
    CHECK(sign_verify(&s, msg, sizeof msg - 1, &txt));
    CHECK(strstr(txt.data, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;") != NULL);
    char flat[2048];
    squeeze(txt.data, txt.len, flat, sizeof flat);
    CHECK(strstr(flat, ";h=from:to:subject:date:message-id:from:subject:date;") != NULL);
    s.key = rsa;
    s.selector = "test";
    CHECK(sign_verify(&s, msg, sizeof msg - 1, &txt));
    buf_free(&txt);
    mail_dkim_key_free(ed);
    mail_dkim_key_free(rsa);
}

/* ---- signing ---- */

static const struct text messages[] = {
    TEXT("From: Joe <joe@example.com>\r\nTo: a@example.net\r\nSubject: a folded\r\n  subject\r\n"
         "\tline  \r\nDate: Tue, 01 Dec 2026 21:50:10 +0000\r\nMessage-ID: <x@sesame.example>\r\n"
         "\r\nbody\r\n"),
    /* repeated headers, in mixed case */
    TEXT("Received: from a\r\nFROM: a@b.example\r\nsubject: one\r\nSubject: two\r\n"
         "To: x@y.example\r\nto: z@y.example\r\nReceived: from b\r\n\r\nhi\r\n"),
    TEXT("From: J\xc3\xb6rg <j@example.com>\r\nSubject: Gr\xc3\xbc\xc3\x9f"
         "e aus K\xc3\xb6ln \t \r\n\r\nBody\r\n"),
    TEXT("From: a@example.com\r\nTo: b@example.com\r\n\r\n"), /* empty body */
    TEXT("From: a@example.com\r\nTo: b@example.com\r\n"),     /* no blank line */
    TEXT("From: a@example.com"),                              /* not even a CRLF */
    TEXT("From: a@example.com\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa4\xff\x80 x "
         "\t\r\n\r\n\r\n"),
    TEXT("From: a@example.com\r\n\r\nline one\r\nlast line  "), /* no final CRLF */
    TEXT("From: a@example.com\r\n\r\n\r\n\r\n  \r\n"),          /* blank lines only */
    TEXT("From: a@example.com\r\n\r\nNUL \0 in\0body\r\n"),
};

static void tamper_and_check(const struct mail_dkim_key *k, const struct buf *signed_msg)
{
    char *pub = public_of(k);
    char *bad = malloc(signed_msg->len + 4);
    memcpy(bad, signed_msg->data, signed_msg->len);
    char *from = memmem(bad, signed_msg->len, "\r\nFrom: ", 8);
    if (!from)
        from = memmem(bad, signed_msg->len, "\r\nFROM: ", 8);
    CHECK(from != NULL);
    if (from) {
        from[8] ^= 1;
        CHECK(!tv_verify(bad, signed_msg->len, 0, pub));
        from[8] ^= 1;
    }
    const char *blank = memmem(bad, signed_msg->len, "\r\n\r\n", 4);
    if (blank) { /* a line added to the body */
        memcpy(bad + signed_msg->len, "X\r\n", 3);
        CHECK(!tv_verify(bad, signed_msg->len + 3, 0, pub));
    }
    free(bad);
    free(pub);
}

static void round_trips(const struct mail_dkim_key *k, const char *what)
{
    struct buf out;
    buf_init(&out);
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        for (int relaxed = 0; relaxed < 2; relaxed++) {
            struct mail_dkim_signer s = {.domain = "example.com",
                                         .selector = "sel1",
                                         .key = k,
                                         .time_s = T_SIGN,
                                         .relaxed_body = relaxed};
            bool ok = sign_verify(&s, messages[i].p, messages[i].len, &out);
            if (!ok)
                fprintf(stderr, "%s: message %zu (relaxed %d) does not verify\n", what, i, relaxed);
            CHECK(ok);
            CHECK(folded_ok(out.data, out.len - messages[i].len));
            tamper_and_check(k, &out);
        }
    }
    buf_free(&out);
}

static void test_keygen_round_trips(void)
{
    const int sizes[] = {2048, 1024, 0};
    for (size_t i = 0; i < 3; i++) {
        struct buf pem, pub;
        buf_init(&pem);
        buf_init(&pub);
        CHECK(mail_dkim_keygen(sizes[i], &pem, &pub) == 0);
        CHECK(!strncmp(buf_cstr(&pem), "-----BEGIN PRIVATE KEY-----\n", 28)); /* PKCS#8 */
        struct mail_dkim_key *k = load(buf_cstr(&pem));
        CHECK(k != NULL);
        if (k) {
            char *again = public_of(k);
            CHECK_STR(again, buf_cstr(&pub));
            free(again);
            CHECK(mail_dkim_key_alg(k) ==
                  (sizes[i] ? MAIL_DKIM_RSA_SHA256 : MAIL_DKIM_ED25519_SHA256));
            char what[32] = "Ed25519";
            if (sizes[i])
                snprintf(what, sizeof what, "RSA-%d", sizes[i]);
            round_trips(k, what);
        }
        unsigned char der[1024];
        long n = core_base64_decode(pub.data, pub.len, der);
        CHECK(sizes[i] ? n > 100 : n == 32);
        mail_dkim_key_free(k);
        buf_free(&pem);
        buf_free(&pub);
    }
    struct buf pem, pub;
    buf_init(&pem);
    buf_init(&pub);
    CHECK(mail_dkim_keygen(512, &pem, &pub) == -1);
    CHECK(mail_dkim_keygen(8192, &pem, &pub) == -1);
    CHECK(mail_dkim_keygen(-1, &pem, &pub) == -1);
    buf_free(&pem);
    buf_free(&pub);
}

static void test_format(void)
{
    struct mail_dkim_key *rsa = load(rfc_rsa_pem), *ed = load_seed(rfc_ed_seed);
    if (!rsa || !ed) {
        CHECK(false);
        return;
    }
    const char msg[] = "Received: x\r\nDate: Tue, 01 Dec 2026 21:50:10 +0000\r\n"
                       "message-id: <a@b>\r\nMIME-Version: 1.0\r\nFrom: a@ses.example.com\r\n"
                       "To: b@example.org\r\nContent-Type: text/plain\r\n"
                       "Content-Transfer-Encoding: 7bit\r\nSubject: hi\r\n\r\nbody\r\n";
    struct mail_dkim_signer s = {
        .domain = "ses.example.com", .selector = "abcdef123", .key = rsa, .time_s = T_SIGN};
    struct buf out;
    buf_init(&out);
    char err[256], flat[2048];
    CHECK(mail_dkim_sign(msg, sizeof msg - 1, &s, &out, err, sizeof err) == 0);
    CHECK(
        !strncmp(out.data, "DKIM-Signature: v=1; a=rsa-sha256; q=dns/txt; c=relaxed/simple;", 63));
    CHECK(folded_ok(out.data, out.len));
    int lines = 0;
    for (size_t i = 0; i + 1 < out.len; i++)
        lines += out.data[i] == '\r' && out.data[i + 1] == '\n';
    CHECK(lines >= 4); /* h= does not fit on one line, nor does b= */
    squeeze(out.data, out.len, flat, sizeof flat);
    const char want[] = "DKIM-Signature:v=1;a=rsa-sha256;q=dns/txt;c=relaxed/simple;s=abcdef123;"
                        "d=ses.example.com;t=1366720445;h=From:To:Subject:MIME-Version:"
                        "Content-Type:Content-Transfer-Encoding:Date:Message-ID;bh=";
    CHECK(!strncmp(flat, want, sizeof want - 1));
    const char *b = strstr(flat, ";b=");
    unsigned char sig[1024];
    CHECK(b && core_base64_decode(b + 3, strlen(b + 3), sig) == 128); /* RSA-1024 */

    /* only the default names present, written as the list writes them; the bottom-most
     * of repeated fields is signed; Ed25519 and relaxed body show in a= and c= */
    const char partial[] = "subject: top\r\nFROM: a@ses.example.com\r\nsubject: bottom\r\n\r\n";
    s.key = ed;
    s.relaxed_body = true;
    buf_reset(&out);
    CHECK(mail_dkim_sign(partial, sizeof partial - 1, &s, &out, err, sizeof err) == 0);
    squeeze(out.data, out.len, flat, sizeof flat);
    const char want2[] = "DKIM-Signature:v=1;a=ed25519-sha256;q=dns/txt;c=relaxed/relaxed;"
                         "s=abcdef123;d=ses.example.com;t=1366720445;h=From:Subject;bh=";
    CHECK(!strncmp(flat, want2, sizeof want2 - 1));
    b = strstr(flat, ";b=");
    CHECK(b && core_base64_decode(b + 3, strlen(b + 3), sig) == 64);
    size_t siglen = out.len;
    buf_append(&out, partial, sizeof partial - 1);
    char *pub = public_of(ed);
    CHECK(tv_verify(out.data, out.len, 0, pub));
    char *top = strstr(out.data + siglen, "top");
    *top = 'T'; /* the top Subject is not signed */
    CHECK(tv_verify(out.data, out.len, 0, pub));
    char *bottom = strstr(out.data + siglen, "bottom");
    *bottom = 'B';
    CHECK(!tv_verify(out.data, out.len, 0, pub));

    /* oversigning: a name listed more often than it occurs signs its absence, so adding
     * one more such field breaks the signature */
    s.headers = "From:Subject:Subject:Subject";
    s.relaxed_body = false;
    CHECK(sign_verify(&s, partial, sizeof partial - 1, &out));
    squeeze(out.data, out.len, flat, sizeof flat);
    CHECK(strstr(flat, ";h=From:Subject:Subject:Subject;bh=") != NULL);
    const char *sig_end = strstr(out.data, "\r\nsubject: top");
    struct buf more;
    buf_init(&more);
    buf_append(&more, out.data, (size_t)(sig_end - out.data) + 2);
    buf_puts(&more, "Subject: added\r\n");
    buf_puts(&more, sig_end + 2);
    CHECK(!tv_verify(more.data, more.len, 0, pub));
    buf_free(&more);

    /* a long h= list folds around its colons and still verifies */
    s.headers = "From:To:Subject:Date:Message-ID:MIME-Version:Content-Type:"
                "Content-Transfer-Encoding:Reply-To:Cc:In-Reply-To:References:List-Unsubscribe";
    CHECK(sign_verify(&s, msg, sizeof msg - 1, &out));
    CHECK(folded_ok(out.data, out.len - (sizeof msg - 1)));

    /* a d= longer than a line gets a line of its own, and the signature still verifies */
    char domain[200];
    memset(domain, 'a', 150);
    strcpy(domain + 150, ".example.com");
    s.domain = domain;
    s.headers = NULL;
    CHECK(sign_verify(&s, msg, sizeof msg - 1, &out));
    CHECK(strstr(out.data, "\r\n\td=aaaa") != NULL && strstr(out.data, ".com;\r\n\t") != NULL);
    free(pub);
    buf_free(&out);
    mail_dkim_key_free(rsa);
    mail_dkim_key_free(ed);
}

static void test_errors(void)
{
    char err[256] = "";
    CHECK(mail_dkim_key_load("not a key", err, sizeof err) == NULL && err[0]);
    CHECK(mail_dkim_key_load(NULL, err, sizeof err) == NULL);
    mail_dkim_key_free(NULL);

    /* an RSA key below 1024 bits, an encrypted key and an EC key are refused */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    PEM_write_bio_PrivateKey(bio, small, NULL, NULL, 0, NULL, NULL);
    BIO_write(bio, "", 1);
    BIO_get_mem_data(bio, &pem);
    err[0] = '\0';
    CHECK(mail_dkim_key_load(pem, err, sizeof err) == NULL && strstr(err, "1024"));
    (void)BIO_reset(bio);
    PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL);
    BIO_write(bio, "", 1);
    BIO_get_mem_data(bio, &pem);
    CHECK(mail_dkim_key_load(pem, err, sizeof err) == NULL && strstr(err, "Ed25519"));
    (void)BIO_reset(bio);
    PEM_write_bio_PKCS8PrivateKey(bio, ec, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
    BIO_write(bio, "", 1);
    BIO_get_mem_data(bio, &pem);
    CHECK(mail_dkim_key_load(pem, err, sizeof err) == NULL);
    BIO_free(bio);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);

    struct mail_dkim_key *k = load_seed(rfc_ed_seed);
    if (!k) {
        CHECK(false);
        return;
    }
    struct mail_dkim_signer s = {
        .domain = "example.com", .selector = "s", .key = k, .time_s = T_SIGN};
    struct buf out;
    buf_init(&out);
    const char ok[] = "From: a@example.com\r\n\r\nx\r\n";
    const struct {
        const char *msg, *headers, *domain, *selector;
    } bad[] = {
        {"To: a@example.com\r\n\r\nx\r\n", NULL, "example.com", "s"}, /* no From */
        {ok, "To:Subject", "example.com", "s"},                       /* From not listed */
        {ok, "From::To", "example.com", "s"},
        {ok, "From;To", "example.com", "s"},
        {ok, "", "example.com", "s"},
        {ok, NULL, "example.com; x=y", "s"},
        {ok, NULL, "", "s"},
        {ok, NULL, "example.com", "s\r\nBcc: x"},
        {"", NULL, "example.com", "s"}, /* no header at all */
        {"\r\nFrom: a@b\r\n", NULL, "example.com", "s"},
        {"From: a@b\r\nnot a field\r\n\r\n", NULL, "example.com", "s"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.headers = bad[i].headers;
        s.domain = bad[i].domain;
        s.selector = bad[i].selector;
        err[0] = '\0';
        buf_reset(&out);
        CHECK(mail_dkim_sign(bad[i].msg, strlen(bad[i].msg), &s, &out, err, sizeof err) == -1);
        CHECK(err[0] != '\0' && out.len == 0);
    }
    s.domain = "example.com";
    s.selector = "s";
    s.headers = NULL;
    s.time_s = -1;
    CHECK(mail_dkim_sign(ok, strlen(ok), &s, &out, err, sizeof err) == -1);
    s.time_s = 0;
    s.key = NULL;
    CHECK(mail_dkim_sign(ok, strlen(ok), &s, &out, err, sizeof err) == -1);
    s.key = k;
    CHECK(mail_dkim_sign(NULL, 0, &s, &out, err, sizeof err) == -1); /* an empty struct buf */
    buf_free(&out);
    mail_dkim_key_free(k);
}

/* One loaded key shared by several threads, each signing and verifying. */
struct worker_arg {
    const struct mail_dkim_key *key;
    int failures;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    struct mail_dkim_signer s = {
        .domain = "example.com", .selector = "t", .key = a->key, .time_s = T_SIGN};
    struct buf out;
    buf_init(&out);
    for (int i = 0; i < 40; i++) {
        const struct text *m = &messages[i % (sizeof messages / sizeof messages[0])];
        a->failures += !sign_verify(&s, m->p, m->len, &out);
    }
    buf_free(&out);
    return NULL;
}

static void test_threads(void)
{
    struct mail_dkim_key *keys[2] = {load_seed(rfc_ed_seed), load(rfc_rsa_pem)};
    pthread_t t[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){keys[i % 2], 0};
        pthread_create(&t[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(args[i].failures == 0);
    }
    mail_dkim_key_free(keys[0]);
    mail_dkim_key_free(keys[1]);
}

int main(void)
{
    test_canon_header();
    test_body_hash();
    test_rfc8463();
    test_format();
    test_keygen_round_trips();
    test_errors();
    test_threads();
    return UNIT_END();
}
