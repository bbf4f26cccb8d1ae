#!/usr/bin/env python3
"""Upstream keep-alive pool behaviour of `archway run` against a real backend process that
restarts: every pooled connection to the old process is dead at once (the backend's FINs
arrived while they sat idle), and requests sent right away must all still succeed — a
dead pooled connection is never the client's problem. Also checks that connections are
reused (not one per request) while the backend stays up.
Needs $ARCHWAY_BIN (default: build-asan-ubsan/archway).
Run: /usr/bin/python3 tests/integration/test_upstream_pool.py"""

import os
import shutil
import socket
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from test_http_dataplane import BIN, GATEWAY_CLASS, Archway, free_port, gateway, request, service


class RestartableBackend:
    """HTTP/1.1 keep-alive backend on a fixed port. Answers every request with its
    generation number; restart() closes the listener and every open connection (as a
    process exit would) and listens again on the same port with the next generation."""

    def __init__(self):
        self.port = free_port()
        self.generation = 0
        self.lock = threading.Lock()
        self.conns = []
        self.accepted = 0
        self.listen()

    def listen(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        threading.Thread(target=self.accept_loop, args=(self.sock, self.generation),
                         daemon=True).start()

    def accept_loop(self, lsock, generation):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                self.accepted += 1
            threading.Thread(target=self.serve, args=(c, generation), daemon=True).start()

    def serve(self, c, generation):
        buf = b""
        body = b"generation %d" % generation
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                _, buf = buf.split(b"\r\n\r\n", 1)  # requests here carry no body
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            return
        finally:
            c.close()

    def restart(self):
        with self.lock:
            self.stop_listening()
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []
            self.generation += 1
        self.listen()

    def stop_listening(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the
        # port bound until that accept returned.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def close(self):
        with self.lock:
            self.stop_listening()
            for c in self.conns:
                c.close()


ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: pool, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: restarting, port: 80}]
---
"""


class UpstreamPoolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.backend = RestartableBackend()
        cls.dir = tempfile.mkdtemp()
        cls.port = free_port()
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write(GATEWAY_CLASS + gateway("gw", [("http", cls.port)]))
            f.write(service("restarting", [(cls.backend.port, True)]))
            f.write(ROUTE)
        cls.gw = Archway(cls.dir, ["--workers", "1"])

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        cls.backend.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, cls.gw.output()

    def fill_pool(self, parallel):
        # Concurrent requests leave `parallel` idle connections in the pool.
        with ThreadPoolExecutor(parallel) as ex:
            results = list(ex.map(lambda _: request(self.port, "GET", "/fill"), range(parallel * 4)))
        for status, _, body in results:
            self.assertEqual(status, 200, body)

    def test_connections_are_reused(self):
        self.fill_pool(4)
        before = self.backend.accepted
        for _ in range(50):
            status, _, _ = request(self.port, "GET", "/seq")
            self.assertEqual(status, 200)
        self.assertLessEqual(self.backend.accepted - before, 2, "one connection per request")

    def test_backend_restart_with_full_pool(self):
        for method in ("GET", "POST"):
            with self.subTest(method=method):
                self.fill_pool(8)
                gen = self.backend.generation
                self.backend.restart()
                time.sleep(0.05)  # the FINs reach the gateway; the pool still holds them
                for i in range(20):
                    status, _, body = request(self.port, method, f"/after-restart/{i}")
                    self.assertEqual(status, 200, body)
                    self.assertEqual(body, b"generation %d" % (gen + 1))


if __name__ == "__main__":
    unittest.main()
