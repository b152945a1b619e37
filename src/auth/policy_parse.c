/* IAM policy documents (spec 20 §8): parsed with jansson, checked against what an SES user
 * policy can say, and compiled into the form policy_eval.c walks. Errors name the line
 * and column of the offending key or value; jansson keeps no positions for its nodes, so
 * locate() finds the element again in the raw text from its path in the document. */
#include "auth/auth_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PATH_MAX_DEPTH 8       /* Statement, i, Condition, operator, key, j */
#define MAX_EPOCH 253402300799 /* 9999-12-31T23:59:59Z */
#define MSG_MAX 320
#define QUOTE_MAX 64 /* bytes of the user's text quoted in a message */

/* One step from a value into it: a key of an object or an index of an array. */
struct path_step {
    const char *key; /* NULL: index */
    size_t index;
};

/* The compiled policy is one allocation. The first pass over the document validates and
 * counts (measuring, the arrays NULL and writes going to scratch); the second pass runs
 * the same code again and stores into the arrays. */
struct builder {
    bool measuring;
    size_t statements, conds, values, patterns, chars; /* used so far */
    struct policy_statement *statement_base;
    struct policy_cond *cond_base;
    union policy_value *value_base;
    const char **pattern_base;
    char *char_base;
    struct policy_statement scratch_statement;
    struct policy_cond scratch_cond;
    union policy_value scratch_value;
};

struct parser {
    const char *text;
    size_t len;
    char *err;
    size_t errlen;
    struct path_step path[PATH_MAX_DEPTH]; /* where the element being checked is */
    int depth;
    struct builder b;
};

enum error_at { AT_VALUE, AT_KEY };

/* ---- locating an element in the raw text ---- */

static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && auth_is_space((unsigned char)t[i]))
        i++;
    return i < len ? i : len;
}

/* From the opening quote to just past the closing one. */
static size_t skip_string(const char *t, size_t len, size_t i)
{
    for (i++; i < len && t[i] != '"'; i++) {
        if (t[i] == '\\')
            i++;
    }
    return i < len ? i + 1 : len;
}

