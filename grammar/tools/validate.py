#!/usr/bin/env python3
"""Validates spec files against grammar/distill.schema.json with a standard JSON
Schema 2020-12 validator, as an editor's YAML language server does. A spec with
`extends` is validated as an overlay (the schema's `if`/`then` on `extends`).

    python3 grammar/tools/validate.py grammar/distill.schema.json SPEC.yaml...

Prints one JSON object per file: {"file", "valid", "errors": ["path: message", ...]}.
Exit 0 when every file is valid, 1 otherwise, 2 when the schema itself is invalid."""
import json, sys

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError


def main():
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        print(json.dumps({"file": sys.argv[1], "valid": False, "errors": ["schema: " + e.message]}))
        return 2
    validator = Draft202012Validator(schema)
    ok = True
    for path in sys.argv[2:]:
        try:
            with open(path) as f:
                document = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print(json.dumps({"file": path, "valid": False, "errors": ["yaml: " + str(e).replace("\n", " ")]}))
            ok = False
            continue
        errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
        messages = ["/".join(map(str, e.absolute_path)) + ": " + e.message for e in errors]
        print(json.dumps({"file": path, "valid": not errors, "errors": messages[:8]}))
        ok = ok and not errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
