#!/usr/bin/env python3
"""TCPRoute relay edge cases, end to end with real TCP peers: the backend ends its
direction first (the client sees the FIN, its own bytes still reach the backend), a client
reset closes the backend connection, a client that closes before sending anything, a
refused endpoint beside a live one (the relay tries the next endpoint: most connections
succeed, none hangs, and bytes the client sent before the relay connected are kept for
the endpoint that answers), many short connections at once (the connection-rate path) with
counters matching, a backend that resets mid-stream, large transfers in each direction to
and from a slow reader (checked by hash, each followed by a half-close the other way), a
long chatty connection, and a graceful stop with relays still open.
Run: /usr/bin/python3 tests/integration/test_tcp_relay_edges.py"""

import hashlib
import os
import random
import shutil
import socket
import struct
import tempfile
import threading
import time
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, StreamEcho, TcpServer, free_port,
                       recv_all, recv_until, service_yaml, tcp_gateway, tcp_route, wait_until)


class FinFirstServer(TcpServer):
    """Sends "X", ends its direction at once (FIN), then counts what the client sends
    until the client's FIN, and records the count."""

    def __init__(self):
        self.counts = []
        self.closed = []  # per connection: how it ended ("eof" or "reset")
        super().__init__(backlog=64)

    def _serve(self, c):
        c.settimeout(TIMEOUT)
        try:
            c.sendall(b"X")
            c.shutdown(socket.SHUT_WR)
            n = 0
            while True:
                data = c.recv(65536)
                if not data:
                    self.closed.append("eof")
                    break
                n += len(data)
            self.counts.append(n)
        except ConnectionResetError:
            self.closed.append("reset")
        except OSError:
            self.closed.append("error")
        finally:
            c.close()


class HoldServer(TcpServer):
    """Accepts and reads until the peer ends (EOF or reset); counts those that ended."""

    def __init__(self):
        self.ended = 0
        super().__init__(backlog=64)

    def _serve(self, c):
        c.settimeout(TIMEOUT * 3)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        finally:
            self.ended += 1
            c.close()


class ResetServer(TcpServer):
    """Reads the client's first bytes, sends "partial", then resets the connection
    (SO_LINGER 0)."""

    def _serve(self, c):
        c.settimeout(TIMEOUT)
        try:
            c.recv(100)
            c.sendall(b"partial")
            time.sleep(0.05)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        finally:
            c.close()


def stream_bytes(seed, n):
    """n pseudo-random bytes from `seed` (the same on both ends of a transfer)."""
    return random.Random(seed).randbytes(n)


class BulkServer(TcpServer):
    """A 19-byte command line "<D|U> <seed:8> <size:7>" (digits). D: sends
    `size` bytes of stream_bytes(seed), then keeps reading until the client's FIN and
    answers nothing (it closes). U: reads slowly (small reads, pauses at first) until the
    client's FIN, then sends the SHA-256 hex digest of what it read and closes."""

    def _serve(self, c):
        c.settimeout(TIMEOUT * 3)
        try:
            cmd = b""
            while len(cmd) < 19:  # exactly the command: the payload may follow at once
                data = c.recv(19 - len(cmd))
                if not data:
                    return
                cmd += data
            mode, seed, size = cmd.split()
            if mode == b"D":
                c.sendall(stream_bytes(int(seed), int(size)))
                c.shutdown(socket.SHUT_WR)  # half-close: the client's direction stays open
                while c.recv(65536):
                    pass
            else:
                h = hashlib.sha256()
                reads = 0
                while True:
                    data = c.recv(4096)
                    if not data:
                        break
                    h.update(data)
                    reads += 1
                    if reads < 200:
                        time.sleep(0.001)  # a slow reader: the relay's writes fill up
                c.sendall(h.hexdigest().encode())
        except (OSError, ValueError):
            pass
        finally:
            c.close()


class TcpRelayEdgesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        cls.fin = FinFirstServer()
        cls.hold = HoldServer()
        cls.echo = StreamEcho("echo")
        cls.reset = ResetServer()
        cls.bulk = BulkServer()
        cls.down_port = free_port()  # nothing listens there
        cls.ports = [free_port() for _ in range(6)]
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write(GATEWAY_CLASS)
            f.write(service_yaml("fin", cls.fin.port))
            f.write(service_yaml("hold", cls.hold.port))
            f.write(service_yaml("echo", cls.echo.port))
            f.write(service_yaml("down", cls.down_port))
            f.write(service_yaml("reset", cls.reset.port))
            f.write(service_yaml("bulk", cls.bulk.port))
            f.write(tcp_gateway(cls.ports))
            f.write(tcp_route("fin", "tcp-0", [("fin", cls.fin.port, 1)]))
            f.write(tcp_route("hold", "tcp-1", [("hold", cls.hold.port, 1)]))
            f.write(tcp_route("half-down", "tcp-2", [("down", cls.down_port, 1),
                                                     ("echo", cls.echo.port, 1)]))
            f.write(tcp_route("echo", "tcp-3", [("echo", cls.echo.port, 1)]))
            f.write(tcp_route("reset", "tcp-4", [("reset", cls.reset.port, 1)]))
            f.write(tcp_route("bulk", "tcp-5", [("bulk", cls.bulk.port, 1)]))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        for b in (cls.fin, cls.hold, cls.echo, cls.reset, cls.bulk):
            b.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def connect(self, port):
        return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

    def test_backend_ends_first(self):
        # The backend's FIN reaches the client (EOF after "X") while the client's direction
        # stays open: everything it sends afterwards still reaches the backend.
        before = len(self.fin.counts)
        s = self.connect(self.ports[0])
        try:
            self.assertEqual(recv_all(s), b"X")
            payload = os.urandom(300000)
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(wait_until(lambda: len(self.fin.counts) > before))
            self.assertEqual(self.fin.counts[before], len(payload))
        finally:
            s.close()

    def test_client_reset_closes_backend(self):
        before = self.hold.ended
        s = self.connect(self.ports[1])
        s.sendall(b"hello")
        self.assertTrue(wait_until(lambda: self.hold.connections > before))
        # SO_LINGER 0: close() sends a reset instead of a FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        self.assertTrue(wait_until(lambda: self.hold.ended > before))

    def test_client_gone_before_sending(self):
        # Connect and close at once, many times: each backend connection ends too.
        before_end = self.hold.ended
        for _ in range(20):
            self.connect(self.ports[1]).close()
        self.assertTrue(wait_until(lambda: self.hold.ended >= before_end + 20))
        # Still serving.
        s = self.connect(self.ports[3])
        self.assertEqual(recv_until(s, b"\n"), b"HELLO echo\n")
        s.close()

    def test_refused_endpoint_is_skipped(self):
        # Half the weight points at a port nothing listens on. The relay tries other
        # endpoints after a refused connect (up to three picks), so nearly every connection
        # reaches the echo server (7/8 on average; without retries it would be 1/2), and a
        # connection that finds no live endpoint is closed, never left hanging.
        served = 0
        for _ in range(40):
            s = self.connect(self.ports[2])
            try:
                got = recv_until(s, b"\n")
            except ConnectionResetError:
                got = b""
            if got == b"HELLO echo\n":
                served += 1
                s.sendall(b"ping")
                self.assertEqual(recv_until(s, b"ping"), b"ping")
            else:
                self.assertEqual(got, b"")  # closed without bytes
            s.close()
        self.assertGreaterEqual(served, 26)

    def test_refused_endpoint_with_early_bytes(self):
        # The client speaks first, before the relay has connected anywhere: its bytes wait
        # in the relay (they are read at accept and tried at once on the new connection)
        # and reach the echo server even when a refused endpoint was tried first.
        served = 0
        for i in range(40):
            s = self.connect(self.ports[2])
            try:
                msg = b"early-%d" % i
                try:
                    s.sendall(msg)
                    s.shutdown(socket.SHUT_WR)
                    got = recv_all(s)
                except OSError:
                    got = b""  # no endpoint answered: the relay closed (reset) at once
                if got:
                    self.assertEqual(got, b"HELLO echo\n" + msg + b"BYE %d\n" % len(msg))
                    served += 1
            finally:
                s.close()
        self.assertGreaterEqual(served, 26)

    def test_many_short_connections(self):
        # The connection-rate path: 200 short connections, 50 at a time, each a full
        # exchange with half-close; the listener counters see every one.
        before = self.gw.metric("archway_listener_connections_total", listener="tcp-3")
        errors = []

        def worker():
            for _ in range(4):
                try:
                    s = self.connect(self.ports[3])
                    if recv_until(s, b"\n") != b"HELLO echo\n":
                        errors.append("greeting")
                    s.sendall(b"abc")
                    s.shutdown(socket.SHUT_WR)
                    if recv_all(s) != b"abcBYE 3\n":
                        errors.append("echo")
                    s.close()
                except OSError as e:
                    errors.append(str(e))

        threads = [threading.Thread(target=worker) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_connections_total", listener="tcp-3") >= before + 200))
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_active_connections", listener="tcp-3") == 0))

    def test_backend_reset_ends_client_connection(self):
        # The backend resets after a few bytes: the client gets those bytes, then its
        # connection ends (EOF or reset) instead of hanging, and the relay is gone.
        for _ in range(5):
            s = self.connect(self.ports[4])
            try:
                s.sendall(b"hello")
                got = b""
                try:
                    while True:
                        data = s.recv(65536)
                        if not data:
                            break
                        got += data
                except ConnectionResetError:
                    pass
                self.assertIn(got, (b"", b"partial"))
            finally:
                s.close()
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_active_connections", listener="tcp-4") == 0))

    def test_large_download_to_slow_reader_then_half_close(self):
        # 8 MiB from the backend (spliced) to a client that reads slowly at first, then the
        # backend's FIN; the client's direction stays open after it.
        size, seed = 8 << 20, 7
        s = self.connect(self.ports[5])
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # fills while it sleeps
            s.sendall(b"D %08d %07d\n" % (seed, size))
            h = hashlib.sha256()
            n = reads = 0
            while True:
                data = s.recv(4096)
                if not data:
                    break
                h.update(data)
                n += len(data)
                reads += 1
                if reads < 200:
                    time.sleep(0.001)
            self.assertEqual(n, size)
            self.assertEqual(h.hexdigest(), hashlib.sha256(stream_bytes(seed, size)).hexdigest())
            s.sendall(b"still open")  # the client's half still reaches the backend
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"")
        finally:
            s.close()

    def test_large_upload_to_slow_reader_then_half_close(self):
        # 8 MiB from the client to a backend that reads slowly at first; the client's FIN
        # reaches the backend only after every byte, and the backend's answer comes back.
        size, seed = 8 << 20, 11
        payload = stream_bytes(seed, size)
        s = self.connect(self.ports[5])
        try:
            s.sendall(b"U %08d %07d\n" % (seed, size))
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s).decode(), hashlib.sha256(payload).hexdigest())
        finally:
            s.close()

    def test_long_chatty_connection(self):
        # Many small round trips on one connection (each a fresh readable edge on both
        # sockets), then a half-close.
        s = self.connect(self.ports[3])
        try:
            self.assertEqual(recv_until(s, b"\n"), b"HELLO echo\n")
            total = 0
            for i in range(500):
                msg = b"message %d;" % i
                s.sendall(msg)
                total += len(msg)
                self.assertEqual(recv_until(s, b";"), msg)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"BYE %d\n" % total)
        finally:
            s.close()

    def test_zz_stop_with_open_relays(self):
        # Open relays (one mid-exchange, one waiting on its backend) neither keep a stop
        # from finishing nor make it crash; the clients see their connections end.
        s = self.connect(self.ports[3])
        self.assertEqual(recv_until(s, b"\n"), b"HELLO echo\n")
        held = self.hold.connections
        s2 = self.connect(self.ports[1])
        s2.sendall(b"x")
        self.assertTrue(wait_until(lambda: self.hold.connections > held))
        failure = self.gw.unclean_stop()
        self.assertFalse(failure, failure)
        s.settimeout(TIMEOUT)
        try:
            self.assertEqual(recv_all(s), b"")
        except ConnectionResetError:
            pass
        s.close()
        s2.close()
        type(self).gw = Archway(self.dir)  # tearDownClass stops it


if __name__ == "__main__":
    unittest.main(verbosity=2)
