"""Easy DKIM, end to end (spec 20 §2, DECISIONS 27): tokens through the AWS CLI and boto3,
status through real DNS (the test zone: CNAMEs published as a customer would, TXT records
from `sesame dkim-zone` as the operator would), and signatures on delivered mail checked by
three independent verifiers from Debian (tests/e2e/verifiers.py), which find the keys
through the customer's CNAMEs with the system's resolver."""
import email
import email.policy
import re
import smtplib
import ssl
import subprocess
import time
import uuid

import pytest

from conftest import (
    delivery_instance, pick_port, route_mx, unique_domain, wait_until,
)
from verifiers import Verifiers

HOST_ZONE = "dkim.sesame.test"
DEFAULT_H = "From:To:Subject:MIME-Version:Content-Type:Content-Transfer-Encoding:Date:Message-ID"

CONFIG = """
[verification]
poll_interval = 1s
[dkim]
host_zone = %s
[delivery]
retry_initial = 1s
""" % HOST_ZONE


@pytest.fixture(scope="module")
def verifiers(dns, tmp_path_factory):
    return Verifiers(dns, tmp_path_factory.mktemp("verifiers"))


@pytest.fixture(scope="module")
def rcv(module_servers, port):
    return module_servers.receiver(port=port)


@pytest.fixture(scope="module")
def rcpt_domain(dns, rcv):
    domain = unique_domain("rcpt")
    route_mx(dns.zone, domain, rcv.host)
    return domain


# ---- helpers ----


def zone_records(text):
    """(owner, type, joined text) of each record of a zone file: parentheses joined,
    comments dropped, quoted strings concatenated (RFC 1035 §5.1, RFC 7208 §3.3)."""
    origin, records, pending = "", [], ""
    for line in text.splitlines():
        line = re.sub(r';[^"]*$', "", line).rstrip()
        if pending:
            pending += " " + line.strip()
            if ")" not in line:
                continue
            line, pending = pending, ""
        elif "(" in line and ")" not in line:
            pending = line
            continue
        if line.startswith("$ORIGIN"):
            origin = line.split()[1]
            continue
        if not line.strip() or line.startswith("$"):
            continue
        fields = line.replace("(", " ").replace(")", " ").split()
        owner = fields[0]
        if not owner.endswith("."):
            owner = owner + "." + origin
        rtype = next(f for f in fields[1:] if f in ("TXT", "CNAME", "SOA", "NS"))
        strings = re.findall(r'"((?:[^"\\]|\\.)*)"', line)
        records.append((owner.rstrip(".").lower(), rtype, "".join(strings)))
    return records


def publish(inst, dns, domain, tokens, cname_target=None):
    """What a customer and the operator do: the CNAMEs under the domain, the TXT records
    from `sesame dkim-zone` under the host zone."""
    out = inst.sesame("dkim-zone", domain).stdout
    txt = {owner: text for owner, rtype, text in zone_records(out) if rtype == "TXT"}
    for t in tokens:
        dns.zone.set_txt("%s.%s" % (t, HOST_ZONE), txt["%s.%s" % (t, HOST_ZONE)])
        dns.zone.set_cname("%s._domainkey.%s" % (t, domain),
                           cname_target or "%s.%s" % (t, HOST_ZONE))
    return out


def unpublish(dns, domain, tokens):
    for t in tokens:
        dns.zone.clear("%s._domainkey.%s" % (t, domain))


def dkim_attrs(ses, identity):
    return ses.get_identity_dkim_attributes(Identities=[identity])["DkimAttributes"].get(identity)


def wait_status(ses, identity, status, timeout=15):
    wait_until(lambda: (dkim_attrs(ses, identity) or {}).get("DkimVerificationStatus") == status,
               timeout, what="DKIM status %s for %s" % (status, identity))


