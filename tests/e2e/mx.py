"""Receiving SMTP servers for the delivery tests, listening on loopback addresses.

Receiver: a real SMTP server (aiosmtpd) with optional STARTTLS and AUTH that records
every transaction and can be told how to answer: a reply per recipient, a reply at the
end of DATA, "fail the first N attempts of this recipient, then accept", a delay per
message.

ScriptedServer: a raw socket server for faults. Each connection follows a Script: a
greeting (or garbage, or nothing), and for each command a reply made of parts sent one
by one: text lines, raw bytes, pauses, DROP (close the connection) and HANG (never answer,
keep the socket open). Unscripted commands get ordinary answers, so a script names only
what differs from a well-behaved server.

sesamed reaches MX hosts on delivery.mx_port: the tests give every server its own
127.x.y.z address on that port (conftest.loopback_address()).
"""
import asyncio
import functools
import select
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def wait_for(fn, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what() if callable(what) else what, got))
        time.sleep(interval)


@functools.lru_cache(maxsize=None)
def self_signed_cert(cn="mx.sesame.test"):
    """(cert path, key path) of a self-signed certificate made once per session with
    `openssl req`."""
    d = Path(tempfile.mkdtemp(prefix="sesame-mx-tls-"))
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=%s" % cn, "-addext",
                    "subjectAltName=DNS:%s" % cn, "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def server_tls_context():
    cert, key = self_signed_cert()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


# ---- Receiver ----


class Message:
    """One accepted (or, with rejected=True, refused at end of DATA) transaction."""

    def __init__(self, mail_from, rcpt_tos, data, tls, peer, login, rejected=None):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data
        self.tls = tls
        self.peer = peer
        self.login = login  # the AUTH user name, or None
        self.time = time.time()
        self.rejected = rejected  # the reply given at end of DATA when it was not 250

    def __repr__(self):
        return "Message(from=%r, to=%r, %d bytes, tls=%s%s)" % (
            self.mail_from, self.rcpt_tos, len(self.data), self.tls,
            ", rejected=%r" % self.rejected if self.rejected else "")


class _Handler:
    def __init__(self, receiver):
        self.r = receiver

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.r.lock:
            self.r.mail_froms.append(address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.r._rcpt_reply(address)
        with self.r.lock:
            self.r.rcpts.append((address, reply, time.time()))
        if not reply.startswith("2"):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server, session, envelope):
        if self.r.delay:
            await asyncio.sleep(self.r.delay)
        reply = self.r.data_reply
        if callable(reply):
            reply = reply(envelope)
        reply = reply or "250 2.0.0 Ok: queued"
        login = session.auth_data.login.decode() if isinstance(
            session.auth_data, LoginPassword) else None
        msg = Message(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or b"",
                      session.ssl is not None, session.peer, login,
                      rejected=None if reply.startswith("2") else reply)
        with self.r.lock:
            (self.r.messages if msg.rejected is None else self.r.rejected).append(msg)
        return reply


class _CountingSMTP(SMTP):
    def __init__(self, receiver, *args, **kwargs):
        self._receiver = receiver
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        if self.transport is None:  # not the STARTTLS upgrade of a connection
            with self._receiver.lock:
                self._receiver.connections += 1
        super().connection_made(transport)


class _Controller(Controller):
    def __init__(self, receiver, *args, **kwargs):
        self._receiver = receiver
        super().__init__(*args, **kwargs)

    def factory(self):
        return _CountingSMTP(self._receiver, self.handler, **self.SMTP_kwargs)


