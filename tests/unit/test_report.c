/* Reports received at the bounce domain (feedback_report_parse): DSNs as Postfix and
 * Exchange write them (RFC 3464), ARF reports (RFC 5965), auto-replies (RFC 3834), and
 * what the Internet also sends: plain mail, truncated reports, garbage, deep nesting. */
#include "feedback/feedback.h"
#include "unit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#define DATE_MS 1796161810000LL    /* Tue, 01 Dec 2026 21:50:10 +0000 */
#define ARRIVAL_MS 1796161805000LL /* Tue,  1 Dec 2026 21:50:05 +0000 */

static const char postfix_dsn[] =
    "Return-Path: <>\n"
    "Received: by mx.example.net (Postfix) id 4F1A2B3C4D; Tue,  1 Dec 2026 21:50:10 +0000\n"
    "Date: Tue, 01 Dec 2026 21:50:10 +0000 (UTC)\n"
    "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
    "Subject: Undelivered Mail Returned to Sender\n"
    "To: bounce+abc@bounce.sesame.example\n"
    "Auto-Submitted: auto-replied\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=delivery-status;\n"
    "\tboundary=\"4F1A2B3C4D.1796161810/mx.example.net\"\n"
    "Message-Id: <20261201215010.1@mx.example.net>\n"
    "\n"
    "This is a MIME-encapsulated message.\n"
    "\n"
    "--4F1A2B3C4D.1796161810/mx.example.net\n"
    "Content-Description: Notification\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "\n"
    "This is the mail system at host mx.example.net.\n"
    "\n"
    "--4F1A2B3C4D.1796161810/mx.example.net\n"
    "Content-Description: Delivery report\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.example.net\n"
    "X-Postfix-Queue-ID: 4F1A2B3C4D\n"
    "X-Postfix-Sender: rfc822; bounce+abc@bounce.sesame.example\n"
    "Arrival-Date: Tue,  1 Dec 2026 21:50:05 +0000 (UTC)\n"
    "\n"
    "Final-Recipient: rfc822; a@example.net\n"
    "Original-Recipient: rfc822;A@example.net\n"
    "Action: failed\n"
    "Status: 5.1.1\n"
    "Remote-MTA: dns; mail.example.net\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <a@example.net>... User\n"
    "    unknown\n"
    "\n"
    "Final-Recipient: rfc822; <b@example.net>\n"
    "Action: Failed\n"
    "Status: 5.0.0 (permanent failure)\n"
    "Diagnostic-Code: X-Postfix; unknown user: \"b\"\n"
    "\n"
    "--4F1A2B3C4D.1796161810/mx.example.net\n"
    "Content-Description: Undelivered Message Headers\n"
    "Content-Type: text/rfc822-headers\n"
    "\n"
    "Return-Path: <bounce+abc@bounce.sesame.example>\n"
    "Received: from smtp.sesame.example by mx.example.net; Tue,  1 Dec 2026 21:50:05 +0000\n"
    "Message-ID: <0100abc-def@email.sesame.example>\n"
    "From: sender@example.com\n"
    "To: a@example.net, b@example.net\n"
    "Subject: Your order\n"
    "\n"
    "--4F1A2B3C4D.1796161810/mx.example.net--\n";

static const char delayed_dsn[] =
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n"
    "Subject: Delayed Mail (still being retried)\n"
    "Content-Type: multipart/report; report-type=\"Delivery-Status\"; boundary=\"b\"\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain\n"
    "\n"
    "Still trying.\n"
    "--b\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; mx.example.org\n"
    "\n"
    "Final-Recipient: rfc822; slow@example.org\n"
    "Action: Delayed\n"
    "Status: 4.4.1\n"
    "Diagnostic-Code: smtp; 421 4.4.1 connection timed out\n"
    "Will-Retry-Until: Wed, 02 Dec 2026 09:00:00 +0100\n"
    "--b\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Return-Path: bounce+slow@bounce.sesame.example\n"
    "Message-ID: <slow@email.sesame.example>\n"
    "From: sender@example.com\n"
    "\n"
    "body\n"
    "--b--\n";

