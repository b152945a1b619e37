/* auth helpers: messages, header and query access, HTTP dates, HMAC and the SigV4 key chain. */
#include "auth/auth_int.h"

#include <pthread.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum auth_status auth_fail(struct auth_result *out, enum auth_status st, const char *fmt, ...)
{
    if (out) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out->message, sizeof out->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

const char *auth_header_get(const struct auth_request *req, const char *name)
{
    for (size_t i = 0; i < req->header_count; i++) {
        if (req->headers[i].name && req->headers[i].value &&
            core_strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    }
    return NULL;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

bool auth_prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        if (ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*prefix))
            return false;
    }
    return true;
}

bool auth_span_eq_ci(const char *p, size_t len, const char *s)
{
    for (size_t i = 0; i < len; i++) {
        if (!s[i] || ascii_lower((unsigned char)p[i]) != ascii_lower((unsigned char)s[i]))
            return false;
    }
    return s[len] == '\0';
}

bool auth_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- dates ---- */

struct civil_time {
    int year, month, day, hour, min, sec; /* month 1-12 */
    int zone_s;                           /* offset east of UTC */
};

/* Days since 1970-01-01 in the proleptic Gregorian calendar (era arithmetic, so no loops). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static bool civil_to_epoch(const struct civil_time *t, int64_t *out)
{
    if (t->year < 1970 || t->year > 9999 || t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > days_in_month(t->year, t->month) || t->hour < 0 || t->hour > 23 || t->min < 0 ||
        t->min > 59 || t->sec < 0 || t->sec > 60)
        return false;
    *out = days_from_civil(t->year, t->month, t->day) * 86400 + t->hour * 3600 + t->min * 60 +
           t->sec - t->zone_s;
    return true;
}

static int month_from_name(const char *name)
{
    static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
    if (strlen(name) != 3)
        return 0;
    for (int i = 0; i < 12; i++) {
        if (auth_prefix_ci(name, months[i]))
            return i + 1;
    }
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static int digits_value(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* GMT, UT, UTC, Z, or +hhmm / -hhmm. */
static bool parse_zone(const char *z, int *zone_s)
{
    if (core_strcasecmp(z, "GMT") == 0 || core_strcasecmp(z, "UTC") == 0 ||
        core_strcasecmp(z, "UT") == 0 || strcmp(z, "Z") == 0) {
        *zone_s = 0;
        return true;
    }
    if ((z[0] != '+' && z[0] != '-') || strlen(z) != 5 || !all_digits(z + 1, 4))
        return false;
    int hh = digits_value(z + 1, 2), mm = digits_value(z + 3, 2);
    if (hh > 23 || mm > 59)
        return false;
    *zone_s = (z[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    return true;
}

/* 20150830T123600Z */
static bool parse_iso_basic(const char *s, struct civil_time *t)
{
    if (strlen(s) != 16 || !all_digits(s, 8) || s[8] != 'T' || !all_digits(s + 9, 6) ||
        s[15] != 'Z')
        return false;
    *t = (struct civil_time){digits_value(s, 4),
                             digits_value(s + 4, 2),
                             digits_value(s + 6, 2),
                             digits_value(s + 9, 2),
                             digits_value(s + 11, 2),
                             digits_value(s + 13, 2),
                             0};
    return true;
}

/* True when sscanf consumed the whole string (trailing blanks allowed). */
static bool consumed(const char *s, int n)
{
    if (n <= 0)
        return false;
    for (s += n; *s; s++) {
        if (!auth_is_space((unsigned char)*s))
            return false;
    }
    return true;
}

/* RFC 1123 (with or without the weekday), RFC 850 and asctime. Field widths keep sscanf's
 * integer conversions from overflowing. */
static bool parse_http_date(const char *s, struct civil_time *t)
{
    char mon[4] = "", zone[8] = "";
    int n = 0;
    memset(t, 0, sizeof *t);
    bool ok = (sscanf(s, "%*[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %7s%n", &t->day, mon, &t->year,
                      &t->hour, &t->min, &t->sec, zone, &n) == 7 &&
               consumed(s, n)) ||
              (sscanf(s, "%2d %3[A-Za-z] %4d %2d:%2d:%2d %7s%n", &t->day, mon, &t->year, &t->hour,
                      &t->min, &t->sec, zone, &n) == 7 &&
               consumed(s, n));
    if (!ok &&
        sscanf(s, "%*[A-Za-z], %2d-%3[A-Za-z]-%4d %2d:%2d:%2d %7s%n", &t->day, mon, &t->year,
               &t->hour, &t->min, &t->sec, zone, &n) == 7 &&
        consumed(s, n)) {
        ok = true;
        if (t->year < 100) /* RFC 850's two-digit year */
            t->year += t->year < 70 ? 2000 : 1900;
    }
    if (!ok &&
        sscanf(s, "%*[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", mon, &t->day, &t->hour, &t->min,
               &t->sec, &t->year, &n) == 6 &&
        consumed(s, n)) {
        ok = true;
        strcpy(zone, "GMT"); /* asctime dates are always UTC */
    }
    t->month = month_from_name(mon);
    return ok && t->month && parse_zone(zone, &t->zone_s);
}

bool auth_parse_date(const char *s, int64_t *out_s)
{
    struct civil_time t;
    if (!s)
        return false;
    while (auth_is_space((unsigned char)*s))
        s++;
    if (!parse_iso_basic(s, &t) && !parse_http_date(s, &t))
        return false;
    return civil_to_epoch(&t, out_s);
}

void auth_format_amz_date(int64_t t, char out[17])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        strcpy(out, "00000000T000000Z");
}

enum auth_status auth_check_skew(const struct auth_request *req, int64_t t, struct auth_result *out)
{
    char now[17], edge[17], when[17];
    int64_t skew = req->max_skew_s;
    if (req->now_s - t <= skew && t - req->now_s <= skew)
        return AUTH_OK;
    auth_format_amz_date(t, when);
    auth_format_amz_date(req->now_s, now);
    if (req->now_s - t > skew) {
        auth_format_amz_date(req->now_s - skew, edge);
        return auth_fail(out, AUTH_EXPIRED,
                         "Signature expired: %s is now earlier than %s (%s - %lld min.)", when,
                         edge, now, (long long)(skew / 60));
    }
    auth_format_amz_date(req->now_s + skew, edge);
    return auth_fail(out, AUTH_EXPIRED,
                     "Signature not yet current: %s is still later than %s (%s + %lld min.)", when,
                     edge, now, (long long)(skew / 60));
}

/* ---- digests ---- */

/* OpenSSL 3 looks up an algorithm by name on every one-shot HMAC() or EVP_Digest() given
 * a legacy EVP_MD; fetching once and copying a prepared context halves the cost of the
 * five HMACs and two digests of each SigV4 check. */
static struct {
    pthread_once_t once;
    EVP_MD *sha256;
    EVP_MAC_CTX *hmac[2]; /* indexed by enum auth_md; digest set, no key yet */
} digests = {PTHREAD_ONCE_INIT, NULL, {NULL, NULL}};

static void digests_fetch(void)
{
    static const char *names[2];
    names[AUTH_MD_SHA1] = "SHA1";
    names[AUTH_MD_SHA256] = "SHA256";
    digests.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    for (int i = 0; i < 2; i++) {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)names[i], 0),
            OSSL_PARAM_construct_end()};
        digests.hmac[i] = mac ? EVP_MAC_CTX_new(mac) : NULL;
        if (digests.hmac[i] && !EVP_MAC_CTX_set_params(digests.hmac[i], params)) {
            EVP_MAC_CTX_free(digests.hmac[i]);
            digests.hmac[i] = NULL;
        }
    }
    EVP_MAC_free(mac); /* the contexts hold their own references */
}

