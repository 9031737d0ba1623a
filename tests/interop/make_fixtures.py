#!/usr/bin/env python3
"""Makes Liaison's import fixtures with the peers' own tools (tests/interop/README.md).

  make_fixtures.py OUTDIR        (the committed ones: tests/interop/fixtures)

writes
  OUTDIR/stix2-lib-bundle.json   a STIX 2.1 bundle built with the OASIS `stix2` library
  OUTDIR/misp-feed/              a MISP feed (manifest.json + <uuid>.json) built with pymisp
  OUTDIR/expected.json           the indicators a correct importer makes of each

Every id, timestamp and ordering is fixed: running it again writes the same bytes (with the
same pinned library versions, requirements.txt).
"""

import json
import os
import sys
import uuid
from datetime import date, datetime, timezone

from interop_common import TLP2_EXTENSION_ID, TLP2_IDS, package_version

NS = uuid.UUID("6f0f3f0e-9d6c-4d7e-8a57-3c1f3b1f0a11")  # this generator's own namespace
CREATED = "2024-03-01T10:00:00.000Z"
VALID_FROM = "2024-03-01T10:00:00Z"
EPOCH = 1709287200  # 2024-03-01T10:00:00Z


def fixed_uuid(name):
    """A UUIDv4-shaped id that is the same on every run (derived from `name`)."""
    return str(uuid.UUID(bytes=uuid.uuid5(NS, name).bytes, version=4))


def sid(stix_type, name):
    return f"{stix_type}--{fixed_uuid(stix_type + ':' + name)}"


# ----------------------------------------------------------------------------- STIX 2.1

