#include "http/h2/server_connection.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "net/limits.h"
#include "proxy/http_proxy.h"

namespace archway::http::h2 {

namespace {

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

bool hasUpper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// Builds the nghttp2 name/value array for a response head; `storage` keeps :status and
// content-length alive until nghttp2 copied them.
std::vector<nghttp2_nv> responseNva(const ResponseHead& head, bool headRequest,
                                    std::string& statusStorage, std::string& lengthStorage) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(head.headers.size() + 2);
  statusStorage = std::to_string(head.status);
  nva.push_back(makeNv(":status", statusStorage));
  for (const auto& h : head.headers) {
    // Connection-specific fields are illegal in HTTP/2 (RFC 9113 8.2.2).
    if (h.name.empty() || h.name[0] == ':' || isHopByHop(h.name) || h.name == "host" ||
        hasUpper(h.name))
      continue;
    nva.push_back(makeNv(h.name, h.value));
  }
  bool bodyless = head.status == 204 || head.status == 304 || head.status < 200;
  if (head.contentLength && !bodyless) {
    lengthStorage = std::to_string(*head.contentLength);
    nva.push_back(makeNv("content-length", lengthStorage));
  } else if (headRequest && !bodyless) {
    (void)0;  // unknown length for HEAD: say nothing
  }
  return nva;
}

}  // namespace

// --- Stream ------------------------------------------------------------------------------

Stream::Stream(ServerConnection& conn, int32_t id)
    : conn_(conn), id_(id), event_(conn.worker().io()), bodyEvent_(conn.worker().io()) {
  request_.scheme = conn.info().scheme;
}

const ConnectionInfo& Stream::connection() const { return conn_.info(); }

Awaitable<BodyResult> Stream::readBodySome(std::string& out, bool& end, bool wait) {
  end = false;
  for (;;) {
    if (bodyTooLarge_) co_return BodyResult::kTooLarge;
    if (bodyAborted_) co_return BodyResult::kError;
    if (!body_.empty()) {
      size_t n = body_.size();
      if (out.empty()) {
        out.swap(body_);
      } else {
        out.append(body_);
      }
      body_.clear();
      // The client may send as much again: back-pressure is the caller's pace. (A closed
      // stream's bytes still count against the connection window.)
      if (closed_) {
        nghttp2_session_consume_connection(conn_.session(), n);
      } else {
        nghttp2_session_consume(conn_.session(), id_, n);
      }
      conn_.wantWrite();
      end = requestComplete_;
      co_return BodyResult::kOk;
    }
    if (requestComplete_) {
      end = true;
      co_return BodyResult::kOk;
    }
    if (closed_ || conn_.closing_) co_return BodyResult::kError;
    if (!wait) co_return BodyResult::kOk;
    // Once the response streams too (gRPC bidi), a quiet client is normal for longer.
    auto idle = headSent_ ? net::kStreamingBodyIdleTimeout : net::kBodyReadTimeout;
    bool woke = co_await bodyEvent_.waitFor(idle);
    if (!woke) {
      if (!closed_) {
        nghttp2_submit_rst_stream(conn_.session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
        conn_.wantWrite();
      }
      bodyAborted_ = true;
      co_return BodyResult::kError;
    }
  }
}

void Stream::abortBodyRead() {
  bodyAborted_ = true;
  bodyEvent_.notify();
}

void Stream::discardBody() {
  discard_ = true;
  if (!body_.empty() && conn_.session()) {
    // Closed streams still hold connection window: hand it back either way.
    if (closed_) {
      nghttp2_session_consume_connection(conn_.session(), body_.size());
    } else {
      nghttp2_session_consume(conn_.session(), id_, body_.size());
    }
    conn_.wantWrite();
  }
  body_.clear();
  body_.shrink_to_fit();
}

Awaitable<bool> Stream::sendHead(ResponseHead& head, bool endStream) {
  if (headSent_ || closed_ || conn_.closing_) co_return false;
  headSent_ = true;
  if (head.status == 101 || (head.status >= 100 && head.status < 200)) {
    // No interim responses or protocol switches over HTTP/2.
    head.status = 502;
    endStream = true;
  }
  bool headRequest = request_.method == "HEAD";
  if (headRequest) endStream = true;
  std::string status, length;
  auto nva = responseNva(head, headRequest, status, length);
  int rv;
  if (endStream) {
    responseEnded_ = true;
    rv = nghttp2_submit_response(conn_.session(), id_, nva.data(), nva.size(), nullptr);
  } else {
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &Stream::readData;
    rv = nghttp2_submit_response(conn_.session(), id_, nva.data(), nva.size(), &provider);
  }
  conn_.wantWrite();
  co_return rv == 0;
}

void Stream::resumeData() {
  if (deferred_ && !closed_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn_.session(), id_);
  }
  conn_.wantWrite();
}

