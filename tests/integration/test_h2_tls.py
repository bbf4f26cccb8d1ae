#!/usr/bin/env python3
"""HTTP/2 and gRPC over TLS end to end: an HTTPS listener offers ALPN h2 (then http/1.1)
and serves h2 with real clients (Python h2, curl --http2, grpcio with TLS); a request
whose :authority belongs to another listener of the port than the TLS server name gets 421
on a reused connection; gRPC to a TLS-only grpcio backend through a BackendTLSPolicy (ALPN
h2, SNI and verification), to an h2c backend, and a backend whose certificate does not
match the policy answered as UNAVAILABLE. Needs $ARCHWAY_BIN.
Run: /usr/bin/python3 tests/integration/test_h2_tls.py"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from l4_common import certs, client_context, configmap_yaml, read, secret_yaml  # noqa: E402
from test_h2 import H2C, H2Client, pod_ports, start_echo  # noqa: E402

import manifests  # noqa: E402  (tests/support, on the path through l4_common)
import procs  # noqa: E402
from procs import BIN, free_port  # noqa: E402

try:
    import grpc
    from test_grpc import IDENTITY, Backend, chat_interactively
except ImportError:  # pragma: no cover
    grpc = None


def gateway_objects(port):
    return [manifests.gateway_class(),
            manifests.gateway([
                manifests.listener("https-a", port, "HTTPS", "a.example.com", ["cert-a"]),
                manifests.listener("https-b", port, "HTTPS", "b.example.com", ["cert-b"])]),
            manifests.http_route("web", [manifests.prefix_rule("/h1", "echo-h1"),
                                         manifests.prefix_rule("/h2c", "echo-h2c")])]


GRPC_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: test.Echo}}]
    backendRefs: [{name: grpc-tls, port: 80}]
  - matches: [{method: {service: test.Plain}}]
    backendRefs: [{name: grpc-plain, port: 80}]
  - matches: [{method: {service: test.Mismatch}}]
    backendRefs: [{name: grpc-mismatch, port: 80}]
"""


def policy_yaml(name, service, hostname):
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {service}}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: backend-ca}}]
    hostname: {hostname}
