#!/usr/bin/env bash
# Minimises one corpus like `cargo fuzz cmin` (libFuzzer -merge=1 into a fresh directory),
# using the built binary so it needs no build lock, and keeps the hand-made `seed-*` and the
# `crash-*` regression inputs under their names:  bench/fuzz/cmin.sh <target> [libFuzzer flags]
# MAX_FILE=<bytes> first drops the other inputs longer than that, to keep the committed
# corpora small (the merge then keeps the smallest inputs that cover what is left).
set -euo pipefail
target=$1
shift
cd "$(dirname "$0")/../../fuzz"
tmp=$(mktemp -d)
mkdir "$tmp/min"
mkdir "$tmp/in"
find "corpus/$target" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'crash-*' -o -size -"$(( ${MAX_FILE:-100000000} + 1 ))"c \) \
  -exec cp {} "$tmp/in/" \;
nice -n 19 "target/x86_64-unknown-linux-gnu/release/$target" -merge=1 "$@" "$tmp/min" "$tmp/in" >"$tmp/log" 2>&1 \
  || { tail -20 "$tmp/log"; exit 1; }
before=$(ls "corpus/$target" | wc -l)
find "corpus/$target" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'crash-*' \) -exec cp {} "$tmp/min/" \;
# Drop the unnamed copies of the named files.
for f in "$tmp"/min/seed-* "$tmp"/min/crash-*; do
  [ -e "$f" ] || continue
  h=$(sha1sum "$f" | cut -d' ' -f1)
  [ -e "$tmp/min/$h" ] && rm "$tmp/min/$h"
done
rm -rf "corpus/$target"
mv "$tmp/min" "corpus/$target"
echo "$target: $before -> $(ls "corpus/$target" | wc -l) files, $(du -sh "corpus/$target" | cut -f1)"
rm -rf "$tmp"
