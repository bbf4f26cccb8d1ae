#!/usr/bin/python3
"""Golden tests of the translator through `archway check -o json`.

Each case is tests/golden/cases/<name>/ with input.yaml (loaded together with
fixtures/common.yaml) and expected.yaml:

    exitCode: 1                   # the exit status of `archway check`
    items:                        # objects whose status is compared
    - {kind: Gateway, namespace: default, name: gw, status: {...}}

The expected status is a subset: every mapping key given must exist with an equal value
(recursively); lists must have the same length and match element by element. Condition
`message` and `lastTransitionTime` are not recorded. Objects not listed are not compared.

Usage: run_golden.py [-k SUBSTRING] [--update]
  --update rewrites expected.yaml from the current output (every Gateway API object of the
  case's input). Review every change against the spec before committing it.
"""
import argparse
import difflib
import json
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GATEWAY_KINDS = {"GatewayClass", "Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "TLSRoute",
                 "TCPRoute", "UDPRoute", "BackendTLSPolicy"}


def binary():
    b = os.environ.get("ARCHWAY_BIN")
    if b:
        return b
    for cand in ("build-asan-ubsan/archway", "build/archway", "build-debug/archway"):
        p = os.path.join(REPO, cand)
        if os.path.exists(p):
            return p
    sys.exit("run_golden.py: set ARCHWAY_BIN or build archway first")


def run_case(bin_path, case_dir):
    p = subprocess.run([bin_path, "check", "-o", "json", "-f", os.path.join(case_dir, "input.yaml"),
                        "-f", os.path.join(HERE, "fixtures", "common.yaml")],
                       capture_output=True, text=True, timeout=60)
    if p.returncode not in (0, 1):
        raise RuntimeError("archway check exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    items = json.loads(p.stdout)["items"]
    return p.returncode, {(i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"]): i
                          for i in items}


def strip(value):
    """Drops free-text and time fields from conditions."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in ("message", "lastTransitionTime")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def subset_errors(want, got, path):
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return ["%s: want a mapping, got %r" % (path, got)]
        errs = []
        for k, v in want.items():
            if k not in got:
                errs.append("%s.%s: missing" % (path, k))
            else:
                errs.extend(subset_errors(v, got[k], "%s.%s" % (path, k)))
        return errs
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return ["%s: want %d entries, got %s" % (path, len(want),
                                                     len(got) if isinstance(got, list) else got)]
        errs = []
        for i, (w, g) in enumerate(zip(want, got)):
            errs.extend(subset_errors(w, g, "%s[%d]" % (path, i)))
        return errs
    return [] if want == got else ["%s: want %r, got %r" % (path, want, got)]


def input_keys(case_dir):
    with open(os.path.join(case_dir, "input.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    keys = []
    for d in docs:
        if d.get("kind") in GATEWAY_KINDS:
            md = d.get("metadata") or {}
            ns = md.get("namespace", "default" if d["kind"] != "GatewayClass" else "")
            keys.append((d["kind"], ns, md["name"]))
    return keys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="")
    ap.add_argument("--update", action="store_true")
    args = ap.parse_args()
    bin_path = binary()
    cases_dir = os.path.join(HERE, "cases")
    names = sorted(n for n in os.listdir(cases_dir) if args.k in n)
    failed = 0
    for name in names:
        case_dir = os.path.join(cases_dir, name)
        try:
            code, items = run_case(bin_path, case_dir)
        except Exception as e:  # noqa: BLE001 - a crash is a failure of this case
            print("FAIL %s: %s" % (name, e))
            failed += 1
            continue
        exp_path = os.path.join(case_dir, "expected.yaml")
        if args.update:
            out = {"exitCode": code, "items": []}
            for key in input_keys(case_dir):
                item = items.get(key)
                entry = {"kind": key[0], "name": key[2]}
                if key[1]:
                    entry["namespace"] = key[1]
                entry["status"] = strip(item.get("status")) if item and "status" in item else None
                out["items"].append(entry)
            with open(exp_path, "w") as f:
                yaml.safe_dump(out, f, sort_keys=False, width=100)
            print("UPDATED %s" % name)
            continue
        with open(exp_path) as f:
            expected = yaml.safe_load(f)
        errors = []
        if expected.get("exitCode") is not None and expected["exitCode"] != code:
            errors.append("exit code: want %s, got %s" % (expected["exitCode"], code))
        for want in expected.get("items") or []:
            key = (want["kind"], want.get("namespace", ""), want["name"])
            got = items.get(key)
            if got is None:
                errors.append("%s %s/%s: not in the output" % key)
                continue
            if want.get("status") is None:
                if got.get("status"):
                    errors.append("%s %s/%s: want no status, got one" % key)
                continue
            errs = subset_errors(want["status"], strip(got.get("status")), "%s/%s/%s.status" % key)
            if errs:
                errors.extend(errs)
                diff = difflib.unified_diff(
                    yaml.safe_dump(want["status"], sort_keys=True).splitlines(),
                    yaml.safe_dump(strip(got.get("status")), sort_keys=True).splitlines(),
                    "expected", "actual", lineterm="", n=2)
                errors.append("\n".join(diff))
        if errors:
            failed += 1
            print("FAIL %s" % name)
            for e in errors:
                print("  " + e.replace("\n", "\n  "))
        else:
            print("PASS %s" % name)
    print("\ngolden cases: %d of %d pass" % (len(names) - failed, len(names)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
