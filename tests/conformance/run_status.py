#!/usr/bin/python3
"""Replays the status expectations of the Gateway API conformance suite against `archway check`.

For every non-mesh test of ../shared/conformance/cases.json (relative to the repository root):
apply the base manifests, the generated fixtures (real certificates made with openssl at test
time) and the test's manifests with the suite's rewrites, run `archway check -o json`, and
evaluate every `status_checks` entry with the comparison rules of SCHEMA.md. Procedures whose
steps mutate objects are replayed by re-running check on the mutated manifests.

Usage: run_status.py [-k SUBSTRING] [-v]      (ARCHWAY_BIN selects the binary)
Exit status: 0 when every check passes or is a listed known exception, 1 otherwise (also when
a known exception passes, or a procedure step is neither replayed nor listed as not replayable).
"""
import argparse
import base64
import concurrent.futures
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("ARCHWAY_CONFORMANCE_DIR") or os.path.join(os.path.dirname(REPO), "shared", "conformance")
CONTROLLER = "archway.dev/gateway-controller"
CLASS_NAME = "archway-conformance"
GATEWAY_GROUP = "gateway.networking.k8s.io"
# Static-address placeholders: a loopback address is bindable here, TEST-NET-1 never is.
USABLE_ADDRESS = "127.0.0.1"
UNUSABLE_ADDRESS = "192.0.2.1"
# Features Archway claims (everything in the gateway profiles); tests that are no-ops when
# a feature is claimed are skipped as upstream does.
CLAIMED_FEATURES = {"TLSRouteModeTerminate", "TLSRouteModeMixed", "TLSRoute"}

# Checks that are expected to fail, keyed by (test, check index or "procedure"), with the
# reason. Empty: every status expectation passes. A listed check that passes is reported as
# stale and fails the run, so this list always says exactly what does not work.
KNOWN_EXCEPTIONS = {}

# Procedure steps that are traffic, not status: counted apart, never evaluated here.
TRAFFIC_CHECKS = {"weighted_distribution"}

TRAFFIC_REASON = "traffic through a serving data plane (tests/conformance/run_traffic.py)"
# Procedure action steps that are not replayed here, by test, with the reason. A procedure
# action that is neither replayed (proc_actions) nor listed here fails the run.
NOT_REPLAYED = {
    "GatewayInfrastructure":
        "needs Kubernetes-generated ServiceAccounts/Pods/Services carrying the infrastructure "
        "labels; a file-mode gateway creates none",
    "GatewayStaticAddresses": "applied when the manifests are loaded (rewrite())",
    "GRPCRouteWeight": TRAFFIC_REASON,
    "HTTPRouteWeight": TRAFFIC_REASON,
    "TCPRouteWeightedRouting": TRAFFIC_REASON,
    "UDPRouteWeightedRouting": TRAFFIC_REASON,
    "HTTPRouteBackendProtocolWebSocket": TRAFFIC_REASON,
    "HTTPRouteRequestHeaderModifierBackendWeights": TRAFFIC_REASON,
    "HTTPRouteRequestPercentageMirror": TRAFFIC_REASON + " and the mirror backend's logs",
    "HTTPRouteServiceTypes": TRAFFIC_REASON + "; the Pod/EndpointSlice reads are cluster-side",
    "TCPRouteMultipleRoutesAttachment": TRAFFIC_REASON,
    "UDPRouteMultipleRoutesAttachment": TRAFFIC_REASON,
}


def binary():
    b = os.environ.get("ARCHWAY_BIN")
    if b:
        return b
    for cand in ("build-asan-ubsan/archway", "build/archway", "build-debug/archway"):
        p = os.path.join(REPO, cand)
        if os.path.exists(p):
            return p
    sys.exit("run_status.py: set ARCHWAY_BIN or build archway first")


