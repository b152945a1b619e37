/* DKIM signing (RFC 6376 §3.5, §3.7, §5.4; Ed25519 per RFC 8463): keys, their DNS
 * records and the DKIM-Signature header field. A key is loaded once and shared by every
 * thread: each signature gets its own EVP_MD_CTX and nothing here writes to the EVP_PKEY.
 * Canonicalization is in dkim_canon.c. */
#include "mail/mail_internal.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DKIM_COLUMNS 78    /* folding width (RFC 5322 §2.1.1) */
#define DKIM_TAB 8         /* a continuation line's tab, counted as wide as it shows */
#define DKIM_MAX_TOKEN 253 /* d= and s= */
#define DKIM_MAX_NAME 100  /* one h= header name; real ones are far shorter */
#define DKIM_MAX_SIG 512   /* RSA-4096 */

struct mail_dkim_key {
    EVP_PKEY *pkey;
    enum mail_dkim_alg alg;
};

/* An OpenSSL failure leaves errors queued on the thread; clear them so that its next TLS
 * call does not misread them as its own. */
static int openssl_fail(void)
{
    ERR_clear_error();
    return -1;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return openssl_fail();
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- keys ---- */

/* Through a secure-memory BIO, which wipes its copy of the private key when freed. */
static int key_private_pem(EVP_PKEY *pkey, struct buf *out)
{
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long n = 0;
    if (bio && PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1)
        n = BIO_get_mem_data(bio, &data);
    if (n > 0)
        buf_append(out, data, (size_t)n);
    BIO_free(bio);
    return n > 0 ? 0 : -1;
}

int mail_dkim_keygen(int bits, struct buf *private_pem, struct buf *public_b64)
{
    if (bits != 0 && (bits < 1024 || bits > 4096))
        return -1;
    struct mail_dkim_key k;
    k.alg = bits ? MAIL_DKIM_RSA_SHA256 : MAIL_DKIM_ED25519_SHA256;
    k.pkey = bits ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
                  : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    int rc = -1;
    if (k.pkey && key_private_pem(k.pkey, private_pem) == 0)
        rc = mail_dkim_key_public(&k, public_b64);
    EVP_PKEY_free(k.pkey);
    return rc == 0 ? 0 : openssl_fail();
}

/* Refuses encrypted keys; OpenSSL's default callback would prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* RFC 8301 §3.2: signers use at least 1024 bits, verifiers handle up to 4096. */
static int key_check(EVP_PKEY *pkey, enum mail_dkim_alg *alg, char *err, size_t errlen)
{
    *alg = MAIL_DKIM_ED25519_SHA256;
    if (EVP_PKEY_is_a(pkey, "ED25519"))
        return 0;
    *alg = MAIL_DKIM_RSA_SHA256;
    if (!EVP_PKEY_is_a(pkey, "RSA"))
        return fail(err, errlen, "The DKIM key must be an RSA or Ed25519 key.");
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < 1024 || bits > 4096)
        return fail(err, errlen, "A DKIM RSA key must have 1024 to 4096 bits.");
    return 0;
}

struct mail_dkim_key *mail_dkim_key_load(const char *pem, char *err, size_t errlen)
{
    BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    BIO_free(bio);
    if (!pkey) {
        fail(err, errlen, "The DKIM key is not an unencrypted PEM private key.");
        return NULL;
    }
    enum mail_dkim_alg alg;
    if (key_check(pkey, &alg, err, errlen) != 0) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    struct mail_dkim_key *k = malloc(sizeof *k);
    if (!k)
        abort(); /* out of memory: nothing sensible to do mid-request */
    k->pkey = pkey;
    k->alg = alg;
    return k;
}

