/* One mail transaction on a READY client: RSET when the last one ended part-way, MAIL,
 * the RCPTs, DATA, the message and the reply to its end. With PIPELINING (RFC 2920)
 * MAIL, every RCPT and DATA leave in one write and their replies are read in order;
 * without it, one command waits for the previous reply. */
#include "smtp/smtp_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Stretches of the message at least this long are referenced, not copied, into the
 * output: a 10 MB message is not held twice. Shorter ones (and the CRLFs and dots added)
 * are copied, so a message of short LF lines does not become a chain per line. */
#define TX_REFERENCE_MIN 512

static bool tx_ok(const struct smtp_client_reply *r)
{
    return r->code >= 200 && r->code < 300;
}

/* No CR, LF or other control byte may reach a command line, nor brackets a path. */
static bool tx_address_ok(const char *a)
{
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
            return false;
    return true;
}

/* What is wrong with tx, or NULL. */
static const char *tx_invalid(const struct smtp_client_tx *tx)
{
    if (tx->rcpt_count <= 0 || !tx->rcpts)
        return "no recipient in transaction";
    if (!tx->mail_from || !tx_address_ok(tx->mail_from))
        return "invalid address in transaction";
    for (int i = 0; i < tx->rcpt_count; i++)
        if (!tx->rcpts[i] || !tx_address_ok(tx->rcpts[i]))
            return "invalid address in transaction";
    return NULL;
}

/* How far a transaction got when it ended by the servers' replies. */
static enum smtp_client_stage tx_stage_reached(const struct smtp_client *c)
{
    if (!tx_ok(&c->result.mail))
        return SMTP_CLIENT_MAIL;
    if (c->rcpt_accepted == 0)
        return SMTP_CLIENT_RCPT;
    if (c->result.data.code != 354)
        return SMTP_CLIENT_DATA;
    return SMTP_CLIENT_FINAL;
}

void smtp_client_tx_note_sent(struct smtp_client *c)
{
    if (c->state == SMTP_CLIENT_STATE_BODY && !c->lone_dot && !smtp_client_unsent(c))
        c->result.final_sent = true;
}

void smtp_client_tx_finish(struct smtp_client *c, enum smtp_client_stage stage,
                           const struct smtp_client_reply *ending)
{
    struct smtp_client_result *res = &c->result;
    for (int i = c->rcpt_replied; ending && i < res->rcpt_count; i++)
        res->rcpt[i] = *ending;
    res->stage = stage;
    smtp_client_watch_output(c, false);
    /* Output still pending after the last reply means the server answered early: what it
     * reads next would be taken for commands. */
    res->reusable = c->state != SMTP_CLIENT_STATE_DEAD && !c->got_421 && !smtp_client_unsent(c);
    if (!res->reusable && c->state != SMTP_CLIENT_STATE_DEAD) {
        struct smtp_client_reply r = {0};
        smtp_client_reply_set(&r, 0, "connection not reusable after the last transaction");
        smtp_client_stop(c, &r);
    } else if (res->reusable) {
        smtp_client_expect(c, SMTP_CLIENT_STATE_READY);
    }
    c->tx = NULL;
    smtp_client_post(c, SMTP_CLIENT_PENDING_RESULT);
}

void smtp_client_tx_fail(struct smtp_client *c, enum smtp_client_stage stage,
                         const struct smtp_client_reply *r)
{
    if (stage == SMTP_CLIENT_MAIL)
        c->result.mail = *r;
    else if (stage == SMTP_CLIENT_DATA)
        c->result.data = *r;
    else if (stage == SMTP_CLIENT_FINAL && !c->lone_dot)
        c->result.final = *r;
    if (stage == SMTP_CLIENT_FINAL && c->lone_dot)
        stage = tx_stage_reached(c); /* the dot's reply was to be ignored anyway */
    smtp_client_tx_finish(c, stage, r);
}

/* A refusal before anything is sent; the connection stays as it was. Never code 0: the
 * caller takes a code-0 MAIL failure on a reused connection for a stale connection and
 * retries the same transaction on a new one, forever. */
static void tx_refuse_locally(struct smtp_client *c, int code, const char *text)
{
    struct smtp_client_reply r = {0};
    smtp_client_reply_set(&r, code, "%s", text);
    c->result.mail = r;
    smtp_client_tx_finish(c, SMTP_CLIENT_MAIL, &r);
}

static void tx_send_rcpt(struct smtp_client *c)
{
    smtp_client_write(c, "RCPT TO:<%s>", c->tx->rcpts[c->rcpt_sent++]);
}