class Receiver:
    """A real SMTP server on host:port.

    tls: offer STARTTLS (self-signed certificate; not required).
    auth: {user: password} to offer AUTH PLAIN/LOGIN (after STARTTLS unless
      auth_require_tls=False); not required.
    rcpt_replies: {address: reply} for RCPT (addresses compared case-insensitively).
    fail_first: {address: (n, reply)}: the first n RCPTs of address get reply, then 250.
    data_reply: the reply at end of DATA (a string or a callable(envelope)); default 250.
    delay: seconds to wait before answering the end of DATA (a slow server).
    """

    def __init__(self, host="127.0.0.1", port=None, tls=False, auth=None, auth_require_tls=True,
                 rcpt_replies=None, fail_first=None, data_reply=None, delay=0.0,
                 hostname="mx.sesame.test"):
        self.host = host
        self.port = port or _free_port(host)
        self.tls = tls
        self.auth = dict(auth or {})
        self.lock = threading.Lock()
        self.rcpt_replies = {k.lower(): v for k, v in (rcpt_replies or {}).items()}
        self.fail_first = {k.lower(): [n, r] for k, (n, r) in (fail_first or {}).items()}
        self.data_reply = data_reply
        self.delay = delay
        self.messages = []
        self.rejected = []
        self.rcpts = []  # every RCPT: (address, reply, time)
        self.mail_froms = []
        self.connections = 0
        self.auth_attempts = []  # (mechanism, login, success)
        kwargs = {"server_hostname": hostname, "ready_timeout": 10}
        if tls:
            kwargs.update(tls_context=server_tls_context(), require_starttls=False)
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_required=False,
                          auth_require_tls=auth_require_tls)
        self.controller = _Controller(self, _Handler(self), hostname=host, port=self.port,
                                      **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = False
        login = None
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode()
            ok = self.auth.get(login) == auth_data.password.decode()
        with self.lock:
            self.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, auth_data=auth_data if ok else None)

    def _rcpt_reply(self, address):
        key = address.lower()
        with self.lock:
            rule = self.fail_first.get(key)
            if rule and rule[0] > 0:
                rule[0] -= 1
                return rule[1]
            return self.rcpt_replies.get(key, "250 2.1.5 Ok")

    def start(self):
        self.controller.start()
        with self.lock:
            self.connections = 0  # the controller's own readiness probe
        return self

    def stop(self):
        self.controller.stop()

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    # -- what arrived --

    def received(self, rcpt=None):
        """Accepted messages, those for rcpt only when given."""
        with self.lock:
            msgs = list(self.messages)
        if rcpt is None:
            return msgs
        return [m for m in msgs if rcpt.lower() in (a.lower() for a in m.rcpt_tos)]

    def rcpt_count(self, address):
        with self.lock:
            return sum(1 for a, _, _ in self.rcpts if a.lower() == address.lower())

    def wait_messages(self, n, timeout=20.0, rcpt=None):
        """Waits until at least n messages (for rcpt when given) were accepted; returns
        them all."""
        return wait_for(lambda: self.received(rcpt) if len(self.received(rcpt)) >= n else None,
                        timeout, lambda: "%d message(s)%s at %s (have %d: %r)" % (
                            n, " for " + rcpt if rcpt else "", self.address,
                            len(self.received(rcpt)), self.received(rcpt)[-3:]))

    def wait_message(self, rcpt, timeout=20.0):
        return self.wait_messages(1, timeout, rcpt)[0]


def _free_port(host):
    s = socket.socket()
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---- ScriptedServer ----


class _Marker:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


DROP = _Marker("DROP")  # close the connection here
HANG = _Marker("HANG")  # send nothing more; keep the socket open until the server stops