/* Exchange: CRLF already, the status part in base64, the original attached whole. */
static const char exchange_dsn[] =
    "From: postmaster@contoso.example\r\n"
    "To: bounce+x@bounce.sesame.example\r\n"
    "Date: Tue, 1 Dec 2026 22:50:05 +0100\r\n"
    "Subject: Undeliverable: Your order\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "\tboundary=\"_000_EX01_\"\r\n"
    "MIME-Version: 1.0\r\n"
    "\r\n"
    "--_000_EX01_\r\n"
    "Content-Type: text/plain; charset=\"us-ascii\"\r\n"
    "\r\n"
    "Delivery has failed to these recipients or groups.\r\n"
    "--_000_EX01_\r\n"
    "Content-Type: message/delivery-status\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "UmVwb3J0aW5nLU1UQTogZG5zO0VYMDEuY29udG9zby5leGFtcGxlDQpSZWNlaXZlZC1Gcm9tLU1U\r\n"
    "QTogZG5zO0VYMDIuY29udG9zby5leGFtcGxlDQpBcnJpdmFsLURhdGU6IFR1ZSwgMSBEZWMgMjAy\r\n"
    "NiAyMjo1MDowNSArMDEwMA0KDQpPcmlnaW5hbC1SZWNpcGllbnQ6IHJmYzgyMjt4QGNvbnRvc28u\r\n"
    "ZXhhbXBsZQ0KRmluYWwtUmVjaXBpZW50OiByZmM4MjI7eEBjb250b3NvLmV4YW1wbGUNCkFjdGlv\r\n"
    "bjogZmFpbGVkDQpTdGF0dXM6IDUuMS4xMA0KRGlhZ25vc3RpYy1Db2RlOiBzbXRwOzU1MCA1LjEu\r\n"
    "MTAgUkVTT0xWRVIuQURSLlJlY2lwaWVudE5vdEZvdW5kOyBSZWNpcGllbnQgbm90IGZvdW5kDQo=\r\n"
    "--_000_EX01_\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Return-Path: <bounce+x@bounce.sesame.example>\r\n"
    "From: sender@example.com\r\n"
    "To: x@contoso.example\r\n"
    "Message-ID: <ex@email.sesame.example>\r\n"
    "Subject: Your order\r\n"
    "\r\n"
    "Hello\r\n"
    "--_000_EX01_--\r\n";

static const char arf_abuse[] =
    "From: <abusedesk@example.com>\n"
    "Date: Tue, 8 Mar 2005 17:40:36 -0400\n"
    "Subject: FW: Earn money\n"
    "To: <abuse@example.net>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/report; report-type=feedback-report;\n"
    "     boundary=\"part1_13d.2e68ed54_boundary\"\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: text/plain; charset=\"US-ASCII\"\n"
    "Content-Transfer-Encoding: 7bit\n"
    "\n"
    "This is an email abuse report for an email message received from IP\n"
    "192.0.2.1 on Tue, 8 Mar 2005 14:00:00 -0400.\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: Abuse\n"
    "User-Agent: SomeGenerator/1.0\n"
    "Version: 1\n"
    "Original-Mail-From: <bounce+xyz@bounce.sesame.example>\n"
    "Original-Rcpt-To: <user@example.com>\n"
    "Original-Rcpt-To: <other@example.com>\n"
    "Arrival-Date: Tue, 8 Mar 2005 14:00:00 -0400\n"
    "Reporting-MTA: dns; mail.example.com\n"
    "Source-IP: 192.0.2.1\n"
    "Authentication-Results: mail.example.com;\n"
    "               spf=fail smtp.mail=somespammer@example.com\n"
    "Reported-Domain: example.net\n"
    "\n"
    "--part1_13d.2e68ed54_boundary\n"
    "Content-Type: message/rfc822\n"
    "Content-Disposition: inline\n"
    "\n"
    "Return-Path: <bounce+xyz@bounce.sesame.example>\n"
    "From: <somespammer@example.net>\n"
    "Received: from mailserver.example.net (mailserver.example.net\n"
    "        [192.0.2.1]) by example.com with ESMTP id M63d4137594e46;\n"
    "        Tue, 08 Mar 2005 14:00:00 -0400\n"
    "To: <Undisclosed Recipients>\n"
    "Subject: Earn money\n"
    "MIME-Version: 1.0\n"
    "Content-type: text/plain\n"
    "Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\n"
    "Date: Thu, 02 Sep 2004 12:34:56 -0400\n"
    "\n"
    "Spam Spam Spam\n"
    "--part1_13d.2e68ed54_boundary--\n";

