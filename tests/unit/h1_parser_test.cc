// HTTP/1.1 request and response parsers (src/http/h1): framing rules, limits, pipelining,
// and the states that follow an upgrade.
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "http/h1/request_parser.h"
#include "http/h1/response_parser.h"
#include "http/message.h"
#include "net/limits.h"

namespace archway::http::h1 {
namespace {

// Feeds all of `in`; returns the reject status (0: none) and sets *consumed.
int feedAll(RequestParser& p, std::string_view in, size_t* consumed = nullptr) {
  int reject = 0;
  size_t n = p.feed(in.data(), in.size(), &reject);
  if (consumed) *consumed = n;
  return reject;
}

int rejectOf(std::string_view in) {
  RequestParser p;
  p.reset("http");
  return feedAll(p, in);
}

TEST(RequestParser, ParsesHeadAndBodyAndDropsFramingHeaders) {
  RequestParser p;
  p.reset("https");
  std::string in =
      "POST /a/b?x=1 HTTP/1.1\r\nHost: Example.COM:8443\r\nX-Id: 7\r\nContent-Length: 5\r\n"
      "Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\r\nhello";
  EXPECT_EQ(feedAll(p, in), 0);
  ASSERT_TRUE(p.headersComplete());
  ASSERT_TRUE(p.messageComplete());
  const RequestHead& r = p.request();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/a/b?x=1");
  EXPECT_EQ(r.authority, "example.com:8443");
  EXPECT_EQ(r.scheme, "https");
  EXPECT_TRUE(r.hasBody);
  EXPECT_EQ(p.declaredLength(), 5u);
  EXPECT_EQ(p.body(), "hello");
  ASSERT_NE(r.headers.get("x-id"), nullptr);
  EXPECT_EQ(r.headers.get("content-length"), nullptr);
  EXPECT_EQ(r.headers.get("connection"), nullptr);
  EXPECT_EQ(r.headers.get("x-hop"), nullptr);  // listed in Connection: hop-by-hop
  EXPECT_TRUE(p.keepAlive());
}

TEST(RequestParser, PipelinedRequestsParseOneAtATimeWhateverTheSplit) {
  std::string in =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\n"
      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, in.size()}) {
    SCOPED_TRACE(step);
    RequestParser p;
    p.reset("http");
    std::vector<std::string> seen;
    std::string body;
    size_t pos = 0, avail = std::min(step, in.size());
    while (seen.size() < 3) {
      int reject = 0;
      pos += p.feed(in.data() + pos, avail - pos, &reject);
      ASSERT_EQ(reject, 0);
      body += p.body();
      p.body().clear();
      if (p.messageComplete()) {
        seen.push_back(p.request().method + " " + p.request().path + " " + body);
        body.clear();
        p.reset("http");
        continue;
      }
      if (pos == avail) {
        ASSERT_LT(avail, in.size());
        avail = std::min(in.size(), avail + step);
      }
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"GET /1 ", "POST /2 abc", "GET /3 "}));
    EXPECT_EQ(pos, in.size());
  }
}

TEST(RequestParser, SmugglingShapesAreRefused) {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",          // obs-fold
      "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",  // after empty lines
      "\r\nGET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\n\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // HTTP/1.1 without Host
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://a{b}/ HTTP/1.0\r\n\r\n",  // absolute-form authority without Host
      "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
      "GET x HTTP/1.1\r\nHost: a\r\n\r\n",
      "POST * HTTP/1.1\r\nHost: a\r\n\r\n",
      "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
      "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
  };
  for (const char* c : cases) EXPECT_EQ(rejectOf(c), 400) << c;
}

TEST(RequestParser, ObsFoldIsRefusedInWhateverPieceItArrives) {
  std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n";
  for (size_t split = 1; split < in.size(); ++split) {
    RequestParser p;
    p.reset("http");
    int reject = 0;
    size_t n = p.feed(in.data(), split, &reject);
    if (reject == 0) p.feed(in.data() + n, in.size() - n, &reject);
    EXPECT_EQ(reject, 400) << split;
  }
}

TEST(RequestParser, HeaderLimitsGive431) {
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (size_t i = 0; i <= net::kMaxRequestHeaders; ++i)
    many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(rejectOf(many + "\r\n"), 431);
  std::string big =
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(net::kMaxRequestHeaderBytes, 'v') +
      "\r\n\r\n";
  EXPECT_EQ(rejectOf(big), 431);
  std::string longUrl = "GET /" + std::string(net::kMaxRequestHeaderBytes, 'u') + " HTTP/1.1\r\n";
  EXPECT_EQ(rejectOf(longUrl), 431);
}

