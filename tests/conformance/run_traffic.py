#!/usr/bin/python3
"""Replays the Gateway API conformance suite's traffic expectations (cases.json)
against a serving `archway run`.

The suite's world is built in file mode: base manifests, generated certificates,
each test's manifests; Deployments become local echo pods (tests/support/echo.py)
with synthesised EndpointSlices. One archway process serves the whole run; each
test's objects are applied and removed by writing and deleting files in the
watched directory, as the real suite applies and deletes them.

Usage: run_traffic.py [--profile GATEWAY-HTTP ...] [--test NAME ...] [--list]
                      [--consistency-timeout S] [--jobs N] [--keep]
Exit status: 0 when every run test passes or fails as listed in
expected_failures.txt; 1 when a test fails unexpectedly or a listed test
passes; 2 when the harness cannot run (missing binary, archway not ready)."""

import argparse
import collections
import concurrent.futures
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
sys.path.insert(0, HERE)

import clients  # noqa: E402
import procs  # noqa: E402
from traffic import world as worldmod  # noqa: E402
from traffic import status_checks  # noqa: E402
from traffic.compare import compare_http, canonical  # noqa: E402



def _find_shared():
    """The project's shared data sits beside the repository (../shared); a git
    worktree one level deeper also finds it. ARCHWAY_SHARED_DIR overrides."""
    cands = [os.environ.get("ARCHWAY_SHARED_DIR"), os.path.join(REPO, "..", "shared"),
             os.path.join(REPO, "..", "..", "shared")]
    for c in cands:
        if c and os.path.isdir(os.path.join(c, "conformance")):
            return os.path.abspath(c)
    return os.path.abspath(os.path.join(REPO, "..", "shared"))


SHARED = _find_shared()
CASES = os.path.join(SHARED, "conformance", "cases.json")
FIXTURES = os.path.join(SHARED, "conformance", "generated-fixtures.json")
EXPECTED_FAILURES = os.path.join(HERE, "expected_failures.txt")

POLL_S = 0.1
APPLY_TIMEOUT_S = 30  # objects visible in /status with current generations
READY_TIMEOUT_S = 60
REQUIRED_CONSECUTIVE = 3
GO_UA_H1 = "Go-http-client/1.1"
GO_UA_H2 = "Go-http-client/2.0"
# Kinds that carry a status: their presence in /status with current generations
# tells that archway has taken a change in.
STATUS_KINDS = {"GatewayClass", "Gateway", "ListenerSet", "XListenerSet", "HTTPRoute", "GRPCRoute", "TLSRoute",
                "TCPRoute", "UDPRoute", "BackendTLSPolicy"}


class CaseFailure(Exception):
    pass


# ------------------------------------------------------------------------------------- admin


class Admin:
    def __init__(self, address):
        self.base = "http://%s" % address

    def ready(self):
        code, _ = procs.http_get(self.base + "/ready", timeout=2)
        return code == 200

    def status(self):
        code, body = procs.http_get(self.base + "/status", timeout=10)
        if code != 200:
            return None
        try:
            items = json.loads(body).get("items", [])
        except ValueError:
            return None
        out = {}
        for it in items:
            md = it.get("metadata") or {}
            out[(it.get("kind", ""), md.get("namespace") or "", md.get("name", ""))] = it
        return out


def conditions_current(item):
    """Every condition anywhere in status carries observedGeneration == generation."""
    gen = (item.get("metadata") or {}).get("generation")
    st = item.get("status") or {}
    lists = [st.get("conditions") or []]
    for k in ("parents", "ancestors"):
        for p in st.get(k) or []:
            lists.append(p.get("conditions") or [])
    for lst in lists:
        for c in lst:
            if gen is not None and c.get("observedGeneration") not in (None, gen):
                return False
    return True


def gateway_address(item):
    st = item.get("status") or {}
    gen = (item.get("metadata") or {}).get("generation")
    for c in st.get("conditions") or []:
        if gen is not None and c.get("observedGeneration") not in (None, gen):
            return None
    for a in st.get("addresses") or []:
        if a.get("type"):
            return a.get("value")
    return None


# ------------------------------------------------------------------------------------- harness


