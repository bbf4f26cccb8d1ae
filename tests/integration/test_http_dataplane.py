#!/usr/bin/env python3
"""End-to-end data-plane behaviour of `archway run` that the Gateway API conformance replay
does not exercise: connection failures and retries against real failing backends,
503/504 paths, forwarded headers, body limits, chunked relay, metrics, address pools and
listener changes while connections stay open. Needs $ARCHWAY_BIN (default:
build-asan-ubsan/archway). Run: /usr/bin/python3 tests/integration/test_http_dataplane.py"""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN, free_port  # noqa: E402


class CountingHandler(http.server.BaseHTTPRequestHandler):
    """Answers JSON describing the request; ?status=N answers N, ?slow=MS sleeps first,
    ?chunked=N sends N bytes chunked. Counts requests per path on the server."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        with self.server.lock:
            self.server.hits[url.path] = self.server.hits.get(url.path, 0) + 1
        if "slow" in q:
            time.sleep(int(q["slow"]) / 1000.0)
        if "chunked" in q:
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            left = int(q["chunked"])
            while left > 0:
                n = min(left, 1000)
                self.wfile.write(b"%x\r\n%s\r\n" % (n, b"c" * n))
                left -= n
            self.wfile.write(b"0\r\n\r\n")
            return
        payload = json.dumps({
            "method": self.command, "path": self.path, "backend": self.server.name,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }).encode()
        self.send_response(int(q.get("status", 200)))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any


class Backend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name):
        super().__init__(("127.0.0.1", 0), CountingHandler)
        self.name = name
        self.hits = {}
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def count(self, path):
        with self.lock:
            return self.hits.get(path, 0)

    def handle_error(self, request, client_address):
        pass  # the proxy hanging up on a timed-out request is expected here


class Resetter:
    """Accepts, reads one request head (and its Content-Length body), then closes without
    answering: a connection error after the request was sent. With `answer`, sends those
    bytes first (a backend that answers something that is not HTTP)."""

    def __init__(self, answer=b""):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.methods = []
        self.lock = threading.Lock()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            with self.lock:
                self.methods.append(buf.split(b" ", 1)[0].decode())
            if self.answer:
                c.sendall(self.answer)
        except OSError:
            pass
        finally:
            c.close()

    def count(self, method):
        with self.lock:
            return self.methods.count(method)

    def close(self):
        self.sock.close()


def service(name, slices, app_protocol=None):
    """A Service with one EndpointSlice per (port, ready) pair, all on 127.0.0.1."""
    return manifests.to_yaml(manifests.service(name, slices=slices, app_protocol=app_protocol))


GATEWAY_CLASS = manifests.to_yaml(manifests.gateway_class())


def gateway(name, listeners, addresses=("127.0.0.1",)):
    """A Gateway with HTTP listeners given as (name, port) pairs."""
    return manifests.to_yaml(manifests.gateway(listeners, name=name, addresses=addresses))


class Archway(procs.Archway):
    """procs.Archway with the run flags in one list (--workers among them); stop() fails
    on a sanitizer report in the log."""

    def __init__(self, manifest_dir, extra=()):
        super().__init__(manifest_dir, extra, workers=None)

    def stop(self, timeout=30):
        rc = super().stop(timeout)
        out = self.output()
        assert not procs.sanitizer_report(out), out
        return rc


def request(port, method, path, body=None, headers=None, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=20)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


ROUTES = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: dp, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /deadfirst}}]
    backendRefs: [{name: deadfirst, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /only-dead}}]
    backendRefs: [{name: dead, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /only-reset}}]
    backendRefs: [{name: resetter, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /garbled}}]
    backendRefs: [{name: garbler, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /blackhole}}]
    backendRefs: [{name: blackhole, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /flaky-retry}}]
    retry: {attempts: 1}
    backendRefs: [{name: flaky, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /retry-codes}}]
    retry: {codes: [503], attempts: 2, backoff: 20ms}
    backendRefs: [{name: good, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /request-timeout}}]
    timeouts: {request: 300ms}
    backendRefs: [{name: good, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /backend-timeout}}]
    timeouts: {request: 10s, backendRequest: 300ms}
    retry: {attempts: 1}
    backendRefs: [{name: good, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /rewritten}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example}
    backendRefs: [{name: good, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mixed}}]
    backendRefs: [{name: good, port: 80, weight: 1}, {name: missing, port: 80, weight: 1}]
  - matches: [{path: {type: PathPrefix, value: /notready}}]
    backendRefs: [{name: notready, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror-a, port: 80}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror-b, port: 80}, percent: 0}
    backendRefs: [{name: good, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: good, port: 80}]
"""


class DataPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.good = Backend("good")
        cls.other = Backend("other")
        cls.mirror_a = Backend("mirror-a")
        cls.mirror_b = Backend("mirror-b")
        cls.resetter = Resetter()
        cls.garbler = Resetter(answer=b"SPDY/9 200 whatever\r\n\r\n")
        cls.dead_port = free_port()  # nothing listens: connection refused
        # A listener whose accept queue is full drops SYNs: connecting never completes.
        cls.blackhole = socket.socket()
        cls.blackhole.bind(("127.0.0.1", 0))
        cls.blackhole.listen(0)
        cls.fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(cls.blackhole.getsockname())
            cls.fillers.append(f)
        time.sleep(0.2)
        cls.dir = tempfile.mkdtemp()
        cls.port = free_port()
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write(GATEWAY_CLASS + gateway("gw", [("http", cls.port)]))
            f.write(service("good", [(cls.good.server_address[1], True)]))
            f.write(service("deadfirst", [(cls.dead_port, True), (cls.other.server_address[1], True)]))
            f.write(service("flaky", [(cls.resetter.port, True), (cls.other.server_address[1], True)]))
            f.write(service("blackhole", [(cls.blackhole.getsockname()[1], True),
                                          (cls.other.server_address[1], True)]))
            f.write(service("notready", [(cls.other.server_address[1], False)]))
            f.write(service("resetter", [(cls.resetter.port, True)]))
            f.write(service("dead", [(cls.dead_port, True)]))
            f.write(service("garbler", [(cls.garbler.port, True)]))
            f.write(service("mirror-a", [(cls.mirror_a.server_address[1], True)]))
            f.write(service("mirror-b", [(cls.mirror_b.server_address[1], True)]))
            f.write(ROUTES)
        # One worker: round-robin order across requests is then deterministic.
        cls.gw = Archway(cls.dir, ["--workers", "1"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        for b in (cls.good, cls.other, cls.mirror_a, cls.mirror_b):
            b.shutdown()
        cls.resetter.close()
        cls.garbler.close()
        for f in cls.fillers:
            f.close()
        cls.blackhole.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, cls.gw.output()

    # --- upstream failures and retries -------------------------------------------------

    def test_refused_connection_tries_another_endpoint_any_method(self):
        # Nothing was sent on a refused connection, so even a POST moves to the next endpoint.
        for i in range(6):
            body = f"payload-{i}".encode()
            status, _, out = request(self.port, "POST", "/deadfirst/p", body=body)
            self.assertEqual(status, 200, out)
            seen = json.loads(out)
            self.assertEqual(seen["backend"], "other")
            self.assertEqual(seen["body"], body.decode())

    def test_upstream_failure_statuses(self):
        # Refused everywhere: 502; closed before answering: 503; not HTTP: 502 (RFC 9110
        # §15.6.3 "invalid response"); no ready endpoint: 503 (the spec's).
        cases = [("/only-dead/a", 502), ("/only-reset/a", 503), ("/garbled/a", 502), ("/notready/a", 503)]
        for path, want in cases:
            status, _, out = request(self.port, "GET", path)
            self.assertEqual(status, want, (path, out))

    def test_connect_timeout_then_another_endpoint(self):
        # Two requests: round-robin sends one of them to the endpoint that never accepts;
        # the connect timeout gives up on it and the other endpoint answers.
        failed = re.compile(r'archway_backend_connect_failures_total\{backend="default/blackhole:80"\} [1-9]')
        for _ in range(2):
            status, _, out = request(self.port, "POST", "/blackhole/x", body=b"b")
            self.assertEqual(status, 200, out)
            self.assertEqual(json.loads(out)["backend"], "other")
            if failed.search(self.gw.admin("/metrics")[1]):
                break
        self.assertRegex(self.gw.admin("/metrics")[1], failed)

    def test_connection_error_after_send_retried_only_for_idempotent_methods(self):
        before_get = self.resetter.count("GET")
        for _ in range(6):
            status, _, out = request(self.port, "GET", "/flaky-retry/g")
            self.assertEqual(status, 200, out)
        # Round-robin over two endpoints: some GETs reached the resetting endpoint and
        # were retried on the other one.
        self.assertGreater(self.resetter.count("GET"), before_get)

        before_post = self.resetter.count("POST")
        statuses = []
        for i in range(6):
            status, _, _ = request(self.port, "POST", "/flaky-retry/p", body=b"x%d" % i)
            statuses.append(status)
        reset_posts = self.resetter.count("POST") - before_post
        self.assertGreater(reset_posts, 0)
        # A POST whose request reached the upstream is never replayed: each reset is a 503.
        self.assertEqual(statuses.count(503), reset_posts, statuses)
        self.assertEqual(statuses.count(200), 6 - reset_posts, statuses)

    def test_retry_on_codes_counts_attempts(self):
        status, _, _ = request(self.port, "GET", "/retry-codes/a?status=503")
        self.assertEqual(status, 503)
        self.assertEqual(self.good.count("/retry-codes/a"), 3)  # first try + 2 retries
        status, _, _ = request(self.port, "GET", "/retry-codes/b?status=500")
        self.assertEqual(status, 500)
        self.assertEqual(self.good.count("/retry-codes/b"), 1)  # 500 is not listed

    def test_request_timeout_504(self):
        status, _, _ = request(self.port, "GET", "/request-timeout/x?slow=3000")
        self.assertEqual(status, 504)
        status, _, _ = request(self.port, "GET", "/request-timeout/fast")
        self.assertEqual(status, 200)

    def test_backend_request_timeout_504_after_retry(self):
        status, _, _ = request(self.port, "GET", "/backend-timeout/x?slow=2000")
        self.assertEqual(status, 504)
        deadline = time.time() + 10
        while self.good.count("/backend-timeout/x") < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.good.count("/backend-timeout/x"), 2)  # try + 1 retry

    def test_backend_request_timeout_not_retried_for_post(self):
        # The POST reached the backend before timing out: it may have been processed, so it
        # is never sent again. An idempotent PUT is retried like the GET above.
        status, _, _ = request(self.port, "POST", "/backend-timeout/post?slow=1000", body=b"once")
        self.assertEqual(status, 504)
        self.assertEqual(self.good.count("/backend-timeout/post"), 1)
        status, _, _ = request(self.port, "PUT", "/backend-timeout/put?slow=1000", body=b"twice")
        self.assertEqual(status, 504)
        deadline = time.time() + 10
        while self.good.count("/backend-timeout/put") < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.good.count("/backend-timeout/put"), 2)  # try + 1 retry
        self.assertEqual(self.good.count("/backend-timeout/post"), 1)

    def test_no_ready_endpoints_503(self):
        status, _, _ = request(self.port, "GET", "/notready/x")
        self.assertEqual(status, 503)
        self.assertEqual(self.other.count("/notready/x"), 0)

    def test_invalid_backend_ref_gets_its_share_as_500(self):
        # The spec: requests that would have gone to an invalid backendRef get 500, the
        # others are served. One connection, one worker: exact weighted shares.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        statuses = []
        try:
            for _ in range(10):
                s.sendall(b"GET /mixed HTTP/1.1\r\nHost: x\r\n\r\n")
                c = http.client.HTTPResponse(s)
                c.begin()
                c.read()
                statuses.append(c.status)
        finally:
            s.close()
        self.assertEqual(statuses.count(500), 5, statuses)
        self.assertEqual(statuses.count(200), 5, statuses)

    # --- mirrors ----------------------------------------------------------------------

    def test_mirror_full_and_zero_percent(self):
        for i in range(4):
            status, _, out = request(self.port, "POST", "/mirrored/m", body=b"mirror-body")
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(out)["backend"], "good")
        deadline = time.time() + 10
        while self.mirror_a.count("/mirrored/m") < 4 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.mirror_a.count("/mirrored/m"), 4)
        self.assertEqual(self.mirror_b.count("/mirrored/m"), 0)

    # --- headers, bodies, framing -------------------------------------------------------

    def test_forwarded_headers(self):
        status, _, out = request(self.port, "GET", "/fwd", headers={
            "Host": "app.example:8080", "X-Forwarded-Proto": "https", "X-Forwarded-For": "1.2.3.4"})
        self.assertEqual(status, 200)
        h = json.loads(out)["headers"]
        self.assertEqual(h["x-forwarded-for"], "1.2.3.4, 127.0.0.1")
        self.assertEqual(h["x-forwarded-proto"], "http")  # what the client used, not a claim
        self.assertEqual(h["x-forwarded-host"], "app.example:8080")
        self.assertEqual(h["host"], "app.example:8080")
        # A client's own X-Forwarded-Host is replaced; a rewritten hostname does not hide
        # the Host the client asked for.
        status, _, out = request(self.port, "GET", "/rewritten", headers={
            "Host": "public.example", "X-Forwarded-Host": "evil.example"})
        self.assertEqual(status, 200)
        h = json.loads(out)["headers"]
        self.assertEqual(h["host"], "internal.example")
        self.assertEqual(h["x-forwarded-host"], "public.example")

    def test_body_over_limit_413(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            # Over the (1 GiB) streaming limit by declaration: refused before any byte.
            s.sendall(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Expect: 100-continue\r\n\r\n" % ((1 << 30) + 1))
            out = s.recv(4096)
            self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])
        finally:
            s.close()

    def test_chunked_both_ways(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            s.sendall(b"POST /chunky?chunked=5000 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n0\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, rest = buf.split(b"\r\n\r\n", 1)
            self.assertIn(b"transfer-encoding: chunked", head.lower())
            body = b""
            while True:
                while b"\r\n" not in rest:
                    rest += s.recv(65536)
                line, rest = rest.split(b"\r\n", 1)
                size = int(line, 16)
                while len(rest) < size + 2:
                    rest += s.recv(65536)
                body += rest[:size]
                rest = rest[size + 2:]
                if size == 0:
                    break
            self.assertEqual(body, b"c" * 5000)
            # The connection stays usable after a chunked exchange.
            s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            buf = rest
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf[:100])
        finally:
            s.close()

    # --- admin ------------------------------------------------------------------------

    def test_metrics_by_class_connections_and_backend_latency(self):
        request(self.port, "GET", "/metric-probe")
        request(self.port, "GET", "/notready/metric")
        _, m = self.gw.admin("/metrics")
        self.assertRegex(m, r'archway_listener_responses_total\{[^}]*listener="http"[^}]*class="2xx"[^}]*\} [1-9]')
        self.assertRegex(m, r'archway_listener_responses_total\{[^}]*class="5xx"[^}]*\} [1-9]')
        self.assertRegex(m, r'archway_backend_connections_opened_total\{backend="default/good:80"\} [1-9]')
        self.assertRegex(m, r'archway_backend_request_duration_seconds_bucket\{backend="default/good:80",le="[^"]+"\} [1-9]')
        self.assertRegex(m, r'archway_backend_connect_failures_total\{backend="default/deadfirst:80"\} \d')
        self.assertNotIn("route=", m)  # not per route by default


class GracefulStopBoundTest(unittest.TestCase):
    def test_sigterm_does_not_wait_forever_for_a_stuck_upstream(self):
        if not os.path.exists(BIN):
            self.skipTest(f"{BIN} not built")
        be = Backend("stuck")
        d = tempfile.mkdtemp()
        port = free_port()
        try:
            with open(os.path.join(d, "all.yaml"), "w") as f:
                f.write(GATEWAY_CLASS + gateway("gw", [("http", port)]))
                f.write(service("good", [(be.server_address[1], True)]))
                f.write(ROUTES)
            gw = Archway(d, ["--workers", "1"])
            result = {}

            def stuck():
                try:
                    result["r"] = request(port, "GET", "/stuck?slow=40000")
                except Exception as e:  # noqa: BLE001
                    result["r"] = e

            t = threading.Thread(target=stuck, daemon=True)
            t.start()
            deadline = time.time() + 10
            while be.count("/stuck") == 0 and time.time() < deadline:
                time.sleep(0.02)
            gw.proc.send_signal(signal.SIGTERM)
            # The drain is bounded (well below the backend's 40 s): the process exits cleanly
            # and the stuck client's connection is closed rather than left hanging.
            rc = gw.proc.wait(timeout=35)
            self.assertEqual(rc, 0, gw.output())
            t.join(10)
            self.assertFalse(t.is_alive())
            self.assertIsInstance(result["r"], Exception)
            self.assertEqual(gw.stop(), 0)
        finally:
            be.shutdown()
            shutil.rmtree(d, ignore_errors=True)


class AddressPoolTest(unittest.TestCase):
    def test_pool_gives_each_gateway_a_stable_own_address(self):
        if not os.path.exists(BIN):
            self.skipTest(f"{BIN} not built")
        be = Backend("pool")
        d = tempfile.mkdtemp()
        port = free_port()
        gw = None
        try:
            with open(os.path.join(d, "all.yaml"), "w") as f:
                f.write(GATEWAY_CLASS)
                f.write(gateway("one", [("http", port)], addresses=()))
                f.write(gateway("two", [("http", port)], addresses=()))
                f.write(service("good", [(be.server_address[1], True)]))
                for g in ("one", "two"):
                    f.write(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r-{g}, namespace: default}}
