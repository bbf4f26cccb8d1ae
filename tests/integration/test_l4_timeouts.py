#!/usr/bin/env python3
"""Idle timeouts of the L4 relays, set small with their `archway run` flags:
--tcp-idle-timeout closes a relayed TCP stream (plain TCPRoute relay and the TLS-terminating
relay) that carried no bytes for that long, on both sides, while a stream that keeps
trafficking stays open; --udp-idle-timeout ends an idle UDP session (the next datagram
starts a new one) while a busy session is kept. Each wait has a generous deadline; the
only timing is the traffic pattern (a message every 0.2 s against a 1 s timeout).
Run: /usr/bin/python3 tests/integration/test_l4_timeouts.py"""

import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, TrackingEcho, certs, client_context,
                       free_port, secret_yaml, service_yaml, tcp_route, wait_until)

IDLE_TIMEOUT = "1s"
BUSY_FOR_S = 3.0  # three idle timeouts of traffic
BUSY_EVERY_S = 0.2


class PortEcho:
    """UDP: answers each datagram with the source port it came from (the gateway's upstream
    socket of that session)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                _, addr = self.sock.recvfrom(65536)
                self.sock.sendto(str(addr[1]).encode(), addr)
            except OSError:
                return

    def close(self):
        self.sock.close()


def closed_by_peer(sock, timeout):
    """True when the peer closes (EOF, reset, TLS EOF) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def echo_once(sock, payload):
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        data = sock.recv(65536)
        if not data:
            return got
        got += data
    return got


class L4TimeoutsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        d = os.path.join(cls.dir, "certs")
        os.mkdir(d)
        cls.ca, ca_key = certs.make_ca(d, "ca")
        term = certs.make_leaf(d, "term", ["term.example"], ["serverAuth"], ca=(cls.ca, ca_key))
        cls.tcp_backend = TrackingEcho()
        cls.tls_backend = TrackingEcho()
        cls.udp_backend = PortEcho()
        cls.p_tcp, cls.p_tls = free_port(), free_port()
        cls.p_udp = free_port(udp=True)
        y = [GATEWAY_CLASS, secret_yaml("cert-term", *term),
             service_yaml("tcp-be", cls.tcp_backend.port),
             service_yaml("tls-be", cls.tls_backend.port),
             service_yaml("udp-be", cls.udp_backend.port, protocol="UDP")]
        y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: tcp-0, protocol: TCP, port: {cls.p_tcp}, allowedRoutes: {{kinds: [{{kind: TCPRoute}}]}}}}
  - name: term
    protocol: TLS
    port: {cls.p_tls}
    hostname: term.example
    tls: {{mode: Terminate, certificateRefs: [{{name: cert-term}}]}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - {{name: udp, protocol: UDP, port: {cls.p_udp}, allowedRoutes: {{kinds: [{{kind: UDPRoute}}]}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: term, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: term}}]
  hostnames: [term.example]
  rules: [{{backendRefs: [{{name: tls-be, port: {cls.tls_backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {{name: udp, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: udp}}]
  rules: [{{backendRefs: [{{name: udp-be, port: {cls.udp_backend.port}}}]}}]
---
""")
        y.append(tcp_route("tcp", "tcp-0", [("tcp-be", cls.tcp_backend.port, 1)]))
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir, ["--tcp-idle-timeout", IDLE_TIMEOUT,
                                   "--udp-idle-timeout", IDLE_TIMEOUT], workers=1)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.tcp_backend.close()
        cls.tls_backend.close()
        cls.udp_backend.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def connect_tcp(self):
        return socket.create_connection(("127.0.0.1", self.p_tcp), timeout=TIMEOUT)

    def connect_tls(self):
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        return client_context(self.ca).wrap_socket(raw, server_hostname="term.example")

    def check_idle_stream_closed(self, connect, backend):
        ended = backend.ended
        idle, busy = connect(), connect()
        try:
            self.assertEqual(echo_once(idle, b"idle"), b"idle")
            self.assertEqual(echo_once(busy, b"busy"), b"busy")
            # The busy stream keeps trafficking for several idle timeouts: never cut.
            end = time.monotonic() + BUSY_FOR_S
            i = 0
            while time.monotonic() < end:
                msg = b"ping %d;" % i
                self.assertEqual(echo_once(busy, msg), msg, "busy relayed stream was closed")
                i += 1
                time.sleep(BUSY_EVERY_S)
            # The idle one was closed towards the client ...
            self.assertTrue(closed_by_peer(idle, TIMEOUT), "idle relayed stream not closed")
            # ... and towards the backend, while the busy one is still open there.
            self.assertTrue(wait_until(lambda: backend.ended >= ended + 1, timeout=TIMEOUT),
                            "backend side of the idle stream not closed")
            self.assertEqual(echo_once(busy, b"still"), b"still")
            self.assertEqual(backend.ended, ended + 1)
        finally:
            idle.close()
            busy.close()

    def test_tcp_route_idle_timeout(self):
        self.check_idle_stream_closed(self.connect_tcp, self.tcp_backend)

    def test_tls_terminate_idle_timeout(self):
        self.check_idle_stream_closed(self.connect_tls, self.tls_backend)

    def test_udp_session_idle_timeout(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        metric = lambda name: self.gw.metric(name, listener="udp")

        def exchange():
            for _ in range(5):  # UDP may drop on a loaded machine: retry
                s.sendto(b"x", ("127.0.0.1", self.p_udp))
                try:
                    return int(s.recvfrom(64)[0])
                except socket.timeout:
                    continue
            self.fail("no UDP answer")

        try:
            first = exchange()
            sessions = metric("archway_listener_connections_total")
            # A session with traffic every 0.2 s outlives several idle timeouts: same
            # upstream socket throughout, no new session.
            end = time.monotonic() + BUSY_FOR_S
            while time.monotonic() < end:
                self.assertEqual(exchange(), first, "busy UDP session was replaced")
                time.sleep(BUSY_EVERY_S)
            self.assertEqual(metric("archway_listener_connections_total"), sessions)
            # Silent: the session ends; the next datagram starts a new one.
            self.assertTrue(wait_until(
                lambda: metric("archway_listener_active_connections") == 0, timeout=TIMEOUT),
                "idle UDP session not removed")
            exchange()
            self.assertEqual(metric("archway_listener_connections_total"), sessions + 1)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