static void tx_send_mail(struct smtp_client *c)
{
    const struct smtp_client_tx *tx = c->tx;
    char params[64] = "";
    size_t n = 0;
    if (c->caps.size)
        n += (size_t)snprintf(params, sizeof params, " SIZE=%llu", (unsigned long long)c->tx_size);
    if (tx->eightbit && c->caps.eightbitmime)
        snprintf(params + n, sizeof params - n, " BODY=8BITMIME");
    smtp_client_write(c, "MAIL FROM:<%s>%s", tx->mail_from, params);
    c->pipelined = c->caps.pipelining;
    if (c->pipelined) {
        while (c->rcpt_sent < tx->rcpt_count)
            tx_send_rcpt(c);
        smtp_client_write(c, "DATA");
    }
    smtp_client_expect(c, SMTP_CLIENT_STATE_MAIL);
}

void smtp_client_tx_start(struct smtp_client *c)
{
    const struct smtp_client_tx *tx = c->tx;
    const char *invalid = tx_invalid(tx);
    if (invalid) {
        char text[128];
        snprintf(text, sizeof text, "5.5.4 %s (not sent)", invalid);
        tx_refuse_locally(c, 554, text);
        return;
    }
    c->tx_size = smtp_data_size(tx->data, tx->len, &c->tx_as_is);
    if (c->caps.size && c->caps.max_size > 0 && c->tx_size > (uint64_t)c->caps.max_size) {
        tx_refuse_locally(c, 552, "5.3.4 Message size exceeds fixed maximum message size");
        return;
    }
    if (c->need_rset) {
        smtp_client_write(c, "RSET");
        smtp_client_expect(c, SMTP_CLIENT_STATE_RSET);
        return;
    }
    tx_send_mail(c);
}

/* ---- replies ---- */

static void tx_emit(const char *piece, size_t len, void *arg)
{
    if (len >= TX_REFERENCE_MIN)
        evbuffer_add_reference(arg, piece, len, NULL, NULL);
    else
        evbuffer_add(arg, piece, len);
}

/* The 354. RFC 2920 §3.1: with every RCPT refused, a pipelined DATA should get 554; a
 * server that answers 354 anyway is sent an empty message (a lone dot) whose reply is
 * ignored, since it has no recipient to deliver to; the refusals are the outcome. */
static void tx_data_go(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!tx_ok(&c->result.mail) || c->rcpt_accepted == 0) {
        c->lone_dot = true;
        evbuffer_add(out, ".\r\n", 3);
    } else {
        if (c->tx_as_is) { /* smtp_data_size's scan found nothing to stuff: not again */
            if (c->tx->len)
                tx_emit(c->tx->data, c->tx->len, out);
            evbuffer_add(out, ".\r\n", 3);
        } else {
            smtp_data_stuff(c->tx->data, c->tx->len, tx_emit, out);
        }
        smtp_client_watch_output(c, true);
    }
    smtp_client_expect(c, SMTP_CLIENT_STATE_BODY);
}

/* Without pipelining, the next command goes once the previous reply is in. */
static void tx_after_rcpt(struct smtp_client *c)
{
    if (c->rcpt_replied < c->tx->rcpt_count) {
        if (!c->pipelined)
            tx_send_rcpt(c);
        smtp_client_expect(c, SMTP_CLIENT_STATE_RCPT);
    } else if (c->pipelined) {
        smtp_client_expect(c, SMTP_CLIENT_STATE_DATA);
    } else if (c->rcpt_accepted == 0) {
        c->need_rset = true;
        smtp_client_tx_finish(c, SMTP_CLIENT_RCPT, NULL);
    } else {
        smtp_client_write(c, "DATA");
        smtp_client_expect(c, SMTP_CLIENT_STATE_DATA);
    }
}

static void tx_mail_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    c->result.mail = *r;
    if (tx_ok(r) && !c->pipelined) {
        tx_send_rcpt(c);
        smtp_client_expect(c, SMTP_CLIENT_STATE_RCPT);
    } else if (c->pipelined) { /* the RCPTs' and DATA's replies come whatever this was */
        smtp_client_expect(c, SMTP_CLIENT_STATE_RCPT);
    } else {
        c->need_rset = true;
        smtp_client_tx_finish(c, SMTP_CLIENT_MAIL, r);
    }
}

static void tx_rcpt_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    c->result.rcpt[c->rcpt_replied++] = *r;
    if (tx_ok(r))
        c->rcpt_accepted++;
    tx_after_rcpt(c);
}

/* Only 354 lets the message go. Another 2xx/3xx would end the transaction with a
 * success-looking reply at DATA that the caller could take for a verdict on a message
 * never sent: a protocol error, quoted, and the connection is not trusted again. */
