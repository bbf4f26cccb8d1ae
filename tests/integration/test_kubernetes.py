#!/usr/bin/python3
"""`archway run --kubernetes` against a fake API server (tests/support/fake_kube.py): HTTPS
with a CA made at test time, a bearer token, lists and watch streams, status PATCHes.
Needs $ARCHWAY_BIN (default: build-asan-ubsan/archway)."""

import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import certs  # noqa: E402
import fake_kube  # noqa: E402
import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN  # noqa: E402

CONTROLLER = manifests.CONTROLLER
TOKEN = "test-token-0123456789"
WAIT_S = 30


BackendServer = procs.NamedBackend


def service(name, port):
    return manifests.service(name, port)


def route(backend, prefix="/echo"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "main", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                                "backendRefs": [{"name": backend, "port": 80}]}]},
            # Written by another controller: must survive our status writes.
            "status": {"parents": [{"parentRef": {"name": "other-gw"},
                                    "controllerName": "example.com/other",
                                    "conditions": [{"type": "Accepted", "status": "True",
                                                    "reason": "Accepted", "message": "",
                                                    "observedGeneration": 1,
                                                    "lastTransitionTime": "2025-01-01T00:00:00Z"}]}]}}


def conditions(status):
    return {c["type"]: c["status"] for c in status.get("conditions", [])}


