"""Test clients used against the gateway and the echo backends: HTTP/1.1 (one request
per connection, like Go's client with keep-alives disabled), HTTP/2 over TLS or
cleartext (python3-h2), gRPC (python3-grpcio with hand-decoded echo messages), the
TCP echo line protocol, UDP and DNS probes, and a WebSocket echo round trip.

Every call has a timeout; transport failures raise TransportError."""

import base64
import ipaddress
import json
import os
import socket
import ssl
import struct
import tempfile

REQUEST_TIMEOUT_S = 10
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
GRPC_SERVICE = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho"


class TransportError(Exception):
    """The exchange failed below HTTP (connect, TLS, reset, timeout, malformed).
    state["cert_requested"] tells whether a TLS server asked for a client cert."""

    def __init__(self, msg, state=None):
        super().__init__(msg)
        self.state = state or {}


class TLSOptions:
    """Client TLS: trust exactly `ca_pem` (None = do not verify), send SNI
    `server_name`, offer `client_cert`=(cert_path, key_path), offer `alpn`."""

    def __init__(self, server_name=None, ca_pem=None, client_cert=None, alpn=None, min_version=None):
        self.server_name = server_name
        self.ca_pem = ca_pem
        self.client_cert = client_cert
        self.alpn = alpn
        self.min_version = min_version


class Response:
    def __init__(self, status, headers, body, proto, cert_requested=False):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body
        self.proto = proto
        self.cert_requested = cert_requested

    def header_values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name):
        vals = self.header_values(name)
        return ",".join(vals) if vals else None


def _go_hostname_match(pattern, host):
    pattern = pattern.lower().rstrip(".")
    host = host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*."):
        first, _, rest = host.partition(".")
        return bool(first) and rest == pattern[2:]
    return False


def verify_hostname(cert, host):
    """Go's x509 VerifyHostname against a getpeercert() dict (SANs only)."""
    sans = cert.get("subjectAltName", ())
    try:
        ip = ipaddress.ip_address(host)
        return any(k == "IP Address" and ipaddress.ip_address(v.strip()) == ip for k, v in sans)
    except ValueError:
        pass
    return any(k == "DNS" and _go_hostname_match(v, host) for k, v in sans)


def _client_context(opts, state):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if opts.min_version == "TLS1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if opts.ca_pem:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=opts.ca_pem)
        # Go accepts a trusted self-signed leaf as an anchor even without keyCertSign.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if opts.client_cert:
        ctx.load_cert_chain(opts.client_cert[0], opts.client_cert[1])
    if opts.alpn:
        ctx.set_alpn_protocols(opts.alpn)

    def on_msg(_conn, direction, _version, content_type, msg_type, _data):
        # Record whether the server sent a CertificateRequest (the "hook must fire" check).
        if direction == "read" and int(content_type) == 22 and int(msg_type) == 13:
            state["cert_requested"] = True

    try:
        ctx._msg_callback = on_msg
    except AttributeError:
        state["cert_requested"] = None  # unknown on this Python
    return ctx


def open_connection(ip, port, tls=None, timeout=REQUEST_TIMEOUT_S):
    """Returns (socket, state). state["cert_requested"] tells whether the TLS server
    asked for a client certificate. Raises TransportError."""
    state = {"cert_requested": False}
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError as e:
        raise TransportError("connect %s:%s: %s" % (ip, port, e))
    sock.settimeout(timeout)
    if tls is None:
        return sock, state
    ctx = _client_context(tls, state)
    try:
        ssock = ctx.wrap_socket(sock, server_hostname=tls.server_name or None)
    except (ssl.SSLError, OSError) as e:
        sock.close()
        raise TransportError("TLS handshake: %s" % e, state)
    if tls.ca_pem and tls.server_name:
        cert = ssock.getpeercert()
        if not verify_hostname(cert, tls.server_name):
            ssock.close()
            raise TransportError("TLS: certificate is not valid for %s" % tls.server_name, state)
    return ssock, state


