#!/usr/bin/env bash
# Start or stop medallion 3.0 (memory backend) holding the benchmark bundle in one collection.
#
#   medallion.sh start    build data/medallion_{data,config}.json from $BUNDLE and start medallion
#                         on 127.0.0.1:$MEDALLION_PORT in the background; waits until it serves
#                         and prints the load time and RSS
#   medallion.sh stop     print RSS (current and peak), stop the server started by `start`
#   medallion.sh status
#
# Server: medallion's own `medallion` command (Flask/Werkzeug built-in server, threaded, one
# process) — the way medallion 3.0's README and Dockerfile run it; 3.0 documents no WSGI server.
#
# Environment (defaults): BUNDLE=data/objects.json  MEDALLION_PORT=5501
#   TAXII_USER=bench  TAXII_PASSWORD=bench-password  COLLECTION=4ae3d6c2-6f44-5c4c-9b7e-4d0d7a1f2b10
#   MEDALLION_SESSION_TIMEOUT=86400 (medallion's default, 30 s, expires the `next` token
#   30-40 s after the first page, far sooner than 1,000 pages take; see README)
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
BUNDLE=${BUNDLE:-data/objects.json}
PORT=${MEDALLION_PORT:-5501}
TAXII_USER=${TAXII_USER:-bench}
TAXII_PASSWORD=${TAXII_PASSWORD:-bench-password}
COLLECTION=${COLLECTION:-4ae3d6c2-6f44-5c4c-9b7e-4d0d7a1f2b10}
SESSION_TIMEOUT=${MEDALLION_SESSION_TIMEOUT:-86400}
DATA=$HERE/data
PIDFILE=$DATA/medallion.pid
LOG=$DATA/medallion.log
PY=$HERE/.venv/bin/python

ensure_venv() {
    if [ ! -x "$HERE/.venv/bin/medallion" ]; then
        python3.11 -m venv "$HERE/.venv"
        "$HERE/.venv/bin/pip" install -q -r "$HERE/requirements.txt"
    fi
}

running_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b - a}'; }

rss() {  # "VmRSS VmHWM" in MB
    awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "%.0f %.0f\n", r/1024, h/1024}' "/proc/$1/status"
}

start() {
    ensure_venv
    mkdir -p "$DATA"
    if pid=$(running_pid); then
        echo "medallion already running (pid $pid)" >&2
        exit 1
    fi
    if ss -ltn "sport = :$PORT" | grep -q LISTEN; then
        echo "port $PORT is in use; set MEDALLION_PORT" >&2
        exit 1
    fi
    [ -f "$BUNDLE" ] || { echo "no bundle $BUNDLE (run gen_objects.py)" >&2; exit 1; }
    local t0 t1 t2
    t0=$(date +%s.%N)
    "$PY" medallion_data.py "$BUNDLE" "$DATA/medallion_data.json" "$DATA/medallion_config.json" \
        --port "$PORT" --user "$TAXII_USER" --password "$TAXII_PASSWORD" \
        --collection "$COLLECTION" --session-timeout "$SESSION_TIMEOUT"
    t1=$(date +%s.%N)
    # setsid: its own process group, so `stop` ends exactly this server
    setsid "$HERE/.venv/bin/medallion" --host 127.0.0.1 --port "$PORT" --log-level WARN \
        "$DATA/medallion_config.json" >"$LOG" 2>&1 < /dev/null &
    local pid=$!
    echo "$pid" > "$PIDFILE"
    # ready = discovery answers 200 (the data file is loaded before the socket is bound)
    until curl -sf -o /dev/null -u "$TAXII_USER:$TAXII_PASSWORD" \
            -H 'Accept: application/taxii+json;version=2.1' "http://127.0.0.1:$PORT/taxii2/"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "medallion exited during start; log:" >&2
            tail -20 "$LOG" >&2
            rm -f "$PIDFILE"
            exit 1
        fi
        sleep 0.1
    done
    t2=$(date +%s.%N)
    read -r r h < <(rss "$pid")
    printf 'medallion pid %s on http://127.0.0.1:%s/api1/ collection %s\n' "$pid" "$PORT" "$COLLECTION"
    printf 'data file build %.1f s, medallion start (load data file -> serving) %.1f s, RSS %s MB\n' \
        "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$r"
    printf '{"build_s": %.2f, "load_s": %.2f, "rss_mb_after_load": %s}\n' \
        "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$r" > "$DATA/medallion.start.json"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        echo "medallion not running" >&2
        rm -f "$PIDFILE"
        return 0
    fi
    read -r r h < <(rss "$pid")
    echo "medallion RSS now $r MB, peak $h MB"
    printf '{"rss_mb": %s, "rss_peak_mb": %s}\n' "$r" "$h" > "$DATA/medallion.stop.json"
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$PIDFILE"
    echo "medallion stopped (pid $pid)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if pid=$(running_pid); then read -r r h < <(rss "$pid"); echo "running pid $pid RSS $r MB peak $h MB"
        else echo "not running"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
