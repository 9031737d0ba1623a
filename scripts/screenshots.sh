#!/usr/bin/env bash
# Screenshots of every page of the web UI in English and Chinese, full length, from real
# headless Chromium (docs/ui.md "Screenshots"). Writes NAME-en.png and NAME-zh.png into the
# directory given (default: target/screenshots) and runs axe-core on each page as it goes.
# Needs Chromium, chromedriver and a CJK font (Debian: apt-get install -y chromium
# chromium-driver fonts-wqy-zenhei) and npm for axe-core.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-target/screenshots}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LIAISON_REQUIRE_BROWSER=1 LIAISON_SCREENSHOT_DIR="$OUT" \
  cargo test -p liaison-server --test pages -- --nocapture
echo "screenshots: $OUT ($(ls "$OUT"/*.png | wc -l) files)"
