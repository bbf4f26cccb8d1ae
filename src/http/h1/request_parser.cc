#include "http/h1/request_parser.h"

#include <cstring>
#include <vector>

#include "net/limits.h"

namespace archway::http::h1 {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const llhttp_settings_t* RequestParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_url = &RequestParser::onUrl;
    x.on_header_field = &RequestParser::onHeaderField;
    x.on_header_value = &RequestParser::onHeaderValue;
    x.on_headers_complete = &RequestParser::onHeadersComplete;
    x.on_body = &RequestParser::onBody;
    x.on_message_complete = &RequestParser::onMessageComplete;
    return x;
  }();
  return &s;
}

RequestParser::RequestParser() {
  llhttp_init(&parser_, HTTP_REQUEST, settings());
  parser_.data = this;
}

void RequestParser::reset(const std::string& scheme) {
  // llhttp resets itself between keep-alive messages, except after one it took for an
  // upgrade (Upgrade + "Connection: upgrade"): then it consumes nothing more, forever. We
  // may have answered such a request as a plain one (HTTP/1.0, for one), and the bytes
  // that follow are the next request.
  llhttp_reset(&parser_);
  request_.method.clear();
  request_.path.clear();
  request_.authority.clear();
  request_.headers.clear();
  request_.hasBody = false;
  request_.upgrade.clear();
  request_.scheme = scheme;
  url_.clear();
  body_.clear();
  bodyBytes_ = 0;
  declaredLength_.reset();
  headBytes_ = 0;
  headFed_ = 0;
  lastWasValue_ = false;
  headersComplete_ = messageComplete_ = false;
  expectContinue_ = upgradeRequested_ = bodyTooLarge_ = false;
  rejectStatus_ = 0;
  keepAlive_ = true;
  scanDone_ = false;
  atLineStart_ = false;
  lineHasContent_ = false;
  sawLine_ = false;
  lastError_ = HPE_OK;
  obsFold_ = false;
}

const char* RequestParser::errorName() const { return llhttp_errno_name(lastError_); }

const char* RequestParser::errorReason() const {
  if (obsFold_) return "obs-fold (a header line starting with whitespace)";
  const char* r = llhttp_get_error_reason(&parser_);
  return r ? r : "";
}

// --- llhttp callbacks --------------------------------------------------------------------

int RequestParser::onUrl(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->headBytes_ += len;
  if (c->headBytes_ > net::kMaxRequestHeaderBytes) {
    c->rejectStatus_ = 431;
    return -1;
  }
  c->url_.append(at, len);
  return 0;
}

int RequestParser::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->headBytes_ += len;
  if (c->headersComplete_) return c->onTrailerBytes();
  auto& items = c->request_.headers.items();
  if (c->lastWasValue_ || items.empty()) {
    if (items.size() >= net::kMaxRequestHeaders) {
      c->rejectStatus_ = 431;
      return -1;
    }
    items.push_back(Header{});
    c->lastWasValue_ = false;
    c->headBytes_ += 4;  // ": " and CRLF, once per field whatever the read sizes
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

int RequestParser::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->headBytes_ += len;
  if (c->headersComplete_) return c->onTrailerBytes();
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

// Chunked trailer fields are dropped, never merged into the head: by then the head was
// routed and filtered (a trailer could re-add a header a filter removed, or a second
// Host), and it may already be upstream. RFC 9110 §6.5.1 lets a proxy discard them, as
// nginx does. They still count against the head's byte budget.
int RequestParser::onTrailerBytes() {
  if (headBytes_ > net::kMaxRequestHeaderBytes) {
    rejectStatus_ = 431;
    return -1;
  }
  return 0;
}

int RequestParser::onHeadersComplete(llhttp_t* p) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->headersComplete_ = true;
  int status = c->validateHead();
  if (status != 0) {
    c->rejectStatus_ = status;
    return -1;
  }
  return 0;
}

int RequestParser::onBody(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->bodyBytes_ += len;
  if (c->bodyBytes_ > net::requestBodyLimit) {
    c->bodyTooLarge_ = true;
    c->rejectStatus_ = 413;
    return -1;
  }
  c->body_.append(at, len);
  return 0;
}

int RequestParser::onMessageComplete(llhttp_t* p) {
  auto* c = static_cast<RequestParser*>(p->data);
  c->messageComplete_ = true;
  c->keepAlive_ = llhttp_should_keep_alive(p) != 0;
  return HPE_PAUSED;
}

// --- validation --------------------------------------------------------------------------

int RequestParser::validateHead() {
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
  if (!isValidAuthority(r.authority)) return 400;
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

// llhttp (8.x, even strict) folds obs-fold continuation lines into the value; RFC 9112
// lets a server reject them, and proxies must not forward them. Scans head bytes for a
// line that starts with SP/HTAB and returns its offset (len when there is none); stops at
// the empty line ending the head.
// Finds an obs-fold (a line of the head that starts with SP or HT) before llhttp, which
// would accept it, sees it. Stops at the empty line that ends the head; empty lines before
// the request line (which llhttp skips, RFC 9112 §2.2) do not end it. Jumps from line end
// to line end with memchr: this runs on every request.
size_t RequestParser::scanHead(const char* data, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (atLineStart_ && (data[i] == ' ' || data[i] == '\t')) return i;
    atLineStart_ = false;
    const char* nl = static_cast<const char*>(std::memchr(data + i, '\n', len - i));
    size_t end = nl ? static_cast<size_t>(nl - data) : len;
    for (size_t j = i; j < end && !lineHasContent_; ++j)
      if (data[j] != '\r') lineHasContent_ = true;
    if (!nl) return len;
    if (lineHasContent_) {
      sawLine_ = true;
    } else if (sawLine_) {
      scanDone_ = true;
      return len;
    }
    lineHasContent_ = false;
    atLineStart_ = true;
    i = end + 1;
  }
  return len;
}

size_t RequestParser::feed(const char* data, size_t len, int* reject) {
  *reject = 0;
  if (len == 0) return 0;
  // An obs-fold is refused once llhttp has seen the bytes before it, so the status does
  // not depend on how the head was split across reads.
  size_t fold = len;
  if (!headersComplete_ && !scanDone_) fold = scanHead(data, len);
  size_t consumed = fold;
  llhttp_errno_t err = fold > 0 ? llhttp_execute(&parser_, data, fold) : HPE_OK;
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    if (err == HPE_PAUSED) llhttp_resume(&parser_);
  } else if (err != HPE_OK) {
    lastError_ = err;
    *reject = rejectStatus_ != 0 ? rejectStatus_ : 400;
    return 0;
  }
  // llhttp counts a head's bytes only in the pieces it hands to callbacks; bound the
  // bytes read while the head is incomplete too (whitespace, CRLFs).
  if (!headersComplete_) {
    headFed_ += consumed;
    if (headFed_ > net::kMaxRequestHeaderBytes) *reject = 431;
  }
  // Bytes left, nothing consumed and no message ended: llhttp is stuck (it should never
  // be; reset() handles the case we know). Refuse rather than spin on the same bytes.
  if (consumed == 0 && fold == len && !messageComplete_ && *reject == 0) {
    lastError_ = HPE_INTERNAL;
    *reject = 400;
  }
  if (fold < len && *reject == 0) {
    lastError_ = HPE_INVALID_HEADER_TOKEN;
    obsFold_ = true;
    *reject = 400;
  }
  return consumed;
}

}  // namespace archway::http::h1