---
"""


@unittest.skipIf(grpc is None, "python3-grpcio not installed")
class H2TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("archway binary not built: " + BIN)
        cls.dir = tempfile.mkdtemp(prefix="archway-h2tls-")
        d = os.path.join(cls.dir, "certs")
        os.mkdir(d)
        cls.ca, ca_key = certs.make_ca(d, "ca")
        a = certs.make_leaf(d, "a", ["a.example.com"], ["serverAuth"], ca=(cls.ca, ca_key))
        b = certs.make_leaf(d, "b", ["b.example.com"], ["serverAuth"], ca=(cls.ca, ca_key))
        backend_ca, bkey = certs.make_ca(d, "backend-ca")
        bcrt, bkeyfile = certs.make_leaf(d, "grpc-backend", ["grpc-backend.example"],
                                         ["serverAuth"], ca=(backend_ca, bkey))
        creds = grpc.ssl_server_credentials(
            [(read(bkeyfile).encode(), read(bcrt).encode())])
        cls.tls_backend = Backend("tls", credentials=creds, services=("test.Echo", "test.Mismatch"))
        cls.plain_backend = Backend("plain", services=("test.Plain",))
        cls.echo, info = start_echo("--pod", "echo", "--namespace", "default", "--kind", "http",
                                    "--http-port", "0", "--h2c-port", "0")
        ports = pod_ports(info)
        cls.port = free_port()
        manifests.write(os.path.join(cls.dir, "all.yaml"),
                        gateway_objects(cls.port), GRPC_ROUTE,
                        secret_yaml("cert-a", *a),
                        secret_yaml("cert-b", *b),
                        configmap_yaml("backend-ca", "ca.crt", read(backend_ca)),
                        manifests.service("echo-h1", ports["http_port"]),
                        manifests.service("echo-h2c", ports["h2c_port"], app_protocol=H2C),
                        manifests.service("grpc-tls", cls.tls_backend.port),
                        manifests.service("grpc-mismatch", cls.tls_backend.port),
                        manifests.service("grpc-plain", cls.plain_backend.port),
                        policy_yaml("tls", "grpc-tls", "grpc-backend.example"),
                        policy_yaml("mismatch", "grpc-mismatch", "other.example"))
        cls.gw = procs.Archway(cls.dir)
        cls.channel = grpc.secure_channel(
            "127.0.0.1:%d" % cls.port, grpc.ssl_channel_credentials(root_certificates=read(cls.ca).encode()),
            options=[("grpc.ssl_target_name_override", "a.example.com"),
                     ("grpc.default_authority", "a.example.com")])

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.gw.stop()
        cls.tls_backend.stop()
        cls.plain_backend.stop()
        cls.echo.stdin.close()
        cls.echo.terminate()
        cls.echo.wait()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("archway exited with %s:\n%s" % (rc, cls.gw.output()))

    def h2(self, sni="a.example.com"):
        ctx = client_context(self.ca, alpn=["h2", "http/1.1"])
        c = H2Client(self.port, tls=ctx, server_hostname=sni)
        self.addCleanup(c.close)
        return c

    def unary(self, method):
        return self.channel.unary_unary(method, request_serializer=IDENTITY,
                                        response_deserializer=IDENTITY)

    def test_alpn_prefers_h2(self):
        self.assertEqual(self.h2().alpn, "h2")
        import socket
        ctx = client_context(self.ca, alpn=["http/1.1"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10),
                             server_hostname="a.example.com") as s:
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")

    def test_python_h2_over_tls(self):
        c = self.h2()
        headers, body, _, reset = c.response(
            c.request("/h1/x", authority="a.example.com", scheme="https"))
        self.assertIsNone(reset)
        self.assertEqual(headers[":status"], "200")
        echo = json.loads(body)
        self.assertEqual(echo["proto"], "HTTP/1.1")
        self.assertEqual(echo["host"], "a.example.com")
        self.assertEqual(echo["headers"].get("X-Forwarded-Proto"), ["https"])
        # Same connection, h2c upstream, and a body both ways.
        # The body is larger than the first buffer: it streams, and the length the client
        # declared is what the backend sees.
        payload = b"y" * 100000
        headers, body, _, _ = c.response(c.request(
            "/h2c/post", method="POST", body=payload, authority="a.example.com",
            scheme="https", headers=[("content-length", str(len(payload)))]))
        self.assertEqual(headers[":status"], "200")
        echo = json.loads(body)
        self.assertEqual(echo["proto"], "HTTP/2.0")
        self.assertEqual(echo["headers"].get("Content-Length"), [str(len(payload))])

    def test_misdirected_request_on_reused_connection(self):
        # The certificate of a.example.com does not cover b.example.com, but a client may
        # still reuse the connection: the gateway answers 421 so it retries on a new one.
        c = self.h2("a.example.com")
        headers, _, _, _ = c.response(c.request("/h1/x", authority="b.example.com", scheme="https"))
        self.assertEqual(headers[":status"], "421")
        headers, body, _, _ = c.response(c.request("/h1/x", authority="a.example.com",
                                                   scheme="https"))
        self.assertEqual(headers[":status"], "200")
        # The other listener, on a connection of its own.
        c2 = self.h2("b.example.com")
        headers, body, _, _ = c2.response(c2.request("/h1/y", authority="b.example.com",
                                                     scheme="https"))
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(json.loads(body)["host"], "b.example.com")

    def test_curl_http2(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        out = subprocess.run(
            ["curl", "-sS", "--http2", "--cacert", self.ca, "--resolve",
             "a.example.com:%d:127.0.0.1" % self.port, "-w", "\n%{http_version} %{http_code}",
             "https://a.example.com:%d/h1/curl" % self.port],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        body, _, tail = out.stdout.rpartition("\n")
        self.assertEqual(tail, "2 200")
        self.assertEqual(json.loads(body)["path"], "/h1/curl")

    def test_grpc_tls_both_sides(self):
        resp, call = self.unary("/test.Echo/Unary").with_call(b"hello", timeout=10,
                                                              metadata=(("x-client", "c1"),))
        self.assertEqual(resp, b"tls:hello")
        self.assertEqual(dict(call.initial_metadata()).get("x-backend"), "tls")
        self.assertEqual(dict(call.trailing_metadata()).get("x-trailer"), "t-tls")
        self.assertEqual(self.tls_backend.seen[-1].get("x-client"), "c1")
        # Server streaming through both TLS hops.
        stream = self.channel.unary_stream("/test.Echo/Stream", request_serializer=IDENTITY,
                                           response_deserializer=IDENTITY)(b"4", timeout=10)
        self.assertEqual(list(stream), [b"msg-%d" % i for i in range(4)])

    def test_grpc_bidi_streaming_over_tls_both_sides(self):
        # Interactive bidi stream through both TLS hops.
        chat_interactively(self, self.channel, "/test.Echo/Chat", [b"m%d" % i for i in range(3)])

    def test_grpc_tls_to_h2c_backend(self):
        self.assertEqual(self.unary("/test.Plain/Unary")(b"p", timeout=10), b"plain:p")

    def test_grpc_backend_certificate_mismatch_is_unavailable(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/test.Mismatch/Unary")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_unmatched_grpc_over_tls_is_unimplemented(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/nope.Service/M")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    unittest.main(verbosity=2)