Awaitable<bool> Stream::waitDrained() {
  while (!closed_ && !conn_.closing_ && out_.size() - outPos_ > net::kH2StreamSendBuffer) {
    bool woke = co_await event_.waitFor(net::kDownstreamWriteTimeout);
    if (!woke) {
      // The client's window stayed shut: give up on this stream only.
      if (!closed_) {
        nghttp2_submit_rst_stream(conn_.session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
        conn_.wantWrite();
      }
      co_return false;
    }
  }
  co_return !closed_ && !conn_.closing_;
}

Awaitable<bool> Stream::sendBody(std::span<const asio::const_buffer> data, bool endStream) {
  if (closed_ || conn_.closing_) co_return false;
  if (responseEnded_) co_return true;  // HEAD, or already ended
  if (outPos_ > 0) {
    out_.erase(0, outPos_);
    outPos_ = 0;
  }
  for (const auto& b : data) out_.append(static_cast<const char*>(b.data()), b.size());
  if (endStream) {
    outEnd_ = true;
    responseEnded_ = true;
  }
  resumeData();
  bool drained = co_await waitDrained();
  co_return drained;
}

Awaitable<bool> Stream::sendTrailers(const HeaderMap& trailers) {
  if (closed_ || conn_.closing_) co_return false;
  if (responseEnded_) co_return true;
  if (!headSent_) co_return false;
  trailers_ = trailers;
  outEnd_ = true;
  responseEnded_ = true;
  resumeData();
  co_return true;
}

ssize_t Stream::readData(nghttp2_session* session, int32_t streamId, uint8_t* buf, size_t length,
                         uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  size_t avail = s->out_.size() - s->outPos_;
  size_t n = std::min(avail, length);
  if (n > 0) {
    std::memcpy(buf, s->out_.data() + s->outPos_, n);
    s->outPos_ += n;
    if (s->outPos_ == s->out_.size()) {
      s->out_.clear();
      s->outPos_ = 0;
    }
  }
  if (avail == n && s->outEnd_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->trailers_) {
      std::vector<nghttp2_nv> nva;
      for (const auto& h : *s->trailers_) {
        if (h.name.empty() || h.name[0] == ':' || isHopByHop(h.name) || hasUpper(h.name)) continue;
        nva.push_back(makeNv(h.name, h.value));
      }
      if (nghttp2_submit_trailer(session, streamId, nva.data(), nva.size()) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
  } else if (n == 0) {
    s->deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (s->out_.size() - s->outPos_ <= net::kH2StreamSendBuffer) s->event_.notify();
  return static_cast<ssize_t>(n);
}

// --- ServerConnection --------------------------------------------------------------------

ServerConnection::ServerConnection(runtime::Worker& worker,
                                   std::unique_ptr<net::Transport> transport, runtime::PortKey key,
                                   ConnectionInfo info)
    : worker_(worker),
      transport_(std::move(transport)),
      key_(std::move(key)),
      info_(std::move(info)),
      writeEvent_(worker.io()),
      idleEvent_(worker.io()),
      resetTokens_(net::kH2ResetBurst),
      resetRefill_(runtime::Clock::now()) {
  link(&worker_.timers());
  writeTimer_.owner = this;
  writeTimer_.link(&worker_.timers());
  worker_.addConnection(this);
}

ServerConnection::~ServerConnection() {
  streams_.clear();
  if (session_) nghttp2_session_del(session_);
  transport_->close();
  worker_.removeConnection(this);
}

Awaitable<void> ServerConnection::serve(std::unique_ptr<ServerConnection> connection,
                                        std::string initial) {
  co_await connection->run(std::move(initial));
}

bool ServerConnection::init() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &onFrameRecv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &onFrameSend);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &onStreamClose);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &onInvalidFrame);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return false;
  }
  nghttp2_option_set_max_continuations(opt, net::kH2MaxContinuations);
  nghttp2_option_set_max_outbound_ack(opt, net::kH2MaxOutboundAcks);
  nghttp2_option_set_max_settings(opt, net::kH2MaxSettingsEntries);
  // Request DATA is acknowledged only once the handler took it (Stream::readBodySome) or
  // dropped it (discardBody): that is the back-pressure of a streamed request body.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // nghttp2's own reset limit is only a backstop, set looser than ours: it answers with
  // GOAWAY(INTERNAL_ERROR) while ours says ENHANCE_YOUR_CALM, which is what the client
  // should see (it is the client's behaviour that is at fault).
  nghttp2_option_set_stream_reset_rate_limit(opt, 2 * net::kH2ResetBurst,
                                             2 * net::kH2ResetRatePerSecond);
  int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, net::kH2MaxConcurrentStreams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(net::kH2StreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, net::kH2MaxHeaderListSize},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) return false;
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, net::kH2ConnectionWindow);
  return true;
}

