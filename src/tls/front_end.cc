#include "tls/front_end.h"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "http/dispatch.h"
#include "http/stream.h"
#include "net/byte_stream.h"
#include "net/limits.h"
#include "proxy/plain_tcp_relay.h"
#include "proxy/tcp_proxy.h"
#include "runtime/config.h"
#include "tls/client_hello.h"

namespace archway::tls {

namespace {

using http::kNoThrow;

// Closes the socket when the ClientHello or the handshake takes too long.
class HandshakeGuard : public runtime::Timed {
 public:
  HandshakeGuard(runtime::TimedList* timers, asio::ip::tcp::socket* socket) : socket_(socket) {
    link(timers);
  }
  bool fired() const { return fired_; }
  void retarget(asio::ip::tcp::socket* socket) { socket_ = socket; }

 protected:
  void onDeadline() override {
    fired_ = true;
    std::error_code ec;
    socket_->cancel(ec);
  }

 private:
  asio::ip::tcp::socket* socket_;
  bool fired_ = false;
};

asio::awaitable<void> serve(runtime::Worker& worker, asio::ip::tcp::socket socket,
                            runtime::PortKey key) {
  std::shared_ptr<const runtime::RuntimeConfig> config = worker.config();
  const runtime::CompiledPort* port = config ? config->findPort(key.first, key.second) : nullptr;
  if (!port || !port->l4 || port->listeners.empty()) co_return;
  auto& state = config->worker(worker.id());
  auto portStats = [&](size_t i) { return state.listeners[port->listeners[i].statsIndex]; };

  // 1. The ClientHello, possibly over several segments and records.
  HandshakeGuard guard(&worker.timers(), &socket);
  guard.setDeadline(net::kTlsClientHelloTimeout);
  std::string hello;
  ClientHelloInfo info;
  HelloStatus status = HelloStatus::kNeedMore;
  char buf[4096];
  while (status == HelloStatus::kNeedMore) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), kNoThrow);
    if (ec || n == 0) break;
    hello.append(buf, n);
    status = parseClientHello(hello, &info);
  }
  guard.clearDeadline();
  if (status != HelloStatus::kOk) {
    stats::inc(portStats(0)->handshakeFailures);
    spdlog::debug("tls port {}: no valid ClientHello ({})", key.second,
                  guard.fired() ? "timeout" : "garbage or closed");
    co_return;
  }

  // 2. The listener the server name selects. Without SNI (clients dialing an IP), the
  // catch-all listener, else the first terminating HTTPS listener.
  int li = port->selector.select(info.serverName);
  if (li < 0 && info.serverName.empty()) {
    for (size_t i = 0; i < port->listeners.size(); ++i) {
      if (port->listeners[i].listener->protocol == snapshot::Protocol::kHttps &&
          port->l4->listeners()[i].serverTls) {
        li = static_cast<int>(i);
        break;
      }
    }
  }
  if (li < 0) {
    stats::inc(portStats(0)->noRoute);
    spdlog::debug("tls port {}: no listener for server name '{}'", key.second, info.serverName);
    co_return;
  }
  size_t index = static_cast<size_t>(li);
  const snapshot::Listener& listener = *port->listeners[index].listener;
  const proxy::L4Listener& l4 = port->l4->listeners()[index];
  stats::ListenerStats* ls = portStats(index);
  // (TCP_NODELAY is inherited from the listening socket.)

  if (listener.tlsPassthrough) {
    const proxy::L4RouteSet* route = port->l4->route(index, info.serverName, true);
    // The bytes are relayed untouched from here: the raw-socket relay takes the socket out
    // of Asio with what was read.
    if (proxy::RelayLoop* loop = worker.relayLoop()) {
      int fd = loop->takeFromAsio(socket);
      if (fd < 0) co_return;
      loop->servePeeked(fd, key, ls, config, route, hello);
      co_return;
    }
    auto relay = std::make_unique<proxy::TcpRelay>(
        worker, std::make_unique<net::ByteStream>(std::move(socket), std::move(hello)), key, ls);
    co_await proxy::TcpRelay::run(std::move(relay), config, route);
    co_return;
  }

  // 3. Terminate: the handshake replays the peeked bytes first.
  if (!l4.serverTls) {
    stats::inc(ls->handshakeFailures);
    co_return;
  }
  auto transport = std::make_unique<net::ByteStream>(std::move(socket), std::move(hello));
  auto& tls = transport->attachTls(*l4.serverTls);
  guard.retarget(&transport->tcp());
  guard.setDeadline(net::kTlsHandshakeTimeout);
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kNoThrow);
  guard.clearDeadline();
  if (hec) {
    stats::inc(ls->handshakeFailures);
    spdlog::debug("tls port {}: handshake failed: {}", key.second, hec.message());
    co_return;
  }
  guard.unlink();
  if (listener.protocol == snapshot::Protocol::kHttps) {
    http::serveHttpConnection(worker, std::move(transport), key);
    co_return;
  }
  const proxy::L4RouteSet* route = port->l4->route(index, info.serverName, true);
  auto relay = std::make_unique<proxy::TcpRelay>(worker, std::move(transport), key, ls);
  co_await proxy::TcpRelay::run(std::move(relay), config, route);
}

}  // namespace

void serveTlsPort(runtime::Worker& worker, asio::ip::tcp::socket socket,
                  const runtime::PortKey& key) {
  asio::co_spawn(worker.io(), serve(worker, std::move(socket), key), asio::detached);
}

}  // namespace archway::tls
