"""Helpers for the SMTP interface tests (test_smtp*.py): a line-level client that sends
exactly the bytes it is given and reads replies as the server wrote them, and smtplib
connections over either listener kind."""
import base64
import smtplib
import socket
import ssl

from conftest import smtp_password_v2, smtp_password_v4  # noqa: F401 (re-exported)

HOST = "localhost"  # [server] hostname of `sesame init`


def starttls_port(inst):
    return inst.port_base + 87


def tls_port(inst):
    return inst.port_base + 65


def tls_context(inst):
    return ssl.create_default_context(cafile=str(inst.cert))


def b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


class Conn:
    """One SMTP connection driven line by line. implicit: the TLS port; else the STARTTLS
    port in plaintext (starttls() upgrades it)."""

    def __init__(self, inst, implicit=False, source=None, timeout=10, greet=True, rcvbuf=None):
        self.inst = inst
        port = tls_port(inst) if implicit else starttls_port(inst)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if rcvbuf:  # a client slow to read: a small window fills at once
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source or "127.0.0.1", 0))
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        if implicit:
            self.sock = tls_context(inst).wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; unread: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """The lines of one reply (a multi-line reply ends at 'ddd ')."""
        lines = [self.line()]
        while len(lines[-1]) >= 4 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def cmd(self, text):
        """Sends one command; returns its reply's only line (or the list when multi-line)."""
        self.send(text + "\r\n")
        lines = self.reply()
        return lines[0] if len(lines) == 1 else lines

    def starttls(self):
        assert self.cmd("STARTTLS") == "220 Ready to start TLS"
        assert self.buf == b""
        self.sock = tls_context(self.inst).wrap_socket(self.sock, server_hostname="127.0.0.1")

    def closed(self, timeout=5):
        """True when the server closes the connection (EOF) with nothing more to read."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return self.buf == b""
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def tls_conn(inst, implicit=False, source=None, timeout=10):
    """A connection under TLS that has said EHLO."""
    c = Conn(inst, implicit=implicit, source=source, timeout=timeout)
    if not implicit:
        c.cmd("EHLO client.example")
        c.starttls()
    c.cmd("EHLO client.example")
    return c


def auth_plain(c, user, password):
    return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, password)))


def session(inst, implicit=False, user=None, password=None, source=None, timeout=10):
    """A connection under TLS, authenticated (235 checked)."""
    c = tls_conn(inst, implicit=implicit, source=source, timeout=timeout)
    assert auth_plain(c, user or inst.key, password or inst.endpoints["smtp_password"]) == \
        "235 Authentication successful"
    return c


def send_message(c, sender, rcpts, data):
    """MAIL, RCPT, DATA and the (dot-stuffed, CRLF-terminated) data; returns the last reply."""
    assert c.cmd("MAIL FROM:<%s>" % sender) == "250 Ok"
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r) == "250 Ok"
    assert c.cmd("DATA") == "354 End data with <CR><LF>.<CR><LF>"
    return c.cmd(data.decode() + ".") if isinstance(data, bytes) else c.cmd(data + ".")


def stuff(data):
    """Dot-stuffs CRLF message bytes and makes sure they end in CRLF (RFC 5321 §4.5.2)."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines)


def smtplib_client(inst, implicit=False, timeout=20):
    """A smtplib client under TLS, not yet authenticated."""
    if implicit:
        s = smtplib.SMTP_SSL("127.0.0.1", tls_port(inst), timeout=timeout,
                             context=tls_context(inst))
    else:
        s = smtplib.SMTP("127.0.0.1", starttls_port(inst), timeout=timeout)
        s.starttls(context=tls_context(inst))
    s.ehlo("client.example")
    return s


def smtplib_send(s, sender, rcpts, data):
    """(code, text) of the data reply; MAIL and RCPT must be accepted."""
    code, text = s.mail(sender)
    assert code == 250, (code, text)
    for r in rcpts:
        code, text = s.rcpt(r)
        assert code == 250, (code, text)
    code, text = s.data(data)
    return code, text.decode()
