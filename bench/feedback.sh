#!/usr/bin/env bash
# Feedback benchmark (bench/README.md, "Feedback"): notifications delivered per second to
# a local HTTPS receiver, and DSNs ingested per second. Method:
# - a fresh instance as bench/instance.sh makes it (capture mode, production, SQLite,
#   store.fsync = true, 2 I/O threads, bench@example.com verified), with
#   notifications.ca_file trusting the sink's self-signed certificate;
# - notifications: bench/sns_sink.py (Python, HTTPS, HTTP/1.1 keep-alive, answers 200 at
#   once, does not verify signatures) is subscribed to a topic (https protocol, confirmed
#   through its SubscribeURL) which is bench@example.com's Delivery topic. wrk replays a
#   signed SendEmail (1 KB, to success@simulator.amazonses.com) over $CONNECTIONS (32)
#   connections for $DURATION s (default 5): each accepted message yields one Delivery
#   notification, stored in the outbox in the delivery result's transaction. The outbox
#   grows faster than it drains, so once wrk stops the notifier drains a backlog alone:
#   notifications/s = POSTs received from wrk's end to the last one / that time. Each POST
#   is an SNS envelope signed then (SignatureVersion 1, RSA-2048 SHA1withRSA);
#   notifications.concurrency = 64 (default).
# - DSNs: bench/dsn_load.py sends one Postfix-style DSN (5.1.1, the original's headers
#   with its Message-ID) per message accepted above, $PROCS (4) processes with one SMTP
#   connection each, to postmaster@<bounce domain> on the feedback listener. Each is
#   parsed (GMime, on the CPU pool), mapped by Message-ID, recorded as a Bounce event
#   (not counted in statistics nor listed: that takes a report to the message's own VERP
#   address, which capture mode never makes) and forwarded (forwarding is on: the
#   forwarded email is stored, captured) before its 250. DSNs/s = Bounce events / (last
#   event's created_ms - first DSN sent). fsync on.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
duration=${DURATION:-5}
connections=${CONNECTIONS:-32}
procs=${PROCS:-4}
py=/usr/bin/python3
dir=$(mktemp -d)
. bench/instance.sh
sink_pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; [ -n "$sink_pid" ] && kill $sink_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
now() { date +%s.%N; }
db() { sqlite3 "$dir/i/sesame.db" "$1"; }

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/sink.key" -out "$dir/sink.crt" 2>/dev/null
$py bench/sns_sink.py "$dir/sink.crt" "$dir/sink.key" "$dir/sink.port" "$dir/sink.json" &
sink_pid=$!
for _ in $(seq 50); do [ -s "$dir/sink.port" ] && break; sleep 0.1; done

# instance.sh's start(), with the sink's certificate trusted
start_with_ca() {
  rm -rf "$dir/i"
  port=$((30000 + RANDOM % 20000))
  "$build/sesame" init --dir "$dir/i" --port-base "$port" --mode capture --production >/dev/null
  printf "\n[notifications]\nca_file = %s\n[delivery]\nbounce_domain = bounces.bench\n" "$dir/sink.crt" >>"$dir/i/sesame.conf"
  [ -z "${THREADS:-}" ] || printf "\n[server]\nthreads = %s\n" "$THREADS" >>"$dir/i/sesame.conf"
  "$build/sesame" -c "$dir/i/sesame.conf" account set --quota 1000000000 --rate 1000000 >/dev/null
  "$build/sesame" -c "$dir/i/sesame.conf" identity verify --force bench@example.com >/dev/null
  "$build/sesamed" -c "$dir/i/sesame.conf" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 50); do grep -q "sesamed ready" "$dir/log" && break; sleep 0.1; done
  sleep 0.5
}
start_with_ca
endpoint="http://127.0.0.1:$port"
$py bench/feedback_setup.py "$endpoint" "$dir/i/credentials" "https://127.0.0.1:$(cat "$dir/sink.port")/sns"

echo "== notifications: Delivery topic, HTTPS subscriber, ${duration}s of SendEmail =="
$py bench/make_body.py send-email 1024 >"$dir/body"
$py bench/signed_request.py "$endpoint" "$dir/i/credentials" us-east-1 "@$dir/body" >"$dir/req.lua"
wrk -t2 -c"$connections" -d"${duration}s" -s "$dir/req.lua" "$endpoint/" >"$dir/wrk.txt"
load_end=$(now)
grep -E "Requests/sec|Non-2xx" "$dir/wrk.txt" || true
accepted=$(db "select count(*) from messages where account_id != 'sesame'")
# the drain: wait until every accepted message's notification left the outbox
last=-1 same=0
while :; do
  pending=$(db "select count(*) from outbox where state='pending'")
  done_events=$(db "select count(*) from events where type='Delivery'")
  [ "$pending" = 0 ] && [ "$done_events" -ge "$accepted" ] && break
  if [ "$pending" = "$last" ]; then same=$((same + 1)); else same=0; fi
  [ "$same" -lt 100 ] || { echo "bench: the outbox stopped draining at $pending" >&2; exit 1; }
  last=$pending
  sleep 0.1
done
kill -TERM "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=
$py - "$dir/sink.json" "$load_end" "$accepted" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
load_end, accepted = float(sys.argv[2]), int(sys.argv[3])
stamps = s["stamps"]
after = [t for t in stamps if t >= load_end]
print("accepted %d messages; the sink got %d notifications (%d distinct)"
      % (accepted, s["count"], s["distinct"]))
# one more than the messages: the AmazonSnsSubscriptionSucceeded message on attaching
if s["distinct"] != accepted + 1:
    sys.exit("bench: %d distinct notifications for %d messages" % (s["distinct"], accepted))
if s["count"] != s["distinct"]:
    print("(%d sent twice: delivery is at least once)" % (s["count"] - s["distinct"]))
whole = s["count"] / (s["last"] - s["first"]) if s["last"] > s["first"] else 0
drain = len(after) / (s["last"] - load_end) if after and s["last"] > load_end else 0
print("notifications/s: %.0f while draining alone (%d in %.2f s), %.0f over the whole run"
      % (drain, len(after), s["last"] - load_end, whole))
EOF

echo "== DSNs: $accepted Postfix-style DSNs over $procs SMTP connections =="
db "select id from messages where account_id != 'sesame'" >"$dir/ids"
fport=$(sed -n 's/^feedback_smtp = .*:\([0-9]*\)$/\1/p' "$dir/i/endpoints")
t0=$(date +%s%3N)
secs=$($py bench/dsn_load.py 127.0.0.1 "$fport" bounces.bench email.amazonses.com "$dir/ids" "$procs")
n=$(db "select count(*) from events where type='Bounce'")
last_ms=$(db "select max(created_ms) from events where type='Bounce'")
kept=$(db "select count(*) from feedback_reports")
echo "client: $accepted DSNs sent in ${secs}s; Bounce events $n, kept aside $kept"
[ "$n" = "$accepted" ] || { echo "bench: $n Bounce events for $accepted DSNs" >&2; exit 1; }
awk -v n="$n" -v a="$t0" -v b="$last_ms" 'BEGIN { printf "DSNs ingested/s: %.0f\n", n / ((b - a) / 1000) }'
stop
