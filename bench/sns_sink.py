#!/usr/bin/python3
"""A local HTTPS endpoint for the notification benchmark (bench/feedback.sh): HTTP/1.1
keep-alive, answers every POST 200 at once, confirms subscriptions by fetching their
SubscribeURL, and counts Notifications. Signatures are not checked here (the tests do
that); this measures how fast sesamed delivers, not how fast Python verifies RSA.

Usage: sns_sink.py CERT KEY PORTFILE STATSFILE
Writes its port to PORTFILE; on SIGTERM writes {"count", "distinct" (MessageIds),
"first", "last", "stamps"} to
STATSFILE (stamps: the time of each Notification, seconds since the epoch).
"""
import http.server
import json
import signal
import ssl
import sys
import threading
import time
import urllib.request

cert, key, portfile, statsfile = sys.argv[1:5]
stamps = []
ids = set()
lock = threading.Lock()


def confirm(url):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    urllib.request.urlopen(url, context=ctx, timeout=10).read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kind = self.headers.get("x-amz-sns-message-type")
        if kind == "SubscriptionConfirmation":
            url = json.loads(body)["SubscribeURL"]
            threading.Thread(target=confirm, args=(url,), daemon=True).start()
        elif kind == "Notification":
            with lock:
                stamps.append(time.time())
                ids.add(self.headers.get("x-amz-sns-message-id"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
with open(portfile, "w") as f:
    f.write(str(httpd.server_address[1]))


def stop(*_):
    with lock:
        s = list(stamps)
    with open(statsfile, "w") as f:
        json.dump({"count": len(s), "distinct": len(ids), "first": s[0] if s else 0, "last": s[-1] if s else 0,
                   "stamps": s}, f)
    threading.Thread(target=httpd.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, stop)
httpd.serve_forever()