size_t auth_hmac(enum auth_md md, const void *key, size_t keylen, const void *data, size_t len,
                 unsigned char out[AUTH_MAX_DIGEST])
{
    pthread_once(&digests.once, digests_fetch);
    EVP_MAC_CTX *ctx = digests.hmac[md] ? EVP_MAC_CTX_dup(digests.hmac[md]) : NULL;
    size_t n = 0;
    /* OpenSSL wants a non-NULL key pointer even when the key is empty. */
    if (!ctx || !EVP_MAC_init(ctx, keylen ? key : (const void *)"", keylen, NULL) ||
        !EVP_MAC_update(ctx, len ? data : (const void *)"", len) ||
        !EVP_MAC_final(ctx, out, &n, AUTH_MAX_DIGEST))
        n = 0;
    EVP_MAC_CTX_free(ctx);
    return n;
}

void auth_sha256(const void *data, size_t len, unsigned char out[AUTH_SHA256_LEN])
{
    pthread_once(&digests.once, digests_fetch);
    if (!digests.sha256 || !EVP_Digest(len ? data : "", len, out, NULL, digests.sha256, NULL))
        memset(out, 0, AUTH_SHA256_LEN);
}

static void hmac_step(unsigned char key[AUTH_SHA256_LEN], const char *data)
{
    unsigned char next[AUTH_MAX_DIGEST];
    auth_hmac(AUTH_MD_SHA256, key, AUTH_SHA256_LEN, data, strlen(data), next);
    memcpy(key, next, AUTH_SHA256_LEN);
    OPENSSL_cleanse(next, sizeof next);
}

