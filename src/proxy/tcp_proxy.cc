#include "proxy/tcp_proxy.h"

#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/ip/address.hpp>
#include <asio/ssl/error.hpp>
#include <asio/write.hpp>

#include "http/stream.h"
#include "net/limits.h"
#include "tls/context.h"
#include "upstream/connection.h"

namespace archway::proxy {

using http::kNoThrow;

TcpRelay::TcpRelay(runtime::Worker& worker, std::unique_ptr<net::ByteStream> downstream,
                   runtime::PortKey key, stats::ListenerStats* stats)
    : worker_(worker),
      down_(std::move(downstream)),
      up_(std::make_unique<net::ByteStream>(asio::ip::tcp::socket(worker.io()))),
      key_(std::move(key)),
      stats_(stats) {
  link(&worker_.timers());
  worker_.addConnection(this);
  if (stats_) {
    stats::inc(stats_->connections);
    stats::inc(stats_->activeConnections);
  }
}

TcpRelay::~TcpRelay() {
  std::error_code ec;
  up_->close(ec);
  down_->close(ec);
  if (stats_) stats::dec(stats_->activeConnections);
  worker_.removeConnection(this);
}

void TcpRelay::abort() {
  aborted_ = true;
  std::error_code ec;
  up_->close(ec);
  down_->close(ec);
}

void TcpRelay::onDeadline() {
  if (connecting_) {
    std::error_code ec;
    up_->close(ec);  // connect or backend handshake timed out; the next endpoint may be tried
    return;
  }
  abort();  // idle
}

asio::awaitable<bool> TcpRelay::connect(const L4RouteSet& route) {
  for (int attempt = 0; attempt < net::kL4ConnectAttempts && !aborted_; ++attempt) {
    const snapshot::Backend* backend = pickBackend(route, worker_.random());
    if (!backend || backend->endpoints.empty()) co_return false;
    const auto& ep = backend->endpoints[worker_.random() % backend->endpoints.size()];
    std::error_code ec;
    auto address = asio::ip::make_address(ep.address, ec);
    if (ec) continue;
    up_ = std::make_unique<net::ByteStream>(asio::ip::tcp::socket(worker_.io()));
    connecting_ = true;
    setDeadline(net::kUpstreamConnectTimeout);
    auto [cec] =
        co_await up_->tcp().async_connect(asio::ip::tcp::endpoint(address, ep.port), kNoThrow);
    clearDeadline();
    connecting_ = false;
    if (!cec && up_->is_open()) {
      up_->set_option(asio::ip::tcp::no_delay(true), ec);
      // Only a stream the gateway terminated is re-encrypted (BackendTLSPolicy applies to
      // TLSRoute Terminate); passthrough bytes are already the client's TLS.
      if (!backend->tls || !down_->secure()) co_return true;
      if (co_await startUpstreamTls(*backend, ep)) co_return true;
      continue;
    }
    spdlog::debug("tcp relay: connect to {}:{} failed: {}", ep.address, ep.port, cec.message());
  }
  co_return false;
}

asio::awaitable<bool> TcpRelay::startUpstreamTls(const snapshot::Backend& backend,
                                                 const snapshot::Endpoint& endpoint) {
  const snapshot::BackendTls& policy = *backend.tls;
  if (policy.invalid) co_return false;
  // The worker's pool for this endpoint and policy holds the client context, built once.
  upstream::Pool* pool = worker_.pool(endpoint, backend.tls);
  asio::ssl::context* ctx = pool ? pool->tlsContext() : nullptr;
  if (!ctx) co_return false;
  auto& stream = up_->attachTls(*ctx);
  if (!tls::configureClient(stream.native_handle(), policy)) co_return false;
  connecting_ = true;
  setDeadline(net::kUpstreamConnectTimeout);
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kNoThrow);
  clearDeadline();
  connecting_ = false;
  if (ec || !up_->is_open()) {
    spdlog::debug("tcp relay: TLS to backend {} ({}:{}) failed: {}", backend.id, endpoint.address,
                  endpoint.port, ec.message());
    co_return false;
  }
  co_return true;
}

