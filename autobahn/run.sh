#!/usr/bin/env bash
# Runs the Autobahn testsuite against wsmachine in both roles and compares every
# case with autobahn/expected.json:
#   server role: wstest's fuzzing client against examples/echo_server
#   client role: examples/autobahn_client against wstest's fuzzing server
# AUTOBAHN_CASES="12.*,13.*" runs only those cases (compared with their expected
# results); WSM_DEFLATE chooses permessage-deflate's memory setting in both
# testees (see examples/support/deflate_setting.rs).
# Installs autobahntestsuite from PyPI into a Python 2.7 virtualenv (it runs on
# Python 2.7 only). Usage: bash autobahn/run.sh [--update-expected]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
work="${AUTOBAHN_WORK:-$root/target/autobahn}"
mkdir -p "$work"

# --- Python 2.7 and the suite --------------------------------------------------
find_python27() {
  local candidates=()
  command -v pyenv >/dev/null 2>&1 && candidates+=("$(pyenv root)"/versions/2.7*/bin/python2.7)
  candidates+=("$HOME"/.pyenv/versions/2.7*/bin/python2.7 /usr/bin/python2.7 /usr/local/bin/python2.7)
  command -v python2.7 >/dev/null 2>&1 && candidates+=("$(command -v python2.7)")
  for p in "${candidates[@]}"; do
    [ -x "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (2, 7)' 2>/dev/null && { echo "$p"; return 0; }
  done
  return 1
}
venv="$work/venv"
if [ ! -x "$venv/bin/wstest" ]; then
  py27="$(find_python27)" || {
    echo "autobahn: no Python 2.7 found (looked in pyenv, ~/.pyenv, /usr/bin, PATH)." >&2
    echo "autobahn: the Autobahn testsuite runs on Python 2.7 only; install one (pyenv install 2.7.18)." >&2
    exit 2
  }
  echo "autobahn: installing autobahntestsuite with $py27"
  "$py27" -m pip install --quiet --disable-pip-version-check "virtualenv==20.15.1"
  "$py27" -m virtualenv --quiet "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "autobahntestsuite==25.10.1"
fi
# wsaccel: C masking and UTF-8 validation for wstest, which otherwise XORs every
# byte in Python and spends most of sections 12-13 (1,000 messages a case) doing it.
if ! "$venv/bin/python" -c 'import wsaccel' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "wsaccel==0.6.6"
fi
"$venv/bin/wstest" --autobahnversion | tail -2

# --- the testees ---------------------------------------------------------------
(cd "$root" && cargo build --quiet --release --all-features --example echo_server --example autobahn_client)
bin="$root/target/release/examples"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() { # wait up to 10 s for a listener on 127.0.0.1:$1
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "autobahn: nothing listens on port $1" >&2
  return 1
}

cp "$here/fuzzingclient.json" "$here/fuzzingserver.json" "$work/"
cd "$work"
subset=()
if [ -n "${AUTOBAHN_CASES:-}" ]; then
  python3 - "$AUTOBAHN_CASES" fuzzingclient.json fuzzingserver.json <<'PY'
import json, sys
cases = sys.argv[1].split(",")
for path in sys.argv[2:]:
    with open(path) as f:
        spec = json.load(f)
    spec["cases"] = cases
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
PY
  subset=(--subset)
  echo "autobahn: cases ${AUTOBAHN_CASES}, deflate ${WSM_DEFLATE:-default}"
fi
rm -rf reports
start=$(date +%s)

echo "autobahn: server role (fuzzing client -> echo_server)"
"$bin/echo_server" 127.0.0.1:9002 >"$work/echo_server.log" 2>&1 &
pids+=($!)
wait_port 9002
timeout 1800 "$venv/bin/wstest" -m fuzzingclient -s fuzzingclient.json >"$work/fuzzingclient.log" 2>&1

echo "autobahn: client role (autobahn_client -> fuzzing server)"
timeout 1800 "$venv/bin/wstest" -m fuzzingserver -s fuzzingserver.json >"$work/fuzzingserver.log" 2>&1 &
pids+=($!)
wait_port 9003
timeout 1800 "$bin/autobahn_client" ws://127.0.0.1:9003

echo "autobahn: both roles took $(( $(date +%s) - start )) s"
python3 "$here/compare.py" "$here/expected.json" reports/server/index.json reports/client/index.json "${subset[@]}" "$@"
