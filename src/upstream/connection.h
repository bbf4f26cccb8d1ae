// One upstream HTTP/1.1 connection: request serialization and response parsing
// (http::h1::ResponseParser). Owned by a worker; pooled per endpoint by upstream::Pool. An h2c
// connection for kH2c backends will sit beside this class behind the same Pool seam.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "http/h1/response_parser.h"
#include "http/message.h"
#include "http/stream.h"
#include "net/byte_stream.h"
#include "net/read_buffer.h"
#include "runtime/timed.h"
#include "snapshot/snapshot.h"
#include "stats/stats.h"

namespace archway::upstream {

class Pool;

enum class UpstreamError {
  kNone,
  kConnectFailed,  // nothing was sent: safe to retry anywhere
  kReset,          // connection failed after the request was (partly) sent
  kTimeout,        // our deadline fired
  kProtocol,       // malformed/oversized response
  kDownstream,     // the client went away while we streamed to it
};

class Connection : public runtime::Timed {
 public:
  Connection(asio::io_context& io, runtime::TimedList* timers, stats::BackendStats* stats);
  ~Connection() override;

  asio::ip::tcp::socket& socket() { return transport_->tcp(); }
  bool secure() const { return transport_->secure(); }
  Pool* pool = nullptr;
  bool reused = false;  // came from the idle pool (a failure may just be a stale socket)

  http::Awaitable<std::error_code> connect(const asio::ip::tcp::endpoint& ep);
  // TLS to the backend (BackendTLSPolicy) after connect(): SNI, verification, handshake.
  http::Awaitable<std::error_code> startTls(asio::ssl::context& ctx,
                                            const snapshot::BackendTls& tls);

  // Sends the request. `upgrade` non-empty adds "connection: upgrade" + "upgrade: <v>".
  http::Awaitable<UpstreamError> writeRequest(const http::RequestHead& request,
                                              std::string_view body, std::string_view upgrade);
  // A streamed request body (see HttpProxy): sends the head — content-length when
  // `length` is known, chunked transfer coding otherwise — with the body bytes read so
  // far; writeBody sends the rest as it arrives (`end`: the body is complete). Each write
  // completes before the next downstream read, which paces the client.
  http::Awaitable<UpstreamError> writeStreamingHead(const http::RequestHead& request,
                                                    std::optional<uint64_t> length,
                                                    std::string_view first, bool end);
  http::Awaitable<UpstreamError> writeBody(std::string_view data, bool end);
  // Reads the response head (1xx other than 101 are skipped). `headRequest`: no body follows.
  http::Awaitable<UpstreamError> readHead(http::ResponseHead& head, bool headRequest);
  // Streams the body to `sink` (null: discard). Call after readHead.
  http::Awaitable<UpstreamError> readBody(http::ServerStream* sink);
  // Bytes received after a 101 head (belong to the tunnel).
  std::string_view leftover() const;

  bool keepAlive() const { return parser_.keepAlive() && parser_.complete() && !failed_; }
  bool receivedAny() const { return receivedAny_; }
  // Aborts whatever is in progress (route timeouts); pending operations fail with kTimeout.
  void abortTimeout();
  void close();
  // Resets per-exchange state before reuse.
  void resetExchange();

 protected:
  void onDeadline() override;

 private:
  // Runs the parser over buffered bytes; false on a parse error.
  bool execute();
  http::Awaitable<UpstreamError> readMore();
  // Writes what a direct write (ByteStream::tryWriteNow) left of `bufs` after `sent` bytes.
  http::Awaitable<UpstreamError> writeRest(std::span<const asio::const_buffer> bufs, size_t sent);

  std::unique_ptr<net::ByteStream> transport_;
  stats::BackendStats* stats_;
  http::h1::ResponseParser parser_;
  net::ReadBuffer buf_;
  size_t pos_ = 0, end_ = 0;
  std::string wbuf_;
  bool chunkedRequest_ = false;  // the streamed request body uses chunked coding
  char chunkLine_[24];

  bool failed_ = false;
  bool timedOut_ = false;
  bool receivedAny_ = false;
  bool eof_ = false;
  bool counted_ = false;
};

// Idle keep-alive connections to one endpoint, owned by one worker.
class Pool {
 public:
  Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint);
  // A pool whose connections speak TLS to the endpoint (BackendTLSPolicy). A policy that
  // cannot be honoured (bad CA, invalid) makes every acquire fail: traffic gets a 5xx.
  Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint,
       std::shared_ptr<const snapshot::BackendTls> tls);
  ~Pool();

  // An idle connection that still looks usable, or null (no coroutine: the common case
  // under load costs no frame). The check for a close by the backend is a recv(MSG_PEEK)
  // system call; `skipRecentProbe` lets a caller that can replay the request for free on a
  // dead connection (see HttpProxy::forward) skip it for connections released within
  // kIdleProbeAfter: under steady traffic that saves one system call per request.
  std::unique_ptr<Connection> takeIdle(bool skipRecentProbe = false);
  // An idle connection, or a freshly connected one. On failure returns null and the error.
  http::Awaitable<std::unique_ptr<Connection>> acquire(stats::BackendStats* stats,
                                                       std::error_code* error);
  // Closes every idle connection the backend has closed (a reused one just failed: the
  // backend may have restarted, and a close can race the probe in takeIdle).
  void pruneClosed();
  // Returns a connection after a complete exchange; closes it if not reusable.
  void release(std::unique_ptr<Connection> connection);
  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }
  size_t idleCount() const { return idle_.size(); }
  void closeIdle();
  // The client TLS context of a TLS pool (null: plain pool, or a policy that cannot be
  // honoured). L4 relays that re-encrypt use it so the context is built once per worker.
  asio::ssl::context* tlsContext() const { return tlsContext_.get(); }

 private:
  asio::io_context& io_;
  runtime::TimedList* timers_;
  asio::ip::tcp::endpoint endpoint_;
  std::shared_ptr<const snapshot::BackendTls> tls_;
  std::shared_ptr<asio::ssl::context> tlsContext_;  // null with tls_ set: unusable policy
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace archway::upstream
