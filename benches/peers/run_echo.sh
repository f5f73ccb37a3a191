#!/usr/bin/env bash
# Closed-loop echo load: each library's echo server (one thread each), the
# neutral raw client `load` (one thread), over 127.0.0.1. Prints a markdown
# table: messages per second, and p50 / p99 round-trip latency.
#
#   bash benches/peers/run_echo.sh
#
# Each case runs ROUNDS times (default 3) for SECS measured seconds (default
# 1), the libraries taking turns in an order that rotates every round; a cell
# is the round with the median rate. By default the client and the servers
# are pinned to one CPU (PIN=same, with taskset): a round trip then costs
# what the two programs and the kernel spend on it, instead of mostly the
# wake-up of an idle CPU, which on a VM can take 50-100 us and swamps the
# libraries' differences. PIN=none leaves placement to the scheduler.
#
# Environment: SECS, ROUNDS, PIN (same | none), SIZES (default "16 65536"),
# CONNS (default "1 16 64"), BASE_PORT (default 19100; the servers take
# BASE_PORT..BASE_PORT+3), CARGO_TARGET_DIR, SKIP_BUILD=1 (use the binaries
# already built).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/target}
SECS=${SECS:-1}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-same}
SIZES=${SIZES:-16 65536}
CONNS=${CONNS:-1 16 64}
BASE_PORT=${BASE_PORT:-19100}
libs=(wsmachine tungstenite fastwebsockets tokio-websockets)

# Builds share a lock with anything else building on this machine.
lock=()
if command -v flock >/dev/null; then lock=(flock "${CARGO_LOCK:-/tmp/wsm-cargo.lock}"); fi
if [ -z "${SKIP_BUILD:-}" ]; then
    CARGO_TARGET_DIR=$target timeout 1800 "${lock[@]}" cargo build --quiet --release \
        --manifest-path "$here/Cargo.toml" --bin echo_server --bin load
fi
bin=$target/release

pin=()
if [ "$PIN" = same ] && command -v taskset >/dev/null; then
    pin=(taskset -c "$(( $(nproc) - 1 ))")
fi

read -r -a sizes <<<"$SIZES"
read -r -a conns <<<"$CONNS"
cases=$(( ${#sizes[@]} * ${#conns[@]} ))
# Every server stops by itself after the whole run could have taken.
server_secs=$(( cases * ${#libs[@]} * ROUNDS * (SECS + 15) + 60 ))

logs=$(mktemp -d)
pids=()
cleanup() {
    # Only the servers this script started, by PID.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$logs"
}
trap cleanup EXIT

for i in "${!libs[@]}"; do
    port=$((BASE_PORT + i))
    timeout "$server_secs" "${pin[@]}" "$bin/echo_server" "${libs[$i]}" "$port" \
        2>"$logs/${libs[$i]}.log" &
    pids+=($!)
done
for lib in "${libs[@]}"; do
    for _ in $(seq 100); do
        grep -q "on 127.0.0.1:" "$logs/$lib.log" 2>/dev/null && break
        sleep 0.05
    done
    if ! grep -q "on 127.0.0.1:" "$logs/$lib.log"; then
        echo "the $lib echo server did not start:" >&2
        cat "$logs/$lib.log" >&2
        exit 1
    fi
done

declare -A cell
n=0
for size in "${sizes[@]}"; do
    for c in "${conns[@]}"; do
        for lib in "${libs[@]}"; do : >"$logs/$lib.rounds"; done
        for ((round = 0; round < ROUNDS; round++)); do
            # The libraries take turns, starting with a different one each round.
            for turn in "${!libs[@]}"; do
                i=$(( (n + round + turn) % ${#libs[@]} ))
                lib=${libs[$i]}
                echo "  $lib: $size B x $c connections, round $((round + 1)) ..." >&2
                if out=$(timeout $((SECS + 30)) "${pin[@]}" "$bin/load" --port $((BASE_PORT + i)) \
                        --conns "$c" --size "$size" --secs "$SECS"); then
                    echo "$out" >>"$logs/$lib.rounds"
                else
                    echo "  $lib failed: $out" >&2
                fi
            done
        done
        for lib in "${libs[@]}"; do
            if [ "$(wc -l <"$logs/$lib.rounds")" -ne "$ROUNDS" ]; then
                cell[$lib,$size,$c]="failed"
                continue
            fi
            # The round with the median rate.
            cell[$lib,$size,$c]=$(awk '{
                    for (f = 1; f <= NF; f++) { split($f, kv, "="); v[kv[1]] = kv[2] }
                    print v["rate"], v["p50_us"], v["p99_us"]
                }' "$logs/$lib.rounds" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p" | awk '{
                    rate = $1 >= 1e6 ? sprintf("%.2f M", $1 / 1e6) : sprintf("%.1f k", $1 / 1e3)
                    printf "%s/s (%.0f / %.0f µs)", rate, $2, $3
                }')
        done
        n=$((n + 1))
    done
done

echo
placement="client and servers pinned to one CPU"
[ ${#pin[@]} -eq 0 ] && placement="placement left to the scheduler"
echo "Echo, one message in flight per connection; median of $ROUNDS rounds of $SECS s; $placement."
echo "Messages/s (p50 / p99 round trip)."
echo
printf '| size × connections |'
for lib in "${libs[@]}"; do printf ' %s |' "$lib"; done
printf '\n|---|'
for _ in "${libs[@]}"; do printf -- '---:|'; done
printf '\n'
for size in "${sizes[@]}"; do
    for c in "${conns[@]}"; do
        label=$size
        if (( size >= 1024 )); then label="$((size / 1024)) KiB"; else label="$size B"; fi
        printf '| %s × %s |' "$label" "$c"
        for lib in "${libs[@]}"; do printf ' %s |' "${cell[$lib,$size,$c]}"; done
        printf '\n'
    done
done
for lib in "${libs[@]}"; do
    # Anything a server reported beyond its start line.
    if [ "$(grep -vc "on 127.0.0.1:" "$logs/$lib.log")" -gt 0 ]; then
        echo >&2
        echo "$lib server log:" >&2
        grep -v "on 127.0.0.1:" "$logs/$lib.log" | sort | uniq -c | head -5 >&2
    fi
done