static const char arf_auth_failure[] =
    "From: dmarc-reports@example.org\n"
    "Subject: FW: authentication failure\n"
    "Content-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\n"
    "\n"
    "--x\n"
    "Content-Type: text/plain\n"
    "\n"
    "An authentication failure report.\n"
    "--x\n"
    "Content-Type: message/feedback-report\n"
    "\n"
    "Feedback-Type: auth-failure\n"
    "User-Agent: SomeDKIMFilter/1.0\n"
    "Version: 1\n"
    "Original-Mail-From: bounce+q@bounce.sesame.example\n"
    "Original-Rcpt-To: redacted\n"
    "Auth-Failure: signature\n"
    "--x\n"
    "Content-Type: text/rfc822-headers\n"
    "\n"
    "Return-Path: <bounce+q@bounce.sesame.example>\n"
    "Message-ID: <q@email.sesame.example>\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=sesame.example;\n"
    "--x--\n";

static const char autoreply[] = "From: \"Bob B.\" <bob@example.org>\n"
                                "To: sender@example.com\n"
                                "Subject: =?UTF-8?B?UsOpcG9uc2UgYXV0b21hdGlxdWU=?=: Your order\n"
                                "Date: Wed, 02 Dec 2026 09:00:00 +0100\n"
                                "Auto-Submitted: Auto-Replied (vacation)\n"
                                "In-Reply-To: <0100abc@email.sesame.example> (sent by you)\n"
                                "References: <older@example.com> <0100abc@email.sesame.example>\n"
                                "Content-Type: text/plain\n"
                                "\n"
                                "I am away until Monday.\n";

