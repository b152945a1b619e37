"""The SMTP interface under stress and abuse (issue 4): timeouts, per-connection limits,
failed-AUTH slow-down and blocking, garbage and TLS garbage, clients that vanish, many
connections, kill -9 while clients send, and SIGTERM while a message is in flight."""
import asyncio
import os
import random
import signal
import socket
import threading
import time

import pytest

from sendlib import (
    SIM, account_set, capture_instance, kill9, message_count, restart_after_kill, stored,
    stored_ids, verify,
)
from smtpconn import (
    HOST, Conn, auth_plain, b64, send_message, session, smtplib_client, smtplib_send,
    starttls_port, tls_context, tls_port,
)

SENDER = "sender@example.com"
TIMEOUT = "421 %s Timeout waiting for client input" % HOST
RECONNECT = "421 %s Closing connection; please reconnect" % HOST
SHUTDOWN = "421 %s Service shutting down" % HOST
INVALID = "535 Authentication Credentials Invalid"
LIMITS = ("[server]\nthreads = 1\n[smtp]\ncommand_timeout = 2s\ndata_timeout = 1s\n"
          "max_connection_age = 4s\nmax_messages = 2\nmax_auth_failures = 2\n"
          "[auth]\nfailure_limit = 3\nfailure_window = 1h\n")


def sender_instance(factory, extra=""):
    inst = capture_instance(factory, production=True, extra=extra)
    verify(inst, SENDER)
    account_set(inst, "--quota", 1000000, "--rate", 100000)
    return inst


@pytest.fixture(scope="module")
def inst(module_instance):
    """Short timeouts and small per-connection limits, one I/O thread."""
    return sender_instance(module_instance, LIMITS)


def message(subject="robust"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nbody\r\n" % (SENDER, SIM, subject)).encode()


def read_reply_or_eof(c):
    try:
        return c.reply()[0]
    except (EOFError, ConnectionResetError):
        return None


# ---- timeouts and per-connection limits ----


def test_idle_connection_times_out(inst):
    c = Conn(inst)
    start = time.monotonic()
    assert c.reply() == [TIMEOUT]
    assert 1.5 < time.monotonic() - start < 6
    assert c.closed()


def test_data_timeout_stores_nothing(inst):
    before = message_count(inst)
    c = session(inst)
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
    assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    assert c.cmd("DATA").startswith("354")
    c.send("From: %s\r\nSubject: half\r\n\r\nthe first half" % SENDER)
    assert c.reply() == [TIMEOUT]
    assert c.closed()
    assert message_count(inst) == before


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_pause_in_data_longer_than_command_timeout(instance, implicit):
    """DATA waits smtp.data_timeout between reads, not command_timeout: holding a TLS
    session's replies while a read is processed must not leave a write timeout running."""
    inst = sender_instance(instance, "[smtp]\ncommand_timeout = 1s\ndata_timeout = 5s\n")
    c = session(inst, implicit=implicit)
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
    assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    assert c.cmd("DATA").startswith("354")
    c.send("From: %s\r\nTo: %s\r\nSubject: slow\r\n\r\nthe first half\r\n" % (SENDER, SIM))
    time.sleep(2.5)
    c.send("the second half\r\n.\r\n")
    assert c.reply()[0].startswith("250 Ok ")
    c.cmd("QUIT")


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "tls"])
def test_client_vanishing_mid_data_stores_nothing(inst, implicit):
    before = message_count(inst)
    c = session(inst, implicit=implicit)
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
    assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    assert c.cmd("DATA").startswith("354")
    c.send("From: %s\r\nSubject: vanish\r\n\r\nline\r\n.\r" % SENDER)  # not the end yet
    c.close()
    time.sleep(0.5)
    assert message_count(inst) == before
    assert "connection lost during DATA" in inst.log()


def test_max_messages_per_connection(inst):
    c = session(inst)
    for i in range(2):
        assert send_message(c, SENDER, [SIM], message("m%d" % i)).startswith("250 Ok ")
    # The second transaction was the last: the client is told to reconnect.
    assert c.reply() == [RECONNECT]
    assert c.closed()


