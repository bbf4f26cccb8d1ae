"""Shared pieces of the TLS/TCP/UDP end-to-end tests: `archway run` as a child process
(procs.Archway), certificates made with openssl at test time, and small real peers (HTTP,
TLS, TCP and UDP echo servers) running in threads."""

import base64
import http.server
import json
import os
import socket
import socketserver
import ssl
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import certs  # noqa: E402,F401  (re-exported)
import manifests  # noqa: E402
from procs import BIN, Archway  # noqa: E402,F401  (re-exported to the L4 tests)

TIMEOUT = 10


def free_port(udp=False):
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def read(path):
    with open(path) as f:
        return f.read()


def secret_yaml(name, crt, key, ns="default"):
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {ns}}}
type: kubernetes.io/tls
data: {{tls.crt: {b64(crt)}, tls.key: {b64(key)}}}
---
"""


def configmap_yaml(name, key, pem, ns="default"):
    body = "\n".join("    " + line for line in pem.strip().splitlines())
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}}}
data:
  {key}: |
{body}
---
"""


def service_yaml(name, port, protocol="TCP", app_protocol=None):
    """A Service whose port is also the backend's port, one ready endpoint on 127.0.0.1."""
    return manifests.to_yaml(manifests.service(name, port, service_port=port, protocol=protocol,
                                               app_protocol=app_protocol, port_name="p"))


GATEWAY_CLASS = manifests.to_yaml(manifests.gateway_class())


def tcp_gateway(ports):
    """A Gateway on 127.0.0.1 with one TCPRoute listener per port (tcp-0, tcp-1, ...)."""
    listeners = "".join(f"""
  - {{name: tcp-{i}, protocol: TCP, port: {p}, allowedRoutes: {{kinds: [{{kind: TCPRoute}}]}}}}"""
                        for i, p in enumerate(ports))
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:{listeners}
---
"""


def tcp_route(name, section, backends, ts=None):
    """A TCPRoute on listener `section` of gw; backends: (service, port, weight)."""
    refs = ", ".join(f"{{name: {b}, port: {p}, weight: {w}}}" for b, p, w in backends)
    stamp = f', creationTimestamp: "{ts}"' if ts else ""
    return f"""
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: {name}, namespace: default{stamp}}}
spec:
  parentRefs: [{{name: gw, sectionName: {section}}}]
  rules: [{{backendRefs: [{refs}]}}]
---
"""


def wait_until(pred, timeout=20, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(interval)
    return False


# --- peers -----------------------------------------------------------------------------

class _HttpEcho(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        cert = None
        if isinstance(self.connection, ssl.SSLSocket):
            cert = self.connection.getpeercert()
        payload = json.dumps({"backend": self.server.name, "path": self.path,
                              "host": self.headers.get("Host"),
                              "proto": self.headers.get("X-Forwarded-Proto"),
                              "tls": isinstance(self.connection, ssl.SSLSocket),
                              "client_cert": bool(cert)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class HttpEcho(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP/1.1 echo answering JSON; with `tls_context` it serves HTTPS."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name, tls_context=None):
        super().__init__(("127.0.0.1", 0), _HttpEcho)
        self.name = name
        if tls_context is not None:
            self.socket = tls_context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TcpServer:
    """A loopback TCP server that serves each connection on its own thread; subclasses
    define _serve(conn). `connections` counts accepted connections."""

    def __init__(self, backlog=128):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        raise NotImplementedError

    def close(self):
        self.sock.close()


class StreamEcho(TcpServer):
    """TCP (or TLS, with `tls_context`) echo: echoes bytes; when the client ends its
    direction (FIN) it sends "BYE <n>" with the byte count, then closes. The greeting
    names the server so tests can tell backends apart."""

    def __init__(self, name, tls_context=None):
        self.name = name
        self.tls = tls_context
        super().__init__()

    def _serve(self, c):
        c.settimeout(TIMEOUT)
        try:
            if self.tls is not None:
                c = self.tls.wrap_socket(c, server_side=True)
            c.sendall(f"HELLO {self.name}\n".encode())
            n = 0
            while True:
                data = c.recv(65536)
                if not data:
                    break
                n += len(data)
                c.sendall(data)
            c.sendall(f"BYE {n}\n".encode())
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


class TrackingEcho(TcpServer):
    """Echoes bytes; counts connections that ended (EOF or reset). Its own read timeout is
    far longer than anything the test waits for, so only the gateway ends a connection."""

    def __init__(self):
        self.ended = 0
        self.lock = threading.Lock()
        super().__init__()

    def _serve(self, c):
        c.settimeout(120)
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.ended += 1
            c.close()


class UdpEcho:
    """Answers each datagram with "<name>:" + payload."""

    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sources = set()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except OSError:
                return
            self.sources.add(addr)
            self.sock.sendto(self.name.encode() + b":" + data, addr)

    def close(self):
        self.sock.close()


def server_context(crt, key, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(ca, alpn=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def recv_until(sock, marker, limit=1 << 20):
    out = b""
    while marker not in out and len(out) < limit:
        data = sock.recv(65536)
        if not data:
            break
        out += data
    return out


def recv_all(sock):
    out = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return out
        out += data