class Seq:
    """A reply that changes with each use, across connections: Seq(a, b, c) answers a the
    first time, b the second, and c from then on."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            i = min(self.count, len(self.replies) - 1)
            self.count += 1
            return self.replies[i]


GREETING = "220 scripted.sesame.test ESMTP ready"
EHLO = ["250-scripted.sesame.test Hello", "250-8BITMIME", "250 SIZE 52428800"]
DEFAULT_REPLIES = {
    "HELO": "250 scripted.sesame.test",
    "MAIL": "250 2.1.0 Ok",
    "RCPT": "250 2.1.5 Ok",
    "DATA": "354 End data with <CR><LF>.<CR><LF>",
    "DOT": "250 2.0.0 Ok: queued as SCRIPTED",
    "RSET": "250 2.0.0 Ok",
    "NOOP": "250 2.0.0 Ok",
    "QUIT": ["221 2.0.0 Bye", DROP],
}


class Script:
    """How one connection behaves. greeting and each reply are a part or a list of parts:
    str (one or more lines; CRLF is added at the end), bytes (sent as they are), a number
    (a pause in seconds), DROP, HANG, or a callable returning any of these (Seq). Keys of
    replies: EHLO, HELO, MAIL, RCPT, DATA (the reply to the DATA command), DOT (the reply
    after the message's final dot), RSET, NOOP, QUIT; anything else gets 502."""

    def __init__(self, greeting=GREETING, ehlo=None, **replies):
        self.greeting = greeting
        self.replies = dict(DEFAULT_REPLIES)
        self.replies["EHLO"] = list(EHLO) if ehlo is None else ehlo
        self.replies.update({k.upper(): v for k, v in replies.items()})


def drop_at(stage):
    """A Script that behaves until stage and then closes the connection: "connect" (before
    any greeting), "greeting" (after it), "EHLO", "MAIL", "RCPT", "DATA" (after the OK reply
    to that command, 354 for DATA), or "DOT" (after the final dot, before any reply)."""
    if stage == "connect":
        return Script(greeting=[DROP])
    if stage == "greeting":
        return Script(greeting=[GREETING, DROP])
    if stage == "DOT":
        return Script(DOT=[DROP])
    if stage == "EHLO":
        return Script(ehlo=list(EHLO) + [DROP])
    return Script(**{stage: [DEFAULT_REPLIES[stage], DROP]})


class Connection:
    """What one client connection did: the lines it sent (with their times), the message
    bodies it sent after DATA, bytes that arrived while a reply was still incomplete
    (early), and how the connection ended."""

    def __init__(self, index, peer):
        self.index = index
        self.peer = peer
        self.opened = time.time()
        self.closed = None
        self.lines = []  # (time, line without CRLF)
        self.bodies = []  # (body bytes, the reply given or None, time)
        self.early = []  # (after which reply part, bytes the client sent before the reply ended)
        self.how = None  # "dropped at X", "quit", "eof", "hung at X", "error: ..."
        self.last_reply = ""

    def commands(self):
        return [l.split(" ", 1)[0].split(":", 1)[0].upper() for _, l in self.lines if l]

    def __repr__(self):
        return "Connection(%d, lines=%r, how=%s)" % (self.index, [l for _, l in self.lines],
                                                      self.how)


class ScriptedServer:
    """A raw SMTP-ish server on host:port, one thread per connection. script: a Script
    for every connection, a list of Scripts (the i-th connection follows the i-th; the
    last repeats), or a callable(index) -> Script. The script may be replaced while the
    server runs (server.script = ...)."""

    def __init__(self, host="127.0.0.1", port=None, script=None, timeout=60.0):
        self.host = host
        self.port = port
        self.script = script if script is not None else Script()
        self.timeout = timeout
        self.lock = threading.Lock()
        self.conns = []
        self.stopping = threading.Event()
        self.sock = None
        self.threads = []
        self.open_sockets = set()

    # -- lifecycle --

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, self.port or 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        if self.sock:
            self.sock.close()
        with self.lock:
            socks = list(self.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=5)

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    # -- what happened --

    @property
    def connections(self):
        with self.lock:
            return len(self.conns)

    def connection(self, i):
        with self.lock:
            return self.conns[i]

    def open_connections(self):
        with self.lock:
            return [c for c in self.conns if c.closed is None]

    def bodies(self, acked=None):
        """Message bodies sent by clients: all, only those answered 2xx (acked=True), or
        only those not (acked=False)."""
        with self.lock:
            got = [b for c in self.conns for b in c.bodies]
        if acked is None:
            return got
        return [b for b in got if (b[1] is not None and str(b[1]).startswith("2")) == acked]

    def wait_connections(self, n, timeout=20.0):
        return wait_for(lambda: self.connections >= n, timeout,
                        lambda: "%d connection(s) to %s (have %d: %r)"
                        % (n, self.address, self.connections, self.conns))

    # -- the server --

    def _script_for(self, index):
        s = self.script
        if callable(s) and not isinstance(s, Script):
            return s(index)
        if isinstance(s, (list, tuple)):
            return s[min(index, len(s) - 1)]
        return s

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                client, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                conn = Connection(len(self.conns), peer)
                self.conns.append(conn)
                self.open_sockets.add(client)
            t = threading.Thread(target=self._serve, args=(client, conn), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, client, conn):
        client.settimeout(self.timeout)
        buf = bytearray()
        try:
            script = self._script_for(conn.index)
            if self._send(client, conn, script.greeting, "greeting") is not None:
                return
            while True:
                line = self._read_line(client, buf)
                if line is None:
                    conn.how = "eof"
                    return
                conn.lines.append((time.time(), line))
                verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
                reply = script.replies.get(verb, "502 5.5.2 Command not recognized")
                if verb == "DATA":
                    end = self._send(client, conn, reply, "DATA")
                    if end is not None:
                        return
                    if not conn.last_reply.startswith("354"):
                        continue
                    body = self._read_body(client, buf)
                    if body is None:
                        conn.how = "eof"
                        return
                    entry = [body, None, time.time()]
                    with self.lock:
                        conn.bodies.append(entry)
                    end = self._send(client, conn, script.replies["DOT"], "DOT", entry)
                    if end is not None:
                        return
                    continue
                if self._send(client, conn, reply, verb) is not None:
                    return
        except (OSError, ValueError) as e:
            conn.how = conn.how or "error: %s" % e
        finally:
            conn.closed = time.time()
            with self.lock:
                self.open_sockets.discard(client)
            try:
                client.close()
            except OSError:
                pass

    def _send(self, client, conn, reply, stage, body_entry=None):
        """Sends a reply's parts; returns None to go on, or a reason when the connection
        ended (dropped, hung)."""
        parts = reply if isinstance(reply, list) else [reply]
        text_sent = []
        for i, part in enumerate(parts):
            if callable(part) and not isinstance(part, _Marker):
                part = part()
                if isinstance(part, list):
                    r = self._send(client, conn, part, stage, body_entry)
                    if r is not None:
                        return r
                    text_sent.append(conn.last_reply)
                    continue
            if part is DROP:
                conn.how = "quit" if stage == "QUIT" else "dropped at %s" % stage
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return conn.how
            if part is HANG:
                conn.how = "hung at %s" % stage
                self._hold(client, conn)
                return conn.how
            if isinstance(part, (int, float)):
                time.sleep(part)
                # Did the client go on before the reply was complete?
                early = b""
                # (select first: a socket with a timeout waits in recv even with
                # MSG_DONTWAIT)
                if select.select([client], [], [], 0)[0]:
                    try:
                        early = client.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        pass
                if early and i + 1 < len(parts):
                    conn.early.append((stage, early))
                continue
            data = part if isinstance(part, bytes) else (part + "\r\n").encode()
            client.sendall(data)
            text_sent.append(data.decode("latin-1"))
        conn.last_reply = "".join(text_sent)
        if body_entry is not None:
            body_entry[1] = conn.last_reply.strip() or None
        if stage == "QUIT":
            conn.how = "quit"
        return None

    def _hold(self, client, conn):
        """Answers nothing until the client closes the connection or the server stops;
        whatever the client sends meanwhile is kept as lines."""
        pending = bytearray()
        while not self.stopping.is_set():
            r, _, _ = select.select([client], [], [], 0.1)
            if not r:
                continue
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                conn.how += ", closed by the client"
                return
            pending += data
            while b"\r\n" in pending:
                i = pending.index(b"\r\n")
                conn.lines.append((time.time(), bytes(pending[:i]).decode("latin-1")))
                del pending[:i + 2]

    def _read_line(self, client, buf):
        while b"\r\n" not in buf:
            if len(buf) > 65536:
                raise ValueError("line too long")
            data = self._recv(client)
            if not data:
                return None
            buf += data
        i = buf.index(b"\r\n")
        line = bytes(buf[:i]).decode("latin-1")
        del buf[:i + 2]
        return line

    def _read_body(self, client, buf):
        """The message after DATA, up to and without the final CRLF.CRLF, dots undone."""
        while True:
            if buf.startswith(b".\r\n"):
                del buf[:3]
                return b""
            i = buf.find(b"\r\n.\r\n")
            if i >= 0:
                body = bytes(buf[:i + 2])
                del buf[:i + 5]
                return b"\r\n".join(l[1:] if l.startswith(b".") else l
                                    for l in body.split(b"\r\n"))
            data = self._recv(client)
            if not data:
                return None
            buf += data

    def _recv(self, client):
        while True:
            try:
                return client.recv(65536)
            except socket.timeout:
                if self.stopping.is_set():
                    return b""
