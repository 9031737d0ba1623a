#!/usr/bin/env python3
"""Checks MISP events with the MISP project's tools (tests/interop/README.md, check_misp.py).

  check_misp.py [--external] [--stix-out DIR] INPUT...

An INPUT is a restSearch answer ({"response": [{"Event": {...}}, ...]}), one event
({"Event": {...}}), a JSON list of those, or a MISP feed directory (manifest.json and one
<uuid>.json per event).

For each event:
  * pymisp MISPEvent().load() succeeds, and what pymisp lets pass is checked too: uuids,
    a known type/category pair (pymisp's describeTypes), values that fit their type,
    distribution 0-5, tags with names.
  * misp-stix round trip: MISP -> STIX 2.1 -> MISP (the internal parser, the one misp-stix
    picks for its own output). Every attribute must come back, matched by uuid, with the same
    type (kind and direction: ip-src vs ip-dst) and value (AS values compared without the "AS"
    prefix), and its TLP must keep its TLP 2.0 meaning: the strictest TLP among the attribute's
    and its event's tags before equals that after (tlp:white and tlp:clear mean the same).
    An amber+strict that comes back as TLP 1 tlp:amber, or anything less strict, fails.
    The event's own TLP tags must come back as they were.
  * --external also converts the STIX with misp-stix's external parser (the one a STIX
    bundle from any other producer gets) and reports it; it never fails the check.
For a feed directory the manifest is checked too: every event file is listed, every entry has
its file, and each entry agrees with its event (uuid, info, timestamp, Tag; date, analysis,
threat_level_id and Orgc when both carry them).

stdout: one JSON document (the summary); stderr: one human line per event and a closing line.
Exit status 0 when everything passes, 1 otherwise, 2 on bad usage.
"""

import argparse
import ipaddress
import json
import os
import re
import sys
import uuid as uuidlib

from interop_common import (
    TLP_RANK, brief, misp_attributes, misp_to_stix21, package_version, stix21_to_misp, strictest,
    tag_names, tlp2_level, tlp_of_tag)

HEX = re.compile(r"^[0-9a-fA-F]+$")
HASH_LEN = {"md5": 32, "sha1": 40, "sha256": 64}


# ------------------------------------------------------------------------- input shapes

def events_of_document(doc, source):
    """[(label, event dict without the "Event" wrapper)] of a JSON document."""
    items = []
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        items = doc["response"]
    elif isinstance(doc, dict) and "Event" in doc:
        items = [doc]
    elif isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and "info" in doc:
        items = [doc]  # a bare event, as pymisp's MISPEvent.to_json() writes it
    else:
        raise ValueError("neither {\"response\": [...]}, {\"Event\": {...}} nor a list of events")
    out = []
    for i, item in enumerate(items):
        ev = item.get("Event") if isinstance(item, dict) and "Event" in item else item
        if not isinstance(ev, dict):
            raise ValueError(f"item {i} is not an event object")
        out.append((f"{source}[{i}]" if len(items) > 1 else source, ev))
    return out


def load_feed(directory):
    """(events, problems, manifest report) of a MISP feed directory."""
    problems = []
    manifest_path = os.path.join(directory, "manifest.json")
    try:
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        return [], [f"{manifest_path}: cannot read the manifest: {exc}"], {"entries": 0}
    if not isinstance(manifest, dict):
        return [], [f"{manifest_path}: the manifest must be an object keyed by event uuid"], {"entries": 0}
    files = sorted(n for n in os.listdir(directory)
                   if n.endswith(".json") and n != "manifest.json")
    listed = {f"{k}.json" for k in manifest}
    for name in files:
        if name not in listed:
            problems.append(f"{name}: event file not listed in manifest.json")
    events = []
    for key, entry in manifest.items():
        path = os.path.join(directory, f"{key}.json")
        if not os.path.exists(path):
            problems.append(f"manifest entry {key}: no file {key}.json")
            continue
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            problems.append(f"{key}.json: cannot read JSON: {exc}")
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("Event"), dict):
            problems.append(f"{key}.json: a feed event file must be {{\"Event\": {{...}}}}")
            continue
        ev = doc["Event"]
        problems += [f"manifest entry {key}: {p}" for p in compare_manifest_entry(key, entry, ev)]
        events.append((f"{os.path.basename(os.path.normpath(directory))}/{key}.json", ev))
    return events, problems, {"entries": len(manifest), "event_files": len(files)}


