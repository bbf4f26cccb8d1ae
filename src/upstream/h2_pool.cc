#include "upstream/h2_pool.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include "http/grpc/status.h"
#include "net/limits.h"
#include "tls/context.h"

namespace archway::upstream {

namespace {

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

bool forwardable(std::string_view name) {
  if (name.empty() || name[0] == ':' || name == "host" || http::isHopByHop(name)) return false;
  return std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

}  // namespace

// --- H2Exchange --------------------------------------------------------------------------

H2Exchange::H2Exchange(std::shared_ptr<H2Connection> conn)
    : conn_(std::move(conn)), event_(conn_->io_), bodyEvent_(conn_->io_) {}

H2Exchange::~H2Exchange() {
  if (!closed_) reset(NGHTTP2_CANCEL);
  if (id_ >= 0) conn_->exchanges_.erase(id_);
  if (conn_->exchanges_.empty() && !conn_->dead_) conn_->setDeadline(net::upstreamIdleTimeout);
}

void H2Exchange::reset(uint32_t code) {
  if (!closed_ && !conn_->dead_ && conn_->session_ && id_ >= 0) {
    nghttp2_submit_rst_stream(conn_->session_, NGHTTP2_FLAG_NONE, id_, code);
    conn_->wantWrite();
  }
  // Bytes we will never hand on still count against the connection window.
  if (unconsumed_ > 0 && conn_->session_ && !conn_->dead_) {
    nghttp2_session_consume_connection(conn_->session_, unconsumed_);
    conn_->wantWrite();
  }
  unconsumed_ = 0;
  data_.clear();
}

void H2Exchange::abortTimeout() {
  if (error_ == UpstreamError::kNone) error_ = UpstreamError::kTimeout;
  reset(NGHTTP2_CANCEL);
  closed_ = true;
  event_.notify();
  bodyEvent_.notify();
}

void H2Exchange::abortRequest() {
  if (error_ == UpstreamError::kNone) error_ = UpstreamError::kDownstream;
  reset(NGHTTP2_CANCEL);
  closed_ = true;
  event_.notify();
  bodyEvent_.notify();
}

http::Awaitable<bool> H2Exchange::writeBody(std::string_view data, bool end) {
  if (closed_ || conn_->dead_ || bodyEnd_) co_return false;
  if (bodyPos_ > 0) {
    body_.erase(0, bodyPos_);
    bodyPos_ = 0;
  }
  body_.append(data);
  bodyEnd_ = end;
  if (bodyDeferred_) {
    bodyDeferred_ = false;
    nghttp2_session_resume_data(conn_->session_, id_);
  }
  conn_->wantWrite();
  while (!closed_ && !conn_->dead_ && body_.size() - bodyPos_ > net::kH2StreamSendBuffer) {
    // The backend's window stayed shut this long: give up on the request.
    bool woke = co_await bodyEvent_.waitFor(net::kUpstreamReadTimeout);
    if (!woke) {
      abortTimeout();
      co_return false;
    }
  }
  co_return !closed_ && !conn_->dead_;
}

ssize_t H2Exchange::readRequestBody(nghttp2_session*, int32_t streamId, uint8_t* buf, size_t length,
                                    uint32_t* flags, nghttp2_data_source* source, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  H2Exchange* x = c->exchangeOf(streamId);
  if (!x || x != source->ptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t n = std::min(length, x->body_.size() - x->bodyPos_);
  if (n == 0 && !x->bodyEnd_) {
    x->bodyDeferred_ = true;  // writeBody resumes it
    return NGHTTP2_ERR_DEFERRED;
  }
  std::memcpy(buf, x->body_.data() + x->bodyPos_, n);
  x->bodyPos_ += n;
  if (x->bodyPos_ == x->body_.size() && x->bodyEnd_) *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (!x->bodyEnd_ && x->body_.size() - x->bodyPos_ <= net::kH2StreamSendBuffer)
    x->bodyEvent_.notify();
  return static_cast<ssize_t>(n);
}

http::Awaitable<UpstreamError> H2Exchange::readHead(http::ResponseHead& head) {
  while (!headReady_ && !closed_ && error_ == UpstreamError::kNone) co_await event_.wait();
  if (error_ != UpstreamError::kNone) co_return error_;
  if (!headReady_) co_return UpstreamError::kReset;
  head = std::move(head_);
  co_return UpstreamError::kNone;
}

http::Awaitable<UpstreamError> H2Exchange::readBody(http::ServerStream* sink) {
  std::vector<asio::const_buffer> iov;
  std::deque<std::string> batch;
  for (;;) {
    if (error_ != UpstreamError::kNone) co_return error_;
    if (!data_.empty()) {
      batch.swap(data_);
      size_t n = unconsumed_;
      unconsumed_ = 0;
      bool last = ended_ && !trailers_;
      bool ok = true;
      if (sink) {
        iov.clear();
        for (const auto& b : batch) iov.emplace_back(b.data(), b.size());
        ok = co_await sink->sendBody(std::span<const asio::const_buffer>(iov), last);
      }
      batch.clear();
      // Re-open the window only for what the client took (backpressure upstream).
      if (conn_->session_ && !conn_->dead_) {
        nghttp2_session_consume(conn_->session_, id_, n);
        conn_->wantWrite();
      }
      if (!ok) {
        reset(NGHTTP2_CANCEL);
        co_return UpstreamError::kDownstream;
      }
      if (last) co_return UpstreamError::kNone;
      continue;
    }
    if (ended_) {
      bool ok = true;
      if (sink) {
        if (trailers_) {
          ok = co_await sink->sendTrailers(*trailers_);
        } else {
          ok = co_await sink->sendBody({}, true);
        }
      }
      co_return ok ? UpstreamError::kNone : UpstreamError::kDownstream;
    }
    if (closed_) co_return error_ != UpstreamError::kNone ? error_ : UpstreamError::kReset;
    co_await event_.wait();
  }
}

// --- H2Connection ------------------------------------------------------------------------

H2Connection::H2Connection(asio::io_context& io, runtime::TimedList* timers,
                           stats::BackendStats* stats)
    : io_(io),
      stream_(std::make_unique<net::ByteStream>(asio::ip::tcp::socket(io))),
      stats_(stats),
      writeEvent_(io) {
  link(timers);
}

H2Connection::~H2Connection() {
  close();
  if (session_) nghttp2_session_del(session_);
  if (stats_ && connected_) stats::dec(stats_->activeConnections);
}

void H2Connection::close() {
  std::error_code ignored;
  if (stream_->is_open()) {
    stream_->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_->close(ignored);
  }
}

void H2Connection::onDeadline() {
  timedOut_ = true;
  fail(UpstreamError::kTimeout);
}

void H2Connection::fail(UpstreamError e) {
  if (dead_) return;
  dead_ = true;
  close();
  auto all = exchanges_;
  for (auto& [id, x] : all) {
    if (!x->ended_ && x->error_ == UpstreamError::kNone) x->error_ = e;
    x->closed_ = true;
    x->unconsumed_ = 0;
    x->event_.notify();
    x->bodyEvent_.notify();
  }
  writeEvent_.notify();
}

bool H2Connection::usable() const {
  if (!connected_ || dead_ || goaway_ || !session_) return false;
  uint32_t peerMax =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  uint32_t limit = std::min(peerMax, net::kH2MaxUpstreamStreamsPerConnection);
  return exchanges_.size() < limit;
}

H2Exchange* H2Connection::exchangeOf(int32_t id) {
  auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : it->second;
}

bool H2Connection::init() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
  nghttp2_session_callbacks_set_on_header_callback(cbs, &onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &onStreamClose);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt, net::kH2MaxUpstreamStreamsPerConnection);
  nghttp2_option_set_max_continuations(opt, net::kH2MaxContinuations);
  nghttp2_option_set_max_outbound_ack(opt, net::kH2MaxOutboundAcks);
  nghttp2_option_set_max_settings(opt, net::kH2MaxSettingsEntries);
  int rv = nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    session_ = nullptr;
    return false;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(net::kH2UpstreamStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(net::kMaxResponseHeaderBytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        net::kH2UpstreamConnectionWindow);
  return true;
}

http::Awaitable<std::error_code> H2Connection::connect(const asio::ip::tcp::endpoint& ep,
                                                       asio::ssl::context* tlsContext,
                                                       const snapshot::BackendTls* tls) {
  setDeadline(net::kUpstreamConnectTimeout);
  auto [ec] = co_await stream_->tcp().async_connect(ep, http::kNoThrow);
  if (!ec && timedOut_) ec = asio::error::timed_out;
  if (!ec) stream_->set_option(asio::ip::tcp::no_delay(true), ec);
  if (!ec && tlsContext && tls) {
    auto& t = stream_->attachTls(*tlsContext);
    if (!tls::configureClient(t.native_handle(), *tls)) {
      ec = asio::error::invalid_argument;
    } else {
      static const unsigned char kH2[] = "\x02h2";
      SSL_set_alpn_protos(t.native_handle(), kH2, sizeof(kH2) - 1);
      auto [hec] = co_await t.async_handshake(asio::ssl::stream_base::client, http::kNoThrow);
      ec = hec;
      if (!ec && timedOut_) ec = asio::error::timed_out;
      // A backend that picked another protocol cannot speak HTTP/2 here; one that ignored
      // ALPN gets HTTP/2 with prior knowledge.
      std::string alpn = stream_->alpn();
      if (!ec && !alpn.empty() && alpn != "h2") ec = asio::error::no_protocol_option;
    }
  }
  clearDeadline();
  if (ec) {
    dead_ = true;
    co_return ec;
  }
  if (!init()) {
    dead_ = true;
    co_return asio::error::no_memory;
  }
  connected_ = true;
  if (stats_) {
    stats::inc(stats_->connectionsOpened);
    stats::inc(stats_->activeConnections);
  }
  auto self = shared_from_this();
  asio::co_spawn(io_, readLoop(self), asio::detached);
  asio::co_spawn(io_, writeLoop(self), asio::detached);
  co_return ec;
}

std::unique_ptr<H2Exchange> H2Connection::submit(const http::RequestHead& r, std::string body,
                                                 bool bodyComplete,
                                                 std::optional<uint64_t> length) {
  if (!usable()) return nullptr;
  std::unique_ptr<H2Exchange> x(new H2Exchange(shared_from_this()));
  x->body_ = std::move(body);
  x->bodyEnd_ = bodyComplete;
  std::vector<nghttp2_nv> nva;
  nva.reserve(r.headers.size() + 6);
  nva.push_back(makeNv(":method", r.method));
  nva.push_back(makeNv(":scheme", "http"));
  nva.push_back(makeNv(":authority", r.authority));
  nva.push_back(makeNv(":path", r.path));
  for (const auto& h : r.headers)
    if (forwardable(h.name)) nva.push_back(makeNv(h.name, h.value));
  if (http::grpc::isGrpcRequest(r)) nva.push_back(makeNv("te", "trailers"));
  std::string lengthText;
  bool withBody = r.hasBody || !x->body_.empty() || !bodyComplete;
  if (withBody && (bodyComplete || length)) {
    lengthText = std::to_string(bodyComplete ? x->body_.size() : *length);
    nva.push_back(makeNv("content-length", lengthText));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = x.get();
  provider.read_callback = &H2Exchange::readRequestBody;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      withBody ? &provider : nullptr, nullptr);
  if (id < 0) return nullptr;
  x->id_ = id;
  exchanges_[id] = x.get();
  clearDeadline();
  wantWrite();
  return x;
}

int H2Connection::onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* user) {
  auto* c = static_cast<H2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  H2Exchange* x = c->exchangeOf(frame->hd.stream_id);
  if (!x) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (x->headReady_) {
    if (!x->trailers_) x->trailers_.emplace();
    if (!n.empty() && n[0] != ':') x->trailers_->add(n, v);
    return 0;
  }
  if (n == ":status") {
    int status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    x->head_.status = status;
    x->interim_ = status >= 100 && status < 200;
    return 0;
  }
  if (n.empty() || n[0] == ':') return 0;
  if (n == "content-length") {
    uint64_t len = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), len);
    if (res.ec == std::errc() && res.ptr == v.data() + v.size()) x->head_.contentLength = len;
    return 0;
  }
  if (http::isHopByHop(n)) return 0;
  x->head_.headers.add(n, v);
  return 0;
}

