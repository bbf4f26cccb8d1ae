#!/usr/bin/env python3
"""System calls the gateway makes per relayed L4 connection and per echoed message, for a
TCPRoute listener and a TLS passthrough listener (strace -c -f on every thread of
`archway run --workers 1`, divided by the number of connections or messages the client
made). Load-proof: the counts do not depend on how busy the machine is.

Scenarios (the client and the backends are Python threads of this script):
  short   N connections one after another: connect, (TLS handshake through the relay,)
          a 40-byte request, a 100-byte response, the backend closes, the client closes
  chatty  one connection, M round trips of a 40-byte message echoed by the backend

Usage: bench/l4_syscalls.py [--binary build/archway] [--conns 300] [--messages 1000]
Prints one line per scenario: calls per operation and the per-call breakdown."""

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import certs  # noqa: E402
import manifests  # noqa: E402
from procs import Archway  # noqa: E402

REQUEST = b"R" * 39 + b"\n"
RESPONSE = b"A" * 99 + b"\n"
MESSAGE = b"m" * 39 + b"\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            break
        out += d
    return out


class Backend:
    """Per connection: a short exchange (read the request, answer, close) when the first
    byte is "R", else an echo of 40-byte messages until EOF. TLS when `ctx` is given."""

    def __init__(self, ctx=None):
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(30)
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
            first = recv_exact(c, len(REQUEST))
            if first.startswith(b"R"):
                c.sendall(RESPONSE)
            else:
                while first:
                    c.sendall(first)
                    first = recv_exact(c, len(MESSAGE))
        except OSError:
            pass
        finally:
            c.close()


class Strace:
    def __init__(self, pid, out):
        argv = ["strace", "-c", "-f", "-o", out]
        for t in os.listdir("/proc/%d/task" % pid):
            argv += ["-p", t]
        self.out = out
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=30)
        calls = {}
        with open(self.out) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                    calls[parts[-1]] = int(parts[3])
        return calls


def short(port, n, client_ctx):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        if client_ctx:
            s = client_ctx.wrap_socket(s, server_hostname="pass.example")
        s.sendall(REQUEST)
        got = b""
        while True:
            try:
                d = s.recv(4096)
            except ssl.SSLError:
                break
            if not d:
                break
            got += d
        if got != RESPONSE:
            raise RuntimeError("short exchange: got %r" % got[:80])
        s.close()


def chatty(port, m, client_ctx):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    if client_ctx:
        s = client_ctx.wrap_socket(s, server_hostname="pass.example")
    for _ in range(m):
        s.sendall(MESSAGE)
        if recv_exact(s, len(MESSAGE)) != MESSAGE:
            raise RuntimeError("chatty exchange: short echo")
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "archway"))
    ap.add_argument("--conns", type=int, default=300)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--only", default="", help="comma list of tcp-short,tcp-chatty,tls-short,tls-chatty")
    args = ap.parse_args()
    if not shutil.which("strace"):
        sys.exit("strace not installed")
    work = tempfile.mkdtemp()
    try:
        ca, ca_key = certs.make_ca(work, "ca")
        crt, key = certs.make_leaf(work, "backend", ["pass.example"], ["serverAuth"],
                                   ca=(ca, ca_key))
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(crt, key)
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.load_verify_locations(ca)
        plain, tls = Backend(), Backend(sctx)
        p_tcp, p_tls = free_port(), free_port()
        manifest = manifests.to_yaml(manifests.gateway_class()) + f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: tcp, protocol: TCP, port: {p_tcp}, allowedRoutes: {{kinds: [{{kind: TCPRoute}}]}}}}
  - {{name: pass, protocol: TLS, port: {p_tls}, hostname: pass.example, tls: {{mode: Passthrough}},
     allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}}}
---
"""
        for name, port in (("plain", plain.port), ("tls", tls.port)):
            manifest += manifests.to_yaml(manifests.service(name, port, service_port=port,
                                                            port_name="p"))
        manifest += f"""
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: tcp, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: tcp}}]
  rules: [{{backendRefs: [{{name: plain, port: {plain.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: pass, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: pass}}]
  hostnames: [pass.example]
  rules: [{{backendRefs: [{{name: tls, port: {tls.port}}}]}}]
---
"""
        mdir = os.path.join(work, "manifests")
        os.mkdir(mdir)
        with open(os.path.join(mdir, "all.yaml"), "w") as f:
            f.write(manifest)
        gw = Archway(mdir, workers=1, binary=args.binary)
        try:
            # Warm up both listeners (first-use allocations, the relay loop).
            short(p_tcp, 5, None)
            short(p_tls, 5, cctx)
            only = set(filter(None, args.only.split(",")))
            runs = [("tcp-short", lambda: short(p_tcp, args.conns, None), args.conns, "conn"),
                    ("tcp-chatty", lambda: chatty(p_tcp, args.messages, None), args.messages, "msg"),
                    ("tls-short", lambda: short(p_tls, args.conns, cctx), args.conns, "conn"),
                    ("tls-chatty", lambda: chatty(p_tls, args.messages, cctx), args.messages, "msg")]
            for name, fn, n, unit in runs:
                if only and name not in only:
                    continue
                st = Strace(gw.proc.pid, os.path.join(work, name + ".strace"))
                try:
                    fn()
                finally:
                    calls = st.stop()
                total = sum(calls.values())
                parts = ", ".join("%s %.2f" % (k, v / n) for k, v in
                                  sorted(calls.items(), key=lambda kv: -kv[1]) if v / n >= 0.01)
                print("%-10s %6.2f syscalls/%s  (%s)" % (name, total / n, unit, parts), flush=True)
        finally:
            gw.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
