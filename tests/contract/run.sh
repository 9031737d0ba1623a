#!/usr/bin/env bash
# API contract test: starts a real node (liaison init + liaison serve on 127.0.0.1), seeds it over
# its own API, and runs schemathesis over every operation of /api/v1/openapi.json with the
# checks not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance (formats included).
#
# schemathesis is installed from PyPI (versions pinned in requirements.txt) into a venv under
# ~/.cache/liaison-contract unless LIAISON_CONTRACT_VENV names one. If Python or the install is
# unavailable the test is SKIPPED with a loud message, or fails when LIAISON_REQUIRE_CONTRACT=1.
#
# Knobs: LIAISON_CONTRACT_MAX_EXAMPLES (per operation and phase, default 40),
# LIAISON_CONTRACT_SEED (default: a fixed seed, so CI runs are reproducible),
# LIAISON_BIN (a built liaison binary; default: cargo build -p liaison-cli).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

skip() {
  echo "################################################################################"
  echo "### API contract test SKIPPED: $1"
  echo "### (set LIAISON_REQUIRE_CONTRACT=1 to make this a failure)"
  echo "################################################################################"
  if [ "${LIAISON_REQUIRE_CONTRACT:-0}" = 1 ]; then
    echo "contract: LIAISON_REQUIRE_CONTRACT=1, so this is a failure" >&2
    exit 1
  fi
  exit 0
}

# ----- schemathesis in a venv --------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
req="$here/requirements.txt"
venv="${LIAISON_CONTRACT_VENV:-$HOME/.cache/liaison-contract/venv-$(sha256sum "$req" | cut -c1-12)}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  echo "contract: installing schemathesis into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 -m venv failed (is python3-venv installed?)"
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"; then
    rm -rf "$venv"
    skip "pip could not install $req"
  fi
fi
st="$venv/bin/schemathesis"
py="$venv/bin/python"

# ----- the node ----------------------------------------------------------------------------
bin="${LIAISON_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --locked -p liaison-cli
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/liaison"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/liaison-contract.XXXXXX")"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  if [ "${LIAISON_CONTRACT_KEEP:-0}" = 1 ]; then echo "contract: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Two free ports below 32768 (outside Linux's ephemeral range): the API and federation.
read -r port fed_port < <("$py" - <<'EOF'
import random, socket
found = []
for _ in range(500):
    p = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in found:
            found.append(p)
    except OSError:
        pass
    finally:
        s.close()
    if len(found) == 2:
        break
print(*found)
EOF
)
[ -n "${fed_port:-}" ] || { echo "contract: no free ports found" >&2; exit 1; }
base="http://127.0.0.1:$port"

export LIAISON_LOG=warn NO_COLOR=1
"$bin" --json --data-dir "$work/node" init --agency-code FBI --agency-name "Federal Bureau of Investigation" \
  --jurisdiction US --time-zone America/New_York --listen "127.0.0.1:$port" --federation-listen "127.0.0.1:$fed_port" \
  >"$work/init.json" 2>"$work/init.err" || { cat "$work/init.err" >&2; echo "contract: liaison init failed" >&2; exit 1; }
admin_token="$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$work/init.json")"
# Clean-up notices need routes: two networks, one per local agency.
cat >>"$work/node/liaison.toml" <<'EOF'

[intel]
[[intel.routes]]
cidr = "203.0.113.0/24"
partner = "FBI"
[[intel.routes]]
cidr = "198.51.100.0/24"
partner = "CN-MPS"
EOF
"$bin" --data-dir "$work/node" serve >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
  if "$py" -c "import urllib.request,sys; urllib.request.urlopen('$base/api/v1/health', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$node_pid" 2>/dev/null; then echo "contract: the node exited on start:" >&2; cat "$work/node.log" >&2; exit 1; fi
  sleep 0.2
done
cp "$here/schemathesis.toml" "$work/schemathesis.toml"
"$py" "$here/seed.py" "$base" "$admin_token" "$work" >"$work/seed.out" || { cat "$work/seed.out"; echo "contract: seeding failed" >&2; exit 1; }
echo "contract: node on $base seeded: $(cat "$work/seed.out")"
# shellcheck disable=SC1091
. "$work/env"

# ----- schemathesis ------------------------------------------------------------------------
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
max_examples="${LIAISON_CONTRACT_MAX_EXAMPLES:-40}"
seed="${LIAISON_CONTRACT_SEED:-20260101}"
status=0
run() { # NAME TOKEN [filters...]
  local name="$1" token="$2"
  shift 2
  echo
  echo "=== contract pass '$name' ==="
  local t0=$SECONDS
  set +e
  "$st" --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
    --url "$base" -H "Authorization: Bearer $token" \
    --checks "$checks" --max-examples "$max_examples" --seed "$seed" --workers 2 \
    --report json --report-json-path "$work/$name.report.json" --report-dir "$work/report-$name" --no-color "$@" 2>&1 | tee "$work/$name.out"
  local rc=${PIPESTATUS[0]}
  set -e
  echo "contract pass '$name': exit $rc in $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || status=1
}
t_all=$SECONDS
# Everything as an FBI supervisor (drafts, transitions, statistics, clean-up, reads) ...
run supervisor "$TOKEN_FBI_SUPERVISOR"
# ... and the administration operations as the node's admin (users, tokens, directory, audit).
run admin "$admin_token" --include-tag admin --include-tag directory --include-tag audit

# A summary that names what failed; the node's log has the server side of any failure.
"$py" "$here/summary.py" "$work" "$((SECONDS - t_all))" || status=1
if grep -Eq '(ERROR|panicked)' "$work/node.log"; then
  echo "contract: the node logged errors:"
  grep -E -B2 -A10 '(ERROR|panicked)' "$work/node.log" | head -80
  status=1
fi
exit "$status"
