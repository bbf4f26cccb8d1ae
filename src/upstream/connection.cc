#include "upstream/connection.h"

#include <sys/socket.h>
#include <cerrno>
#include <charconv>

#include <asio/connect.hpp>
#include <asio/write.hpp>

#include "net/limits.h"
#include "tls/context.h"

namespace archway::upstream {

namespace {

constexpr size_t kTypicalResponseHeaders = 8;

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

Connection::Connection(asio::io_context& io, runtime::TimedList* timers, stats::BackendStats* stats)
    : transport_(std::make_unique<net::ByteStream>(asio::ip::tcp::socket(io))),
      stats_(stats),
      buf_(net::kUpstreamReadBuffer) {
  link(timers);
}

Connection::~Connection() {
  close();
  if (stats_ && counted_) stats::dec(stats_->activeConnections);
}

void Connection::close() {
  std::error_code ignored;
  if (transport_->is_open()) {
    transport_->shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    transport_->close(ignored);
  }
}

void Connection::onDeadline() {
  timedOut_ = true;
  close();
}

void Connection::abortTimeout() {
  timedOut_ = true;
  close();
}

http::Awaitable<std::error_code> Connection::connect(const asio::ip::tcp::endpoint& ep) {
  setDeadline(net::kUpstreamConnectTimeout);
  auto [ec] = co_await transport_->tcp().async_connect(ep, http::kNoThrow);
  clearDeadline();
  if (!ec && timedOut_) ec = asio::error::timed_out;
  if (!ec) {
    transport_->set_option(asio::ip::tcp::no_delay(true), ec);
    ec.clear();
    if (stats_) {
      stats::inc(stats_->connectionsOpened);
      stats::inc(stats_->activeConnections);
      counted_ = true;
    }
  }
  co_return ec;
}

http::Awaitable<std::error_code> Connection::startTls(asio::ssl::context& ctx,
                                                      const snapshot::BackendTls& tls) {
  auto& stream = transport_->attachTls(ctx);
  if (!tls::configureClient(stream.native_handle(), tls)) co_return asio::error::invalid_argument;
  setDeadline(net::kUpstreamConnectTimeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, http::kNoThrow);
  clearDeadline();
  if (!ec && timedOut_) ec = asio::error::timed_out;
  co_return ec;
}

void Connection::resetExchange() {
  parser_.reset(nullptr, false);
  pos_ = end_ = 0;
  receivedAny_ = false;
  eof_ = false;
}

http::Awaitable<UpstreamError> Connection::writeRequest(const http::RequestHead& r,
                                                        std::string_view body,
                                                        std::string_view upgrade) {
  wbuf_.clear();
  wbuf_.append(r.method);
  wbuf_.push_back(' ');
  wbuf_.append(r.path);
  wbuf_.append(" HTTP/1.1\r\n");
  appendHeader(wbuf_, "host", r.authority);
  for (const auto& h : r.headers) appendHeader(wbuf_, h.name, h.value);
  if (!body.empty() || r.hasBody) {
    char num[24];
    auto res = std::to_chars(num, num + sizeof(num), body.size());
    appendHeader(wbuf_, "content-length", std::string_view(num, res.ptr - num));
  }
  if (!upgrade.empty()) {
    appendHeader(wbuf_, "connection", "upgrade");
    appendHeader(wbuf_, "upgrade", upgrade);
  }
  wbuf_.append("\r\n");
  std::array<asio::const_buffer, 2> bufs{asio::buffer(wbuf_),
                                         asio::buffer(body.data(), body.size())};
  size_t sent = transport_->tryWriteNow(bufs);
  if (sent == asio::buffer_size(bufs)) co_return UpstreamError::kNone;
  co_return co_await writeRest(bufs, sent);
}

http::Awaitable<UpstreamError> Connection::writeRest(std::span<const asio::const_buffer> bufs,
                                                     size_t sent) {
  std::vector<asio::const_buffer> rest = net::buffersAfter(bufs, sent);
  setDeadline(net::kUpstreamReadTimeout);
  auto [ec, n] = co_await asio::async_write(*transport_, rest, http::kNoThrow);
  clearDeadline();
  if (ec) {
    failed_ = true;
    co_return timedOut_ ? UpstreamError::kTimeout : UpstreamError::kReset;
  }
  co_return UpstreamError::kNone;
}

http::Awaitable<UpstreamError> Connection::writeStreamingHead(const http::RequestHead& r,
                                                              std::optional<uint64_t> length,
                                                              std::string_view first, bool end) {
  wbuf_.clear();
  wbuf_.append(r.method);
  wbuf_.push_back(' ');
  wbuf_.append(r.path);
  wbuf_.append(" HTTP/1.1\r\n");
  appendHeader(wbuf_, "host", r.authority);
  for (const auto& h : r.headers) appendHeader(wbuf_, h.name, h.value);
  chunkedRequest_ = !length;
  if (length) {
    char num[24];
    auto res = std::to_chars(num, num + sizeof(num), *length);
    appendHeader(wbuf_, "content-length", std::string_view(num, res.ptr - num));
  } else {
    appendHeader(wbuf_, "transfer-encoding", "chunked");
  }
  wbuf_.append("\r\n");
  asio::const_buffer head = asio::buffer(wbuf_);
  std::span<const asio::const_buffer> bufs(&head, 1);
  size_t sent = transport_->tryWriteNow(bufs);
  if (sent < head.size()) {
    UpstreamError e = co_await writeRest(bufs, sent);
    if (e != UpstreamError::kNone) co_return e;
  }
  if (first.empty() && !end) co_return UpstreamError::kNone;
  co_return co_await writeBody(first, end);
}

http::Awaitable<UpstreamError> Connection::writeBody(std::string_view data, bool end) {
  std::array<asio::const_buffer, 4> bufs;
  size_t count = 0;
  if (chunkedRequest_) {
    if (!data.empty()) {
      auto res = std::to_chars(chunkLine_, chunkLine_ + sizeof(chunkLine_) - 2, data.size(), 16);
      *res.ptr++ = '\r';
      *res.ptr++ = '\n';
      bufs[count++] = asio::buffer(chunkLine_, static_cast<size_t>(res.ptr - chunkLine_));
      bufs[count++] = asio::buffer(data.data(), data.size());
      bufs[count++] = asio::buffer("\r\n", 2);
    }
    if (end) bufs[count++] = asio::buffer("0\r\n\r\n", 5);
  } else if (!data.empty()) {
    bufs[count++] = asio::buffer(data.data(), data.size());
  }
  if (count == 0) co_return UpstreamError::kNone;
  std::span<const asio::const_buffer> pending(bufs.data(), count);
  size_t sent = transport_->tryWriteNow(pending);
  if (sent == asio::buffer_size(pending)) co_return UpstreamError::kNone;
  co_return co_await writeRest(pending, sent);
}

bool Connection::execute() {
  size_t consumed = 0;
  bool ok = parser_.feed(buf_.data() + pos_, end_ - pos_, &consumed);
  pos_ += consumed;
  if (!ok) failed_ = true;
  return ok;
}

http::Awaitable<UpstreamError> Connection::readMore() {
  setDeadline(net::kUpstreamReadTimeout);
  auto [ec, n] =
      co_await transport_->async_read_some(asio::buffer(buf_.data(), buf_.size()), http::kNoThrow);
  clearDeadline();
  if (timedOut_) {
    failed_ = true;
    co_return UpstreamError::kTimeout;
  }
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    eof_ = true;
    pos_ = end_ = 0;
    co_return UpstreamError::kNone;
  }
  if (ec) {
    failed_ = true;
    co_return UpstreamError::kReset;
  }
  receivedAny_ = true;
  pos_ = 0;
  end_ = n;
  co_return UpstreamError::kNone;
}

http::Awaitable<UpstreamError> Connection::readHead(http::ResponseHead& head, bool headRequest) {
  parser_.reset(&head, headRequest);
  // One allocation up front instead of regrowing the list header by header.
  head.headers.items().reserve(kTypicalResponseHeaders);
  while (!parser_.headComplete()) {
    if (pos_ >= end_) {
      if (eof_) {
        failed_ = true;
        co_return receivedAny_ ? UpstreamError::kProtocol : UpstreamError::kReset;
      }
      UpstreamError e = co_await readMore();
      if (e != UpstreamError::kNone) co_return e;
      if (eof_) continue;
    }
    if (!execute()) co_return UpstreamError::kProtocol;
  }
  // Framing headers are the codec's business; carry the length separately.
  head.contentLength.reset();
  if (const std::string* cl = head.headers.get("content-length")) {
    uint64_t v = 0;
    auto res = std::from_chars(cl->data(), cl->data() + cl->size(), v);
    if (res.ec == std::errc() && res.ptr == cl->data() + cl->size()) head.contentLength = v;
  }
  auto& items = head.headers.items();
  std::erase_if(items, [&](const http::Header& h) {
    if (h.name == "upgrade" && parser_.upgraded()) return false;
    return http::isHopByHop(h.name);
  });
  if (stats_) stats::inc(stats_->responses[stats::statusClass(head.status)]);
  co_return UpstreamError::kNone;
}

http::Awaitable<UpstreamError> Connection::readBody(http::ServerStream* sink) {
  auto& pending = parser_.body();  // body spans (point into buf_)
  for (;;) {
    if (!pending.empty() || parser_.complete()) {
      if (sink) {
        bool ok = co_await sink->sendBody(std::span<const asio::const_buffer>(pending),
                                          parser_.complete());
        if (!ok) {
          pending.clear();
          failed_ = true;
          co_return UpstreamError::kDownstream;
        }
      }
      pending.clear();
      if (parser_.complete()) co_return UpstreamError::kNone;
    }
    if (parser_.upgraded()) co_return UpstreamError::kNone;
    if (pos_ >= end_) {
      if (eof_) {
        // Close-delimited body ends at EOF; otherwise the upstream cut it short.
        if (parser_.finish()) continue;
        failed_ = true;
        co_return UpstreamError::kReset;
      }
      UpstreamError e = co_await readMore();
      if (e != UpstreamError::kNone) co_return e;
      continue;
    }
    if (!execute()) co_return UpstreamError::kProtocol;
  }
}

std::string_view Connection::leftover() const {
  return pos_ < end_ ? std::string_view(buf_.data() + pos_, end_ - pos_) : std::string_view();
}

// ---------------------------------------------------------------------------------------

Pool::Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint)
    : io_(io), timers_(timers), endpoint_(std::move(endpoint)) {}

