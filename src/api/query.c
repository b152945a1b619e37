/* application/x-www-form-urlencoded parsing for the Query API (spec 10 §2.3):
 * percent-decoding, '+' as space, duplicate detection, Name.member.N lists. */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

void query_params_init(struct query_params *q)
{
    memset(q, 0, sizeof *q);
}

void query_params_free(struct query_params *q)
{
    for (size_t i = 0; i < q->count; i++) {
        free(q->items[i].name);
        free(q->items[i].value);
    }
    free(q->items);
    query_params_init(q);
}

/* Decodes in[0..len) into a new NUL-terminated string; NULL on a bad escape. */
static char *form_decode(const char *in, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    if (!out)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '+') {
            out[n++] = ' ';
        } else if (in[i] == '%') {
            int hi = i + 2 < len ? core_hex_value((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < len ? core_hex_value((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static bool query_has(const struct query_params *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++)
        if (!strcmp(q->items[i].name, name))
            return true;
    return false;
}

static enum query_error query_add(struct query_params *q, const char *pair, size_t len,
                                  char *bad_name, size_t bad_len)
{
    const char *eq = memchr(pair, '=', len);
    size_t name_len = eq ? (size_t)(eq - pair) : len;
    size_t nlen, vlen = 0;
    char *name = form_decode(pair, name_len, &nlen);
    char *value = eq ? form_decode(eq + 1, len - name_len - 1, &vlen) : strdup("");
    enum query_error err = QUERY_OK;
    if (!name || !value || nlen == 0 || strlen(name) != nlen)
        err = QUERY_MALFORMED;
    else if (query_has(q, name))
        err = QUERY_DUPLICATE;
    else if (!core_utf8_valid(value, vlen) || !core_utf8_valid(name, nlen))
        err = QUERY_NOT_UTF8;
    else if (q->count >= QUERY_MAX_PARAMS)
        err = QUERY_TOO_MANY;
    if (err != QUERY_OK) {
        core_strlcpy(bad_name, name ? name : "", bad_len);
        free(name);
        free(value);
        return err;
    }
    if (q->count == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->items = realloc(q->items, q->cap * sizeof *q->items);
        if (!q->items)
            abort();
    }
    q->items[q->count++] = (struct query_param){name, value, vlen};
    return QUERY_OK;
}

enum query_error query_parse(struct query_params *q, const char *data, size_t len, char *bad_name,
                             size_t bad_len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && data[i] != '&')
            continue;
        if (i > start) {
            enum query_error err = query_add(q, data + start, i - start, bad_name, bad_len);
            if (err != QUERY_OK)
                return err;
        }
        start = i + 1;
    }
    return QUERY_OK;
}

const char *query_get(const struct query_params *q, const char *name)
{
    for (size_t i = 0; i < q->count; i++)
        if (!strcmp(q->items[i].name, name))
            return q->items[i].value;
    return NULL;
}

/* N from "prefix.member.N" or "prefix.N"; 0 when the name is not a list member. */
static long list_index(const char *name, const char *prefix, size_t plen)
{
    if (strncmp(name, prefix, plen) || name[plen] != '.')
        return 0;
    const char *p = name + plen + 1;
    if (!strncmp(p, "member.", 7))
        p += 7;
    if (*p < '1' || *p > '9')
        return 0;
    char *end;
    long n = strtol(p, &end, 10);
    return *end || n > 100000 ? 0 : n;
}

int query_list(const struct query_params *q, const char *prefix, const char **out, int max)
{
    size_t plen = strlen(prefix);
    long idx[max > 0 ? max : 1];
    int n = 0;
    for (size_t i = 0; i < q->count; i++) {
        long k = list_index(q->items[i].name, prefix, plen);
        if (k == 0)
            continue;
        if (n == max)
            return -1;
        /* Insertion by index keeps the list ordered by N. */
        int j = n++;
        while (j > 0 && idx[j - 1] > k) {
            idx[j] = idx[j - 1];
            out[j] = out[j - 1];
            j--;
        }
        idx[j] = k;
        out[j] = q->items[i].value;
    }
    return n;
}