def write_kubeconfig(d, port, token):
    # certificate-authority relative to the kubeconfig's directory, as kubectl resolves it.
    path = os.path.join(d, "kubeconfig")
    with open(path, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: ca.crt
contexts:
- name: test
  context: {{cluster: fake, user: tester, namespace: default}}
users:
- name: tester
  user: {{token: {token}}}
""")
    return path


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("archway binary not built: " + BIN)
        cls.dir = tempfile.mkdtemp(prefix="kube-test-")
        d = cls.dir
        ca = certs.make_ca(d, "ca")
        cls.server_cert = certs.make_leaf(d, "apiserver", ["127.0.0.1", "localhost"], ["serverAuth"], ca=ca)
        # The XBackendTrafficPolicy CRD is "not installed": that kind must not hold up the rest.
        cls.kube = fake_kube.FakeKube(cls.server_cert[0], cls.server_cert[1], TOKEN,
                                      missing=("XBackendTrafficPolicy",))
        cls.a = BackendServer("a")
        cls.b = BackendServer("b")
        cls.port = procs.free_port()
        cls.admin = procs.free_port()
        k = cls.kube
        k.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        for o in service("svc-a", cls.a.server_address[1]) + service("svc-b", cls.b.server_address[1]):
            k.put(o)
        k.put(manifests.gateway_class())
        k.put(manifests.gateway_class("someone-else", "example.com/other"))
        k.put(manifests.gateway([("http", cls.port)]))
        k.put(route("svc-a"))
        # The first status writes fail with 500: they must be retried.
        k.fail_patches = 2
        cls.kubeconfig = write_kubeconfig(d, k.port, TOKEN)
        cls.proc = procs.Archway(args=["--kubernetes", "--kubeconfig", cls.kubeconfig], workers=1,
                                 admin_port=cls.admin, log_path=os.path.join(d, "archway.log"))

    @classmethod
    def tearDownClass(cls):
        failure = None
        if hasattr(cls, "proc"):
            # A clean stop: exit 0, no sanitizer report (leaks are reported at exit).
            failure = cls.proc.unclean_stop()
        for s in ("a", "b"):
            if hasattr(cls, s):
                getattr(cls, s).shutdown()
        if hasattr(cls, "kube"):
            cls.kube.close()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if failure:
            raise AssertionError(failure)

    def get(self, path):
        return procs.http_get("http://127.0.0.1:%d%s" % (self.port, path), timeout=5)

    def backend_of(self, path):
        status, body = self.get(path)
        if status != 200:
            return status
        return json.loads(body)["backend"]

    def wait_backend(self, path, want):
        got = procs.wait_until(lambda: self.backend_of(path) == want, WAIT_S, 0.1)
        self.assertTrue(got, "GET %s never reached %r (last: %r)\n%s" %
                        (path, want, self.backend_of(path), self.proc.output()[-3000:]))

    def test_1_serves_and_writes_status(self):
        self.wait_backend("/echo/x", "a")
        k = self.kube

        def patched():
            gc = k.get("gatewayclasses", "", "archway")
            gw = k.get("gateways", "default", "gw")
            rt = k.get("httproutes", "default", "main")
            return gc, gw, rt

        def done():
            gc, gw, rt = patched()
            ours = [p for p in rt.get("status", {}).get("parents", []) if p.get("controllerName") == CONTROLLER]
            return (conditions(gc.get("status", {})).get("Accepted") == "True" and
                    conditions(gw.get("status", {})).get("Programmed") == "True" and ours)

        self.assertTrue(procs.wait_until(done, WAIT_S, 0.1), "statuses not written: %r\n%s" %
                        (patched(), self.proc.output()[-3000:]))
        gc, gw, rt = patched()
        self.assertEqual(k.failed_patches, 2)
        self.assertIn("(retrying)", self.proc.output())
        self.assertEqual(conditions(gc["status"])["Accepted"], "True")
        self.assertEqual(conditions(gw["status"])["Accepted"], "True")
        self.assertEqual(conditions(gw["status"])["Programmed"], "True")
        self.assertEqual(gw["status"]["listeners"][0]["attachedRoutes"], 1)
        parents = rt["status"]["parents"]
        ours = [p for p in parents if p["controllerName"] == CONTROLLER]
        other = [p for p in parents if p["controllerName"] == "example.com/other"]
        self.assertEqual(len(ours), 1)
        self.assertEqual(conditions(ours[0])["Accepted"], "True")
        self.assertEqual(conditions(ours[0])["ResolvedRefs"], "True")
        self.assertEqual(ours[0]["parentRef"]["name"], "gw")
        self.assertEqual(len(other), 1, "another controller's entry was dropped: %r" % parents)
        self.assertEqual(other[0]["conditions"][0]["lastTransitionTime"], "2025-01-01T00:00:00Z")
        # Real transition times, not the translator's placeholder.
        for c in gw["status"]["conditions"]:
            self.assertNotEqual(c["lastTransitionTime"], "1970-01-01T00:00:00Z")
        # The GatewayClass of another controller is never written.
        self.assertEqual(k.patches_for("gatewayclasses", "someone-else"), [])
        self.assertNotIn("status", k.get("gatewayclasses", "", "someone-else"))
        # Writes settle: statuses that did not change are not written again.
        n = len(k.patches)
        self.assertFalse(procs.wait_until(lambda: len(k.patches) > n + 3, 2, 0.2),
                         "status writes do not settle: %r" % k.patches[-5:])

    def test_2_modified_changes_routing(self):
        self.wait_backend("/echo/x", "a")
        self.kube.put(route("svc-b"))
        self.wait_backend("/echo/x", "b")
        # observedGeneration follows the new generation.
        def observed():
            rt = self.kube.get("httproutes", "default", "main")
            ours = [p for p in rt.get("status", {}).get("parents", []) if p["controllerName"] == CONTROLLER]
            return ours and all(c["observedGeneration"] == rt["metadata"]["generation"] for c in ours[0]["conditions"])
        self.assertTrue(procs.wait_until(observed, WAIT_S, 0.1))
        self.assertGreater(self.kube.get("httproutes", "default", "main")["metadata"]["generation"], 1)

    def test_2b_invalid_update_keeps_last_good(self):
        # The API server stored an update our validation rejects (no admission webhook):
        # the last valid version keeps serving and our status entry says why.
        self.wait_backend("/echo/x", "b")
        bad = route("svc-a")
        bad["spec"]["rules"][0]["backendRefs"][0]["port"] = 70000
        self.kube.put(bad)
        generation = self.kube.get("httproutes", "default", "main")["metadata"]["generation"]

        def ours():
            rt = self.kube.get("httproutes", "default", "main")
            p = [p for p in rt.get("status", {}).get("parents", [])
                 if p["controllerName"] == CONTROLLER]
            return {c["type"]: c for c in p[0]["conditions"]} if p else {}

        got = procs.wait_until(lambda: "PartiallyInvalid" in ours(), WAIT_S, 0.1)
        self.assertTrue(got, "no PartiallyInvalid: %r\n%s" % (ours(), self.proc.output()[-3000:]))
        conds = ours()
        self.assertEqual(self.backend_of("/echo/x"), "b")
        self.assertEqual(conds["Accepted"]["status"], "True")
        self.assertLess(conds["Accepted"]["observedGeneration"], generation)
        msg = conds["PartiallyInvalid"]["message"]
        self.assertTrue(msg.startswith("Fall Back: generation %d is invalid" % generation), msg)
        self.assertIn("backendRefs[0].port", msg)
        self.assertIn("HTTPRoute default/main: generation %d rejected" % generation,
                      self.proc.output())
        # Fixed: served again, and the fall-back condition goes away.
        self.kube.put(route("svc-a"))
        self.wait_backend("/echo/x", "a")
        got = procs.wait_until(lambda: ours() and "PartiallyInvalid" not in ours(), WAIT_S, 0.1)
        self.assertTrue(got, repr(ours()))
        self.kube.put(route("svc-b"))
        self.wait_backend("/echo/x", "b")

    def test_3_gone_watch_relists(self):
        k = self.kube
        self.wait_backend("/echo/x", "b")
        lists_before = k.count("GET", "/apis/gateway.networking.k8s.io/v1/httproutes?limit=")
        # A change no watch will report (only a list sees it), then every watch expires.
        k.put(route("svc-a", prefix="/relisted"), silent=True)
        k.expire_watches()
        self.wait_backend("/relisted/y", "a")
        self.assertGreater(k.count("GET", "/apis/gateway.networking.k8s.io/v1/httproutes?limit="), lists_before)
        self.assertTrue(self.proc.alive())

    def test_4_deleted_removes_route(self):
        self.wait_backend("/relisted/y", "a")
        self.kube.delete(route("svc-a"))
        got = procs.wait_until(lambda: self.get("/relisted/y")[0] == 404, WAIT_S, 0.1)
        self.assertTrue(got, self.proc.output()[-3000:])
        # The Gateway now reports no attached route.
        def detached():
            gw = self.kube.get("gateways", "default", "gw")
            return gw["status"]["listeners"][0]["attachedRoutes"] == 0
        self.assertTrue(procs.wait_until(detached, WAIT_S, 0.1))

    def test_5_missing_crd_is_reported(self):
        out = self.proc.output()
        self.assertIn("XBackendTrafficPolicy is not served by the API server", out)
        self.assertTrue(self.proc.alive())


class WrongTokenTest(unittest.TestCase):
    def test_wrong_token_is_a_clear_error(self):
        if not os.path.exists(BIN):
            self.skipTest("archway binary not built: " + BIN)
        d = tempfile.mkdtemp(prefix="kube-token-")
        try:
            ca = certs.make_ca(d, "ca")
            cert = certs.make_leaf(d, "apiserver", ["127.0.0.1"], ["serverAuth"], ca=ca)
            kube = fake_kube.FakeKube(cert[0], cert[1], TOKEN)
            try:
                cfg = write_kubeconfig(d, kube.port, "not-the-token")
                child = procs.Child([BIN, "run", "--kubernetes", "--kubeconfig", cfg, "--workers", "1",
                                     "--admin-address", "127.0.0.1:%d" % procs.free_port()],
                                    os.path.join(d, "archway.log"))
                exited = procs.wait_until(lambda: not child.alive(), WAIT_S, 0.1)
                rc = child.stop()
                out = child.output()
                self.assertTrue(exited, out)
                self.assertEqual(rc, 2, out)
                self.assertIn("HTTP 401 Unauthorized", out)
                self.assertIn("credentials were rejected", out)
                self.assertGreater(kube.rejected, 0)
                self.assertNotIn("AddressSanitizer", out)
            finally:
                kube.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_bad_kubeconfig_is_a_clear_error(self):
        if not os.path.exists(BIN):
            self.skipTest("archway binary not built: " + BIN)
        d = tempfile.mkdtemp(prefix="kube-cfg-")
        try:
            cfg = os.path.join(d, "kubeconfig")
            with open(cfg, "w") as f:
                f.write("apiVersion: v1\nkind: Config\ncurrent-context: nope\ncontexts: []\n")
            child = procs.Child([BIN, "run", "--kubernetes", "--kubeconfig", cfg], os.path.join(d, "log"))
            procs.wait_until(lambda: not child.alive(), WAIT_S, 0.1)
            rc = child.stop()
            out = child.output()
            self.assertEqual(rc, 2, out)
            self.assertIn("kubeconfig %s: context \"nope\" is not defined in contexts" % cfg, out)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
