"""Outbound delivery against misbehaving receiving servers (mx.ScriptedServer: raw
sockets following a script): garbage, replies split across writes, replies that never
end, connections dropped at every stage, servers that never answer, temporary and
permanent refusals; and MX hosts on loopback addresses when those are not allowed.

A fault on the first connection must only cost a retry: the message is delivered on a
later connection, exactly once acknowledged, and sesamed keeps delivering other mail.
"""
import pytest

from conftest import (
    assert_bounce, assert_delivery, delivery_instance, pick_port, recipient_of, route_mx,
    send_mail, unique_domain, wait_until,
)
from mx import DROP, HANG, Script, Seq, drop_at

CONFIG = """
[delivery]
retry_initial = 1s
retry_max = 2s
connect_timeout = 2s
command_timeout = 2s
final_timeout = 2s
"""


# `port` and `inst`, this module's MX port and instance (built from CONFIG), come from
# conftest.py.


def scripted_domain(servers, port, dns, script, prefix="fault"):
    """A ScriptedServer following script, and a fresh domain whose MX is that server."""
    server = servers.scripted(port=port, script=script)
    domain = unique_domain(prefix)
    names = route_mx(dns.zone, domain, server.host)
    return server, domain, names


def assert_delivered_once(inst, server, mid, to, timeout=30):
    """The message ends delivered with one Delivery event, and exactly one copy was
    acknowledged by the server (with to as its only recipient)."""
    shown = inst.wait_final(mid, timeout=timeout)
    assert_delivery(shown, to)
    acked = server.bodies(acked=True)
    assert len(acked) == 1, (acked, server.conns)
    mid_header = ("Message-ID: <%s@email.amazonses.com>" % mid).encode()
    assert mid_header in acked[0][0], acked[0][0][:2000]
    return shown


# ---- garbage and broken replies ----


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\xfe\xff\r\n",
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    b"22O not-quite smtp\r\n",
], ids=["binary", "http", "bad-code"])
def test_garbage_greeting_is_retried(inst, servers, port, dns, garbage):
    server, domain, _ = scripted_domain(
        servers, port, dns, [Script(greeting=[garbage]), Script()], "garbage")
    to = "garbage@" + domain
    mid = send_mail(inst, to)
    assert_delivered_once(inst, server, mid, to)
    assert server.connections >= 2
    first = server.connection(0)
    # Nothing of a mail transaction was sent after a greeting that was not 220.
    assert not {"MAIL", "RCPT", "DATA"} & set(first.commands()), first


def test_multiline_ehlo_in_two_writes(inst, servers, port, dns):
    ehlo = ["250-scripted.sesame.test Hello\r\n250-8BITMIME", 0.8, "250 SIZE 52428800"]
    server, domain, _ = scripted_domain(servers, port, dns, Script(ehlo=ehlo), "split")
    to = "split@" + domain
    mid = send_mail(inst, to)
    shown = assert_delivered_once(inst, server, mid, to)
    assert server.connections == 1
    assert recipient_of(shown, to)["Attempts"] == 1
    conn = server.connection(0)
    # The client waited for the last line of the EHLO reply before it went on.
    assert conn.early == [], conn.early
    assert conn.commands()[:2] == ["EHLO", "MAIL"], conn


@pytest.mark.parametrize("stage", ["EHLO", "RCPT"])
def test_reply_without_final_line_then_close(inst, servers, port, dns, stage):
    if stage == "EHLO":
        broken = Script(ehlo=[b"250-scripted.sesame.test Hello\r\n250-8BITMIME\r\n", DROP])
    else:
        broken = Script(RCPT=[b"250-2.1.5 Ok\r\n", DROP])
    server, domain, _ = scripted_domain(servers, port, dns, [broken, Script()], "nofinal")
    to = "nofinal@" + domain
    mid = send_mail(inst, to)
    assert_delivered_once(inst, server, mid, to)
    assert server.connections >= 2
    first = server.connection(0)
    if stage == "EHLO":
        assert "MAIL" not in first.commands(), first
    assert "DATA" not in first.commands() and first.bodies == [], first