def _recv(sock):
    try:
        data = sock.recv(65536)
    except (ssl.SSLError, OSError) as e:
        raise TransportError("read: %s" % e)
    return data


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def fill(self):
        data = _recv(self.sock)
        if not data:
            self.eof = True
            raise TransportError("unexpected EOF")
        self.buf += data
        if len(self.buf) > MAX_RESPONSE_BYTES:
            raise TransportError("response too large")

    def until(self, delim):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[: i + len(delim)])
                del self.buf[: i + len(delim)]
                return out
            self.fill()

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self):
        while True:
            try:
                self.fill()
            except TransportError:
                if self.eof:
                    break
                raise
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _read_h1_response(reader, method):
    while True:
        head = reader.until(b"\r\n\r\n").decode("latin-1")
        lines = head[:-4].split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise TransportError("malformed status line %r" % lines[0])
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            n, _, v = line.partition(":")
            headers.append((n.strip(), v.strip()))
        if 100 <= status < 200 and status != 101:
            continue
        break
    lower = {n.lower(): v for n, v in headers}
    if method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int(reader.until(b"\r\n").split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while reader.until(b"\r\n") != b"\r\n":
                    pass
                break
            body += reader.exact(size)
            reader.exact(2)
        body = bytes(body)
    elif "content-length" in lower:
        body = reader.exact(int(lower["content-length"]))
    else:
        body = reader.rest()
    return status, headers, body


def http1_request(ip, port, method, path, headers, tls=None, timeout=REQUEST_TIMEOUT_S):
    """One HTTP/1.1 request on a new connection with "Connection: close".
    headers: list of (name, value), Host included by the caller."""
    sock, state = open_connection(ip, port, tls, timeout)
    try:
        lines = ["%s %s HTTP/1.1" % (method, path)]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        lines.append("Connection: close")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except (ssl.SSLError, OSError) as e:
            raise TransportError("write: %s" % e)
        status, rheaders, body = _read_h1_response(_Reader(sock), method)
        return Response(status, rheaders, body, "HTTP/1.1", state.get("cert_requested"))
    except TransportError as e:
        if not e.state:
            e.state = state
        raise
    finally:
        try:
            sock.close()
        except OSError:
            pass


def h2_request(ip, port, method, path, authority, headers, scheme="http", tls=None, timeout=REQUEST_TIMEOUT_S):
    """One HTTP/2 request on a new connection: h2 over TLS (ALPN h2) when tls is
    given, else cleartext with prior knowledge. headers: list of (name, value)."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    if tls is not None:
        tls.alpn = ["h2"]
    sock, state = open_connection(ip, port, tls, timeout)
    try:
        if tls is not None and sock.selected_alpn_protocol() != "h2":
            raise TransportError("server did not negotiate h2 (ALPN %r)" % sock.selected_alpn_protocol(), state)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority), (":path", path)]
        hdrs += [(n.lower(), v) for n, v in headers if n.lower() not in ("host", "connection")]
        conn.send_headers(sid, hdrs, end_stream=True)
        sock.sendall(conn.data_to_send())
        status = None
        rheaders = []
        body = bytearray()
        done = False
        while not done:
            data = _recv(sock)
            if not data:
                raise TransportError("connection closed before the response ended", state)
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                raise TransportError("HTTP/2 protocol error: %s" % e, state)
            for ev in events:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    for n, v in ev.headers:
                        if n == ":status":
                            status = int(v)
                        else:
                            rheaders.append((n, v))
                elif isinstance(ev, h2.events.InformationalResponseReceived):
                    continue
                elif isinstance(ev, h2.events.DataReceived):
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.TrailersReceived):
                    rheaders += [(n, v) for n, v in ev.headers]
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise TransportError("stream reset (error code %s)" % ev.error_code, state)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    if status is None or not done:
                        raise TransportError("GOAWAY (error code %s)" % ev.error_code, state)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        if status is None:
            raise TransportError("no response headers", state)
        return Response(status, rheaders, bytes(body), "HTTP/2.0", state.get("cert_requested"))
    except (ssl.SSLError, OSError) as e:
        raise TransportError("HTTP/2: %s" % e, state)
    finally:
        try:
            sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------- gRPC


def _pb_fields(data):
    """Decodes a protobuf message into {field: [raw values]} (varint or bytes)."""
    out = {}
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            val = data[i:i + n]
            i += n
        elif wire == 1:
            val = data[i:i + 8]
            i += 8
        elif wire == 5:
            val = data[i:i + 4]
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        out.setdefault(field, []).append(val)
    return out


def _varint(data, i):
    shift = 0
    result = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _s(fields, n):
    v = fields.get(n)
    return v[0].decode("utf-8", "replace") if v else ""


def decode_echo_response(data):
    """EchoResponse -> {"fully_qualified_method", "headers": [(k, v)], "authority",
    "context": {namespace, ingress, service_name, pod}, "tls": {...} or None}."""
    top = _pb_fields(data)
    a = _pb_fields(top.get(1, [b""])[0])
    headers = []
    for h in a.get(2, []):
        hf = _pb_fields(h)
        headers.append((_s(hf, 1), _s(hf, 2)))
    c = _pb_fields(a.get(4, [b""])[0])
    tls = None
    if 5 in a:
        t = _pb_fields(a[5][0])
        tls = {"version": _s(t, 1), "negotiatedProtocol": _s(t, 2), "serverName": _s(t, 3),
               "cipherSuite": _s(t, 4), "peerCertificates": [x.decode() for x in t.get(5, [])]}
    return {"fully_qualified_method": _s(a, 1), "headers": headers, "authority": _s(a, 3),
            "context": {"namespace": _s(c, 1), "ingress": _s(c, 2), "service_name": _s(c, 3), "pod": _s(c, 4)},
            "tls": tls}


class GrpcResult:
    def __init__(self, code, details, response=None, transport_error=False):
        self.code = code  # upper-case grpc.StatusCode name, e.g. "OK", "UNIMPLEMENTED"
        self.details = details
        self.response = response
        self.transport_error = transport_error


def grpc_call(ip, port, full_method, authority=None, metadata=None, timeout=REQUEST_TIMEOUT_S,
              tls=None):
    """One unary call on a new channel (plaintext h2c unless tls is given)."""
    import grpc

    opts = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if authority:
        opts.append(("grpc.default_authority", authority))
    target = "%s:%d" % (ip, port)
    if tls is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem.encode() if tls.ca_pem else None)
        if tls.server_name:
            opts.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = grpc.secure_channel(target, creds, options=opts)
    else:
        channel = grpc.insecure_channel(target, options=opts)
    try:
        stub = channel.unary_unary(full_method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        md = [(k.lower(), v) for k, v in (metadata or {}).items()]
        try:
            body = stub(b"", metadata=md, timeout=timeout)
        except grpc.RpcError as e:
            code = e.code()
            details = e.details() or ""
            transport = code == grpc.StatusCode.UNAVAILABLE and (
                "failed to connect" in details.lower() or "connection refused" in details.lower()
                or "connections to all backends failing" in details.lower())
            return GrpcResult(code.name, details, None, transport)
        try:
            return GrpcResult("OK", "", decode_echo_response(body))
        except ValueError as e:
            return GrpcResult("OK", "undecodable response: %s" % e, None)
    finally:
        channel.close()


# ---------------------------------------------------------------------------- L4


def tcp_echo_exchange(ip, port, tls=None, timeout=REQUEST_TIMEOUT_S, full=True):
    """The upstream TCP echo exchange. Returns (is_tls_reply, test_json)."""
    sock, _state = open_connection(ip, port, tls, timeout)
    try:
        reader = _Reader(sock)
        welcome = reader.until(b"\n")
        if welcome != b"Gateway API Test TCP Server\n":
            raise TransportError("unexpected welcome line %r" % welcome)
        is_tls = None
        if full:
            sock.sendall(b"PING\n")
            pong = reader.until(b"\n")
            if pong != b"PONG\n":
                raise TransportError("PING answered %r" % pong)
            sock.sendall(b"IS_TLS\n")
            is_tls = reader.until(b"\n").strip().decode()
        sock.sendall(b"TEST\n")
        line = reader.until(b"\n")
        try:
            return is_tls, json.loads(line)
        except ValueError:
            raise TransportError("TEST answered non-JSON %r" % line[:200])
    except (ssl.SSLError, OSError) as e:
        raise TransportError("tcp echo: %s" % e)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def tls_dial_rejected(ip, port, server_name, timeout=REQUEST_TIMEOUT_S):
    """True if a TLS dial ends with EOF or a connection reset during the handshake
    (the upstream "connection rejected" outcome); False for a completed handshake
    or any other error."""
    state = {}
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError:
        return False, "connect failed"
    ctx = _client_context(TLSOptions(server_name=server_name), state)
    try:
        ssock = ctx.wrap_socket(sock, server_hostname=server_name)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError) as e:
        sock.close()
        return True, "handshake ended: %s" % type(e).__name__
    except ssl.SSLError as e:
        sock.close()
        if "EOF" in str(e) or "reset" in str(e).lower():
            return True, str(e)
        return False, "handshake error: %s" % e
    except OSError as e:
        sock.close()
        if getattr(e, "errno", None) in (104,):
            return True, str(e)
        return False, "error: %s" % e
    ssock.close()
    return False, "handshake completed"


def udp_exchange(ip, port, payload, timeout=REQUEST_TIMEOUT_S):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(payload if isinstance(payload, bytes) else payload.encode(), (ip, port))
            data, _ = s.recvfrom(65535)
        except OSError as e:
            raise TransportError("udp: %s" % e)
        return data


def dns_query(ip, port, name, timeout=REQUEST_TIMEOUT_S):
    qid = struct.unpack("!H", os.urandom(2))[0]
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    data = udp_exchange(ip, port, q, timeout)
    if len(data) < 12 or struct.unpack("!H", data[:2])[0] != qid:
        raise TransportError("not a DNS reply to our query")
    return data


def websocket_echo(ip, port, host, path, messages, origin, timeout=REQUEST_TIMEOUT_S):
    """Opens a WebSocket, sends each (opcode, payload), returns the echoed list."""
    sock, _ = open_connection(ip, port, None, timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n" % (path, host, key, origin))
        sock.sendall(req.encode())
        reader = _Reader(sock)
        head = reader.until(b"\r\n\r\n").decode("latin-1")
        status = head.split(" ", 2)[1] if " " in head else ""
        if status != "101":
            raise TransportError("WebSocket upgrade answered %r" % head.split("\r\n")[0])
        out = []
        for opcode, payload in messages:
            mask = os.urandom(4)
            frame = bytearray([0x80 | opcode])
            n = len(payload)
            if n < 126:
                frame.append(0x80 | n)
            else:
                frame.append(0x80 | 126)
                frame += struct.pack("!H", n)
            frame += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            sock.sendall(bytes(frame))
            b0, b1 = reader.exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", reader.exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", reader.exact(8))[0]
            m = reader.exact(4) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ m[i % 4] for i, b in enumerate(reader.exact(n)))
            out.append((b0 & 0x0F, data))
        return out
    except (ssl.SSLError, OSError) as e:
        raise TransportError("websocket: %s" % e)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def write_temp(text, suffix=".pem"):
    fd, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
