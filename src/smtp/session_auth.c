/* AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, only under TLS, and the check of an
 * SMTP password (DECISIONS 21): the username is an access key id, the password a version
 * 2 or 4 password derived from its secret. A version 4 password names a region: the
 * session sends in that region. Failures count per address (shared with the API) and
 * per connection; each one's reply comes later than the last. */
#include "auth/auth.h"
#include "smtp/smtp_internal.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static const char reply_invalid[] = "535 Authentication Credentials Invalid";
static const char reply_blocked[] = "421 Too many authentication failures; try again later";

enum auth_outcome {
    AUTH_OUTCOME_OK,
    AUTH_OUTCOME_INVALID,        /* unknown or inactive key, wrong password */
    AUTH_OUTCOME_DISABLED,       /* the account is disabled (DECISIONS 19) */
    AUTH_OUTCOME_NOT_AUTHORIZED, /* a user without ses:SendRawEmail */
    AUTH_OUTCOME_ERROR,          /* the store failed */
};

void smtp_auth_end(struct smtp_session *s)
{
    if (!s->creds)
        return;
    OPENSSL_cleanse(s->creds, sizeof *s->creds);
    free(s->creds);
    s->creds = NULL;
}

/* ---- the password ---- */

static bool password_equal(const char *derived, const char *given)
{
    return CRYPTO_memcmp(derived, given, AUTH_SMTP_PASSWORD_LEN) == 0;
}

/* The region the password was made for, or NULL when it matches none. */
static const char *password_region(const struct sesame_config *cfg, const char *secret,
                                   const char *password)
{
    if (strlen(password) != AUTH_SMTP_PASSWORD_LEN)
        return NULL;
    char derived[AUTH_SMTP_PASSWORD_LEN + 1];
    const char *region = NULL;
    auth_smtp_password_v2(secret, derived);
    if (password_equal(derived, password))
        region = cfg->regions[0]; /* version 2 names no region: the default one */
    for (int i = 0; !region && i < cfg->region_count; i++) {
        auth_smtp_password_v4(secret, cfg->regions[i], derived);
        if (password_equal(derived, password))
            region = cfg->regions[i];
    }
    OPENSSL_cleanse(derived, sizeof derived);
    return region;
}

/* ---- permission ---- */

/* Root keys may do everything; a user's key what its policies allow (spec 20 §8.5). */
static enum auth_outcome user_may_send(struct smtp_session *s, const struct store_key *key)
{
    if (!key->user[0])
        return AUTH_OUTCOME_OK;
    struct auth_policy_set set = {0};
    enum auth_outcome out = AUTH_OUTCOME_ERROR;
    if (auth_policy_set_load(s->t->conn, key->account_id, key->user, &set) == STORE_OK) {
        struct auth_policy_request req = {"SendRawEmail", s->peer, true,
                                          core_now_ms(),  NULL,    "ses"};
        out = auth_policy_evaluate(set.items, set.count, &req) == AUTH_POLICY_ALLOW
                  ? AUTH_OUTCOME_OK
                  : AUTH_OUTCOME_NOT_AUTHORIZED;
    }
    auth_policy_set_free(&set);
    return out;
}

/* ---- the check ---- */

/* On success, region and account_id say where the session sends. */
static enum auth_outcome credentials_check(struct smtp_session *s, const char **region,
                                           char account_id[STORE_ID_LEN])
{
    const struct smtp_credentials *c = s->creds;
    struct store_key key;
    struct store_account account;
    int rc = store_key_get(s->t->conn, c->username, &key);
    if (rc == STORE_ERROR)
        return AUTH_OUTCOME_ERROR;
    *region = rc == STORE_OK && key.active
                  ? password_region(&s->t->sh->cfg, key.secret, c->password)
                  : NULL;
    OPENSSL_cleanse(key.secret, sizeof key.secret);
    if (!*region)
        return AUTH_OUTCOME_INVALID;
    rc = store_account_get(s->t->conn, key.account_id, &account);
    if (rc != STORE_OK)
        return rc == STORE_ERROR ? AUTH_OUTCOME_ERROR : AUTH_OUTCOME_INVALID;
    if (account.disabled)
        return AUTH_OUTCOME_DISABLED;
    core_strlcpy(account_id, account.id, STORE_ID_LEN);
    return user_may_send(s, &key);
}

