#!/usr/bin/env bash
# Runs the fuzz targets one after another, each bounded in time and in
# executions, starting from the committed corpus and seeds.
#
#   bash fuzz/campaign.sh [--seconds N] [--runs N] [--sanitizer S] [--minimize] [target ...]
#
# --seconds N   time per target (default 30)
# --runs N      executions per target, whichever comes first (default: none)
# --sanitizer S address (default) or none
# --seed N      libFuzzer's seed (default: random); with --runs reached first,
#               a run is the same every time
# --minimize    afterwards, merge fuzz/corpus/<target>, the new inputs and the
#               seeds into a minimal fuzz/corpus/<target> (the committed one)
#
# New inputs go to fuzz/target/work/<target>/ (scratch), so a run leaves the
# committed corpus alone unless --minimize is given. A crash, timeout or
# out-of-memory stops the script with libFuzzer's exit status; the input is in
# fuzz/artifacts/<target>/. Each target's last libFuzzer line (executions,
# coverage) is printed, and kept in fuzz/target/work/<target>.log.
set -euo pipefail
cd "$(dirname "$0")"

seconds=30
runs=0
seed=0
sanitizer=address
minimize=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --sanitizer) sanitizer="$2"; shift 2 ;;
    --minimize) minimize=1; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(frame_decoder request_parser response_parser server_connection client_connection inflate)
fi

export RUSTC_BOOTSTRAP=1
# AddressSanitizer's default quarantine (256 MiB) alone takes the connection
# targets near a 512 MiB RSS limit; 64 MiB keeps them near 200 MiB.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}"

for target in "${targets[@]}"; do
  rss=512
  timeout=5
  extra=()
  if [[ $target == inflate ]]; then
    # Bombs against a 1 MiB limit and one-shot inflation up to 1 MiB per
    # message: more memory and time per input, and room for a 64 KiB payload.
    rss=2048
    timeout=10
    extra=(-max_len=65536)
  fi
  work="target/work/$target"
  mkdir -p "$work" "corpus/$target"
  log="target/work/$target.log"
  echo "==> $target: at most ${seconds}s$( ((runs > 0)) && echo " or $runs runs"), sanitizer $sanitizer"
  limit=(-max_total_time="$seconds")
  if ((runs > 0)); then limit+=(-runs="$runs"); fi
  if ((seed > 0)); then limit+=(-seed="$seed"); fi
  cargo fuzz run -s "$sanitizer" "$target" "$work" "corpus/$target" "seeds/$target" -- \
    -rss_limit_mb="$rss" -timeout="$timeout" "${extra[@]}" "${limit[@]}" \
    -print_final_stats=1 >"$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || tail -n 3 "$log"
  if ((minimize)); then
    fresh="target/work/$target.min"
    rm -rf "$fresh"
    mkdir -p "$fresh"
    cargo fuzz run -s "$sanitizer" "$target" "$fresh" "corpus/$target" "$work" "seeds/$target" -- \
      -merge=1 -rss_limit_mb="$rss" -timeout="$timeout" "${extra[@]}" >>"$log" 2>&1
    # The seeds are committed already: keep only what they do not cover.
    for kept in "seeds/$target"/*; do
      sum=$(sha1sum "$kept" | cut -d' ' -f1)
      rm -f "$fresh/$sum"
    done
    rm -rf "corpus/$target"
    mv "$fresh" "corpus/$target"
    echo "    minimized corpus: $(ls "corpus/$target" | wc -l) files, $(cat "corpus/$target"/* 2>/dev/null | wc -c) bytes"
  fi
done
