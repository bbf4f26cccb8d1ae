"""Upstream CompareRoundTrip, as documented in the conformance SCHEMA.md."""

import json
import urllib.parse

REDIRECT_STATUSES = (300, 301, 302, 303, 304, 305, 307, 308)


def canonical(name):
    out, upper = [], True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


def _joined(headers_map, name):
    """Echo JSON headers {Canonical: [values]} -> joined value or None (case-insensitive)."""
    for k, v in (headers_map or {}).items():
        if k.lower() == name.lower():
            return ",".join(v if isinstance(v, list) else [v])
    return None


def _strip_ws(s, on):
    return s.replace(" ", "") if on and s is not None else s


def captured_request(resp, sent_method):
    """The echo JSON when the response says application/json, else only the method."""
    ctype = resp.header("Content-Type")
    if ctype == "application/json":
        try:
            data = json.loads(resp.body)
        except ValueError as e:
            raise ValueError("response claims application/json but the body does not parse: %s" % e)
        if not isinstance(data, dict):
            raise ValueError("echo JSON is not an object")
        return data
    return {"method": sent_method}


def compare_http(case, resp, sent_method, expected_path, original_url):
    """Returns None when the response satisfies the case, else a one-line diff."""
    response = case.get("response") or {}
    statuses = response.get("statuses") or [200]
    if resp.status in (408, 504) and any(s in (408, 504) for s in statuses):
        return None
    if resp.status not in statuses:
        return "status: expected one of %s, got %d" % (statuses, resp.status)
    exp = case.get("expected_request") or {}
    backend = case.get("backend") or {}
    ignore_ws = bool(response.get("ignore_whitespace"))
    if resp.status in (200, 204):
        try:
            cap = captured_request(resp, sent_method)
        except ValueError as e:
            return str(e)
        if exp.get("host") and cap.get("host", "") != exp["host"]:
            return "backend saw host %r, expected %r" % (cap.get("host", ""), exp["host"])
        if cap.get("path", "") != expected_path:
            return "backend saw path %r, expected %r" % (cap.get("path", ""), expected_path)
        exp_method = exp.get("method") or "GET"
        if cap.get("method", "") != exp_method:
            return "backend saw method %r, expected %r" % (cap.get("method", ""), exp_method)
        if cap.get("namespace", "") != (backend.get("namespace") or ""):
            return "backend namespace %r, expected %r" % (cap.get("namespace", ""), backend.get("namespace") or "")
        for name, value in (exp.get("headers") or {}).items():
            got = _joined(cap.get("headers"), name)
            if got is None:
                return "backend did not see request header %s (expected %r); it saw %s" % (
                    name, value, sorted((cap.get("headers") or {}).keys()))
            if got != value:
                return "backend saw request header %s=%r, expected %r" % (name, got, value)
        if exp.get("http_port") and cap.get("httpPort", "") != exp["http_port"]:
            return "backend httpPort %r, expected %r" % (cap.get("httpPort", ""), exp["http_port"])
        for name, values in (response.get("valid_header_values") or {}).items():
            got = _strip_ws(resp.header(name), ignore_ws)
            allowed = [_strip_ws(v, ignore_ws) for v in values]
            if got is None or got not in allowed:
                return "response header %s=%r, expected one of %r" % (name, got, values)
        for name, value in (response.get("headers") or {}).items():
            got = _strip_ws(resp.header(name), ignore_ws)
            if got is None:
                return "response header %s missing (expected %r)" % (name, value)
            if got != _strip_ws(value, ignore_ws):
                return "response header %s=%r, expected %r" % (name, got, value)
        for name in response.get("absent_headers") or []:
            if resp.header(name) is not None:
                return "response header %s should be absent, got %r" % (name, resp.header(name))
        for name in exp.get("absent_headers") or []:
            got = _joined(cap.get("headers"), name)
            if got is not None:
                return "backend saw request header %s=%r, expected it absent" % (name, got)
        if not str(cap.get("pod", "")).startswith(backend.get("name") or ""):
            return "answered by pod %r, expected a pod of %r" % (cap.get("pod", ""), backend.get("name"))
        tls = cap.get("tls") or {}
        if exp.get("sni") and tls.get("serverName", "") != exp["sni"]:
            return "backend saw SNI %r, expected %r" % (tls.get("serverName", ""), exp["sni"])
        if exp.get("client_cert_pem") is not None:
            if exp["client_cert_pem"] not in (tls.get("peerCertificates") or []):
                return "backend did not see the expected gateway client certificate (saw %d certificates)" % len(
                    tls.get("peerCertificates") or [])
        return None
    redirect = case.get("redirect")
    if resp.status in REDIRECT_STATUSES and redirect is not None:
        loc = resp.header("Location")
        if loc is None:
            return "redirect without Location header"
        u = urllib.parse.urlsplit(loc)
        orig = urllib.parse.urlsplit(original_url)
        try:
            port = str(u.port) if u.port is not None else ""
        except ValueError:
            port = "<invalid>"
        if redirect.get("host") and (u.hostname or "") != redirect["host"].lower():
            return "Location %r: host %r, expected %r" % (loc, u.hostname, redirect["host"])
        want_scheme = redirect.get("scheme") or orig.scheme
        if u.scheme != want_scheme:
            return "Location %r: scheme %r, expected %r" % (loc, u.scheme, want_scheme)
        want_path = redirect.get("path") or orig.path
        if u.path != want_path:
            return "Location %r: path %r, expected %r" % (loc, u.path, want_path)
        if redirect.get("port"):
            if port != str(redirect["port"]):
                return "Location %r: port %r, expected %r" % (loc, port, redirect["port"])
        elif u.scheme == "http" and port not in ("", "80"):
            return "Location %r: port %r, expected none or 80" % (loc, port)
        elif u.scheme == "https" and port not in ("", "443"):
            return "Location %r: port %r, expected none or 443" % (loc, port)
        return None
    return None