def dkim_domain(inst, dns, enable=True):
    """A verified domain with Easy DKIM verified (and enabled): (domain, tokens)."""
    domain = unique_domain("signed")
    inst.sesame("identity", "verify", "--force", domain)
    ses = inst.client()
    tokens = ses.verify_domain_dkim(Domain=domain)["DkimTokens"]
    publish(inst, dns, domain, tokens)
    wait_status(ses, domain, "Success")
    if enable:
        ses.set_identity_dkim_enabled(Identity=domain, DkimEnabled=True)
    return domain, tokens


def wait_email(rcv, rcpt, subject, timeout=20):
    """The text of the email to rcpt with that subject, once the receiving server has it."""
    def find():
        for m in rcv.received(rcpt):
            msg = email.message_from_bytes(m.data, policy=email.policy.default)
            if msg["Subject"] == subject:
                return msg.get_body(("plain",)).get_content()
        return None
    return wait_until(find, timeout, what="an email '%s' to %s" % (subject, rcpt))


def signatures(data):
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    return [dict((k.strip(), re.sub(r"\s+", "", v)) for k, v in
                 (t.split("=", 1) for t in re.sub(r"\s+", " ", s).split(";") if "=" in t))
            for s in msg.get_all("DKIM-Signature", [])]


def assert_verifies(verifiers, data, domain=None):
    """Every signature verifies with Mail::DKIM and dkimpy; the first one with dkimverify
    and opendkim-testmsg too."""
    ok, out = verifiers.dkimpy(data)
    assert ok, out
    ok, out = verifiers.opendkim(data)
    assert ok, out
    results = verifiers.mail_dkim(data)
    assert results and all(r[3] == "pass" for r in results), results
    py = verifiers.dkimpy_all(data)
    assert py and all(r[2] == "pass" for r in py), py
    if domain:
        assert results[0][0] == domain, results


def deliver(inst, rcv, rcpt, **kwargs):
    """SendEmail through boto3 to rcpt; the bytes the receiving server got."""
    ses = kwargs.pop("ses", None) or inst.client()
    mid = ses.send_email(Destination={"ToAddresses": [rcpt]}, **kwargs)["MessageId"]
    return rcv.wait_message(rcpt).data, mid


def deliver_raw(inst, rcv, rcpt, raw, source=None):
    args = {"RawMessage": {"Data": raw}, "Destinations": [rcpt]}
    if source:
        args["Source"] = source
    inst.client().send_raw_email(**args)
    return rcv.wait_message(rcpt).data


# ---- the API ----


def test_verify_domain_dkim_tokens_and_attributes(inst, dns):
    domain = unique_domain("tokens")
    inst.sesame("identity", "verify", "--force", domain)
    out = inst.aws("verify-domain-dkim", "--domain", domain)
    tokens = out["DkimTokens"]
    assert len(tokens) == 3 and len(set(tokens)) == 3
    assert all(re.fullmatch(r"[a-z2-7]{32}", t) for t in tokens), tokens
    # Repeated calls while Pending return the same tokens (spec 20 Q6).
    assert inst.aws("verify-domain-dkim", "--domain", domain.upper())["DkimTokens"] == tokens
    email_id = "someone@" + domain
    inst.sesame("identity", "verify", "--force", email_id)
    got = inst.aws("get-identity-dkim-attributes", "--identities", domain, email_id,
                   "unknown-" + domain)["DkimAttributes"]
    assert set(got) == {domain, email_id}  # unknown identities are left out
    assert got[domain] == {"DkimEnabled": False, "DkimVerificationStatus": "Pending",
                           "DkimTokens": tokens}
    assert got[email_id] == {"DkimEnabled": False, "DkimVerificationStatus": "NotStarted"}
    # Enabling while Pending is allowed (Q8); signing waits for Success.
    inst.aws("set-identity-dkim-enabled", "--identity", domain, "--dkim-enabled")
    assert dkim_attrs(inst.client(), domain)["DkimEnabled"] is True


