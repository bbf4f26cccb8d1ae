#!/usr/bin/env python3
"""Writes the synthetic seeds of corpus/decode_translate/ (hostile inputs: malformed YAML,
huge and deeply nested documents, wrong types, alias bombs, NUL bytes, invalid UTF-8).
Valid manifests in the corpus are hand-written files; crash reproducers are added as found."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "decode_translate")
os.makedirs(OUT, exist_ok=True)


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(OUT, name), mode) as f:
        f.write(data)


GW = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: g\n  namespace: ns\n"

# Malformed YAML.
write("malformed-unclosed-quote.yaml", GW + 'spec:\n  gatewayClassName: "archway\n')
write("malformed-indent.yaml", GW + "spec:\n  listeners:\n  - name: a\n     port: 80\n   protocol: HTTP\n")
write("malformed-tabs.yaml", GW + "spec:\n\tgatewayClassName: x\n")
write("malformed-flow.yaml", '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}\n')
write("malformed-brackets.yaml", "[[[{{{]]]}}}:\n- - - :\n? ? ?\n")
write("malformed-directives.yaml", "%YAML 1.2\n%TAG ! tag:x,2000:\n--- !foo\nkind: !!int x\n...\n--- &a *a\n")
write("malformed-json-trailing.json", '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}},,]')

# Huge documents.
rules = "".join(
    "  - matches:\n    - path: {type: PathPrefix, value: /p%d}\n    backendRefs:\n    - {name: svc, port: 80}\n" % i
    for i in range(2000))
write("huge-many-rules.yaml",
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\n"
      "spec:\n  parentRefs: [{name: g}]\n  rules:\n" + rules)
write("huge-long-string.yaml", GW + "spec:\n  gatewayClassName: " + "a" * 300000 + "\n")
write("huge-many-docs.yaml", "".join(
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%d, namespace: ns}\nspec:\n  ports: [{port: %d}]\n"
    % (i, i % 70000) for i in range(3000)))
write("huge-many-listeners.yaml", GW + "spec:\n  gatewayClassName: c\n  listeners:\n" + "".join(
    "  - {name: l%d, port: %d, protocol: HTTP}\n" % (i, 1 + i % 3) for i in range(5000)))

# Deep nesting.
write("deep-flow-seq.yaml", "[" * 5000 + "]" * 5000)
write("deep-flow-map.yaml", "{a: " * 3000 + "1" + "}" * 3000)
write("deep-block-map.yaml", "".join("  " * i + "k%d:\n" % i for i in range(300)) + "  " * 300 + "v\n")
write("deep-spec.yaml", GW + "spec:\n  listeners:\n  - name: " + "[" * 70 + "]" * 70 + "\n")

# Wrong types.
write("wrong-types.yaml", """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: ns, labels: [a, b], annotations: 5}
spec:
  gatewayClassName: 42
  listeners:
    name: http
  addresses: "10.0.0.1"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: {name: g}
  hostnames: [1, true, null, {a: b}]
  rules:
  - matches: [{path: {type: PathPrefix, value: 5}}, "x", 7]
    backendRefs: [{name: [svc], port: "80", weight: -1.5}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: "x"}}]
    timeouts: {request: 10, backendRequest: "1h"}
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec:
  ports: [{port: "http", targetPort: [1], protocol: 6}, 5, {port: 1.5}]
  selector: [a]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e, namespace: ns, labels: {kubernetes.io/service-name: s}}
