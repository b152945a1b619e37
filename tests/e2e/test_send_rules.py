"""The sending rules (DECISIONS 9-19): each rule once refusing what it must and once
accepting what it must. A refused send must store nothing and count nothing."""
import base64
import re

import pytest

from conftest import assert_error, assert_ok
from sendlib import (
    SIM, account_set, b64, capture_instance, captured, cli_error, client, client_error,
    crlf, message_count, new_sender_account, parse, raw_data, stored, unverified, verify,
)

SENDER = "sender@example.com"  # a verified email address
RCPT = "rcpt@example.org"  # a verified email address (a recipient in the sandbox)
# example.net is a verified domain (senders and recipients).
MESSAGE = {"Subject": {"Data": "rules"}, "Body": {"Text": {"Data": "body"}}}
SIZE_MAX = 10485760


@pytest.fixture(scope="module")
def inst(module_instance):
    """us-east-1: sandbox; eu-west-1: production. Quota and rate out of the way."""
    i = capture_instance(module_instance, regions=("us-east-1", "eu-west-1"))
    for region in ("us-east-1", "eu-west-1"):
        verify(i, SENDER, "example.net", region=region)
    verify(i, RCPT, region="us-east-1")
    account_set(i, "--production", region="eu-west-1")
    account_set(i, "--quota", 1000000, "--rate", 100000)
    return i


@pytest.fixture(scope="module")
def ses(inst):
    return client(inst)


@pytest.fixture(scope="module")
def ses_eu(inst):
    return client(inst, region="eu-west-1")


def send(ses, source=SENDER, to=(RCPT,), cc=(), bcc=(), content=MESSAGE, **kw):
    return ses.send_email(Source=source, Destination={"ToAddresses": list(to),
                                                      "CcAddresses": list(cc),
                                                      "BccAddresses": list(bcc)},
                          Message=content, **kw)


def send_raw(ses, data, **kw):
    return ses.send_raw_email(RawMessage={"Data": data}, **kw)


def raw(headers, body="body\n"):
    return crlf(headers.rstrip("\n") + "\n\n" + body)


def sent24(ses):
    return ses.get_send_quota()["SentLast24Hours"]


def refused(inst, ses, fn, *args, status=400, code="MessageRejected", message=None, **kwargs):
    """fn(*args, **kwargs) fails with (status, code[, message]); nothing is stored and
    SentLast24Hours does not move. message may be a compiled regex. Returns the message."""
    before, counted = message_count(inst), sent24(ses)
    got_status, got_code, got_message = client_error(fn, *args, **kwargs)
    assert (got_status, got_code) == (status, code), (got_status, got_code, got_message)
    if isinstance(message, re.Pattern):
        assert message.fullmatch(got_message), got_message
    elif message is not None:
        assert got_message == message
    assert message_count(inst) == before
    assert sent24(ses) == counted
    return got_message


def accepted(inst, response):
    mid = response["MessageId"]
    assert stored(inst, mid) is not None
    return mid


# ---- sender identities (DECISIONS 9, 9b) ----


def test_email_identity_is_case_sensitive(inst, ses):
    for source in ("Sender@example.com", "sender@EXAMPLE.com", "Sender@EXAMPLE.com"):
        refused(inst, ses, send, ses, source=source, message=unverified("us-east-1", source))
    accepted(inst, send(ses, source=SENDER))
    accepted(inst, send(ses, source="Display Name <%s>" % SENDER))


def test_unverified_sender_cli(inst):
    code, message = cli_error(inst, "send-email", "--from", "Sender@EXAMPLE.com",
                              "--destination", "ToAddresses=%s" % RCPT,
                              "--message", "Subject={Data=s},Body={Text={Data=b}}")
    assert (code, message) == ("MessageRejected", unverified("us-east-1", "Sender@EXAMPLE.com"))
    code, message = cli_error(inst, "send-raw-email", "--raw-message",
                              "Data=%s" % b64(raw("From: x@unverified.test\nTo: %s" % RCPT)))
    assert (code, message) == ("MessageRejected", unverified("us-east-1", "x@unverified.test"))


def test_plus_label_covered_by_address(inst, ses):
    accepted(inst, send(ses, source="sender+news@example.com"))
    accepted(inst, send(ses, to=("rcpt+label@example.org",)))  # sandbox recipient too
    for source in ("other+news@example.com", "Sender+news@example.com"):
        refused(inst, ses, send, ses, source=source, message=unverified("us-east-1", source))


