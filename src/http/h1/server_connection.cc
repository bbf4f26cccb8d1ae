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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~' || c == '%' ||
         c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
         c == '+' || c == ',' || c == ';' || c == '=';
}

void appendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

}  // namespace

const llhttp_settings_t* ServerConnection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_url = &ServerConnection::onUrl;
    x.on_header_field = &ServerConnection::onHeaderField;
    x.on_header_value = &ServerConnection::onHeaderValue;
    x.on_headers_complete = &ServerConnection::onHeadersComplete;
    x.on_body = &ServerConnection::onBody;
    x.on_message_complete = &ServerConnection::onMessageComplete;
    return x;
  }();
  return &s;
}

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
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) {
    info_.remoteAddress = remote.address().to_string();
    info_.remotePort = remote.port();
  }
  auto local = socket_.local_endpoint(ec);
  if (!ec) info_.localAddress = local.address().to_string();
  info_.localPort = key_.second;
  llhttp_init(&parser_, HTTP_REQUEST, settings());
  parser_.data = this;
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
  request_.method.clear();
  request_.path.clear();
  request_.authority.clear();
  request_.headers.clear();
  request_.hasBody = false;
  request_.upgrade.clear();
  request_.scheme = info_.scheme;
  url_.clear();
  body_.clear();
  bodyBytes_ = 0;
  declaredLength_.reset();
  bodyAborted_ = false;
  headBytes_ = 0;
  lastWasValue_ = false;
  headersComplete_ = messageComplete_ = false;
  expectContinue_ = continueSent_ = upgradeRequested_ = bodyTooLarge_ = false;
  rejectStatus_ = 0;
  keepAlive_ = true;
  scanDone_ = false;
  atLineStart_ = false;
  lineLen_ = 1;
  headSent_ = headPending_ = chunked_ = responseComplete_ = false;
}

// --- llhttp callbacks --------------------------------------------------------------------

int ServerConnection::onUrl(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->headBytes_ += len;
  if (c->headBytes_ > net::kMaxRequestHeaderBytes) {
    c->rejectStatus_ = 431;
    return -1;
  }
  c->url_.append(at, len);
  return 0;
}

int ServerConnection::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->headBytes_ += len;
  auto& items = c->request_.headers.items();
  if (c->lastWasValue_ || items.empty()) {
    if (items.size() >= net::kMaxRequestHeaders) {
      c->rejectStatus_ = 431;
      return -1;
    }
    items.push_back(Header{});
    c->lastWasValue_ = false;
  }
  if (c->headBytes_ > net::kMaxRequestHeaderBytes) {
    c->rejectStatus_ = 431;
    return -1;
  }
  std::string& name = items.back().name;
  size_t old = name.size();
  name.append(at, len);
  for (size_t i = old; i < name.size(); ++i)
    if (name[i] >= 'A' && name[i] <= 'Z') name[i] = static_cast<char>(name[i] + 32);
  return 0;
}

int ServerConnection::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->headBytes_ += len + 4;
  if (c->headBytes_ > net::kMaxRequestHeaderBytes) {
    c->rejectStatus_ = 431;
    return -1;
  }
  auto& items = c->request_.headers.items();
  if (items.empty()) return -1;
  items.back().value.append(at, len);
  c->lastWasValue_ = true;
  return 0;
}

int ServerConnection::onHeadersComplete(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->headersComplete_ = true;
  int status = c->validateHead();
  if (status != 0) {
    c->rejectStatus_ = status;
    return -1;
  }
  return 0;
}

int ServerConnection::onBody(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->bodyBytes_ += len;
  if (c->bodyBytes_ > net::requestBodyLimit) {
    c->bodyTooLarge_ = true;
    c->rejectStatus_ = 413;
    return -1;
  }
  c->body_.append(at, len);
  return 0;
}

