#!/usr/bin/env python3
"""`archway convert` CLI contract: exit codes, stdout/stderr split, output formats, -n/-A."""
import json
import os
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_support as cs  # noqa: E402

ROUNDTRIP = os.path.join(cs.SCENARIOS, "roundtrip.yaml")


def run(*args):
    return subprocess.run([cs.BIN, "convert"] + list(args), capture_output=True, text=True, timeout=60)


def main():
    failures = []

    def expect(cond, msg):
        if not cond:
            failures.append(msg)

    p = run("-f", "/nonexistent/dir/x.yaml")
    expect(p.returncode == 2, "unreadable input must exit 2, got %d" % p.returncode)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write("kind: [unclosed\n")
    p = run("-f", f.name)
    expect(p.returncode == 2 and f.name in p.stderr, "unparsable input: exit 2 with file name: %r" % p.stderr)
    os.unlink(f.name)
    p = run("-f", ROUNDTRIP, "--providers", "traefik")
    expect(p.returncode == 2 and "not a supported provider" in p.stderr, "unknown provider: %r" % p.stderr)
    p = run("-f", ROUNDTRIP, "-n", "default", "-A")
    expect(p.returncode == 2, "-n with -A must be rejected")

    y = run("-f", ROUNDTRIP)
    expect(y.returncode == 0, "convert exit %d: %s" % (y.returncode, y.stderr[-500:]))
    docs = [d for d in yaml.safe_load_all(y.stdout) if d]
    expect(all("kind" in d for d in docs), "stdout must hold only resources")
    expect("summary:" in y.stderr and "converted" in y.stderr, "report on stderr")
    expect("summary:" not in y.stdout, "report must not be on stdout")
    j = run("-f", ROUNDTRIP, "-o", "json")
    items = json.loads(j.stdout)["items"]
    expect(items == docs, "yaml and json outputs must hold the same objects")
    expect(run("-f", ROUNDTRIP).stdout == y.stdout, "output must be deterministic")
    kinds = [d["kind"] for d in docs]
    expect(kinds.index("GatewayClass") < kinds.index("Gateway") < kinds.index("HTTPRoute"),
           "kind order: %s" % kinds)
    only_kong = run("-f", ROUNDTRIP, "--providers", "kong", "-o", "json")
    names = {o["metadata"]["name"] for o in json.loads(only_kong.stdout)["items"]}
    expect("web-web-example-com" not in names and "shop-shop-example-com" in names,
           "--providers kong must leave nginx Ingresses out: %s" % sorted(names))
    expect("which --providers does not select" in only_kong.stderr, "skipped Ingresses are reported")
    other_ns = run("-f", ROUNDTRIP, "-n", "elsewhere")
    expect(other_ns.returncode == 0 and "No resources found" in other_ns.stderr,
           "-n with no objects: %r" % other_ns.stderr[-300:])
    gc = run("-f", ROUNDTRIP, "--gateway-class", "edge", "-o", "json")
    gws = [o for o in json.loads(gc.stdout)["items"] if o["kind"] == "Gateway"]
    expect(gws and all(g["spec"]["gatewayClassName"] == "edge" for g in gws), "--gateway-class")

    for f in failures:
        print("FAIL", f)
    print("convert CLI: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