def test_bad_input_gets_the_documented_errors(inst):
    ses = inst.client()
    from botocore.exceptions import ClientError

    def err(fn, **kw):
        with pytest.raises(ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert err(ses.verify_domain_dkim, Domain="user@example.com") == (
        "InvalidParameterValue", "Invalid domain name user@example.com.")
    assert err(ses.verify_domain_dkim, Domain="not a domain")[0] == "InvalidParameterValue"
    unverified = unique_domain("unverified")
    assert err(ses.set_identity_dkim_enabled, Identity=unverified, DkimEnabled=True) == (
        "InvalidParameterValue", "Domain %s ownership not confirmed." % unverified)
    no_tokens = unique_domain("notokens")
    inst.sesame("identity", "verify", "--force", no_tokens)
    assert err(ses.set_identity_dkim_enabled, Identity=no_tokens, DkimEnabled=True) == (
        "InvalidParameterValue", "Domain %s is not verified for DKIM signing." % no_tokens)
    # Disabling needs no tokens; an email identity needs its domain's tokens to enable.
    ses.set_identity_dkim_enabled(Identity=no_tokens, DkimEnabled=False)
    inst.sesame("identity", "verify", "--force", "who@" + no_tokens)
    assert err(ses.set_identity_dkim_enabled, Identity="who@" + no_tokens, DkimEnabled=True) == (
        "InvalidParameterValue", "Domain %s is not verified for DKIM signing." % no_tokens)
    r = inst.raw(body=b"Action=SetIdentityDkimEnabled&Identity=" + no_tokens.encode() +
                 b"&DkimEnabled=maybe")
    assert r.status == 400 and b"InvalidParameterValue" in r.body
    # Nothing changed.
    assert dkim_attrs(ses, no_tokens) == {"DkimEnabled": False,
                                          "DkimVerificationStatus": "NotStarted"}


# ---- status through DNS ----


def test_status_pending_to_success_through_cnames(inst, dns):
    domain = unique_domain("status")
    inst.sesame("identity", "verify", "--force", domain)
    ses = inst.client()
    tokens = ses.verify_domain_dkim(Domain=domain)["DkimTokens"]
    # CNAMEs pointing elsewhere do not verify.
    publish(inst, dns, domain, tokens, cname_target="elsewhere.example.net")
    time.sleep(2.5)
    assert dkim_attrs(ses, domain)["DkimVerificationStatus"] == "Pending"
    # Only two of three published: still Pending.
    publish(inst, dns, domain, tokens[:2])
    time.sleep(2.5)
    assert dkim_attrs(ses, domain)["DkimVerificationStatus"] == "Pending"
    # SERVFAIL on the last one: TemporaryFailure.
    dns.zone.set_servfail("%s._domainkey.%s" % (tokens[2], domain))
    wait_status(ses, domain, "TemporaryFailure")
    dns.zone.set_servfail("%s._domainkey.%s" % (tokens[2], domain), False)
    publish(inst, dns, domain, tokens)
    wait_status(ses, domain, "Success")
    assert ses.verify_domain_dkim(Domain=domain)["DkimTokens"] == tokens
    assert "dkim: domain %s" % domain in inst.log()


def test_failed_after_window_and_revoked_after_records_vanish(instance, dns, port, rcv,
                                                             rcpt_domain, verifiers):
    inst = delivery_instance(instance, port,
                             CONFIG + "[dkim]\nfailure_window = 3s\nrevocation_window = 3s\n")
    ses = inst.client()
    owner = "owner-%s@%s" % (uuid.uuid4().hex[:8], rcpt_domain)
    inst.sesame("account", "set", "--contact", owner)  # the lifecycle emails go there
    never = unique_domain("never")
    inst.sesame("identity", "verify", "--force", never)
    old = ses.verify_domain_dkim(Domain=never)["DkimTokens"]
    wait_status(ses, never, "Failed", timeout=20)
    wait_email(rcv, owner, "DKIM FAILURE: %s in region us-east-1" % never)
    # After Failed, setup starts over with new tokens (spec 20 Q5).
    assert set(ses.verify_domain_dkim(Domain=never)["DkimTokens"]).isdisjoint(old)

    domain, tokens = dkim_domain(inst, dns)
    sender = "news@" + domain
    inst.sesame("identity", "verify", "--force", sender)
    ses.set_identity_dkim_enabled(Identity=sender, DkimEnabled=True)
    data, _ = deliver(inst, rcv, "before@" + rcpt_domain, Source=sender,
                      Message={"Subject": {"Data": "signed"}, "Body": {"Text": {"Data": "x"}}})
    assert signatures(data)[0]["d"] == domain
    unpublish(dns, domain, tokens)
    wait_status(ses, domain, "Failed", timeout=20)
    # Revoked: signing stops, and enabling starts over for the domain and its addresses.
    assert dkim_attrs(ses, domain)["DkimEnabled"] is False
    assert dkim_attrs(ses, sender)["DkimEnabled"] is False
    assert "(revoked: records missing)" in inst.log()
    # The account heard of each step (spec 20 §2.4), in order.
    for subject in ("DKIM setup successful", "DKIM records missing", "DKIM REVOCATION"):
        body = wait_email(rcv, owner, "%s: %s in region us-east-1" % (subject, domain))
        assert domain in body
    data, _ = deliver(inst, rcv, "after@" + rcpt_domain, Source=sender,
                      Message={"Subject": {"Data": "unsigned"}, "Body": {"Text": {"Data": "x"}}})
    assert b"DKIM-Signature" not in data  # never refused: sent unsigned


# ---- signing ----

CORPUS = {
    "plain": (b"From: {sender}\r\nTo: {rcpt}\r\nSubject: plain\r\n\r\nHello.\r\n"),
    "odd-whitespace": (b"From:   {sender}  \r\nTo:\t{rcpt}\r\nSubject:  lots   of\t space  \r\n"
                       b"X-Extra:  value \t\r\n\r\n  indented  line \t\r\ntrailing spaces   \r\n"
                       b"\r\n\r\n\r\n"),
    "long-folded": (b"From: {sender}\r\nTo: {rcpt}\r\nSubject: a subject that is long\r\n"
                    b" and folded over\r\n\tseveral lines\r\n  with odd indentation\r\n"
                    b"References: <a@b> <c@d>\r\n <e@f>\r\n\r\nBody.\r\n"),
    # Fields RFC 5322 lets repeat (opendkim refuses a message with two To fields).
    "repeated": (b"Comments: zero\r\nFrom: {sender}\r\nTo: {rcpt}\r\nKeywords: a\r\n"
                 b"Subject: first\r\nComments: one\r\nKeywords: b\r\nComments: two\r\n"
                 b"\r\nBody.\r\n"),
    "attachment": (b"From: {sender}\r\nTo: {rcpt}\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
                   b"Content-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\n"
                   b"Content-Type: application/pdf; name=\"r.pdf\"\r\n"
                   b"Content-Transfer-Encoding: base64\r\n"
                   b"Content-Disposition: attachment; filename=\"r.pdf\"\r\n\r\n"
                   b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n"
                   b"--b1--\r\n"),
    "non-ascii": ("From: {sender}\r\nTo: {rcpt}\r\nSubject: =?UTF-8?B?w6nDqMOg?=\r\n"
                  "X-Raw: caf\u00e9 \u00fcber\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit"
                  "\r\n\r\nCaf\u00e9 cr\u00e8me \u2014 8-bit body.\r\n").encode(),
    "lf-only": (b"From: {sender}\nTo: {rcpt}\nSubject: lf only\n\nline one\nline two\n"),
    "empty-body": (b"From: {sender}\r\nTo: {rcpt}\r\nSubject: empty\r\n\r\n"),
    "no-final-crlf": (b"From: {sender}\r\nTo: {rcpt}\r\nSubject: no final\r\n\r\nlast line"),
}


def test_signed_corpus_verifies_with_three_verifiers(inst, dns, rcv, rcpt_domain, verifiers):
    domain, tokens = dkim_domain(inst, dns)
    sender = "corpus@" + domain
    for name, template in CORPUS.items():
        rcpt = "%s@%s" % (name, rcpt_domain)
        raw = template.replace(b"{sender}", sender.encode()).replace(b"{rcpt}", rcpt.encode())
        data = deliver_raw(inst, rcv, rcpt, raw)
        sigs = signatures(data)
        assert len(sigs) == 1, (name, data[:400])
        s = sigs[0]
        assert (s["v"], s["a"], s["q"], s["c"], s["d"], s["s"]) == (
            "1", "rsa-sha256", "dns/txt", "relaxed/simple", domain, tokens[0]), name
        present = [h for h in DEFAULT_H.split(":")
                   if re.search(rb"(?im)^" + h.encode() + rb":", data.split(b"\r\n\r\n")[0])]
        assert s["h"] == ":".join(present), (name, s["h"])
        assert abs(int(s["t"]) - time.time()) < 60
        try:
            assert_verifies(verifiers, data, domain)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (name, e))


