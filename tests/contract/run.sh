#!/usr/bin/env bash
# API contract test: starts a real node (liaison init + liaison serve on 127.0.0.1), seeds it over
# its own API, and runs schemathesis over every operation of /api/v1/openapi.json with the
# checks not_a_server_error, status_code_conformance, content_type_conformance and
# response_schema_conformance (formats included): once as an FBI supervisor over every
# operation, once as the node's admin over the administration operations, and last token
# revocation (which may revoke the token a pass runs with).
#
# Backends: SQLite always; PostgreSQL too when it answers on 127.0.0.1:5432 (a fresh t_contract_*
# schema in database `test`, as the Rust tests do); LIAISON_REQUIRE_POSTGRES=1 makes a missing
# PostgreSQL a failure. LIAISON_CONTRACT_BACKENDS="sqlite" (or "postgres") picks by hand.
#
# schemathesis is installed from PyPI (versions pinned in requirements.txt) into a venv under
# ~/.cache/liaison-contract unless LIAISON_CONTRACT_VENV names one. If Python or the install is
# unavailable the test is SKIPPED with a loud message, or fails when LIAISON_REQUIRE_CONTRACT=1.
#
# Knobs: LIAISON_CONTRACT_MAX_EXAMPLES (per operation, default 40), LIAISON_CONTRACT_SEED
# (default: fixed, so runs are reproducible), LIAISON_CONTRACT_KEEP=1 (keep the work directory:
# node logs, reports), LIAISON_BIN (a built liaison binary; default: cargo build -p liaison-cli).
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

# ----- backends ----------------------------------------------------------------------------
pg_base="${LIAISON_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
pg_up() { command -v pg_isready >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
backends="${LIAISON_CONTRACT_BACKENDS:-}"
if [ -z "$backends" ]; then
  backends=sqlite
  if pg_up; then
    backends="sqlite postgres"
  elif [ "${LIAISON_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "contract: PostgreSQL is required (LIAISON_REQUIRE_POSTGRES=1) but does not answer" >&2
    exit 1
  else
    echo "### contract: PostgreSQL is NOT available: the contract runs on SQLite only ###"
  fi
fi

# ----- the node ----------------------------------------------------------------------------
bin="${LIAISON_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --locked -p liaison-cli
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/liaison"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/liaison-contract.XXXXXX")"
node_pid=""
pg_schema=""
stop_node() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
    node_pid=""
  fi
}
cleanup() {
  stop_node
  if [ -n "$pg_schema" ]; then
    psql "$pg_base" -qc "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true
  fi
  if [ "${LIAISON_CONTRACT_KEEP:-0}" = 1 ]; then echo "contract: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Two free ports below 32768 (outside Linux's ephemeral range): the API and federation.
free_ports() {
  "$py" - <<'EOF'
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
}

# Starts a seeded node on BACKEND in $dir; sets base, admin_token and the TOKEN_* variables.
start_node() {
  local backend="$1" port fed_port
  read -r port fed_port < <(free_ports)
  [ -n "${fed_port:-}" ] || { echo "contract: no free ports found" >&2; exit 1; }
  base="http://127.0.0.1:$port"
  local db=()
  if [ "$backend" = postgres ]; then
    pg_schema="t_contract_$("$py" -c 'import uuid; print(uuid.uuid4().hex)')"
    psql "$pg_base" -qc "CREATE SCHEMA $pg_schema" >/dev/null
    local sep='?'
    case "$pg_base" in *'?'*) sep='&' ;; esac
    db=(--database-url "${pg_base}${sep}options=-c%20search_path%3D${pg_schema}")
  fi
  "$bin" --json --data-dir "$dir/node" init "${db[@]}" --agency-code FBI --agency-name "Federal Bureau of Investigation" \
    --jurisdiction US --time-zone America/New_York --listen "127.0.0.1:$port" --federation-listen "127.0.0.1:$fed_port" \
    >"$dir/init.json" 2>"$dir/init.err" || { cat "$dir/init.err" >&2; echo "contract: liaison init failed" >&2; exit 1; }
  admin_token="$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin_token"])' "$dir/init.json")"
  # Clean-up notices need routes: two networks, one per local agency.
  cat >>"$dir/node/liaison.toml" <<'EOF'