int ServerConnection::onMessageComplete(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->messageComplete_ = true;
  c->keepAlive_ = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

// Framing and request-target rules beyond llhttp's strict mode (request smuggling
// defences): one Host, a plain "chunked" Transfer-Encoding, origin-form targets (or
// absolute-form agreeing with Host; "*" for OPTIONS), no CONNECT.
int ServerConnection::validateHead() {
  auto& r = request_;
  r.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  r.versionMinor = parser_.http_minor;
  if (parser_.http_major != 1) return 400;
  if (parser_.method == HTTP_CONNECT) return 400;

  std::string host;
  int hosts = 0;
  bool te = false;
  std::string connectionTokens;
  for (const auto& h : r.headers) {
    if (h.name.empty()) return 400;
    if (h.name == "host") {
      ++hosts;
      host = h.value;
    } else if (h.name == "transfer-encoding") {
      if (te || !iequals(trim(h.value), "chunked")) return 400;
      te = true;
    } else if (h.name == "connection") {
      if (!connectionTokens.empty()) connectionTokens.push_back(',');
      connectionTokens.append(h.value);
    } else if (h.name == "expect") {
      if (iequals(trim(h.value), "100-continue")) expectContinue_ = true;
    } else if (h.name == "upgrade") {
      r.upgrade = std::string(trim(h.value));
    }
  }
  if (hosts > 1) return 400;
  if (hosts == 0 && r.versionMinor >= 1) return 400;
  for (char ch : host)
    if (!isHostChar(ch)) return 400;

  // Request target.
  if (url_.empty()) return 400;
  if (url_[0] == '/') {
    r.path = url_;
  } else if (url_ == "*") {
    if (r.method != "OPTIONS") return 400;
    r.path = "*";
  } else {
    std::string_view u = url_;
    size_t sep = u.find("://");
    if (sep == std::string_view::npos) return 400;
    std::string scheme = toLower(u.substr(0, sep));
    if (scheme != "http" && scheme != "https") return 400;
    std::string_view rest = u.substr(sep + 3);
    size_t slash = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos) return 400;
    if (hosts == 1 && !iequals(authority, host)) return 400;
    host.assign(authority);
    r.path = slash == std::string_view::npos ? std::string("/") : std::string(rest.substr(slash));
    if (r.path[0] == '?') r.path.insert(0, "/");
  }
  r.authority = std::move(host);
  toLowerInPlace(r.authority);

  // Connection-listed headers are hop-by-hop too.
  std::vector<std::string> listed;
  bool wantsUpgrade = false;
  std::string_view tokens = connectionTokens;
  while (!tokens.empty()) {
    size_t comma = tokens.find(',');
    std::string_view t = trim(tokens.substr(0, comma));
    tokens = comma == std::string_view::npos ? std::string_view() : tokens.substr(comma + 1);
    if (t.empty()) continue;
    std::string lt = toLower(t);
    if (lt == "upgrade") wantsUpgrade = true;
    if (lt != "close" && lt != "keep-alive" && lt != "upgrade") listed.push_back(std::move(lt));
  }
  upgradeRequested_ = wantsUpgrade && !r.upgrade.empty() && r.versionMinor >= 1;
  if (!upgradeRequested_) r.upgrade.clear();
  auto& items = r.headers.items();
  std::erase_if(items, [&](const Header& h) {
    if (h.name == "host" || isHopByHop(h.name)) return true;
    for (const auto& l : listed)
      if (h.name == l) return true;
    return false;
  });
  r.hasBody = (parser_.flags & F_CHUNKED) || (parser_.flags & F_CONTENT_LENGTH);
  if (expectContinue_ && !r.hasBody) expectContinue_ = false;
  // A declared length over the limit is refused before any of it is read (and before a
  // 100 Continue would invite the client to send it).
  if (parser_.flags & F_CONTENT_LENGTH) {
    declaredLength_ = parser_.content_length;
    if (parser_.content_length > net::requestBodyLimit) bodyTooLarge_ = true;
  }
  return 0;
}

// --- reading -----------------------------------------------------------------------------

// llhttp (8.x, even strict) folds obs-fold continuation lines into the value; RFC 9112
// lets a server reject them, and proxies must not forward them. Scans the head bytes not
// yet parsed for a line that starts with SP/HTAB; stops at the empty line ending the head.
bool ServerConnection::scanHead() {
  const char* b = buf_.data();
  for (size_t i = pos_; i < end_; ++i) {
    char c = b[i];
    if (c == '\n') {
      if (lineLen_ == 0) {
        scanDone_ = true;
        return true;
      }
      lineLen_ = 0;
      atLineStart_ = true;
      continue;
    }
    if (atLineStart_ && (c == ' ' || c == '\t')) return false;
    atLineStart_ = false;
    if (c != '\r') ++lineLen_;
  }
  return true;
}