@pytest.mark.parametrize("in_tx", [False, True], ids=["idle", "open-transaction"])
def test_max_connection_age(inst, in_tx):
    """Checked at every command, an open transaction's too (DATA excepted)."""
    c = session(inst)
    if in_tx:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
        assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    start = time.monotonic()
    got = None
    while time.monotonic() - start < 8 and got is None:
        try:
            c.send("NOOP\r\n")
        except OSError:
            pass
        line = read_reply_or_eof(c)
        if line != "250 Ok":
            got = line
        time.sleep(0.5)
    assert got == RECONNECT
    assert 3.5 < time.monotonic() - start < 7
    assert c.closed()


# ---- failed authentication ----


def test_auth_failures_slow_down_then_close_and_block_the_address(inst):
    password = inst.endpoints["smtp_password"]
    c = Conn(inst, implicit=True, source="127.0.0.2")
    c.cmd("EHLO client.example")
    t0 = time.monotonic()
    assert auth_plain(c, inst.key, "wrong") == INVALID
    t1 = time.monotonic()
    assert auth_plain(c, inst.key, "wrong again") == INVALID
    t2 = time.monotonic()
    assert t1 - t0 >= 0.24 and t2 - t1 >= 0.49, (t1 - t0, t2 - t1)
    # smtp.max_auth_failures = 2 on one connection.
    assert c.reply() == ["421 Too many authentication failures"]
    assert c.closed()
    # A third failure from the address reaches [auth] failure_limit = 3 ...
    c = Conn(inst, implicit=True, source="127.0.0.2")
    c.cmd("EHLO client.example")
    assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
    assert c.cmd(b64(inst.key)) == "334 UGFzc3dvcmQ6"
    assert c.cmd(b64("nope")) == INVALID
    # ... after which the address is refused before any check, even with good credentials.
    assert auth_plain(c, inst.key, password) == \
        "421 Too many authentication failures; try again later"
    assert c.closed()
    c = Conn(inst, implicit=True, source="127.0.0.2")
    c.cmd("EHLO client.example")
    assert auth_plain(c, inst.key, password) == \
        "421 Too many authentication failures; try again later"
    # The count is shared with the Query API.
    reply = inst.call("GetSendQuota", source="127.0.0.2")
    assert reply.find("Error/Code") == "Throttling", reply
    # Other addresses are not affected.
    c = session(inst, implicit=True, source="127.0.0.3")
    c.cmd("QUIT")
    assert "authentication failed for %s from 127.0.0.2" % inst.key in inst.log()


def test_limit_reached_while_auth_is_open(inst):
    """Sessions that started AUTH before the address reached the limit get no check."""
    waiting = []
    for _ in range(4):
        c = Conn(inst, implicit=True, source="127.0.0.4")
        c.cmd("EHLO client.example")
        assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
        assert c.cmd(b64(inst.key)) == "334 UGFzc3dvcmQ6"
        waiting.append(c)
    for c in waiting[:3]:  # [auth] failure_limit = 3
        assert c.cmd(b64("nope")) == INVALID
    assert waiting[3].cmd(b64(inst.endpoints["smtp_password"])) == \
        "421 Too many authentication failures; try again later"
    assert waiting[3].closed()
    for c in waiting[:3]:
        c.close()


