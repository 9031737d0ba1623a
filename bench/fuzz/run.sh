#!/usr/bin/env bash
# Runs one fuzz target on idle CPU only and keeps its log:
#   bench/fuzz/run.sh <target> <seconds> [extra libFuzzer flags...]
# The log (bench/fuzz/logs/<target>-<UTC time>.log) ends with libFuzzer's final statistics and
# the process's CPU time. Needs cargo-fuzz and the nightly toolchain.
set -euo pipefail
target=$1
secs=$2
shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
log="$root/bench/fuzz/logs/$target-$(date -u +%Y%m%dT%H%M%SZ).log"
features=()
case "$target" in peer_file | evidence_package | taxii_query) features=(--features service) ;; esac
cd "$root/fuzz"
mkdir -p "corpus/$target"
start=$(date +%s)
# `time` reports the CPU the fuzzer actually got (it runs at nice 19 beside other work).
# NO_BUILD=1 runs the binary `cargo fuzz build -s none` left, without taking cargo's build lock
# (so a run can start while another target builds). CPU_SECS=N runs the built binary until it
# has had N seconds of CPU (user+sys), then stops it.
flags=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "$@")
if [ -n "${CPU_SECS:-}" ]; then
  # Stop on CPU time, not wall time: at nice 19 beside builds a run gets only part of a core,
  # so `-max_total_time` (wall) would under-spend the budget. libFuzzer stops on SIGINT and
  # still prints its final statistics.
  mkdir -p "artifacts/$target"
  flags=(-max_total_time=86400 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "$@")
  ( nice -n 19 "target/x86_64-unknown-linux-gnu/release/$target" -artifact_prefix="artifacts/$target/" \
      "corpus/$target" "${flags[@]}" >"$log" 2>&1 ) &
  sub=$!
  sleep 1
  pid=$(pgrep -P "$sub" -f "release/$target" | head -1 || true)
  [ -n "$pid" ] || pid=$sub
  tck=$(getconf CLK_TCK)
  cpu=0
  while kill -0 "$pid" 2>/dev/null; do
    # utime + stime of the fuzzer (fields 14 and 15 of /proc/PID/stat).
    cpu=$(awk -v t="$tck" '{ printf "%d", ($14 + $15) / t }' "/proc/$pid/stat" 2>/dev/null || echo "$cpu")
    if [ "$cpu" -ge "$CPU_SECS" ]; then kill -INT "$pid"; break; fi
    sleep 5
  done
  wait "$sub" || true
  m=$(( cpu / 60 )); s=$(( cpu % 60 ))
  { echo; echo "real	0m0s"; echo "user	${m}m${s}.000s"; echo "sys	0m0.000s"; echo "cpu_budget_seconds: $CPU_SECS"; } >>"$log"
elif [ "${NO_BUILD:-}" = 1 ]; then
  mkdir -p "artifacts/$target"
  { time nice -n 19 "target/x86_64-unknown-linux-gnu/release/$target" -artifact_prefix="artifacts/$target/" \
      "corpus/$target" "${flags[@]}" ; } >"$log" 2>&1 || true
else
  { time CARGO_BUILD_JOBS=1 nice -n 19 cargo +nightly fuzz run -s none "${features[@]}" "$target" "corpus/$target" -- \
      "${flags[@]}" ; } >"$log" 2>&1 || true
fi
echo "wall_seconds: $(( $(date +%s) - start ))" >>"$log"
echo "$log"
