#!/usr/bin/env python3
"""Round trip: convert tests/convert/scenarios/roundtrip.yaml, serve the result with
`archway run` next to echo backends (Services + EndpointSlices written here), and check
with real requests that each lands on the backend the Ingress controller would have
chosen (and, where the Ingress rewrites or redirects, with the path/status it would give).

Listener ports are moved to free high ports after conversion (Gateway API has no notion
of "the port the controller listens on"; the converter emits 80/443)."""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
import clients  # noqa: E402
import convert_support as cs  # noqa: E402
import procs  # noqa: E402

SERVICES = ["api", "admin", "items", "wild", "apex", "web-v1", "web-v2", "fallback", "rw"]


def resolved_by_check(mdir):
    """Failures when `archway check` does not accept and resolve every converted object."""
    p = subprocess.run([cs.BIN, "check", "-f", mdir, "-o", "json"], capture_output=True, text=True,
                       timeout=120)
    if p.returncode == 2:
        return ["check could not read the manifests: " + p.stderr[-1500:]]
    out = []
    for o in json.loads(p.stdout)["items"]:
        if o["kind"] in cs.ROUTE_KINDS:
            for parent in (o.get("status") or {}).get("parents", []):
                for c in parent.get("conditions", []):
                    if c["type"] in ("Accepted", "ResolvedRefs") and c["status"] != "True":
                        out.append("check: %s %s %s: %s" % (o["kind"], o["metadata"]["name"],
                                                            c["type"], c.get("message")))
    return out


def main():
    workdir = cs.tmpdir()
    echo = None
    server = None
    failures = []
    try:
        items, report = cs.convert([os.path.join(cs.SCENARIOS, "roundtrip.yaml")])
        # One pair of free ports per Gateway (each Gateway binds all addresses).
        ports = {}
        for o in items:
            if o["kind"] != "Gateway":
                continue
            gw = o["metadata"]["name"]
            ports[gw] = {80: procs.free_port(), 443: procs.free_port()}
            for l in o["spec"]["listeners"]:
                l["port"] = ports[gw][l["port"]]
        pods = [{"pod": s + "-pod", "namespace": "default", "service": s, "ip": "127.0.0.1",
                 "http_port": 0, "h2c_port": None} for s in SERVICES]
        echo = procs.EchoProcess(pods, workdir)
        ready = echo.start()
        backends = []
        for pod, svc in zip(ready, SERVICES):
            port = pod["ports"]["http_port"]
            backends.append({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": svc, "namespace": "default"},
                             "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}})
            backends.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                             "metadata": {"name": svc + "-1", "namespace": "default",
                                          "labels": {"kubernetes.io/service-name": svc}},
                             "addressType": "IPv4",
                             "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
                             "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
        mdir = os.path.join(workdir, "manifests")
        os.mkdir(mdir)
        cs.write_manifests(os.path.join(mdir, "converted.json"), items)
        cs.write_manifests(os.path.join(mdir, "backends.json"), backends)
        failures += resolved_by_check(mdir)
        admin = procs.free_port()
        server = procs.Child([cs.BIN, "run", "-f", mdir, "--admin-address", "127.0.0.1:%d" % admin],
                             os.path.join(workdir, "archway.log"))
        if not procs.wait_until(lambda: procs.http_get("http://127.0.0.1:%d/ready" % admin)[0] == 200, 60):
            raise RuntimeError("archway run did not become ready:\n" + server.output()[-3000:])

        def request(gw, host, path, method="GET", headers=()):
            hdrs = [("Host", host)] + list(headers)
            last = None
            # The first snapshot may still be settling listeners; retry briefly on transport errors.
            for _ in range(50):
                try:
                    return clients.http1_request("127.0.0.1", ports[gw][80], method, path, hdrs)
                except Exception as e:  # noqa: BLE001 - transport errors are retried
                    last = e
                    time.sleep(0.1)
            raise RuntimeError("request %s %s%s failed: %s" % (method, host, path, last))

        def expect(label, gw, host, path, service=None, status=200, upstream_path=None,
                   method="GET", headers=(), location=None):
            r = request(gw, host, path, method, headers)
            if r.status != status:
                failures.append("%s: %s %s%s → status %s, want %s (%r)"
                                % (label, method, host, path, r.status, status, r.body[:200]))
                return
            if service:
                body = json.loads(r.body)
                if body.get("service") != service and body.get("pod") != service + "-pod":
                    failures.append("%s: %s%s reached %s, want %s"
                                    % (label, host, path, body.get("pod"), service))
                if upstream_path is not None and body.get("path") != upstream_path:
                    failures.append("%s: upstream saw path %s, want %s"
                                    % (label, body.get("path"), upstream_path))
            if location is not None:
                got = dict((k.lower(), v) for k, v in r.headers).get("location")
                if got != location:
                    failures.append("%s: Location %r, want %r" % (label, got, location))

        # Kong: strip-path + methods, scoped to the "shop" Ingress only.
        expect("strip-path", "kong", "shop.example.com", "/api/orders", "api", upstream_path="/orders")
        # Other methods fall through to the *.example.com catch-all, in Kong as in Gateway API.
        expect("methods", "kong", "shop.example.com", "/api/orders", "wild", method="DELETE")
        # Kong headers.x-role on shop-admin; shop's rules must not need the header (no leak).
        expect("header match", "kong", "shop.example.com", "/admin", "admin", headers=[("x-role", "admin")])
        expect("header required", "kong", "shop.example.com", "/admin", "wild")
        expect("regex path", "kong", "shop.example.com", "/v2/items", "items", headers=[("x-role", "admin")])
        # Wildcard and exact hosts keep separate routes.
        expect("wildcard host", "kong", "a.example.com", "/", "wild")
        expect("exact host", "kong", "example.com", "/", "apex")
        # ingress-nginx: canary by header, defaultBackend, rewrite-target idiom, redirect.
        expect("primary", "nginx", "web.example.com", "/", "web-v1")
        expect("canary header", "nginx", "web.example.com", "/", "web-v2", headers=[("X-Canary", "always")])
        expect("default backend", "nginx", "unknown.example.net", "/x", "fallback")
        expect("rewrite-target", "nginx", "rw.example.com", "/app/deep/path", "rw", upstream_path="/deep/path")
        expect("permanent-redirect", "nginx", "old.example.com", "/", status=301,
               location="https://new.example.com/landing")
    finally:
        if server:
            server.stop()
        if echo:
            echo.stop()
        if failures and server:
            print(server.output()[-3000:])
        shutil.rmtree(workdir, ignore_errors=True)
    for f in failures:
        print("FAIL", f)
    print("round trip: %d checks failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