/* As on the wire: every LF made CRLF. */
static char *crlf(const char *msg, size_t *len)
{
    char *out = malloc(2 * strlen(msg) + 1);
    size_t n = 0;
    for (const char *p = msg; *p; p++) {
        if (*p == '\n' && (p == msg || p[-1] != '\r'))
            out[n++] = '\r';
        out[n++] = *p;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

static bool printable_field(const char *s, size_t size)
{
    size_t n = strnlen(s, size);
    if (n == size)
        return false; /* not terminated */
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    }
    return n == 0 || (s[0] != ' ' && s[n - 1] != ' ');
}

#define PRINTABLE(f) printable_field((f), sizeof(f))

/* What every result must be, whatever the input. */
static bool report_consistent(const struct feedback_report *r)
{
    bool ok = PRINTABLE(r->error) && PRINTABLE(r->subject) && PRINTABLE(r->from) &&
              PRINTABLE(r->reporting_mta) && PRINTABLE(r->feedback_type) &&
              PRINTABLE(r->user_agent) && PRINTABLE(r->original_rcpt) &&
              PRINTABLE(r->original_mail_from) && PRINTABLE(r->original_message_id) &&
              PRINTABLE(r->original_return_path);
    ok = ok && (r->kind == FEEDBACK_REPORT_UNKNOWN) == (r->error[0] != '\0');
    ok = ok && r->recipient_count >= 0 && r->recipient_count <= FEEDBACK_REPORT_RECIPIENTS &&
         r->recipient_overflow >= 0;
    ok = ok && (r->recipient_overflow == 0 || r->recipient_count == FEEDBACK_REPORT_RECIPIENTS);
    if (r->kind == FEEDBACK_REPORT_DSN)
        ok = ok && r->recipient_count > 0;
    for (int i = 0; ok && i < r->recipient_count; i++) {
        const struct feedback_report_recipient *x = &r->recipients[i];
        ok = PRINTABLE(x->final_recipient) && PRINTABLE(x->original_recipient) &&
             PRINTABLE(x->action) && PRINTABLE(x->status) && PRINTABLE(x->diagnostic) &&
             PRINTABLE(x->remote_mta);
        ok = ok && (x->status[0] == '\0' || strchr("245", x->status[0]));
    }
    return ok;
}

/* Parses msg as CRLF (as received) and as bare LF: both must give the same report. */
static enum feedback_report_kind parse(const char *msg, struct feedback_report *r)
{
    size_t len;
    char *wire = crlf(msg, &len);
    enum feedback_report_kind kind = feedback_report_parse(wire, len, r);
    free(wire);
    CHECK(report_consistent(r));
    if (!strchr(msg, '\r')) {
        struct feedback_report *lf = malloc(sizeof *lf);
        CHECK(feedback_report_parse(msg, strlen(msg), lf) == kind);
        CHECK(memcmp(lf, r, sizeof *lf) == 0);
        free(lf);
    }
    return kind;
}

static void test_postfix_dsn(void)
{
    struct feedback_report r;
    CHECK(parse(postfix_dsn, &r) == FEEDBACK_REPORT_DSN);
    CHECK(r.kind == FEEDBACK_REPORT_DSN);
    CHECK_STR(r.error, "");
    CHECK(r.date_ms == DATE_MS);
    CHECK_STR(r.subject, "Undelivered Mail Returned to Sender");
    CHECK_STR(r.from, "MAILER-DAEMON@mx.example.net");
    CHECK_STR(r.reporting_mta, "dns; mx.example.net");
    CHECK(r.arrival_ms == ARRIVAL_MS);
    CHECK(r.recipient_count == 2 && r.recipient_overflow == 0);
    const struct feedback_report_recipient *a = &r.recipients[0], *b = &r.recipients[1];
    CHECK_STR(a->final_recipient, "a@example.net");
    CHECK_STR(a->original_recipient, "A@example.net");
    CHECK_STR(a->action, "failed");
    CHECK_STR(a->status, "5.1.1");
    CHECK_STR(a->diagnostic, "smtp; 550 5.1.1 <a@example.net>... User unknown");
    CHECK_STR(a->remote_mta, "dns; mail.example.net");
    CHECK_STR(b->final_recipient, "b@example.net");
    CHECK_STR(b->original_recipient, "");
    CHECK_STR(b->action, "failed");
    CHECK_STR(b->status, "5.0.0"); /* the comment after it dropped */
    CHECK_STR(b->diagnostic, "X-Postfix; unknown user: \"b\"");
    CHECK_STR(b->remote_mta, "");
    CHECK_STR(r.original_message_id, "0100abc-def@email.sesame.example");
    CHECK_STR(r.original_return_path, "bounce+abc@bounce.sesame.example");
    CHECK_STR(r.feedback_type, "");
}

static void test_delayed_dsn(void)
{
    struct feedback_report r;
    CHECK(parse(delayed_dsn, &r) == FEEDBACK_REPORT_DSN);
    CHECK(r.date_ms == 0); /* no Date */
    CHECK(r.arrival_ms == 0);
    CHECK_STR(r.from, "MAILER-DAEMON@mx.example.org");
    CHECK_STR(r.reporting_mta, "dns; mx.example.org");
    CHECK(r.recipient_count == 1);
    CHECK_STR(r.recipients[0].final_recipient, "slow@example.org");
    CHECK_STR(r.recipients[0].action, "delayed");
    CHECK_STR(r.recipients[0].status, "4.4.1");
    CHECK_STR(r.recipients[0].diagnostic, "smtp; 421 4.4.1 connection timed out");
    CHECK_STR(r.original_message_id, "slow@email.sesame.example");
    CHECK_STR(r.original_return_path, "bounce+slow@bounce.sesame.example");
}

static void test_exchange_dsn(void)
{
    struct feedback_report r;
    CHECK(parse(exchange_dsn, &r) == FEEDBACK_REPORT_DSN);
    CHECK(r.date_ms == ARRIVAL_MS);
    CHECK_STR(r.subject, "Undeliverable: Your order");
    CHECK_STR(r.from, "postmaster@contoso.example");
    CHECK_STR(r.reporting_mta, "dns;EX01.contoso.example");
    CHECK(r.arrival_ms == ARRIVAL_MS);
    CHECK(r.recipient_count == 1);
    CHECK_STR(r.recipients[0].final_recipient, "x@contoso.example");
    CHECK_STR(r.recipients[0].original_recipient, "x@contoso.example");
    CHECK_STR(r.recipients[0].action, "failed");
    CHECK_STR(r.recipients[0].status, "5.1.10");
    CHECK_STR(r.recipients[0].diagnostic,
              "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found");
    CHECK_STR(r.original_message_id, "ex@email.sesame.example");
    CHECK_STR(r.original_return_path, "bounce+x@bounce.sesame.example");
}

/* A DSN whose Status is sval, its Action aval. */
static void one_status(const char *sval, const char *aval, struct feedback_report *r)
{
    char msg[1024];
    snprintf(msg, sizeof msg,
             "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
             "--b\nContent-Type: message/delivery-status\n\n"
             "Reporting-MTA: dns; h\n\nFinal-Recipient: rfc822; u@h\nAction: %s\nStatus: %s\n"
             "--b--\n",
             aval, sval);
    CHECK(parse(msg, r) == FEEDBACK_REPORT_DSN);
}

static void test_status_values(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2.0.0", "2.0.0"},
        {"4.7.1", "4.7.1"},
        {"5.1.10", "5.1.10"},
        {"5.123.456", "5.123.456"},
        {"5.1234.1", ""},
        {"5.1.1234", ""},
        {"6.1.1", ""},
        {"5.1", ""},
        {"5..1", ""},
        {"5.1.1.", ""},
        {"x5.1.1", ""},
        {"", ""},
        {"  5.2.2  ", "5.2.2"},
        {"5.1.1; bad", ""},
        {"5.1.1\t(comment)", "5.1.1"},
    };
    struct feedback_report r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        one_status(cases[i].in, "failed", &r);
        CHECK_STR(r.recipients[0].status, cases[i].out);
    }
    one_status("5.1.1", "EXPANDED (to a list)", &r);
    CHECK_STR(r.recipients[0].action, "expanded");
    one_status("5.1.1", "a-much-too-long-action-word", &r);
    CHECK_STR(r.recipients[0].action, "a-much-too-long"); /* cut to its 16 bytes */
}

