"""Feedback, end to end (spec 20 §5 and §9, DECISIONS 28–30): what the sender learns.

Topics and subscriptions are made with boto3's SNS client against sesamed; an HTTPS
receiver started here (sns_receiver.py) confirms its subscription by fetching the
SubscribeURL and checks every message's SNS signature with the certificate served at
SigningCertURL. Forwarded feedback arrives by email at a receiving SMTP server (mx.py)
that is the MX of the senders' domain. Real bounces and complaints are sent to sesamed's
feedback listener with smtplib, as a receiving MTA or an ISP's feedback loop would.
"""
import email
import email.policy
import json
import re
import smtplib
import time
import uuid

import pytest

from conftest import (
    events_of, loopback_address, parse_kv, route_mx, send_mail, unique_domain, wait_until,
)
from sns_receiver import SnsReceiver, fetch, loopback_cert

BOUNCE_DOMAIN = "bounces.sesame.test"
SIM = "simulator.amazonses.com"
MESSAGE_ID_DOMAIN = "email.amazonses.com"
FB_DOMAIN = unique_domain("feedback")
CONTACT = "owner@" + FB_DOMAIN

CONFIG = """
[delivery]
bounce_domain = %s
retry_initial = 1s
retry_max = 2s
[notifications]
ca_file = %s
retry_initial = 1s
retry_max = 2s
max_attempts = 3
timeout = 3s
""" % (BOUNCE_DOMAIN, loopback_cert()[0])

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FEEDBACK_ID = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                         r"[0-9a-f]{12}-000000$")


@pytest.fixture(scope="module")
def mailbox(inst, module_servers, port, dns):
    """The MX of FB_DOMAIN: forwarded feedback and email subscriptions arrive here."""
    rcv = module_servers.receiver(port=port)
    route_mx(dns.zone, FB_DOMAIN, rcv.host)
    inst.sesame("identity", "verify", "--force", FB_DOMAIN)
    inst.sesame("account", "set", "--contact", CONTACT)
    return rcv


@pytest.fixture(scope="module")
def receiver():
    r = SnsReceiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def sns(inst):
    return inst.client(service="sns")


def sim(local):
    return "%s@%s" % (local, SIM)


def new_sender(inst, mailbox):
    """A verified email identity of its own, so each test's settings stand apart."""
    sender = "s-%s@%s" % (uuid.uuid4().hex[:8], FB_DOMAIN)
    inst.sesame("identity", "verify", "--force", sender)
    return sender


def subscribed_topic(inst, sns, receiver, identity, types=("Bounce", "Complaint", "Delivery")):
    """A topic with the receiver subscribed and confirmed, set for identity's types; waits
    for the AmazonSnsSubscriptionSucceeded message of each type."""
    arn = sns.create_topic(Name="t-" + uuid.uuid4().hex[:10])["TopicArn"]
    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=receiver.url)

    def confirmed():
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        return subs and all(s["SubscriptionArn"].startswith(arn + ":") for s in subs)
    wait_until(confirmed, 20, what="the subscription to be confirmed")
    ses = inst.client()
    for t in types:
        ses.set_identity_notification_topic(Identity=identity, NotificationType=t, SnsTopic=arn)
    for t in types:
        want = ("You have successfully subscribed your Amazon SNS topic '%s' to receive '%s' "
                "notifications from Amazon SES for identity '%s'." % (arn, t, identity))
        receiver.wait_payloads(lambda p: p.get("notificationType") ==
                               "AmazonSnsSubscriptionSucceeded" and p.get("message") == want,
                               what="the %s subscription message" % t)
    return arn


def payloads_for(receiver, mid, kind, n_recipients, key):
    """Notifications of kind about message mid until they cover n_recipients recipients
    (one notification may cover several); returns them."""
    def got():
        found = [p.payload() for p in receiver.notifications()]
        found = [p for p in found if p and p.get("notificationType") == kind
                 and p["mail"]["messageId"] == mid]
        covered = sum(len(p[key[0]][key[1]]) for p in found)
        return found if covered >= n_recipients else None
    return receiver.wait(got, what="%s notifications for %s" % (kind, mid))


def check_mail(p, mid, source, destination):
    m = p["mail"]
    assert m["messageId"] == mid, p
    assert m["source"] == source, p
    assert m["destination"] == destination, p
    assert STAMP.match(m["timestamp"]), p


