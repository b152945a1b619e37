"""Sending quota and rate (DECISIONS 18), counted in recipients, and durability: every
MessageId a client was given survives a kill -9 of sesamed."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from sendlib import (
    SIM, account_set, capture_get, capture_instance, cli_error, client, client_error,
    crlf, kill9, message_count, new_sender_account, restart_after_kill, stored,
    stored_ids, verify,
)

SENDER = "sender@example.com"
QUOTA_MSG = "Daily message quota exceeded."
RATE_MSG = "Maximum sending rate exceeded."


@pytest.fixture(scope="module")
def inst(module_instance):
    return capture_instance(module_instance)


def rcpts(n, prefix="r"):
    return ["%s%02d@example.org" % (prefix, i) for i in range(n)]


def send(ses, to, source=SENDER):
    return ses.send_email(Source=source, Destination={"ToAddresses": list(to)},
                          Message={"Subject": {"Data": "limits"},
                                   "Body": {"Text": {"Data": "body"}}})["MessageId"]


def send_raw(ses, to):
    data = crlf("From: %s\nTo: %s\nSubject: limits\n\nbody\n" % (SENDER, ", ".join(to)))
    return ses.send_raw_email(RawMessage={"Data": data})["MessageId"]


def sent24(ses):
    return ses.get_send_quota()["SentLast24Hours"]


def throttled(inst, ses, fn, message, *args):
    """fn(*args) is refused with Throttling (400, Sender) and message; nothing is stored
    and nothing counted."""
    before, counted = message_count(inst), sent24(ses)
    assert client_error(fn, ses, *args) == (400, "Throttling", message)
    assert message_count(inst) == before
    assert sent24(ses) == counted


def credentials_file(tmp_path, name, key, secret):
    path = tmp_path / ("credentials-" + name)
    path.write_text("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
                    "region = us-east-1\n" % (key, secret))
    return path


def cli_send_error(inst, creds):
    return cli_error(inst, "send-email", "--from", SENDER,
                     "--destination", "ToAddresses=r00@example.org",
                     "--message", "Subject={Data=s},Body={Text={Data=b}}", credentials=creds)


# ---- the daily quota ----


def test_quota_counts_recipients_and_refuses_once_reached(inst, tmp_path):
    account, key, secret = inst.new_account("quota5")
    verify(inst, SENDER, "example.org", account=account)
    account_set(inst, "--quota", 5, "--rate", 1000, account=account)
    ses = client(inst, key=key, secret=secret)
    quota = ses.get_send_quota()
    assert (quota["Max24HourSend"], quota["SentLast24Hours"]) == (5.0, 0.0)
    # Every recipient counts: To, Cc and Bcc, or the raw message's To, Cc and Bcc.
    ses.send_email(Source=SENDER, Destination={"ToAddresses": ["a@example.org"],
                                               "BccAddresses": ["b@example.org"]},
                   Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}})
    assert sent24(ses) == 2.0
    # Simulator recipients do not count toward the quota.
    send(ses, [SIM, "bounce@simulator.amazonses.com"])
    assert sent24(ses) == 2.0
    ses.send_raw_email(RawMessage={"Data": crlf("From: %s\nCc: c@example.org\nBcc: d@example.org,"
                                                " %s\n\nbody\n" % (SENDER, SIM))})
    assert sent24(ses) == 4.0
    # Allowed while below the quota, even when the send takes the count past it.
    send(ses, rcpts(3))
    assert sent24(ses) == 7.0
    throttled(inst, ses, send, QUOTA_MSG, rcpts(1))
    throttled(inst, ses, send_raw, QUOTA_MSG, rcpts(1))
    creds = credentials_file(tmp_path, "quota5", key, secret)
    assert cli_send_error(inst, creds) == ("Throttling", QUOTA_MSG)
    assert inst.aws("get-send-quota", credentials=creds) == {
        "Max24HourSend": 5.0, "MaxSendRate": 1000.0, "SentLast24Hours": 7.0}
    # A higher quota lets the account send again.
    account_set(inst, "--quota", 10, account=account)
    send(ses, rcpts(2))
    assert sent24(ses) == 9.0


def test_sandbox_quota_of_200_refuses_the_201st_recipient(inst):
    account, ses = new_sender_account(inst, "quota200", identities=[SENDER, "example.org"],
                                      rate=1000)
    assert ses.get_send_quota()["Max24HourSend"] == 200.0
    for i in range(4):
        mid = send(ses, rcpts(50, prefix="m%d-" % i))
        assert len(stored(inst, mid)["recipients"]) == 50
    assert sent24(ses) == 200.0
    throttled(inst, ses, send, QUOTA_MSG, rcpts(1))
    throttled(inst, ses, send_raw, QUOTA_MSG, rcpts(1))


def test_concurrent_sends_never_pass_the_quota(inst):
    """Quota checks and reservations are atomic: 30 sends at once against a quota of 10
    one-recipient sends accept exactly 10; the others store and count nothing."""
    account, ses = new_sender_account(inst, "race", identities=[SENDER, "example.org"],
                                      quota=10, rate=100000, pool=30)
    before = message_count(inst)
    barrier = threading.Barrier(30)

    def one(i):
        barrier.wait()
        try:
            return send(ses, ["c%02d@example.org" % i])
        except ClientError as e:
            return (e.response["Error"]["Code"], e.response["Error"]["Message"])

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(one, range(30)))
    ok = [r for r in results if isinstance(r, str)]
    assert len(ok) == 10, results
    assert [r for r in results if not isinstance(r, str)] == [("Throttling", QUOTA_MSG)] * 20
    assert message_count(inst) == before + 10
    assert sent24(ses) == 10.0


# ---- the sending rate ----


def test_rate_one_per_second(inst, tmp_path):
    """Sandbox default: 1 send/s, capacity 1; a multi-recipient send leaves a debt."""
    account, key, secret = inst.new_account("rate1")
    verify(inst, SENDER, "example.org", account=account)
    ses = client(inst, key=key, secret=secret)
    assert ses.get_send_quota()["MaxSendRate"] == 1.0
    send(ses, rcpts(1))
    throttled(inst, ses, send, RATE_MSG, rcpts(1))
    throttled(inst, ses, send_raw, RATE_MSG, rcpts(1))
    time.sleep(1.1)
    send(ses, [SIM])  # the simulator counts for the rate
    throttled(inst, ses, send, RATE_MSG, [SIM])
    time.sleep(1.1)
    # A 10-recipient send is allowed with one token, then the debt takes ~10 s to pay.
    send(ses, rcpts(10))
    creds = credentials_file(tmp_path, "rate1", key, secret)
    assert cli_send_error(inst, creds) == ("Throttling", RATE_MSG)
    throttled(inst, ses, send, RATE_MSG, rcpts(1))
    assert sent24(ses) == 11.0


def test_rate_burst_up_to_capacity(inst):
    """Rate 2: a burst of 2, then throttled; the bucket never holds more than 2 tokens."""
    account, ses = new_sender_account(inst, "rate2", identities=[SENDER, "example.org"], rate=2)
    for _ in range(2):
        send(ses, rcpts(1))
    throttled(inst, ses, send, RATE_MSG, rcpts(1))
    time.sleep(1.6)  # 3.2 tokens' worth of time, capped at 2
    for _ in range(2):
        send(ses, rcpts(1))
    throttled(inst, ses, send, RATE_MSG, rcpts(1))


def test_rate_debt_of_a_multi_recipient_send(inst):
    account, ses = new_sender_account(inst, "rate20", identities=[SENDER, "example.org"],
                                      rate=20)
    # 20 tokens, 50 recipients: allowed, leaving -30; one token again after 1.55 s.
    start = time.monotonic()
    send(ses, rcpts(50))
    throttled(inst, ses, send, RATE_MSG, rcpts(1))
    assert time.monotonic() - start < 1.5, "too slow to observe the debt"
    time.sleep(max(0, start + 1.9 - time.monotonic()))
    send(ses, rcpts(1))


# ---- durability ----


def sender_thread_send(ses, i):
    if i % 2:
        return send(ses, ["d%03d@example.org" % i])
    return send_raw(ses, ["d%03d@example.org" % i])


def test_acknowledged_messages_survive_kill9(instance):
    inst = capture_instance(instance)
    verify(inst, SENDER, "example.org")
    n = 50
    account_set(inst, "--production")
    account_set(inst, "--quota", n, "--rate", 100000)
    ses = client(inst, pool=n)
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        return sender_thread_send(ses, i)

    with ThreadPoolExecutor(n) as pool:
        ids = list(pool.map(one, range(n)))
    kill9(inst)  # at once after the last response
    assert len(set(ids)) == n

    # In the store as the crash left it (read-only: SQLite replays the WAL for readers).
    assert set(ids) <= stored_ids(inst)
    restart_after_kill(inst)
    captured_ids = {m["Id"] for m in capture_get(inst)}
    assert set(ids) <= captured_ids
    for i, mid in enumerate(ids):
        row = stored(inst, mid)
        assert row["recipients"] == ["d%03d@example.org" % i], (i, row)
        assert row["states"] == ["captured"]
    # The rolling 24-hour count was rebuilt from the store: the quota is used up.
    assert sent24(ses) == float(n)
    throttled(inst, ses, send, QUOTA_MSG, ["x@example.org"])


def test_acknowledged_messages_survive_kill9_mid_stream(instance):
    """sesamed is killed while requests are in flight: whatever was acknowledged is kept."""
    inst = capture_instance(instance)
    verify(inst, SENDER, "example.org")
    account_set(inst, "--production")
    account_set(inst, "--quota", 1000000, "--rate", 100000)
    ses = client(inst, pool=16)
    acked, failed, lock, stop = [], [], threading.Lock(), threading.Event()
    enough = threading.Event()

    def worker(w):
        i = 0
        while not stop.is_set():
            try:
                mid = sender_thread_send(ses, w * 1000 + i)
            except Exception as e:  # refused connection, reset: not acknowledged
                with lock:
                    failed.append(e)
                return
            with lock:
                acked.append((mid, "d%03d@example.org" % (w * 1000 + i)))
                if len(acked) >= 60:
                    enough.set()
            i += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(60), "too few sends acknowledged"
        kill9(inst)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    with lock:
        got = list(acked)
        assert failed, "no request was in flight when sesamed was killed"
    restart_after_kill(inst)
    ids = stored_ids(inst)
    missing = [mid for mid, _ in got if mid not in ids]
    assert not missing, "%d of %d acknowledged messages lost: %s" % (
        len(missing), len(got), missing[:5])
    for mid, rcpt in got:
        assert stored(inst, mid)["recipients"] == [rcpt]
