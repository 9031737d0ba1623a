#!/usr/bin/env python3
"""Build medallion 3.0's memory-backend data file and server config from a STIX bundle.

    medallion_data.py BUNDLE.json DATA.json CONFIG.json --port P --user U --password W
                      [--collection ID] [--session-timeout S]

Data file layout (what medallion 3.0.0's MemoryBackend reads with json.load and walks):

  {"/discovery": {title, description, default, api_roots: [URL]},
   "<api-root>": {"information": {title, description, versions, max_content_length},
                  "status": [],
                  "collections": [{"id", "title", "description", "can_read", "can_write",
                                   "media_types": ["application/stix+json;version=2.1"],
                                   "objects": [STIX objects],
                                   "manifest": [{"id", "date_added", "version",
                                                 "media_type"}]}]}}

One manifest entry per object: `version` is the object's `modified`, `media_type` is
singular (medallion 3.0 splits it on "version="), `date_added` carries microseconds like
the timestamps medallion writes itself.  date_added = the object's `modified`, so the
collection's date_added order is the bundle order and every value is distinct.
"""

import argparse
import json
import sys

API_ROOT = "api1"  # sorts after "/discovery": medallion's lookups never walk the objects
DEFAULT_COLLECTION = "4ae3d6c2-6f44-5c4c-9b7e-4d0d7a1f2b10"
STIX21 = "application/stix+json;version=2.1"


def date_added(stix_ts):
    # "2024-01-01T00:04:27.831Z" -> "2024-01-01T00:04:27.831000Z"
    head, frac = stix_ts[:-1].split(".")
    return "%s.%sZ" % (head, frac.ljust(6, "0")[:6])


def build(objects, port, collection_id):
    base = "http://127.0.0.1:%d/" % port
    manifest = [{
        "id": o["id"],
        "date_added": date_added(o.get("modified", o.get("created"))),
        "version": o.get("modified", o.get("created")),
        "media_type": STIX21,
    } for o in objects]
    return {
        "/discovery": {
            "title": "medallion (Liaison TAXII benchmark)",
            "description": "medallion 3.0 memory backend holding the benchmark collection",
            "contact": "bench/taxii",
            "default": base + API_ROOT + "/",
            "api_roots": [base + API_ROOT + "/"],
        },
        API_ROOT: {
            "information": {
                "title": "Benchmark API root",
                "description": "Indicators exported in Liaison's shape",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 104857600,
            },
            "status": [],
            "collections": [{
                "id": collection_id,
                "title": "Benchmark indicators",
                "description": "%d generated STIX 2.1 indicators" % len(objects),
                "can_read": True,
                "can_write": False,
                "media_types": [STIX21],
                "objects": objects,
                "manifest": manifest,
            }],
        },
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle")
    ap.add_argument("data_out")
    ap.add_argument("config_out")
    ap.add_argument("--port", type=int, default=5501)
    ap.add_argument("--user", default="bench")
    ap.add_argument("--password", default="bench-password")
    ap.add_argument("--collection", default=DEFAULT_COLLECTION)
    ap.add_argument("--session-timeout", type=int, default=30,
                    help="MemoryBackend session_timeout: seconds a `next` token lives after the "
                         "first page (medallion's default is 30)")
    ap.add_argument("--max-page-size", type=int, default=100)
    args = ap.parse_args(argv)

    with open(args.bundle, encoding="utf-8") as f:
        objects = json.load(f)["objects"]
    with open(args.data_out, "w", encoding="utf-8") as f:
        json.dump(build(objects, args.port, args.collection), f, separators=(",", ":"))
    config = {
        "users": {args.user: args.password},
        "taxii": {"max_page_size": args.max_page_size},
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": args.data_out,
            "session_timeout": args.session_timeout,
        },
    }
    with open(args.config_out, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print("medallion data: %d objects in collection %s -> %s" % (len(objects), args.collection, args.data_out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