def test_domain_covers_subdomains_case_insensitively(inst, ses):
    for source in ("a@example.net", "b@sub.example.net", "c@deep.sub.example.net",
                   "d@EXAMPLE.NET", "E@Sub.Example.Net"):
        accepted(inst, send(ses, source=source))
    for source in ("a@example.net.evil.test", "a@notexample.net", "a@xexample.net"):
        refused(inst, ses, send, ses, source=source, message=unverified("us-east-1", source))


def test_raw_from_sender_return_path_and_source_verified(inst, ses):
    # Every failing identity, in the order From, Sender, Return-Path, Source.
    data = raw("Return-Path: <rp@bad.test>\nFrom: from@bad.test\nSender: sender@bad.test\n"
               "To: %s" % RCPT)
    refused(inst, ses, send_raw, ses, data, Source="source@bad.test",
            message=unverified("us-east-1", "from@bad.test", "sender@bad.test", "rp@bad.test",
                               "source@bad.test"))
    # Each alone.
    for header, bad in (("Sender: x@bad.test", "x@bad.test"),
                        ("Return-Path: <y@bad.test>", "y@bad.test"),
                        ("From: %s, z@bad.test" % SENDER, "z@bad.test")):
        data = raw("From: %s\n%s\nTo: %s" % (SENDER, header, RCPT))
        refused(inst, ses, send_raw, ses, data, message=unverified("us-east-1", bad))
    data = raw("From: %s\nTo: %s" % (SENDER, RCPT))
    refused(inst, ses, send_raw, ses, data, Source="src@bad.test",
            message=unverified("us-east-1", "src@bad.test"))
    # All verified (address, +label, domain); Reply-To need not be.
    data = raw("Return-Path: <bounces@example.net>\nFrom: Me <%s>\nSender: sender+x@example.com\n"
               "Reply-To: anyone@unverified.test\nTo: %s" % (SENDER, RCPT))
    accepted(inst, send_raw(ses, data, Source="src@sub.example.net"))


def test_send_email_return_path_verified_reply_to_not(inst, ses):
    refused(inst, ses, send, ses, ReturnPath="bounces@bad.test",
            message=unverified("us-east-1", "bounces@bad.test"))
    accepted(inst, send(ses, ReturnPath="bounces@example.net",
                        ReplyToAddresses=["reply@unverified.test"]))


# ---- the sandbox and production (DECISIONS 18, 19; spec 20 §7.6) ----


def test_sandbox_recipients_must_be_verified(inst, ses):
    refused(inst, ses, send, ses, to=("r1@nowhere.test",),
            message=unverified("us-east-1", "r1@nowhere.test"))
    refused(inst, ses, send, ses, to=(RCPT,), bcc=("hidden@nowhere.test",),
            message=unverified("us-east-1", "hidden@nowhere.test"))
    # Every failing identity: the sender first, then To, Cc and Bcc.
    refused(inst, ses, send, ses, source="bad@bad.test", to=("r1@nowhere.test", RCPT),
            cc=("r2@nowhere.test",), bcc=("r3@nowhere.test",),
            message=unverified("us-east-1", "bad@bad.test", "r1@nowhere.test",
                               "r2@nowhere.test", "r3@nowhere.test"))
    refused(inst, ses, send_raw, ses, raw("From: %s\nTo: r1@nowhere.test" % SENDER),
            message=unverified("us-east-1", "r1@nowhere.test"))
    refused(inst, ses, send_raw, ses, raw("From: %s\nTo: %s" % (SENDER, RCPT)),
            Destinations=["r9@nowhere.test"], message=unverified("us-east-1", "r9@nowhere.test"))
    # Recipient addresses are case-sensitive like any email identity.
    refused(inst, ses, send, ses, to=("Rcpt@example.org",),
            message=unverified("us-east-1", "Rcpt@example.org"))
    accepted(inst, send(ses, to=(RCPT, "x@example.net", "y@Sub.Example.NET")))


def test_sandbox_allows_the_mailbox_simulator(inst, ses):
    mid = accepted(inst, send(ses, to=(SIM, "SUCCESS@SIMULATOR.AMAZONSES.COM",
                                       "bounce+label@Simulator.AmazonSES.com"),
                              cc=("ooto@simulator.amazonses.com",)))
    assert len(stored(inst, mid)["recipients"]) == 4
    accepted(inst, send_raw(ses, raw("From: %s\nTo: complaint@simulator.amazonses.com" % SENDER)))
    # The sender must still be verified.
    refused(inst, ses, send, ses, source="x@bad.test", to=(SIM,),
            message=unverified("us-east-1", "x@bad.test"))
    # Only simulator.amazonses.com itself.
    refused(inst, ses, send, ses, to=("success@simulator.amazonses.com.evil.test",),
            message=unverified("us-east-1", "success@simulator.amazonses.com.evil.test"))


