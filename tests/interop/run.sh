#!/usr/bin/env bash
# Interop with real peers over loopback: Node's ws (client and server) and
# Python's websockets (client) against wsmachine's examples. Installs the peers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/target/interop"
mkdir -p "$work"

(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check "websockets==17.4"
fi
(cd "$root" && cargo build --quiet --release --all-features --example echo_server --example echo_client)
bin="$root/target/release/examples"

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "interop: nothing listens on $1" >&2; return 1
}

# Every permessage-deflate memory setting, in both roles
# (examples/support/deflate_setting.rs).
for setting in "" dedicated:8 shared:9 shared-no-context dedicated:1; do
  echo "interop: permessage-deflate ${setting:-default}"
  port=$(free_port)
  WSM_DEFLATE="$setting" "$bin/echo_server" "127.0.0.1:$port" >"$work/echo_server.log" 2>&1 &
  server_pid=$!
  pids+=($server_pid)
  wait_port "$port"
  timeout 60 node "$here/node_peers.mjs" client "ws://127.0.0.1:$port/"
  timeout 60 "$work/venv/bin/python" "$here/python_client.py" "ws://127.0.0.1:$port/"
  kill "$server_pid"

  port=$(free_port)
  timeout 60 node "$here/node_peers.mjs" server "$port" >"$work/node_server.log" 2>&1 &
  node_pid=$!
  pids+=($node_pid)
  wait_port "$port"
  WSM_DEFLATE="$setting" timeout 60 "$bin/echo_client" "ws://127.0.0.1:$port/"
  wait "$node_pid"
  grep -v '^listening$' "$work/node_server.log"
done

# Limits under compression: exactly the limit passes, one byte over gets 1009.
limit=$((256 * 1024))
for setting in "" dedicated:8; do
  echo "interop: limits, permessage-deflate ${setting:-default}"
  port=$(free_port)
  WSM_DEFLATE="$setting" WSM_MAX_MESSAGE=$limit "$bin/echo_server" "127.0.0.1:$port" >"$work/echo_server.log" 2>&1 &
  server_pid=$!
  pids+=($server_pid)
  wait_port "$port"
  timeout 60 node "$here/node_peers.mjs" limits "ws://127.0.0.1:$port/" "$limit"
  timeout 60 "$work/venv/bin/python" "$here/python_limits.py" "ws://127.0.0.1:$port/" "$limit"
  kill "$server_pid"
done