def _same(a, b):
    return str(a) == str(b)


def compare_manifest_entry(key, entry, ev):
    problems = []
    if not isinstance(entry, dict):
        return ["entry is not an object"]
    if ev.get("uuid") != key:
        problems.append(f"event uuid {ev.get('uuid')!r} differs from the manifest key")
    for field in ("info", "timestamp"):
        if field not in entry:
            problems.append(f"entry has no {field}")
        elif field not in ev:
            problems.append(f"event has no {field}")
        elif not _same(entry[field], ev[field]):
            problems.append(f"{field}: manifest {entry[field]!r}, event {ev[field]!r}")
    if "Tag" not in entry:
        problems.append("entry has no Tag (pymisp writes one, possibly empty)")
    else:
        mt, et = sorted(tag_names(entry.get("Tag"))), sorted(tag_names(ev.get("Tag")))
        if mt != et:
            problems.append(f"Tag: manifest {mt}, event {et}")
    for field in ("date", "analysis", "threat_level_id"):
        if field in entry and field in ev and not _same(entry[field], ev[field]):
            problems.append(f"{field}: manifest {entry[field]!r}, event {ev[field]!r}")
    mo, eo = entry.get("Orgc") or {}, ev.get("Orgc") or {}
    for field in ("uuid", "name"):
        if field in mo and field in eo and mo[field] != eo[field]:
            problems.append(f"Orgc.{field}: manifest {mo[field]!r}, event {eo[field]!r}")
    return problems


# ------------------------------------------------------------------------- event checks

def _valid_uuid(u):
    try:
        uuidlib.UUID(str(u))
        return True
    except ValueError:
        return False


def sanity(raw, event, feed):
    """What pymisp's load lets pass that a MISP instance would not take."""
    problems = []
    if not raw.get("uuid"):
        problems.append("event has no uuid")
    elif not _valid_uuid(raw["uuid"]):
        problems.append(f"event uuid {raw['uuid']!r} is not a UUID")
    if not str(raw.get("info") or "").strip():
        problems.append("event info is empty")
    if feed:
        for field in ("timestamp", "date", "Orgc"):
            if field not in raw:
                problems.append(f"feed event has no {field}")
    if "distribution" in raw and str(raw["distribution"]) not in {"0", "1", "2", "3", "4"}:
        problems.append(f"event distribution {raw['distribution']!r} is not 0-4")
    for t in raw.get("Tag") or []:
        if not (isinstance(t, dict) and str(t.get("name") or "").strip()):
            problems.append(f"event tag without a name: {t!r}")
    mappings = event.describe_types.get("category_type_mappings", {}) if hasattr(event, "describe_types") else {}
    raw_attrs = list(raw.get("Attribute") or [])
    for o in raw.get("Object") or []:
        raw_attrs += list(o.get("Attribute") or [])
    for a in raw_attrs:
        label = f"attribute {a.get('uuid') or a.get('value')!r}"
        if not a.get("uuid"):
            problems.append(f"{label} has no uuid")
        elif not _valid_uuid(a["uuid"]):
            problems.append(f"{label}: uuid is not a UUID")
        t, v, c = a.get("type"), a.get("value"), a.get("category")
        if c is not None and mappings and t not in mappings.get(c, []):
            problems.append(f"{label}: type {t} is not allowed in category {c!r}")
        if "distribution" in a and str(a["distribution"]) not in {"0", "1", "2", "3", "4", "5"}:
            problems.append(f"{label}: distribution {a['distribution']!r} is not 0-5")
        problems += [f"{label}: {p}" for p in value_problems(t, v)]
        for tg in a.get("Tag") or []:
            if not (isinstance(tg, dict) and str(tg.get("name") or "").strip()):
                problems.append(f"{label}: tag without a name: {tg!r}")
    return problems


