#include "proxy/udp_proxy.h"

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>

#include "http/stream.h"
#include "net/limits.h"

namespace archway::proxy {

using http::kNoThrow;

struct UdpListener::Session : runtime::Timed {
  Session(asio::io_context& io, UdpListener* owner) : upstream(io), owner(owner) {}
  ~Session() override {
    if (stats) stats::dec(stats->activeConnections);
  }
  void onDeadline() override {
    std::error_code ec;
    upstream.close(ec);  // the upstream loop ends and removes the session
  }
  asio::ip::udp::socket upstream;
  asio::ip::udp::endpoint client;
  UdpListener* owner;
  stats::ListenerStats* stats = nullptr;
  std::list<Session*>::iterator lruPos;
  bool removed = false;
};

UdpListener::UdpListener(runtime::Worker& worker, runtime::PortKey key)
    : worker_(worker),
      key_(std::move(key)),
      socket_(worker.io()),
      buf_(net::kMaxUdpDatagramBytes),
      upBuf_(net::kMaxUdpDatagramBytes) {}

UdpListener::~UdpListener() {
  close();
  *alive_ = false;
}

bool UdpListener::open() {
  std::error_code ec;
  asio::ip::address address = key_.first.empty() ? asio::ip::address(asio::ip::address_v4::any())
                                                 : asio::ip::make_address(key_.first, ec);
  if (ec) return false;
  asio::ip::udp::endpoint ep(address, key_.second);
  socket_.open(ep.protocol(), ec);
  if (!ec) socket_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) socket_.bind(ep, ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) {
    spdlog::error("udp listener {}:{}: cannot bind: {}", key_.first.empty() ? "*" : key_.first,
                  key_.second, ec.message());
    return false;
  }
  spdlog::info("listening on udp {}:{} (worker {})", key_.first.empty() ? "*" : key_.first,
               key_.second, worker_.id());
  asio::co_spawn(worker_.io(), receiveLoop(), asio::detached);
  return true;
}

void UdpListener::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.close(ec);
  for (auto& [k, s] : sessions_) {
    s->removed = true;
    s->upstream.close(ec);
  }
  sessions_.clear();
  lru_.clear();
}

// By value: callers may pass the map's own shared_ptr, which erase() below destroys.
void UdpListener::remove(std::shared_ptr<Session> s) {
  if (s->removed) return;
  s->removed = true;
  lru_.erase(s->lruPos);
  sessions_.erase(s->client);
  std::error_code ec;
  s->upstream.close(ec);
}

std::shared_ptr<UdpListener::Session> UdpListener::findOrCreate(
    const asio::ip::udp::endpoint& client,
    const std::shared_ptr<const runtime::RuntimeConfig>& config, stats::ListenerStats* stats) {
  auto it = sessions_.find(client);
  if (it != sessions_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second->lruPos);
    return it->second;
  }
  const runtime::CompiledPort* port = nullptr;
  for (const auto& p : config->ports)
    if (p.udp && p.port == key_.second && p.address == key_.first) port = &p;
  if (!port || !port->l4) return nullptr;
  const L4RouteSet* route = port->l4->route(0, {}, false);
  const snapshot::Backend* backend = route ? pickBackend(*route, worker_.random()) : nullptr;
  if (!backend || backend->endpoints.empty()) {
    if (stats) stats::inc(stats->noRoute);
    return nullptr;
  }
  const auto& ep = backend->endpoints[worker_.random() % backend->endpoints.size()];
  std::error_code ec;
  auto address = asio::ip::make_address(ep.address, ec);
  if (ec) return nullptr;
  if (sessions_.size() >= net::kMaxUdpSessionsPerPort && !lru_.empty()) {
    Session* oldest = lru_.back();
    remove(sessions_.at(oldest->client));
  }
  auto s = std::make_shared<Session>(worker_.io(), this);
  s->client = client;
  s->upstream.open(address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
  if (!ec) s->upstream.connect(asio::ip::udp::endpoint(address, ep.port), ec);
  if (!ec) s->upstream.non_blocking(true, ec);
  if (ec) return nullptr;
  s->link(&worker_.timers());
  s->setDeadline(net::kUdpSessionIdleTimeout);
  s->stats = stats;
  if (stats) {
    stats::inc(stats->connections);
    stats::inc(stats->activeConnections);
  }
  lru_.push_front(s.get());
  s->lruPos = lru_.begin();
  sessions_.emplace(client, s);
  asio::co_spawn(worker_.io(), upstreamLoop(s), asio::detached);
  return s;
}

asio::awaitable<void> UdpListener::receiveLoop() {
  auto alive = alive_;
  asio::ip::udp::endpoint client;
  while (*alive && !closed_) {
    auto [ec, n] = co_await socket_.async_receive_from(asio::buffer(buf_), client, kNoThrow);
    if (!*alive || closed_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
      continue;  // ICMP errors surfaced on the socket, truncation: keep serving
    }
    std::shared_ptr<const runtime::RuntimeConfig> config = worker_.config();
    if (!config) continue;
    // Listener stats of this port under the current config.
    stats::ListenerStats* ls = nullptr;
    for (const auto& p : config->ports)
      if (p.udp && p.port == key_.second && p.address == key_.first && !p.listeners.empty())
        ls = config->worker(worker_.id()).listeners[p.listeners.front().statsIndex];
    auto s = findOrCreate(client, config, ls);
    if (!s) continue;
    s->setDeadline(net::kUdpSessionIdleTimeout);
    std::error_code sec;
    s->upstream.send(asio::buffer(buf_.data(), n), 0, sec);  // non-blocking: drop on EAGAIN
    if (!sec && s->stats) stats::inc(s->stats->bytesReceived, n);
  }
}

asio::awaitable<void> UdpListener::upstreamLoop(std::shared_ptr<Session> s) {
  auto alive = alive_;
  // Wait for readability, then drain into the listener's shared buffer: a waiting
  // session holds no buffer of its own.
  for (;;) {
    auto [ec] = co_await s->upstream.async_wait(asio::socket_base::wait_read, kNoThrow);
    if (!*alive || s->removed) co_return;
    if (ec) {
      remove(s);  // closed: idle timeout, eviction, listener gone
      co_return;
    }
    for (;;) {
      std::error_code rec;
      size_t n = s->upstream.receive(asio::buffer(upBuf_), 0, rec);
      if (rec == asio::error::would_block || rec == asio::error::try_again) break;
      if (rec) break;  // ICMP unreachable from a down backend: keep the session
      s->setDeadline(net::kUdpSessionIdleTimeout);
      std::error_code sec;
      socket_.send_to(asio::buffer(upBuf_.data(), n), s->client, 0, sec);
      if (!sec && s->stats) stats::inc(s->stats->bytesSent, n);
    }
  }
}

}  // namespace archway::proxy
