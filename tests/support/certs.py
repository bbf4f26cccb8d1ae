"""Certificates for tests, made with the openssl command line tool.

generate_fixtures() creates the Secrets and ConfigMaps that the Gateway API
conformance suite generates at set-up (described by generated-fixtures.json):
RSA-2048 keys in PKCS#1 PEM, leaf certificates "CN=default, O=Acme Co", CAs
"O=Kubernetes Gateway API", SANs derived from host lists exactly as upstream
(IP if it parses as one, DNS if it is a DNS name with an optional leading "*.",
URI otherwise).
"""

import base64
import concurrent.futures
import ipaddress
import os
import re
import subprocess

_DNS_RE = re.compile(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
OPENSSL_TIMEOUT_S = 60


def _run(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=OPENSSL_TIMEOUT_S)


def san_entries(hosts):
    out = []
    for h in hosts:
        try:
            ipaddress.ip_address(h)
            out.append("IP:" + h)
            continue
        except ValueError:
            pass
        if _DNS_RE.match(h):
            out.append("DNS:" + h)
        else:
            out.append("URI:" + h)
    return out


def _write_config(path, subject, extensions):
    lines = ["[req]", "prompt = no", "distinguished_name = dn", "x509_extensions = ext", "[dn]"]
    lines += ["%s = %s" % (k, v) for k, v in subject]
    lines += ["[ext]"] + ["%s = %s" % (k, v) for k, v in extensions]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def make_key(outdir, name):
    key = os.path.join(outdir, name + ".key")
    _run(["genrsa", "-traditional", "-out", key, "2048"], outdir)
    return key


def make_ca(outdir, name, days=365, key=None):
    """Returns (cert_path, key_path) of a new self-signed CA."""
    key = key or make_key(outdir, name)
    cfg = os.path.join(outdir, name + ".cnf")
    _write_config(cfg, [("C", "US"), ("O", "Kubernetes Gateway API"), ("CN", "gatewayapi")],
                  [("basicConstraints", "critical,CA:TRUE"),
                   ("keyUsage", "critical,digitalSignature,keyCertSign"),
                   ("extendedKeyUsage", "clientAuth,serverAuth"),
                   ("subjectKeyIdentifier", "hash")])
    crt = os.path.join(outdir, name + ".crt")
    _run(["req", "-x509", "-new", "-config", cfg, "-key", key, "-out", crt, "-days", str(days), "-sha256"], outdir)
    return crt, key


def make_leaf(outdir, name, hosts, ext_key_usage, ca=None, days=365, key=None):
    """Leaf certificate, self-signed when ca is None, else signed by ca=(crt, key)."""
    key = key or make_key(outdir, name)
    cfg = os.path.join(outdir, name + ".cnf")
    exts = [("basicConstraints", "critical,CA:FALSE"),
            ("keyUsage", "critical,digitalSignature,keyEncipherment")]
    if ext_key_usage:
        exts.append(("extendedKeyUsage", ",".join(ext_key_usage)))
    if hosts:
        exts.append(("subjectAltName", ",".join(san_entries(hosts))))
    _write_config(cfg, [("O", "Acme Co"), ("CN", "default")], exts)
    crt = os.path.join(outdir, name + ".crt")
    args = ["req", "-x509", "-new", "-config", cfg, "-key", key, "-out", crt, "-days", str(days), "-sha256"]
    if ca is not None:
        args += ["-CA", ca[0], "-CAkey", ca[1]]
    _run(args, outdir)
    return crt, key


def _read(path):
    with open(path) as f:
        return f.read()


def _eku(names):
    table = {"ServerAuth": "serverAuth", "ClientAuth": "clientAuth"}
    return [table[n] for n in names]


def generate_fixtures(fixtures, outdir):
    """fixtures: parsed generated-fixtures.json. Returns (objects, files):
    objects is a list of Kubernetes Secret/ConfigMap dicts; files maps
    "Kind/namespace/name" to {"cert": path, "key": path} or {"ca": path}."""
    os.makedirs(outdir, exist_ok=True)
    cas = {}
    objects = []
    files = {}
    ca_group_of_cm = {}
    for group, text in fixtures.get("ca_groups", {}).items():
        m = re.match(r"ConfigMap (\S+)/(\S+)", text)
        if m:
            ca_group_of_cm[(m.group(1), m.group(2))] = group

    # RSA key generation dominates: make all keys up front, in parallel.
    pool = concurrent.futures.ThreadPoolExecutor(max(2, os.cpu_count() or 2))
    keys = {}

    def key_for(name):
        if name not in keys:
            keys[name] = pool.submit(make_key, outdir, name)
        return keys[name]

    def ca_name(group):
        return "ca-" + re.sub(r"[^A-Za-z0-9-]", "-", group)

    for obj in fixtures["objects"]:
        ident = "%s-%s-%s" % (obj["kind"].lower(), obj["namespace"], obj["name"])
        if obj["kind"] == "ConfigMap":
            key_for(ca_name(obj.get("ca") or ca_group_of_cm.get((obj["namespace"], obj["name"])) or ident))
        else:
            key_for(ident)
            m = re.search(r"signed by (CA-[A-Za-z0-9-]+)", obj.get("type", ""))
            if m:
                key_for(ca_name(m.group(1)))

    def ca_for(group):
        if group not in cas:
            cas[group] = make_ca(outdir, ca_name(group), key=key_for(ca_name(group)).result())
        return cas[group]

    for obj in fixtures["objects"]:
        ns, name, kind = obj["namespace"], obj["name"], obj["kind"]
        ident = "%s-%s-%s" % (kind.lower(), ns, name)
        if kind == "ConfigMap":
            group = obj.get("ca") or ca_group_of_cm.get((ns, name)) or ident
            crt, _ = ca_for(group)
            objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": ns},
                            "data": {"ca.crt": _read(crt)}})
            files["ConfigMap/%s/%s" % (ns, name)] = {"ca": crt}
            continue
        typ = obj.get("type", "")
        ca = None
        m = re.search(r"signed by (CA-[A-Za-z0-9-]+)", typ)
        if m:
            ca = ca_for(m.group(1))
        elif "self-signed" not in typ:
            raise ValueError("cannot tell how to sign %s: %r" % (ident, typ))
        crt, key = make_leaf(outdir, ident, obj.get("hosts", []), _eku(obj.get("ext_key_usage", [])), ca,
                             key=key_for(ident).result())
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": name, "namespace": ns},
                        "data": {"tls.crt": base64.b64encode(_read(crt).encode()).decode(),
                                 "tls.key": base64.b64encode(_read(key).encode()).decode()}})
        files["Secret/%s/%s" % (ns, name)] = {"cert": crt, "key": key}
    pool.shutdown()
    return objects, files