def parse_mail(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def parts_of(msg):
    return [p.get_content_type() for p in msg.walk()]


# ---- the mailbox simulator over SNS ----


def test_simulator_addresses_publish_signed_notifications(inst, sns, receiver, mailbox):
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender)
    to = [sim("success"), sim("bounce"), sim("ooto"), sim("complaint"),
          sim("suppressionlist")]
    mid = send_mail(inst, to, source=sender)

    deliveries = payloads_for(receiver, mid, "Delivery", 3, ("delivery", "recipients"))
    got = sorted(r for p in deliveries for r in p["delivery"]["recipients"])
    assert got == sorted([sim("success"), sim("ooto"), sim("complaint")]), deliveries
    for p in deliveries:
        check_mail(p, mid, sender, to)
        d = p["delivery"]
        assert STAMP.match(d["timestamp"]), p
        assert isinstance(d["processingTimeMillis"], int) and d["processingTimeMillis"] >= 0
        assert d["smtpResponse"].startswith("250"), p
        assert d["reportingMTA"] and not d["reportingMTA"].startswith("dns;"), p
        assert set(p) == {"notificationType", "mail", "delivery"}, p

    bounces = payloads_for(receiver, mid, "Bounce", 2, ("bounce", "bouncedRecipients"))
    by_address = {}
    for p in bounces:
        check_mail(p, mid, sender, to)
        b = p["bounce"]
        assert FEEDBACK_ID.match(b["feedbackId"]), p
        assert STAMP.match(b["timestamp"]), p
        assert b["reportingMTA"].startswith("dns; "), p
        for r in b["bouncedRecipients"]:
            by_address[r["emailAddress"]] = (b["bounceType"], b["bounceSubType"], r)
    general = by_address[sim("bounce")]
    assert general[:2] == ("Permanent", "General"), bounces
    assert general[2]["status"] == "5.1.1" and general[2]["action"] == "failed", bounces
    assert "550" in general[2]["diagnosticCode"], bounces
    assert by_address[sim("suppressionlist")][:2] == ("Permanent", "Suppressed"), bounces

    complaints = payloads_for(receiver, mid, "Complaint", 1,
                              ("complaint", "complainedRecipients"))
    c = complaints[0]["complaint"]
    check_mail(complaints[0], mid, sender, to)
    assert c["complainedRecipients"] == [{"emailAddress": sim("complaint")}], c
    assert c["complaintFeedbackType"] == "abuse", c
    assert c["userAgent"] and STAMP.match(c["arrivalDate"]) and STAMP.match(c["timestamp"]), c
    assert FEEDBACK_ID.match(c["feedbackId"]), c
    # auto-replies have no SNS format (spec 20 Q11): none was published
    assert not [p for p in receiver.notifications() if p.payload()
                and p.payload().get("mail", {}).get("messageId") == mid
                and p.payload()["notificationType"] not in ("Delivery", "Bounce", "Complaint")]


def test_one_publish_reaches_every_subscriber_under_one_message_id(inst, sns, receiver,
                                                                   mailbox):
    """SNS gives a published message one MessageId, whichever subscription receives it;
    mail.source is the Source's address even when the Source has a display name."""
    sender = new_sender(inst, mailbox)
    arn = subscribed_topic(inst, sns, receiver, sender, types=("Delivery",))
    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=receiver.url + "?second=1")

    def both_confirmed():
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        return len(subs) == 2 and all(s["SubscriptionArn"].startswith(arn + ":") for s in subs)
    wait_until(both_confirmed, 20, what="the second subscription to be confirmed")
    mid = send_mail(inst, [sim("success")], source='"Sender Name" <%s>' % sender)

    def got():
        posts = [p for p in receiver.notifications(arn)
                 if (p.payload() or {}).get("mail", {}).get("messageId") == mid]
        return posts if len(posts) == 2 else None
    posts = receiver.wait(got, what="the Delivery notification at both subscriptions")
    assert len({p.headers["x-amz-sns-subscription-arn"] for p in posts}) == 2, posts
    assert posts[0].message["MessageId"] == posts[1].message["MessageId"]
    for p in posts:
        check_mail(p.payload(), mid, sender, [sim("success")])


def test_label_forms_bounce_together(inst, sns, receiver, mailbox):
    """bounce+label@ behaves as bounce@, and the bounces of one send come back in one
    notification (spec 20 §9.3, §9.4)."""
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce",))
    to = [sim("bounce+one"), sim("bounce+two")]
    mid = send_mail(inst, to, source=sender)
    bounces = payloads_for(receiver, mid, "Bounce", 2, ("bounce", "bouncedRecipients"))
    assert len(bounces) == 1, bounces
    got = sorted(r["emailAddress"] for r in bounces[0]["bounce"]["bouncedRecipients"])
    assert got == sorted(to), bounces


# ---- email forwarding (the default) ----


def test_forwarding_by_email_is_the_default(inst, mailbox):
    sender = new_sender(inst, mailbox)
    attrs = inst.aws("get-identity-notification-attributes", "--identities", sender)
    assert attrs["NotificationAttributes"][sender]["ForwardingEnabled"] is True, attrs
    mid = send_mail(inst, [sim("bounce"), sim("complaint"), sim("ooto")], source=sender)
    msgs = mailbox.wait_messages(3, rcpt=sender, timeout=30)
    assert len(msgs) == 3, msgs
    kinds = {}
    for m in msgs:
        parsed = parse_mail(m.data)
        assert parsed["From"].addresses[0].username.upper() == "MAILER-DAEMON", parsed["From"]
        assert parsed["To"].addresses[0].addr_spec == sender, parsed["To"]
        types = parts_of(parsed)
        if "message/delivery-status" in types and parsed.get_content_type() == "multipart/report":
            kinds["dsn"] = m
            text = m.data.decode("utf-8", "replace")
            assert "Final-Recipient: rfc822; " + sim("bounce") in text, text
            assert "Status: 5.1.1" in text and "Action: failed" in text, text
            assert mid in text, "the original's headers are attached"
        elif "message/feedback-report" in types:
            kinds["arf"] = m
            assert "Feedback-Type: abuse" in m.data.decode("utf-8", "replace")
        else:
            assert "message/rfc822" in types, types
            kinds["auto"] = m
            assert b"auto-replied" in m.data.lower(), m.data[:2000]
    assert set(kinds) == {"dsn", "arf", "auto"}, kinds


