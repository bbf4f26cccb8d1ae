#!/usr/bin/env python3
"""End-to-end TLS tests of `archway run` with real peers: SNI certificate selection among
the HTTPS listeners of one port (exact > wildcard > catch-all), 421 for a Host that
belongs to another listener, ALPN, frontend client-certificate validation (required and
AllowInsecureFallback), TLS passthrough (the client sees the backend's own certificate; the bytes, a large
ClientHello and what follows it included, reach the backend untouched, half-close kept),
TLS terminate to a TCP backend, terminate re-encrypted to a TLS backend by a
BackendTLSPolicy (SNI and hostname verification; a mismatch never reaches the backend), mixed Passthrough+Terminate on one port, and a garbage
ClientHello that is closed rather than left hanging.
Run: /usr/bin/python3 tests/integration/test_tls.py"""

import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import unittest

from l4_common import (BIN, GATEWAY_CLASS, TIMEOUT, Archway, HttpEcho, StreamEcho, certs,
                       client_context, configmap_yaml, free_port, read, recv_all, recv_until,
                       secret_yaml, server_context, service_yaml)


def https_get(port, sni, host, ca, alpn=None, cert=None, path="/"):
    """GET over TLS with the given SNI and Host; returns (status, body, peer cert, alpn)."""
    ctx = client_context(ca, alpn=alpn, cert=cert)
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname=sni)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = recv_all(s)
        peer = s.getpeercert()
        proto = s.selected_alpn_protocol()
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body, peer, proto


def peer_names(cert):
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


