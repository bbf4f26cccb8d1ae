// Every limit and timeout of the data plane, in one place. Each value names the peer
// defaults it was chosen against (Envoy / nginx / HAProxy / h2o) so a reviewer can see why.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace archway::net {

using std::chrono::milliseconds;
using std::chrono::seconds;

// --- HTTP/1 request head -----------------------------------------------------------------
// Bytes of request line + headers. Envoy max_request_headers_kb 60 KiB; nginx 4x8 KiB
// large_client_header_buffers; HAProxy tune.bufsize 16 KiB. Larger -> 431.
inline constexpr size_t kMaxRequestHeaderBytes = 60 * 1024;
// Header fields per request. Envoy 100; HAProxy tune.http.maxhdr 101; nginx unbounded.
inline constexpr size_t kMaxRequestHeaders = 100;
// Request bodies stream to the upstream as they arrive (flow control both ways), so the
// limit below bounds what one request may send, not memory. A body complete within
// kRequestBodyBufferBytes is buffered first (it can be retried and mirrored); a larger or
// unfinished one streams (no retry once bytes went upstream; mirrors skipped).
// nginx: client_max_body_size 1 MiB (413), buffered to disk past client_body_buffer_size
// 8-16 KiB unless proxy_request_buffering off; HAProxy: no body limit (streams; buffers
// only with "option http-buffer-request", up to tune.bufsize); Envoy: no limit for a
// streamed body (buffering filters cap at their own max_request_bytes). Gateways in front
// of uploads (images, artifacts, backups) are expected not to cut them, so the cap is a
// generous 1 GiB: 413 when a Content-Length says more up front, a reset (HTTP/2) or close
// (HTTP/1.1) when a body without one passes it mid-stream.
inline constexpr uint64_t kMaxRequestBodyBytes = uint64_t{1} << 30;
// The limit in force: `archway run --max-request-body-bytes` sets it once at start-up,
// before any worker runs (workers only read it).
inline uint64_t requestBodyLimit = kMaxRequestBodyBytes;
// Bytes of a request body read before the upstream exchange starts: a body that ends
// within it is buffered whole (retries, mirrors); past it the request streams. nginx
// client_body_buffer_size 16 KiB; Envoy per-connection buffer 1 MiB (edge guide 32 KiB).
// gRPC over HTTP/2 does not wait for it: streaming RPCs must flow from the first message.
inline constexpr size_t kRequestBodyBufferBytes = 64 * 1024;
// Time to receive a complete request head once its first byte arrived (slowloris) -> 408.
// nginx client_header_timeout 60 s; h2o 10 s; HAProxy "timeout http-request" (a few s).
inline constexpr milliseconds kHeaderReadTimeout = seconds(10);
// Longest pause between two reads of a request body (also while streaming it upstream).
// nginx client_body_timeout 60 s.
inline constexpr milliseconds kBodyReadTimeout = seconds(60);
// Longest pause of a request body that still streams while its response streams too
// (gRPC bidirectional calls: a client may listen for minutes between its messages).
// Envoy stream_idle_timeout 5 min; nginx grpc_read_timeout/grpc_send_timeout 60 s.
inline constexpr milliseconds kStreamingBodyIdleTimeout = seconds(300);
// Idle keep-alive connection with no request in progress. nginx keepalive_timeout 75 s;
// Envoy idle_timeout 1 h; h2o 10 s. We close after 60 s.
inline constexpr milliseconds kKeepAliveIdleTimeout = seconds(60);
// The value in force: `archway run --idle-timeout` sets it once at start-up, before any
// worker runs (workers only read it).
inline milliseconds keepAliveIdleTimeout = kKeepAliveIdleTimeout;
// Longest stall while writing to a client. nginx send_timeout 60 s.
inline constexpr milliseconds kDownstreamWriteTimeout = seconds(60);
// Requests served on one connection before it is closed. nginx keepalive_requests 1000;
// Envoy/HAProxy unlimited. We use 10000 to keep benchmarks representative yet bounded.
inline constexpr uint32_t kMaxRequestsPerConnection = 10000;
// Downstream connections across all workers. Envoy edge guidance 50000 global; HAProxy
// maxconn (default derived from ulimit); nginx worker_connections 512 per worker.
inline constexpr uint32_t kMaxDownstreamConnections = 50000;
// The value in force (`archway run --max-connections`, set at start-up; split evenly across
// workers, at least one each). Over it, a new connection is accepted and closed at once.
inline uint32_t maxDownstreamConnections = kMaxDownstreamConnections;
// Lingering close: after our last response, keep reading (and dropping) what the client
// still sends for this long / this many bytes, so unread request bytes do not turn our
// close into a RST that destroys the response; also the wait for a TLS client's
// close_notify. nginx lingering_time 30 s / lingering_timeout 5 s; Envoy
// delayed_close_timeout 1 s. The byte bound is far below the streamed body limit: a client
// still uploading a large rejected body is cut off rather than drained.
inline constexpr milliseconds kLingerTimeout = seconds(2);
inline constexpr size_t kLingerMaxBytes = 16 * 1024 * 1024;
// Read buffer per downstream connection (grows up to kMaxRequestHeaderBytes for heads).
// Envoy edge guidance: 32 KiB per-connection buffer limit; nginx 1 KiB then 8 KiB.
inline constexpr size_t kDownstreamReadBuffer = 16 * 1024;

