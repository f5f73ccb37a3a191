#!/usr/bin/env bash
# Echo throughput under uWebSockets' own load generator (`load_test`, the
# client behind fastwebsockets' and tokio-websockets' published echo tables):
# wsmachine, uWebSockets' echo server and the Rust peers, one at a time,
# each pinned to one CPU with the client on another. Prints a markdown table
# per case and writes every sample to OUT.
#
#   bash benches/peers/run_load.sh
#
# load_test keeps one message in flight on each of N connections and prints
# `Msg/sec: X` every 4 s once every connection is up; the first window is
# warm-up and is dropped. A cell is the median of all the other windows of
# all rounds. Each round runs every case against every server, the servers
# taking turns in an order that rotates every round (and every case); each
# server is started (bounded by `timeout`, on a port of its own), waited for,
# loaded for SECS seconds, and stopped by its PID.
#
# Environment:
#   SECS (default 13: the warm-up window and two measured ones), ROUNDS (3),
#   CASES (default "100x20 500x16384 100x20-deflate": CONNECTIONSxBYTES,
#     -deflate for permessage-deflate, load_test's DEFLATE argument 1),
#   SERVERS (a subset of: wsmachine uWebSockets sockudo-ws tokio-websockets
#     fastwebsockets yawc tungstenite; a -deflate case runs only those with
#     permessage-deflate: wsmachine uWebSockets sockudo-ws yawc),
#   RUNTIME (multi | current: the Rust servers' tokio runtime; default multi,
#     as many workers as CPUs in SERVER_CPU unless ECHO_WORKERS=N),
#   SERVER_CPU (default 1), CLIENT_CPU (default 0): taskset CPU lists,
#   BASE_PORT (default 19400), OUT (default benches/peers/load_results.tsv),
#   UWS (the folder for load_test and uws_echo; default $CARGO_TARGET_DIR/uws),
#   UWS_SRC (the folder of uWebSockets' build.sh; default ../shared/bench/uws
#     beside the repository), CARGO_TARGET_DIR (default target/peers),
#   SKIP_BUILD=1 (use the binaries already built). WSM_DEFLATE and
#   ECHO_WORKERS reach echo_server as they are.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target/peers}
UWS=${UWS:-$target/uws}
UWS_SRC=${UWS_SRC:-$here/../../../shared/bench/uws}
SECS=${SECS:-13}
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-100x20 500x16384 100x20-deflate}
all_servers=(wsmachine uWebSockets sockudo-ws tokio-websockets fastwebsockets yawc tungstenite)
deflate_servers=" wsmachine uWebSockets sockudo-ws yawc "
SERVERS=${SERVERS:-${all_servers[*]}}
RUNTIME=${RUNTIME:-multi}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BASE_PORT=${BASE_PORT:-19400}
OUT=${OUT:-$here/load_results.tsv}

die() {
    echo "run_load: $*" >&2
    exit 2
}
case $RUNTIME in multi | current) ;; *) die "RUNTIME=$RUNTIME: multi or current" ;; esac
[[ $SECS =~ ^[0-9]+$ ]] || die "SECS=$SECS: a number of seconds"
[[ $ROUNDS =~ ^[0-9]+$ ]] && ((ROUNDS > 0)) || die "ROUNDS=$ROUNDS: 1 or more"
if ((SECS < 8)); then
    echo "run_load: SECS=$SECS leaves no window after the warm-up one (every 4 s): no samples will be kept" >&2
fi

# The servers asked for, in the table's order.
read -r -a wanted <<<"$SERVERS"
for s in "${wanted[@]}"; do
    [[ " ${all_servers[*]} " == *" $s "* ]] || die "SERVERS: unknown server $s (${all_servers[*]})"
done
servers=()
for s in "${all_servers[@]}"; do
    [[ " ${wanted[*]} " == *" $s "* ]] && servers+=("$s")
done
read -r -a cases <<<"$CASES"
for c in "${cases[@]}"; do
    [[ $c =~ ^[0-9]+x[0-9]+(-deflate)?$ ]] || die "CASES: $c is not CONNECTIONSxBYTES[-deflate]"
done

# Builds share a lock with anything else building on this machine.
lock=()
if command -v flock >/dev/null; then lock=(flock "${CARGO_LOCK:-/tmp/wsm-cargo.lock}"); fi
if [ -z "${SKIP_BUILD:-}" ]; then
    bash "$UWS_SRC/build.sh" "$UWS" >/dev/null
    CARGO_TARGET_DIR=$target timeout 1800 "${lock[@]}" cargo build --quiet --release \
        --manifest-path "$here/Cargo.toml" --bin echo_server