static void test_arf_abuse(void)
{
    struct feedback_report r;
    CHECK(parse(arf_abuse, &r) == FEEDBACK_REPORT_ARF);
    CHECK_STR(r.error, "");
    CHECK(r.date_ms == 1110318036000LL);
    CHECK_STR(r.subject, "FW: Earn money");
    CHECK_STR(r.from, "abusedesk@example.com");
    CHECK_STR(r.feedback_type, "abuse");
    CHECK_STR(r.user_agent, "SomeGenerator/1.0");
    CHECK_STR(r.original_mail_from, "bounce+xyz@bounce.sesame.example");
    CHECK_STR(r.original_rcpt, "user@example.com"); /* the first one */
    CHECK(r.arrival_ms == 1110304800000LL);
    CHECK_STR(r.reporting_mta, "dns; mail.example.com");
    CHECK_STR(r.original_message_id, "8787KJKJ3K4J3K4J3K4J3.mail@example.net");
    CHECK_STR(r.original_return_path, "bounce+xyz@bounce.sesame.example");
    CHECK(r.recipient_count == 0);
}

static void test_arf_auth_failure(void)
{
    struct feedback_report r;
    CHECK(parse(arf_auth_failure, &r) == FEEDBACK_REPORT_ARF);
    CHECK_STR(r.feedback_type, "auth-failure");
    CHECK_STR(r.user_agent, "SomeDKIMFilter/1.0");
    CHECK_STR(r.original_mail_from, "bounce+q@bounce.sesame.example");
    CHECK_STR(r.original_rcpt, ""); /* redacted */
    CHECK(r.arrival_ms == 0);
    CHECK(r.date_ms == 0);
    CHECK_STR(r.reporting_mta, "");
    CHECK_STR(r.original_message_id, "q@email.sesame.example");
    CHECK_STR(r.original_return_path, "bounce+q@bounce.sesame.example");

    /* Received-Date stands in for a missing Arrival-Date. */
    struct buf msg;
    buf_init(&msg);
    const char *version = strstr(arf_auth_failure, "Version: 1\n");
    buf_append(&msg, arf_auth_failure, (size_t)(version - arf_auth_failure));
    buf_puts(&msg, "Received-Date: Tue, 01 Dec 2026 21:50:10 +0000\n");
    buf_puts(&msg, version);
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_ARF);
    CHECK(r.arrival_ms == DATE_MS);
    buf_free(&msg);
}