def test_production_region_needs_no_recipient_verification(inst, ses_eu):
    mid = accepted(inst, send(ses_eu, to=("anyone@nowhere.test", "Other@Elsewhere.test"),
                              bcc=("b@nowhere.test",)))
    assert stored(inst, mid)["region"] == "eu-west-1"
    accepted(inst, send_raw(ses_eu, raw("From: %s\nTo: a@nowhere.test" % SENDER)))
    refused(inst, ses_eu, send, ses_eu, source="x@bad.test", to=("anyone@nowhere.test",),
            message=unverified("eu-west-1", "x@bad.test"))
    # Identities are per region: nothing verified in us-east-1 counts in eu-west-1.
    refused(inst, ses_eu, send, ses_eu, source=RCPT, to=("anyone@nowhere.test",),
            message=unverified("eu-west-1", RCPT))


def test_production_switch_at_runtime(inst):
    account, ses2 = new_sender_account(inst, "switcher", identities=[SENDER])
    refused(inst, ses2, send, ses2, to=("anyone@nowhere.test",),
            message=unverified("us-east-1", "anyone@nowhere.test"))
    account_set(inst, "--production", account=account)
    accepted(inst, send(ses2, to=("anyone@nowhere.test",)))
    account_set(inst, "--sandbox", account=account)
    refused(inst, ses2, send, ses2, to=("anyone@nowhere.test",),
            message=unverified("us-east-1", "anyone@nowhere.test"))


def test_production_at_init(instance):
    prod = capture_instance(instance, production=True)
    verify(prod, SENDER)
    ses = client(prod)
    assert ses.get_send_quota()["Max24HourSend"] == 10000.0
    mid = ses.send_email(Source=SENDER, Destination={"ToAddresses": ["anyone@nowhere.test"]},
                         Message=MESSAGE)["MessageId"]
    assert captured(prod, mid)["Destination"]["ToAddresses"] == ["anyone@nowhere.test"]


# ---- recipients ----


def test_at_most_50_recipients(inst, ses):
    many = ["r%02d@example.net" % i for i in range(51)]
    msg = "Recipient count exceeds 50."
    refused(inst, ses, send, ses, to=many[:20], cc=many[20:40], bcc=many[40:51], message=msg)
    refused(inst, ses, send, ses, to=many, message=msg)
    refused(inst, ses, send_raw, ses, raw("From: %s\nTo: %s" % (SENDER, RCPT)),
            Destinations=many, message=msg)
    refused(inst, ses, send_raw, ses,
            raw("From: %s\nTo: %s\nCc: %s\nBcc: %s" % (SENDER, ", ".join(many[:20]),
                                                       ", ".join(many[20:40]),
                                                       ", ".join(many[40:]))), message=msg)
    mid = accepted(inst, send(ses, to=many[:20], cc=many[20:40], bcc=many[40:50]))
    assert stored(inst, mid)["recipients"] == many[:50]
    mid = accepted(inst, send_raw(ses, raw("From: %s\nTo: %s" % (SENDER, RCPT)),
                                  Destinations=many[:50]))
    assert stored(inst, mid)["recipients"] == many[:50]
    mid = accepted(inst, send_raw(ses, raw("From: %s\nTo: %s\nBcc: %s" % (
        SENDER, ", ".join(many[:25]), ", ".join(many[25:50])))))
    assert stored(inst, mid)["recipients"] == many[:50]


def test_no_recipients(inst, ses):
    msg = "There are no recipients specified"
    refused(inst, ses, send, ses, to=(), message=msg)
    refused(inst, ses, send_raw, ses, raw("From: %s\nSubject: nobody" % SENDER), message=msg)
    refused(inst, ses, send_raw, ses, raw("From: %s\nBcc:\nSubject: nobody" % SENDER), message=msg)
    mid = accepted(inst, send(ses, to=(), bcc=(RCPT,)))
    assert stored(inst, mid)["recipients"] == [RCPT]
    mid = accepted(inst, send_raw(ses, raw("From: %s\nBcc: %s" % (SENDER, RCPT))))
    assert stored(inst, mid)["recipients"] == [RCPT]