/* A key revoked or a permission removed must stop an open session too: MAIL re-reads
 * the key and re-runs the permission check, and a failure ends the authentication. NULL
 * when the session may go on sending. */
const char *smtp_auth_recheck(struct smtp_session *s)
{
    struct store_key key = {0};
    int rc = store_key_state(s->t->conn, s->key_id, &key);
    if (rc == STORE_ERROR)
        return "451 Temporary failure; try again";
    enum auth_outcome out = AUTH_OUTCOME_INVALID;
    if (rc == STORE_OK && key.active && !strcmp(key.account_id, s->account_id))
        out = user_may_send(s, &key);
    if (out == AUTH_OUTCOME_OK)
        return NULL;
    if (out == AUTH_OUTCOME_ERROR)
        return "451 Temporary failure; try again";
    log_info("smtp: %s: key %s no longer allowed to send; authentication dropped", s->peer,
             s->key_id);
    s->authenticated = false;
    s->key_id[0] = s->account_id[0] = s->region[0] = '\0';
    return out == AUTH_OUTCOME_INVALID ? reply_invalid
                                       : "535 User not authorized to call the SES SMTP endpoint";
}

/* The username as it may be logged: an access key id's characters only. */
static const char *loggable_username(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 32)
        return "(not a key id)";
    for (size_t i = 0; i < n; i++)
        if (!((u[i] >= 'A' && u[i] <= 'Z') || (u[i] >= '0' && u[i] <= '9')))
            return "(not a key id)";
    return u;
}

/* The reply's delay grows with the address's failures in the window, not just this
 * connection's (reconnecting must not reset it), up to a cap. */
static int64_t auth_delay_ms(const struct smtp_session *s, int address_failures)
{
    int n = address_failures > s->auth_failures ? address_failures : s->auth_failures;
    int64_t ms = (int64_t)SMTP_AUTH_DELAY_MS * n;
    return ms < SMTP_AUTH_DELAY_MAX_MS ? ms : SMTP_AUTH_DELAY_MAX_MS;
}

/* A wrong guess: counted, logged (never the password), answered after a delay that grows
 * with each failure; past smtp.max_auth_failures the connection ends. */
static void auth_failed(struct smtp_session *s, const char *reply)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    const char *user = s->creds ? loggable_username(s->creds->username) : "(none)";
    s->auth_failures++;
    log_warn("smtp: authentication failed for %s from %s", user, s->peer);
    int count = auth_failures_record(s->t->sh->failures, s->peer, core_now_ms());
    if (count > 0 && count == cfg->auth_failure_limit)
        log_warn("smtp: %s failed to authenticate %d times within %llds; refused until the "
                 "window ends",
                 s->peer, cfg->auth_failure_limit, (long long)cfg->auth_failure_window_s);
    smtp_auth_end(s);
    s->held_reply = reply;
    s->close_after_held = s->auth_failures >= cfg->smtp_max_auth_failures;
    s->state = SMTP_STATE_AUTH_DELAY;
    bufferevent_disable(s->bev, EV_READ);
    smtp_session_set_timer(s, auth_delay_ms(s, count));
}

void smtp_auth_delay_over(struct smtp_session *s)
{
    smtp_session_reply(s, "%s", s->held_reply);
    s->held_reply = NULL;
    if (s->close_after_held) {
        smtp_session_close_with(s, "421 Too many authentication failures");
        return;
    }
    s->state = SMTP_STATE_COMMAND;
    smtp_session_resume(s);
}

static void credentials_verify(struct smtp_session *s)
{
    /* Checked again here: sessions that started AUTH before the address reached the
     * limit must not get their guesses checked either. */
    if (auth_failures_blocked(s->t->sh->failures, s->peer, core_now_ms())) {
        smtp_session_close_with(s, "%s", reply_blocked);
        return;
    }
    const char *region = NULL;
    char account_id[STORE_ID_LEN];
    enum auth_outcome out = credentials_check(s, &region, account_id);
    if (out == AUTH_OUTCOME_INVALID) {
        auth_failed(s, reply_invalid);
        return;
    }
    s->state = SMTP_STATE_COMMAND;
    if (out == AUTH_OUTCOME_OK) {
        s->authenticated = true;
        core_strlcpy(s->key_id, s->creds->username, sizeof s->key_id);
        core_strlcpy(s->region, region, sizeof s->region);
        core_strlcpy(s->account_id, account_id, sizeof s->account_id);
        smtp_session_reply(s, "235 Authentication successful");
        log_debug("smtp: %s authenticated as %s (%s)", s->peer, s->key_id, s->region);
    } else if (out == AUTH_OUTCOME_DISABLED) {
        smtp_session_reply(s, "535 Account not subscribed to SES");
    } else if (out == AUTH_OUTCOME_NOT_AUTHORIZED) {
        smtp_session_reply(s, "535 User not authorized to call the SES SMTP endpoint");
    } else {
        log_error("smtp: %s: the store failed while checking credentials", s->peer);
        smtp_session_reply(s, "454 Temporary authentication failure");
    }
    smtp_auth_end(s);
}

