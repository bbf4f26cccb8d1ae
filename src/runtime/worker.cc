#include "runtime/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>

#include "http/h1/server_connection.h"
#include "http/h2/dispatch.h"
#include "net/limits.h"
#include "proxy/http_proxy.h"
#include "proxy/plain_tcp_relay.h"
#include "proxy/tcp_proxy.h"
#include "proxy/udp_proxy.h"
#include "tls/front_end.h"
#include "upstream/connection.h"
#include "upstream/h2_pool.h"

namespace archway::runtime {

struct Worker::Acceptor : std::enable_shared_from_this<Acceptor> {
  Acceptor(Worker& w, PortKey k)
      : worker(w),
        acceptor(w.io()),
        key(std::move(k)),
        ready(&Worker::onListenerReady, this, 0),
        backoff(w.io()) {}
  Worker& worker;
  asio::ip::tcp::acceptor acceptor;
  PortKey key;
  asio::ip::tcp protocol = asio::ip::tcp::v4();
  bool closed = false;
  // Raw acceptance (TCP and TLS ports): the listening socket's registration in the
  // worker's epoll set reports to `ready`, edge-triggered, with no wait to re-arm.
  bool raw = false;
  net::ReadyEvent ready;
  asio::steady_timer backoff;  // after EMFILE and friends
};

Worker::Worker(uint32_t id, uint32_t workerCount, const AccessLogFile* accessLog)
    : id_(id),
      maxConnections_(std::max<uint32_t>(
          1, net::maxDownstreamConnections / std::max<uint32_t>(1, workerCount))),
      // Every socket and timer of a worker is used only on its own thread (other threads
      // reach the worker through asio::post), so the reactor's per-descriptor locks are
      // pure cost: ~2.5 % of user-space instructions per proxied HTTP/1.1 request.
      io_(std::make_unique<asio::io_context>(ASIO_CONCURRENCY_HINT_UNSAFE_IO)),
      workerCount_(std::max<uint32_t>(1, workerCount)),
      proxy_(std::make_unique<proxy::HttpProxy>(*this)),
      accessLog_(accessLog),
      rng_(0x9e3779b9u + id) {}

Worker::~Worker() {
  stop();
  acceptors_.clear();
  udpListeners_.clear();
  pools_.clear();
  h2Pools_.clear();
  io_.reset();  // destroys suspended coroutines while the members they use still exist
  // After the io_context, which may hold queued epoll events of open relays until then;
  // closes the relays while the timers and counters they use exist.
  relayLoop_.reset();
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
    for (auto& [k, a] : acceptors_) closeAcceptor(a);
    acceptors_.clear();
    udpListeners_.clear();
    pools_.clear();
    h2Pools_.clear();
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
    for (auto& [k, a] : acceptors_) closeAcceptor(a);
    acceptors_.clear();
    udpListeners_.clear();
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

namespace {

// The endpoint, and the TLS settings: they are part of the identity of a pooled connection.
std::string poolKey(const snapshot::Endpoint& endpoint,
                    const std::shared_ptr<const snapshot::BackendTls>& tls) {
  std::string key = fmt::format("{}:{}", endpoint.address, endpoint.port);
  if (tls) {
    size_t h = std::hash<std::string>{}(tls->sni + '\0' + tls->caPem + '\0' + tls->clientCertPem +
                                        '\0' + tls->clientKeyPem + (tls->useSystemCas ? "S" : "") +
                                        (tls->invalid ? "I" : ""));
    for (const auto& san : tls->subjectAltNames) h = h * 31 + std::hash<std::string>{}(san);
    key += fmt::format("/tls/{:x}", h);
  }
  return key;
}

}  // namespace

upstream::Pool* Worker::pool(const snapshot::Endpoint& endpoint,
                             const std::shared_ptr<const snapshot::BackendTls>& tls) {
  std::string key = poolKey(endpoint, tls);
  auto it = pools_.find(key);
  if (it != pools_.end()) return it->second.get();
  std::error_code ec;
  auto address = asio::ip::make_address(endpoint.address, ec);
  if (ec) return nullptr;
  auto pool = tls ? std::make_unique<upstream::Pool>(
                        *io_, &timers_, asio::ip::tcp::endpoint(address, endpoint.port), tls)
                  : std::make_unique<upstream::Pool>(
                        *io_, &timers_, asio::ip::tcp::endpoint(address, endpoint.port));
  auto* raw = pool.get();
  pools_.emplace(std::move(key), std::move(pool));
  return raw;
}

upstream::H2Pool* Worker::h2Pool(const snapshot::Endpoint& endpoint,
                                 const std::shared_ptr<const snapshot::BackendTls>& tls) {
  std::string key = poolKey(endpoint, tls);
  auto it = h2Pools_.find(key);
  if (it != h2Pools_.end()) return it->second.get();
  std::error_code ec;
  auto address = asio::ip::make_address(endpoint.address, ec);
  if (ec) return nullptr;
  auto pool = std::make_unique<upstream::H2Pool>(
      *io_, &timers_, asio::ip::tcp::endpoint(address, endpoint.port), tls);
  auto* raw = pool.get();
  h2Pools_.emplace(std::move(key), std::move(pool));
  return raw;
}

namespace {

bool nonBlocking(asio::ip::tcp::acceptor& acceptor) {
  std::error_code ec;
  acceptor.native_non_blocking(true, ec);
  return !ec;
}

}  // namespace

bool Worker::openAcceptor(const PortKey& key) {
  auto a = std::make_shared<Acceptor>(*this, key);
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
  // Accepted sockets inherit TCP_NODELAY from the listening socket: the HTTP codecs, the
  // TLS front end and the TCP relay rely on it (one system call less per connection).
  if (!ec) a->acceptor.set_option(asio::ip::tcp::no_delay(true), ec);
  if (!ec) a->acceptor.bind(ep, ec);
  if (!ec) a->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (id_ == 0)
      spdlog::error("listener {}:{}: cannot listen: {}", key.first.empty() ? "*" : key.first,
                    key.second, ec.message());
    return false;
  }
  if (id_ == 0) spdlog::info("listening on {}:{}", key.first.empty() ? "*" : key.first, key.second);
  acceptors_[key] = a;
  a->protocol = ep.protocol();
  // TCP and TLS ports (the connection-rate ones) accept raw: Asio registered the listening
  // socket when it opened it; re-pointing that registration at `ready` replaces a wait
  // that Asio re-arms with epoll_ctl for every batch, and accept4 makes the sockets
  // non-blocking without an ioctl each. Other ports use Asio's async_accept.
  const CompiledPort* port = config_ ? config_->findPort(key.first, key.second) : nullptr;
  if (port &&
      (port->protocol == snapshot::Protocol::kTcp || port->protocol == snapshot::Protocol::kTls) &&
      relayLoop() && nonBlocking(a->acceptor) &&  // accept4 must not block
      net::watchEdges(relayLoop()->epollFd(), a->acceptor.native_handle(), a->ready,
                      EPOLL_CTL_MOD)) {
    a->raw = true;  // connections already queued are reported by the registration
    return true;
  }
  asio::co_spawn(*io_, acceptLoop(a), asio::detached);
  return true;
}

void Worker::closeAcceptor(const std::shared_ptr<Acceptor>& a) {
  std::error_code ec;
  a->closed = true;
  a->acceptor.close(ec);  // its registration goes with the descriptor
  a->backoff.cancel();
  // An event of the listening socket may already be queued: the acceptor stays alive
  // until a handler queued behind it has run (or been destroyed with the io_context).
  if (a->raw) asio::post(*io_, [keep = a] {});
}

void Worker::onListenerReady(void* acceptor, int, uint32_t) {
  auto* a = static_cast<Acceptor*>(acceptor);
  if (!a->closed) a->worker.acceptRaw(*a);
}

void Worker::acceptRaw(Acceptor& a) {
  for (int i = 0; i < net::kAcceptBatch; ++i) {
    int fd = ::accept4(a.acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN) return;  // drained: the next connection raises a new edge
      // EMFILE and friends: the queued connections raise no new edge, so try again after
      // a pause instead of spinning.
      a.backoff.expires_after(std::chrono::milliseconds(50));
      a.backoff.async_wait([keep = a.shared_from_this()](std::error_code ec) {
        if (!ec && !keep->closed) keep->worker.acceptRaw(*keep);
      });
      return;
    }
    serveAccepted(fd, a);
  }
  // A full batch: more may be queued, which edge-triggered epoll does not report again.
  asio::post(*io_, [keep = a.shared_from_this()] {
    if (!keep->closed) keep->worker.acceptRaw(*keep);
  });
}

