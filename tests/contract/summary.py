#!/usr/bin/env python3
"""Sums up the schemathesis passes of run.sh from their JSON reports (WORK_DIR/*.report.json).

Usage: summary.py WORK_DIR SECONDS
Prints one line per pass, the failing operations with what failed, and a closing line
'contract: N passed, N failed' counting operations. Exits 1 if anything failed or errored.
"""

import glob
import json
import os
import sys

work, seconds = sys.argv[1], sys.argv[2]
reports = sorted(glob.glob(os.path.join(work, "*.report.json")))
if not reports:
    sys.exit("contract: no schemathesis report was written (see the output above)")

bad = False
tested, revoke_tested, failed_ops, cases = 0, 0, set(), 0
print()
print("=== contract summary ===")
for path in reports:
    name = os.path.basename(path).removesuffix(".report.json")
    with open(path) as f:
        r = json.load(f)
    ops, tc = r["operations"], r["test_cases"]
    cases += tc["generated"]
    print(
        f"pass {name}: {ops['tested']} of {ops['selected']} selected operations tested, "
        f"{tc['generated']} cases generated, {tc['with_failures']} with failures, {tc['errored']} errored, "
        f"{r['running_time']:.0f} s, schemathesis {r['schemathesis_version']}, seed {r['seed']}"
    )
    # The supervisor pass covers every operation but token revocation, which the last pass adds
    # (with the listing it links from); the admin pass repeats some with another token.
    if name.endswith("-revoke"):
        revoke_tested = max(revoke_tested, 1 if ops["tested"] else 0)
    else:
        tested = max(tested, ops["tested"])
    for failure in r["failures"]:
        bad = True
        print(f"  FAILED {failure['title']} ({failure['count']}x) in: {', '.join(failure['operations'])}")
        failed_ops.update(failure["operations"])
    for error in r["errors"]:
        bad = True
        print(f"  ERROR {error['title']} ({error['count']}x)")
    if ops["errored"] or not r["complete"] or r["exit_code"] != 0:
        bad = True
        print(f"  pass {name} did not finish cleanly: exit {r['exit_code']}, stop reason {r['stop_reason']}")
print(f"total: {cases} cases over the passes in {seconds} s")
passed = max(tested + revoke_tested - len(failed_ops), 0)
print(f"contract: {passed} passed, {len(failed_ops)} failed")
sys.exit(1 if bad else 0)
