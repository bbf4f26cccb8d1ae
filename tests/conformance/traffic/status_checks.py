"""The status checks that appear inside procedures (SCHEMA.md "Status checks"),
evaluated against the items of archway's admin /status. Each function returns
None when the check holds, else a one-line reason."""

GW_GROUP = "gateway.networking.k8s.io"


def _gen(item):
    return (item.get("metadata") or {}).get("generation")


def _current(conds, gen):
    return all(c.get("observedGeneration") == gen for c in conds or [])


def _has(conds, want):
    for c in conds or []:
        if c.get("type") == want["type"] and c.get("status") == want["status"] and (
                not want.get("reason") or c.get("reason") == want["reason"]):
            return True
    return False


def _fmt(conds):
    return [(c.get("type"), c.get("status"), c.get("reason"), c.get("observedGeneration")) for c in conds or []]


def evaluate(check, status):
    """status: {(kind, namespace, name): item}."""
    kind = check.get("check")
    fn = _CHECKS.get(kind)
    if fn is None:
        return "unsupported check %r" % kind
    return fn(check, status)


def _gateway(check, status):
    g = check.get("gateway") or {}
    return status.get(("Gateway", g.get("namespace") or "", g.get("name", "")))


def check_namespaces_ready(check, status):
    # The Gateway half of NamespacesMustBeReady (pods are always ready here).
    for (kind, ns, name), it in status.items():
        if kind != "Gateway" or ns not in check["namespaces"]:
            continue
        ann = (it.get("metadata") or {}).get("annotations") or {}
        if ann.get("gateway-api/skip-this-for-readiness") == "true":
            continue
        conds = (it.get("status") or {}).get("conditions") or []
        if not _current(conds, _gen(it)):
            return "Gateway %s/%s conditions not current: %s" % (ns, name, _fmt(conds))
        for t in ("Accepted", "Programmed"):
            if not _has(conds, {"type": t, "status": "True"}):
                return "Gateway %s/%s not %s: %s" % (ns, name, t, _fmt(conds))
    return None


def check_gateway_listener_status(check, status):
    it = _gateway(check, status)
    if it is None:
        return "Gateway %s not found" % check["gateway"]
    st = it.get("status") or {}
    if not _current(st.get("conditions"), _gen(it)):
        return "Gateway conditions not current: %s" % _fmt(st.get("conditions"))
    actual = {l.get("name"): l for l in st.get("listeners") or []}
    if len(actual) != len(check["listeners"]):
        return "listeners %s, expected %s" % (sorted(actual), [l["name"] for l in check["listeners"]])
    for want in check["listeners"]:
        got = actual.get(want["name"])
        if got is None:
            return "listener %s missing" % want["name"]
        kinds = {((k.get("group") or GW_GROUP), k.get("kind")) for k in got.get("supportedKinds") or []}
        wanted = {((k.get("group") or GW_GROUP), k.get("kind")) for k in want.get("supported_kinds") or []}
        if not want.get("supported_kinds") and kinds:
            return "listener %s supportedKinds %s, expected none" % (want["name"], sorted(kinds))
        if not wanted <= kinds:
            return "listener %s supportedKinds %s, expected %s" % (want["name"], sorted(kinds), sorted(wanted))
        if got.get("attachedRoutes") != want.get("attached_routes"):
            return "listener %s attachedRoutes %s, expected %s" % (want["name"], got.get("attachedRoutes"),
                                                                  want.get("attached_routes"))
        for c in want.get("conditions") or []:
            if not _has(got.get("conditions"), c):
                return "listener %s lacks %s: %s" % (want["name"], c, _fmt(got.get("conditions")))
    return None


def check_latest_observed_generation(check, status):
    o = check["object"]
    it = status.get((o["kind"], o.get("namespace") or "", o["name"]))
    if it is None:
        return "%s %s not found" % (o["kind"], o["name"])
    st = it.get("status") or {}
    gen = _gen(it)
    if o["kind"] == "HTTPRoute":
        for p in st.get("parents") or []:
            if not _current(p.get("conditions"), gen):
                return "parent conditions not at generation %s: %s" % (gen, _fmt(p.get("conditions")))
        return None
    if not _current(st.get("conditions"), gen):
        return "conditions not at generation %s: %s" % (gen, _fmt(st.get("conditions")))
    return None


def check_gateway_condition(check, status):
    it = _gateway(check, status)
    if it is None:
        return "Gateway %s not found" % check["gateway"]
    conds = (it.get("status") or {}).get("conditions")
    if not _current(conds, _gen(it)):
        return "Gateway conditions not current: %s" % _fmt(conds)
    if not _has(conds, check["condition"]):
        return "Gateway lacks %s: %s" % (check["condition"], _fmt(conds))
    return None


def check_gatewayclass_condition(check, status):
    it = status.get(("GatewayClass", "", check["gatewayclass"]))
    if it is None:
        return "GatewayClass %s not found" % check["gatewayclass"]
    conds = (it.get("status") or {}).get("conditions")
    if not _current(conds, _gen(it)):
        return "GatewayClass conditions not current: %s" % _fmt(conds)
    if not any(c.get("type") == "Accepted" for c in conds or []):
        return "GatewayClass has no Accepted condition"
    return None


def check_route_condition(check, status):
    r = check["route"]
    it = status.get((r["kind"], r.get("namespace") or "", r["name"]))
    if it is None:
        return "%s %s not found" % (r["kind"], r["name"])
    gen = _gen(it)
    parents = (it.get("status") or {}).get("parents") or []
    for p in parents:
        if not _current(p.get("conditions"), gen):
            return "parent conditions not current: %s" % _fmt(p.get("conditions"))
    want_parent = check["parent"]
    for p in parents:
        pr = p.get("parentRef") or {}
        if pr.get("name") != want_parent["name"]:
            continue
        if pr.get("namespace") not in (None, "", want_parent.get("namespace")):
            continue
        if _has(p.get("conditions"), check["condition"]):
            return None
    return "%s %s lacks %s for parent %s: %s" % (r["kind"], r["name"], check["condition"], want_parent["name"],
                                                 [_fmt(p.get("conditions")) for p in parents])


def check_policy_ancestor_condition(check, status):
    pol = check["policy"]
    it = status.get((pol["kind"], pol.get("namespace") or "", pol["name"]))
    if it is None:
        return "%s %s not found" % (pol["kind"], pol["name"])
    gen = _gen(it)
    ancestors = (it.get("status") or {}).get("ancestors") or []
    for a in ancestors:
        if not _current(a.get("conditions"), gen):
            return "ancestor conditions not current: %s" % _fmt(a.get("conditions"))
    for a in ancestors:
        ar = a.get("ancestorRef") or {}
        if ar.get("name") == check["ancestor"]["name"] and ar.get("namespace") in (
                None, "", check["ancestor"].get("namespace")) and _has(a.get("conditions"), check["condition"]):
            return None
    return "policy %s lacks %s: %s" % (pol["name"], check["condition"], [_fmt(a.get("conditions")) for a in ancestors])


_CHECKS = {
    "namespaces_ready": check_namespaces_ready,
    "gateway_listener_status": check_gateway_listener_status,
    "latest_observed_generation": check_latest_observed_generation,
    "gateway_condition": check_gateway_condition,
    "gatewayclass_condition": check_gatewayclass_condition,
    "route_condition": check_route_condition,
    "policy_ancestor_condition": check_policy_ancestor_condition,
}
