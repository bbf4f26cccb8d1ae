#!/usr/bin/env python3
"""End-to-end gRPC tests of `archway run` (GRPCRoute) with python3-grpcio clients and
servers: unary, server-streaming, client-streaming and bidirectional calls (the request
stream flows through the gateway message by message: a chat-style call that waits for
each reply before sending the next message completes), metadata and trailers end to end, header
modifiers, metadata header matching, and gateway-side failures answered as gRPC status
(unmatched -> UNIMPLEMENTED, backend down / no endpoints -> UNAVAILABLE, grpc-timeout ->
DEADLINE_EXCEEDED). Needs $ARCHWAY_BIN (default build-asan-ubsan/archway).
Run: /usr/bin/python3 tests/integration/test_grpc.py"""

import hashlib
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_h2 import H2C, H2Client  # noqa: E402

import manifests  # noqa: E402  (tests/support, on the path through test_h2)
import procs  # noqa: E402
from procs import BIN, free_port  # noqa: E402

try:
    import grpc
except ImportError:  # pragma: no cover
    grpc = None

IDENTITY = (lambda b: b)


def grpc_frame(payload):
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def chat_interactively(test, channel, method, messages, timeout=15):
    """A bidi call that sends each message only once the reply to the previous one (b"echo:"
    + message, checked) arrived: a gateway that waits for the whole request stream before
    forwarding it deadlocks here (the call's deadline then fails the test instead of
    hanging it). Returns the call, every reply read and its status checked OK."""
    outbox = queue.Queue()

    def requests():
        while True:
            m = outbox.get()
            if m is None:
                return
            yield m

    chat = channel.stream_stream(method, request_serializer=IDENTITY,
                                 response_deserializer=IDENTITY)
    call = chat(requests(), timeout=timeout)
    try:
        for msg in messages:
            outbox.put(msg)
            test.assertEqual(next(call), b"echo:" + msg)
    finally:
        outbox.put(None)
    test.assertEqual(list(call), [])
    test.assertEqual(call.code(), grpc.StatusCode.OK)
    return call


class Backend:
    """A grpcio server with generic handlers (raw bytes, no protobuf needed)."""

    def __init__(self, name, credentials=None, services=("test.Echo", "test.Other"),
                 initial_metadata=()):
        self.name = name
        self.initial_metadata = tuple(initial_metadata)  # sent after x-backend
        self.seen = []  # invocation metadata of each call
        self.messages = []  # request message of each unary call
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  options=[("grpc.so_reuseport", 0)])
        self.server.add_generic_rpc_handlers(tuple(self._handler(s) for s in services))
        if credentials is not None:  # TLS only: a plaintext client cannot talk to it
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _handler(self, service):
        def unary(request, context):
            md = dict(context.invocation_metadata())
            self.messages.append(request)  # before seen: tests wait on seen
            self.seen.append(md)
            context.send_initial_metadata((("x-backend", self.name),) + self.initial_metadata)
            context.set_trailing_metadata((("x-trailer", "t-" + self.name),
                                           ("x-added-seen", md.get("x-added", "")),))
            return b"%s:%s" % (self.name.encode(), request)

        def stream(request, context):
            n = int(request or b"3")
            for i in range(n):
                yield b"msg-%d" % i
            context.set_trailing_metadata((("x-count", str(n)),))

        def fail(request, context):
            context.set_trailing_metadata((("x-why", "because"),))
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

        def slow(request, context):
            time.sleep(3)
            return b"late"

        def collect(request_iterator, context):
            # Client streaming: answers once the client half-closed.
            n, h = 0, hashlib.sha256()
            for m in request_iterator:
                n += 1
                h.update(m)
            return b"%d:%s" % (n, h.hexdigest().encode())

        def chat(request_iterator, context):
            # Bidirectional: one reply per message, sent as soon as it arrived.
            for m in request_iterator:
                yield b"echo:" + m
            context.set_trailing_metadata((("x-chat", "done"),))

        methods = {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, IDENTITY, IDENTITY),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, IDENTITY, IDENTITY),
            "Fail": grpc.unary_unary_rpc_method_handler(fail, IDENTITY, IDENTITY),
            "Slow": grpc.unary_unary_rpc_method_handler(slow, IDENTITY, IDENTITY),
            "Collect": grpc.stream_unary_rpc_method_handler(collect, IDENTITY, IDENTITY),
            "Chat": grpc.stream_stream_rpc_method_handler(chat, IDENTITY, IDENTITY),
        }
        return grpc.method_handlers_generic_handler(service, methods)

    def stop(self):
        self.server.stop(0)