def test_send_email_and_smtp_are_signed(inst, dns, rcv, rcpt_domain, verifiers):
    domain, tokens = dkim_domain(inst, dns)
    sender = "Sender Name <hello@%s>" % domain
    data, _ = deliver(inst, rcv, "sendemail@" + rcpt_domain, Source=sender, Message={
        "Subject": {"Data": "caf\u00e9 au lait", "Charset": "UTF-8"},
        "Body": {"Text": {"Data": "Text \u00e9\n" * 40}, "Html": {"Data": "<p>html</p>"}}})
    assert signatures(data)[0]["d"] == domain
    assert_verifies(verifiers, data, domain)
    # SMTP, as a mail client or relay would send it.
    ep = inst.endpoints
    host, smtp_port = ep["smtp_starttls"].rsplit(":", 1)
    rcpt = "smtp@" + rcpt_domain
    with smtplib.SMTP(host, int(smtp_port), timeout=30) as s:
        s.starttls(context=ssl._create_unverified_context())
        s.login(ep["smtp_username"], ep["smtp_password"])
        s.sendmail("hello@" + domain, [rcpt],
                   b"From: hello@" + domain.encode() + b"\r\nTo: " + rcpt.encode() +
                   b"\r\nSubject: over smtp\r\n\r\nBody over SMTP.\r\n")
    data = rcv.wait_message(rcpt).data
    assert signatures(data)[0]["s"] == tokens[0]
    assert_verifies(verifiers, data, domain)


