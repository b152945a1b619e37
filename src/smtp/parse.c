/* SMTP command parsing (RFC 5321 §4.1): verbs, MAIL FROM / RCPT TO paths with their ESMTP
 * parameters (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 4954 AUTH=), and the AUTH PLAIN and
 * LOGIN exchanges (RFC 4954, RFC 4616). Lenient where real clients differ from the RFC
 * (bracketless paths, a space after the colon), strict where bytes become identities. */
#include "smtp/smtp_internal.h"
#include "mail/mail.h"

#include <stdio.h>
#include <string.h>

#define SMTP_ECHO_MAX 64 /* bytes of a client's parameter echoed back in a reply */

static const char reply_bad_base64[] = "501 Cannot decode response";
static const char reply_bad_auth_data[] = "501 Malformed authentication data";
static const char reply_bad_credentials[] = "535 Authentication Credentials Invalid";

/* Case-insensitive comparison of in[0..len) with an upper-case ASCII word. */
static bool token_is(const char *in, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 32);
        if (c != word[i])
            return false;
    }
    return true;
}

static bool has_prefix(const char *in, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && token_is(in, n, word);
}

static bool all_ascii(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] >= 0x80)
            return false;
    return true;
}

/* ---- commands ---- */

static const struct {
    const char *name;
    enum smtp_verb verb;
} smtp_verbs[] = {
    {"HELO", SMTP_VERB_HELO}, {"EHLO", SMTP_VERB_EHLO}, {"MAIL", SMTP_VERB_MAIL},
    {"RCPT", SMTP_VERB_RCPT}, {"DATA", SMTP_VERB_DATA}, {"RSET", SMTP_VERB_RSET},
    {"NOOP", SMTP_VERB_NOOP}, {"QUIT", SMTP_VERB_QUIT}, {"VRFY", SMTP_VERB_VRFY},
    {"EXPN", SMTP_VERB_EXPN}, {"HELP", SMTP_VERB_HELP}, {"STARTTLS", SMTP_VERB_STARTTLS},
    {"AUTH", SMTP_VERB_AUTH}, {"BDAT", SMTP_VERB_BDAT},
};

static enum smtp_verb smtp_verb_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof smtp_verbs / sizeof smtp_verbs[0]; i++)
        if (token_is(name, len, smtp_verbs[i].name))
            return smtp_verbs[i].verb;
    return SMTP_VERB_UNKNOWN;
}

int smtp_command_parse(const char *line, size_t len, struct smtp_command *out)
{
    out->verb = SMTP_VERB_UNKNOWN;
    out->arg = line + len;
    out->arg_len = 0;
    if (len == 0 || len > SMTP_MAX_LINE || memchr(line, '\0', len))
        return -1;
    size_t verb_len = 0;
    while (verb_len < len && line[verb_len] != ' ')
        verb_len++;
    if (!all_ascii(line, verb_len))
        return -1;
    size_t start = verb_len, end = len;
    while (start < len && line[start] == ' ')
        start++;
    while (end > start && line[end - 1] == ' ')
        end--; /* clients pad; a trailing space would also break base64 in AUTH */
    out->verb = smtp_verb_lookup(line, verb_len);
    out->arg = line + start;
    out->arg_len = end - start;
    return 0;
}

/* ---- MAIL FROM / RCPT TO ---- */

/* Copies in[0..len) into out (max + 1 bytes) for a reply: cut at max bytes, and anything
 * but printable ASCII replaced, so a client cannot put control bytes in replies or logs. */
static void echo_copy(const char *in, size_t len, size_t max, char *out)
{
    size_t n = len < max ? len : max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = '\0';
}

static bool param_reply(char *reply, size_t replylen, const char *what, const char *param,
                        size_t len)
{
    char echo[SMTP_ECHO_MAX + 1];
    echo_copy(param, len, SMTP_ECHO_MAX, echo);
    snprintf(reply, replylen, "%s: %s", what, echo);
    return false;
}

static bool digits_only(const char *in, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (in[i] < '0' || in[i] > '9')
            return false;
    return true;
}

/* Decimal value of digits; saturates, so an absurd SIZE still reaches the size check. */
static uint64_t digits_value(const char *in, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t d = (uint64_t)(in[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return UINT64_MAX;
        v = v * 10 + d;
    }
    return v;
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool keyword_valid(const char *in, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || c != '-'))
            return false;
    }
    return len > 0;
}

struct params_seen {
    bool size, body, auth;
};

