// The seam between codecs and the proxy. A codec (HTTP/1 in src/http/h1, HTTP/2 later in
// src/http/h2) turns the wire into ServerStreams; the proxy (src/proxy) serves each stream
// without knowing the protocol. One ServerStream is one request/response exchange.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

#include "http/message.h"

namespace archway::http {

template <typename T>
using Awaitable = asio::awaitable<T>;

// Completion token for coroutines that must not throw: errors come back as values.
inline constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Facts about the downstream connection a stream arrived on.
struct ConnectionInfo {
  std::string remoteAddress;  // client IP
  uint16_t remotePort = 0;
  std::string localAddress;
  uint16_t localPort = 0;       // the Gateway listener port
  std::string scheme = "http";  // "https" once TLS terminates downstream
  std::string sni;              // TLS server name (HTTPS listeners)
};

enum class BodyResult { kOk, kTooLarge, kError };

class ServerStream {
 public:
  virtual ~ServerStream() = default;

  virtual RequestHead& request() = 0;
  virtual const ConnectionInfo& connection() const = 0;

  // Request body, streamed: appends the body bytes the codec holds to `out` — waiting
  // for some when none are there and `wait` is set — and sets `end` once the body is
  // complete (possibly together with its last bytes). The codec buffers little ahead of
  // the caller (one read buffer for HTTP/1.1, one stream window for HTTP/2, whose window
  // re-opens only as bytes are taken), so a slow consumer slows the client. Sends
  // "100 Continue" first when the client asked for it (and `wait` is set). kTooLarge
  // once net::kMaxRequestBodyBytes passed (or a Content-Length said so); kError when the
  // client went away, stalled past net::kBodyReadTimeout, sent a malformed body, or
  // abortBodyRead() was called.
  virtual Awaitable<BodyResult> readBodySome(std::string& out, bool& end, bool wait) = 0;
  // The body length the client declared (Content-Length), if any.
  virtual std::optional<uint64_t> declaredBodyLength() const = 0;
  // Wakes a pending readBodySome (and fails later ones) with kError: the request is
  // being abandoned (route timeout, upstream gone).
  virtual void abortBodyRead() = 0;

  // Sends the response head. `endStream` means no body follows. Returns false when the
  // client is gone.
  virtual Awaitable<bool> sendHead(ResponseHead& head, bool endStream) = 0;
  // Sends body bytes (gathered); `endStream` ends the response.
  virtual Awaitable<bool> sendBody(std::span<const asio::const_buffer> data, bool endStream) = 0;
  virtual bool headSent() const = 0;
  // Ends the response with trailers (gRPC status). Codecs that cannot carry trailers
  // (HTTP/1.1 without a chunked body) end the body and drop them.
  virtual Awaitable<bool> sendTrailers(const HeaderMap& trailers) {
    (void)trailers;
    co_return co_await sendBody({}, true);
  }

  // True when the request asked to switch protocols (HTTP/1.1 Upgrade) and the codec can
  // relay raw bytes after a 101.
  virtual bool upgradeRequested() const = 0;
  // After a 101 head was sent: relays bytes between the client and `upstream` until
  // either side closes or the tunnel idles out. `upstreamLeftover` holds bytes the
  // upstream sent right after its 101.
  virtual Awaitable<void> tunnel(asio::ip::tcp::socket& upstream,
                                 std::string_view upstreamLeftover) = 0;

  // The response being produced is the last one on this connection.
  virtual void closeAfterResponse() = 0;
};

// Sends a complete gateway-generated response (text/plain body).
Awaitable<bool> sendLocalReply(ServerStream& stream, int status, std::string_view body,
                               const HeaderMap* extraHeaders = nullptr);

}  // namespace archway::http
