#!/usr/bin/env python3
"""Checks a TAXII 2.1 server with the OASIS client, taxii2-client (tests/interop/README.md).

  check_taxii.py URL --user U --password P [--collection ID] [--expect-count N]
                 [--write-collection ID | --no-write] [--page-size 7] [--api-root URL] [--json]

URL is the server's discovery URL (e.g. https://host/taxii2/). With HTTP Basic auth it checks:
  discovery     title, api_roots, default among api_roots
  api root      versions include taxii 2.1, max_content_length is a positive integer
  collections   each has id, title, can_read, can_write; the one read (--collection or the first
                readable) and the one written (--write-collection or the first writable)
  get objects   paged with limit=--page-size through taxii2-client's as_pages and by hand with
                limit/next, and once without limit: the three give the same objects, no id twice,
                no page over the limit, `more` true with a `next` on every page but the last;
                --expect-count N: exactly N objects
  manifest      paged the same way: one entry (id, date_added, version, media_type) per object
                with the object's version, date_added not decreasing from page to page
  versions      for up to --version-checks objects: Get Object Versions lists the object's version,
                Get Object returns the latest one, and the manifest with match[version]=all the same
  add objects   (unless --no-write) a small envelope (identity + indicator, fresh ids): the status
                is polled until complete with every object a success; the objects are then served
  auth          no credentials and a wrong password are refused (401/403) unless --allow-anonymous
Exit status 0 when no check failed, 1 otherwise, 2 on bad usage.
"""

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timezone

TAXII21 = "application/taxii+json;version=2.1"


class Report:
    def __init__(self, stream):
        self.rows = []
        self.stream = stream

    def add(self, status, name, detail=""):
        self.rows.append({"status": status, "check": name, "detail": detail})
        print(f"{status:4} {name}{': ' + detail if detail else ''}", file=self.stream, flush=True)

    def ok(self, name, detail=""):
        self.add("PASS", name, detail)

    def fail(self, name, detail=""):
        self.add("FAIL", name, detail)

    def warn(self, name, detail=""):
        self.add("WARN", name, detail)

    def check(self, cond, name, detail_ok="", detail_fail=""):
        (self.ok if cond else self.fail)(name, detail_ok if cond else (detail_fail or detail_ok))
        return cond

    def count(self, status):
        return sum(1 for r in self.rows if r["status"] == status)


def ts(value):
    """An RFC 3339 timestamp as an aware datetime (any fraction length), or None."""
    if not isinstance(value, str):
        return None
    v = value.strip().replace("z", "Z")
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    if "." in v:
        head, rest = v.split(".", 1)
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac):]
        v = f"{head}.{(frac + '000000')[:6]}{tz}"
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        return None
    return d if d.tzinfo else d.replace(tzinfo=timezone.utc)


def version_of(obj):
    return ts(obj.get("modified") or obj.get("created"))


def walk_pages(envelopes, limit, what, rep, name):
    """Checks a sequence of envelopes for paging; returns the items, in order."""
    items, n = [], 0
    key = "objects"
    envs = list(envelopes)
    for i, env in enumerate(envs):
        n += 1
        page = env.get(key) or []
        if limit and len(page) > limit:
            rep.fail(f"{name}: page size", f"page {n} has {len(page)} {what}, limit was {limit}")
        more = env.get("more", False)
        last = i == len(envs) - 1
        if more and not env.get("next"):
            rep.fail(f"{name}: next", f"page {n} says more=true without a next")
        if more and last:
            rep.fail(f"{name}: more", f"last page {n} still says more=true")
        if not more and not last:
            rep.fail(f"{name}: more", f"page {n} says more=false but another page followed")
        if more and not page:
            rep.fail(f"{name}: more", f"page {n} is empty but says more=true")
        items += page
    return items, n


def manual_pages(func, limit, max_pages, **kwargs):
    """Get pages by hand with limit and next until `more` is false."""
    envs, token = [], None
    for _ in range(max_pages):
        args = dict(kwargs)
        if limit:
            args["limit"] = limit
        if token:
            args["next"] = token
        env = func(**args)
        envs.append(env)
        if not env.get("more", False):
            return envs, True
        token = env.get("next")
        if not token:
            return envs, True  # reported by walk_pages
    return envs, False


