#!/usr/bin/env python3
"""Every set `archway convert` produces is valid for Archway: `archway check` on the output
plus the Services and Secrets it refers to reports every Gateway and route Accepted."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_support as cs  # noqa: E402


def accepted(conditions):
    return any(c.get("type") == "Accepted" and c.get("status") == "True" for c in conditions or [])


def check_case(label, paths, providers, workdir):
    items, _ = cs.convert(paths, providers)
    if not any(o["kind"] == "Gateway" for o in items):
        return [], 0
    # A Secret with an invalid name (e.g. upstream fixture 11's "testSecret") cannot exist,
    # so a Gateway that refers to it cannot be Accepted whatever the converter does.
    bad_secret_gateways = set()
    for o in items:
        if o["kind"] == "Gateway":
            for l in o["spec"]["listeners"]:
                for ref in (l.get("tls") or {}).get("certificateRefs", []):
                    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", ref["name"]):
                        bad_secret_gateways.add(o["metadata"]["name"])
                        print("NOTE %s: Secret name %r in the input is not a valid Kubernetes name; "
                              "Gateway %s acceptance not checked" % (label, ref["name"], o["metadata"]["name"]))
    out = os.path.join(workdir, "out.json")
    cs.write_manifests(out, items + cs.backing_objects(items, workdir))
    p = subprocess.run([cs.BIN, "check", "-f", out, "-o", "json"], capture_output=True,
                       text=True, timeout=120)
    if p.returncode == 2:
        return ["%s: check could not read the output: %s" % (label, p.stderr[-1500:])], 0
    errors, checked = [], 0
    for o in json.loads(p.stdout)["items"]:
        kind, name = o["kind"], o["metadata"]["name"]
        status = o.get("status") or {}
        if kind == "Gateway" and name in bad_secret_gateways:
            continue
        if kind == "Gateway":
            checked += 1
            if not accepted(status.get("conditions")):
                errors.append("%s: Gateway %s not Accepted: %s" % (label, name, json.dumps(status)[:1500]))
            for l in status.get("listeners", []):
                if not accepted(l.get("conditions")):
                    errors.append("%s: Gateway %s listener %s not Accepted: %s"
                                  % (label, name, l.get("name"), json.dumps(l)[:800]))
        elif kind in cs.ROUTE_KINDS:
            checked += 1
            parents = status.get("parents") or []
            if not parents or not all(accepted(pp.get("conditions")) for pp in parents):
                errors.append("%s: %s %s not Accepted: %s" % (label, kind, name, json.dumps(status)[:1500]))
    if p.returncode != 0 and not errors and not bad_secret_gateways:
        errors.append("%s: check exited %d: %s" % (label, p.returncode, p.stderr[-800:]))
    return errors, checked


def main():
    workdir = cs.tmpdir()
    cases = []
    for prov in ("kong", "common"):
        d = os.path.join(cs.FIXTURES, prov, "input")
        for name in sorted(os.listdir(d)):
            providers = "ingress-nginx" if prov == "common" and name[:2] in ("07", "08") else "kong"
            cases.append(("%s/%s" % (prov, name), [os.path.join(d, name)], providers))
    for name in sorted(os.listdir(cs.SCENARIOS)):
        cases.append(("scenarios/" + name, [os.path.join(cs.SCENARIOS, name)], None))
    errors, checked = [], 0
    try:
        for label, paths, providers in cases:
            e, n = check_case(label, paths, providers, workdir)
            errors += e
            checked += n
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for e in errors:
        print("FAIL", e)
    print("%d cases, %d Gateways/routes checked, %d not Accepted" % (len(cases), checked, len(errors)))
    return 1 if errors or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
