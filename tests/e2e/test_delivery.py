"""Outbound delivery, end to end: mail accepted through the API or the SMTP interface is
delivered by sesamed to receiving SMTP servers (aiosmtpd, tests/e2e/mx.py) found through
real DNS (the dnslib zone); outcomes are read back with `sesame queue show`, the
suppression list with `sesame suppression`, and statistics with GetSendStatistics.

Every MX host is a server on its own loopback address on the instance's mx_port; every
test uses domain names of its own (the DNS server is shared by the session). Faults of
receiving servers are in test_delivery_faults.py.
"""
import concurrent.futures
import datetime
import email
import email.policy
import re
import smtplib
import ssl
import threading
import uuid

import pytest

from conftest import (
    SENDER, assert_bounce, assert_delivery, delivery_instance, events_of, loopback_address,
    parse_iso, pick_port, recipient_of, route_mx, send_mail, unique_domain, url_get,
    verp_sender, wait_until,
)

BOUNCE_DOMAIN = "bounces.sesame.test"
SIM_DOMAIN = "simulator.amazonses.com"
MESSAGE_ID_DOMAIN = "email.amazonses.com"

# Quick retries so that a retried recipient is retried within the test; the default
# max_age (12 h) so that nothing here gives up on its own.
CONFIG = """
[delivery]
bounce_domain = %s
retry_initial = 1s
retry_max = 2s
connect_timeout = 3s
command_timeout = 5s
final_timeout = 5s
""" % BOUNCE_DOMAIN


# `port` and `inst`, this module's MX port and instance (built from CONFIG), come from
# conftest.py.


def addr(local, domain):
    return "%s@%s" % (local, domain)


def body_of(data):
    """The body of delivered bytes, after the header section."""
    return data.split(b"\r\n\r\n", 1)[1]


