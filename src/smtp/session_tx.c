/* The mail transaction: MAIL (the sender's account, region and limits, read again each
 * time; the quota checked early, DECISIONS 22), RCPT, DATA through the incremental reader,
 * then the accept pipeline. "250 Ok <MessageId>" is sent only from the pipeline's answer,
 * after the commit; until then the session reads nothing more. */
#include "send/send.h"
#include "smtp/smtp_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

static const char reply_bad_sequence[] = "503 Bad sequence of commands";
static const char reply_try_again[] = "451 Temporary failure; try again";

/* Frees the message's bytes and gives them back to the thread's budget. */
static void tx_data_release(struct smtp_session *s, struct smtp_tx *tx)
{
    s->t->data_bytes -= tx->data.message.len;
    smtp_data_free(&tx->data);
}

void smtp_tx_free(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    if (!tx)
        return;
    tx_data_release(s, tx);
    free(tx->rcpts);
    free(tx->rcpt_list);
    free(tx);
    s->tx = NULL;
}

/* ---- MAIL ---- */

/* The account's current state and its limits in the session's region (sandbox defaults
 * when none are stored). NULL after replying when sending cannot go on. */
static const char *tx_sender_reads(struct smtp_session *s, struct smtp_tx *tx)
{
    const struct sesame_config *cfg = &s->t->sh->cfg;
    const char *refusal = smtp_auth_recheck(s);
    if (refusal)
        return refusal;
    int rc = store_account_get(s->t->conn, s->account_id, &tx->account);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && tx->account.disabled))
        return "535 Account not subscribed to SES";
    if (rc != STORE_OK)
        return reply_try_again;
    rc = store_account_region_get(s->t->conn, s->account_id, s->region, &tx->limits);
    if (rc == STORE_NOT_FOUND) {
        memset(&tx->limits, 0, sizeof tx->limits);
        core_strlcpy(tx->limits.account_id, s->account_id, sizeof tx->limits.account_id);
        core_strlcpy(tx->limits.region, s->region, sizeof tx->limits.region);
        tx->limits.max_24h = cfg->sandbox_max_24h;
        tx->limits.max_rate = cfg->sandbox_max_rate;
    } else if (rc != STORE_OK) {
        return reply_try_again;
    }
    return NULL;
}

/* The key, the account and its limits, read in one snapshot. */
static const char *tx_sender_load(struct smtp_session *s, struct smtp_tx *tx)
{
    bool snapshot = store_read_begin(s->t->conn) == STORE_OK;
    const char *refusal = tx_sender_reads(s, tx);
    if (snapshot)
        store_read_end(s->t->conn);
    return refusal;
}

static struct send_sender tx_sender(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    return (struct send_sender){s->t->conn, &tx->account, s->region, &tx->limits, s->t->identities};
}

/* DECISIONS 22: a quota already used up is refused before any data is sent. */
static const char *tx_quota_check(struct smtp_session *s)
{
    struct send_sender who = tx_sender(s);
    double sent = send_sent_last_24h(s->t->sh->send, &who);
    if (sent < 0)
        return reply_try_again;
    if (sent >= s->tx->limits.max_24h)
        return "454 Throttling failure: Daily message quota exceeded";
    return NULL;
}

static const struct smtp_tx_replies submission_replies = {
    reply_bad_sequence, "552 Message size exceeds fixed maximum message size",
    "452 Too many recipients"};

bool smtp_tx_mail_path(struct smtp_session *s, const char *arg, size_t len, uint64_t max_bytes,
                       const struct smtp_tx_replies *r, struct smtp_path *path)
{
    char reply[SMTP_REPLY_MAX];
    if (s->tx)
        smtp_session_reply(s, "%s", r->bad_sequence);
    else if (!smtp_mail_parse(arg, len, path, reply, sizeof reply))
        smtp_session_reply(s, "%s", reply);
    else if (path->has_size && path->size > max_bytes)
        smtp_session_reply(s, "%s", r->too_big);
    else
        return true;
    return false;
}