# ------------------------------------------------------------------------------------------
# Fixtures: real certificates, made with openssl once per run.

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def san_list(hosts):
    out = []
    for h in hosts:
        if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", h):
            out.append("IP:" + h)
        elif re.fullmatch(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", h):
            out.append("DNS:" + h)
        else:
            out.append("URI:" + h)
    return out


# The suite uses RSA-2048; the status replay only needs certificates that parse and match
# their keys, and P-256 keys are generated in a fraction of the time.
KEY_ARGS = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def make_ca(work, name):
    openssl("req", "-x509", *KEY_ARGS, "-nodes", "-keyout", name + ".key",
            "-out", name + ".crt", "-days", "365", "-subj",
            "/C=US/O=Kubernetes Gateway API/CN=gatewayapi",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=digitalSignature,keyCertSign", cwd=work)
    return name


def make_leaf(work, name, hosts, eku, ca=None):
    ext = os.path.join(work, name + ".ext")
    with open(ext, "w") as f:
        f.write("keyUsage=keyEncipherment,digitalSignature\n")
        f.write("extendedKeyUsage=%s\n" % ("serverAuth" if eku == "ServerAuth" else "clientAuth"))
        sans = san_list(hosts)
        if sans:
            f.write("subjectAltName=%s\n" % ",".join(sans))
    openssl("req", *KEY_ARGS, "-nodes", "-keyout", name + ".key", "-out",
            name + ".csr", "-subj", "/O=Acme Co/CN=default", cwd=work)
    if ca:
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", "365", "-out", name + ".crt", "-extfile", ext,
                cwd=work)
    else:
        openssl("x509", "-req", "-in", name + ".csr", "-signkey", name + ".key", "-days", "365",
                "-out", name + ".crt", "-extfile", ext, cwd=work)


def read(work, name):
    with open(os.path.join(work, name)) as f:
        return f.read()


def generate_fixtures(spec, work):
    """Secrets and ConfigMaps of generated-fixtures.json, with freshly generated material."""
    cas = {}
    for group, text in spec["ca_groups"].items():
        cas[group] = make_ca(work, "ca-" + group)
    by_configmap = {}
    for group, text in spec["ca_groups"].items():
        m = re.match(r"ConfigMap (\S+)/(\S+)", text)
        if m:
            by_configmap[(m.group(1), m.group(2))] = group
    docs = []
    for i, obj in enumerate(spec["objects"]):
        ns, name = obj["namespace"], obj["name"]
        meta = {"name": name, "namespace": ns}
        if obj["kind"] == "ConfigMap":
            group = obj.get("ca") or by_configmap.get((ns, name))
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                         "data": {"ca.crt": read(work, cas[group] + ".crt")}})
            continue
        m = re.search(r"signed by (CA-[\w-]+)", obj["type"])
        ca = cas[m.group(1)] if m else None
        leaf = "leaf%d" % i
        make_leaf(work, leaf, obj.get("hosts", []), (obj.get("ext_key_usage") or ["ServerAuth"])[0], ca)
        docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                     "type": "kubernetes.io/tls",
                     "data": {"tls.crt": base64.b64encode(read(work, leaf + ".crt").encode()).decode(),
                              "tls.key": base64.b64encode(read(work, leaf + ".key").encode()).decode()}})
    return docs


# ------------------------------------------------------------------------------------------
# Manifests

def load_manifest(rel):
    with open(os.path.join(SHARED, "manifests", rel)) as f:
        text = f.read().replace("{GATEWAY_CLASS_NAME}", CLASS_NAME)
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        rewrite(d)
    return docs


def rewrite(doc):
    kind = doc.get("kind")
    if kind == "GatewayClass":
        doc.setdefault("spec", {})["controllerName"] = CONTROLLER
    if kind == "Gateway":
        spec = doc.get("spec") or {}
        addrs = spec.get("addresses")
        if addrs:
            special = [a for a in addrs if a.get("type") == "test/fake-invalid-type"]
            unusable = [{"type": "IPAddress", "value": UNUSABLE_ADDRESS}
                        for a in addrs if a.get("value") == "PLACEHOLDER_UNUSABLE_ADDRS"]
            usable = [{"type": "IPAddress", "value": USABLE_ADDRESS}
                      for a in addrs if a.get("value") == "PLACEHOLDER_USABLE_ADDRS"]
            if unusable or usable:
                spec["addresses"] = special + unusable + usable


def gateway_class():
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": CLASS_NAME}, "spec": {"controllerName": CONTROLLER}}


def key_of(doc):
    md = doc.get("metadata") or {}
    return (doc.get("kind"), md.get("namespace", "") or "", md.get("name"))


def merge_docs(docs):
    """Later documents replace earlier ones with the same identity, keeping creation order."""
    out, index = [], {}
    for d in docs:
        k = key_of(d)
        if k in index:
            out[index[k]] = d
        else:
            index[k] = len(out)
            out.append(d)
    return out


def run_check(bin_path, docs, workdir, tag):
    path = os.path.join(workdir, tag + ".yaml")
    # Workloads are not read by the translator; leaving them out keeps check quiet and fast.
    docs = [d for d in docs if d.get("kind") not in ("Deployment", "Pod")]
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    p = subprocess.run([bin_path, "check", "-o", "json", "-f", path], capture_output=True,
                       text=True, timeout=120)
    if p.returncode not in (0, 1):
        raise RuntimeError("archway check exited %d: %s" % (p.returncode, p.stderr[-2000:]))
    items = json.loads(p.stdout)["items"]
    return {(i["kind"], i["metadata"].get("namespace", ""), i["metadata"]["name"]): i
            for i in items}


# ------------------------------------------------------------------------------------------
# Comparison rules (SCHEMA.md "Status checks")

class Fail(Exception):
    pass


def cond_matches(actual, want):
    for c in actual or []:
        if c.get("type") != want["type"]:
            continue
        if "status" in want and c.get("status") != want["status"]:
            continue
        if want.get("reason") and c.get("reason") != want["reason"]:
            continue
        return True
    return False


def require_conditions(actual, wants, what):
    for w in wants:
        if not cond_matches(actual, w):
            raise Fail("%s lacks condition %s (has %s)" % (
                what, json.dumps(w), [(c.get("type"), c.get("status"), c.get("reason"))
                                      for c in actual or []]))


def current(obj, conds, what):
    gen = obj["metadata"].get("generation", 1)
    for c in conds or []:
        if c.get("observedGeneration") != gen:
            raise Fail("%s condition %s has observedGeneration %s, generation is %s" % (
                what, c.get("type"), c.get("observedGeneration"), gen))