static size_t skip_value(const char *t, size_t len, size_t i)
{
    if (i < len && t[i] == '"')
        return skip_string(t, len, i);
    if (i < len && t[i] != '{' && t[i] != '[') {
        while (i < len && !strchr(",}] \t\r\n", t[i]))
            i++;
        return i;
    }
    for (int depth = 0; i < len;) {
        if (t[i] == '"') {
            i = skip_string(t, len, i);
            continue;
        }
        if (t[i] == '{' || t[i] == '[')
            depth++;
        else if ((t[i] == '}' || t[i] == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return len;
}

/* True when the JSON string token t[i, end) decodes to key. */
static bool token_is(const char *t, size_t i, size_t end, const char *key)
{
    if (end - i < 2)
        return false;
    size_t n = end - i - 2;
    if (!memchr(t + i, '\\', end - i))
        return strlen(key) == n && memcmp(t + i + 1, key, n) == 0;
    json_t *s = json_loadb(t + i, end - i, JSON_DECODE_ANY, NULL);
    bool same = json_is_string(s) && strcmp(json_string_value(s), key) == 0;
    json_decref(s);
    return same;
}

/* Offset of key, or of its value, in the object at t[i]; len when absent. */
static size_t find_member(const char *t, size_t len, size_t i, const char *key, bool want_key)
{
    if (i >= len || t[i] != '{')
        return len;
    for (i = skip_ws(t, len, i + 1); i < len && t[i] == '"';) {
        size_t end = skip_string(t, len, i);
        bool hit = token_is(t, i, end, key);
        size_t value = skip_ws(t, len, skip_ws(t, len, end) + 1); /* past the ':' */
        if (hit)
            return want_key ? i : value;
        i = skip_ws(t, len, skip_value(t, len, value));
        if (i < len && t[i] == ',')
            i = skip_ws(t, len, i + 1);
    }
    return len;
}

static size_t find_element(const char *t, size_t len, size_t i, size_t index)
{
    if (i >= len || t[i] != '[')
        return len;
    i = skip_ws(t, len, i + 1);
    for (size_t k = 0; k < index && i < len; k++) {
        i = skip_ws(t, len, skip_value(t, len, i));
        i = i < len && t[i] == ',' ? skip_ws(t, len, i + 1) : len;
    }
    return i;
}

/* Offset of the element the path leads to (with at_key, of its key); 0 when lost. The
 * text is valid JSON without duplicate keys, as jansson accepted it. */
static size_t locate(const struct parser *ps, enum error_at at)
{
    const char *t = ps->text;
    size_t len = ps->len, i = skip_ws(t, len, 0);
    for (int d = 0; d < ps->depth && i < len; d++) {
        const struct path_step *step = &ps->path[d];
        bool want_key = at == AT_KEY && d == ps->depth - 1;
        i = step->key ? find_member(t, len, i, step->key, want_key)
                      : find_element(t, len, i, step->index);
    }
    return i < len ? i : 0;
}

/* Columns count characters, not bytes, as jansson's do. */
static void line_column(const char *t, size_t offset, int *line, int *column)
{
    *line = *column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (t[i] == '\n') {
            ++*line;
            *column = 1;
        } else if (((unsigned char)t[i] & 0xC0) != 0x80) {
            ++*column;
        }
    }
}

/* ---- errors ---- */

static void report(struct parser *ps, int line, int column, const char *msg)
{
    if (ps->err && ps->errlen)
        snprintf(ps->err, ps->errlen, "line %d, column %d: %s", line > 0 ? line : 1,
                 column > 0 ? column : 1, msg);
}

static int fail(struct parser *ps, enum error_at at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parser *ps, enum error_at at, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line, column;
    line_column(ps->text, locate(ps, at), &line, &column);
    report(ps, line, column, msg);
    return -1;
}

/* The element the path points at, as written in the document. */
static const char *raw_token(const struct parser *ps, size_t *n)
{
    size_t at = locate(ps, AT_VALUE);
    *n = skip_value(ps->text, ps->len, at) - at;
    return ps->text + at;
}

static int bad_value(struct parser *ps, const char *op, const char *expected)
{
    size_t n;
    const char *raw = raw_token(ps, &n);
    return fail(ps, AT_VALUE, "Invalid value %.*s for %s: expected %s",
                (int)(n < QUOTE_MAX ? n : QUOTE_MAX), raw, op, expected);
}

static void enter_key(struct parser *ps, const char *key)
{
    if (ps->depth < PATH_MAX_DEPTH)
        ps->path[ps->depth] = (struct path_step){key, 0};
    ps->depth++;
}

static void enter_index(struct parser *ps, size_t index)
{
    if (ps->depth < PATH_MAX_DEPTH)
        ps->path[ps->depth] = (struct path_step){NULL, index};
    ps->depth++;
}

static void leave(struct parser *ps)
{
    ps->depth--;
}

/* ---- storage ---- */

static struct policy_statement *add_statement(struct builder *b)
{
    size_t i = b->statements++;
    return b->measuring ? &b->scratch_statement : &b->statement_base[i];
}

static struct policy_cond *add_cond(struct builder *b)
{
    size_t i = b->conds++;
    return b->measuring ? &b->scratch_cond : &b->cond_base[i];
}

static union policy_value *add_value(struct builder *b)
{
    size_t i = b->values++;
    return b->measuring ? &b->scratch_value : &b->value_base[i];
}

static const char *add_string(struct builder *b, const char *s, size_t n)
{
    size_t at = b->chars;
    b->chars += n + 1;
    if (b->measuring)
        return NULL;
    memcpy(b->char_base + at, s, n);
    b->char_base[at + n] = '\0';
    return b->char_base + at;
}

static void add_pattern(struct builder *b, const char *s)
{
    size_t i = b->patterns++;
    const char *copy = add_string(b, s, strlen(s));
    if (!b->measuring)
        b->pattern_base[i] = copy;
}

static size_t aligned(size_t n)
{
    size_t a = _Alignof(max_align_t);
    return (n + a - 1) / a * a;
}

/* One block for what the measuring pass counted; resets the builder to store into it. */
static struct auth_policy *allocate(struct builder *b)
{
    size_t statements = aligned(sizeof(struct auth_policy));
    size_t conds = statements + aligned(b->statements * sizeof(struct policy_statement));
    size_t values = conds + aligned(b->conds * sizeof(struct policy_cond));
    size_t patterns = values + aligned(b->values * sizeof(union policy_value));
    size_t chars = patterns + aligned(b->patterns * sizeof(char *));
    char *block = calloc(1, chars + b->chars);
    if (!block)
        return NULL;
    *b = (struct builder){.statement_base = (struct policy_statement *)(block + statements),
                          .cond_base = (struct policy_cond *)(block + conds),
                          .value_base = (union policy_value *)(block + values),
                          .pattern_base = (const char **)(block + patterns),
                          .char_base = block + chars};
    struct auth_policy *p = (struct auth_policy *)block;
    p->statements = b->statement_base;
    return p;
}

/* ---- values ---- */

/* JSON number syntax, or near it: what strtod takes, all of it, and finite. */
static bool parse_number(const char *s, double *out)
{
    char *end;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return false;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out);
}

static bool digits(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *out = *out * 10 + (s[i] - '0');
    }
    return true;
}

