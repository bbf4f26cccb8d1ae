// The HTTP/1.1 codec checks shared by fuzz/h1_request_fuzz.cc, fuzz/h1_response_fuzz.cc and
// the unit test that replays their corpora under ASan/UBSan in every test run.
//
// Both parsers read untrusted bytes (clients; backends). Besides "no crash, no hang", the
// checks hold them to their contracts: a request that passes carries none of the framing
// or hop-by-hop headers, a valid Host and an origin-form target; limits hold; and the
// result never depends on how the bytes were split across reads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "check.h"
#include "http/h1/request_parser.h"
#include "http/h1/response_parser.h"
#include "net/limits.h"

namespace archway::fuzz {

// Fuzz inputs are small; a small body limit lets the fuzzer reach the 413 paths.
inline constexpr uint64_t kFuzzBodyLimit = 4096;

// One parsed request (or rejection) as a comparable string.
inline std::string describeRequest(http::h1::RequestParser& p, int reject) {
  std::string out;
  // Which limit or rule a hostile head hits first may depend on the split (llhttp calls
  // back with partial spans at read boundaries before it validates the rest of a token),
  // so a rejection compares as a rejection; the messages before it must be identical.
  if (reject != 0) return "reject\n";
  const http::RequestHead& r = p.request();
  out += r.method + " " + r.path + " " + r.authority + " v1." + std::to_string(r.versionMinor);
  out += p.keepAlive() ? " ka" : " close";
  out += p.upgradeRequested() ? " upgrade=" + r.upgrade : "";
  for (const auto& h : r.headers) out += "\n" + h.name + ": " + h.value;
  return out + "\n";
}

// Feeds `in` to a request parser in pieces of `step` bytes (0: all at once), pipelined
// requests one after another; returns what was parsed.
inline std::string parseRequests(std::string_view in, size_t step) {
  http::h1::RequestParser parser;
  std::string out;
  size_t pos = 0;
  size_t available = step == 0 ? in.size() : std::min(in.size(), step);
  parser.reset("http");
  std::string body;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    int reject = 0;
    size_t n = parser.feed(in.data() + pos, available - pos, &reject);
    check(n <= available - pos);
    pos += n;
    if (reject != 0) {
      check(reject == 400 || reject == 413 || reject == 431);
      return out + describeRequest(parser, reject);
    }
    if (parser.headersComplete()) {
      const http::RequestHead& r = parser.request();
      check(!r.method.empty());
      check(r.path == "*" || (!r.path.empty() && r.path[0] == '/'));
      check(r.headers.size() <= net::kMaxRequestHeaders);
      for (char c : r.authority) check(!(c >= 'A' && c <= 'Z'));
      for (const auto& h : r.headers) {
        check(!h.name.empty());
        check(h.name != "host" && h.name != "transfer-encoding" && h.name != "connection" &&
              h.name != "content-length" && h.name != "upgrade");
        for (char c : h.name) check(!(c >= 'A' && c <= 'Z'));
        // A value goes upstream as one line: no line break, no NUL (an obs-fold must have
        // been refused, not joined).
        for (char c : h.value) check(c != '\r' && c != '\n' && c != '\0');
      }
      body += parser.body();
      parser.body().clear();
      check(body.size() <= kFuzzBodyLimit);
    }
    if (parser.messageComplete()) {
      out += describeRequest(parser, 0) + "body " + std::to_string(body.size()) + ":" + body + "\n";
      body.clear();
      if (parser.upgradeRequested()) return out + "tunnel\n";  // the rest is not HTTP
      parser.reset("http");
      continue;
    }
    if (pos < available) continue;  // paused mid-buffer: feed the rest
    if (available == in.size()) return out + "incomplete\n";
    available = step == 0 ? in.size() : std::min(in.size(), available + step);
  }
  std::abort();  // no progress: a hang
}

inline void h1Request(const uint8_t* data, size_t size) {
  if (size == 0) return;
  uint64_t savedLimit = net::requestBodyLimit;
  net::requestBodyLimit = kFuzzBodyLimit;
  // The first byte picks the read size; the same bytes in one piece must parse the same.
  size_t step = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string whole = parseRequests(in, 0);
  std::string pieces = parseRequests(in, step);
  net::requestBodyLimit = savedLimit;
  check(whole == pieces);
}

inline std::string parseResponse(std::string_view in, size_t step, bool headRequest) {
  http::h1::ResponseParser parser;
  http::ResponseHead head;
  parser.reset(&head, headRequest);
  std::string body;
  size_t pos = 0;
  size_t available = step == 0 ? in.size() : std::min(in.size(), step);
  std::string ending;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    size_t n = 0;
    bool ok = parser.feed(in.data() + pos, available - pos, &n);
    check(n <= available - pos);
    for (const auto& b : parser.body()) body.append(static_cast<const char*>(b.data()), b.size());
    parser.body().clear();
    pos += n;
    if (!ok) {
      ending = "error";
      break;
    }
    if (parser.complete() || parser.upgraded()) {
      ending = parser.upgraded() ? "upgraded" : "complete";
      // Bytes after a complete response in the same read: the connection is not reused.
      // (Whether they arrive in the same read depends on the split, so keep-alive is
      // checked here and not compared across splits; later bytes fail the pool's probe.)
      if (parser.complete() && pos < available) check(!parser.keepAlive());
      break;
    }
    if (pos < available) continue;
    if (available == in.size()) {
      ending = parser.finish() ? "complete at close" : "cut short";
      break;
    }
    available = step == 0 ? in.size() : std::min(in.size(), available + step);
  }
  if (ending.empty()) std::abort();  // no progress: a hang
  check(body.size() <= in.size());
  if (headRequest && parser.headComplete()) check(body.empty());
  std::string out = ending + " " + std::to_string(head.status);
  if (parser.headComplete()) {
    size_t headBytes = 0;
    for (const auto& h : head.headers) headBytes += h.name.size() + h.value.size();
    check(headBytes <= net::kMaxResponseHeaderBytes);
    for (const auto& h : head.headers) out += "\n" + h.name + ": " + h.value;
  }
  return out + "\nbody " + std::to_string(body.size()) + ":" + body + "\n";
}

inline void h1Response(const uint8_t* data, size_t size) {
  if (size == 0) return;
  size_t step = 1 + data[0] % 64;
  bool headRequest = (data[0] & 0x80) != 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  check(parseResponse(in, 0, headRequest) == parseResponse(in, step, headRequest));
}

}  // namespace archway::fuzz
