// Incremental HTTP/1.1 request parser: llhttp in strict mode plus the framing and
// request-target rules llhttp leaves to us (request-smuggling defences: one Host, a plain
// "chunked" Transfer-Encoding, no obs-fold, origin- or matching absolute-form targets, no
// CONNECT) and the header limits of net/limits.h. No I/O and no coroutines, so the codec
// (ServerConnection) and the fuzzer (fuzz/h1_request_fuzz.cc) run exactly the same code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <llhttp.h>

#include "http/message.h"

namespace archway::http::h1 {

class RequestParser {
 public:
  RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Forgets the previous request; the next bytes start a new one. `scheme` is what the
  // connection speaks ("http" or "https"); it fills RequestHead::scheme.
  void reset(const std::string& scheme);

  // Parses up to `len` bytes and returns how many were consumed. Parsing pauses after a
  // complete message, so bytes past it (a pipelined request) are left for the next reset().
  // `*reject` is set to the status to refuse the request with (400, 413, 431), else 0;
  // after a rejection the parser must not be fed again without reset().
  size_t feed(const char* data, size_t len, int* reject);

  RequestHead& request() { return request_; }
  const RequestHead& request() const { return request_; }
  // Body bytes parsed and not yet taken (the caller swaps them out).
  std::string& body() { return body_; }

  bool headersComplete() const { return headersComplete_; }
  bool messageComplete() const { return messageComplete_; }
  bool keepAlive() const { return keepAlive_; }
  bool expectContinue() const { return expectContinue_; }
  bool upgradeRequested() const { return upgradeRequested_; }
  // The declared or received body is over net::requestBodyLimit.
  bool bodyTooLarge() const { return bodyTooLarge_; }
  std::optional<uint64_t> declaredLength() const { return declaredLength_; }
  // llhttp's name and reason of the last parse error (for debug logs).
  const char* errorName() const;
  const char* errorReason() const;

 private:
  static int onUrl(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  int onTrailerBytes();
  int validateHead();
  size_t scanHead(const char* data, size_t len);  // offset of an obs-fold, or len

  llhttp_t parser_;
  llhttp_errno_t lastError_ = HPE_OK;
  bool obsFold_ = false;
  RequestHead request_;
  std::string url_;
  std::string body_;
  uint64_t bodyBytes_ = 0;
  std::optional<uint64_t> declaredLength_;
  size_t headBytes_ = 0;  // as llhttp reports them (url, names, values)
  size_t headFed_ = 0;    // every byte fed before the head completed
  bool lastWasValue_ = false;
  bool headersComplete_ = false;
  bool messageComplete_ = false;
  bool expectContinue_ = false;
  bool upgradeRequested_ = false;
  bool bodyTooLarge_ = false;
  int rejectStatus_ = 0;  // set by callbacks
  bool keepAlive_ = true;
  // obs-fold scan state (see scanHead).
  bool scanDone_ = false;
  bool atLineStart_ = false;
  bool lineHasContent_ = false;  // the current line has a byte other than CR
  bool sawLine_ = false;         // a non-empty line (the request line) has ended
};

}  // namespace archway::http::h1
