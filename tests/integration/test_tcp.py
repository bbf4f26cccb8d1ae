#!/usr/bin/env python3
"""End-to-end TCPRoute tests of `archway run` with real TCP peers: echo through the
gateway, half-close (the client's FIN reaches the backend, the backend's answer still
comes back), megabytes both ways (the spliced bulk path), only the oldest route serves, weighted backends, byte counters in /metrics,
a connection refused by a down backend, listeners added/removed live without
disturbing an open relay, and a TCP port whose listener turns into HTTP (the same
listening socket then serves HTTP, and back). Run: /usr/bin/python3 tests/integration/test_tcp.py"""

import os
import shutil
import socket
import tempfile
import threading
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, StreamEcho, free_port, recv_all,
                       recv_until, service_yaml, tcp_gateway, tcp_route, wait_until)


class TcpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        cls.b1, cls.b2, cls.b3 = StreamEcho("one"), StreamEcho("two"), StreamEcho("three")
        cls.down_port = free_port()  # nothing listens there
        cls.ports = [free_port() for _ in range(3)]
        cls.extra_port = free_port()
        with open(os.path.join(cls.dir, "backends.yaml"), "w") as f:
            f.write(GATEWAY_CLASS)
            for name, b in (("one", cls.b1), ("two", cls.b2), ("three", cls.b3)):
                f.write(service_yaml(name, b.port))
            f.write(service_yaml("down", cls.down_port))
        cls.routes = os.path.join(cls.dir, "routes.yaml")
        with open(cls.routes, "w") as f:
            f.write(cls.routes_yaml())
        cls.gw_file = os.path.join(cls.dir, "gateway.yaml")
        with open(cls.gw_file, "w") as f:
            f.write(tcp_gateway(cls.ports))
        cls.gw = Archway(cls.dir)

    @classmethod
    def routes_yaml(cls, extra=False):
        y = (tcp_route("old", "tcp-0", [("one", cls.b1.port, 1)], "2024-01-01T00:00:00Z") +
             tcp_route("new", "tcp-0", [("two", cls.b2.port, 1)], "2025-01-01T00:00:00Z") +
             tcp_route("split", "tcp-1", [("one", cls.b1.port, 1), ("two", cls.b2.port, 3),
                                          ("three", cls.b3.port, 0)], "2024-01-01T00:00:00Z") +
             tcp_route("dead", "tcp-2", [("down", cls.down_port, 1)], "2024-01-01T00:00:00Z"))
        if extra:
            y += tcp_route("extra", "tcp-3", [("three", cls.b3.port, 1)], "2024-01-01T00:00:00Z")
        return y

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        for b in (cls.b1, cls.b2, cls.b3):
            b.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def connect(self, port):
        return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

    def test_echo_and_half_close(self):
        s = self.connect(self.ports[0])
        try:
            self.assertEqual(recv_until(s, b"\n"), b"HELLO one\n")  # oldest route only
            payload = os.urandom(200000)
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(65536)
                self.assertTrue(chunk, "closed early")
                got += chunk
            self.assertEqual(got, payload)
            # Our FIN goes through; the backend's reply after it still comes back.
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), f"BYE {len(payload)}\n".encode())
        finally:
            s.close()

    def test_bulk_both_ways_spliced(self):
        # Megabytes each way at full speed: after the first full relay buffer a plain-TCP
        # direction is moved by splice(2); every byte must arrive, in order, both ways,
        # with half-close still honoured and the byte counters still counting.
        before_in = self.gw.metric("archway_listener_received_bytes_total", listener="tcp-0")
        s = self.connect(self.ports[0])
        try:
            self.assertEqual(recv_until(s, b"\n"), b"HELLO one\n")
            payload = os.urandom(6 * 1024 * 1024)
            got = bytearray()

            def reader():
                while len(got) < len(payload):
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        return
                    got.extend(chunk)

            t = threading.Thread(target=reader)
            t.start()
            view = memoryview(payload)
            for off in range(0, len(payload), 100000):  # odd-sized writes
                s.sendall(view[off:off + 100000])
            t.join(TIMEOUT * 4)
            self.assertFalse(t.is_alive(), "echo stalled")
            self.assertEqual(len(got), len(payload))
            self.assertTrue(bytes(got) == payload, "echoed bytes differ")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), f"BYE {len(payload)}\n".encode())
        finally:
            s.close()
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_received_bytes_total", listener="tcp-0") >= before_in + len(payload)))

    def test_oldest_route_only(self):
        for _ in range(10):
            s = self.connect(self.ports[0])
            self.assertEqual(recv_until(s, b"\n"), b"HELLO one\n")
            s.close()

    def test_weighted_backends(self):
        seen = {}
        for _ in range(40):
            s = self.connect(self.ports[1])
            line = recv_until(s, b"\n").decode().strip()
            s.close()
            seen[line] = seen.get(line, 0) + 1
        self.assertNotIn("HELLO three", seen)  # weight 0 never chosen
        self.assertGreater(seen.get("HELLO two", 0), seen.get("HELLO one", 0))
        self.assertIn("HELLO one", seen)

    def test_down_backend_closes(self):
        s = self.connect(self.ports[2])
        try:
            try:
                self.assertEqual(s.recv(10), b"")
            except ConnectionResetError:
                pass
        finally:
            s.close()

    def test_metrics(self):
        s = self.connect(self.ports[0])
        recv_until(s, b"\n")
        s.sendall(b"x" * 1000)
        recv_until(s, b"x" * 1000)
        s.close()
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_received_bytes_total", listener="tcp-0") >= 1000))
        self.assertGreaterEqual(self.gw.metric("archway_listener_sent_bytes_total",
                                               listener="tcp-0"), 1000)
        self.assertGreater(self.gw.metric("archway_listener_connections_total", listener="tcp-0"), 0)

    def test_zz_live_listener_change(self):
        # An open relay on tcp-0 survives adding and then removing another listener.
        s = self.connect(self.ports[0])
        self.assertEqual(recv_until(s, b"\n"), b"HELLO one\n")
        with open(self.gw_file + ".tmp", "w") as f:
            f.write(tcp_gateway(self.ports + [self.extra_port]))
        with open(self.routes + ".tmp", "w") as f:
            f.write(self.routes_yaml(extra=True))
        os.rename(self.routes + ".tmp", self.routes)
        os.rename(self.gw_file + ".tmp", self.gw_file)

        def extra_serves():
            c = self.connect(self.extra_port)
            try:
                return recv_until(c, b"\n") == b"HELLO three\n"
            finally:
                c.close()
        self.assertTrue(wait_until(extra_serves), self.gw.output()[-2000:])
        s.sendall(b"still here")
        self.assertEqual(recv_until(s, b"here"), b"still here")
        with open(self.gw_file + ".tmp", "w") as f:
            f.write(tcp_gateway(self.ports))
        os.rename(self.gw_file + ".tmp", self.gw_file)

        def extra_gone():
            try:
                c = self.connect(self.extra_port)
            except ConnectionRefusedError:
                return True
            c.close()
            return False
        self.assertTrue(wait_until(extra_gone))
        s.sendall(b"and now")
        self.assertEqual(recv_until(s, b"now"), b"and now")
        s.close()

    def test_zzz_tcp_port_turns_http_and_back(self):
        # The listening socket stays open across a protocol change of its listener: the
        # connections it accepts then go to HTTP (no route: 404), then to the relay again.
        def gateway(http):
            y = tcp_gateway(self.ports)
            if http:
                y = y.replace("{name: tcp-2, protocol: TCP, port: %d, allowedRoutes: "
                              "{kinds: [{kind: TCPRoute}]}}" % self.ports[2],
                              "{name: web, protocol: HTTP, port: %d}" % self.ports[2])
                self.assertIn("name: web", y)
            with open(self.gw_file + ".tmp", "w") as f:
                f.write(y)
            os.rename(self.gw_file + ".tmp", self.gw_file)

        def http_status():
            c = self.connect(self.ports[2])
            try:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return recv_all(c)[:12]
            except ConnectionResetError:
                return b""
            finally:
                c.close()

        gateway(http=True)
        self.assertTrue(wait_until(lambda: http_status() == b"HTTP/1.1 404"),
                        self.gw.output()[-2000:])
        gateway(http=False)
        # tcp-2 relays to a port nothing listens on: the connection is closed without bytes.
        self.assertTrue(wait_until(lambda: http_status() == b""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
