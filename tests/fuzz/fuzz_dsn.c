/* libFuzzer target: DSNs through feedback_report_parse. An input starting with '+' is
 * the content of a message/delivery-status part (and whatever parts follow it), after a
 * fixed multipart/report header, so the fuzzer reaches the per-recipient blocks at once;
 * any other input is a whole message. Every result must be consistent: printable,
 * terminated strings, an error exactly when the kind is UNKNOWN, counts in range. */
#include "report_check.h"

static const char skeleton[] =
    "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
    "Subject: Undelivered Mail Returned to Sender\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report(skeleton, sizeof skeleton - 1, data, size);
}