# ---- message content (DECISIONS 11, 12, 14, 15, 16) ----


def sized_raw(total, headers):
    """A CRLF message of exactly total octets: headers, then short lines of letters."""
    head = crlf(headers.rstrip("\n") + "\n\n")
    body_len = total - len(head)
    count, rest = divmod(body_len, 78)
    lines = [b"a" * 76 + b"\r\n"] * count
    if rest == 1:
        lines[-1] = b"a" * 77 + b"\r\n"
    elif rest:
        lines.append(b"b" * (rest - 2) + b"\r\n")
    data = head + b"".join(lines)
    assert len(data) == total, len(data)
    return data


BIG_HEADERS = "From: %s\nTo: %s\nSubject: big" % (SENDER, RCPT)


def post_raw(inst, data):
    """SendRawEmail by a signed POST whose form body is encoded here: boto3 takes seconds
    to form-encode 14 MB."""
    data64 = base64.b64encode(data).replace(b"+", b"%2B").replace(b"/", b"%2F").replace(
        b"=", b"%3D")
    body = b"Action=SendRawEmail&Version=2010-12-01&RawMessage.Data=" + data64
    return inst.raw(body=body)


def test_message_over_size_limit_refused(inst, ses):
    before = message_count(inst)
    assert_error(post_raw(inst, sized_raw(SIZE_MAX + 1, BIG_HEADERS)), 400, "MessageRejected",
                 "Message length is more than %d bytes long: '%d'." % (SIZE_MAX, SIZE_MAX + 1))
    assert message_count(inst) == before
    refused(inst, ses, send, ses, content={"Subject": {"Data": "big"},
                                           "Body": {"Text": {"Data": "x" * (SIZE_MAX + 10)}}},
            message=re.compile(r"Message length is more than 10485760 bytes long: '\d+'\."))


def test_message_at_size_limit_accepted(inst, ses):
    """Exactly the limit as sent (DECISIONS 14): accepted, although the Date and
    Message-ID Sesame adds make the stored message longer."""
    reply = assert_ok(post_raw(inst, sized_raw(SIZE_MAX, BIG_HEADERS)), "SendRawEmail")
    row = stored(inst, reply.find("SendRawEmailResult/MessageId"))
    assert len(row["data"]) > SIZE_MAX


def attachment_raw(*part_headers, inner=None):
    parts = ""
    for h in part_headers:
        parts += "--b1\n%s\n\nAAAA\n" % h
    if inner:
        parts += "--b1\nContent-Type: message/rfc822\n\n%s\n" % inner
    return raw("From: %s\nTo: %s\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=\"b1\"" % (SENDER, RCPT),
               "--b1\nContent-Type: text/plain\n\nsee attached\n" + parts + "--b1--\n")


NESTED_EXE = ("From: a@b.test\nTo: c@d.test\nMIME-Version: 1.0\n"
              "Content-Type: multipart/mixed; boundary=\"b2\"\n\n--b2\nContent-Type: text/plain\n\n"
              "inner\n--b2\nContent-Type: application/octet-stream\n"
              "Content-Disposition: attachment; filename=\"inner.bat\"\n\nAAAA\n--b2--")


@pytest.mark.parametrize("data, name", [
    (attachment_raw("Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment; filename=\"invoice.pdf.exe\""),
     "invoice.pdf.exe"),
    (attachment_raw("Content-Type: application/octet-stream; name=\"SETUP.EXE\""), "SETUP.EXE"),
    (attachment_raw("Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment; filename*=UTF-8''invoice%2Epdf%2Eexe"),
     "invoice.pdf.exe"),
    (attachment_raw("Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment;\n filename*0=\"invoice.pdf\";\n"
                    " filename*1=\".vbs\""), "invoice.pdf.vbs"),
    (attachment_raw("Content-Type: application/javascript; name=\"=?UTF-8?B?%s?=\""
                    % b64("résumé.js")), "résumé.js"),
    (attachment_raw("Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment; filename=\"notes.txt\"",
                    "Content-Type: application/octet-stream\n"
                    "Content-Disposition: attachment; filename=\"run.Cmd\""), "run.Cmd"),
    (attachment_raw(inner=NESTED_EXE), "inner.bat"),
], ids=["filename", "ct-name", "rfc2231", "rfc2231-continued", "rfc2047", "second", "nested"])
def test_blocked_attachment_refused(inst, ses, data, name):
    refused(inst, ses, send_raw, ses, data,
            message="Illegal filename '%s': the extension is not allowed." % name)


