#!/usr/bin/python3
"""Echo backends for Archway's tests, compatible with the Gateway API conformance
echo server ("echo-basic").

One process hosts any number of "pods". Each pod has an identity (namespace,
ingress, service, pod name), its own IP address (any 127.x.y.z works on Linux
without configuration) and a kind:

  http  HTTP/1.1 on http_port (3000), h2c (prior knowledge or Upgrade) on
        h2c_port (3001), TLS with ALPN h2/http1.1 on https_port (8443) when a
        "tls" block is given. JSON echo of the request, X-Echo-Set-Header,
        ?delay=, /status/NNN, /retry/, /health and a /ws WebSocket echo.
  grpc  gateway_api_conformance.echo_basic.grpcecho.GrpcEcho (Echo, EchoTwo;
        EchoThree unimplemented) in plaintext on http_port, TLS on https_port.
  tcp   the line protocol of the upstream tcpserver (welcome line, PING, IS_TLS,
        TEST) in plaintext on tcp_port (3000) and TLS on tls_port (8443).
  udp   JSON echo of each datagram on udp_port (8080).
  dns   answers any DNS query on dns_port (53/udp) with an A record.

Every echoed HTTP request is logged to the pod's log file as
"Echoing back request made to <RequestURI> to client (<remote>)".

Usage:
  echo.py --config pods.json            (JSON: {"pods": [ {...}, ... ]})
  echo.py --pod NAME --namespace NS [--service S] [--ingress I] [--ip IP]
          [--kind http] [--http-port 3000] [--h2c-port 3001] [--https-port 8443]
          [--tls-cert F --tls-key F [--tls-client-ca F]] [--log FILE]
A pod entry in the JSON has the same fields, with "tls": {"cert", "key",
"client_ca"}. Port 0 picks a free port. Once every listener is bound the process
prints one line "READY <json>" on stdout, where the JSON lists each pod's actual
ports, then serves until SIGTERM/SIGINT or until stdin closes (--exit-on-stdin-eof).
"""

import argparse
import base64
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

# Limits: keep a misbehaving client (or proxy) from wedging the echo server.
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_TIMEOUT_S = 60
MAX_DELAY_S = 120

GRPC_SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"
TCP_WELCOME = b"Gateway API Test TCP Server\n"
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
    204: "No Content", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 413: "Request Entity Too Large",
    421: "Misdirected Request", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


def canonical_header_key(name):
    """Go's textproto.CanonicalMIMEHeaderKey."""
    for ch in name:
        if not (ch.isalnum() or ch in "-!#$%&'*+.^_`|~"):
            return name
    out = []
    upper = True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text):
    """Go's time.ParseDuration (enough of it): "300ms", "1.5s", "1m30s"."""
    if text in ("0",):
        return 0.0
    m = re.fullmatch(r"((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+", text)
    if not m:
        raise ValueError("time: invalid duration %r" % text)
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text):
        total += float(num) * _DURATION_UNITS[unit]
    return total


def pem_of_der(der):
    return ssl.DER_cert_to_PEM_cert(der)