def header_lines(data):
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def texts_of(data):
    """Every text part of a message, decoded (quoted-printable, base64)."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            out.append(part.get_content().replace("\r\n", "\n"))
    return "\n".join(out)


# ---- the normal path ----


def test_delivered_to_the_mx_host(inst, servers, port, dns):
    rcv = servers.receiver(port=port)
    domain = unique_domain("plain")
    mx_names = route_mx(dns.zone, domain, rcv.host)
    to = addr("alice", domain)
    mid = send_mail(inst, to, subject="first delivery", body="Plain body line.\n")

    msg = rcv.wait_message(to)
    assert msg.rcpt_tos == [to]
    # One recipient in the transaction: the VERP envelope sender of its index (0).
    assert verp_sender(mid, 0, BOUNCE_DOMAIN).match(msg.mail_from), msg.mail_from
    assert msg.tls is False  # no STARTTLS offered
    parsed = email.message_from_bytes(msg.data, policy=email.policy.default)
    assert parsed.get_all("Message-ID") == ["<%s@%s>" % (mid, MESSAGE_ID_DOMAIN)]
    assert parsed["Subject"] == "first delivery"
    assert parsed["From"] == SENDER and parsed["To"] == to
    assert b"DKIM-Signature" not in msg.data  # no DKIM configured for this domain
    assert texts_of(msg.data).rstrip("\n") == "Plain body line."
    assert b"\n" not in msg.data.replace(b"\r\n", b"")  # CRLF throughout

    shown = inst.wait_final(mid)
    assert shown["MessageId"] == mid
    assert shown["Source"] == SENDER
    assert shown["Region"] == "us-east-1"
    assert shown["Account"] == inst.account_id()
    parse_iso(shown["Created"])
    assert [r["Address"] for r in shown["Recipients"]] == [to]
    assert_delivery(shown, to, remote=(mx_names[0], rcv.host))
    rec = recipient_of(shown, to)
    assert rec["Attempts"] == 1
    assert rec["NextAttempt"] is None
    assert rcv.connections == 1
    assert mid not in [q["id"] for q in inst.queue_list()]


def test_starttls_offered_is_used(inst, servers, port, dns):
    rcv = servers.receiver(port=port, tls=True)
    domain = unique_domain("tls")
    route_mx(dns.zone, domain, rcv.host)
    to = addr("bob", domain)
    mid = send_mail(inst, to)
    msg = rcv.wait_message(to)
    assert msg.tls is True
    assert_delivery(inst.wait_final(mid), to)


def test_recipients_grouped_by_domain(inst, servers, port, dns):
    rcv_a = servers.receiver(port=port)
    rcv_b = servers.receiver(port=port)
    da, db = unique_domain("ga"), unique_domain("gb")
    route_mx(dns.zone, da, rcv_a.host)
    route_mx(dns.zone, db, rcv_b.host)
    to = [addr("a1", da), addr("a2", da)]
    cc = [addr("b1", db), addr("a3", da)]
    mid = send_mail(inst, to, cc=cc)
    # The envelope order: To, then Cc. b1@db is index 2 and alone in its transaction.
    got_a = rcv_a.wait_messages(1)
    got_b = rcv_b.wait_messages(1)
    shown = inst.wait_final(mid)
    for a in to + cc:
        assert_delivery(shown, a)
    assert len(rcv_a.received()) == 1, rcv_a.received()  # one transaction for the domain
    assert sorted(got_a[0].rcpt_tos) == sorted([addr("a1", da), addr("a2", da), addr("a3", da)])
    # Several recipients in one transaction: the transaction's VERP address (its first
    # recipient's index, marked), at the bounce domain, so that DSNs come back to sesamed.
    assert verp_sender(mid, 0, BOUNCE_DOMAIN, batch=True).match(got_a[0].mail_from), \
        got_a[0].mail_from
    assert len(rcv_b.received()) == 1
    assert got_b[0].rcpt_tos == [addr("b1", db)]
    assert verp_sender(mid, 2, BOUNCE_DOMAIN).match(got_b[0].mail_from), got_b[0].mail_from
    # Both got the same message.
    assert body_of(got_a[0].data) == body_of(got_b[0].data)


def test_mx_preference_order(inst, servers, port, dns):
    best = servers.receiver(port=port)
    worse = servers.receiver(port=port)
    domain = unique_domain("pref")
    # Listed worst first: sesamed must sort by preference, not take the answer's order.
    names = route_mx(dns.zone, domain, (20, worse.host), (5, best.host))
    to = addr("carol", domain)
    mid = send_mail(inst, to)
    best.wait_message(to)
    assert_delivery(inst.wait_final(mid), to, remote=(names[1], best.host))
    assert worse.received() == [] and worse.connections == 0


def test_fallback_when_first_mx_refuses_connections(inst, servers, port, dns):
    nobody = loopback_address()  # no server listens there: connection refused
    rcv = servers.receiver(port=port)
    domain = unique_domain("fallback")
    names = route_mx(dns.zone, domain, (10, nobody), (20, rcv.host))
    to = addr("dave", domain)
    mid = send_mail(inst, to)
    rcv.wait_message(to)
    shown = inst.wait_final(mid)
    assert_delivery(shown, to, remote=(names[1], rcv.host))


def test_implicit_mx_from_a_record(inst, servers, port, dns):
    rcv = servers.receiver(port=port)
    domain = unique_domain("implicit")
    dns.zone.set_a(domain, rcv.host)  # no MX: the domain itself is the host (RFC 5321 5.1)
    to = addr("erin", domain)
    mid = send_mail(inst, to)
    assert rcv.wait_message(to).rcpt_tos == [to]
    assert_delivery(inst.wait_final(mid), to, remote=(domain, rcv.host))
    assert dns.zone.asked(domain, "MX") >= 1


def test_null_mx_bounces_without_a_connection(inst, servers, port, dns):
    rcv = servers.receiver(port=port)
    domain = unique_domain("nullmx")
    dns.zone.set_mx(domain, [(0, ".")])
    dns.zone.set_a(domain, rcv.host)  # must not be used as an implicit MX
    to = addr("frank", domain)
    mid = send_mail(inst, to)
    shown = inst.wait_final(mid)
    assert_bounce(shown, to, "Permanent", "General")
    assert rcv.connections == 0


def test_nxdomain_bounces(inst, dns):
    domain = unique_domain("nxdomain")  # no record at all
    to = addr("grace", domain)
    mid = send_mail(inst, to)
    shown = inst.wait_final(mid)
    assert_bounce(shown, to, "Permanent", "General")
    assert dns.zone.asked(domain, "MX") >= 1


def test_rcpt_4xx_retried_then_delivered(inst, servers, port, dns):
    domain = unique_domain("later")
    to = addr("heidi", domain)
    rcv = servers.receiver(port=port, fail_first={to: (2, "451 4.3.0 Try again later")})
    route_mx(dns.zone, domain, rcv.host)
    mid = send_mail(inst, to)
    # Between attempts the recipient is queued, with the last reply and the next attempt.
    queued = wait_until(
        lambda: [q for q in inst.queue_list() if q["id"] == mid and q["attempts"] >= 1], 20,
        interval=0.05, what="the recipient listed as queued")
    assert queued[0]["address"] == to
    assert queued[0]["attempts"] >= 1
    assert "451" in queued[0]["last"]
    parse_iso(queued[0]["next"])
    rcv.wait_message(to, timeout=30)
    shown = inst.wait_final(mid)
    assert_delivery(shown, to)
    assert recipient_of(shown, to)["Attempts"] == 3
    assert rcv.rcpt_count(to) == 3
    assert len(rcv.received(to)) == 1


def test_rcpt_5xx_bounces_and_suppresses(inst, servers, port, dns):
    domain = unique_domain("hard")
    gone, blocked, fine = addr("gone", domain), addr("blocked", domain), addr("fine", domain)
    rcv = servers.receiver(port=port, rcpt_replies={
        gone: "550 5.1.1 No such user", blocked: "554 5.7.1 Relay access denied"})
    route_mx(dns.zone, domain, rcv.host)
    mid = send_mail(inst, [fine, gone, blocked])
    shown = inst.wait_final(mid)
    assert_delivery(shown, fine)
    assert rcv.received(fine)[0].rcpt_tos == [fine]
    e = assert_bounce(shown, gone, "Permanent", "NoEmail", status="5.1.1",
                      diagnostic="550 5.1.1 No such user")
    assert e["DiagnosticCode"] == "smtp; 550 5.1.1 No such user"
    assert e["ReportingMTA"] and e["RemoteMTA"]
    assert_bounce(shown, blocked, "Permanent", "General", status="5.7.1",
                  diagnostic="554 5.7.1 Relay access denied")
    for a in (gone, blocked):
        assert recipient_of(shown, a)["Attempts"] == 1  # a permanent failure is not retried
        assert rcv.rcpt_count(a) == 1

    # Both went on the region's suppression list.
    for a in (gone, blocked):
        entries = inst.suppression_show(a)
        assert [(x["address"], x["region"], x["reason"]) for x in entries] == [
            (a, "us-east-1", "BOUNCE")], entries
        created, expires = parse_iso(entries[0]["created"]), parse_iso(entries[0]["expires"])
        assert abs((expires - created) - datetime.timedelta(days=14)) < datetime.timedelta(
            minutes=1), entries
        now = datetime.datetime.now(datetime.timezone.utc)
        assert abs(now - created) < datetime.timedelta(minutes=5), entries
    listed = {x["address"] for x in inst.suppression_list()}
    assert {gone, blocked} <= listed and fine not in listed
    assert inst.suppression_show(fine) == []

    # A later send to a listed address is accepted and bounces as Suppressed, unattempted.
    conns = rcv.connections
    mid2 = send_mail(inst, gone)
    shown2 = inst.wait_final(mid2)
    assert_bounce(shown2, gone, "Permanent", "Suppressed")
    assert rcv.rcpt_count(gone) == 1 and rcv.connections == conns

    # Removed from the list, the address is tried again (and refused again).
    inst.sesame("suppression", "remove", gone)
    assert inst.suppression_show(gone) == []
    assert inst.sesame("suppression", "remove", gone, expect=None).returncode == 1
    assert gone not in {x["address"] for x in inst.suppression_list()}
    mid3 = send_mail(inst, gone)
    shown3 = inst.wait_final(mid3)
    assert_bounce(shown3, gone, "Permanent", "NoEmail")
    assert rcv.rcpt_count(gone) == 2


def test_suppression_cli_unknown_address(inst):
    nobody = addr("never-listed", unique_domain("nolist"))
    assert inst.sesame("suppression", "show", nobody, expect=None).returncode == 1
    res = inst.sesame("suppression", "remove", nobody, expect=None)
    assert res.returncode == 1 and (res.stderr or res.stdout).strip()


def test_queue_show_unknown_id(inst):
    res = inst.sesame("queue", "show", "0000018f00000000-%s-000000" % uuid.uuid4(),
                      expect=None)
    assert res.returncode == 1
    assert (res.stderr or res.stdout).strip()


def test_smtp_submission_is_delivered(inst, servers, port, dns):
    rcv = servers.receiver(port=port)
    domain = unique_domain("smtp")
    route_mx(dns.zone, domain, rcv.host)
    to = addr("ivan", domain)
    data = ("From: %s\r\nTo: %s\r\nSubject: via SMTP\r\nMessage-ID: <client@example.net>\r\n"
            "\r\n.leading dot\r\nsecond line\r\n" % (SENDER, to)).encode()
    with smtplib.SMTP("127.0.0.1", inst.port_base + 87, timeout=30) as c:
        c.starttls(context=ssl.create_default_context(cafile=str(inst.cert)))
        c.login(inst.endpoints["smtp_username"], inst.endpoints["smtp_password"])
        c.mail(SENDER)
        c.rcpt(to)
        code, reply = c.data(data)
    assert code == 250, reply
    mid = re.fullmatch(r"Ok (\S+)", reply.decode()).group(1)
    msg = rcv.wait_message(to)
    assert verp_sender(mid, 0, BOUNCE_DOMAIN).match(msg.mail_from), msg.mail_from
    assert b"Message-ID: <%s@%s>" % (mid.encode(), MESSAGE_ID_DOMAIN.encode()) in msg.data
    assert b"client@example.net" not in msg.data
    assert body_of(msg.data) == b".leading dot\r\nsecond line\r\n"
    assert_delivery(inst.wait_final(mid), to)


def test_verification_email_arrives(inst, servers, port, dns):
    rcv = servers.receiver(port=port)
    domain = unique_domain("verify")
    route_mx(dns.zone, domain, rcv.host)
    who = addr("new.sender", domain)
    inst.client().verify_email_identity(EmailAddress=who)
    msg = rcv.wait_message(who)
    assert msg.rcpt_tos == [who]
    link = inst.verification_link(who)
    assert link
    text = texts_of(msg.data)
    assert link in text, text
    assert re.search(r"https?://\S+/verify-email\?token=", text), text
    status, body = url_get(link, inst.cert)
    assert status == 200, body
    assert inst.status(who) == "Success"


# ---- the mailbox simulator ----


def test_simulator_outcomes(inst, dns):
    sim = {k: addr(k, SIM_DOMAIN) for k in ("success", "bounce", "suppressionlist", "ooto",
                                              "complaint")}
    labelled = addr("bounce+label1", SIM_DOMAIN)
    mid = send_mail(inst, list(sim.values()) + [labelled])
    upper = addr("SUCCESS", SIM_DOMAIN.upper())
    mid_upper = send_mail(inst, upper)
    shown = inst.wait_final(mid)
    for k in ("success", "ooto", "complaint"):
        assert_delivery(shown, sim[k])
    for a in (sim["bounce"], labelled):
        assert_bounce(shown, a, "Permanent", "General", status="5.1.1")
    assert_bounce(shown, sim["suppressionlist"], "Permanent", "Suppressed")
    assert_delivery(inst.wait_final(mid_upper), upper)
    # bounce@ is not listed; nothing touched the network.
    assert inst.suppression_show(sim["bounce"]) == []
    assert inst.suppression_show(labelled) == []
    for qtype in ("MX", "A", "AAAA"):
        assert dns.zone.asked(SIM_DOMAIN, qtype) == 0


def test_simulator_other_address_is_listed(inst):
    other = addr("nobody-%s" % uuid.uuid4().hex[:8], SIM_DOMAIN)
    first = inst.wait_final(send_mail(inst, other))
    e = assert_bounce(first, other, "Permanent")
    assert e["BounceSubType"] in ("General", "NoEmail"), e
    entries = inst.suppression_show(other)
    assert [(x["region"], x["reason"]) for x in entries] == [("us-east-1", "BOUNCE")], entries
    second = inst.wait_final(send_mail(inst, other))
    assert_bounce(second, other, "Permanent", "Suppressed")


def test_simulator_in_capture_mode(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\nmode = capture\n")
    rcv = servers.receiver(port=port)
    domain = unique_domain("captured")
    route_mx(dns.zone, domain, rcv.host)  # would be reachable, but capture sends nothing
    real = addr("kept", domain)
    success, bounce = addr("success", SIM_DOMAIN), addr("bounce", SIM_DOMAIN)
    mid = send_mail(inst, [real, success, bounce])
    shown = inst.wait_final(mid)
    rec = recipient_of(shown, real)
    assert rec["State"] == "captured", shown
    assert events_of(shown, real) == []
    assert recipient_of(shown, success)["State"] in ("delivered", "captured"), shown
    assert len(events_of(shown, success, "Delivery")) == 1, shown
    assert recipient_of(shown, bounce)["State"] in ("bounced", "captured"), shown
    bounces = events_of(shown, bounce, "Bounce")
    assert len(bounces) == 1 and bounces[0]["BounceType"] == "Permanent", shown
    assert rcv.connections == 0


# ---- the queue, by hand ----


def test_queue_list_retry_and_drop(instance, servers, dns):
    """With a long retry delay, queued recipients wait until `sesame queue retry` makes
    them due; `queue drop` ends them without a bounce."""
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\nretry_initial = 10m\nretry_max = 1h\n")
    domain = unique_domain("manual")
    one, two, three = addr("one", domain), addr("two", domain), addr("three", domain)
    rcv = servers.receiver(port=port, fail_first={
        one: (1, "450 4.2.0 Mailbox busy"), two: (1, "450 4.2.0 Mailbox busy"),
        three: (100, "450 4.2.0 Mailbox busy")})
    route_mx(dns.zone, domain, rcv.host)
    assert inst.queue_list() == []
    mids = {a: send_mail(inst, a) for a in (one, two, three)}

    def listed():
        got = {q["address"]: q for q in inst.queue_list()}
        return got if set(got) == {one, two, three} and all(
            q["attempts"] == 1 for q in got.values()) else None

    got = wait_until(listed, 20, what="three queued recipients after one attempt each")
    now = datetime.datetime.now(datetime.timezone.utc)
    for a, q in got.items():
        assert q["id"] == mids[a]
        assert "450" in q["last"] and "Mailbox busy" in q["last"], q
        assert parse_iso(q["next"]) > now + datetime.timedelta(minutes=5), q
        shown = inst.queue_show(mids[a])
        rec = recipient_of(shown, a)
        assert rec["State"] == "queued" and rec["Attempts"] == 1, shown
        assert parse_iso(rec["NextAttempt"]) > now + datetime.timedelta(minutes=5), shown
        assert "450" in rec["LastResult"], shown
        assert events_of(shown, a) == []

    # retry ID: that message only, now.
    inst.sesame("queue", "retry", mids[one])
    rcv.wait_message(one)
    assert_delivery(inst.wait_final(mids[one]), one)
    assert recipient_of(inst.queue_show(mids[one]), one)["Attempts"] == 2
    assert rcv.received(two) == []
    # retry --all: the rest.
    inst.sesame("queue", "retry", "--all")
    rcv.wait_message(two)
    assert_delivery(inst.wait_final(mids[two]), two)
    wait_until(lambda: rcv.rcpt_count(three) >= 2, 20, what="a second attempt at three")
    # drop: no bounce, no longer listed.
    inst.sesame("queue", "drop", mids[three])
    shown = inst.wait_final(mids[three], states=("dropped",))
    assert recipient_of(shown, three)["State"] == "dropped"
    assert events_of(shown, three, "Bounce") == [] and events_of(shown, three, "Delivery") == []
    wait_until(lambda: inst.queue_list() == [], 10, what="an empty queue")
    assert inst.suppression_show(three) == []


# ---- giving up ----


def test_retries_exhausted(instance, servers, dns):
    """max_age = 3s: SERVFAIL, a recipient that always gets 4xx, and a 552 at the end of
    DATA are retried while the message is young, then bounce."""
    port = pick_port()
    inst = delivery_instance(instance, port,
                             "[delivery]\nmax_age = 3s\nretry_initial = 1s\nretry_max = 1s\n")
    broken = unique_domain("servfail")
    dns.zone.set_servfail(broken)
    busy_domain, big_domain = unique_domain("busy"), unique_domain("big")
    busy, big = addr("busy", busy_domain), addr("big", big_domain)
    rcv_busy = servers.receiver(port=port, rcpt_replies={busy: "451 4.3.0 Temporary failure"})
    rcv_big = servers.receiver(port=port, data_reply="552 5.3.4 Message too big for system")
    route_mx(dns.zone, busy_domain, rcv_busy.host)
    route_mx(dns.zone, big_domain, rcv_big.host)
    lost = addr("lost", broken)
    mids = {a: send_mail(inst, a) for a in (lost, busy, big)}

    # While young, the SERVFAIL recipient stays queued.
    shown = wait_until(lambda: (lambda s: s if s and recipient_of(s, lost)["Attempts"] >= 1
                                else None)(inst.queue_show(mids[lost])),
                       10, what="a first attempt at the SERVFAIL domain")
    assert recipient_of(shown, lost)["State"] == "queued", shown

    shown = inst.wait_final(mids[lost], timeout=30)
    assert_bounce(shown, lost, "Transient", "General")
    assert recipient_of(shown, lost)["Attempts"] >= 2, shown
    assert dns.zone.asked(broken, "MX") >= 2  # asked again on a later attempt

    shown = inst.wait_final(mids[busy], timeout=30)
    assert_bounce(shown, busy, "Transient", "General", diagnostic="451")
    assert rcv_busy.rcpt_count(busy) >= 2
    assert rcv_busy.received() == []

    shown = inst.wait_final(mids[big], timeout=30)
    e = assert_bounce(shown, big, subtype="MessageTooLarge", diagnostic="552")
    assert e["BounceType"] in ("Permanent", "Transient"), e
    assert rcv_big.received() == [] and len(rcv_big.rejected) >= 1
    # Transient bounces do not list the address.
    assert inst.suppression_show(busy) == [] and inst.suppression_show(lost) == []


# ---- TLS policy ----


def test_tls_required_refuses_plaintext_mx(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\ntls = required\nretry_initial = 1s\n"
                                             "retry_max = 1s\n")
    rcv = servers.receiver(port=port)  # no STARTTLS
    domain = unique_domain("notls")
    route_mx(dns.zone, domain, rcv.host)
    to = addr("secret", domain)
    mid = send_mail(inst, to)
    wait_until(lambda: rcv.connections >= 2, 20, what="two attempts at the plaintext MX")
    shown = inst.queue_show(mid)
    rec = recipient_of(shown, to)
    assert rec["State"] == "queued", shown
    assert rec["Attempts"] >= 1 and rec["LastResult"], shown
    assert rcv.received() == [] and rcv.mail_froms == []
    inst.sesame("queue", "drop", mid)
    inst.wait_final(mid, states=("dropped",))


def test_tls_none_ignores_starttls(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\ntls = none\n")
    rcv = servers.receiver(port=port, tls=True)
    domain = unique_domain("plaintls")
    route_mx(dns.zone, domain, rcv.host)
    to = addr("clear", domain)
    mid = send_mail(inst, to)
    assert rcv.wait_message(to).tls is False
    assert_delivery(inst.wait_final(mid), to)


# ---- statistics ----


def send_stats(inst):
    points = inst.client().get_send_statistics()["SendDataPoints"]
    return (sum(p["DeliveryAttempts"] for p in points), sum(p["Bounces"] for p in points))


def test_send_statistics(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\nretry_initial = 1s\n")
    assert send_stats(inst) == (0, 0)
    # Simulator traffic first, final before anything else is sent: it counts in nothing.
    sim = [addr(k, SIM_DOMAIN) for k in ("success", "bounce", "suppressionlist")]
    inst.wait_final(send_mail(inst, sim))

    domain = unique_domain("stats")
    ok1, ok2, gone = addr("ok1", domain), addr("ok2", domain), addr("gone", domain)
    rcv = servers.receiver(port=port, rcpt_replies={gone: "550 5.1.1 No such user"})
    route_mx(dns.zone, domain, rcv.host)
    delivered = inst.wait_final(send_mail(inst, [ok1, ok2]))
    for a in (ok1, ok2):
        assert_delivery(delivered, a)
    bounced = inst.wait_final(send_mail(inst, gone))
    assert_bounce(bounced, gone, "Permanent", "NoEmail")
    # The default bounce domain is the server's hostname ([server] hostname = localhost).
    assert verp_sender(bounced["MessageId"], 0, "localhost").match(rcv.mail_froms[-1]), \
        rcv.mail_froms
    assert_bounce(inst.wait_final(send_mail(inst, gone)), gone, "Permanent", "Suppressed")

    # Two delivered recipients and two hard bounces (the Suppressed one included).
    seen = []
    wait_until(lambda: seen.append(send_stats(inst)) or seen[-1] == (4, 2), 30,
               what=lambda: "DeliveryAttempts, Bounces == (4, 2) (seen %s)" % sorted(set(seen)))
    assert inst.queue_list() == []
    assert inst.sesame("queue", "list").stdout == ""


# ---- relay mode ----


def test_relay_mode_ignores_mx(instance, servers, dns):
    relay = servers.receiver(host="127.0.0.1", port=pick_port())
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\nmode = relay\nrelay = %s\n"
                                             % relay.address)
    routed = unique_domain("relayed")
    elsewhere = servers.receiver(port=port)
    route_mx(dns.zone, routed, elsewhere.host)  # an MX that must not be used
    nx = unique_domain("relaynx")  # and a domain that does not exist
    targets = [addr("x", routed), addr("y", nx), addr("z", "example.org")]
    mid = send_mail(inst, targets)
    relay.wait_messages(1)
    shown = inst.wait_final(mid)
    for t in targets:
        assert_delivery(shown, t)
    got = sorted(a for m in relay.received() for a in m.rcpt_tos)
    assert got == sorted(targets)
    # a transaction per domain, so that its VERP address speaks for one domain's recipients
    assert all(len({a.split("@")[1] for a in m.rcpt_tos}) == 1 for m in relay.received())
    assert elsewhere.connections == 0
    for d in (routed, nx, "example.org"):
        assert dns.zone.asked(d, "MX") == 0


def test_relay_mode_authenticates(instance, servers):
    relay = servers.receiver(host="127.0.0.1", port=pick_port(), tls=True,
                             auth={"relay-user": "relay-secret"})
    inst = delivery_instance(instance, extra=(
        "[delivery]\nmode = relay\nrelay = %s\nrelay_tls = opportunistic\n"
        "relay_username = relay-user\nrelay_password = relay-secret\n" % relay.address))
    to = addr("someone", unique_domain("authrelay"))
    mid = send_mail(inst, to)
    msg = relay.wait_message(to)
    assert msg.login == "relay-user" and msg.tls is True
    assert ("PLAIN", "relay-user", True) in relay.auth_attempts or \
        ("LOGIN", "relay-user", True) in relay.auth_attempts, relay.auth_attempts
    assert_delivery(inst.wait_final(mid), to)


def test_relay_certificate_checked_before_the_password(instance, servers):
    """relay_tls_verify = true against a self-signed relay: the handshake fails, the
    password is never sent, and the message stays queued (the operator's to fix)."""
    relay = servers.receiver(host="127.0.0.1", port=pick_port(), tls=True,
                             auth={"relay-user": "relay-secret"})
    inst = delivery_instance(instance, extra=(
        "[delivery]\nmode = relay\nrelay = %s\nrelay_tls = required\n"
        "relay_tls_verify = true\nrelay_username = relay-user\n"
        "relay_password = relay-secret\nretry_initial = 1s\nretry_max = 1s\n" % relay.address))
    to = addr("someone", unique_domain("verifyrelay"))
    mid = send_mail(inst, to)
    wait_until(lambda: recipient_of(inst.queue_show(mid), to)["Attempts"] >= 2, 20,
               what="two failed attempts")
    shown = inst.queue_show(mid)
    assert recipient_of(shown, to)["State"] == "queued"
    assert not events_of(shown, to)
    assert relay.auth_attempts == [] and relay.received() == []


# ---- crash safety ----

CRASH_MESSAGES = 200


def test_kill_9_during_delivery_loses_nothing(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, "[delivery]\nmax_connections = 2\n"
                                             "retry_initial = 1s\nretry_max = 2s\n")
    rcv = servers.receiver(port=port, delay=0.05)  # a slow MX: about 20 messages/s/connection
    domain = unique_domain("crash")
    route_mx(dns.zone, domain, rcv.host)
    targets = [addr("r%03d" % i, domain) for i in range(CRASH_MESSAGES)]
    local = threading.local()

    def send(to):
        if not hasattr(local, "ses"):
            local.ses = inst.client()
        return send_mail(inst, to, subject="crash %s" % to, ses=local.ses)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        mids = list(pool.map(send, targets))
    assert len(set(mids)) == CRASH_MESSAGES
    rcv.wait_messages(10)
    at_kill = len(rcv.received())
    inst.kill()
    assert at_kill < CRASH_MESSAGES, "everything arrived before the kill: nothing was tested"

    inst.start()
    wait_until(lambda: inst.queue_list() == [], 60, interval=0.5,
               what="an empty queue after the restart")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        shown = list(pool.map(inst.queue_show, mids))
    for mid, to, s in zip(mids, targets, shown):
        assert s is not None, "accepted %s is gone after kill -9" % mid
        rec = recipient_of(s, to)
        assert rec["State"] in ("delivered", "bounced"), s
    assert all(recipient_of(s, to)["State"] == "delivered" for to, s in zip(targets, shown))
    received = [a for m in rcv.received() for a in m.rcpt_tos]
    assert set(received) == set(targets), sorted(set(targets) - set(received))[:10]
    duplicates = len(received) - len(set(received))
    assert duplicates <= 10, "%d messages delivered twice" % duplicates
