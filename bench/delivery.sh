#!/usr/bin/env bash
# End-to-end delivery benchmark (bench/README.md, "Delivery"): Sesame against a stock
# Postfix, the same workload, in the same run, on the same 2-core machine. Method:
# - the workload: 10 KB messages ($SIZE = 10,240 bytes: smtp_load's headers and
#   76-character text lines), one recipient each, rcpt@sink.bench, from
#   bench@example.com; $CONNECTIONS = 50 client connections; no DKIM (DKIM=1: Sesame signs with
#   Easy DKIM for example.com, RSA of DKIM_BITS, default 2048); fsync on for both
#   (Sesame: store.fsync = true; Postfix always fsyncs its queue files);
# - the receiver: Postfix's smtp-sink on 127.0.0.1 (a fresh one for each side, -c
#   counting the messages it got), which accepts and discards;
# - Sesame: a fresh instance (`sesame init --mode deliver --production --mx-port SINK
#   --resolver DNS`, SQLite store, 2 I/O threads, quota and rate out of the way,
#   example.com verified with `identity verify --force`); bench/mx_dns.py (dnslib) answers
#   MX sink.bench -> mx.sink.bench, A 127.0.0.1. LOAD=smtp (default): build/smtp_load
#   sends for $DURATION s (default 15) over 50 STARTTLS + AUTH PLAIN connections
#   (pipelined MAIL/RCPT/DATA); LOAD=api: wrk replays one SigV4-signed SendRawEmail of
#   the same size over 50 keep-alive plain-HTTP connections for $DURATION s;
#   then the script waits until the store holds a Delivery (or Bounce) event for every
#   accepted message ($WAIT s at most, and gives up after $STALL s without progress).
#   Figures from the store: throughput = Delivery events / (last Delivery event's
#   created_ms - first message's created_ms), i.e. from the first acceptance to the last
#   delivery; latency = p50/p99 of the events' processing_ms (acceptance to delivery).
#   smtp-sink's count is printed beside them as a cross-check;
# - Postfix: a private, otherwise stock Postfix instance under /tmp (its own
#   config_directory and queue_directory; Debian's master.cf without chroot, one smtpd
#   on 127.0.0.1:PORT; relayhost = [127.0.0.1]:SINK; default concurrency and
#   process limits); `smtp-source -d -s 50 -m N -F message` sends N = $MESSAGES (50,000)
#   of the same messages over 50 sessions, plain SMTP (smtp-source has no STARTTLS).
#   Throughput = N / (time from smtp-source's start to smtp-sink's count reaching N)
#   polled every 0.1 s; latency = p50/p99 of Postfix's own delay= (arrival to
#   delivery) from its log. The instance is stopped and removed at the end, whatever
#   happens; the system's Postfix (/etc/postfix) is not touched.
# - The summary is a Markdown table (paste into bench/README.md) and the ratio Sesame's
#   throughput / Postfix's.
# Needs root (smtp-sink and Postfix drop privileges), the postfix package and
# python3-dnslib (scripts/install-deps.sh). SIDES="sesame postfix" picks the halves.
# THREADS=N sets Sesame's server.threads (default: one I/O thread per core).
# CPU per message: user + system time of sesamed, smtp-sink and smtp_load over the run
# (/proc/PID/stat, bash's time), divided by the messages delivered; steadier than the
# throughput on a shared machine. The machine's busy, idle and stolen shares during
# Sesame's load (/proc/stat; "stolen": time the hypervisor gave other guests) say how
# much of the two cores the run really had. SESAMED_WRAP prefixes sesamed's command line (e.g.
# "valgrind --tool=callgrind --instr-atstart=no" to count instructions per message).
# Exit status: 0 when every side that ran delivered everything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
duration=${DURATION:-15}
connections=${CONNECTIONS:-50}
size=${SIZE:-10240}
wait_max=${WAIT:-180}
stall=${STALL:-30}
messages=${MESSAGES:-}
sides=${SIDES:-sesame postfix}
load=${LOAD:-smtp}
domain=sink.bench
from=bench@example.com
rcpt=rcpt@$domain
py=/usr/bin/python3
dir=$(mktemp -d)
. bench/instance.sh
ulimit -n "$(ulimit -Hn)"

