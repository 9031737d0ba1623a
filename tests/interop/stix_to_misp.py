#!/usr/bin/env python3
"""Converts a STIX 2.1 bundle into MISP with misp-stix (tests/interop/README.md).

  stix_to_misp.py [--parser auto|external|internal] [--allow-errors] BUNDLE.json

prints on stdout one JSON document:
  {"versions": {...}, "parser": "external",
   "event": {"uuid", "info", "tags": [...], "tlp": <strictest TLP of the event tags>},
   "attributes": [{"uuid", "type", "value", "category", "to_ids", "tags", "object",
                   "object_relation", "kind", "direction", "tlp"}, ...],
   "errors": [...], "warnings": [...]}
Attributes inside MISP objects are listed too ("object" names the object). "kind" and
"direction" are the attribute type in Liaison's words (ip-src -> ipv4/ipv6 + src, email-src ->
email + src, AS -> asn, md5 -> file-hash, ...; null for types Liaison does not keep). "tlp" is
the strictest TLP among the attribute's and the event's tags, in TLP 2.0 words (white -> clear),
null when none.
The parser is misp-stix's own choice by default: "internal" only for content misp-stix wrote
from MISP (a report/grouping labelled misp:tool="MISP-STIX-Converter"), else "external".
Exit status 0 when the conversion ran and misp-stix recorded no error (or --allow-errors),
1 when it failed or recorded errors, 2 on bad usage.
"""

import argparse
import json
import sys

from interop_common import (
    brief, load_json, misp_attributes, package_version, stix21_to_misp, strictest, tag_names, tlp2_level,
    tlp_of_tag)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", metavar="BUNDLE.json")
    ap.add_argument("--parser", choices=("auto", "external", "internal"), default="auto")
    ap.add_argument("--allow-errors", action="store_true",
                    help="exit 0 even when misp-stix recorded errors (they are still printed)")
    args = ap.parse_args(argv)
    out = {"versions": {k: package_version(k) for k in ("misp-stix", "pymisp", "stix2")},
           "input": args.bundle}
    try:
        bundle = load_json(args.bundle)
        event, parser, errors, warnings = stix21_to_misp(bundle, args.parser)
    except Exception as exc:  # noqa: BLE001 - reported as the result
        out["failed"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps(out, indent=2))
        print(f"stix_to_misp: misp-stix could not convert {args.bundle}: {out['failed']}", file=sys.stderr)
        return 1
    ev_tags = tag_names(event.tags)
    ev_tlp = strictest([tlp_of_tag(t) for t in ev_tags])
    attrs = misp_attributes(event)
    for a in attrs:
        lv = strictest([tlp_of_tag(t) for t in a["tags"] + ev_tags])
        a["tlp"] = tlp2_level(lv) if lv else None
    out.update({
        "parser": parser,
        "event": {"uuid": getattr(event, "uuid", None), "info": getattr(event, "info", None),
                  "tags": ev_tags, "tlp": tlp2_level(ev_tlp) if ev_tlp else None},
        "attributes": attrs,
        "errors": errors,
        "warnings": warnings,
    })
    print(json.dumps(out, indent=2, default=str))
    print(f"stix_to_misp: {len(attrs)} attribute(s) from {args.bundle} with misp-stix "
          f"{out['versions']['misp-stix']} ({parser} parser); {len(errors)} error(s), "
          f"{len(warnings)} warning(s)", file=sys.stderr)
    for e in errors:
        print(f"  misp-stix error: {brief(e)}", file=sys.stderr)
    return 1 if errors and not args.allow_errors else 0


if __name__ == "__main__":
    sys.exit(main())
