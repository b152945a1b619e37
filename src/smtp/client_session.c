/* The SMTP client from the greeting to READY: EHLO (HELO when refused), STARTTLS
 * (RFC 3207) as the config says, EHLO again over TLS, and AUTH (RFC 4954) PLAIN or LOGIN.
 * Each handler takes the complete reply to the command its state names. */
#include "smtp/smtp_internal.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

enum { AUTH_SENT_LOGIN = 1, AUTH_SENT_USER = 2, AUTH_SENT_CREDENTIALS = 3 };

static bool session_ok(const struct smtp_client_reply *r)
{
    return r->code >= 200 && r->code < 300;
}

static void session_fail_local(struct smtp_client *c, enum smtp_client_stage stage,
                               const char *text)
{
    struct smtp_client_reply r = {0};
    smtp_client_reply_set(&r, 0, "%s", text);
    smtp_client_fail_at(c, stage, &r);
}

void smtp_client_session_start(struct smtp_client *c)
{
    smtp_client_expect(c, SMTP_CLIENT_STATE_GREETING);
}

static void session_hello(struct smtp_client *c, enum smtp_client_state state)
{
    smtp_client_write(c, "%s %s", state == SMTP_CLIENT_STATE_HELO ? "HELO" : "EHLO", c->helo_name);
    smtp_client_expect(c, state);
}

static void session_ready(struct smtp_client *c)
{
    smtp_client_expect(c, SMTP_CLIENT_STATE_READY);
    c->ready = (struct smtp_client_ready){
        .ok = true,
        .stage = SMTP_CLIENT_AUTH,
        .reply = c->greeting,
        .tls = c->tls,
        .pipelining = c->caps.pipelining,
        .eightbitmime = c->caps.eightbitmime,
        .max_size = c->caps.max_size,
    };
    smtp_client_post(c, SMTP_CLIENT_PENDING_READY);
}

/* ---- AUTH (RFC 4954) ---- */

/* Writes "prefix base64(in)"; the base64 copy is wiped after. */
static void session_write_b64(struct smtp_client *c, const char *prefix, const char *in, size_t len)
{
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        abort();
    size_t n = core_base64_encode((const unsigned char *)in, len, b64);
    smtp_client_write(c, "%s%s", prefix, b64);
    OPENSSL_cleanse(b64, n);
    free(b64);
}

/* RFC 4616: authzid (empty) NUL authcid NUL passwd, as the initial response. */
static void session_auth_plain(struct smtp_client *c)
{
    size_t ulen = strlen(c->auth_user), plen = strlen(c->auth_pass);
    size_t len = 1 + ulen + 1 + plen;
    char *msg = malloc(len);
    if (!msg)
        abort();
    msg[0] = '\0';
    memcpy(msg + 1, c->auth_user, ulen);
    msg[1 + ulen] = '\0';
    memcpy(msg + 2 + ulen, c->auth_pass, plen);
    session_write_b64(c, "AUTH PLAIN ", msg, len);
    OPENSSL_cleanse(msg, len);
    free(msg);
    c->auth_step = AUTH_SENT_CREDENTIALS;
}

/* Credentials go only over TLS, unless the config asked for no TLS at all (a relay on a
 * trusted network); PLAIN is preferred, LOGIN is for servers offering nothing else. */
static void session_auth_start(struct smtp_client *c)
{
    if (!c->auth_user) {
        session_ready(c);
        return;
    }
    if (!c->tls && c->cfg.tls != SMTP_CLIENT_TLS_NONE) {
        session_fail_local(c, SMTP_CLIENT_AUTH, "AUTH not attempted without TLS");
        return;
    }
    smtp_client_expect(c, SMTP_CLIENT_STATE_AUTH);
    if (c->caps.auth_plain) {
        session_auth_plain(c);
    } else if (c->caps.auth_login) {
        smtp_client_write(c, "AUTH LOGIN");
        c->auth_step = AUTH_SENT_LOGIN;
    } else {
        session_fail_local(c, SMTP_CLIENT_AUTH, "no supported AUTH mechanism offered");
    }
}