addressType: 4
endpoints: [{addresses: "1.2.3.4", conditions: {ready: "yes"}}, 3]
ports: {port: 80}
---
apiVersion: v1
kind: Secret
metadata: {name: t, namespace: ns}
type: kubernetes.io/tls
data: {tls.crt: 5, "bad key!": "###"}
stringData: [x]
---
apiVersion: 7
kind: [Gateway]
metadata: {name: {x: y}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: "name"
spec: []
""")
write("wrong-types-json.json", '{"apiVersion":"gateway.networking.k8s.io/v1","kind":"GRPCRoute",'
      '"metadata":{"name":"x","namespace":"n"},"spec":{"rules":[{"matches":[{"method":{"type":7}}],'
      '"backendRefs":[{"name":"s","port":1e400}]}],"parentRefs":[{"name":"g","port":99999999999999999999}]}}')
write("numbers-edge.yaml", GW + "spec:\n  gatewayClassName: c\n  listeners:\n"
      "  - {name: a, port: 0x50, protocol: HTTP}\n  - {name: b, port: 1e3, protocol: HTTP}\n"
      "  - {name: c, port: -0, protocol: HTTP}\n  - {name: d, port: .inf, protocol: HTTP}\n"
      "  - {name: e, port: 9223372036854775808, protocol: HTTP}\n  - {name: f, port: 80.0, protocol: HTTP}\n")

# Alias bombs (billion laughs) and recursive aliases.
lol = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
for i in range(1, 10):
    lol.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9)))
write("alias-billion-laughs.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata:\n"
      + "".join("  " + l + "\n" for l in lol))
write("alias-map-bomb.yaml", "a: &a {x: 1, y: 2, z: 3}\nb: &b {p: *a, q: *a, r: *a, s: *a}\nc: &c {p: *b, q: *b, r: *b, s: *b}\n"
      "d: &d {p: *c, q: *c, r: *c, s: *c}\ne: &e {p: *d, q: *d, r: *d, s: *d}\nf: &f {p: *e, q: *e, r: *e, s: *e}\n"
      "g: &g {p: *f, q: *f, r: *f, s: *f}\nh: &h {p: *g, q: *g, r: *g, s: *g}\ni: {p: *h, q: *h, r: *h, s: *h}\n")
write("alias-key.yaml", "k: &k [1, 2, 3]\n? *k\n: v\n")
write("alias-self.yaml", "a: &a [*a]\n")
write("alias-undefined.yaml", "a: *nope\n")
pass  # alias-valid.yaml is hand-written (anchors are per document)

# NUL bytes, control characters, invalid UTF-8, BOM.
write("nul-bytes.yaml", (GW + "spec:\n  gatewayClassName: a\x00b\n").encode() + b"\x00\x00\x00")
write("nul-escaped.yaml", GW + 'spec:\n  gatewayClassName: "a\\0b"\n  listeners:\n  - {name: "h\\0", port: 80, protocol: HTTP, hostname: "x\\0.com"}\n')
write("control-chars.yaml", (GW + "spec:\n  gatewayClassName: a\x01\x02\x1b[31m\n").encode())
write("invalid-utf8.yaml", (GW).encode() + b"spec:\n  gatewayClassName: \xff\xfe\xc3\x28\n")
write("invalid-utf8-escape.yaml", GW + 'spec:\n  gatewayClassName: "\\ud800\\udfff"\n')
write("bom.yaml", "\ufeff" + GW + "spec:\n  gatewayClassName: c\n")
write("empty.yaml", "")
write("only-separators.yaml", "---\n---\n...\n---\n")
write("scalar-doc.yaml", "just a string\n---\n42\n---\n[1, 2]\n")
write("list-kind.yaml", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n"
      "- 5\n- apiVersion: v1\n  kind: List\n  items: [{apiVersion: v1, kind: Namespace, metadata: {name: b}}]\n")
write("duplicate-keys.yaml", GW + "spec:\n  gatewayClassName: a\n  gatewayClassName: b\n")
write("unknown-kinds.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n"
      "apiVersion: gateway.networking.k8s.io/v9\nkind: HTTPRoute\nmetadata: {name: r}\n---\n"
      "apiVersion: gateway.networking.k8s.io/v1\nkind: NotAKind\nmetadata: {name: r}\n---\n"
      "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {name: p}\nplugin: cors\n")
