#!/usr/bin/python3
"""Route propagation with the file source: how long from a manifest change to a served route.

For each route count N (default 1, 1000, 10000) it starts `archway run -f DIR` with N
HTTPRoutes spread over a few files plus one echo backend, records the start-up time (spawn
until every route serves) and the RSS, then measures two kinds of change:

  add   a new HTTPRoute in its own new file (written aside, then renamed into place, as
        `kubectl apply`-like tools and editors that save atomically do);
  edit  one route of a big file gets a new path (the whole file is rewritten and renamed).

After each change the new path is polled every 5 ms (like howardjohn/gateway-api-bench's
probe) until 404 turns into 200; the time from the rename to the first 200 is the
propagation latency. Any answer other than 404 or 200 (or a connection error) counts as an
error. It prints p50/p99/max per N and kind. A benchmark, not a test: nothing is asserted.

  bench/propagation.py                       # N = 1, 1000, 10000; 100 adds + 100 edits each
  bench/propagation.py --routes 10000 --changes 300
  bench/propagation.py --churn               # also change one other route every 100 ms

Needs a release build (scripts/build.sh release -> build/archway) and python3; the backend
is bench/tools/backend.c when a C compiler is there, else a small Python server.
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


HEADER = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: archway
spec:
  controllerName: archway.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: bench
spec:
  gatewayClassName: archway
  listeners:
  - name: http
    protocol: HTTP
    port: {port}
    allowedRoutes:
      namespaces: {{from: Same}}
---
apiVersion: v1
kind: Service
metadata:
  name: app
  namespace: bench
spec:
  ports:
  - {{name: http, port: 80, targetPort: {backend}, protocol: TCP}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: app-1
  namespace: bench
  labels:
    kubernetes.io/service-name: app
addressType: IPv4
ports:
- {{name: http, port: {backend}, protocol: TCP}}
endpoints:
- addresses: ["127.0.0.1"]
  conditions: {{ready: true}}
"""

ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: bench
spec:
  parentRefs:
  - {{name: bench, sectionName: http}}
  rules:
  - matches:
    - path: {{type: PathPrefix, value: {path}}}
    backendRefs:
    - {{name: app, port: 80}}
"""


def write_atomic(path, text):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


class PythonBackend:
    """Fallback backend: 200 "ok" for everything, HTTP/1.1 keep-alive."""

    def __init__(self, port):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Prober:
    """One keep-alive client connection to the gateway; reconnects after errors."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 1:
                    return None
        return None

    def close(self):
        if self.conn is not None:
            self.conn.close()


