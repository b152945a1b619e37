"""End-to-end fixtures: a real sesamed started from a fresh `sesame init` directory, a real
DNS server (dnslib) whose zone the tests change, and helpers that drive the instance with
real clients (the AWS CLI v2, boto3, hand-built HTTP requests signed with botocore).

Run with Debian's python:  SESAME_BUILD=/abs/build /usr/bin/python3 -m pytest -q tests/e2e
"""
import base64
import configparser
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from dnslib import A, AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, DNSError, DNSLabel
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

BUILD = Path(os.environ.get("SESAME_BUILD", "/work/main/build")).resolve()
SESAMED = BUILD / "sesamed"
SESAME = BUILD / "sesame"
AWS = "/usr/bin/aws"
NS = "http://ses.amazonaws.com/doc/2010-12-01/"
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "LeakSanitizer",
    "ERROR: UndefinedBehaviorSanitizer",
)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
START_TIMEOUT = 30.0  # the ASan build starts slower
STOP_TIMEOUT = 30.0


def q(tag):
    """An element name in the SES namespace, for ElementTree lookups."""
    return "{%s}%s" % (NS, tag)


def assert_sanitizer_clean(text, what):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, "%s reported %r:\n%s" % (what, marker, text[-6000:])


def base_env():
    """The environment for every child: no AWS settings leak in from the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


# ---- ports ----

_SLOT = 101  # ports per block: an instance uses base..base+100
_held = set()  # blocks in use: live instances' (released when their factory closes), single ports'
_next_block = 0
_single_ports = []  # what is left of the block pick_port() hands out one by one
_port_lock = threading.Lock()


def _tcp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _udp_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _port_range():
    """SESAME_E2E_PORTS=LOW-HIGH: this run's ports. make e2e gives the release and the
    ASan runs, which go side by side, ranges of their own below the ephemeral ports
    (32768 and up), so neither can pick what the other, or an outgoing connection, holds."""
    low, high = os.environ.get("SESAME_E2E_PORTS", "10000-32000").split("-")
    return int(low), int(high)


def _take_block():
    """The next block of _SLOT ports, in turn, that is not held and has every port free."""
    global _next_block
    low, high = _port_range()
    blocks = [low + i * _SLOT for i in range((high - low) // _SLOT)]
    for k in range(len(blocks)):
        base = blocks[(_next_block + k) % len(blocks)]
        if base not in _held and all(_tcp_free(p) for p in range(base, base + _SLOT)):
            _next_block = (_next_block + k + 1) % len(blocks)
            _held.add(base)
            return base
    raise RuntimeError("no free block of %d ports in %d-%d" % (_SLOT, low, high))


def pick_port_base(span=100):
    """A base N with N..N+span free on 127.0.0.1 (TCP), held until release_port_base(N)."""
    assert span < _SLOT
    with _port_lock:
        return _take_block()


def release_port_base(base):
    with _port_lock:
        _held.discard(base)


def pick_port():
    """One port free for both UDP and TCP (the DNS server listens on both)."""
    with _port_lock:
        for _ in range(4 * _SLOT):
            if not _single_ports:
                base = _take_block()
                _single_ports.extend(range(base, base + _SLOT))
            n = _single_ports.pop(0)
            if _tcp_free(n) and _udp_free(n):
                return n
    raise RuntimeError("no free port found")


# ---- DNS ----


class Zone(BaseResolver):
    """A zone the tests change while sesamed polls it: TXT, MX, A and AAAA records by
    name, names that answer SERVFAIL, names that get no answer at all, and a log of the
    questions asked. A name that has records of other types only answers NOERROR with no
    answer (NODATA); a name without any record answers NXDOMAIN. A UDP answer over 512
    bytes is truncated (TC, question only), as a server without EDNS does, so the
    resolver must ask again over TCP.

    The server is shared by the whole session: every test uses names of its own
    (unique_domain())."""

    def __init__(self):
        self.lock = threading.Lock()
        self.txt = {}
        self.mx = {}  # name -> [(preference, exchange)]; exchange "." is a null MX
        self.a = {}  # name -> [ipv4]
        self.aaaa = {}  # name -> [ipv6]
        self.cname = {}  # name -> target; other types asked at name follow it
        self.servfail = set()
        self.silent = set()
        self.queries = []

    @staticmethod
    def _key(name):
        return str(name).rstrip(".").lower()

    def set_txt(self, name, *values):
        """TXT records of name; a value given as a list is one record of several strings."""
        with self.lock:
            self.txt[self._key(name)] = list(values)

    def remove(self, name):
        with self.lock:
            self.txt.pop(self._key(name), None)

    def set_mx(self, domain, records):
        """MX records of domain: [(preference, exchange), ...]; [(0, ".")] is a null MX
        (RFC 7505); [] leaves the name existing without MX records."""
        with self.lock:
            self.mx[self._key(domain)] = [(int(p), str(h)) for p, h in records]

    def set_cname(self, name, target):
        with self.lock:
            self.cname[self._key(name)] = self._key(target)

    def set_a(self, name, *addresses):
        with self.lock:
            self.a[self._key(name)] = list(addresses)

    def set_aaaa(self, name, *addresses):
        with self.lock:
            self.aaaa[self._key(name)] = list(addresses)

    def clear(self, name):
        """Forgets every record of name (it becomes NXDOMAIN) and its SERVFAIL/silence."""
        key = self._key(name)
        with self.lock:
            for table in (self.txt, self.mx, self.a, self.aaaa, self.cname):
                table.pop(key, None)
            self.servfail.discard(key)
            self.silent.discard(key)

    def set_servfail(self, name, on=True):
        with self.lock:
            if on:
                self.servfail.add(self._key(name))
            else:
                self.servfail.discard(self._key(name))

    def set_silent(self, name, on=True):
        with self.lock:
            if on:
                self.silent.add(self._key(name))
            else:
                self.silent.discard(self._key(name))

    def asked(self, name, qtype="TXT", protocol=None):
        """How many times name was asked (over protocol "udp" or "tcp", or either)."""
        with self.lock:
            return sum(1 for n, t, p in self.queries
                       if n == self._key(name) and t == qtype and protocol in (None, p))

    def _records(self, name):
        """(exists, txt, mx, a, aaaa) of name; the caller holds the lock."""
        values = list(self.txt.get(name, ()))
        exists = bool(values) or any(name in t for t in (self.mx, self.a, self.aaaa, self.cname))
        return (exists, values, list(self.mx.get(name, ())), list(self.a.get(name, ())),
                list(self.aaaa.get(name, ())))

    def _add_answers(self, reply, owner, qtype, records):
        _, values, mx, a, aaaa = records
        if qtype in (QTYPE.TXT, QTYPE.ANY):
            for v in values:
                # one record; a str over 255 bytes is split into strings, as zone files must
                parts = v if isinstance(v, list) else [v[i:i + 255] for i in range(0, len(v), 255)]
                rdata = TXT([x.encode() for x in parts or [""]])
                reply.add_answer(RR(owner, QTYPE.TXT, rdata=rdata, ttl=0))
        if qtype in (QTYPE.MX, QTYPE.ANY):
            for pref, host in mx:
                reply.add_answer(RR(owner, QTYPE.MX, rdata=MX(host, pref), ttl=0))
        if qtype in (QTYPE.A, QTYPE.ANY):
            for ip in a:
                reply.add_answer(RR(owner, QTYPE.A, rdata=A(ip), ttl=0))
        if qtype in (QTYPE.AAAA, QTYPE.ANY):
            for ip in aaaa:
                reply.add_answer(RR(owner, QTYPE.AAAA, rdata=AAAA(ip), ttl=0))

    def resolve(self, request, handler):
        reply = request.reply()
        question = request.q
        name = self._key(question.qname)
        qtype = question.qtype
        with self.lock:
            self.queries.append((name, QTYPE[qtype], handler.protocol))
            if name in self.silent:
                raise DNSError("no answer for %s (silent)" % name)
            if name in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            records = self._records(name)
            # A CNAME is followed (as a recursive server does) for every other type.
            chain, owner = [], question.qname
            while name in self.cname and qtype != QTYPE.CNAME and len(chain) < 8:
                chain.append((owner, self.cname[name]))
                owner, name = DNSLabel(self.cname[name]), self.cname[name]
                if name in self.servfail:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                records = self._records(name)
            cname = self.cname.get(name) if qtype == QTYPE.CNAME else None
        if not records[0] and not chain:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for alias, target in chain:
            reply.add_answer(RR(alias, QTYPE.CNAME, rdata=CNAME(target), ttl=0))
        if cname:
            reply.add_answer(RR(question.qname, QTYPE.CNAME, rdata=CNAME(cname), ttl=0))
        self._add_answers(reply, owner, qtype, records)
        if handler.protocol == "udp" and len(reply.pack()) > 512:
            truncated = request.reply()
            truncated.header.tc = 1
            return truncated
        return reply


class PipelinedHandler(DNSHandler):
    """dnslib's handler answers one query per TCP connection and closes it; real servers
    answer every query sent on a connection (RFC 7766), and resolvers such as c-ares send
    several on one. UDP is dnslib's own."""

    def handle(self):
        if self.server.socket_type != socket.SOCK_STREAM:
            return super().handle()
        self.protocol = "tcp"
        self.request.settimeout(10)
        pending = b""
        try:
            while True:
                while len(pending) < 2 or len(pending) - 2 < int.from_bytes(pending[:2], "big"):
                    more = self.request.recv(8192)
                    if not more:
                        return
                    pending += more
                length = int.from_bytes(pending[:2], "big")
                data, pending = pending[2:2 + length], pending[2 + length:]
                try:
                    reply = self.get_reply(data)
                except DNSError:
                    continue  # a silent name: no answer, as over UDP
                self.request.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return


