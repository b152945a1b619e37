/* Shared by fuzz_dsn.c and fuzz_arf.c: what every feedback_report_parse result must be,
 * and the fuzzer's entry with a fixed report header for inputs starting with '+'. */
#ifndef SESAME_FUZZ_REPORT_CHECK_H
#define SESAME_FUZZ_REPORT_CHECK_H

#include "feedback/feedback.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_text(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == size || (n && (s[0] == ' ' || s[n - 1] == ' ')))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            abort();
    }
}

#define CHECK_TEXT(f) check_text((f), sizeof(f))

static void check(const struct feedback_report *r, enum feedback_report_kind kind)
{
    if (kind != r->kind || (kind == FEEDBACK_REPORT_UNKNOWN) != (r->error[0] != '\0') ||
        r->recipient_count < 0 || r->recipient_count > FEEDBACK_REPORT_RECIPIENTS ||
        (kind == FEEDBACK_REPORT_DSN && r->recipient_count == 0) || r->recipient_overflow < 0)
        abort();
    CHECK_TEXT(r->error);
    CHECK_TEXT(r->subject);
    CHECK_TEXT(r->from);
    CHECK_TEXT(r->reporting_mta);
    CHECK_TEXT(r->feedback_type);
    CHECK_TEXT(r->user_agent);
    CHECK_TEXT(r->original_rcpt);
    CHECK_TEXT(r->original_mail_from);
    CHECK_TEXT(r->original_message_id);
    CHECK_TEXT(r->original_return_path);
    for (int i = 0; i < r->recipient_count; i++) {
        const struct feedback_report_recipient *x = &r->recipients[i];
        CHECK_TEXT(x->final_recipient);
        CHECK_TEXT(x->original_recipient);
        CHECK_TEXT(x->action);
        CHECK_TEXT(x->status);
        CHECK_TEXT(x->diagnostic);
        CHECK_TEXT(x->remote_mta);
    }
}

/* An input starting with '+' goes after skeleton; any other is a whole message. */
static int fuzz_report(const char *skeleton, size_t skeleton_len, const uint8_t *data, size_t size)
{
    static struct feedback_report r; /* large: not on the stack */
    if (size > 0 && data[0] == '+') {
        size_t len = skeleton_len + size - 1;
        char *msg = malloc(len);
        memcpy(msg, skeleton, skeleton_len);
        memcpy(msg + skeleton_len, data + 1, size - 1);
        check(&r, feedback_report_parse(msg, len, &r));
        free(msg);
    } else {
        check(&r, feedback_report_parse((const char *)data, size, &r));
    }
    return 0;
}

#endif
