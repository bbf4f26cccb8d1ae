#!/usr/bin/python3
"""Connection limits of `archway run`, with the run flags that set them small:
--idle-timeout closes an idle keep-alive client connection, --upstream-idle-timeout closes
an idle pooled backend connection, --max-connections refuses connections over the limit
while the existing ones keep working. Needs $ARCHWAY_BIN (default: build-asan-ubsan/archway).
No assertion on timing: each wait has a generous deadline."""

import os
import re
import shutil
import socket
import socketserver
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN  # noqa: E402
WAIT_S = 30


class TrackingHandler(socketserver.StreamRequestHandler):
    """HTTP/1.1 keep-alive backend that records when each connection opens and closes."""

    def handle(self):
        srv = self.server
        with srv.lock:
            srv.opened += 1
        try:
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                length = 0
                while True:
                    h = self.rfile.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":", 1)[1])
                if length:
                    self.rfile.read(length)
                body = b"ok\n"
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with srv.lock:
                srv.closed += 1


class TrackingBackend(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), TrackingHandler)
        self.lock = threading.Lock()
        self.opened = 0
        self.closed = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def counts(self):
        with self.lock:
            return self.opened, self.closed


def gateway_manifests(port, backend_port):
    return [manifests.http_gateway(port), manifests.service("be", backend_port),
            manifests.http_route("main", [manifests.prefix_rule(None, "be")])]


def exchange(sock, path="/"):
    """One keep-alive GET on an open socket; returns the status code or None if closed."""
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
    need = int(m.group(1)) if m else 0
    while len(rest) < need:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return int(head.split(b" ", 2)[1])


def closed_by_peer(sock, timeout):
    """True when the peer closes (EOF or reset) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Gateway:
    def __init__(self, workdir, flags):
        self.backend = TrackingBackend()
        self.port = procs.free_port()
        self.admin_port = procs.free_port()
        self.dir = tempfile.mkdtemp(dir=workdir)
        manifests.write(os.path.join(self.dir, "all.yaml"),
                        gateway_manifests(self.port, self.backend.server_address[1]))
        try:
            self.archway = procs.Archway(self.dir, flags, workers=1, admin_port=self.admin_port,
                                         log_path=os.path.join(workdir, "archway-%d.log" % self.port),
                                         ready_timeout=WAIT_S)
        except RuntimeError:
            self.close_backend()
            raise
        # The route is served once the first snapshot is in.
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if exchange(s) == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        _, out = self.stop()
        raise RuntimeError("route never served: " + out)

    def metrics(self):
        return self.archway.metrics()

    def close_backend(self):
        self.backend.shutdown()
        self.backend.server_close()

    def stop(self):
        rc = self.archway.stop()
        out = self.archway.output()
        self.close_backend()
        return rc, out


class ConnectionLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.workdir = tempfile.mkdtemp(prefix="archway-limits-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def start(self, *flags):
        gw = Gateway(self.workdir, list(flags))

        def check_stop():
            rc, out = gw.stop()
            self.assertEqual(rc, 0, out[-3000:])
            self.assertFalse(procs.sanitizer_report(out), out[-3000:])

        self.addCleanup(check_stop)
        return gw

    def test_idle_keepalive_connection_is_closed(self):
        gw = self.start("--idle-timeout", "1s")
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            self.assertEqual(exchange(s), 200)
            # No further request: the gateway closes the idle connection.
            self.assertTrue(closed_by_peer(s, WAIT_S), "idle connection never closed")
        # New connections are still served.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            self.assertEqual(exchange(s), 200)

    def test_idle_pooled_upstream_connection_is_closed(self):
        gw = self.start("--upstream-idle-timeout", "1s")
        opened, _ = gw.backend.counts()
        self.assertGreaterEqual(opened, 1)
        # Every backend connection the gateway opened gets closed once idle in its pool.
        deadline = time.time() + WAIT_S
        while time.time() < deadline and gw.backend.counts()[1] < gw.backend.counts()[0]:
            time.sleep(0.1)
        opened, closed = gw.backend.counts()
        self.assertEqual(closed, opened, "pooled connections not closed when idle")
        # The next request opens a new one and is served.
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            self.assertEqual(exchange(s), 200)
        self.assertEqual(gw.backend.counts()[0], opened + 1)

    def test_connections_over_the_limit_are_refused(self):
        gw = self.start("--max-connections", "2")

        def served_connection():
            # The start-up probes' connections may not be reaped yet: retry until served.
            deadline = time.time() + WAIT_S
            while time.time() < deadline:
                s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
                try:
                    if exchange(s) == 200:
                        return s
                except OSError:
                    pass
                s.close()
                time.sleep(0.1)
            self.fail("no connection served")

        first = served_connection()
        second = served_connection()
        try:
            # A third connection is accepted by the kernel, then closed without an answer.
            with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as third:
                try:
                    third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                except OSError:
                    pass
                self.assertTrue(closed_by_peer(third, WAIT_S), "over-limit connection served")
            self.assertRegex(gw.metrics(), r"archway_downstream_connections_rejected_total [1-9]")
            # The existing connections keep working.
            self.assertEqual(exchange(first), 200)
            self.assertEqual(exchange(second), 200)
        finally:
            first.close()
        # Once one is gone, a new connection is served again (after the close is noticed).
        deadline = time.time() + WAIT_S
        served = False
        while not served and time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
                    served = exchange(s) == 200
            except OSError:
                pass
            if not served:
                time.sleep(0.1)
        second.close()
        self.assertTrue(served)
        self.assertTrue(gw.archway.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
