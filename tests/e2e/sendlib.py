"""Helpers for the sending tests (test_send*.py): capture-mode instances, the capture
endpoint (/_aws/ses), read-only looks into the SQLite store, MIME parsing of what was
stored, error extraction from boto3 and the AWS CLI, and kill -9 / restart.

conftest.py owns the instance factory; everything here works on its Instance objects.
"""
import base64
import datetime
import email
import email.policy
import email.utils
import json
import re
import signal
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import assert_sanitizer_clean

# Capture mode, and no per-thread cache, so admin changes are seen by the very next request.
CAPTURE = "[delivery]\nmode = capture\n[api]\ncache_ttl = 0\n"
SIM = "success@simulator.amazonses.com"
MESSAGE_ID_RE = re.compile(
    r"^([0-9a-f]{16})-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000$")
UNVERIFIED = ("Email address is not verified. The following identities failed the check in "
              "region %s: %s")


def unverified(region, *identities):
    """The exact MessageRejected text for unverified identities (DECISIONS 9b)."""
    return UNVERIFIED % (region.upper(), ", ".join(identities))


def capture_instance(factory, regions=("us-east-1",), production=False, extra=""):
    return factory(regions=regions, production=production, extra=CAPTURE + extra)


# ---- the admin command ----


def verify(inst, *identities, region=None, account=None):
    for identity in identities:
        args = ["identity", "verify", "--force", identity]
        if region:
            args += ["--region", region]
        if account:
            args += ["--account", account]
        inst.sesame(*args)


def account_set(inst, *args, account=None, region=None):
    cmd = ["account", "set"] + ([account] if account else []) + [str(a) for a in args]
    if region:
        cmd += ["--region", region]
    inst.sesame(*cmd)


def new_sender_account(inst, name, identities=(), regions=None, quota=None, rate=None,
                       pool=10):
    """A fresh (sandbox) account with its own key and verified identities; returns
    (account_id, boto3 client for the instance's default region)."""
    account, key, secret = inst.new_account(name)
    for region in regions or [None]:
        verify(inst, *identities, region=region, account=account)
    if quota is not None:
        account_set(inst, "--quota", quota, account=account)
    if rate is not None:
        account_set(inst, "--rate", rate, account=account)
    return account, client(inst, key=key, secret=secret, pool=pool)


def client(inst, region=None, key=None, secret=None, pool=10):
    """A boto3 SES client like Instance.client, with a larger connection pool."""
    return boto3.session.Session().client(
        "ses",
        region_name=region or inst.default_region,
        endpoint_url=inst.http_url,
        aws_access_key_id=key or inst.key,
        aws_secret_access_key=secret or inst.secret,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60,
                      max_pool_connections=pool),
    )


# ---- errors ----


def client_error(fn, *args, **kwargs):
    """(HTTP status, code, message) of the ClientError fn raises; fails if it succeeds."""
    try:
        got = fn(*args, **kwargs)
    except ClientError as e:
        err = e.response["Error"]
        return e.response["ResponseMetadata"]["HTTPStatusCode"], err["Code"], err["Message"]
    raise AssertionError("expected an error, got %r" % (got,))


_CLI_ERROR = re.compile(
    r"An error occurred \((\w+)\) when calling the (\w+) operation(?: \([^)]*\))?: (.*)")


def cli_error(inst, *args, region=None, credentials=None):
    """(code, message) of a failing `aws ses ARGS`."""
    _, stderr = inst.aws(*args, region=region, credentials=credentials, expect_ok=False)
    m = _CLI_ERROR.search(stderr)
    assert m, stderr
    return m.group(1), m.group(3).strip()


# ---- the capture endpoint ----


def capture_get(inst, **params):
    """GET /_aws/ses with the given filters; returns the list of messages."""
    query = urllib.parse.urlencode(params)
    url = inst.http_url + "/_aws/ses" + ("?" + query if query else "")
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
        return json.loads(r.read())["messages"]


def captured(inst, message_id):
    """The one captured entry with that Id."""
    got = capture_get(inst, id=message_id)
    assert len(got) == 1, got
    assert got[0]["Id"] == message_id
    return got[0]


