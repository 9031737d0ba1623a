#!/usr/bin/env bash
# Liaison's side of the TAXII benchmark: a node that holds the bundle's indicators.
#
#   liaison.sh start    create a node in data/liaison-node (SQLite), import $BUNDLE
#                       (default data/objects.json) with `liaison intel ingest --format stix`
#                       as an analyst, serve it on 127.0.0.1:$LIAISON_PORT (5502), and write
#                       data/liaison.env: URL, USER, TOKEN, COLLECTION (the analyst agency's
#                       community collection, where the TLP:GREEN bundle lands)
#   liaison.sh stop     stop the node, print its RSS and peak RSS
#
# LIAISON_BIN: the binary (default: target-rel/release/liaison, else target/release/liaison).
# Then: . data/liaison.env && COLLECTION=$COLLECTION ./run.sh liaison "$URL" "$USER" "$TOKEN"
set -euo pipefail
cd "$(dirname "$0")"
REPO=$(cd ../.. && pwd)
PORT=${LIAISON_PORT:-5502}
BUNDLE=${BUNDLE:-data/objects.json}
BIN=${LIAISON_BIN:-}
if [ -z "$BIN" ]; then
    for b in /work/target-rel/release/liaison "$REPO/target/release/liaison"; do
        [ -x "$b" ] && { BIN=$b; break; }
    done
fi
[ -x "${BIN:-}" ] || { echo "build the release binary first (cargo build --release -p liaison-cli)" >&2; exit 2; }
DIR=$(pwd)/data/liaison-node

case "${1:-}" in
start)
    rm -rf "$DIR"
    "$BIN" --data-dir "$DIR" init --agency-code FBI --agency-name "Federal Bureau of Investigation" \
        --jurisdiction US --time-zone America/New_York > /dev/null
    "$BIN" --data-dir "$DIR" user add bench-analyst --agency FBI --role analyst > /dev/null
    t0=$(date +%s.%N)
    "$BIN" --data-dir "$DIR" --json --as bench-analyst intel ingest --format stix "$BUNDLE" > data/liaison-ingest.json
    t1=$(date +%s.%N)
    echo "imported $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["new_indicators"], "indicators")' data/liaison-ingest.json) in $(python3 -c "print(round($t1-$t0,1))") s"
    TOKEN=$("$BIN" --data-dir "$DIR" --json token create bench-analyst | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    LIAISON_LISTEN=127.0.0.1:$PORT "$BIN" --data-dir "$DIR" serve > data/liaison.log 2>&1 &
    echo $! > data/liaison.pid
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/api/v1/health" > /dev/null && break
        sleep 0.2
    done
    COLLECTION=$(curl -sf -H "Accept: application/taxii+json;version=2.1" -u "bench-analyst:$TOKEN" \
        "http://127.0.0.1:$PORT/taxii2/intel/collections/" |
        python3 -c 'import json,sys; print(next(c["id"] for c in json.load(sys.stdin)["collections"] if c["title"].startswith("FBI: community")))')
    cat > data/liaison.env <<EOF
URL=http://127.0.0.1:$PORT/taxii2/
USER=bench-analyst
TOKEN=$TOKEN
COLLECTION=$COLLECTION
EOF
    echo "serving on 127.0.0.1:$PORT, collection $COLLECTION, RSS $(awk '/VmRSS/ {print $2/1024 " MB"}' /proc/"$(cat data/liaison.pid)"/status)"
    ;;
stop)
    pid=$(cat data/liaison.pid)
    awk '/VmRSS|VmHWM/ {printf "%s %.0f MB  ", $1, $2/1024} END {print ""}' /proc/"$pid"/status
    kill "$pid"
    rm -f data/liaison.pid
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
