// The HTTP/1.1 codec's limits, end to end in-process: a one-worker server publishes a
// hand-built snapshot and a blocking client sends edge-case requests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "net/limits.h"
#include "runtime/server.h"

namespace archway {
namespace {

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int connectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  for (int i = 0; i < 100; ++i) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fd);
  return -1;
}

void sendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early: that is what some tests expect
    off += static_cast<size_t>(n);
  }
}

std::string readAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class H1Limits : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = freePort();
    deadPort_ = freePort();  // nothing listens: upstream connects are refused
    auto snap = std::make_shared<snapshot::Snapshot>();
    auto backend = std::make_shared<snapshot::Backend>();
    backend->id = "test/dead:80";
    backend->endpoints.push_back({"127.0.0.1", deadPort_});
    auto empty = std::make_shared<snapshot::Backend>();
    empty->id = "test/empty:80";
    auto rule = std::make_shared<snapshot::HttpRule>();
    rule->routeNs = "test";
    rule->routeName = "r";
    rule->backends.push_back({backend, 1, {}});
    auto emptyRule = std::make_shared<snapshot::HttpRule>();
    emptyRule->backends.push_back({empty, 1, {}});
    auto listener = std::make_shared<snapshot::Listener>();
    listener->gatewayNs = "test";
    listener->gatewayName = "gw";
    listener->name = "http";
    listener->port = port_;
    listener->hostname = "only.example";
    snapshot::HttpRouteEntry e;
    e.rule = rule;
    snapshot::HttpRouteEntry emptyEntry;
    emptyEntry.match.path.value = "/empty";
    emptyEntry.rule = emptyRule;
    listener->httpRoutes = {emptyEntry, e};
    snap->ports.push_back(snapshot::Port{"127.0.0.1", port_, false, {listener}});
    snap->backends[backend->id] = backend;
    server_ = std::make_unique<runtime::Server>(1, nullptr);
    server_->start();
    server_->publish(snap);
    for (int i = 0; i < 500 && !server_->ready(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_TRUE(server_->ready());
  }
  void TearDown() override { server_.reset(); }

  std::string exchange(const std::string& request) {
    int fd = connectTo(port_);
    EXPECT_GE(fd, 0);
    sendAll(fd, request);
    std::string out = readAll(fd);
    ::close(fd);
    return out;
  }

  uint16_t port_ = 0, deadPort_ = 0;
  std::unique_ptr<runtime::Server> server_;
};

TEST_F(H1Limits, TooManyHeaders431) {
  std::string req = "GET / HTTP/1.1\r\nHost: only.example\r\n";
  for (size_t i = 0; i < net::kMaxRequestHeaders + 1; ++i)
    req += "X-H" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  EXPECT_EQ(exchange(req).substr(0, 12), "HTTP/1.1 431");
}

TEST_F(H1Limits, HeaderBytes431) {
  std::string req = "GET / HTTP/1.1\r\nHost: only.example\r\nX-Big: " +
                    std::string(net::kMaxRequestHeaderBytes, 'a') + "\r\n\r\n";
  EXPECT_EQ(exchange(req).substr(0, 12), "HTTP/1.1 431");
}

TEST_F(H1Limits, BodyTooLarge413) {
  // Refused on the declared length, before any of the body is read.
  uint64_t size = net::kMaxRequestBodyBytes + 1024;
  std::string req =
      "POST / HTTP/1.1\r\nHost: only.example\r\nContent-Length: " + std::to_string(size) +
      "\r\n\r\n" + std::string(1024, 'b');
  std::string out = exchange(req);
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 413") << out.substr(0, 200);
  EXPECT_NE(out.find("connection: close"), std::string::npos);
}

TEST_F(H1Limits, UnknownHost404ListenerIsolation) {
  std::string out = exchange("GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 404");
}

TEST_F(H1Limits, RefusedUpstream502AndNoEndpoints503) {
  std::string out =
      exchange("GET /x HTTP/1.1\r\nHost: only.example:8080\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 502") << out;
  out = exchange("GET /empty HTTP/1.1\r\nHost: only.example\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 503") << out;
}

TEST_F(H1Limits, KeepAliveServesSeveralRequests) {
  int fd = connectTo(port_);
  ASSERT_GE(fd, 0);
  sendAll(fd,
          "GET /empty HTTP/1.1\r\nHost: only.example\r\n\r\n"
          "GET /empty HTTP/1.1\r\nHost: only.example\r\nConnection: close\r\n\r\n");
  std::string out = readAll(fd);
  ::close(fd);
  size_t first = out.find("HTTP/1.1 503");
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(out.find("HTTP/1.1 503", first + 1), std::string::npos) << out;
}

}  // namespace
}  // namespace archway
