#include "http/h1/server_connection.h"

#include <charconv>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/write.hpp>

#include "net/limits.h"
#include "proxy/http_proxy.h"

namespace archway::http::h1 {

namespace {

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

ServerConnection::ServerConnection(runtime::Worker& worker, asio::ip::tcp::socket socket,
                                   runtime::PortKey key)
    : ServerConnection(worker, std::make_unique<net::ByteStream>(std::move(socket)),
                       std::move(key)) {}

ServerConnection::ServerConnection(runtime::Worker& worker,
                                   std::unique_ptr<net::ByteStream> transport, runtime::PortKey key)
    : worker_(worker),
      transport_(std::move(transport)),
      socket_(*transport_),
      key_(std::move(key)),
      buf_(net::kDownstreamReadBuffer) {
  if (socket_.secure()) {
    info_.scheme = "https";
    info_.sni = socket_.serverName();
  }
  link(&worker_.timers());
  worker_.addConnection(this);
  // (TCP_NODELAY is inherited from the listening socket: runtime/worker.cc openAcceptor.)
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) {
    info_.remoteAddress = remote.address().to_string();
    info_.remotePort = remote.port();
  }
  auto local = socket_.local_endpoint(ec);
  if (!ec) info_.localAddress = local.address().to_string();
  info_.localPort = key_.second;
}

ServerConnection::~ServerConnection() {
  std::error_code ec;
  socket_.close(ec);
  worker_.removeConnection(this);
}

Awaitable<void> ServerConnection::serve(std::unique_ptr<ServerConnection> connection) {
  co_await connection->run();
}

void ServerConnection::onDeadline() {
  timedOut_ = true;
  std::error_code ec;
  socket_.cancel(ec);
}

void ServerConnection::drain() {
  draining_ = true;
  if (idle_) {
    std::error_code ec;
    socket_.cancel(ec);
  }
}

void ServerConnection::resetRequest() {
  parser_.reset(info_.scheme);
  bodyAborted_ = false;
  continueSent_ = false;
  headSent_ = headPending_ = chunked_ = responseComplete_ = false;
}

// --- reading -----------------------------------------------------------------------------

int ServerConnection::execute() {
  if (pos_ >= end_) return 0;
  int reject = 0;
  pos_ += parser_.feed(buf_.data() + pos_, end_ - pos_, &reject);
  if (reject == 400)
    spdlog::debug("bad request from {}: {} ({})", info_.remoteAddress, parser_.errorName(),
                  parser_.errorReason());
  return reject;
}

Awaitable<bool> ServerConnection::readSome() {
  pos_ = end_ = 0;
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_.data(), buf_.size()), kNoThrow);
  if (ec || n == 0) co_return false;
  end_ = n;
  co_return true;
}

Awaitable<ServerConnection::HeadResult> ServerConnection::readHead() {
  bool sawByte = false;
  for (;;) {
    if (pos_ < end_) {
      if (!sawByte) {
        sawByte = true;
        idle_ = false;
        setDeadline(net::kHeaderReadTimeout);
      }
      int status = execute();
      if (status != 0) {
        co_await sendError(status);
        co_return HeadResult::kRejected;
      }
      if (parser_.headersComplete()) {
        clearDeadline();
        co_return HeadResult::kOk;
      }
      continue;
    }
    if (!sawByte) {
      if (draining_ || worker_.draining()) co_return HeadResult::kClosed;
      idle_ = true;
      setDeadline(net::keepAliveIdleTimeout);
    }
    if (!co_await readSome()) {
      bool timedOut = timedOut_;
      timedOut_ = false;
      clearDeadline();
      if (timedOut && sawByte) {
        co_await sendError(408);
        co_return HeadResult::kRejected;
      }
      co_return HeadResult::kClosed;
    }
  }
}

Awaitable<BodyResult> ServerConnection::readBodySome(std::string& out, bool& end, bool wait) {
  end = false;
  if (parser_.bodyTooLarge()) co_return BodyResult::kTooLarge;
  if (bodyAborted_) co_return BodyResult::kError;
  if (wait && !parser_.messageComplete() && parser_.expectContinue() && !continueSent_) {
    continueSent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::const_buffer b(kContinue.data(), kContinue.size());
    if (!co_await writeAll(std::span<const asio::const_buffer>(&b, 1)))
      co_return BodyResult::kError;
  }
  // Parsing stops after the message (llhttp pauses), so the parser's body never holds more than
  // the bytes of one read: the caller's pace is the client's.
  while (parser_.body().empty() && !parser_.messageComplete()) {
    if (pos_ < end_) {
      int status = execute();
      if (status == 413) co_return BodyResult::kTooLarge;
      if (status != 0) {
        closeAfter_ = true;
        if (!headSent_) co_await sendError(status);
        co_return BodyResult::kError;
      }
      continue;
    }
    if (!wait) co_return BodyResult::kOk;
    setDeadline(net::kBodyReadTimeout);
    bool ok = co_await readSome();
    clearDeadline();
    if (!ok || bodyAborted_) {
      closeAfter_ = true;
      timedOut_ = false;
      co_return BodyResult::kError;
    }
  }
  std::string& body = parser_.body();
  if (out.empty()) {
    out.swap(body);
  } else {
    out.append(body);
  }
  body.clear();
  end = parser_.messageComplete();
  co_return BodyResult::kOk;
}