def capture_delete(inst, message_id=None):
    url = inst.http_url + "/_aws/ses"
    if message_id:
        url += "?" + urllib.parse.urlencode({"id": message_id})
    req = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def raw_data(entry):
    """The stored bytes of a captured SendRawEmail entry."""
    if entry.get("RawDataEncoding") == "base64":
        return base64.b64decode(entry["RawData"])
    assert "RawDataEncoding" not in entry, entry
    return entry["RawData"].encode("utf-8")


# ---- the store, read-only ----


def db(inst):
    conn = sqlite3.connect("file:%s?mode=ro" % (inst.dir / "sesame.db"), uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def stored(inst, message_id):
    """The messages row (a dict) with its envelope recipients in order, or None."""
    conn = db(inst)
    try:
        row = conn.execute("SELECT * FROM messages WHERE id=?", (message_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["recipients"] = [r["address"] for r in conn.execute(
            "SELECT address FROM recipients WHERE message_id=? ORDER BY idx", (message_id,))]
        out["states"] = [r["state"] for r in conn.execute(
            "SELECT state FROM recipients WHERE message_id=? ORDER BY idx", (message_id,))]
        return out
    finally:
        conn.close()


def stored_ids(inst):
    conn = db(inst)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM messages")}
    finally:
        conn.close()


def message_count(inst):
    """Messages the accounts sent (Sesame's own notices, such as forwarded feedback, which
    simulator outcomes cause at any moment, are not counted)."""
    conn = db(inst)
    try:
        return conn.execute("SELECT count(*) FROM messages WHERE account_id != 'sesame'"
                            ).fetchone()[0]
    finally:
        conn.close()


def parse(data):
    """The stored bytes as an email.message.EmailMessage (policy.default)."""
    return email.message_from_bytes(data, policy=email.policy.default)


def header_lines(data):
    """The header section's physical lines (without CRLF), up to the blank line."""
    head = data.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def assert_canonical(data):
    """Every line ends in CRLF: no bare LF or CR; no line over 998 octets."""
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b""), "bare LF in stored message"
    assert b"\r" not in data.replace(b"\r\n", b""), "bare CR in stored message"
    for line in data.split(b"\r\n"):
        assert len(line) <= 998, len(line)


def assert_message_id(message_id, slack_s=120):
    """The MessageId shape (DECISIONS 5), its timestamp near now."""
    m = MESSAGE_ID_RE.match(message_id)
    assert m, message_id
    ms = int(m.group(1), 16)
    assert abs(ms / 1000.0 - time.time()) < slack_s, (message_id, ms)
    return ms


def assert_rewritten(msg, message_id, accepted_ms, slack_s=120):
    """Date replaced (UTC, near acceptance), Message-ID replaced, no Return-Path, no Bcc."""
    assert msg.get_all("Message-ID") == ["<%s@email.amazonses.com>" % message_id], \
        msg.get_all("Message-ID")
    dates = msg.get_all("Date")
    assert dates and len(dates) == 1, dates
    when = email.utils.parsedate_to_datetime(str(dates[0]))
    assert when.utcoffset() == datetime.timedelta(0), dates
    assert abs(when.timestamp() - accepted_ms / 1000.0) < 2, (dates, accepted_ms)
    assert msg.get_all("Bcc") is None
    assert msg.get_all("Return-Path") is None


# ---- raw messages ----


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def crlf(text):
    """Text with LF line ends turned into CRLF bytes."""
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def simple_raw(sender, to, subject="test", body="hello\n", extra_headers=""):
    """A small CRLF raw message."""
    head = "From: %s\n" % sender
    if to:
        head += "To: %s\n" % to
    head += "Subject: %s\n" % subject + extra_headers
    return crlf(head + "\n" + body)


# ---- the daemon ----


def kill9(inst):
    """SIGKILL sesamed at once (no drain, no clean-exit check for this process)."""
    proc, inst.proc = inst.proc, None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    inst.log_file.close()
    return proc.returncode


def restart_after_kill(inst):
    """Starts sesamed again on the same directory (its log file starts afresh)."""
    killed_log = inst.log()
    assert_sanitizer_clean(killed_log, "sesamed (before kill -9)")
    inst.start()
    return killed_log