Stream* ServerConnection::streamOf(int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session_, id));
}

bool ServerConnection::takeResetToken() {
  auto now = runtime::Clock::now();
  double elapsed = std::chrono::duration<double>(now - resetRefill_).count();
  resetRefill_ = now;
  resetTokens_ =
      std::min<double>(net::kH2ResetBurst, resetTokens_ + elapsed * net::kH2ResetRatePerSecond);
  if (resetTokens_ < 1) return false;
  resetTokens_ -= 1;
  return true;
}

void ServerConnection::calm() {
  if (failed_) return;
  failed_ = true;
  stats::inc(worker_.stats().global().badRequests);
  spdlog::debug("h2 {}: too many stream resets, GOAWAY", info_.remoteAddress);
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  wantWrite();
}

int ServerConnection::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                     void* user) {
  auto* c = static_cast<ServerConnection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (c->zombies_ >= net::kH2MaxZombieStreams || c->closing_) {
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                              NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  auto s = std::make_unique<Stream>(*c, frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s.get());
  c->streams_[frame->hd.stream_id] = std::move(s);
  return 0;
}

int ServerConnection::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                               void* user) {
  auto* c = static_cast<ServerConnection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = c->streamOf(frame->hd.stream_id);
  if (!s || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers are dropped
  s->headerBytes_ += namelen + valuelen + 32;
  if (s->headerBytes_ > net::kH2MaxHeaderListSize ||
      s->request_.headers.size() >= net::kMaxRequestHeaders) {
    s->rejectStatus_ = 431;
    return 0;  // keep decoding (HPACK state), answer 431 once the block ends
  }
  if (s->rejectStatus_) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  RequestHead& r = s->request_;
  if (!n.empty() && n[0] == ':') {
    if (n == ":method") {
      r.method.assign(v);
    } else if (n == ":path") {
      r.path.assign(v);
    } else if (n == ":authority") {
      r.authority.assign(v);
    } else if (n == ":scheme") {
      (void)0;  // the connection decides the scheme we report upstream
    } else {
      s->rejectStatus_ = 400;  // :protocol (extended CONNECT) is not offered
    }
    return 0;
  }
  if (n == "host") {
    if (r.authority.empty()) r.authority.assign(v);
    return 0;
  }
  if (n == "cookie") {
    if (!s->cookies_.empty()) s->cookies_.append("; ");
    s->cookies_.append(v);
    return 0;
  }
  if (n == "content-length") {
    // nghttp2 checks the DATA against it; the proxy uses it for a 413 up front and as
    // the upstream framing.
    uint64_t len = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), len);
    if (res.ec == std::errc() && res.ptr == v.data() + v.size()) s->declaredLength_ = len;
    return 0;
  }
  if (isHopByHop(n)) return 0;  // only "te: trailers" gets past nghttp2; not forwarded as-is
  r.headers.add(n, v);
  return 0;
}