bool smtp_tx_rcpt_path(struct smtp_session *s, const char *arg, size_t len, int max,
                       const struct smtp_tx_replies *r, struct smtp_path *path)
{
    char reply[SMTP_REPLY_MAX];
    if (!s->tx)
        smtp_session_reply(s, "%s", r->bad_sequence);
    else if (!smtp_rcpt_parse(arg, len, path, reply, sizeof reply))
        smtp_session_reply(s, "%s", reply);
    else if (s->tx->rcpt_count >= max)
        smtp_session_reply(s, "%s", r->too_many);
    else
        return true;
    return false;
}

void smtp_tx_mail(struct smtp_session *s, const char *arg, size_t len)
{
    if (!s->authenticated) {
        smtp_session_reply(s, "530 Authentication required");
        return;
    }
    struct smtp_path path;
    if (!smtp_tx_mail_path(s, arg, len, (uint64_t)s->t->sh->cfg.max_message_bytes,
                           &submission_replies, &path))
        return;
    if (!(s->tx = calloc(1, sizeof *s->tx)))
        abort();
    const char *refusal = tx_sender_load(s, s->tx);
    if (!refusal)
        refusal = tx_quota_check(s);
    if (refusal) {
        smtp_tx_free(s);
        smtp_session_reply(s, "%s", refusal);
        return;
    }
    core_strlcpy(s->tx->mail_from, path.address, sizeof s->tx->mail_from);
    s->tx->null_path = path.null_path;
    smtp_session_reply(s, "250 Ok");
}

/* ---- RCPT ---- */

void smtp_tx_rcpt(struct smtp_session *s, const char *arg, size_t len)
{
    struct smtp_path path;
    if (!smtp_tx_rcpt_path(s, arg, len, s->t->sh->cfg.max_recipients, &submission_replies, &path))
        return;
    smtp_tx_rcpt_add(s->tx, path.address);
    smtp_session_reply(s, "250 Ok");
}

void smtp_tx_rcpt_add(struct smtp_tx *tx, const char *address)
{
    if (tx->rcpt_count == tx->rcpt_cap) {
        int cap = tx->rcpt_cap ? 2 * tx->rcpt_cap : 4;
        void *grown = realloc(tx->rcpts, (size_t)cap * sizeof *tx->rcpts);
        if (!grown)
            abort();
        tx->rcpts = grown;
        tx->rcpt_cap = cap;
    }
    core_strlcpy(tx->rcpts[tx->rcpt_count++], address, sizeof tx->rcpts[0]);
}

/* ---- DATA ---- */

void smtp_tx_data(struct smtp_session *s, const char *arg, size_t len)
{
    (void)arg;
    if (!s->tx || s->tx->rcpt_count == 0) {
        smtp_session_reply(s, reply_bad_sequence);
        return;
    }
    if (len) {
        smtp_session_reply(s, "501 Syntax: DATA");
        return;
    }
    smtp_tx_data_begin(s, (size_t)s->t->sh->cfg.max_message_bytes);
}

