#!/usr/bin/python3
"""Lists the key paths Zero to JupyterHub's values.schema.yaml allows, one per line, for
values_test.go. A path ending in ".*" takes any keys below it (a free-form object in the schema); one ending in
".~REGEX" takes keys matching REGEX, with anything below them.

  python3 deploy/kubernetes/schema_keys.py CHART/jupyterhub/values.schema.yaml > deploy/kubernetes/testdata/z2jh-keys.txt
"""
import sys
import yaml


def walk(node, path, out):
    props = node.get("properties")
    t = node.get("type")
    is_object = t == "object" or (isinstance(t, list) and "object" in t)
    extra = node.get("additionalProperties")
    free = extra not in (False, None) or (is_object and props is None and extra is None)
    if path:
        out.add(path)
        if free:
            out.add(path + ".*")
    for pattern in node.get("patternProperties") or {}:
        out.add(path + ".~" + pattern)  # any key matching the pattern, anything below it
    for k, v in (props or {}).items():
        if isinstance(v, dict):
            walk(v, path + "." + k if path else k, out)


def main():
    schema = yaml.safe_load(open(sys.argv[1]))
    out = set()
    walk(schema, "", out)
    print("\n".join(sorted(out)))


main()