class Harness:
    def __init__(self, args, cases):
        self.args = args
        self.cases = cases
        self.workdir = tempfile.mkdtemp(prefix="archway-traffic-")
        self.world = worldmod.World(SHARED, self.workdir)
        self.base_echo = None
        self.archway = None
        self.admin = None
        self.timeout = args.consistency_timeout
        self.status_cache = None
        self.status_lock = threading.Lock()

    # ---------------------------------------------------------------- set-up / tear-down

    def setup(self):
        w = self.world
        with open(FIXTURES) as f:
            fixtures = json.load(f)
        cert_objs = w.generate_certificates(fixtures)
        base = w.load_manifest("base/manifests.yaml")
        for o in cert_objs:
            w.objects[worldmod.obj_key(o)] = o
        objs, pods = w.expand(base + cert_objs)
        w.add_pods(pods)
        self.base_echo = procs.EchoProcess([worldmod.echo_pod_spec(p) for p in pods], self.workdir, "echo-base")
        self.base_echo.start()
        w.write([w.gateway_class()] + objs, "base")
        self.base_keys = set(w.files.keys())
        port = procs.free_port()
        self.admin = Admin("127.0.0.1:%d" % port)
        cmd = [self.args.archway, "run", "-f", w.watch_dir, "--address-pool", worldmod.GATEWAY_POOL,
               "--admin-address", "127.0.0.1:%d" % port]
        self.archway = procs.Child(cmd, os.path.join(self.workdir, "archway.log"))
        ok = procs.wait_until(lambda: self.admin.ready() or not self.archway.alive(), READY_TIMEOUT_S)
        if not ok or not self.archway.alive():
            raise RuntimeError("archway run did not become ready: %s" % self.archway.output()[-3000:])
        # The suite waits for every base Gateway to be programmed with an address.
        gws = [k for k in self.base_keys if k[0] == "Gateway"]
        procs.wait_until(lambda: self._all_addressed(gws), 60, POLL_S)

    def _all_addressed(self, keys):
        st = self.admin.status()
        return st is not None and all(k in st and gateway_address(st[k]) for k in keys)

    def teardown(self):
        rc = None
        if self.archway is not None:
            rc = self.archway.stop()
        if self.base_echo is not None:
            self.base_echo.stop()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print("work directory kept: %s" % self.workdir)
        return rc

    # ---------------------------------------------------------------- apply / remove

    def wait_applied(self, keys, present=True):
        relevant = [k for k in keys if k[0] in STATUS_KINDS]

        def check():
            st = self.admin.status()
            if st is None:
                return False
            for k in relevant:
                if present:
                    if k not in st or not conditions_current(st[k]):
                        return False
                elif k in st:
                    return False
            self.status_cache = st
            return True

        return procs.wait_until(check, APPLY_TIMEOUT_S, POLL_S)

    def fresh_status(self):
        st = self.admin.status()
        if st is not None:
            self.status_cache = st
        return self.status_cache or {}

    # ---------------------------------------------------------------- addressing

    def target(self, gw):
        """(ip, port, default_port_omitted) for a case's gateway reference."""
        deadline = time.monotonic() + self.timeout
        key = ("Gateway", gw["namespace"], gw["name"])
        item, addr = None, None
        while True:
            st = self.fresh_status()
            item = st.get(key)
            addr = gateway_address(item) if item else None
            if addr or time.monotonic() > deadline:
                break
            time.sleep(POLL_S)
        if not addr:
            raise CaseFailure("Gateway %s/%s has no address in status" % (gw["namespace"], gw["name"]))
        if gw.get("port"):
            return addr, int(gw["port"])
        if not gw.get("use_port"):
            return addr, None
        listeners = (item.get("spec") or {}).get("listeners") or []
        if not listeners:
            raise CaseFailure("Gateway %s has no listeners" % gw["name"])
        # Upstream (WaitForGatewayAddress) takes the port of the Gateway listener with
        # that name and falls back to spec.listeners[0] when no Gateway listener has it
        # (ListenerSetHTTPRouting names "gateway-listener", which no listener is called).
        name = gw.get("listener")
        for l in listeners:
            if name and l.get("name") == name:
                return addr, int(l["port"])
        return addr, int(listeners[0]["port"])

    # ---------------------------------------------------------------- HTTP

    def _pem_of(self, ref):
        sec = ref["secret"]
        return self.world.secret_text(sec["namespace"], sec["name"], ref.get("key", "tls.crt"))

    def http_attempt(self, case, ip, port, path):
        tr = case.get("transport") or {}
        req = case["request"]
        scheme = tr.get("scheme", "http")
        proto = tr.get("protocol", "HTTP")
        default_port = 443 if scheme == "https" else 80
        if port is None:
            port = default_port
        hostport = ip if port == default_port else "%s:%d" % (ip, port)
        host = req.get("host") or hostport
        method = req.get("method") or "GET"
        set_hdr = ",".join("%s:%s" % (k, v) for k, v in (case.get("backend_set_response_headers") or {}).items())
        headers = [("Host", host), ("User-Agent", GO_UA_H2 if proto.startswith("H2") else GO_UA_H1)]
        for k, v in sorted((req.get("headers") or {}).items()):
            headers.append((canonical(k), v))
        headers.append(("X-Echo-Set-Header", set_hdr))
        headers.append(("Accept-Encoding", "gzip"))
        tls = None
        if scheme == "https":
            cc = tr.get("client_certificate")
            client_cert = None
            if cc:
                s = cc["secret"]
                client_cert = (self.world.secret_file(s["namespace"], s["name"], cc.get("cert_key", "tls.crt")),
                               self.world.secret_file(s["namespace"], s["name"], cc.get("key_key", "tls.key")))
            tls = clients.TLSOptions(server_name=tr.get("server_name"),
                                     ca_pem=self._pem_of(tr["trusted_server_cert"]) if tr.get("trusted_server_cert") else None,
                                     client_cert=client_cert, alpn=["http/1.1"] if proto == "HTTPS" else ["h2"])
        url = "%s://%s%s" % (scheme, hostport, path.split("?", 1)[0])
        if proto in ("H2", "H2C_PRIOR_KNOWLEDGE"):
            resp = clients.h2_request(ip, port, method, path, host, headers[1:], scheme=scheme, tls=tls)
        else:
            resp = clients.http1_request(ip, port, method, path, headers, tls=tls)
        return resp, method, url

    def run_http_case(self, case):
        ip, port = self.target(case["gateway"])
        req = case["request"]
        exp = dict(case.get("expected_request") or {})
        if exp.get("client_cert", "").startswith("<PEM:"):
            # "<PEM:tls.crt of Secret ns/name>"
            ref = exp["client_cert"][len("<PEM:"):-1]
            key, _, rest = ref.partition(" of Secret ")
            ns, _, name = rest.partition("/")
            exp["client_cert_pem"] = self.world.secret_text(ns, name, key)
        case = dict(case, expected_request=exp)
        path = req.get("path", "/")
        exp_path = exp.get("path", path) if "path" in exp else path
        if case.get("add_request_id_query_param"):
            rid = str(uuid.uuid4())
            sep = "&" if "?" in path else "?"
            path = path + sep + "gateway-api-conformance-request-id=" + rid
            exp_path = exp_path + ("&" if "?" in exp_path else "?") + "gateway-api-conformance-request-id=" + rid
        expect = case.get("expect", "consistent_response")
        tr = case.get("transport") or {}
        deadline = time.monotonic() + self.timeout
        streak = 0
        last = "no attempt"
        while True:
            p, ep = path, exp_path
            if case.get("fresh_uuid_per_attempt"):
                u = str(uuid.uuid4())
                p, ep = path.replace("{uuid}", u), exp_path.replace("{uuid}", u)
            ok = False
            try:
                resp, method, url = self.http_attempt(case, ip, port, p)
                if expect == "consistent_response":
                    diff = compare_http(case, resp, method, ep, url)
                    if diff is None and tr.get("client_certificate_must_be_requested") and resp.cert_requested is False:
                        diff = "the TLS server did not request a client certificate"
                    ok = diff is None
                    last = diff or ""
                elif expect == "not_200":
                    if resp.status == 200:
                        raise CaseFailure("expected a non-200 response, got 200")
                    ok = resp.status not in (408, 504)
                    last = "status %d" % resp.status
                elif expect == "request_error":
                    last = "expected a transport-level failure, got HTTP status %d" % resp.status
            except clients.TransportError as e:
                last = "transport error: %s" % e
                if expect == "request_error":
                    ok = True
                    if tr.get("client_certificate") and e.state.get("cert_requested") is False:
                        ok = False
                        last = "TLS failed but the server never requested a client certificate: %s" % e
            streak = streak + 1 if ok else 0
            if streak >= REQUIRED_CONSECUTIVE:
                break
            if time.monotonic() > deadline:
                raise CaseFailure("not consistent within %ss; last attempt: %s" % (self.timeout, last))
            if not ok:
                time.sleep(POLL_S)
        if case.get("mirrored_to") and case.get("add_request_id_query_param"):
            for m in case["mirrored_to"]:
                self.expect_log_line(m["namespace"], m["name"], "Echoing back request made to %s to client" % exp_path)

    def expect_log_line(self, namespace, backend, needle, timeout=10):
        pods = [p for p in self.world.pods if p["namespace"] == namespace and p["deployment"] == backend]
        if not pods:
            raise CaseFailure("no pods for mirror backend %s/%s" % (namespace, backend))

        def found():
            return self.count_log_lines(pods, needle) > 0

        if not procs.wait_until(found, timeout, POLL_S):
            raise CaseFailure("mirror backend %s never logged %r" % (backend, needle))

    @staticmethod
    def count_log_lines(pods, needle):
        n = 0
        for p in pods:
            try:
                with open(p["log"], errors="replace") as f:
                    for line in f:
                        if line.startswith(needle + " (") or line.rstrip("\n") == needle:
                            n += 1
            except OSError:
                pass
        return n

    # ---------------------------------------------------------------- gRPC

    def grpc_attempt(self, case, ip, port):
        return clients.grpc_call(ip, port, case["rpc"]["full_method"], authority=case.get("authority"),
                                 metadata=case.get("metadata"))

    def run_grpc_case(self, case):
        ip, port = self.target(case["gateway"])
        expect = case.get("expect", "consistent_response")
        want = (case.get("response") or {}).get("code", "OK")
        want_name = {"Unimplemented": "UNIMPLEMENTED", "OK": "OK"}.get(want, want.upper())
        backend = case.get("backend") or {}
        deadline = time.monotonic() + self.timeout
        streak, last = 0, "no attempt"
        while True:
            r = self.grpc_attempt(case, ip, port)
            ok = False
            if expect == "failure":
                if r.code == "OK":
                    raise CaseFailure("expected a failing RPC, got OK")
                ok = not r.transport_error
                last = "%s %s" % (r.code, r.details)
            elif r.transport_error:
                last = "transport error: %s" % r.details
            elif r.code != want_name:
                last = "code %s (%s), expected %s" % (r.code, r.details, want_name)
            elif r.code == "OK":
                resp = r.response or {}
                ctx = resp.get("context") or {}
                if resp.get("fully_qualified_method") != case["rpc"]["full_method"]:
                    last = "backend saw method %r" % resp.get("fully_qualified_method")
                elif backend.get("namespace") and ctx.get("namespace") != backend["namespace"]:
                    last = "backend namespace %r, expected %r" % (ctx.get("namespace"), backend["namespace"])
                elif not ctx.get("pod", "").startswith(backend.get("name") or ""):
                    last = "answered by pod %r, expected %r" % (ctx.get("pod"), backend.get("name"))
                else:
                    ok = True
            else:
                ok = True
            streak = streak + 1 if ok else 0
            if streak >= REQUIRED_CONSECUTIVE:
                return
            if time.monotonic() > deadline:
                raise CaseFailure("not consistent within %ss; last attempt: %s" % (self.timeout, last))
            if not ok:
                time.sleep(POLL_S)

    # ---------------------------------------------------------------- TLS / TCP

    def run_l4_case(self, case):
        ip, port = self.target(case["gateway"])
        ex = case.get("exchange")
        deadline = time.monotonic() + self.timeout
        last = "no attempt"
        while True:
            if ex == "tls_connection_rejected":
                ct = case.get("client_tls") or {}
                ok, last = clients.tls_dial_rejected(ip, port, ct.get("server_name"))
                if ok:
                    return
            elif ex == "tcp_echo":
                err = self.tcp_echo_once(case, ip, port)
                if err is None:
                    return
                last = err
            else:
                raise CaseFailure("unknown exchange %r" % ex)
            if time.monotonic() > deadline:
                raise CaseFailure("no success within %ss; last attempt: %s" % (self.timeout, last))
            time.sleep(POLL_S)

    def tcp_echo_once(self, case, ip, port):
        ct = case.get("client_tls")
        tls = None
        if ct:
            ca = None
            if ct.get("trusted_ca"):
                cm = ct["trusted_ca"]["configmap"]
                ca = self.world.configmap_text(cm["namespace"], cm["name"], ct["trusted_ca"].get("key", "ca.crt"))
            tls = clients.TLSOptions(server_name=ct.get("server_name"), ca_pem=ca,
                                     alpn=[case["tls_protocol"]] if case.get("tls_protocol") else None)
        try:
            is_tls, data = clients.tcp_echo_exchange(ip, port, tls)
        except clients.TransportError as e:
            return "transport error: %s" % e
        backend = case.get("backend") or {}
        want_tls = "true" if case.get("backend_is_tls") else "false"
        if is_tls != want_tls:
            return "IS_TLS answered %r, expected %r" % (is_tls, want_tls)
        if backend.get("namespace") and data.get("namespace") != backend["namespace"]:
            return "namespace %r, expected %r" % (data.get("namespace"), backend["namespace"])
        if backend.get("name") and not str(data.get("pod", "")).startswith(backend["name"] + "-"):
            return "pod %r, expected a pod of %r" % (data.get("pod"), backend["name"])
        t = data.get("tls") or {}
        if case.get("backend_sni") and t.get("serverName") != case["backend_sni"]:
            return "backend saw SNI %r, expected %r" % (t.get("serverName"), case["backend_sni"])
        if case.get("tls_protocol") and t.get("negotiatedProtocol") != case["tls_protocol"]:
            return "backend negotiated %r, expected %r" % (t.get("negotiatedProtocol"), case["tls_protocol"])
        return None

    # ---------------------------------------------------------------- UDP

    def run_udp_case(self, case):
        ip, port = self.target(case["gateway"])
        ex = case.get("exchange")
        limit = 60 if ex == "dns_query" else self.timeout
        deadline = time.monotonic() + min(limit, max(self.timeout, 1))
        last = "no attempt"
        while True:
            try:
                if ex == "dns_query":
                    clients.dns_query(ip, port, case["query"]["name"], timeout=2)
                    return
                data = clients.udp_exchange(ip, port, case.get("payload", ""), timeout=2)
                want = case.get("expect_backend") or {}
                if not want.get("service") and not want.get("namespace"):
                    return
                try:
                    j = json.loads(data)
                except ValueError:
                    j = {}
                if j.get("service") == want.get("service") and j.get("namespace") == want.get("namespace"):
                    return
                last = "reply %r" % data[:200]
            except clients.TransportError as e:
                last = "transport error: %s" % e
            if time.monotonic() > deadline:
                raise CaseFailure("no matching reply within %ss; last: %s" % (limit, last))
            time.sleep(POLL_S)

    # ---------------------------------------------------------------- procedures

    def weighted(self, spec, sample):
        """weight.TestWeightedDistribution: `sample()` returns a pod name or raises."""
        weights = spec["expected_weights"]
        total = spec.get("total_requests", 500)
        tol = spec.get("tolerance", 0.05)
        last = ""
        for _attempt in range(spec.get("max_attempts", 10)):
            counts = collections.Counter()
            try:
                with concurrent.futures.ThreadPoolExecutor(spec.get("concurrency", 10)) as ex:
                    for pod in ex.map(lambda _: sample(), range(total)):
                        counts["-".join(pod.split("-")[:-2])] += 1
            except (clients.TransportError, CaseFailure) as e:
                last = "request failed: %s" % e
                continue
            unknown = set(counts) - set(weights)
            if unknown:
                raise CaseFailure("replies from unexpected backends %s" % sorted(unknown))
            expected_nonzero = {b for b, w in weights.items() if w > 0}
            if set(counts) != expected_nonzero:
                last = "backends that got traffic %s, expected %s" % (sorted(counts), sorted(expected_nonzero))
                continue
            bad = [(b, counts[b] / total, w) for b, w in weights.items() if abs(counts[b] / total - w) > tol]
            if not bad:
                return
            last = "shares %s" % ", ".join("%s=%.3f (want %.2f)" % x for x in bad)
        raise CaseFailure("weighted distribution: %s" % last)

    def proc_http_weight(self, test, spec):
        case = test["http_cases"][0]
        ip, port = self.target(case["gateway"])

        def sample():
            c = json.loads(json.dumps(case))
            if random.random() < 0.5:
                c["request"].setdefault("headers", {})["X-Jitter"] = str(random.randint(0, 9999))
            resp, method, url = self.http_attempt(c, ip, port, c["request"].get("path", "/"))
            diff = compare_http(c, resp, method, c["request"].get("path", "/"), url)
            if diff:
                raise CaseFailure(diff)
            return json.loads(resp.body).get("pod", "")

        self.weighted(spec, sample)

    def proc_grpc_weight(self, test, spec):
        case = test["grpc_cases"][0]
        ip, port = self.target(case["gateway"])

        def sample():
            md = {}
            if random.random() < 0.5:
                md["x-jitter"] = str(random.randint(0, 9999))
            r = clients.grpc_call(ip, port, case["rpc"]["full_method"], metadata=md)
            if r.code != "OK" or not r.response:
                raise CaseFailure("RPC failed: %s %s" % (r.code, r.details))
            return r.response["context"]["pod"]

        self.weighted(spec, sample)

    def proc_tcp_weight(self, test, spec, gw):
        ip, port = self.target(gw)
        procs.wait_until(lambda: self._tcp_ok(ip, port), self.timeout, POLL_S)

        def sample():
            _, data = clients.tcp_echo_exchange(ip, port, None, timeout=5, full=False)
            return data.get("pod", "")

        self.weighted(spec, sample)

    def _tcp_ok(self, ip, port):
        try:
            _, data = clients.tcp_echo_exchange(ip, port, None, timeout=5, full=False)
            return bool(data.get("pod"))
        except clients.TransportError:
            return False

    def proc_udp_weight(self, test, spec):
        case = test["udp_cases"][0]
        ip, port = self.target(case["gateway"])

        def sample():
            data = clients.udp_exchange(ip, port, "gateway-api-conformance-udp-weight\n", timeout=2)
            return json.loads(data).get("pod", "")

        self.weighted(spec, sample)

    def run_procedure(self, test, keys):
        name = test["name"]
        steps = test["procedure"]["steps"]
        expects = [s["expect"] for s in steps if "expect" in s]
        if name in ("HTTPRouteWeight",):
            return self.proc_http_weight(test, expects[0])
        if name == "GRPCRouteWeight":
            return self.proc_grpc_weight(test, expects[0])
        if name == "UDPRouteWeightedRouting":
            return self.proc_udp_weight(test, expects[0])
        if name == "TCPRouteWeightedRouting":
            gw = {"kind": "Gateway", "namespace": "gateway-conformance-infra", "use_port": True, "listener": "tcp",
                  "name": self._gateway_of(keys)}
            return self.proc_tcp_weight(test, expects[0], gw)
        if name == "HTTPRouteReferenceGrant":
            self.delete_object(keys, "ReferenceGrant", "gateway-conformance-web-backend", "reference-grant")
            return self.run_http_case(expects[0])
        if name in ("TCPRouteReferenceGrant", "UDPRouteReferenceGrant"):
            ns = "gateway-conformance-web-backend" if name.startswith("TCP") else "gateway-conformance-app-backend"
            rg = "tcp-reference-grant" if name.startswith("TCP") else "udp-reference-grant"
            self.delete_object(keys, "ReferenceGrant", ns, rg)
            return self.expect_route_condition(expects[0])
        if name == "HTTPRouteRequestHeaderModifierBackendWeights":
            return self.proc_backend_weights_headers(test)
        if name == "HTTPRouteRequestPercentageMirror":
            return self.proc_percentage_mirror(test, steps)
        if name == "HTTPRouteBackendProtocolWebSocket":
            return self.proc_websocket(test)
        if name == "HTTPRouteServiceTypes":
            return None  # EndpointSlices are filled at apply time; the http_cases carry the checks.
        if name in ("TCPRouteMultipleRoutesAttachment", "UDPRouteMultipleRoutesAttachment"):
            return self.proc_multiple_routes(test, keys, expects)
        if name in GENERATION_BUMPS:
            return self.proc_generation_bump(name, expects)
        if name == "GatewayModifyListeners":
            return self.proc_modify_listeners(expects)
        if name == "GatewayStaticAddresses":
            return self.proc_static_addresses(expects)
        if name == "BackendTLSPolicy":
            return self.proc_backendtlspolicy_reconcile(keys)
        return "procedure not replayed (status-only steps)"

    # ---------------------------------------------------------------- object mutations

    def expect_status(self, check, timeout=60):
        last = [None]

        def ok():
            last[0] = status_checks.evaluate(check, self.fresh_status())
            return last[0] is None

        if not procs.wait_until(ok, timeout, POLL_S):
            raise CaseFailure("%s: %s" % (check.get("check"), last[0]))

    def generation(self, key, timeout=60):
        def get():
            it = self.fresh_status().get(key)
            return it and conditions_current(it) and (it.get("metadata") or {}).get("generation")

        g = procs.wait_until(get, timeout, POLL_S)
        if not g:
            raise CaseFailure("%s %s/%s never had current status" % key)
        return g

    def wait_generation_change(self, key, before, timeout=APPLY_TIMEOUT_S):
        def changed():
            it = self.fresh_status().get(key)
            return it and (it.get("metadata") or {}).get("generation") != before

        if not procs.wait_until(changed, timeout, POLL_S):
            raise CaseFailure("metadata.generation stayed %s after a spec change" % before)

    def patch(self, key, mutate):
        doc = json.loads(json.dumps(self.world.objects[key]))
        mutate(doc)
        self.world.write([doc], "patch")

    def proc_generation_bump(self, name, expects):
        key, mutate, extra = GENERATION_BUMPS[name]
        before = self.generation(key)
        self.patch(key, mutate)
        # The API server bumps the generation as it stores the update; here archway
        # does when it reloads the file, so wait for that before judging conditions.
        self.wait_generation_change(key, before)
        for e in expects + extra:
            self.expect_status(e)

    def proc_modify_listeners(self, expects):
        infra = "gateway-conformance-infra"
        add = ("Gateway", infra, "gateway-add-listener")
        before = self.generation(add)
        self.patch(add, lambda d: d["spec"]["listeners"].append(
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "data.test.com",
             "allowedRoutes": {"namespaces": {"from": "All"}}}))
        self.wait_generation_change(add, before)
        for e in expects[:3]:
            self.expect_status(e)
        rm = ("Gateway", infra, "gateway-remove-listener")
        before = self.generation(rm)
        if len(self.world.objects[rm]["spec"]["listeners"]) != 2:
            raise CaseFailure("gateway-remove-listener should start with 2 listeners")
        self.patch(rm, lambda d: d["spec"].__setitem__(
            "listeners", [l for l in d["spec"]["listeners"] if l["name"] == "http"]))
        self.wait_generation_change(rm, before)
        for e in expects[3:]:
            self.expect_status(e)

    def proc_static_addresses(self, expects):
        key = ("Gateway", "gateway-conformance-infra", "gateway-static-addresses")
        addrs = self.world.objects[key]["spec"]["addresses"]
        if len(addrs) != 3:
            raise CaseFailure("spec.addresses should have 3 entries, has %d" % len(addrs))
        invalid, unusable, usable = addrs
        self.expect_status(expects[0])
        self.patch(key, lambda d: d["spec"].__setitem__(
            "addresses", [a for a in d["spec"]["addresses"] if a["value"] != invalid["value"]]))
        for e in expects[1:4]:
            self.expect_status(e)
        self.patch(key, lambda d: d["spec"].__setitem__(
            "addresses", [a for a in d["spec"]["addresses"] if a["value"] != unusable["value"]]))
        for e in expects[4:]:
            self.expect_status(e)

        def addresses_ok():
            st = (self.fresh_status().get(key) or {}).get("status") or {}
            got = st.get("addresses") or []
            return (len(got) == 1 and got[0].get("value") == usable["value"]
                    and got[0].get("type", "IPAddress") == usable.get("type", "IPAddress"))

        if not procs.wait_until(addresses_ok, 60, POLL_S):
            raise CaseFailure("status.addresses %s, expected only %s" % (
                ((self.fresh_status().get(key) or {}).get("status") or {}).get("addresses"), usable))

    def proc_backendtlspolicy_reconcile(self, keys):
        infra = "gateway-conformance-infra"
        pol = ("BackendTLSPolicy", infra, "reconcile-test")
        cm_name = "tls-checks-ca-certificate-reconcile-test"

        def expect(ok):
            for t, reason_ok, reason_bad in (("Accepted", "Accepted", "NoValidCACertificate"),
                                             ("ResolvedRefs", "ResolvedRefs", "InvalidCACertificateRef")):
                self.expect_status({"check": "policy_ancestor_condition",
                                    "policy": {"kind": "BackendTLSPolicy", "name": pol[2], "namespace": infra},
                                    "ancestor": {"name": "same-namespace", "namespace": infra},
                                    "condition": {"type": t, "status": "True" if ok else "False",
                                                  "reason": reason_ok if ok else reason_bad}})

        expect(True)
        original_ca = self.world.configmap_text(infra, "tls-checks-ca-certificate", "ca.crt")
        original_refs = json.loads(json.dumps(self.world.objects[pol]["spec"]["validation"]["caCertificateRefs"]))
        self.patch(pol, lambda d: d["spec"]["validation"].__setitem__(
            "caCertificateRefs", [{"group": "", "kind": "ConfigMap", "name": cm_name}]))
        expect(False)
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm_name, "namespace": infra},
              "data": {"ca.crt": original_ca}}
        keys += self.world.write([cm], "proc")
        expect(True)
        self.patch(("ConfigMap", infra, cm_name), lambda d: d["data"].__setitem__("ca.crt", ""))
        expect(False)
        self.patch(("ConfigMap", infra, cm_name), lambda d: d["data"].__setitem__("ca.crt", original_ca))
        expect(True)
        self.patch(pol, lambda d: d["spec"]["validation"].__setitem__("caCertificateRefs", original_refs))

    def _gateway_of(self, keys):
        gws = [k for k in keys if k[0] == "Gateway"]
        return gws[0][2]

    def delete_object(self, keys, kind, ns, name):
        key = (kind, ns, name)
        if key not in self.world.files:
            raise CaseFailure("%s %s/%s is not applied" % key)
        self.world.delete([key])
        keys.remove(key)
        self.wait_applied([key], present=False)

    def expect_route_condition(self, check):
        r = check["route"]
        key = (r["kind"], r["namespace"], r["name"])
        cond = check["condition"]
        last = [None]

        def ok():
            st = self.fresh_status()
            it = st.get(key)
            if not it or not conditions_current(it):
                return False
            for p in (it.get("status") or {}).get("parents") or []:
                pr = p.get("parentRef") or {}
                if pr.get("name") != check["parent"]["name"]:
                    continue
                last[0] = p.get("conditions")
                for c in p.get("conditions") or []:
                    if c.get("type") == cond["type"] and c.get("status") == cond["status"] and (
                            not cond.get("reason") or c.get("reason") == cond["reason"]):
                        return True
            return False

        if not procs.wait_until(ok, 60, POLL_S):
            raise CaseFailure("%s %s never had %s; conditions %s" % (r["kind"], r["name"], cond, last[0]))

    def proc_backend_weights_headers(self, test):
        case = test["http_cases"][0]
        ip, port = self.target(case["gateway"])
        for _ in range(100):
            resp, _m, _u = self.http_attempt(case, ip, port, case["request"].get("path", "/"))
            try:
                j = json.loads(resp.body)
            except ValueError:
                raise CaseFailure("non-JSON response (status %d)" % resp.status)
            vals = (j.get("headers") or {}).get("Backend") or []
            if len(vals) != 1:
                raise CaseFailure("backend saw Backend header values %r, expected exactly one" % vals)
            if not j.get("pod", "").startswith(vals[0]):
                raise CaseFailure("pod %r answered but Backend header is %r" % (j.get("pod"), vals[0]))

    def proc_percentage_mirror(self, test, steps):
        bands = None
        for s in steps:
            a = s.get("action", "")
            if a.startswith("Acceptance bands per case: "):
                bands = json.loads(a[len("Acceptance bands per case: "):])
        if bands is None:
            raise CaseFailure("no acceptance bands in the procedure")
        for case in test["http_cases"]:
            band = bands.get(case["request"]["path"])
            if band is None:
                continue
            ip, port = self.target(case["gateway"])
            pods = self.world.pods_of(case["gateway"]["namespace"], band["mirror_backend"])
            last = ""
            for _attempt in range(5):
                rid = str(uuid.uuid4())
                path = case["request"]["path"] + "?gateway-api-conformance-request-id=" + rid
                exp_path = (case.get("expected_request") or {}).get("path", case["request"]["path"])
                exp_path += "?gateway-api-conformance-request-id=" + rid

                def one(_):
                    resp, method, url = self.http_attempt(case, ip, port, path)
                    diff = compare_http(case, resp, method, exp_path, url)
                    if diff:
                        raise CaseFailure(diff)

                with concurrent.futures.ThreadPoolExecutor(10) as ex:
                    list(ex.map(one, range(500)))
                needle = "Echoing back request made to %s to client" % exp_path
                time.sleep(1)  # let the last mirrored requests land (fire-and-forget upstream)
                n = self.count_log_lines(pods, needle)
                if band["min_count"] <= n <= band["max_count"]:
                    last = ""
                    break
                last = "%s: %d mirrored of 500, expected %.0f..%.0f" % (case["request"]["path"], n,
                                                                        band["min_count"], band["max_count"])
            if last:
                raise CaseFailure(last)

    def proc_websocket(self, test):
        gw = test["gateway"] or {"kind": "Gateway", "name": "same-namespace",
                                 "namespace": "gateway-conformance-infra", "use_port": True}
        ip, port = self.target(gw)
        host = ip if port == 80 else "%s:%d" % (ip, port)
        msgs = [(0x1, b"Websocket Support!"), (0x2, bytes([1, 2, 3, 4, 5, 6, 7]))]
        deadline = time.monotonic() + self.timeout
        streak, last = 0, ""
        while streak < REQUIRED_CONSECUTIVE:
            try:
                got = clients.websocket_echo(ip, port, host, "/ws", msgs, "ws://gateway/" + test["name"])
                if [g[1] for g in got] == [m[1] for m in msgs]:
                    streak += 1
                    continue
                last = "echoed %r" % got
            except clients.TransportError as e:
                last = str(e)
            streak = 0
            if time.monotonic() > deadline:
                raise CaseFailure("WebSocket echo not consistent: %s" % last)
            time.sleep(POLL_S)

    def proc_multiple_routes(self, test, keys, expects):
        is_tcp = test["name"].startswith("TCP")
        kind = "TCPRoute" if is_tcp else "UDPRoute"
        gw = "tcp-multi-route-attach-gateway" if is_tcp else "udp-multi-route-attach-gateway"
        older = (kind, "gateway-conformance-infra", "tcproute-attach-older" if is_tcp else "udproute-attach-older")
        self.expect_route_condition({"route": {"kind": kind, "namespace": older[1], "name": older[2]},
                                     "parent": {"name": gw}, "condition": {"type": "Accepted", "status": "True"}})
        time.sleep(1.1)  # creationTimestamp has one-second precision upstream
        newer = {"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": kind,
                 "metadata": {"name": "%s-attach-newer" % kind.lower(), "namespace": "gateway-conformance-infra"},
                 "spec": {"parentRefs": [{"name": gw, "sectionName": "tcp" if is_tcp else "udp"}],
                          "rules": [{"backendRefs": [{"name": "%s-attach-backend-2" % ("tcp" if is_tcp else "udp"),
                                                      "port": 3000 if is_tcp else 8080}]}]}}
        keys += self.world.write([newer], "proc")
        for e in expects:
            if e.get("check") == "route_condition":
                self.expect_route_condition(e)
        gwref = {"kind": "Gateway", "name": gw, "namespace": "gateway-conformance-infra", "use_port": True,
                 "listener": "tcp" if is_tcp else "udp"}
        ip, port = self.target(gwref)
        want = "%s-attach-backend-1" % ("tcp" if is_tcp else "udp")
        if is_tcp:
            for e in expects:
                if e.get("exchange") == "tcp_echo":
                    self.run_l4_case(e)
            for _ in range(100):
                _, data = clients.tcp_echo_exchange(ip, port, None, timeout=5, full=False)
                if not data.get("pod", "").startswith(want + "-"):
                    raise CaseFailure("connection reached %r, expected only %s" % (data.get("pod"), want))
            return
        deadline = time.monotonic() + 60
        while True:
            pods = []
            try:
                for _ in range(20):
                    d = clients.udp_exchange(ip, port, "gateway-api-conformance-udp-weight\n", timeout=2)
                    pods.append(json.loads(d).get("pod", ""))
            except (clients.TransportError, ValueError):
                pods = None
            if pods:
                wrong = [p for p in pods if "-".join(p.split("-")[:-2]) != want]
                if wrong:
                    raise CaseFailure("UDP probe reached %r, expected only %s" % (wrong[0], want))
                return
            if time.monotonic() > deadline:
                raise CaseFailure("UDP probes never all succeeded")
            time.sleep(1)

    # ---------------------------------------------------------------- one test

    def run_test(self, test, idx):
        w = self.world
        docs = []
        for rel in test["manifests"]:
            docs += w.load_manifest(rel)
        objs, pods = w.expand(docs)
        if test["name"] == "HTTPRouteServiceTypes":
            v1 = w.pods_of("gateway-conformance-infra", "infra-backend-v1")
            for o in objs:
                if o["kind"] == "EndpointSlice" and o.get("addressType") == "IPv4" and "endpoints" not in o:
                    o["endpoints"] = [{"addresses": [p["ip"]],
                                       "conditions": {"ready": True, "serving": True, "terminating": False},
                                       "targetRef": {"kind": "Pod", "name": p["pod"], "namespace": p["namespace"]}}
                                      for p in v1]
        echo = None
        keys = []
        try:
            if pods:
                w.add_pods(pods)
                echo = procs.EchoProcess([worldmod.echo_pod_spec(p) for p in pods], self.workdir, "echo-t%d" % idx)
                echo.start()
            keys = w.write(objs, "t%03d" % idx)
            if not self.wait_applied(keys):
                note = " (status not current after %ss)" % APPLY_TIMEOUT_S
            else:
                note = ""
            failures = []
            jobs = []
            for c in test.get("http_cases") or []:
                jobs.append(("http", c, self.run_http_case))
            for c in test.get("grpc_cases") or []:
                jobs.append(("grpc", c, self.run_grpc_case))
            for c in (test.get("tls_cases") or []) + (test.get("tcp_cases") or []):
                jobs.append(("l4", c, self.run_l4_case))
            for c in test.get("udp_cases") or []:
                jobs.append(("udp", c, self.run_udp_case))
            with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as ex:
                futs = [ex.submit(fn, c) for _, c, fn in jobs]
                for (kind, c, _), f in zip(jobs, futs):
                    try:
                        f.result()
                    except CaseFailure as e:
                        failures.append("%s case %s: %s%s" % (kind, describe(c), e, note))
            notes = []
            if not failures and test.get("procedure"):
                try:
                    n = self.run_procedure(test, keys)
                    if n:
                        notes.append(n)
                except CaseFailure as e:
                    failures.append("procedure: %s%s" % (e, note))
            return failures, notes
        finally:
            w.delete(keys)
            self.wait_applied(keys, present=False)
            if echo is not None:
                echo.stop()
                w.remove_pods(pods)


