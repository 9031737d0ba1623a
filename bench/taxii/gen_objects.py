#!/usr/bin/env python3
"""Generate N STIX 2.1 indicators, deterministically, as one STIX bundle.

    gen_objects.py N OUT.json [--seed S]

The indicators have the shape Liaison exports (type, spec_version, id, created,
modified, name, indicator_types, pattern, pattern_type, pattern_version,
valid_from, confidence, labels, object_marking_refs).  Patterns are a mix of
ipv4-addr, domain-name, url and file SHA-256, every value distinct (object i's address is the
i-th of 198.18.0.0/15), so a server that keeps indicators by value holds N of them.  Object i is created inside its
own 300-second slot starting at 2024-01-01T00:00:00Z, and modified later inside
the same slot, so `created` and `modified` are distinct and strictly increase
with i across ~347 days (100,000 objects): `added_after` filters are meaningful.

The same N and seed give byte-identical output (standard library only).
"""

import argparse
import datetime as dt
import json
import random
import sys
import uuid

TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
SLOT_SECONDS = 300  # each object owns [i*300 s, (i+1)*300 s) after BASE

THREATS = ["c2-server", "phishing", "malware-distribution", "botnet", "scanner", "ransomware"]
FAMILIES = ["emotet", "qakbot", "trickbot", "icedid", "cobaltstrike", "lockbit", "agenttesla", "redline"]
INDICATOR_TYPES = ["malicious-activity", "malicious-activity", "malicious-activity",
                   "anomalous-activity", "compromised"]
CONFIDENCES = [50, 60, 70, 80, 85, 90, 95]
TLDS = ["com", "net", "org", "info", "biz", "xyz", "ru", "top"]
WORDS = ["secure", "login", "update", "cdn", "mail", "account", "verify", "files",
         "portal", "service", "cloud", "sync", "invoice", "track", "support", "bank"]


def stix_time(t):
    """STIX timestamp with millisecond precision, e.g. 2024-01-01T00:00:00.123Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def make_observable(rng, kind, i):
    """Return (pattern, value) for one indicator of the given kind."""
    if kind == "ipv4":
        # The benchmarking range 198.18.0.0/15 (RFC 2544), one address per object (i < 131,072)
        # so that every object is a distinct indicator. The random draws of the first version
        # of this generator are kept, so every other field is as it was.
        rng.choice(["192.0.2", "198.51.100", "203.0.113", "198.18.%d" % rng.randrange(256),
                    "198.19.%d" % rng.randrange(256)])
        rng.randrange(1, 255)
        if i >= 1 << 17:
            raise SystemExit("at most 131,072 objects: one benchmarking address each")
        value = "198.%d.%d.%d" % (18 + (i >> 16), (i >> 8) & 255, i & 255)
        return "[ipv4-addr:value = '%s']" % value, value
    if kind == "domain":
        value = "%s-%s%d.example.%s" % (rng.choice(WORDS), rng.choice(WORDS), i, rng.choice(TLDS))
        return "[domain-name:value = '%s']" % value, value
    if kind == "url":
        host = "%s%d.example.%s" % (rng.choice(WORDS), i, rng.choice(TLDS))
        path = "/".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 4)))
        value = "http://%s/%s/%08x.php" % (host, path, rng.getrandbits(32))
        return "[url:value = '%s']" % value, value
    value = "%064x" % rng.getrandbits(256)
    return "[file:hashes.'SHA-256' = '%s']" % value, value


def generate(n, seed):
    rng = random.Random(seed)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "https://liaison.invalid/bench/taxii/seed/%d" % seed)
    kinds = ["ipv4", "domain", "url", "sha256"]
    objects = []
    for i in range(n):
        kind = kinds[rng.randrange(len(kinds))]
        pattern, value = make_observable(rng, kind, i)
        slot = BASE + dt.timedelta(seconds=i * SLOT_SECONDS)
        # created in the first half of the slot, modified in the second half
        created = slot + dt.timedelta(milliseconds=rng.randrange(0, SLOT_SECONDS * 500))
        modified = slot + dt.timedelta(milliseconds=rng.randrange(SLOT_SECONDS * 500, SLOT_SECONDS * 1000))
        threat = rng.choice(THREATS)
        family = rng.choice(FAMILIES)
        objects.append({
            "type": "indicator",
            "spec_version": "2.1",
            "id": "indicator--%s" % uuid.uuid5(namespace, "indicator/%d" % i),
            "created": stix_time(created),
            "modified": stix_time(modified),
            "name": "%s %s" % (threat, value),
            "indicator_types": [rng.choice(INDICATOR_TYPES)],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": stix_time(created),
            "confidence": rng.choice(CONFIDENCES),
            "labels": [threat, family],
            "object_marking_refs": [TLP_GREEN],
        })
    return {
        "type": "bundle",
        "id": "bundle--%s" % uuid.uuid5(namespace, "bundle/%d" % n),
        "objects": objects,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of indicators")
    ap.add_argument("out", help="output bundle (JSON)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("N must be >= 0")
    bundle = generate(args.n, args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(bundle, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %d indicators to %s (seed %d)" % (args.n, args.out, args.seed), file=sys.stderr)


if __name__ == "__main__":
    main()
