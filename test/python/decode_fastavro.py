"""Independent Avro check: decodes qoe-stream's single-object encoded records with fastavro.

stdin: JSON {"schema": <path to .avsc>, "records": [<base64>...]}
stdout: JSON {"fingerprint": <fastavro's CRC-64-AVRO of the schema's canonical form, little-endian hex>,
              "records": [<decoded record>...]}
Every record must carry the C3 01 header and fastavro's fingerprint of the schema; any mismatch exits 1.
"""
import base64
import datetime
import io
import json
import sys

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

req = json.load(sys.stdin)
with open(req["schema"], encoding="utf-8") as f:
    schema = parse_schema(json.load(f))
# fastavro prints the CRC-64-AVRO fingerprint as its little-endian bytes, the order the header uses.
fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
fp_le = bytes.fromhex(fp)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
out = []
for b64 in req["records"]:
    raw = base64.b64decode(b64)
    if raw[:2] != b"\xc3\x01":
        sys.exit("missing single-object header")
    if raw[2:10] != fp_le:
        sys.exit(f"fingerprint mismatch: record {raw[2:10].hex()} vs fastavro {fp_le.hex()}")
    rec = fastavro.schemaless_reader(io.BytesIO(raw[10:]), schema)
    # fastavro applies the timestamp-millis logical type; compare as epoch milliseconds.
    for k, v in rec.items():
        if isinstance(v, datetime.datetime):
            rec[k] = (v - EPOCH) // datetime.timedelta(milliseconds=1)
    out.append(rec)

json.dump({"fingerprint": fp, "records": out}, sys.stdout, default=str)