void ServerConnection::abortBodyRead() {
  if (bodyAborted_ || parser_.messageComplete()) return;
  bodyAborted_ = true;
  closeAfter_ = true;  // the rest of the body will not be read: no keep-alive
  std::error_code ec;
  socket_.cancel(ec);  // wakes a pending read
}

// --- writing -----------------------------------------------------------------------------

Awaitable<bool> ServerConnection::writeAll(std::span<const asio::const_buffer> bufs) {
  size_t sent = socket_.tryWriteNow(bufs);
  if (sent == asio::buffer_size(bufs)) co_return true;
  std::vector<asio::const_buffer> rest = net::buffersAfter(bufs, sent);
  setDeadline(net::kDownstreamWriteTimeout);
  auto [ec, n] = co_await asio::async_write(socket_, rest, kNoThrow);
  clearDeadline();
  co_return !ec;
}

Awaitable<void> ServerConnection::sendError(int status) {
  stats::inc(worker_.stats().global().badRequests);
  closeAfter_ = true;
  std::string body = fmt::format("{}\n", reasonPhrase(status));
  wbuf_ = fmt::format(
      "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n"
      "connection: close\r\n\r\n{}",
      status, reasonPhrase(status), body.size(), body);
  asio::const_buffer b(wbuf_.data(), wbuf_.size());
  co_await writeAll(std::span<const asio::const_buffer>(&b, 1));
}

Awaitable<bool> ServerConnection::sendHead(ResponseHead& head, bool endStream) {
  if (headSent_) co_return false;
  headSent_ = true;
  // The connection closes after this response if the request body was not consumed,
  // the client asked to, or we are draining.
  bool closing = closeAfter_ || !parser_.keepAlive() || draining_ || worker_.draining() ||
                 !parser_.messageComplete() || served_ + 1 >= net::kMaxRequestsPerConnection;
  bool headRequest = parser_.request().method == "HEAD";
  wbuf_.clear();
  wbuf_.append(parser_.request().versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char num[24];
  auto res = std::to_chars(num, num + sizeof(num), head.status);
  wbuf_.append(num, res.ptr);
  wbuf_.push_back(' ');
  wbuf_.append(reasonPhrase(head.status));
  wbuf_.append("\r\n");
  for (const auto& h : head.headers) appendHeader(wbuf_, h.name, h.value);
  chunked_ = false;
  if (head.status == 101) {
    appendHeader(wbuf_, "connection", "upgrade");
    closing = false;
  } else {
    bool bodyless = head.status == 204 || head.status == 304 || head.status < 200;
    if (head.contentLength && (head.status != 204 && head.status >= 200)) {
      res = std::to_chars(num, num + sizeof(num), *head.contentLength);
      appendHeader(wbuf_, "content-length", std::string_view(num, res.ptr - num));
    } else if (endStream || headRequest) {
      if (!bodyless) appendHeader(wbuf_, "content-length", "0");
    } else if (parser_.request().versionMinor >= 1) {
      appendHeader(wbuf_, "transfer-encoding", "chunked");
      chunked_ = true;
    } else {
      closing = true;  // HTTP/1.0 without a length: the body ends at close
    }
    if (closing) {
      appendHeader(wbuf_, "connection", "close");
      closeAfter_ = true;
    } else if (parser_.request().versionMinor == 0) {
      appendHeader(wbuf_, "connection", "keep-alive");
    }
  }
  wbuf_.append("\r\n");
  if (headRequest) endStream = true;
  if (endStream) {
    responseComplete_ = true;
    asio::const_buffer b(wbuf_.data(), wbuf_.size());
    co_return co_await writeAll(std::span<const asio::const_buffer>(&b, 1));
  }
  headPending_ = true;
  co_return true;
}

Awaitable<bool> ServerConnection::sendBody(std::span<const asio::const_buffer> data,
                                           bool endStream) {
  if (responseComplete_) co_return true;  // e.g. HEAD: the body is not sent
  iov_.clear();
  if (headPending_) {
    iov_.emplace_back(wbuf_.data(), wbuf_.size());
    headPending_ = false;
  }
  size_t total = 0;
  for (const auto& b : data) total += b.size();
  if (chunked_) {
    if (total > 0) {
      auto res = std::to_chars(chunkLine_, chunkLine_ + sizeof(chunkLine_) - 2, total, 16);
      *res.ptr++ = '\r';
      *res.ptr++ = '\n';
      iov_.emplace_back(chunkLine_, static_cast<size_t>(res.ptr - chunkLine_));
      for (const auto& b : data)
        if (b.size()) iov_.push_back(b);
      iov_.emplace_back("\r\n", 2);
    }
    if (endStream) iov_.emplace_back("0\r\n\r\n", 5);
  } else {
    for (const auto& b : data)
      if (b.size()) iov_.push_back(b);
  }
  if (endStream) responseComplete_ = true;
  if (iov_.empty()) co_return true;
  co_return co_await writeAll(std::span<const asio::const_buffer>(iov_));
}

// --- upgrade tunnel ----------------------------------------------------------------------

namespace {

template <typename From, typename To>
Awaitable<void> relay(From& from, To& to, runtime::Timed& idle) {
  std::vector<char> buf(16 * 1024);
  for (;;) {
    idle.setDeadline(net::kTunnelIdleTimeout);
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec || n == 0) break;
    auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), kNoThrow);
    if (wec) break;
  }
  std::error_code ignored;
  to.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

}  // namespace

