#!/usr/bin/env bash
# TAXII 2.1 paging benchmark: the same objects, the same client (client.py), 3 runs.
#
#   run.sh [medallion]                   generate data/objects.json if missing (N objects, seed
#                                        SEED), start medallion 3.0 (memory backend), run the
#                                        client RUNS times, stop medallion, print the numbers
#   run.sh liaison URL USER TOKEN        run the client against a Liaison TAXII API root (or its
#                                        discovery URL, /taxii2/) that serves the same objects
#                                        in collection $COLLECTION
#
# Environment (defaults): N=100000  SEED=1  RUNS=3  PER_PAGE=100
#   COLLECTION=4ae3d6c2-6f44-5c4c-9b7e-4d0d7a1f2b10  MEDALLION_PORT=5501
#   MAX_RUN_S=0 (no limit; otherwise a run still going after MAX_RUN_S seconds is reported
#                incomplete, as a lower bound, and no further run starts)
# Results: data/result-<server>-<N>.json (the client's --json output) and the printed summary.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
N=${N:-100000}
SEED=${SEED:-1}
RUNS=${RUNS:-3}
PER_PAGE=${PER_PAGE:-100}
MAX_RUN_S=${MAX_RUN_S:-0}
export COLLECTION=${COLLECTION:-4ae3d6c2-6f44-5c4c-9b7e-4d0d7a1f2b10}
export MEDALLION_PORT=${MEDALLION_PORT:-5501}
export TAXII_USER=${TAXII_USER:-bench}
export TAXII_PASSWORD=${TAXII_PASSWORD:-bench-password}
mkdir -p data
if [ "$N" = 100000 ] && [ "$SEED" = 1 ]; then BUNDLE=data/objects.json
else BUNDLE=data/objects-$N-seed$SEED.json; fi
export BUNDLE

if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv
    .venv/bin/pip install -q -r requirements.txt
fi
if [ ! -f "$BUNDLE" ]; then
    .venv/bin/python gen_objects.py "$N" "$BUNDLE" --seed "$SEED"
fi

summary() {  # result.json -> one line per run and the median
    if [ ! -s "$1" ]; then echo "  client failed: no result (see its error above)"; return; fi
    .venv/bin/python - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for i, run in enumerate(r["runs"], 1):
    print("  run %d: %7d objects in %5d pages, %9.2f s, %10.1f objects/s%s" % (
        i, run["objects"], run["pages"], run["wall_s"], run["objects_per_s"] or 0,
        "" if run["ok"] else "  (" + "; ".join(run["problems"]) + ")"))
print("  median of completed runs: %s objects/s" % r["median_objects_per_s"])
EOF
}

mode=${1:-medallion}
case "$mode" in
medallion)
    echo "== medallion 3.0, memory backend, $N objects, $RUNS runs, $PER_PAGE per page ($(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg))"
    ./medallion.sh start
    trap './medallion.sh stop >/dev/null 2>&1 || true' EXIT
    out=data/result-medallion-$N.json
    status=0
    .venv/bin/python client.py "http://127.0.0.1:$MEDALLION_PORT/api1/" --user "$TAXII_USER" \
        --password "$TAXII_PASSWORD" --collection "$COLLECTION" --per-page "$PER_PAGE" --runs "$RUNS" \
        --bundle "$BUNDLE" --max-run-s "$MAX_RUN_S" --label "medallion-3.0.0-memory" --json > "$out" || status=$?
    ./medallion.sh stop
    trap - EXIT
    echo "== medallion: $N objects (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    cat data/medallion.start.json data/medallion.stop.json
    summary "$out"
    exit $status
    ;;
liaison)
    [ $# -eq 4 ] || { echo "usage: $0 liaison URL USER TOKEN" >&2; exit 2; }
    echo "== Liaison at $2, $N objects expected, $RUNS runs, $PER_PAGE per page ($(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg))"
    status=0
    # Liaison keeps indicators by value and gives them its own ids: compared by value.
    # MATCH_TYPE=indicator (the default) pages the 100,000 indicator objects alone; MATCH_TYPE=
    # (empty) pages everything, each indicator with its sighting.
    match=()
    [ -n "${MATCH_TYPE-indicator}" ] && match=(--match-type "${MATCH_TYPE-indicator}")
    out=data/result-liaison-$N-${MATCH_TYPE-indicator}.json; out=${out/%-.json/-all.json}
    .venv/bin/python client.py "$2" --user "$3" --password "$4" --collection "$COLLECTION" \
        --per-page "$PER_PAGE" --runs "$RUNS" --bundle "$BUNDLE" --by values "${match[@]}" \
        --max-run-s "$MAX_RUN_S" --label liaison --json > "$out" || status=$?
    echo "== Liaison: $N objects"
    summary "$out"
    exit $status
    ;;
*)
    echo "usage: $0 [medallion] | $0 liaison URL USER TOKEN" >&2
    exit 2
    ;;
esac
