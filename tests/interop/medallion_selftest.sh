#!/usr/bin/env bash
# Checks check_taxii.py itself against medallion, the OASIS reference TAXII 2.1 server
# (tests/interop/README.md, "check_taxii.py"):
#   tests/interop/medallion_selftest.sh [EXTRA check_taxii.py ARGS...]
# installs medallion 3.0.0 into its own venv (${MEDALLION_VENV:-~/.cache/liaison-interop/medallion-venv},
# never the harness's), starts it with the memory backend on 127.0.0.1 and a free port, loaded with
# a read-only collection of 23 objects (one of them in two versions) and an empty writable one,
# runs check_taxii.py through venv.sh, then stops the server. Not part of CI; for whoever changes
# check_taxii.py.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mvenv="${MEDALLION_VENV:-$HOME/.cache/liaison-interop/medallion-venv}"
if [ ! -x "$mvenv/bin/medallion" ]; then
  python3 -m venv "$mvenv"
  "$mvenv/bin/pip" install -q --disable-pip-version-check medallion==3.0.0
fi
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 - "$port" "$work" <<'PY'
import json, sys, uuid
port, work = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}"
media = "application/stix+json;version=2.1"
objects, manifest = [], []
def add(obj, added):
    objects.append(obj)
    manifest.append({"id": obj["id"], "date_added": added, "version": obj["modified"], "media_type": media})
for i in range(22):
    t = f"2024-03-01T10:{i:02d}:00.000Z"
    add({"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
         "created": t, "modified": t, "name": f"selftest {i}", "pattern": f"[ipv4-addr:value = '192.0.2.{i + 1}']",
         "pattern_type": "stix", "valid_from": t}, f"2024-03-02T00:{i:02d}:00.000000Z")
# one object in a second version: 23 objects served, 24 manifest entries with match[version]=all
first = dict(objects[3])
second = dict(first, modified="2024-03-05T00:00:00.000Z", name="selftest 3, second version")
add(second, "2024-03-05T00:00:01.000000Z")
add({"type": "identity", "spec_version": "2.1", "id": f"identity--{uuid.UUID(int=99, version=4)}",
     "created": "2024-03-01T09:00:00.000Z", "modified": "2024-03-01T09:00:00.000Z", "name": "selftest",
     "identity_class": "organization"}, "2024-03-05T00:00:02.000000Z")
data = {
    "/discovery": {"title": "medallion selftest", "description": "check_taxii.py selftest",
                   "default": f"{base}/api1/", "api_roots": [f"{base}/api1/"]},
    "api1": {
        "information": {"title": "selftest root", "versions": ["application/taxii+json;version=2.1"],
                        "max_content_length": 10485760},
        "status": [],
        "collections": [
            {"id": "91a7b528-80eb-42ed-a74d-c6fbd5a26116", "title": "read-only", "can_read": True,
             "can_write": False, "media_types": [media], "objects": objects, "manifest": manifest},
            {"id": "365fed99-08fa-fdcd-a1b3-fb247eb41d01", "title": "writable", "can_read": True,
             "can_write": True, "media_types": [media], "objects": [], "manifest": []},
        ],
    },
}
with open(f"{work}/data.json", "w") as f:
    json.dump(data, f)
with open(f"{work}/config.json", "w") as f:
    json.dump({"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend", "filename": f"{work}/data.json"},
               "users": {"liaison": "selftest-password"}, "taxii": {"max_page_size": 100}}, f)
PY
"$mvenv/bin/medallion" --host 127.0.0.1 --port "$port" "$work/config.json" >"$work/medallion.log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 50); do
  if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$port" 2>/dev/null; then
    up=1
    break
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[ "$up" = 1 ] || { echo "medallion did not start:"; tail -20 "$work/medallion.log"; exit 1; }
echo "medallion $("$mvenv/bin/pip" show medallion 2>/dev/null | sed -n 's/^Version: //p') on 127.0.0.1:$port (pid $pid)"
set +e
bash "$here/venv.sh" check_taxii.py "http://127.0.0.1:$port/taxii2/" --user liaison --password selftest-password \
  --collection 91a7b528-80eb-42ed-a74d-c6fbd5a26116 --expect-count 23 "$@"
rc=$?
set -e
[ "$rc" = 0 ] || { echo "--- medallion log"; tail -20 "$work/medallion.log"; }
exit "$rc"