// A slow client's head arrives in small reads; its byte budget must not depend on that
// (values used to be charged 4 extra bytes per callback; found by the fuzzer).
TEST(RequestParser, HeaderByteBudgetDoesNotDependOnReadSizes) {
  std::string in = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 40; ++i)
    in += "X-" + std::to_string(i) + ": " + std::string(400, 'v') + "\r\n";
  in += "\r\n";
  RequestParser p;
  p.reset("http");
  int reject = 0;
  for (size_t i = 0; i < in.size() && reject == 0; ++i) p.feed(in.data() + i, 1, &reject);
  EXPECT_EQ(reject, 0);
  EXPECT_TRUE(p.messageComplete());
  EXPECT_EQ(p.request().headers.size(), 40u);
}

TEST(RequestParser, BodyOverTheLimitIs413AndADeclaredOneIsFlaggedEarly) {
  uint64_t saved = net::requestBodyLimit;
  net::requestBodyLimit = 10;
  {
    RequestParser p;
    p.reset("http");
    EXPECT_EQ(feedAll(p, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"), 0);
    EXPECT_TRUE(p.headersComplete());
    EXPECT_TRUE(p.bodyTooLarge());  // before a byte of it was read
  }
  {
    RequestParser p;
    p.reset("http");
    EXPECT_EQ(feedAll(p,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "6\r\nabcdef\r\n6\r\nabcdef\r\n"),
              413);
  }
  net::requestBodyLimit = saved;
}

// Trailers arrive after routing and filters; merged into the head they could smuggle a
// second Host or re-add a removed header (found by fuzz/h1_response_fuzz.cc).
TEST(RequestParser, ChunkedTrailerFieldsAreDropped) {
  RequestParser p;
  p.reset("http");
  EXPECT_EQ(feedAll(p,
                    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "2\r\nhi\r\n0\r\nHost: evil\r\nX-Injected: 1\r\n\r\n"),
            0);
  EXPECT_TRUE(p.messageComplete());
  EXPECT_EQ(p.body(), "hi");
  EXPECT_EQ(p.request().authority, "a");
  EXPECT_EQ(p.request().headers.get("host"), nullptr);
  EXPECT_EQ(p.request().headers.get("x-injected"), nullptr);
  // Still bounded: endless trailers hit the head's byte budget.
  p.reset("http");
  std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (size_t i = 0; i * 17 < net::kMaxRequestHeaderBytes + 1000; ++i)  // 17 counted bytes a line
    in += "X-T: aaaaaaaaaaaaaa\r\n";
  EXPECT_EQ(feedAll(p, in), 431);
}

TEST(RequestParser, ExpectContinueOnlyWithABody) {
  RequestParser p;
  p.reset("http");
  feedAll(p, "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_TRUE(p.expectContinue());
  p.reset("http");
  feedAll(p, "GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_FALSE(p.expectContinue());
}

TEST(RequestParser, UpgradeIsRequestedOnlyOnHttp11WithConnectionUpgrade) {
  RequestParser p;
  p.reset("http");
  size_t n = 0;
  std::string ws =
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  EXPECT_EQ(feedAll(p, ws + "\x81\x05hello", &n), 0);
  EXPECT_TRUE(p.upgradeRequested());
  EXPECT_EQ(p.request().upgrade, "websocket");
  EXPECT_EQ(n, ws.size());  // the frame bytes belong to the tunnel
  p.reset("http");
  EXPECT_EQ(feedAll(p, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), 0);
  EXPECT_FALSE(p.upgradeRequested());
  EXPECT_TRUE(p.request().upgrade.empty());
}

// Regression (fuzz/corpus/h1_request/regress-http10-upgrade-spin): an upgrade answered as
// a plain request left llhttp consuming nothing, and the connection spun on the next bytes.
TEST(RequestParser, AfterAnUpgradeAnsweredPlainlyTheNextRequestParses) {
  RequestParser p;
  p.reset("http");
  std::string first =
      "GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n";
  std::string second = "GET /b HTTP/1.0\r\nHost: a\r\n\r\n";
  std::string in = first + second;
  size_t n = 0;
  EXPECT_EQ(feedAll(p, in, &n), 0);
  EXPECT_TRUE(p.messageComplete());
  EXPECT_FALSE(p.upgradeRequested());
  EXPECT_EQ(n, first.size());
  p.reset("http");
  EXPECT_EQ(feedAll(p, std::string_view(in).substr(n), &n), 0);
  EXPECT_TRUE(p.messageComplete());
  EXPECT_EQ(p.request().path, "/b");
  EXPECT_EQ(n, second.size());
}

ResponseHead parseResponse(std::string_view in, bool headRequest, ResponseParser& p,
                           std::string* body, size_t* consumed, bool* ok) {
  ResponseHead head;
  p.reset(&head, headRequest);
  *ok = p.feed(in.data(), in.size(), consumed);
  for (const auto& b : p.body()) body->append(static_cast<const char*>(b.data()), b.size());
  return head;
}

TEST(ResponseParser, SkipsInterimResponsesAndKeepsTheFinalHead) {
  ResponseParser p;
  std::string body;
  size_t n = 0;
  bool ok = false;
  std::string in =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
  ResponseHead head = parseResponse(in, false, p, &body, &n, &ok);
  EXPECT_TRUE(ok);
  EXPECT_TRUE(p.complete());
  EXPECT_TRUE(p.keepAlive());
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers.get("link"), nullptr);
  ASSERT_NE(head.headers.get("x-a"), nullptr);
  EXPECT_EQ(body, "ok");
  EXPECT_EQ(n, in.size());
}

TEST(ResponseParser, HeadResponseHasNoBodyAndUpgradeStopsAtTheHead) {
  ResponseParser p;
  std::string body;
  size_t n = 0;
  bool ok = false;
  parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, p, &body, &n, &ok);
  EXPECT_TRUE(ok && p.complete());
  EXPECT_TRUE(body.empty());
  std::string head101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
  parseResponse(head101 + "\x81\x00", false, p, &body, &n, &ok);
  EXPECT_TRUE(ok && p.upgraded());
  EXPECT_FALSE(p.keepAlive());
  EXPECT_EQ(n, head101.size());
}

TEST(ResponseParser, CloseDelimitedBodyEndsAtCloseAndAShortOneDoesNot) {
  ResponseParser p;
  std::string body;
  size_t n = 0;
  bool ok = false;
  parseResponse("HTTP/1.1 200 OK\r\n\r\nuntil close", false, p, &body, &n, &ok);
  EXPECT_TRUE(ok);
  EXPECT_FALSE(p.complete());
  EXPECT_TRUE(p.finish());
  EXPECT_FALSE(p.keepAlive());
  EXPECT_EQ(body, "until close");
  body.clear();
  parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, p, &body, &n, &ok);
  EXPECT_TRUE(ok);
  EXPECT_FALSE(p.finish());
}

TEST(ResponseParser, ChunkedTrailerFieldsAreDropped) {
  ResponseParser p;
  std::string body;
  size_t n = 0;
  bool ok = false;
  ResponseHead head = parseResponse(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n1\r\nz\r\n0\r\nX-T: "
      "2\r\n\r\n",
      false, p, &body, &n, &ok);
  EXPECT_TRUE(ok && p.complete());
  EXPECT_EQ(body, "z");
  EXPECT_NE(head.headers.get("x-a"), nullptr);
  EXPECT_EQ(head.headers.get("x-t"), nullptr);
}

TEST(ResponseParser, MalformedOrOversizedResponsesFailAndTrailingBytesEndKeepAlive) {
  ResponseParser p;
  std::string body;
  size_t n = 0;
  bool ok = true;
  parseResponse("HTTP/1.1 2000 OK\r\n\r\n", false, p, &body, &n, &ok);
  EXPECT_FALSE(ok);
  parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false,
                p, &body, &n, &ok);
  EXPECT_FALSE(ok);
  std::string big =
      "HTTP/1.1 200 OK\r\nX: " + std::string(net::kMaxResponseHeaderBytes, 'v') + "\r\n\r\n";
  parseResponse(big, false, p, &body, &n, &ok);
  EXPECT_FALSE(ok);
  parseResponse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxEXTRA", false, p, &body, &n, &ok);
  EXPECT_TRUE(ok && p.complete());
  EXPECT_FALSE(p.keepAlive());
}

TEST(Authority, AcceptsExactlyTheHostAndPortCharactersOfRfc3986) {
  const std::string_view allowed =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.:[]_~%!$&'()*+,;=";
  for (int c = 0; c < 256; ++c) {
    char ch = static_cast<char>(c);
    bool expected = allowed.find(ch) != std::string_view::npos;
    EXPECT_EQ(isValidAuthority(std::string_view(&ch, 1)), expected) << "byte " << c;
  }
  EXPECT_TRUE(isValidAuthority("example.com:8080"));
  EXPECT_TRUE(isValidAuthority("[::1]:443"));
  EXPECT_FALSE(isValidAuthority("user@example.com"));
  EXPECT_FALSE(isValidAuthority("a b"));
  EXPECT_FALSE(isValidAuthority("example.com/path"));
}

}  // namespace
}  // namespace archway::http::h1