def keyset(objs):
    return {(o.get("id"), version_of(o)) for o in objs}


def dupes(objs):
    seen, out = set(), []
    for o in objs:
        if o.get("id") in seen:
            out.append(o.get("id"))
        seen.add(o.get("id"))
    return out


def check_read(col, args, rep):
    limit = args.page_size
    from taxii2client.v21 import as_pages
    max_pages = 100000
    # 1. taxii2-client's own pager
    try:
        pages = list(as_pages(col.get_objects, per_request=limit))
        via_client, n1 = walk_pages(pages, limit, "objects", rep, "get objects (as_pages)")
        rep.ok("get objects (as_pages)", f"{len(via_client)} objects in {n1} page(s) of limit {limit}")
    except Exception as exc:  # noqa: BLE001
        rep.fail("get objects (as_pages)", f"{type(exc).__name__}: {exc}")
        return None
    # 2. by hand
    envs, ended = manual_pages(col.get_objects, limit, max_pages)
    by_hand, n2 = walk_pages(envs, limit, "objects", rep, "get objects (limit/next by hand)")
    rep.check(ended, "get objects (limit/next by hand)", f"{len(by_hand)} objects in {n2} page(s)",
              f"still more after {max_pages} pages")
    # 3. without a limit (the server's own page size)
    envs, _ = manual_pages(col.get_objects, None, max_pages)
    whole, n3 = walk_pages(envs, None, "objects", rep, "get objects (no limit)")
    rep.ok("get objects (no limit)", f"{len(whole)} objects in {n3} page(s)")
    for name, objs in (("as_pages", via_client), ("by hand", by_hand), ("no limit", whole)):
        d = dupes(objs)
        rep.check(not d, f"no duplicates ({name})", "", f"{len(d)} id(s) served twice, e.g. {d[:3]}")
    a, b, c = keyset(via_client), keyset(by_hand), keyset(whole)
    rep.check(a == b == c, "paging loses nothing",
              f"the three reads agree on {len(a)} (id, version) pairs",
              f"as_pages {len(a)}, by hand {len(b)}, no limit {len(c)}; "
              f"missing from as_pages {sorted({i for i, _ in c - a})[:3]}, "
              f"from by hand {sorted({i for i, _ in c - b})[:3]}; "
              f"extra in as_pages {sorted({i for i, _ in a - c})[:3]}, in by hand {sorted({i for i, _ in b - c})[:3]}")
    if args.expect_count is not None:
        rep.check(len(whole) == args.expect_count, "expected count", f"{len(whole)} objects",
                  f"{len(whole)} objects, expected {args.expect_count}")
    if len(whole) <= limit:
        rep.warn("paging exercised", f"only {len(whole)} objects (<= limit {limit}): more/next were not exercised")
    return whole