/* A decoder's refusal: 535 is a failed guess like any other, 501 ends the exchange. */
static void auth_refused(struct smtp_session *s, const char *reply)
{
    if (!strncmp(reply, "535", 3)) {
        auth_failed(s, reply);
        return;
    }
    smtp_auth_end(s);
    s->state = SMTP_STATE_COMMAND;
    smtp_session_reply(s, "%s", reply);
}

/* ---- the exchange ---- */

static void smtp_rfc4616_plain(struct smtp_session *s, const char *b64, size_t len)
{
    const char *err = smtp_auth_plain_decode(b64, len, s->creds);
    if (err)
        auth_refused(s, err);
    else
        credentials_verify(s);
}

static void smtp_rfc4954_login_username(struct smtp_session *s, const char *b64, size_t len)
{
    const char *err =
        smtp_auth_login_decode(b64, len, s->creds->username, sizeof s->creds->username);
    if (err) {
        auth_refused(s, err);
        return;
    }
    s->state = SMTP_STATE_AUTH_PASSWORD;
    smtp_session_reply(s, SMTP_REPLY_LOGIN_PASSWORD);
}

static void smtp_rfc4954_login_password(struct smtp_session *s, const char *b64, size_t len)
{
    const char *err =
        smtp_auth_login_decode(b64, len, s->creds->password, sizeof s->creds->password);
    if (err)
        auth_refused(s, err);
    else
        credentials_verify(s);
}

void smtp_auth_begin(struct smtp_session *s, const char *arg, size_t len)
{
    if (!s->tls) {
        smtp_session_reply(s, "530 Must issue a STARTTLS command first");
        return;
    }
    if (!s->helo || s->authenticated || s->tx) {
        smtp_session_reply(s, "503 Bad sequence of commands");
        return;
    }
    if (auth_failures_blocked(s->t->sh->failures, s->peer, core_now_ms())) {
        smtp_session_close_with(s, "%s", reply_blocked);
        return;
    }
    struct smtp_auth_start start;
    const char *err = smtp_auth_parse(arg, len, &start);
    if (err) {
        smtp_session_reply(s, "%s", err);
        return;
    }
    if (!(s->creds = calloc(1, sizeof *s->creds)))
        abort();
    if (start.mechanism == SMTP_AUTH_PLAIN && start.has_initial) {
        smtp_rfc4616_plain(s, start.initial, start.initial_len);
    } else if (start.mechanism == SMTP_AUTH_PLAIN) {
        s->state = SMTP_STATE_AUTH_PLAIN;
        smtp_session_reply(s, "334 ");
    } else if (start.has_initial) {
        smtp_rfc4954_login_username(s, start.initial, start.initial_len);
    } else {
        s->state = SMTP_STATE_AUTH_USERNAME;
        smtp_session_reply(s, SMTP_REPLY_LOGIN_USERNAME);
    }
}

void smtp_auth_response(struct smtp_session *s, const char *line, size_t len)
{
    if (smtp_auth_cancelled(line, len)) {
        smtp_auth_end(s);
        s->state = SMTP_STATE_COMMAND;
        smtp_session_reply(s, SMTP_REPLY_AUTH_CANCELLED);
        return;
    }
    if (s->state == SMTP_STATE_AUTH_PLAIN)
        smtp_rfc4616_plain(s, line, len);
    else if (s->state == SMTP_STATE_AUTH_USERNAME)
        smtp_rfc4954_login_username(s, line, len);
    else
        smtp_rfc4954_login_password(s, line, len);
}