/* Z, +hh:mm, -hh:mm, +hhmm, -hhmm, or nothing (UTC). */
static bool parse_zone(const char **s, int *zone_s)
{
    const char *z = *s;
    int hh, mm;
    *zone_s = 0;
    if (*z == 'Z') {
        *s = z + 1;
        return true;
    }
    if (*z != '+' && *z != '-')
        return true;
    if (!digits(z + 1, 2, &hh))
        return false;
    bool colon = z[3] == ':';
    if (!digits(z + (colon ? 4 : 3), 2, &mm) || hh > 23 || mm > 59)
        return false;
    *zone_s = (*z == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    *s = z + (colon ? 6 : 5);
    return true;
}

static bool civil_seconds(int y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    if (y < 1970 || h > 23 || mi > 59 || s > 59)
        return false;
    time_t t = timegm(&tm);
    /* timegm turns February 30th into March 2nd; a changed date means it did not exist. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1)
        return false;
    *out = (int64_t)t;
    return true;
}

/* 2026-01-01, 2026-01-01T10:00Z, 2026-01-01T10:00:00.250+02:00. Fractions are dropped:
 * dates compare in whole seconds (policy_eval.c). */
static bool parse_iso8601(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, zone_s = 0;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    s += 10;
    if (*s == 'T') {
        if (!digits(s + 1, 2, &h) || s[3] != ':' || !digits(s + 4, 2, &mi))
            return false;
        s += 6;
        if (*s == ':') {
            if (!digits(s + 1, 2, &sec))
                return false;
            s += 3;
            if (*s == '.' && s[1] >= '0' && s[1] <= '9')
                s += 1 + strspn(s + 1, "0123456789");
        }
        if (!parse_zone(&s, &zone_s))
            return false;
    }
    if (*s || !civil_seconds(y, mo, d, h, mi, sec, out))
        return false;
    *out -= zone_s;
    return true;
}

static bool epoch_seconds(double d, int64_t *out)
{
    if (!(d >= 0 && d <= MAX_EPOCH))
        return false;
    *out = (int64_t)floor(d);
    return true;
}

static void mask_host_bits(struct policy_ip *ip)
{
    for (int i = 0; i < 16; i++) {
        int keep = ip->prefix - i * 8;
        ip->addr[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

/* An address, or a block with /prefix. An IPv4-mapped IPv6 block (::ffff:a.b.c.d/120)
 * becomes the IPv4 block it covers, so it needs at least 96 bits of prefix. */
static bool parse_cidr(const char *s, struct policy_ip *out)
{
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (!policy_ip_parse(s, n, out))
        return false;
    if (slash) {
        const char *p = slash + 1;
        size_t len = strlen(p);
        if (len == 0 || len > 3 || strspn(p, "0123456789") != len)
            return false;
        int prefix = atoi(p) - (out->family == 4 && memchr(s, ':', n) ? 96 : 0);
        if (prefix < 0 || prefix > out->prefix)
            return false;
        out->prefix = (uint8_t)prefix;
    }
    mask_host_bits(out);
    return true;
}

/* String* values: a string, or a number or boolean taken as written. */
static int string_value(struct parser *ps, json_t *item, union policy_value *v)
{
    size_t n;
    const char *s = json_string_value(item);
    if (s)
        n = strlen(s);
    else
        s = raw_token(ps, &n);
    v->str = add_string(&ps->b, s, n);
    return 0;
}

static int number_value(struct parser *ps, const char *op, json_t *item, union policy_value *v)
{
    const char *s = json_string_value(item);
    if (json_is_number(item))
        v->num = json_number_value(item);
    else if (!s || !parse_number(s, &v->num))
        return bad_value(ps, op, "a number");
    return 0;
}

static int date_value(struct parser *ps, const char *op, json_t *item, union policy_value *v)
{
    const char *s = json_string_value(item);
    double d;
    bool ok;
    if (json_is_number(item))
        ok = epoch_seconds(json_number_value(item), &v->date_s);
    else if (s && parse_number(s, &d))
        ok = epoch_seconds(d, &v->date_s);
    else
        ok = s && parse_iso8601(s, &v->date_s);
    if (!ok)
        return bad_value(ps, op,
                         "an ISO 8601 date such as 2026-01-01T00:00:00Z, or seconds since 1970");
    return 0;
}

/* Bool and Null: a JSON boolean or the string "true" or "false". */
static int flag_value(struct parser *ps, const char *op, json_t *item, union policy_value *v)
{
    const char *s = json_string_value(item);
    if (json_is_boolean(item))
        v->flag = json_is_true(item);
    else if (s && (core_strcasecmp(s, "true") == 0 || core_strcasecmp(s, "false") == 0))
        v->flag = core_strcasecmp(s, "true") == 0;
    else
        return bad_value(ps, op, "true or false");
    return 0;
}

static int ip_value(struct parser *ps, const char *op, json_t *item, union policy_value *v)
{
    const char *s = json_string_value(item);
    if (!s || !parse_cidr(s, &v->ip))
        return bad_value(ps, op, "an IPv4 or IPv6 address with an optional /prefix");
    return 0;
}

/* ---- conditions ---- */

struct operator
{
    const char *name;
    enum policy_family family;
    enum policy_cmp cmp;
    bool negated;
};

static const struct operator operators[] = {
    {"StringEquals", POLICY_STRING, POLICY_EQ, false},
    {"StringNotEquals", POLICY_STRING, POLICY_EQ, true},
    {"StringEqualsIgnoreCase", POLICY_STRING, POLICY_EQ_CI, false},
    {"StringNotEqualsIgnoreCase", POLICY_STRING, POLICY_EQ_CI, true},
    {"StringLike", POLICY_STRING, POLICY_LIKE, false},
    {"StringNotLike", POLICY_STRING, POLICY_LIKE, true},
    {"NumericEquals", POLICY_NUMERIC, POLICY_EQ, false},
    {"NumericNotEquals", POLICY_NUMERIC, POLICY_EQ, true},
    {"NumericLessThan", POLICY_NUMERIC, POLICY_LT, false},
    {"NumericLessThanEquals", POLICY_NUMERIC, POLICY_LE, false},
    {"NumericGreaterThan", POLICY_NUMERIC, POLICY_GT, false},
    {"NumericGreaterThanEquals", POLICY_NUMERIC, POLICY_GE, false},
    {"DateEquals", POLICY_DATE, POLICY_EQ, false},
    {"DateNotEquals", POLICY_DATE, POLICY_EQ, true},
    {"DateLessThan", POLICY_DATE, POLICY_LT, false},
    {"DateLessThanEquals", POLICY_DATE, POLICY_LE, false},
    {"DateGreaterThan", POLICY_DATE, POLICY_GT, false},
    {"DateGreaterThanEquals", POLICY_DATE, POLICY_GE, false},
    {"Bool", POLICY_BOOL, POLICY_EQ, false},
    {"IpAddress", POLICY_IP, POLICY_EQ, false},
    {"NotIpAddress", POLICY_IP, POLICY_EQ, true},
    {"Null", POLICY_NULL, POLICY_EQ, false},
};

#define FAMILY(f) (1u << (f))

struct condition_key {
    const char *name;
    const char *legacy; /* the hyphenated spelling, still accepted (spec 20 Q22) */
    enum policy_key key;
    unsigned families; /* the operators it takes, besides Null */
    const char *hint;
};

static const struct condition_key condition_keys[] = {
    {"aws:CurrentTime", "aws:current-time", POLICY_KEY_CURRENT_TIME, FAMILY(POLICY_DATE),
     "a Date operator"},
    {"aws:EpochTime", "aws:epoch-time", POLICY_KEY_EPOCH_TIME,
     FAMILY(POLICY_DATE) | FAMILY(POLICY_NUMERIC), "a Date or Numeric operator"},
    {"aws:SecureTransport", "aws:secure-transport", POLICY_KEY_SECURE_TRANSPORT,
     FAMILY(POLICY_BOOL), "Bool"},
    {"aws:SourceIp", "aws:source-ip", POLICY_KEY_SOURCE_IP, FAMILY(POLICY_IP),
     "IpAddress or NotIpAddress"},
    {"aws:UserAgent", "aws:user-agent", POLICY_KEY_USER_AGENT, FAMILY(POLICY_STRING),
     "a String operator"},
};

/* Operator names are case-sensitive, as in IAM; Null has no IfExists form. */
static const struct operator* find_operator(const char *name, bool *if_exists)
{
    static const char suffix[] = "IfExists";
    size_t n = strlen(name), suffix_len = sizeof suffix - 1;
    *if_exists = n > suffix_len && strcmp(name + n - suffix_len, suffix) == 0;
    if (*if_exists)
        n -= suffix_len;
    for (size_t i = 0; i < sizeof operators / sizeof operators[0]; i++) {
        const struct operator* op = & operators[i];
        if (strlen(op->name) == n && strncmp(op->name, name, n) == 0)
            return *if_exists && op->family == POLICY_NULL ? NULL : op;
    }
    return NULL;
}

static const struct condition_key *find_condition_key(const char *name)
{
    for (size_t i = 0; i < sizeof condition_keys / sizeof condition_keys[0]; i++) {
        if (core_strcasecmp(name, condition_keys[i].name) == 0 ||
            core_strcasecmp(name, condition_keys[i].legacy) == 0)
            return &condition_keys[i];
    }
    return NULL;
}

typedef int (*item_fn)(struct parser *ps, json_t *item, void *ctx);

/* Action, Resource and condition values: one item or a non-empty array of them. fn sees
 * each item with the path at it, and rejects what it cannot take (nested arrays too). */
static int each_item(struct parser *ps, json_t *v, const char *what, item_fn fn, void *ctx)
{
    if (!json_is_array(v))
        return fn(ps, v, ctx);
    if (json_array_size(v) == 0)
        return fail(ps, AT_VALUE, "%s must not be an empty array", what);
    for (size_t i = 0; i < json_array_size(v); i++) {
        enter_index(ps, i);
        if (fn(ps, json_array_get(v, i), ctx) < 0)
            return -1;
        leave(ps);
    }
    return 0;
}

struct value_ctx {
    const char *op; /* as written, with IfExists */
    enum policy_family family;
};

static int compile_value(struct parser *ps, json_t *item, void *ctx)
{
    const struct value_ctx *vc = ctx;
    if (!json_is_string(item) && !json_is_number(item) && !json_is_boolean(item))
        return fail(ps, AT_VALUE, "Condition values must be strings, numbers or booleans");
    union policy_value *v = add_value(&ps->b);
    switch (vc->family) {
    case POLICY_STRING:
        return string_value(ps, item, v);
    case POLICY_NUMERIC:
        return number_value(ps, vc->op, item, v);
    case POLICY_DATE:
        return date_value(ps, vc->op, item, v);
    case POLICY_IP:
        return ip_value(ps, vc->op, item, v);
    case POLICY_BOOL:
    case POLICY_NULL:
        return flag_value(ps, vc->op, item, v);
    }
    return 0;
}

/* One key of an operator's block; proto has the operator's fields. */
static int compile_condition(struct parser *ps, const char *op, const struct policy_cond *proto,
                             const char *key, json_t *values)
{
    const struct condition_key *k = find_condition_key(key);
    if (!k)
        return fail(ps, AT_KEY,
                    "Unknown condition key %.*s; SES policies support aws:CurrentTime, "
                    "aws:EpochTime, aws:SecureTransport, aws:SourceIp and aws:UserAgent",
                    QUOTE_MAX, key);
    if (proto->family != POLICY_NULL && !(k->families & FAMILY(proto->family)))
        return fail(ps, AT_KEY, "%s cannot be used with %s; use %s", op, k->name, k->hint);
    struct policy_cond *c = add_cond(&ps->b);
    size_t first = ps->b.values;
    *c = *proto;
    c->key = k->key;
    c->values = ps->b.measuring ? NULL : ps->b.value_base + first;
    struct value_ctx vc = {op, proto->family};
    if (each_item(ps, values, "A condition's value list", compile_value, &vc) < 0)
        return -1;
    c->value_count = (int)(ps->b.values - first);
    return 0;
}

static int compile_operator(struct parser *ps, const char *name, json_t *block)
{
    bool if_exists;
    const struct operator* op = find_operator(name, &if_exists);
    if (!op && (strncmp(name, "ForAllValues:", 13) == 0 || strncmp(name, "ForAnyValue:", 12) == 0))
        return fail(ps, AT_KEY,
                    "Unknown condition operator %.*s; set operators are for multivalued keys, "
                    "and SES's keys have one value",
                    QUOTE_MAX, name);
    if (!op)
        return fail(ps, AT_KEY, "Unknown condition operator %.*s", QUOTE_MAX, name);
    if (!json_is_object(block) || json_object_size(block) == 0)
        return fail(ps, AT_VALUE, "%s must map condition keys to values", name);
    struct policy_cond proto = {op->family, op->cmp, op->negated, if_exists, 0, 0, NULL};
    const char *key;
    json_t *values;
    json_object_foreach(block, key, values)
    {
        enter_key(ps, key);
        if (compile_condition(ps, name, &proto, key, values) < 0)
            return -1;
        leave(ps);
    }
    return 0;
}

/* Every operator must hold, and within one every key; policy_eval.c ANDs the list. */
static int compile_conditions(struct parser *ps, json_t *st, struct policy_statement *out)
{
    json_t *cond = json_object_get(st, "Condition");
    size_t first = ps->b.conds;
    out->conds = ps->b.measuring ? NULL : ps->b.cond_base + first;
    if (cond) {
        enter_key(ps, "Condition");
        if (!json_is_object(cond))
            return fail(ps, AT_VALUE, "Condition must be an object of condition operators");
        const char *op;
        json_t *block;
        json_object_foreach(cond, op, block)
        {
            enter_key(ps, op);
            if (compile_operator(ps, op, block) < 0)
                return -1;
            leave(ps);
        }
        leave(ps);
    }
    out->cond_count = (int)(ps->b.conds - first);
    return 0;
}

/* ---- statements ---- */

/* text itself when it is "*" or names a service Sesame answers ("ses:..." or "sns:...");
 * NULL, with the error reported, for anything else. */
static const char *action_name(struct parser *ps, const char *text)
{
    const char *colon = strchr(text, ':');
    if (strcmp(text, "*") == 0)
        return text;
    if (!colon)
        fail(ps, AT_VALUE, "Action %.*s has no service prefix; write ses:%.*s", QUOTE_MAX, text,
             QUOTE_MAX, text);
    else if (strcspn(text, "*?") < (size_t)(colon - text))
        fail(ps, AT_VALUE, "Wildcards are not allowed in the service prefix of action %.*s",
             QUOTE_MAX, text);
    else if (!auth_span_eq_ci(text, (size_t)(colon - text), "ses") &&
             !auth_span_eq_ci(text, (size_t)(colon - text), "sns"))
        fail(ps, AT_VALUE,
             "Action %.*s is not an SES or SNS action; only ses: and sns: actions are allowed",
             QUOTE_MAX, text);
    else if (!colon[1])
        fail(ps, AT_VALUE, "Action %.*s names no action", QUOTE_MAX, text);
    else
        return text;
    return NULL;
}

static void set_action_bit(struct policy_statement *st, int i)
{
    st->action_mask[i / 64] |= UINT64_C(1) << (i % 64);
}

/* Sets the bits of the table's actions that the item names. A pattern that names none
 * would silently do nothing, so it is an error, like an unknown name. */
static int compile_action(struct parser *ps, json_t *item, void *ctx)
{
    struct policy_statement *st = ctx;
    const char *text = json_string_value(item);
    if (!text)
        return fail(ps, AT_VALUE, "Actions must be strings such as \"ses:SendEmail\"");
    const char *name = action_name(ps, text);
    if (!name)
        return -1;
    if (!strpbrk(name, "*?")) {
        int i = policy_action_index(name);
        if (i < 0)
            return fail(ps, AT_VALUE, "Unknown action %.*s", QUOTE_MAX, name);
        set_action_bit(st, i);
    } else {
        int hits = 0;
        size_t literal = strcspn(name, "*?"); /* a cheap test before the glob */
        for (int i = 0; i < POLICY_ACTION_COUNT; i++) {
            if (strncasecmp(policy_action_names[i], name, literal) == 0 &&
                policy_glob(name, policy_action_names[i], true)) {
                set_action_bit(st, i);
                hits++;
            }
        }
        if (hits == 0)
            return fail(ps, AT_VALUE, "Action %.*s matches no SES or SNS action", QUOTE_MAX, text);
    }
    add_pattern(&ps->b, name);
    return 0;
}

static int compile_actions(struct parser *ps, json_t *st, struct policy_statement *out)
{
    json_t *action = json_object_get(st, "Action"), *not_action = json_object_get(st, "NotAction");
    if (action && not_action) {
        enter_key(ps, "NotAction");
        return fail(ps, AT_KEY, "A statement has Action or NotAction, not both");
    }
    if (!action && !not_action)
        return fail(ps, AT_VALUE, "Statement has no Action or NotAction");
    const char *key = action ? "Action" : "NotAction";
    size_t first = ps->b.patterns;
    out->not_action = !action;
    memset(out->action_mask, 0, sizeof out->action_mask);
    out->patterns = ps->b.measuring ? NULL : ps->b.pattern_base + first;
    enter_key(ps, key);
    if (each_item(ps, action ? action : not_action, key, compile_action, out) < 0)
        return -1;
    leave(ps);
    out->pattern_count = (int)(ps->b.patterns - first);
    return 0;
}

static int check_resource_item(struct parser *ps, json_t *item, void *ctx)
{
    (void)ctx;
    const char *s = json_string_value(item);
    if (!s || strcmp(s, "*") != 0)
        return fail(ps, AT_VALUE,
                    "Resource must be \"*\": SES policies do not support resource-level "
                    "permissions");
    return 0;
}

static int check_resource(struct parser *ps, json_t *st)
{
    json_t *v = json_object_get(st, "Resource");
    if (!v)
        return fail(ps, AT_VALUE,
                    "Statement has no Resource; SES policies use \"Resource\": \"*\"");
    enter_key(ps, "Resource");
    if (each_item(ps, v, "Resource", check_resource_item, NULL) < 0)
        return -1;
    leave(ps);
    return 0;
}

static int compile_effect(struct parser *ps, json_t *st, struct policy_statement *out)
{
    json_t *v = json_object_get(st, "Effect");
    if (!v)
        return fail(ps, AT_VALUE, "Statement has no Effect; it must be \"Allow\" or \"Deny\"");
    const char *s = json_string_value(v);
    enter_key(ps, "Effect");
    if (!s || (strcmp(s, "Allow") != 0 && strcmp(s, "Deny") != 0))
        return fail(ps, AT_VALUE, "Effect must be \"Allow\" or \"Deny\"");
    leave(ps);
    out->deny = strcmp(s, "Deny") == 0;
    return 0;
}

/* IAM's Sid is letters and digits only. */
static int check_sid(struct parser *ps, json_t *st)
{
    json_t *v = json_object_get(st, "Sid");
    const char *s = json_string_value(v);
    if (!v)
        return 0;
    enter_key(ps, "Sid");
    if (!s ||
        strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != strlen(s))
        return fail(ps, AT_VALUE, "Sid must contain only letters and digits");
    leave(ps);
    return 0;
}

/* IAM also rejects two statements with the same Sid. */
static int check_sid_unique(struct parser *ps, json_t *statements, size_t i)
{
    const char *sid = json_string_value(json_object_get(json_array_get(statements, i), "Sid"));
    for (size_t j = 0; sid && *sid && j < i; j++) {
        json_t *other = json_object_get(json_array_get(statements, j), "Sid");
        if (json_is_string(other) && strcmp(json_string_value(other), sid) == 0) {
            enter_key(ps, "Sid");
            return fail(ps, AT_VALUE, "Duplicate Sid %.*s; each statement needs its own", QUOTE_MAX,
                        sid);
        }
    }
    return 0;
}

static int check_statement_keys(struct parser *ps, json_t *st)
{
    static const char *const known[] = {"Sid",       "Effect",   "Action",
                                        "NotAction", "Resource", "Condition"};
    const char *key;
    json_t *v;
    json_object_foreach(st, key, v)
    {
        bool found = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !found; i++)
            found = strcmp(key, known[i]) == 0;
        enter_key(ps, key);
        if (strcmp(key, "Principal") == 0 || strcmp(key, "NotPrincipal") == 0)
            return fail(ps, AT_KEY,
                        "%s is not allowed in a user policy: it applies to the user it is "
                        "attached to",
                        key);
        if (strcmp(key, "NotResource") == 0)
            return fail(ps, AT_KEY,
                        "NotResource is not allowed in a user policy; use \"Resource\": \"*\"");
        if (!found)
            return fail(ps, AT_KEY, "Unknown statement element %.*s", QUOTE_MAX, key);
        leave(ps);
    }
    return 0;
}

static int compile_statement(struct parser *ps, json_t *st)
{
    if (!json_is_object(st))
        return fail(ps, AT_VALUE, "A statement must be an object");
    if (check_statement_keys(ps, st) < 0 || check_sid(ps, st) < 0)
        return -1;
    struct policy_statement *out = add_statement(&ps->b);
    if (compile_effect(ps, st, out) < 0 || compile_actions(ps, st, out) < 0 ||
        check_resource(ps, st) < 0 || compile_conditions(ps, st, out) < 0)
        return -1;
    return 0;
}

static int compile_statements(struct parser *ps, json_t *v)
{
    if (json_is_object(v))
        return compile_statement(ps, v);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(ps, AT_VALUE, "Statement must be an object or a non-empty array of objects");
    for (size_t i = 0; i < json_array_size(v); i++) {
        enter_index(ps, i);
        if (compile_statement(ps, json_array_get(v, i)) < 0 || check_sid_unique(ps, v, i) < 0)
            return -1;
        leave(ps);
    }
    return 0;
}

static int check_top_member(struct parser *ps, const char *key, json_t *v)
{
    const char *s = json_string_value(v);
    if (strcmp(key, "Version") == 0) {
        if (!s || (strcmp(s, "2012-10-17") != 0 && strcmp(s, "2008-10-17") != 0))
            return fail(ps, AT_VALUE, "Version must be \"2012-10-17\" or \"2008-10-17\"");
        return 0;
    }
    if (strcmp(key, "Id") == 0)
        return s ? 0 : fail(ps, AT_VALUE, "Id must be a string");
    if (strcmp(key, "Statement") == 0)
        return 0;
    return fail(ps, AT_KEY, "Unknown policy element %.*s; a policy has Version, Id and Statement",
                QUOTE_MAX, key);
}

static int compile_document(struct parser *ps, json_t *doc)
{
    ps->depth = 0;
    if (!json_is_object(doc))
        return fail(ps, AT_VALUE, "A policy document must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        enter_key(ps, key);
        if (check_top_member(ps, key, v) < 0)
            return -1;
        leave(ps);
    }
    json_t *statements = json_object_get(doc, "Statement");
    if (!statements)
        return fail(ps, AT_VALUE, "The policy has no Statement");
    enter_key(ps, "Statement");
    if (compile_statements(ps, statements) < 0)
        return -1;
    leave(ps);
    return 0;
}

/* IAM counts every character but whitespace outside strings. */
static size_t policy_chars(const char *t, size_t len)
{
    size_t n = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if ((c & 0xC0) == 0x80 || (!in_string && auth_is_space(c)))
            continue;
        n++;
        if (in_string && c == '\\')
            i++; /* the escaped character, counted with its backslash */
        else if (c == '"')
            in_string = !in_string;
    }
    return n;
}

struct auth_policy *auth_policy_parse(const char *json, size_t len, char *err, size_t errlen)
{
    struct parser ps = {
        .text = json ? json : "", .len = json ? len : 0, .err = err, .errlen = errlen};
    char msg[MSG_MAX];
    if (policy_chars(ps.text, ps.len) > AUTH_POLICY_MAX_CHARS) {
        snprintf(msg, sizeof msg, "Policy document exceeds %d characters (whitespace not counted)",
                 AUTH_POLICY_MAX_CHARS);
        report(&ps, 1, 1, msg);
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(ps.text, ps.len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        report(&ps, je.line, je.column, je.text);
        return NULL;
    }
    struct auth_policy *p = NULL;
    ps.b.measuring = true;
    if (compile_document(&ps, doc) == 0) {
        p = allocate(&ps.b);
        if (!p) {
            report(&ps, 1, 1, "Out of memory");
        } else if (compile_document(&ps, doc) == 0) { /* the same again, storing */
            p->statement_count = (int)ps.b.statements;
        } else { /* cannot happen: the first pass accepted the same document */
            free(p);
            p = NULL;
        }
    }
    json_decref(doc);
    return p;
}

void auth_policy_free(struct auth_policy *p)
{
    free(p);
}
