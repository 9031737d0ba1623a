"""Shared tables and helpers of the interop harness (tests/interop/README.md).

TLP 2.0 in STIX 2.1 is an extension (OASIS cti-stix-common-objects, extension-definition
60a3c5c5-...): five fixed marking-definition objects, each identical everywhere it appears.
TLP 1.0 is the four marking definitions fixed by the STIX 2.1 specification itself.
"""

import json
import sys

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"

# level -> marking-definition id (TLP 2.0, OASIS common objects)
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP2_LEVEL_OF_ID = {v: k for k, v in TLP2_IDS.items()}

# level -> marking-definition id (TLP 1.0, STIX 2.1 specification section 7.2.1.4)
TLP1_IDS = {
    "white": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP1_LEVEL_OF_ID = {v: k for k, v in TLP1_IDS.items()}

# The OASIS TLP 2.0 extension-definition object (for bundles that carry it).
TLP2_EXTENSION_DEFINITION = {
    "id": TLP2_EXTENSION_ID,
    "type": "extension-definition",
    "spec_version": "2.1",
    "name": "TLP 2.0",
    "description": "This defines TLP 2.0 as a STIX extension",
    "created": "2022-10-01T00:00:00.000Z",
    "modified": "2022-10-01T00:00:00.000Z",
    "created_by_ref": "identity--b3bca3c2-1f3d-4b54-b44f-dac42c3a8f01",
    "schema": "https://github.com/oasis-open/cti-stix-common-objects/tree/master/"
              "extension-definition-specifications/tlp-2.0",
    "version": "1.0.0",
    "extension_types": ["property-extension"],
}

# How strict a level is; TLP 1.0 white means the same as TLP 2.0 clear.
TLP_RANK = {"clear": 0, "white": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}


def tlp2_marking(level):
    """The OASIS TLP 2.0 marking-definition object of `level`, as a dict."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[level],
        "created": TLP2_CREATED,
        "name": "TLP:" + level.upper(),
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level},
        },
    }


def tlp2_level(level):
    """TLP 2.0 name of a level (TLP 1.0 white is TLP 2.0 clear)."""
    return "clear" if level == "white" else level


def tlp_of_tag(name):
    """The TLP level a MISP tag names (`tlp:amber+strict` -> `amber+strict`), else None.

    Only the MISP `tlp` taxonomy values count (tlp:ex:* and other predicates do not)."""
    if not isinstance(name, str):
        return None
    n = name.strip().lower()
    if not n.startswith("tlp:"):
        return None
    level = n[4:].strip().strip('"')
    return level if level in TLP_RANK else None


def strictest(levels):
    """The strictest of TLP levels (None when there is none)."""
    levels = [lv for lv in levels if lv is not None]
    if not levels:
        return None
    return max(levels, key=lambda lv: TLP_RANK[lv])


# MISP attribute type -> (Liaison kind, direction); the value decides ipv4/ipv6.
MISP_TYPE_MEANING = {
    "ip-src": ("ip", "src"),
    "ip-dst": ("ip", "dst"),
    "domain": ("domain", "none"),
    "hostname": ("domain", "none"),
    "url": ("url", "none"),
    "uri": ("url", "none"),
    "link": ("url", "none"),
    "email-src": ("email", "src"),
    "email-dst": ("email", "dst"),
    "email": ("email", "none"),
    "md5": ("file-hash", "none"),
    "sha1": ("file-hash", "none"),
    "sha256": ("file-hash", "none"),
    "AS": ("asn", "none"),
}


def ip_kind(value):
    import ipaddress
    try:
        net = ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        return None
    if "/" in str(value) and net.num_addresses > 1:
        return "cidr"
    return "ipv4" if net.version == 4 else "ipv6"


def misp_meaning(attr_type, value):
    """(kind, direction) of a MISP attribute in Liaison's words, or (None, None)."""
    kind, direction = MISP_TYPE_MEANING.get(attr_type, (None, None))
    if kind == "ip":
        kind = ip_kind(value)
    return kind, direction


def load_json(path):
    with open(path, "r", encoding="utf-8") as f:
        return json.load(f)


def eprint(*args):
    print(*args, file=sys.stderr)


def package_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001 - a version is only reported
        return "unknown"


# ---------------------------------------------------------------------------------------
# misp-stix conversions (imported lazily: check_stix.py needs none of this)

def _plain(messages):
    """misp-stix keeps errors/warnings as {identifier: [message, ...]}: flatten to strings."""
    out = []
    for ident, msgs in dict(messages or {}).items():
        for m in (msgs if isinstance(msgs, (list, tuple, set)) else [msgs]):
            out.append(f"{ident}: {m}")
    return out


def misp_to_stix21(misp_event):
    """A pymisp MISPEvent -> (STIX 2.1 bundle as a dict, errors, warnings), with misp-stix."""
    from misp_stix_converter import MISPtoSTIX21Parser
    parser = MISPtoSTIX21Parser()
    parser.parse_misp_event(misp_event)
    bundle = parser.bundle
    bundle = json.loads(bundle.serialize() if hasattr(bundle, "serialize") else json.dumps(bundle))
    return bundle, _plain(parser.errors), _plain(parser.warnings)


def stix21_to_misp(bundle, parser="auto"):
    """A STIX 2.x bundle (dict) -> (MISPEvent, parser name, errors, warnings), with misp-stix.

    parser: "internal" (content misp-stix wrote from MISP: reads its misp:type labels),
    "external" (any other producer), or "auto" (misp-stix's own choice: internal when a
    report/grouping carries its misp:tool label)."""
    from misp_stix_converter import ExternalSTIX2toMISPParser, InternalSTIX2toMISPParser
    from misp_stix_converter.tools import is_stix2_from_misp, load_stix2_content
    if parser == "auto":
        parser = "internal" if is_stix2_from_misp(bundle.get("objects", [])) else "external"
    cls = InternalSTIX2toMISPParser if parser == "internal" else ExternalSTIX2toMISPParser
    stix_bundle = load_stix2_content(json.loads(json.dumps(bundle)))
    p = cls()
    p.load_stix_bundle(stix_bundle)
    p.parse_stix_bundle(single_event=True)
    return p.misp_event, parser, _plain(p.errors), _plain(p.warnings)


def tag_names(tags):
    out = []
    for t in tags or []:
        name = t.get("name") if isinstance(t, dict) else getattr(t, "name", None)
        if name is not None:
            out.append(name)
    return out


def misp_attributes(event):
    """Every attribute of a MISPEvent, those inside MISP objects too, as plain dicts."""
    out = []

    def one(a, obj=None):
        kind, direction = misp_meaning(a.type, a.value)
        out.append({
            "uuid": getattr(a, "uuid", None),
            "type": a.type,
            "value": a.value if isinstance(a.value, (str, int, float)) else str(a.value),
            "category": getattr(a, "category", None),
            "to_ids": getattr(a, "to_ids", None),
            "distribution": getattr(a, "distribution", None),
            "tags": tag_names(a.tags),
            "object": obj.name if obj is not None else None,
            "object_relation": getattr(a, "object_relation", None) if obj is not None else None,
            "kind": kind,
            "direction": direction,
        })

    for a in event.attributes:
        one(a)
    for o in event.objects:
        for a in o.attributes:
            one(a, o)
    return out


def brief(message, width=200):
    """A misp-stix message on one line: its first line and, for a traceback, its last."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    if not lines:
        return ""
    head = lines[0][:width].split("  File ")[0].rstrip(" :")
    return head + (f" … {lines[-1][:width]}" if len(lines) > 1 else "")