static void test_autoreply(void)
{
    struct feedback_report r;
    CHECK(parse(autoreply, &r) == FEEDBACK_REPORT_AUTOREPLY);
    CHECK_STR(r.error, "");
    CHECK_STR(r.from, "bob@example.org");
    CHECK_STR(r.subject, "R?ponse automatique: Your order"); /* one '?' per character */
    CHECK(r.date_ms == 1796198400000LL);
    CHECK_STR(r.original_message_id, "0100abc@email.sesame.example");
    CHECK_STR(r.original_return_path, "");

    /* No In-Reply-To: the last of References; the non-standard markers. */
    static const char *markers[] = {"X-Autoreply: yes", "X-Autorespond: on vacation",
                                    "Precedence: Auto_Reply "};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "From: bob@example.org\nSubject: away\n%s\n"
                 "References: <older@example.com>\n <last@email.sesame.example>\n\naway\n",
                 markers[i]);
        CHECK(parse(msg, &r) == FEEDBACK_REPORT_AUTOREPLY);
        CHECK_STR(r.original_message_id, "last@email.sesame.example");
    }
    CHECK(parse("From: bob@example.org\nAuto-Submitted: auto-generated\n\nhello\n", &r) ==
          FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "auto-generated, not an auto-reply");
    CHECK(parse("From: bob@example.org\nAuto-Submitted: no\nX-Autoreply: yes\n\nhi\n", &r) ==
          FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "not a report: text/plain");
    CHECK(parse("From: b@x.org\nAuto-Submitted: auto-replied\nIn-Reply-To: id@x.org\n\nhi\n", &r) ==
          FEEDBACK_REPORT_AUTOREPLY);
    CHECK_STR(r.original_message_id, "id@x.org"); /* without its brackets */
}