sink_pid= dns_pid= pf=
cleanup() {
  for p in "$pid" "$sink_pid" "$dns_pid"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
  [ -z "$pf" ] || postfix_stop
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
cpu_ticks() { # a process's user + system CPU so far, in clock ticks (/proc/PID/stat)
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
cpu_stat() { # the machine's CPU time so far: "busy idle steal" in ticks (/proc/stat)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $5 + $6, $9 }' /proc/stat
}
cpu_share() { # "busy idle steal" before and after: each one's share of the time between
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0
    for (i = 1; i <= 3; i++) { d[i] = y[i] - x[i]; t += d[i] }
    if (t <= 0) t = 1
    printf "machine %.0f%% busy, %.0f%% idle, %.0f%% stolen by other guests", d[1] * 100 / t, d[2] * 100 / t, d[3] * 100 / t }'
}
per_msg_us() { # CPU ticks spent on N messages, in microseconds per message
  awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (n > 0 ? t * 1e6 / hz / n : 0) }'
}
free_port() { $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
commas() { awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }

start_sink() { # a fresh smtp-sink on 127.0.0.1:$sink_port, counting into $dir/sink.$1
  sink_port=$(free_port)
  sink_out=$dir/sink.$1
  smtp-sink -c -u nobody -m 1024 127.0.0.1:"$sink_port" 1024 >"$sink_out" 2>"$sink_out.err" &
  sink_pid=$!
  sleep 0.3
  kill -0 "$sink_pid" || { echo "bench: smtp-sink did not start: $(cat "$sink_out.err")" >&2; exit 1; }
}
sink_count() { # smtp-sink -c rewrites "sess=N quit=N mesg=N" after a \r on every change
  tail -c 200 "$sink_out" | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1 | grep . || echo 0
}
stop_sink() { kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; sink_pid=; }

# --- Sesame ---------------------------------------------------------------------------

start_deliver() { # instance.sh's start, in deliver mode towards smtp-sink via mx_dns.py
  rm -rf "$dir/i"
  port=$((30000 + RANDOM % 20000))
  "$build/sesame" init --dir "$dir/i" --port-base "$port" --mode deliver --production \
    --mx-port "$sink_port" --resolver "127.0.0.1:$dns_port" >/dev/null
  sed -i "s/^fsync = .*/fsync = true/" "$dir/i/sesame.conf"
  [ -z "${THREADS:-}" ] || printf "\n[server]\nthreads = %s\n" "$THREADS" >>"$dir/i/sesame.conf"
  # DKIM=1: Easy DKIM for example.com; auto_verify makes its token set Success at once
  [ "${DKIM:-0}" = 0 ] || printf "\n[verification]\nauto_verify = true\n[dkim]\nkey_bits = %s\n" \
    "${DKIM_BITS:-2048}" >>"$dir/i/sesame.conf"
  "$build/sesame" -c "$dir/i/sesame.conf" account set --quota 1000000000 --rate 1000000 >/dev/null
  "$build/sesame" -c "$dir/i/sesame.conf" identity verify --force example.com >/dev/null
  ${SESAMED_WRAP:-} "$build/sesamed" -c "$dir/i/sesame.conf" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 300); do grep -q "sesamed ready" "$dir/log" && break; sleep 0.1; done
  grep -q "sesamed ready" "$dir/log" || { echo "bench: sesamed did not start:" >&2; tail "$dir/log" >&2; exit 1; }
  [ "${DKIM:-0}" = 0 ] || dkim_enable
  sleep 0.5
}

dkim_enable() { # VerifyDomainDkim + SetIdentityDkimEnabled for example.com through boto3
  AWS_SHARED_CREDENTIALS_FILE="$dir/i/credentials" $py - "http://127.0.0.1:$port" <<'PY'
import sys, boto3
ses = boto3.client("ses", endpoint_url=sys.argv[1], region_name="us-east-1")
tokens = ses.verify_domain_dkim(Domain="example.com")["DkimTokens"]
ses.set_identity_dkim_enabled(Identity="example.com", DkimEnabled=True)
print("bench: Easy DKIM on for example.com (selector %s)" % tokens[0])
PY
}