def check_manifest(col, objects, args, rep):
    from taxii2client.v21 import as_pages
    limit = args.page_size
    try:
        pages = list(as_pages(col.get_manifest, per_request=limit))
    except Exception as exc:  # noqa: BLE001
        rep.fail("manifest (as_pages)", f"{type(exc).__name__}: {exc}")
        return
    entries, n = walk_pages(pages, limit, "entries", rep, "manifest (as_pages)")
    envs, _ = manual_pages(col.get_manifest, limit, 100000)
    by_hand, _ = walk_pages(envs, limit, "entries", rep, "manifest (by hand)")
    bad = [e for e in entries if not all(k in e for k in ("id", "date_added", "version"))]
    rep.check(not bad, "manifest entries complete", f"{len(entries)} entries in {n} page(s)",
              f"{len(bad)} entries lack id/date_added/version, e.g. {bad[:1]}")
    no_media = [e.get("id") for e in entries if "media_type" not in e]
    if no_media:
        rep.warn("manifest media_type", f"{len(no_media)} entries without media_type (optional)")
    dates = [ts(e.get("date_added")) for e in entries]
    order_ok = all(x is not None and y is not None and x <= y for x, y in zip(dates, dates[1:]))
    rep.check(order_ok, "manifest sorted by date_added", "", "date_added decreases between entries")
    d = dupes(entries)
    rep.check(not d, "manifest without duplicates", "", f"{len(d)} id(s) twice, e.g. {d[:3]}")
    rep.check({(e.get("id"), ts(e.get("version"))) for e in by_hand} == {(e.get("id"), ts(e.get("version")))
                                                                          for e in entries},
              "manifest paging (as_pages = by hand)")
    if objects is None:
        return
    obj_ids = {o["id"] for o in objects}
    man_ids = {e.get("id") for e in entries}
    rep.check(obj_ids == man_ids, "manifest ids = object ids", f"{len(man_ids)} ids",
              f"only in objects {sorted(obj_ids - man_ids)[:3]}, only in manifest {sorted(man_ids - obj_ids)[:3]}")
    by_id = {o["id"]: version_of(o) for o in objects}
    wrong = [e.get("id") for e in entries
             if by_id.get(e.get("id")) is not None and ts(e.get("version")) != by_id[e.get("id")]]
    rep.check(not wrong, "manifest versions = object versions", "",
              f"{len(wrong)} entries whose version is not the object's modified/created, e.g. {wrong[:3]}")


def check_versions(col, objects, args, rep):
    if not objects:
        return
    sample = [o for o in objects][: args.version_checks]
    problems = []
    for o in sample:
        oid = o["id"]
        try:
            vers_env = col.object_versions(oid)
            versions = [ts(v) for v in vers_env.get("versions", [])]
            got = col.get_object(oid)
            served = got.get("objects") or []
            man = col.get_manifest(id=oid, version="all")
            man_versions = {ts(e.get("version")) for e in man.get("objects", [])}
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{oid}: {type(exc).__name__}: {exc}")
            continue
        v = version_of(o)
        if vers_env.get("more"):
            problems.append(f"{oid}: versions list pages (more=true); only the first page was compared")
        if v is not None and v not in versions:
            problems.append(f"{oid}: version {o.get('modified') or o.get('created')} not in object versions")
        if None in versions:
            problems.append(f"{oid}: a version that is not a timestamp in {vers_env.get('versions')}")
        if len(served) != 1 or served[0].get("id") != oid:
            problems.append(f"{oid}: get object served {len(served)} objects")
        elif v is not None and versions and None not in versions and version_of(served[0]) != max(versions):
            problems.append(f"{oid}: get object served version {served[0].get('modified')}, not the latest")
        if set(versions) != man_versions:
            problems.append(f"{oid}: object versions {len(versions)} differ from manifest match[version]=all "
                            f"{len(man_versions)}")
    rep.check(not problems, "object versions", f"{len(sample)} object(s): versions, get object and "
                                                "manifest agree", "; ".join(problems[:5]))


