"""The conformance suite's world in file mode.

Loads the suite's manifests with the suite's rewrites (GatewayClass name and
controllerName, static-address placeholders), generates the certificates of
generated-fixtures.json, turns every Deployment into local echo "pods" (each
with its own loopback address, so targetPorts such as 3000 or 8443 are used as
they are) and synthesises the EndpointSlices a cluster would create for each
Service. Objects are written one per file into a watched directory; applying
and deleting a test's objects is writing and deleting files."""

import base64
import copy
import hashlib
import ipaddress
import os
import sys
import threading

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))

import certs  # noqa: E402

CONTROLLER_NAME = "archway.dev/gateway-controller"
GATEWAY_CLASS = "archway"
# Loopback ranges: gateways get addresses from GATEWAY_POOL (archway --address-pool),
# static "usable" addresses come from STATIC_POOL, echo pods from POD_POOL.
GATEWAY_POOL = "127.10.0.0/16"
USABLE_STATIC_ADDRESS = "127.11.0.1"
UNUSABLE_STATIC_ADDRESS = "192.0.2.1"  # TEST-NET-1: never a local address
POD_POOL = ipaddress.ip_network("127.20.0.0/14")
# Kinds that never go to the gateway: they are emulated by the harness.
HARNESS_KINDS = {"Deployment", "Pod", "ReplicaSet", "StatefulSet", "DaemonSet"}
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _k8s_hash(seed, n):
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:n])


def obj_key(doc):
    md = doc.get("metadata") or {}
    return (doc.get("kind", ""), md.get("namespace") or "", md.get("name", ""))