void smtp_tx_data_begin(struct smtp_session *s, size_t limit)
{
    smtp_data_start(&s->tx->data, limit);
    s->state = SMTP_STATE_DATA;
    smtp_session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* The pipeline's text as one reply line: control bytes would end or split it. */
static void reply_text(char *out, size_t outlen, const char *text, bool drop_final_period)
{
    size_t n = 0, len = strlen(text);
    if (drop_final_period && len > 0 && text[len - 1] == '.')
        len--;
    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
}

static void tx_answer(struct smtp_session *s, const struct send_result *res)
{
    char text[sizeof res->message];
    switch (res->error) {
    case SEND_OK:
        smtp_session_reply(s, "250 Ok %s", res->message_id);
        break;
    case SEND_REJECTED:
    case SEND_INVALID:
        reply_text(text, sizeof text, res->message, false);
        smtp_session_reply(s, "554 Message rejected: %s", text);
        break;
    case SEND_THROTTLED:
        reply_text(text, sizeof text, res->message, true);
        smtp_session_reply(s, "454 Throttling failure: %s", text);
        break;
    default:
        smtp_session_reply(s, reply_try_again);
        break;
    }
}

/* The pipeline's answer: at once for a refusal (inside send_raw), after the commit for
 * an acceptance. */
static void tx_done(const struct send_result *res, void *arg)
{
    struct smtp_session *s = arg;
    if (res->error == SEND_OK)
        log_debug("smtp: %s: accepted %s", s->peer, res->message_id);
    if (s->gone) { /* the client left while the message was being stored */
        smtp_session_free(s);
        return;
    }
    tx_answer(s, res);
    smtp_tx_end(s, NULL);
}

/* After the answer, or a refusal before the pipeline: the transaction ends, the session
 * goes on (or hears 421). */
void smtp_tx_end(struct smtp_session *s, const char *reply)
{
    if (reply)
        smtp_session_reply(s, "%s", reply);
    smtp_tx_free(s);
    s->state = SMTP_STATE_COMMAND;
    if (!smtp_session_close_if_due(s))
        smtp_session_resume(s);
}

static void tx_commit(struct smtp_session *s)
{
    struct smtp_tx *tx = s->tx;
    const struct sesame_config *cfg = &s->t->sh->cfg;
    s->messages++;
    if (tx->data.too_big && tx->data.total <= (size_t)cfg->max_message_bytes) {
        log_warn("smtp: %s: DATA memory budget of the thread used up; message refused", s->peer);
        smtp_tx_end(s, "452 Insufficient system storage");
        return;
    }
    if (tx->data.too_big) {
        smtp_session_reply(s,
                           "554 Message rejected: Message length is more than %lld bytes "
                           "long: '%zu'.",
                           (long long)cfg->max_message_bytes, tx->data.total);
        smtp_tx_end(s, NULL);
        return;
    }
    const char **dest = malloc((size_t)tx->rcpt_count * sizeof *dest);
    if (!dest)
        abort();
    for (int i = 0; i < tx->rcpt_count; i++)
        dest[i] = tx->rcpts[i];
    struct send_raw raw = {tx->data.message.data, tx->data.message.len,
                           tx->null_path ? NULL : tx->mail_from, dest, tx->rcpt_count};
    struct send_sender who = tx_sender(s);
    s->state = SMTP_STATE_COMMIT;
    bufferevent_disable(s->bev, EV_READ); /* pipelined commands wait for the answer */
    send_raw(s->t->sh->send, &who, &raw, s->t->base, tx_done, s);
    free(dest);
    /* send_raw keeps its own copy: do not hold the message twice during the commit.
     * Still in COMMIT: tx_done has not run, so s->tx is still tx. */
    if (s->state == SMTP_STATE_COMMIT)
        tx_data_release(s, tx);
}

/* Caps what the message may keep at what the thread's budget has left; the rest is
 * counted but not kept (too_big), and the end of the message is answered with 452. */
static void tx_data_cap(struct smtp_session *s)
{
    struct smtp_data *d = &s->tx->data;
    size_t used = s->t->data_bytes;
    size_t room = used < SMTP_DATA_BUDGET ? SMTP_DATA_BUDGET - used : 0;
    if (d->limit - d->message.len > room)
        d->limit = d->message.len + room;
}

bool smtp_tx_feed(struct smtp_session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    enum smtp_data_status status = SMTP_DATA_MORE;
    while (status == SMTP_DATA_MORE && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        evbuffer_peek(in, -1, NULL, &v, 1);
        struct smtp_data *d = &s->tx->data;
        tx_data_cap(s);
        size_t kept = d->message.len;
        size_t used = smtp_data_feed(d, v.iov_base, v.iov_len, &status);
        s->t->data_bytes += d->message.len - kept;
        evbuffer_drain(in, used);
    }
    if (status == SMTP_DATA_BARE_LF_DOT) {
        log_info("smtp: %s: bare LF around the end-of-data dot; message refused", s->peer);
        smtp_session_close_with(s, "554 Message rejected: bare LF around the end-of-data dot");
        return false;
    }
    if (status == SMTP_DATA_MORE)
        return false;
    if (s->t->feedback)
        smtp_feedback_commit(s);
    else
        tx_commit(s);
    return s->state == SMTP_STATE_COMMAND;
}
