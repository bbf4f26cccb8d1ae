#include "http/h2/dispatch.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <asio/steady_timer.hpp>

#include "http/h1/server_connection.h"
#include "http/h2/server_connection.h"
#include "net/limits.h"

namespace archway::http::h2 {

ConnectionInfo connectionInfoOf(const asio::ip::tcp::socket& socket, const runtime::PortKey& key) {
  ConnectionInfo info;
  std::error_code ec;
  auto remote = socket.remote_endpoint(ec);
  if (!ec) {
    info.remoteAddress = remote.address().to_string();
    info.remotePort = remote.port();
  }
  auto local = socket.local_endpoint(ec);
  if (!ec) info.localAddress = local.address().to_string();
  info.localPort = key.second;
  return info;
}

Awaitable<void> serveH2(runtime::Worker& worker, std::unique_ptr<net::Transport> transport,
                        runtime::PortKey key, ConnectionInfo info, std::string initial) {
  // (TCP_NODELAY is inherited from the listening socket: runtime/worker.cc openAcceptor.)
  auto conn = std::make_unique<ServerConnection>(worker, std::move(transport), std::move(key),
                                                 std::move(info));
  co_await ServerConnection::serve(std::move(conn), std::move(initial));
}

namespace {

enum class Detected { kH1, kH2, kClosed };

// Peeks without consuming: the chosen codec reads the bytes itself.
Awaitable<Detected> detect(asio::ip::tcp::socket& socket) {
  auto deadline = std::chrono::steady_clock::now() + net::kProtocolDetectTimeout;
  asio::steady_timer timer(socket.get_executor());
  timer.expires_at(deadline);
  timer.async_wait([&socket](std::error_code ec) {
    if (ec) return;
    std::error_code ignored;
    socket.cancel(ignored);
  });
  Detected result = Detected::kClosed;
  for (;;) {
    auto [ec] = co_await socket.async_wait(asio::ip::tcp::socket::wait_read, kNoThrow);
    if (ec) break;
    char buf[3];
    ssize_t n = ::recv(socket.native_handle(), buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    if (n <= 0) break;
    size_t got = static_cast<size_t>(n);
    if (std::memcmp(buf, kClientPreface.data(), got) != 0) {
      result = Detected::kH1;
      break;
    }
    if (got == sizeof(buf)) {
      // "PRI" starts no other request line we accept (HTTP/1 PRI is rejected anyway).
      result = Detected::kH2;
      break;
    }
    // A prefix of both "PRI" and e.g. "POST": wait a moment for more bytes.
    asio::steady_timer pause(socket.get_executor());
    pause.expires_after(std::chrono::milliseconds(5));
    co_await pause.async_wait(kNoThrow);
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  timer.cancel();
  co_return result;
}

}  // namespace

Awaitable<void> serveDetected(runtime::Worker& worker, asio::ip::tcp::socket socket,
                              runtime::PortKey key) {
  Detected d = co_await detect(socket);
  if (d == Detected::kClosed || worker.draining()) {
    std::error_code ec;
    socket.close(ec);
    co_return;
  }
  if (d == Detected::kH1) {
    auto conn = std::make_unique<h1::ServerConnection>(worker, std::move(socket), std::move(key));
    co_await h1::ServerConnection::serve(std::move(conn));
    co_return;
  }
  ConnectionInfo info = connectionInfoOf(socket, key);
  co_await serveH2(worker, std::make_unique<net::TcpTransport>(std::move(socket)), std::move(key),
                   std::move(info));
}

}  // namespace archway::http::h2