class World:
    def __init__(self, shared_dir, workdir):
        self.shared_dir = shared_dir
        self.manifest_dir = os.path.join(shared_dir, "conformance", "manifests")
        self.workdir = workdir
        self.watch_dir = os.path.join(workdir, "watch")
        self.cert_dir = os.path.join(workdir, "certs")
        self.volume_dir = os.path.join(workdir, "volumes")
        self.log_dir = os.path.join(workdir, "podlogs")
        for d in (self.watch_dir, self.cert_dir, self.volume_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
        self._next_pod_ip = int(POD_POOL.network_address) + 2
        self._file_seq = 0
        self.objects = {}  # obj_key -> doc, everything currently applied (incl. harness kinds)
        self.files = {}  # obj_key -> path in watch_dir
        self.pods = []  # pod specs of all live pods (for the echo server)
        self.cert_files = {}

    # ------------------------------------------------------------------ inputs

    def generate_certificates(self, fixtures):
        objs, files = certs.generate_fixtures(fixtures, self.cert_dir)
        self.cert_files = files
        return objs

    def gateway_class(self):
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": GATEWAY_CLASS},
                "spec": {"controllerName": CONTROLLER_NAME}}

    def load_manifest(self, rel):
        path = os.path.join(self.manifest_dir, rel)
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        return [self.rewrite(d) for d in docs]

    def rewrite(self, doc):
        doc = copy.deepcopy(doc)
        kind = doc.get("kind")
        spec = doc.get("spec") or {}
        if kind == "Gateway":
            if spec.get("gatewayClassName") == "{GATEWAY_CLASS_NAME}":
                spec["gatewayClassName"] = GATEWAY_CLASS
            addrs = spec.get("addresses")
            if addrs:
                special, unusable, usable = [], [], []
                for a in addrs:
                    if a.get("value") == "PLACEHOLDER_USABLE_ADDRS":
                        usable.append({"type": a.get("type", "IPAddress"), "value": USABLE_STATIC_ADDRESS})
                    elif a.get("value") == "PLACEHOLDER_UNUSABLE_ADDRS":
                        unusable.append({"type": a.get("type", "IPAddress"), "value": UNUSABLE_STATIC_ADDRESS})
                    else:
                        special.append(a)
                spec["addresses"] = special + unusable + usable
        elif kind == "GatewayClass":
            spec["controllerName"] = CONTROLLER_NAME
        return doc

    # ------------------------------------------------------------------ pods

    def _alloc_ip(self):
        ip = ipaddress.ip_address(self._next_pod_ip)
        self._next_pod_ip += 1
        if (self._next_pod_ip & 0xFF) in (0, 255):
            self._next_pod_ip += 2
        if ip not in POD_POOL:
            raise RuntimeError("pod address pool exhausted")
        return str(ip)

    def _volume_file(self, namespace, volumes, mounts, path):
        """Materialises the file a container would see at `path` from a Secret or
        ConfigMap volume; returns a local path."""
        for m in mounts:
            mp = m["mountPath"].rstrip("/")
            if not path.startswith(mp + "/"):
                continue
            rel = path[len(mp) + 1:]
            vol = next(v for v in volumes if v["name"] == m["name"])
            if "secret" in vol:
                src_kind, src_name = "Secret", vol["secret"]["secretName"]
                items = vol["secret"].get("items")
            else:
                src_kind, src_name = "ConfigMap", vol["configMap"]["name"]
                items = vol["configMap"].get("items")
            key = rel
            for it in items or []:
                if it["path"] == rel:
                    key = it["key"]
            src = self.objects.get((src_kind, namespace, src_name))
            if src is None:
                raise RuntimeError("%s %s/%s mounted by a pod does not exist" % (src_kind, namespace, src_name))
            if src_kind == "Secret":
                if key in (src.get("stringData") or {}):
                    data = src["stringData"][key]
                else:
                    data = base64.b64decode(src["data"][key]).decode()
            else:
                data = src["data"][key]
            out = os.path.join(self.volume_dir, "%s-%s-%s-%s" % (src_kind, namespace, src_name, key))
            with open(out, "w") as f:
                f.write(data)
            return out
        raise RuntimeError("no volume provides %s" % path)

    def pods_for_deployment(self, dep):
        md = dep["metadata"]
        ns, name = md.get("namespace", "default"), md["name"]
        tmpl = dep["spec"]["template"]
        pspec = tmpl["spec"]
        c = pspec["containers"][0]
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
        volumes = pspec.get("volumes", [])
        mounts = c.get("volumeMounts", [])
        if "coredns" in c.get("image", ""):
            kind = "dns"
        elif env.get("GRPC_ECHO_SERVER"):
            kind = "grpc"
        elif env.get("TCP_ECHO_SERVER"):
            kind = "tcp"
        elif env.get("UDP_ECHO_SERVER"):
            kind = "udp"
        else:
            kind = "http"
        # echo-basic reads TLS_SERVER_PRIVKEY in HTTP mode, TLS_SERVER_PRIV_KEY in gRPC/TCP mode.
        key_var = "TLS_SERVER_PRIVKEY" if kind == "http" else "TLS_SERVER_PRIV_KEY"
        tls = None
        if env.get("TLS_SERVER_CERT") and env.get(key_var):
            tls = {"cert": self._volume_file(ns, volumes, mounts, env["TLS_SERVER_CERT"]),
                   "key": self._volume_file(ns, volumes, mounts, env[key_var])}
            if env.get("TLS_CLIENT_CACERTS"):
                tls["client_ca"] = self._volume_file(ns, volumes, mounts, env["TLS_CLIENT_CACERTS"])
        replicas = dep["spec"].get("replicas", 1)
        template_hash = _k8s_hash("%s/%s" % (ns, name), 10)
        pods = []
        for i in range(replicas):
            pod_name = "%s-%s-%s" % (name, template_hash, _k8s_hash("%s/%s/%d" % (ns, name, i), 5))
            pod = {"pod": pod_name, "namespace": ns, "ingress": env.get("INGRESS_NAME", ""),
                   "service": env.get("SERVICE_NAME", ""), "ip": self._alloc_ip(), "kind": kind,
                   "labels": dict((tmpl.get("metadata") or {}).get("labels") or {}),
                   "deployment": name, "log": os.path.join(self.log_dir, pod_name + ".log")}
            if tls:
                pod["tls"] = tls
            pods.append(pod)
        return pods

    # ------------------------------------------------------------------ endpoints

    def endpoint_slice(self, svc, pods):
        md = svc["metadata"]
        ns, name = md.get("namespace", "default"), md["name"]
        ports = []
        for p in svc["spec"].get("ports", []):
            port = {"name": p.get("name", ""), "port": p.get("targetPort", p["port"]),
                    "protocol": p.get("protocol", "TCP")}
            if p.get("appProtocol"):
                port["appProtocol"] = p["appProtocol"]
            ports.append(port)
        endpoints = []
        for pod in pods:
            endpoints.append({"addresses": [pod["ip"]],
                              "conditions": {"ready": True, "serving": True, "terminating": False},
                              "targetRef": {"kind": "Pod", "name": pod["pod"], "namespace": ns}})
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "%s-%s" % (name, _k8s_hash("slice/%s/%s" % (ns, name), 5)), "namespace": ns,
                             "labels": {"kubernetes.io/service-name": name,
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                "addressType": "IPv4", "ports": ports, "endpoints": endpoints}

    def selected_pods(self, svc, pods):
        sel = (svc.get("spec") or {}).get("selector")
        if not sel:
            return None
        ns = svc["metadata"].get("namespace", "default")
        return [p for p in pods if p["namespace"] == ns and all(p["labels"].get(k) == v for k, v in sel.items())]

    # ------------------------------------------------------------------ apply

    def expand(self, docs, extra_pods_source=None):
        """Splits docs into (gateway objects incl. synthesised EndpointSlices, new pods)."""
        for d in docs:
            if d.get("kind") in ("Secret", "ConfigMap"):
                self.objects[obj_key(d)] = d
        new_pods = []
        for d in docs:
            if d.get("kind") == "Deployment":
                new_pods += self.pods_for_deployment(d)
        all_pods = self.pods + new_pods
        out = []
        for d in docs:
            if d.get("kind") in HARNESS_KINDS:
                self.objects[obj_key(d)] = d
                continue
            out.append(d)
            if d.get("kind") == "Service":
                sel = self.selected_pods(d, all_pods)
                if sel is not None:
                    out.append(self.endpoint_slice(d, sel))
        return out, new_pods

    def pods_of(self, namespace, deployment):
        return [p for p in self.pods if p["namespace"] == namespace and p["deployment"] == deployment]

    def write(self, docs, group):
        """Writes each object to its own file (atomically, by rename); returns keys."""
        keys = []
        for d in docs:
            key = obj_key(d)
            path = self.files.get(key)
            if path is None:
                self._file_seq += 1
                safe = "-".join(x for x in key if x).replace("/", "_").lower()
                path = os.path.join(self.watch_dir, "%s-%04d-%s.yaml" % (group, self._file_seq, safe))
            tmp = os.path.join(self.workdir, ".tmp-%d.yaml" % self._file_seq)
            with open(tmp, "w") as f:
                yaml.safe_dump(d, f, sort_keys=False)
            os.replace(tmp, path)
            self.files[key] = path
            self.objects[key] = d
            keys.append(key)
        return keys

    def delete(self, keys):
        for key in keys:
            path = self.files.pop(key, None)
            self.objects.pop(key, None)
            if path and os.path.exists(path):
                os.unlink(path)

    def add_pods(self, pods):
        self.pods += pods

    def remove_pods(self, pods):
        names = {p["pod"] for p in pods}
        self.pods = [p for p in self.pods if p["pod"] not in names]

    # ------------------------------------------------------------------ lookups

    def secret_text(self, namespace, name, key):
        s = self.objects.get(("Secret", namespace, name))
        if s is None:
            return None
        if key in (s.get("stringData") or {}):
            return s["stringData"][key]
        return base64.b64decode(s["data"][key]).decode()

    def configmap_text(self, namespace, name, key):
        c = self.objects.get(("ConfigMap", namespace, name))
        return None if c is None else (c.get("data") or {}).get(key)

    def secret_file(self, namespace, name, key):
        text = self.secret_text(namespace, name, key)
        if text is None:
            return None
        path = os.path.join(self.volume_dir, "Secret-%s-%s-%s" % (namespace, name, key))
        # Cases of one test run concurrently: write under a unique name and rename, so
        # no reader ever sees a half-written file.
        tmp = "%s.%d.%d.tmp" % (path, os.getpid(), threading.get_ident())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        return path


def echo_pod_spec(pod):
    """The part of a pod description that echo.py needs."""
    keys = ("pod", "namespace", "ingress", "service", "ip", "kind", "log", "tls")
    return {k: pod[k] for k in keys if k in pod}