static void test_not_reports(void)
{
    struct feedback_report r;
    CHECK(parse("From: Alice <alice@example.com>, bob@example.com\n"
                "Subject: hello\nDate: garbage\n\nJust mail.\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "not a report: text/plain");
    CHECK_STR(r.from, "alice@example.com");
    CHECK_STR(r.subject, "hello");
    CHECK(r.date_ms == 0);

    CHECK(parse("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                "--b\nContent-Type: text/plain\n\nfailed\n--b--\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "report without a delivery-status part");
    CHECK(parse("Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
                "--b\nContent-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822; a@b\nAction: failed\n--b--\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "report without a feedback-report part");
    CHECK(parse("Auto-Submitted: auto-replied\n"
                "Content-Type: multipart/report; report-type=disposition-notification;"
                " boundary=b\n\n--b\nContent-Type: message/disposition-notification\n\n"
                "Disposition: automatic-action/MDN-sent-automatically; displayed\n--b--\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "not a DSN or ARF report: report-type=disposition-notification");
    CHECK(parse("Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; h\n--b--\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "delivery-status part without a per-recipient block");

    CHECK(feedback_report_parse("", 0, &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "empty message");
    CHECK(feedback_report_parse(NULL, 0, &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK(report_consistent(&r));
}

/* DSNs not shaped as RFC 3464 says: the status part alone, or inside a multipart/mixed. */
static void test_dsn_shapes(void)
{
    struct feedback_report r;
    CHECK(parse("From: MAILER-DAEMON\nContent-Type: message/delivery-status\n\n"
                "Reporting-MTA: dns; h\nFinal-Recipient: rfc822;u@h\nAction: failed\n"
                "Status: 5.1.1\n",
                &r) == FEEDBACK_REPORT_DSN);
    CHECK_STR(r.from, "MAILER-DAEMON");   /* not an address, but what there is */
    CHECK_STR(r.reporting_mta, "dns; h"); /* in the same block as the recipient's */
    CHECK(r.recipient_count == 1);
    CHECK_STR(r.recipients[0].final_recipient, "u@h");

    CHECK(parse("Content-Type: multipart/mixed; boundary=o\n\n"
                "--o\nContent-Type: text/plain\n\nA bounce\n"
                "--o\nContent-Type: multipart/report; boundary=i\n\n"
                "--i\nContent-Type: message/global-delivery-status\n\n"
                "Reporting-MTA: dns; h\n \t \nFinal-Recipient: utf-8; j\xc3\xb6rg@h\n"
                "Action: failed\nStatus: 5.1.1\n"
                "--i\nContent-Type: message/global-headers\n\nMessage-ID: <m@h>\n"
                "--i--\n--o--\n",
                &r) == FEEDBACK_REPORT_DSN);
    CHECK_STR(r.recipients[0].final_recipient, "j?rg@h");
    CHECK_STR(r.original_message_id, "m@h");

    /* A bounce forwarded as an attachment is not a DSN itself. */
    CHECK(parse("Content-Type: multipart/mixed; boundary=o\n\n"
                "--o\nContent-Type: message/rfc822\n\n"
                "Content-Type: message/delivery-status\n\n"
                "Final-Recipient: rfc822;u@h\nAction: failed\n--o--\n",
                &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "not a report: multipart/mixed");
}

static void test_many_recipients(void)
{
    struct buf msg;
    buf_init(&msg);
    buf_puts(&msg, "From: MAILER-DAEMON@h.example\n"
                   "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
                   "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; h\n");
    for (int i = 0; i < 60; i++)
        buf_printf(&msg,
                   "\nFinal-Recipient: rfc822; r%d@example.com\nAction: failed\n"
                   "Status: 5.1.1\n",
                   i);
    buf_puts(&msg, "--b--\n");
    struct feedback_report r;
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_DSN);
    CHECK(r.recipient_count == FEEDBACK_REPORT_RECIPIENTS);
    CHECK(r.recipient_overflow == 60 - FEEDBACK_REPORT_RECIPIENTS);
    CHECK_STR(r.recipients[0].final_recipient, "r0@example.com");
    CHECK_STR(r.recipients[49].final_recipient, "r49@example.com");
    CHECK_STR(r.reporting_mta, "dns; h");
    buf_free(&msg);
}

/* Long values are cut to their buffers; control bytes and 8-bit become '?'. */
static void test_long_and_odd_values(void)
{
    struct buf msg;
    buf_init(&msg);
    buf_puts(&msg, "Subject: ");
    for (int i = 0; i < 500; i++)
        buf_puts(&msg, "abc ");
    buf_puts(&msg, "\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; u@h\n"
                   "Action: failed\nDiagnostic-Code: smtp; 550\x01 b\xe9te\n");
    buf_puts(&msg, "Remote-MTA: ");
    for (int i = 0; i < 3000; i++)
        buf_puts(&msg, "x\n ");
    buf_puts(&msg, "end\n");
    struct feedback_report r;
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_DSN);
    CHECK(strlen(r.subject) == sizeof r.subject - 1);
    CHECK_STR(r.recipients[0].diagnostic, "smtp; 550? b?te");
    CHECK(strlen(r.recipients[0].remote_mta) == sizeof r.recipients[0].remote_mta - 1);
    CHECK(strncmp(r.recipients[0].remote_mta, "x x x", 5) == 0);
    buf_free(&msg);
}

/* Cut anywhere, a DSN gives a consistent result: at every byte of the status part. */
static void test_truncated(void)
{
    size_t len;
    char *wire = crlf(postfix_dsn, &len);
    size_t from = (size_t)(strstr(wire, "Reporting-MTA") - wire);
    size_t to = (size_t)(strstr(wire, "Content-Description: Undelivered") - wire);
    struct feedback_report r;
    int dsn = 0, unknown = 0;
    for (size_t cut = from; cut < to; cut++) {
        enum feedback_report_kind kind = feedback_report_parse(wire, cut, &r);
        CHECK(report_consistent(&r));
        dsn += kind == FEEDBACK_REPORT_DSN;
        unknown += kind == FEEDBACK_REPORT_UNKNOWN;
    }
    CHECK(dsn > 0 && unknown > 0 && dsn + unknown == (int)(to - from));
    /* Cut in the middle of the first Status: that recipient has none yet. */
    size_t cut = (size_t)(strstr(wire, "Status: 5.1.1") - wire) + 11;
    CHECK(feedback_report_parse(wire, cut, &r) == FEEDBACK_REPORT_DSN);
    CHECK(r.recipient_count == 1);
    CHECK_STR(r.recipients[0].status, "");
    CHECK_STR(r.recipients[0].action, "failed");
    CHECK_STR(r.original_message_id, "");
    free(wire);
}

static void test_garbage(void)
{
    uint32_t seed = 12345;
    struct feedback_report r;
    static const size_t sizes[] = {1, 2, 7, 100, 4096, 65536};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char *bytes = malloc(sizes[s]);
        for (size_t i = 0; i < sizes[s]; i++) {
            seed = seed * 1103515245u + 12345u;
            bytes[i] = (char)(seed >> 16);
        }
        feedback_report_parse(bytes, sizes[s], &r);
        CHECK(r.kind == FEEDBACK_REPORT_UNKNOWN && report_consistent(&r));
        free(bytes);
    }
    CHECK(feedback_report_parse("\0\0\0\r\n\r\n\0", 8, &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK(report_consistent(&r));
}

/* Multiparts nested 200 deep, the status part at the bottom: found only within bounds. */
static void nested(int depth, struct buf *msg)
{
    buf_reset(msg);
    for (int i = 0; i < depth; i++)
        buf_printf(msg, "%sContent-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n",
                   i ? "" : "From: x@example.com\n", i, i);
    buf_puts(msg, "Content-Type: message/delivery-status\n\n"
                  "Final-Recipient: rfc822; deep@h\nAction: failed\nStatus: 5.1.1\n");
    for (int i = depth - 1; i >= 0; i--)
        buf_printf(msg, "--b%d--\n", i);
}

static void test_deep_nesting(void)
{
    struct buf msg;
    struct feedback_report r;
    buf_init(&msg);
    nested(200, &msg);
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "not a report: multipart/mixed");
    CHECK_STR(r.from, "x@example.com");
    nested(3, &msg);
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_DSN);
    CHECK_STR(r.recipients[0].final_recipient, "deep@h");
    buf_free(&msg);
}

/* Bytes that would make GMime build an object per part or per header line, tens of times
 * their size, are refused before it sees them; a report within the bounds still parses. */
static void test_too_complex(void)
{
    struct buf msg;
    struct feedback_report r;
    buf_init(&msg);
    buf_puts(&msg, "From: x@example.com\nContent-Type: multipart/mixed; boundary=\"s\"\n\n");
    for (int i = 0; i < 1200; i++)
        buf_puts(&msg, "--s\nContent-Type: text/plain\n\nx\n");
    buf_puts(&msg, "--s--\n");
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "too many MIME parts to parse");
    buf_free(&msg);
    buf_init(&msg);
    buf_puts(&msg, "From: x@example.com\n");
    for (int i = 0; i < 20000; i++)
        buf_puts(&msg, "X-A: b\n");
    buf_puts(&msg, "\nbody\n");
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_UNKNOWN);
    CHECK_STR(r.error, "too many header lines to parse");
    buf_free(&msg);
    /* many body lines, even many starting with a dash, are not parts */
    buf_init(&msg);
    buf_puts(&msg, postfix_dsn);
    for (int i = 0; i < 50000; i++)
        buf_puts(&msg, "- a line of the returned message\n");
    CHECK(parse(buf_cstr(&msg), &r) == FEEDBACK_REPORT_DSN);
    buf_free(&msg);
}

static void *worker(void *arg)
{
    struct feedback_report *r = malloc(sizeof *r);
    bool ok = true;
    for (int i = 0; i < 50; i++) {
        ok &= feedback_report_parse(postfix_dsn, strlen(postfix_dsn), r) == FEEDBACK_REPORT_DSN;
        ok &= !strcmp(r->recipients[0].status, "5.1.1");
        ok &= feedback_report_parse(arf_abuse, strlen(arf_abuse), r) == FEEDBACK_REPORT_ARF;
    }
    free(r);
    return ok ? arg : NULL;
}

/* Several threads at once, from the first call (GMime's initialization races). */
static void test_threads(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, t);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        CHECK(r == t);
    }
}

int main(void)
{
    test_threads(); /* first, so that the threads race for GMime's initialization */
    test_postfix_dsn();
    test_delayed_dsn();
    test_exchange_dsn();
    test_status_values();
    test_arf_abuse();
    test_arf_auth_failure();
    test_autoreply();
    test_not_reports();
    test_dsn_shapes();
    test_many_recipients();
    test_long_and_odd_values();
    test_truncated();
    test_garbage();
    test_deep_nesting();
    test_too_complex();
    return UNIT_END();
}
