// UDPRoute relay. One worker owns each UDP listener port (the port number modulo the
// worker count), so every datagram of a client reaches the same worker and the same
// session without SO_REUSEPORT steering (no BPF program needed); datagrams of a session
// are handled in arrival order on one loop, so they are never reordered by the proxy.
//
// A session is keyed by the client address and has its own connected upstream socket,
// chosen by weighted pick among the first (oldest) route's backends when it starts.
// Sessions end after net::udpSessionIdleTimeout (`--udp-idle-timeout`) without traffic; beyond
// net::kMaxUdpSessionsPerPort the least recently used session is evicted, so a flood of
// spoofed sources costs bounded memory. Sends never block the loop: a datagram the kernel
// cannot take right now is dropped, as UDP allows.
//
// Datagrams move in batches: one recvmmsg(2) takes up to net::kUdpBatchDatagrams from a
// socket and one sendmmsg(2) passes each run of them belonging to one session on, so a
// busy port costs a few system calls per batch instead of two per datagram.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/ip/udp.hpp>

#include "runtime/config.h"
#include "runtime/timed.h"
#include "runtime/worker.h"

namespace archway::proxy {

class UdpListener {
 public:
  UdpListener(runtime::Worker& worker, runtime::PortKey key);
  ~UdpListener();

  bool open();  // binds; false (logged) when the port cannot be bound
  void close();
  const runtime::PortKey& key() const { return key_; }
  size_t sessionCount() const { return sessions_.size(); }

 private:
  struct Session;
  struct Batch;  // recvmmsg/sendmmsg vectors and slots, see udp_proxy.cc
  asio::awaitable<void> receiveLoop();
  // Relays the `n` datagrams in in_ (a recvmmsg result) to their sessions.
  void relayBatch(int n, const std::shared_ptr<const runtime::RuntimeConfig>& config,
                  stats::ListenerStats* stats);
  asio::awaitable<void> upstreamLoop(std::shared_ptr<Session> session);
  std::shared_ptr<Session> findOrCreate(const asio::ip::udp::endpoint& client,
                                        const std::shared_ptr<const runtime::RuntimeConfig>& config,
                                        stats::ListenerStats* stats);
  void remove(std::shared_ptr<Session> session);  // by value: see udp_proxy.cc

  runtime::Worker& worker_;
  runtime::PortKey key_;
  asio::ip::udp::socket socket_;
  std::unique_ptr<Batch> in_;   // client -> upstream
  std::unique_ptr<Batch> out_;  // upstream -> client, shared by the sessions' loops
  std::map<asio::ip::udp::endpoint, std::shared_ptr<Session>> sessions_;
  std::list<Session*> lru_;  // front = most recently used
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool closed_ = false;
};

}  // namespace archway::proxy