def now_stix():
    d = datetime.now(timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def check_write(api_root, col, args, rep):
    t = now_stix()
    ident = {"type": "identity", "spec_version": "2.1", "id": f"identity--{uuid.uuid4()}", "created": t,
             "modified": t, "name": "check_taxii.py probe", "identity_class": "system"}
    ind = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}", "created": t,
           "modified": t, "created_by_ref": ident["id"], "name": "check_taxii.py probe",
           "description": "Written by tests/interop/check_taxii.py to check Add Objects.",
           "indicator_types": ["benign"], "pattern": "[domain-name:value = 'taxii-probe.example']",
           "pattern_type": "stix", "valid_from": t}
    envelope = {"objects": [ident, ind]}
    size = len(json.dumps(envelope).encode())
    mcl = getattr(api_root, "max_content_length", None)
    if isinstance(mcl, int) and size > mcl:
        rep.fail("add objects", f"probe envelope of {size} bytes exceeds max_content_length {mcl}")
        return
    try:
        status = col.add_objects(envelope, wait_for_completion=False)
    except Exception as exc:  # noqa: BLE001
        rep.fail("add objects", f"{type(exc).__name__}: {exc}")
        return
    rep.check(status.total_count == 2, "add objects: status", f"status {status.id} {status.status}, total 2",
              f"status {status.id} total_count {status.total_count}, expected 2")
    deadline = time.time() + args.timeout
    polls = 0
    current = status
    while True:
        try:
            current = api_root.get_status(status.id)
            polls += 1
        except Exception as exc:  # noqa: BLE001
            rep.fail("add objects: poll status", f"GET status/{status.id}/: {type(exc).__name__}: {exc}")
            return
        if current.status == "complete" or time.time() > deadline:
            break
        time.sleep(0.5)
    rep.check(current.status == "complete", "add objects: status completes",
              f"complete after {polls} poll(s)", f"still {current.status!r} after {args.timeout}s")
    rep.check(current.success_count == 2 and current.failure_count == 0 and current.pending_count == 0,
              "add objects: all succeeded", f"success {current.success_count}",
              f"success {current.success_count}, failure {current.failure_count}, pending {current.pending_count}; "
              f"failures {current.failures}")
    if current.successes:
        ids = {s.get("id") for s in current.successes}
        rep.check(ids == {ident["id"], ind["id"]}, "add objects: successes name the objects", "", f"{ids}")
    try:  # taxii2-client's own status URL (collection URL + ../../status/<id>, no trailing slash)
        status.refresh()
        rep.ok("add objects: status via the client's own URL", status.url)
    except Exception as exc:  # noqa: BLE001
        rep.warn("add objects: status via the client's own URL", f"{status.url}: {type(exc).__name__}: {exc}")
    if not col.can_read:
        rep.warn("add objects: served", "the written collection is not readable: not confirmed")
        return
    missing = []
    for obj in (ident, ind):
        try:
            got = col.get_object(obj["id"]).get("objects") or []
        except Exception as exc:  # noqa: BLE001
            missing.append(f"{obj['id']}: {type(exc).__name__}: {exc}")
            continue
        if not any(ts(g.get("modified")) == ts(obj["modified"]) for g in got):
            missing.append(f"{obj['id']}: not served with its version")
    try:
        man = col.get_manifest(id=[ident["id"], ind["id"]]).get("objects") or []
        if {e.get("id") for e in man} != {ident["id"], ind["id"]}:
            missing.append(f"manifest lists {[e.get('id') for e in man]}")
    except Exception as exc:  # noqa: BLE001
        missing.append(f"manifest: {type(exc).__name__}: {exc}")
    rep.check(not missing, "add objects: served afterwards", "both objects and their manifest entries",
              "; ".join(missing))