spec:
  parentRefs: [{{name: {g}}}]
  rules: [{{backendRefs: [{{name: good, port: 80}}]}}]
---
""")
            gw = Archway(d, ["--workers", "1", "--address-pool", "127.77.0.0/16"])
            items = json.loads(gw.admin("/status")[1])["items"]
            addrs = {}
            for i in items:
                if i["kind"] == "Gateway":
                    addrs[i["metadata"]["name"]] = [a["value"] for a in i["status"]["addresses"]]
            self.assertEqual(len(addrs["one"]), 1)
            self.assertEqual(len(addrs["two"]), 1)
            self.assertNotEqual(addrs["one"], addrs["two"])
            for name, (a,) in addrs.items():
                self.assertTrue(a.startswith("127.77."), a)
                status, _, out = request(port, "GET", "/p", host=a)
                self.assertEqual(status, 200)
            # Not bound on other addresses of the host.
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            # Stable: a second process assigns the same addresses.
            self.assertEqual(gw.stop(), 0)
            gw = Archway(d, ["--workers", "1", "--address-pool", "127.77.0.0/16"])
            items = json.loads(gw.admin("/status")[1])["items"]
            again = {i["metadata"]["name"]: [a["value"] for a in i["status"]["addresses"]]
                     for i in items if i["kind"] == "Gateway"}
            self.assertEqual(again, addrs)
        finally:
            if gw:
                gw.stop()
            be.shutdown()
            shutil.rmtree(d, ignore_errors=True)


LIVE_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: live, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: {ptype}, value: /}}}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{set: [{{name: X-Version, value: "{version}"}}]}}
    backendRefs: [{{name: good, port: 80}}]
---
"""