int ServerConnection::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                  void* user) {
  auto* c = static_cast<ServerConnection*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_RST_STREAM:
      if (!c->takeResetToken()) c->calm();
      return 0;
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
      break;
    default:
      return 0;
  }
  Stream* s = c->streamOf(frame->hd.stream_id);
  if (!s) return 0;
  bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    RequestHead& r = s->request_;
    toLowerInPlace(r.authority);
    if (!s->cookies_.empty()) r.headers.add("cookie", s->cookies_);
    if (!s->rejectStatus_ && (r.method == "CONNECT" || r.path.empty())) s->rejectStatus_ = 400;
    if (!s->rejectStatus_ && !isValidAuthority(r.authority)) s->rejectStatus_ = 400;
    if (!s->rejectStatus_ && r.path[0] != '/' && !(r.path == "*" && r.method == "OPTIONS"))
      s->rejectStatus_ = 400;
    r.hasBody = !end;
    s->requestComplete_ = end;
    s->running_ = true;
    ++c->running_;
    c->clearDeadline();
    asio::co_spawn(c->worker_.io(), c->serveStream(s), asio::detached);
    return 0;
  }
  if (end) {
    s->requestComplete_ = true;
    s->bodyEvent_.notify();
  }
  (void)session;
  return 0;
}

int ServerConnection::onFrameSend(nghttp2_session* session, const nghttp2_frame* frame,
                                  void* user) {
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
    return 0;
  auto* c = static_cast<ServerConnection*>(user);
  Stream* s = c->streamOf(frame->hd.stream_id);
  // The response is complete but the client is still sending: tell it to stop.
  if (s && !s->requestComplete_ && !s->closed_)
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

int ServerConnection::onDataChunk(nghttp2_session* session, uint8_t, int32_t streamId,
                                  const uint8_t* data, size_t len, void* user) {
  auto* c = static_cast<ServerConnection*>(user);
  Stream* s = c->streamOf(streamId);
  if (!s || s->discard_ || s->bodyTooLarge_) {
    nghttp2_session_consume(session, streamId, len);
    return 0;
  }
  s->bodyBytes_ += len;
  if (s->bodyBytes_ > net::requestBodyLimit) {
    s->bodyTooLarge_ = true;
    nghttp2_session_consume(session, streamId, len);
    s->discardBody();
    s->bodyEvent_.notify();
    return 0;
  }
  s->body_.append(reinterpret_cast<const char*>(data), len);
  s->bodyEvent_.notify();
  return 0;
}

int ServerConnection::onStreamClose(nghttp2_session* session, int32_t streamId, uint32_t errorCode,
                                    void* user) {
  auto* c = static_cast<ServerConnection*>(user);
  Stream* s = c->streamOf(streamId);
  if (!s) return 0;
  nghttp2_session_set_stream_user_data(session, streamId, nullptr);
  s->closed_ = true;
  if (s->running_) {
    if (errorCode != NGHTTP2_NO_ERROR && !s->responseEnded_) {
      s->resetByPeer_ = true;
      ++c->zombies_;
    }
    s->event_.notify();
    s->bodyEvent_.notify();
    return 0;
  }
  s->discardBody();
  c->streams_.erase(streamId);
  c->finishIfIdle();
  return 0;
}

int ServerConnection::onInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int error,
                                     void* user) {
  // Malformed requests reset the stream (nghttp2 does that); repeated ones are an abuse
  // pattern of their own, so they draw from the same budget as client resets.
  auto* c = static_cast<ServerConnection*>(user);
  (void)frame;
  (void)error;
  if (!c->takeResetToken()) c->calm();
  return 0;
}

Awaitable<void> ServerConnection::serveStream(Stream* s) {
  // running_ was counted by the caller; the stream outlives this coroutine (see streamDone).
  const auto& current = worker_.config();
  if (current != config_) {
    config_ = current;
    port_ = config_ ? config_->findPort(key_.first, key_.second) : nullptr;
  }
  if (s->rejectStatus_ != 0) {
    stats::inc(worker_.stats().global().badRequests);
    std::string body = std::string(reasonPhrase(s->rejectStatus_)) + "\n";
    co_await sendLocalReply(*s, s->rejectStatus_, body);
  } else {
    co_await worker_.proxy().serve(*s, config_, port_);
  }
  streamDone(s);
}