int H2Connection::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c->goaway_ = true;
    return 0;
  }
  if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
  H2Exchange* x = c->exchangeOf(frame->hd.stream_id);
  if (!x) return 0;
  bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && !x->headReady_) {
    if (x->interim_) {
      x->head_ = http::ResponseHead();  // 1xx: wait for the final head
      x->interim_ = false;
      return 0;
    }
    x->headReady_ = true;
    x->endedWithHead_ = end;
  }
  if (end) x->ended_ = true;
  x->event_.notify();
  return 0;
}

int H2Connection::onDataChunk(nghttp2_session* session, uint8_t, int32_t streamId,
                              const uint8_t* data, size_t len, void* user) {
  auto* c = static_cast<H2Connection*>(user);
  H2Exchange* x = c->exchangeOf(streamId);
  if (!x || x->closed_) {
    nghttp2_session_consume(session, streamId, len);
    return 0;
  }
  x->data_.emplace_back(reinterpret_cast<const char*>(data), len);
  x->unconsumed_ += len;
  x->event_.notify();
  return 0;
}

int H2Connection::onStreamClose(nghttp2_session*, int32_t streamId, uint32_t errorCode,
                                void* user) {
  auto* c = static_cast<H2Connection*>(user);
  H2Exchange* x = c->exchangeOf(streamId);
  if (!x) return 0;
  x->closed_ = true;
  if (!x->ended_ && x->error_ == UpstreamError::kNone) {
    x->error_ = UpstreamError::kReset;
    if (errorCode == NGHTTP2_REFUSED_STREAM && !x->headReady_) x->refused_ = true;
  }
  x->event_.notify();
  x->bodyEvent_.notify();
  return 0;
}

