#!/usr/bin/env bash
# Sesame benchmarks. Method, common to every scenario:
# - a fresh instance from `sesame init` (development config, SQLite store), 2 I/O threads,
#   the account in production with quota and rate raised out of the way, bench@example.com
#   verified; delivery.mode = capture (accepted messages are stored, nothing is sent);
# - one request signed once with botocore's SigV4 signer and replayed by wrk (valid for the
#   15-minute skew window), so every request is parsed and fully SigV4-verified;
# - wrk with 2 threads and $CONNECTIONS keep-alive connections for $DURATION s after a
#   3 s warm-up, on loopback, on the same 2-core machine as sesamed; no DKIM.
# Scenarios: GetSendQuota; SendEmail (1 KB text, one simulator recipient) with fsync on
# and off, with the root key and with a user's key whose 10 policies of 10 statements
# allow SendEmail only in the very last statement (bench/make_policies.py); SendRawEmail
# with a 100 KB message (fsync on). Non-2xx answers fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
duration=${DURATION:-15}
connections=${CONNECTIONS:-64}
dir=$(mktemp -d)
. bench/instance.sh

start_api() { # $1: store.fsync
  start "$1"
  endpoint="http://127.0.0.1:$port"
}

policy_user() { # a user with the benchmark's 100 statements; its credentials file
  local s="$build/sesame -c $dir/i/sesame.conf"
  $s user create bench >/dev/null
  /usr/bin/python3 bench/make_policies.py "$dir/policies"
  for f in "$dir"/policies/*.json; do $s policy put bench "$(basename "$f" .json)" --file "$f" >/dev/null; done
  $s key create --user bench | awk -F': ' '
    /^access_key_id/ {print "[default]"; print "aws_access_key_id = " $2}
    /^secret_access_key/ {print "aws_secret_access_key = " $2}' >"$dir/user-credentials"
}

run() { # $1: title, $2: make_body arguments, $3: credentials file (default: root key)
  /usr/bin/python3 bench/make_body.py $2 >"$dir/body"
  /usr/bin/python3 bench/signed_request.py "$endpoint" "${3:-$dir/i/credentials}" us-east-1 "@$dir/body" >"$dir/req.lua"
  wrk -t2 -c"$connections" -d3s -s "$dir/req.lua" "$endpoint/" >/dev/null
  echo "== $1 =="
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$dir/req.lua" "$endpoint/" | tee "$dir/wrk.txt" |
    grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket errors" || true
  if grep -q "Non-2xx" "$dir/wrk.txt"; then echo "bench: error answers" >&2; exit 1; fi
}

start_api true
echo "idle RSS: $(awk '/VmRSS/ {print $2}' /proc/$pid/status) kB"
run "GetSendQuota, SigV4, keep-alive HTTP" "quota"
run "SendEmail 1 KB, 1 recipient, fsync on, capture" "send-email 1024"
policy_user
run "SendEmail 1 KB, fsync on, capture, as a user with 10x10 policy statements" "send-email 1024" "$dir/user-credentials"
run "SendRawEmail 100 KB, 1 recipient, fsync on, capture" "send-raw 102400"
echo "RSS after load: $(awk '/VmRSS/ {print $2}' /proc/$pid/status) kB"
stop
start_api false
run "SendEmail 1 KB, 1 recipient, fsync off, capture" "send-email 1024"
stop