def make_stix(outdir):
    import stix2

    identity = stix2.Identity(
        id=sid("identity", "fixture-csirt"), created=CREATED, modified=CREATED,
        name="Fixture CSIRT (made with the OASIS stix2 library)", identity_class="organization")

    # The five OASIS TLP 2.0 marking definitions: stix2 3.0.2 builds them as objects.
    tlp = {level: stix2.MarkingDefinition(
        id=mid, created="2022-10-01T00:00:00.000Z", name="TLP:" + level.upper(),
        extensions={TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}})
        for level, mid in TLP2_IDS.items()}

    # A marking no importer knows: a property extension of an extension definition of our own.
    ext_def = stix2.ExtensionDefinition(
        id=sid("extension-definition", "acme-handling"), created_by_ref=identity.id,
        created=CREATED, modified=CREATED, name="ACME handling codes",
        description="A made-up handling marking that no importer knows (fixture).",
        schema="https://example.org/acme-handling.json", version="1.0.0",
        extension_types=["property-extension"])
    custom_marking = stix2.MarkingDefinition(
        id=sid("marking-definition", "acme-handling-le-only"), created=CREATED,
        created_by_ref=identity.id, name="ACME:LE-ONLY",
        extensions={ext_def.id: {"extension_type": "property-extension", "handling_code": "LE-ONLY"}})

    expected = []
    objects = [identity, *tlp.values(), ext_def, custom_marking]

    def indicator(key, name, pattern, marking, kind, value, direction, hash_algo=None):
        refs = [] if marking is None else [marking]
        ind = stix2.Indicator(
            id=sid("indicator", key), created=CREATED, modified=CREATED, created_by_ref=identity.id,
            name=name, description=f"Fixture indicator: {name}.", indicator_types=["malicious-activity"],
            pattern=pattern, pattern_type="stix", valid_from=VALID_FROM,
            object_marking_refs=[m.id for m in refs] or None)
        objects.append(ind)
        level = "default"
        if marking is not None:
            level = next((lv for lv, m in tlp.items() if m.id == marking.id), "default")
        row = {"kind": kind, "value": value, "tlp": level, "direction": direction,
               "source": ind.id, "from": "indicator", "pattern": pattern}
        if hash_algo:
            row["hash"] = hash_algo
        expected.append(row)
        return ind

    indicator("ipv4", "Undirected IPv4 address", "[ipv4-addr:value = '198.51.100.10']",
              tlp["clear"], "ipv4", "198.51.100.10", "none")
    indicator("ipv6", "Undirected IPv6 address", "[ipv6-addr:value = '2001:db8::10']",
              tlp["green"], "ipv6", "2001:db8::10", "none")
    indicator("domain", "Phishing domain", "[domain-name:value = 'login-bank.example']",
              tlp["amber"], "domain", "login-bank.example", "none")
    indicator("url", "Phishing URL", "[url:value = 'https://login-bank.example/verify?id=1']",
              tlp["amber+strict"], "url", "https://login-bank.example/verify?id=1", "none")
    indicator("email-addr", "E-mail address", "[email-addr:value = 'phish@bad.example']",
              tlp["red"], "email", "phish@bad.example", "none")
    indicator("email-from", "Phishing sender", "[email-message:from_ref.value = 'sender@bad.example']",
              tlp["amber"], "email", "sender@bad.example", "src")
    indicator("md5", "Dropper MD5", "[file:hashes.MD5 = '0f343b0931126a20f133d67c2b018a3b']",
              tlp["clear"], "file-hash", "0f343b0931126a20f133d67c2b018a3b", "none", "md5")
    indicator("sha1", "Dropper SHA-1", "[file:hashes.'SHA-1' = '5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8']",
              tlp["green"], "file-hash", "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", "none", "sha1")
    indicator("sha256", "Dropper SHA-256",
              "[file:hashes.'SHA-256' = '5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8']",
              tlp["amber"], "file-hash", "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
              "none", "sha256")
    indicator("asn", "Bulletproof hosting AS", "[autonomous-system:number = 64496]",
              tlp["amber+strict"], "asn", "AS64496", "none")
    c2 = indicator("c2", "C2 server (destination)",
                   "[network-traffic:dst_ref.type = 'ipv4-addr' AND network-traffic:dst_ref.value = '203.0.113.20']",
                   tlp["red"], "ipv4", "203.0.113.20", "dst")
    indicator("scanner", "Scanner (source)",
              "[network-traffic:src_ref.type = 'ipv4-addr' AND network-traffic:src_ref.value = '203.0.113.21']",
              tlp["green"], "ipv4", "203.0.113.21", "src")
    indicator("unmarked", "Indicator without any marking", "[domain-name:value = 'unmarked.example']",
              None, "domain", "unmarked.example", "none")
    indicator("custom-marked", "Indicator with an unknown marking only",
              "[url:value = 'http://custom-marking.example/payload']",
              custom_marking, "url", "http://custom-marking.example/payload", "none")

    # Standalone observables (SCOs): stix2 derives their UUIDv5 ids from their values.
    for cls, value, level, kind in ((stix2.IPv4Address, "192.0.2.50", "amber", "ipv4"),
                                    (stix2.DomainName, "sco-only.example", "green", "domain"),
                                    (stix2.URL, "http://sco-only.example/landing", None, "url")):
        sco = cls(value=value, object_marking_refs=[tlp[level].id] if level else None)
        objects.append(sco)
        expected.append({"kind": kind, "value": value, "tlp": level or "default", "direction": "none",
                         "source": sco.id, "from": "observable"})

    malware = stix2.Malware(
        id=sid("malware", "fixture-rat"), created=CREATED, modified=CREATED, created_by_ref=identity.id,
        name="FixtureRAT", description="Remote-access trojan of the fixtures.", is_family=True,
        malware_types=["remote-access-trojan"], object_marking_refs=[tlp["green"].id])
    rel = stix2.Relationship(
        id=sid("relationship", "c2-indicates-fixture-rat"), created=CREATED, modified=CREATED,
        created_by_ref=identity.id, relationship_type="indicates", source_ref=c2.id, target_ref=malware.id,
        object_marking_refs=[tlp["red"].id])
    objects += [malware, rel]

    bundle = stix2.Bundle(id=sid("bundle", "stix2-lib-bundle"), objects=objects, allow_custom=False)
    with open(os.path.join(outdir, "stix2-lib-bundle.json"), "w", encoding="utf-8") as f:
        f.write(bundle.serialize(pretty=True))
        f.write("\n")
    return expected


