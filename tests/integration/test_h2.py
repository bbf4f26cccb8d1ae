#!/usr/bin/env python3
"""End-to-end HTTP/2 tests of `archway run`: h2c with prior knowledge downstream (Python
`h2`, nghttp, h2load), h2c upstream to a Service whose appProtocol is kubernetes.io/h2c,
HTTP/1.1 <-> HTTP/2 translation both ways, and the abuse defences (Rapid Reset,
CONTINUATION flood, oversize header lists) and graceful GOAWAY. Needs $ARCHWAY_BIN
(default build-asan-ubsan/archway). Run: /usr/bin/python3 tests/integration/test_h2.py"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import h2.config
import hpack
import h2.connection
import h2.events
import h2.errors
import hyperframe.frame

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN, ECHO, free_port  # noqa: E402


def start_echo(*args):
    """Starts tests/support/echo.py; returns (process, ready info of the first pod)."""
    proc = subprocess.Popen([sys.executable, ECHO, *args, "--exit-on-stdin-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError("echo server did not start: %r" % line)
    info = json.loads(line[len("READY "):])
    return proc, info


H2C = "kubernetes.io/h2c"


def pod_ports(info):
    pods = info.get("pods", info) if isinstance(info, dict) else info
    return pods[0]["ports"] if isinstance(pods, list) else pods


class H2Client:
    """A prior-knowledge h2c client on python3-h2 that records every event."""

    def __init__(self, port, timeout=10, settings=None, tls=None, server_hostname=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:  # an ssl.SSLContext offering ALPN "h2"
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname)
            self.alpn = self.sock.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self):
        """Reads once; returns False when the server closed."""
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        try:
            evs = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return False
        for ev in evs:
            if isinstance(ev, h2.events.DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.events.extend(evs)
        try:
            self.flush()
        except OSError:
            pass
        return True

    def request(self, path, method="GET", authority="example.com", headers=(), body=None,
                scheme="http"):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":path", path), (":scheme", scheme),
                (":authority", authority)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        if body is not None:
            self.send_body(sid, body)
        self.flush()
        return sid

    def send_body(self, sid, body):
        """Sends `body` in frames that fit the peer's flow-control windows and frame size,
        reading (WINDOW_UPDATEs) whenever a window is shut."""
        if not body:
            self.conn.send_data(sid, b"", end_stream=True)
            return
        pos = 0
        while pos < len(body):
            room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
            if room <= 0:
                self.flush()
                if not self.pump():
                    raise EOFError("connection closed while sending the body of stream %d" % sid)
                continue
            chunk = body[pos:pos + room]
            pos += len(chunk)
            self.conn.send_data(sid, chunk, end_stream=pos == len(body))

    def response(self, sid):
        """Waits for stream `sid` to end; returns (headers dict, body, trailers dict, reset)."""
        while True:
            headers, body, trailers, done, reset = {}, b"", {}, False, None
            for ev in self.events:
                if getattr(ev, "stream_id", None) != sid:
                    continue
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    done = True
                elif isinstance(ev, h2.events.StreamReset):
                    done, reset = True, ev.error_code
            if done:
                return headers, body, trailers, reset
            if not self.pump():
                raise EOFError("connection closed before stream %d ended" % sid)

    def goaway(self):
        for ev in self.events:
            if isinstance(ev, h2.events.ConnectionTerminated):
                return ev
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RawH2Client:
    """A frame-level h2c client (hyperframe + hpack) for graceful shutdown: python-h2's state
    machine treats a received GOAWAY as the end of the connection and refuses the frames
    that follow, while RFC 9113 6.8 lets streams up to last_stream_id still complete."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buf = b""
        self.next_sid = 1
        self.streams = {}  # sid -> {"headers": dict, "body": bytes, "done": bool, "reset": code}
        self.goaway = None
        self.closed = False
        self.sock.sendall(h2c_preface() + hyperframe.frame.SettingsFrame(0).serialize())

    def request(self, path, authority="example.com"):
        sid = self.next_sid
        self.next_sid += 2
        hf = hyperframe.frame.HeadersFrame(sid)
        hf.data = self.encoder.encode([(":method", "GET"), (":path", path), (":scheme", "http"),
                                       (":authority", authority)])
        hf.flags.add("END_HEADERS")
        hf.flags.add("END_STREAM")
        self.streams[sid] = {"headers": {}, "body": b"", "done": False, "reset": None}
        self.sock.sendall(hf.serialize())
        return sid

    def _read_frame(self):
        while True:
            if len(self.buf) >= 9:
                frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    frame.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return frame
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def pump(self):
        """Handles one frame; False when the server closed."""
        f = self._read_frame()
        if f is None:
            return False
        st = self.streams.get(f.stream_id)
        if isinstance(f, hyperframe.frame.SettingsFrame) and "ACK" not in f.flags:
            self.sock.sendall(hyperframe.frame.SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, hyperframe.frame.PingFrame) and "ACK" not in f.flags:
            self.sock.sendall(hyperframe.frame.PingFrame(0, f.opaque_data, flags=["ACK"]).serialize())
        elif isinstance(f, hyperframe.frame.GoAwayFrame):
            self.goaway = f
        elif isinstance(f, hyperframe.frame.HeadersFrame):
            headers = dict(self.decoder.decode(f.data))  # always decode: HPACK state
            if st is not None and not st["headers"]:
                st["headers"] = headers
        elif isinstance(f, hyperframe.frame.DataFrame) and st is not None:
            st["body"] += f.data
        elif isinstance(f, hyperframe.frame.RstStreamFrame) and st is not None:
            st["done"], st["reset"] = True, f.error_code
        if st is not None and "END_STREAM" in getattr(f, "flags", ()):
            st["done"] = True
        return True

    def response(self, sid):
        """Waits for stream `sid` to end; returns (headers dict, body, reset code or None)."""
        st = self.streams[sid]
        while not st["done"]:
            if not self.pump():
                raise EOFError("connection closed before stream %d ended" % sid)
        return st["headers"], st["body"], st["reset"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def h2c_preface():
    return b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def routes_yaml():
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: main, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /h1}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: X-Added, value: by-gateway}]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Resp, value: h1-route}]
    backendRefs: [{name: echo-h1, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /h2c}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Resp, value: h2c-route}]
    backendRefs: [{name: echo-h2c, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /down}}]
    backendRefs: [{name: echo-down, port: 80}]
