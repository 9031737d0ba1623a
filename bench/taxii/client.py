#!/usr/bin/env python3
"""The one TAXII 2.1 client of the benchmark, used unchanged against medallion and Liaison.

    client.py URL --user U --password P --collection ID [--per-page 100] [--runs 3]
              [--expect N] [--bundle BUNDLE.json] [--by ids|values] [--match-type T]
              [--json] [--label NAME]

URL is the API root (e.g. http://127.0.0.1:5501/api1/); a discovery URL (one whose
answer lists `api_roots`, e.g. .../taxii2/) is also accepted and resolved to the API root
that holds the collection.  Authentication is HTTP Basic (Liaison: user name + token).

Each run reads the whole collection with taxii2-client's v21 `as_pages(
collection.get_objects, per_request=PER_PAGE)`, which follows the envelope's `next`
while `more` is true.  The run's wall-clock time covers the paging only (the collection's
own metadata is fetched once before the runs).  Every run checks that each object id
arrived exactly once and, with --expect, that N distinct ids arrived (with --bundle: exactly
the bundle's ids, or with --by values exactly the bundle's indicator values, for a server that
keeps indicators by value and gives them its own ids, as Liaison does).  --match-type T asks
for objects of type T only (`match[type]`; Liaison serves each indicator with its sighting).
Prints objects/s per run and the median; --json prints one JSON result.
"""

import argparse
import json
import re
import statistics
import sys
import time

import requests
from taxii2client.v21 import ApiRoot, Collection, as_pages


def resolve_api_root(url, user, password, collection_id):
    """Return the API root URL: URL itself, or the one of a discovery answer holding the collection."""
    url = url if url.endswith("/") else url + "/"
    r = requests.get(url, auth=(user, password), headers={"Accept": "application/taxii+json;version=2.1"},
                     timeout=600)
    r.raise_for_status()
    body = r.json()
    if "api_roots" not in body:
        return url
    roots = list(body.get("api_roots", []))
    if body.get("default") in roots:
        roots.remove(body["default"])
        roots.insert(0, body["default"])
    for root in roots:
        root = requests.compat.urljoin(url, root)
        api_root = ApiRoot(root, user=user, password=password)
        try:
            if any(c.id == collection_id for c in api_root.collections):
                return root if root.endswith("/") else root + "/"
        except Exception:  # noqa: BLE001 - a root we cannot list is not ours
            continue
    raise SystemExit("collection %s not found under any API root of %s" % (collection_id, url))


class PageLog:
    """requests response hook: per-page latency, status and the X-TAXII-Date-Added-* headers."""

    def __init__(self):
        self.pages = []

    def __call__(self, resp, *args, **kwargs):
        if "/objects/" in resp.url:
            self.pages.append({
                "status": resp.status_code,
                "elapsed_s": resp.elapsed.total_seconds(),
                "bytes": len(resp.content),
                "first": resp.headers.get("X-TAXII-Date-Added-First"),
                "last": resp.headers.get("X-TAXII-Date-Added-Last"),
            })
        return resp


class Deadline:
    """Gives every request of a run the time left in the run's budget as its timeout."""

    def __init__(self, session):
        self.until = None
        self._request = session.request
        session.request = self

    def __call__(self, *args, **kwargs):
        if self.until is not None:
            left = self.until - time.perf_counter()
            if left <= 0:
                raise requests.exceptions.Timeout("run budget spent")
            kwargs["timeout"] = left
        return self._request(*args, **kwargs)


# The value a pattern names: `...value = 'X'` or `file:hashes.'SHA-256' = 'X'` (both the
# plain `[ipv4-addr:value = ...]` form and the directed `network-traffic:dst_ref.value` form).
VALUE = re.compile(r"(?:value|hashes\.'SHA-256')\s*=\s*'([^']*)'")


def key_of(o, by):
    if by == "ids":
        return o["id"]
    m = VALUE.search(o.get("pattern", ""))
    return m.group(1) if m else "(no value: %s)" % o["id"]


