#!/usr/bin/python3
"""`archway run -f DIR`: a change that fails validation leaves the last good version of the
object serving, and the status, the admin /status and the log say why; a fixed change is
then served; a file that stops parsing keeps all its objects serving; an object removed from
its file is removed; an object that was never valid is left out.
Needs $ARCHWAY_BIN (default: build-asan-ubsan/archway)."""

import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))

import manifests  # noqa: E402
import procs  # noqa: E402
from procs import BIN  # noqa: E402
WAIT_S = 30


BackendServer = procs.NamedBackend


def base_yaml(port, hostname="*.example.com", target_a=0, target_b=0):
    return manifests.to_yaml(manifests.gateway_class(),
                             manifests.gateway([manifests.listener("http", port, hostname=hostname)]),
                             manifests.service("svc-a", target_a),
                             manifests.service("svc-b", target_b))


def route_yaml(name, prefix, backend, marker, port=80):
    rule = manifests.prefix_rule(prefix, backend, port,
                                 filters=[manifests.response_header_set("X-Version", marker)])
    return manifests.to_yaml(manifests.http_route(name, [rule]))


def routes_file(*docs):
    return manifests.to_yaml(*docs)


class LastGoodTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest(f"{BIN} not built")
        cls.a = BackendServer("a")
        cls.b = BackendServer("b")
        cls.dir = tempfile.mkdtemp()
        cls.manifests = os.path.join(cls.dir, "manifests")
        os.mkdir(cls.manifests)
        cls.port = procs.free_port()
        cls.admin_port = procs.free_port()
        cls.base = os.path.join(cls.manifests, "base.yaml")
        cls.routes = os.path.join(cls.manifests, "routes.yaml")
        cls.write(cls.base, cls.base_text())
        cls.write(cls.routes, routes_file(route_yaml("main", "/app", "svc-a", "v1"),
                                          route_yaml("other", "/other", "svc-b", "o1")))
        cls.gw = procs.Archway(cls.manifests, workers=1, admin_port=cls.admin_port,
                               log_path=os.path.join(cls.dir, "archway.log"), ready_timeout=WAIT_S)

    @classmethod
    def tearDownClass(cls):
        failure = cls.gw.unclean_stop()
        cls.a.shutdown()
        cls.b.shutdown()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert not failure, failure

    @classmethod
    def base_text(cls, hostname="*.example.com", target_b=None):
        return base_yaml(cls.port, hostname, cls.a.server_address[1],
                         cls.b.server_address[1] if target_b is None else target_b)

    @staticmethod
    def write(path, text):
        # Rename-replace: the reader never sees a half-written file.
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    @classmethod
    def admin(cls, path):
        try:
            return cls.gw.admin(path)
        except OSError:
            return 0, ""

    def get(self, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                     headers={"Host": "www.example.com"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("X-Version"), json.loads(r.read())["backend"]
        except urllib.error.HTTPError as e:
            e.read()
            return e.code, None, None

    def item(self, kind, name):
        items = json.loads(self.admin("/status")[1])["items"]
        found = [i for i in items if i["kind"] == kind and i["metadata"]["name"] == name]
        return found[0] if found else None

    def wait_for(self, what, pred):
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what}\n{self.gw.output()[-3000:]}")

    @staticmethod
    def conditions(route_item):
        return {c["type"]: c for c in route_item["status"]["parents"][0]["conditions"]}

    def test_last_good_configuration_keeps_serving(self):
        self.assertEqual(self.wait_for("v1 served", lambda: self.get("/app")[1] == "v1" or None),
                         True)
        self.assertEqual(self.get("/app"), (200, "v1", "a"))
        self.assertEqual(self.get("/other"), (200, "o1", "b"))

        # 1. An invalid edit of "main" (port out of range) and a new route that was never
        # valid: main keeps its v1 version serving; "fresh" is left out.
        self.write(self.routes, routes_file(
            route_yaml("main", "/app", "svc-b", "v2", port=70000),
            route_yaml("other", "/other", "svc-b", "o1"),
            route_yaml("fresh", "/fresh", "svc-b", "f1", port=70000)))
        main = self.wait_for("the rejected change in /status",
                             lambda: (self.item("HTTPRoute", "main") or {}).get("rejectedChange")
                             and self.item("HTTPRoute", "main"))
        self.assertEqual(self.get("/app"), (200, "v1", "a"))
        self.assertEqual(self.get("/other"), (200, "o1", "b"))
        self.assertEqual(self.get("/fresh")[0], 404)
        self.assertEqual(main["metadata"]["generation"], 1)
        self.assertEqual(main["spec"]["rules"][0]["backendRefs"][0]["name"], "svc-a")
        rejected = main["rejectedChange"]
        self.assertTrue(rejected["location"].startswith(self.routes + ":"), rejected)
        self.assertTrue(any("backendRefs[0].port" in e for e in rejected["errors"]), rejected)
        conds = self.conditions(main)
        self.assertEqual(conds["Accepted"]["status"], "True")
        self.assertEqual(conds["Accepted"]["observedGeneration"], 1)
        partial = conds["PartiallyInvalid"]
        self.assertEqual((partial["status"], partial["reason"]), ("True", "UnsupportedValue"))
        self.assertTrue(partial["message"].startswith("Fall Back: "), partial)
        self.assertIn("backendRefs[0].port", partial["message"])
        self.assertIn("routes.yaml:", partial["message"])
        fresh = self.item("HTTPRoute", "fresh")
        self.assertNotIn("rejectedChange", fresh)
        fresh_conds = self.conditions(fresh)
        self.assertEqual(fresh_conds["Accepted"]["status"], "False")
        self.assertNotIn("PartiallyInvalid", fresh_conds)
        out = self.wait_for("the rejection in the log",
                            lambda: "HTTPRoute default/main: change rejected" in self.gw.output()
                            and self.gw.output())
        # file:line: Kind ns/name: field: why
        self.assertRegex(out, r"routes\.yaml:\d+: HTTPRoute default/main: "
                              r"spec\.rules\[0\]\.backendRefs\[0\]\.port: ")

        # 2. Fixed: the new version is served and the rejection is no longer reported.
        self.write(self.routes, routes_file(route_yaml("main", "/app", "svc-b", "v2"),
                                            route_yaml("other", "/other", "svc-b", "o1")))
        self.wait_for("v2 served", lambda: self.get("/app")[1] == "v2")
        self.assertEqual(self.get("/app"), (200, "v2", "b"))
        main = self.item("HTTPRoute", "main")
        self.assertEqual(main["metadata"]["generation"], 2)
        self.assertNotIn("rejectedChange", main)
        conds = self.conditions(main)
        self.assertNotIn("PartiallyInvalid", conds)
        self.assertEqual(conds["Accepted"]["observedGeneration"], 2)

        # 3. A YAML syntax error keeps every object of the file serving.
        log_before = len(self.gw.output())
        with open(self.routes, "w") as f:
            f.write(routes_file(route_yaml("main", "/app", "svc-a", "v3"), "kind: [unterminated\n"))
        self.wait_for("the parse error in the log",
                      lambda: "cannot parse" in self.gw.output()[log_before:])
        self.assertEqual(self.get("/app"), (200, "v2", "b"))
        self.assertEqual(self.get("/other"), (200, "o1", "b"))

        # 4. Other kinds: an invalid Gateway edit (listener hostname) and an invalid Service
        # edit (targetPort out of range) keep the served versions; the Gateway's status says why.
        self.write(self.base, self.base_text(hostname="-bad-.example.com", target_b=99999))
        gw = self.wait_for("the Gateway's rejected change",
                           lambda: (self.item("Gateway", "gw") or {}).get("rejectedChange")
                           and (self.item("Service", "svc-b") or {}).get("rejectedChange")
                           and self.item("Gateway", "gw"))
        self.assertEqual(self.get("/other"), (200, "o1", "b"))
        gw_conds = {c["type"]: c for c in gw["status"]["conditions"]}
        self.assertEqual(gw_conds["Accepted"]["status"], "True")
        self.assertEqual(gw_conds["archway.dev/RejectedChange"]["status"], "True")
        self.assertIn("hostname", gw_conds["archway.dev/RejectedChange"]["message"])
        self.write(self.base, self.base_text())
        self.wait_for("the Gateway valid again",
                      lambda: "rejectedChange" not in (self.item("Gateway", "gw") or
                                                       {"rejectedChange": 1}))

        # 5. Removing an object from its file removes it, even after a rejected edit.
        self.write(self.routes, routes_file(route_yaml("main", "/app", "svc-b", "v4", port=70000),
                                            route_yaml("other", "/other", "svc-b", "o1")))
        self.wait_for("main's rejected change",
                      lambda: (self.item("HTTPRoute", "main") or {}).get("rejectedChange"))
        self.assertEqual(self.get("/app"), (200, "v2", "b"))
        self.write(self.routes, route_yaml("other", "/other", "svc-b", "o2"))
        self.wait_for("o2 served", lambda: self.get("/other")[1] == "o2")
        self.assertIsNone(self.item("HTTPRoute", "main"))
        self.assertEqual(self.get("/app")[0], 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