int ServerConnection::execute() {
  if (pos_ >= end_) return 0;
  const char* start = buf_.data() + pos_;
  llhttp_errno_t err = llhttp_execute(&parser_, start, end_ - pos_);
  if (err == HPE_OK) {
    pos_ = end_;
    return 0;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    pos_ = static_cast<size_t>(llhttp_get_error_pos(&parser_) - buf_.data());
    if (err == HPE_PAUSED) llhttp_resume(&parser_);
    return 0;
  }
  if (rejectStatus_ != 0) return rejectStatus_;
  spdlog::debug("bad request from {}: {} ({})", info_.remoteAddress, llhttp_errno_name(err),
                llhttp_get_error_reason(&parser_));
  return 400;
}

Awaitable<bool> ServerConnection::readSome() {
  pos_ = end_ = 0;
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf_), kNoThrow);
  if (ec || n == 0) co_return false;
  end_ = n;
  co_return true;
}

Awaitable<ServerConnection::HeadResult> ServerConnection::readHead() {
  bool sawByte = false;
  size_t fedBytes = 0;
  for (;;) {
    if (pos_ < end_) {
      if (!sawByte) {
        sawByte = true;
        idle_ = false;
        setDeadline(net::kHeaderReadTimeout);
      }
      size_t before = pos_;
      if (!scanDone_ && !scanHead()) {
        co_await sendError(400);
        co_return HeadResult::kRejected;
      }
      int status = execute();
      if (status != 0) {
        co_await sendError(status);
        co_return HeadResult::kRejected;
      }
      if (headersComplete_) {
        clearDeadline();
        co_return HeadResult::kOk;
      }
      fedBytes += pos_ - before;
      if (fedBytes > net::kMaxRequestHeaderBytes) {
        co_await sendError(431);
        co_return HeadResult::kRejected;
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
  if (bodyTooLarge_) co_return BodyResult::kTooLarge;
  if (bodyAborted_) co_return BodyResult::kError;
  if (wait && !messageComplete_ && expectContinue_ && !continueSent_) {
    continueSent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::const_buffer b(kContinue.data(), kContinue.size());
    if (!co_await writeAll(std::span<const asio::const_buffer>(&b, 1)))
      co_return BodyResult::kError;
  }
  // Parsing stops after the message (llhttp pauses), so body_ never holds more than
  // the bytes of one read: the caller's pace is the client's.
  while (body_.empty() && !messageComplete_) {
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
  if (out.empty()) {
    out.swap(body_);
  } else {
    out.append(body_);
  }
  body_.clear();
  end = messageComplete_;
  co_return BodyResult::kOk;
}

void ServerConnection::abortBodyRead() {
  if (bodyAborted_ || messageComplete_) return;
  bodyAborted_ = true;
  closeAfter_ = true;  // the rest of the body will not be read: no keep-alive
  std::error_code ec;
  socket_.cancel(ec);  // wakes a pending read
}

// --- writing -----------------------------------------------------------------------------

Awaitable<bool> ServerConnection::writeAll(std::span<const asio::const_buffer> bufs) {
  setDeadline(net::kDownstreamWriteTimeout);
  auto [ec, n] = co_await asio::async_write(socket_, bufs, kNoThrow);
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
  bool closing = closeAfter_ || !keepAlive_ || draining_ || worker_.draining() ||
                 !messageComplete_ || served_ + 1 >= net::kMaxRequestsPerConnection;
  bool headRequest = request_.method == "HEAD";
  wbuf_.clear();
  wbuf_.append(request_.versionMinor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
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
    } else if (request_.versionMinor >= 1) {
      appendHeader(wbuf_, "transfer-encoding", "chunked");
      chunked_ = true;
    } else {
      closing = true;  // HTTP/1.0 without a length: the body ends at close
    }
    if (closing) {
      appendHeader(wbuf_, "connection", "close");
      closeAfter_ = true;
    } else if (request_.versionMinor == 0) {
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
    if (!responseComplete_ || closeAfter_ || !keepAlive_ || draining_ || worker_.draining() ||
        !messageComplete_ || upgradeRequested_)
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
    auto [rec, n] = co_await socket_.async_read_some(asio::buffer(buf_), kNoThrow);
    ec = rec;
    swallowed += n;
  }
  clearDeadline();
  socket_.close(ec);
}

}  // namespace archway::http::h1