/* One MAIL parameter, "keyword[=value]". */
static bool mail_param(const char *p, size_t len, struct smtp_path *out, struct params_seen *seen,
                       char *reply, size_t replylen)
{
    static const char syntax[] = "501 Syntax error in parameter";
    static const char unsupported[] = "555 Unsupported parameter";
    const char *eq = memchr(p, '=', len);
    size_t klen = eq ? (size_t)(eq - p) : len;
    const char *value = eq ? eq + 1 : p + len;
    size_t vlen = eq ? len - klen - 1 : 0;
    if (!keyword_valid(p, klen) || (eq && vlen == 0))
        return param_reply(reply, replylen, syntax, p, len);
    if (token_is(p, klen, "SIZE")) {
        if (seen->size || !digits_only(value, vlen))
            return param_reply(reply, replylen, syntax, p, len);
        seen->size = out->has_size = true;
        out->size = digits_value(value, vlen);
    } else if (token_is(p, klen, "BODY")) {
        if (seen->body || !eq)
            return param_reply(reply, replylen, syntax, p, len);
        if (!token_is(value, vlen, "7BIT") && !token_is(value, vlen, "8BITMIME"))
            return param_reply(reply, replylen, unsupported, p, len);
        seen->body = true;
        out->body_8bit = token_is(value, vlen, "8BITMIME");
    } else if (token_is(p, klen, "AUTH")) {
        /* RFC 4954 §5: the submitter's identity; we know who authenticated. */
        if (seen->auth || !eq)
            return param_reply(reply, replylen, syntax, p, len);
        seen->auth = true;
    } else {
        /* SMTPUTF8 among them: not advertised, so addresses stay ASCII (DECISIONS 17). */
        return param_reply(reply, replylen, unsupported, p, len);
    }
    return true;
}

/* The space-separated parameters after the path. RCPT takes none (no DSN). */
static bool path_params(const char *p, size_t len, bool is_mail, struct smtp_path *out, char *reply,
                        size_t replylen)
{
    struct params_seen seen = {0};
    size_t i = 0;
    while (i < len) {
        while (i < len && p[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && p[i] != ' ')
            i++;
        if (i == start)
            break;
        if (!is_mail)
            return param_reply(reply, replylen, "555 Unsupported parameter", p + start, i - start);
        if (!mail_param(p + start, i - start, out, &seen, reply, replylen))
            return false;
    }
    return true;
}

/* Skips an RFC 5321 source route ("@a,@b:") at the start of a bracketed path; the route is
 * obsolete and ignored (§4.1.2, Appendix C). Returns its length, or -1 when malformed. */
static long source_route_len(const char *p, size_t len)
{
    if (len == 0 || p[0] != '@')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ':')
            return (long)i + 1;
        if ((p[i] == '@' && i > 0 && p[i - 1] != ',') || p[i] == '<' || p[i] == ' ')
            return -1;
    }
    return -1;
}

struct path_span {
    const char *addr; /* the mailbox, route dropped */
    size_t addr_len;
    bool bracketed;
    size_t end; /* offset just past the path */
};

/* Finds the path in "<...>" or a bare address running to the first space. */
static bool path_span(const char *p, size_t len, struct path_span *s)
{
    if (len > 0 && p[0] == '<') {
        const char *close = memchr(p, '>', len);
        if (!close)
            return false;
        size_t inner = (size_t)(close - p) - 1;
        long route = source_route_len(p + 1, inner);
        if (route < 0)
            return false;
        s->addr = p + 1 + route;
        s->addr_len = inner - (size_t)route;
        s->bracketed = true;
        s->end = (size_t)(close - p) + 1;
        return route == 0 || s->addr_len > 0;
    }
    const char *space = memchr(p, ' ', len);
    s->addr = p;
    s->addr_len = space ? (size_t)(space - p) : len;
    s->bracketed = false;
    s->end = s->addr_len;
    return s->addr_len > 0;
}

static bool address_check(const char *addr, size_t len, struct smtp_path *out, char *reply,
                          size_t replylen)
{
    if (len > SMTP_ADDRESS_MAX) {
        snprintf(reply, replylen, "501 Path too long");
        return false;
    }
    if (!all_ascii(addr, len)) {
        snprintf(reply, replylen, "553 Address must be ASCII (SMTPUTF8 is not supported)");
        return false;
    }
    memcpy(out->address, addr, len);
    out->address[len] = '\0';
    if (strlen(out->address) != len || !mail_address_valid(out->address)) {
        char echo[SMTP_ADDRESS_MAX + 1];
        echo_copy(addr, len, SMTP_ADDRESS_MAX, echo);
        snprintf(reply, replylen, "553 Invalid address: <%s>", echo);
        out->address[0] = '\0';
        return false;
    }
    return true;
}

/* "FROM:<path> params" or "TO:<path>": keyword "FROM:" or "TO:". */
static bool path_parse(const char *arg, size_t len, bool is_mail, struct smtp_path *out,
                       char *reply, size_t replylen)
{
    const char *keyword = is_mail ? "FROM:" : "TO:";
    const char *syntax =
        is_mail ? "501 Syntax: MAIL FROM:<address>" : "501 Syntax: RCPT TO:<address>";
    memset(out, 0, sizeof *out);
    if (replylen > 0)
        reply[0] = '\0';
    if (!has_prefix(arg, len, keyword)) {
        snprintf(reply, replylen, "%s", syntax);
        return false;
    }
    size_t i = strlen(keyword);
    while (i < len && arg[i] == ' ')
        i++; /* "MAIL FROM: <a@b>", which real clients send */
    struct path_span s;
    if (!path_span(arg + i, len - i, &s) || (i + s.end < len && arg[i + s.end] != ' ')) {
        snprintf(reply, replylen, "%s", syntax);
        return false;
    }
    if (s.bracketed && s.addr_len == 0) {
        if (!is_mail) {
            snprintf(reply, replylen, "%s", syntax);
            return false;
        }
        out->null_path = true;
    } else if (!address_check(s.addr, s.addr_len, out, reply, replylen)) {
        return false;
    }
    i += s.end;
    return path_params(arg + i, len - i, is_mail, out, reply, replylen);
}