def real_client_hello(ca, server_name):
    """The ClientHello Python's TLS client sends first to `server_name`, as bytes."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context(ca).wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def big_client_hello(server_name, padding):
    """A minimal TLS 1.2-style ClientHello with SNI and a padding extension (RFC 7685) of
    `padding` bytes, split into records of at most 16 KiB."""
    name = server_name.encode()
    sni = struct.pack("!BH", 0, len(name)) + name
    sni = struct.pack("!H", len(sni)) + sni
    ext = struct.pack("!HH", 0, len(sni)) + sni
    ext += struct.pack("!HH", 21, padding) + bytes(padding)
    body = (b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!HH", 2, 0x1301) + b"\x01\x00"
            + struct.pack("!H", len(ext)) + ext)
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    records = b""
    for i in range(0, len(msg), 16384):
        chunk = msg[i:i + 16384]
        records += b"\x16\x03\x01" + struct.pack("!H", len(chunk)) + chunk
    return records


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        d = os.path.join(cls.dir, "certs")
        os.mkdir(d)
        cls.ca, ca_key = certs.make_ca(d, "ca")
        leaf = lambda name, hosts, eku=("serverAuth",), ca=(cls.ca, ca_key): certs.make_leaf(
            d, name, hosts, list(eku), ca=ca)
        a = leaf("a", ["a.example.com"])
        wild = leaf("wild", ["*.wild.example"])
        default = leaf("default", ["default.example"])
        term = leaf("term", ["term.example"])
        # The passthrough backend has its own CA: only a real passthrough lets the client
        # verify the backend's certificate with it.
        cls.backend_ca, bkey = certs.make_ca(d, "backend-ca")
        backend_cert = certs.make_leaf(d, "backend", ["pass.example"], ["serverAuth"],
                                       ca=(cls.backend_ca, bkey))
        reenc_cert = certs.make_leaf(d, "reenc-backend", ["backend.internal"], ["serverAuth"],
                                     ca=(cls.backend_ca, bkey))
        reenc = leaf("reenc", ["reenc.example", "reenc-bad.example"])
        cls.client_ca, ckey = certs.make_ca(d, "client-ca")
        cls.client = certs.make_leaf(d, "client", ["client.example"], ["clientAuth"],
                                     ca=(cls.client_ca, ckey))
        other_ca, okey = certs.make_ca(d, "other-ca")
        cls.bad_client = certs.make_leaf(d, "bad-client", ["client.example"], ["clientAuth"],
                                         ca=(other_ca, okey))

        cls.echo = {n: HttpEcho(n) for n in ("a", "wild", "any", "mtls", "insecure")}
        cls.tls_backend = StreamEcho("passthrough-backend",
                                     tls_context=server_context(*backend_cert))
        cls.tcp_backend = StreamEcho("terminate-backend")
        # A plain echo behind a passthrough listener: it sees (and echoes) the raw bytes.
        cls.raw_backend = StreamEcho("raw-backend")
        # Records the SNI the gateway sends when it re-encrypts (BackendTLSPolicy hostname).
        cls.reenc_sni = []
        reenc_ctx = server_context(*reenc_cert)
        reenc_ctx.sni_callback = lambda sock, name, ctx: cls.reenc_sni.append(name)
        cls.reenc_backend = StreamEcho("reencrypt-backend", tls_context=reenc_ctx)
        cls.p_https, cls.p_tls, cls.p_mtls, cls.p_insecure = (free_port() for _ in range(4))
        y = [GATEWAY_CLASS]
        for name, (crt, key) in {"a": a, "wild": wild, "default": default, "term": term,
                                 "reenc": reenc}.items():
            y.append(secret_yaml("cert-" + name, crt, key))
        y.append(configmap_yaml("client-ca", "ca.crt", read(cls.client_ca)))
        y.append(configmap_yaml("backend-ca", "ca.crt", read(cls.backend_ca)))
        y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - name: https-a
    protocol: HTTPS
    port: {cls.p_https}
    hostname: a.example.com
    tls: {{certificateRefs: [{{name: cert-a}}]}}
  - name: https-wild
    protocol: HTTPS
    port: {cls.p_https}
    hostname: "*.wild.example"
    tls: {{certificateRefs: [{{name: cert-wild}}]}}
  - name: https-any
    protocol: HTTPS
    port: {cls.p_https}
    tls: {{certificateRefs: [{{name: cert-default}}]}}
  - name: pass
    protocol: TLS
    port: {cls.p_tls}
    hostname: pass.example
    tls: {{mode: Passthrough}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - name: pass-raw
    protocol: TLS
    port: {cls.p_tls}
    hostname: raw.example
    tls: {{mode: Passthrough}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - name: term
    protocol: TLS
    port: {cls.p_tls}
    hostname: term.example
    tls: {{mode: Terminate, certificateRefs: [{{name: cert-term}}]}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - name: reenc
    protocol: TLS
    port: {cls.p_tls}
    hostname: reenc.example
    tls: {{mode: Terminate, certificateRefs: [{{name: cert-reenc}}]}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
  - name: reenc-bad
    protocol: TLS
    port: {cls.p_tls}
    hostname: reenc-bad.example
    tls: {{mode: Terminate, certificateRefs: [{{name: cert-reenc}}]}}
    allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw-mtls, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{{kind: ConfigMap, group: "", name: client-ca}}]
  listeners:
  - name: mtls
    protocol: HTTPS
    port: {cls.p_mtls}
    tls: {{certificateRefs: [{{name: cert-default}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw-insecure, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    frontend:
      default:
        validation:
          mode: AllowInsecureFallback
          caCertificateRefs: [{{kind: ConfigMap, group: "", name: client-ca}}]
  listeners:
  - name: insecure
    protocol: HTTPS
    port: {cls.p_insecure}
    tls: {{certificateRefs: [{{name: cert-default}}]}}
---
""")
        for n, e in cls.echo.items():
            y.append(service_yaml("echo-" + n, e.port))
        y.append(service_yaml("tls-backend", cls.tls_backend.port))
        y.append(service_yaml("tcp-backend", cls.tcp_backend.port))
        y.append(service_yaml("raw-backend", cls.raw_backend.port))
        y.append(service_yaml("reenc-backend", cls.reenc_backend.port))
        y.append(service_yaml("reenc-bad-backend", cls.reenc_backend.port))
        for svc, host in (("reenc-backend", "backend.internal"),
                          ("reenc-bad-backend", "other.internal")):
            y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {svc}, namespace: default}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {svc}}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: backend-ca}}]
    hostname: {host}
