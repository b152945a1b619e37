/* Messages Sesame itself sends (the verification email, DECISIONS 26): built here, stored
 * in the caller's transaction beside what they announce, and handed to delivery after
 * the commit like any accepted message. They belong to no account's quota or statistics. */
#include "mail/mail.h"
#include "send/send_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int send_notice_build(const struct sesame_config *cfg, const char *region, const char *to,
                      const char *subject, const char *text, struct send_notice *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = core_now_ms();
    core_message_id(now, out->id, sizeof out->id);
    core_strlcpy(out->region, region, sizeof out->region);
    core_strlcpy(out->to, to, sizeof out->to);
    if (cfg->verification_sender[0])
        core_strlcpy(out->from, cfg->verification_sender, sizeof out->from);
    else
        snprintf(out->from, sizeof out->from, "no-reply@%s", cfg->hostname);
    out->created_ms = now;
    out->captured = !strcmp(cfg->delivery_mode, "capture");
    char mid[400], err[256];
    snprintf(mid, sizeof mid, "<%s@%s>", out->id, cfg->message_id_domain);
    const char *rcpts[1] = {out->to};
    struct mail_formatted f = {.source = out->from,
                               .to = rcpts,
                               .to_count = 1,
                               .subject = subject,
                               .text = text,
                               .date_ms = now,
                               .message_id = mid};
    buf_init(&out->data);
    if (mail_build(&f, &out->data, err, sizeof err) != MAIL_OK) {
        log_error("notice to %s: %s", to, err);
        buf_free(&out->data);
        return -1;
    }
    return 0;
}

int send_notice_store(struct store_conn *c, const struct send_notice *n)
{
    struct buf meta;
    buf_init(&meta);
    buf_puts(&meta, "{\"Id\":");
    buf_json_string(&meta, n->id);
    buf_puts(&meta, ",\"Region\":");
    buf_json_string(&meta, n->region);
    buf_puts(&meta, ",\"Source\":");
    buf_json_string(&meta, n->from);
    buf_puts(&meta, ",\"Raw\":true}");
    struct store_message m = {.created_ms = n->created_ms,
                              .data = n->data.data,
                              .data_len = n->data.len,
                              .meta = buf_cstr(&meta),
                              .captured = n->captured};
    core_strlcpy(m.id, n->id, sizeof m.id);
    core_strlcpy(m.account_id, SEND_NOTICE_ACCOUNT, sizeof m.account_id);
    core_strlcpy(m.region, n->region, sizeof m.region);
    core_strlcpy(m.source, n->from, sizeof m.source);
    const char *rcpts[1] = {n->to};
    int rc = store_message_insert(c, &m, rcpts, 1);
    buf_free(&meta);
    return rc;
}

void send_notice_hand_over(struct send_shared *sh, const struct send_notice *n)
{
    if (n->captured || !sh->queued_fn)
        return;
    const char *rcpts[1] = {n->to};
    struct send_queued q = {.id = n->id,
                            .account_id = SEND_NOTICE_ACCOUNT,
                            .region = n->region,
                            .source = n->from,
                            .created_ms = n->created_ms,
                            .data = n->data.data,
                            .len = n->data.len,
                            .recipients = rcpts,
                            .recipient_count = 1};
    sh->queued_fn(&q, sh->queued_ctx);
}

void send_notice_free(struct send_notice *n)
{
    buf_free(&n->data);
}