class Ctx:
    def __init__(self, items, docs):
        self.items = items
        self.docs = docs

    def get(self, kind, ns, name):
        o = self.items.get((kind, ns or "", name))
        if o is None:
            raise Fail("%s %s/%s not found" % (kind, ns, name))
        return o


def status(o):
    return o.get("status") or {}


def gateway_address(ctx, ns, name):
    gw = ctx.get("Gateway", ns, name)
    current(gw, status(gw).get("conditions"), "Gateway " + name)
    if not any(a.get("type") for a in status(gw).get("addresses") or []):
        raise Fail("Gateway %s has no typed status.addresses" % name)


def parent_entries(route):
    return status(route).get("parents") or []


def check_parent_and_routes_accepted(ctx, c):
    p = c["parent"]
    if p["kind"] == "Gateway":
        gateway_address(ctx, p["namespace"], p["name"])
    for r in c["routes"]:
        route = ctx.get(r["kind"], r["namespace"], r["name"])
        for _section in c.get("section_names") or [None]:
            ok = False
            for e in parent_entries(route):
                ref = e.get("parentRef") or {}
                if e.get("controllerName") != CONTROLLER:
                    continue
                if ref.get("group") != GATEWAY_GROUP or ref.get("kind") != p["kind"]:
                    continue
                if ref.get("name") != p["name"]:
                    continue
                ns = ref.get("namespace")
                if not (ns == p["namespace"] or (ns is None and r["namespace"] == p["namespace"])):
                    continue
                if cond_matches(e.get("conditions"), {"type": "Accepted", "status": "True",
                                                      "reason": "Accepted"}):
                    ok = True
            if not ok:
                raise Fail("route %s/%s is not Accepted by %s %s: %s" % (
                    r["namespace"], r["name"], p["kind"], p["name"],
                    json.dumps(parent_entries(route))[:800]))
    if c.get("check_listener_conditions"):
        parent = ctx.get(p["kind"], p["namespace"], p["name"])
        if p["kind"] == "ListenerSet":
            current(parent, status(parent).get("conditions"), "ListenerSet " + p["name"])
        for l in status(parent).get("listeners") or []:
            require_conditions(l.get("conditions"), [
                {"type": "ResolvedRefs", "status": "True"}, {"type": "Accepted", "status": "True"},
                {"type": "Programmed", "status": "True"}], "listener " + l.get("name", "?"))


def check_route_condition(ctx, c):
    r, p = c["route"], c["parent"]
    route = ctx.get(r["kind"], r["namespace"], r["name"])
    entries = parent_entries(route)
    for e in entries:
        current(route, e.get("conditions"), "route parent")
    for e in entries:
        ref = e.get("parentRef") or {}
        if ref.get("name") != p["name"]:
            continue
        if ref.get("namespace") not in (None, p["namespace"]):
            continue
        if cond_matches(e.get("conditions"), c["condition"]):
            return
    raise Fail("no parent %s of %s has %s: %s" % (p["name"], r["name"], c["condition"],
                                                  json.dumps(entries)[:800]))


def check_route_parents(ctx, c):
    r = c["route"]
    route = ctx.get(r["kind"], r["namespace"], r["name"])
    for want in c["parents"]:
        wref = want["parent_ref"]
        ctrl = want.get("controller_name")
        if ctrl == "<suite controller name>":
            ctrl = CONTROLLER
        found = False
        for e in parent_entries(route):
            ref = e.get("parentRef") or {}
            if e.get("controllerName") != ctrl:
                continue
            if ref.get("group") != wref.get("group", GATEWAY_GROUP) or \
                    ref.get("kind") != wref.get("kind", "Gateway") or ref.get("name") != wref["name"]:
                continue
            ns = ref.get("namespace")
            if ns != wref.get("namespace") and not (ns is None and not c.get("namespace_required")):
                continue
            if all(cond_matches(e.get("conditions"), w) for w in want.get("conditions", [])):
                found = True
        if not found:
            raise Fail("route %s lacks parent %s: %s" % (r["name"], json.dumps(want),
                                                        json.dumps(parent_entries(route))[:800]))


def check_route_no_accepted_parents(ctx, c):
    r = c["route"]
    route = ctx.items.get((r["kind"], r["namespace"], r["name"]))
    entries = parent_entries(route) if route else []
    if not entries:
        return
    if len(entries) == 1:
        e = entries[0]
        current(route, e.get("conditions"), "route parent")
        if cond_matches(e.get("conditions"), {"type": "Accepted", "status": "False"}):
            return
    raise Fail("route %s has accepted parents: %s" % (r["name"], json.dumps(entries)[:800]))


def check_gateway_condition(ctx, c):
    g = c["gateway"]
    gw = ctx.get("Gateway", g["namespace"], g["name"])
    conds = status(gw).get("conditions")
    current(gw, conds, "Gateway")
    require_conditions(conds, [c["condition"]], "Gateway " + g["name"])


def check_gatewayclass_condition(ctx, c):
    gc = ctx.get("GatewayClass", "", c["gatewayclass"])
    conds = status(gc).get("conditions")
    current(gc, conds, "GatewayClass")
    if not any(x.get("type") == c["condition"]["type"] for x in conds or []):
        raise Fail("GatewayClass lacks %s" % c["condition"]["type"])


