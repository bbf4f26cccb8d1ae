// A worker: one thread, one io_context, shared-nothing. It owns its accepting sockets
// (SO_REUSEPORT, one per served address:port), its downstream connections, its upstream
// pools, its counters and its copy of the current RuntimeConfig pointer. The control
// thread talks to it only by posting closures to its io_context.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "runtime/access_log.h"
#include "runtime/config.h"
#include "runtime/timed.h"
#include "stats/stats.h"

namespace archway::upstream {
class Pool;
class H2Pool;
}  // namespace archway::upstream
namespace archway::proxy {
class HttpProxy;
class UdpListener;
class RelayLoop;
}  // namespace archway::proxy

namespace archway::runtime {

using PortKey = std::pair<std::string, uint16_t>;  // (address or "", port)

// A downstream connection as the worker sees it (any protocol): so it can be drained.
class DownstreamConnection {
 public:
  virtual ~DownstreamConnection() = default;
  // Stop taking new requests: close now if idle, else after the in-flight response.
  virtual void drain() = 0;
  virtual const PortKey& portKey() const = 0;
};

class Worker {
 public:
  Worker(uint32_t id, uint32_t workerCount, const AccessLogFile* accessLog);
  ~Worker();

  // --- control thread ---
  void start();
  // Installs a config on the worker's thread (listener diff included).
  void publish(std::shared_ptr<const RuntimeConfig> config, std::function<void()> done);
  // Stops accepting and drains connections; `done` runs on the worker thread when the
  // last connection closed.
  void beginDrain();
  void stop();  // stops the loop (after drain or at the deadline) and joins
  size_t activeConnections() const { return active_.load(std::memory_order_relaxed); }
  stats::WorkerStats& stats() { return stats_; }
  const stats::WorkerStats& stats() const { return stats_; }

  // --- worker thread ---
  uint32_t id() const { return id_; }
  asio::io_context& io() { return *io_; }
  const std::shared_ptr<const RuntimeConfig>& config() const { return config_; }
  TimedList& timers() { return timers_; }
  bool draining() const { return draining_; }
  proxy::HttpProxy& proxy() { return *proxy_; }
  AccessLogBuffer& accessLog() { return accessLog_; }
  uint64_t random() { return rng_(); }
  // Pool of connections to `endpoint`; with `tls`, TLS connections (one pool per TLS
  // identity, so policies never share connections).
  upstream::Pool* pool(const snapshot::Endpoint& endpoint,
                       const std::shared_ptr<const snapshot::BackendTls>& tls = nullptr);
  // HTTP/2 (h2c) connections to an endpoint (kH2c backends, gRPC).
  // h2c, or h2 over TLS when the backend has a BackendTLSPolicy.
  upstream::H2Pool* h2Pool(const snapshot::Endpoint& endpoint,
                           const std::shared_ptr<const snapshot::BackendTls>& tls = nullptr);

  // The raw-socket TCP relay loop (proxy/plain_tcp_relay.h), made on first use; null when
  // it cannot work (no epoll set), and then relays use Asio (proxy/tcp_proxy.h).
  proxy::RelayLoop* relayLoop();

  void addConnection(DownstreamConnection* c);
  void removeConnection(DownstreamConnection* c);

 private:
  struct Acceptor;
  void install(std::shared_ptr<const RuntimeConfig> config);
  bool openAcceptor(const PortKey& key);
  asio::awaitable<void> acceptLoop(std::shared_ptr<Acceptor> acceptor);
  asio::awaitable<void> sweepLoop();
  void onAccepted(asio::ip::tcp::socket socket, const PortKey& key);
  // Plain TCP ports: accept4 straight to non-blocking sockets for the relay loop.
  bool isPlainTcpPort(const PortKey& key);
  asio::awaitable<bool> acceptPlainTcp(Acceptor& acceptor);
  // Raw acceptance (see openAcceptor): accept4 until the listening socket is drained.
  static void onListenerReady(void* acceptor, int tag, uint32_t events);
  void acceptRaw(Acceptor& acceptor);
  void serveAccepted(int fd, Acceptor& acceptor);
  void closeAcceptor(const std::shared_ptr<Acceptor>& acceptor);

  uint32_t id_;
  uint32_t maxConnections_;
  std::unique_ptr<asio::io_context> io_;
  std::thread thread_;
  std::shared_ptr<const RuntimeConfig> config_;
  std::map<PortKey, std::shared_ptr<Acceptor>> acceptors_;
  // UDP ports this worker owns (port % worker count == id): see proxy/udp_proxy.h.
  std::map<PortKey, std::unique_ptr<proxy::UdpListener>> udpListeners_;
  uint32_t workerCount_;
  std::unordered_set<DownstreamConnection*> connections_;
  std::atomic<size_t> active_{0};
  TimedList timers_;
  stats::WorkerStats stats_;
  std::unique_ptr<proxy::HttpProxy> proxy_;
  // Plain TCP relays (proxy/plain_tcp_relay.h); created on the first TCP port.
  std::unique_ptr<proxy::RelayLoop> relayLoop_;
  AccessLogBuffer accessLog_;
  std::unordered_map<std::string, std::unique_ptr<upstream::Pool>> pools_;
  std::unordered_map<std::string, std::unique_ptr<upstream::H2Pool>> h2Pools_;
  std::minstd_rand rng_;
  bool draining_ = false;
  bool stopping_ = false;
};

}  // namespace archway::runtime
