/* libFuzzer target: raw messages through canonicalization, inspection (header section,
 * addresses, the GMime walk for delivery-status parts and attachment names) and the
 * acceptance rewrite, as SendRawEmail and SMTP DATA run them. */
#include "mail/mail.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf msg, out;
    struct mail_inspection in;
    char err[256];
    buf_init(&msg);
    buf_init(&out);
    if (mail_normalize((const char *)data, size, &msg, err, sizeof err) == MAIL_OK &&
        mail_inspect(msg.data ? msg.data : "", msg.len, &in, err, sizeof err) == MAIL_OK) {
        struct mail_rewrite rw = {.date_ms = 1796161810123LL,
                                  .message_id = "<fuzz@sesame.example>",
                                  .add_from = in.from_count ? NULL : "fuzz@example.com"};
        mail_rewrite(msg.data, msg.len, &rw, &out);
        for (int i = 0; i < in.from_count; i++)
            mail_extension_blocked(in.from[i]);
        mail_inspection_free(&in);
    }
    buf_free(&msg);
    buf_free(&out);
    return 0;
}