bool smtp_mail_parse(const char *arg, size_t len, struct smtp_path *out, char *reply,
                     size_t replylen)
{
    return path_parse(arg, len, true, out, reply, replylen);
}

bool smtp_rcpt_parse(const char *arg, size_t len, struct smtp_path *out, char *reply,
                     size_t replylen)
{
    return path_parse(arg, len, false, out, reply, replylen);
}

/* ---- AUTH ---- */

const char *smtp_auth_parse(const char *arg, size_t len, struct smtp_auth_start *out)
{
    static const char syntax[] = "501 Syntax: AUTH mechanism [initial-response]";
    memset(out, 0, sizeof *out);
    const char *space = memchr(arg, ' ', len);
    size_t mlen = space ? (size_t)(space - arg) : len;
    if (mlen == 0)
        return syntax;
    if (token_is(arg, mlen, "PLAIN"))
        out->mechanism = SMTP_AUTH_PLAIN;
    else if (token_is(arg, mlen, "LOGIN"))
        out->mechanism = SMTP_AUTH_LOGIN;
    else
        return "504 Unrecognized authentication type";
    size_t i = mlen;
    while (i < len && arg[i] == ' ')
        i++;
    if (i == len)
        return NULL;
    if (memchr(arg + i, ' ', len - i))
        return syntax;
    out->has_initial = true;
    out->initial = arg + i;
    out->initial_len = len - i;
    if (out->initial_len == 1 && out->initial[0] == '=')
        out->initial_len = 0; /* RFC 4954 §4: "=" is an empty initial response */
    return NULL;
}

/* Copies one decoded credential; an empty one cannot be valid, so it fails like a wrong
 * password rather than as a protocol error. */
static const char *credential_copy(const unsigned char *in, size_t len, char *out, size_t outlen)
{
    if (memchr(in, '\0', len))
        return reply_bad_auth_data;
    if (len == 0 || len >= outlen)
        return reply_bad_credentials;
    memcpy(out, in, len);
    out[len] = '\0';
    return NULL;
}

/* Decodes a response into raw (SMTP_MAX_LINE / 4 * 3 bytes); -1 when not strict base64. */
static long response_decode(const char *b64, size_t len, unsigned char *raw)
{
    if (len > SMTP_MAX_LINE)
        return -1;
    return core_base64_decode(b64, len, raw);
}

/* RFC 4616: authzid NUL authcid NUL passwd. */
static const char *plain_fields(const unsigned char *raw, size_t n, struct smtp_credentials *out)
{
    const unsigned char *nul1 = memchr(raw, '\0', n);
    if (!nul1)
        return reply_bad_auth_data;
    const unsigned char *user = nul1 + 1;
    const unsigned char *nul2 = memchr(user, '\0', n - (size_t)(user - raw));
    if (!nul2)
        return reply_bad_auth_data;
    size_t authzid_len = (size_t)(nul1 - raw), user_len = (size_t)(nul2 - user);
    /* Acting for someone else is not something an SMTP password grants. */
    if (authzid_len > 0 && (authzid_len != user_len || memcmp(raw, user, user_len) != 0))
        return reply_bad_credentials;
    const char *err = credential_copy(user, user_len, out->username, sizeof out->username);
    if (!err)
        err = credential_copy(nul2 + 1, n - (size_t)(nul2 + 1 - raw), out->password,
                              sizeof out->password);
    return err;
}

const char *smtp_auth_plain_decode(const char *b64, size_t len, struct smtp_credentials *out)
{
    unsigned char raw[SMTP_MAX_LINE / 4 * 3];
    memset(out, 0, sizeof *out);
    long n = response_decode(b64, len, raw);
    const char *err = n < 0 ? reply_bad_base64 : plain_fields(raw, (size_t)n, out);
    explicit_bzero(raw, sizeof raw); /* it held the password */
    if (err)
        explicit_bzero(out, sizeof *out);
    return err;
}

const char *smtp_auth_login_decode(const char *b64, size_t len, char *out, size_t outlen)
{
    unsigned char raw[SMTP_MAX_LINE / 4 * 3];
    if (outlen > 0)
        out[0] = '\0';
    long n = response_decode(b64, len, raw);
    const char *err = n < 0 ? reply_bad_base64 : credential_copy(raw, (size_t)n, out, outlen);
    explicit_bzero(raw, sizeof raw);
    return err;
}

bool smtp_auth_cancelled(const char *line, size_t len)
{
    return len == 1 && line[0] == '*';
}