class DnsServer:
    def __init__(self):
        self.zone = Zone()
        self.port = pick_port()
        logger = DNSLogger(logf=lambda s: None)
        self.servers = [
            DNSServer(self.zone, address="127.0.0.1", port=self.port, tcp=tcp, logger=logger,
                      handler=PipelinedHandler)
            for tcp in (False, True)
        ]
        for s in self.servers:
            s.start_thread()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def system_address(self):
        """The same zone on port 53 of a loopback address (127.0.0.153, or the next free
        one), for tools that only use the system's resolver (libc reads /etc/resolv.conf
        and always asks port 53; tests/e2e/verifiers.py points it here). Started on first
        use."""
        if not getattr(self, "system_servers", None):
            logger = DNSLogger(logf=lambda s: None)
            for last in range(153, 200):
                address = "127.0.0.%d" % last
                servers = []
                try:
                    for tcp in (False, True):
                        servers.append(DNSServer(self.zone, address=address, port=53, tcp=tcp,
                                                 logger=logger, handler=PipelinedHandler))
                except OSError:  # another test run has this one
                    for server in servers:
                        server.server.server_close()
                    continue
                self.system_servers, self.system_host = servers, address
                break
            for s in self.system_servers:
                s.start_thread()
        return self.system_host

    def stop(self):
        for s in self.servers + getattr(self, "system_servers", []):
            s.stop()
            s.server.server_close()


