#include "runtime/worker.h"

#include <sys/socket.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/h1/server_connection.h"
#include "net/limits.h"
#include "proxy/http_proxy.h"
#include "upstream/connection.h"

namespace archway::runtime {

struct Worker::Acceptor {
  explicit Acceptor(asio::io_context& io, PortKey k) : acceptor(io), key(std::move(k)) {}
  asio::ip::tcp::acceptor acceptor;
  PortKey key;
  bool closed = false;
};

Worker::Worker(uint32_t id, uint32_t workerCount, const AccessLogFile* accessLog)
    : id_(id),
      maxConnections_(std::max<uint32_t>(1, net::kMaxDownstreamConnections / std::max<uint32_t>(1, workerCount))),
      io_(std::make_unique<asio::io_context>(1)),
      proxy_(std::make_unique<proxy::HttpProxy>(*this)),
      accessLog_(accessLog),
      rng_(0x9e3779b9u + id) {}

Worker::~Worker() {
  stop();
  acceptors_.clear();
  pools_.clear();
  io_.reset();  // destroys suspended coroutines while the members they use still exist
}

void Worker::start() {
  asio::co_spawn(*io_, sweepLoop(), asio::detached);
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(*io_);
    io_->run();
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  asio::post(*io_, [this] {
    stopping_ = true;
    for (auto& [k, a] : acceptors_) {
      std::error_code ec;
      a->closed = true;
      a->acceptor.close(ec);
    }
    acceptors_.clear();
    pools_.clear();
    accessLog_.flush();
    io_->stop();
  });
  thread_.join();
}

void Worker::publish(std::shared_ptr<const RuntimeConfig> config, std::function<void()> done) {
  asio::post(*io_, [this, config = std::move(config), done = std::move(done)]() mutable {
    install(std::move(config));
    if (done) done();
  });
}

void Worker::beginDrain() {
  asio::post(*io_, [this] {
    draining_ = true;
    for (auto& [k, a] : acceptors_) {
      std::error_code ec;
      a->closed = true;
      a->acceptor.close(ec);
    }
    acceptors_.clear();
    std::vector<DownstreamConnection*> all(connections_.begin(), connections_.end());
    for (auto* c : all) c->drain();
  });
}

void Worker::addConnection(DownstreamConnection* c) {
  connections_.insert(c);
  active_.fetch_add(1, std::memory_order_relaxed);
  stats::inc(stats_.global().activeDownstreamConnections);
}

void Worker::removeConnection(DownstreamConnection* c) {
  connections_.erase(c);
  active_.fetch_sub(1, std::memory_order_relaxed);
  stats::dec(stats_.global().activeDownstreamConnections);
}

upstream::Pool* Worker::pool(const snapshot::Endpoint& endpoint) {
  std::string key = fmt::format("{}:{}", endpoint.address, endpoint.port);
  auto it = pools_.find(key);
  if (it != pools_.end()) return it->second.get();
  std::error_code ec;
  auto address = asio::ip::make_address(endpoint.address, ec);
  if (ec) return nullptr;
  auto pool = std::make_unique<upstream::Pool>(*io_, &timers_,
                                               asio::ip::tcp::endpoint(address, endpoint.port));
  auto* raw = pool.get();
  pools_.emplace(std::move(key), std::move(pool));
  return raw;
}

bool Worker::openAcceptor(const PortKey& key) {
  auto a = std::make_shared<Acceptor>(*io_, key);
  std::error_code ec;
  asio::ip::address address = key.first.empty() ? asio::ip::address(asio::ip::address_v4::any())
                                                 : asio::ip::make_address(key.first, ec);
  if (ec) {
    if (id_ == 0) spdlog::error("listener {}:{}: invalid address", key.first, key.second);
    return false;
  }
  asio::ip::tcp::endpoint ep(address, key.second);
  a->acceptor.open(ep.protocol(), ec);
  if (!ec) a->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(a->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
      ec = std::error_code(errno, std::system_category());
  }
  if (!ec) a->acceptor.bind(ep, ec);
  if (!ec) a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (id_ == 0)
      spdlog::error("listener {}:{}: cannot listen: {}", key.first.empty() ? "*" : key.first,
                    key.second, ec.message());
    return false;
  }
  if (id_ == 0)
    spdlog::info("listening on {}:{}", key.first.empty() ? "*" : key.first, key.second);
  acceptors_[key] = a;
  asio::co_spawn(*io_, acceptLoop(a), asio::detached);
  return true;
}

void Worker::install(std::shared_ptr<const RuntimeConfig> config) {
  config_ = std::move(config);
  if (draining_ || stopping_) return;
  std::set<PortKey> wanted;
  for (const auto& p : config_->ports) {
    // HTTPS/TLS/TCP ports are served by the TLS and L4 front ends; only plain HTTP here.
    if (p.protocol != snapshot::Protocol::kHttp) continue;
    wanted.insert({p.address, p.port});
  }
  // Removed listeners stop accepting; their connections finish in-flight work and close.
  for (auto it = acceptors_.begin(); it != acceptors_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    std::error_code ec;
    it->second->closed = true;
    it->second->acceptor.close(ec);
    PortKey gone = it->first;
    it = acceptors_.erase(it);
    std::vector<DownstreamConnection*> all(connections_.begin(), connections_.end());
    for (auto* c : all)
      if (c->portKey() == gone) c->drain();
  }
  for (const auto& key : wanted)
    if (!acceptors_.count(key)) openAcceptor(key);
}

asio::awaitable<void> Worker::acceptLoop(std::shared_ptr<Acceptor> a) {
  while (!a->closed) {
    auto [ec, socket] = co_await a->acceptor.async_accept(http::kNoThrow);
    if (a->closed) break;
    if (ec) {
      if (ec == asio::error::operation_aborted) break;
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer t(*io_);
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(http::kNoThrow);
      continue;
    }
    onAccepted(std::move(socket), a->key);
  }
}

void Worker::onAccepted(asio::ip::tcp::socket socket, const PortKey& key) {
  stats::inc(stats_.global().downstreamConnections);
  if (connections_.size() >= maxConnections_) {
    stats::inc(stats_.global().rejectedConnections);
    std::error_code ec;
    socket.close(ec);
    return;
  }
  // Protocol dispatch by the port's listeners: plain HTTP/1.1 here; the TLS front end
  // (SNI -> certificate, ALPN h2/http1.1) and L4 proxies hook in at this point.
  auto conn = std::make_unique<http::h1::ServerConnection>(*this, std::move(socket), key);
  asio::co_spawn(*io_, http::h1::ServerConnection::serve(std::move(conn)), asio::detached);
}

asio::awaitable<void> Worker::sweepLoop() {
  asio::steady_timer timer(*io_);
  while (!stopping_) {
    timer.expires_after(net::kTimeoutSweepInterval);
    auto [ec] = co_await timer.async_wait(http::kNoThrow);
    if (ec || stopping_) break;
    timers_.sweep(Clock::now());
    accessLog_.flush();
  }
}

}  // namespace archway::runtime