def value_problems(t, v):
    if not isinstance(v, str) or not v.strip():
        return [f"empty or non-string value {v!r}"]
    if t in ("ip-src", "ip-dst"):
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return [f"{t} value {v!r} is not an IP address or network"]
    if t in HASH_LEN and not (len(v) == HASH_LEN[t] and HEX.match(v)):
        return [f"{t} value {v!r} is not {HASH_LEN[t]} hex digits"]
    if t == "AS" and not re.match(r"^(AS)?\d+$", v, re.IGNORECASE):
        return [f"AS value {v!r} is not AS<number>"]
    return []


def _norm_value(t, v):
    if t == "AS":
        s = str(v).strip()
        return s[2:] if s.upper().startswith("AS") else s
    return str(v)


def _tlp_levels(tags):
    return {tlp2_level(lv) for lv in (tlp_of_tag(t) for t in tags) if lv}


def _effective(attr_tags, event_tags):
    return strictest([tlp_of_tag(t) for t in list(attr_tags) + list(event_tags)])


def compare_attributes(before, after, ev_tags_before, ev_tags_after):
    """Per-attribute comparison records, and whether all passed."""
    by_uuid = {a["uuid"]: a for a in after if a.get("uuid")}
    used = set()
    records = []
    ok = True
    for b in before:
        a = by_uuid.get(b.get("uuid"))
        how = "uuid"
        if a is None:
            cands = [x for x in after if id(x) not in used and x["type"] == b["type"]
                     and _norm_value(x["type"], x["value"]) == _norm_value(b["type"], b["value"])]
            cands = cands or [x for x in after if id(x) not in used and str(x["value"]) == str(b["value"])]
            a = cands[0] if cands else None
            how = "value"
        problems, notes = [], []
        if a is None:
            problems.append("lost in the round trip")
        else:
            used.add(id(a))
            if how == "value":
                notes.append(f"matched by value (uuid {b.get('uuid')} came back as {a.get('uuid')})")
            if a["type"] != b["type"]:
                problems.append(f"type {b['type']} came back as {a['type']}")
            if _norm_value(b["type"], b["value"]) != _norm_value(a["type"], a["value"]):
                problems.append(f"value {b['value']!r} came back as {a['value']!r}")
            elif str(a["value"]) != str(b["value"]):
                notes.append(f"value {b['value']!r} came back as {a['value']!r} (same meaning)")
        tlp_b = _effective(b["tags"], ev_tags_before)
        tlp_a = _effective(a["tags"], ev_tags_after) if a else None
        if a is not None and tlp_b is not None:
            if tlp_b == "amber+strict" and tlp_a != "amber+strict":
                problems.append(f"TLP:AMBER+STRICT came back as {('tlp:' + tlp_a) if tlp_a else 'no TLP'}"
                                + (" (TLP 1 amber: less strict)" if tlp_a == "amber" else ""))
            elif tlp_a is None or TLP_RANK[tlp_a] < TLP_RANK[tlp_b]:
                problems.append(f"TLP weakened: tlp:{tlp_b} came back as "
                                f"{('tlp:' + tlp_a) if tlp_a else 'no TLP'}")
            elif tlp2_level(tlp_a) != tlp2_level(tlp_b):
                problems.append(f"TLP changed: tlp:{tlp_b} came back as tlp:{tlp_a}")
            elif tlp_a != tlp_b:
                notes.append(f"tlp:{tlp_b} came back as tlp:{tlp_a} (same TLP 2.0 meaning)")
            own_b = {tlp_of_tag(t) for t in b["tags"]}
            own_a = {tlp_of_tag(t) for t in a["tags"]}
            if "amber+strict" in own_b and "amber" in own_a:
                problems.append("the attribute's tlp:amber+strict tag came back as tlp:amber")
        elif a is not None and tlp_a is not None:
            problems.append(f"gained TLP tlp:{tlp_a} it did not have")
        if a is not None:
            lb, la = _tlp_levels(b["tags"]), _tlp_levels(a["tags"])
            if lb != la and tlp2_level(tlp_b or "") == tlp2_level(tlp_a or ""):
                notes.append(f"attribute TLP tags {sorted(lb)} came back as {sorted(la)} with the event's "
                             f"{sorted(_tlp_levels(ev_tags_after))} (misp-stix drops an attribute tag "
                             "the event already carries)")
            other_b = [t for t in b["tags"] if not tlp_of_tag(t)]
            lost = [t for t in other_b if t not in a["tags"] and t not in ev_tags_after]
            if lost:
                notes.append(f"non-TLP tags lost: {lost}")
            gained = [t for t in a["tags"] if t not in b["tags"]]
            if gained:
                notes.append(f"tags added: {gained}")
        ok = ok and not problems
        records.append({
            "uuid": b.get("uuid"),
            "before": {k: b[k] for k in ("type", "value", "tags", "object")},
            "after": {k: a[k] for k in ("type", "value", "tags", "object")} if a else None,
            "kind": b["kind"], "direction": b["direction"],
            "tlp_before": tlp_b, "tlp_after": tlp_a,
            "ok": not problems, "problems": problems, "notes": notes,
        })
    extra = [x for x in after if id(x) not in used]
    return records, extra, ok


