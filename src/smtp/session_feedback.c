/* The feedback listener's side of a session, the bounce domain's MX: no AUTH, any sender
 * (<> above all), recipients vetted by the hooks, and the message handed to the hooks
 * instead of the accept pipeline. Its 250 comes from the hooks' done, once the message is
 * durable; until then the session reads nothing more, and a session whose client left
 * meanwhile lives on until done frees it, as on submission (smtp_session_abort). Every
 * reply carries an enhanced status code (ENHANCEDSTATUSCODES is offered). */
#include "smtp/smtp_internal.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>

static const char reply_bad_sequence[] = "503 5.5.1 Bad sequence of commands";

static const struct smtp_tx_replies feedback_replies = {
    reply_bad_sequence, "552 5.3.4 Message size exceeds fixed maximum message size",
    "452 4.5.3 Too many recipients"};

static void feedback_mail(struct smtp_session *s, const char *arg, size_t len)
{
    struct smtp_path path;
    if (!smtp_tx_mail_path(s, arg, len, (uint64_t)s->t->sh->cfg.feedback_max_message_bytes,
                           &feedback_replies, &path))
        return;
    if (!(s->tx = calloc(1, sizeof *s->tx)))
        abort();
    core_strlcpy(s->tx->mail_from, path.address, sizeof s->tx->mail_from);
    s->tx->null_path = path.null_path;
    smtp_session_reply(s, "250 2.1.0 Ok");
}

static void feedback_rcpt(struct smtp_session *s, const char *arg, size_t len)
{
    struct smtp_path path;
    if (!smtp_tx_rcpt_path(s, arg, len, SMTP_FEEDBACK_MAX_RCPTS, &feedback_replies, &path))
        return;
    const struct smtp_feedback_hooks *h = &s->t->hooks;
    if (!h->rcpt_ok(path.address, h->ctx)) {
        smtp_session_reply(s, "550 5.1.1 Recipient address rejected: not a feedback address");
        return;
    }
    smtp_tx_rcpt_add(s->tx, path.address);
    smtp_session_reply(s, "250 2.1.5 Ok");
}

static void feedback_data(struct smtp_session *s, size_t len)
{
    if (!s->tx) {
        smtp_session_reply(s, reply_bad_sequence);
        return;
    }
    if (s->tx->rcpt_count == 0) {
        smtp_session_reply(s, "554 5.5.1 No valid recipients");
        return;
    }
    if (len) {
        smtp_session_reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    smtp_tx_data_begin(s, (size_t)s->t->sh->cfg.feedback_max_message_bytes);
}

bool smtp_feedback_command(struct smtp_session *s, const struct smtp_command *c)
{
    switch (c->verb) {
    case SMTP_VERB_AUTH:
        smtp_session_reply(s, "503 5.5.1 Authentication not enabled");
        return true;
    case SMTP_VERB_MAIL:
        feedback_mail(s, c->arg, c->arg_len);
        return true;
    case SMTP_VERB_RCPT:
        feedback_rcpt(s, c->arg, c->arg_len);
        return true;
    case SMTP_VERB_DATA:
        feedback_data(s, c->arg_len);
        return true;
    default:
        return false;
    }
}

/* The hooks' answer, on the thread's base: the message is durable (ok) or not. */
static void feedback_done(void *arg, bool ok)
{
    struct smtp_session *s = arg;
    if (s->gone) { /* the client left while the message was being stored */
        smtp_session_free(s);
        return;
    }
    if (!ok)
        log_warn("feedback: %s: message not stored; the sender is told to retry", s->peer);
    smtp_tx_end(s, ok ? "250 2.0.0 Ok: queued" : "451 4.3.0 Error: try again later");
}

void smtp_feedback_commit(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    const struct sesame_config *cfg = &s->t->sh->cfg;
    s->messages++;
    if (tx->data.too_big && tx->data.total <= (size_t)cfg->feedback_max_message_bytes) {
        log_warn("feedback: %s: DATA memory budget of the thread used up; message refused",
                 s->peer);
        smtp_tx_end(s, "452 4.3.1 Insufficient system storage");
        return;
    }
    if (tx->data.too_big) {
        log_info("feedback: %s: a message of %zu bytes refused (limit %lld)", s->peer,
                 tx->data.total, (long long)cfg->feedback_max_message_bytes);
        smtp_tx_end(s, feedback_replies.too_big);
        return;
    }
    if (!(tx->rcpt_list = malloc((size_t)tx->rcpt_count * sizeof *tx->rcpt_list)))
        abort();
    for (int i = 0; i < tx->rcpt_count; i++)
        tx->rcpt_list[i] = tx->rcpts[i];
    s->state = SMTP_STATE_COMMIT;
    bufferevent_disable(s->bev, EV_READ); /* pipelined commands wait for the answer */
    const struct smtp_feedback_hooks *h = &s->t->hooks;
    const char *data = tx->data.message.data ? tx->data.message.data : "";
    /* The transaction's memory stays until done: the hook need not copy it. done may run
     * inside the call, which ends the transaction: tx is not touched after it. */
    h->receive(tx->mail_from, tx->rcpt_list, tx->rcpt_count, data, tx->data.message.len, s->t->base,
               feedback_done, s, h->ctx);
}
