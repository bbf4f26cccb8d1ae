#!/usr/bin/env python3
"""End-to-end UDPRoute tests of `archway run` (2 workers) with real UDP peers: echo
through the gateway, datagrams of one session stay in order and keep their session
(one upstream source port per client), many distinct sources at once, weighted backends,
byte counters, a flood of distinct sources beyond the per-port session bound (the least
recently used sessions are evicted, the gateway keeps serving), and a UDP listener added
and removed live without disturbing a session on another listener. Run: /usr/bin/python3 tests/integration/test_udp.py"""

import os
import re
import resource
import shutil
import socket
import tempfile
import unittest

from l4_common import (BIN, GATEWAY_CLASS, REPO, Archway, UdpEcho, free_port, service_yaml,
                       wait_until)


def max_sessions_per_port():
    # The bound lives in the source (net::kMaxUdpSessionsPerPort); read it so the test
    # follows it.
    with open(os.path.join(REPO, "src", "net", "limits.h")) as f:
        m = re.search(r"kMaxUdpSessionsPerPort\s*=\s*(\d+)", f.read())
    return int(m.group(1))


# Each session holds an upstream socket: the flood test needs the bound's worth of file
# descriptors in the gateway, which inherits this limit.
FD_NEEDED = max_sessions_per_port() + 1024
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < FD_NEEDED:
    _want = FD_NEEDED if _hard == resource.RLIM_INFINITY else min(FD_NEEDED, _hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


def gateway(ports):
    listeners = "".join(
        f"  - {{name: {name}, protocol: UDP, port: {port}, "
        f"allowedRoutes: {{kinds: [{{kind: UDPRoute}}]}}}}\n" for name, port in ports)
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
{listeners}---
"""


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
        cls.p_flood = free_port(udp=True)
        cls.listeners = [("udp-single", cls.p_single), ("udp-split", cls.p_split),
                         ("udp-flood", cls.p_flood)]
        cls.gw_file = os.path.join(cls.dir, "gateway.yaml")
        with open(cls.gw_file, "w") as f:
            f.write(gateway(cls.listeners))
        y = [GATEWAY_CLASS]
        y.append(service_yaml("one", cls.one.port, protocol="UDP"))
        y.append(service_yaml("two", cls.two.port, protocol="UDP"))
        y.append(udp_route("single", "udp-single", [("one", cls.one.port, 1)]))
        y.append(udp_route("split", "udp-split", [("one", cls.one.port, 1), ("two", cls.two.port, 1)]))
        y.append(udp_route("flood", "udp-flood", [("one", cls.one.port, 1)]))
        # Attached to a listener that appears only during the live-change test.
        y.append(udp_route("extra", "udp-extra", [("two", cls.two.port, 1)]))
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.one.close()
        cls.two.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

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


    def test_zzz_session_flood_is_bounded(self):
        # Last: its sessions hold thousands of ephemeral ports for the idle timeout.
        # More distinct sources than one port keeps sessions for: each new source past the
        # bound evicts the least recently used session instead of growing without limit.
        bound = max_sessions_per_port()
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < FD_NEEDED:
            self.skipTest(f"needs {FD_NEEDED} file descriptors (ulimit -n) for the sessions")
        total = bound + 1000
        metric = lambda name: self.gw.metric(name, listener="udp-flood")
        base = metric("archway_listener_connections_total")
        # Batches small enough for the listening socket's receive buffer; the gateway is
        # given each batch before the next is sent.
        batch = 200
        for start in range(0, total, batch):
            sources = []
            for i in range(start, min(start + batch, total)):
                sources.append(f"127.{200 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}")

            def send_batch():
                for addr in sources:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                        c.bind((addr, 0))
                        c.sendto(b"f", ("127.0.0.1", self.p_flood))
            # A datagram the kernel dropped anyway is sent again from a new port of the same
            # address (a new session: the count only needs to reach the target).
            for _ in range(5):
                send_batch()
                if wait_until(lambda: metric("archway_listener_connections_total") - base
                              >= start + len(sources), timeout=3, interval=0.02):
                    break
        created = metric("archway_listener_connections_total") - base
        self.assertGreaterEqual(created, total)
        active = metric("archway_listener_active_connections")
        self.assertLessEqual(active, bound)
        self.assertGreater(active, 0)
        # Still serving: a new client and an existing one on other listeners.
        s = self.client()
        self.assertEqual(self.exchange(s, self.p_flood, b"after"), b"one:after")
        self.assertEqual(self.exchange(s, self.p_single, b"other"), b"one:other")
        s.close()

    def test_zz_live_listener_change(self):
        s = self.client()
        self.assertEqual(self.exchange(s, self.p_single, b"before"), b"one:before")
        sources = set(self.one.sources)

        def rewrite(listeners):
            with open(self.gw_file + ".tmp", "w") as f:
                f.write(gateway(listeners))
            os.rename(self.gw_file + ".tmp", self.gw_file)

        # Chosen now, so no earlier test's sockets hold it.
        self.p_extra = free_port(udp=True)
        rewrite(self.listeners + [("udp-extra", self.p_extra)])

        def extra_serves():
            c = self.client()
            c.settimeout(0.5)
            try:
                return self.exchange(c, self.p_extra, b"new", tries=1) == b"two:new"
            finally:
                c.close()
        self.assertTrue(wait_until(extra_serves), self.gw.output()[-2000:])
        # The session on udp-single kept its upstream socket (no new source at the backend).
        self.assertEqual(self.exchange(s, self.p_single, b"during"), b"one:during")
        rewrite(self.listeners)

        def extra_released():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                try:
                    c.bind(("127.0.0.1", self.p_extra))
                except OSError:
                    return False
                return True
        self.assertTrue(wait_until(extra_released), self.gw.output()[-2000:])
        self.assertEqual(self.exchange(s, self.p_single, b"after"), b"one:after")
        self.assertEqual(set(self.one.sources) - sources, set(),
                         "the udp-single session must survive both changes")
        s.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
