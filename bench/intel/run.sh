#!/usr/bin/env bash
# Liaison clean-up pipeline benchmark: 10 million generated rows, full pipeline
# (parse -> enrich -> route -> aggregate), events/s and peak RSS.
#
#   bench/intel/run.sh [ROWS] [RUNS] [EXTRA.mmdb...]     (defaults: 10000000 rows, 3 runs)
#
# Uses the crate's generator (`genfeed` example) for the CSV and a generated country+ASN MMDB;
# extra MMDB files (for example a real GeoLite2-City) are compiled in front of it.
set -euo pipefail
ROWS="${1:-10000000}"
RUNS="${2:-3}"
shift $(( $# > 2 ? 2 : $# ))
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="$HERE/data"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-intel}"
mkdir -p "$DATA"
(cd "$ROOT" && cargo build --release -q -p liaison-intel --examples)
BIN="$CARGO_TARGET_DIR/release/examples"
FEED="$DATA/feed-$ROWS.csv"
[ -f "$FEED" ] || "$BIN/genfeed" "$ROWS" "$FEED" "$DATA/demo.mmdb" 42
[ -f "$DATA/demo.mmdb" ] || "$BIN/genfeed" 10 /dev/null "$DATA/demo.mmdb" 42
echo "input: $FEED ($(du -h "$FEED" | cut -f1)), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  "$BIN/bench" "$FEED" "$@" "$DATA/demo.mmdb" 2>/dev/null | grep -E '^(pipeline|cpu|RESULT)'
done
