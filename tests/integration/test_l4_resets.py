#!/usr/bin/env python3
"""A client that resets its relayed connection (SO_LINGER 0 close) right behind its last
bytes: the backend side must be closed promptly, on every L4 relay: TCPRoute, TLS
passthrough (both the raw-socket relay) and TLS terminate (the Asio relay, whose reads
are the drain-aware recvmmsg reads). The relays' idle timeout is the default 10 minutes
and the backend's own read timeout 2 minutes, so "promptly" is a generous functional bound
(a few seconds), not a measurement.
Run: /usr/bin/python3 tests/integration/test_l4_resets.py"""

import os
import shutil
import socket
import ssl
import struct
import tempfile
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, TrackingEcho, certs, client_context,
                       free_port, secret_yaml, service_yaml, tcp_route, wait_until)

CONNECTIONS = 10
PROMPT_S = 5  # against a 10-minute idle timeout


def client_hello(ca, server_name):
    """The ClientHello Python's TLS client sends first to `server_name`, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(ca).wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class L4ResetsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        d = os.path.join(cls.dir, "certs")
        os.mkdir(d)
        cls.ca, ca_key = certs.make_ca(d, "ca")
        term = certs.make_leaf(d, "term", ["term.example"], ["serverAuth"], ca=(cls.ca, ca_key))
        cls.backends = {name: TrackingEcho() for name in ("tcp", "pass", "term")}
        cls.p_tcp, cls.p_tls = free_port(), free_port()
        y = [GATEWAY_CLASS, secret_yaml("cert-term", *term)]
        y += [service_yaml(name + "-be", b.port) for name, b in cls.backends.items()]
        y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: tcp-0, protocol: TCP, port: {cls.p_tcp}, allowedRoutes: {{kinds: [{{kind: TCPRoute}}]}}}}
  - name: pass
    protocol: TLS
    port: {cls.p_tls}
    hostname: pass.example
    tls: {{mode: Passthrough}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - name: term
    protocol: TLS
    port: {cls.p_tls}
    hostname: term.example
    tls: {{mode: Terminate, certificateRefs: [{{name: cert-term}}]}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
---
""")
        for name in ("pass", "term"):
            y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: {name}}}]
  hostnames: [{name}.example]
  rules: [{{backendRefs: [{{name: {name}-be, port: {cls.backends[name].port}}}]}}]
---
""")
        y.append(tcp_route("tcp", "tcp-0", [("tcp-be", cls.backends["tcp"].port, 1)]))
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        for b in cls.backends.values():
            b.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def check(self, backend, open_relay):
        """open_relay() returns a client socket whose relay reached `backend`; each then
        sends bytes and resets at once."""
        ended = backend.ended
        for i in range(CONNECTIONS):
            connected = backend.connections
            s = open_relay()
            self.assertTrue(wait_until(lambda: backend.connections > connected, timeout=TIMEOUT),
                            "relay never reached the backend")
            s.sendall(b"last bytes %d" % i)
            reset(s)
        self.assertTrue(
            wait_until(lambda: backend.ended >= ended + CONNECTIONS, timeout=PROMPT_S),
            "backend side still open after the client's reset: %d of %d closed" %
            (backend.ended - ended, CONNECTIONS))

    def test_tcp_route(self):
        self.check(self.backends["tcp"],
                   lambda: socket.create_connection(("127.0.0.1", self.p_tcp), timeout=TIMEOUT))

    def test_tls_passthrough(self):
        hello = client_hello(self.ca, "pass.example")

        def open_relay():
            s = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
            s.sendall(hello)
            return s

        self.check(self.backends["pass"], open_relay)

    def test_tls_terminate(self):
        ctx = client_context(self.ca)

        def open_relay():
            raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
            return ctx.wrap_socket(raw, server_hostname="term.example")

        self.check(self.backends["term"], open_relay)


if __name__ == "__main__":
    unittest.main(verbosity=2)
