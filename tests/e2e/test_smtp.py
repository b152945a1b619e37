"""The SMTP interface (issue 4) through real clients: Python's smtplib, swaks and openssl
s_client over the STARTTLS and implicit-TLS listeners; every AUTH form with version 2
and 4 passwords; the seed's reply texts; what is stored. Robustness (timeouts, limits,
garbage, kill -9, SIGTERM) is in test_smtp_robustness.py."""
import json
import subprocess
import time

import pytest

from conftest import parse_kv
from sendlib import (
    SIM, account_set, assert_rewritten, capture_instance, captured, header_lines, parse,
    raw_data, unverified, verify,
)
from smtpconn import (
    HOST, Conn, auth_plain, b64, send_message, session, smtp_password_v2, smtp_password_v4,
    smtplib_client, smtplib_send, starttls_port, stuff, tls_conn, tls_context, tls_port,
)

SENDER = "sender@example.com"
EHLO_PLAIN = ["250-" + HOST, "250-8BITMIME", "250-PIPELINING", "250-SIZE 10485760",
              "250-STARTTLS", "250 Ok"]
EHLO_TLS = ["250-" + HOST, "250-8BITMIME", "250-PIPELINING", "250-SIZE 10485760",
            "250-AUTH PLAIN LOGIN", "250 Ok"]
INVALID = "535 Authentication Credentials Invalid"
CANCELLED = "501 Authentication cancelled"
SEND_RAW_ONLY = {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "ses:SendRawEmail",
                                "Resource": "*"}]}
SEND_EMAIL_ONLY = {"Version": "2012-10-17",
                   "Statement": [{"Effect": "Allow", "Action": "ses:SendEmail",
                                  "Resource": "*"}]}


@pytest.fixture(scope="module")
def inst(module_instance):
    """A production account in capture mode; failed logins here never block 127.0.0.1."""
    i = capture_instance(module_instance, production=True,
                         extra="[auth]\nfailure_limit = 100000\n")
    verify(i, SENDER, "example.com")
    account_set(i, "--quota", 1000000, "--rate", 100000)
    return i


def message(subject="smtp", sender=SENDER, to=SIM, body="hello\r\n", extra=""):
    head = ("From: %s\r\n" % sender if sender else "") + ("To: %s\r\n" % to if to else "")
    return ("%sSubject: %s\r\n%s\r\n%s" % (head, subject, extra, body)).encode()


def message_id(reply):
    assert reply.startswith("250 Ok "), reply
    return reply[len("250 Ok "):]


def stored_bytes(inst, mid):
    return raw_data(captured(inst, mid))


def without_rewritten(data):
    """The header lines other than Date and Message-ID (which the pipeline replaces)."""
    return [l for l in header_lines(data)
            if not l.lower().startswith((b"date:", b"message-id:"))]


def new_user(inst, name, policy):
    inst.sesame("user", "create", name)
    path = inst.dir / ("%s.json" % name)
    path.write_text(json.dumps(policy))
    inst.sesame("policy", "put", name, "p", "--file", str(path))
    out = parse_kv(inst.sesame("key", "create", "--user", name).stdout)
    return out["access_key_id"], out["secret_access_key"]


# ---- the dialogue ----


def test_plaintext_dialogue_before_tls(inst):
    c = Conn(inst)
    assert c.greeting == ["220 %s ESMTP SES" % HOST]
    assert c.cmd("EHLO client.example") == EHLO_PLAIN
    assert c.cmd("AUTH LOGIN") == "530 Must issue a STARTTLS command first"
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "530 Authentication required"
    assert c.cmd("HELO client.example") == "250 " + HOST
    assert c.cmd("NOOP") == "250 Ok"
    assert c.cmd("RSET") == "250 Ok"
    assert c.cmd("VRFY someone") == "252 Cannot VRFY user; try RCPT to attempt delivery"
    assert c.cmd("RCPT TO:<a@example.org>") == "503 Bad sequence of commands"
    assert c.cmd("DATA") == "503 Bad sequence of commands"
    assert c.cmd("FOO bar") == "500 Unrecognized command"
    assert c.cmd("EHLO") == "501 Syntax: EHLO hostname"
    assert c.cmd("QUIT") == "221 Bye"
    assert c.closed()