api_load() { # wrk replays one signed SendRawEmail; prints smtp_load's summary line shape
  local endpoint="http://127.0.0.1:$port"
  TO=$rcpt $py bench/make_body.py send-raw "$size" >"$dir/body"
  $py bench/signed_request.py "$endpoint" "$dir/i/credentials" us-east-1 "@$dir/body" >"$dir/req.lua"
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$dir/req.lua" "$endpoint/" >"$dir/wrk.txt"
  cat "$dir/wrk.txt"
  if grep -q "Non-2xx" "$dir/wrk.txt"; then echo "bench: error answers" >&2; exit 1; fi
  awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
       END {printf "messages: API: %.0f/s; p50 %s ms, p99 %s ms\n", r, p50+0, p99+0}' "$dir/wrk.txt" >"$dir/load.txt"
}

sesame_side() {
  echo "== Sesame: $load load -> sesamed (deliver, fsync on, DKIM $([ "${DKIM:-0}" = 0 ] && echo off || echo on)) -> smtp-sink =="
  start_sink sesame
  dns_port=$(free_port)
  $py bench/mx_dns.py "$dns_port" "$domain" >"$dir/dns.log" 2>&1 &
  dns_pid=$!
  for _ in $(seq 50); do grep -q ready "$dir/dns.log" && break; sleep 0.1; done
  grep -q ready "$dir/dns.log" || { echo "bench: mx_dns.py did not start: $(cat "$dir/dns.log")" >&2; exit 1; }
  start_deliver
  value() { awk -F' = ' -v k="$1" '$1 == k {print $2}' "$dir/i/endpoints"; }
  db=$(awk -F' = ' '$1 == "path" {print $2}' "$dir/i/sesame.conf")
  local t0 t1 progress accepted=0 delivered=0 bounced=0 last=-1 last_change
  t0=$(now_ms)
  local stat0 stat1
  stat0=$(cpu_stat)
  if [ "$load" = api ]; then
    api_load
  else
    TIMEFORMAT='%U %S'
    { time "$build/smtp_load" -h 127.0.0.1 -p "$(value smtp_starttls | cut -d: -f2)" -u "$(value smtp_username)" \
      -w "$(value smtp_password)" -f "$from" -t "$rcpt" -m send -c "$connections" -s "$size" \
      -d "$duration" | tee "$dir/load.txt"; } 2>"$dir/load.cpu"
  fi
  t1=$(now_ms)
  stat1=$(cpu_stat)
  last_change=$t1
  while :; do
    progress=$($py bench/delivery_stats.py progress "$db") || progress="$accepted $delivered $bounced"
    read -r accepted delivered bounced <<<"$progress"
    [ "$accepted" -gt 0 ] && [ $((delivered + bounced)) -ge "$accepted" ] && break
    [ $((delivered + bounced)) -ne "$last" ] && { last=$((delivered + bounced)); last_change=$(now_ms); }
    if [ $(($(now_ms) - t1)) -ge $((wait_max * 1000)) ] || [ $(($(now_ms) - last_change)) -ge $((stall * 1000)) ]; then
      echo "bench: Sesame gave up waiting: $accepted accepted, $delivered delivered, $bounced bounced," \
           "$(( ($(now_ms) - t1) / 1000 )) s after the load ended ($(( ($(now_ms) - last_change) / 1000 )) s without progress);" \
           "smtp-sink counted $(sink_count)" >&2
      echo "bench: $($py bench/delivery_stats.py states "$db")" >&2
      tail -5 "$dir/log" >&2
      sesame_ok=0
      stop; stop_sink; kill "$dns_pid" 2>/dev/null || true; wait "$dns_pid" 2>/dev/null || true; dns_pid=
      return
    fi
    sleep 0.5
  done
  local wall_ms=$(($(now_ms) - t0))
  sleep 1 # smtp-sink counts at "."; let the last sessions' counters settle
  sesame_sink=$(sink_count)
  local sesamed_ticks sink_ticks load_us=
  sesamed_ticks=$(cpu_ticks "$pid") sink_ticks=$(cpu_ticks "$sink_pid")
  eval "$($py bench/delivery_stats.py sesame "$db")"
  stop; stop_sink; kill "$dns_pid" 2>/dev/null || true; wait "$dns_pid" 2>/dev/null || true; dns_pid=
  local span=$((last_delivery_ms - first_accept_ms))
  sesame_rate=$(awk -v n="$delivered" -v ms="$span" 'BEGIN { printf "%.0f", (ms > 0 ? n * 1000 / ms : 0) }')
  sesame_accept=$(sed -n 's/^messages: .*: \([0-9]*\)\/s; p50 \([0-9.]*\) ms, p99 \([0-9.]*\) ms.*/\1\/s (p50 \2 ms, p99 \3 ms)/p' "$dir/load.txt")
  sesame_line="$(commas "$sesame_rate") messages/s delivered ($(commas "$delivered") in $(awk -v s="$span" 'BEGIN { printf "%.1f", s / 1000 }') s, first acceptance to last delivery); acceptance to delivery p50 ${p50_ms} ms, p99 ${p99_ms} ms; accepted at ${sesame_accept}; smtp-sink counted $(commas "$sesame_sink")"
  [ "$bounced" -eq 0 ] || sesame_line="$sesame_line; $bounced bounced"
  [ "$sesame_sink" -ge "$delivered" ] || sesame_line="$sesame_line (fewer than the store's Delivery events!)"
  [ ! -s "$dir/load.cpu" ] || load_us=$(awk -v n="$delivered" '{ printf "%.0f", (n > 0 ? ($1 + $2) * 1e6 / n : 0) }' "$dir/load.cpu")
  sesame_line="$sesame_line; during the load: $(cpu_share "$stat0" "$stat1"); CPU per message: sesamed $(per_msg_us "$sesamed_ticks" "$delivered") µs, smtp-sink $(per_msg_us "$sink_ticks" "$delivered") µs${load_us:+, load generator $load_us µs}"
  echo "Sesame: $sesame_line; wall clock from the load's start to the last delivery seen $(awk -v s="$wall_ms" 'BEGIN { printf "%.1f", s / 1000 }') s"
  [ "$bounced" -eq 0 ] && [ "$sesame_sink" -ge "$delivered" ] || sesame_ok=0
}

