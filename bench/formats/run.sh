#!/usr/bin/env bash
# STIX 2.1 and MISP at scale (docs/intel-formats.md): ingests a generated feed of ROWS rows
# (default 200,000) into a fresh node, exports it as a STIX bundle, MISP events and a MISP
# feed, then imports the STIX bundle and the MISP events into a second fresh node. Prints
# wall time and peak RSS of each step (GNU time).
#   bench/formats/run.sh [ROWS]
# Needs release builds: CARGO_TARGET_DIR=/work/target-rel cargo build --release -p liaison-cli
#   -p liaison-intel --example genfeed   (or set BIN and GENFEED).
set -euo pipefail
rows=${1:-200000}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-/work/target-rel}
bin=${BIN:-$target/release/liaison}
genfeed=${GENFEED:-$target/release/examples/genfeed}
work=$(mktemp -d /var/tmp/liaison-formats.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { # NAME CMD...: runs CMD, prints "NAME wall_s peak_rss_MB"
  local name=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/$name.out" 2>"$work/$name.err" || {
    cat "$work/$name.err" >&2
    exit 1
  }
  read -r wall rss <"$work/time"
  printf '%-28s %8.2f s %8.0f MB\n' "$name" "$wall" "$((rss / 1024))"
}
"$genfeed" "$rows" "$work/feed.csv" "$work/demo.mmdb" 42 >/dev/null
echo "rows: $rows ($(du -h "$work/feed.csv" | cut -f1) CSV)"
for n in a b; do
  "$bin" --data-dir "$work/$n" init --agency-code FBI --agency-name "Federal Bureau of Investigation" \
    --jurisdiction US --time-zone America/New_York --json >/dev/null 2>&1
done
# The bundle of a large export is over the default 100 MiB cap: node b names a source with a
# cap of 2 GiB for it.
printf '\n[intel.sources.big-stix]\nformat = "stix"\nfeed = "export"\nlimits = { max_document_bytes = 2147483648 }\n' >>"$work/b/liaison.toml"
step ingest-csv "$bin" --data-dir "$work/a" intel ingest "$work/feed.csv" --format liaison --mmdb "$work/demo.mmdb" --json
step export-stix "$bin" --data-dir "$work/a" intel export --format stix --out "$work/export.stix.json" --json
step export-misp "$bin" --data-dir "$work/a" intel export --format misp --out "$work/export.misp.json" --json
step export-misp-feed "$bin" --data-dir "$work/a" intel export --format misp-feed --out "$work/feed" --json
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
echo "exported: $(field "$work/export-stix.out" indicators) indicators, STIX $(field "$work/export-stix.out" objects) objects $(du -h "$work/export.stix.json" | cut -f1), MISP $(du -h "$work/export.misp.json" | cut -f1)"
step import-stix "$bin" --data-dir "$work/b" intel ingest "$work/export.stix.json" --format big-stix --json
step import-misp "$bin" --data-dir "$work/b" intel ingest "$work/export.misp.json" --format misp --json
echo "imported: $(field "$work/import-stix.out" new_indicators) new from STIX; then from MISP $(field "$work/import-misp.out" new_indicators) new, $(field "$work/import-misp.out" resightings) resightings"
