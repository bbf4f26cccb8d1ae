#!/usr/bin/env python3
"""Request-body streaming through `archway run`: HTTP/1.1 uploads larger than the old
8 MiB buffer (Content-Length and chunked), Expect: 100-continue, HTTP/2 uploads with and
without a declared length, the streaming body limit (413 up front or mid-stream), a
streamed request not replayed by retries while a small one is, and the route's request
timeout cutting a stalled upload. The backend is a small HTTP/1.1 server that hashes what
it receives. Needs $ARCHWAY_BIN (default build-asan-ubsan/archway) and curl.
Run: /usr/bin/python3 tests/integration/test_streaming.py"""

import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import h2.exceptions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_h2 import H2Client  # noqa: E402

import manifests  # noqa: E402  (tests/support, on the path through test_h2)
import procs  # noqa: E402
from procs import BIN, free_port  # noqa: E402

LIMIT = 32 * 1024 * 1024  # --max-request-body-bytes for this gateway
MIB = 1024 * 1024


class SinkBackend:
    """HTTP/1.1 server: reads each request body (Content-Length or chunked, no limit),
    answers JSON with its byte count, SHA-256 and framing. /fail answers 500 (retry
    tests). Records every request it saw, complete or not."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = []  # (path, complete)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(30)
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline(65536)
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers = {}
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode().split(":", 1)
                    headers[k.strip().lower()] = v.strip()
                h, n, complete = hashlib.sha256(), 0, False
                try:
                    if headers.get("transfer-encoding", "").lower() == "chunked":
                        while True:
                            size = int(f.readline(1024).split(b";")[0], 16)
                            if size == 0:
                                f.readline(1024)
                                break
                            while size:
                                b = f.read(min(size, 1 << 20))
                                if not b:
                                    raise EOFError
                                h.update(b)
                                n += len(b)
                                size -= len(b)
                            f.readline(1024)
                    else:
                        left = int(headers.get("content-length", "0"))
                        while left:
                            b = f.read(min(left, 1 << 20))
                            if not b:
                                raise EOFError
                            h.update(b)
                            n += len(b)
                            left -= len(b)
                    complete = True
                except (EOFError, ValueError, OSError):
                    pass
                with self.lock:
                    self.seen.append((path, complete))
                if not complete:
                    return
                if path.startswith("/download/"):
                    # A deterministic body of the size the path names, its SHA-256 in a
                    # header (slow-reader tests).
                    size = int(path.split("/")[2])
                    blob = random.Random(size).randbytes(size)
                    c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                              b"x-sha256: %s\r\ncontent-length: %d\r\n\r\n"
                              % (sha(blob).encode(), size))
                    c.sendall(blob)
                    continue
                status = 500 if path.startswith("/fail") else 200
                body = json.dumps({"bytes": n, "sha256": h.hexdigest(),
                                   "te": headers.get("transfer-encoding"),
                                   "cl": headers.get("content-length")}).encode()
                c.sendall(b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n"
                          b"content-length: %d\r\n\r\n" % (status, len(body)) + body)
        except OSError:
            pass
        finally:
            c.close()

    def wait_seen(self, path, timeout=20):
        """Completion flags of the requests to `path`, once at least one was recorded."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                got = [c for p, c in self.seen if p == path]
            if got:
                return got
            time.sleep(0.05)
        return []

    def count(self, path):
        with self.lock:
            return sum(1 for p, _ in self.seen if p == path)

    def stop(self):
        self.sock.close()


def routes_yaml():
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: up, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /fail}}]
    retry: {codes: [500], attempts: 1}
    backendRefs: [{name: sink, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 80}}
    backendRefs: [{name: sink, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /timed}}]
    timeouts: {request: 1s}
    backendRefs: [{name: sink, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}}]
    backendRefs: [{name: sink, port: 80}]