class Run:
    def __init__(self, args, nroutes, work):
        self.args = args
        self.n = nroutes
        self.dir = os.path.join(work, "routes-%d" % nroutes)
        self.port = args.port_base
        self.admin = args.port_base + 1
        self.backend_port = args.port_base + 2
        self.proc = None
        self.files = max(1, min(args.files, nroutes))
        self.per_file = {}  # file -> list of (name, path)

    def route_path(self, i):
        return "/svc-%d" % i

    def file_text(self, fname):
        return "---\n".join(ROUTE.format(name=n, path=p) for n, p in self.per_file[fname])

    def write_manifests(self):
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "00-gateway.yaml"), "w") as f:
            f.write(HEADER.format(port=self.port, backend=self.backend_port))
        for i in range(self.n):
            fname = "routes-%02d.yaml" % (i % self.files)
            self.per_file.setdefault(fname, []).append(("r%d" % i, self.route_path(i)))
        for fname in self.per_file:
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(self.file_text(fname))

    def rss_mb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return float("nan")

    def start(self):
        self.write_manifests()
        self.logf = open(os.path.join(os.path.dirname(self.dir), "archway-%d.log" % self.n), "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [self.args.archway, "run", "-f", self.dir, "--workers", str(self.args.workers),
             "--admin-address", "127.0.0.1:%d" % self.admin, "--log-level", "warn"],
            stdout=self.logf, stderr=self.logf, stdin=subprocess.DEVNULL,
            start_new_session=True)
        prober = Prober(self.port)
        last = self.route_path(self.n - 1) + "/x"
        deadline = t0 + self.args.start_timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError("archway exited with code %d (log: %s)"
                                       % (self.proc.returncode, self.logf.name))
                if prober.get(last) == 200:
                    break
                time.sleep(0.01)
            else:
                raise RuntimeError("%s never served 200 within %ds" % (last, self.args.start_timeout))
        finally:
            prober.close()
        startup = time.monotonic() - t0
        return startup, self.rss_mb()

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.logf.close()
        self.proc = None

    def wait_for(self, prober, path, t0):
        """Polls `path` every interval until 200; returns (ms, errors)."""
        errors = 0
        deadline = t0 + self.args.change_timeout
        while True:
            st = prober.get(path)
            now = time.monotonic()
            if st == 200:
                return (now - t0) * 1000.0, errors
            if st != 404:
                errors += 1
            if now > deadline:
                return None, errors
            time.sleep(self.args.interval / 1000.0)

    def measure(self, kind, count, stop_churn=None):
        prober = Prober(self.port)
        lat, errors, lost = [], 0, 0
        big = sorted(self.per_file)[0] if self.per_file else None
        try:
            for k in range(count):
                if kind == "add":
                    name, path = "probe-%s-%d" % (kind, k), "/probe-%d" % k
                    fname = os.path.join(self.dir, "zz-probe-%05d.yaml" % k)
                    text = ROUTE.format(name=name, path=path)
                else:
                    # Give the first route of the first (big) file a new path.
                    path = "/edited-%d" % k
                    n0, _ = self.per_file[big][0]
                    self.per_file[big][0] = (n0, path)
                    fname, text = os.path.join(self.dir, big), self.file_text(big)
                if prober.get(path) != 404:
                    errors += 1
                t0 = time.monotonic()
                write_atomic(fname, text)
                ms, e = self.wait_for(prober, path, t0)
                errors += e
                if ms is None:
                    lost += 1
                else:
                    lat.append(ms)
                time.sleep(self.args.gap / 1000.0)
        finally:
            prober.close()
        return lat, errors, lost

    def churn(self, stop):
        """One other route flips its path every 100 ms (background change)."""
        fname = sorted(self.per_file)[-1]
        k = 0
        while not stop.is_set():
            n0, _ = self.per_file[fname][-1]
            self.per_file[fname][-1] = (n0, "/churn-%d" % k)
            write_atomic(os.path.join(self.dir, fname), self.file_text(fname))
            k += 1
            stop.wait(0.1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archway", default=os.path.join(REPO, "build", "archway"))
    ap.add_argument("--routes", default="1,1000,10000", help="comma-separated route counts")
    ap.add_argument("--changes", type=int, default=100, help="changes measured per kind")
    ap.add_argument("--kinds", default="add,edit")
    ap.add_argument("--files", type=int, default=4, help="files the N routes are spread over")
    ap.add_argument("--interval", type=float, default=5.0, help="poll interval, ms")
    ap.add_argument("--gap", type=float, default=20.0, help="pause between changes, ms")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--churn", action="store_true",
                    help="while measuring, rewrite another route every 100 ms")
    ap.add_argument("--port-base", type=int, default=61500)
    ap.add_argument("--start-timeout", type=int, default=180)
    ap.add_argument("--change-timeout", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not os.access(args.archway, os.X_OK):
        sys.exit("archway binary not found: %s (scripts/build.sh release)" % args.archway)

    work = tempfile.mkdtemp(prefix="archway-propagation.")
    backend_port = args.port_base + 2
    backend, pybackend = None, None
    cc = shutil.which("cc") or shutil.which("gcc")
    try:
        if cc:
            exe = os.path.join(work, "backend")
            subprocess.check_call([cc, "-O2", "-o", exe, os.path.join(HERE, "tools", "backend.c")])
            backend = subprocess.Popen([exe, "http", str(backend_port)],
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        else:
            pybackend = PythonBackend(backend_port)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", backend_port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        rows = []
        for n in [int(x) for x in args.routes.split(",") if x]:
            run = Run(args, n, work)
            try:
                startup, rss = run.start()
                log("N=%d: serving after %.2f s, RSS %.1f MB" % (n, startup, rss))
                stop = threading.Event()
                churner = None
                if args.churn:
                    churner = threading.Thread(target=run.churn, args=(stop,), daemon=True)
                    churner.start()
                for kind in args.kinds.split(","):
                    lat, errors, lost = run.measure(kind, args.changes)
                    rows.append((n, kind, startup, rss, lat, errors, lost, run.rss_mb()))
                    log("N=%d %s: p50 %.1f ms, p99 %.1f ms, max %.1f ms, errors %d, lost %d"
                        % (n, kind, percentile(lat, 50), percentile(lat, 99),
                           max(lat) if lat else float("nan"), errors, lost))
                stop.set()
                if churner:
                    churner.join()
            finally:
                run.stop()
        print("\nroute propagation, file source (%d changes per row, poll every %g ms%s)"
              % (args.changes, args.interval, ", with churn" if args.churn else ""))
        print("%7s %-5s %9s %8s %8s %8s %8s %7s %6s %9s" % (
            "routes", "kind", "start s", "RSS MB", "p50 ms", "p99 ms", "max ms", "errors",
            "lost", "RSS after"))
        for n, kind, startup, rss, lat, errors, lost, rss2 in rows:
            print("%7d %-5s %9.2f %8.1f %8.1f %8.1f %8.1f %7d %6d %9.1f" % (
                n, kind, startup, rss, percentile(lat, 50), percentile(lat, 99),
                max(lat) if lat else float("nan"), errors, lost, rss2))
    finally:
        if backend:
            backend.terminate()
            backend.wait()
        if pybackend:
            pybackend.stop()
        if args.keep:
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