class Pod:
    """Identity and per-pod state (retry counters, log file)."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec.get("pod", spec.get("name", ""))
        self.namespace = spec.get("namespace", "")
        self.ingress = spec.get("ingress", "")
        self.service = spec.get("service", "")
        self.ip = spec.get("ip", "127.0.0.1")
        self.kind = spec.get("kind", "http")
        self.tls = spec.get("tls") or None
        self.log_path = spec.get("log")
        self.log_lock = threading.Lock()
        self.log_file = open(self.log_path, "a", buffering=1) if self.log_path else None
        self.retry_lock = threading.Lock()
        self.retry_counts = {}
        self.ports = {}

    def log(self, line):
        if self.log_file is None:
            return
        with self.log_lock:
            self.log_file.write(line + "\n")

    def context(self):
        return {"namespace": self.namespace, "ingress": self.ingress, "service": self.service,
                "pod": self.name}


def make_server_tls_context(tls, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls["cert"], tls["key"])
    if tls.get("client_ca"):
        # Go's VerifyClientCertIfGiven: ask for a certificate, verify it if sent.
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cafile=tls["client_ca"])
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_server_context_with_sni(tls, alpn):
    """Returns (context, sni_map): the SNI each accepted SSLSocket saw."""
    ctx = make_server_tls_context(tls, alpn)
    sni_map = {}

    def on_sni(sslobj, server_name, _ctx):
        sni_map[id(sslobj)] = server_name or ""
        return None

    ctx.sni_callback = on_sni
    return ctx, sni_map


class SocketReader:
    """Buffered reads over a (possibly TLS) socket."""

    def __init__(self, sock, initial=b""):
        self.sock = sock
        self.buf = bytearray(initial)

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("peer closed")
        self.buf += data

    def read_until(self, delim, limit):
        while True:
            idx = self.buf.find(delim)
            if idx >= 0:
                out = bytes(self.buf[: idx + len(delim)])
                del self.buf[: idx + len(delim)]
                return out
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self.fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def peek(self, n):
        while len(self.buf) < n:
            try:
                self.fill()
            except EOFError:
                break
        return bytes(self.buf[:n])

    def take_all(self):
        out = bytes(self.buf)
        self.buf.clear()
        return out


class ResetConnection(Exception):
    """Raised by a handler to abort the connection with a TCP RST."""


def reset_socket(sock):
    try:
        raw = sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        if isinstance(sock, ssl.SSLSocket):
            # Close the descriptor without a TLS close_notify so the peer sees the reset.
            fd = sock.detach()
            os.close(fd)
        else:
            sock.close()
    except OSError:
        pass


# --------------------------------------------------------------------------------------
# HTTP request handling (shared by HTTP/1.1 and HTTP/2)


class Request:
    def __init__(self, method, uri, host, proto, headers, body, remote, local_port, tls_info):
        self.method = method
        self.uri = uri
        self.host = host
        self.proto = proto
        self.headers = headers  # list of (name, value) as received, Host excluded
        self.body = body
        self.remote = remote
        self.local_port = local_port
        self.tls_info = tls_info

    def header_map(self):
        out = {}
        for name, value in self.headers:
            out.setdefault(canonical_header_key(name), []).append(value)
        return out

    def get(self, name):
        key = canonical_header_key(name)
        for n, v in self.headers:
            if canonical_header_key(n) == key:
                return v
        return None

    def path_only(self):
        path = self.uri.split("?", 1)[0]
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].split("/", 1)[-1] if "/" in path.split("://", 1)[1] else "/"
        path = urllib.parse.unquote(path)
        return path.replace("//", "/")

    def query(self):
        if "?" not in self.uri:
            return {}
        return urllib.parse.parse_qs(self.uri.split("?", 1)[1], keep_blank_values=True)


def echo_set_headers(req):
    """X-Echo-Set-Header: "Name:Value,Name2:Value2" -> response headers (list of pairs)."""
    result = {}
    order = []
    for name, value in req.headers:
        if canonical_header_key(name) != "X-Echo-Set-Header":
            continue
        for kv in value.split(","):
            key, _, val = kv.strip().partition(":")
            if not key:
                continue
            if key not in result:
                result[key] = val
                order.append(key)
            else:
                result[key] += "," + val.strip()
    return [(k, result[k]) for k in order]


def json_response(status, obj, extra=()):
    body = json.dumps(obj, indent=" ").encode()
    headers = list(extra) + [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")]
    return status, headers, body


def handle_http(pod, req):
    """Returns (status, headers, body) or raises ResetConnection."""
    path = req.path_only()
    if path == "/health":
        return 200, [("Content-Type", "text/plain; charset=utf-8")], b"OK"
    if path.startswith("/status/"):
        m = re.fullmatch(r"/status/(\d\d\d)", req.uri)
        code = int(m.group(1)) if m else 400
        return code, [], b""
    if path.startswith("/retry/"):
        q = req.query()
        uuid = (q.get("uuid") or [""])[0]
        try:
            succeed_after = int((q.get("succeedAfter") or ["0"])[0])
            code = (q.get("responseCode") or [""])[0]
            code = int(code) if code else None
            delay = (q.get("delayRetry") or [""])[0]
            delay = min(parse_go_duration(delay), MAX_DELAY_S) if delay else 0.0
        except ValueError as e:
            return json_response(400, {"message": str(e)})
        with pod.retry_lock:
            count = pod.retry_counts.get(uuid, 0)
            failing = count < succeed_after
            if failing:
                pod.retry_counts[uuid] = count + 1
        if failing:
            if delay:
                time.sleep(delay)
            if code is None:
                raise ResetConnection()
            return code, [], b""
    return echo(pod, req)


def echo(pod, req):
    pod.log("Echoing back request made to %s to client (%s)" % (req.uri, req.remote))
    delay = (req.query().get("delay") or [""])[0]
    if delay:
        try:
            time.sleep(min(parse_go_duration(delay), MAX_DELAY_S))
        except ValueError as e:
            return json_response(500, {"message": str(e)})
    obj = {
        "path": req.uri,
        "host": req.host,
        "method": req.method,
        "proto": req.proto,
        "headers": req.header_map(),
        "httpPort": str(req.local_port),
    }
    obj.update(pod.context())
    if req.tls_info is not None:
        obj["tls"] = req.tls_info
    obj["sni"] = req.tls_info["serverName"] if req.tls_info else ""
    return json_response(200, obj, echo_set_headers(req))


def take_sni(sock, sni_map):
    """The SNI the sni_callback recorded for this connection (keyed by its SSL object)."""
    sni = sni_map.pop(id(sock), None)
    if sni is None and getattr(sock, "_sslobj", None) is not None:
        sni = sni_map.pop(id(sock._sslobj), None)
    return sni or ""


def tls_info_of(sock, sni):
    if not isinstance(sock, ssl.SSLSocket):
        return None
    info = {
        "version": sock.version() or "",
        "serverName": sni,
        "negotiatedProtocol": sock.selected_alpn_protocol() or "",
        "cipherSuite": (sock.cipher() or ("",))[0],
    }
    der = sock.getpeercert(binary_form=True)
    if der:
        info["peerCertificates"] = [pem_of_der(der)]
    return info


# --------------------------------------------------------------------------------------
# HTTP/1.1


def read_h1_request(reader):
    """Returns (method, uri, version, headers) or None on clean EOF."""
    try:
        head = reader.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
    except EOFError:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    while lines and lines[0] == "":  # tolerate stray CRLF between requests
        lines.pop(0)
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("malformed request line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError("malformed header line %r" % line)
        headers.append((name, value.strip(" \t")))
    return parts[0], parts[1], parts[2], headers


def read_h1_body(reader, headers):
    te = [v.lower() for n, v in headers if n.lower() == "transfer-encoding"]
    if te and "chunked" in te[-1]:
        body = bytearray()
        while True:
            line = reader.read_until(b"\r\n", 4096)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while reader.read_until(b"\r\n", MAX_HEADER_BYTES) != b"\r\n":
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                raise ValueError("body too large")
            body += reader.read_exact(size)
            reader.read_exact(2)
    cl = [v for n, v in headers if n.lower() == "content-length"]
    if cl:
        n = int(cl[-1])
        if n < 0 or n > MAX_BODY_BYTES:
            raise ValueError("bad content-length")
        return reader.read_exact(n)
    return b""


def write_h1_response(sock, status, headers, body, head_only=False, close=False):
    lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
    names = {n.lower() for n, _ in headers}
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
    if "date" not in names:
        lines.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
    if "content-length" not in names and status not in (204, 304) and status >= 200:
        lines.append("Content-Length: %d" % len(body))
    if close:
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if not head_only:
        data += body
    sock.sendall(data)


def serve_h1(pod, sock, reader, remote, local_port, tls_info, role):
    while True:
        try:
            parsed = read_h1_request(reader)
        except (ValueError, EOFError):
            try:
                write_h1_response(sock, 400, [("Content-Type", "text/plain")], b"bad request", close=True)
            except OSError:
                pass
            return
        if parsed is None:
            return
        method, uri, version, headers = parsed
        try:
            body = read_h1_body(reader, headers)
        except (ValueError, EOFError):
            write_h1_response(sock, 400, [], b"", close=True)
            return
        host = ""
        rest = []
        for n, v in headers:
            if n.lower() == "host":
                host = v
            elif n.lower() == "transfer-encoding":
                continue
            else:
                rest.append((n, v))
        req = Request(method, uri, host, version, rest, body, remote, local_port, tls_info)
        conn_hdr = ",".join(v for n, v in headers if n.lower() == "connection").lower()
        close = "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in conn_hdr)
        upgrade = (req.get("Upgrade") or "").lower()
        if role == "h2c":
            if upgrade == "h2c" and "upgrade" in conn_hdr:
                settings = req.get("HTTP2-Settings") or ""
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
                serve_h2(pod, sock, reader, remote, local_port, tls_info, upgrade_req=req,
                         upgrade_settings=settings)
                return
            write_h1_response(sock, 400, [("Content-Type", "text/plain; charset=utf-8")],
                              b"Expected h2c request", close=close)
            if close:
                return
            continue
        if req.path_only() == "/ws":
            if upgrade == "websocket":
                serve_websocket(sock, reader, req)
            else:
                write_h1_response(sock, 400, [], b"", close=True)
            return
        try:
            status, rheaders, rbody = handle_http(pod, req)
        except ResetConnection:
            reset_socket(sock)
            return
        write_h1_response(sock, status, rheaders, rbody, head_only=(method == "HEAD"), close=close)
        if close:
            return


# --------------------------------------------------------------------------------------
# WebSocket echo (RFC 6455), enough for the conformance /ws check


def serve_websocket(sock, reader, req):
    key = req.get("Sec-WebSocket-Key") or ""
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
    while True:
        try:
            b0, b1 = reader.read_exact(2)
            opcode = b0 & 0x0F
            masked = b1 & 0x80
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", reader.read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", reader.read_exact(8))[0]
            if length > MAX_BODY_BYTES:
                return
            mask = reader.read_exact(4) if masked else b"\0\0\0\0"
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(reader.read_exact(length)))
        except (EOFError, OSError):
            return
        if opcode == 0x8:  # close: answer and stop
            send_ws_frame(sock, 0x8, payload[:2])
            return
        if opcode == 0x9:  # ping
            send_ws_frame(sock, 0xA, payload, fin=True)
            continue
        if opcode == 0xA:
            continue
        send_ws_frame(sock, opcode, payload, fin=bool(b0 & 0x80))


def send_ws_frame(sock, opcode, payload, fin=True):
    head = bytearray([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head.append(n)
    elif n < 65536:
        head.append(126)
        head += struct.pack("!H", n)
    else:
        head.append(127)
        head += struct.pack("!Q", n)
    sock.sendall(bytes(head) + payload)


# --------------------------------------------------------------------------------------
# HTTP/2 (python3-h2)


def serve_h2(pod, sock, reader, remote, local_port, tls_info, upgrade_req=None, upgrade_settings=None):
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    lock = threading.Lock()
    window_cv = threading.Condition(lock)
    closed = [False]

    def flush():
        data = conn.data_to_send()
        if data:
            sock.sendall(data)

    with lock:
        if upgrade_req is not None:
            conn.initiate_upgrade_connection(upgrade_settings)
        else:
            conn.initiate_connection()
        flush()

    def respond(stream_id, req):
        try:
            status, headers, body = handle_http(pod, req)
        except ResetConnection:
            with lock:
                closed[0] = True
            reset_socket(sock)
            return
        hdrs = [(":status", str(status))]
        for n, v in headers:
            hdrs.append((n.lower(), v))
        if status not in (204, 304):
            hdrs.append(("content-length", str(len(body))))
        if req.method == "HEAD":
            body = b""
        try:
            with lock:
                if closed[0]:
                    return
                conn.send_headers(stream_id, hdrs, end_stream=not body)
                flush()
                view = memoryview(body)
                while view:
                    while conn.local_flow_control_window(stream_id) <= 0 and not closed[0]:
                        if not window_cv.wait(timeout=IDLE_TIMEOUT_S):
                            return
                    if closed[0]:
                        return
                    n = min(len(view), conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                    conn.send_data(stream_id, bytes(view[:n]), end_stream=(n == len(view)))
                    view = view[n:]
                    flush()
        except (OSError, h2.exceptions.H2Error):
            pass

    def make_req(headers, body):
        pseudo = {}
        rest = []
        host = ""
        for n, v in headers:
            if n.startswith(":"):
                pseudo[n] = v
            elif n == "host":
                host = v
            else:
                rest.append((n, v))
        return Request(pseudo.get(":method", ""), pseudo.get(":path", ""), pseudo.get(":authority", host),
                       "HTTP/2.0", rest, body, remote, local_port, tls_info)

    if upgrade_req is not None:
        upgrade_req.proto = "HTTP/2.0"
        threading.Thread(target=respond, args=(1, upgrade_req), daemon=True).start()

    streams = {}
    pending = reader.take_all()
    try:
        while True:
            data = pending or sock.recv(65536)
            pending = b""
            if not data:
                break
            with lock:
                try:
                    events = conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    flush()
                    break
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = [ev.headers, bytearray()]
                    elif isinstance(ev, h2.events.DataReceived):
                        if ev.stream_id in streams:
                            streams[ev.stream_id][1] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        st = streams.pop(ev.stream_id, None)
                        if st is not None:
                            threading.Thread(target=respond, args=(ev.stream_id, make_req(st[0], bytes(st[1]))),
                                             daemon=True).start()
                    elif isinstance(ev, h2.events.StreamReset):
                        streams.pop(ev.stream_id, None)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        window_cv.notify_all()
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        closed[0] = True
                flush()
                if closed[0]:
                    break
    except OSError:
        pass
    finally:
        with lock:
            closed[0] = True
            window_cv.notify_all()


# --------------------------------------------------------------------------------------
# TCP line protocol


def serve_tcp_echo(pod, sock, tls_sni, tcp_port, tls_port):
    is_tls = isinstance(sock, ssl.SSLSocket)
    assertions = {"namespace": pod.namespace, "ingress": pod.ingress, "service": pod.service, "pod": pod.name,
                  "tcpport": str(tcp_port)}
    if tls_port:
        assertions["tlsport"] = str(tls_port)
    assertions["isTLS"] = is_tls
    if is_tls:
        version = {"TLSv1.3": "TLS 1.3", "TLSv1.2": "TLS 1.2"}.get(sock.version(), sock.version() or "")
        tls = {"version": version, "serverName": tls_sni, "cipherSuite": (sock.cipher() or ("",))[0]}
        if sock.selected_alpn_protocol():
            tls["negotiatedProtocol"] = sock.selected_alpn_protocol()
        assertions["tls"] = tls
    payload = json.dumps(assertions, separators=(",", ":")).encode()
    sock.sendall(TCP_WELCOME)
    reader = SocketReader(sock)
    while True:
        try:
            line = reader.read_until(b"\n", 65536)
        except (EOFError, ValueError, OSError):
            return
        text = line.rstrip(b"\n").rstrip(b"\r")
        if text == b"TEST":
            sock.sendall(payload + b"\n")
        elif text == b"IS_TLS":
            sock.sendall(b"true\n" if is_tls else b"false\n")
        elif text == b"PING":
            sock.sendall(b"PONG\n")


# --------------------------------------------------------------------------------------
# gRPC (python3-grpcio, generic handlers, hand-written protobuf for the echo messages)


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes_field(field, data):
    if isinstance(data, str):
        data = data.encode()
    return pb_varint((field << 3) | 2) + pb_varint(len(data)) + data


def pb_string_field(field, text):
    return pb_bytes_field(field, text) if text else b""


def encode_echo_response(full_method, headers, authority, ctx, tls=None):
    assertions = pb_string_field(1, full_method)
    for k, v in headers:
        assertions += pb_bytes_field(2, pb_string_field(1, k) + pb_string_field(2, v))
    assertions += pb_string_field(3, authority)
    context = (pb_string_field(1, ctx["namespace"]) + pb_string_field(2, ctx["ingress"]) +
               pb_string_field(3, ctx["service"]) + pb_string_field(4, ctx["pod"]))
    assertions += pb_bytes_field(4, context)
    if tls is not None:
        t = (pb_string_field(1, tls.get("version", "")) + pb_string_field(2, tls.get("negotiatedProtocol", "")) +
             pb_string_field(3, tls.get("serverName", "")) + pb_string_field(4, tls.get("cipherSuite", "")))
        for pem in tls.get("peerCertificates", []):
            t += pb_string_field(5, pem)
        assertions += pb_bytes_field(5, t)
    return pb_bytes_field(1, assertions) + pb_bytes_field(2, b"")


def start_grpc_pod(pod, http_port, https_port):
    import grpc
    from concurrent import futures

    ctx = pod.context()

    def make_handler(is_tls):
        def unary(method_name):
            full = "/%s/%s" % (GRPC_SERVICE, method_name)

            def fn(_request, context):
                md = list(context.invocation_metadata())
                authority = ""
                for k, v in md:
                    if k == ":authority":
                        authority = v
                pod.log("Received over %s: %s" % ("TLS" if is_tls else "plaintext", full))
                tls = None
                if is_tls:
                    auth = context.auth_context()
                    tls = {"version": "", "serverName": "", "cipherSuite": "",
                           "negotiatedProtocol": "h2"}
                    certs = auth.get("x509_pem_cert") or []
                    if certs:
                        tls["peerCertificates"] = [c.decode() if isinstance(c, bytes) else c for c in certs]
                return encode_echo_response(full, md, authority, ctx, tls)

            return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=lambda b: b,
                                                       response_serializer=lambda b: b)

        methods = {"Echo": unary("Echo"), "EchoTwo": unary("EchoTwo")}
        # EchoThree is intentionally absent: grpcio answers UNIMPLEMENTED.
        return grpc.method_handlers_generic_handler(GRPC_SERVICE, methods)

    servers = []
    opts = [("grpc.so_reuseport", 0)]
    plain = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=opts)
    plain.add_generic_rpc_handlers((make_handler(False),))
    pod.ports["http_port"] = plain.add_insecure_port("%s:%d" % (pod.ip, http_port))
    if pod.ports["http_port"] == 0:
        raise OSError("cannot bind gRPC port %s:%d" % (pod.ip, http_port))
    plain.start()
    servers.append(plain)
    if pod.tls and https_port is not None:
        with open(pod.tls["cert"], "rb") as f:
            cert = f.read()
        with open(pod.tls["key"], "rb") as f:
            key = f.read()
        creds = grpc.ssl_server_credentials([(key, cert)])
        secure = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=opts)
        secure.add_generic_rpc_handlers((make_handler(True),))
        pod.ports["https_port"] = secure.add_secure_port("%s:%d" % (pod.ip, https_port), creds)
        if pod.ports["https_port"] == 0:
            raise OSError("cannot bind gRPC TLS port %s:%d" % (pod.ip, https_port))
        secure.start()
        servers.append(secure)
    return servers


# --------------------------------------------------------------------------------------
# DNS (a stand-in for the suite's CoreDNS: any query gets an A record answer)


def dns_answer(query, client_ip):
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", query[:6])
    pos = 12
    for _ in range(qdcount):
        while pos < len(query) and query[pos] != 0:
            pos += 1 + query[pos]
        pos += 5
    if pos > len(query):
        return None
    question = query[12:pos]
    rd = flags & 0x0100
    header = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080, qdcount, 1 if qdcount else 0, 0, 0)
    answer = b""
    if qdcount:
        try:
            ip = socket.inet_aton(client_ip)
        except OSError:
            ip = socket.inet_aton("127.0.0.1")
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + ip
    return header + question + answer


# --------------------------------------------------------------------------------------
# Server plumbing


class EchoServer:
    def __init__(self, pod_specs):
        self.pods = [Pod(s) for s in pod_specs]
        self.selector = selectors.DefaultSelector()
        self.sockets = []
        self.grpc_servers = []
        self.stop = threading.Event()

    def _listen_tcp(self, ip, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.listen(256)
        s.setblocking(False)
        self.sockets.append(s)
        return s

    def _listen_udp(self, ip, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((ip, port))
        s.setblocking(False)
        self.sockets.append(s)
        return s

    def setup(self):
        for pod in self.pods:
            spec = pod.spec
            if pod.kind == "http":
                s = self._listen_tcp(pod.ip, spec.get("http_port", 3000))
                pod.ports["http_port"] = s.getsockname()[1]
                self.selector.register(s, selectors.EVENT_READ, ("tcp", pod, "http1", None))
                if spec.get("h2c_port", 3001) is not None:
                    s = self._listen_tcp(pod.ip, spec.get("h2c_port", 3001))
                    pod.ports["h2c_port"] = s.getsockname()[1]
                    self.selector.register(s, selectors.EVENT_READ, ("tcp", pod, "h2c", None))
                if pod.tls and spec.get("https_port", 8443) is not None:
                    s = self._listen_tcp(pod.ip, spec.get("https_port", 8443))
                    pod.ports["https_port"] = s.getsockname()[1]
                    ctx = tls_server_context_with_sni(pod.tls, ["h2", "http/1.1"])
                    self.selector.register(s, selectors.EVENT_READ, ("tcp", pod, "https", ctx))
            elif pod.kind == "grpc":
                https = spec.get("https_port", 8443) if pod.tls else None
                self.grpc_servers += start_grpc_pod(pod, spec.get("http_port", 3000), https)
            elif pod.kind == "tcp":
                s = self._listen_tcp(pod.ip, spec.get("tcp_port", 3000))
                pod.ports["tcp_port"] = s.getsockname()[1]
                self.selector.register(s, selectors.EVENT_READ, ("tcp", pod, "tcp", None))
                if pod.tls and spec.get("tls_port", 8443) is not None:
                    s = self._listen_tcp(pod.ip, spec.get("tls_port", 8443))
                    pod.ports["tls_port"] = s.getsockname()[1]
                    ctx = tls_server_context_with_sni(pod.tls, None)
                    self.selector.register(s, selectors.EVENT_READ, ("tcp", pod, "tcp-tls", ctx))
            elif pod.kind == "udp":
                s = self._listen_udp(pod.ip, spec.get("udp_port", 8080))
                pod.ports["udp_port"] = s.getsockname()[1]
                self.selector.register(s, selectors.EVENT_READ, ("udp", pod, "udp", None))
            elif pod.kind == "dns":
                s = self._listen_udp(pod.ip, spec.get("dns_port", 53))
                pod.ports["dns_port"] = s.getsockname()[1]
                self.selector.register(s, selectors.EVENT_READ, ("udp", pod, "dns", None))
            else:
                raise ValueError("unknown pod kind %r" % pod.kind)

    def ready_info(self):
        return [{"pod": p.name, "namespace": p.namespace, "ip": p.ip, "kind": p.kind, "ports": p.ports}
                for p in self.pods]

    def serve_forever(self):
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.5):
                proto, pod, role, ctx = key.data
                sock = key.fileobj
                if proto == "udp":
                    self._on_datagram(sock, pod, role)
                    continue
                try:
                    conn, addr = sock.accept()
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                threading.Thread(target=self._on_conn, args=(conn, addr, pod, role, ctx,
                                                             sock.getsockname()[1]), daemon=True).start()
        for s in self.sockets:
            s.close()
        for g in self.grpc_servers:
            g.stop(0)

    def _on_datagram(self, sock, pod, role):
        try:
            data, addr = sock.recvfrom(65535)
        except (BlockingIOError, OSError):
            return
        if role == "udp":
            reply = {"request": data[:1024].decode("utf-8", "replace")}
            reply.update(pod.context())
            pod.log("Received UDP %s from %s:%d" % (data[:1024].decode("utf-8", "replace"), addr[0], addr[1]))
            out = json.dumps(reply, separators=(",", ":")).encode()
        else:
            out = dns_answer(data, addr[0])
            pod.log("DNS query from %s:%d" % addr)
        if out:
            try:
                sock.sendto(out, addr)
            except OSError:
                pass

    def _on_conn(self, conn, addr, pod, role, ctx, local_port):
        remote = "%s:%d" % addr
        conn.settimeout(IDLE_TIMEOUT_S)
        try:
            tls_info = None
            sni = ""
            if ctx is not None:
                tls_ctx, sni_map = ctx
                try:
                    conn = tls_ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    pod.log("TLS handshake with %s failed: %s" % (remote, e))
                    conn.close()
                    return
                sni = take_sni(conn, sni_map)
                tls_info = tls_info_of(conn, sni)
            if role in ("tcp", "tcp-tls"):
                serve_tcp_echo(pod, conn, sni, pod.ports.get("tcp_port", 0),
                               pod.ports.get("tls_port", 0) if pod.tls else 0)
                return
            reader = SocketReader(conn)
            if role == "h2c" and reader.peek(len(H2_PREFACE)) == H2_PREFACE:
                serve_h2(pod, conn, reader, remote, local_port, None)
            elif role == "https" and conn.selected_alpn_protocol() == "h2":
                serve_h2(pod, conn, reader, remote, local_port, tls_info)
            else:
                serve_h1(pod, conn, reader, remote, local_port, tls_info, "h2c" if role == "h2c" else "http1")
        except (OSError, EOFError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def pod_from_args(a):
    spec = {"pod": a.pod, "namespace": a.namespace, "service": a.service or "", "ingress": a.ingress or "",
            "ip": a.ip, "kind": a.kind, "log": a.log}
    for key in ("http_port", "h2c_port", "https_port", "tcp_port", "tls_port", "udp_port", "dns_port"):
        val = getattr(a, key)
        if val is not None:
            spec[key] = val
    if a.tls_cert:
        spec["tls"] = {"cert": a.tls_cert, "key": a.tls_key, "client_ca": a.tls_client_ca}
    return spec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON file {\"pods\": [...]}")
    p.add_argument("--pod")
    p.add_argument("--namespace", default="")
    p.add_argument("--service")
    p.add_argument("--ingress")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--kind", default="http", choices=["http", "grpc", "tcp", "udp", "dns"])
    for key in ("http-port", "h2c-port", "https-port", "tcp-port", "tls-port", "udp-port", "dns-port"):
        p.add_argument("--" + key, type=int)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca")
    p.add_argument("--log")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes (so a crashed parent never leaks the server)")
    a = p.parse_args(argv)
    if a.config:
        with open(a.config) as f:
            specs = json.load(f)["pods"]
    elif a.pod:
        specs = [pod_from_args(a)]
    else:
        p.error("give --config or --pod")
    server = EchoServer(specs)
    try:
        server.setup()
    except OSError as e:
        print("ERROR binding listeners: %s" % e, flush=True)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: server.stop.set())
    signal.signal(signal.SIGINT, lambda *_: server.stop.set())
    if a.exit_on_stdin_eof:
        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except (OSError, ValueError):
                pass
            server.stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY " + json.dumps(server.ready_info()), flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
