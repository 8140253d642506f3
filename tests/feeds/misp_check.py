#!/usr/bin/python3
# Checks a MISP event against the MUST rules of the MISP core format (misp-core-format.md): the
# Event's required fields and their JSON types and ranges, the Org/Orgc objects, and every
# Attribute — its category-type pair against the list of valid combinations, which is read
# from the format document itself. Prints one line per fault and exits 1 on any.
#
#   misp_check.py MISP_CORE_FORMAT.md EVENT.json
import ipaddress
import json
import re
import sys

doc_path, event_path = sys.argv[1], sys.argv[2]
doc = open(doc_path, encoding="utf-8").read()
start = doc.index("The list of valid category-type combinations is as follows:")
valid = {}
for m in re.finditer(r"^([A-Z][A-Za-z ]+)\n:\s+(.+)$", doc[start:start + 40000], re.M):
    valid[m.group(1).strip()] = {t.strip() for t in m.group(2).split(",")}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.I)
DIGITS = re.compile(r"^[0-9]+$")
faults = []


def need(obj, key, kind, where):
    if key not in obj:
        faults.append(f"{where}: {key} missing")
        return None
    if not isinstance(obj[key], kind) or (kind is str and isinstance(obj[key], bool)):
        faults.append(f"{where}: {key} is not a {kind.__name__}")
        return None
    return obj[key]


event = json.load(open(event_path, encoding="utf-8")).get("Event")
if not isinstance(event, dict):
    print("no Event object")
    sys.exit(1)
if not valid.get("Network activity"):
    print("could not read the category-type list from the format document")
    sys.exit(1)
u = need(event, "uuid", str, "Event")
if u is not None and not UUID.match(u):
    faults.append("Event: uuid is not an RFC 4122 UUID")
need(event, "published", bool, "Event")
info = need(event, "info", str, "Event")
if info is not None and ("\n" in info or len(info) > 256):
    faults.append("Event: info has a new-line or more than 256 characters")
for key, allowed in (("threat_level_id", {"1", "2", "3", "4"}), ("analysis", {"0", "1", "2"}),
                     ("distribution", {"0", "1", "2", "3", "4"})):
    v = need(event, key, str, "Event")
    if v is not None and v not in allowed:
        faults.append(f"Event: {key} {v!r} not one of {sorted(allowed)}")
d = need(event, "date", str, "Event")
if d is not None and not re.match(r"^\d{4}-\d{2}-\d{2}$", d):
    faults.append("Event: date is not YYYY-MM-DD")
for key in ("id", "timestamp", "publish_timestamp", "org_id", "orgc_id", "attribute_count"):
    v = need(event, key, str, "Event")
    if v is not None and not DIGITS.match(v):
        faults.append(f"Event: {key} is not an unsigned integer")
if event.get("distribution") != "4" and event.get("sharing_group_id", "0") != "0":
    faults.append("Event: sharing_group_id must be 0 without a sharing group")
for org in ("Org", "Orgc"):
    o = need(event, org, dict, "Event")
    if o is not None:
        for key in ("uuid", "name", "id"):
            need(o, key, str, org)
attrs = need(event, "Attribute", list, "Event") or []
if event.get("attribute_count") != str(len(attrs)):
    faults.append("Event: attribute_count is not the number of attributes")
seen = set()
for i, a in enumerate(attrs):
    w = f"Attribute {i}"
    cat, typ = need(a, "category", str, w), need(a, "type", str, w)
    if cat is not None and typ is not None and typ not in valid.get(cat, set()):
        faults.append(f"{w}: type {typ!r} is not valid for category {cat!r}")
    need(a, "to_ids", bool, w)
    v = need(a, "value", str, w)
    au = need(a, "uuid", str, w)
    if au is not None:
        if not UUID.match(au):
            faults.append(f"{w}: uuid is not an RFC 4122 UUID")
        if au in seen:
            faults.append(f"{w}: uuid repeated")
        seen.add(au)
    for key in ("event_id", "timestamp"):
        x = need(a, key, str, w)
        if x is not None and not DIGITS.match(x):
            faults.append(f"{w}: {key} is not an unsigned integer")
    dist = need(a, "distribution", str, w)
    if dist is not None and dist not in {"0", "1", "2", "3", "4", "5"}:
        faults.append(f"{w}: distribution {dist!r}")
    if typ in ("ip-src", "ip-dst") and v is not None:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            faults.append(f"{w}: {v!r} is not an address")
for f in faults:
    print(f)
print(f"{len(attrs)} attributes checked, {len(faults)} faults")
sys.exit(1 if faults else 0)