static void tx_data_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 354) {
        c->result.data = *r;
        tx_data_go(c);
        return;
    }
    if (r->code < 400) {
        smtp_client_fail_local(c, "unexpected reply to DATA: %d %s", r->code, r->text);
        return;
    }
    c->result.data = *r;
    c->need_rset = true;
    smtp_client_tx_finish(c, tx_stage_reached(c), NULL);
}

/* A reply while the message (or the dot) is still in our output cannot be to its end: the
 * server answered early or twice, and taking it would report a delivery of a message the
 * server has not seen. */
static void tx_final_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (smtp_client_unsent(c)) {
        smtp_client_fail_local(c, "reply before the end of data was sent: %d %s", r->code, r->text);
        return;
    }
    smtp_client_tx_note_sent(c);
    if (!c->lone_dot)
        c->result.final = *r;
    smtp_client_tx_finish(c, tx_stage_reached(c), NULL);
}

void smtp_client_tx_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 421) { /* closing: the replies still due will not come */
        if (c->state == SMTP_CLIENT_STATE_RCPT)
            c->result.rcpt[c->rcpt_replied++] = *r;
        smtp_client_tx_fail(c, smtp_client_stage_of(c), r);
        return;
    }
    switch (c->state) {
    case SMTP_CLIENT_STATE_RSET:
        if (!tx_ok(r)) { /* says nothing of the message: not reported as MAIL's reply */
            smtp_client_fail_local(c, "RSET refused: %d %s", r->code, r->text);
            return;
        }
        c->need_rset = false;
        tx_send_mail(c);
        break;
    case SMTP_CLIENT_STATE_MAIL:
        tx_mail_reply(c, r);
        break;
    case SMTP_CLIENT_STATE_RCPT:
        tx_rcpt_reply(c, r);
        break;
    case SMTP_CLIENT_STATE_DATA:
        tx_data_reply(c, r);
        break;
    case SMTP_CLIENT_STATE_BODY:
        tx_final_reply(c, r);
        break;
    default:
        break;
    }
}

/* ---- the public entry ---- */

/* Two rcpt buffers used in turn, kept across transactions: the one a result reports
 * stays intact while its callback starts the next transaction in the other. */
static struct smtp_client_reply *tx_rcpt_buffer(struct smtp_client *c, int n)
{
    int i = c->rcpt_cur ^= 1;
    if (c->rcpt_cap[i] < n || !c->rcpt_buf[i]) {
        int cap = n > 0 ? n : 1;
        free(c->rcpt_buf[i]);
        c->rcpt_buf[i] = malloc((size_t)cap * sizeof *c->rcpt_buf[i]);
        if (!c->rcpt_buf[i])
            abort();
        c->rcpt_cap[i] = cap;
    }
    memset(c->rcpt_buf[i], 0, (size_t)c->rcpt_cap[i] * sizeof *c->rcpt_buf[i]);
    return c->rcpt_buf[i];
}

/* Whatever killed the client, it is no reply to this transaction: code 0, the old
 * reply's code quoted in the text. */
static void tx_report_dead(struct smtp_client *c)
{
    const struct smtp_client_reply *b = &c->broken_reply;
    struct smtp_client_reply r = {0};
    if (b->code)
        smtp_client_reply_set(&r, 0, "connection unusable: %d %s", b->code, b->text);
    else
        smtp_client_reply_set(&r, 0, "%s", b->text[0] ? b->text : "connection unusable");
    c->result.mail = r;
    smtp_client_tx_finish(c, SMTP_CLIENT_MAIL, &r);
}

void smtp_client_send(struct smtp_client *c, const struct smtp_client_tx *tx,
                      smtp_client_tx_fn done, void *ctx)
{
    if (c->tx || c->pending != SMTP_CLIENT_PENDING_NONE ||
        (c->state != SMTP_CLIENT_STATE_READY && c->state != SMTP_CLIENT_STATE_DEAD)) {
        log_error("smtp client: smtp_client_send while not ready (a caller's bug)");
        abort();
    }
    c->tx = tx;
    c->done_fn = done;
    c->done_ctx = ctx;
    memset(&c->result, 0, sizeof c->result);
    int n = tx->rcpt_count > 0 ? tx->rcpt_count : 0;
    c->result.rcpt = tx_rcpt_buffer(c, n);
    c->result.rcpt_count = n;
    c->rcpt_sent = c->rcpt_replied = c->rcpt_accepted = 0;
    c->pipelined = c->lone_dot = false;
    if (c->state == SMTP_CLIENT_STATE_DEAD) { /* failed, or closed while idle */
        tx_report_dead(c);
        return;
    }
    smtp_client_tx_start(c);
}
