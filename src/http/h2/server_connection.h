// HTTP/2 downstream codec (nghttp2 server session, non-blocking, driven from coroutines).
//
// One read loop feeds nghttp2 (nghttp2_session_mem_recv); one write loop drains it
// (nghttp2_session_mem_send) to the transport. Each request stream becomes an h2::Stream
// (a http::ServerStream) served by the same proxy as HTTP/1.1, in its own coroutine.
// Flow control both ways: request bodies stream to the handler (readBodySome); a stream's
// window is re-opened (WINDOW_UPDATE) only for bytes the handler took, so at most one
// stream window (kH2StreamWindow) of a request waits here and a slow upstream slows the
// client; response bodies are handed to nghttp2 through a data provider and the producer waits
// while more than kH2StreamSendBuffer bytes sit unsent (the client's window decides).
//
// Abuse defences: nghttp2's own (CONTINUATION count, SETTINGS entries, queued ACKs for
// PING/SETTINGS floods, reset-rate limit) plus ours: a reset token bucket that ends the
// connection with GOAWAY(ENHANCE_YOUR_CALM) (Rapid Reset), a cap on streams whose handler
// still runs after a reset, header list size and count (431 on the stream).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <nghttp2/nghttp2.h>

#include "http/h2/event.h"
#include "http/stream.h"
#include "net/transport.h"
#include "runtime/timed.h"
#include "runtime/worker.h"

namespace archway::http::h2 {

class ServerConnection;

class Stream final : public ServerStream {
 public:
  Stream(ServerConnection& conn, int32_t id);

  RequestHead& request() override { return request_; }
  const ConnectionInfo& connection() const override;
  Awaitable<BodyResult> readBodySome(std::string& out, bool& end, bool wait) override;
  std::optional<uint64_t> declaredBodyLength() const override { return declaredLength_; }
  void abortBodyRead() override;
  Awaitable<bool> sendHead(ResponseHead& head, bool endStream) override;
  Awaitable<bool> sendBody(std::span<const asio::const_buffer> data, bool endStream) override;
  Awaitable<bool> sendTrailers(const HeaderMap& trailers) override;
  bool headSent() const override { return headSent_; }
  bool upgradeRequested() const override { return false; }
  Awaitable<void> tunnel(asio::ip::tcp::socket&, std::string_view) override { co_return; }
  void closeAfterResponse() override {}

 private:
  friend class ServerConnection;
  // nghttp2 data provider callback.
  static ssize_t readData(nghttp2_session* session, int32_t streamId, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* user);
  Awaitable<bool> waitDrained();
  void resumeData();
  // Drops buffered request bytes (and later ones) and returns them to the flow-control
  // windows: nobody will read them.
  void discardBody();

  ServerConnection& conn_;
  int32_t id_;
  RequestHead request_;
  std::string cookies_;     // h2 may split Cookie into crumbs; joined with "; " for HTTP/1
  std::string body_;        // received, not yet taken by readBodySome (window not re-opened)
  uint64_t bodyBytes_ = 0;  // received so far (the body limit)
  std::optional<uint64_t> declaredLength_;
  size_t headerBytes_ = 0;
  int rejectStatus_ = 0;  // 431 (header list), 400 (malformed)
  bool requestComplete_ = false;
  bool bodyTooLarge_ = false;
  bool closed_ = false;   // nghttp2 closed the stream (done or reset)
  bool running_ = false;  // the handler coroutine has not returned yet
  bool resetByPeer_ = false;
  bool discard_ = false;  // request bytes are consumed (window-wise) and dropped on arrival
  bool bodyAborted_ = false;

  bool headSent_ = false;
  bool responseEnded_ = false;  // our END_STREAM (or trailers) is queued
  std::string out_;
  size_t outPos_ = 0;
  bool outEnd_ = false;
  std::optional<HeaderMap> trailers_;
  bool deferred_ = false;
  Event event_;      // response side: send buffer drained, stream closed
  Event bodyEvent_;  // request side: body bytes, end of body, stream closed
};

class ServerConnection final : public runtime::Timed, public runtime::DownstreamConnection {
 public:
  // `initial`: bytes already read from the transport (protocol detection).
  ServerConnection(runtime::Worker& worker, std::unique_ptr<net::Transport> transport,
                   runtime::PortKey key, ConnectionInfo info);
  ~ServerConnection() override;

  static Awaitable<void> serve(std::unique_ptr<ServerConnection> connection, std::string initial);

  void drain() override;
  const runtime::PortKey& portKey() const override { return key_; }
  const ConnectionInfo& info() const { return info_; }
  runtime::Worker& worker() { return worker_; }
  nghttp2_session* session() { return session_; }
  // Something for the writer to send.
  void wantWrite() { writeEvent_.notify(); }

 protected:
  void onDeadline() override;

 private:
  friend class Stream;
  struct WriteTimer final : runtime::Timed {
    ServerConnection* owner = nullptr;
    void onDeadline() override { owner->onWriteTimeout(); }
  };

  bool init();
  Awaitable<void> run(std::string initial);
  Awaitable<void> writeLoop();
  Awaitable<void> serveStream(Stream* stream);
  bool feed(const uint8_t* data, size_t len);
  void onWriteTimeout();
  void finishIfIdle();
  void streamDone(Stream* s);
  bool takeResetToken();
  void calm();  // GOAWAY(ENHANCE_YOUR_CALM) and close
  Stream* streamOf(int32_t id);

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t streamId, const uint8_t* data,
                         size_t len, void* user);
  static int onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode, void* user);
  static int onInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int error, void* user);

  runtime::Worker& worker_;
  std::unique_ptr<net::Transport> transport_;
  runtime::PortKey key_;
  ConnectionInfo info_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  uint32_t running_ = 0;  // handler coroutines alive
  uint32_t zombies_ = 0;  // handlers still running for streams that were reset
  Event writeEvent_;
  Event idleEvent_;  // running_ dropped to zero / writer exited
  WriteTimer writeTimer_;
  bool writerDone_ = false;
  bool closing_ = false;   // stop everything: read loop exits, writer flushes and exits
  bool draining_ = false;  // GOAWAY sent: finish in-flight streams, then close
  bool timedOut_ = false;
  bool failed_ = false;
  double resetTokens_;
  runtime::Clock::time_point resetRefill_;
  std::shared_ptr<const runtime::RuntimeConfig> config_;
  const runtime::CompiledPort* port_ = nullptr;
};

}  // namespace archway::http::h2
