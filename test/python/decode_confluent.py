"""Independent check of Confluent-framed records: fastavro decodes them with the writer schema it
fetches itself from the schema registry (GET /schemas/ids/{id}, Confluent's REST API).

stdin: JSON {"registry": <base URL, may carry user:pass@>, "records": [<base64>...]}
stdout: JSON {"ids": [<schema id of each record>], "records": [<decoded record>...]}
Every record must start with magic byte 0 followed by a 4-byte big-endian schema id; any other
framing, or an id the registry does not serve, exits 1.
"""
import base64
import datetime
import io
import json
import struct
import sys
import urllib.parse
import urllib.request

import fastavro
from fastavro.schema import parse_schema

req = json.load(sys.stdin)
url = urllib.parse.urlsplit(req["registry"])
base = urllib.parse.urlunsplit((url.scheme, url.hostname + (f":{url.port}" if url.port else ""), url.path.rstrip("/"), "", ""))
headers = {"Accept": "application/vnd.schemaregistry.v1+json"}
if url.username is not None:
    creds = f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password or '')}"
    headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()

schemas = {}


def schema_for(schema_id):
    if schema_id not in schemas:
        with urllib.request.urlopen(urllib.request.Request(f"{base}/schemas/ids/{schema_id}", headers=headers), timeout=10) as res:
            schemas[schema_id] = parse_schema(json.loads(json.load(res)["schema"]))
    return schemas[schema_id]


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ids, out = [], []
for b64 in req["records"]:
    raw = base64.b64decode(b64)
    if len(raw) < 5 or raw[0] != 0:
        sys.exit(f"not Confluent-framed: starts with {raw[:5].hex()}")
    (schema_id,) = struct.unpack(">i", raw[1:5])
    rec = fastavro.schemaless_reader(io.BytesIO(raw[5:]), schema_for(schema_id))
    for k, v in rec.items():
        if isinstance(v, datetime.datetime):
            rec[k] = (v - EPOCH) // datetime.timedelta(milliseconds=1)
    ids.append(schema_id)
    out.append(rec)

json.dump({"ids": ids, "records": out}, sys.stdout, default=str)