// --- Upstream ----------------------------------------------------------------------------
// TCP connect to an endpoint. Envoy cluster connect_timeout 5 s (edge guide 15 s);
// nginx proxy_connect_timeout 60 s; HAProxy "timeout connect" (commonly 5 s).
inline constexpr milliseconds kUpstreamConnectTimeout = seconds(5);
// Longest pause while waiting for/reading an upstream response when the route sets no
// timeout. nginx proxy_read_timeout 60 s; Envoy route timeout 15 s (whole response).
inline constexpr milliseconds kUpstreamReadTimeout = seconds(60);
// Idle pooled upstream connection lifetime. Envoy idle_timeout 1 h; nginx
// keepalive_timeout (upstream) 60 s. Kept short so backends closing first is rare.
inline constexpr milliseconds kUpstreamIdleTimeout = seconds(30);
// The value in force (`archway run --upstream-idle-timeout`, set at start-up).
inline milliseconds upstreamIdleTimeout = kUpstreamIdleTimeout;
// A pooled connection released less than this long ago is reused without first checking
// (recv MSG_PEEK) whether the backend closed it, when the request can be replayed for free
// on a dead connection. Backends close idle keep-alive connections after seconds (Node.js
// 5 s, Apache 5 s, gunicorn 2 s), so under steady traffic the check nearly always passes;
// nginx and haproxy make no such check per request either.
inline constexpr milliseconds kIdleProbeAfter = milliseconds(1000);
// Idle connections kept per endpoint per worker. nginx "keepalive 32" is the usual
// setting; Envoy and haproxy keep every one (Envoy's max_connections breaker: 1024). With
// 64, more concurrent requests than that to one endpoint closed the surplus after each
// response, and the next burst paid a new connection per request (41 % of requests at
// 256 client connections in the benchmark). Idle ones still expire after
// kUpstreamIdleTimeout.
inline constexpr size_t kMaxIdleUpstreamPerEndpoint = 1024;
// Read buffer per upstream connection. nginx proxy_buffer_size 4-8 KiB; Envoy 32 KiB.
inline constexpr size_t kUpstreamReadBuffer = 32 * 1024;
// Upstream response head bytes (status line + headers). nginx proxy_buffer_size;
// Envoy max_response_headers_kb 60 KiB. Larger -> 502.
inline constexpr size_t kMaxResponseHeaderBytes = 60 * 1024;
// Idle time of a relayed Upgrade (WebSocket) tunnel. nginx proxy_read_timeout 60 s;
// Envoy stream_idle_timeout 5 min.
inline constexpr milliseconds kTunnelIdleTimeout = seconds(300);

