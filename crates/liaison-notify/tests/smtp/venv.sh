#!/usr/bin/env bash
# Runs a script of the SMTP test harness with a real SMTP server (aiosmtpd):
#   crates/liaison-notify/tests/smtp/venv.sh SCRIPT.py ARGS...     e.g.  venv.sh server.py --port 2525 ...
# creates (or reuses) a venv with requirements.txt installed, under
# ${LIAISON_SMTP_VENV:-~/.cache/liaison-smtp/venv-<sha256 of requirements.txt>}, then runs
# tests/smtp/SCRIPT.py with the venv's python (exec: the script's exit status is this one's).
#
# When python3, its venv module or the package registry is unavailable the test is SKIPPED with a
# loud message and exit status 0 (the Rust test sees the banner and passes without checking), or
# fails (exit 1) when LIAISON_REQUIRE_INTEROP=1, as CI sets.
# Called by crates/liaison-notify/tests/smtp.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
script="${1:?usage: venv.sh SCRIPT.py ARGS...}"
shift
script="$here/$(basename "$script")"
[ -f "$script" ] || { echo "smtp: no script $script" >&2; exit 2; }

skip() {
  echo "################################################################################"
  echo "### SMTP TEST SKIPPED ($(basename "$script")): $1"
  echo "### (set LIAISON_REQUIRE_INTEROP=1 to make this a failure)"
  echo "################################################################################"
  if [ "${LIAISON_REQUIRE_INTEROP:-0}" = 1 ]; then
    echo "smtp: LIAISON_REQUIRE_INTEROP=1, so this is a failure" >&2
    exit 1
  fi
  exit 0
}

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
req="$here/requirements.txt"
venv="${LIAISON_SMTP_VENV:-$HOME/.cache/liaison-smtp/venv-$(sha256sum "$req" | cut -c1-12)}"
mkdir -p "$(dirname "$venv")"
# Tests run side by side: one installs, the others wait; the lock is let go before the script runs.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
# The marker holds the requirements the venv was installed from: a changed file installs again.
if ! cmp -s "$req" "$venv/.liaison-smtp-installed" 2>/dev/null; then
  created=0
  [ -d "$venv" ] || created=1
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    [ "$created" = 1 ] && rm -rf "$venv"
    skip "python3 cannot create a venv (python3-venv missing?)"
  fi
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --timeout 30 -r "$req" >"$venv.log" 2>&1; then
    tail -5 "$venv.log" || true
    [ "$created" = 1 ] && rm -rf "$venv"
    skip "pip install -r crates/liaison-notify/tests/smtp/requirements.txt failed (is the package registry reachable?)"
  fi
  cp "$req" "$venv/.liaison-smtp-installed"
fi
exec 9>&-
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
exec "$venv/bin/python" "$script" "$@"
