#!/usr/bin/env bash
# DKIM signing throughput (bench/README.md, "DKIM"). Method: build/dkim_bench signs 10 KB
# messages (c=relaxed/simple, the seed's header list, one RSA-2048 key loaded once) through
# the CPU pool that sesamed uses, with 1 thread and with one per core; beside it, OpenSSL's
# own RSA-2048 signing rate on the same machine (`openssl speed rsa2048`, one process, and
# `-multi` with one per core). The issue's target: the pool at least 80% of the machine's
# RSA-2048 signing rate. Ed25519 is measured the same way. Not part of any test.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
seconds=${SECONDS_PER_RUN:-5}
messages=${MESSAGES:-10000}
cores=$(nproc)
speed() { # sign/s of "rsa 2048 bits" (or EdDSA) from openssl speed
  openssl speed -seconds "$seconds" "$@" 2>/dev/null |
    awk '/^rsa 2048 bits/ {print $6} /EdDSA \(Ed25519\)/ {print $7}' | tail -1
}
one=$(speed rsa2048)
all=$(speed -multi "$cores" rsa2048)
ed_one=$(speed ed25519)
p1=$("$build/dkim_bench" -t 1 -m "$messages" | sed -n 's/.*: \([0-9]*\)\/s;.*/\1/p')
pn=$("$build/dkim_bench" -t "$cores" -m "$messages" | sed -n 's/.*: \([0-9]*\)\/s;.*/\1/p')
e1=$("$build/dkim_bench" -t 1 -b 0 -m $((messages * 4)) | sed -n 's/.*: \([0-9]*\)\/s;.*/\1/p')
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", (b > 0 ? 100 * a / b : 0) }'; }
echo "DKIM signing, $(date +%F), 10 KB messages, $cores cores:"
echo
echo "| what | signatures/s | vs OpenSSL |"
echo "|---|---|---|"
echo "| openssl speed rsa2048, 1 process | $one | |"
echo "| openssl speed -multi $cores rsa2048 | $all | |"
echo "| dkim_bench RSA-2048, pool of 1 | $p1 | $(pct "$p1" "$one") of 1 process |"
echo "| dkim_bench RSA-2048, pool of $cores | $pn | $(pct "$pn" "$all") of -multi $cores |"
echo "| openssl speed ed25519, 1 process | $ed_one | |"
echo "| dkim_bench Ed25519, pool of 1 | $e1 | $(pct "$e1" "$ed_one") of 1 process |"
