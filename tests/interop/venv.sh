#!/usr/bin/env bash
# Runs a script of the interop harness (tests/interop/README.md) with the peers' own Python tools:
#   tests/interop/venv.sh SCRIPT.py ARGS...      e.g.  tests/interop/venv.sh check_stix.py bundle.json
# creates (or reuses) a venv with requirements.txt installed, under
# ${LIAISON_INTEROP_VENV:-~/.cache/liaison-interop/venv-<sha256 of requirements.txt>}, then runs
# tests/interop/SCRIPT.py with the venv's python; the script's exit status is this one's.
#
# When python3, its venv module or the package registry is unavailable the check is SKIPPED with a
# loud message and exit status 0, or fails (exit 1) when LIAISON_REQUIRE_INTEROP=1.
# Called by crates/liaison-cli/tests/interop.rs on what Liaison exports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
script="${1:?usage: venv.sh SCRIPT.py ARGS...}"
shift
script="$here/$(basename "$script")"
[ -f "$script" ] || { echo "interop: no script $script" >&2; exit 2; }

skip() {
  echo "################################################################################"
  echo "### INTEROP CHECK SKIPPED ($(basename "$script")): $1"
  echo "### (set LIAISON_REQUIRE_INTEROP=1 to make this a failure)"
  echo "################################################################################"
  if [ "${LIAISON_REQUIRE_INTEROP:-0}" = 1 ]; then
    echo "interop: LIAISON_REQUIRE_INTEROP=1, so this is a failure" >&2
    exit 1
  fi
  exit 0
}

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
req="$here/requirements.txt"
venv="${LIAISON_INTEROP_VENV:-$HOME/.cache/liaison-interop/venv-$(sha256sum "$req" | cut -c1-12)}"
mkdir -p "$(dirname "$venv")"
# Tests run side by side: one installs, the others wait; the lock is let go before the script runs.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
# The marker holds the requirements the venv was installed from: a changed file installs again.
if ! cmp -s "$req" "$venv/.liaison-interop-installed" 2>/dev/null; then
  created=0
  [ -d "$venv" ] || created=1
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    [ "$created" = 1 ] && rm -rf "$venv"
    skip "python3 cannot create a venv (python3-venv missing?)"
  fi
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --timeout 30 -r "$req" >"$venv.log" 2>&1; then
    tail -5 "$venv.log" || true
    [ "$created" = 1 ] && rm -rf "$venv"
    skip "pip install -r tests/interop/requirements.txt failed (is the package registry reachable?)"
  fi
  cp "$req" "$venv/.liaison-interop-installed"
fi
exec 9>&-
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" "$script" "$@"