# ----------------------------------------------------------------------------- MISP feed

# (event key, info, distribution, event tags, attributes)
# attribute: (key, type, category, value, distribution, tags, expected tlp, kind, direction)
MISP_EVENTS = [
    ("phishing-c2", "Liaison fixture: phishing and C2 (made with pymisp)", 1, ["tlp:green"], [
        ("c2", "ip-dst", "Network activity", "198.51.100.20", 5, ["tlp:amber"], "amber", "ipv4", "dst"),
        ("bot", "ip-src", "Network activity", "198.51.100.21", 0, [], "green", "ipv4", "src"),
        ("domain", "domain", "Network activity", "phish.example", 1, ["tlp:red"], "red", "domain", "none"),
        ("url", "url", "Network activity", "https://phish.example/login", 2, ["tlp:amber+strict"],
         "amber+strict", "url", "none"),
        # tlp:clear on an attribute of a tlp:green event: the stricter (green) holds.
        ("sender", "email-src", "Payload delivery", "phisher@phish.example", 5, ["tlp:clear"],
         "green", "email", "src"),
    ]),
    ("malware-hashes", "Liaison fixture: malware hashes (made with pymisp)", 2,
     ["tlp:amber+strict", 'type:OSINT'], [
        ("md5", "md5", "Payload delivery", "098f6bcd4621d373cade4e832627b4f6", 5, [], "amber+strict",
         "file-hash", "none"),
        ("sha1", "sha1", "Payload delivery", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3", 3, ["tlp:red"],
         "red", "file-hash", "none"),
        ("sha256", "sha256", "Payload delivery",
         "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 1, [], "amber+strict",
         "file-hash", "none"),
        ("asn", "AS", "Network activity", "AS64500", 5, [], "amber+strict", "asn", "none"),
        ("c2v6", "ip-dst", "Network activity", "2001:db8::20", 2, [], "amber+strict", "ipv6", "dst"),
    ]),
    ("scanners", "Liaison fixture: scanners and senders, no event TLP (made with pymisp)", 3,
     ['osint:source-type="block-or-filter-list"'], [
        ("scanner-clear", "ip-src", "Network activity", "203.0.113.30", 3, ["tlp:clear"], "clear", "ipv4", "src"),
        ("scanner-untagged", "ip-src", "Network activity", "203.0.113.31", 5, [], "default", "ipv4", "src"),
        ("white-domain", "domain", "Network activity", "old-tlp-white.example", 0, ["tlp:white"], "clear",
         "domain", "none"),
        ("spam-sender", "email-src", "Payload delivery", "spam@bulk.example", 1, ["tlp:green"], "green",
         "email", "src"),
        ("amber-url", "url", "Network activity", "http://bulk.example/unsubscribe", 2, ["tlp:amber"], "amber",
         "url", "none"),
        ("unknown-tag", "sha256", "Payload delivery",
         "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", 5, ["liaison:fixture-unknown"],
         "default", "file-hash", "none"),
        ("ip-dst-red", "ip-dst", "Network activity", "192.0.2.77", 5, ["tlp:red", "liaison:fixture-unknown"],
         "red", "ipv4", "dst"),
    ]),
]