def describe(c):
    if c.get("name"):
        return repr(c["name"])
    if "request" in c:
        r = c["request"]
        return "%s %s%s" % (r.get("method", "GET"), r.get("host", "") or "", r.get("path", ""))
    if "rpc" in c:
        return "%s authority=%s md=%s" % (c["rpc"]["method"], c.get("authority"), c.get("metadata"))
    return "%s via %s" % (c.get("exchange"), (c.get("gateway") or {}).get("name"))


# ------------------------------------------------------------------------------------- selection

_INFRA = "gateway-conformance-infra"
GENERATION_BUMPS = {
    # test: (object, spec change, extra checks beyond the procedure's own "expect" steps)
    "GatewayObservedGenerationBump": (
        ("Gateway", _INFRA, "gateway-observed-generation-bump"),
        lambda d: d["spec"]["listeners"].append({"name": "alternate", "hostname": "foo.com", "port": 80,
                                                 "protocol": "HTTP",
                                                 "allowedRoutes": {"namespaces": {"from": "All"}}}), []),
    "GatewayClassObservedGenerationBump": (
        ("GatewayClass", "", "gatewayclass-observed-generation-bump"),
        lambda d: d["spec"].__setitem__("description", "new"), []),
    "HTTPRouteObservedGenerationBump": (
        ("HTTPRoute", _INFRA, "observed-generation-bump"),
        lambda d: d["spec"]["rules"][0]["backendRefs"][0].__setitem__("name", "infra-backend-v2"), []),
    "BackendTLSPolicyObservedGenerationBump": (
        ("BackendTLSPolicy", _INFRA, "observed-generation-bump"),
        lambda d: d["spec"]["validation"].__setitem__("hostname", "foo.example.com"),
        [{"check": "policy_ancestor_condition",
          "policy": {"kind": "BackendTLSPolicy", "name": "observed-generation-bump", "namespace": _INFRA},
          "ancestor": {"name": "same-namespace", "namespace": _INFRA},
          "condition": {"type": "Accepted", "status": "True"}}]),
}