# ---- reports sent to the feedback listener ----


def feedback_smtp(inst):
    host, port = inst.endpoints["feedback_smtp"].rsplit(":", 1)
    return smtplib.SMTP(host, int(port), timeout=20)


def delivered_verp(inst, rcv, sender, to, dns):
    """Sends to `to` (whose MX is rcv) and returns (MessageId, the VERP MAIL FROM used)."""
    mid = send_mail(inst, to, source=sender)
    msg = rcv.wait_message(to)
    assert msg.mail_from.endswith("@" + BOUNCE_DOMAIN), msg.mail_from
    inst.wait_final(mid)
    return mid, msg.mail_from, msg.data


DSN = """From: MAILER-DAEMON@mx.example.net
To: {verp}
Subject: Undelivered Mail Returned to Sender
Date: Tue, 01 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain

Your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Tue, 01 Dec 2026 09:59:58 +0000

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.net
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>... User
 unknown

--BOUND
Content-Type: text/rfc822-headers

{headers}
--BOUND--
"""


def test_dsn_to_the_verp_address_is_a_bounce(inst, sns, receiver, mailbox, module_servers, port,
                                            dns):
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce",))
    rcv = module_servers.receiver(port=port)
    domain = unique_domain("late")
    route_mx(dns.zone, domain, rcv.host)
    to = "gone@" + domain
    mid, verp, data = delivered_verp(inst, rcv, sender, to, dns)
    headers = data.split(b"\r\n\r\n", 1)[0].decode()
    dsn = DSN.format(verp=verp, rcpt=to, headers=headers).replace("\n", "\r\n")
    with feedback_smtp(inst) as s:
        s.ehlo("mx.example.net")
        assert "auth" not in s.esmtp_features
        s.sendmail("", [verp], dsn.encode())
    bounces = payloads_for(receiver, mid, "Bounce", 1, ("bounce", "bouncedRecipients"))
    b = bounces[0]["bounce"]
    assert (b["bounceType"], b["bounceSubType"]) == ("Permanent", "NoEmail"), b
    assert b["reportingMTA"] == "dns; mx.example.net", b
    assert b["timestamp"] == "2026-12-01T10:00:00.000Z", b
    r = b["bouncedRecipients"]
    assert r == [{"emailAddress": to, "action": "failed", "status": "5.1.1",
                  "diagnosticCode": "smtp; 550 5.1.1 <%s>... User unknown" % to}], r
    check_mail(bounces[0], mid, sender, [to])
    shown = inst.queue_show(mid)
    ev = events_of(shown, to, "Bounce")
    assert len(ev) == 1 and ev[0]["Status"] == "5.1.1", shown
    assert inst.suppression_show(to), "a hard bounce lists the address"
    # forwarding is on too: the DSN arrives, attached whole, From rewritten
    fwd = mailbox.wait_message(sender)
    parsed = parse_mail(fwd.data)
    assert parsed["From"].addresses[0].username.upper() == "MAILER-DAEMON"
    assert "message/rfc822" in parts_of(parsed), parts_of(parsed)
    assert b"Diagnostic-Code: smtp; 550 5.1.1" in fwd.data
    # any hard bounce to its own VERP address lists the address (spec 20 §5.5.4), as a 5xx
    # to RCPT does in delivery: a policy refusal (5.7.1) is Permanent/General
    refused = "refused@" + domain
    mid, verp, data = delivered_verp(inst, rcv, sender, refused, dns)
    headers = data.split(b"\r\n\r\n", 1)[0].decode()
    dsn = DSN.format(verp=verp, rcpt=refused, headers=headers).replace("5.1.1", "5.7.1")
    with feedback_smtp(inst) as s:
        s.sendmail("", [verp], dsn.replace("\n", "\r\n").encode())
    b = payloads_for(receiver, mid, "Bounce", 1, ("bounce", "bouncedRecipients"))[0]["bounce"]
    assert (b["bounceType"], b["bounceSubType"]) == ("Permanent", "General"), b
    assert inst.suppression_show(refused), "a hard bounce lists the address"