def test_allowed_attachments_accepted(inst, ses):
    data = attachment_raw(
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment; filename=\"invoice.exe.pdf\"",
        "Content-Type: application/octet-stream; name=\"exe\"",
        "Content-Type: text/plain\n"
        "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt",
        "Content-Type: application/zip; name=\"archive.executable.zip\"")
    mid = accepted(inst, send_raw(ses, data))
    msg = parse(raw_data(captured(inst, mid)))
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == ["invoice.exe.pdf", "exe", "résumé.txt", "archive.executable.zip"]


DSN_BODY = ("--r1\nContent-Type: text/plain\n\nDelivery failed.\n"
            "--r1\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; mx.example.net\n\n"
            "Final-Recipient: rfc822; x@example.net\nAction: failed\nStatus: 5.1.1\n"
            "--r1--\n")


def test_delivery_status_part_refused(inst, ses):
    head = ("From: %s\nTo: %s\nMIME-Version: 1.0\nContent-Type: multipart/report; "
            "report-type=delivery-status; boundary=\"r1\"" % (SENDER, RCPT))
    refused(inst, ses, send_raw, ses, raw(head, DSN_BODY))
    # Also inside an attached message: a forwarded bounce is still a bounce.
    inner = ("From: a@b.test\nMIME-Version: 1.0\nContent-Type: multipart/report; "
             "report-type=delivery-status; boundary=\"r1\"\n\n" + DSN_BODY)
    refused(inst, ses, send_raw, ses, attachment_raw(inner=inner))
    # A report of another kind, and a text part that merely names the type, are fine.
    mdn = ("--r1\nContent-Type: text/plain\n\nRead.\n--r1\n"
           "Content-Type: message/disposition-notification\n\n"
           "Final-Recipient: rfc822; x@example.net\nDisposition: manual-action/MDN-sent-manually; "
           "displayed\n--r1--\n")
    accepted(inst, send_raw(ses, raw(head.replace("delivery-status", "disposition-notification"),
                                     mdn)))
    accepted(inst, send_raw(ses, raw("From: %s\nTo: %s" % (SENDER, RCPT),
                                     "Content-Type: message/delivery-status is refused.\n")))


HEAD = "From: %s\r\nTo: %s\r\nSubject: lines\r\n" % (SENDER, RCPT)


@pytest.mark.parametrize("data", [
    (HEAD + "\r\nbare\rCR\r\n").encode(),
    (HEAD + "X-Bad: a\rb\r\n\r\nbody\r\n").encode(),
    (HEAD + "\r\nNUL\x00here\r\n").encode(),
    (HEAD + "\r\n" + "a" * 999 + "\r\n").encode(),
    (HEAD + "X-Long: " + "a" * 991 + "\r\n\r\nbody\r\n").encode(),
    (HEAD + "not a header line\r\n\r\nbody\r\n").encode(),
    (" folded: first\r\n" + HEAD + "\r\nbody\r\n").encode(),
    ("From: %s\r\nTo: <<broken\r\n\r\nbody\r\n" % SENDER).encode(),
    b"\r\nno header at all\r\n",
], ids=["bare-cr-body", "bare-cr-header", "nul", "long-body-line", "long-header-line",
        "no-colon", "leading-continuation", "bad-address", "empty-header"])
def test_malformed_raw_refused(inst, ses, data):
    refused(inst, ses, send_raw, ses, data)


def test_well_formed_edge_cases_accepted(inst, ses):
    data = (HEAD + "X-Folded: a\r\n\tb\r\n  c\r\nX-Exact: " + "h" * 989 + "\r\n\r\n" +
            "a" * 998 + "\r\nend\r\n").encode()
    mid = accepted(inst, send_raw(ses, data))
    stored_data = raw_data(captured(inst, mid))
    assert ("\r\n" + "a" * 998 + "\r\nend\r\n").encode() in stored_data
    assert b"X-Folded: a\r\n\tb\r\n  c\r\n" in stored_data
    # A message that mixes CRLF and LF lines has one reading: LF becomes CRLF.
    mid = accepted(inst, send_raw(ses, (HEAD + "\r\nline1\nline2\r\n").encode()))
    assert raw_data(captured(inst, mid)).endswith(b"\r\n\r\nline1\r\nline2\r\n")