# ---- dropped connections ----


@pytest.mark.parametrize("stage", ["connect", "greeting", "EHLO", "MAIL", "RCPT", "DATA", "DOT"])
def test_connection_dropped(inst, servers, port, dns, stage):
    server, domain, _ = scripted_domain(servers, port, dns, [drop_at(stage), Script()], "drop")
    to = "dropped@" + domain
    mid = send_mail(inst, to)
    shown = assert_delivered_once(inst, server, mid, to)
    assert server.connections >= 2
    assert server.connection(0).how.startswith("dropped"), server.connection(0)
    assert recipient_of(shown, to)["Attempts"] >= 2, shown
    if stage == "DOT":
        # The whole message was sent before the drop; it is sent again (at least once).
        unacked = server.bodies(acked=False)
        assert len(unacked) == 1 and unacked[0][0] == server.bodies(acked=True)[0][0]


# ---- a server that never answers ----


def test_never_answering_does_not_block_other_mail(inst, servers, port, dns):
    hang, hung_domain, _ = scripted_domain(servers, port, dns, Script(MAIL=[HANG]), "hang")
    rcv = servers.receiver(port=port)
    ok_domain = unique_domain("meanwhile")
    route_mx(dns.zone, ok_domain, rcv.host)
    stuck = "stuck@" + hung_domain
    mid = send_mail(inst, stuck)

    def hanging_now():
        return [c for c in hang.open_connections() if (c.how or "").startswith("hung")]

    # While a connection to the silent server waits for its reply, other mail arrives.
    overlapped = False
    for i in range(3):
        wait_until(hanging_now, 20, interval=0.02, what="a connection waiting on MAIL")
        to = "meanwhile%d@%s" % (i, ok_domain)
        send_mail(inst, to)
        arrived = rcv.wait_message(to).time
        if any(c.opened <= arrived and (c.closed is None or c.closed > arrived)
               and (c.how or "").startswith("hung") for c in hang.conns):
            overlapped = True
            break
    assert overlapped, ("no message arrived while the other server hung", hang.conns)

    # command_timeout = 2s: sesamed gives up on the silent server and tries again later.
    wait_until(lambda: "closed by the client" in (hang.connection(0).how or ""), 15,
               what=lambda: "sesamed to close the hung connection (%r)" % hang.connection(0))
    hang.wait_connections(2)
    shown = inst.queue_show(mid)
    rec = recipient_of(shown, stuck)
    assert rec["State"] == "queued" and rec["Attempts"] >= 1 and rec["LastResult"], shown
    assert hang.bodies() == []
    # The server recovers: the message goes out.
    hang.script = Script()
    assert_delivered_once(inst, hang, mid, stuck)


# ---- refusals ----


def test_rcpt_4xx_then_ok(inst, servers, port, dns):
    server, domain, _ = scripted_domain(
        servers, port, dns,
        Script(RCPT=Seq("450 4.2.1 Mailbox temporarily unavailable",
                        "450 4.2.1 Mailbox temporarily unavailable", "250 2.1.5 Ok")),
        "rcpt4xx")
    to = "later@" + domain
    mid = send_mail(inst, to)
    queued = wait_until(
        lambda: [q for q in inst.queue_list() if q["id"] == mid and q["attempts"] >= 1], 20,
        interval=0.05, what="the recipient queued after a 450")
    assert queued[0]["address"] == to and "450" in queued[0]["last"], queued
    shown = assert_delivered_once(inst, server, mid, to)
    assert recipient_of(shown, to)["Attempts"] == 3
    # No DATA was sent while the only recipient was refused (a connection may carry
    # several attempts: count over all of them).
    assert sum(c.commands().count("DATA") for c in server.conns) == 1, server.conns
    assert sum(c.commands().count("RCPT") for c in server.conns) == 3, server.conns


