#!/usr/bin/env bash
# Installs axe-core (pinned below) from the npm registry into a cache directory, once, and
# prints the path of axe.min.js. Used by crates/liaison-server/tests/pages.rs, which injects
# it into every page (docs/ui.md "Accessibility"). Exit 3: npm is not installed.
set -euo pipefail
VERSION=4.14.1
DIR="${LIAISON_AXE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/liaison-axe/$VERSION}"
JS="$DIR/node_modules/axe-core/axe.min.js"
if [ ! -f "$JS" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is not installed: cannot install axe-core $VERSION" >&2
    exit 3
  fi
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --no-save --silent "axe-core@$VERSION" >&2
fi
echo "$JS"
