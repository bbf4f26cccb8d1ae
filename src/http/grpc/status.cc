#include "http/grpc/status.h"

#include <string>

namespace archway::http::grpc {

bool isGrpcRequest(const RequestHead& request) {
  const std::string* ct = request.headers.get("content-type");
  if (!ct) return false;
  std::string_view v = *ct;
  static constexpr std::string_view kGrpc = "application/grpc";
  if (v.size() < kGrpc.size() || !iequals(v.substr(0, kGrpc.size()), kGrpc)) return false;
  return v.size() == kGrpc.size() || v[kGrpc.size()] == '+' || v[kGrpc.size()] == ';';
}

Status statusForHttp(int s) {
  switch (s) {
    case 400:
      return Status::kInternal;
    case 401:
      return Status::kUnauthenticated;
    case 403:
      return Status::kPermissionDenied;
    case 404:
      return Status::kUnimplemented;
    case 408:
    case 504:
      return Status::kDeadlineExceeded;
    case 413:
    case 431:
      return Status::kResourceExhausted;
    case 429:
    case 500:
    case 502:
    case 503:
      return Status::kUnavailable;
    default:
      return Status::kUnknown;
  }
}

bool hasWholeMessage(std::string_view body) {
  if (body.size() < 5) return false;
  uint64_t length = 0;
  for (size_t i = 1; i < 5; ++i) length = length << 8 | static_cast<unsigned char>(body[i]);
  return body.size() - 5 >= length;
}

std::string encodeMessage(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (unsigned char c : message) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void makeTrailersOnly(ResponseHead& head, Status status, std::string_view message) {
  head.status = 200;
  head.headers.set("content-type", "application/grpc");
  head.headers.set("grpc-status", std::to_string(static_cast<int>(status)));
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.remove_suffix(1);
  if (!message.empty()) head.headers.set("grpc-message", encodeMessage(message));
  head.contentLength.reset();
}

std::optional<std::chrono::milliseconds> parseTimeout(std::string_view v) {
  if (v.size() < 2 || v.size() > 9) return std::nullopt;
  char unit = v.back();
  v.remove_suffix(1);
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  using namespace std::chrono;
  switch (unit) {
    case 'H':
      return duration_cast<milliseconds>(hours(n));
    case 'M':
      return duration_cast<milliseconds>(minutes(n));
    case 'S':
      return duration_cast<milliseconds>(seconds(n));
    case 'm':
      return milliseconds(n);
    // Sub-millisecond deadlines round up so they do not become "no deadline".
    case 'u':
      return milliseconds((n + 999) / 1000);
    case 'n':
      return milliseconds((n + 999999) / 1000000);
    default:
      return std::nullopt;
  }
}

}  // namespace archway::http::grpc