OTHER_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /other}}]
    backendRefs: [{name: good, port: 80}]
---
"""


class LiveChangeTest(unittest.TestCase):
    def test_listener_diff_keeps_connections_drains_removed_and_rejects_invalid(self):
        if not os.path.exists(BIN):
            self.skipTest(f"{BIN} not built")
        be = Backend("live")
        d = tempfile.mkdtemp()
        p1, p2 = free_port(), free_port()
        base = GATEWAY_CLASS + service("good", [(be.server_address[1], True)])
        gw_file = os.path.join(d, "gw.yaml")
        route_file = os.path.join(d, "route.yaml")
        gw = None

        def write(path, text):
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, path)

        def wait_version(version):
            deadline = time.time() + 15
            while time.time() < deadline:
                st, h, _ = request(p1, "GET", "/probe")
                if st == 200 and h.get("x-version") == version:
                    return
                time.sleep(0.05)
            self.fail(f"version {version} never served")

        try:
            with open(os.path.join(d, "base.yaml"), "w") as f:
                f.write(base + OTHER_ROUTE)
            write(gw_file, gateway("gw", [("a", p1), ("b", p2)]))
            write(route_file, LIVE_ROUTE.format(ptype="PathPrefix", version="v1"))
            gw = Archway(d, ["--workers", "2"])
            # A keep-alive connection on the listener that will not change ...
            c1 = http.client.HTTPConnection("127.0.0.1", p1, timeout=20)
            c1.request("GET", "/one")
            r = c1.getresponse()
            r.read()
            self.assertEqual(r.getheader("X-Version"), "v1")
            # ... and a request in flight on the listener that will be removed.
            inflight = {}

            def slow():
                c = http.client.HTTPConnection("127.0.0.1", p2, timeout=20)
                c.request("GET", "/slow?slow=1500")
                rr = c.getresponse()
                inflight["status"], inflight["version"] = rr.status, rr.getheader("X-Version")
                rr.read()
                c.close()

            t = threading.Thread(target=slow)
            t.start()
            deadline = time.time() + 10
            while be.count("/slow") == 0 and time.time() < deadline:
                time.sleep(0.02)
            write(gw_file, gateway("gw", [("a", p1)]))
            write(route_file, LIVE_ROUTE.format(ptype="PathPrefix", version="v2"))
            wait_version("v2")
            t.join(30)
            # The in-flight request finished, on the snapshot it started with.
            self.assertEqual(inflight.get("status"), 200, inflight)
            self.assertEqual(inflight.get("version"), "v1")
            # The unchanged listener kept its connection, which now serves the new routes.
            c1.request("GET", "/two")
            r = c1.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("X-Version"), "v2")
            # The removed listener no longer accepts.
            deadline = time.time() + 15
            refused = False
            while time.time() < deadline and not refused:
                try:
                    socket.create_connection(("127.0.0.1", p2), timeout=2).close()
                    time.sleep(0.1)
                except OSError:
                    refused = True
            self.assertTrue(refused, "removed listener still accepts")

            # An invalid change (schema: unknown path match type) to one route says why in
            # its status and in the log; the route's last good version (v2) and everything
            # else keep serving.
            write(route_file, LIVE_ROUTE.format(ptype="Bogus", version="v3"))
            deadline = time.time() + 15
            reason = None
            while time.time() < deadline and reason is None:
                items = json.loads(gw.admin("/status")[1])["items"]
                for i in items:
                    if i["kind"] == "HTTPRoute" and i["metadata"]["name"] == "live":
                        for p in i.get("status", {}).get("parents", []):
                            for cond in p.get("conditions", []):
                                if (cond["type"] == "PartiallyInvalid" and cond["status"] == "True"
                                        and "Bogus" in cond.get("message", "")):
                                    reason = cond["message"]
                time.sleep(0.1)
            self.assertIsNotNone(reason, gw.output())
            st, h, _ = request(p1, "GET", "/probe")
            self.assertEqual((st, h.get("x-version")), (200, "v2"))
            st, _, out = request(p1, "GET", "/other/still")
            self.assertEqual(st, 200)
            self.assertEqual(json.loads(out)["backend"], "live")
            self.assertIn("Bogus", gw.output())
            # The same connection still works after all of it.
            c1.request("GET", "/other/three")
            r = c1.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            c1.close()
        finally:
            if gw:
                self.assertEqual(gw.stop(), 0)
            be.shutdown()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
