#!/usr/bin/env bash
# Connection-flood benchmark (issue #12, "Done when"): the paced API mix (64 clients, about
# 1,000 writes/s) without and with 1,000 idle or slow connections held against the node, first
# against its API listener, then against its federation (TLS) listener; RUNS runs of each,
# alternating, so both conditions see the same machine.
#
#   bench/conns/run.sh [OUT_DIR]
#   env: RUNS=3 DURATION=20 WARMUP=5 RATE=1435 CONNS=1000 API_PORT=18640 FED_PORT=18641
#
# RATE is in operations per second; in the default mix 70 % are writes, so 1,435 ops/s offers
# 1,000 writes/s. Half the attacker's connections are idle (API: no byte; federation: no TLS
# handshake), half trickle a byte every 2 s (API: request headers; federation: a TLS handshake
# record), from 20 loopback addresses each (127.0.0.2-21), reconnecting whenever the node cuts
# them. Writes OUT_DIR/summary.tsv, one api-load report and one attacker log per run, and
# prints the verdict per listener.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${1:-bench/conns/results-$(date -u +%Y%m%dT%H%M%SZ)}
RUNS=${RUNS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
RATE=${RATE:-1435}
CONNS=${CONNS:-1000}
API=127.0.0.1:${API_PORT:-18640}
FED=127.0.0.1:${FED_PORT:-18641}

# The attacker's sockets and the node's (1,000 each) plus the clients' and the database's.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 4096 ]; then
    echo "open-files limit $(ulimit -n) is too low for $CONNS connections: raise the hard limit (ulimit -Hn)" >&2
    exit 1
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -q -p liaison-bench --bin api-load --bin slow-conns
LOAD=$CARGO_TARGET_DIR/release/api-load
ATTACK=$CARGO_TARGET_DIR/release/slow-conns

mkdir -p "$OUT"
SUMMARY=$OUT/summary.tsv
printf 'listener\tcondition\trun\tp99_ms\twrites_per_s\terrors\tattackers_mid_run\n' >"$SUMMARY"
{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(nproc) cores, $(uname -sr)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP RATE=$RATE CONNS=$CONNS"
} >"$OUT/conditions.txt"

wait_port() { # HOST:PORT — until it accepts (the node binds after creating its fixture)
    local host=${1%:*} port=${1##*:} i
    for i in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on $1" >&2
    return 1
}

one_run() { # LISTENER CONDITION RUN
    local listener=$1 condition=$2 run=$3 name="$1-$2-$3" target mode_b pids=() last=""
    "$LOAD" --clients 64 --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
        --listen "$API" --federation-listen "$FED" >"$OUT/$name.txt" 2>"$OUT/$name.err" &
    local load_pid=$!
    if [ "$condition" = attacked ]; then
        if [ "$listener" = api ]; then target=$API mode_b=trickle; else target=$FED mode_b=tls-trickle; fi
        wait_port "$target"
        local hold=$((WARMUP + DURATION + 30))
        "$ATTACK" --addr "$target" --connections $((CONNS / 2)) --mode idle --duration $hold --report 1 \
            >"$OUT/$name.attack-idle.out" 2>"$OUT/$name.attack-idle.log" &
        pids+=($!)
        "$ATTACK" --addr "$target" --connections $((CONNS - CONNS / 2)) --mode "$mode_b" --duration $hold --report 1 \
            >"$OUT/$name.attack-$mode_b.out" 2>"$OUT/$name.attack-$mode_b.log" &
        pids+=($!)
        # What the attackers hold in the middle of the measured window (after the run the node
        # has stopped and they only fail to connect).
        (sleep $((WARMUP + DURATION / 2)); for f in "$OUT/$name".attack-*.log; do tail -n 1 "$f"; done | tr '\n' ';' >"$OUT/$name.attack-mid") &
    fi
    wait "$load_pid" || { echo "api-load failed, see $OUT/$name.err" >&2; cat "$OUT/$name.err" >&2; }
    if [ ${#pids[@]} -gt 0 ]; then
        last=$(cat "$OUT/$name.attack-mid" 2>/dev/null || true)
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
    local line p99 wps errs
    line=$(grep '^backend ' "$OUT/$name.txt" || true)
    p99=$(sed -n 's/.*p99 all \([0-9.]*\) ms.*/\1/p' <<<"$line")
    wps=$(sed -n 's/.*writes\/s \([0-9.]*\) .*/\1/p' <<<"$line")
    errs=$(sed -n 's/.*| errors \([0-9]*\) .*/\1/p' <<<"$line")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$listener" "$condition" "$run" "${p99:-NA}" "${wps:-NA}" "${errs:-NA}" "$last" >>"$SUMMARY"
    echo "$name: p99 ${p99:-NA} ms, ${wps:-NA} writes/s, ${errs:-NA} errors ${last:+| attacker: $last}"
    sleep 2 # let the ports be released
}

for listener in api federation; do
    for run in $(seq 1 "$RUNS"); do
        one_run "$listener" baseline "$run"
        one_run "$listener" attacked "$run"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/conditions.txt"

# Verdict: every attacked run's p99 within 2x of the median baseline p99 of its listener.
awk -F'\t' 'NR > 1 {
    key = $1; if ($2 == "baseline") { b[key] = b[key] " " $4 } else { a[key] = a[key] " " $4 }
}
function median(s,    v, n, i, j, t) {
    n = split(s, v, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function maxof(s,    v, n, i, m) { n = split(s, v, " "); m = v[1]; for (i = 2; i <= n; i++) if (v[i] + 0 > m + 0) m = v[i]; return m }
END {
    for (k in b) {
        mb = median(b[k]); ma = median(a[k]); worst = maxof(a[k])
        printf "%s: baseline p99 [%s ] ms, attacked [%s ] ms; median %.2f -> %.2f ms (x%.2f), worst attacked x%.2f of the median baseline: %s\n", \
            k, b[k], a[k], mb, ma, ma / mb, worst / mb, (worst <= 2 * mb) ? "within 2x" : "NOT within 2x"
    }
}' "$SUMMARY" | tee "$OUT/verdict.txt"
