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

# Wrong types in objects of our own GatewayClass: invalid objects are still translated (for
# their status), so every field the translator reads may hold any type.
OURS = ("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ours}\n"
        "spec: {controllerName: archway.dev/gateway-controller}\n")
write("wrong-types-our-class.yaml", OURS + """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: ns}
spec:
  gatewayClassName: ours
  addresses: [{type: IPAddress, value: 5}, {type: 7}, "x"]
  allowedListeners: {namespaces: {from: 3, selector: [x]}}
  infrastructure: {parametersRef: {group: 1, kind: [], name: {}}}
  tls:
    frontend:
      default: {validation: {caCertificateRefs: [{name: 5, kind: ConfigMap}], mode: 9}}
      perPort: [{port: "443", tls: {validation: {caCertificateRefs: "x"}}}, {port: 1e30}]
    backend: {clientCertificateRef: {name: [], namespace: 4}}
  listeners:
  - {name: a, port: "eighty", protocol: HTTP}
  - {name: b, port: 1.5, protocol: HTTPS, hostname: 5, tls: {mode: 3, certificateRefs: [{name: 7}, "x"]}}
  - {name: c, port: 99999999999, protocol: TLS, tls: {mode: Passthrough, options: [1]}}
  - {name: d, port: -80, protocol: HTTP, allowedRoutes: {namespaces: {from: 5, selector: {matchLabels: [1], matchExpressions: {key: 1}}}, kinds: [{kind: 5, group: []}, "x"]}}
  - {name: e, port: 443, protocol: TCP, allowedRoutes: {kinds: [{kind: TCPRoute}], namespaces: {from: Selector, selector: {matchExpressions: [{key: a, operator: In, values: "x"}, {key: 5, operator: 7}]}}}}
  - "listener"
  - 5
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: s, namespace: ns}
spec:
  parentRef: {name: g, namespace: [], port: "x"}
  listeners: [{name: x, port: "1", protocol: HTTP}, {name: y, port: 8080.5, protocol: 5}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: g, port: "80", sectionName: 5}, {name: g, port: 99999999999999}, {name: s, kind: ListenerSet, port: 1.5}]
  hostnames: [5, "a.example.com"]
  rules:
  - name: 7
    matches: [{path: {type: 5, value: []}, headers: [{name: 1, value: 2, type: RegularExpression}], queryParams: {x: 1}, method: 8}]
    filters:
    - {type: RequestRedirect, requestRedirect: {port: "80", statusCode: "301", scheme: 5, hostname: [], path: {type: ReplaceFullPath, replaceFullPath: 5}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: s, port: "80"}, percent: "50", fraction: {numerator: "1", denominator: 1e300}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: s, port: 80}, fraction: {numerator: 1.5, denominator: 1e300}}}
    - {type: CORS, cors: {allowCredentials: "yes", maxAge: "5", allowOrigins: 5, allowMethods: [1]}}
    - {type: URLRewrite, urlRewrite: {hostname: 5, path: {type: ReplacePrefixMatch, replacePrefixMatch: []}}}
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: 1, value: 2}], add: "x", remove: [1, "a"]}}
    - {type: ExtensionRef, extensionRef: {group: 5, kind: 6, name: 7}}
    backendRefs: [{name: s, port: "80", weight: "5"}, {name: s, port: 80, weight: 1e40}, {name: 5, kind: 6, group: 7, namespace: 8, port: -1}]
    timeouts: {request: 10, backendRequest: 5}
    retry: {codes: ["500", 5000, -1], attempts: "3", backoff: 7}
    sessionPersistence: {sessionName: 5, type: 9, absoluteTimeout: 1}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: q, namespace: ns}
spec:
  parentRefs: [{name: g, sectionName: [1]}]
  hostnames: "x"
  rules: [{matches: [{method: {type: 7, service: 5}, headers: {a: b}}], backendRefs: [{name: s, port: 80, weight: -5}], filters: [{type: 4}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: ns}
spec:
  parentRefs: [{name: g, sectionName: e, port: "443"}]
  rules: [{backendRefs: [{name: s, port: "80", weight: 2.5}]}, 5]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: l, namespace: ns}
spec:
  parentRefs: [{name: g, sectionName: c}]
  hostnames: [5, "*.x.com"]
  rules: [{backendRefs: [{name: s, port: 1e3}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: p, namespace: ns}
spec:
  targetRefs: [{group: "", kind: Service, name: s, sectionName: 5}, "x"]
  validation: {hostname: 5, caCertificateRefs: [{name: 3, kind: ConfigMap, group: ""}], wellKnownCACertificates: 1, subjectAltNames: [{type: 5, hostname: 6}]}
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: rg, namespace: other}
spec:
  from: [{group: 5, kind: HTTPRoute, namespace: ns}, "x"]
  to: [{group: "", kind: 5, name: 6}]
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns}
spec:
  ports: [{port: "80", name: 5, targetPort: "x"}, {port: 80, appProtocol: 5, targetPort: 1e20}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e, namespace: ns, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
endpoints: [{addresses: ["10.0.0.1", 5], conditions: {ready: "yes", serving: 1}}]
ports: [{port: "80"}, {port: 99999999999}, {name: 5}]
---
apiVersion: v1
kind: Namespace
metadata: {name: ns, labels: {a: 5}}
""")

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