def check_latest_observed_generation(ctx, c):
    o = c["object"]
    obj = ctx.get(o["kind"], o.get("namespace") or "", o["name"])
    if o["kind"].endswith("Route"):
        for e in parent_entries(obj):
            current(obj, e.get("conditions"), o["kind"])
    else:
        current(obj, status(obj).get("conditions"), o["kind"])


def listener_status(ctx, obj, what, c):
    current(obj, status(obj).get("conditions"), what)
    actual = {l.get("name"): l for l in status(obj).get("listeners") or []}
    if len(actual) != len(c["listeners"]):
        raise Fail("%s has %d listeners, want %d" % (what, len(actual), len(c["listeners"])))
    for want in c["listeners"]:
        l = actual.get(want["name"])
        if l is None:
            raise Fail("%s has no listener %s" % (what, want["name"]))
        kinds = [(k.get("group", GATEWAY_GROUP), k.get("kind")) for k in l.get("supportedKinds") or []]
        wk = [(k.get("group") or GATEWAY_GROUP, k["kind"]) for k in want["supported_kinds"]]
        if not wk and kinds:
            raise Fail("listener %s supportedKinds %s, want empty" % (want["name"], kinds))
        for k in wk:
            if k not in kinds:
                raise Fail("listener %s lacks supported kind %s (has %s)" % (want["name"], k, kinds))
        if l.get("attachedRoutes") != want["attached_routes"]:
            raise Fail("listener %s attachedRoutes %s, want %s" % (
                want["name"], l.get("attachedRoutes"), want["attached_routes"]))
        require_conditions(l.get("conditions"), want.get("conditions", []), "listener " + want["name"])


def check_gateway_listener_status(ctx, c):
    g = c["gateway"]
    listener_status(ctx, ctx.get("Gateway", g["namespace"], g["name"]), "Gateway " + g["name"], c)


def check_listenerset_listener_status(ctx, c):
    s = c["listenerset"]
    listener_status(ctx, ctx.get("ListenerSet", s["namespace"], s["name"]),
                    "ListenerSet " + s["name"], c)


def listeners_conditions(obj, names, conds, what):
    ls = status(obj).get("listeners") or []
    by = {l.get("name"): l for l in ls}
    selected = ls
    if names:
        selected = []
        for n in names:
            if n not in by:
                raise Fail("%s has no listener %s" % (what, n))
            selected.append(by[n])
    for l in selected:
        require_conditions(l.get("conditions"), conds, "%s listener %s" % (what, l.get("name")))


def check_gateway_listeners_conditions(ctx, c):
    g = c["gateway"]
    listeners_conditions(ctx.get("Gateway", g["namespace"], g["name"]), c.get("listeners"),
                         c["conditions"], "Gateway " + g["name"])


def check_gateway_listener_conditions(ctx, c):
    g = c["gateway"]
    listeners_conditions(ctx.get("Gateway", g["namespace"], g["name"]), [c["listener"]],
                         c["conditions"], "Gateway " + g["name"])


def check_listenerset_condition(ctx, c):
    s = c["listenerset"]
    ls = ctx.get("ListenerSet", s["namespace"], s["name"])
    conds = status(ls).get("conditions")
    current(ls, conds, "ListenerSet")
    require_conditions(conds, [c["condition"]], "ListenerSet " + s["name"])


def check_listenerset_listeners_conditions(ctx, c):
    s = c["listenerset"]
    ls = ctx.get("ListenerSet", s["namespace"], s["name"])
    current(ls, status(ls).get("conditions"), "ListenerSet")
    listeners_conditions(ls, c.get("listeners"), c["conditions"], "ListenerSet " + s["name"])


def check_gateway_attached_listener_sets(ctx, c):
    g = c["gateway"]
    gw = ctx.get("Gateway", g["namespace"], g["name"])
    current(gw, status(gw).get("conditions"), "Gateway")
    n = status(gw).get("attachedListenerSets") or 0
    if n != c["count"]:
        raise Fail("attachedListenerSets %s, want %s" % (n, c["count"]))


def check_gateway_zero_routes(ctx, c):
    g = c["gateway"]
    gw = ctx.get("Gateway", g["namespace"], g["name"])
    current(gw, status(gw).get("conditions"), "Gateway")
    ls = status(gw).get("listeners") or []
    if ls and not (len(ls) == 1 and ls[0].get("attachedRoutes") == 0):
        raise Fail("Gateway %s listeners %s" % (g["name"], json.dumps(ls)[:400]))


def check_policy_ancestor_condition(ctx, c):
    p, a = c["policy"], c["ancestor"]
    pol = ctx.get(p["kind"], p["namespace"], p["name"])
    ancestors = status(pol).get("ancestors") or []
    for e in ancestors:
        current(pol, e.get("conditions"), "policy ancestor")
    for e in ancestors:
        ref = e.get("ancestorRef") or {}
        if ref.get("name") == a["name"] and ref.get("namespace") in (None, a["namespace"]) and \
                cond_matches(e.get("conditions"), c["condition"]):
            return
    raise Fail("policy %s has no ancestor %s with %s: %s" % (
        p["name"], a["name"], c["condition"], json.dumps(ancestors)[:600]))