[intel]
[[intel.routes]]
cidr = "203.0.113.0/24"
partner = "FBI"
[[intel.routes]]
cidr = "198.51.100.0/24"
partner = "CN-MPS"
EOF
  "$bin" --data-dir "$dir/node" serve >"$dir/node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 100); do
    if "$py" -c "import urllib.request; urllib.request.urlopen('$base/api/v1/health', timeout=1)" 2>/dev/null; then break; fi
    if ! kill -0 "$node_pid" 2>/dev/null; then echo "contract: the node exited on start:" >&2; cat "$dir/node.log" >&2; exit 1; fi
    sleep 0.2
  done
  cp "$here/schemathesis.toml" "$dir/schemathesis.toml"
  "$py" "$here/seed.py" "$base" "$admin_token" "$dir" >"$dir/seed.out" || { cat "$dir/seed.out"; echo "contract: seeding failed" >&2; exit 1; }
  echo "contract: $backend node on $base seeded: $(cat "$dir/seed.out")"
  # shellcheck disable=SC1091
  . "$dir/env"
}

# ----- schemathesis ------------------------------------------------------------------------
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
max_examples="${LIAISON_CONTRACT_MAX_EXAMPLES:-40}"
seed="${LIAISON_CONTRACT_SEED:-20260101}"
status=0
pass() { # NAME TOKEN [filters...]
  local name="$1" token="$2"
  shift 2
  echo
  echo "=== contract pass '$name' ==="
  local t0=$SECONDS rc
  set +e
  # From the node's directory, so that schemathesis's caches stay out of the repository.
  (cd "$dir" && "$st" --config-file "$dir/schemathesis.toml" run "$base/api/v1/openapi.json" \
    --url "$base" -H "Authorization: Bearer $token" \
    --checks "$checks" --max-examples "$max_examples" --seed "$seed" --workers 2 \
    --report json --report-json-path "$work/$name.report.json" --report-dir "$dir/report-$name" --no-color "$@") 2>&1 |
    tee "$dir/$name.out"
  rc=${PIPESTATUS[0]}
  set -e
  echo "contract pass '$name': exit $rc in $((SECONDS - t0)) s"
  # CPython 3.11's ast module sometimes raises a spurious SystemError ("AST constructor
  # recursion depth mismatch", python/cpython#106905) in threaded programs; Hypothesis hits
  # it while describing a strategy, and schemathesis reports a runtime error with no API
  # failure. Such a pass runs once more, saying so (with the same seed, so a real failure
  # comes back and fails it); any other error fails at once.
  if [ "$rc" != 0 ] && [ -z "${retried:-}" ] && grep -q "AST constructor recursion depth mismatch" "$dir/$name.out"; then
    echo "### contract pass '$name' hit CPython issue 106905 inside Hypothesis (a tool error, not an API failure): running it once more ###"
    retried=1
    pass "$name" "$token" "$@"
    retried=
    return
  fi
  [ "$rc" = 0 ] || status=1
}

t_all=$SECONDS
for backend in $backends; do
  dir="$work/$backend"
  mkdir -p "$dir"
  start_node "$backend"
  # Everything as an FBI supervisor (drafts, transitions, statistics, clean-up, reads) ...
  # Revoking a token is left for the last pass: a user may revoke their own, and the token a
  # pass runs with can be among the ids it is offered.
  pass "$backend-supervisor" "$TOKEN_FBI_SUPERVISOR" --exclude-operation-id revokeToken
  # ... the administration operations as the node's admin (users, tokens, directory, audit,
  # federation: peers, ledger, key rotation) ...
  pass "$backend-admin" "$admin_token" --include-tag admin --include-tag directory --include-tag audit --include-tag federation \
    --exclude-operation-id revokeToken
  # ... and token revocation, last, as the admin (listing tokens links to revoking one).
  pass "$backend-revoke" "$admin_token" --include-operation-id revokeToken --include-operation-id listTokens
  stop_node
  # The node's side of any failure: a server error is logged with its cause.
  if grep -Eq '(ERROR|panicked)' "$dir/node.log"; then
    echo "contract: the $backend node logged errors:"
    grep -E -B2 -A10 '(ERROR|panicked)' "$dir/node.log" | head -80
    status=1
  fi
done

# A summary that names what failed.
"$py" "$here/summary.py" "$work" "$((SECONDS - t_all))" || status=1
exit "$status"
