// gRPC over HTTP/2 helpers: recognising gRPC requests, answering gateway-side failures as
// gRPC status (trailers-only responses) instead of HTML/text, and grpc-timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "http/message.h"

namespace archway::http::grpc {

// Status codes used by the gateway (grpc/doc/statuscodes.md).
enum class Status : int {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kDeadlineExceeded = 4,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

// content-type application/grpc, application/grpc+proto, application/grpc;...
bool isGrpcRequest(const RequestHead& request);

// The status a gateway-generated HTTP error stands for. Follows grpc/doc/http-grpc-status-
// mapping.md (400->INTERNAL, 401->UNAUTHENTICATED, 403->PERMISSION_DENIED,
// 404->UNIMPLEMENTED, 429/502/503->UNAVAILABLE) except that our own timeouts (408/504)
// are DEADLINE_EXCEEDED and a route without a usable backend (500) is UNAVAILABLE.
Status statusForHttp(int httpStatus);

// Fills `head` as a trailers-only response: :status 200, content-type application/grpc,
// grpc-status and grpc-message (percent-encoded) in the headers, no body.
void makeTrailersOnly(ResponseHead& head, Status status, std::string_view message);

// True when `body` starts with a whole length-prefixed message (flag byte, 4-byte
// big-endian length, payload).
bool hasWholeMessage(std::string_view body);

// Percent-encodes a grpc-message value (spec: printable ASCII except '%').
std::string encodeMessage(std::string_view message);

// Parses a grpc-timeout value ("1S", "250m", "100u", "10n", "2H", "3M"; at most 8 digits).
// nullopt when malformed.
std::optional<std::chrono::milliseconds> parseTimeout(std::string_view value);

}  // namespace archway::http::grpc
