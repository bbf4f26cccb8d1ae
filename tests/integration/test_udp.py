#!/usr/bin/env python3
"""End-to-end UDPRoute tests of `archway run` (2 workers) with real UDP peers: echo
through the gateway, datagrams of one session stay in order and keep their session
(one upstream source port per client), many distinct sources at once, weighted backends,
and byte counters. Run: /usr/bin/python3 tests/integration/test_udp.py"""

import os
import shutil
import socket
import tempfile
import unittest

from l4_common import BIN, GATEWAY_CLASS, Archway, UdpEcho, free_port, service_yaml, wait_until


def udp_route(name, section, backends):
    refs = ", ".join(f"{{name: {b}, port: {p}, weight: {w}}}" for b, p, w in backends)
    return f"""
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: {section}}}]
  rules: [{{backendRefs: [{refs}]}}]
---
"""


class UdpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        cls.one, cls.two = UdpEcho("one"), UdpEcho("two")
        cls.p_single = free_port(udp=True)
        cls.p_split = free_port(udp=True)
        y = [GATEWAY_CLASS, f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: udp-single, protocol: UDP, port: {cls.p_single}, allowedRoutes: {{kinds: [{{kind: UDPRoute}}]}}}}
  - {{name: udp-split, protocol: UDP, port: {cls.p_split}, allowedRoutes: {{kinds: [{{kind: UDPRoute}}]}}}}
---
"""]
        y.append(service_yaml("one", cls.one.port, protocol="UDP"))
        y.append(service_yaml("two", cls.two.port, protocol="UDP"))
        y.append(udp_route("single", "udp-single", [("one", cls.one.port, 1)]))
        y.append(udp_route("split", "udp-split", [("one", cls.one.port, 1), ("two", cls.two.port, 1)]))
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        out = cls.gw.output()
        cls.one.close()
        cls.two.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc != 0 or "runtime error" in out or "AddressSanitizer" in out:
            raise AssertionError(f"archway exit {rc}:\n{out[-4000:]}")

    def client(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        return s

    def exchange(self, s, port, payload, tries=5):
        # UDP may drop: retry a few times (the answer is what is asserted).
        for _ in range(tries):
            s.sendto(payload, ("127.0.0.1", port))
            try:
                data, _ = s.recvfrom(65536)
                return data
            except socket.timeout:
                continue
        return None

    def test_echo(self):
        s = self.client()
        self.assertEqual(self.exchange(s, self.p_single, b"hello"), b"one:hello")
        s.close()

    def test_session_order_and_affinity(self):
        s = self.client()
        self.assertEqual(self.exchange(s, self.p_single, b"first"), b"one:first")
        before = set(self.one.sources)
        for i in range(200):
            s.sendto(b"%04d" % i, ("127.0.0.1", self.p_single))
        got = []
        while len(got) < 200:
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                break
            got.append(int(data.split(b":")[1]))
        s.close()
        # Loopback may drop under load, but what arrives is in order, over one session.
        self.assertGreater(len(got), 100)
        self.assertEqual(got, sorted(got))
        self.assertEqual(set(self.one.sources), before, "one session: one upstream source")

    def test_many_sources(self):
        socks = [self.client() for _ in range(100)]
        ok = 0
        for i, s in enumerate(socks):
            if self.exchange(s, self.p_single, b"src%d" % i) == b"one:src%d" % i:
                ok += 1
            s.close()
        self.assertEqual(ok, 100)
        self.assertGreaterEqual(self.gw.metric("archway_listener_connections_total",
                                               listener="udp-single"), 100)

    def test_weighted_split(self):
        names = set()
        for i in range(30):
            s = self.client()
            data = self.exchange(s, self.p_split, b"x")
            s.close()
            if data:
                names.add(data.split(b":")[0])
        self.assertEqual(names, {b"one", b"two"})

    def test_metrics(self):
        s = self.client()
        self.exchange(s, self.p_single, b"m" * 100)
        s.close()
        self.assertTrue(wait_until(lambda: self.gw.metric(
            "archway_listener_received_bytes_total", listener="udp-single") >= 100))
        self.assertGreaterEqual(self.gw.metric("archway_listener_sent_bytes_total",
                                               listener="udp-single"), 104)


if __name__ == "__main__":
    unittest.main(verbosity=2)