// --- HTTP/2 (downstream and upstream) ----------------------------------------------------
// Concurrent streams a client may open. HAProxy fe.max-concurrent-streams 100; proxygen 100;
// Envoy edge guide 100; nginx 128.
inline constexpr uint32_t kH2MaxConcurrentStreams = 100;
// Stream and connection receive windows. Envoy edge guide 64 KiB / 1 MiB (its defaults are
// 256 MiB); nghttp2 default 64 KiB - 1 for both.
inline constexpr int32_t kH2StreamWindow = 64 * 1024;
inline constexpr int32_t kH2ConnectionWindow = 1024 * 1024;
// Upstream (gateway as client) windows: the stream window bounds what one response may
// buffer here while the client reads slowly (we only re-open it as the client consumes).
inline constexpr int32_t kH2UpstreamStreamWindow = 256 * 1024;
inline constexpr int32_t kH2UpstreamConnectionWindow = 16 * 1024 * 1024;
// Header list (decoded names + values + 32 per field, RFC 9113 6.5.2) of one request.
// Same budget as HTTP/1 (kMaxRequestHeaderBytes, Envoy 60 KiB); larger -> 431.
inline constexpr uint32_t kH2MaxHeaderListSize = 60 * 1024;
// CONTINUATION frames per header block (CVE-2024-28182). nghttp2 default 8; Envoy relies on
// the header list size.
inline constexpr size_t kH2MaxContinuations = 8;
// Queued SETTINGS/PING ACKs before the connection is dropped (SETTINGS and PING floods,
// CVE-2019-9512/9515). Envoy max_outbound_control_frames 1000; nghttp2 default 1000.
inline constexpr size_t kH2MaxOutboundAcks = 1000;
// Entries in one SETTINGS frame. nghttp2 default 32.
inline constexpr size_t kH2MaxSettingsEntries = 32;
// Rapid Reset (CVE-2023-44487): streams a client may reset (RST_STREAM, or streams nghttp2
// refused) as a token bucket: burst, then per second. nghttp2's own default is 1000 / 33;
// we are stricter because each reset stream may have started upstream work. Past the
// budget the connection gets GOAWAY(ENHANCE_YOUR_CALM).
inline constexpr uint32_t kH2ResetBurst = 200;
inline constexpr uint32_t kH2ResetRatePerSecond = 50;
// Streams whose handler is still running after the client reset them; past this (plus the
// concurrency limit) new streams are refused so resets cannot pile up upstream work.
inline constexpr uint32_t kH2MaxZombieStreams = 100;
// Response bytes buffered per stream ahead of the client's flow-control window before the
// producer (upstream read) waits. Envoy per-stream buffer limit 1 MiB (edge guide 32 KiB).
inline constexpr size_t kH2StreamSendBuffer = 64 * 1024;
// Upstream h2 connections per endpoint per worker (each multiplexes streams up to the
// backend's SETTINGS_MAX_CONCURRENT_STREAMS, capped here). Envoy opens one per worker.
inline constexpr size_t kH2MaxUpstreamConnectionsPerEndpoint = 8;
inline constexpr uint32_t kH2MaxUpstreamStreamsPerConnection = 100;
// Wait for the first bytes of a connection to tell h2c (prior knowledge) from HTTP/1.
// Same as the HTTP/1 header-read budget.
inline constexpr milliseconds kProtocolDetectTimeout = seconds(10);

