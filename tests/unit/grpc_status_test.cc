#include "http/grpc/status.h"

#include <gtest/gtest.h>

namespace archway::http::grpc {
namespace {

RequestHead withContentType(const char* ct) {
  RequestHead r;
  if (ct) r.headers.add("content-type", ct);
  return r;
}

TEST(GrpcStatus, RecognisesGrpcContentTypes) {
  EXPECT_TRUE(isGrpcRequest(withContentType("application/grpc")));
  EXPECT_TRUE(isGrpcRequest(withContentType("application/grpc+proto")));
  EXPECT_TRUE(isGrpcRequest(withContentType("application/grpc;charset=utf-8")));
  EXPECT_TRUE(isGrpcRequest(withContentType("Application/GRPC")));
  EXPECT_FALSE(isGrpcRequest(withContentType("application/grpc-web")));
  EXPECT_FALSE(isGrpcRequest(withContentType("application/json")));
  EXPECT_FALSE(isGrpcRequest(withContentType(nullptr)));
}

TEST(GrpcStatus, MapsGatewayFailures) {
  EXPECT_EQ(statusForHttp(404), Status::kUnimplemented);
  EXPECT_EQ(statusForHttp(503), Status::kUnavailable);
  EXPECT_EQ(statusForHttp(502), Status::kUnavailable);
  EXPECT_EQ(statusForHttp(500), Status::kUnavailable);
  EXPECT_EQ(statusForHttp(504), Status::kDeadlineExceeded);
  EXPECT_EQ(statusForHttp(400), Status::kInternal);
  EXPECT_EQ(statusForHttp(401), Status::kUnauthenticated);
  EXPECT_EQ(statusForHttp(403), Status::kPermissionDenied);
  EXPECT_EQ(statusForHttp(418), Status::kUnknown);
}

TEST(GrpcStatus, TrailersOnlyResponse) {
  ResponseHead head;
  head.status = 503;
  head.contentLength = 10;
  makeTrailersOnly(head, Status::kUnavailable, "no healthy upstream\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_FALSE(head.contentLength);
  ASSERT_NE(head.headers.get("grpc-status"), nullptr);
  EXPECT_EQ(*head.headers.get("grpc-status"), "14");
  EXPECT_EQ(*head.headers.get("grpc-message"), "no healthy upstream");
  EXPECT_EQ(*head.headers.get("content-type"), "application/grpc");
}

TEST(GrpcStatus, EncodesMessage) {
  EXPECT_EQ(encodeMessage("a b"), "a b");
  EXPECT_EQ(encodeMessage("50%"), "50%25");
  EXPECT_EQ(encodeMessage("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(encodeMessage("x\ny"), "x%0Ay");
}

TEST(GrpcStatus, WholeMessage) {
  using namespace std::string_view_literals;
  EXPECT_FALSE(hasWholeMessage(""));
  EXPECT_FALSE(hasWholeMessage("\0\0\0\0"sv));      // prefix cut short
  EXPECT_TRUE(hasWholeMessage("\0\0\0\0\0"sv));     // empty message
  EXPECT_FALSE(hasWholeMessage("\0\0\0\0\3ab"sv));  // payload cut short
  EXPECT_TRUE(hasWholeMessage("\0\0\0\0\3abc"sv));
  EXPECT_TRUE(hasWholeMessage("\1\0\0\0\2abcd"sv));  // more behind (next message)
  EXPECT_FALSE(
      hasWholeMessage("\0\xff\xff\xff\xff"
                      "abc"sv));
  EXPECT_FALSE(hasWholeMessage("\0\0\1\0\0"sv));  // 65536 bytes announced
}

TEST(GrpcStatus, ParsesTimeouts) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parseTimeout("1S"), milliseconds(1000));
  EXPECT_EQ(parseTimeout("250m"), milliseconds(250));
  EXPECT_EQ(parseTimeout("2M"), milliseconds(120000));
  EXPECT_EQ(parseTimeout("1H"), milliseconds(3600000));
  EXPECT_EQ(parseTimeout("1500u"), milliseconds(2));  // rounded up
  EXPECT_EQ(parseTimeout("1n"), milliseconds(1));
  EXPECT_FALSE(parseTimeout("S"));
  EXPECT_FALSE(parseTimeout("10"));
  EXPECT_FALSE(parseTimeout("123456789S"));  // more than 8 digits
  EXPECT_FALSE(parseTimeout("1x"));
  EXPECT_FALSE(parseTimeout("-1S"));
}

}  // namespace
}  // namespace archway::http::grpc