def test_dsn_about_forwarded_mail_names_the_final_recipient(inst, sns, receiver, mailbox,
                                                            module_servers, port, dns):
    """The address Sesame sent to forwarded the mail, and the forwarding target bounced:
    bouncedRecipients names the DSN's Final-Recipient (spec 20 §5.5.4), while the event,
    the destination and the suppression list keep the address the sender used."""
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce",))
    rcv = module_servers.receiver(port=port)
    domain = unique_domain("fwd")
    route_mx(dns.zone, domain, rcv.host)
    to, final = "alias@" + domain, "Target@elsewhere.example"
    mid, verp, data = delivered_verp(inst, rcv, sender, to, dns)
    headers = data.split(b"\r\n\r\n", 1)[0].decode()
    dsn = DSN.format(verp=verp, rcpt=final, headers=headers).replace("\n", "\r\n")
    with feedback_smtp(inst) as s:
        s.sendmail("", [verp], dsn.encode())
    b = payloads_for(receiver, mid, "Bounce", 1, ("bounce", "bouncedRecipients"))[0]
    r = b["bounce"]["bouncedRecipients"]
    assert [x["emailAddress"] for x in r] == [final], r
    check_mail(b, mid, sender, [to])
    ev = events_of(inst.queue_show(mid), to, "Bounce")
    assert len(ev) == 1 and ev[0]["FinalRecipient"] == final, ev
    assert inst.suppression_show(to), "the address sent to is the one listed"
    # a Final-Recipient of another address type names no mailbox: the recipient stands
    other = "x400@" + domain
    mid, verp, data = delivered_verp(inst, rcv, sender, other, dns)
    headers = data.split(b"\r\n\r\n", 1)[0].decode()
    dsn = DSN.format(verp=verp, rcpt="x", headers=headers).replace(
        "rfc822; x\n", "x400; c=US;a=ATT;p=Example;o=Sales\n").replace("\n", "\r\n")
    with feedback_smtp(inst) as s:
        s.sendmail("", [verp], dsn.encode())
    b = payloads_for(receiver, mid, "Bounce", 1, ("bounce", "bouncedRecipients"))[0]
    assert [x["emailAddress"] for x in b["bounce"]["bouncedRecipients"]] == [other], b
    assert "FinalRecipient" not in events_of(inst.queue_show(mid), other, "Bounce")[0]


ARF = """From: fbl@arf.{isp}
To: fbl@{bounce_domain}
Subject: Abuse report
Date: Tue, 01 Dec 2026 11:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARFB"

--ARFB
Content-Type: text/plain

This is an email abuse report.

--ARFB
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/2.1
Version: 1
Arrival-Date: Tue, 01 Dec 2026 10:30:00 +0000

--ARFB
Content-Type: message/rfc822

{original}
--ARFB--
"""


def test_arf_report_is_a_complaint(inst, sns, receiver, mailbox, module_servers, port, dns):
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce", "Complaint"))
    rcv = module_servers.receiver(port=port)
    domain = unique_domain("isp")
    route_mx(dns.zone, domain, rcv.host)
    to = ["reader@" + domain, "other@" + unique_domain("elsewhere")]
    route_mx(dns.zone, to[1].split("@")[1], rcv.host)
    mid = send_mail(inst, to, source=sender)
    original = rcv.wait_message(to[0]).data.decode()
    inst.wait_final(mid)
    # the ISP redacted the recipient: the original's Message-ID names the message
    original = re.sub(r"(?m)^To: .*$", "To: redacted@" + domain, original)
    arf = ARF.format(isp=domain, bounce_domain=BOUNCE_DOMAIN,
                     original=original).replace("\r\n", "\n")
    with feedback_smtp(inst) as s:
        s.sendmail("fbl@arf." + domain, ["fbl@" + BOUNCE_DOMAIN],
                   arf.replace("\n", "\r\n").encode())
    complaints = payloads_for(receiver, mid, "Complaint", 1, ("complaint", "complainedRecipients"))
    c = complaints[0]["complaint"]
    assert c["userAgent"] == "ExampleFBL/2.1", c
    assert c["complaintFeedbackType"] == "abuse", c
    assert c["arrivalDate"] == "2026-12-01T10:30:00.000Z", c
    assert c["timestamp"] == "2026-12-01T11:00:00.000Z", c
    assert FEEDBACK_ID.match(c["feedbackId"]), c
    check_mail(complaints[0], mid, sender, to)
    # redacted: the recipients at the reporting provider's domain, not the others
    assert c["complainedRecipients"] == [{"emailAddress": to[0]}], c
    shown = inst.queue_show(mid)
    assert any(e["Type"] == "Complaint" and e["FeedbackType"] == "abuse"
               for e in shown["Events"]), shown
    # the same report again (sent twice, or replayed): kept aside, nothing more recorded
    before = len(inst.sesame("feedback", "list").stdout.splitlines())
    with feedback_smtp(inst) as s:
        s.sendmail("fbl@arf." + domain, ["fbl@" + BOUNCE_DOMAIN],
                   arf.replace("\n", "\r\n").encode())
    wait_until(lambda: len(inst.sesame("feedback", "list").stdout.splitlines()) > before, 10,
               what="the repeated report kept aside")
    assert len(events_of(inst.queue_show(mid), to[0], "Complaint")) == 1
    # a Feedback-Type outside RFC 5965's registry (opt-out) is "other" in the notification
    mid2 = send_mail(inst, to[:1], source=sender)
    inst.wait_final(mid2)
    opt_out = arf.replace("Feedback-Type: abuse", "Feedback-Type: opt-out").replace(mid, mid2)
    with feedback_smtp(inst) as s:
        s.sendmail("fbl@arf." + domain, ["fbl@" + BOUNCE_DOMAIN],
                   opt_out.replace("\n", "\r\n").encode())
    c2 = payloads_for(receiver, mid2, "Complaint", 1, ("complaint", "complainedRecipients"))
    assert c2[0]["complaint"]["complaintFeedbackType"] == "other", c2


