#!/usr/bin/env python3
"""Writes the synthetic seeds of corpus/convert/ (`archway convert` inputs): ingress-nginx
annotations, Kong resources, and hostile ones (huge annotation values, regex annotations,
invalid UTF-8, wrong types). The other seeds are ingress2gateway's input fixtures, copied;
crash reproducers are added as regress-*."""
import os

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "convert")
os.makedirs(OUT, exist_ok=True)


def write(name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(OUT, name), mode) as f:
        f.write(data)


def ingress(annotations, name="web", cls="nginx", path="/", path_type="Prefix", host="a.example.com"):
    ann = "".join(f"    {k}: {v}\n" for k, v in annotations.items())
    return (
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n"
        f"  name: {name}\n  namespace: ns\n  annotations:\n{ann}"
        f"spec:\n  ingressClassName: {cls}\n  rules:\n  - host: {host}\n    http:\n      paths:\n"
        f"      - path: {path}\n        pathType: {path_type}\n        backend:\n"
        "          service:\n            name: svc\n            port:\n              number: 80\n"
    )


N = "nginx.ingress.kubernetes.io/"
write("nginx-rewrite-regex.yaml", ingress({N + "use-regex": '"true"', N + "rewrite-target": "/$2"},
                                          path="/api(/|$)(.*)", path_type="ImplementationSpecific"))
write("nginx-canary.yaml",
      ingress({}, name="main") + "---\n" +
      ingress({N + "canary": '"true"', N + "canary-weight": '"30"', N + "canary-by-header": "X-Canary",
               N + "canary-by-header-pattern": '"^(a|b)+$"'}, name="canary"))
write("nginx-cors-redirect.yaml", ingress({
    N + "enable-cors": '"true"', N + "cors-allow-origin": '"https://a.example, https://*.b.example"',
    N + "cors-allow-methods": '"GET, PUT"', N + "cors-max-age": '"600"',
    N + "ssl-redirect": '"true"', N + "permanent-redirect": "https://x.example/y",
    N + "permanent-redirect-code": '"308"', N + "app-root": "/app",
    N + "proxy-read-timeout": '"120"', N + "proxy-body-size": "8m",
    N + "custom-headers": "ns/headers", N + "backend-protocol": "GRPC",
    N + "upstream-vhost": "internal.example", N + "x-forwarded-prefix": "/p",
    N + "limit-rps": '"10"', N + "whitelist-source-range": '"10.0.0.0/8,192.168.0.0/16"',
    N + "configuration-snippet": '"more_set_headers \\"X: y\\";"'}))
write("nginx-default-backend-tls.yaml",
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: d\n  namespace: ns\n"
      "spec:\n  ingressClassName: nginx\n  defaultBackend:\n    service:\n      name: fallback\n"
      "      port:\n        name: http\n  tls:\n  - hosts: [a.example.com, '*.b.example.com']\n"
      "    secretName: cert\n  rules:\n  - host: '*.b.example.com'\n    http:\n      paths:\n"
      "      - path: /exact\n        pathType: Exact\n        backend:\n          resource:\n"
      "            apiGroup: k8s.example.com\n            kind: Bucket\n            name: b\n")

# Kong resources.
write("kong-plugins-tcpingress.yaml",
      ingress({"konghq.com/methods": "GET,POST", "konghq.com/headers.x-env": "prod,staging",
               "konghq.com/strip-path": '"true"', "konghq.com/plugins": "rl,auth",
               "konghq.com/protocols": "https", "konghq.com/override": "ki"}, cls="kong",
              path="/~/v[0-9]+/.*", path_type="ImplementationSpecific") +
      "---\napiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata:\n  name: rl\n"
      "  namespace: ns\nplugin: rate-limiting\nconfig:\n  minute: 5\n"
      "---\napiVersion: configuration.konghq.com/v1\nkind: KongIngress\nmetadata:\n  name: ki\n"
      "  namespace: ns\nroute:\n  methods: [GET]\n  strip_path: false\n"
      "---\napiVersion: configuration.konghq.com/v1beta1\nkind: TCPIngress\nmetadata:\n"
      "  name: tcp\n  namespace: ns\n  annotations:\n    kubernetes.io/ingress.class: kong\n"
      "spec:\n  rules:\n  - host: t.example.com\n    port: 9000\n    backend:\n"
      "      serviceName: db\n      servicePort: 5432\n"
      "---\napiVersion: configuration.konghq.com/v1beta1\nkind: UDPIngress\nmetadata:\n"
      "  name: udp\n  namespace: ns\n  annotations:\n    kubernetes.io/ingress.class: kong\n"
      "spec:\n  rules:\n  - port: 53\n    backend:\n      serviceName: dns\n      servicePort: 53\n")

# Hostile inputs.
big = "x" * 12000
write("hostile-huge-annotation.yaml", ingress({N + "rewrite-target": big, N + "configuration-snippet": big[:2000],
                                               "konghq.com/headers.x": ",".join(["v"] * 500)}))
write("hostile-regex-annotations.yaml",
      ingress({N + "use-regex": '"true"', N + "canary": '"true"', N + "canary-by-header": "h",
               N + "canary-by-header-pattern": '"((((((a*)*)*)*)*)*)$"'},
              path="/(a+)+[\\\\x-]((?P<n>.)|\\\\p{Greek}|[[:^alpha:]])", path_type="ImplementationSpecific") +
      "---\n" + ingress({"konghq.com/methods": "GET"}, name="k", cls="kong",
                        path="/~(?i)/[unclosed", path_type="ImplementationSpecific"))
# Reproducer: 8^8 header combinations were built before the 64-match limit was checked.
write("regress-header-combination-blowup.yaml",
      ingress({f"konghq.com/headers.h{i}": ",".join(f"v{j}" for j in range(8)) for i in range(8)}, cls="kong"))
write("hostile-invalid-utf8.yaml", ingress({N + "rewrite-target": "/x"}).encode() + b"\n# \xff\xfe\xc3\x28\n")
write("hostile-invalid-utf8-value.yaml",
      ingress({N + "upstream-vhost": "a"}).replace("upstream-vhost: a", "upstream-vhost: \"a\\xff\\udcff\"").encode())
write("hostile-wrong-types.yaml",
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: w\n  namespace: ns\n"
      "  annotations:\n    " + N + "canary-weight: [1, 2]\n    konghq.com/methods: {a: b}\n"
      "spec:\n  ingressClassName: 42\n  tls: {hosts: 7}\n  rules:\n  - host: [a]\n    http:\n"
      "      paths:\n      - path: 5\n        pathType: null\n        backend: {service: {name: s, port: {number: '80'}}}\n"
      "  - http: {paths: 3}\n  - 17\n")
write("hostile-odd-strings.yaml",
      ingress({N + "rewrite-target": '"yes"', N + "x-forwarded-prefix": '"0x1F"',
               N + "upstream-vhost": '"~"', N + "app-root": '"1e3"', N + "proxy-ssl-name": '"null"',
               N + "custom-headers": '"  leading: colon # hash"', N + "auth-realm": '"- dash"',
               N + "server-snippet": '"line1\\nline2\\ttab\\u2028sep\\u0000nul"'},
              host='"*.xn--bcher-kva.example"', path='"/a b/%20/?q=1#frag"'))