def test_raw_message_data_must_be_base64(inst, ses):
    before = message_count(inst)
    for bad in ("!!!!not base64!!!!", "Zm9v$YmFy", "QUJD\x01REVG"):
        reply = inst.call("SendRawEmail", **{"RawMessage.Data": bad})
        assert_error(reply, 400, "InvalidParameterValue")
    assert message_count(inst) == before
    # Base64 wrapped in lines, as MIME tools write it, is fine.
    wrapped = base64.encodebytes(raw("From: %s\nTo: %s" % (SENDER, RCPT), "x" * 300 + "\n"))
    reply = assert_ok(inst.call("SendRawEmail", **{"RawMessage.Data": wrapped.decode()}),
                      "SendRawEmail")
    assert stored(inst, reply.find("SendRawEmailResult/MessageId")) is not None


def test_missing_from(inst, ses):
    refused(inst, ses, send_raw, ses, raw("To: %s\nSubject: no from" % RCPT),
            message="Missing required header 'From'.")
    mid = accepted(inst, send_raw(ses, raw("To: %s\nSubject: no from" % RCPT),
                                  Source="Named <%s>" % SENDER))
    msg = parse(raw_data(captured(inst, mid)))
    assert len(msg.get_all("From")) == 1
    assert msg["From"].addresses[0].addr_spec == SENDER
    # The added From is verified like any other.
    refused(inst, ses, send_raw, ses, raw("To: %s" % RCPT), Source="x@bad.test",
            message=unverified("us-east-1", "x@bad.test"))


# ---- SendEmail parameters (DECISIONS 17) ----


@pytest.mark.parametrize("field, value", [
    ("subject", "hello\r\nBcc: victim@nowhere.test"),
    ("subject", "hello\nX-Injected: yes"),
    ("subject", "hello\rworld"),
    ("to", "%s\r\nBcc: victim@nowhere.test" % RCPT),
    ("source", "%s\nBcc: victim@nowhere.test" % SENDER),
    ("reply_to", "reply@example.net\r\nX-Injected: yes"),
    ("return_path", "bounces@example.net\rX: y"),
    ("charset", "UTF-8\r\nX-Injected: yes"),
])
def test_header_injection_refused(inst, ses, field, value):
    kw = {}
    if field == "subject":
        kw["content"] = {"Subject": {"Data": value}, "Body": {"Text": {"Data": "b"}}}
    elif field == "to":
        kw["to"] = (value,)
    elif field == "source":
        kw["source"] = value
    elif field == "reply_to":
        kw["ReplyToAddresses"] = [value]
    elif field == "charset":
        kw["content"] = {"Subject": {"Data": "s"},
                         "Body": {"Text": {"Data": "b", "Charset": value}}}
    else:
        kw["ReturnPath"] = value
    refused(inst, ses, send, ses, code="InvalidParameterValue", **kw)


def test_subject_with_tabs_and_unicode_accepted(inst, ses):
    subject = "tab\there – üñí©ødé" + " long" * 40
    mid = accepted(inst, send(ses, content={"Subject": {"Data": subject},
                                            "Body": {"Text": {"Data": "line1\r\nline2\nline3"}}}))
    msg = parse(bytes(stored(inst, mid)["data"]))
    assert msg["Subject"] == subject
    assert msg.get_content().replace("\r\n", "\n").rstrip("\n") == "line1\nline2\nline3"


@pytest.mark.parametrize("field, value", [
    ("source", "sénder@example.com"),
    ("source", "Jöhn Doe <%s>" % SENDER),
    ("to", "rcpt@exämple.org"),
    ("to", "Rëcipient <%s>" % RCPT),
    ("cc", "ü@example.net"),
    ("reply_to", "Rëply <reply@example.net>"),
])
def test_non_ascii_address_refused(inst, ses, field, value):
    kw = {"source": value} if field == "source" else \
        {"to": (value,)} if field == "to" else \
        {"cc": (value,)} if field == "cc" else {"ReplyToAddresses": [value]}
    refused(inst, ses, send, ses, code="InvalidParameterValue", **kw)


def test_encoded_word_display_names_accepted(inst, ses):
    source = "=?UTF-8?B?%s?= <%s>" % (b64("Jöhn Doe"), SENDER)
    to = "=?UTF-8?Q?R=C3=ABcipient?= <%s>" % RCPT
    mid = accepted(inst, send(ses, source=source, to=(to,)))
    msg = parse(bytes(stored(inst, mid)["data"]))
    assert msg["From"].addresses[0].display_name == "Jöhn Doe"
    assert msg["From"].addresses[0].addr_spec == SENDER
    assert msg["To"].addresses[0].display_name == "Rëcipient"