http::Awaitable<void> H2Connection::readLoop(std::shared_ptr<H2Connection> self) {
  std::vector<uint8_t> buf(net::kUpstreamReadBuffer);
  while (!dead_) {
    auto [ec, n] = co_await stream_->async_read_some(asio::buffer(buf), http::kNoThrow);
    if (ec || n == 0) break;
    ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), n);
    if (rv < 0) {
      fail(UpstreamError::kProtocol);
      break;
    }
    wantWrite();
    if (goaway_ && exchanges_.empty()) break;
  }
  fail(timedOut_ ? UpstreamError::kTimeout : UpstreamError::kReset);
}

http::Awaitable<void> H2Connection::writeLoop(std::shared_ptr<H2Connection> self) {
  std::string wbuf;
  while (!dead_) {
    wbuf.clear();
    while (wbuf.size() < 64 * 1024) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      wbuf.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!wbuf.empty()) {
      asio::const_buffer all = asio::buffer(wbuf);
      size_t sent = stream_->tryWriteNow(std::span<const asio::const_buffer>(&all, 1));
      if (sent == wbuf.size()) continue;
      auto [ec, n] = co_await asio::async_write(*stream_, all + sent, http::kNoThrow);
      if (ec) {
        fail(UpstreamError::kReset);
        break;
      }
      continue;
    }
    co_await writeEvent_.wait();
  }
}

