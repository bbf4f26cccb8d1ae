#!/usr/bin/env python3
"""End-to-end HTTP/1.1 tests of `archway run`: routing, filters, framing, limits, reload
and graceful stop, against a local echo backend. Needs $ARCHWAY_BIN (default:
build-asan-ubsan/archway). Run: /usr/bin/python3 tests/integration/test_http1.py"""

import http.server
import json
import os
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN, free_port, raw  # noqa: E402


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers with a JSON description of the request. /status/NNN answers NNN,
    /slow/MS (and /tslow/MS, /bslow/MS: routes with timeouts) sleeps first, /big/N sends N bytes chunked; Upgrade requests get a 101 and
    then every byte is echoed back."""

    protocol_version = "HTTP/1.1"
    server_version = "echo"

    def log_message(self, *args):
        pass

    def handle_any(self):
        if self.headers.get("Upgrade"):
            self.send_response(101)
            self.send_header("Upgrade", self.headers.get("Upgrade"))
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            self.connection.settimeout(10)
            try:
                while True:
                    data = self.connection.recv(65536)
                    if not data:
                        break
                    self.connection.sendall(data)
            except OSError:
                pass
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path.split("?")[0].split("/")
        status = 200
        if len(parts) > 2 and parts[1] == "status":
            status = int(parts[2])
        if len(parts) > 2 and parts[1] in ("slow", "tslow", "bslow"):
            time.sleep(int(parts[2]) / 1000.0)
        if len(parts) > 2 and parts[1] == "big":
            n = int(parts[2])
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 8192
            left = n
            while left > 0:
                piece = chunk[: min(left, len(chunk))]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                left -= len(piece)
            self.wfile.write(b"0\r\n\r\n")
            return
        payload = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
            "backend": self.server.name,
        }).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Backend-Header", "from-backend")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = handle_any


class Echo(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name):
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.name = name
        threading.Thread(target=self.serve_forever, daemon=True).start()


def backend_yaml(name, port):
    return manifests.to_yaml(manifests.service(name, port))


def routes_yaml(marker):
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: main, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /echo}}}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{{name: X-Marker, value: "{marker}"}}]
    backendRefs: [{{name: echo-a, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /hdr}}}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{{name: X-Set, value: set-value}}]
        add: [{{name: X-Add, value: added}}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        remove: [X-Backend-Header]
        add: [{{name: X-Resp, value: yes}}]
    backendRefs: [{{name: echo-a, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /redirect}}}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {{hostname: elsewhere.example, statusCode: 301}}
  - matches: [{{path: {{type: PathPrefix, value: /rewrite}}}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example
        path: {{type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    backendRefs: [{{name: echo-a, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /split}}}}]
    backendRefs:
    - {{name: echo-a, port: 80, weight: 3}}
    - {{name: echo-b, port: 80, weight: 1}}
  - matches: [{{path: {{type: PathPrefix, value: /nobackend}}}}]
    backendRefs: [{{name: missing, port: 80}}]
  - matches:
    - path: {{type: PathPrefix, value: /}}
      headers: [{{name: X-Route, value: b}}]
    backendRefs: [{{name: echo-b, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /tslow}}}}]
    timeouts: {{request: 400ms}}
    backendRefs: [{{name: echo-a, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /bslow}}}}]
    timeouts: {{backendRequest: 400ms}}
    backendRefs: [{{name: echo-a, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /status}}}}, {{path: {{type: PathPrefix, value: /slow}}}}, {{path: {{type: PathPrefix, value: /ws}}}}, {{path: {{type: PathPrefix, value: /big}}}}]
    backendRefs: [{{name: echo-a, port: 80}}]
"""


def gateway_yaml(port):
    return manifests.to_yaml(manifests.http_gateway(port))


