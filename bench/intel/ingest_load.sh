#!/usr/bin/env bash
# Ingest under load (issue #14 part 4): a ~1 GB generated feed uploaded to POST
# /api/v1/intel/ingest of a node in-process, while 64 clients run the paced request mix
# (open loop at 1,430 ops/s: 50 % create, 20 % transition = about 1,000 writes/s). Reports the
# request latencies during the ingest (the clients stop when the ingest job has finished), the
# ingest job's outcome, its longest write-lock hold, and the process's peak RSS.
#
#   bench/intel/ingest_load.sh [ROWS] [RUNS] [BACKENDS]   (defaults: 14000000 rows ≈ 1.07 GB, 3, "sqlite postgres")
#
# Needs release builds of api-load and genfeed:
#   cargo build --release -p liaison-bench --bin api-load -p liaison-intel --example genfeed
set -euo pipefail
ROWS="${1:-14000000}"
RUNS="${2:-3}"
BACKENDS="${3:-sqlite postgres}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="$HERE/data"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$CARGO_TARGET_DIR/release"
mkdir -p "$DATA"
FEED="$DATA/feed-$ROWS.csv"
[ -f "$FEED" ] || "$BIN/examples/genfeed" "$ROWS" "$FEED" "$DATA/demo.mmdb" 42
[ -f "$DATA/demo.mmdb" ] || "$BIN/examples/genfeed" 10 /dev/null "$DATA/demo.mmdb" 42
echo "feed: $FEED ($(du -h "$FEED" | cut -f1)), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for b in $BACKENDS; do
  for i in $(seq "$RUNS"); do
    extra=()
    [ "$b" = postgres ] && extra=(--postgres)
    echo "== $b run $i"
    "$BIN/api-load" --clients 64 --rate 1430 --duration 1200 --warmup 3 \
      --ingest "$FEED" --ingest-mmdb "$DATA/demo.mmdb" "${extra[@]}" 2>&1 \
      | grep -E '^\| ALL|^backend|^ingest|^process|^error' || true
  done
done