def test_tls_dialogue_on_both_listeners(inst):
    for implicit in (False, True):
        c = tls_conn(inst, implicit=implicit)
        # Already encrypted: STARTTLS is neither advertised nor accepted (RFC 3207).
        assert c.cmd("EHLO again.example") == EHLO_TLS
        assert c.cmd("STARTTLS") == "503 Bad sequence of commands"
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == "530 Authentication required"
        assert c.cmd("QUIT") == "221 Bye"
        assert c.closed()


def test_starttls_discards_pipelined_commands(inst):
    """Commands sent after STARTTLS in the same packet never run inside TLS."""
    c = Conn(inst)
    c.cmd("EHLO client.example")
    c.send("STARTTLS\r\nNOOP\r\nNOOP\r\n")
    assert c.reply() == ["220 Ready to start TLS"]
    assert c.buf == b""
    c.sock = tls_context(inst).wrap_socket(c.sock, server_hostname="127.0.0.1")
    # The first reply under TLS is the EHLO's, not a NOOP's 250 Ok.
    assert c.cmd("EHLO client.example") == EHLO_TLS
    c.cmd("QUIT")


# ---- AUTH ----


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_every_auth_form(inst, implicit):
    user, password = inst.key, inst.endpoints["smtp_password"]
    forms = [
        [("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)), "235 Authentication successful")],
        [("AUTH PLAIN", "334 "), (b64("\0%s\0%s" % (user, password)),
                                  "235 Authentication successful")],
        [("AUTH LOGIN " + b64(user), "334 UGFzc3dvcmQ6"),
         (b64(password), "235 Authentication successful")],
        [("AUTH LOGIN", "334 VXNlcm5hbWU6"), (b64(user), "334 UGFzc3dvcmQ6"),
         (b64(password), "235 Authentication successful")],
        # authzid equal to the authcid is accepted
        [("AUTH PLAIN " + b64("%s\0%s\0%s" % (user, user, password)),
          "235 Authentication successful")],
    ]
    for steps in forms:
        c = tls_conn(inst, implicit=implicit)
        for line, want in steps:
            assert c.cmd(line) == want, (steps, line)
        assert c.cmd("AUTH LOGIN") == "503 Bad sequence of commands"  # already done
        c.cmd("QUIT")


def test_auth_cancel_and_malformed(inst):
    c = tls_conn(inst)
    assert c.cmd("AUTH PLAIN") == "334 "
    assert c.cmd("*") == CANCELLED
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd("*") == CANCELLED
    assert c.cmd("AUTH LOGIN " + b64(inst.key)) == "334 UGFzc3dvcmQ6"
    assert c.cmd("*") == CANCELLED
    assert c.cmd("AUTH PLAIN !!!") == "501 Cannot decode response"
    assert c.cmd("AUTH CRAM-MD5") == "504 Unrecognized authentication type"
    assert c.cmd("AUTH") == "501 Syntax: AUTH mechanism [initial-response]"
    # Cancelled exchanges leave the session usable.
    assert auth_plain(c, inst.key, inst.endpoints["smtp_password"]) == \
        "235 Authentication successful"
    c.cmd("QUIT")


def test_auth_before_ehlo_is_out_of_sequence(inst):
    c = Conn(inst, implicit=True)
    assert c.cmd("AUTH PLAIN " + b64("\0a\0b")) == "503 Bad sequence of commands"
    c.cmd("QUIT")


def test_version_2_and_4_passwords(inst):
    v2 = smtp_password_v2(inst.secret)
    v4 = smtp_password_v4(inst.secret, "us-east-1")
    assert v4 == inst.endpoints["smtp_password"]
    for password in (v2, v4):
        s = smtplib_client(inst, implicit=True)
        s.login(inst.key, password)
        code, text = smtplib_send(s, SENDER, [SIM], message("v"))
        assert code == 250 and text.startswith("Ok "), text
        s.quit()
    # A version-4 password of a region this instance does not serve is wrong.
    c = tls_conn(inst)
    assert auth_plain(c, inst.key, smtp_password_v4(inst.secret, "eu-west-1")) == INVALID
    c.cmd("QUIT")


def test_bad_credentials(inst):
    c = tls_conn(inst, implicit=True)
    assert auth_plain(c, inst.key, "x" * 44) == INVALID
    assert auth_plain(c, "AKIAUNKNOWNUNKNOWN00", inst.endpoints["smtp_password"]) == INVALID
    c.cmd("QUIT")
    # The API secret itself is not an SMTP password.
    c = tls_conn(inst, implicit=True)
    assert auth_plain(c, inst.key, inst.secret) == INVALID
    c.cmd("QUIT")
    log = inst.log()
    assert "authentication failed for %s from 127.0.0.1" % inst.key in log
    assert inst.endpoints["smtp_password"] not in log and inst.secret not in log


def test_smtplib_auth_mechanisms(inst):
    """smtplib's own AUTH PLAIN and LOGIN, with and without initial responses."""
    for implicit in (False, True):
        for mech, initial in (("PLAIN", True), ("PLAIN", False), ("LOGIN", True),
                              ("LOGIN", False)):
            s = smtplib_client(inst, implicit=implicit)
            s.user, s.password = inst.key, inst.endpoints["smtp_password"]
            obj = s.auth_plain if mech == "PLAIN" else s.auth_login
            code, text = s.auth(mech, obj, initial_response_ok=initial)
            assert (code, text) == (235, b"Authentication successful")
            s.quit()


def test_user_permission(inst):
    key, secret = new_user(inst, "smtp-denied", SEND_EMAIL_ONLY)
    c = tls_conn(inst)
    assert auth_plain(c, key, smtp_password_v4(secret, "us-east-1")) == \
        "535 User not authorized to call the SES SMTP endpoint"
    c.cmd("QUIT")
    key, secret = new_user(inst, "smtp-allowed", SEND_RAW_ONLY)
    c = session(inst, user=key, password=smtp_password_v2(secret))
    mid = message_id(send_message(c, SENDER, [SIM], message("user")))
    c.cmd("QUIT")
    assert captured(inst, mid)["Source"] == SENDER


def test_revoked_key_ends_an_open_session(inst):
    """MAIL re-reads the key: a revocation by another process is seen at once."""
    key, secret = new_user(inst, "smtp-revoked", SEND_RAW_ONLY)
    c = session(inst, user=key, password=smtp_password_v2(secret))
    message_id(send_message(c, SENDER, [SIM], message("before revoke")))
    inst.sesame("key", "revoke", key)
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == INVALID
    # The authentication is gone: the client must AUTH again (and now fails).
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "530 Authentication required"
    assert auth_plain(c, key, smtp_password_v2(secret)) == INVALID
    c.cmd("QUIT")


def test_permission_removed_ends_an_open_session(inst):
    key, secret = new_user(inst, "smtp-unpermitted", SEND_RAW_ONLY)
    c = session(inst, user=key, password=smtp_password_v2(secret))
    message_id(send_message(c, SENDER, [SIM], message("before policy change")))
    inst.sesame("policy", "delete", "smtp-unpermitted", "p")
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == \
        "535 User not authorized to call the SES SMTP endpoint"
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "530 Authentication required"
    c.cmd("QUIT")


def test_auth_delay_survives_reconnecting(inst):
    """The delay grows with the address's failures, not the connection's."""
    took = []
    for _ in range(3):
        c = tls_conn(inst, implicit=True, source="127.0.0.5")
        t0 = time.monotonic()
        assert auth_plain(c, inst.key, "wrong") == INVALID
        took.append(time.monotonic() - t0)
        c.cmd("QUIT")
    assert took[1] >= 0.49 and took[2] >= 0.74, took


def test_disabled_account(inst):
    account, key, secret = inst.new_account("smtp-disabled")
    verify(inst, SENDER, account=account)
    account_set(inst, "--production", account=account)
    password = smtp_password_v4(secret, "us-east-1")
    # Disabled while a session is open: the next MAIL sees it.
    c = session(inst, user=key, password=password)
    account_set(inst, "--disabled", "true", account=account)
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "535 Account not subscribed to SES"
    c.cmd("QUIT")
    c = tls_conn(inst)
    assert auth_plain(c, key, password) == "535 Account not subscribed to SES"
    c.cmd("QUIT")


# ---- sending ----


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_smtplib_sends_and_message_is_stored(inst, implicit):
    s = smtplib_client(inst, implicit=implicit)
    s.login(inst.key, inst.endpoints["smtp_password"])
    data = message("stored", to="to@example.org",
                   extra="Date: Mon, 1 Jan 2001 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n"
                         "X-Custom: kept\r\n")
    before = time.time()
    code, text = smtplib_send(s, SENDER, ["to@example.org", "cc@example.org"], data)
    s.quit()
    assert code == 250
    mid = text[len("Ok "):]
    stored = stored_bytes(inst, mid)
    assert without_rewritten(stored) == without_rewritten(data)
    assert stored.split(b"\r\n\r\n", 1)[1] == data.split(b"\r\n\r\n", 1)[1]
    assert_rewritten(parse(stored), mid, int(before * 1000))
    entry = captured(inst, mid)
    assert entry["Source"] == SENDER and entry["Region"] == "us-east-1"


def test_dot_unstuffing_and_bytes_as_sent(inst):
    body = (b"line one\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\n \r\n"
            b"8bit \xc3\xa9t\xc3\xa9\r\nlast")
    data = message("dots", body="") + body + b"\r\n"
    c = session(inst)
    mid = message_id(send_message(c, SENDER, [SIM], stuff(data)))
    c.cmd("QUIT")
    stored = stored_bytes(inst, mid)
    assert stored.split(b"\r\n\r\n", 1)[1] == body + b"\r\n"
    assert without_rewritten(stored) == without_rewritten(data)


def test_from_added_from_mail_from(inst):
    """DECISIONS 11: the seed's example has only a Subject header."""
    c = session(inst, implicit=True)
    assert c.cmd("MAIL FROM:%s" % SENDER) == "250 Ok"  # no angle brackets, as in the seed
    assert c.cmd("RCPT TO:%s" % SIM) == "250 Ok"
    assert c.cmd("DATA") == "354 End data with <CR><LF>.<CR><LF>"
    mid = message_id(c.cmd("Subject:Hello from Amazon SES!\r\n\r\nThis email was sent using "
                           "the Amazon SES SMTP interface.\r\n."))
    c.cmd("QUIT")
    msg = parse(stored_bytes(inst, mid))
    assert msg["From"] == SENDER
    assert msg["Subject"] == "Hello from Amazon SES!"


def test_null_reverse_path_needs_a_from(inst):
    c = session(inst)
    assert c.cmd("MAIL FROM:<>") == "250 Ok"
    assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    assert c.cmd("DATA").startswith("354")
    assert c.cmd("Subject: no from\r\n\r\nbody\r\n.") == \
        "554 Message rejected: Missing required header 'From'."
    mid = message_id(send_message(c, "", [SIM], message("null path")))
    c.cmd("QUIT")
    assert parse(stored_bytes(inst, mid))["From"] == SENDER


def test_esmtp_parameters(inst):
    c = session(inst)
    assert c.cmd("MAIL FROM:<%s> SIZE=1000 BODY=8BITMIME" % SENDER) == "250 Ok"
    assert c.cmd("RSET") == "250 Ok"
    assert c.cmd("MAIL FROM:<%s> SIZE=10485761" % SENDER) == \
        "552 Message size exceeds fixed maximum message size"
    assert c.cmd("MAIL FROM:<%s> SMTPUTF8" % SENDER).startswith("555 ")
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "503 Bad sequence of commands"
    assert c.cmd("RCPT TO:<a@example.org> NOTIFY=NEVER").startswith("555 ")
    assert c.cmd("DATA") == "503 Bad sequence of commands"  # no recipient yet
    c.cmd("QUIT")


def test_pipelining(inst):
    c = session(inst)
    m1, m2 = message("pipe 1"), message("pipe 2", body="..dot\r\n")
    c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n" % (SENDER, SIM))
    assert [c.reply() for _ in range(4)] == [["250 Ok"]] * 3 + [
        ["354 End data with <CR><LF>.<CR><LF>"]]
    # The message, its end, and the whole next transaction in one write.
    c.send(m1 + b".\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER.encode(), SIM.encode())
           + m2 + b".\r\nNOOP\r\nQUIT\r\n")
    replies = [c.reply()[0] for _ in range(7)]
    mid1, mid2 = message_id(replies[0]), message_id(replies[4])
    assert replies[1:4] == ["250 Ok", "250 Ok", "354 End data with <CR><LF>.<CR><LF>"]
    assert replies[5:] == ["250 Ok", "221 Bye"]
    assert c.closed()
    assert stored_bytes(inst, mid2).endswith(b"\r\n\r\n.dot\r\n")
    assert mid1 != mid2


def test_pipelined_commands_after_a_refusal(inst):
    c = session(inst)
    c.send("MAIL FROM:<nobody@unverified.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % SIM
           + "From: nobody@unverified.test\r\nSubject: x\r\n\r\nbody\r\n.\r\n"
           + "RCPT TO:<%s>\r\nNOOP\r\n" % SIM)
    replies = [c.reply()[0] for _ in range(6)]
    assert replies[:3] == ["250 Ok", "250 Ok", "354 End data with <CR><LF>.<CR><LF>"]
    assert replies[3] == "554 Message rejected: " + unverified("us-east-1",
                                                               "nobody@unverified.test")
    assert replies[4:] == ["503 Bad sequence of commands", "250 Ok"]
    c.cmd("QUIT")


def test_refusal_texts(inst):
    c = session(inst, implicit=True)
    for i in range(50):
        if i == 0:
            assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
        assert c.cmd("RCPT TO:<r%02d@example.org>" % i) == "250 Ok"
    assert c.cmd("RCPT TO:<r50@example.org>") == "452 Too many recipients"
    assert c.cmd("RCPT TO:<not an address>").startswith("5")
    assert c.cmd("RSET") == "250 Ok"
    # A header address not verified: every failing identity named.
    reply = send_message(c, SENDER, [SIM], message("x", extra="Sender: other@unverified.test\r\n"))
    assert reply == "554 Message rejected: " + unverified("us-east-1", "other@unverified.test")
    # The size: measured on the message as sent, the API's text.
    line = b"x" * 998 + b"\r\n"
    big = message("big", body="") + line * (10485760 // len(line) + 1)
    reply = send_message(c, SENDER, [SIM], big)
    assert reply == ("554 Message rejected: Message length is more than 10485760 bytes long: "
                     "'%d'." % len(big))
    # Still usable after the refusals.
    message_id(send_message(c, SENDER, [SIM], message("after")))
    c.cmd("QUIT")


def test_suspended_account(inst):
    account, key, secret = inst.new_account("smtp-suspended")
    verify(inst, SENDER, account=account)
    account_set(inst, "--production", account=account)
    account_set(inst, "--suspended", "true", account=account)
    c = session(inst, user=key, password=smtp_password_v4(secret, "us-east-1"))
    assert send_message(c, SENDER, [SIM], message()) == \
        "554 Message rejected: Customer is suspended"
    c.cmd("QUIT")


def test_quota_and_rate(inst):
    account, key, secret = inst.new_account("smtp-quota")
    verify(inst, SENDER, account=account)
    account_set(inst, "--production", account=account)
    account_set(inst, "--quota", 2, "--rate", 1000, account=account)
    password = smtp_password_v4(secret, "us-east-1")
    c = session(inst, user=key, password=password)
    message_id(send_message(c, SENDER, ["a@example.org", "b@example.org"], message()))
    # DECISIONS 22: once used up, MAIL itself is refused.
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == \
        "454 Throttling failure: Daily message quota exceeded"
    c.cmd("QUIT")
    account_set(inst, "--quota", 1000, "--rate", 1, account=account)
    c = session(inst, user=key, password=password)
    first = send_message(c, SENDER, [SIM], message())
    second = send_message(c, SENDER, [SIM], message())
    assert "454 Throttling failure: Maximum sending rate exceeded" in (first, second)
    c.cmd("QUIT")


# ---- other clients ----


def swaks(inst, *args):
    res = subprocess.run(["swaks", "--server", "127.0.0.1", "--ehlo", "client.example",
                          "--auth-user", inst.key, "--auth-password",
                          inst.endpoints["smtp_password"], "--from", SENDER, "--to", SIM,
                          "--header", "Subject: swaks", *args],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.mark.parametrize("args", [
    ("--port", "STARTTLS", "--tls", "--auth", "LOGIN"),
    ("--port", "STARTTLS", "--tls", "--auth", "PLAIN"),
    ("--port", "TLS", "--tlsc", "--auth", "LOGIN"),
    ("--port", "TLS", "--tlsc", "--auth", "PLAIN", "--pipeline"),
], ids=["starttls-login", "starttls-plain", "tls-login", "tls-plain-pipeline"])
def test_swaks(inst, args):
    args = list(args)
    args[1] = str(starttls_port(inst) if args[1] == "STARTTLS" else tls_port(inst))
    out = swaks(inst, *args)
    assert "<~  235 Authentication successful" in out
    mid = [l for l in out.splitlines() if "250 Ok " in l][-1].split("250 Ok ", 1)[1]
    assert parse(stored_bytes(inst, mid))["Subject"] == "swaks"


def s_client(inst, lines, starttls):
    """openssl s_client as the seed runs it, fed the lines a user would type (the server
    reads them in order however fast they come)."""
    cmd = ["openssl", "s_client", "-crlf", "-quiet", "-CAfile", str(inst.cert)]
    if starttls:
        cmd += ["-starttls", "smtp", "-connect", "127.0.0.1:%d" % starttls_port(inst)]
    else:
        cmd += ["-connect", "127.0.0.1:%d" % tls_port(inst)]
    res = subprocess.run(cmd, input="".join(l + "\n" for l in lines).encode(),
                         capture_output=True, timeout=30)
    return res.stdout.decode()


@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "tls"])
def test_openssl_s_client_as_in_the_seed(inst, starttls):
    lines = ["EHLO bob-desktop.example.com", "AUTH LOGIN", b64(inst.key),
             b64(inst.endpoints["smtp_password"]), "MAIL FROM:%s" % SENDER, "RCPT TO:%s" % SIM,
             "DATA", "Subject:Hello from Amazon SES!", "",
             "This email was sent using the Amazon SES SMTP interface.", ".", "QUIT"]
    out = s_client(inst, lines, starttls)
    for want in ("334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6", "235 Authentication successful",
                 "354 End data with <CR><LF>.<CR><LF>", "221 Bye"):
        assert want in out, out
    if not starttls:
        assert "220 %s ESMTP SES" % HOST in out
    assert "250-AUTH PLAIN LOGIN" in out and "250-STARTTLS" not in out
    mid = out.split("250 Ok ", 1)[1].split("\r\n", 1)[0]
    assert "221 Bye" in out
    msg = parse(stored_bytes(inst, mid))
    assert msg["From"] == SENDER
    assert msg.get_content().strip() == "This email was sent using the Amazon SES SMTP interface."