def check_namespaces_ready(ctx, c):
    # The Gateway half of NamespacesMustBeReady (Pods do not exist in file mode).
    for d in ctx.docs:
        if d.get("kind") != "Gateway":
            continue
        md = d.get("metadata") or {}
        if md.get("namespace") not in c["namespaces"]:
            continue
        if (md.get("annotations") or {}).get("gateway-api/skip-this-for-readiness") == "true":
            continue
        gw = ctx.get("Gateway", md["namespace"], md["name"])
        conds = status(gw).get("conditions")
        current(gw, conds, "Gateway " + md["name"])
        require_conditions(conds, [{"type": "Accepted", "status": "True"},
                                   {"type": "Programmed", "status": "True"}], "Gateway " + md["name"])


def check_custom(ctx, c, test):
    d = c["description"]
    m = re.search(r"Gateway (?:(\S+)/)?(\S+) .*WaitForGatewayAddress", d)
    if m:
        ns = m.group(1) or "gateway-conformance-infra"
        gateway_address(ctx, ns, m.group(2))
        return
    if "spec.hostnames" in d and "TLSRoute" in d:
        routes = [x for x in test_docs(test) if x.get("kind") == "TLSRoute"]
        if not routes:
            raise Fail("no TLSRoute in the test manifests")
        for r in routes:
            if len((r.get("spec") or {}).get("hostnames") or []) != 1:
                raise Fail("TLSRoute %s does not have exactly one hostname" % r["metadata"]["name"])
        return
    raise Fail("custom check not implemented: " + d)


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


def test_docs(test):
    out = []
    for m in test.get("manifests", []):
        out.extend(load_manifest(m))
    return out


def evaluate(ctx, check, test):
    kind = check["check"]
    if kind == "custom":
        check_custom(ctx, check, test)
    else:
        CHECKS[kind](ctx, check)


# ------------------------------------------------------------------------------------------
# Procedures: mutations replayed on the manifests, then status re-computed.

def find_doc(docs, kind, ns, name):
    for d in docs:
        if key_of(d) == (kind, ns, name):
            return d
    raise Fail("%s %s/%s not in manifests" % (kind, ns, name))


def bump(doc):
    md = doc.setdefault("metadata", {})
    md["generation"] = int(md.get("generation", 1)) + 1


INFRA = "gateway-conformance-infra"


def mutate_gateway_add_listener(docs, name, listener):
    gw = find_doc(docs, "Gateway", INFRA, name)
    gw["spec"]["listeners"].append(listener)
    bump(gw)


def ctx_original(test):
    """The test's manifests as applied, before any procedure step changed them."""
    return test_docs(test)


