#!/usr/bin/env bash
# Prints one Markdown table row per run log in bench/fuzz/logs: CPU time the run got, wall
# time, libFuzzer's final statistics, the last coverage line, and how the run ended.
cd "$(dirname "$0")/logs"
echo "| log | CPU s (user+sys) | wall s | executions | exec/s (wall) | new units | peak RSS MB | last status line | ended |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in *.log; do
  cpu=$(awk '/^user|^sys/ { split($2, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } END { printf "%.0f", t }' "$f")
  stat() { grep -m1 "^stat::$1:" "$f" | awk '{print $2}'; }
  last=$(grep -E '^#[0-9]+' "$f" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
  if grep -q "panicked at" "$f"; then ended="crash: $(grep -m1 -A1 'panicked at' "$f" | tail -1 | cut -c1-60)";
  elif grep -q "^Done " "$f"; then ended="time limit";
  elif grep -q "run interrupted" "$f" && grep -q "^cpu_budget_seconds" "$f"; then ended="CPU budget";
  else ended="stopped"; fi
  echo "| $f | $cpu | $(grep -m1 '^wall_seconds' "$f" | awk '{print $2}') | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $(stat new_units_added) | $(stat peak_rss_mb) | $last | $ended |"
done