void auth_sigv4_signing_key(const char *secret, const char *scope_date, const char *region,
                            const char *service, unsigned char key[AUTH_SHA256_LEN])
{
    struct buf k;
    unsigned char first[AUTH_MAX_DIGEST];
    buf_init(&k);
    buf_puts(&k, "AWS4");
    buf_puts(&k, secret);
    auth_hmac(AUTH_MD_SHA256, k.data, k.len, scope_date, strlen(scope_date), first);
    memcpy(key, first, AUTH_SHA256_LEN);
    hmac_step(key, region);
    hmac_step(key, service);
    hmac_step(key, "aws4_request");
    OPENSSL_cleanse(k.data, k.len);
    OPENSSL_cleanse(first, sizeof first);
    buf_free(&k);
}

/* ---- query strings ---- */

size_t auth_pct_decode(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = core_hex_value((unsigned char)s[i + 1])) >= 0 &&
            (lo = core_hex_value((unsigned char)s[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return n;
}

bool auth_query_next(const char **cursor, struct auth_kv *it)
{
    const char *p = *cursor;
    if (!p)
        return false;
    while (*p == '&')
        p++;
    if (!*p) {
        *cursor = p;
        return false;
    }
    const char *end = strchr(p, '&');
    if (!end)
        end = p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    it->name = p;
    it->name_len = (size_t)((eq ? eq : end) - p);
    it->value = eq ? eq + 1 : end;
    it->value_len = (size_t)(end - it->value);
    *cursor = end;
    return true;
}

bool auth_param_next(const char **cursor, struct auth_kv *it)
{
    const char *p = *cursor;
    while (*p == ',' || auth_is_space((unsigned char)*p))
        p++;
    *cursor = p;
    if (!*p)
        return false;
    const char *end = strchr(p, ',');
    if (!end)
        end = p + strlen(p);
    const char *last = end;
    while (last > p && auth_is_space((unsigned char)last[-1]))
        last--;
    const char *eq = memchr(p, '=', (size_t)(last - p));
    it->name = p;
    it->name_len = (size_t)((eq ? eq : last) - p);
    while (it->name_len && auth_is_space((unsigned char)p[it->name_len - 1]))
        it->name_len--;
    it->value = eq ? eq + 1 : last;
    while (it->value < last && auth_is_space((unsigned char)*it->value))
        it->value++;
    it->value_len = (size_t)(last - it->value);
    *cursor = end;
    return true;
}

static char *decode_span(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        abort();
    *out_len = auth_pct_decode(s, len, out);
    return out;
}

char *auth_query_get(const char *query, const char *name)
{
    struct auth_kv it;
    const char *cur = query;
    size_t want = strlen(name), n;
    while (auth_query_next(&cur, &it)) {
        char *decoded = decode_span(it.name, it.name_len, &n);
        /* Compared with the length, so that "Name%00junk" is not Name. */
        bool match = n == want && memcmp(decoded, name, n) == 0;
        free(decoded);
        if (match)
            return decode_span(it.value, it.value_len, &n);
    }
    return NULL;
}
