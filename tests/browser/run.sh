#!/usr/bin/env bash
# Starts the chat example and drives headless Chromium through two pages;
# then the chat across processes on a Redis of its own (chat.mjs starts the
# chat processes). Installs Debian's chromium and redis-server, and
# playwright-core (npm), if they are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "browser: installing Debian's redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

(cd "$root" && cargo build --quiet --all-features --example chat)
# The echo server in release: the 4 MiB messages are compressed at level 6.
(cd "$root" && cargo build --quiet --release --all-features --example echo_server)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$root/target/chat-example.log"
"$root/target/debug/examples/chat" "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Echo servers with each permessage-deflate memory setting, and two with a
# 256 KiB limit (examples/support/deflate_setting.rs).
pids=("$pid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
ports=("$port")
# A Redis of this test's own, in memory only, for the chat across processes.
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$root/target/redis-browser.log" 2>&1 &
pids+=($!)
ports+=("$redis_port")
echo_urls=() limit_urls=()
limit=$((256 * 1024))
for setting in default dedicated:8 dedicated:1 shared:9 shared-no-context limit:default limit:dedicated:8; do
  p=$(free_port)
  deflate="${setting#limit:}"
  [ "$deflate" = default ] && deflate=""
  if [ "${setting%%:*}" = limit ]; then
    WSM_DEFLATE="$deflate" WSM_MAX_MESSAGE=$limit "$root/target/release/examples/echo_server" "127.0.0.1:$p" >>"$root/target/echo-browser.log" 2>&1 &
    limit_urls+=("${setting#limit:}=ws://127.0.0.1:$p/")
  else
    WSM_DEFLATE="$deflate" "$root/target/release/examples/echo_server" "127.0.0.1:$p" >>"$root/target/echo-browser.log" 2>&1 &
    echo_urls+=("$setting=ws://127.0.0.1:$p/")
  fi
  pids+=($!)
  ports+=("$p")
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
    sleep 0.1
  done
done

join() { local IFS=,; echo "$*"; }
ECHO_URLS="$(join "${echo_urls[@]}")" LIMIT_URLS="$(join "${limit_urls[@]}")" LIMIT=$limit \
  CHAT_URL="http://127.0.0.1:$port/" CHAT_BIN="$root/target/debug/examples/chat" \
  REDIS_URL="redis://127.0.0.1:$redis_port/" CHAT_SCREENSHOT="$root/target/chat.png" timeout 180 node "$here/chat.mjs"