def make_misp_feed(outdir):
    from pymisp import MISPEvent, MISPOrganisation, MISPTag

    feed_dir = os.path.join(outdir, "misp-feed")
    os.makedirs(feed_dir, exist_ok=True)
    for name in os.listdir(feed_dir):  # a fixture set is made whole, never merged
        if name.endswith(".json"):
            os.remove(os.path.join(feed_dir, name))
    orgc = MISPOrganisation()
    orgc.from_dict(name="Fixture CSIRT (made with pymisp)", uuid=fixed_uuid("misp-org:fixture-csirt"))

    def tag(name):
        t = MISPTag()
        t.from_dict(name=name, colour="#ffffff", local=False, relationship_type="")
        return t

    manifest, expected = {}, []
    for n, (key, info, dist, ev_tags, attrs) in enumerate(MISP_EVENTS):
        ev = MISPEvent()
        ev.uuid = fixed_uuid("misp-event:" + key)
        ev.info = info
        ev.distribution = dist
        ev.threat_level_id = 2
        ev.analysis = 2
        ev.published = True
        ev.date = date(2024, 3, 1 + n)
        ev.timestamp = datetime.fromtimestamp(EPOCH + n * 86400, timezone.utc)
        ev.publish_timestamp = datetime.fromtimestamp(EPOCH + n * 86400, timezone.utc)
        ev.Orgc = orgc
        for t in ev_tags:
            ev.add_tag(tag(t))
        for (akey, atype, cat, value, adist, atags, tlp, kind, direction) in attrs:
            a = ev.add_attribute(atype, value, category=cat, to_ids=True, distribution=adist, comment="",
                                 uuid=fixed_uuid(f"misp-attribute:{key}:{akey}"),
                                 timestamp=datetime.fromtimestamp(EPOCH + n * 86400, timezone.utc))
            for t in atags:
                a.add_tag(tag(t))
            row = {"kind": kind, "value": value, "tlp": tlp, "direction": direction,
                   "event": ev.uuid, "attribute": a.uuid, "misp_type": atype}
            if atype in ("md5", "sha1", "sha256"):
                row["hash"] = atype
            expected.append(row)
        feed_event = ev.to_feed(with_distribution=True)  # {"Event": {...}}, as MISP feeds carry it
        with open(os.path.join(feed_dir, f"{ev.uuid}.json"), "w", encoding="utf-8") as f:
            json.dump(feed_event, f, indent=2, sort_keys=True)
            f.write("\n")
        manifest.update(ev.manifest)
    with open(os.path.join(feed_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    return expected


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: make_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    outdir = argv[0]
    os.makedirs(outdir, exist_ok=True)
    stix_expected = make_stix(outdir)
    misp_expected = make_misp_feed(outdir)
    expected = {
        "about": "Indicators a correct importer makes of each fixture (tests/interop/README.md). "
                 "Generated by make_fixtures.py; do not edit by hand.",
        "rules": {
            "kind": "ipv4 | ipv6 | domain | url | email | file-hash | asn",
            "value": "as the fixture writes it; an ASN as AS<number>; hashes in lower-case hex",
            "tlp": "TLP 2.0 level (clear, green, amber, amber+strict, red); TLP 1.0 white is clear; "
                   "'default' where the fixture gives no TLP or only a marking the importer cannot know",
            "tlp_misp": "a MISP attribute's TLP is the strictest TLP tag among its own tags and its "
                        "event's tags (an attribute tag never loosens the event's)",
            "direction": "src | dst | none: MISP ip-src/email-src are src, ip-dst dst; STIX "
                         "network-traffic:src_ref/dst_ref are src/dst, email-message:from_ref is src; "
                         "every other form is none",
            "from": "STIX: 'indicator' for an Indicator's pattern, 'observable' for a standalone SCO "
                    "(an importer may choose not to take SCOs; then skip these rows)",
        },
        "made_with": {k: package_version(k) for k in ("stix2", "pymisp")},
        "fixtures": {
            "stix2-lib-bundle.json": stix_expected,
            "misp-feed": misp_expected,
        },
    }
    with open(os.path.join(outdir, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(f"make_fixtures: wrote {outdir}/stix2-lib-bundle.json ({len(stix_expected)} expected), "
          f"{outdir}/misp-feed/ ({len(MISP_EVENTS)} events, {len(misp_expected)} expected), "
          f"{outdir}/expected.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