void Worker::serveAccepted(int fd, Acceptor& a) {
  if (isPlainTcpPort(a.key)) {
    stats::inc(stats_.global().downstreamConnections);
    if (connections_.size() >= maxConnections_) {
      stats::inc(stats_.global().rejectedConnections);
      ::close(fd);
      return;
    }
    relayLoop_->serve(fd, a.key);
    return;
  }
  std::error_code ec;
  asio::ip::tcp::socket socket(*io_);
  socket.assign(a.protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  net::markAcceptedNonBlocking(socket);  // accept4 did it: no ioctl on the first read
  onAccepted(std::move(socket), a.key);
}

void Worker::install(std::shared_ptr<const RuntimeConfig> config) {
  config_ = std::move(config);
  if (draining_ || stopping_) return;
  std::set<PortKey> wanted;
  std::set<PortKey> wantedUdp;
  for (const auto& p : config_->ports) {
    if (p.udp) {
      if (p.port % workerCount_ == id_) wantedUdp.insert({p.address, p.port});
      continue;
    }
    wanted.insert({p.address, p.port});
  }
  // UDP: removed ports close (their sessions end); new ones open; others keep sessions.
  for (auto it = udpListeners_.begin(); it != udpListeners_.end();) {
    if (wantedUdp.count(it->first)) {
      ++it;
    } else {
      it = udpListeners_.erase(it);
    }
  }
  for (const auto& key : wantedUdp) {
    if (udpListeners_.count(key)) continue;
    auto l = std::make_unique<proxy::UdpListener>(*this, key);
    if (l->open()) udpListeners_.emplace(key, std::move(l));
  }
  // Removed listeners stop accepting; their connections finish in-flight work and close.
  for (auto it = acceptors_.begin(); it != acceptors_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    closeAcceptor(it->second);
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
    if (isPlainTcpPort(a->key)) {
      if (co_await acceptPlainTcp(*a)) continue;
      if (a->closed) break;
      // EMFILE and friends: back off briefly instead of spinning.
      asio::steady_timer t(*io_);
      t.expires_after(std::chrono::milliseconds(50));
      co_await t.async_wait(http::kNoThrow);
      continue;
    }
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

bool Worker::isPlainTcpPort(const PortKey& key) {
  const CompiledPort* port = config_ ? config_->findPort(key.first, key.second) : nullptr;
  if (!port || port->protocol != snapshot::Protocol::kTcp) return false;
  return relayLoop() != nullptr;  // without its epoll set, TCP ports use the Asio relay
}

proxy::RelayLoop* Worker::relayLoop() {
  if (!relayLoop_) relayLoop_ = std::make_unique<proxy::RelayLoop>(*this);
  return relayLoop_->ok() ? relayLoop_.get() : nullptr;
}

// Waits for the listening socket, then takes what is queued (a bounded batch: the next
// wait fires at once if more are left). False after an accept error (caller backs off).
asio::awaitable<bool> Worker::acceptPlainTcp(Acceptor& a) {
  auto [ec] = co_await a.acceptor.async_wait(asio::socket_base::wait_read, http::kNoThrow);
  if (a.closed || ec) co_return false;
  for (int i = 0; i < net::kAcceptBatch && !a.closed; ++i) {
    int fd = ::accept4(a.acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      co_return errno == EAGAIN;
    }
    serveAccepted(fd, a);  // (the port may have changed protocol while we waited)
  }
  co_return true;
}

void Worker::onAccepted(asio::ip::tcp::socket socket, const PortKey& key) {
  stats::inc(stats_.global().downstreamConnections);
  if (connections_.size() >= maxConnections_) {
    stats::inc(stats_.global().rejectedConnections);
    std::error_code ec;
    socket.close(ec);
    return;
  }
  // Protocol dispatch by the port's listeners (the current config; a port whose protocol
  // changed keeps its socket and serves new connections the new way).
  const CompiledPort* port = config_ ? config_->findPort(key.first, key.second) : nullptr;
  if (port && (port->protocol == snapshot::Protocol::kHttps ||
               port->protocol == snapshot::Protocol::kTls)) {
    tls::serveTlsPort(*this, std::move(socket), key);
    return;
  }
  if (port && port->protocol == snapshot::Protocol::kTcp) {
    proxy::serveTcpPort(*this, std::move(socket), key);
    return;
  }
  // HTTP listeners: h2c with prior knowledge or HTTP/1.1, told apart by the first bytes.
  asio::co_spawn(*io_, http::h2::serveDetected(*this, std::move(socket), key), asio::detached);
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