def test_slow_tls_handshake_has_a_deadline(inst):
    """A handshake trickled byte by byte ends at command_timeout (2 s) all the same."""
    s = socket.create_connection(("127.0.0.1", tls_port(inst)), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00")  # a ClientHello record of 512 bytes, never sent
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 8 and not closed:
        try:
            s.sendall(b"\x01")
            s.settimeout(0.4)
            closed = s.recv(4096) == b""
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            closed = True
    s.close()
    assert closed and time.monotonic() - start < 4.5


# ---- bad input ----


def test_garbage_commands(inst):
    c = Conn(inst)
    rnd = random.Random(4)
    for _ in range(30):
        junk = bytes(rnd.choice(b"abcXYZ:<>@ \t\x01\x7f\x80\xff") for _ in range(rnd.randrange(1, 60)))
        c.send(junk + b"\r\n")
        line = c.reply()[0]
        assert line[:1] in "25" and line[3] in " -", (junk, line)
    assert c.cmd("NO\0OP") == "500 Unrecognized command"
    assert c.cmd("") == "500 Unrecognized command"
    assert c.cmd("\0") == "500 Unrecognized command"
    assert c.cmd("NOOP") == "250 Ok"
    c.cmd("QUIT")
    # Garbage inside each AUTH state.
    c = Conn(inst, implicit=True)
    c.cmd("EHLO client.example")
    for start in ("AUTH PLAIN", "AUTH LOGIN"):
        assert c.cmd(start).startswith("334 ")
        assert c.cmd("\x00\xff not base64") == "501 Cannot decode response"
    assert c.cmd("NOOP") == "250 Ok"
    c.cmd("QUIT")


@pytest.mark.parametrize("payload", [
    b"NOOP " + b"x" * 5000 + b"\r\n",
    b"y" * 9000,  # no line end at all
], ids=["long-line", "no-line-end"])
def test_overlong_lines_close_the_connection(inst, payload):
    c = Conn(inst)
    c.send(payload)
    assert c.reply() == ["500 Line too long"]
    assert c.closed()


def test_bare_lf_around_the_final_dot_is_refused(inst):
    before = message_count(inst)
    for ending in (b"body\n.\r\n", b"body\r\n.\n"):
        c = session(inst)
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
        assert c.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
        assert c.cmd("DATA").startswith("354")
        c.send(b"From: " + SENDER.encode() + b"\r\nSubject: smuggle\r\n\r\n" + ending +
               b"MAIL FROM:<" + SENDER.encode() + b">\r\n")
        assert c.reply() == ["554 Message rejected: bare LF around the end-of-data dot"]
        assert c.closed()
    assert message_count(inst) == before


@pytest.mark.parametrize("payload", [
    b"\x16\x03\x01\x02\x00" + os.urandom(600),
    b"EHLO plaintext.example\r\n",
    b"\x16\x03\x01\x00\x05hello" + b"\0" * 100,
], ids=["random-record", "plaintext", "short-record"])
def test_tls_garbage_on_the_implicit_port(inst, payload):
    s = socket.create_connection(("127.0.0.1", tls_port(inst)), timeout=5)
    s.sendall(payload)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    s.close()
    assert b"220" not in data
    c = session(inst, implicit=True)  # the server is fine
    c.cmd("QUIT")


def test_client_certificate_is_not_needed_but_allowed(inst):
    """stunnel in client mode may present a certificate (spec 10 §3.1)."""
    ctx = tls_context(inst)
    ctx.load_cert_chain(str(inst.cert), str(inst.dir / "tls" / "key.pem"))
    s = socket.create_connection(("127.0.0.1", tls_port(inst)), timeout=5)
    s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(b"EHLO stunnel.example\r\nQUIT\r\n")
    data = b""
    while b"221 Bye" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    assert b"250-AUTH PLAIN LOGIN" in data and b"221 Bye" in data
    s.close()


def test_many_concurrent_connections(inst):
    conns = [Conn(inst, timeout=20) for _ in range(300)]
    assert all(c.greeting == ["220 %s ESMTP SES" % HOST] for c in conns)
    for c in conns:
        c.send("QUIT\r\n")
    assert all(c.reply() == ["221 Bye"] for c in conns)
    for c in conns:
        c.close()


async def pipeline_unread(inst, n, starttls):
    """Sends n NOOPs and QUIT at once, reads nothing for a while, then everything.
    asyncio interleaves the writing and the reading on one thread, which a TLS socket
    needs."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    sock.connect(("127.0.0.1", starttls_port(inst)))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    await reader.readline()
    if starttls:
        writer.write(b"EHLO client.example\r\nSTARTTLS\r\n")
        while (await reader.readline()) != b"220 Ready to start TLS\r\n":
            pass
        await writer.start_tls(tls_context(inst), server_hostname="127.0.0.1")
    writer.write(b"NOOP\r\n" * n + b"QUIT\r\n")
    await asyncio.sleep(0.5)  # the server stops reading meanwhile
    data = bytearray()
    while not data.endswith(b"221 Bye\r\n"):
        chunk = await asyncio.wait_for(reader.read(1 << 20), 30)
        assert chunk, "closed after %d bytes" % len(data)
        data += chunk
    writer.close()
    return bytes(data)


@pytest.fixture(scope="module")
def roomy(module_instance):
    """The default timeouts and limits."""
    return sender_instance(module_instance)


@pytest.mark.parametrize("starttls", [False, True], ids=["plain", "starttls"])
def test_pipelining_without_reading_replies(roomy, starttls):
    """Replies pile up past what the server buffers: it stops reading until they are read,
    then goes on, every reply in order."""
    n = 150000 if starttls else 800000  # Python's TLS is slow; its socket buffers small
    data = asyncio.run(pipeline_unread(roomy, n, starttls))
    assert data == b"250 Ok\r\n" * n + b"221 Bye\r\n"


def test_max_connections_per_thread(instance):
    i = sender_instance(instance, "[server]\nthreads = 1\n[smtp]\nmax_connections = 3\n")
    held = [Conn(i) for _ in range(3)]
    extra = Conn(i, greet=False)
    assert extra.reply() == ["421 Too many connections"]
    assert extra.closed()
    held[0].cmd("QUIT")
    time.sleep(0.2)
    again = Conn(i)
    assert again.greeting == ["220 %s ESMTP SES" % HOST]
    for c in held[1:] + [again]:
        c.cmd("QUIT")


# ---- crashes and shutdown ----


def test_acknowledged_messages_survive_kill9(instance):
    i = sender_instance(instance)
    acked, lock, stop = [], threading.Lock(), threading.Event()

    def sender(n):
        try:
            s = smtplib_client(i, implicit=bool(n % 2))
            s.login(i.key, i.endpoints["smtp_password"])
            k = 0
            while not stop.is_set():
                code, text = smtplib_send(s, SENDER, ["k%d-%d@example.org" % (n, k)],
                                          message("kill %d %d" % (n, k)))
                assert code == 250, text
                with lock:
                    acked.append(text[len("Ok "):])
                k += 1
        except Exception:  # the kill ends every client somewhere
            pass

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    kill9(i)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with lock:
        ids = list(acked)
    assert len(ids) > 6, "too few messages were sent before the kill"
    assert set(ids) <= stored_ids(i)
    restart_after_kill(i)
    assert set(ids) <= stored_ids(i)
    assert stored(i, ids[0])["states"] == ["captured"]


def test_sigterm_answers_the_message_in_flight(instance):
    i = sender_instance(instance)
    idle = session(i)
    busy = session(i, implicit=True)
    assert busy.cmd("MAIL FROM:<%s>" % SENDER) == "250 Ok"
    assert busy.cmd("RCPT TO:<%s>" % SIM) == "250 Ok"
    assert busy.cmd("DATA").startswith("354")
    busy.send("From: %s\r\nSubject: in flight\r\n\r\nfirst half\r\n" % SENDER)
    time.sleep(0.2)
    i.proc.send_signal(signal.SIGTERM)
    assert idle.reply() == [SHUTDOWN]
    assert idle.closed()
    time.sleep(0.3)
    busy.send("second half\r\n.\r\n")
    reply = busy.reply()[0]
    assert reply.startswith("250 Ok "), reply
    assert busy.reply() == [SHUTDOWN]
    assert busy.closed()
    i.stop()  # exits 0, sanitizer-clean
    row = stored(i, reply[len("250 Ok "):])
    assert row is not None and b"second half" in bytes(row["data"])