REPLAYED_PROCEDURES = set(GENERATION_BUMPS) | {"GatewayModifyListeners", "GatewayStaticAddresses", "BackendTLSPolicy",
    "HTTPRouteWeight", "GRPCRouteWeight", "UDPRouteWeightedRouting", "TCPRouteWeightedRouting",
    "HTTPRouteReferenceGrant", "TCPRouteReferenceGrant", "UDPRouteReferenceGrant",
    "HTTPRouteRequestHeaderModifierBackendWeights", "HTTPRouteRequestPercentageMirror",
    "HTTPRouteBackendProtocolWebSocket", "HTTPRouteServiceTypes", "TCPRouteMultipleRoutesAttachment",
    "UDPRouteMultipleRoutesAttachment",
}


def classify(test, claimed):
    """None when the test is replayed here, else the reason it is skipped."""
    if test.get("mesh"):
        return "mesh test (no mesh data plane)"
    for f in test.get("skip_if_feature_supported") or []:
        if f in claimed:
            return "upstream body is a no-op when %s is supported" % f
    for f in test.get("skip_if_feature_not_supported") or []:
        if f not in claimed:
            return "upstream body is a no-op when %s is not supported" % f
    has_traffic = any(test.get(k) for k in ("http_cases", "grpc_cases", "tls_cases", "tcp_cases", "udp_cases"))
    if test.get("procedure") and test["name"] in REPLAYED_PROCEDURES:
        return None
    if has_traffic:
        return None
    return "status-only (tests/conformance/run_status.py)"