def test_missing_parameters(inst, ses):
    base = {"Source": SENDER, "Destination.ToAddresses.member.1": RCPT,
            "Message.Subject.Data": "s", "Message.Body.Text.Data": "b"}
    before = message_count(inst)
    for drop, member in (("Source", "source"), ("Message.Subject.Data", "message.subject"),
                         ("Message.Body.Text.Data", "message.body")):
        params = {k: v for k, v in base.items() if k != drop}
        assert_error(inst.call("SendEmail", **params), 400, "ValidationError",
                     "Value null at '%s' failed to satisfy constraint: Member must not be null"
                     % member)
    assert_error(inst.call("SendRawEmail", Source=SENDER), 400, "ValidationError",
                 "Value null at 'rawMessage.data' failed to satisfy constraint: Member must not "
                 "be null")
    assert message_count(inst) == before
    reply = assert_ok(inst.call("SendEmail", **base), "SendEmail")
    assert stored(inst, reply.find("SendEmailResult/MessageId")) is not None
    # HTML alone is a body.
    params = {k: v for k, v in base.items() if k != "Message.Body.Text.Data"}
    params["Message.Body.Html.Data"] = "<p>b</p>"
    assert_ok(inst.call("SendEmail", **params), "SendEmail")


# ---- tags (DECISIONS 9c) ----

NAME_CHARS = "only alphanumeric ASCII characters, '_',  '-' are allowed."
VALUE_CHARS = "only alphanumeric ASCII characters, '_',  '-' , '.', '@' are allowed."


@pytest.mark.parametrize("tags, message", [
    ({"Name": "bad name", "Value": "v"}, "Invalid tag name <bad name>: " + NAME_CHARS),
    ({"Name": "n.dot", "Value": "v"}, "Invalid tag name <n.dot>: " + NAME_CHARS),
    ({"Name": "n", "Value": "a b"}, "Invalid tag value <a b>: " + VALUE_CHARS),
    ({"Name": "n", "Value": "a/b"}, "Invalid tag value <a/b>: " + VALUE_CHARS),
    ({"Name": "n" * 256, "Value": "v"}, "Tag name cannot exceed 255 characters."),
    ({"Name": "n", "Value": "v" * 256}, "Tag value cannot exceed 255 characters."),
    ({"Name": "", "Value": "v"}, "The tag name must be specified."),
    ({"Value": "v"}, "The tag name must be specified."),
    ({"Name": "n", "Value": ""}, "The tag value must be specified."),
    ({"Name": "n"}, "The tag value must be specified."),
    ({"Name": "bad name", "Value": "bad value"}, "Invalid tag name <bad name>: " + NAME_CHARS),
], ids=["name-space", "name-dot", "value-space", "value-slash", "name-long", "value-long",
        "name-empty", "name-missing", "value-empty", "value-missing", "name-first"])
def test_invalid_tags_refused(inst, tags, message):
    params = {"Source": "unverified@bad.test",  # tags are checked before the sender
              "Destination.ToAddresses.member.1": RCPT,
              "Message.Subject.Data": "s", "Message.Body.Text.Data": "b",
              "Tags.member.1.Name": "ok", "Tags.member.1.Value": "ok"}
    for k, v in tags.items():
        params["Tags.member.2." + k] = v
    before = message_count(inst)
    assert_error(inst.call("SendEmail", **params), 400, "InvalidParameterValue", message)
    raw_params = {"RawMessage.Data": b64(raw("From: unverified@bad.test\nTo: %s" % RCPT))}
    raw_params.update({k: v for k, v in params.items() if k.startswith("Tags.")})
    assert_error(inst.call("SendRawEmail", **raw_params), 400, "InvalidParameterValue", message)
    assert message_count(inst) == before


def test_valid_tags_accepted(inst, ses):
    tags = [{"Name": "campaign_1-A", "Value": "x.y@z-w_1"},
            {"Name": "n" * 255, "Value": "v" * 255}]
    accepted(inst, send(ses, Tags=tags))
    accepted(inst, send_raw(ses, raw("From: %s\nTo: %s" % (SENDER, RCPT)), Tags=tags))
    accepted(inst, send(ses, Tags=tags[:1], ConfigurationSetName="any-set"))


# ---- account states (DECISIONS 19) ----