// --- TLS and L4 (TCP, UDP, TLS passthrough) ------------------------------------------------
// Time for a client to send its complete ClientHello on an HTTPS/TLS port. Envoy
// listener_filters_timeout 15 s; nginx ssl_preread (preread_timeout) 30 s.
inline constexpr milliseconds kTlsClientHelloTimeout = seconds(10);
// Time to complete the TLS handshake after the ClientHello. nginx ssl_handshake_timeout
// 60 s; HAProxy "timeout client"; Envoy transport_socket_connect_timeout unset.
inline constexpr milliseconds kTlsHandshakeTimeout = seconds(10);
// A relayed TCP/TLS stream with no bytes either way for this long is closed. Envoy
// tcp_proxy idle_timeout 1 h; nginx stream proxy_timeout 10 min; HAProxy "timeout tunnel".
inline constexpr milliseconds kTcpIdleTimeout = std::chrono::minutes(10);
// The value in force (`archway run --tcp-idle-timeout`, set at start-up, before any worker
// runs; workers only read it).
inline milliseconds tcpIdleTimeout = kTcpIdleTimeout;
// Relay buffer per direction. nginx stream proxy_buffer_size 16 KiB.
inline constexpr size_t kL4BufferBytes = 16 * 1024;
// A plain TCP direction that fills the relay buffer in one read is bulk traffic: from then
// on it is moved socket -> pipe -> socket by splice(2), in chunks of up to this many bytes
// per call, without copying through user space. HAProxy "option splice-auto" (off by
// default) does the same; nginx stream always copies. 256 KiB stays under Linux's default
// pipe-max-size (1 MiB); a pipe that cannot be enlarged keeps its 64 KiB default.
inline constexpr size_t kSplicePipeBytes = 256 * 1024;
// Endpoints tried before a relayed connection is given up. Envoy tcp_proxy
// max_connect_attempts 1; nginx proxy_next_upstream_tries 0 (all). We try a few.
inline constexpr int kL4ConnectAttempts = 3;
// Connections a plain TCP port accepts per loop turn before serving other work.
inline constexpr int kAcceptBatch = 64;
// A UDP session (client address -> upstream socket) idle this long is removed. Envoy
// udp_proxy idle_timeout 60 s; nginx proxy_timeout 10 min.
inline constexpr milliseconds kUdpSessionIdleTimeout = seconds(60);
// The value in force (`archway run --udp-idle-timeout`, set at start-up).
inline milliseconds udpSessionIdleTimeout = kUdpSessionIdleTimeout;
// Sessions per UDP listener port; beyond it the least recently used session is evicted,
// so a flood of distinct sources costs bounded memory. Envoy: unbounded (overload manager).
inline constexpr size_t kMaxUdpSessionsPerPort = 16384;
// Largest datagram relayed (IPv4 UDP payload maximum).
inline constexpr size_t kMaxUdpDatagramBytes = 65507;
// Datagrams moved per recvmmsg/sendmmsg call. Each slot reserves kMaxUdpDatagramBytes of
// address space per direction and listener, but only the pages datagrams touch are used.
inline constexpr unsigned kUdpBatchDatagrams = 32;
// Batches a UDP socket is read for before the loop serves other work (fairness).
inline constexpr int kUdpBatchesPerTurn = 8;

// --- Process -----------------------------------------------------------------------------
// Graceful stop: in-flight requests get this long after SIGTERM. Envoy drain 600 s
// (--drain-time-s), nginx worker_shutdown_timeout unset; Kubernetes grace period 30 s.
inline constexpr milliseconds kGracefulStopTimeout = seconds(10);
// Granularity of the per-worker timeout sweep (connection deadlines).
inline constexpr milliseconds kTimeoutSweepInterval = milliseconds(100);
// Coalescing delay for file-system change bursts before re-translating, while a manifest is
// being written (modified and not yet closed).
inline constexpr milliseconds kFileWatchDebounce = milliseconds(100);
// The same once every written manifest was closed or renamed into place (an atomic save, a
// `cp`, an editor's write): only long enough to gather the rest of one burst of events.
inline constexpr milliseconds kFileWatchSettle = milliseconds(3);
// A file whose mtime is this close to the moment it was read may be written again within the
// file system's timestamp granularity without its (mtime, size) changing: such a file is
// read again (and compared) on the next reload instead of being trusted (git's "racy" rule).
inline constexpr milliseconds kFileWatchRacyWindow = seconds(2);
// A stream of changes that never pauses (a log written into a watched directory, a tool
// rewriting a file in a loop) still reloads at least this often.
inline constexpr milliseconds kFileWatchMaxDelay = seconds(1);
// Admin requests: head size and read timeout.
inline constexpr size_t kMaxAdminRequestBytes = 16 * 1024;
inline constexpr milliseconds kAdminReadTimeout = seconds(10);

}  // namespace archway::net