@pytest.fixture(scope="session")
def dns():
    server = DnsServer()
    yield server
    server.stop()


# ---- HTTP replies ----


class Reply:
    """One HTTP reply, with the XML parsed when there is XML."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get
        self.body = body
        self.xml = None
        if body.lstrip().startswith(b"<"):
            self.xml = ET.fromstring(body)

    @property
    def request_id(self):
        return self.headers.get("x-amzn-RequestId")

    def find(self, path):
        """Text of the first element at path, in the SES namespace ('a/b' form)."""
        el = self.xml.find("/".join(q(p) for p in path.split("/")))
        return None if el is None else (el.text or "")

    def findall(self, path):
        return [e.text or "" for e in self.xml.iter(q(path))]

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:600])


def assert_ok(reply, action):
    """A 200 reply for action: namespace, ResponseMetadata/RequestId equal to the header."""
    assert reply.status == 200, reply
    assert reply.xml is not None, reply
    assert reply.xml.tag == q(action + "Response"), reply
    rid = reply.find("ResponseMetadata/RequestId")
    assert rid and UUID_RE.match(rid), reply
    assert reply.request_id == rid, (reply.headers, reply)
    return reply


def assert_error(reply, status, code, message=None):
    """An ErrorResponse in the SES namespace with the given status and code, a Sender
    type, a message, and a RequestId equal to x-amzn-RequestId."""
    assert reply.status == status, reply
    assert reply.headers.get("Content-Type", "").startswith("text/xml"), reply.headers
    assert reply.xml is not None, reply
    assert reply.xml.tag == q("ErrorResponse"), reply
    assert reply.find("Error/Type") == "Sender", reply
    assert reply.find("Error/Code") == code, reply
    got = reply.find("Error/Message")
    assert got, reply
    if message is not None:
        assert got == message, reply
    rid = reply.find("RequestId")
    assert rid and UUID_RE.match(rid), reply
    assert reply.request_id == rid, (dict(reply.headers), reply)
    return reply


# ---- signing ----


class _ShiftedDatetime(datetime.datetime):
    shift = datetime.timedelta(0)

    @classmethod
    def utcnow(cls):
        return datetime.datetime.utcnow() + cls.shift


class _ShiftedModule:
    """Stands in for botocore.auth's `datetime` module while signing at another time."""

    timedelta = datetime.timedelta

    def __init__(self, shift):
        self.datetime = type("D", (_ShiftedDatetime,), {"shift": shift})