Pool::Pool(asio::io_context& io, runtime::TimedList* timers, asio::ip::tcp::endpoint endpoint,
           std::shared_ptr<const snapshot::BackendTls> tls)
    : io_(io), timers_(timers), endpoint_(std::move(endpoint)), tls_(std::move(tls)) {
  if (tls_) {
    std::string error;
    tlsContext_ = tls::makeClientContext(*tls_, &error);
  }
}

Pool::~Pool() = default;

void Pool::closeIdle() { idle_.clear(); }

namespace {
// An idle keep-alive socket must have nothing to read: EOF (the upstream closed it),
// stray bytes or a pending error all mean it cannot carry a request. Checking before
// reuse keeps a request from being sent on a dead socket, so a later failure really
// is the backend's doing (and counts against the route's retry budget).
bool idleSocketUsable(int fd) {
  char b;
  ssize_t n = ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// An idle pooled connection that can carry a request: not idled out or closed by us, and
// not closed by the peer meanwhile.
bool idleUsable(Connection& c) {
  return c.socket().is_open() && idleSocketUsable(c.socket().native_handle());
}
}  // namespace

std::unique_ptr<Connection> Pool::takeIdle(bool skipRecentProbe) {
  runtime::Clock::time_point probeBefore{};
  if (skipRecentProbe && !idle_.empty()) probeBefore = runtime::Clock::now() - net::kIdleProbeAfter;
  while (!idle_.empty()) {
    std::unique_ptr<Connection> c = std::move(idle_.back());
    idle_.pop_back();
    // release() set the deadline to the release time plus the idle timeout.
    bool recent = skipRecentProbe && c->deadline() - net::upstreamIdleTimeout > probeBefore &&
                  c->socket().is_open();
    if (!recent && !idleUsable(*c)) continue;
    c->clearDeadline();
    c->reused = true;
    c->resetExchange();
    return c;
  }
  return nullptr;
}

http::Awaitable<std::unique_ptr<Connection>> Pool::acquire(stats::BackendStats* stats,
                                                           std::error_code* error) {
  if (auto c = takeIdle()) co_return c;
  auto c = std::make_unique<Connection>(io_, timers_, stats);
  c->pool = this;
  if (tls_ && !tlsContext_) {
    *error = asio::error::access_denied;  // unusable BackendTLSPolicy
    co_return nullptr;
  }
  std::error_code ec = co_await c->connect(endpoint_);
  if (!ec && tls_) ec = co_await c->startTls(*tlsContext_, *tls_);
  if (ec) {
    if (stats) stats::inc(stats->connectFailures);
    *error = ec;
    co_return nullptr;
  }
  co_return c;
}

void Pool::pruneClosed() {
  std::erase_if(idle_, [](const std::unique_ptr<Connection>& c) { return !idleUsable(*c); });
}

void Pool::release(std::unique_ptr<Connection> c) {
  if (!c->keepAlive() || !c->socket().is_open() || idle_.size() >= net::kMaxIdleUpstreamPerEndpoint)
    return;  // destroyed -> closed
  c->setDeadline(net::upstreamIdleTimeout);
  idle_.push_back(std::move(c));
}

}  // namespace archway::upstream