void TcpRelay::endDirection(net::ByteStream& to) {
  std::error_code ignored;
  to.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> TcpRelay::pump(net::ByteStream& from, net::ByteStream& to,
                                     stats::Counter* bytes) {
  // Not zero-filled: every byte is written by a read before it is sent.
  auto buf = std::make_unique_for_overwrite<char[]>(net::kL4BufferBytes);
  for (;;) {
    setDeadline(net::tcpIdleTimeout);
    auto [ec, n] =
        co_await from.async_read_some(asio::buffer(buf.get(), net::kL4BufferBytes), kNoThrow);
    if (n > 0) {
      setDeadline(net::tcpIdleTimeout);
      auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buf.get(), n), kNoThrow);
      if (wec) {
        abort();
        co_return;
      }
      if (bytes) stats::inc(*bytes, n);
      // A full buffer means bulk traffic: let the kernel move the rest when both sides
      // are plain sockets.
      if (!ec && n == net::kL4BufferBytes && from.rawSocketReads() && !to.secure()) {
        buf.reset();
        co_await splicePump(from, to, bytes);
        co_return;
      }
    }
    if (!ec) continue;
    // End of this direction: a FIN, or a TLS peer closing (with or without close_notify).
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      endDirection(to);
      co_return;
    }
    abort();  // reset, timeout, or the other direction failed
    co_return;
  }
}

namespace {

// A pipe's two ends, closed on scope exit.
struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;
    read = fds[0];
    write = fds[1];
    // Best effort: a larger pipe moves more per splice call.
    (void)::fcntl(write, F_SETPIPE_SZ, static_cast<int>(net::kSplicePipeBytes));
  }
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool ok() const { return read >= 0; }
};

}  // namespace

asio::awaitable<void> TcpRelay::splicePump(net::ByteStream& from, net::ByteStream& to,
                                           stats::Counter* bytes) {
  Pipe pipe;
  std::error_code ec;
  from.tcp().native_non_blocking(true, ec);
  if (!ec) to.tcp().native_non_blocking(true, ec);
  if (!pipe.ok() || ec) {
    abort();  // out of descriptors: drop this stream rather than copy half of it
    co_return;
  }
  const int in = from.native_handle();
  const int out = to.native_handle();
  for (;;) {
    // The pipe is empty here, so EAGAIN means the socket has nothing to read.
    ssize_t n = ::splice(in, nullptr, pipe.write, nullptr, net::kSplicePipeBytes,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n == 0) {
      endDirection(to);
      co_return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN || aborted_) {
        abort();
        co_return;
      }
      setDeadline(net::tcpIdleTimeout);
      auto [wec] = co_await from.tcp().async_wait(asio::socket_base::wait_read, kNoThrow);
      if (wec || aborted_) {
        abort();
        co_return;
      }
      continue;
    }
    setDeadline(net::tcpIdleTimeout);
    size_t inPipe = static_cast<size_t>(n);
    while (inPipe > 0) {
      ssize_t m =
          ::splice(pipe.read, nullptr, out, nullptr, inPipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        inPipe -= static_cast<size_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno == EAGAIN && !aborted_) {
        auto [wec] = co_await to.tcp().async_wait(asio::socket_base::wait_write, kNoThrow);
        if (!wec && !aborted_) continue;
      }
      abort();
      co_return;
    }
    if (bytes) stats::inc(*bytes, static_cast<uint64_t>(n));
  }
}

asio::awaitable<void> TcpRelay::run(std::unique_ptr<TcpRelay> self,
                                    std::shared_ptr<const runtime::RuntimeConfig> config,
                                    const L4RouteSet* route) {
  using namespace asio::experimental::awaitable_operators;
  (void)config;  // keeps `route` alive
  if (!route || !co_await self->connect(*route)) {
    if (self->stats_) stats::inc(self->stats_->noRoute);
    co_return;  // the destructor closes the client connection
  }
  stats::Counter* in = self->stats_ ? &self->stats_->bytesReceived : nullptr;
  stats::Counter* out = self->stats_ ? &self->stats_->bytesSent : nullptr;
  co_await (self->pump(*self->down_, *self->up_, in) && self->pump(*self->up_, *self->down_, out));
  self->clearDeadline();
}

void serveTcpPort(runtime::Worker& worker, asio::ip::tcp::socket socket,
                  const runtime::PortKey& key) {
  const auto& config = worker.config();
  const runtime::CompiledPort* port = config ? config->findPort(key.first, key.second) : nullptr;
  if (!port || !port->l4 || port->listeners.empty()) return;  // socket closes
  // TCP listeners are distinct by port: one listener, its first (oldest) route serves.
  stats::ListenerStats* ls =
      config->worker(worker.id()).listeners[port->listeners.front().statsIndex];
  const L4RouteSet* route = port->l4->route(0, {}, false);
  std::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  auto relay = std::make_unique<TcpRelay>(
      worker, std::make_unique<net::ByteStream>(std::move(socket)), key, ls);
  asio::co_spawn(worker.io(), TcpRelay::run(std::move(relay), config, route), asio::detached);
}

}  // namespace archway::proxy