def test_arf_provider_is_its_registrable_domain(inst, mailbox, module_servers, port, dns):
    """A redacted report from arf.<sky>.co.uk is about the recipients at <sky>.co.uk, not
    about everyone under co.uk (the Public Suffix List decides what a provider's domain is)."""
    sender = new_sender(inst, mailbox)
    rcv = module_servers.receiver(port=port)
    tag = uuid.uuid4().hex[:8]
    sky, bt = "sky%s.co.uk" % tag, "bt%s.co.uk" % tag
    for d in (sky, bt):
        route_mx(dns.zone, d, rcv.host)
    to = ["reader@" + sky, "other@" + bt]
    mid = send_mail(inst, to, source=sender)
    original = rcv.wait_message(to[0]).data.decode()
    inst.wait_final(mid)
    original = re.sub(r"(?m)^To: .*$", "To: redacted@" + sky, original)
    arf = ARF.format(isp=sky, bounce_domain=BOUNCE_DOMAIN, original=original)
    with feedback_smtp(inst) as s:
        s.sendmail("fbl@arf." + sky, ["fbl@" + BOUNCE_DOMAIN],
                   arf.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    wait_until(lambda: events_of(inst.queue_show(mid), to[0], "Complaint"), 10,
               what="the complaint")
    assert not events_of(inst.queue_show(mid), to[1], "Complaint")


def test_forged_and_foreign_addresses_are_refused(inst, mailbox, module_servers, port, dns):
    sender = new_sender(inst, mailbox)
    rcv = module_servers.receiver(port=port)
    domain = unique_domain("forge")
    route_mx(dns.zone, domain, rcv.host)
    _, verp, _ = delivered_verp(inst, rcv, sender, "x@" + domain, dns)
    local, dom = verp.split("@")
    mac = local.rsplit("-", 1)[1]
    assert len(local) <= 64, local
    forged = "%s-%s@%s" % (local.rsplit("-", 1)[0], ("a" if mac[0] != "a" else "b") + mac[1:],
                           dom)
    other_idx = re.sub(r"-0-([a-z2-7]{8})$", r"-1-\1", local) + "@" + dom
    assert other_idx != verp
    with feedback_smtp(inst) as s:
        s.ehlo("mx.example.net")
        s.mail("")
        assert s.rcpt(verp)[0] == 250
        for bad in (forged, other_idx, "nobody@" + BOUNCE_DOMAIN, "fbl@other.example"):
            code, text = s.rcpt(bad)
            assert code == 550, (bad, code, text)
        assert s.rcpt("postmaster@" + BOUNCE_DOMAIN)[0] == 250
        s.rset()


def test_unmatched_and_unreadable_reports_are_kept(inst, mailbox):
    before = inst.sesame("feedback", "list").stdout.splitlines()
    garbage = "Subject: hello\r\n\r\nnot a report at all\r\n\x01 bin\u00e4ry\r\n".encode()
    unknown = DSN.format(verp="fbl@" + BOUNCE_DOMAIN, rcpt="who@example.org",
                         headers="Message-ID: <0000019000000000-00000000-0000-0000-0000-"
                                 "000000000000-000000@%s>" % MESSAGE_ID_DOMAIN)
    with feedback_smtp(inst) as s:
        s.sendmail("", ["fbl@" + BOUNCE_DOMAIN], garbage)
        s.sendmail("", ["abuse@" + BOUNCE_DOMAIN], unknown.replace("\n", "\r\n").encode())
    lines = wait_until(lambda: (lambda l: l if len(l) >= len(before) + 2 else None)(
        inst.sesame("feedback", "list").stdout.splitlines()), 10, what="two kept reports")
    new = lines[:len(lines) - len(before)]
    assert any("kind=unknown" in l for l in new), new
    assert any("kind=dsn" in l and "does not know" in l for l in new), new
    kept_id = [l for l in new if "kind=unknown" in l][0].split()[0]
    shown = inst.sesame("feedback", "show", kept_id).stdout
    assert "not a report at all" in shown


# ---- the fallback rule and failing endpoints ----


def test_deleted_topic_turns_forwarding_back_on(inst, sns, receiver, mailbox):
    sender = new_sender(inst, mailbox)
    arn = subscribed_topic(inst, sns, receiver, sender, types=("Bounce", "Complaint"))
    inst.aws("set-identity-feedback-forwarding-enabled", "--identity", sender,
             "--no-forwarding-enabled")
    sns.delete_topic(TopicArn=arn)
    mid = send_mail(inst, sim("bounce"), source=sender)
    # the bounce still reaches the sender: by email, since the topic is gone
    fwd = mailbox.wait_message(sender, timeout=30)
    assert b"message/delivery-status" in fwd.data
    attrs = inst.aws("get-identity-notification-attributes", "--identities", sender)
    a = attrs["NotificationAttributes"][sender]
    assert a["ForwardingEnabled"] is True, a
    assert "BounceTopic" not in a and "ComplaintTopic" not in a, a
    notice = wait_until(lambda: [m for m in mailbox.received(CONTACT)
                                 if sender.encode() in m.data], 30,
                        what="the account contact's notice")
    assert b"forwarding" in notice[0].data.lower()
    assert inst.queue_show(mid)


def test_failing_endpoint_is_retried(inst, sns, receiver, mailbox):
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Delivery",))
    receiver.fail_next += [500, 302]
    failures_before = len(receiver.failures)
    mid = send_mail(inst, sim("success"), source=sender)
    payloads_for(receiver, mid, "Delivery", 1, ("delivery", "recipients"))
    assert len(receiver.failures) - failures_before == 2, receiver.failures


def test_unreachable_endpoint_is_kept_as_failed(inst, sns, receiver, mailbox):
    sender = new_sender(inst, mailbox)
    arn = subscribed_topic(inst, sns, receiver, sender, types=("Delivery",))
    # a second endpoint that confirmed and then went away
    dead = SnsReceiver()
    sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=dead.url)
    wait_until(lambda: any(p.type == "SubscriptionConfirmation" for p in dead.posts), 20,
               what="the dead endpoint's confirmation")
    wait_until(lambda: all(s["SubscriptionArn"].startswith(arn + ":") for s in
                           sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]), 20,
               what="both subscriptions confirmed")
    dead.stop()
    mid = send_mail(inst, sim("success"), source=sender)
    payloads_for(receiver, mid, "Delivery", 1, ("delivery", "recipients"))
    failed = wait_until(lambda: [l for l in inst.sesame("notifications", "list",
                                                        "--failed").stdout.splitlines()
                                 if dead.url in l], 30, what="the failed delivery")
    assert "attempts=3" in failed[0], failed


