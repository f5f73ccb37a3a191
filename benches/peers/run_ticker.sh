#!/usr/bin/env bash
# A ticker over loopback: CONNS subscribers, RATE updates a second of a
# JSON message of about 1 KiB, for wsmachine (the tokio adapter's
# broadcast of one PreparedMessage), tokio-tungstenite (a tokio broadcast
# channel, a task per connection) and sockudo-ws (its pub/sub).
#
#   bash benches/peers/run_ticker.sh
#
# Each run starts one server pinned to SERVER_CPU and the client
# (`ticker client`, wsmachine's tokio client) pinned to CLIENT_CPU; the
# client connects every subscriber, warms up WARM seconds, then measures
# SECS seconds: every update's delivery latency (stamped by the server
# just before it hands the update to its library, read by the client on
# arrival). The server's CPU time over that window comes from
# /proc/PID/stat. The servers take turns in an order that rotates every
# round; a cell is the median over the rounds. Every run is a line of OUT.
#
# Environment: CONNS (10000), RATE (10), SECS (10), WARM (3), ROUNDS (3),
#   SERVERS ("wsmachine tokio-tungstenite sockudo-ws"), SERVER_CPU (1),
#   CLIENT_CPU (0), PORT (19300), OUT (default benches/peers/ticker_results.tsv),
#   CARGO_TARGET_DIR (default target/peers), SKIP_BUILD=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target/peers}
CONNS=${CONNS:-10000} RATE=${RATE:-10} SECS=${SECS:-10} WARM=${WARM:-3} ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"wsmachine tokio-tungstenite sockudo-ws"}
SERVER_CPU=${SERVER_CPU:-1} CLIENT_CPU=${CLIENT_CPU:-0} PORT=${PORT:-19300}
OUT=${OUT:-$here/ticker_results.tsv}

# Each side holds CONNS sockets.
ulimit -n $((CONNS + 1024)) 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((CONNS + 100)) ]; then
  echo "ticker: open files limited to $(ulimit -n), fewer than CONNS=$CONNS needs" >&2
  exit 1
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --quiet --release --manifest-path "$here/Cargo.toml" --target-dir "$target" --bin ticker
fi
bin="$target/release/ticker"
tick=$(getconf CLK_TCK)
# User and system CPU ticks of a process.
cpu_ticks() { awk '{print $14 " " $15}' "/proc/$1/stat"; }

read -ra servers <<<"$SERVERS"
printf 'date\tround\tserver\tconns\trate\tsecs\tserver_cpu_percent\tserver_sys_percent\treceived\tp50_us\tp99_us\tp999_us\tmax_us\n' >"$OUT"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
for round in $(seq 1 "$ROUNDS"); do
  for turn in $(seq 0 $((${#servers[@]} - 1))); do
    server=${servers[$(((round - 1 + turn) % ${#servers[@]}))]}
    port=$((PORT + turn))
    # Not under `timeout`: $! must be the server itself, whose CPU time is
    # read; it is stopped by its PID after the client, or by the trap.
    taskset -c "$SERVER_CPU" "$bin" server "$server" "$port" "$RATE" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.1
    done
    t0= t1= result=
    while read -r line; do
      case $line in
        start) t0=$(cpu_ticks "$pid") ;;
        end) t1=$(cpu_ticks "$pid") ;;
        result*) result=$line ;;
      esac
    done < <(timeout $((SECS + WARM + 240)) taskset -c "$CLIENT_CPU" "$bin" client "$port" "$CONNS" "$SECS" "$WARM")
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    if [ -z "$result" ] || [ -z "$t0" ] || [ -z "$t1" ]; then
      echo "ticker: $server, round $round: no result" >&2
      continue
    fi
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$result"; }
    read -r u0 s0 <<<"$t0"
    read -r u1 s1 <<<"$t1"
    cpu=$(awk -v a=$((u0 + s0)) -v b=$((u1 + s1)) -v hz="$tick" -v s="$SECS" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')
    sys=$(awk -v a="$s0" -v b="$s1" -v hz="$tick" -v s="$SECS" 'BEGIN { printf "%.1f", (b - a) * 100 / hz / s }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$round" "$server" \
      "$(field connected)" "$RATE" "$SECS" "$cpu" "$sys" "$(field received)" "$(field p50_us)" "$(field p99_us)" \
      "$(field p999_us)" "$(field max_us)" >>"$OUT"
    echo "round $round, $server: server CPU $cpu% (system $sys%), $result"
  done
done

# The table: medians over the rounds.
echo
echo "| server | subscribers | updates/s | server CPU | of it in the kernel | delivered/s | p50 | p99 | p99.9 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for server in "${servers[@]}"; do
  awk -F'\t' -v s="$server" -v secs="$SECS" '
    function median(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    NR > 1 && $3 == s { n++; cpu[n] = $7; sys[n] = $8; got[n] = $9 / secs; p50[n] = $10; p99[n] = $11; p999[n] = $12; conns = $4; rate = $5 }
    END {
      if (!n) { printf "| %s | failed | | | | | | | |\n", s; exit }
      printf "| %s | %s | %s | %.1f%% | %.1f%% | %.0f | %.1f ms | %.1f ms | %.1f ms |\n", s, conns, rate,
        median(cpu, n), median(sys, n), median(got, n), median(p50, n) / 1000, median(p99, n) / 1000, median(p999, n) / 1000
    }' "$OUT"
done
