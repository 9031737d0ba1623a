#!/usr/bin/env bash
# Side-by-side: IntelMQ's standard chain vs Liaison's pipeline on the same generated input.
#
#   bench/intel/run_intelmq.sh [ROWS]      (default 200000; not run in CI)
#
# IntelMQ side (in-process, IntelMQ 3.x library mode, no Redis): generic CSV parser ->
# maxmind_geoip expert (real 2018 GeoLite2-City from the maxminddb-geolite2 package) ->
# asn_lookup expert (pyasn, with an IPASN file of the synthetic world) -> file output.
# Liaison side: the `bench` example (parse -> enrich -> route -> aggregate) with the same
# GeoLite2-City plus the generated country+ASN MMDB.
# Both read the IP-only rows of the generated feed (IntelMQ's generic parser maps one column to
# one field, so URL rows would only exercise its error path).
set -euo pipefail
ROWS="${1:-200000}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="$HERE/data"
VENV="$HERE/.venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-intel}"
mkdir -p "$DATA"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q 'intelmq==3.5.*' maxminddb-geolite2 geoip2
# pyasn builds a C extension; the chain runs without the ASN expert if it fails.
"$VENV/bin/pip" install -q 'pyasn==1.6.0b1' || echo "pyasn install failed: IntelMQ runs without asn_lookup" >&2
CITY="$("$VENV/bin/python" -c 'import _maxminddb_geolite2, os; print(os.path.join(os.path.dirname(_maxminddb_geolite2.__file__), "GeoLite2-City.mmdb"))')"

(cd "$ROOT" && cargo build --release -q -p liaison-intel --examples)
BIN="$CARGO_TARGET_DIR/release/examples"
"$BIN/genfeed" "$ROWS" "$DATA/feed.csv" "$DATA/demo.mmdb" 42 "$DATA/demo.ipasn"
awk -F, 'NR==1 || $3==""' "$DATA/feed.csv" > "$DATA/feed-ip.csv"
echo "input: $(($(wc -l < "$DATA/feed-ip.csv") - 1)) IP rows of $ROWS generated"

LIAISON="$("$BIN/bench" "$DATA/feed-ip.csv" "$CITY" "$DATA/demo.mmdb" 2>/dev/null | grep '^RESULT')"
echo "liaison: $LIAISON"
INTELMQ="$("$VENV/bin/python" "$HERE/intelmq_chain.py" "$DATA/feed-ip.csv" "$CITY" "$DATA/demo.ipasn" 2> "$DATA/intelmq.log")"
echo "intelmq: $INTELMQ"
# Two comparisons: wall clock (both sides share the machine as it is), and work per CPU-second
# (load-independent; IntelMQ processes one message at a time, Liaison uses two threads).
"$VENV/bin/python" - "$LIAISON" "$INTELMQ" <<'PY'
import json, re, sys
l = dict(re.findall(r"(\w+)=([0-9.]+)", sys.argv[1]))
i = json.loads(sys.argv[2])
lw, iw = float(l["events_per_sec"]), float(i["events_per_sec"])
lc = float(l["accepted"]) / max(float(l["cpu_seconds"]), 0.01)
ic = float(i["events"]) / max(float(i["cpu_seconds"]), 0.01)
print(f"wall:        Liaison {lw:,.0f} ev/s vs IntelMQ {iw:,.0f} ev/s = {lw / iw:,.0f}x")
print(f"per CPU-sec: Liaison {lc:,.0f} ev/cpu-s vs IntelMQ {ic:,.0f} ev/cpu-s = {lc / ic:,.0f}x")
PY