def read_response(sock, buf=b""):
    """Reads one HTTP/1.1 response (Content-Length or chunked) from sock; returns
    (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before head: %r" % buf)
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("short body")
            buf += chunk
        return status, headers, buf[:n], buf[n:]
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += sock.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            size = int(line, 16)
            while len(buf) < size + 2:
                buf += sock.recv(65536)
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return status, headers, body, buf
    return status, headers, b"", buf


class Http1Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.echo_a = Echo("a")
        cls.echo_b = Echo("b")
        cls.dir = tempfile.mkdtemp()
        cls.port = free_port()
        with open(os.path.join(cls.dir, "gateway.yaml"), "w") as f:
            f.write(gateway_yaml(cls.port))
            f.write(backend_yaml("echo-a", cls.echo_a.server_address[1]))
            f.write(backend_yaml("echo-b", cls.echo_b.server_address[1]))
        cls.routes = os.path.join(cls.dir, "routes.yaml")
        with open(cls.routes, "w") as f:
            f.write(routes_yaml("v1"))
        cls.access_log = os.path.join(cls.dir, "access.log")
        cls.gw = procs.Archway(cls.dir, ["--access-log", cls.access_log])

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.echo_a.shutdown()
        cls.echo_b.shutdown()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert not failure, failure

    def get(self, path, headers=None, method="GET", data=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     headers=headers or {}, method=method)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=10) as r:
                return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()

    # --- routing and filters ----------------------------------------------------------

    def test_routing_and_forwarded_headers(self):
        status, headers, body = self.get("/echo/x?y=1", {"X-Forwarded-For": "10.0.0.1"})
        self.assertEqual(status, 200)
        seen = json.loads(body)
        self.assertEqual(seen["path"], "/echo/x?y=1")
        self.assertEqual(seen["backend"], "a")
        self.assertEqual(seen["headers"]["x-forwarded-for"], "10.0.0.1, 127.0.0.1")
        self.assertEqual(seen["headers"]["x-forwarded-proto"], "http")
        self.assertEqual(seen["headers"]["host"], f"127.0.0.1:{self.port}")
        self.assertEqual(headers["x-marker"], "v1")

    def test_half_close_after_request_gets_response_and_close(self):
        # A client that shuts down its sending side right after the request (nc -N, some
        # health checkers) must get the response and then our close, not wait for the idle
        # timeout (60 s): its FIN often arrives together with the request bytes.
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            try:
                s.sendall(b"GET /echo/half-close HTTP/1.1\r\nHost: x\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        self.fail("attempt %d: no close after the response: %r" % (i, out[:200]))
                    if not chunk:
                        break
                    out += chunk
            finally:
                s.close()
            self.assertTrue(out.startswith(b"HTTP/1.1 200 "), out[:200])
            self.assertIn(b'"path": "/echo/half-close"', out)

    def test_header_match_routes_elsewhere(self):
        status, _, body = self.get("/anything", {"X-Route": "b"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["backend"], "b")

    def test_no_route_404(self):
        status, _, _ = self.get("/nothing-here")
        self.assertEqual(status, 404)

    def test_request_and_response_header_modifiers(self):
        status, headers, body = self.get("/hdr", {"X-Add": "orig", "X-Remove": "bye", "X-Set": "old"})
        self.assertEqual(status, 200)
        seen = json.loads(body)["headers"]
        self.assertEqual(seen["x-set"], "set-value")
        self.assertEqual(seen["x-add"], "orig,added")
        self.assertNotIn("x-remove", seen)
        self.assertNotIn("x-backend-header", headers)
        self.assertEqual(headers["x-resp"], "yes")

    def test_redirect(self):
        status, headers, _ = self.get("/redirect/a?b=c")
        self.assertEqual(status, 301)
        self.assertEqual(headers["location"], f"http://elsewhere.example:{self.port}/redirect/a?b=c")

    def test_rewrite(self):
        status, _, body = self.get("/rewrite/a/b?q=1")
        self.assertEqual(status, 200)
        seen = json.loads(body)
        self.assertEqual(seen["path"], "/new/a/b?q=1")
        self.assertEqual(seen["headers"]["host"], "rewritten.example")

    def test_weighted_split(self):
        # One keep-alive connection stays on one worker, whose smooth weighted round-robin
        # gives exactly weight-proportional shares over whole cycles.
        counts = {"a": 0, "b": 0}
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        rest = b""
        for _ in range(40):
            s.sendall(b"GET /split HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body, rest = read_response(s, rest)
            self.assertEqual(status, 200)
            counts[json.loads(body)["backend"]] += 1
        s.close()
        self.assertEqual(counts, {"a": 30, "b": 10})

    def test_invalid_backend_500(self):
        status, _, _ = self.get("/nobackend")
        self.assertEqual(status, 500)

    def test_upstream_status_passthrough_and_head(self):
        status, _, _ = self.get("/status/503")
        self.assertEqual(status, 503)
        status, headers, body = self.get("/echo/head", method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")

    def test_route_timeouts_504_only_when_exceeded(self):
        # request and backendRequest timeouts: a backend slower than the limit gets a 504,
        # one well within it passes; twice each so a re-armed timer is exercised too.
        for prefix in ("/tslow", "/bslow"):
            for _ in range(2):
                status, _, body = self.get(prefix + "/3000")
                self.assertEqual(status, 504, prefix)
                self.assertIn(b"timeout", body)
                status, _, body = self.get(prefix + "/0")
                self.assertEqual(status, 200, prefix)
                self.assertEqual(json.loads(body)["path"], prefix + "/0")

    def test_streamed_large_response(self):
        status, _, body = self.get("/big/3000000")
        self.assertEqual(status, 200)
        self.assertEqual(len(body), 3000000)

    # --- HTTP/1.1 connection handling ---------------------------------------------------

    def test_keep_alive_and_pipelining_in_order(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        req = lambda p: f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        s.sendall(req("/echo/1"))
        st, _, body, rest = read_response(s)
        self.assertEqual(json.loads(body)["path"], "/echo/1")
        # Three pipelined requests in one write, answered in order on the same connection.
        s.sendall(req("/echo/2") + req("/slow/200") + req("/echo/3"))
        paths = []
        for _ in range(3):
            st, _, body, rest = read_response(s, rest)
            self.assertEqual(st, 200)
            paths.append(json.loads(body)["path"])
        self.assertEqual(paths, ["/echo/2", "/slow/200", "/echo/3"])
        s.close()

    def test_chunked_request_body(self):
        data = (b"POST /echo/post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(data)
        st, _, body, _ = read_response(s)
        s.close()
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["body"], "hello world")

    def test_chunked_trailers_never_become_headers(self):
        # Trailer fields arrive after routing and filters ran; merged into the head they
        # would smuggle a second Host or a header a filter removed. They are dropped.
        data = (b"POST /echo/trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\nHost: evil.example\r\nX-Injected: yes\r\n\r\n")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(data)
        st, _, body, _ = read_response(s)
        s.close()
        self.assertEqual(st, 200)
        seen = json.loads(body)
        self.assertEqual(seen["body"], "hello")
        self.assertNotIn("x-injected", seen["headers"])
        self.assertEqual(seen["headers"].get("host"), "x")

    def test_expect_100_continue(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"POST /echo/c HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = s.recv(1024)
        self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
        s.sendall(b"ping")
        st, _, body, _ = read_response(s, interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):])
        s.close()
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["body"], "ping")

    def test_websocket_upgrade_relays_bytes(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(4096)
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertIn(b"upgrade: websocket", head.lower())
        for msg in (b"frame-one", b"\x81\x05hello"):
            s.sendall(msg)
            got = rest
            while len(got) < len(msg):
                got += s.recv(4096)
            self.assertEqual(got, msg)
            rest = b""
        s.close()

    def test_malformed_framing_400_and_close(self):
        cases = {
            "cl+te": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "dup-cl": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "bad-cl": b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            "bad-chunk": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
            "te-not-chunked": b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "bare-lf": b"GET /echo HTTP/1.1\nHost: x\n\n",
            "bare-cr": b"GET /echo HTTP/1.1\rHost: x\r\n\r\n",
            "obs-fold": b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
            "space-before-colon": b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
            "bad-name": b"GET /echo HTTP/1.1\r\nHost: x\r\nX(A): a\r\n\r\n",
            "bad-method": b"G@T /echo HTTP/1.1\r\nHost: x\r\n\r\n",
            "no-host": b"GET /echo HTTP/1.1\r\n\r\n",
            "two-hosts": b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "bad-target": b"GET echo HTTP/1.1\r\nHost: x\r\n\r\n",
            "nul-in-value": b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
            "absolute-host-mismatch": b"GET http://a.example/echo HTTP/1.1\r\nHost: b.example\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                out = raw(self.port, data + b"GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(out.startswith(b"HTTP/1.1 400"), (name, out[:200]))
                self.assertIn(b"connection: close", out.lower())
                # The connection was closed: the request smuggled behind was not served.
                self.assertEqual(out.count(b"HTTP/1.1"), 1, (name, out))

    def test_upgrade_answered_as_plain_request_keeps_parsing(self):
        # HTTP/1.0 cannot upgrade, so this is answered as a plain request on a kept-alive
        # connection; llhttp had entered its upgrade state and the next bytes used to spin
        # the worker forever (found by fuzz/h1_request_fuzz.cc).
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /echo/a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\nGET /echo/b HTTP/1.0\r\nHost: x\r\n\r\n")
        st, headers, body, rest = read_response(s)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["path"], "/echo/a")
        self.assertNotIn("upgrade", json.loads(body)["headers"])
        st, _, body, _ = read_response(s, rest)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["path"], "/echo/b")
        s.close()
        # The worker still serves everyone else.
        out = raw(self.port, b"GET /echo/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 200"), out[:100])

    def test_oversized_headers_431(self):
        data = b"GET /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"
        out = raw(self.port, data)
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])
        out = raw(self.port, b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])

    def test_slow_headers_408(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 408"), out)

    # --- admin ------------------------------------------------------------------------

    def test_admin_endpoints(self):
        self.assertEqual(self.gw.admin("/healthz")[0], 200)
        status, body = self.gw.admin("/status")
        self.assertEqual(status, 200)
        items = json.loads(body)["items"]
        route = [i for i in items if i["kind"] == "HTTPRoute" and i["metadata"]["name"] == "main"][0]
        self.assertGreaterEqual(route["metadata"]["generation"], 1)
        self.assertIn("spec", route)
        self.assertIn("parents", route["status"])
        gw = [i for i in items if i["kind"] == "Gateway"][0]
        self.assertIn("conditions", gw["status"])
        self.get("/echo/metrics")
        status, metrics = self.gw.admin("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('archway_listener_requests_total{gateway="default/gw",listener="http"}', metrics)
        self.assertIn('archway_backend_requests_total{backend="default/echo-a:80"}', metrics)
        self.assertIn("archway_listener_request_duration_seconds_bucket", metrics)
        status, config = self.gw.admin("/config")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(config)["ports"][0]["port"], self.port)

    def test_access_log_lines(self):
        self.get("/echo/logged")
        deadline = time.time() + 10
        lines = []
        while time.time() < deadline:
            if os.path.exists(self.access_log):
                with open(self.access_log) as f:
                    lines = [json.loads(l) for l in f if l.strip()]
                if any(l["path"] == "/echo/logged" for l in lines):
                    break
            time.sleep(0.1)
        entry = [l for l in lines if l["path"] == "/echo/logged"][0]
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["backend"], "default/echo-a:80")

    # --- reload -----------------------------------------------------------------------

    def test_zz_live_reload_without_failed_requests(self):
        failures = []
        seen = set()
        stop = threading.Event()

        def load():
            while not stop.is_set():
                try:
                    status, headers, _ = self.get("/echo/load")
                    if status != 200:
                        failures.append(status)
                    else:
                        seen.add(headers.get("x-marker"))
                except Exception as e:  # noqa: BLE001
                    failures.append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i, marker in enumerate(["v2", "v3", "v4"]):
                time.sleep(0.5)
                if i == 1:
                    # Rename-replace, the way editors and kubectl-like tools write.
                    tmp = self.routes + ".tmp"
                    with open(tmp, "w") as f:
                        f.write(routes_yaml(marker))
                    os.rename(tmp, self.routes)
                else:
                    with open(self.routes, "w") as f:
                        f.write(routes_yaml(marker))
                deadline = time.time() + 15
                while marker not in seen and time.time() < deadline:
                    time.sleep(0.05)
                self.assertIn(marker, seen)
            # A file that no longer parses keeps the last good objects serving.
            with open(self.routes, "w") as f:
                f.write("apiVersion: v1\nkind: [unterminated\n")
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [])
        status, headers, _ = self.get("/echo/after")
        self.assertEqual(status, 200)
        self.assertEqual(headers["x-marker"], "v4")
        items = json.loads(self.gw.admin("/status")[1])["items"]
        route = [i for i in items if i["kind"] == "HTTPRoute" and i["metadata"]["name"] == "main"][0]
        self.assertEqual(route["metadata"]["generation"], 4)
        self.assertIn("routes.yaml", self.gw.output())  # the parse error was logged with the file
        with open(self.routes, "w") as f:
            f.write(routes_yaml("v4"))


class GracefulStopTest(unittest.TestCase):
    def test_sigterm_finishes_in_flight_requests(self):
        if not os.path.exists(BIN):
            self.skipTest(f"{BIN} not built")
        echo = Echo("a")
        d = tempfile.mkdtemp()
        port = free_port()
        gw = None
        try:
            with open(os.path.join(d, "all.yaml"), "w") as f:
                f.write(gateway_yaml(port))
                f.write(backend_yaml("echo-a", echo.server_address[1]))
                f.write(backend_yaml("echo-b", echo.server_address[1]))
                f.write(routes_yaml("x"))
            gw = procs.Archway(d)
            result = {}

            def slow():
                s = socket.create_connection(("127.0.0.1", port), timeout=20)
                s.sendall(b"GET /slow/1500 HTTP/1.1\r\nHost: x\r\n\r\n")
                result["response"] = read_response(s)
                s.close()

            t = threading.Thread(target=slow)
            t.start()
            time.sleep(0.5)
            gw.proc.send_signal(signal.SIGTERM)
            t.join(30)
            rc = gw.proc.wait(timeout=30)
            self.assertEqual(result["response"][0], 200)
            self.assertEqual(result["response"][1].get("connection"), "close")
            self.assertEqual(rc, 0, gw.output())
            # New connections are refused once draining finished.
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
        finally:
            if gw:
                gw.stop()
            echo.shutdown()
            shutil.rmtree(d, ignore_errors=True)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
