# Sourced by the benchmark scripts: one fresh instance at a time in $dir/i, as the method
# in bench/README.md says (sesame init --mode capture --production, quota and rate out of
# the way, bench@example.com verified). Needs $build and $dir; sets $pid and $port.
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT

start() { # $1: store.fsync, true or false
  rm -rf "$dir/i"
  port=$((30000 + RANDOM % 20000))
  "$build/sesame" init --dir "$dir/i" --port-base "$port" --mode capture --production >/dev/null
  sed -i "s/^fsync = .*/fsync = $1/" "$dir/i/sesame.conf"
  # THREADS=N: server.threads (default: one I/O thread per core)
  [ -z "${THREADS:-}" ] || printf "\n[server]\nthreads = %s\n" "$THREADS" >> "$dir/i/sesame.conf"
  "$build/sesame" -c "$dir/i/sesame.conf" account set --quota 1000000000 --rate 1000000 >/dev/null
  "$build/sesame" -c "$dir/i/sesame.conf" identity verify --force bench@example.com >/dev/null
  "$build/sesamed" -c "$dir/i/sesame.conf" 2>"$dir/log" &
  pid=$!
  for _ in $(seq 50); do grep -q "sesamed ready" "$dir/log" && break; sleep 0.1; done
  sleep 0.5
}

stop() {
  kill "$pid"; wait "$pid" || true; pid=
}
