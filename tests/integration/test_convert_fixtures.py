#!/usr/bin/env python3
"""`archway convert` against the ingress2gateway fixture pairs (tests/convert/fixtures).

Compares semantically: objects keyed by kind/namespace/name, lists compared as multisets
(Gateway API semantics do not depend on their order) except `filters`, which run in order.
Where upstream is wrong, tests/convert/expected/<provider>-<case> holds the correct result.
"""
import json
import os
import subprocess
import sys

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(REPO, "tests", "convert")
BIN = os.environ.get("ARCHWAY_BIN", os.path.join(REPO, "build", "archway"))
GATEWAY_KINDS = {"Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"}


def canon(value, key=None):
    if isinstance(value, dict):
        return {k: canon(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [canon(v) for v in value]
        if key == "filters":
            return items
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def index(objects):
    out = {}
    for o in objects:
        if not isinstance(o, dict) or o.get("kind") not in GATEWAY_KINDS:
            continue
        meta = o.get("metadata", {})
        key = (o["kind"], meta.get("namespace", ""), meta["name"])
        out[key] = canon({"apiVersion": o["apiVersion"], "spec": o.get("spec", {})})
    return out


def run_convert(path, providers):
    p = subprocess.run([BIN, "convert", "-f", path, "--providers", providers, "-o", "json"],
                       capture_output=True, text=True, timeout=60)
    return p


def main():
    failures = []
    count = 0
    for provider_dir in ("kong", "common"):
        inputs = os.path.join(FIX, "fixtures", provider_dir, "input")
        for name in sorted(os.listdir(inputs)):
            count += 1
            providers = "kong"
            if provider_dir == "common" and name[:2] in ("07", "08"):
                providers = "ingress-nginx"
            override = os.path.join(FIX, "expected", f"{provider_dir}-{name}")
            expected_path = override if os.path.exists(override) else os.path.join(
                FIX, "fixtures", provider_dir, "output", name)
            with open(expected_path) as f:
                expected_docs = [d for d in yaml.safe_load_all(f) if d]
            proc = run_convert(os.path.join(inputs, name), providers)
            label = f"{provider_dir}/{name}"
            if proc.returncode != 0:
                failures.append(f"{label}: exit {proc.returncode}: {proc.stderr[-500:]}")
                continue
            got = json.loads(proc.stdout)["items"]
            if expected_docs and "expectedErrors" in expected_docs[0]:
                # Upstream aborts; Archway reports the problem and converts nothing unsafe.
                routes = [o for o in got if o["kind"].endswith("Route")]
                if routes:
                    failures.append(f"{label}: expected no routes, got {[o['metadata']['name'] for o in routes]}")
                if "unconvertible" not in proc.stderr:
                    failures.append(f"{label}: report has no 'unconvertible' entry:\n{proc.stderr}")
                continue
            want, have = index(expected_docs), index(got)
            if want != have:
                missing = sorted(set(want) - set(have))
                extra = sorted(set(have) - set(want))
                diff = [k for k in want if k in have and want[k] != have[k]]
                msg = f"{label}: missing {missing} extra {extra}"
                for k in diff:
                    msg += f"\n  {k}:\n   want {json.dumps(want[k], sort_keys=True)}\n   have {json.dumps(have[k], sort_keys=True)}"
                failures.append(msg)
            classes = [o for o in got if o["kind"] == "GatewayClass"]
            if not classes or any(c["spec"]["controllerName"] != "archway.dev/gateway-controller"
                                  for c in classes):
                failures.append(f"{label}: no Archway GatewayClass in the output")
    for f in failures:
        print("FAIL", f)
    print(f"{count - len(failures)}/{count} fixture pairs match")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
