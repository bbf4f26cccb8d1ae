#!/usr/bin/python3
"""Tests of the echo backends (tests/support/echo.py) with real clients: curl,
python3-h2, python3-grpcio, raw sockets. Also checks the conformance replay's
CompareRoundTrip against echo responses."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
sys.path.insert(0, os.path.join(REPO, "tests", "conformance"))

import certs  # noqa: E402
import clients  # noqa: E402
import procs  # noqa: E402
from traffic.compare import compare_http  # noqa: E402

GRPC = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/"


def curl(*args):
    env = dict(os.environ)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(k, None)
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-i"] + list(args), capture_output=True, env=env,
                       timeout=20)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def split_http(text):
    """Last response of curl -i output: (status, headers dict lower-case, body)."""
    blocks = text.replace("\r\n", "\n").split("\n\n")
    # Skip interim/upgrade responses printed before the final one.
    i = 0
    while blocks[i].startswith("HTTP/1.1 101") or blocks[i].startswith("HTTP/1.1 100"):
        i += 1
    head, body = blocks[i], "\n\n".join(blocks[i + 1:])
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        n, _, v = l.partition(":")
        headers[n.strip().lower()] = v.strip()
    return status, headers, body


class EchoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="echo-test-")
        d = cls.dir
        cls.ca = certs.make_ca(d, "ca")
        cls.server = certs.make_leaf(d, "server", ["abc.example.com"], ["serverAuth"], ca=cls.ca)
        cls.client = certs.make_leaf(d, "client", [], ["clientAuth"], ca=cls.ca)
        tls = {"cert": cls.server[0], "key": cls.server[1]}
        tls_ca = dict(tls, client_ca=cls.ca[0])
        cls.log = os.path.join(d, "http.log")
        pods = [
            {"pod": "web-abcde12345-xyz12", "namespace": "ns-a", "service": "web", "ip": "127.31.0.2",
             "kind": "http", "http_port": 0, "h2c_port": 0, "https_port": 0, "tls": tls_ca, "log": cls.log},
            {"pod": "plain-abcde12345-xyz12", "namespace": "ns-a", "ip": "127.31.0.3", "kind": "http",
             "http_port": 0, "h2c_port": 0, "https_port": 0, "tls": tls},
            {"pod": "grpc-abcde12345-xyz12", "namespace": "ns-g", "ip": "127.31.0.4", "kind": "grpc",
             "http_port": 0, "https_port": 0, "tls": tls},
            {"pod": "tcp-abcde12345-xyz12", "namespace": "ns-t", "service": "tcp", "ip": "127.31.0.5", "kind": "tcp",
             "tcp_port": 0, "tls_port": 0, "tls": tls},
            {"pod": "udp-abcde12345-xyz12", "namespace": "ns-u", "service": "udp", "ip": "127.31.0.6", "kind": "udp",
             "udp_port": 0},
            {"pod": "dns-abcde12345-xyz12", "namespace": "ns-u", "ip": "127.31.0.7", "kind": "dns", "dns_port": 0},
        ]
        cls.echo = procs.EchoProcess(pods, d)
        ready = cls.echo.start()
        cls.ports = {p["pod"].split("-")[0]: p["ports"] for p in ready}
        with open(cls.client[0]) as f:
            cls.client_pem = f.read()
        with open(cls.ca[0]) as f:
            cls.ca_pem = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def url(self, pod, key, path, scheme="http"):
        ip = {"web": "127.31.0.2", "plain": "127.31.0.3"}[pod]
        return "%s://%s:%d%s" % (scheme, ip, self.ports[pod][key], path)

    # ------------------------------------------------------------------ HTTP/1.1

    def test_http1_echo_fields_and_set_header(self):
        rc, out, err = curl("-H", "X-Echo-Set-Header: X-Foo:one,X-Foo:two, Other:v", "-H", "x-lower-case: a",
                            "-H", "X-Multi: 1", "-H", "X-Multi: 2", self.url("web", "http_port", "/a/b?x=1&y=%20"))
        self.assertEqual(rc, 0, err)
        status, headers, body = split_http(out)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["x-foo"], "one,two")
        self.assertEqual(headers["other"], "v")
        j = json.loads(body)
        self.assertEqual(j["path"], "/a/b?x=1&y=%20")
        self.assertEqual(j["host"], "127.31.0.2:%d" % self.ports["web"]["http_port"])
        self.assertEqual(j["method"], "GET")
        self.assertEqual(j["proto"], "HTTP/1.1")
        self.assertEqual(j["headers"]["X-Lower-Case"], ["a"])
        self.assertEqual(j["headers"]["X-Multi"], ["1", "2"])
        self.assertNotIn("Host", j["headers"])
        self.assertEqual((j["namespace"], j["service"], j["pod"]), ("ns-a", "web", "web-abcde12345-xyz12"))
        self.assertNotIn("tls", j)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(self.log) as f:
                if "Echoing back request made to /a/b?x=1&y=%20 to client (127.0.0.1:" in f.read():
                    break
            time.sleep(0.05)
        else:
            self.fail("request not logged")

    def test_keep_alive_and_head(self):
        rc, out, err = curl("--head", self.url("web", "http_port", "/h"), "--next", "-i", "-X", "POST", "-d", "hello",
                            self.url("web", "http_port", "/p"))
        self.assertEqual(rc, 0, err)
        self.assertIn('"method": "POST"', out)
        self.assertEqual(out.count("HTTP/1.1 200 OK"), 2)

    def test_status_and_delay(self):
        rc, out, _ = curl(self.url("web", "http_port", "/status/418"))
        self.assertEqual(split_http(out)[0], 418)
        rc, out, _ = curl(self.url("web", "http_port", "/status/abc"))
        self.assertEqual(split_http(out)[0], 400)
        t0 = time.monotonic()
        rc, out, _ = curl(self.url("web", "http_port", "/d?delay=300ms"))
        self.assertEqual(split_http(out)[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        rc, out, _ = curl(self.url("web", "http_port", "/d?delay=bogus"))
        self.assertEqual(split_http(out)[0], 500)

    def test_retry_code_and_reset(self):
        port = self.ports["web"]["http_port"]
        get = lambda p: clients.http1_request("127.31.0.2", port, "GET", p, [("Host", "x")])  # noqa: E731
        path = "/retry/t?responseCode=503&succeedAfter=2&uuid=u1"
        self.assertEqual(get(path).status, 503)
        self.assertEqual(get(path).status, 503)
        ok = get(path)
        self.assertEqual(ok.status, 200)
        self.assertEqual(json.loads(ok.body)["path"], path)
        path = "/retry/t?succeedAfter=1&uuid=u2"
        with self.assertRaises(clients.TransportError) as cm:
            get(path)
        self.assertIn("reset", str(cm.exception).lower())
        self.assertEqual(get(path).status, 200)

    # ------------------------------------------------------------------ h2c / TLS

    def test_h2c_prior_knowledge_and_upgrade(self):
        rc, out, err = curl("--http2-prior-knowledge", self.url("web", "h2c_port", "/pk"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(split_http(out)[2])["proto"], "HTTP/2.0")
        rc, out, err = curl("--http2", self.url("web", "h2c_port", "/up"))
        self.assertEqual(rc, 0, err)
        self.assertIn("HTTP/1.1 101", out)
        self.assertEqual(json.loads(split_http(out)[2])["path"], "/up")
        rc, out, _ = curl("--http1.1", self.url("web", "h2c_port", "/no"))
        self.assertEqual(split_http(out)[0], 400)
        r = clients.h2_request("127.31.0.2", self.ports["web"]["h2c_port"], "GET", "/py", "example.com",
                               [("x-echo-set-header", "A:b")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("a"), "b")
        self.assertEqual(json.loads(r.body)["host"], "example.com")

    def test_tls_h2_sni_and_client_cert(self):
        tls = clients.TLSOptions(server_name="abc.example.com", ca_pem=self.ca_pem,
                                 client_cert=(self.client[0], self.client[1]))
        r = clients.h2_request("127.31.0.2", self.ports["web"]["https_port"], "GET", "/t", "abc.example.com", [],
                               scheme="https", tls=tls)
        j = json.loads(r.body)
        self.assertEqual(j["tls"]["serverName"], "abc.example.com")
        self.assertEqual(j["tls"]["negotiatedProtocol"], "h2")
        self.assertEqual(j["tls"]["peerCertificates"], [self.client_pem])
        self.assertTrue(r.cert_requested)

    def test_tls_http1_without_client_ca(self):
        tls = clients.TLSOptions(server_name="abc.example.com", ca_pem=self.ca_pem, alpn=["http/1.1"])
        r = clients.http1_request("127.31.0.3", self.ports["plain"]["https_port"], "GET", "/t",
                                  [("Host", "abc.example.com")], tls=tls)
        j = json.loads(r.body)
        self.assertEqual(j["proto"], "HTTP/1.1")
        self.assertEqual(j["tls"]["negotiatedProtocol"], "http/1.1")
        self.assertFalse(r.cert_requested)
        # A name the certificate does not cover is refused by the client, as Go would.
        bad = clients.TLSOptions(server_name="other.example.com", ca_pem=self.ca_pem)
        with self.assertRaises(clients.TransportError):
            clients.http1_request("127.31.0.3", self.ports["plain"]["https_port"], "GET", "/", [("Host", "x")],
                                  tls=bad)

    def test_websocket(self):
        port = self.ports["web"]["http_port"]
        msgs = [(1, b"Websocket Support!"), (2, bytes([1, 2, 3, 4, 5, 6, 7]))]
        got = clients.websocket_echo("127.31.0.2", port, "127.31.0.2:%d" % port, "/ws", msgs, "ws://gateway/t")
        self.assertEqual(got, msgs)

    # ------------------------------------------------------------------ gRPC

    def test_grpc(self):
        port = self.ports["grpc"]["http_port"]
        r = clients.grpc_call("127.31.0.4", port, GRPC + "Echo", authority="foo.example", metadata={"X-Md": "v"})
        self.assertEqual(r.code, "OK", r.details)
        self.assertEqual(r.response["fully_qualified_method"], GRPC + "Echo")
        self.assertEqual(r.response["context"]["namespace"], "ns-g")
        self.assertEqual(r.response["context"]["pod"], "grpc-abcde12345-xyz12")
        self.assertIn(("x-md", "v"), r.response["headers"])
        r = clients.grpc_call("127.31.0.4", port, GRPC + "EchoTwo")
        self.assertEqual(r.response["fully_qualified_method"], GRPC + "EchoTwo")
        self.assertEqual(clients.grpc_call("127.31.0.4", port, GRPC + "EchoThree").code, "UNIMPLEMENTED")
        r = clients.grpc_call("127.31.0.4", 1, GRPC + "Echo", timeout=2)
        self.assertTrue(r.transport_error)
        tls = clients.TLSOptions(server_name="abc.example.com", ca_pem=self.ca_pem)
        r = clients.grpc_call("127.31.0.4", self.ports["grpc"]["https_port"], GRPC + "Echo", tls=tls)
        self.assertEqual(r.code, "OK", r.details)
        self.assertIsNotNone(r.response["tls"])

    # ------------------------------------------------------------------ L4

    def test_tcp_echo(self):
        is_tls, j = clients.tcp_echo_exchange("127.31.0.5", self.ports["tcp"]["tcp_port"])
        self.assertEqual(is_tls, "false")
        self.assertEqual((j["namespace"], j["service"], j["isTLS"]), ("ns-t", "tcp", False))
        tls = clients.TLSOptions(server_name="abc.example.com", ca_pem=self.ca_pem)
        is_tls, j = clients.tcp_echo_exchange("127.31.0.5", self.ports["tcp"]["tls_port"], tls)
        self.assertEqual(is_tls, "true")
        self.assertEqual(j["tls"]["serverName"], "abc.example.com")
        self.assertTrue(j["pod"].startswith("tcp-"))

    def test_udp_and_dns(self):
        j = json.loads(clients.udp_exchange("127.31.0.6", self.ports["udp"]["udp_port"], "hello", timeout=5))
        self.assertEqual(j, {"request": "hello", "namespace": "ns-u", "ingress": "", "service": "udp",
                             "pod": "udp-abcde12345-xyz12"})
        reply = clients.dns_query("127.31.0.7", self.ports["dns"]["dns_port"], "foo.bar.com.", timeout=5)
        self.assertTrue(reply[2] & 0x80)  # QR bit: a response

    # ------------------------------------------------------------------ CompareRoundTrip

    def test_compare_round_trip(self):
        port = self.ports["web"]["http_port"]
        r = clients.http1_request("127.31.0.2", port, "GET", "/c?q=1",
                                  [("Host", "h.example"), ("X-Echo-Set-Header", "X-Resp:v"), ("X-In", "a")])
        case = {"request": {"path": "/c?q=1"}, "expected_request": {"host": "h.example", "headers": {"x-in": "a"},
                                                                      "absent_headers": ["X-Gone"]},
                "response": {"statuses": [200], "headers": {"x-resp": "v"}, "absent_headers": ["X-Nope"]},
                "backend": {"name": "web", "namespace": "ns-a"}}
        self.assertIsNone(compare_http(case, r, "GET", "/c?q=1", "http://x/c"))
        wrong = [
            ({"backend": {"name": "other", "namespace": "ns-a"}}, "pod"),
            ({"backend": {"name": "web", "namespace": "ns-b"}}, "namespace"),
            ({"expected_request": {"host": "zzz"}}, "host"),
            ({"expected_request": {"headers": {"X-In": "b"}}}, "X-In"),
            ({"expected_request": {"absent_headers": ["X-In"]}}, "absent"),
            ({"response": {"statuses": [404]}}, "status"),
            ({"response": {"headers": {"X-Resp": "w"}}}, "X-Resp"),
        ]
        for patch, word in wrong:
            c = dict(case, **patch)
            diff = compare_http(c, r, "GET", "/c?q=1", "http://x/c")
            self.assertIsNotNone(diff, patch)
            self.assertIn(word.lower(), diff.lower())
        self.assertIn("path", compare_http(case, r, "GET", "/c", "http://x/c"))
        # 504 satisfies any expectation that lists 408 or 504.
        timeout_resp = clients.Response(504, [], b"", "HTTP/1.1")
        self.assertIsNone(compare_http({"response": {"statuses": [408]}}, timeout_resp, "GET", "/", "http://x/"))
        redirect = clients.Response(302, [("Location", "https://example.org:8443/new")], b"", "HTTP/1.1")
        rc = {"response": {"statuses": [302]}, "redirect": {"scheme": "https", "host": "example.org",
                                                             "port": "8443", "path": "/new"}}
        self.assertIsNone(compare_http(rc, redirect, "GET", "/", "http://x/old"))
        rc["redirect"]["port"] = ""
        self.assertIn("port", compare_http(rc, redirect, "GET", "/", "http://x/old"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
