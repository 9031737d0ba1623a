#!/bin/sh
# Evidence transfer benchmark (docs/federation.md §12): two `liaison serve` processes, each with
# its own SQLite data directory, on 127.0.0.1 with pinned TLS; one evidence file of SIZE_MIB
# (default 1024) attached to a mirrored request goes from us-fbi to cn-mps on the bulk channel.
# Reports MB/s (chunk phase and end to end) and the RSS growth of both server processes.
# Usage: bench/evidence/run.sh [SIZE_MIB]   (release build; CARGO_TARGET_DIR honoured)
set -eu
cd "$(dirname "$0")/../.."
SIZE_MIB="${1:-1024}"
BIN="${CARGO_TARGET_DIR:-target}/release/liaison"
[ -x "$BIN" ] || cargo build --release -p liaison-cli --bin liaison
BIN="$(cd "$(dirname "$BIN")" && pwd)/liaison"
W="$(mktemp -d /tmp/liaison-bulk-bench.XXXXXX)"
trap 'kill $US_PID $CN_PID 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$W"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
L() { dir="$1"; shift; LIAISON_LOG=warn "$BIN" --data-dir "$W/$dir" "$@"; }
US_FED=$(free_port); CN_FED=$(free_port)
L us init --agency-code FBI --agency-name FBI --jurisdiction US --time-zone America/New_York --node-id us-fbi --federation-listen "127.0.0.1:$US_FED" >/dev/null 2>&1
L cn init --agency-code CN-MPS --agency-name CN-MPS --jurisdiction CN --time-zone Asia/Shanghai --node-id cn-mps --federation-listen "127.0.0.1:$CN_FED" >/dev/null 2>&1
L us user add officer --agency FBI --role officer >/dev/null
L cn user add desk --agency CN-MPS --role desk >/dev/null
fp() { L "$1" federation descriptor --out "$W/$1.peer.json" 2>&1 | sed -n 's/^fingerprint: //p'; }
FU=$(fp us); FC=$(fp cn)
L us peer add "$W/cn.peer.json" --fingerprint "$FC" >/dev/null
L cn peer add "$W/us.peer.json" --fingerprint "$FU" >/dev/null
LIAISON_LOG=info "$BIN" --data-dir "$W/us" serve --listen 127.0.0.1:0 2>"$W/us.log" & US_PID=$!
LIAISON_LOG=info "$BIN" --data-dir "$W/cn" serve --listen 127.0.0.1:0 2>"$W/cn.log" & CN_PID=$!
sleep 2
ID=$(L us --json --as officer request create --kind subscriber_information --to CN-MPS --case BENCH-1 --offence BC-02 --summary "Bulk transfer benchmark." | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get("request",{}).get("id") or v["id"])')
# The file goes on the request while it is a draft (a draft's files are not offered), and the
# upload's own writes are flushed, so that the transfer, offered when the request is
# submitted, is measured alone.
echo "uploading $SIZE_MIB MiB of random content, generated as it streams in"
FILE=$(head -c "$((SIZE_MIB * 1048576))" /dev/urandom | L us --json --as officer evidence add "$ID" - --name file.bin | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sync
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
US0=$(rss $US_PID); CN0=$(rss $CN_PID)
TU=$(date +%s.%N)
L us --as officer request transition "$ID" --to submitted >/dev/null
# One watcher process (no curl or awk per sample, so that the bench takes little CPU from the
# nodes): peak VmRSS of both servers every 100 ms until the receiver logs the file stored (or
# a refusal); the times come from the nodes' own log lines.
python3 - "$SIZE_MIB" "$TU" "$US_PID" "$CN_PID" "$W/us.log" "$W/cn.log" "$US0" "$CN0" <<'PY'
import re, sys, time, datetime
size, tu, us_pid, cn_pid, us_log, cn_log, u0, c0 = sys.argv[1:]
def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
def text(path):
    return re.sub(r"\x1b\[[0-9;]*m", "", open(path).read())
def at(path, what):
    m = re.search(r"^(\S+)Z .*" + what, text(path), re.M)
    return m and datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
u0, c0 = int(u0), int(c0)  # before the submission
umax, cmax = u0, c0
while True:
    umax, cmax = max(umax, rss(us_pid)), max(cmax, rss(cn_pid))
    if at(cn_log, "evidence file received, verified and stored"):
        break
    if "refused" in text(cn_log) or "refused" in text(us_log):
        sys.exit("the transfer was refused: see the logs")
    time.sleep(0.1)
t0 = at(us_log, "evidence file offered")                # the sender commits the offer
t1 = at(us_log, "pushing evidence chunks")              # its manifest was delivered
t2 = at(cn_log, "evidence file received, verified and stored")  # committed at the receiver
mb = int(size) * 1048576 / 1e6
print(f"file: {size} MiB ({mb:.0f} MB)")
print(f"submission to offer: {t0 - float(tu):.2f} s")
print(f"offer (manifest queued, delivered, accepted; first chunk sent): {t1 - t0:.2f} s")
print(f"chunk phase: {t2 - t1:.2f} s = {mb / (t2 - t1):.0f} MB/s")
print(f"end to end (offered until stored, verified, durable at the receiver): {t2 - t0:.2f} s = {mb / (t2 - t0):.0f} MB/s")
print(f"RSS growth: sender {(umax - u0) / 1024:.1f} MB (from {u0 / 1024:.0f}), receiver {(cmax - c0) / 1024:.1f} MB (from {c0 / 1024:.0f})")
PY
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
