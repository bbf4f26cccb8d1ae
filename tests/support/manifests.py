"""Builders for the Kubernetes objects the Python tests feed `archway run -f`: the
GatewayClass, Gateways with their listeners, Services with EndpointSlices on 127.0.0.1 and
simple HTTPRoutes. Each builder returns plain dicts (a list of them for a Service), so they
serve both as YAML files (to_yaml / write) and as objects for the fake API server."""

import yaml

GATEWAY_API = "gateway.networking.k8s.io/v1"
CONTROLLER = "archway.dev/gateway-controller"


def gateway_class(name="archway", controller=CONTROLLER):
    return {"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": name},
            "spec": {"controllerName": controller}}


def listener(name, port, protocol="HTTP", hostname=None, certificate_refs=None):
    """One Gateway listener; certificate_refs: Secret names for an HTTPS/TLS terminate listener."""
    out = {"name": name, "protocol": protocol, "port": port}
    if hostname is not None:
        out["hostname"] = hostname
    if certificate_refs is not None:
        out["tls"] = {"certificateRefs": [{"name": n} for n in certificate_refs]}
    return out


def gateway(listeners, name="gw", namespace="default", class_name="archway",
            addresses=("127.0.0.1",)):
    """A Gateway; listeners: dicts from listener() or (name, port) pairs of HTTP listeners."""
    spec = {"gatewayClassName": class_name}
    if addresses:
        spec["addresses"] = [{"type": "IPAddress", "value": a} for a in addresses]
    spec["listeners"] = [l if isinstance(l, dict) else listener(*l) for l in listeners]
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def http_gateway(port, hostname=None, name="gw"):
    """The usual start of a test's manifests: the GatewayClass and a Gateway on 127.0.0.1
    with one HTTP listener named "http"."""
    return [gateway_class(), gateway([listener("http", port, hostname=hostname)], name=name)]


def service(name, backend_port=None, slices=None, service_port=80, target_port=True,
            app_protocol=None, protocol="TCP", port_name="http", namespace="default"):
    """A Service with one port (`service_port`, appProtocol `app_protocol`) and its
    EndpointSlices, every endpoint on 127.0.0.1. Either backend_port: one ready slice on
    that port, which is also the targetPort (unless target_port is False); or slices:
    [(port, ready), ...], one slice each, no targetPort."""
    if (backend_port is None) == (slices is None):
        raise ValueError("give backend_port or slices")
    port = {"name": port_name, "port": service_port}
    if slices is None:
        slices = [(backend_port, True)]
        if target_port:
            port["targetPort"] = backend_port
    port["protocol"] = protocol
    if app_protocol:
        port["appProtocol"] = app_protocol
    out = [{"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"ports": [port]}}]
    for i, (p, ready) in enumerate(slices, 1):
        out.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": "%s-%d" % (name, i), "namespace": namespace,
                                 "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4",
                    "ports": [{"name": port_name, "port": p, "protocol": protocol}],
                    "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}]})
    return out


def prefix_rule(prefix, backend, port=80, filters=None):
    """An HTTPRoute rule: PathPrefix `prefix` (no match when None) to one backend."""
    rule = {}
    if prefix is not None:
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": prefix}}]
    if filters:
        rule["filters"] = filters
    rule["backendRefs"] = [{"name": backend, "port": port}]
    return rule


def http_route(name, rules, parents=("gw",), namespace="default"):
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRefs": [{"name": p} for p in parents], "rules": list(rules)}}


def response_header_set(name, value):
    """A ResponseHeaderModifier filter that sets one header."""
    return {"type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"set": [{"name": name, "value": value}]}}


def _documents(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _documents(item)
        elif isinstance(item, dict):
            yield yaml.safe_dump(item, sort_keys=False, default_flow_style=False).strip()
        else:
            # Hand-written YAML: drop its own leading/trailing separators.
            text = item.strip()
            if text.startswith("---"):
                text = text[3:].strip()
            if text.endswith("---"):
                text = text[:-3].strip()
            if text:
                yield text


def to_yaml(*items):
    """One multi-document YAML text of `items`: objects, lists of objects or YAML text."""
    return "".join(doc + "\n---\n" for doc in _documents(items))


def write(path, *items):
    with open(path, "w") as f:
        f.write(to_yaml(*items))
    return path