fi
bin=$target/release
for b in "$UWS/load_test" "$UWS/uws_echo" "$bin/echo_server"; do
    [ -x "$b" ] || die "$b is missing (build it, or unset SKIP_BUILD)"
done
# For the -deflate cases: uWebSockets' echo server replying uncompressed.
# load_test counts every reply as the uncompressed message, so a compressed
# reply breaks it; wsmachine and sockudo-ws send 20 B as they are (below
# their compression thresholds), so this is the same work: inflate, reply.
if [[ " ${cases[*]} " == *-deflate* ]] && [[ " ${servers[*]} " == *" uWebSockets "* ]] &&
    [ ! -x "$UWS/uws_echo_plain" ]; then
    sed 's/ws->send(message, opCode, true)/ws->send(message, opCode, false)/' \
        "$UWS_SRC/echo.cpp" >"$UWS/echo_plain.cpp"
    grep -q 'opCode, false' "$UWS/echo_plain.cpp" || die "echo.cpp changed: cannot make uws_echo_plain"
    g++ -O3 -std=c++20 -DLIBUS_NO_SSL -I"$UWS_SRC/vendor/uSockets/src" -I"$UWS_SRC/vendor/uWebSockets-src" \
        "$UWS/echo_plain.cpp" "$UWS"/obj/*.o -lz -o "$UWS/uws_echo_plain"
fi

ulimit -n "$(ulimit -Hn)"
logs=$(mktemp -d)
server_pid=
client_pid=
cleanup() {
    # Only the processes this script started, by PID.
    local pid
    for pid in $client_pid $server_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# The servers of a case, in the table's order.
case_servers() {
    local s
    for s in "${servers[@]}"; do
        if [[ $1 != *-deflate ]] || [[ $deflate_servers == *" $s "* ]]; then echo "$s"; fi
    done
}

runs=0
for c in "${cases[@]}"; do runs=$((runs + $(case_servers "$c" | wc -l))); done
echo "run_load: $((runs * ROUNDS)) runs of $((SECS + 1)) s (about $((runs * ROUNDS * (SECS + 2) / 60 + 1)) min)" >&2

now=$(date -u '+%F %T UTC')
printf 'date\tround\tcase\tserver\truntime\twindow\tmsg_per_s\tkept\tstatus\n' >"$OUT"
declare -A status # case,server -> the reasons of the runs that failed
start_failed=0
workers=
port=$BASE_PORT
ci=0
for ((round = 1; round <= ROUNDS; round++)); do
    for c in "${cases[@]}"; do
        mapfile -t these < <(case_servers "$c")
        n=${#these[@]}
        conns=${c%%x*}
        size=${c#*x}
        size=${size%-deflate}
        deflate=0
        [[ $c == *-deflate ]] && deflate=1
        for ((turn = 0; turn < n; turn++)); do
            server=${these[$(((round - 1 + ci + turn) % n))]}
            # A port nothing listens on.
            for _ in $(seq 100); do
                listening "$port" || break
                port=$((port + 1))
            done
            if [ "$server" = uWebSockets ] && [ $deflate = 1 ]; then
                command=("$UWS/uws_echo_plain" "$port")
                runtime=uWebSockets
            elif [ "$server" = uWebSockets ]; then
                command=("$UWS/uws_echo" "$port")
                runtime=uWebSockets
            else
                command=(env "ECHO_RUNTIME=$RUNTIME" "$bin/echo_server" "$server" "$port")
                [ $deflate = 1 ] && command+=(deflate)
                runtime=$RUNTIME
            fi
            log=$logs/$round.$c.$server
            echo "  round $round, $c: $server on port $port ..." >&2
            : >"$log.client"
            timeout $((SECS + 30)) taskset -c "$SERVER_CPU" "${command[@]}" 2>"$log.server" >&2 &
            server_pid=$!
            for _ in $(seq 200); do
                listening "$port" && break
                kill -0 "$server_pid" 2>/dev/null || break
                sleep 0.05
            done
            reason=
            if ! listening "$port" || ! kill -0 "$server_pid" 2>/dev/null; then
                reason="did not start: $(tail -c 300 "$log.server" | tr '\n\t' '  ')"
                start_failed=1
            else
                [ -z "$workers" ] && workers=$(grep -oE 'multi-thread runtime, [0-9]+ workers?' "$log.server" || true)
                # In the background, so that a signal is handled at once.
                timeout $((SECS + 1)) stdbuf -oL taskset -c "$CLIENT_CPU" \
                    "$UWS/load_test" "$conns" 127.0.0.1 "$port" 0 "$deflate" "$size" >"$log.client" 2>&1 &
                client_pid=$!
                wait "$client_pid" || true
                client_pid=
                responses=$(grep -c '^Response:' "$log.client" || true)
                answered=$(grep -ci '^Sec-WebSocket-Extensions: *permessage-deflate' "$log.client" || true)
                closed=$(grep -c '^Closed!' "$log.client" || true)
                windows=$(grep -c '^Msg/sec:' "$log.client" || true)
                zero=$(grep -cE '^Msg/sec: 0(\.0*)?$' "$log.client" || true)
                if ! kill -0 "$server_pid" 2>/dev/null; then
                    reason="the server exited: $(tail -c 300 "$log.server" | tr '\n\t' '  ')"
                elif [ $deflate = 1 ] && [ "$answered" -lt "$responses" ]; then
                    reason="permessage-deflate not negotiated on $((responses - answered)) of $responses connections"
                elif grep -q 'outstanding bytes negative' "$log.client"; then
                    reason="an echo longer than load_test expects (it counts the reply as the uncompressed message: a compressed reply breaks it)"
                elif [ "$closed" -gt 0 ]; then
                    reason="$closed of $conns connections closed"
                elif [ "$responses" -lt "$conns" ]; then
                    reason="$responses of $conns handshakes answered"
                elif [ "$windows" -eq 0 ]; then
                    reason="no Msg/sec line"
                elif [ "$zero" -gt 0 ]; then
                    reason="stalled: $zero windows of 0 msg/s (an echo of another length than the message, e.g. compressed, stalls load_test)"
                fi
            fi
            kill "$server_pid" 2>/dev/null || true
            wait "$server_pid" 2>/dev/null || true
            server_pid=
            if [ -n "$reason" ]; then
                echo "  $server, $c, round $round failed: $reason" >&2
                status[$c,$server]+="${status[$c,$server]:+; }round $round: $reason"
            fi
            # Every window, the warm-up one with kept=0; a failed run's samples are not counted.
            awk -v date="$now" -v round="$round" -v c="$c" -v server="$server" -v runtime="$runtime" \
                -v status="${reason:-ok}" '
                    /^Msg\/sec:/ { w++; printf "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", date, round, c, server, runtime, w, $2, (w > 1 && status == "ok"), status }
                    END { if (!w) printf "%s\t%d\t%s\t%s\t%s\t\t\t0\t%s\n", date, round, c, server, runtime, status }
                ' "$log.client" >>"$OUT"
            port=$((port + 1))
        done
        ci=$((ci + 1))
    done
    ci=0
done

# The median of the kept windows of a case and server (empty if none).
median() {
    awk -F'\t' -v c="$1" -v s="$2" '$3 == c && $4 == s && $8 == 1 { print $7 }' "$OUT" | sort -g | awk '
        { v[NR] = $1 }
        END { if (NR) printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
windows() { awk -F'\t' -v c="$1" -v s="$2" '$3 == c && $4 == s && $8 == 1' "$OUT" | wc -l; }
# Server A's rate over server B's in a case: within each round (the two ran
# a minute or two apart, so a shared machine's slow drift cancels), the
# ratio of their medians; then the median of those ratios over the rounds.
paired() {
    awk -F'\t' -v c="$1" -v a="$2" -v b="$3" '
        function med(list,    n, v, i, j, t) {
            n = split(list, v, " ")
            for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        $3 == c && $8 == 1 && $4 == a { A[$2] = A[$2] " " $7 }
        $3 == c && $8 == 1 && $4 == b { B[$2] = B[$2] " " $7 }
        END {
            n = 0
            for (r in A) if (r in B) r_list = r_list " " med(A[r]) / med(B[r])
            if (r_list != "") printf "%.2f", med(r_list)
        }' "$OUT"
}
rate() { awk -v x="$1" 'BEGIN { if (x >= 1e6) printf "%.2f M", x / 1e6; else printf "%.1f k", x / 1e3 }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: *//')
command="SECS=$SECS ROUNDS=$ROUNDS CASES=\"$CASES\" SERVERS=\"${servers[*]}\" RUNTIME=$RUNTIME SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU"
[ -n "${ECHO_WORKERS:-}" ] && command+=" ECHO_WORKERS=$ECHO_WORKERS"
[ -n "${WSM_DEFLATE:-}" ] && command+=" WSM_DEFLATE=$WSM_DEFLATE"
command+=" bash benches/peers/run_load.sh"
if [ "$RUNTIME" = multi ]; then
    rust="the Rust servers on a tokio multi-thread runtime${workers:+ (${workers#multi-thread runtime, })}"
