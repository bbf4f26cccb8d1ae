// Incremental HTTP/1.1 response parser for upstream connections: llhttp in strict mode,
// interim 1xx responses skipped (101 ends the message: the bytes after it belong to the
// tunnel), HEAD responses without a body, header limits from net/limits.h. No I/O and no
// coroutines: upstream::Connection and the fuzzer (fuzz/h1_response_fuzz.cc) share it.
#pragma once

#include <cstddef>
#include <vector>

#include <llhttp.h>

#include <asio/buffer.hpp>

#include "http/message.h"

namespace archway::http::h1 {

class ResponseParser {
 public:
  ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Starts a new exchange: status and headers go to `head` (which must outlive the
  // exchange; null: a head of the parser's own); `headRequest`: the response has no body whatever
  // its framing says.
  void reset(ResponseHead* head, bool headRequest);

  // Parses up to `len` bytes; returns false on a malformed or oversized response.
  // `*consumed` is how many were used: parsing pauses after a complete response (or a
  // 101), so bytes past it are left over. Body bytes are appended to body() as spans that
  // point into `data`: the caller takes them before the buffer is reused.
  bool feed(const char* data, size_t len, size_t* consumed);
  // The upstream closed the connection: true when that ends the response (a body
  // delimited by the close), false when it cut the response short.
  bool finish();

  bool headComplete() const { return headComplete_; }
  bool complete() const { return complete_; }
  // The connection may carry another exchange (as far as the response says).
  bool keepAlive() const { return keepAlive_; }
  bool upgraded() const { return upgraded_; }
  std::vector<asio::const_buffer>& body() { return body_; }

 private:
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  llhttp_t parser_;
  ResponseHead ownHead_;
  ResponseHead* head_ = &ownHead_;
  std::vector<asio::const_buffer> body_;
  size_t headBytes_ = 0;
  bool lastWasValue_ = false;
  bool headRequest_ = false;
  bool headComplete_ = false;
  bool complete_ = false;
  bool keepAlive_ = true;
  bool interim_ = false;
  bool upgraded_ = false;
};

}  // namespace archway::http::h1
