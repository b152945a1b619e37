"""Postfix as the SES guide configures it (relayhost, smtp_sasl_auth_enable,
smtp_tls_security_level = encrypt, sasl_passwd), relaying through Sesame's SMTP
interface: over STARTTLS, and separately behind the TLS wrapper (implicit TLS). Mail
handed to that Postfix with sendmail arrives in Sesame (capture mode) intact."""
import email
import re

import pytest

import postfix
from sendlib import captured, raw_data, verify

SENDER = "relay@example.com"
RCPT = "someone@example.net"

pytestmark = pytest.mark.skipif(not postfix.available(),
                                reason="needs root and Postfix (scripts/install-deps.sh)")


@pytest.fixture(scope="module")
def inst(module_instance):
    i = module_instance(regions=("us-east-1",), production=True,
                        extra="[delivery]\nmode = capture\n")
    verify(i, SENDER)
    return i


def relay_through(inst, endpoint, wrapper):
    host, port = inst.endpoints[endpoint].rsplit(":", 1)
    return postfix.PostfixRelay(host, int(port), inst.endpoints["smtp_username"],
                                inst.endpoints["smtp_password"], wrapper=wrapper)


def message(subject):
    body = "".join("line %03d of a message relayed by Postfix . with dots\n" % i
                   for i in range(40))
    return ("From: Relay Test <%s>\nTo: %s\nSubject: %s\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\n.leading dot\n%s" % (
                SENDER, RCPT, subject, body)).encode()


@pytest.mark.parametrize("endpoint,wrapper", [("smtp_starttls", False), ("smtp_tls", True)],
                         ids=["starttls", "implicit-tls"])
def test_postfix_relays_through_sesame(inst, endpoint, wrapper):
    relay = relay_through(inst, endpoint, wrapper)
    relay.start()
    try:
        sent = []
        for n in range(3):
            subject = "via postfix %s %d" % (endpoint, n)
            relay.sendmail(message(subject), SENDER, RCPT)
            sent.append(subject)
        lines = relay.wait_sent(3)
    finally:
        log = relay.log()
        relay.stop()
    ids = [re.search(r"status=sent \(250 Ok (\S+)\)", line).group(1) for line in lines]
    assert "sasl_method=" not in log or "PLAIN" in log or "LOGIN" in log
    got_subjects = []
    for mid in ids:
        data = raw_data(captured(inst, mid))
        msg = email.message_from_bytes(data)
        got_subjects.append(msg["Subject"])
        assert msg["From"] == "Relay Test <%s>" % SENDER and msg["To"] == RCPT
        text = msg.get_payload(decode=True).decode()
        assert text.startswith(".leading dot\r\n") or text.startswith(".leading dot\n")
        assert "line 039 of a message relayed by Postfix . with dots" in text
        assert msg["Received"] and "relay.sesame.test" in msg["Received"]
    assert sorted(got_subjects) == sorted(sent)
