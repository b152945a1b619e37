/* The commands of an SMTP session (RFC 5321 §4.1) and the replies SES gives them
 * (DECISIONS 20): greeting, EHLO/HELO with the advertised extensions, STARTTLS, RSET,
 * NOOP, VRFY, QUIT; AUTH and the transaction are in session_auth.c and session_tx.c, and
 * what the feedback listener does its own way in session_feedback.c. */
#include "smtp/smtp_internal.h"

static const char reply_bad_sequence[] = "503 Bad sequence of commands";

void smtp_session_greet(struct smtp_session *s)
{
    const char *name = s->t->sh->cfg.hostname;
    if (s->t->feedback)
        smtp_session_reply_plain(s, "220 %s ESMTP Sesame feedback", name);
    else
        smtp_session_reply_plain(s, "220 %s ESMTP SES", name);
}

/* Submission: STARTTLS only where TLS can still start, AUTH only under TLS. */
static void ehlo_submission_extensions(struct smtp_session *s)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    smtp_session_reply_plain(s, "250-8BITMIME");
    smtp_session_reply_plain(s, "250-PIPELINING");
    smtp_session_reply_plain(s, "250-SIZE %lld", (long long)cfg->max_message_bytes);
    if (s->starttls_listener && !s->tls)
        smtp_session_reply_plain(s, "250-STARTTLS");
    if (s->tls)
        smtp_session_reply_plain(s, "250-AUTH PLAIN LOGIN");
}

/* The feedback listener: an MX's extensions, never AUTH. */
static void ehlo_feedback_extensions(struct smtp_session *s)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    smtp_session_reply_plain(s, "250-PIPELINING");
    smtp_session_reply_plain(s, "250-8BITMIME");
    smtp_session_reply_plain(s, "250-SIZE %lld", (long long)cfg->feedback_max_message_bytes);
    smtp_session_reply_plain(s, "250-ENHANCEDSTATUSCODES");
    if (s->starttls_listener && !s->tls)
        smtp_session_reply_plain(s, "250-STARTTLS");
}

/* RFC 5321 §4.1.1.1 */
static void smtp_rfc5321_ehlo(struct smtp_session *s, const struct smtp_command *c)
{
    if (!c->arg_len) {
        smtp_session_reply(s, "501 Syntax: EHLO hostname");
        return;
    }
    smtp_tx_free(s);
    s->helo = true;
    smtp_session_reply_plain(s, "250-%s", s->t->sh->cfg.hostname);
    if (s->t->feedback)
        ehlo_feedback_extensions(s);
    else
        ehlo_submission_extensions(s);
    smtp_session_reply_plain(s, "250 Ok");
}

static void smtp_rfc5321_helo(struct smtp_session *s, const struct smtp_command *c)
{
    if (!c->arg_len) {
        smtp_session_reply(s, "501 Syntax: HELO hostname");
        return;
    }
    smtp_tx_free(s);
    s->helo = true;
    smtp_session_reply_plain(s, "250 %s", s->t->sh->cfg.hostname);
}

static void smtp_rfc3207_starttls(struct smtp_session *s, const struct smtp_command *c)
{
    if (!s->starttls_listener || s->tls) {
        smtp_session_reply(s, reply_bad_sequence);
        return;
    }
    if (c->arg_len) {
        smtp_session_reply(s, "501 Syntax: STARTTLS");
        return;
    }
    smtp_session_reply(s, "220 Ready to start TLS");
    smtp_session_starttls(s);
}

static void smtp_session_dispatch(struct smtp_session *s, const struct smtp_command *c)
{
    if (s->t->feedback && smtp_feedback_command(s, c))
        return;
    switch (c->verb) {
    case SMTP_VERB_EHLO:
        return smtp_rfc5321_ehlo(s, c);
    case SMTP_VERB_HELO:
        return smtp_rfc5321_helo(s, c);
    case SMTP_VERB_STARTTLS:
        return smtp_rfc3207_starttls(s, c);
    case SMTP_VERB_AUTH:
        return smtp_auth_begin(s, c->arg, c->arg_len);
    case SMTP_VERB_MAIL:
        return smtp_tx_mail(s, c->arg, c->arg_len);
    case SMTP_VERB_RCPT:
        return smtp_tx_rcpt(s, c->arg, c->arg_len);
    case SMTP_VERB_DATA:
        return smtp_tx_data(s, c->arg, c->arg_len);
    case SMTP_VERB_RSET:
        smtp_tx_free(s);
        return smtp_session_reply(s, "250 Ok");
    case SMTP_VERB_NOOP:
        return smtp_session_reply(s, "250 Ok");
    case SMTP_VERB_VRFY:
        return smtp_session_reply(s, "252 Cannot VRFY user; try RCPT to attempt delivery");
    case SMTP_VERB_QUIT:
        return smtp_session_close_with(s, "221 Bye");
    case SMTP_VERB_HELP:
        return smtp_session_reply(s, "214 See RFC 5321");
    case SMTP_VERB_EXPN:
    case SMTP_VERB_BDAT: /* CHUNKING is not advertised */
        return smtp_session_reply(s, "502 Command not implemented");
    default:
        return smtp_session_reply(s, "500 Unrecognized command");
    }
}

void smtp_session_command(struct smtp_session *s, const char *line, size_t len)
{
    /* At every command, an open transaction too (else MAIL/RCPT/RSET could keep a
     * connection forever); never inside DATA, which is not read here. */
    if (smtp_session_close_if_due(s))
        return;
    struct smtp_command c;
    if (smtp_command_parse(line, len, &c) != 0) {
        smtp_session_reply(s, "500 Unrecognized command");
        return;
    }
    smtp_session_dispatch(s, &c);
}