def check_event(label, raw, feed, args):
    from pymisp import MISPEvent
    rep = {"source": label, "uuid": raw.get("uuid"), "info": raw.get("info"), "ok": False,
           "problems": [], "notes": []}
    event = MISPEvent()
    try:
        event.load({"Event": json.loads(json.dumps(raw))})
    except Exception as exc:  # noqa: BLE001 - any refusal is the finding
        rep["problems"].append(f"pymisp MISPEvent.load failed: {type(exc).__name__}: {exc}")
        return rep
    rep["problems"] += sanity(raw, event, feed)
    before = misp_attributes(event)
    ev_tags_before = tag_names(event.tags)
    try:
        bundle, errs, warns = misp_to_stix21(event)
    except Exception as exc:  # noqa: BLE001
        rep["problems"].append(f"misp-stix MISP->STIX 2.1 failed: {type(exc).__name__}: {exc}")
        return rep
    rep["misp_to_stix"] = {"objects": len(bundle.get("objects", [])), "errors": errs, "warnings": warns}
    rep["problems"] += [f"misp-stix MISP->STIX error: {e}" for e in errs]
    if args.stix_out:
        os.makedirs(args.stix_out, exist_ok=True)
        with open(os.path.join(args.stix_out, f"{raw.get('uuid') or 'event'}.stix21.json"), "w") as f:
            json.dump(bundle, f, indent=2)
    markings = {}
    for o in bundle.get("objects", []):
        if o.get("type") == "marking-definition":
            markings[o["id"]] = o.get("name") or json.dumps(o.get("definition"))
    rep["stix_markings"] = markings
    try:
        after_ev, parser, errs, warns = stix21_to_misp(bundle, "auto")
    except Exception as exc:  # noqa: BLE001
        rep["problems"].append(f"misp-stix STIX->MISP failed: {type(exc).__name__}: {exc}")
        return rep
    rep["stix_to_misp"] = {"parser": parser, "errors": errs, "warnings": warns}
    rep["problems"] += [f"misp-stix STIX->MISP error: {e}" for e in errs]
    after = misp_attributes(after_ev)
    ev_tags_after = tag_names(after_ev.tags)
    rep["event_tags"] = {"before": ev_tags_before, "after": ev_tags_after}
    lb, la = _tlp_levels(ev_tags_before), _tlp_levels(ev_tags_after)
    if lb != la:
        rep["problems"].append(f"event TLP tags {sorted(lb)} came back as {sorted(la)}")
    lost = [t for t in ev_tags_before if not tlp_of_tag(t) and t not in ev_tags_after]
    if lost:
        rep["notes"].append(f"event tags lost: {lost}")
    added = [t for t in ev_tags_after if t not in ev_tags_before]
    if added:
        rep["notes"].append(f"event tags added by misp-stix: {added}")
    records, extra, ok = compare_attributes(before, after, ev_tags_before, ev_tags_after)
    rep["attributes"] = records
    if extra:
        rep["notes"].append(f"{len(extra)} attribute(s) after the round trip that were not there before: "
                            + ", ".join(f"{x['type']}={x['value']}" for x in extra[:5]))
    if not ok:
        rep["problems"].append(f"{sum(1 for r in records if not r['ok'])} of {len(records)} attribute(s) "
                               "did not survive the round trip")
    if args.external:
        try:
            ext_ev, _, errs, warns = stix21_to_misp(bundle, "external")
            rep["external_parser"] = {
                "attributes": [{k: x[k] for k in ("type", "value", "tags", "object")}
                               for x in misp_attributes(ext_ev)],
                "event_tags": tag_names(ext_ev.tags), "errors": errs, "warnings": warns}
        except Exception as exc:  # noqa: BLE001 - informational only
            rep["external_parser"] = {"failed": f"{type(exc).__name__}: {exc}"}
    rep["ok"] = not rep["problems"]
    return rep


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", metavar="INPUT")
    ap.add_argument("--external", action="store_true",
                    help="also convert the STIX with misp-stix's external parser (reported, never fails)")
    ap.add_argument("--stix-out", metavar="DIR", help="write the STIX 2.1 misp-stix made of each event here")
    args = ap.parse_args(argv)
    summary = {"versions": {k: package_version(k) for k in ("pymisp", "misp-stix", "stix2")},
               "ok": True, "inputs": [], "events": []}
    for inp in args.inputs:
        entry = {"input": inp, "problems": []}
        if os.path.isdir(inp):
            events, problems, manifest = load_feed(inp)
            entry["kind"], entry["manifest"] = "feed", manifest
            entry["problems"] += problems
            feed = True
        else:
            feed = False
            entry["kind"] = "file"
            try:
                with open(inp, encoding="utf-8") as f:
                    events = events_of_document(json.load(f), os.path.basename(inp))
            except (OSError, ValueError) as exc:
                entry["problems"].append(f"cannot read: {exc}")
                events = []
        if not events and not entry["problems"]:
            entry["problems"].append("no event in the input")
        entry["events"] = len(events)
        summary["inputs"].append(entry)
        for label, raw in events:
            summary["events"].append(check_event(label, raw, feed, args))
    failed_inputs = [e for e in summary["inputs"] if e["problems"]]
    failed_events = [e for e in summary["events"] if not e["ok"]]
    summary["ok"] = not failed_inputs and not failed_events
    print(json.dumps(summary, indent=2, default=str))
    for e in summary["inputs"]:
        for p in e["problems"]:
            print(f"FAIL {e['input']}: {p}", file=sys.stderr)
    for e in summary["events"]:
        n = len(e.get("attributes", []))
        print(f"{'PASS' if e['ok'] else 'FAIL'} {e['source']} ({e.get('info')!r}, {n} attributes)",
              file=sys.stderr)
        for p in e["problems"]:
            print(f"  problem: {brief(p)}", file=sys.stderr)
        for r in e.get("attributes", []):
            for p in r["problems"]:
                print(f"  {r['before']['type']} {r['before']['value']}: {p}", file=sys.stderr)
    v = summary["versions"]
    print(f"check_misp: {len(summary['events']) - len(failed_events)} of {len(summary['events'])} event(s) "
          f"pass (pymisp {v['pymisp']}, misp-stix {v['misp-stix']}); "
          f"{len(failed_inputs)} input(s) with problems", file=sys.stderr)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