def one_run(collection, per_page, expect, expected_ids, log, deadline, max_run_s, by="ids", match_type=None):
    log.pages.clear()
    seen = set()
    dupes = 0
    count = 0
    sizes = []
    more_false_at_end = None
    completed = True
    t0 = time.perf_counter()
    deadline.until = t0 + max_run_s if max_run_s else None
    kwargs = {"type": match_type} if match_type else {}
    pages = as_pages(collection.get_objects, per_request=per_page, **kwargs)
    keys = set()
    while True:
        try:
            envelope = next(pages)
        except StopIteration:
            break
        except requests.exceptions.Timeout:
            completed = False
            break
        objs = envelope.get("objects", [])
        sizes.append(len(objs))
        count += len(objs)
        for o in objs:
            oid = o["id"]
            if oid in seen:
                dupes += 1
            else:
                seen.add(oid)
            if by != "ids" and o.get("type") == "indicator":
                keys.add(key_of(o, by))
        more_false_at_end = not envelope.get("more", False)
    wall = time.perf_counter() - t0
    deadline.until = None

    problems = []
    if not completed:
        problems.append("run stopped at its %g s budget (incomplete: a lower bound on the time)" % max_run_s)
    if dupes:
        problems.append("%d duplicate ids" % dupes)
    if by == "ids" and expect is not None and len(seen) != expect:
        problems.append("%d distinct ids, expected %d" % (len(seen), expect))
    got = seen if by == "ids" else keys
    if expected_ids is not None and got != expected_ids:
        problems.append("%d expected %s missing, %d unexpected" %
                        (len(expected_ids - got), by, len(got - expected_ids)))
    over = [s for s in sizes if s > per_page]
    if over:
        problems.append("%d pages larger than limit=%d (max %d)" % (len(over), per_page, max(over)))
    lat = sorted(p["elapsed_s"] for p in log.pages)
    with_headers = sum(1 for p in log.pages if p["first"] and p["last"])
    return {
        "completed": completed,
        "objects": count,
        "distinct_ids": len(seen),
        "duplicates": dupes,
        "pages": len(sizes),
        "page_sizes": {"min": min(sizes) if sizes else 0, "max": max(sizes) if sizes else 0,
                       "last": sizes[-1] if sizes else 0},
        "ended_with_more_false": more_false_at_end,
        "wall_s": round(wall, 3),
        "objects_per_s": round(count / wall, 1) if wall > 0 else None,
        "first_page_s": round(log.pages[0]["elapsed_s"], 3) if log.pages else None,
        "page_latency_s": {
            "median": round(statistics.median(lat), 4) if lat else None,
            "p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 4) if lat else None,
            "max": round(lat[-1], 4) if lat else None,
        },
        "bytes": sum(p["bytes"] for p in log.pages),
        "pages_with_date_added_headers": with_headers,
        "date_added_first": log.pages[0]["first"] if log.pages else None,
        "date_added_last": log.pages[-1]["last"] if log.pages else None,
        "ok": not problems,
        "problems": problems,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", help="API root URL (or a discovery URL)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True, help="password, or Liaison token")
    ap.add_argument("--collection", required=True, help="collection id")
    ap.add_argument("--per-page", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--expect", type=int, help="number of distinct objects the collection holds")
    ap.add_argument("--bundle", help="STIX bundle whose ids (or values, --by values) must arrive, exactly")
    ap.add_argument("--by", choices=["ids", "values"], default="ids",
                    help="compare with the bundle by object id (default) or by indicator value")
    ap.add_argument("--match-type", help="ask only for objects of this STIX type (match[type])")
    ap.add_argument("--label", default="", help="name of the server, copied into the result")
    ap.add_argument("--max-run-s", type=float, default=0,
                    help="stop a run that has not finished after this many seconds (0: no limit); "
                         "it is reported incomplete and no further run starts")
    ap.add_argument("--json", action="store_true", help="print one JSON result on stdout")
    args = ap.parse_args(argv)

    expected_ids = None
    if args.bundle:
        with open(args.bundle, encoding="utf-8") as f:
            expected_ids = {key_of(o, args.by) for o in json.load(f)["objects"]}
        if args.expect is None and args.by == "ids":
            args.expect = len(expected_ids)

    api_root = resolve_api_root(args.url, args.user, args.password, args.collection)
    collection = Collection(api_root + "collections/" + args.collection + "/",
                            user=args.user, password=args.password)
    if not collection.can_read:  # fetches the collection's metadata, outside the timed runs
        raise SystemExit("collection %s is not readable" % args.collection)
    log = PageLog()
    collection._conn.session.hooks["response"].append(log)
    deadline = Deadline(collection._conn.session)

    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else \
        (lambda *a: print(*a, flush=True))
    say("collection %s at %s, %d runs, per page %d" % (args.collection, api_root, args.runs, args.per_page))
    runs = []
    for i in range(args.runs):
        r = one_run(collection, args.per_page, args.expect, expected_ids, log, deadline, args.max_run_s,
                    args.by, args.match_type)
        runs.append(r)
        say("run %d: %d objects (%d distinct) in %d pages, %.2f s -> %.1f objects/s; first page %.2f s, "
            "page median %.4f s max %.4f s; %s" % (
                i + 1, r["objects"], r["distinct_ids"], r["pages"], r["wall_s"], r["objects_per_s"] or 0,
                r["first_page_s"] or 0, r["page_latency_s"]["median"] or 0, r["page_latency_s"]["max"] or 0,
                "ok" if r["ok"] else "PROBLEMS: " + "; ".join(r["problems"])))
        if not r["completed"]:
            say("run %d did not finish; the server may still be working on its request: no further runs" % (i + 1))
            break
    rates = [r["objects_per_s"] for r in runs if r["completed"] and r["objects_per_s"]]
    result = {
        "label": args.label,
        "api_root": api_root,
        "collection": args.collection,
        "per_page": args.per_page,
        "by": args.by,
        "match_type": args.match_type,
        "runs": runs,
        "objects_per_s": rates,
        "median_objects_per_s": round(statistics.median(rates), 1) if rates else None,
        "ok": all(r["ok"] for r in runs),
    }
    say("objects/s per run: %s; median %s" % (", ".join("%.1f" % x for x in rates), result["median_objects_per_s"]))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
