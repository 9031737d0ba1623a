#!/usr/bin/env python3
"""Seeds a freshly initialised node over its own API so that most operations of the contract
run meet real data: a second local agency, contact points, users and tokens of several roles,
requests in several states with comments, and an ingested feed with issued notices.

Usage: seed.py BASE_URL ADMIN_TOKEN OUT_DIR

Writes OUT_DIR/env (shell variables with the tokens) and one dictionary file per kind of id
(OUT_DIR/dict-*.txt, one value a line) for schemathesis to draw parameter values from.
Any unexpected answer stops the seeding with the request and the answer printed.
"""

import json
import sys

import requests

BASE, ADMIN, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
http = requests.Session()


def call(method, path, token, body=None, expect=(200, 201), data=None, content_type=None):
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    r = http.request(method, BASE + path, headers=headers, json=body, data=data, timeout=30)
    if r.status_code not in expect:
        sys.exit(f"seed: {method} {path} answered {r.status_code}, expected {expect}:\n{r.text}")
    return r.json() if "json" in r.headers.get("content-type", "") else r.text


me = call("GET", "/api/v1/me", ADMIN)
fbi = me["agency"]
mps = call(
    "POST",
    "/api/v1/agencies",
    ADMIN,
    {"code": "CN-MPS", "name_en": "Ministry of Public Security", "name_native": "公安部",
     "jurisdiction": "CN", "kind": "police", "time_zone": "Asia/Shanghai"},
)["id"]
nca = call(
    "POST",
    "/api/v1/agencies",
    ADMIN,
    {"code": "GB-NCA", "name_en": "National Crime Agency", "jurisdiction": "GB",
     "kind": "point_of_contact_24_7", "time_zone": "Europe/London"},
)["id"]
for agency, tz, hours in [(fbi, "America/New_York", "Mon-Fri 09:00-17:30"), (mps, "Asia/Shanghai", "24/7")]:
    call("POST", "/api/v1/contacts", ADMIN,
         {"agency": agency, "name": "Duty desk", "phone": "+1 202 555 0100", "email": "desk@example.invalid",
          "languages": ["en", "zh"], "time_zone": tz, "office_hours": hours})

tokens = {}
for name, agency, role in [
    ("fbi.supervisor", "FBI", "supervisor"),
    ("fbi.officer", "FBI", "officer"),
    ("mps.desk", "CN-MPS", "desk"),
    ("mps.legal", "CN-MPS", "legal_reviewer"),
    ("mps.officer", "CN-MPS", "officer"),
]:
    call("POST", "/api/v1/users", ADMIN, {"username": name, "display_name": name, "agency": agency, "role": role})
    tokens[name] = call("POST", "/api/v1/tokens", ADMIN, {"username": name, "label": "contract", "days": 2})["token"]
SUP = tokens["fbi.supervisor"]


def draft(kind="subscriber_information", to=mps, case="FBI-2026-0001", **extra):
    d = {
        "kind": kind, "urgency": "routine", "requesting_agency": fbi, "requested_agency": to,
        "case_reference": case, "offences": ["BC-02"],
        "summary": "Intrusion into a hospital network from servers in the requested state",
        "targets": [{"value": {"type": "ip", "address": "192.0.2.1", "observed_at": "2026-01-01T00:00:00Z"},
                     "from": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"}],
        "legal_basis": "18 USC 1030",
    }
    d.update(extra)
    return d


def move(rid, token, to, **extra):
    version = call("GET", f"/api/v1/requests/{rid}", token)["version"]
    return call("POST", f"/api/v1/requests/{rid}/transitions", token, {"version": version, "to": to, **extra})


request_ids = []
for i in range(3):  # drafts
    request_ids.append(call("POST", "/api/v1/requests", SUP, draft(case=f"FBI-2026-D{i}"))["id"])
received = call("POST", "/api/v1/requests", SUP, draft(case="FBI-2026-R1"))["id"]
move(received, SUP, "submitted")
request_ids.append(received)
answered = call("POST", "/api/v1/requests", SUP, draft(case="FBI-2026-A1"))["id"]
move(answered, SUP, "submitted")
for who, to in [("mps.desk", "acknowledged"), ("mps.legal", "in_review"), ("mps.legal", "accepted"),
                ("mps.officer", "executing"), ("mps.officer", "answered")]:
    move(answered, tokens[who], to)
call("POST", f"/api/v1/requests/{answered}/comments", SUP, {"text": "Answer received, thank you"})
request_ids.append(answered)
preservation = call("POST", "/api/v1/requests", SUP,
                    draft(kind="expedited_preservation", to=nca, case="FBI-2026-P1"))["id"]
move(preservation, SUP, "submitted")
request_ids.append(preservation)

# Threat intelligence: a feed whose addresses are routed to FBI and CN-MPS (routes in liaison.toml).
feed = "203.0.113.5\n203.0.113.9\n198.51.100.7\nnot an indicator\n"
call("POST", "/api/v1/intel/ingest?format=list&feed=contract&name=contract.txt&wait=true", SUP,
     data=feed.encode(), content_type="text/plain")
call("POST", "/api/v1/intel/notices/issue", SUP)
items = [i["item_id"] for n in call("GET", "/api/v1/intel/notices", SUP) for i in n["items"]]
if not items:
    sys.exit("seed: no notice items were issued (are the [intel] routes in liaison.toml?)")

# A joint case led by FBI with CN-MPS invited and a request linked (docs/cases.md).
case = call("POST", "/api/v1/cases", SUP,
            {"name": "Operation Contract", "reference": "JTF-CONTRACT", "invite": ["CN-MPS"]})["id"]
call("POST", f"/api/v1/cases/{case}/links", SUP, {"kind": "request", "id": received})
call("POST", f"/api/v1/cases/{case}/notes", SUP, {"text": "First meeting on Monday"})

users = [u["username"] for u in call("GET", "/api/v1/users", ADMIN)]
dictionaries = {
    "request_ids": request_ids,
    "agency_ids": [fbi, mps, nca],
    "own_agency": [fbi],
    "other_agencies": [mps, nca],
    "agency_codes": ["FBI", "CN-MPS", "GB-NCA"],
    "usernames": users,
    "item_ids": items,
    "case_ids": [case],
}
for name, values in dictionaries.items():
    with open(f"{OUT}/dict-{name}.txt", "w") as f:
        f.write("".join(f'"{v}"\n' for v in values))  # libFuzzer dictionary format
with open(f"{OUT}/env", "w") as f:
    for name, tok in tokens.items():
        f.write(f"TOKEN_{name.replace('.', '_').upper()}={tok}\n")
print(json.dumps({"requests": len(request_ids), "notice_items": len(items), "users": len(users), "cases": 1}))
