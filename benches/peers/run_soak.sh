#!/usr/bin/env bash
# The permessage-deflate memory soak against every server in turn: wsmachine
# (its default, shared 12-bit windows, and dedicated states), uWebSockets'
# echo server (dedicated, as its build gives it, and a copy switched to its
# shared compressor and decompressor), yawc and sockudo-ws. Each server is
# pinned to CPU 1, the soak client to CPU 0; a server is started, soaked and
# stopped before the next. Prints a markdown table (see src/bin/soak.rs).
#
#   bash benches/peers/run_soak.sh
#
# Environment: CONNS (default 10000), SECS (default 20), ROUNDS (default 1;
# the servers take turns in an order that rotates every round), SERVERS (a
# subset, by label), PORT (default 19300), UWS (a folder for uWebSockets'
# binaries; default target/uws, built by ../shared/bench/uws/build.sh),
# CARGO_TARGET_DIR, SKIP_BUILD=1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target/peers}
CONNS=${CONNS:-10000}
SECS=${SECS:-20}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-19300}
UWS=${UWS:-$root/target/uws}
uws_src=$root/../shared/bench/uws

lock=()
if command -v flock >/dev/null; then lock=(flock "${CARGO_LOCK:-/tmp/wsm-cargo.lock}"); fi
if [ -z "${SKIP_BUILD:-}" ]; then
    CARGO_TARGET_DIR=$target timeout 1800 "${lock[@]}" cargo build --quiet --release \
        --manifest-path "$here/Cargo.toml" --bin echo_server --bin soak
    bash "$uws_src/build.sh" "$UWS" >/dev/null
    if [ ! -x "$UWS/uws_echo_shared" ]; then
        # The same server with uWebSockets' shared compressor and decompressor.
        sed 's/uWS::DEDICATED_COMPRESSOR | uWS::DEDICATED_DECOMPRESSOR/uWS::SHARED_COMPRESSOR | uWS::SHARED_DECOMPRESSOR/' \
            "$uws_src/echo.cpp" >"$UWS/echo_shared.cpp"
        grep -q SHARED_COMPRESSOR "$UWS/echo_shared.cpp"
        g++ -O3 -std=c++20 -DLIBUS_NO_SSL -I"$uws_src/vendor/uSockets/src" -I"$uws_src/vendor/uWebSockets-src" \
            "$UWS/echo_shared.cpp" "$UWS"/obj/*.o -lz -o "$UWS/uws_echo_shared"
    fi
fi
bin=$target/release

# label|environment|command (PORT is replaced).
servers=(
    "wsmachine default (shared:12)||$bin/echo_server wsmachine PORT deflate"
    "wsmachine dedicated:8|WSM_DEFLATE=dedicated:8|$bin/echo_server wsmachine PORT deflate"
    "wsmachine shared-no-context|WSM_DEFLATE=shared-no-context|$bin/echo_server wsmachine PORT deflate"
    "uWebSockets dedicated||$UWS/uws_echo PORT"
    "uWebSockets shared||$UWS/uws_echo_shared PORT"
    "yawc||$bin/echo_server yawc PORT deflate"
    "sockudo-ws||$bin/echo_server sockudo-ws PORT deflate"
)

ulimit -n "$(ulimit -Hn)"
echo "soak: $CONNS connections, $SECS s of JSON echoes, then 2 s idle; $(date -u +%F), $(nproc) CPUs"
echo
echo "| server | connections | RSS per connection, all connected | RSS per connection, idle after traffic | peak RSS | echoes/s | extension answered |"
echo "|---|---:|---:|---:|---:|---:|---|"
n=${#servers[@]}
for round in $(seq 0 $((ROUNDS - 1))); do
    for k in $(seq 0 $((n - 1))); do
        entry=${servers[$(((k + round) % n))]}
        IFS='|' read -r label env command <<<"$entry"
        if [ -n "${SERVERS:-}" ] && [[ "$SERVERS" != *"$label"* ]]; then continue; fi
        # shellcheck disable=SC2086
        env $env timeout $((SECS + 300)) taskset -c 0 "$bin/soak" --conns "$CONNS" --secs "$SECS" \
            --label "$label" --port "$PORT" -- taskset -c 1 ${command//PORT/$PORT} \
            || echo "| $label | failed |"
        PORT=$((PORT + 1))
    done
done
