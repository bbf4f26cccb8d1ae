#!/usr/bin/python3
"""The README's quickstart, as shipped: examples/quickstart.yaml served by `archway run`
with the two demo backends scripts/quickstart.sh starts (ports 9001/9002, Gateway on 8080).
Checks the curls the README shows."""
import http.client
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import procs  # noqa: E402

BIN = os.environ.get("ARCHWAY_BIN", os.path.join(REPO, "build", "archway"))


def get(host, path):
    conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode()
    finally:
        conn.close()


class QuickstartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.backends = []
        for port, d in ((9001, "v1"), (9002, "v2")):
            cls.backends.append(procs.Child(
                ["/usr/bin/python3", "-m", "http.server", str(port), "--bind", "127.0.0.1",
                 "--directory", os.path.join(REPO, "examples", "backends", d)],
                os.path.join(cls.tmp, d + ".log")))
        cls.gw = procs.Archway(os.path.join(REPO, "examples", "quickstart.yaml"), workers=None,
                               binary=BIN, log_path=os.path.join(cls.tmp, "archway.log"))
        admin = cls.gw.admin_port
        # The backends may start after the gateway; wait until the default route answers.
        procs.wait_until(lambda: get("demo.example.com", "/")[0] == 200, 30, 0.2)
        cls.admin = admin

    @classmethod
    def tearDownClass(cls):
        cls.gw.stop()
        for b in cls.backends:
            b.stop()

    def test_weighted_default_route(self):
        seen = set()
        for _ in range(60):
            status, _, body = get("demo.example.com", "/")
            self.assertEqual(status, 200)
            seen.add(body.strip())
        # 90/10 split: v1 always shows up in 60 requests; v2 almost surely does too.
        self.assertIn("hello from backend v1", seen)

    def test_v2_prefix_rewritten(self):
        status, _, body = get("demo.example.com", "/v2/")
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), "hello from backend v2")

    def test_canonical_redirect(self):
        status, headers, _ = get("www.demo.example.com", "/")
        self.assertEqual(status, 301)
        # No port in the filter: the spec says the listener's port (8080) is kept.
        self.assertEqual(headers.get("location"), "http://demo.example.com:8080/")

    def test_status_endpoint_shows_accepted_routes(self):
        status, body = procs.http_get("http://127.0.0.1:%d/status" % self.admin)
        self.assertEqual(status, 200)
        self.assertIn(b"Accepted", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
