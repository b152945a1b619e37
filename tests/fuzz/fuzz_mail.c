/* libFuzzer target: raw messages through canonicalization, inspection (header section,
 * addresses, the GMime walk for delivery-status parts and attachment names) and the
 * acceptance rewrite, as SendRawEmail and SMTP DATA run them. */
#include "mail/mail.h"
#include "mail/mail_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* mail_mailbox_addr skips libidn2 for plain ASCII: it must give what GMime's IDN form
 * gives, for every mailbox of every list, groups included. */
static void check_idn_shortcut(InternetAddressList *list)
{
    for (int i = 0; i < internet_address_list_length(list); i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia))
            check_idn_shortcut(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)));
        else if (strcmp(mail_mailbox_addr(ia),
                        internet_address_mailbox_get_idn_addr(INTERNET_ADDRESS_MAILBOX(ia))))
            abort();
    }
}

/* A plain addr-spec skips GMime: GMime must accept it and flatten it to itself. */
static void check_plain_shortcut(const char *value, InternetAddressList *list)
{
    if (!mail_address_plain(value))
        return;
    char **addrs = NULL;
    int count = 0;
    if (!list)
        abort();
    mail_address_list_flatten(list, &addrs, &count);
    if (count != 1 || strcmp(addrs[0], value))
        abort();
    for (int i = 0; i < count; i++)
        free(addrs[i]);
    free(addrs);
}

static void fuzz_address_list(const uint8_t *data, size_t size)
{
    char *value = strndup((const char *)data, size < 1000 ? size : 1000);
    InternetAddressList *list = value ? mail_address_list_parse(value) : NULL;
    if (value)
        check_plain_shortcut(value, list);
    if (list) {
        check_idn_shortcut(list);
        g_object_unref(list);
    }
    free(value);
}

/* mail_normalize's whole-message shortcut against the rule it shortcuts: line by line,
 * LF or CRLF becomes CRLF; a NUL, another CR or a line over 998 octets refuses all. */
static void check_normalize(const uint8_t *data, size_t size, const struct buf *got, bool ok)
{
    struct buf want;
    buf_init(&want);
    bool want_ok = true;
    for (size_t pos = 0; pos < size && want_ok;) {
        const uint8_t *lf = memchr(data + pos, '\n', size - pos);
        size_t end = lf ? (size_t)(lf - data) : size, stop = end;
        if (lf && end > pos && data[end - 1] == '\r')
            stop--;
        want_ok = !memchr(data + pos, '\0', stop - pos) && !memchr(data + pos, '\r', stop - pos) &&
                  stop - pos <= 998;
        buf_append(&want, data + pos, stop - pos);
        if (lf)
            buf_append(&want, "\r\n", 2);
        pos = end + 1;
    }
    if (ok != want_ok ||
        (ok && (got->len != want.len || (want.len && memcmp(got->data, want.data, want.len)))))
        abort();
    buf_free(&want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf msg, out;
    struct mail_inspection in;
    char err[256];
    buf_init(&msg);
    buf_init(&out);
    bool normalized = mail_normalize((const char *)data, size, &msg, err, sizeof err) == MAIL_OK;
    check_normalize(data, size, &msg, normalized);
    if (normalized &&
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
    fuzz_address_list(data, size);
    return 0;
}