def test_customer_signature_is_kept(inst, dns, rcv, rcpt_domain, verifiers):
    """A message signed by the customer (dkimpy, its own key and selector, published in
    DNS) keeps that signature intact; Sesame's goes on top (spec 20 Q9)."""
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    domain, tokens = dkim_domain(inst, dns)
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    import base64
    dns.zone.set_txt("own._domainkey." + domain, "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode())
    rcpt = "customer-signed@" + rcpt_domain
    raw = (b"From: me@" + domain.encode() + b"\r\nTo: " + rcpt.encode() +
           b"\r\nSubject: signed by me\r\n\r\nMy own signature.\r\n")
    sig = dkim.sign(raw, b"own", domain.encode(), pem, include_headers=[b"From", b"To", b"Subject"])
    data = deliver_raw(inst, rcv, rcpt, sig + raw)
    sigs = signatures(data)
    assert [s["s"] for s in sigs] == [tokens[0], "own"]
    results = verifiers.mail_dkim(data)
    assert [(r[1], r[3]) for r in results] == [(tokens[0], "pass"), ("own", "pass")], results


def test_email_identity_keeps_its_own_setting(inst, dns, rcv, rcpt_domain):
    domain, tokens = dkim_domain(inst, dns)
    ses = inst.client()
    own = "own-setting@" + domain
    inst.sesame("identity", "verify", "--force", own)  # its own DkimEnabled: false
    body = {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "x"}}}
    data, _ = deliver(inst, rcv, "own1@" + rcpt_domain, Source=own, Message=body)
    assert b"DKIM-Signature" not in data
    data, _ = deliver(inst, rcv, "other1@" + rcpt_domain, Source="other@" + domain, Message=body)
    assert signatures(data)[0]["d"] == domain
    ses.set_identity_dkim_enabled(Identity=own, DkimEnabled=True)
    data, _ = deliver(inst, rcv, "own2@" + rcpt_domain, Source=own, Message=body)
    assert signatures(data)[0]["d"] == domain
    # Per FQDN (spec 20 §2.1.4): a subdomain governed by the domain is not signed.
    data, _ = deliver(inst, rcv, "sub1@" + rcpt_domain, Source="x@sub." + domain, Message=body)
    assert b"DKIM-Signature" not in data
    # Disabled on the domain: not signed.
    ses.set_identity_dkim_enabled(Identity=domain, DkimEnabled=False)
    data, _ = deliver(inst, rcv, "other2@" + rcpt_domain, Source="other@" + domain, Message=body)
    assert b"DKIM-Signature" not in data