void mail_dkim_key_free(struct mail_dkim_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

enum mail_dkim_alg mail_dkim_key_alg(const struct mail_dkim_key *k)
{
    return k->alg;
}

/* RFC 6376 §3.6.1 for RSA (a SubjectPublicKeyInfo), RFC 8463 §4.2 for Ed25519 (the bare
 * 32-byte key). */
int mail_dkim_key_public(const struct mail_dkim_key *k, struct buf *public_b64)
{
    unsigned char der[1024], *p = der;
    size_t n = sizeof der;
    if (k->alg == MAIL_DKIM_ED25519_SHA256) {
        if (EVP_PKEY_get_raw_public_key(k->pkey, der, &n) != 1)
            return openssl_fail();
    } else {
        int len = i2d_PUBKEY(k->pkey, NULL);
        if (len <= 0 || len > (int)sizeof der || i2d_PUBKEY(k->pkey, &p) != len)
            return openssl_fail();
        n = (size_t)len;
    }
    char b64[4 * (sizeof der / 3 + 1) + 1];
    buf_append(public_b64, b64, core_base64_encode(der, n, b64));
    return 0;
}

int mail_dkim_key_record(const struct mail_dkim_key *k, struct buf *txt)
{
    size_t start = txt->len;
    buf_puts(txt,
             k->alg == MAIL_DKIM_ED25519_SHA256 ? "v=DKIM1; k=ed25519; p=" : "v=DKIM1; k=rsa; p=");
    if (mail_dkim_key_public(k, txt) == 0)
        return 0;
    txt->len = start;
    txt->data[start] = '\0';
    return -1;
}

/* ---- which header fields are signed ---- */

struct dkim_name {
    const char *p;
    size_t len;
};

struct dkim_field {
    struct mail_field f;
    bool taken; /* by an h= entry already */
};

struct dkim_plan {
    const char *msg;
    struct dkim_name h[MAIL_DKIM_MAX_HEADERS]; /* h=, as it will be written */
    int count;
    struct dkim_field *fields; /* the message's fields named in h=, top to bottom */
    size_t nfields, cap;
    size_t header_len; /* where the body starts */
};

static bool name_is(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool field_is(const struct mail_field *f, const struct dkim_name *h)
{
    return name_is(f->name, f->name_len, h->p, h->len);
}

/* A field name's characters (RFC 5322 §3.6.8), less ';', which would end the h= tag. */
static bool name_char(char c)
{
    return c > ' ' && c < 127 && c != ':' && c != ';';
}

/* The colon-separated h= candidates; WSP around a name is dropped. */
static int parse_names(const char *list, struct dkim_plan *pl, char *err, size_t errlen)
{
    const char *p = list;
    for (;;) {
        while (is_wsp(*p))
            p++;
        size_t n = 0;
        while (name_char(p[n]))
            n++;
        if (n == 0 || n > DKIM_MAX_NAME)
            return fail(err, errlen, "The DKIM header list has an empty or invalid name.");
        if (pl->count == MAIL_DKIM_MAX_HEADERS)
            return fail(err, errlen, "The DKIM header list has too many names.");
        pl->h[pl->count++] = (struct dkim_name){p, n};
        p += n;
        while (is_wsp(*p))
            p++;
        if (*p == '\0')
            return 0;
        if (*p++ != ':')
            return fail(err, errlen, "The DKIM header list has an invalid character.");
    }
}

static bool listed(const struct dkim_plan *pl, const struct mail_field *f)
{
    for (int i = 0; i < pl->count; i++) {
        if (field_is(f, &pl->h[i]))
            return true;
    }
    return false;
}

/* One pass over the header section, keeping only the fields h= may name. */
static int collect_fields(struct dkim_plan *pl, size_t len, char *err, size_t errlen)
{
    struct mail_fields it;
    struct mail_field f;
    int r;
    mail_fields_init(&it, pl->msg, len);
    while ((r = mail_fields_next(&it, &f)) == 1) {
        if (!listed(pl, &f))
            continue;
        if (pl->nfields == pl->cap) {
            pl->cap = pl->cap ? 2 * pl->cap : 16;
            pl->fields = realloc(pl->fields, pl->cap * sizeof *pl->fields);
            if (!pl->fields)
                abort(); /* out of memory: nothing sensible to do mid-request */
        }
        pl->fields[pl->nfields++] = (struct dkim_field){f, false};
    }
    if (r < 0)
        return fail(err, errlen, "The message's header section does not parse.");
    pl->header_len = it.header_len;
    return 0;
}

static size_t instances(const struct dkim_plan *pl, const struct dkim_name *h)
{
    size_t n = 0;
    for (size_t i = 0; i < pl->nfields; i++)
        n += field_is(&pl->fields[i].f, h);
    return n;
}

/* The default list names only the fields the message has. */
static void keep_present(struct dkim_plan *pl)
{
    int n = 0;
    for (int i = 0; i < pl->count; i++) {
        if (instances(pl, &pl->h[i]) > 0)
            pl->h[n++] = pl->h[i];
    }
    pl->count = n;
}

/* RFC 6376 §5.4: From must be signed; a signature without it is worthless to verifiers. */
static int check_from(const struct dkim_plan *pl, char *err, size_t errlen)
{
    static const struct dkim_name from = {"From", 4};
    bool in_h = false;
    for (int i = 0; i < pl->count; i++)
        in_h = in_h || name_is(pl->h[i].p, pl->h[i].len, from.p, from.len);
    if (!in_h)
        return fail(err, errlen, "The DKIM header list must include From.");
    if (instances(pl, &from) == 0)
        return fail(err, errlen, "A message to sign with DKIM must have a From header.");
    return 0;
}

/* §5.4.2: an h= entry takes the bottom-most instance of its name not taken yet; none
 * left (oversigning) signs the field's absence. */
static const struct mail_field *take_field(struct dkim_plan *pl, const struct dkim_name *h)
{
    for (size_t i = pl->nfields; i-- > 0;) {
        struct dkim_field *df = &pl->fields[i];
        if (!df->taken && field_is(&df->f, h)) {
            df->taken = true;
            return &df->f;
        }
    }
    return NULL;
}

static int plan_headers(struct dkim_plan *pl, size_t len, const struct mail_dkim_signer *s,
                        char *err, size_t errlen)
{
    if (parse_names(s->headers ? s->headers : MAIL_DKIM_DEFAULT_HEADERS, pl, err, errlen) != 0 ||
        collect_fields(pl, len, err, errlen) != 0)
        return -1;
    if (!s->headers)
        keep_present(pl);
    return check_from(pl, err, errlen);
}

/* ---- the DKIM-Signature field ---- */

struct fold {
    struct buf *out;
    size_t col;
};

/* Starts a continuation line when `need` more columns would pass the limit, else
 * writes the separating space if asked (not right after a fold, whose tab separates). A
 * word too long for any line (a long d=) goes on a line of its own, past the limit. */
static void fold_room(struct fold *f, size_t need, bool space)
{
    if (f->col + need + (space ? 1 : 0) > DKIM_COLUMNS && f->col > DKIM_TAB) {
        buf_append(f->out, "\r\n\t", 3);
        f->col = DKIM_TAB;
    } else if (space && f->col > DKIM_TAB) {
        buf_append(f->out, " ", 1);
        f->col++;
    }
}

static void fold_word(struct fold *f, const char *w, bool space)
{
    size_t n = strlen(w);
    fold_room(f, n, space);
    buf_append(f->out, w, n);
    f->col += n;
}

/* Base64 may be broken by FWS anywhere (RFC 6376 §2.4), so the value fills each line. */
static void fold_base64(struct fold *f, const char *v, size_t n)
{
    while (n > 0) {
        if (f->col >= DKIM_COLUMNS) {
            buf_append(f->out, "\r\n\t", 3);
            f->col = DKIM_TAB;
        }
        size_t k = DKIM_COLUMNS - f->col < n ? DKIM_COLUMNS - f->col : n;
        buf_append(f->out, v, k);
        f->col += k;
        v += k;
        n -= k;
    }
}

/* h= may be folded only around its colons (§3.5), so each name is a word of its own. */
static void write_h(struct fold *f, const struct dkim_plan *pl)
{
    char word[DKIM_MAX_NAME + 4];
    for (int i = 0; i < pl->count; i++) {
        snprintf(word, sizeof word, "%s%.*s%c", i == 0 ? "h=" : "", (int)pl->h[i].len, pl->h[i].p,
                 i + 1 == pl->count ? ';' : ':');
        fold_word(f, word, i == 0);
    }
}

/* Everything up to and including "b=", in the tag order of SES's signatures. */
static void write_tags(struct fold *f, const struct mail_dkim_signer *s, const struct dkim_plan *pl,
                       const unsigned char bh[32])
{
    char word[DKIM_MAX_TOKEN + 8], bh64[45];
    buf_puts(f->out, "DKIM-Signature:");
    f->col = strlen("DKIM-Signature:");
    fold_word(f, "v=1;", true);
    fold_word(f, s->key->alg == MAIL_DKIM_ED25519_SHA256 ? "a=ed25519-sha256;" : "a=rsa-sha256;",
              true);
    fold_word(f, "q=dns/txt;", true);
    fold_word(f, s->relaxed_body ? "c=relaxed/relaxed;" : "c=relaxed/simple;", true);
    snprintf(word, sizeof word, "s=%s;", s->selector);
    fold_word(f, word, true);
    snprintf(word, sizeof word, "d=%s;", s->domain);
    fold_word(f, word, true);
    snprintf(word, sizeof word, "t=%lld;", (long long)s->time_s);
    fold_word(f, word, true);
    write_h(f, pl);
    core_base64_encode(bh, 32, bh64);
    snprintf(word, sizeof word, "bh=%s;", bh64);
    fold_word(f, word, true);
    fold_room(f, strlen("b=") + 16, true); /* some of the value on the line of its tag */
    buf_append(f->out, "b=", 2);
    f->col += 2;
}

/* The data signed (§3.7): each h= entry's field, relaxed, then this DKIM-Signature with
 * b= empty and without its CRLF. Canonicalizing the very text written keeps what is
 * signed and what verifiers rebuild in step, however the field was folded. */
static void signed_data(struct dkim_plan *pl, const char *sig_field, size_t sig_len,
                        struct buf *data)
{
    for (int i = 0; i < pl->count; i++) {
        const struct mail_field *f = take_field(pl, &pl->h[i]);
        if (f)
            mail_dkim_canon_header_relaxed(pl->msg + f->start, f->end - f->start, data);
    }
    mail_dkim_canon_header_relaxed(sig_field, sig_len, data);
    data->len -= 2;
    data->data[data->len] = '\0';
}

static int sign_data(const struct mail_dkim_key *k, const struct buf *data, unsigned char *sig,
                     size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const unsigned char *in = (const unsigned char *)data->data;
    unsigned char digest[32];
    int ok;
    if (k->alg == MAIL_DKIM_RSA_SHA256) {
        ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, in, data->len) == 1;
    } else {
        /* RFC 8463 §3: PureEdDSA over the SHA-256 hash of the data, not the data itself. */
        ok = ctx && EVP_Digest(in, data->len, digest, NULL, EVP_sha256(), NULL) == 1 &&
             EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, digest, sizeof digest) == 1;
    }
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int sign_planned(struct dkim_plan *pl, size_t len, const struct mail_dkim_signer *s,
                        struct buf *out, char *err, size_t errlen)
{
    unsigned char bh[32], sig[DKIM_MAX_SIG];
    size_t siglen = sizeof sig, start = out->len;
    mail_dkim_body_hash(pl->msg + pl->header_len, len - pl->header_len, s->relaxed_body, bh);
    struct fold f = {out, 0};
    write_tags(&f, s, pl, bh);
    struct buf data;
    buf_init(&data);
    signed_data(pl, out->data + start, out->len - start, &data);
    int rc = sign_data(s->key, &data, sig, &siglen);
    buf_free(&data);
    if (rc != 0) {
        out->len = start;
        out->data[start] = '\0';
        return fail(err, errlen, "DKIM signing failed in OpenSSL.");
    }
    char b64[4 * (DKIM_MAX_SIG / 3 + 1) + 1];
    fold_base64(&f, b64, core_base64_encode(sig, siglen, b64));
    buf_append(out, "\r\n", 2);
    return 0;
}

/* d= and s=: the characters of DNS labels (A-labels), so nothing can end the tag. */
static bool token_valid(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > DKIM_MAX_TOKEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

int mail_dkim_sign(const char *msg, size_t len, const struct mail_dkim_signer *s, struct buf *out,
                   char *err, size_t errlen)
{
    if (!s->key)
        return fail(err, errlen, "DKIM signing needs a key.");
    if (!token_valid(s->domain) || !token_valid(s->selector))
        return fail(err, errlen, "The DKIM domain or selector is not a valid DNS name.");
    if (s->time_s < 0)
        return fail(err, errlen, "The DKIM signature time is negative.");
    struct dkim_plan pl;
    memset(&pl, 0, sizeof pl);
    pl.msg = msg ? msg : ""; /* an empty buffer may have no storage yet */
    int rc = plan_headers(&pl, len, s, err, errlen);
    if (rc == 0)
        rc = sign_planned(&pl, len, s, out, err, errlen);
    free(pl.fields);
    return rc;
}
