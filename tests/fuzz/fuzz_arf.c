/* libFuzzer target: ARF reports and auto-replies through feedback_report_parse. An input
 * starting with '+' is the content of a message/feedback-report part (and whatever parts
 * follow it, such as the original), after a fixed multipart/report header, so the fuzzer
 * reaches the report's fields at once; any other input is a whole message. Every result
 * must be consistent: printable, terminated strings, an error exactly when the kind is
 * UNKNOWN, counts in range. */
#include "report_check.h"

static const char skeleton[] =
    "From: Feedback Loop <fbl@isp.example>\r\n"
    "Subject: Complaint\r\n"
    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: message/feedback-report\r\n"
    "\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_report(skeleton, sizeof skeleton - 1, data, size);
}