// --- H2Pool ------------------------------------------------------------------------------

H2Pool::H2Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint,
               std::shared_ptr<const snapshot::BackendTls> tls)
    : io_(io), timers_(timers), endpoint_(std::move(endpoint)), tls_(std::move(tls)) {
  if (tls_) {
    std::string error;
    tlsContext_ = tls::makeClientContext(*tls_, &error, /*h2=*/true);
  }
}

H2Pool::~H2Pool() {
  for (auto& c : conns_) c->fail(UpstreamError::kReset);
}

http::Awaitable<std::unique_ptr<H2Exchange>> H2Pool::start(const http::RequestHead& request,
                                                           std::string body, bool bodyComplete,
                                                           std::optional<uint64_t> length,
                                                           stats::BackendStats* stats,
                                                           std::error_code* error) {
  if (tls_ && !tlsContext_) {
    if (error) *error = asio::error::access_denied;  // unusable BackendTLSPolicy
    co_return nullptr;
  }
  auto deadline = runtime::Clock::now() + net::kUpstreamConnectTimeout;
  for (;;) {
    std::erase_if(conns_, [](const auto& c) { return c->dead_ || (c->goaway_ && c->idle()); });
    H2Connection* best = nullptr;
    for (auto& c : conns_)
      if (c->usable() && (!best || c->exchanges_.size() < best->exchanges_.size())) best = c.get();
    if (best) co_return best->submit(request, std::move(body), bodyComplete, length);
    if (conns_.size() < net::kH2MaxUpstreamConnectionsPerEndpoint) {
      auto conn = std::make_shared<H2Connection>(io_, timers_, stats);
      conns_.push_back(conn);
      std::error_code ec = co_await conn->connect(endpoint_, tlsContext_.get(), tls_.get());
      if (ec) {
        if (stats) stats::inc(stats->connectFailures);
        std::erase(conns_, conn);
        if (error) *error = ec;
        co_return nullptr;
      }
      co_return conn->submit(request, std::move(body), bodyComplete, length);
    }
    // Every connection is full or still connecting: wait a moment for room.
    if (runtime::Clock::now() >= deadline) {
      if (error) *error = asio::error::timed_out;
      co_return nullptr;
    }
    asio::steady_timer t(io_);
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(http::kNoThrow);
  }
}

}  // namespace archway::upstream
