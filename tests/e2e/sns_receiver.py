"""An HTTPS endpoint for SNS-format deliveries, as a subscriber's web application would
run one: it records every POST, confirms subscriptions by fetching their SubscribeURL, and
checks every message's signature with the certificate fetched from its SigningCertURL,
the way the AWS SDKs' message validators do (SignatureVersion 1: SHA1withRSA, 2:
SHA256withRSA over the documented string to sign).

It can be told to fail: answer a status (500, or a 302 redirect) for the next N POSTs,
or hang past the sender's timeout.
"""
import base64
import functools
import http.server
import json
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                     "Type")


@functools.lru_cache(maxsize=None)
def loopback_cert(name="trusted"):
    """(cert, key) of a self-signed certificate for 127.0.0.1 (subjectAltName IP), one per
    name: the tests trust "trusted" (notifications.ca_file), not any other."""
    d = Path(tempfile.mkdtemp(prefix="sesame-sns-%s-" % name))
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def string_to_sign(msg):
    keys = NOTIFICATION_KEYS if msg["Type"] == "Notification" else CONFIRMATION_KEYS
    out = ""
    for k in keys:
        if k in msg:
            out += "%s\n%s\n" % (k, msg[k])
    return out.encode()


def fetch(url):
    """GET over HTTPS without checking sesamed's self-signed certificate (the tests check
    what it serves, not who it is)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return r.read()


def verify_signature(msg, cert_cache):
    """Raises unless msg's Signature verifies with the certificate at SigningCertURL."""
    url = msg["SigningCertURL"]
    if url not in cert_cache:
        cert_cache[url] = x509.load_pem_x509_certificate(fetch(url))
    version = msg["SignatureVersion"]
    assert version in ("1", "2"), msg
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    cert_cache[url].public_key().verify(base64.b64decode(msg["Signature"]),
                                        string_to_sign(msg), padding.PKCS1v15(), digest)


class Post:
    def __init__(self, headers, body):
        self.headers = headers
        self.body = body
        self.message = json.loads(body)
        self.time = time.time()

    @property
    def type(self):
        return self.message["Type"]

    def payload(self):
        """The Message field parsed as JSON (SES notifications), or None."""
        try:
            return json.loads(self.message["Message"])
        except ValueError:
            return None


class SnsReceiver:
    def __init__(self, confirm=True, cert=None):
        self.confirm = confirm
        self.posts = []  # every POST that was answered 200, verified
        self.failures = []  # (status, body) of POSTs refused on purpose
        self.errors = []  # what went wrong while checking
        self.fail_next = []  # statuses to answer the next POSTs with
        self.hang_next = 0
        self.cert_cache = {}
        self.lock = threading.Lock()
        cert, key = cert or loopback_cert()
        self.cafile = cert
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                receiver._handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/sns" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _handle(self, req):
        body = req.rfile.read(int(req.headers.get("Content-Length", 0)))
        with self.lock:
            status = self.fail_next.pop(0) if self.fail_next else None
            hang = self.hang_next > 0
            self.hang_next -= 1 if hang else 0
        if hang:
            time.sleep(6)
        if status:
            self.failures.append((status, body))
            req.send_response(status)
            if status in (301, 302, 307):
                req.send_header("Location", self.url + "/moved")
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        try:
            post = Post(dict(req.headers), body)
            verify_signature(post.message, self.cert_cache)
            assert req.headers["x-amz-sns-message-type"] == post.type, req.headers
            assert req.headers["x-amz-sns-message-id"] == post.message["MessageId"]
            assert req.headers["x-amz-sns-topic-arn"] == post.message["TopicArn"]
            if post.type == "SubscriptionConfirmation" and self.confirm:
                fetch(post.message["SubscribeURL"])
            with self.lock:
                self.posts.append(post)
        except Exception as e:  # recorded, then the test fails on it
            self.errors.append("%r: %s" % (e, body[:300]))
            req.send_response(400)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        req.send_response(200)
        req.send_header("Content-Length", "0")
        req.end_headers()

    def notifications(self, topic_arn=None):
        with self.lock:
            return [p for p in self.posts if p.type == "Notification"
                    and (topic_arn is None or p.message["TopicArn"] == topic_arn)]

    def wait(self, fn, timeout=20.0, what="notifications"):
        deadline = time.monotonic() + timeout
        while True:
            assert not self.errors, self.errors
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; received %r" % (
                    what, [p.message.get("Message", "")[:200] for p in self.posts]))
            time.sleep(0.1)

    def wait_payloads(self, pred, n=1, timeout=20.0, what="notifications"):
        """The payloads (parsed Message) of Notifications for which pred is true, once
        there are at least n."""
        def got():
            found = [p.payload() for p in self.notifications()
                     if p.payload() is not None and pred(p.payload())]
            return found if len(found) >= n else None
        return self.wait(got, timeout, what)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
