// HTTP/1.1 downstream codec: one coroutine per client connection. Parses requests with
// RequestParser (llhttp in strict mode plus the framing rules llhttp leaves to us),
// serves them one at a time through the proxy (pipelined requests wait in the buffer and
// are answered in order), keeps connections alive, answers Expect: 100-continue, and
// relays raw bytes after a 101 (WebSocket).
//
// Seam: it is a http::ServerStream (one per request, reused) and a
// runtime::DownstreamConnection (so its worker can drain it). A TLS front end hands it an
// already-handshaken stream the same way (the socket type is the only difference).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "http/h1/request_parser.h"
#include "http/stream.h"
#include "net/byte_stream.h"
#include "net/read_buffer.h"
#include "runtime/timed.h"
#include "runtime/worker.h"

namespace archway::http::h1 {

class ServerConnection : public ServerStream,
                         public runtime::Timed,
                         public runtime::DownstreamConnection {
 public:
  ServerConnection(runtime::Worker& worker, asio::ip::tcp::socket socket, runtime::PortKey key);
  // Over a transport (plain, or TLS after the handshake; see http/dispatch.h).
  ServerConnection(runtime::Worker& worker, std::unique_ptr<net::ByteStream> transport,
                   runtime::PortKey key);
  ~ServerConnection() override;

  // Owns the connection for its whole life.
  static Awaitable<void> serve(std::unique_ptr<ServerConnection> connection);

  // ServerStream
  RequestHead& request() override { return parser_.request(); }
  const ConnectionInfo& connection() const override { return info_; }
  Awaitable<BodyResult> readBodySome(std::string& out, bool& end, bool wait) override;
  std::optional<uint64_t> declaredBodyLength() const override { return parser_.declaredLength(); }
  void abortBodyRead() override;
  Awaitable<bool> sendHead(ResponseHead& head, bool endStream) override;
  Awaitable<bool> sendBody(std::span<const asio::const_buffer> data, bool endStream) override;
  bool headSent() const override { return headSent_; }
  bool upgradeRequested() const override { return parser_.upgradeRequested(); }
  Awaitable<void> tunnel(asio::ip::tcp::socket& upstream,
                         std::string_view upstreamLeftover) override;
  void closeAfterResponse() override { closeAfter_ = true; }

  // DownstreamConnection
  void drain() override;
  const runtime::PortKey& portKey() const override { return key_; }

 protected:
  void onDeadline() override;

 private:
  enum class HeadResult { kOk, kClosed, kRejected };

  Awaitable<void> run();
  Awaitable<HeadResult> readHead();
  // Parses buffered bytes; returns an HTTP status to reject with (400, 413, 431) or 0.
  int execute();
  Awaitable<bool> readSome();
  Awaitable<void> sendError(int status);
  Awaitable<bool> writeAll(std::span<const asio::const_buffer> bufs);
  void resetRequest();

  runtime::Worker& worker_;
  std::unique_ptr<net::ByteStream> transport_;
  net::ByteStream& socket_;
  runtime::PortKey key_;
  ConnectionInfo info_;
  RequestParser parser_;
  net::ReadBuffer buf_;
  size_t pos_ = 0, end_ = 0;

  // Current request (the rest of its state is in parser_).
  bool bodyAborted_ = false;
  bool continueSent_ = false;

  // Current response.
  bool headSent_ = false;
  bool headPending_ = false;  // serialized in wbuf_, not yet written (coalesced with body)
  bool chunked_ = false;
  bool responseComplete_ = false;
  bool closeAfter_ = false;
  std::string wbuf_;
  std::vector<asio::const_buffer> iov_;
  char chunkLine_[24];

  std::shared_ptr<const runtime::RuntimeConfig> config_;  // config the cached port belongs to
  const runtime::CompiledPort* port_ = nullptr;
  stats::ListenerStats* portStats_ = nullptr;
  bool idle_ = true;  // waiting for the first byte of a request
  bool timedOut_ = false;
  bool draining_ = false;
  uint32_t served_ = 0;
};

}  // namespace archway::http::h1