# ---- email subscriptions ----


def test_email_subscription_confirms_by_link(inst, sns, mailbox):
    arn = sns.create_topic(Name="mail-" + uuid.uuid4().hex[:8])["TopicArn"]
    endpoint = "subscriber-%s@%s" % (uuid.uuid4().hex[:6], FB_DOMAIN)
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=endpoint)
    msg = mailbox.wait_message(endpoint, timeout=30)
    text = parse_mail(msg.data).get_body(("plain",)).get_content()
    link = re.search(r"(https?://\S+Action=ConfirmSubscription\S+)", text).group(1)
    fetch(link)
    subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert subs[0]["SubscriptionArn"].startswith(arn + ":"), subs
    sender = new_sender(inst, mailbox)
    inst.client().set_identity_notification_topic(Identity=sender, NotificationType="Delivery",
                                                  SnsTopic=arn)
    mid = send_mail(inst, sim("success"), source=sender)

    def delivery_mail():
        for m in mailbox.received(endpoint):
            body = parse_mail(m.data).get_body(("plain",)).get_content()
            if mid in body:
                return body
        return None
    body = wait_until(delivery_mail, 30, what="the notification email")
    payload = json.loads(re.split(r"\r?\n--\r?\n", body)[0])
    assert payload["notificationType"] == "Delivery" and payload["mail"]["messageId"] == mid