void ServerConnection::streamDone(Stream* s) {
  s->running_ = false;
  if (!closing_) s->discardBody();
  --running_;
  if (s->resetByPeer_) --zombies_;
  if (!s->closed_ && !closing_) {
    if (!s->responseEnded_) {
      // The handler gave up mid-response (upstream failure): the stream cannot end cleanly.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_INTERNAL_ERROR);
    } else {
      // Answered before the request ended: onFrameSend resets the stream with NO_ERROR once
      // our END_STREAM is on the wire (RFC 9113 8.1); resetting here would drop the
      // response still queued.
      s->resumeData();
    }
  }
  if (s->closed_ || closing_) {
    if (s->closed_) streams_.erase(s->id_);
  }
  wantWrite();
  if (running_ == 0) idleEvent_.notify();
  finishIfIdle();
}

void ServerConnection::finishIfIdle() {
  if (running_ == 0 && !closing_) setDeadline(net::keepAliveIdleTimeout);
  if (draining_ && running_ == 0 && !closing_) {
    closing_ = true;
    wantWrite();
  }
}

void ServerConnection::drain() {
  if (draining_ || !session_) return;
  draining_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  wantWrite();
  finishIfIdle();
}

void ServerConnection::onDeadline() {
  if (draining_) {
    // The client did not go away after GOAWAY: close.
    closing_ = true;
    transport_->cancel();
    wantWrite();
    return;
  }
  timedOut_ = true;
  drain();
  setDeadline(net::kGracefulStopTimeout);
}

void ServerConnection::onWriteTimeout() {
  failed_ = true;
  closing_ = true;
  transport_->cancel();
}

bool ServerConnection::feed(const uint8_t* data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  if (rv < 0) {
    spdlog::debug("h2 {}: {}", info_.remoteAddress, nghttp2_strerror(static_cast<int>(rv)));
    if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC && rv != NGHTTP2_ERR_FLOODED)
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    return false;
  }
  return true;
}

Awaitable<void> ServerConnection::writeLoop() {
  std::string wbuf;
  for (;;) {
    wbuf.clear();
    while (wbuf.size() < 64 * 1024) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        failed_ = closing_ = true;
        break;
      }
      if (n == 0) break;
      wbuf.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!wbuf.empty()) {
      asio::const_buffer b(wbuf.data(), wbuf.size());
      writeTimer_.setDeadline(net::kDownstreamWriteTimeout);
      std::error_code ec =
          co_await transport_->writeAll(std::span<const asio::const_buffer>(&b, 1));
      writeTimer_.clearDeadline();
      if (ec) {
        failed_ = closing_ = true;
        break;
      }
      continue;
    }
    if (closing_ || failed_) break;
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    co_await writeEvent_.wait();
  }
  closing_ = true;
  writerDone_ = true;
  transport_->shutdownSend();
  transport_->cancel();  // wakes the read loop
  idleEvent_.notify();
}

Awaitable<void> ServerConnection::run(std::string initial) {
  if (!init()) co_return;
  setDeadline(net::keepAliveIdleTimeout);
  asio::co_spawn(worker_.io(), writeLoop(), asio::detached);
  bool ok =
      initial.empty() || feed(reinterpret_cast<const uint8_t*>(initial.data()), initial.size());
  wantWrite();
  if (ok && worker_.draining()) drain();
  std::vector<uint8_t> buf(net::kDownstreamReadBuffer);
  while (ok && !closing_ && !failed_ && nghttp2_session_want_read(session_)) {
    auto [ec, n] = co_await transport_->readSome(asio::buffer(buf));
    if (ec || n == 0) break;
    ok = feed(buf.data(), n);
    wantWrite();
  }
  // Wake every handler still waiting on the client; they see the stream as gone.
  closing_ = true;
  for (auto& [id, s] : streams_) {
    s->closed_ = true;
    s->event_.notify();
    s->bodyEvent_.notify();
  }
  wantWrite();
  while (running_ > 0 || !writerDone_) co_await idleEvent_.wait();
  clearDeadline();
  writeTimer_.clearDeadline();
}

}  // namespace archway::http::h2