def test_full_mailbox_is_a_soft_bounce_retried(inst, servers, port, dns):
    """552 5.2.2 (mailbox full) is a soft bounce (SES retries those): retried, delivered
    once the mailbox has room, and no Transient bounce before retries are over."""
    server, domain, _ = scripted_domain(
        servers, port, dns,
        Script(RCPT=Seq("552 5.2.2 Mailbox full", "250 2.1.5 Ok")), "mailboxfull")
    to = "full@" + domain
    mid = send_mail(inst, to)
    queued = wait_until(
        lambda: [q for q in inst.queue_list() if q["id"] == mid and q["attempts"] >= 1], 20,
        interval=0.05, what="the recipient queued after a 552 5.2.2")
    assert "552" in queued[0]["last"], queued
    shown = assert_delivered_once(inst, server, mid, to)
    assert recipient_of(shown, to)["Attempts"] == 2
    assert not [e for e in shown["Events"] if e["Type"] == "Bounce"], shown


def test_5xx_after_data_bounces(inst, servers, port, dns):
    server, domain, _ = scripted_domain(
        servers, port, dns, Script(DOT="554 5.0.0 Transaction failed"), "data5xx")
    to = "refused@" + domain
    mid = send_mail(inst, to)
    shown = inst.wait_final(mid)
    assert_bounce(shown, to, "Permanent", "General", status="5.0.0",
                  diagnostic="554 5.0.0 Transaction failed")
    assert recipient_of(shown, to)["Attempts"] == 1
    assert server.connections == 1 and len(server.bodies(acked=False)) == 1


def test_4xx_greeting_falls_back_to_next_mx(inst, servers, port, dns):
    busy = servers.scripted(port=port, script=Script(
        greeting=["421 4.3.2 Service not available, closing channel", DROP]))
    rcv = servers.receiver(port=port)
    domain = unique_domain("busygreet")
    names = route_mx(dns.zone, domain, (10, busy.host), (20, rcv.host))
    to = "fallback@" + domain
    mid = send_mail(inst, to)
    rcv.wait_message(to)
    shown = inst.wait_final(mid)
    assert_delivery(shown, to, remote=(names[1], rcv.host))
    assert busy.connections >= 1
    assert busy.bodies() == []


def test_multiline_greeting_and_replies(inst, servers, port, dns):
    """Multi-line replies everywhere (greeting, RCPT, final): read to their last line."""
    server, domain, _ = scripted_domain(servers, port, dns, Script(
        greeting=["220-scripted.sesame.test ESMTP", 0.3, "220 ready"],
        RCPT="250-2.1.5 Recipient\r\n250 2.1.5 Ok",
        DOT=["250-2.0.0 Queued", 0.3, "250 2.0.0 Ok: queued as MULTI"]), "multiline")
    to = "multi@" + domain
    mid = send_mail(inst, to)
    shown = assert_delivered_once(inst, server, mid, to)
    assert server.connections == 1
    assert server.connection(0).early == []
    assert "queued as MULTI" in shown["Events"][0]["SmtpResponse"], shown


# ---- loopback MX hosts refused ----


def test_loopback_mx_refused_when_not_allowed(instance, servers, dns):
    port = pick_port()
    inst = delivery_instance(instance, port, CONFIG + "allow_loopback_mx = false\n")
    rcv = servers.receiver(host="127.0.0.1", port=port)
    domain = unique_domain("loopback")
    route_mx(dns.zone, domain, "127.0.0.1")
    to = "local@" + domain
    mid = send_mail(inst, to)
    shown = inst.wait_final(mid)
    assert_bounce(shown, to, "Permanent")
    assert rcv.connections == 0
    # An implicit MX on a loopback address is refused the same way.
    implicit = unique_domain("loopback-a")
    dns.zone.set_a(implicit, "127.0.0.1")
    to2 = "local@" + implicit
    shown2 = inst.wait_final(send_mail(inst, to2))
    assert_bounce(shown2, to2, "Permanent")
    assert rcv.connections == 0