static void session_auth_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 235) {
        session_ready(c);
    } else if (r->code == 334 && c->auth_step == AUTH_SENT_LOGIN) {
        session_write_b64(c, "", c->auth_user, strlen(c->auth_user));
        c->auth_step = AUTH_SENT_USER;
        smtp_client_expect(c, SMTP_CLIENT_STATE_AUTH);
    } else if (r->code == 334 && c->auth_step == AUTH_SENT_USER) {
        session_write_b64(c, "", c->auth_pass, strlen(c->auth_pass));
        c->auth_step = AUTH_SENT_CREDENTIALS;
        smtp_client_expect(c, SMTP_CLIENT_STATE_AUTH);
    } else {
        smtp_client_fail(c, r);
    }
}

/* ---- greeting, EHLO, STARTTLS ---- */

static bool session_wants_tls(const struct smtp_client *c)
{
    return !c->tls &&
           (c->cfg.tls == SMTP_CLIENT_TLS_OPPORTUNISTIC || c->cfg.tls == SMTP_CLIENT_TLS_REQUIRED);
}

/* EHLO or HELO accepted: STARTTLS when wanted and offered, else on to AUTH. */
static void session_after_hello(struct smtp_client *c)
{
    if (session_wants_tls(c) && c->caps.starttls) {
        smtp_client_write(c, "STARTTLS");
        smtp_client_expect(c, SMTP_CLIENT_STATE_STARTTLS);
    } else if (session_wants_tls(c) && c->cfg.tls == SMTP_CLIENT_TLS_REQUIRED) {
        session_fail_local(c, SMTP_CLIENT_STARTTLS, "STARTTLS not offered");
    } else {
        session_auth_start(c);
    }
}

/* Any 2xx greeting is taken (RFC 5321 says 220); 554 and the like end it here. */
static void session_greeting(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (!session_ok(r)) {
        smtp_client_fail(c, r);
        return;
    }
    c->greeting = *r;
    session_hello(c, SMTP_CLIENT_STATE_EHLO);
}

/* The caps come from the reader's whole text: r's is cut at 511 bytes. */
static void session_ehlo(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (session_ok(r)) {
        smtp_ehlo_parse(c->reader.text.data ? c->reader.text.data : "", c->reader.text.len,
                        &c->caps);
        session_after_hello(c);
    } else if (r->code / 100 == 5 && c->state == SMTP_CLIENT_STATE_EHLO) {
        session_hello(c, SMTP_CLIENT_STATE_HELO); /* RFC 5321 §3.2: an old server */
    } else {
        smtp_client_fail(c, r);
    }
}

static void session_helo(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (!session_ok(r)) {
        smtp_client_fail(c, r);
        return;
    }
    memset(&c->caps, 0, sizeof c->caps); /* HELO offers nothing */
    session_after_hello(c);
}

/* A refused STARTTLS leaves the session as it was: opportunistic TLS carries on in the
 * clear with what EHLO offered. */
static void session_starttls(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 220)
        smtp_client_starttls(c);
    else if (c->cfg.tls == SMTP_CLIENT_TLS_OPPORTUNISTIC && r->code != 421)
        session_auth_start(c);
    else
        smtp_client_fail(c, r);
}

/* RFC 3207 §4.2: what the server said before TLS is forgotten; EHLO again. */
void smtp_client_session_tls_done(struct smtp_client *c)
{
    c->tls = true;
    memset(&c->caps, 0, sizeof c->caps);
    log_debug("smtp client: TLS established with %s", c->server_name ? c->server_name : "?");
    session_hello(c, SMTP_CLIENT_STATE_EHLO_AFTER_TLS);
}

void smtp_client_session_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 421) { /* the server is closing, whatever the state */
        smtp_client_fail(c, r);
        return;
    }
    switch (c->state) {
    case SMTP_CLIENT_STATE_GREETING:
        session_greeting(c, r);
        break;
    case SMTP_CLIENT_STATE_EHLO:
    case SMTP_CLIENT_STATE_EHLO_AFTER_TLS:
        session_ehlo(c, r);
        break;
    case SMTP_CLIENT_STATE_HELO:
        session_helo(c, r);
        break;
    case SMTP_CLIENT_STATE_STARTTLS:
        session_starttls(c, r);
        break;
    case SMTP_CLIENT_STATE_AUTH:
        session_auth_reply(c, r);
        break;
    default:
        break;
    }
}