def test_subscriber_gone_falls_back_to_forwarding(inst, sns, receiver, mailbox):
    """Forwarding off, and the topics' only subscriber stops answering: once its retries
    are spent the bounce is forwarded by email, forwarding is back on and the account is
    told, so no bounce is lost (spec 20 §5.2.6, DECISIONS 29)."""
    sender = new_sender(inst, mailbox)
    arn = sns.create_topic(Name="gone-" + uuid.uuid4().hex[:8])["TopicArn"]
    # two subscribers, both to go: one SNS message gives up at both, forwarded once
    dead, dead2 = SnsReceiver(), SnsReceiver()
    for r in (dead, dead2):
        sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=r.url)

    def both_confirmed():
        subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        return len(subs) == 2 and all(s["SubscriptionArn"].startswith(arn + ":") for s in subs)
    wait_until(both_confirmed, 20, what="the subscriptions confirmed")
    ses = inst.client()
    for t in ("Bounce", "Complaint"):
        ses.set_identity_notification_topic(Identity=sender, NotificationType=t, SnsTopic=arn)
    ses.set_identity_feedback_forwarding_enabled(Identity=sender, ForwardingEnabled=False)
    for r in (dead, dead2):
        wait_until(lambda: len(r.notifications()) >= 2, 20,
                   what="the two AmazonSnsSubscriptionSucceeded messages")
        r.stop()
    # two bounces while forwarding is off: each is forwarded once its notification is given
    # up on, the second too, though the first has turned forwarding back on meanwhile
    mids = [send_mail(inst, sim("bounce"), source=sender) for _ in range(2)]

    def forwarded(mid):
        return [m for m in mailbox.received(sender)
                if b"message/delivery-status" in m.data and mid.encode() in m.data]
    wait_until(lambda: all(forwarded(mid) for mid in mids), 40, what="both bounces forwarded")
    time.sleep(3)  # a second forward, by the other subscription's give-up, would be here
    assert [len(forwarded(mid)) for mid in mids] == [1, 1]
    a = inst.client().get_identity_notification_attributes(
        Identities=[sender])["NotificationAttributes"][sender]
    assert a["ForwardingEnabled"] is True and a["BounceTopic"] == arn, a
    notice = wait_until(lambda: [m for m in mailbox.received(CONTACT)
                                 if sender.encode() in m.data and (dead.url.encode() in m.data
                                                                   or dead2.url.encode() in m.data)],
                        30, what="the account contact's notice")
    assert notice


MULTI_DSN = """From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="M"

--M
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

{blocks}
--M
Content-Type: text/rfc822-headers

Message-ID: <{mid}@{mid_domain}>

--M--
"""


def dsn_block(rcpt, status):
    return "Final-Recipient: rfc822; %s\nAction: failed\nStatus: %s\n" % (rcpt, status)


def send_report(inst, rcpt, text):
    with feedback_smtp(inst) as s:
        s.sendmail("", [rcpt], text.replace("\n", "\r\n").encode())


def test_reports_cannot_be_aimed_at_other_recipients(inst, sns, receiver, mailbox,
                                                     module_servers, port, dns):
    """A DSN sent to one recipient's VERP address speaks for that recipient only; one that
    reaches us without a VERP address (postmaster@, mapped by Message-ID) is recorded and
    notified but lists nobody on the suppression list; and one DSN reporting a full
    mailbox and an unknown user makes one notification of each kind."""
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce",))
    rcv = module_servers.receiver(port=port)
    da, db = unique_domain("aim-a"), unique_domain("aim-b")
    route_mx(dns.zone, da, rcv.host)
    route_mx(dns.zone, db, rcv.host)
    a, b = "a@" + da, "b@" + db
    mid = send_mail(inst, [a, b], source=sender)
    verp_a = rcv.wait_message(a).mail_from
    rcv.wait_message(b)
    inst.wait_final(mid)
    before = len(inst.sesame("feedback", "list").stdout.splitlines())
    # a's server (or a) claims b is unknown: refused, kept aside
    send_report(inst, verp_a, MULTI_DSN.format(to=verp_a, blocks=dsn_block(b, "5.1.1"), mid=mid,
                                               mid_domain=MESSAGE_ID_DOMAIN))
    wait_until(lambda: len(inst.sesame("feedback", "list").stdout.splitlines()) > before, 10,
               what="the report kept aside")
    assert not events_of(inst.queue_show(mid), b, "Bounce")
    # to postmaster@, mapped by Message-ID: a full mailbox and an unknown user
    send_report(inst, "postmaster@" + BOUNCE_DOMAIN,
                MULTI_DSN.format(to="postmaster@" + BOUNCE_DOMAIN,
                                 blocks=dsn_block(a, "5.2.2") + "\n" + dsn_block(b, "5.1.1"),
                                 mid=mid, mid_domain=MESSAGE_ID_DOMAIN))
    bounces = payloads_for(receiver, mid, "Bounce", 2, ("bounce", "bouncedRecipients"))
    kinds = sorted((p["bounce"]["bounceType"], p["bounce"]["bounceSubType"],
                    p["bounce"]["bouncedRecipients"][0]["emailAddress"]) for p in bounces)
    assert kinds == [("Permanent", "NoEmail", b), ("Transient", "MailboxFull", a)], bounces
    assert bounces[0]["bounce"]["feedbackId"] != bounces[1]["bounce"]["feedbackId"]
    assert not inst.suppression_show(b), "only a report to b's own VERP address lists b"