# --- Postfix --------------------------------------------------------------------------

postfix_stop() { # stops the private instance and removes it; $1: where to keep its log
  script -qec "postfix -c $pf/etc stop" /dev/null >/dev/null 2>&1 || true
  # master exits once its children have; do not remove the directory under a live instance
  for _ in $(seq 100); do [ -f "$pf/queue/pid/master.pid" ] && kill -0 "$(tr -d ' ' <"$pf/queue/pid/master.pid")" 2>/dev/null || break; sleep 0.1; done
  [ -z "${1:-}" ] || cp "$pf/maillog" "$1" 2>/dev/null || : >"$1"
  rm -rf "$pf"
  pf=
}

postfix_start() { # a private instance in $pf: smtpd on 127.0.0.1:$pf_port, relayhost = the sink
  pf=$(mktemp -d /tmp/sesame-bench-postfix-XXXXXX)
  chmod 755 "$pf" # Postfix's daemons run as the postfix user
  mkdir "$pf/etc" "$pf/queue" "$pf/data"
  chown postfix "$pf/data"
  pf_port=$(free_port)
  cat >"$pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.postfix.bench
mydomain = postfix.bench
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
relayhost = [127.0.0.1]:$sink_port
EOF
  # Debian's master.cf without its inet services and without chroot (the private queue
  # directory is not set up as a chroot jail), plus one smtpd on the bench port.
  awk '!/^[ \t#]/ && NF >= 8 { if ($2 == "inet") next; $5 = "n" } { print }' /etc/postfix/master.cf >"$pf/etc/master.cf"
  echo "127.0.0.1:$pf_port inet n - n - - smtpd" >>"$pf/etc/master.cf"
  [ -f /etc/postfix/dynamicmaps.cf ] && cp /etc/postfix/dynamicmaps.cf "$pf/etc/"
  script -qec "postfix -c $pf/etc check && postfix -c $pf/etc start" /dev/null >"$pf/start.log" 2>&1 ||
    { echo "bench: the private Postfix did not start: $(cat "$pf/start.log")" >&2; exit 1; }
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$pf_port") 2>/dev/null && break; sleep 0.1; done
}