---
""")

        def http_route(name, gw, section, backend):
            sec = f", sectionName: {section}" if section else ""
            return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {gw}{sec}}}]
  rules: [{{backendRefs: [{{name: echo-{backend}, port: {cls.echo[backend].port}}}]}}]
---
"""
        y.append(http_route("r-a", "gw", "https-a", "a"))
        y.append(http_route("r-wild", "gw", "https-wild", "wild"))
        y.append(http_route("r-any", "gw", "https-any", "any"))
        y.append(http_route("r-mtls", "gw-mtls", None, "mtls"))
        y.append(http_route("r-insecure", "gw-insecure", None, "insecure"))
        y.append(f"""
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: pass, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: pass}}]
  hostnames: [pass.example]
  rules: [{{backendRefs: [{{name: tls-backend, port: {cls.tls_backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: pass-raw, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: pass-raw}}]
  hostnames: [raw.example]
  rules: [{{backendRefs: [{{name: raw-backend, port: {cls.raw_backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: term, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: term}}]
  hostnames: [term.example]
  rules: [{{backendRefs: [{{name: tcp-backend, port: {cls.tcp_backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: reenc, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: reenc}}]
  hostnames: [reenc.example]
  rules: [{{backendRefs: [{{name: reenc-backend, port: {cls.reenc_backend.port}}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: reenc-bad, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: reenc-bad}}]
  hostnames: [reenc-bad.example]
  rules: [{{backendRefs: [{{name: reenc-bad-backend, port: {cls.reenc_backend.port}}}]}}]
---
""")
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        for e in cls.echo.values():
            e.shutdown()
        cls.tls_backend.close()
        cls.tcp_backend.close()
        cls.raw_backend.close()
        cls.reenc_backend.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    # --- HTTPS: SNI selection, isolation, ALPN -------------------------------------------

    def test_sni_selects_exact_listener_certificate(self):
        status, body, peer, _ = https_get(self.p_https, "a.example.com", "a.example.com", self.ca)
        self.assertEqual(status, 200)
        self.assertEqual(peer_names(peer), ["a.example.com"])
        self.assertIn(b'"backend": "a"', body)
        self.assertIn(b'"proto": "https"', body)

    def test_sni_selects_wildcard_listener(self):
        status, body, peer, _ = https_get(self.p_https, "x.wild.example", "x.wild.example", self.ca)
        self.assertEqual(status, 200)
        self.assertEqual(peer_names(peer), ["*.wild.example"])
        self.assertIn(b'"backend": "wild"', body)

    def test_unknown_sni_falls_to_catch_all(self):
        status, body, peer, _ = https_get(self.p_https, "other.example", "other.example", self.ca)
        self.assertEqual(status, 200)
        self.assertEqual(peer_names(peer), ["default.example"])
        self.assertIn(b'"backend": "any"', body)

    def test_host_of_another_listener_is_misdirected(self):
        status, _, _, _ = https_get(self.p_https, "a.example.com", "x.wild.example", self.ca)
        self.assertEqual(status, 421)
        # The catch-all SNI may not reach a host an exact listener claims either.
        status, _, _, _ = https_get(self.p_https, "other.example", "a.example.com", self.ca)
        self.assertEqual(status, 421)
        # A port in Host is ignored.
        status, _, _, _ = https_get(self.p_https, "a.example.com", "a.example.com:443", self.ca)
        self.assertEqual(status, 200)

    def test_alpn_http11(self):
        _, _, _, proto = https_get(self.p_https, "a.example.com", "a.example.com", self.ca,
                                   alpn=["http/1.1"])
        self.assertEqual(proto, "http/1.1")

    def test_tls_versions(self):
        ctx = client_context(self.ca)
        ctx.check_hostname = False
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        raw = socket.create_connection(("127.0.0.1", self.p_https), timeout=TIMEOUT)
        with self.assertRaises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="a.example.com")
        raw.close()
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_context(self.ca)
            ctx.minimum_version = ctx.maximum_version = version
            raw = socket.create_connection(("127.0.0.1", self.p_https), timeout=TIMEOUT)
            s = ctx.wrap_socket(raw, server_hostname="a.example.com")
            self.assertEqual(s.version(), {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                           ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
            s.close()

    def test_curl_resolve(self):
        if not shutil.which("curl"):
            self.skipTest("curl not installed")
        out = subprocess.run(
            ["curl", "-sS", "--cacert", self.ca, "--resolve",
             f"a.example.com:{self.p_https}:127.0.0.1", "-o", "/dev/null", "-w",
             "%{http_code} %{http_version}", f"https://a.example.com:{self.p_https}/"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.split()[0], "200", out.stderr)

    # --- frontend client certificates ----------------------------------------------------

    def test_client_cert_required(self):
        status, body, _, _ = https_get(self.p_mtls, "m.example", "m.example", self.ca,
                                       cert=self.client)
        self.assertEqual(status, 200)
        self.assertIn(b'"backend": "mtls"', body)
        for cert in (None, self.bad_client):
            with self.assertRaises((ssl.SSLError, OSError, IndexError, ValueError)):
                https_get(self.p_mtls, "m.example", "m.example", self.ca, cert=cert)

    def test_client_cert_insecure_fallback(self):
        for cert in (None, self.client, self.bad_client):
            status, body, _, _ = https_get(self.p_insecure, "i.example", "i.example", self.ca,
                                           cert=cert)
            self.assertEqual(status, 200)
            self.assertIn(b'"backend": "insecure"', body)

    # --- TLS listeners: passthrough, terminate, garbage ----------------------------------

    def test_passthrough_client_sees_backend_certificate(self):
        ctx = client_context(self.backend_ca)
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname="pass.example")
        try:
            self.assertEqual(peer_names(s.getpeercert()), ["pass.example"])
            self.assertEqual(recv_until(s, b"\n"), b"HELLO passthrough-backend\n")
            s.sendall(b"ping through")
            self.assertEqual(recv_until(s, b"through"), b"ping through")
        finally:
            s.close()

    def test_passthrough_client_hello_in_tiny_segments(self):
        # A ClientHello written a few bytes at a time (separate TCP segments) still routes.
        hello = real_client_hello(self.backend_ca, "pass.example")
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            import time
            for i in range(0, len(hello), 7):
                raw.sendall(hello[i:i + 7])
                time.sleep(0.002)
            data = raw.recv(65536)
            self.assertTrue(data and data[0] == 22, "expected a ServerHello record")
        finally:
            raw.close()

    def test_passthrough_relays_bytes_untouched_with_half_close(self):
        # The backend receives the ClientHello byte for byte, then what the client sent
        # right behind it in the same write; the client's FIN reaches it (the echo answers
        # "BYE n" only then) while the backend's direction stays open. Once with a real
        # ClientHello, once with one of ~30 KB over two records (larger than the relay's
        # 16 KiB buffer).
        for hello in (real_client_hello(self.backend_ca, "raw.example"),
                      big_client_hello("raw.example", 30000)):
            tail = b"after-the-hello" * 3
            raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
            try:
                raw.sendall(hello + tail)
                raw.shutdown(socket.SHUT_WR)
                n = len(hello) + len(tail)
                self.assertEqual(recv_all(raw),
                                 b"HELLO raw-backend\n" + hello + tail + b"BYE %d\n" % n)
            finally:
                raw.close()

    def test_terminate_relays_plaintext(self):
        ctx = client_context(self.ca)
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname="term.example")
        try:
            self.assertEqual(peer_names(s.getpeercert()), ["term.example"])
            self.assertEqual(recv_until(s, b"\n"), b"HELLO terminate-backend\n")
            s.sendall(b"abc")
            self.assertEqual(recv_until(s, b"abc"), b"abc")
        finally:
            s.close()

    def test_terminate_reencrypts_with_backend_tls_policy(self):
        ctx = client_context(self.ca)
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname="reenc.example")
        try:
            # The gateway's certificate to the client, the backend's TLS behind it.
            self.assertEqual(peer_names(s.getpeercert()),
                             ["reenc-bad.example", "reenc.example"])
            self.assertEqual(recv_until(s, b"\n"), b"HELLO reencrypt-backend\n")
            s.sendall(b"through-two-tls-hops")
            self.assertEqual(recv_until(s, b"hops"), b"through-two-tls-hops")
        finally:
            s.close()
        self.assertIn("backend.internal", self.reenc_sni)

    def test_backend_hostname_mismatch_never_reaches_backend(self):
        before = len(self.reenc_sni)
        ctx = client_context(self.ca)
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw, server_hostname="reenc-bad.example")
        try:
            # The backend's certificate names backend.internal, the policy other.internal:
            # the gateway refuses it and closes the client's stream without data.
            try:
                data = s.recv(100)
            except (ssl.SSLError, ConnectionResetError):  # a timeout is a failure
                data = b""
            self.assertEqual(data, b"")
        finally:
            s.close()
        self.assertIn("other.internal", self.reenc_sni[before:])

    def test_unknown_sni_on_tls_port_is_closed(self):
        ctx = client_context(self.ca)
        ctx.check_hostname = False
        raw = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        with self.assertRaises((ssl.SSLError, OSError)):
            ctx.wrap_socket(raw, server_hostname="nobody.example")
        raw.close()

    def test_garbage_client_hello_is_closed(self):
        for port in (self.p_tls, self.p_https):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # Closed (EOF or reset) well before the test's own timeout.
                try:
                    self.assertEqual(s.recv(100), b"")
                except ConnectionResetError:
                    pass
            finally:
                s.close()
        # A record header announcing a ClientHello far above the limit.
        s = socket.create_connection(("127.0.0.1", self.p_tls), timeout=TIMEOUT)
        try:
            s.sendall(b"\x16\x03\x01\x40\x00\x01\xff\xff\xff")
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass
        finally:
            s.close()

    def test_metrics_count_tls_listeners(self):
        self.test_passthrough_client_sees_backend_certificate()
        self.assertGreater(self.gw.metric("archway_listener_received_bytes_total", listener="pass"), 0)
        self.assertGreater(self.gw.metric("archway_listener_sent_bytes_total", listener="pass"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