"""


class H2Test(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("archway binary not built: " + BIN)
        cls.echo, info = start_echo("--pod", "echo", "--namespace", "default", "--kind", "http",
                                    "--http-port", "0", "--h2c-port", "0")
        ports = pod_ports(info)
        cls.dir = tempfile.mkdtemp(prefix="archway-h2-")
        cls.port = free_port()
        down = free_port()  # nothing listens there
        manifests.write(os.path.join(cls.dir, "all.yaml"),
                        manifests.http_gateway(cls.port),
                        manifests.service("echo-h1", ports["http_port"]),
                        manifests.service("echo-h2c", ports["h2c_port"], app_protocol=H2C),
                        manifests.service("echo-down", down, app_protocol=H2C),
                        routes_yaml())
        cls.gw = procs.Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        cls.echo.stdin.close()
        cls.echo.terminate()
        cls.echo.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("archway exited with %s:\n%s" % (rc, cls.gw.output()))

    def client(self, **kw):
        c = H2Client(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def test_prior_knowledge_to_http1_backend(self):
        c = self.client()
        sid = c.request("/h1/path?q=1", headers=[("x-custom", "v")])
        headers, body, _, reset = c.response(sid)
        self.assertIsNone(reset)
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(headers.get("x-resp"), "h1-route")
        echo = json.loads(body)
        self.assertEqual(echo["proto"], "HTTP/1.1")
        self.assertEqual(echo["path"], "/h1/path?q=1")
        self.assertEqual(echo["host"], "example.com")
        self.assertEqual(echo["headers"].get("X-Custom"), ["v"])
        self.assertEqual(echo["headers"].get("X-Added"), ["by-gateway"])

    def test_h2c_backend_by_app_protocol(self):
        c = self.client()
        sid = c.request("/h2c/x", authority="h2c.example")
        headers, body, _, _ = c.response(sid)
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(headers.get("x-resp"), "h2c-route")
        echo = json.loads(body)
        self.assertEqual(echo["proto"], "HTTP/2.0")
        self.assertEqual(echo["host"], "h2c.example")

    def test_http1_client_to_h2c_backend(self):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/h2c/from-h1",
                                     headers={"Host": "one.example"})
        with urllib.request.urlopen(req, timeout=10) as r:
            self.assertEqual(r.status, 200)
            echo = json.loads(r.read())
        self.assertEqual(echo["proto"], "HTTP/2.0")
        self.assertEqual(echo["host"], "one.example")
        self.assertEqual(echo["path"], "/h2c/from-h1")

    def test_post_body_both_ways(self):
        c = self.client()
        body = b"x" * 200000  # several windows and frames: streamed, not buffered
        # The declared length travels with the streamed body (without one, an h2 upstream
        # gets none: see test_streaming.py).
        sid = c.request("/h2c/post", method="POST", body=body,
                        headers=[("content-type", "application/octet-stream"),
                                 ("content-length", str(len(body)))])
        headers, resp, _, _ = c.response(sid)
        self.assertEqual(headers[":status"], "200")
        echo = json.loads(resp)
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["headers"].get("Content-Length"), [str(len(body))])

    def test_http1_upload_streams_to_h2c_backend(self):
        # An HTTP/1.1 chunked upload past the first buffer, to an h2c backend: the body is
        # pumped into the upstream stream while the gateway waits for the response.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=20)
        try:
            s.sendall(b"POST /h2c/up HTTP/1.1\r\nHost: example.com\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(8):
                s.sendall(b"20000\r\n" + b"u" * 0x20000 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(65536)
                self.assertTrue(d, "closed before a response")
                buf += d
        finally:
            s.close()
        self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf[:200])

    def test_many_concurrent_streams(self):
        c = self.client()
        sids = [c.request("/h1/%d" % i) for i in range(60)]
        for i, sid in enumerate(sids):
            headers, body, _, _ = c.response(sid)
            self.assertEqual(headers[":status"], "200")
            self.assertEqual(json.loads(body)["path"], "/h1/%d" % i)

    def test_unmatched_and_unavailable(self):
        c = self.client()
        headers, _, _, _ = c.response(c.request("/nothing-here"))
        self.assertEqual(headers[":status"], "404")
        # An h2c backend that refuses the connection: 502, as for an HTTP/1.1 backend
        # (503 is for a backend without ready endpoints), over either downstream protocol.
        headers, _, _, _ = c.response(c.request("/down"))
        self.assertEqual(headers[":status"], "502")
        buf = procs.raw(
            self.port, b"GET /down HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        )
        self.assertTrue(buf.startswith(b"HTTP/1.1 502"), buf[:200])

    def test_authority_with_userinfo_or_odd_characters_is_400(self):
        # nghttp2 lets "@" and the like through; the HTTP/1.1 codec refuses them in Host,
        # and both codecs must hand routing and backends the same kind of names.
        c = self.client()
        headers, _, _, _ = c.response(c.request("/h1/x", authority="user@example.com"))
        self.assertEqual(headers[":status"], "400")
        for authority in ("exa\"mple.com", "a{b}.example"):
            # nghttp2 itself resets some of these (PROTOCOL_ERROR); none may reach a backend.
            headers, _, _, reset = c.response(c.request("/h1/x", authority=authority))
            self.assertTrue(reset is not None or headers.get(":status") == "400",
                            (authority, headers, reset))
        headers, body, _, _ = c.response(c.request("/h1/x", authority="Example.COM:8080"))
        self.assertEqual(headers[":status"], "200")

    def test_nghttp_client(self):
        if not shutil.which("nghttp"):
            self.skipTest("nghttp not installed")
        out = subprocess.run(["nghttp", "-v", f"http://127.0.0.1:{self.port}/h2c/nghttp"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(":status: 200", out.stdout)
        self.assertIn('"proto": "HTTP/2.0"', out.stdout.replace('"proto":"', '"proto": "'))

    def test_h2load_all_succeed(self):
        if not shutil.which("h2load"):
            self.skipTest("h2load not installed")
        out = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "20",
                              f"http://127.0.0.1:{self.port}/h1/load"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("400 succeeded, 0 failed, 0 errored", out.stdout)
        self.assertIn("status codes: 400 2xx", out.stdout)

    def test_rapid_reset_gets_goaway_and_gateway_stays_up(self):
        c = self.client()
        try:
            for _ in range(600):
                sid = c.request("/h1/reset")
                c.conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
            c.flush()
        except OSError:
            pass  # the gateway may close the connection before the whole flood was written
        deadline = time.time() + 20
        while not c.goaway() and not c.closed and time.time() < deadline:
            c.pump()
        ev = c.goaway()
        self.assertIsNotNone(ev, "no GOAWAY after a reset flood")
        self.assertEqual(ev.error_code, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
        self.assertTrue(self.gw.alive())
        # A well-behaved client is still served.
        c2 = self.client()
        headers, _, _, _ = c2.response(c2.request("/h1/after-flood"))
        self.assertEqual(headers[":status"], "200")

    def test_oversize_header_list_rejected(self):
        c = self.client()
        big = [("x-big-%d" % i, "v" * 1000) for i in range(90)]  # ~93 KB > 60 KB budget
        sid = c.request("/h1/big", headers=big)
        headers, _, _, reset = c.response(sid)
        self.assertEqual(headers.get(":status"), "431")
        # The connection stays usable.
        headers, _, _, _ = c.response(c.request("/h1/ok"))
        self.assertEqual(headers[":status"], "200")

    def test_continuation_flood_closes_connection(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + hyperframe.frame.SettingsFrame(0).serialize())
        hf = hyperframe.frame.HeadersFrame(1)
        hf.data = b"\x82\x84\x86"  # :method GET, :path /, :scheme http (static table)
        hf.flags.add("END_STREAM")
        frames = [hf.serialize()]
        for _ in range(200):
            cf = hyperframe.frame.ContinuationFrame(1)
            cf.data = b"\x40\x01a\x01b"  # literal header a: b
            frames.append(cf.serialize())
        try:
            s.sendall(b"".join(frames))
        except OSError:
            pass
        got = b""
        closed = False
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        self.assertTrue(closed, "connection still open after a CONTINUATION flood")
        # A GOAWAY frame (type 7) was sent before closing.
        self.assertIn(b"\x07", self._frame_types(got))
        self.assertTrue(self.gw.alive())

    @staticmethod
    def _frame_types(data):
        types = bytearray()
        i = 0
        while i + 9 <= len(data):
            length = int.from_bytes(data[i:i + 3], "big")
            types.append(data[i + 3])
            i += 9 + length
        return bytes(types)


class H2GracefulStopTest(unittest.TestCase):
    def test_sigterm_sends_goaway_and_finishes_streams(self):
        if not os.path.exists(BIN):
            self.skipTest("archway binary not built: " + BIN)
        echo, info = start_echo("--pod", "echo", "--namespace", "default", "--kind", "http",
                                "--http-port", "0")
        d = tempfile.mkdtemp(prefix="archway-h2-stop-")
        try:
            port = free_port()
            manifests.write(os.path.join(d, "all.yaml"), manifests.http_gateway(port),
                            manifests.service("echo-h1", pod_ports(info)["http_port"]),
                            routes_yaml())
            gw = procs.Archway(d)
            c = RawH2Client(port)
            headers, _, _ = c.response(c.request("/h1/first"))
            self.assertEqual(headers[":status"], "200")
            # In flight while the stop begins: the echo delays its answer.
            sid = c.request("/h1/slow?delay=1s")
            time.sleep(0.3)
            gw.proc.send_signal(signal.SIGTERM)
            headers, body, reset = c.response(sid)
            self.assertIsNone(reset)
            self.assertEqual(headers[":status"], "200")
            self.assertEqual(json.loads(body)["path"], "/h1/slow?delay=1s")
            deadline = time.time() + 15
            while not c.goaway and not c.closed and time.time() < deadline:
                c.pump()
            ev = c.goaway
            self.assertIsNotNone(ev, "no GOAWAY on graceful stop")
            self.assertEqual(ev.error_code, h2.errors.ErrorCodes.NO_ERROR)
            self.assertGreaterEqual(ev.last_stream_id, sid)
            # After the last stream the gateway closes the connection by itself.
            while not c.closed and time.time() < deadline:
                c.pump()
            self.assertTrue(c.closed)
            c.close()
            self.assertEqual(gw.stop(), 0, gw.output())
        finally:
            echo.stdin.close()
            echo.terminate()
            echo.wait()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
