"""A fake Kubernetes API server for tests: HTTPS, bearer token checked, objects kept in
memory. Serves lists (GET collection), watch streams (?watch=1, chunked, one JSON event per
line, BOOKMARK and ERROR 410 supported) and merge PATCHes of the status subresource, which
it records. Collections not in `kinds` answer 404, like a CRD that is not installed."""

import http.server
import json
import socketserver
import ssl
import threading
import time
import urllib.parse

GW = "gateway.networking.k8s.io"
GWX = "gateway.networking.x-k8s.io"

# (group, version, plural, kind, namespaced)
KINDS = [
    (GW, "v1", "gatewayclasses", "GatewayClass", False),
    (GW, "v1", "gateways", "Gateway", True),
    (GW, "v1", "listenersets", "ListenerSet", True),
    (GW, "v1", "httproutes", "HTTPRoute", True),
    (GW, "v1", "grpcroutes", "GRPCRoute", True),
    (GW, "v1", "tlsroutes", "TLSRoute", True),
    (GW, "v1", "tcproutes", "TCPRoute", True),
    (GW, "v1", "udproutes", "UDPRoute", True),
    (GW, "v1", "referencegrants", "ReferenceGrant", True),
    (GW, "v1", "backendtlspolicies", "BackendTLSPolicy", True),
    (GWX, "v1alpha1", "xbackendtrafficpolicies", "XBackendTrafficPolicy", True),
    ("", "v1", "namespaces", "Namespace", False),
    ("", "v1", "services", "Service", True),
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "configmaps", "ConfigMap", True),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
]
MAX_WATCH_S = 600


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class FakeKube:
    def __init__(self, cert, key, token, missing=()):
        self.token = token
        self.lock = threading.Condition()
        self.rv = 100
        self.compacted = 0  # watches from a resourceVersion below this get 410 Gone
        self.kinds = {k[2]: k for k in KINDS if k[3] not in missing}
        self.objects = {}  # (plural, ns, name) -> object
        self.events = []  # (rv, plural, type, object)
        self.patches = []  # (path, body)
        self.requests = []  # (method, path)
        self.rejected = 0
        self.fail_patches = 0  # the next N status PATCHes answer 500 (retries are expected)
        self.failed_patches = 0
        self.expire_epoch = 0
        self.closing = False
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self, "GET")

            def do_PATCH(self):
                fake._handle(self, "PATCH")

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        with self.lock:
            self.closing = True
            self.lock.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---------------------------------------------------------------- object changes

    def _plural(self, obj):
        for plural, k in self.kinds.items():
            if k[3] == obj["kind"]:
                return plural
        raise KeyError(obj["kind"])

    def _key(self, obj):
        md = obj["metadata"]
        k = self.kinds[self._plural(obj)]
        return (self._plural(obj), md.get("namespace", "default") if k[4] else "", md["name"])

    def put(self, obj, silent=False):
        """Creates or replaces an object; `silent` skips the watch event (only a list sees it)."""
        obj = json.loads(json.dumps(obj))
        with self.lock:
            self.rv += 1
            key = self._key(obj)
            md = obj["metadata"]
            old = self.objects.get(key)
            md["resourceVersion"] = str(self.rv)
            md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            md["uid"] = "uid-%s-%s-%s" % key
            if key[0] not in ("namespaces", "services", "secrets", "configmaps", "endpointslices"):
                gen = 1
                if old:
                    gen = old["metadata"].get("generation", 1)
                    if old.get("spec") != obj.get("spec"):
                        gen += 1
                md["generation"] = gen
                if old and "status" in old and "status" not in obj:
                    obj["status"] = old["status"]
            self.objects[key] = obj
            if not silent:
                self.events.append((self.rv, key[0], "MODIFIED" if old else "ADDED", obj))
            self.lock.notify_all()

    def delete(self, obj):
        with self.lock:
            key = self._key(obj)
            old = self.objects.pop(key)
            self.rv += 1
            old = dict(old, metadata=dict(old["metadata"], resourceVersion=str(self.rv)))
            self.events.append((self.rv, key[0], "DELETED", old))
            self.lock.notify_all()

    def expire_watches(self):
        """Every open watch gets ERROR 410 and every resourceVersion seen so far is too old."""
        with self.lock:
            self.compacted = self.rv + 1
            self.expire_epoch += 1
            self.lock.notify_all()

    def get(self, plural, ns, name):
        with self.lock:
            o = self.objects.get((plural, ns, name))
            return json.loads(json.dumps(o)) if o else None

    def count(self, method, prefix):
        with self.lock:
            return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    def patches_for(self, plural, name):
        with self.lock:
            return [json.loads(b) for p, b in self.patches if ("/%s/%s/status" % (plural, name)) in p]

    # ---------------------------------------------------------------- HTTP

    def _send_json(self, h, code, body):
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _status(self, h, code, reason, message):
        self._send_json(h, code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

    def _route(self, path):
        """(plural, ns, name, subresource) or None."""
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            rest = parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            rest = parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        if not rest or rest[0] not in self.kinds:
            return None
        k = self.kinds[rest[0]]
        prefix = "/api/v1" if k[0] == "" else "/apis/%s/%s" % (k[0], k[1])
        if not path.startswith(prefix):
            return None
        return (rest[0], ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)

    def _handle(self, h, method):
        url = urllib.parse.urlsplit(h.path)
        query = urllib.parse.parse_qs(url.query)
        with self.lock:
            self.requests.append((method, h.path))
        if h.headers.get("Authorization") != "Bearer " + self.token:
            with self.lock:
                self.rejected += 1
            return self._status(h, 401, "Unauthorized", "Unauthorized")
        if url.path == "/version":
            return self._send_json(h, 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake"})
        route = self._route(url.path)
        if route is None:
            return self._status(h, 404, "NotFound", "the server could not find the requested resource")
        plural, ns, name, sub = route
        if method == "PATCH":
            length = int(h.headers.get("Content-Length") or 0)
            body = h.rfile.read(length).decode()
            if sub != "status" or h.headers.get("Content-Type") != "application/merge-patch+json":
                return self._status(h, 400, "BadRequest", "expected a merge patch of status")
            with self.lock:
                if self.fail_patches > 0:
                    self.fail_patches -= 1
                    self.failed_patches += 1
                    self.lock.release()
                    try:
                        return self._status(h, 500, "InternalError", "injected failure")
                    finally:
                        self.lock.acquire()
                self.patches.append((url.path, body))
                key = (plural, ns or "", name)
                obj = self.objects.get(key)
                if obj is None:
                    return self._status(h, 404, "NotFound", "%s %s not found" % (plural, name))
                patch = json.loads(body)
                obj = json.loads(json.dumps(obj))
                obj["status"] = merge_patch(obj.get("status"), patch.get("status"))
                self.rv += 1
                obj["metadata"]["resourceVersion"] = str(self.rv)
                self.objects[key] = obj
                self.events.append((self.rv, plural, "MODIFIED", obj))
                self.lock.notify_all()
            return self._send_json(h, 200, obj)
        if name is not None:
            return self._status(h, 405, "MethodNotAllowed", "only collections are served")
        if query.get("watch", ["0"])[0] in ("1", "true"):
            return self._watch(h, plural, ns, query)
        with self.lock:
            items = [o for (p, ons, _), o in sorted(self.objects.items())
                     if p == plural and (ns is None or ons == ns)]
            body = {"kind": self.kinds[plural][3] + "List", "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.rv)},
                    # Like the real API server: list items carry no kind/apiVersion.
                    "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")}
                              for o in items]}
        self._send_json(h, 200, body)

    def _chunk(self, h, obj):
        data = (json.dumps(obj) + "\n").encode()
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    def _watch(self, h, plural, ns, query):
        rv = int(query.get("resourceVersion", ["0"])[0] or 0)
        timeout = min(int(query.get("timeoutSeconds", ["60"])[0]), MAX_WATCH_S)
        deadline = time.monotonic() + timeout
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            with self.lock:
                epoch = self.expire_epoch
                if rv < self.compacted:
                    self.lock.release()
                    try:
                        self._chunk(h, {"type": "ERROR", "object": {
                            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                            "reason": "Expired", "message": "too old resource version: %d" % rv}})
                    finally:
                        self.lock.acquire()
                    pending = None
                else:
                    pending = []
                while pending is not None and not self.closing:
                    pending = [e for e in self.events if e[0] > rv and e[1] == plural and
                               (ns is None or e[3]["metadata"].get("namespace") == ns)]
                    if self.expire_epoch != epoch:
                        pending = [(0, plural, "ERROR", {
                            "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                            "reason": "Expired", "message": "too old resource version"})]
                    if pending:
                        self.lock.release()
                        try:
                            for erv, _, typ, obj in pending:
                                self._chunk(h, {"type": typ, "object": obj})
                                rv = max(rv, erv)
                        finally:
                            self.lock.acquire()
                        if pending[0][2] == "ERROR":
                            break
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.lock.wait(min(left, 1.0))
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True
