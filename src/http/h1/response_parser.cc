#include "http/h1/response_parser.h"

#include "net/limits.h"

namespace archway::http::h1 {

const llhttp_settings_t* ResponseParser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_header_field = &ResponseParser::onHeaderField;
    x.on_header_value = &ResponseParser::onHeaderValue;
    x.on_headers_complete = &ResponseParser::onHeadersComplete;
    x.on_body = &ResponseParser::onBody;
    x.on_message_complete = &ResponseParser::onMessageComplete;
    return x;
  }();
  return &s;
}

ResponseParser::ResponseParser() {
  llhttp_init(&parser_, HTTP_RESPONSE, settings());
  parser_.data = this;
}

void ResponseParser::reset(ResponseHead* head, bool headRequest) {
  llhttp_reset(&parser_);
  if (!head) {
    ownHead_.headers.clear();
    head = &ownHead_;
  }
  head_ = head;
  body_.clear();
  headBytes_ = 0;
  lastWasValue_ = false;
  headRequest_ = headRequest;
  headComplete_ = complete_ = interim_ = upgraded_ = false;
  keepAlive_ = true;
}

int ResponseParser::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ResponseParser*>(p->data);
  c->headBytes_ += len;
  if (c->headBytes_ > net::kMaxResponseHeaderBytes) return -1;
  // Trailer fields of a chunked body are dropped (the head went downstream already);
  // they still count against the byte budget.
  if (c->headComplete_) return 0;
  auto& items = c->head_->headers.items();
  if (c->lastWasValue_ || items.empty()) {
    items.push_back(Header{});
    c->lastWasValue_ = false;
    c->headBytes_ += 4;  // ": " and CRLF, once per field whatever the read sizes
  }
  std::string& name = items.back().name;
  size_t old = name.size();
  name.append(at, len);
  for (size_t i = old; i < name.size(); ++i)
    if (name[i] >= 'A' && name[i] <= 'Z') name[i] = static_cast<char>(name[i] + 32);
  return 0;
}

int ResponseParser::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ResponseParser*>(p->data);
  c->headBytes_ += len;
  if (c->headBytes_ > net::kMaxResponseHeaderBytes) return -1;
  if (c->headComplete_) return 0;
  auto& items = c->head_->headers.items();
  if (items.empty()) return -1;
  items.back().value.append(at, len);
  c->lastWasValue_ = true;
  return 0;
}

int ResponseParser::onHeadersComplete(llhttp_t* p) {
  auto* c = static_cast<ResponseParser*>(p->data);
  int status = p->status_code;
  c->head_->status = status;
  if (status >= 100 && status < 200 && status != 101) {
    c->interim_ = true;
    return 0;
  }
  c->headComplete_ = true;
  c->keepAlive_ = llhttp_should_keep_alive(p) != 0;
  if (status == 101) {
    c->upgraded_ = true;
    c->keepAlive_ = false;
    return 2;  // no body; execute returns HPE_PAUSED_UPGRADE
  }
  if (c->headRequest_) return 1;
  return 0;
}

int ResponseParser::onBody(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ResponseParser*>(p->data);
  c->body_.emplace_back(at, len);
  return 0;
}

int ResponseParser::onMessageComplete(llhttp_t* p) {
  auto* c = static_cast<ResponseParser*>(p->data);
  if (c->interim_) {
    // A skipped 1xx: drop its headers and continue with the final response.
    c->interim_ = false;
    c->head_->headers.clear();
    c->headBytes_ = 0;
    c->lastWasValue_ = false;
    return 0;
  }
  c->complete_ = true;
  return HPE_PAUSED;
}

bool ResponseParser::feed(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  if (len == 0) return true;
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (err == HPE_OK) {
    *consumed = len;
    return true;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    *consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    if (err == HPE_PAUSED) {
      llhttp_resume(&parser_);
      // Bytes after a complete response on a keep-alive connection: protocol violation.
      if (complete_ && *consumed < len) keepAlive_ = false;
    }
    return true;
  }
  return false;
}

bool ResponseParser::finish() {
  if (llhttp_finish(&parser_) == HPE_OK && complete_) {
    keepAlive_ = false;
    return true;
  }
  return complete_;
}

}  // namespace archway::http::h1