postfix_side() {
  local n=${messages:-50000}
  echo "== Postfix $(postconf -h mail_version 2>/dev/null): smtp-source -> Postfix (stock, private instance) -> smtp-sink, $(commas "$n") messages =="
  start_sink postfix
  postfix_start
  $py bench/delivery_stats.py message "$from" "$rcpt" "$size" >"$dir/message.txt"
  local t0 t_acc t1 got=0 rc=0
  t0=$(now_ms)
  smtp-source -d -s "$connections" -m "$n" -F "$dir/message.txt" -f "$from" -t "$rcpt" 127.0.0.1:"$pf_port" || rc=$?
  t_acc=$(now_ms)
  [ "$rc" -eq 0 ] || echo "bench: smtp-source exited with status $rc" >&2
  while :; do
    got=$(sink_count)
    [ "$got" -ge "$n" ] && break
    if [ $(($(now_ms) - t_acc)) -ge $((wait_max * 1000)) ]; then
      echo "bench: Postfix gave up waiting: smtp-sink counted $got of $n after $wait_max s" >&2
      postfix_ok=0
      break
    fi
    sleep 0.1
  done
  t1=$(now_ms)
  postfix_stop "$dir/postfix.maillog"
  stop_sink
  eval "$($py bench/delivery_stats.py postfix "$dir/postfix.maillog")"
  local span=$((t1 - t0))
  postfix_rate=$(awk -v n="$got" -v ms="$span" 'BEGIN { printf "%.0f", n * 1000 / ms }')
  postfix_line="$(commas "$postfix_rate") messages/s delivered ($(commas "$got") in $(awk -v s="$span" 'BEGIN { printf "%.1f", s / 1000 }') s, smtp-source's start to smtp-sink's last count); arrival to delivery p50 ${p50_ms} ms, p99 ${p99_ms} ms (Postfix's delay=); accepted at $(awk -v n="$n" -v ms="$((t_acc - t0))" 'BEGIN { printf "%.0f", n * 1000 / ms }')/s; log: $(commas "$sent") sent, $deferred deferred, $bounced bounced"
  echo "Postfix: $postfix_line"
  [ "$got" -ge "$n" ] && [ "$deferred" -eq 0 ] && [ "$bounced" -eq 0 ] || postfix_ok=0
}

# --- run ------------------------------------------------------------------------------

sesame_ok=1 postfix_ok=1 sesame_line= postfix_line= sesame_rate= postfix_rate=
for side in $sides; do "${side}_side"; done
echo
echo "Delivery, $(date +%F), messages of $size bytes, 1 recipient, $connections connections, fsync on, DKIM $([ "${DKIM:-0}" = 0 ] && echo off || echo "on (Sesame: example.com, RSA-${DKIM_BITS:-2048})"):"
echo
echo "| path | result |"
echo "|---|---|"
case " $sides " in *" sesame "*)
  client="smtp_load (STARTTLS + AUTH)"
  [ "$load" = smtp ] || client="wrk (SendRawEmail, SigV4, plain HTTP)"
  echo "| Sesame: $client -> sesamed -> smtp-sink | ${sesame_line:-not measured: delivery did not complete (see above)} |" ;;
esac
case " $sides " in *" postfix "*)
  echo "| Postfix $(postconf -h mail_version 2>/dev/null), stock: smtp-source -> smtpd -> smtp-sink | ${postfix_line:-not measured} |" ;;
esac
if [ -n "$sesame_line" ] && [ -n "$postfix_line" ]; then
  echo "| Sesame / Postfix throughput | $(awk -v a="$sesame_rate" -v b="$postfix_rate" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') |"
fi
[ "$sesame_ok" -eq 1 ] && [ "$postfix_ok" -eq 1 ]
