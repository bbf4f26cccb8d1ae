#!/usr/bin/env python3
"""Writes the seeds of corpus/kube_event/: Kubernetes API answers as KubeSource reads them.
First byte: bit 0 = watch stream (1) or LIST page (0), the other bits = index of the kind in
kubeKinds() (sources/kube_source.cc). Crash reproducers are added as regress-*."""
import json
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "kube_event")
os.makedirs(OUT, exist_ok=True)
KINDS = ["GatewayClass", "Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute",
         "UDPRoute", "ReferenceGrant", "BackendTLSPolicy", "XBackendTrafficPolicy", "Namespace",
         "Service", "Secret", "ConfigMap", "EndpointSlice"]


def write(name, kind, watch, body):
    head = bytes([(KINDS.index(kind) << 1) | (1 if watch else 0)])
    if isinstance(body, str):
        body = body.encode()
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(head + body)


def md(name, ns="default", rv="1", gen=1, **extra):
    m = {"name": name, "namespace": ns, "resourceVersion": rv, "generation": gen,
         "creationTimestamp": "2026-01-01T00:00:00Z",
         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]}
    m.update(extra)
    return m


gw = {"metadata": md("gw"), "spec": {"gatewayClassName": "archway", "listeners": [
    {"name": "http", "port": 80, "protocol": "HTTP"}]},
    "status": {"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                               "lastTransitionTime": "2026-01-01T00:00:00Z", "message": "",
                               "observedGeneration": 1}]}}
route = {"metadata": md("r", rv="7", gen=3), "spec": {
    "parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
               "backendRefs": [{"name": "svc", "port": 80}]}]}}
svc = {"metadata": md("svc"), "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                                       "clusterIP": "10.0.0.1"}}
eps = {"metadata": md("svc-abc", labels={"kubernetes.io/service-name": "svc"}), "addressType": "IPv4",
       "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}}],
       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
secret = {"metadata": md("cert"), "type": "kubernetes.io/tls",
          "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "bm90IGEga2V5"}}


def page(items, rv="100", cont=None):
    m = {"resourceVersion": rv}
    if cont:
        m["continue"] = cont
    return json.dumps({"kind": "List", "apiVersion": "v1", "metadata": m, "items": items})


def events(*evs):
    return "".join(json.dumps({"type": t, "object": o}) + "\n" for t, o in evs)


write("list-gateways.json", "Gateway", False, page([gw]))
write("list-httproutes-continue.json", "HTTPRoute", False, page([route, route], cont="abc=="))
write("list-services.json", "Service", False, page([svc]))
write("list-endpointslices.json", "EndpointSlice", False, page([eps]))
write("list-secrets.json", "Secret", False, page([secret]))
write("list-null-items.json", "Namespace", False, '{"metadata":{"resourceVersion":"5"},"items":null}')
write("list-not-a-list.json", "Gateway", False, '{"kind":"Status","code":403,"message":"forbidden"}')
write("list-invalid-json.json", "Gateway", False, '{"items":[{"metadata":')
write("list-odd-items.json", "HTTPRoute", False,
      page([None, 5, "x", [], {}, {"metadata": None}, {"metadata": {"name": 7}},
            {"metadata": {"name": "n", "generation": -4, "namespace": ["x"]}},
            {"metadata": {"name": "g", "generation": 18446744073709551615}},
            {"metadata": {"name": "f", "generation": 1.5}, "spec": "x"}]))
write("watch-stream.jsonl", "HTTPRoute", True,
      events(("ADDED", route), ("MODIFIED", route), ("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
             ("DELETED", {"metadata": {"name": "r", "namespace": "default"}})))
write("watch-gateway.jsonl", "Gateway", True, events(("ADDED", gw)) + "\n\n" + events(("DELETED", gw)))
write("watch-expired.jsonl", "Service", True,
      events(("ADDED", svc), ("ERROR", {"kind": "Status", "code": 410, "reason": "Expired",
                                        "message": "too old resource version"})))
write("watch-error.jsonl", "Secret", True,
      events(("ERROR", {"kind": "Status", "code": 500, "message": "etcd unavailable"})))
write("watch-unknown-type.jsonl", "ConfigMap", True,
      events(("PATCHED", {"metadata": {"name": "c", "resourceVersion": "3"}})))
write("watch-garbage.jsonl", "GatewayClass", True,
      '{"type":"ADDED"}\n{"type":"ADDED","object":5}\n[1,2]\nnot json\n{"object":{}}\n'
      '{"type":"ADDED","object":{"metadata":{"name":"\\ud800"}}}\n')
write("watch-invalid-utf8.jsonl", "Namespace", True,
      b'{"type":"ADDED","object":{"metadata":{"name":"a\xff\xfe"}}}\n')
write("watch-deep.jsonl", "HTTPRoute", True, '{"type":"ADDED","object":{"spec":' + "[" * 3000 + "]" * 3000 + "}}\n")
# As deep as the API server's own JSON decoder accepts (10000 levels).
write("watch-depth-10000.jsonl", "HTTPRoute", True,
      '{"type":"ADDED","object":{"metadata":{"name":"d"},"spec":{"x":' + "[" * 9990 + "]" * 9990 + "}}}\n")
# Reproducers of exceptions the decoding threw before it was split out of KubeSource
# (found by review while splitting, kept here so the corpus test re-checks them).
write("regress-watch-error-string-code.jsonl", "Gateway", True,
      '{"type":"ERROR","object":{"kind":"Status","code":"410","message":"m"}}\n')
write("regress-list-item-not-object.json", "HTTPRoute", False, '{"items":[5,"x",[],true]}')
