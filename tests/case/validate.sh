#!/usr/bin/env bash
# CASE validation of an evidence package's CASE document (docs/evidence.md, "Evidence package"):
#   tests/case/validate.sh PACKAGE.zip | DOCUMENT.jsonld
# installs case-utils (pinned in requirements.txt) from PyPI into a venv under
# ~/.cache/liaison-case unless LIAISON_CASE_VENV names one, extracts case.jsonld from the
# package, and runs case_validate on it (SHACL against the CASE and UCO ontologies that
# case-utils ships; warnings fail too).
#
# When python3 or the registry is unavailable the validation is SKIPPED with a loud message,
# or fails when LIAISON_REQUIRE_CASE=1 (.ci/run sets it where Python can make a venv).
# Called by crates/liaison-cli/tests/evidence_package.rs on a package it exports.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
input="${1:?usage: validate.sh PACKAGE.zip|DOCUMENT.jsonld}"

skip() {
  echo "################################################################################"
  echo "### CASE validation SKIPPED: $1"
  echo "### (set LIAISON_REQUIRE_CASE=1 to make this a failure)"
  echo "################################################################################"
  if [ "${LIAISON_REQUIRE_CASE:-0}" = 1 ]; then
    echo "case: LIAISON_REQUIRE_CASE=1, so this is a failure" >&2
    exit 1
  fi
  exit 0
}

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
req="$here/requirements.txt"
venv="${LIAISON_CASE_VENV:-$HOME/.cache/liaison-case/venv-$(sha256sum "$req" | cut -c1-12)}"
mkdir -p "$(dirname "$venv")"
# Tests run side by side (SQLite and PostgreSQL scenarios): one installs, the others wait.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv.lock"
  flock 9
fi
if [ ! -x "$venv/bin/case_validate" ]; then
  python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot create a venv (python3-venv missing?)"
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --timeout 30 -r "$req" >"$venv.log" 2>&1; then
    tail -5 "$venv.log" || true
    rm -rf "$venv"
    skip "pip install case-utils failed (is the package registry reachable?)"
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
doc="$input"
# A package (a ZIP file, whatever its name): take its case.jsonld.
if [ "$(head -c 4 "$input" | od -An -tx1 | tr -d ' \n')" = "504b0304" ]; then
  doc="$work/case.jsonld"
  python3 - "$input" "$doc" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("case.jsonld"))
PY
fi
echo "case_validate $(basename "$input") (case-utils $("$venv/bin/pip" show case-utils 2>/dev/null | sed -n 's/^Version: //p'))"
"$venv/bin/case_validate" "$doc"