def load_expected_failures(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            text = line.split("#", 1)
            name = text[0].strip()
            if name:
                out[name] = text[1].strip() if len(text) > 1 else ""
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", action="append", help="conformance profile(s); default: every GATEWAY-* profile")
    ap.add_argument("--test", action="append", help="run only these tests (ShortName)")
    ap.add_argument("--list", action="store_true", help="list the selected tests and what is replayed")
    ap.add_argument("--archway", default=os.environ.get("ARCHWAY_BIN"), help="archway binary ($ARCHWAY_BIN)")
    ap.add_argument("--consistency-timeout", type=float, default=30.0,
                    help="seconds a case may take to become consistent, counted after archway's /status "
                         "shows the test's objects (upstream: 30)")
    ap.add_argument("--expected-failure-timeout", type=float, default=5.0,
                    help="the same for tests listed in expected_failures.txt (keeps the run short)")
    ap.add_argument("--jobs", type=int, default=6, help="cases of one test run concurrently")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--dump", metavar="DIR", help="only write the synthesised world: DIR/base and "
                    "DIR/tests/<Test> (for `archway check -f DIR/base -f DIR/tests/<Test>`)")
    ap.add_argument("--expected-failures", default=EXPECTED_FAILURES)
    args = ap.parse_args(argv)

    if not os.path.exists(CASES):
        print("SKIP: conformance data not found at %s" % CASES)
        return 0
    with open(CASES) as f:
        data = json.load(f)
    profiles = args.profile or [p for p in data["profiles"] if p.startswith("GATEWAY-")]
    for p in profiles:
        if p not in data["profiles"]:
            ap.error("unknown profile %s (known: %s)" % (p, ", ".join(data["profiles"])))
    claimed = set()
    for p in profiles:
        claimed |= set(data["profiles"][p]["core"]) | set(data["profiles"][p]["extended"])
    tests = [t for t in data["tests"] if set(t.get("profiles") or []) & set(profiles)]
    if args.test:
        known = {t["name"] for t in data["tests"]}
        for n in args.test:
            if n not in known:
                ap.error("unknown test %s" % n)
        tests = [t for t in data["tests"] if t["name"] in args.test]
    plan = [(t, classify(t, claimed)) for t in tests]

    if args.list:
        for t, why in plan:
            kinds = ",".join(k for k in t.get("check_kinds", []) if k != "status")
            print("%-60s %s" % (t["name"], "replayed (%s)" % kinds if why is None else "skip: " + why))
        return 0

    if args.dump:
        return dump_world(args.dump, [t for t, why in plan if why is None])

    if not args.archway:
        for cand in ("build-asan-ubsan/archway", "build/archway"):
            if os.path.exists(os.path.join(REPO, cand)):
                args.archway = os.path.join(REPO, cand)
                break
    if not args.archway or not os.path.exists(args.archway):
        print("ERROR: archway binary not found (set ARCHWAY_BIN or --archway)")
        return 2
    expected = load_expected_failures(args.expected_failures)

    h = Harness(args, data)
    results = {}
    started = time.monotonic()
    try:
        try:
            h.setup()
        except (RuntimeError, OSError) as e:
            print("ERROR: set-up failed: %s" % e)
            return 2
        for idx, (t, why) in enumerate(plan):
            if why is not None:
                results[t["name"]] = ("SKIP", why)
                continue
            t0 = time.monotonic()
            h.timeout = args.expected_failure_timeout if t["name"] in expected else args.consistency_timeout
            notes = []
            try:
                failures, notes = h.run_test(t, idx)
            except (CaseFailure, clients.TransportError, RuntimeError, OSError, ValueError, KeyError) as e:
                failures = ["harness error: %s: %s" % (type(e).__name__, e)]
            dt = time.monotonic() - t0
            if failures:
                results[t["name"]] = ("FAIL", failures[0])
                more = " (+%d more)" % (len(failures) - 1) if len(failures) > 1 else ""
                print("FAIL %s (%.1fs): %s%s" % (t["name"], dt, failures[0], more), flush=True)
            else:
                results[t["name"]] = ("PASS", "")
                print("PASS %s (%.1fs)%s" % (t["name"], dt, "".join(" [%s]" % n for n in notes)), flush=True)
            if not h.archway.alive():
                print("ERROR: archway exited (status %s); last output:\n%s" % (
                    h.archway.proc.returncode, h.archway.output()[-3000:]))
                for t2, why2 in plan[idx + 1:]:
                    results.setdefault(t2["name"], ("FAIL", "archway exited") if why2 is None else ("SKIP", why2))
                break
    finally:
        h.teardown()
    return report(plan, results, profiles, expected, time.monotonic() - started)


