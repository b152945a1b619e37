#!/usr/bin/env bash
# Sesame benchmark: GetSendQuota over keep-alive HTTP with SigV4 verification.
# Method: a fresh instance (`sesame init`, development config, SQLite store, fsync on, no
# DKIM involved, plain HTTP on loopback); one request signed once with botocore and
# replayed by wrk (so every request is a full SigV4 verification, key lookup and store
# read on the server); wrk with 2 threads and 64 keep-alive connections for 15 s after a
# 3 s warm-up, on the same 2-core machine as sesamed. Also reports sesamed's idle RSS
# (VmRSS after start-up, before load) and RSS after the load.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
duration=${DURATION:-15}
connections=${CONNECTIONS:-64}
dir=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
"$build/sesame" init --dir "$dir/i" --port-base "$port" >/dev/null
"$build/sesamed" -c "$dir/i/sesame.conf" 2>"$dir/log" &
pid=$!
for _ in $(seq 50); do grep -q "sesamed ready" "$dir/log" && break; sleep 0.1; done
sleep 1
idle_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
endpoint="http://127.0.0.1:$port"
/usr/bin/python3 bench/signed_request.py "$endpoint" "$dir/i/credentials" us-east-1 GetSendQuota >"$dir/req.lua"
wrk -t2 -c"$connections" -d3s -s "$dir/req.lua" "$endpoint/" >/dev/null
echo "== GetSendQuota, SigV4, keep-alive HTTP, $connections connections, ${duration}s =="
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$dir/req.lua" "$endpoint/" | tee "$dir/wrk.txt"
if grep -q "Non-2xx" "$dir/wrk.txt"; then echo "bench: some responses were errors" >&2; exit 1; fi
load_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "idle RSS: ${idle_rss} kB; RSS after load: ${load_rss} kB"