def check_auth(api_root, args, rep):
    import requests
    url = api_root.url + "collections/"
    for label, auth in (("no credentials", None), ("wrong password", (args.user, args.password + "-wrong"))):
        try:
            r = requests.get(url, headers={"Accept": TAXII21}, auth=auth, verify=not args.insecure, timeout=30)
            code = r.status_code
        except Exception as exc:  # noqa: BLE001
            rep.fail(f"auth: {label}", f"{type(exc).__name__}: {exc}")
            continue
        refused = code in (401, 403, 404)
        if refused:
            rep.ok(f"auth: {label} refused", f"HTTP {code}")
        elif args.allow_anonymous:
            rep.warn(f"auth: {label} refused", f"HTTP {code} (allowed by --allow-anonymous)")
        else:
            rep.fail(f"auth: {label} refused", f"HTTP {code}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="discovery URL")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--api-root", help="API root URL to use (default: the default one, else the first)")
    ap.add_argument("--collection", help="id of the collection to read (default: the first readable)")
    ap.add_argument("--write-collection", help="id of the collection to write (default: the first writable)")
    ap.add_argument("--no-write", action="store_true", help="do not add objects")
    ap.add_argument("--expect-count", type=int, help="the read collection holds exactly N objects")
    ap.add_argument("--page-size", type=int, default=7, help="limit per page (default 7)")
    ap.add_argument("--version-checks", type=int, default=25, help="objects whose versions are checked")
    ap.add_argument("--timeout", type=float, default=60, help="seconds to wait for an add to complete")
    ap.add_argument("--allow-anonymous", action="store_true", help="an open server is not a failure")
    ap.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    ap.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = ap.parse_args(argv)
    if args.page_size < 1:
        ap.error("--page-size must be at least 1")

    from taxii2client.v21 import ApiRoot, Server
    rep = Report(sys.stderr if args.json else sys.stdout)
    verify = not args.insecure
    try:
        server = Server(args.url, user=args.user, password=args.password, verify=verify)
        title = server.title
        roots = server.api_roots
        rep.ok("discovery", f"title {title!r}, {len(roots)} API root(s), default "
                            f"{server.default.url if server.default else None}")
        raw_default = (server._raw or {}).get("default")
        if raw_default:
            rep.check(server.default is not None, "discovery: default is one of api_roots", "",
                      f"default {raw_default} is not in api_roots")
    except Exception as exc:  # noqa: BLE001
        rep.fail("discovery", f"{type(exc).__name__}: {exc}")
        return finish(rep, args)
    if args.api_root:
        api_root = ApiRoot(args.api_root, user=args.user, password=args.password, verify=verify)
    elif server.default is not None:
        api_root = server.default
    elif roots:
        api_root = roots[0]
    else:
        rep.fail("api root", "the server lists no API root")
        return finish(rep, args)
    try:
        api_root.refresh_information()
        rep.check(TAXII21 in (api_root.versions or []), "api root: versions",
                  f"{api_root.url}: {api_root.versions}", f"{api_root.versions} lacks {TAXII21}")
        mcl = api_root.max_content_length
        rep.check(isinstance(mcl, int) and not isinstance(mcl, bool) and mcl > 0, "api root: max_content_length",
                  f"{mcl}", f"{mcl!r} is not a positive integer")
    except Exception as exc:  # noqa: BLE001
        rep.fail("api root", f"{api_root.url}: {type(exc).__name__}: {exc}")
        return finish(rep, args)
    try:
        cols = api_root.collections
    except Exception as exc:  # noqa: BLE001
        rep.fail("collections", f"{type(exc).__name__}: {exc}")
        return finish(rep, args)
    bad = [c.id for c in cols if not (c.id and c.title is not None and isinstance(c.can_read, bool)
                                      and isinstance(c.can_write, bool))]
    rep.check(cols and not bad, "collections", ", ".join(f"{c.id} ({c.title!r}, read={c.can_read}, "
                                                         f"write={c.can_write})" for c in cols),
              f"{len(cols)} collection(s); incomplete: {bad}")
    read_col = next((c for c in cols if c.id == args.collection), None) if args.collection else \
        next((c for c in cols if c.can_read), None)
    if read_col is None:
        rep.fail("read collection", f"no {'collection ' + args.collection if args.collection else 'readable collection'}")
        objects = None
    elif not read_col.can_read:
        rep.fail("read collection", f"{read_col.id} is not readable")
        objects = None
    else:
        rep.ok("read collection", read_col.id)
        objects = check_read(read_col, args, rep)
        check_manifest(read_col, objects, args, rep)
        check_versions(read_col, objects, args, rep)
    if not args.no_write:
        wcol = next((c for c in cols if c.id == args.write_collection), None) if args.write_collection else \
            next((c for c in cols if c.can_write), None)
        if wcol is None or not wcol.can_write:
            (rep.fail if args.write_collection else rep.warn)(
                "write collection", "no writable collection: add objects not checked (--no-write to skip)")
        else:
            rep.ok("write collection", wcol.id)
            check_write(api_root, wcol, args, rep)
    check_auth(api_root, args, rep)
    return finish(rep, args)


def finish(rep, args):
    failed, passed, warned = rep.count("FAIL"), rep.count("PASS"), rep.count("WARN")
    if args.json:
        print(json.dumps({"url": args.url, "ok": failed == 0, "checks": rep.rows}, indent=2))
    print(f"check_taxii: {passed} checks passed, {failed} failed, {warned} warning(s) "
          f"(taxii2-client {_client_version()})", file=rep.stream)
    return 1 if failed else 0


def _client_version():
    try:
        from importlib.metadata import version
        return version("taxii2-client")
    except Exception:  # noqa: BLE001
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