def routes_yaml():
    return """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: test.Echo}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: x-added, value: by-gateway}]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-resp, value: from-route}]
    backendRefs: [{name: grpc-a, port: 80}]
  - matches:
    - method: {service: test.Other, method: Unary}
      headers: [{name: x-version, value: v2}]
    backendRefs: [{name: grpc-b, port: 80}]
  - matches: [{method: {service: test.Down}}]
    backendRefs: [{name: grpc-down, port: 80}]
  - matches: [{method: {service: test.Empty}}]
    backendRefs: [{name: grpc-empty, port: 80}]
  - matches: [{method: {service: test.Mods}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: set-by-gateway}]
        add: [{name: x-add, value: added-by-gateway}]
        remove: [x-remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: x-resp-set, value: set-by-gateway}]
        add: [{name: x-resp-add, value: added-by-gateway}]
        remove: [x-backend-secret]
    backendRefs: [{name: grpc-mods, port: 80}]
  - matches: [{method: {service: test.Mirrored}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: grpc-mirror, port: 80}}
    backendRefs: [{name: grpc-primary, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: grpc-empty, namespace: default}
spec:
  ports: [{name: p, port: 80, targetPort: 9, protocol: TCP}]
---
"""


@unittest.skipIf(grpc is None, "python3-grpcio not installed")
class GrpcTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(BIN):
            raise unittest.SkipTest("archway binary not built: " + BIN)
        cls.a = Backend("a")
        cls.b = Backend("b")
        cls.mods = Backend("mods", services=("test.Mods",),
                           initial_metadata=(("x-resp-set", "set-by-backend"),
                                             ("x-backend-secret", "hidden")))
        cls.primary = Backend("primary", services=("test.Mirrored",))
        cls.mirror = Backend("mirror", services=("test.Mirrored",))
        cls.dir = tempfile.mkdtemp(prefix="archway-grpc-")
        cls.port = free_port()
        manifests.write(os.path.join(cls.dir, "all.yaml"),
                        manifests.http_gateway(cls.port),
                        # No appProtocol on grpc-a: a GRPCRoute backend is HTTP/2 regardless.
                        manifests.service("grpc-a", cls.a.port),
                        manifests.service("grpc-b", cls.b.port, app_protocol=H2C),
                        manifests.service("grpc-down", free_port(), app_protocol=H2C),
                        manifests.service("grpc-mods", cls.mods.port, app_protocol=H2C),
                        manifests.service("grpc-primary", cls.primary.port, app_protocol=H2C),
                        manifests.service("grpc-mirror", cls.mirror.port, app_protocol=H2C),
                        routes_yaml())
        cls.gw = procs.Archway(cls.dir)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.gw.stop()
        for b in (cls.a, cls.b, cls.mods, cls.primary, cls.mirror):
            b.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        if rc not in (0, None):
            raise AssertionError("archway exited with %s:\n%s" % (rc, cls.gw.output()))

    def unary(self, method):
        return self.channel.unary_unary(method, request_serializer=IDENTITY,
                                        response_deserializer=IDENTITY)

    def test_unary_with_metadata_and_trailers(self):
        resp, call = self.unary("/test.Echo/Unary").with_call(b"hello", timeout=10,
                                                              metadata=(("x-client", "c1"),))
        self.assertEqual(resp, b"a:hello")
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        self.assertEqual(initial.get("x-backend"), "a")
        self.assertEqual(initial.get("x-resp"), "from-route")
        self.assertEqual(trailing.get("x-trailer"), "t-a")
        # The request header modifier reached the backend.
        self.assertEqual(trailing.get("x-added-seen"), "by-gateway")
        self.assertEqual(self.a.seen[-1].get("x-client"), "c1")

    def test_request_header_modifier_set_add_remove(self):
        before = len(self.mods.seen)
        resp, call = self.unary("/test.Mods/Unary").with_call(
            b"m", timeout=10, metadata=(("x-set", "from-client"), ("x-remove", "gone"),
                                        ("x-keep", "kept")))
        self.assertEqual(resp, b"mods:m")
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertEqual(len(self.mods.seen), before + 1)
        seen = self.mods.seen[-1]
        self.assertEqual(seen.get("x-set"), "set-by-gateway")  # replaced, not appended
        self.assertEqual(seen.get("x-add"), "added-by-gateway")
        self.assertNotIn("x-remove", seen)
        self.assertEqual(seen.get("x-keep"), "kept")

    def test_response_header_modifier_set_add_remove(self):
        resp, call = self.unary("/test.Mods/Unary").with_call(b"r", timeout=10)
        self.assertEqual(resp, b"mods:r")
        initial = list(call.initial_metadata())
        names = [k for k, _ in initial]
        self.assertEqual(dict(initial).get("x-backend"), "mods")
        self.assertEqual([v for k, v in initial if k == "x-resp-set"], ["set-by-gateway"])
        self.assertEqual(dict(initial).get("x-resp-add"), "added-by-gateway")
        self.assertNotIn("x-backend-secret", names)
        # Trailers are not response headers: the backend's pass through unchanged.
        self.assertEqual(dict(call.trailing_metadata()).get("x-trailer"), "t-mods")

    def test_request_mirror(self):
        mirrored_before = len(self.mirror.seen)
        primary_before = len(self.primary.seen)
        for i in range(3):
            resp, call = self.unary("/test.Mirrored/Unary").with_call(
                b"copy-%d" % i, timeout=10, metadata=(("x-call", str(i)),))
            # The client gets the primary's reply, never the mirror's.
            self.assertEqual(resp, b"primary:copy-%d" % i)
            self.assertEqual(dict(call.initial_metadata()).get("x-backend"), "primary")
        self.assertEqual(len(self.primary.seen), primary_before + 3)
        # The copies are fire-and-forget: wait for them to arrive.
        deadline = time.time() + 20
        while len(self.mirror.seen) < mirrored_before + 3 and time.time() < deadline:
            time.sleep(0.05)

        calls = sorted(md.get("x-call") for md in self.mirror.seen[mirrored_before:])
        self.assertEqual(calls, ["0", "1", "2"])
        self.assertEqual(sorted(self.mirror.messages[mirrored_before:]),
                         [b"copy-0", b"copy-1", b"copy-2"])

    def test_mirrored_route_keeps_bidi_streaming_interactive(self):
        # Before a mirror the gateway waits for the first whole message only: a chat-style
        # call still works; its request stream is not complete, so it is not mirrored and
        # that is counted.
        def skipped():
            return self.gw.metric("archway_listener_mirrors_skipped_total", listener="http",
                                  reason="streamed_body")

        before = skipped()
        chat_interactively(self, self.channel, "/test.Mirrored/Chat",
                           [b"m-%d" % i for i in range(3)])
        self.assertEqual(skipped() - before, 1)

    def test_server_streaming(self):
        call = self.channel.unary_stream("/test.Echo/Stream", request_serializer=IDENTITY,
                                         response_deserializer=IDENTITY)(b"5", timeout=10)
        msgs = list(call)
        self.assertEqual(msgs, [b"msg-%d" % i for i in range(5)])
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertEqual(dict(call.trailing_metadata()).get("x-count"), "5")

    def test_backend_error_status_passes_through(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/test.Echo/Fail")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(cm.exception.details(), "no such thing")
        self.assertEqual(dict(cm.exception.trailing_metadata()).get("x-why"), "because")

    def test_header_match(self):
        resp = self.unary("/test.Other/Unary")(b"x", timeout=10, metadata=(("x-version", "v2"),))
        self.assertEqual(resp, b"b:x")
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/test.Other/Unary")(b"x", timeout=10, metadata=(("x-version", "v1"),))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_unmatched_service_is_unimplemented(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/nope.Service/Method")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_backend_down_is_unavailable(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/test.Down/Call")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_no_endpoints_is_unavailable(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.unary("/test.Empty/Call")(b"", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

    def test_concurrent_calls_share_connections(self):
        results = []

        def call(i):
            results.append(self.unary("/test.Echo/Unary")(b"%d" % i, timeout=20))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(results), sorted(b"a:%d" % i for i in range(40)))

    def test_client_streaming(self):
        # 300 KiB in 30 messages: past the gateway's first buffer and several h2 windows,
        # so the request streams with flow control both sides of the gateway.
        msgs = [bytes([65 + i % 26]) * 10240 for i in range(30)]
        call = self.channel.stream_unary("/test.Echo/Collect", request_serializer=IDENTITY,
                                         response_deserializer=IDENTITY)
        resp = call(iter(msgs), timeout=20)
        digest = hashlib.sha256(b"".join(msgs)).hexdigest().encode()
        self.assertEqual(resp, b"30:" + digest)
        # A small client stream (fits the first buffer) too.
        self.assertEqual(call(iter([b"x", b"y"]), timeout=20),
                         b"2:" + hashlib.sha256(b"xy").hexdigest().encode())

    def test_bidi_streaming_is_interactive(self):
        call = chat_interactively(self, self.channel, "/test.Echo/Chat",
                                  [b"hello-%d" % i for i in range(5)])
        self.assertEqual(dict(call.trailing_metadata()).get("x-chat"), "done")

    def test_bidi_streaming_large_messages(self):
        # Messages larger than a stream window, interleaved both ways.
        chat_interactively(self, self.channel, "/test.Echo/Chat",
                           [bytes([97 + i]) * (200 * 1024) for i in range(4)], timeout=20)

    def test_trailers_only_and_grpc_timeout_on_the_wire(self):
        # Raw HTTP/2 so the gateway, not the client library, decides the outcome.
        c = H2Client(self.port)
        self.addCleanup(c.close)
        grpc_headers = [("content-type", "application/grpc"), ("te", "trailers")]
        sid = c.request("/nope.Service/M", method="POST", headers=grpc_headers,
                        body=grpc_frame(b""))
        headers, body, trailers, _ = c.response(sid)
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(headers.get("grpc-status"), "12")
        self.assertEqual(body, b"")
        # grpc-timeout is enforced by the gateway: the backend sleeps 3 s.
        sid = c.request("/test.Echo/Slow", method="POST",
                        headers=grpc_headers + [("grpc-timeout", "300m")], body=grpc_frame(b""))
        headers, body, trailers, _ = c.response(sid)
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(headers.get("grpc-status"), "4")
        # A normal call over the same connection: trailers carry the status.
        sid = c.request("/test.Echo/Unary", method="POST", headers=grpc_headers,
                        body=grpc_frame(b"raw"))
        headers, body, trailers, _ = c.response(sid)
        self.assertEqual(headers[":status"], "200")
        self.assertEqual(body, grpc_frame(b"a:raw"))
        self.assertEqual(trailers.get("grpc-status"), "0")
        self.assertEqual(trailers.get("x-trailer"), "t-a")


if __name__ == "__main__":
    unittest.main(verbosity=2)
