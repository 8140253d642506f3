#!/usr/bin/python3
# Validates a STIX 2.1 bundle against the OASIS JSON schemas (cti-stix2-json-schemas), offline:
# the bundle against common/bundle.json, then every object against its own type's schema (SDOs,
# SROs and SCOs). References the schemas make to their published URLs are read from the local
# copy. Prints one line per error and exits 1 on any; 0 when every object is valid.
#
#   stix_validate.py SCHEMA_DIR BUNDLE.json
import json
import os
import sys

import jsonschema

schema_dir, bundle_path = sys.argv[1], sys.argv[2]
PUBLISHED = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"


def load(rel):
    with open(os.path.join(schema_dir, rel), encoding="utf-8") as f:
        return json.load(f)


def fetch(uri):
    for prefix in (PUBLISHED, PUBLISHED.replace("http://", "https://")):
        if uri.startswith(prefix):
            return load(uri[len(prefix):].split("#")[0])
    raise ValueError("schema outside the local copy: " + uri)


def validator(rel):
    schema = load(rel)
    resolver = jsonschema.RefResolver(PUBLISHED + rel, schema,
                                      handlers={"http": fetch, "https": fetch})
    return jsonschema.Draft202012Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())


with open(bundle_path, encoding="utf-8") as f:
    bundle = json.load(f)
errors = [f"bundle: {e.message}" for e in validator("common/bundle.json").iter_errors(bundle)]
checked = 0
for obj in bundle.get("objects", []):
    t = obj.get("type", "?")
    rel = next((f"{d}/{t}.json" for d in ("sdos", "sros", "observables", "common")
                if os.path.exists(os.path.join(schema_dir, d, t + ".json"))), None)
    if rel is None:
        errors.append(f"{obj.get('id')}: no schema for type {t}")
        continue
    for e in validator(rel).iter_errors(obj):
        errors.append(f"{obj.get('id')}: {e.message}")
    checked += 1
for line in errors:
    print(line)
print(f"{checked} objects checked, {len(errors)} errors")
sys.exit(1 if errors else 0)
