#!/usr/bin/env python3
"""`archway run` out of file descriptors (EMFILE). The gateway's descriptor limit is
lowered while it runs (prlimit on its pid) to a few more than it holds; clients then fill it:
relayed TCP connections, idle HTTP connections, and more of both that the kernel queues
but the gateway cannot accept. Both accept paths (the raw accept4 batches of TCP ports and
Asio's async_accept of HTTP ports) must then back off rather than retry in a busy loop, the
process must stay up, and once the clients close, new connections on both ports are
served again. The busy-loop check is functional, not a benchmark: the process's CPU time
over a few seconds of exhaustion must stay under half the wall time (a retrying accept
loop takes a whole core). Run: /usr/bin/python3 tests/integration/test_fd_exhaustion.py"""

import os
import resource
import shutil
import socket
import tempfile
import time
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, HttpEcho, StreamEcho, free_port,
                       recv_until, service_yaml, tcp_route, wait_until)

SPARE_FDS = 12       # descriptors left to the gateway above what it holds when idle
EXHAUSTED_FOR_S = 3.0
MAX_CPU_SHARE = 0.5  # of one core, during the exhaustion


def http_get(port, timeout=TIMEOUT):
    """Status of one GET / on a new connection (None when the connection closed first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = recv_until(s, b"\r\n")
        if not head.startswith(b"HTTP/1.1 "):
            return None
        return int(head.split(b" ", 2)[1])


def cpu_seconds(pid):
    """User + system CPU time of process `pid` (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command: state is field 3, utime 14, stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class FdExhaustionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        cls.tcp_backend = StreamEcho("be")
        cls.http_backend = HttpEcho("web")
        cls.p_tcp, cls.p_http = free_port(), free_port()
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write(GATEWAY_CLASS)
            f.write(service_yaml("be", cls.tcp_backend.port))
            f.write(service_yaml("web", cls.http_backend.port))
            f.write(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: tcp-0, protocol: TCP, port: {cls.p_tcp}, allowedRoutes: {{kinds: [{{kind: TCPRoute}}]}}}}
  - {{name: http, protocol: HTTP, port: {cls.p_http}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  rules: [{{backendRefs: [{{name: web, port: {cls.http_backend.port}}}]}}]
---
""")
            f.write(tcp_route("tcp", "tcp-0", [("be", cls.tcp_backend.port, 1)]))
        cls.gw = Archway(cls.dir, workers=1)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.tcp_backend.close()
        cls.http_backend.shutdown()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def tcp_served(self, timeout=TIMEOUT):
        """A new relayed connection that got the backend's greeting, or None."""
        s = socket.create_connection(("127.0.0.1", self.p_tcp), timeout=timeout)
        try:
            if recv_until(s, b"\n") == b"HELLO be\n":
                return s
        except OSError:
            pass
        s.close()
        return None

    def test_accept_backs_off_and_recovers(self):
        pid = self.gw.proc.pid
        # Both ports serve before the limit drops.
        self.assertTrue(wait_until(lambda: http_get(self.p_http) == 200))
        s = self.tcp_served()
        self.assertIsNotNone(s)
        s.close()

        clients = []
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Idle connections still closing hold descriptors for a moment: settle first.
        time.sleep(0.5)
        limit = open_fds(pid) + SPARE_FDS
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, old[1]))
        try:
            # Relayed connections (two descriptors each) while they fit ...
            for _ in range(SPARE_FDS // 4):
                s = self.tcp_served()
                self.assertIsNotNone(s, "relay not served below the limit")
                clients.append(s)
            # ... then idle HTTP connections (one each) beyond the limit: the kernel queues
            # what the gateway cannot accept ...
            for _ in range(SPARE_FDS):
                clients.append(socket.create_connection(("127.0.0.1", self.p_http),
                                                        timeout=TIMEOUT))
            self.assertTrue(wait_until(lambda: open_fds(pid) >= limit, timeout=TIMEOUT),
                            "descriptors not exhausted: %d of %d" % (open_fds(pid), limit))
            # ... and TCP ones, which stay queued too: neither served nor closed.
            for _ in range(8):
                clients.append(socket.create_connection(("127.0.0.1", self.p_tcp),
                                                        timeout=TIMEOUT))
            queued = clients[-1]
            queued.settimeout(1)
            with self.assertRaises(socket.timeout):
                queued.recv(1)

            wall0, cpu0 = time.monotonic(), cpu_seconds(pid)
            time.sleep(EXHAUSTED_FOR_S)
            wall, cpu = time.monotonic() - wall0, cpu_seconds(pid) - cpu0
            self.assertTrue(self.gw.alive(), "archway exited out of descriptors")
            self.assertLess(cpu, MAX_CPU_SHARE * wall,
                            "%.2f s CPU in %.2f s out of descriptors: busy loop" % (cpu, wall))
        finally:
            for c in clients:
                c.close()
        # Descriptors free up as the gateway sees those clients go: both ports serve again,
        # still under the lowered limit.
        self.assertTrue(wait_until(lambda: http_get(self.p_http) == 200, timeout=30),
                        "HTTP port not serving after descriptors freed up")
        s = None
        deadline = time.monotonic() + 30
        while s is None and time.monotonic() < deadline:
            s = self.tcp_served(timeout=2)
        self.assertIsNotNone(s, "TCP port not serving after descriptors freed up")
        s.sendall(b"again")
        self.assertEqual(recv_until(s, b"again"), b"again")
        s.close()
        self.assertTrue(self.gw.alive())
        resource.prlimit(pid, resource.RLIMIT_NOFILE, old)


if __name__ == "__main__":
    unittest.main(verbosity=2)