def test_suspended_account_refuses_sending_only(inst):
    account, ses2 = new_sender_account(inst, "suspended", identities=[SENDER, RCPT])
    account_set(inst, "--suspended", "true", account=account)
    refused(inst, ses2, send, ses2, message="Customer is suspended")
    refused(inst, ses2, send_raw, ses2, raw("From: %s\nTo: %s" % (SENDER, RCPT)),
            message="Customer is suspended")
    assert ses2.get_send_quota()["Max24HourSend"] == 200.0  # other actions still work
    account_set(inst, "--suspended", "false", account=account)
    accepted(inst, send(ses2))


def test_disabled_account_refuses_everything(inst):
    account, key, secret = inst.new_account("disabled")
    verify(inst, SENDER, RCPT, account=account)
    ses2 = client(inst, key=key, secret=secret)
    account_set(inst, "--disabled", "true", account=account)
    before = message_count(inst)
    for fn in (lambda: send(ses2), lambda: ses2.get_send_quota(),
               lambda: send_raw(ses2, raw("From: %s\nTo: %s" % (SENDER, RCPT)))):
        status, code, _ = client_error(fn)
        assert (status, code) == (403, "OptInRequired")
    assert message_count(inst) == before
    account_set(inst, "--disabled", "false", account=account)
    accepted(inst, send(ses2))


# ---- verification status ----


def test_only_verified_identities_count(inst, ses):
    # Pending (verification asked for, never confirmed): refused.
    ses.verify_email_identity(EmailAddress="pending@pending.test")
    refused(inst, ses, send, ses, source="pending@pending.test",
            message=unverified("us-east-1", "pending@pending.test"))
    # Verified, then deleted: accepted, then refused.
    verify(inst, "temp@pending.test")
    accepted(inst, send(ses, source="temp@pending.test"))
    inst.sesame("identity", "delete", "temp@pending.test")
    refused(inst, ses, send, ses, source="temp@pending.test",
            message=unverified("us-east-1", "temp@pending.test"))


def test_cached_identity_follows_changes(module_instance):
    """With the per-thread identity cache on (api.cache_ttl 1 s): DeleteIdentity takes
    effect on the very next send on every thread; the admin command's delete (another
    process) within api.cache_ttl; a new verification at once."""
    inst = module_instance(regions=("us-east-1",), production=True,
                           extra="[delivery]\nmode = capture\n")
    clients = [client(inst) for _ in range(4)]  # connections spread over the I/O threads
    ses = clients[0]
    verify(inst, "cached@example.com")
    for c in clients:
        assert c.send_email(Source="cached@example.com", Destination={"ToAddresses": [SIM]},
                            Message=MESSAGE)["MessageId"]
    ses.delete_identity(Identity="cached@example.com")
    for c in clients:
        status, code, message = client_error(
            c.send_email, Source="cached@example.com", Destination={"ToAddresses": [SIM]},
            Message=MESSAGE)
        assert (status, code, message) == (400, "MessageRejected",
                                           unverified("us-east-1", "cached@example.com"))
    verify(inst, "cached@example.com")
    assert ses.send_email(Source="cached@example.com", Destination={"ToAddresses": [SIM]},
                          Message=MESSAGE)["MessageId"]
    inst.sesame("identity", "delete", "cached@example.com")
    inst.settle()
    status, code, _ = client_error(ses.send_email, Source="cached@example.com",
                                   Destination={"ToAddresses": [SIM]}, Message=MESSAGE)
    assert (status, code) == (400, "MessageRejected")


def test_tag_past_the_limit_refused_not_skipped(inst):
    """A tag numbered past 50 is refused, never silently ignored."""
    params = {"Source": SENDER, "Destination.ToAddresses.member.1": RCPT,
              "Message.Subject.Data": "s", "Message.Body.Text.Data": "b",
              "Tags.member.51.Name": "bad name!", "Tags.member.51.Value": "v"}
    before = message_count(inst)
    assert_error(inst.call("SendEmail", **params), 400, "InvalidParameterValue",
                 "At most 50 tags may be given.")
    assert message_count(inst) == before


def test_overlong_header_recipient_refused(inst):
    """Header recipients obey the same address rules as Destinations (no truncation)."""
    local = "x" * 65
    before = message_count(inst)
    r = inst.call("SendRawEmail",
                  **{"RawMessage.Data": b64(raw("From: %s\nTo: %s@example.org" % (SENDER, local)))})
    assert_error(r, 400, "MessageRejected", "Illegal address '%s@example.org'." % local)
    assert message_count(inst) == before
