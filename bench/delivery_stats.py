"""Helpers for bench/delivery.sh (bench/README.md, "Delivery").

  delivery_stats.py message FROM TO SIZE   the message smtp_load sends (same headers, same
                                           76-character text lines, SIZE bytes on the wire
                                           with CRLF line ends), written with LF line ends
                                           for smtp-source -F (which sends CRLF)
  delivery_stats.py progress DB            "accepted delivered bounced" from Sesame's store
                                           (accepted: recipient rows; one per message here)
  delivery_stats.py states DB              the recipients' states and whether the store has
                                           an events table, for a run that did not finish
  delivery_stats.py sesame DB              Sesame's figures from the store, as shell
                                           assignments: delivered, bounced, first_accept_ms,
                                           last_delivery_ms, p50_ms, p99_ms
  delivery_stats.py postfix MAILLOG        Postfix's figures from its log, as shell
                                           assignments: sent, deferred, bounced, p50_ms, p99_ms
                                           (from delay=, arrival to delivery; Postfix logs it
                                           with 10 ms resolution below one second)

The store is read with Python's sqlite3 module, read-only, while sesamed runs (WAL mode
lets a reader in beside the writer). Percentiles are nearest-rank: the value at index
n*p/100 of the sorted list, as smtp_load computes its own."""
import re
import sqlite3
import sys


def percentile(values, p):
    if not values:
        return 0
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


def make_message(sender, to, size):
    head = ("From: %s\r\nTo: %s\r\nSubject: smtp_load\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n" % (sender, to))
    out, at = [head], len(head)
    size = max(size, at + 5)
    while at < size - 2:  # the same 76-character lines as smtp_load's make_message
        line = min(78, size - 2 - at)
        out.append("".join(chr(ord("a") + (at + i) % 26) for i in range(max(line - 2, 0))) + "\r\n")
        at += max(line, 2)
    sys.stdout.write("".join(out).replace("\r\n", "\n"))


def connect(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    db.execute("PRAGMA query_only = 1")
    return db


def has_events(db):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
                      ).fetchone() is not None


def progress(path):
    db = connect(path)
    accepted = db.execute("SELECT COUNT(*) FROM recipients").fetchone()[0]
    delivered = bounced = 0
    if has_events(db):
        for kind, n in db.execute("SELECT type, COUNT(*) FROM events "
                                  "WHERE type IN ('Delivery', 'Bounce') GROUP BY type"):
            if kind == "Delivery":
                delivered = n
            else:
                bounced = n
    print(accepted, delivered, bounced)


def states(path):
    db = connect(path)
    counts = db.execute("SELECT state, COUNT(*) FROM recipients GROUP BY state ORDER BY state")
    print("recipients: %s; %s" % (
        ", ".join("%s %d" % row for row in counts) or "none",
        "events table present" if has_events(db) else
        "no events table: this build records no deliveries (is the delivery engine in?)"))


def sesame(path):
    db = connect(path)
    first_accept = db.execute("SELECT MIN(created_ms) FROM messages").fetchone()[0] or 0
    delivered = bounced = last = 0
    latencies = []
    if has_events(db):
        latencies = [r[0] for r in db.execute(
            "SELECT processing_ms FROM events WHERE type = 'Delivery'")]
        delivered = len(latencies)
        last = db.execute("SELECT MAX(created_ms) FROM events WHERE type = 'Delivery'"
                          ).fetchone()[0] or 0
        bounced = db.execute("SELECT COUNT(*) FROM events WHERE type = 'Bounce'").fetchone()[0]
    print("delivered=%d bounced=%d first_accept_ms=%d last_delivery_ms=%d p50_ms=%d p99_ms=%d"
          % (delivered, bounced, first_accept, last, percentile(latencies, 50),
             percentile(latencies, 99)))


def postfix(path):
    sent = deferred = bounced = 0
    delays = []
    pattern = re.compile(r" delay=([0-9.]+),.* status=(\w+)")
    with open(path, errors="replace") as log:
        for line in log:
            m = pattern.search(line)
            if not m:
                continue
            if m.group(2) == "sent":
                sent += 1
                delays.append(float(m.group(1)) * 1000)
            elif m.group(2) == "deferred":
                deferred += 1
            else:
                bounced += 1
    print("sent=%d deferred=%d bounced=%d p50_ms=%d p99_ms=%d"
          % (sent, deferred, bounced, percentile(delays, 50), percentile(delays, 99)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "message":
        make_message(args[0], args[1], int(args[2]))
    elif cmd == "progress":
        progress(args[0])
    elif cmd == "states":
        states(args[0])
    elif cmd == "sesame":
        sesame(args[0])
    elif cmd == "postfix":
        postfix(args[0])
    else:
        sys.exit("usage: see the docstring of " + sys.argv[0])


if __name__ == "__main__":
    main()