Awaitable<void> ServerConnection::tunnel(asio::ip::tcp::socket& upstream,
                                         std::string_view upstreamLeftover) {
  using namespace asio::experimental::awaitable_operators;
  closeAfter_ = true;
  // 101 head is pending (sendHead with endStream=false): flush it with the upstream's
  // early bytes, then hand the client's already-buffered bytes to the upstream.
  iov_.clear();
  if (headPending_) {
    iov_.emplace_back(wbuf_.data(), wbuf_.size());
    headPending_ = false;
  }
  if (!upstreamLeftover.empty())
    iov_.emplace_back(upstreamLeftover.data(), upstreamLeftover.size());
  if (!iov_.empty() && !co_await writeAll(std::span<const asio::const_buffer>(iov_))) co_return;
  if (pos_ < end_) {
    auto [ec, n] = co_await asio::async_write(
        upstream, asio::buffer(buf_.data() + pos_, end_ - pos_), kNoThrow);
    pos_ = end_;
    if (ec) co_return;
  }
  responseComplete_ = true;
  co_await (relay(socket_, upstream, *this) || relay(upstream, socket_, *this));
  clearDeadline();
}

// --- main loop ---------------------------------------------------------------------------

Awaitable<void> ServerConnection::run() {
  for (;;) {
    resetRequest();
    HeadResult r = co_await readHead();
    if (r != HeadResult::kOk) break;
    idle_ = false;
    // The snapshot this request is served with; the port entry is re-resolved only when
    // the worker's config changed.
    const auto& current = worker_.config();
    if (current != config_) {
      config_ = current;
      port_ = config_ ? config_->findPort(key_.first, key_.second) : nullptr;
    }
    if (!port_) closeAfter_ = true;  // listener removed: answer, then close
    co_await worker_.proxy().serve(*this, config_, port_);
    ++served_;
    if (!responseComplete_ || closeAfter_ || !parser_.keepAlive() || draining_ ||
        worker_.draining() || !parser_.messageComplete() || parser_.upgradeRequested())
      break;
  }
  // Lingering close: stop sending, then swallow what the client still sends for a moment
  // so unread request bytes do not turn into a RST that destroys our last response.
  std::error_code ec;
  timedOut_ = false;
  if (auto* tls = socket_.tls()) {
    // TLS: send close_notify (and wait briefly for the client's) so TLS clients see a
    // clean end of stream rather than a truncation.
    setDeadline(net::kLingerTimeout);
    co_await tls->async_shutdown(kNoThrow);
    clearDeadline();
    socket_.close(ec);
    co_return;
  }
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  setDeadline(net::kLingerTimeout);
  size_t swallowed = 0;
  while (!ec && swallowed < net::kLingerMaxBytes && !timedOut_) {
    auto [rec, n] =
        co_await socket_.async_read_some(asio::buffer(buf_.data(), buf_.size()), kNoThrow);
    ec = rec;
    swallowed += n;
  }
  clearDeadline();
  socket_.close(ec);
}

}  // namespace archway::http::h1