def test_a_batch_address_speaks_for_its_own_domain_only(inst, mailbox, module_servers, port,
                                                          dns):
    """Recipients of one domain share a transaction and its VERP address (-b<first>-):
    a DSN sent to it may bounce them, listed, but not a recipient at another domain, who
    never saw that address."""
    sender = new_sender(inst, mailbox)
    rcv = module_servers.receiver(port=port)
    da, db = unique_domain("batch-a"), unique_domain("batch-b")
    route_mx(dns.zone, da, rcv.host)
    route_mx(dns.zone, db, rcv.host)
    a1, a2, victim = "a1@" + da, "a2@" + da, "victim@" + db
    mid = send_mail(inst, [a1, a2, victim], source=sender)
    batch = rcv.wait_message(a1).mail_from
    assert rcv.wait_message(a2).mail_from == batch and "-b" in batch.split("@")[0], batch
    assert rcv.wait_message(victim).mail_from != batch
    inst.wait_final(mid)
    before = len(inst.sesame("feedback", "list").stdout.splitlines())
    send_report(inst, batch, MULTI_DSN.format(to=batch, blocks=dsn_block(victim, "5.1.1"),
                                              mid=mid, mid_domain=MESSAGE_ID_DOMAIN))
    wait_until(lambda: len(inst.sesame("feedback", "list").stdout.splitlines()) > before, 10,
               what="the report kept aside")
    assert not events_of(inst.queue_show(mid), victim, "Bounce")
    assert not inst.suppression_show(victim)
    # the same address bouncing a2, of its own domain: recorded and listed
    send_report(inst, batch, MULTI_DSN.format(to=batch, blocks=dsn_block(a2, "5.1.1"),
                                              mid=mid, mid_domain=MESSAGE_ID_DOMAIN))
    wait_until(lambda: events_of(inst.queue_show(mid), a2, "Bounce"), 10, what="a2's bounce")
    assert inst.suppression_show(a2), "a bounce through its transaction's address lists a2"


def test_private_endpoints_are_refused_unless_allowed(instance):
    """notifications.allow_private_endpoints = false (the production default): a
    subscription on loopback is never reached; the POST fails and is kept as failed."""
    inst = instance(auto_verify=True, start=False,
                    extra="[notifications]\nallow_private_endpoints = false\n"
                          "max_attempts = 1\n")
    inst.start()
    sink = SnsReceiver()
    try:
        sns = inst.client(service="sns")
        arn = sns.create_topic(Name="private")["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=sink.url)
        failed = wait_until(lambda: inst.sesame("notifications", "list",
                                                "--failed").stdout.strip(), 20,
                            what="the refused POST")
        assert "private or loopback" in failed and sink.url in failed, failed
        assert not sink.posts
    finally:
        sink.stop()


def test_delivery_engine_outcomes_are_notified(inst, sns, receiver, mailbox, module_servers,
                                               port, dns):
    """Real deliveries and a real 5xx from a receiving server, not the simulator."""
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Bounce", "Delivery"))
    domain = unique_domain("engine")
    ok, gone = "ok@" + domain, "gone@" + domain
    rcv = module_servers.receiver(port=port, rcpt_replies={gone: "550 5.1.1 No such user here"})
    route_mx(dns.zone, domain, rcv.host)
    mid = send_mail(inst, [ok, gone], source=sender)
    d = payloads_for(receiver, mid, "Delivery", 1, ("delivery", "recipients"))[0]["delivery"]
    assert d["recipients"] == [ok] and d["smtpResponse"].startswith("250"), d
    b = payloads_for(receiver, mid, "Bounce", 1, ("bounce", "bouncedRecipients"))[0]["bounce"]
    assert (b["bounceType"], b["bounceSubType"]) == ("Permanent", "NoEmail"), b
    r = b["bouncedRecipients"][0]
    assert r["emailAddress"] == gone and r["status"] == "5.1.1" and r["action"] == "failed", r
    assert r["diagnosticCode"] == "smtp; 550 5.1.1 No such user here", r


def test_forwarding_goes_to_the_return_path(inst, mailbox):
    """SendEmail with ReturnPath: feedback goes there, not to Source (spec 20 §5.3.2)."""
    sender = new_sender(inst, mailbox)
    returns = new_sender(inst, mailbox)
    inst.client().send_email(Source=sender, ReturnPath=returns,
                             Destination={"ToAddresses": [sim("bounce")]},
                             Message={"Subject": {"Data": "rp"}, "Body": {"Text": {"Data": "x"}}})
    fwd = mailbox.wait_message(returns, timeout=30)
    assert b"message/delivery-status" in fwd.data
    assert not mailbox.received(sender)


def test_slow_and_untrusted_endpoints(inst, sns, receiver, mailbox):
    """An endpoint that answers after the timeout is retried; one whose certificate is not
    trusted is never sent the message and ends as failed."""
    sender = new_sender(inst, mailbox)
    subscribed_topic(inst, sns, receiver, sender, types=("Delivery",))
    receiver.hang_next = 1  # past notifications.timeout (3 s), then answered
    mid = send_mail(inst, sim("success"), source=sender)
    payloads_for(receiver, mid, "Delivery", 1, ("delivery", "recipients"))
    bad = SnsReceiver(cert=loopback_cert("untrusted"))
    try:
        arn = sns.create_topic(Name="untrusted-" + uuid.uuid4().hex[:6])["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="https", Endpoint=bad.url)
        failed = wait_until(lambda: [l for l in inst.sesame("notifications", "list",
                                                            "--failed").stdout.splitlines()
                                     if bad.url in l], 30, what="the untrusted endpoint failed")
        assert "attempts=3" in failed[0] and "SSL" in failed[0].upper(), failed
        assert not bad.posts
    finally:
        bad.stop()
