#!/usr/bin/env bash
# SMTP benchmarks (bench/README.md, "SMTP"). Method:
# - a fresh instance from `sesame init --mode capture --production` (development config,
#   SQLite store, fsync on, 2 I/O threads), quota and rate raised out of the way,
#   bench@example.com verified; the root key's SMTP password (v4) from DIR/endpoints;
# - build/smtp_load (C, libevent + OpenSSL, one thread) on the same 2-core machine, over
#   loopback, STARTTLS on the starttls listener unless said otherwise:
#   1. send: 50 connections that each STARTTLS + AUTH PLAIN once, then send 10 KB
#      messages back to back (MAIL, RCPT, DATA pipelined) for $DURATION s;
#   2. connect: 50 connections that each STARTTLS + AUTH and QUIT, again and again:
#      full TLS handshakes per second, then with TLS session resumption;
#   3. idle: 10,000 authenticated STARTTLS connections held open; sesamed's RSS before
#      and with them open.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
duration=${DURATION:-15}
idle=${IDLE:-10000}
dir=$(mktemp -d)
. bench/instance.sh
ulimit -n "$(ulimit -Hn)" # 10,000 idle connections need as many descriptors on each side

start true
value() { awk -F' = ' -v k="$1" '$1 == k {print $2}' "$dir/i/endpoints"; }
smtp_port=$(value smtp_starttls | cut -d: -f2)
load=("$build/smtp_load" -h 127.0.0.1 -p "$smtp_port" -u "$(value smtp_username)"
      -w "$(value smtp_password)" -f bench@example.com -t success@simulator.amazonses.com)
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }

echo "== send: 10 KB messages, 50 STARTTLS+AUTH connections, fsync on, capture =="
"${load[@]}" -m send -c 50 -s 10240 -d "$duration"
echo "== connect: STARTTLS + AUTH + QUIT, 50 at a time =="
"${load[@]}" -m connect -c 50 -d 10
"${load[@]}" -m connect -c 50 -d 10 -r
echo "== idle: $idle authenticated TLS connections =="
before=$(rss)
"${load[@]}" -m idle -c "$idle" -d 120 >"$dir/idle.txt" &
load_pid=$!
for _ in $(seq 1200); do grep -q "^all" "$dir/idle.txt" && break; sleep 0.1; done
cat "$dir/idle.txt"
sleep 1
during=$(rss)
kill $load_pid 2>/dev/null || true
echo "sesamed RSS: ${before} kB idle, ${during} kB with $idle connections open" \
     "($(( (during - before) / idle )) kB each)"