# HTTP/1.1 codec seeds (corpus/h1_request, corpus/h1_response). The first byte of each
# input picks the read size the target splits the rest into (1 + byte % 64; bit 7 of it
# marks a HEAD request for responses).
def write_h1(kind, name, first, data):
    d = os.path.join(os.path.dirname(OUT), kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes([first]) + data)


REQUESTS = {
    "get": b"GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM\r\nUser-Agent: t\r\n\r\n",
    "pipelined": b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                 b"POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    "chunked": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
    "http10": b"GET / HTTP/1.0\r\n\r\n",
    "absolute-form": b"GET http://a.example/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "absolute-mismatch": b"GET http://b/p HTTP/1.1\r\nHost: a\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "cl-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "dup-cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "te-gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "bad-chunk": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "bad-host": b"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
    "connect": b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    "expect": b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    "connection-listed": b"GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret, close\r\nX-Secret: 1\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "body-over-limit": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + b"x" * 4200,
    "many-headers": b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}
for i, (name, data) in enumerate(sorted(REQUESTS.items())):
    write_h1("h1_request", name, i * 7, data)

RESPONSES = {
    "length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "close-delimited": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    "http10": b"HTTP/1.0 200 OK\r\n\r\nbody",
    "interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               b"HTTP/1.1 204 No Content\r\n\r\n",
    "switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05hello",
    "trailing-bytes": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA",
    "bad-status": b"HTTP/1.1 2000 OK\r\n\r\n",
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "short": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    "not-modified": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "garbage": b"\x16\x03\x01\x00\x05hello",
}
for i, (name, data) in enumerate(sorted(RESPONSES.items())):
    write_h1("h1_response", name, i * 11, data)
write_h1("h1_response", "head-length", 0x80 | 3, RESPONSES["length"])

# Routing seeds (corpus/route_request): requests aimed at each rule of the fuzz route table
# in fuzz/route_request.h.
ROUTED = {
    "exact": b"GET /exact HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "regex": b"GET /re/abc/123 HTTP/1.1\r\nHost: a.wild.example\r\n\r\n",
    "conditions": b"POST /h?q=1&r=42 HTTP/1.1\r\nHost: example.com\r\nX-Ver: 2\r\nX-Re: abz\r\n"
                  b"Content-Length: 0\r\n\r\n",
    "rewrite-prefix": b"GET /api/users?id=1 HTTP/1.1\r\nHost: any\r\nX-Remove: 1\r\n\r\n",
    "rewrite-prefix-root": b"GET /api HTTP/1.1\r\nHost: any\r\n\r\n",
    "rewrite-v1": b"GET /v1/a/b HTTP/1.1\r\nHost: any\r\n\r\n",
    "rewrite-full": b"GET /full/x?y HTTP/1.1\r\nHost: any\r\n\r\n",
    "redirect": b"GET /redir/x/y?z=1 HTTP/1.1\r\nHost: any:8080\r\n\r\n",
    "redirect-plain": b"GET /plainredir/%2e%2e/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
    "cors-preflight": b"OPTIONS /cors HTTP/1.1\r\nHost: any\r\nOrigin: https://a.example.com\r\n"
                      b"Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-a\r\n\r\n",
    "cors-simple": b"GET /cors HTTP/1.1\r\nHost: any\r\nOrigin: http://a.example\r\n\r\n",
    "absolute-form": b"GET http://Example.COM/exact HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "pipelined": b"GET /api/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /redir HTTP/1.1\r\nHost: b\r\n\r\n",
}
d = os.path.join(os.path.dirname(OUT), "route_request")
os.makedirs(d, exist_ok=True)
for name, data in ROUTED.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
