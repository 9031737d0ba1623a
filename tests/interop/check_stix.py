#!/usr/bin/env python3
"""Checks STIX 2.1 bundles with the OASIS tools (tests/interop/README.md, check_stix.py).

  check_stix.py [--allow-warning CODE]... [--json] BUNDLE.json...

For each bundle:
  1. stix2-validator (STIX 2.1 schemas and MUST/SHOULD checks): any error fails; a warning
     fails unless it is the best-practice note that an SDO/SRO id is a UUIDv5 ("not a valid
     UUIDv4", code 103, for an id whose UUID is version 5) or its code is given with
     --allow-warning.
  2. stix2.parse(bundle, allow_custom=False) succeeds. If it fails only because of OASIS
     TLP 2.0 marking definitions (cti-python-stix2 issue #569), each other object is parsed
     on its own with allow_custom=False and the limitation is reported instead of a failure.
  3. Markings: every object_marking_refs / granular_markings marking_ref resolves to a
     marking-definition in the bundle or to one of the four TLP 1.0 ids of the STIX
     specification; every TLP 2.0 marking definition (by id or by extension) equals the OASIS
     object exactly; TLP 1.0 definitions in the bundle equal the specification's; a TLP 2.0
     extension-definition object, when carried, equals the OASIS one.
Exit status 0 when every bundle passes, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import re
import sys
import uuid

from interop_common import (
    TLP1_LEVEL_OF_ID, TLP2_EXTENSION_DEFINITION, TLP2_EXTENSION_ID,
    TLP2_LEVEL_OF_ID, load_json, package_version, tlp2_marking)

WARNING_CODE = re.compile(r"\{(\d+)\}")
UUIDV4_NOTE = re.compile(r"Given ID value (\S+) is not a valid UUIDv4 ID")


def _uuid_version(stix_id):
    try:
        return uuid.UUID(stix_id.split("--", 1)[1]).version
    except (IndexError, ValueError, AttributeError):
        return None


def run_validator(bundle, allowed_codes):
    """stix2-validator 3.2.0 on a parsed bundle: (errors, warnings kept, warnings allowed)."""
    from stix2validator import ValidationOptions, validate_instance
    options = ValidationOptions(version="2.1", silent=True)
    try:
        result = validate_instance(bundle, options)
    except Exception as exc:  # the validator raises on input that is no STIX object at all
        return [f"validator refused the input: {type(exc).__name__}: {exc}"], [], []
    errors = [str(e) for e in result.errors]
    failing, allowed = [], []
    for w in result.warnings or []:
        text = str(w)
        m = WARNING_CODE.search(text)
        code = m.group(1) if m else None
        note = UUIDV4_NOTE.search(text)
        if code == "103" and note and _uuid_version(note.group(1)) == 5:
            allowed.append(text)
        elif code is not None and code in allowed_codes:
            allowed.append(text)
        else:
            failing.append(text)
    return errors, failing, allowed


def run_stix2_parse(bundle):
    """stix2.parse(allow_custom=False): (problems, notes)."""
    import stix2
    problems, notes = [], []
    try:
        stix2.parse(bundle, allow_custom=False)
        return problems, notes
    except Exception as exc:  # noqa: BLE001 - any refusal is the finding
        bundle_error = f"{type(exc).__name__}: {exc}"
    # Find out which objects it refuses, each parsed on its own.
    refused = []
    for obj in bundle.get("objects", []):
        try:
            stix2.parse(obj, allow_custom=False)
        except Exception as exc:  # noqa: BLE001
            refused.append((obj, f"{type(exc).__name__}: {exc}"))
    oasis = all(o.get("id") in TLP2_LEVEL_OF_ID and o == tlp2_marking(TLP2_LEVEL_OF_ID[o["id"]])
                for o, _ in refused)
    if refused and oasis:
        notes.append("stix2.parse refused the bundle only because of OASIS TLP 2.0 marking "
                     f"definitions (cti-python-stix2 #569): {bundle_error}; every other object "
                     "parsed on its own with allow_custom=False")
        for o, err in refused:
            notes.append(f"  stix2 refuses {o.get('id')}: {err}")
        return problems, notes
    problems.append(f"stix2.parse(allow_custom=False) refused the bundle: {bundle_error}")
    for o, err in refused:
        problems.append(f"  refused {o.get('id')}: {err}")
    return problems, notes


def _tlp1_definition(level):
    import stix2
    obj = {"white": stix2.TLP_WHITE, "green": stix2.TLP_GREEN,
           "amber": stix2.TLP_AMBER, "red": stix2.TLP_RED}[level]
    return json.loads(obj.serialize())


def _diff(expected, actual):
    keys = sorted(set(expected) | set(actual))
    return ", ".join(f"{k}: expected {json.dumps(expected.get(k))} got {json.dumps(actual.get(k))}"
                     for k in keys if expected.get(k) != actual.get(k))


def check_markings(bundle):
    problems, notes = [], []
    objects = bundle.get("objects", [])
    markings = {}
    for obj in objects:
        if obj.get("type") == "marking-definition":
            if obj.get("id") in markings and markings[obj["id"]] != obj:
                problems.append(f"{obj['id']} appears twice with different content")
            markings[obj.get("id")] = obj
    used = {}
    for obj in objects:
        refs = list(obj.get("object_marking_refs") or [])
        refs += [g.get("marking_ref") for g in obj.get("granular_markings") or [] if g.get("marking_ref")]
        for ref in refs:
            used.setdefault(ref, []).append(obj.get("id"))
    for ref, users in sorted(used.items()):
        if ref in markings or ref in TLP1_LEVEL_OF_ID:
            continue
        what = " (a TLP 2.0 marking: the bundle must carry its definition)" if ref in TLP2_LEVEL_OF_ID else ""
        problems.append(f"marking {ref} used by {', '.join(users[:3])}{'…' if len(users) > 3 else ''} "
                        f"is not defined in the bundle{what}")
    for mid, obj in sorted(markings.items()):
        if mid in TLP2_LEVEL_OF_ID:
            expected = tlp2_marking(TLP2_LEVEL_OF_ID[mid])
            if obj != expected:
                problems.append(f"{mid} is not the OASIS TLP 2.0 {expected['name']} object: {_diff(expected, obj)}")
        elif TLP2_EXTENSION_ID in (obj.get("extensions") or {}):
            level = obj["extensions"][TLP2_EXTENSION_ID].get("tlp_2_0")
            problems.append(f"{mid} uses the TLP 2.0 extension (tlp_2_0={level!r}) but is not one of the "
                            "five OASIS TLP 2.0 marking definitions (ids are fixed)")
        elif mid in TLP1_LEVEL_OF_ID:
            expected = _tlp1_definition(TLP1_LEVEL_OF_ID[mid])
            if obj != expected:
                problems.append(f"{mid} is not the STIX 2.1 TLP 1.0 {TLP1_LEVEL_OF_ID[mid]} object: "
                                f"{_diff(expected, obj)}")
        elif obj.get("definition_type") == "tlp":
            problems.append(f"{mid} is a TLP 1.0 marking with an id the specification does not define")
    for obj in objects:
        if obj.get("id") == TLP2_EXTENSION_ID and obj != TLP2_EXTENSION_DEFINITION:
            problems.append(f"{TLP2_EXTENSION_ID} is not the OASIS TLP 2.0 extension definition: "
                            f"{_diff(TLP2_EXTENSION_DEFINITION, obj)}")
    levels = sorted({TLP2_LEVEL_OF_ID[m] for m in markings if m in TLP2_LEVEL_OF_ID})
    tlp1 = sorted({TLP1_LEVEL_OF_ID[m] for m in used if m in TLP1_LEVEL_OF_ID})
    notes.append(f"markings: {len(markings)} defined, {len(used)} used; TLP 2.0 levels defined: "
                 f"{', '.join(levels) or 'none'}; TLP 1.0 levels used: {', '.join(tlp1) or 'none'}")
    return problems, notes


def check_file(path, allowed_codes):
    report = {"file": path, "ok": False, "errors": [], "warnings": [], "allowed_warnings": [], "notes": []}
    try:
        bundle = load_json(path)
    except (OSError, ValueError) as exc:
        report["errors"].append(f"cannot read JSON: {exc}")
        return report
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        report["errors"].append("not a STIX bundle (top-level type must be 'bundle')")
        return report
    errors, failing, allowed = run_validator(bundle, allowed_codes)
    report["errors"] += [f"stix2-validator: {e}" for e in errors]
    report["warnings"] += [f"stix2-validator: {w}" for w in failing]
    report["allowed_warnings"] += allowed
    problems, notes = run_stix2_parse(bundle)
    report["errors"] += problems
    report["notes"] += notes
    problems, notes = check_markings(bundle)
    report["errors"] += problems
    report["notes"] += notes
    report["objects"] = len(bundle.get("objects", []))
    report["ok"] = not report["errors"] and not report["warnings"]
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+", metavar="BUNDLE.json")
    ap.add_argument("--allow-warning", action="append", default=[], metavar="CODE",
                    help="a stix2-validator warning code (e.g. 303) that does not fail the check")
    ap.add_argument("--json", action="store_true", help="print the reports as JSON on stdout")
    args = ap.parse_args(argv)
    allowed = {c.strip() for a in args.allow_warning for c in a.split(",") if c.strip()}
    reports = [check_file(p, allowed) for p in args.bundles]
    versions = {k: package_version(k) for k in ("stix2-validator", "stix2")}
    if args.json:
        print(json.dumps({"versions": versions, "reports": reports}, indent=2))
        out = sys.stderr
    else:
        out = sys.stdout
    print(f"check_stix: stix2-validator {versions['stix2-validator']}, stix2 {versions['stix2']}", file=out)
    for r in reports:
        print(f"{'PASS' if r['ok'] else 'FAIL'} {r['file']} ({r.get('objects', '?')} objects)", file=out)
        for e in r["errors"]:
            print(f"  error: {e}", file=out)
        for w in r["warnings"]:
            print(f"  warning (fails; --allow-warning CODE to accept): {w}", file=out)
        for w in r["allowed_warnings"]:
            print(f"  allowed warning: {w}", file=out)
        for n in r["notes"]:
            print(f"  note: {n}", file=out)
    failed = sum(1 for r in reports if not r["ok"])
    print(f"check_stix: {len(reports) - failed} of {len(reports)} bundle(s) conform", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