else
    rust="the Rust servers on a tokio current-thread runtime"
fi
uws_version=$(awk '$1 == "uWebSockets" { print substr($2, 1, 12) }' "$UWS_SRC/vendor/VERSIONS" 2>/dev/null || true)

echo
echo "Echo under uWebSockets' load_test${uws_version:+ ($uws_version)}: one message in flight per connection;"
echo "server pinned to CPU $SERVER_CPU, client to CPU $CLIENT_CPU; $rust."
echo "Messages/s: the median of every 4 s window after the first, over $ROUNDS round(s) of $SECS s, servers interleaved;"
echo "ratios: within each round the ratio of the two medians, then the median of those over the rounds."
echo "$now; $(nproc) CPUs; $cpu."
out=$(realpath -m "$OUT")
[[ $out == "$root"/* ]] && out=${out#"$root"/}
echo "Command: \`$command\`; samples in $out."
for c in "${cases[@]}"; do
    mapfile -t these < <(case_servers "$c")
    conns=${c%%x*}
    size=${c#*x}
    size=${size%-deflate}
    if ((size >= 1024 && size % 1024 == 0)); then label="$((size / 1024)) KiB"; else label="$size B"; fi
    title="$conns connections × $label"
    [[ $c == *-deflate ]] && title+=", permessage-deflate"
    echo
    echo "### $title"
    echo
    printf '| |'
    for s in "${these[@]}"; do printf ' %s |' "$s"; done
    printf ' wsmachine / best Rust peer | wsmachine / uWebSockets |\n|---|'
    for _ in "${these[@]}"; do printf -- '---:|'; done
    printf -- '---:|---:|\n'
    declare -A value=()
    printf '| msg/s |'
    for s in "${these[@]}"; do
        m=$(median "$c" "$s")
        if [ -n "${status[$c,$s]:-}" ]; then
            printf ' failed |'
        elif [ -z "$m" ]; then
            printf ' — |'
        else
            value[$s]=$m
            printf ' %s |' "$(rate "$m")"
        fi
    done
    best= best_name=
    for s in "${these[@]}"; do
        case $s in wsmachine | uWebSockets) continue ;; esac
        [ -n "${value[$s]:-}" ] || continue
        if [ -z "$best" ] || awk -v a="${value[$s]}" -v b="$best" 'BEGIN { exit !(a > b) }'; then
            best=${value[$s]} best_name=$s
        fi
    done
    w=${value[wsmachine]:-}
    if [ -n "$w" ] && [ -n "$best" ]; then printf ' %s (%s) |' "$(paired "$c" wsmachine "$best_name")" "$best_name"; else printf ' — |'; fi
    if [ -n "$w" ] && [ -n "${value[uWebSockets]:-}" ]; then printf ' %s |\n' "$(paired "$c" wsmachine uWebSockets)"; else printf ' — |\n'; fi
    printf '| wsmachine ÷ it, per round |'
    for s in "${these[@]}"; do
        if [ "$s" != wsmachine ] && [ -n "$w" ] && [ -n "${value[$s]:-}" ]; then printf ' %s |' "$(paired "$c" wsmachine "$s")"; else printf ' |'; fi
    done
    printf ' | |\n'
    printf '| windows |'
    for s in "${these[@]}"; do printf ' %s |' "$(windows "$c" "$s")"; done
    printf ' | |\n'
    for s in "${these[@]}"; do
        [ -n "${status[$c,$s]:-}" ] && echo && echo "$s failed: ${status[$c,$s]}"
    done
    if [[ $c == *-deflate ]]; then
        echo
        echo 'load_test sends compressed frames and counts each reply as the uncompressed message: every'
        echo 'server inflates and replies uncompressed (uWebSockets as `uws_echo_plain`, `echo.cpp` replying with'
        echo 'compress=false; wsmachine and sockudo-ws do not compress a message this small).'
    fi
    unset value
done

if ((start_failed)); then
    echo "run_load: a server could not be started" >&2
    exit 1
fi
