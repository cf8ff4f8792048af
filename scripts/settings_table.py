#!/usr/bin/env python3
"""Each destination's docs page holds its settings as one table, generated from its SPEC, so
every page has the same form and none drifts from the code: rows for every field (and each
option's fields), with its default, whether it is required or secret, and its description.

  settings_table.py SPEC_JSON DOCS_MD          print the table
  settings_table.py --check SPEC_JSON DOCS_MD  fail unless DOCS_MD holds it between the markers
  settings_table.py --write SPEC_JSON DOCS_MD  put it there"""
import json
import sys

BEGIN = "<!-- settings: generated from the SPEC by scripts/settings_table.py -->"
END = "<!-- /settings -->"


def describe(prop):
    text = " ".join((prop.get("description") or prop.get("title") or "").split())
    if "enum" in prop:
        text += " One of " + ", ".join(f"`{v}`" for v in prop["enum"]) + "."
    if "oneOf" in prop and all("const" in o for o in prop["oneOf"]):
        text += " One of " + ", ".join(f"`{o['const']}`" for o in prop["oneOf"]) + "."
    bounds = [f"{k} {prop[k]}" for k in ("minimum", "maximum") if k in prop]
    if bounds:
        text += f" ({', '.join(bounds)})"
    if prop.get("airbyte_secret"):
        text += " **Secret.**"
    return text.replace("|", "\\|")


def default_of(prop, required):
    if required:
        return "(required)"
    if "default" in prop:
        return f"`{json.dumps(prop['default'])}`"
    return "(none)"


def rows(properties, required, prefix=""):
    for name, prop in sorted(properties.items(), key=lambda kv: kv[1].get("order", 99)):
        field = prefix + name
        options = [o for o in prop.get("oneOf", []) if o.get("type") == "object"]
        yield f"| `{field}` | {default_of(prop, name in required)} | {describe(prop)} |"
        for option in options:
            tag = next((k for k, v in option["properties"].items() if "const" in v), None)
            chosen = f"{tag} = `{option['properties'][tag]['const']}`" if tag else option.get("title", "")
            fields = {k: v for k, v in option["properties"].items() if k != tag}
            for line in rows(fields, option.get("required", []), f"{field}."):
                yield line.replace(f"| `{field}.", f"| ({chosen}) `{field}.", 1)


def table(spec_path):
    spec = json.load(open(spec_path))
    schema = spec.get("connectionSpecification", spec)
    lines = ["| field | default | meaning |", "|---|---|---|"]
    lines += rows(schema["properties"], schema.get("required", []))
    return "\n".join(lines)


def main(argv):
    mode = argv[1] if argv[1].startswith("--") else None
    spec_path, docs_path = argv[-2], argv[-1]
    generated = f"{BEGIN}\n{table(spec_path)}\n{END}"
    if mode is None:
        print(generated)
        return 0
    docs = open(docs_path).read()
    if BEGIN not in docs or END not in docs:
        print(f"{docs_path}: no settings markers ({BEGIN} … {END})")
        return 1
    start, end = docs.index(BEGIN), docs.index(END) + len(END)
    if mode == "--write":
        open(docs_path, "w").write(docs[:start] + generated + docs[end:])
        return 0
    if docs[start:end] != generated:
        print(f"{docs_path}: its settings table drifted from {spec_path}: run scripts/settings_table.py --write {spec_path} {docs_path}")
        return 1
    print(f"{docs_path}: settings table matches {spec_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
