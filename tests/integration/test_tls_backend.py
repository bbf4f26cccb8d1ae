#!/usr/bin/env python3
"""End-to-end BackendTLSPolicy tests of `archway run`: HTTP proxied over TLS to an HTTPS
echo backend (SNI = validation.hostname, verified against the policy's CA), a hostname
that does not match the backend's certificate and a CA that did not sign it get a 5xx,
subjectAltNames replace the hostname check, and the Gateway's backend client
certificate is presented to a backend that requires one.
Run: /usr/bin/python3 tests/integration/test_tls_backend.py"""

import http.client
import json
import os
import shutil
import tempfile
import unittest

from l4_common import (BIN, GATEWAY_CLASS, Archway, HttpEcho, certs, configmap_yaml, free_port,
                       read, secret_yaml, server_context)
import manifests  # noqa: E402  (tests/support, on the path through l4_common)


def policy(name, service, ca_cm, hostname, sans=None):
    san = ""
    if sans:
        san = "\n    subjectAltNames: [" + ", ".join(
            f"{{type: Hostname, hostname: {h}}}" for h in sans) + "]"
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: "", kind: Service, name: {service}}}]
  validation:
    caCertificateRefs: [{{group: "", kind: ConfigMap, name: {ca_cm}}}]
    hostname: {hostname}{san}
---
"""


class BackendTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.dir = tempfile.mkdtemp()
        d = os.path.join(cls.dir, "certs")
        os.mkdir(d)
        ca, ca_key = certs.make_ca(d, "backend-ca")
        other_ca, _ = certs.make_ca(d, "other-ca")
        leaf = certs.make_leaf(d, "backend", ["backend.example", "alt.example"], ["serverAuth"],
                               ca=(ca, ca_key))
        client_ca, cc_key = certs.make_ca(d, "gw-client-ca")
        gw_client = certs.make_leaf(d, "gw-client", ["gateway.example"], ["clientAuth"],
                                    ca=(client_ca, cc_key))
        cls.echo = HttpEcho("tls", tls_context=server_context(*leaf))
        cls.mtls_echo = HttpEcho("mtls", tls_context=server_context(*leaf, client_ca=client_ca))
        cls.port = free_port()
        cls.mport = free_port()
        routes = ""
        for name in ("good", "wronghost", "wrongca", "sans", "mtls"):
            routes += f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {'gw-m' if name == 'mtls' else 'gw'}}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
    backendRefs: [{{name: svc-{name}, port: 443}}]
---
"""
        y = [GATEWAY_CLASS, f"""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners: [{{name: http, protocol: HTTP, port: {cls.port}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw-m, namespace: default}}
spec:
  gatewayClassName: archway
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    backend:
      clientCertificateRef: {{group: "", kind: Secret, name: gw-client}}
  listeners: [{{name: http, protocol: HTTP, port: {cls.mport}}}]
---
""", routes, configmap_yaml("backend-ca", "ca.crt", read(ca)),
             configmap_yaml("other-ca", "ca.crt", read(other_ca)),
             secret_yaml("gw-client", *gw_client)]
        for name in ("good", "wronghost", "wrongca", "sans"):
            y.append(manifests.to_yaml(manifests.service("svc-" + name, cls.echo.port,
                                                         service_port=443)))
        y.append(manifests.to_yaml(manifests.service("svc-mtls", cls.mtls_echo.port,
                                                     service_port=443)))
        y.append(policy("good", "svc-good", "backend-ca", "backend.example"))
        y.append(policy("wronghost", "svc-wronghost", "backend-ca", "nothere.example"))
        y.append(policy("wrongca", "svc-wrongca", "other-ca", "backend.example"))
        y.append(policy("sans", "svc-sans", "backend-ca", "nothere.example", sans=["alt.example"]))
        y.append(policy("mtls", "svc-mtls", "backend-ca", "backend.example"))
        with open(os.path.join(cls.dir, "all.yaml"), "w") as f:
            f.write("".join(y))
        cls.gw = Archway(cls.dir)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.echo.shutdown()
        cls.mtls_echo.shutdown()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def get(self, path, port=None):
        c = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=10)
        c.request("GET", path, headers={"Host": "www.example"})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def test_tls_to_backend(self):
        for _ in range(3):  # pooled TLS connections are reused correctly
            status, body = self.get("/good")
            self.assertEqual(status, 200, body)
            doc = json.loads(body)
            self.assertTrue(doc["tls"])
            self.assertEqual(doc["backend"], "tls")

    def test_hostname_mismatch_is_5xx(self):
        status, _ = self.get("/wronghost")
        self.assertIn(status, (500, 502, 503))

    def test_untrusted_ca_is_5xx(self):
        status, _ = self.get("/wrongca")
        self.assertIn(status, (500, 502, 503))

    def test_subject_alt_names_replace_hostname(self):
        status, body = self.get("/sans")
        self.assertEqual(status, 200, body)

    def test_backend_client_certificate(self):
        status, body = self.get("/mtls", port=self.mport)
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["client_cert"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