def dump_world(outdir, tests):
    """Writes the world the replay would serve, without starting anything."""
    work = tempfile.mkdtemp(prefix="archway-traffic-dump-")
    try:
        w = worldmod.World(SHARED, work)
        with open(FIXTURES) as f:
            cert_objs = w.generate_certificates(json.load(f))
        for o in cert_objs:
            w.objects[worldmod.obj_key(o)] = o
        objs, pods = w.expand(w.load_manifest("base/manifests.yaml") + cert_objs)
        w.add_pods(pods)
        w.watch_dir = os.path.join(outdir, "base")
        os.makedirs(w.watch_dir, exist_ok=True)
        w.write([w.gateway_class()] + objs, "base")
        for t in tests:
            docs = []
            for rel in t["manifests"]:
                docs += w.load_manifest(rel)
            objs, pods = w.expand(docs)
            w.watch_dir = os.path.join(outdir, "tests", t["name"])
            os.makedirs(w.watch_dir, exist_ok=True)
            keys = w.write(objs, "t")
            w.files = {k: v for k, v in w.files.items() if k not in keys}
            for k in keys:
                w.objects.pop(k, None)
        print("wrote %s/base and %d test directories under %s/tests" % (outdir, len(tests), outdir))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(plan, results, profiles, expected, elapsed):
    by_profile = collections.defaultdict(lambda: [0, 0])
    by_feature = collections.defaultdict(lambda: [0, 0])
    for t, _ in plan:
        verdict = results.get(t["name"], ("SKIP", ""))[0]
        if verdict == "SKIP":
            continue
        for p in t.get("profiles") or []:
            if p in profiles:
                by_profile[p][1] += 1
                by_profile[p][0] += verdict == "PASS"
        for f in t.get("features") or []:
            by_feature[f][1] += 1
            by_feature[f][0] += verdict == "PASS"
    print("\nPer profile (tests replayed here):")
    for p in sorted(by_profile):
        print("  %-14s %d of %d" % (p, by_profile[p][0], by_profile[p][1]))
    print("Per feature:")
    for f in sorted(by_feature):
        print("  %-58s %d of %d" % (f, by_feature[f][0], by_feature[f][1]))
    counts = collections.Counter(v[0] for v in results.values())
    print("Totals: %d passed, %d failed, %d skipped in %.0fs" % (counts["PASS"], counts["FAIL"], counts["SKIP"],
                                                                  elapsed))
    unexpected = [n for n, v in results.items() if v[0] == "FAIL" and n not in expected]
    fixed = [n for n, v in results.items() if v[0] == "PASS" and n in expected]
    for n in unexpected:
        print("UNEXPECTED FAILURE: %s: %s" % (n, results[n][1]))
    for n in fixed:
        print("UNEXPECTED PASS: %s is listed in expected_failures.txt (%s); remove it" % (n, expected[n]))
    return 1 if unexpected or fixed else 0


if __name__ == "__main__":
    sys.exit(main())