def test_dkim_zone_loads_in_named_checkzone(inst, dns, tmp_path):
    domain, tokens = dkim_domain(inst, dns, enable=False)
    out = inst.sesame("dkim-zone").stdout
    path = tmp_path / "dkim.zone"
    # named-checkzone wants an SOA and NS; the operator's zone has them.
    path.write_text("$TTL 3600\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n"
                    "@ IN NS ns.%s.\nns IN A 192.0.2.53\n" % (HOST_ZONE, HOST_ZONE, HOST_ZONE)
                    + out)
    r = subprocess.run(["named-checkzone", HOST_ZONE, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + out
    records = {o: t for o, rtype, t in zone_records(out) if rtype == "TXT"}
    for t in tokens:
        assert re.fullmatch(r"v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}",
                            records["%s.%s" % (t, HOST_ZONE)]), records


def test_operator_and_ed25519_signatures(instance, dns, port, rcv, rcpt_domain, verifiers):
    operator = unique_domain("operator")
    inst = delivery_instance(instance, port, CONFIG + "[dkim]\ned25519 = true\n"
                             "operator_domain = %s\n" % operator)
    out = inst.sesame("dkim-zone", "--operator").stdout
    txt = {o: t for o, rtype, t in zone_records(out) if rtype == "TXT"}
    dns.zone.set_txt("sesame._domainkey." + operator, txt["sesame._domainkey." + operator])
    body = {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "operator"}}}
    # Without Easy DKIM: the operator's signature alone.
    from conftest import SENDER
    data, _ = deliver(inst, rcv, "op1@" + rcpt_domain, Source=SENDER, Message=body)
    assert [(s["d"], s["s"]) for s in signatures(data)] == [(operator, "sesame")]
    assert_verifies(verifiers, data, operator)
    # With Easy DKIM and Ed25519: RSA and Ed25519 by the domain, then the operator's.
    domain, tokens = dkim_domain(inst, dns)
    assert "k=ed25519" in inst.sesame("dkim-zone", domain).stdout
    data, _ = deliver(inst, rcv, "op2@" + rcpt_domain, Source="x@" + domain, Message=body)
    sigs = signatures(data)
    assert [(s["d"], s["s"], s["a"]) for s in sigs] == [
        (domain, tokens[0], "rsa-sha256"), (domain, tokens[1], "ed25519-sha256"),
        (operator, "sesame", "rsa-sha256")]
    # dkimpy checks all three; Mail::DKIM 1.20230212 (Debian 12) has no Ed25519 and says
    # so, and passes both RSA signatures; opendkim checks the first.
    py = verifiers.dkimpy_all(data)
    assert [(r[0], r[2]) for r in py] == [(domain, "pass"), (domain, "pass"),
                                          (operator, "pass")], py
    results = verifiers.mail_dkim(data)
    assert [(r[0], r[3]) for r in results] == [
        (domain, "pass"), (domain, "invalid (unsupported algorithm ed25519-sha256)"),
        (operator, "pass")], results
    ok, out = verifiers.opendkim(data)
    assert ok, out


