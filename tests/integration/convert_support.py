"""Helpers for the `archway convert` integration tests (not a test itself)."""
import json
import os
import subprocess
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("ARCHWAY_BIN", os.path.join(REPO, "build", "archway"))
SCENARIOS = os.path.join(REPO, "tests", "convert", "scenarios")
FIXTURES = os.path.join(REPO, "tests", "convert", "fixtures")
ROUTE_KINDS = {"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"}


def convert(paths, providers=None, extra=()):
    args = [BIN, "convert", "-o", "json"]
    for p in paths:
        args += ["-f", p]
    if providers:
        args += ["--providers", providers]
    p = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("convert failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return json.loads(p.stdout)["items"], p.stderr


def self_signed(workdir):
    key, crt = os.path.join(workdir, "tls.key"), os.path.join(workdir, "tls.crt")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", crt, "-days", "2", "-subj", "/CN=convert-test"],
                       check=True, capture_output=True, timeout=60)
    with open(key) as k, open(crt) as c:
        return c.read(), k.read()


def referenced(items):
    """(services {(ns, name): set(ports)}, secrets {(ns, name)}) the output refers to."""
    services, secrets = {}, set()
    for o in items:
        ns = o["metadata"].get("namespace", "default")
        spec = o.get("spec", {})
        if o["kind"] == "Gateway":
            for l in spec.get("listeners", []):
                for ref in (l.get("tls") or {}).get("certificateRefs", []):
                    secrets.add((ref.get("namespace", ns), ref["name"]))
        if o["kind"] in ROUTE_KINDS:
            for rule in spec.get("rules", []):
                for b in rule.get("backendRefs", []):
                    if b.get("kind", "Service") == "Service" and b.get("group", "") == "":
                        services.setdefault((b.get("namespace", ns), b["name"]), set()).add(b.get("port", 80))
    return services, secrets


def backing_objects(items, workdir):
    """Services (with a port per backendRef port) and TLS Secrets for the output."""
    services, secrets = referenced(items)
    crt, key = self_signed(workdir)
    import base64
    objs = []
    for (ns, name), ports in sorted(services.items()):
        objs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "namespace": ns},
                     "spec": {"ports": [{"name": "p%d" % p, "port": p} for p in sorted(ports)]}})
    for ns, name in sorted(secrets):
        objs.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                     "metadata": {"name": name, "namespace": ns},
                     "data": {"tls.crt": base64.b64encode(crt.encode()).decode(),
                              "tls.key": base64.b64encode(key.encode()).decode()}})
    return objs


def write_manifests(path, objs):
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "List", "items": objs}, f, indent=1)


def tmpdir():
    return tempfile.mkdtemp(prefix="archway-convert-")
