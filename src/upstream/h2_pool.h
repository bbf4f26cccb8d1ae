// HTTP/2 upstream (h2c with prior knowledge, or h2 over TLS for backends with a
// BackendTLSPolicy) for Services whose port appProtocol is
// kubernetes.io/h2c and for every GRPCRoute backend: one nghttp2 client session per TCP
// connection, many streams multiplexed on it, a small set of connections per endpoint
// per worker (H2Pool).
//
// Request bodies either come whole (buffered, retryable) or stream: writeBody() queues
// bytes for the stream's data provider and waits while more than kH2StreamSendBuffer sit
// unsent (the backend's window decides), so the client is paced by the backend.
//
// Flow control: response DATA is only acknowledged (WINDOW_UPDATE) once it was handed to
// the downstream stream, so a slow client holds at most one stream window
// (kH2UpstreamStreamWindow) of a response here.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nghttp2/nghttp2.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "http/h2/event.h"
#include "http/message.h"
#include "http/stream.h"
#include "net/byte_stream.h"
#include "runtime/timed.h"
#include "snapshot/snapshot.h"
#include "stats/stats.h"
#include "upstream/connection.h"

namespace archway::upstream {

class H2Connection;

// One request/response exchange on an H2Connection.
class H2Exchange {
 public:
  ~H2Exchange();
  // Waits for the response head (interim 1xx skipped).
  http::Awaitable<UpstreamError> readHead(http::ResponseHead& head);
  // Streams DATA to `sink` (null: discard) and then trailers (sink->sendTrailers) or the
  // end of the body. Call after readHead.
  http::Awaitable<UpstreamError> readBody(http::ServerStream* sink);
  // Streamed request body (start() with bodyComplete false): queues `data` (`end`: the
  // body is complete) and waits until the backend took enough of it. False when the
  // stream is gone (reset, response ended and stream closed, timeout).
  http::Awaitable<bool> writeBody(std::string_view data, bool end);
  // The client side of a streamed request failed: reset the stream; a pending
  // readHead/readBody returns kDownstream.
  void abortRequest();
  // True when the response ended with the head (no DATA, e.g. gRPC trailers-only).
  bool endedWithHead() const { return endedWithHead_; }
  // Route/gRPC deadline passed: resets the stream; waiting calls return kTimeout.
  void abortTimeout();
  // True when nothing of the response arrived and the backend refused the stream
  // (REFUSED_STREAM / GOAWAY before processing): safe to retry elsewhere.
  bool refused() const { return refused_; }

 private:
  friend class H2Connection;
  explicit H2Exchange(std::shared_ptr<H2Connection> conn);
  static ssize_t readRequestBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                 uint32_t* flags, nghttp2_data_source* source, void*);
  void reset(uint32_t code);

  std::shared_ptr<H2Connection> conn_;
  int32_t id_ = -1;
  std::string body_;
  size_t bodyPos_ = 0;
  bool bodyEnd_ = true;        // body_ holds the rest of the request body
  bool bodyDeferred_ = false;  // the data provider ran dry (NGHTTP2_ERR_DEFERRED)
  http::ResponseHead head_;
  bool headReady_ = false;
  bool interim_ = false;
  std::deque<std::string> data_;  // received, not yet handed downstream
  size_t unconsumed_ = 0;         // bytes in data_ (not yet acknowledged upstream)
  std::optional<http::HeaderMap> trailers_;
  bool inTrailers_ = false;
  bool ended_ = false;   // END_STREAM received
  bool closed_ = false;  // nghttp2 closed the stream
  bool endedWithHead_ = false;
  bool refused_ = false;
  UpstreamError error_ = UpstreamError::kNone;
  http::h2::Event event_;      // response side (one waiter: the proxy's main coroutine)
  http::h2::Event bodyEvent_;  // request side (the body pump): room in body_, stream gone
};

class H2Connection : public runtime::Timed, public std::enable_shared_from_this<H2Connection> {
 public:
  H2Connection(asio::io_context& io, runtime::TimedList* timers, stats::BackendStats* stats);
  ~H2Connection() override;

  // TCP connect, then (with `tlsContext`) the TLS handshake with the policy's SNI and
  // verification, ALPN "h2".
  http::Awaitable<std::error_code> connect(const asio::ip::tcp::endpoint& ep,
                                           asio::ssl::context* tlsContext,
                                           const snapshot::BackendTls* tls);
  // Starts a stream; null when the connection cannot take one more. `bodyComplete`:
  // `body` is the whole request body; else more follows through writeBody (`length`:
  // the declared total, sent as content-length).
  std::unique_ptr<H2Exchange> submit(const http::RequestHead& request, std::string body,
                                     bool bodyComplete, std::optional<uint64_t> length);
  bool usable() const;
  bool idle() const { return exchanges_.empty(); }
  void close();

 protected:
  void onDeadline() override;

 private:
  friend class H2Exchange;
  friend class H2Pool;
  bool init();
  http::Awaitable<void> readLoop(std::shared_ptr<H2Connection> self);
  http::Awaitable<void> writeLoop(std::shared_ptr<H2Connection> self);
  void wantWrite() { writeEvent_.notify(); }
  void fail(UpstreamError e);
  H2Exchange* exchangeOf(int32_t id);

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t streamId, const uint8_t* data,
                         size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode, void* user);

  asio::io_context& io_;
  std::unique_ptr<net::ByteStream> stream_;
  stats::BackendStats* stats_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, H2Exchange*> exchanges_;
  http::h2::Event writeEvent_;
  bool connected_ = false;
  bool dead_ = false;
  bool goaway_ = false;
  bool timedOut_ = false;
};

// The h2 connections of one endpoint, owned by one worker.
class H2Pool {
 public:
  // `tls`: the backend's BackendTLSPolicy (null: h2c). A policy that cannot be honoured
  // makes every start() fail (no plaintext fallback).
  H2Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint,
         std::shared_ptr<const snapshot::BackendTls> tls = nullptr);
  ~H2Pool();
  // Opens a stream for `request` on a connection with room, connecting one if needed.
  // `bodyComplete`/`length` as for H2Connection::submit.
  http::Awaitable<std::unique_ptr<H2Exchange>> start(const http::RequestHead& request,
                                                     std::string body, bool bodyComplete,
                                                     std::optional<uint64_t> length,
                                                     stats::BackendStats* stats,
                                                     std::error_code* error);
  const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }

 private:
  asio::io_context& io_;
  runtime::TimedList* timers_;
  asio::ip::tcp::endpoint endpoint_;
  std::shared_ptr<const snapshot::BackendTls> tls_;
  std::shared_ptr<asio::ssl::context> tlsContext_;  // null with tls_ set: unusable policy
  std::vector<std::shared_ptr<H2Connection>> conns_;
};

}  // namespace archway::upstream
