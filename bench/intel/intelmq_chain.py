"""IntelMQ's standard chain, in-process (IntelMQ 3.x library mode), on a Liaison demo CSV.

Generic CSV parser -> MaxMind GeoIP expert -> ASN lookup expert (pyasn, if installed) -> file
output. Prints one JSON line with the measured rate. Used by run_intelmq.sh; not run in CI.
"""
import base64
import json
import os
import sys
import tempfile
import time

from intelmq.lib.bot import BotLibSettings
from intelmq.bots.parsers.generic.parser_csv import GenericCsvParserBot
from intelmq.bots.experts.maxmind_geoip.expert import GeoIPExpertBot
from intelmq.bots.outputs.file.output import FileOutputBot

feed_path, city_db, ipasn = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
CHUNK = 2000

columns = ["time.source", "source.ip", "__IGNORE__", "source.port", "classification.type",
           "malware.name", "__IGNORE__", "__IGNORE__", "feed.accuracy", "tlp"]
parser = GenericCsvParserBot("csv-parser", settings=BotLibSettings | {
    "columns": columns,
    "columns_required": [True, True, False, False, True, False, False, False, False, False],
    "skip_header": True,
    "logging_level": "ERROR",
})
geoip = GeoIPExpertBot("geoip", settings=BotLibSettings | {"database": city_db, "logging_level": "ERROR"})
chain = [geoip]
asn_note = "asn_lookup not run"
if ipasn:
    try:
        from intelmq.bots.experts.asn_lookup.expert import ASNLookupExpertBot
        chain.append(ASNLookupExpertBot("asn", settings=BotLibSettings | {"database": ipasn, "logging_level": "ERROR"}))
        asn_note = "asn_lookup with generated pyasn file"
    except Exception as e:  # pyasn missing or failed to build
        asn_note = f"asn_lookup not run: {type(e).__name__}: {e}"
out_path = tempfile.mktemp(prefix="intelmq-out-", suffix=".jsonl")
output = FileOutputBot("file-output", settings=BotLibSettings | {"file": out_path, "logging_level": "ERROR"})

with open(feed_path, "rb") as f:
    lines = f.read().splitlines(keepends=True)
header, rows = lines[0], lines[1:]

events = errors = 0
t0 = time.perf_counter()
c0 = time.process_time()
for i in range(0, len(rows), CHUNK):
    raw = header + b"".join(rows[i:i + CHUNK])
    report = {"__type": "Report", "raw": base64.b64encode(raw).decode(), "feed.name": "demo",
              "time.observation": "2026-11-22T00:00:00+00:00"}
    state = parser.process_message(report)
    batch = state.get("output", [])
    errors += len(state.get("error", []))
    for bot in chain:
        batch = bot.process_message(*batch).get("output", [])
    output.process_message(*batch)
    events += len(batch)
elapsed = time.perf_counter() - t0
cpu = time.process_time() - c0
print(json.dumps({"rows": len(rows), "events": events, "errors": errors, "seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2),
                  "events_per_sec": round(events / elapsed, 1), "chain": "parser_csv -> maxmind_geoip -> " +
                  ("asn_lookup -> " if len(chain) > 1 else "") + "file", "asn": asn_note}))
if os.environ.get("KEEP_OUTPUT"):
    print(out_path, file=sys.stderr)
else:
    os.unlink(out_path)