def proc_actions(test):
    """Mutation for each action step, keyed by step index; None = nothing to change."""
    name = test["name"]

    table = {}
    steps = test["procedure"]["steps"]
    for i, st in enumerate(steps):
        a = st.get("action")
        if a is None:
            continue
        if name == "GatewayModifyListeners" and "gateway-add-listener" in a and "appending" in a:
            table[i] = lambda docs: mutate_gateway_add_listener(docs, "gateway-add-listener", {
                "name": "http", "port": 80, "protocol": "HTTP", "hostname": "data.test.com",
                "allowedRoutes": {"namespaces": {"from": "All"}}})
        elif name == "GatewayModifyListeners" and "keeping only the listener" in a:
            def f(docs):
                gw = find_doc(docs, "Gateway", INFRA, "gateway-remove-listener")
                if len(gw["spec"]["listeners"]) != 2:
                    raise Fail("gateway-remove-listener does not have 2 listeners")
                gw["spec"]["listeners"] = [l for l in gw["spec"]["listeners"] if l["name"] == "http"]
                bump(gw)
            table[i] = f
        elif name == "GatewayObservedGenerationBump" and "appending listener" in a:
            table[i] = lambda docs: mutate_gateway_add_listener(
                docs, "gateway-observed-generation-bump", {
                    "name": "alternate", "hostname": "foo.com", "port": 80, "protocol": "HTTP",
                    "allowedRoutes": {"namespaces": {"from": "All"}}})
        elif name == "GatewayClassObservedGenerationBump" and "spec.description" in a:
            def f(docs):
                gc = find_doc(docs, "GatewayClass", "", "gatewayclass-observed-generation-bump")
                gc["spec"]["description"] = "new"
                bump(gc)
            table[i] = f
        elif name == "GatewayStaticAddresses" and "removing the invalid address" in a:
            def f(docs):
                gw = find_doc(docs, "Gateway", INFRA, "gateway-static-addresses")
                gw["spec"]["addresses"] = [x for x in gw["spec"]["addresses"]
                                           if x.get("type") != "test/fake-invalid-type"]
                bump(gw)
            table[i] = f
        elif name == "GatewayStaticAddresses" and "removing the unusable address" in a:
            def f(docs):
                gw = find_doc(docs, "Gateway", INFRA, "gateway-static-addresses")
                gw["spec"]["addresses"] = [x for x in gw["spec"]["addresses"]
                                           if x.get("value") != UNUSABLE_ADDRESS]
                bump(gw)
            table[i] = f
        elif name == "GatewayStaticAddresses" and "status.addresses has exactly 1 entry" in a:
            table[i] = ("assert_static_addresses",)
        elif name == "GatewayStaticAddresses" and "spec.addresses must have exactly 3" in a:
            table[i] = ("assert_three_addresses",)
        elif "generation must differ" in a:
            table[i] = ("assert_generation_bumped",)
        elif name == "HTTPRouteObservedGenerationBump" and "Merge-patch" in a:
            def f(docs):
                r = find_doc(docs, "HTTPRoute", INFRA, "observed-generation-bump")
                r["spec"]["rules"][0]["backendRefs"][0]["name"] = "infra-backend-v2"
                bump(r)
            table[i] = f
        elif "delete ReferenceGrant" in a:
            m = re.search(r"ReferenceGrant ([\w.-]+)/([\w-]+(?:\.[\w-]+)*)", a)
            def f(docs, ns=m.group(1), gn=m.group(2)):
                before = len(docs)
                docs[:] = [d for d in docs if key_of(d) != ("ReferenceGrant", ns, gn)]
                if len(docs) == before:
                    raise Fail("ReferenceGrant %s/%s not in manifests" % (ns, gn))
            table[i] = f
        elif name in ("TCPRouteMultipleRoutesAttachment", "UDPRouteMultipleRoutesAttachment") \
                and "create" in a:
            tcp = name.startswith("TCP")
            def f(docs, tcp=tcp):
                docs.append({
                    "apiVersion": "gateway.networking.k8s.io/v1alpha2",
                    "kind": "TCPRoute" if tcp else "UDPRoute",
                    "metadata": {"name": "tcproute-attach-newer" if tcp else "udproute-attach-newer",
                                 "namespace": INFRA},
                    "spec": {"parentRefs": [{"name": "tcp-multi-route-attach-gateway" if tcp
                                             else "udp-multi-route-attach-gateway",
                                             "sectionName": "tcp" if tcp else "udp"}],
                             "rules": [{"backendRefs": [{
                                 "name": "tcp-attach-backend-2" if tcp else "udp-attach-backend-2",
                                 "port": 3000 if tcp else 8080}]}]}})
            table[i] = f
        elif name == "BackendTLSPolicyObservedGenerationBump":
            pol = ("BackendTLSPolicy", INFRA, "observed-generation-bump")
            if i == 1:
                def f(docs):
                    d = find_doc(docs, *pol)
                    d["spec"]["validation"]["hostname"] = "foo.example.com"
                    bump(d)
                table[i] = f
            elif i in (0, 2, 3):
                def g(ctx, docs, generations, i=i):
                    p = ctx.get(*pol)
                    anc = status(p).get("ancestors") or []
                    for e in anc:
                        current(p, e.get("conditions"), "policy ancestor")
                    if i == 2 and not any(
                            (e.get("ancestorRef") or {}).get("name") == "same-namespace" and
                            cond_matches(e.get("conditions"), {"type": "Accepted", "status": "True"})
                            for e in anc):
                        raise Fail("no Accepted=True ancestor same-namespace: %s" % anc)
                    if i == 3 and p["metadata"]["generation"] == generations.get(pol, 1):
                        raise Fail("generation did not change")
                table[i] = ("assert", g)
        elif name == "BackendTLSPolicy":
            pol = ("BackendTLSPolicy", INFRA, "reconcile-test")
            cm = ("ConfigMap", INFRA, "tls-checks-ca-certificate-reconcile-test")
            if i == 1:
                table[i] = ("remember",)
            elif i == 10:
                def f(docs):
                    d = find_doc(docs, *pol)
                    d["spec"]["validation"]["caCertificateRefs"] = copy.deepcopy(
                        find_doc(ctx_original(test), *pol)["spec"]["validation"]["caCertificateRefs"])
                    bump(d)
                table[i] = f
            elif i == 2:
                def f(docs):
                    d = find_doc(docs, *pol)
                    d["spec"]["validation"]["caCertificateRefs"] = [
                        {"group": "", "kind": "ConfigMap", "name": cm[2]}]
                    bump(d)
                table[i] = f
            elif i in (4, 8):
                def f(docs):
                    ca = find_doc(docs, "ConfigMap", INFRA, "tls-checks-ca-certificate")["data"]["ca.crt"]
                    docs[:] = [d for d in docs if key_of(d) != cm]
                    docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": cm[2], "namespace": INFRA},
                                 "data": {"ca.crt": ca}})
                table[i] = f
            elif i == 6:
                def f(docs):
                    find_doc(docs, *cm)["data"]["ca.crt"] = ""
                table[i] = f
            elif i in (0, 3, 5, 7, 9):
                good = i in (0, 5, 9)
                def g(ctx, docs, generations, good=good):
                    want = [{"type": "Accepted", "status": "True", "reason": "Accepted"},
                            {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs"}] if good else \
                        [{"type": "Accepted", "status": "False", "reason": "NoValidCACertificate"},
                         {"type": "ResolvedRefs", "status": "False", "reason": "InvalidCACertificateRef"}]
                    check_policy_ancestor_condition(ctx, {
                        "policy": {"kind": pol[0], "namespace": pol[1], "name": pol[2]},
                        "ancestor": {"name": "same-namespace", "namespace": INFRA},
                        "condition": want[0]})
                    check_policy_ancestor_condition(ctx, {
                        "policy": {"kind": pol[0], "namespace": pol[1], "name": pol[2]},
                        "ancestor": {"name": "same-namespace", "namespace": INFRA},
                        "condition": want[1]})
                table[i] = ("assert", g)
    return table


class ProcResult:
    def __init__(self):
        self.passed = self.total = self.replayed = 0
        self.failures = []     # unexpected: a status expectation failed or a step is unknown
        self.not_replayed = []  # (step, reason)


def run_procedure(bin_path, test, docs, workdir, verbose):
    """Replays the procedure: mutations on the manifests, status expectations through check."""
    steps = test["procedure"]["steps"]
    actions = proc_actions(test)
    docs = copy.deepcopy(docs)
    ctx = None
    r = ProcResult()
    generations = {}
    for i, st in enumerate(steps):
        if "action" in st:
            act = actions.get(i)
            if act is None:
                why = NOT_REPLAYED.get(test["name"])
                if why:
                    r.not_replayed.append((i, why))
                else:
                    r.failures.append("step %d: action neither replayed nor listed in "
                                      "NOT_REPLAYED: %s" % (i, st["action"][:200]))
            elif callable(act):
                for d in docs:
                    generations[key_of(d)] = (d.get("metadata") or {}).get("generation", 1)
                try:
                    act(docs)
                    r.replayed += 1
                except Fail as e:
                    r.failures.append("step %d: %s" % (i, e))
                ctx = None
            elif act == ("remember",):
                r.replayed += 1  # reads state a later step restores; nothing to check
            else:
                r.total += 1
                try:
                    if ctx is None:
                        ctx = Ctx(run_check(bin_path, docs, workdir, "proc%d" % i), docs)
                    if act[0] == "assert":
                        act[1](ctx, docs, generations)
                    else:
                        procedure_assert(act[0], ctx, docs, generations)
                    r.passed += 1
                except Fail as e:
                    r.failures.append("step %d (%s): %s" % (i, act[0], e))
            continue
        exp = st.get("expect") or {}
        if "check" not in exp or exp["check"] in TRAFFIC_CHECKS:
            r.not_replayed.append((i, TRAFFIC_REASON))
            continue
        r.total += 1
        try:
            if ctx is None:
                ctx = Ctx(run_check(bin_path, docs, workdir, "proc%d" % i), docs)
            evaluate(ctx, exp, test)
            r.passed += 1
        except Fail as e:
            r.failures.append("step %d (%s): %s" % (i, exp["check"], e))
    return r


def procedure_assert(what, ctx, docs, generations):
    if what == "assert_generation_bumped":
        if not any((d.get("metadata") or {}).get("generation", 1) != generations.get(key_of(d), 1)
                   for d in docs):
            raise Fail("no object's generation changed")
    elif what == "assert_three_addresses":
        gw = find_doc(docs, "Gateway", INFRA, "gateway-static-addresses")
        if len(gw["spec"]["addresses"]) != 3:
            raise Fail("spec.addresses has %d entries" % len(gw["spec"]["addresses"]))
    elif what == "assert_static_addresses":
        gw = ctx.get("Gateway", INFRA, "gateway-static-addresses")
        addrs = status(gw).get("addresses") or []
        values = [a.get("value") for a in addrs]
        if len(addrs) != 1 or USABLE_ADDRESS not in values or UNUSABLE_ADDRESS in values or \
                addrs[0].get("type") != "IPAddress":
            raise Fail("status.addresses %s" % addrs)


# ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", default="", help="only tests whose name contains this")
    ap.add_argument("-v", action="store_true")
    args = ap.parse_args()
    cases_path = os.path.join(SHARED, "cases.json")
    if not os.path.exists(cases_path):
        print("run_status.py: SKIP: %s not found (the shared conformance data is absent)" % cases_path)
        return 0
    bin_path = binary()
    with open(cases_path) as f:
        cases = json.load(f)
    with open(os.path.join(SHARED, "generated-fixtures.json")) as f:
        fixtures_spec = json.load(f)

    with tempfile.TemporaryDirectory(prefix="archway-status-") as workdir:
        fixtures = generate_fixtures(fixtures_spec, workdir)
        base = load_manifest("base/manifests.yaml")
        tests = [t for t in cases["tests"] if not t.get("mesh") and args.k in t["name"]]

        def one(test):
            """Returns a dict: lines to print and the counts of one test."""
            name = test["name"]
            n = len(test.get("status_checks", []))
            out = {"name": name, "lines": [], "passed": 0, "total": 0, "unexpected": 0,
                   "known": 0, "skipped": [], "proc": None, "stale": []}
            skip = set(test.get("skip_if_feature_supported") or []) & CLAIMED_FEATURES
            if skip:
                why = "the upstream test is a no-op when %s is supported (Archway supports it)" % (
                    ", ".join(sorted(skip)))
                out["skipped"] = [(name, idx, c["check"], why)
                                  for idx, c in enumerate(test.get("status_checks", []))]
                out["lines"] = ["SKIP %s: %d status checks: %s; checked that Archway does not "
                                "report it unsupported" % (name, n, why)]
                # The claim itself is checked: the "not supported" status these checks expect
                # must NOT be what Archway reports.
                docs = merge_docs(base + fixtures + [gateway_class()] + test_docs(test))
                tdir = os.path.join(workdir, name)
                os.makedirs(tdir, exist_ok=True)
                try:
                    ctx = Ctx(run_check(bin_path, docs, tdir, "state"), docs)
                except Exception as e:  # noqa: BLE001 - report and count as a failure
                    out["unexpected"] += 1
                    out["lines"].append("  FAIL %s" % e)
                    return out
                for idx, check in enumerate(test.get("status_checks", [])):
                    try:
                        evaluate(ctx, check, test)
                    except Fail:
                        continue
                    out["unexpected"] += 1
                    out["lines"].append("  FAIL check %d: reports the feature unsupported although "
                                        "%s is claimed" % (idx, ", ".join(sorted(skip))))
                return out
            docs = merge_docs(base + fixtures + [gateway_class()] + test_docs(test))
            tdir = os.path.join(workdir, name)
            os.makedirs(tdir, exist_ok=True)
            try:
                ctx = Ctx(run_check(bin_path, docs, tdir, "state"), docs)
            except Exception as e:  # noqa: BLE001 - report and count as failures
                out.update(lines=["FAIL %s: %s" % (name, e)], total=n, unexpected=n)
                return out
            for idx, check in enumerate(test.get("status_checks", [])):
                out["total"] += 1
                known = KNOWN_EXCEPTIONS.get((name, idx))
                try:
                    evaluate(ctx, check, test)
                    out["passed"] += 1
                    if known:
                        out["stale"].append("%s check %d passes but is listed in KNOWN_EXCEPTIONS"
                                            % (name, idx))
                except Fail as e:
                    out["lines"].append("  %s check %d (%s): %s%s" % (
                        "KNOWN" if known else "FAIL", idx, check["check"], e,
                        " [known: %s]" % known if known else ""))
                    out["known" if known else "unexpected"] += 1
            if test.get("procedure"):
                pr = run_procedure(bin_path, test, docs, tdir, args.v)
                out["proc"] = pr
                known = KNOWN_EXCEPTIONS.get((name, "procedure"))
                for f in pr.failures:
                    out["lines"].append("  %s procedure %s%s" % (
                        "KNOWN" if known else "FAIL", f, " [known: %s]" % known if known else ""))
                if pr.failures and not known:
                    out["unexpected"] += len(pr.failures)
                if known and not pr.failures:
                    out["stale"].append("%s procedure passes but is listed in KNOWN_EXCEPTIONS"
                                        % name)
            head = "%s %s: %d/%d status checks" % ("FAIL" if out["unexpected"] else "PASS", name,
                                                   out["passed"], out["total"])
            if out["proc"] and (out["proc"].total or out["proc"].not_replayed):
                head += ", %d/%d procedure status checks" % (out["proc"].passed, out["proc"].total)
                if out["proc"].not_replayed:
                    head += " (%d steps not replayed here)" % len(out["proc"].not_replayed)
            out["lines"].insert(0, head)
            return out

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
            results = list(ex.map(one, tests))

    all_checks = sum(len(t.get("status_checks", [])) for t in tests)
    passed = sum(r["passed"] for r in results)
    evaluated = sum(r["total"] for r in results)
    unexpected = sum(r["unexpected"] for r in results)
    known = sum(r["known"] for r in results)
    skipped = [s for r in results for s in r["skipped"]]
    stale = [s for r in results for s in r["stale"]]
    procs = [(r["name"], r["proc"]) for r in results if r["proc"]]
    for r in results:
        show = r["unexpected"] or r["known"] or args.v
        print("\n".join(r["lines"] if show else r["lines"][:1]))

    print("\n== Status replay summary (%d non-mesh tests) ==" % len(tests))
    print("status_checks: %d of %d pass (%d evaluated, %d skipped, %d known failures, "
          "%d unexpected failures)" % (passed, all_checks, evaluated, len(skipped), known,
                                       unexpected))
    for name, idx, check, why in skipped:
        print("  skipped: %s check %d (%s): %s" % (name, idx, check, why))
    for (t, i), why in sorted(KNOWN_EXCEPTIONS.items(), key=lambda x: (x[0][0], str(x[0][1]))):
        print("  known exception: %s %s: %s" % (t, i, why))
    print("procedure status expectations: %d of %d pass; %d mutations replayed" % (
        sum(p.passed for _, p in procs), sum(p.total for _, p in procs),
        sum(p.replayed for _, p in procs)))
    not_replayed = {}
    for name, p in procs:
        for step, why in p.not_replayed:
            not_replayed.setdefault((name, why), []).append(step)
    print("procedure steps not replayed here: %d" % sum(len(v) for v in not_replayed.values()))
    for (name, why), steps in sorted(not_replayed.items()):
        print("  %s steps %s: %s" % (name, ",".join(map(str, steps)), why))
    for s in stale:
        print("STALE: " + s)
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    sys.exit(main())