def sign_request(method, url, body, headers, key, secret, region, service="ses", skew=None):
    """Headers for a SigV4-signed request (botocore's SigV4Auth); skew: a timedelta by
    which the signing clock is off."""
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    auth = SigV4Auth(Credentials(key, secret), service, region)
    if skew is None:
        auth.add_auth(req)
    else:
        with mock.patch.object(botocore.auth, "datetime", _ShiftedModule(skew)):
            auth.add_auth(req)
    return dict(req.headers.items())


def smtp_password_v4(secret, region):
    """AWS's documented derivation of an SES SMTP password from a secret key."""

    def sign(key, msg):
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    sig = sign(("AWS4" + secret).encode(), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        sig = sign(sig, part)
    return base64.b64encode(b"\x04" + sig).decode()


def smtp_password_v2(secret):
    mac = hmac.new(secret.encode(), b"SendRawEmail", hashlib.sha256).digest()
    return base64.b64encode(b"\x02" + mac).decode()


def parse_kv(text, sep=":"):
    """'name: value' lines (as `sesame` prints them) into a dict; first one wins."""
    out = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out.setdefault(k.strip(), v.strip())
    return out


def wait_until(fn, timeout, interval=0.2, what="condition"):
    """Calls fn until it returns something truthy; returns that, or fails at timeout
    (what, a string or a callable giving one, says what was awaited)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            if callable(what):
                what = what()
            raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                                 % (timeout, what, last))
        time.sleep(interval)


def eventually_equal(fn, want, timeout=5.0, interval=0.1):
    """Calls fn until it returns want. For what the admin command changed: the API's
    threads each cache keys, accounts and limits for api.cache_ttl."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got == want:
            return got
        if time.monotonic() > deadline:
            assert got == want, "still %r after %.1fs, want %r" % (got, timeout, want)
        time.sleep(interval)


def error_code(fn):
    """fn()'s ClientError code, or None when it succeeds."""
    try:
        fn()
        return None
    except ClientError as e:
        return e.response["Error"]["Code"]


def parse_duration(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        return None
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale


# ---- the instance ----


class Instance:
    """One sesame instance directory and, once started, its sesamed."""

    def __init__(self, root, name, regions=("us-east-1",), resolver=None, auto_verify=False,
                 production=False, extra=None, init_args=()):
        self.dir = Path(root) / name
        self.port_base = pick_port_base()
        self.regions = list(regions)
        self.proc = None
        self.log_path = self.dir.parent / (name + ".sesamed.log")
        self.log_file = None
        self.stopped_ok = False
        self.killed_logs = []  # the log of each sesamed ended by kill()
        args = ["init", "--dir", str(self.dir), "--port-base", str(self.port_base)]
        for r in self.regions:
            args += ["--region", r]
        if resolver:
            args += ["--resolver", resolver]
        if auto_verify:
            args.append("--auto-verify")
        if production:
            args.append("--production")
        args += list(init_args)  # e.g. ("--mode", "capture")
        res = run_sesame(None, *args)
        assert res.returncode == 0, res.stderr
        self.init_stdout = res.stdout
        self.conf = self.dir / "sesame.conf"
        self.cert = self.dir / "tls" / "cert.pem"
        self.credentials_path = self.dir / "credentials"
        creds = configparser.ConfigParser()
        creds.read(self.credentials_path)
        self.key = creds["default"]["aws_access_key_id"]
        self.secret = creds["default"]["aws_secret_access_key"]
        self.default_region = creds["default"]["region"]
        self.endpoints = parse_kv(self.endpoints_path.read_text(), "=")
        self.http_url = "http://127.0.0.1:%d" % self.port_base
        self.https_url = "https://127.0.0.1:%d" % (self.port_base + 1)
        if extra:
            self.add_config(extra)

    @property
    def endpoints_path(self):
        return self.dir / "endpoints"

    def add_config(self, text):
        """Appends INI text (sections may repeat; a later key wins)."""
        with open(self.conf, "a") as f:
            f.write("\n" + text.strip() + "\n")

    # -- the daemon --

    def start(self):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(SESAMED), "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=base_env())
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("sesamed exited with %s before it was ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            if "sesamed ready" in self.log() and self._listening():
                return self
            if time.monotonic() > deadline:
                raise AssertionError("sesamed not ready after %ss:\n%s" % (START_TIMEOUT, self.log()))
            time.sleep(0.05)

    def _listening(self):
        for port in (self.port_base, self.port_base + 1):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
        return True

    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        """SIGTERM; sesamed must drain, exit 0, and say nothing a sanitizer would say."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("sesamed did not exit within %ss of SIGTERM:\n%s"
                                 % (STOP_TIMEOUT, self.log()[-6000:]))
        finally:
            self.log_file.close()
        log = self.log()
        assert rc == 0, "sesamed exited with %s:\n%s" % (rc, log[-6000:])
        assert_sanitizer_clean(log, "sesamed")
        assert "sesamed stopped" in log, log[-3000:]

    def kill(self):
        """kill -9 sesamed: no drain and no clean-exit check for that process, so the
        fixture's stop() has nothing to complain about; start() runs it again on the same
        directory. The killed process's log is kept in killed_logs. Returns its exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.log_file.close()
        log = self.log()
        self.killed_logs.append(log)
        assert_sanitizer_clean(log, "sesamed (before kill -9)")
        return proc.returncode

    # -- the admin command --

    def sesame(self, *args, expect=0):
        res = run_sesame(self.conf, *args)
        if expect is not None:
            assert res.returncode == expect, "sesame %s -> %s\nstdout:%s\nstderr:%s" % (
                " ".join(args), res.returncode, res.stdout, res.stderr)
        return res

    def cache_ttl(self):
        """api.cache_ttl in seconds (1 s when the config does not set it)."""
        conf = configparser.ConfigParser(strict=False, interpolation=None)
        conf.read(self.conf)
        ttl = parse_duration(conf.get("api", "cache_ttl", fallback="1s"))
        return 1.0 if ttl is None else ttl

    def settle(self):
        """Waits until every API thread has dropped what it cached before an admin change."""
        time.sleep(self.cache_ttl() + 0.3)

    def account_id(self):
        return parse_kv(self.sesame("account", "show").stdout)["account"]

    def new_account(self, name="other"):
        """A second account with its own key: its identities are its own namespace."""
        out = parse_kv(self.sesame("account", "create", "--name", name).stdout)
        return out["account"], out["access_key_id"], out["secret_access_key"]

    def verification_link(self, identity, region=None):
        args = ["identity", "show", identity]
        if region:
            args += ["--region", region]
        return parse_kv(self.sesame(*args).stdout).get("verification_link")

    # -- the delivery queue and the suppression list --

    def queue_show(self, message_id):
        """`sesame queue show ID` as JSON, or None when the id is unknown (exit 1)."""
        res = self.sesame("queue", "show", message_id, expect=None)
        if res.returncode == 1:
            return None
        assert res.returncode == 0, "queue show %s -> %s: %s%s" % (
            message_id, res.returncode, res.stdout, res.stderr)
        return json.loads(res.stdout)

    def queue_list(self):
        """`sesame queue list` lines as dicts: id, address, attempts, next, last."""
        out = []
        for line in self.sesame("queue", "list").stdout.splitlines():
            if line.strip():
                out.append(parse_queue_line(line))
        return out

    def suppression_list(self):
        """`sesame suppression list` lines as dicts: address, region, reason, created,
        expires."""
        return [parse_suppression_line(l)
                for l in self.sesame("suppression", "list").stdout.splitlines() if l.strip()]

    def suppression_show(self, address):
        """The suppression entries of address (one per region listed), [] when not listed
        (exit 1)."""
        res = self.sesame("suppression", "show", address, expect=None)
        if res.returncode == 1:
            return []
        assert res.returncode == 0, (res.returncode, res.stdout, res.stderr)
        return [parse_suppression_line(l) for l in res.stdout.splitlines() if l.strip()]

    def wait_final(self, message_id, timeout=20.0, states=None):
        """Waits until no recipient of message_id is queued (or, with states, until every
        recipient's State is in it); returns the `queue show` JSON."""
        seen = []

        def check():
            shown = self.queue_show(message_id)
            seen[:] = [shown]
            if not shown or not shown.get("Recipients"):
                return None
            got = [r["State"] for r in shown["Recipients"]]
            if states is not None:
                return shown if all(g in states for g in got) else None
            return shown if "queued" not in got else None

        return wait_until(check, timeout, interval=0.2,
                          what=lambda: "message %s to reach a final state (last shown: %s)"
                          % (message_id, json.dumps(seen[0] if seen else None)))

    # -- the AWS CLI --

    def aws(self, *args, region=None, expect_ok=True, https=False, credentials=None,
            service="ses"):
        """`aws ses ARGS` (or `aws SERVICE ARGS`) against this instance. Returns parsed JSON (None for an empty
        reply) when expect_ok, else (returncode, stderr)."""
        env = base_env()
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(credentials or self.credentials_path),
                   AWS_CONFIG_FILE="/dev/null", AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true",
                   AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard", HOME=str(self.dir))
        cmd = [AWS, service, *args, "--output", "json",
               "--endpoint-url", self.https_url if https else self.http_url]
        if https:
            cmd += ["--ca-bundle", str(self.cert)]
        if region:
            cmd += ["--region", region]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        if not expect_ok:
            assert res.returncode != 0, "aws %s succeeded: %s" % (args, res.stdout)
            return res.returncode, res.stderr
        assert res.returncode == 0, "aws %s -> %s: %s" % (args, res.returncode, res.stderr)
        return json.loads(res.stdout) if res.stdout.strip() else None

    # -- boto3 --

    def client(self, region=None, https=False, key=None, secret=None, service="ses"):
        return boto3.session.Session().client(
            service,
            region_name=region or self.default_region,
            endpoint_url=self.https_url if https else self.http_url,
            aws_access_key_id=key or self.key,
            aws_secret_access_key=secret or self.secret,
            verify=str(self.cert) if https else None,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30),
        )

    # -- hand-built requests --

    def raw(self, method="POST", body=b"", query="", headers=None, path="/", sign=True,
            region=None, key=None, secret=None, skew=None, tamper=None, https=False,
            source=None):
        """Sends one HTTP request as given. body and query are sent byte for byte (a dict
        is form-encoded first). With sign, SigV4 headers are added by botocore; tamper(h)
        may then change the signed headers before sending. source: the local address to
        send from (e.g. "127.0.0.2", another loopback address)."""
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
        if isinstance(body, str):
            body = body.encode()
        if isinstance(query, dict):
            query = urllib.parse.urlencode(query)
        target = path + ("?" + query if query else "")
        base = self.https_url if https else self.http_url
        hdrs = {"Host": "127.0.0.1:%d" % (self.port_base + (1 if https else 0))}
        if method == "POST":
            hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        hdrs.update(headers or {})
        if sign:
            hdrs = sign_request(method, base + target, body, hdrs, key or self.key,
                                secret or self.secret, region or self.default_region, skew=skew)
        if tamper:
            tamper(hdrs)
        return http_send(base, method, target, body, hdrs, cafile=self.cert if https else None,
                         source=source)

    def call(self, action, region=None, key=None, secret=None, source=None, https=False,
             headers=None, **params):
        """A signed POST of one action with params; returns the Reply."""
        body = {"Action": action, "Version": "2010-12-01"}
        body.update(params)
        return self.raw(body=body, region=region, key=key, secret=secret, source=source,
                        https=https, headers=headers)

    def identities(self, region=None, key=None, secret=None):
        """Every identity in a region, by a signed ListIdentities."""
        reply = assert_ok(self.call("ListIdentities", region=region, key=key, secret=secret),
                          "ListIdentities")
        return sorted(reply.findall("member"))

    def status(self, identity, region=None):
        """VerificationStatus through GetIdentityVerificationAttributes (None if unknown)."""
        reply = assert_ok(self.call("GetIdentityVerificationAttributes", region=region,
                                    **{"Identities.member.1": identity}),
                          "GetIdentityVerificationAttributes")
        return reply.find(
            "GetIdentityVerificationAttributesResult/VerificationAttributes/entry/value/"
            "VerificationStatus")


# ---- delivery helpers ----

QUEUE_LINE = re.compile(r"^(\S+) (\S+) attempts=(\d+) next=(\S*) last=(.*)$")


def parse_queue_line(line):
    """One `sesame queue list` line: `<MessageId> <address> attempts=<n> next=<ISO8601>
    last=<text>`."""
    m = QUEUE_LINE.match(line.rstrip("\n"))
    assert m, "queue list line not in the documented shape: %r" % line
    return {"id": m.group(1), "address": m.group(2), "attempts": int(m.group(3)),
            "next": m.group(4), "last": m.group(5)}


def parse_suppression_line(line):
    """One `sesame suppression list|show` line: `<address> <region> <reason> <created ISO>
    <expires ISO>`."""
    parts = line.split()
    assert len(parts) == 5, "suppression line not in the documented shape: %r" % line
    return dict(zip(("address", "region", "reason", "created", "expires"), parts))


def parse_iso(text):
    """An ISO 8601 timestamp (Z or an offset) as an aware datetime."""
    assert text, text
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def unique_domain(prefix="d"):
    """A domain name no other test uses: the DNS server is shared by the session."""
    return "%s-%s.test" % (prefix, uuid.uuid4().hex[:12])


_loopback_lock = threading.Lock()
_loopback_next = [0]


def loopback_address():
    """A loopback address no other server of this session was given (127.3.x.y): servers
    for MX hosts bind one each, so that several can listen on the instance's mx_port."""
    with _loopback_lock:
        _loopback_next[0] += 1
        n = _loopback_next[0]
    return "127.3.%d.%d" % (n // 250, n % 250 + 1)


def route_mx(zone, domain, *hosts):
    """Makes domain's MX records point at hosts: (preference, address) pairs or bare
    addresses (preferences 10, 20, ...). Each host gets the name mxN.<domain> with an A
    record for its address. Returns the MX host names in the order given."""
    records, names = [], []
    for i, h in enumerate(hosts):
        pref, addr = h if isinstance(h, tuple) else (10 * (i + 1), h)
        name = "mx%d.%s" % (i + 1, domain)
        zone.set_a(name, addr)
        records.append((pref, name))
        names.append(name)
    zone.set_mx(domain, records)
    return names


def verp_sender(message_id, idx, domain, batch=False):
    """A regex for the VERP envelope sender of a message's recipient idx (with batch: of a
    transaction with several recipients whose first is idx): the MessageId's 48 hex digits,
    the index ("b" before it for a batch), and an 8-character base32 MAC (README,
    "Delivery")."""
    digits = message_id.replace("-", "")[:48]
    index = "-%s%d" % ("b" if batch else "", idx)
    return re.compile(r"^%s%s-[a-z2-7]{8}@%s$" % (digits, index, re.escape(domain)))


def recipient_of(shown, address):
    """The Recipients entry for address in `queue show` JSON (case-insensitive)."""
    got = [r for r in shown["Recipients"] if r["Address"].lower() == address.lower()]
    assert len(got) == 1, (address, shown)
    return got[0]


def events_of(shown, address, kind=None):
    """The Events for address (Type kind when given), in order."""
    return [e for e in shown.get("Events", [])
            if e.get("Recipient", "").lower() == address.lower()
            and (kind is None or e.get("Type") == kind)]


# The verified sender domain of the delivery tests; it has no DNS records of its own.
SENDER_DOMAIN = unique_domain("sender")
SENDER = "sender@" + SENDER_DOMAIN


def delivery_instance(factory, mx_port=None, extra="", production=True, start=True, **kwargs):
    """An instance in deliver mode that reaches MX hosts on mx_port (`sesame init
    --mx-port`, which also allows loopback MX hosts), with extra config appended, the
    first account in production with quota and rate that never matter, SENDER_DOMAIN
    verified and no API cache (admin changes are seen at once)."""
    init_args = list(kwargs.pop("init_args", ()))
    if mx_port is not None:
        init_args += ["--mx-port", str(mx_port)]
    inst = factory(production=production, init_args=tuple(init_args), start=False,
                   extra="[api]\ncache_ttl = 0\n" + extra, **kwargs)
    if start:
        inst.start()
    inst.sesame("identity", "verify", "--force", SENDER_DOMAIN)
    inst.sesame("account", "set", "--quota", "1000000", "--rate", "100000")
    return inst


@pytest.fixture(scope="module")
def port():
    """A delivery module's mx_port: every MX server of the module listens on it."""
    return pick_port()


@pytest.fixture(scope="module")
def inst(module_instance, port, request):
    """A delivery module's shared instance, with the module's CONFIG appended."""
    return delivery_instance(module_instance, port, request.module.CONFIG)


def send_mail(inst, to, subject="delivery test", body="Hello from the delivery tests.\n",
              cc=(), source=None, ses=None):
    """SendEmail through boto3; returns the MessageId."""
    to = [to] if isinstance(to, str) else list(to)
    dest = {"ToAddresses": to}
    if cc:
        dest["CcAddresses"] = list(cc)
    r = (ses or inst.client()).send_email(
        Source=source or SENDER, Destination=dest,
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}})
    return r["MessageId"]


def remote_mta_forms(host, address):
    """The ways RemoteMTA may name an MX host: its name, its address, or both as
    `name[address]` (Postfix's form) or `name [address]`."""
    return (host, address, "%s[%s]" % (host, address), "%s [%s]" % (host, address))


def assert_delivery(shown, address, remote=None):
    """address was delivered, with exactly one Delivery event in the documented shape;
    remote: (MX host name, its address): RemoteMTA must name that host
    (remote_mta_forms). Returns the event."""
    rec = recipient_of(shown, address)
    assert rec["State"] == "delivered", (address, shown)
    assert isinstance(rec["Attempts"], int) and rec["Attempts"] >= 0, rec
    events = events_of(shown, address, "Delivery")
    assert len(events) == 1, (address, shown)
    assert not events_of(shown, address, "Bounce"), shown
    e = events[0]
    assert e["SmtpResponse"].startswith("250"), e
    assert e["ReportingMTA"], e
    assert isinstance(e["ProcessingTimeMillis"], int) and e["ProcessingTimeMillis"] >= 0, e
    parse_iso(e["Timestamp"])
    if remote is not None:
        assert e["RemoteMTA"] in remote_mta_forms(*remote), (e, remote)
    return e


def assert_bounce(shown, address, bounce_type=None, subtype=None, status=None, diagnostic=None):
    """address bounced, with exactly one Bounce event in the documented shape; diagnostic:
    a text its DiagnosticCode must contain. Returns the event."""
    rec = recipient_of(shown, address)
    assert rec["State"] == "bounced", (address, shown)
    events = events_of(shown, address, "Bounce")
    assert len(events) == 1, (address, shown)
    assert not events_of(shown, address, "Delivery"), shown
    e = events[0]
    assert e["BounceType"] in ("Permanent", "Transient", "Undetermined"), e
    if bounce_type is not None:
        assert e["BounceType"] == bounce_type, e
    if subtype is not None:
        assert e["BounceSubType"] == subtype, e
    if status is not None:
        assert e["Status"] == status, e
    if diagnostic is not None:
        assert diagnostic in e["DiagnosticCode"], e
    assert e["Action"] == "failed", e
    parse_iso(e["Timestamp"])
    return e


def http_send(base, method, target, body, headers, cafile=None, timeout=30, source=None):
    u = urllib.parse.urlsplit(base)
    src = (source, 0) if source else None
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx,
                                           source_address=src)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout,
                                          source_address=src)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        if body:
            try:
                conn.send(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer (413) and close before it read everything
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def url_get(url, cafile=None):
    """GET a URL (a verification link); returns (status, body text)."""
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run_sesame(conf, *args, timeout=60):
    cmd = [str(SESAME)] + (["-c", str(conf)] if conf else []) + [str(a) for a in args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=base_env(), timeout=timeout)
    assert_sanitizer_clean(res.stderr, "sesame " + " ".join(map(str, args)))
    return res


class InstanceFactory:
    def __init__(self, root, dns_server):
        self.root = Path(root)
        self.dns = dns_server
        self.instances = []
        self.count = 0

    def __call__(self, regions=("us-east-1",), resolver="dns", auto_verify=False,
                 production=False, extra=None, start=True, init_args=()):
        """A new instance; resolver="dns" points it at the test DNS server."""
        self.count += 1
        if resolver == "dns":
            resolver = self.dns.address
        inst = Instance(self.root, "i%d" % self.count, regions=regions, resolver=resolver,
                        auto_verify=auto_verify, production=production, extra=extra,
                        init_args=init_args)
        self.instances.append(inst)
        if start:
            inst.start()
        return inst

    def close(self):
        errors = []
        for inst in self.instances:
            try:
                inst.stop()
            except AssertionError as e:
                errors.append(str(e))
            release_port_base(inst.port_base)
        assert not errors, "\n\n".join(errors)


@pytest.fixture
def instance(tmp_path, dns):
    """Factory of instances for one test: instance(regions=..., extra="[api]\\n...").
    At teardown each is stopped with SIGTERM and must exit 0, sanitizer-clean."""
    factory = InstanceFactory(tmp_path, dns)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def module_instance(tmp_path_factory, dns):
    """The same factory, for instances shared by the tests of one module."""
    factory = InstanceFactory(tmp_path_factory.mktemp("sesame"), dns)
    yield factory
    factory.close()


class ServerPool:
    """Receiving SMTP servers (tests/e2e/mx.py) started for a test or a module, all
    stopped at teardown."""

    def __init__(self):
        self.servers = []

    def receiver(self, host=None, port=None, **kwargs):
        import mx  # aiosmtpd is needed only by the delivery tests
        server = mx.Receiver(host or loopback_address(), port, **kwargs)
        self.servers.append(server)
        return server.start()

    def scripted(self, host=None, port=None, script=None, **kwargs):
        import mx
        server = mx.ScriptedServer(host or loopback_address(), port, script, **kwargs)
        self.servers.append(server)
        return server.start()

    def close(self):
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception:  # a server that failed to start has nothing to stop
                pass


@pytest.fixture
def servers():
    """Receiving SMTP servers for one test: servers.receiver(port=P, tls=True, ...),
    servers.scripted(port=P, script=...). Each binds its own loopback address."""
    pool = ServerPool()
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def module_servers():
    pool = ServerPool()
    yield pool
    pool.close()
