#!/usr/bin/env python3
"""`archway check` on manifests with invalid objects: every problem is reported as
`file:line: Kind namespace/name: field.path: what is wrong`, unknown kinds are skipped with
a note, invalid objects are reported Accepted=False, and every other object still loads."""
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Line numbers below refer to this text (line 1 is "apiVersion: ...GatewayClass").
MANIFEST = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gc}
spec: {controllerName: archway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gc
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bad-gw, namespace: default}
spec:
  gatewayClassName: gc
  listeners:
  - name: http
    port: 70000
    protocol: HTTP
  - name: Bad_Name
    port: "eighty"
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-route, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: "no-slash"}
    backendRefs: [{name: svc, port: 80}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: svc, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: default}
spec:
  ports: [{port: 80}]
"""

EXPECTED_LINES = [
    ':21: Gateway default/bad-gw: spec.listeners[0].port: Invalid value: 70000: '
    'should be less than or equal to 65535',
    ':23: Gateway default/bad-gw: spec.listeners[1].name: Invalid value: "Bad_Name": should match',
    ':24: Gateway default/bad-gw: spec.listeners[1].port: Invalid value: "eighty": '
    'must be of type integer (got string)',
    ':34: HTTPRoute default/bad-route: spec.rules[0].matches[0].path: value must be an absolute '
    'path',
    ':37: Widget w: skipped unknown kind (apiVersion example.com/v1)',
]


def binary():
    b = os.environ.get("ARCHWAY_BIN")
    if b:
        return b
    for cand in ("build-asan-ubsan/archway", "build/archway", "build-debug/archway"):
        p = os.path.join(REPO, cand)
        if os.path.exists(p):
            return p
    sys.exit("test_check_diagnostics.py: set ARCHWAY_BIN or build archway first")


def status_of(items, kind, name):
    for i in items:
        if i["kind"] == kind and i["metadata"]["name"] == name:
            return i.get("status") or {}
    return None


def accepted(conds):
    return any(c["type"] == "Accepted" and c["status"] == "True" for c in conds or [])


def main():
    failures = []

    def expect(cond, msg):
        if not cond:
            failures.append(msg)

    with tempfile.TemporaryDirectory(prefix="archway-diag-") as d:
        path = os.path.join(d, "mixed.yaml")
        with open(path, "w") as f:
            f.write(MANIFEST)
        p = subprocess.run([binary(), "check", "-o", "json", "-f", path], capture_output=True,
                           text=True, timeout=60)
        # Invalid objects make the run "not all Accepted" (1), never a crash or an input error.
        expect(p.returncode == 1, "exit status %d, want 1; stderr: %s" % (p.returncode,
                                                                         p.stderr[-2000:]))
        lines = p.stderr.splitlines()
        for want in EXPECTED_LINES:
            expect(any(l.startswith(path + want) for l in lines),
                   "missing diagnostic %r in:\n%s" % (path + want, p.stderr))
        try:
            items = json.loads(p.stdout)["items"]
        except (ValueError, KeyError) as e:
            failures.append("stdout is not the JSON item list: %s" % e)
            items = []
        kinds = {(i["kind"], i["metadata"]["name"]) for i in items}
        expect(("Widget", "w") not in kinds, "the unknown kind must be skipped")
        for k in [("GatewayClass", "gc"), ("Gateway", "gw"), ("Gateway", "bad-gw"),
                  ("HTTPRoute", "bad-route"), ("HTTPRoute", "good"), ("Service", "svc")]:
            expect(k in kinds, "%s %s must still be loaded and printed" % k)
        gw = status_of(items, "Gateway", "gw")
        expect(gw is not None and accepted(gw.get("conditions")), "valid Gateway gw not Accepted")
        bad = status_of(items, "Gateway", "bad-gw") or {}
        expect(any(c["type"] == "Accepted" and c["status"] == "False" and c["reason"] == "Invalid"
                   for c in bad.get("conditions") or []),
               "invalid Gateway must be Accepted=False/Invalid: %s" % bad)
        good = status_of(items, "HTTPRoute", "good") or {}
        expect(any(accepted(e.get("conditions")) for e in good.get("parents") or []),
               "valid route must be Accepted: %s" % good)
        badr = status_of(items, "HTTPRoute", "bad-route") or {}
        expect(badr.get("parents") and not any(accepted(e.get("conditions"))
                                                for e in badr["parents"]),
               "invalid route must not be Accepted: %s" % badr)

        # A file that cannot be parsed is an input error (exit 2) with file:line.
        broken = os.path.join(d, "broken.yaml")
        with open(broken, "w") as f:
            f.write("apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n")
        p = subprocess.run([binary(), "check", "-f", path, "-f", broken], capture_output=True,
                           text=True, timeout=60)
        expect(p.returncode == 2, "unparsable input: exit %d, want 2" % p.returncode)
        expect(broken + ":" in p.stderr, "parse error must name the file: %r" % p.stderr)

    for f in failures:
        print("FAIL: " + f)
    print("check diagnostics: %s" % ("FAIL" if failures else "PASS"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