def test_delete_identity_forgets_the_dkim_setup(inst, dns):
    domain, tokens = dkim_domain(inst, dns)
    ses = inst.client()
    address = "someone@" + domain
    inst.sesame("identity", "verify", "--force", address)
    ses.set_identity_dkim_enabled(Identity=address, DkimEnabled=True)
    ses.delete_identity(Identity=domain)
    got = ses.get_identity_dkim_attributes(Identities=[domain, address])["DkimAttributes"]
    assert got == {address: {"DkimEnabled": False, "DkimVerificationStatus": "NotStarted"}}
    assert tokens[0] not in inst.sesame("dkim-zone").stdout
    # A set made for a domain that is no identity goes with DeleteIdentity too.
    bare = unique_domain("bare")
    ses.verify_domain_dkim(Domain=bare)
    assert dkim_attrs(ses, bare)["DkimVerificationStatus"] == "Pending"
    ses.delete_identity(Identity=bare)
    assert dkim_attrs(ses, bare) is None


@pytest.mark.parametrize("key,value", [
    ("operator_selector", "s" * 40),
    ("operator_selector", "bad selector"),
    ("operator_domain", "not a domain"),
])
def test_bad_dkim_configuration_is_refused(instance, key, value):
    inst = instance(start=False, extra="[dkim]\noperator_domain = ops.example.net\n%s = %s\n"
                    % (key, value))
    res = inst.sesame("account", "list", expect=None)
    assert res.returncode != 0 and "dkim.%s" % key in res.stderr, res.stderr


def test_sends_during_shutdown_are_answered_and_kept(instance):
    """SIGTERM while a keep-alive client goes on sending mail the operator signs (every
    send goes through the CPU pool): sesamed drains and exits cleanly, sanitizer-clean,
    every request gets an answer, and every MessageId it gave is stored, signed."""
    import base64
    import http.client
    import signal
    import urllib.parse
    from conftest import sign_request
    from sendlib import capture_get, raw_data
    inst = instance(auto_verify=True, production=True, init_args=("--mode", "capture"),
                    start=False, extra="[dkim]\noperator_domain = ops.example.net\nthreads = 1\n")
    inst.start()
    inst.sesame("account", "set", "--quota", "1000000", "--rate", "100000")
    inst.client().verify_email_identity(EmailAddress="a@example.com")

    def send(conn):
        raw = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nt\r\n"
        body = urllib.parse.urlencode({
            "Action": "SendRawEmail",
            "RawMessage.Data": base64.b64encode(raw).decode()}).encode()
        headers = sign_request("POST", inst.http_url + "/", body, {
            "Host": "127.0.0.1:%d" % inst.port_base,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            inst.key, inst.secret, "us-east-1")
        conn.request("POST", "/", body, headers)
        r = conn.getresponse()
        data = r.read()
        m = re.search(rb"<MessageId>([^<]+)</MessageId>", data)
        return r.status, m.group(1).decode() if m else None

    conn = http.client.HTTPConnection("127.0.0.1", inst.port_base, timeout=10)
    assert send(conn)[0] == 200
    accepted = []
    inst.proc.send_signal(signal.SIGTERM)
    for _ in range(40):
        try:
            status, mid = send(conn)
        except (OSError, http.client.HTTPException):
            break  # the listener's connections close with the loop
        assert status in (200, 500, 503), status
        if mid:
            accepted.append(mid)
    inst.stop()  # exit 0, sanitizer-clean
    inst.start()
    ids = {m["Id"]: m for m in capture_get(inst)}
    for mid in accepted:
        assert mid in ids, mid
        assert b"d=ops.example.net" in re.sub(rb"\s", b"", raw_data(ids[mid])), ids[mid]