---
"""


def sha(b):
    return hashlib.sha256(b).hexdigest()


def read_response(s):
    """Reads one HTTP/1.1 response with a content-length body; (status, head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed before a response head: %r" % buf[:200])
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ")[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, head, rest[:length]


class StreamingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("archway binary not built: " + BIN)
        if not shutil.which("curl"):
            raise unittest.SkipTest("curl not installed")
        cls.sink = SinkBackend()
        cls.mirror = SinkBackend()
        cls.dir = tempfile.mkdtemp(prefix="archway-streaming-")
        cls.port = free_port()
        manifests.write(os.path.join(cls.dir, "all.yaml"),
                        manifests.http_gateway(cls.port),
                        manifests.service("sink", cls.sink.port),
                        manifests.service("mirror", cls.mirror.port),
                        routes_yaml())
        cls.gw = procs.Archway(cls.dir,
                               args=["--max-request-body-bytes", str(LIMIT)])
        cls.big = os.urandom(12 * MIB)  # over the old 8 MiB buffer
        cls.big_path = os.path.join(cls.dir, "big.bin")
        with open(cls.big_path, "wb") as f:
            f.write(cls.big)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        cls.sink.stop()
        cls.mirror.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("archway exited with %s:\n%s" % (rc, cls.gw.output()))

    def curl(self, *args, stdin=None):
        out = subprocess.run(["curl", "-sS", "--max-time", "60", *args], stdin=stdin,
                             capture_output=True, timeout=90)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def test_upload_over_old_limit_with_content_length(self):
        got = json.loads(self.curl("-T", self.big_path, self.url("/upload")))
        self.assertEqual(got["bytes"], len(self.big))
        self.assertEqual(got["sha256"], sha(self.big))
        self.assertEqual(got["cl"], str(len(self.big)))  # declared length travels upstream
        self.assertIsNone(got["te"])

    def test_large_response_to_a_slow_reader_arrives_intact(self):
        # The client does not read at first: once the socket buffers between proxy and
        # client are full, the proxy's direct writes take only part of a response write
        # and the rest must follow, in order, when the client reads; the connection then
        # serves a second request.
        size = 24 * MIB
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            s.sendall(b"GET /download/%d HTTP/1.1\r\nhost: x\r\n\r\n" % size)
            time.sleep(1)
            buf = bytearray()
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                self.assertTrue(d, "closed before the response head")
                buf += d
            end = buf.index(b"\r\n\r\n")
            head = bytes(buf[:end]).decode().lower().split("\r\n")
            self.assertIn(" 200 ", head[0] + " ")
            fields = dict(line.split(": ", 1) for line in head[1:])
            self.assertEqual(fields["content-length"], str(size))
            body = bytearray(buf[end + 4:])
            while len(body) < size:
                d = s.recv(1 << 20)
                self.assertTrue(d, "closed after %d of %d body bytes" % (len(body), size))
                body += d
            self.assertEqual(len(body), size)
            self.assertEqual(sha(bytes(body)), fields["x-sha256"])
            s.sendall(b"GET /download/1000 HTTP/1.1\r\nhost: x\r\n\r\n")
            status, head, small = read_response(s)
            self.assertEqual((status, len(small)), (200, 1000))
        finally:
            s.close()

    def test_chunked_upload_streams_chunked(self):
        with open(self.big_path, "rb") as stdin:  # curl uploads stdin chunked
            got = json.loads(self.curl("-T", "-", self.url("/chunked"), stdin=stdin))
        self.assertEqual(got["bytes"], len(self.big))
        self.assertEqual(got["sha256"], sha(self.big))
        self.assertEqual(got["te"], "chunked")  # unknown length: chunked upstream
        # A small chunked body fits the first buffer: sent whole, with a length.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            s.sendall(b"POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            status, _, body = read_response(s)
        finally:
            s.close()
        self.assertEqual(status, 200)
        got = json.loads(body)
        self.assertEqual((got["bytes"], got["cl"], got["te"]), (11, "11", None))
        self.assertEqual(got["sha256"], sha(b"hello world"))

    def test_expect_100_continue(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            body = self.big[:3 * MIB]
            s.sendall(b"PUT /continue HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                      b"Expect: 100-continue\r\n\r\n" % len(body))
            interim = b""
            while b"\r\n\r\n" not in interim:
                d = s.recv(4096)
                self.assertTrue(d, "closed before 100 Continue")
                interim += d
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
            s.sendall(body)
            status, _, resp = read_response(s)
        finally:
            s.close()
        self.assertEqual(status, 200)
        got = json.loads(resp)
        self.assertEqual((got["bytes"], got["sha256"]), (len(body), sha(body)))
        # curl does the same handshake on its own.
        got = json.loads(self.curl("-H", "Expect: 100-continue", "-T", self.big_path,
                                   self.url("/continue-curl")))
        self.assertEqual(got["sha256"], sha(self.big))

    def test_h2_upload(self):
        c = H2Client(self.port)
        self.addCleanup(c.close)
        body = self.big[:10 * MIB]
        # No declared length: streamed chunked to the HTTP/1.1 backend.
        headers, resp, _, _ = c.response(c.request("/h2-up", method="POST", body=body))
        self.assertEqual(headers[":status"], "200")
        got = json.loads(resp)
        self.assertEqual((got["bytes"], got["sha256"], got["te"]), (len(body), sha(body), "chunked"))
        # Declared length: passed on.
        headers, resp, _, _ = c.response(c.request(
            "/h2-up-cl", method="POST", body=body, headers=[("content-length", str(len(body)))]))
        self.assertEqual(headers[":status"], "200")
        got = json.loads(resp)
        self.assertEqual((got["bytes"], got["sha256"], got["cl"]), (len(body), sha(body), str(len(body))))

    def test_limit_declared_413(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            s.sendall(b"POST /too-big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1))
            status, head, _ = read_response(s)
        finally:
            s.close()
        self.assertEqual(status, 413)
        self.assertIn(b"connection: close", head.lower())
        self.assertEqual(self.sink.count("/too-big"), 0)
        c = H2Client(self.port)
        self.addCleanup(c.close)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":path", "/too-big-h2"),
                                  (":scheme", "http"), (":authority", "x"),
                                  ("content-length", str(LIMIT + 1))], end_stream=False)
        c.flush()
        headers, _, _, _ = c.response(sid)
        self.assertEqual(headers[":status"], "413")

    def test_limit_mid_stream(self):
        # No declared length: the body streams until it passes the limit, then the
        # gateway answers 413 (no response had started) and drops the upstream request
        # unfinished.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        out = b""
        try:
            s.sendall(b"POST /over HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"100000\r\n" + b"z" * 0x100000 + b"\r\n"
            try:
                for _ in range(LIMIT // 0x100000 + 4):
                    s.sendall(chunk)
            except OSError:
                pass  # the gateway may close once it has answered
            while True:
                try:
                    d = s.recv(65536)
                except OSError:
                    break
                if not d:
                    break
                out += d
        finally:
            s.close()
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])
        # The backend saw the request start and end unfinished.
        self.assertEqual(self.sink.wait_seen("/over"), [False])

    def test_limit_mid_stream_h2(self):
        # HTTP/2 without a declared length: 413 once the body passes the limit.
        c = H2Client(self.port)
        self.addCleanup(c.close)
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, [(":method", "POST"), (":path", "/over-h2"),
                                  (":scheme", "http"), (":authority", "x")], end_stream=False)
        c.flush()
        chunk = b"z" * 16384
        sent = 0
        try:
            while sent <= LIMIT + MIB:
                room = min(c.conn.local_flow_control_window(sid), c.conn.max_outbound_frame_size,
                           len(chunk))
                if room <= 0:
                    c.flush()
                    if not c.pump():
                        break
                    continue
                c.conn.send_data(sid, chunk[:room])
                sent += room
        except h2.exceptions.StreamClosedError:
            pass  # the gateway answered and closed the stream
        c.flush()
        headers, _, _, _ = c.response(sid)
        self.assertEqual(headers.get(":status"), "413")
        self.assertEqual(self.sink.wait_seen("/over-h2"), [False])

    def test_streamed_request_is_not_retried(self):
        # /fail answers 500 and the route retries 500 once: a small body is replayed, a
        # streamed one (past the first buffer) is not.
        before = self.sink.count("/fail/small")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            s.sendall(b"POST /fail/small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            status, _, _ = read_response(s)
            self.assertEqual(status, 500)
            self.assertEqual(self.sink.count("/fail/small") - before, 2)
            body = self.big[:1 * MIB]
            s.sendall(b"POST /fail/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
                      + body)
            status, _, resp = read_response(s)
        finally:
            s.close()
        self.assertEqual(status, 500)
        self.assertEqual(json.loads(resp)["bytes"], len(body))
        self.assertEqual(self.sink.count("/fail/big"), 1)

    def skipped_mirrors(self):
        text = self.gw.metrics()
        # The sample is there, 0 included.
        self.assertRegex(text, r'archway_listener_mirrors_skipped_total\{gateway="default/gw",'
                               r'listener="http",reason="streamed_body"\} \d+')
        return self.gw.metric("archway_listener_mirrors_skipped_total", listener="http",
                              reason="streamed_body")

    def test_mirrors_get_small_bodies_and_skip_streamed_ones(self):
        # Only this test uses the mirrored route: the counter moves with it alone.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            body = self.big[:MIB]
            expected_skips = 0
            skips_before = None
            for path, b, streams in (("/mirrored/small", b"tiny", False),
                                     ("/mirrored/big", body, True),
                                     ("/mirrored/after", b"tiny", False),
                                     ("/mirrored/big2", self.big[:2 * MIB], True)):
                if skips_before is None:
                    skips_before = self.skipped_mirrors()
                s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                          % (path.encode(), len(b)) + b)
                status, _, resp = read_response(s)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(resp)["sha256"], sha(b))
                expected_skips += streams
                # Counted before the request went upstream, so before this response.
                self.assertEqual(self.skipped_mirrors() - skips_before, expected_skips, path)
        finally:
            s.close()
        # The small bodies fit the first buffer: mirrored whole. The streamed ones are
        # not mirrored (the later small one arrived, the big ones never did).
        self.assertEqual(self.mirror.wait_seen("/mirrored/small"), [True])
        self.assertEqual(self.mirror.wait_seen("/mirrored/after"), [True])
        self.assertEqual(self.mirror.count("/mirrored/big"), 0)
        self.assertEqual(self.mirror.count("/mirrored/big2"), 0)
        self.assertEqual(self.skipped_mirrors() - skips_before, 2)

    def test_request_timeout_stops_a_stalled_upload(self):
        # Half the body, then silence: the route's 1 s request timeout answers 504.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            s.sendall(b"POST /timed HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 * MIB)
                      + self.big[:MIB])
            status, _, _ = read_response(s)
        finally:
            s.close()
        self.assertEqual(status, 504)


if __name__ == "__main__":
    unittest.main(verbosity=2)
