#include "proxy/udp_proxy.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "http/stream.h"
#include "net/limits.h"

namespace archway::proxy {

using http::kNoThrow;

// One direction's recvmmsg/sendmmsg state. Slots are allocated, not zero-filled: a slot's
// pages are committed only when a datagram lands in them, so small datagrams cost a page
// per slot however large the maximum is.
struct UdpListener::Batch {
  static constexpr unsigned kN = net::kUdpBatchDatagrams;
  Batch() : slots(std::make_unique_for_overwrite<char[]>(kN * net::kMaxUdpDatagramBytes)) {}
  char* slot(unsigned i) { return slots.get() + i * net::kMaxUdpDatagramBytes; }
  // Readies every entry for a recvmmsg (with source addresses when `named`).
  void prepareReceive(bool named) {
    for (unsigned i = 0; i < kN; ++i) {
      iov[i] = {slot(i), net::kMaxUdpDatagramBytes};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (named) {
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
      }
      msgs[i].msg_len = 0;
    }
  }
  std::unique_ptr<char[]> slots;
  mmsghdr msgs[kN];
  iovec iov[kN];
  sockaddr_storage addrs[kN];
  // The outgoing vector of a sendmmsg (entries point into slots).
  mmsghdr send[kN];
  iovec sendIov[kN];
};

namespace {

// recvmmsg without blocking; -1 with errno on failure (EAGAIN: nothing queued).
int receiveBatch(int fd, mmsghdr* msgs, unsigned n) {
  for (;;) {
    int r = ::recvmmsg(fd, msgs, n, MSG_DONTWAIT, nullptr);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

// sendmmsg of `n` entries without blocking; returns the bytes of the entries the kernel
// took (the rest are dropped: a full socket buffer drops datagrams, as UDP may).
uint64_t sendBatch(int fd, mmsghdr* msgs, unsigned n) {
  uint64_t bytes = 0;
  unsigned done = 0;
  while (done < n) {
    int r = ::sendmmsg(fd, msgs + done, n - done, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // One datagram refused (e.g. ICMP unreachable reported on a connected socket, or a
      // full buffer): drop it and keep the rest of the batch.
      if (errno == EAGAIN || errno == ENOBUFS) break;
      ++done;
      continue;
    }
    for (int i = 0; i < r; ++i) bytes += msgs[done + i].msg_hdr.msg_iov->iov_len;
    done += static_cast<unsigned>(r);
  }
  return bytes;
}

}  // namespace

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
      in_(std::make_unique<Batch>()),
      out_(std::make_unique<Batch>()) {}
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
  s->setDeadline(net::udpSessionIdleTimeout);
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
  for (;;) {
    auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_read, kNoThrow);
    if (!*alive || closed_) co_return;
    if (ec) co_return;  // closed
    std::shared_ptr<const runtime::RuntimeConfig> config = worker_.config();
    // Listener stats of this port under the current config.
    stats::ListenerStats* ls = nullptr;
    if (config)
      for (const auto& p : config->ports)
        if (p.udp && p.port == key_.second && p.address == key_.first && !p.listeners.empty())
          ls = config->worker(worker_.id()).listeners[p.listeners.front().statsIndex];
    for (int turn = 0;; ++turn) {
      if (turn == net::kUdpBatchesPerTurn) {
        // Still more queued: let the loop serve other sockets, then go on without waiting
        // (the socket is edge-triggered: no new edge comes for datagrams already queued).
        turn = 0;
        co_await asio::post(worker_.io(), asio::use_awaitable);
        if (!*alive || closed_) co_return;
      }
      in_->prepareReceive(true);
      int n = receiveBatch(socket_.native_handle(), in_->msgs, Batch::kN);
      if (n <= 0) break;  // drained (EAGAIN); errors are not queued on an unconnected socket
      if (config) relayBatch(n, config, ls);
      if (closed_) co_return;
      // A short batch means the queue was empty: an unconnected UDP socket reports no
      // errors that could have cut it short, so wait for the next datagram's edge.
      if (static_cast<unsigned>(n) < Batch::kN) break;
    }
  }
}

void UdpListener::relayBatch(int n, const std::shared_ptr<const runtime::RuntimeConfig>& config,
                             stats::ListenerStats* stats) {
  Batch& b = *in_;
  std::shared_ptr<Session> cur;  // session of the pending run in b.send
  unsigned pending = 0;
  auto flush = [&] {
    if (!pending) return;
    uint64_t bytes = sendBatch(cur->upstream.native_handle(), b.send, pending);
    if (cur->stats && bytes) stats::inc(cur->stats->bytesReceived, bytes);
    cur->setDeadline(net::udpSessionIdleTimeout);
    pending = 0;
  };
  asio::ip::udp::endpoint client;
  for (int i = 0; i < n; ++i) {
    const msghdr& h = b.msgs[i].msg_hdr;
    if (h.msg_flags & MSG_TRUNC) continue;  // larger than any UDP payload we relay
    if (h.msg_namelen > client.capacity()) continue;
    std::memcpy(client.data(), h.msg_name, h.msg_namelen);
    client.resize(h.msg_namelen);
    if (!cur || cur->removed || cur->client != client) {
      // Send the previous run first: creating a session may evict the oldest one.
      flush();
      cur = findOrCreate(client, config, stats);
      if (!cur) continue;  // no route / backend: dropped
    }
    b.sendIov[pending] = {b.slot(static_cast<unsigned>(i)), b.msgs[i].msg_len};
    b.send[pending].msg_hdr = {};
    b.send[pending].msg_hdr.msg_iov = &b.sendIov[pending];
    b.send[pending].msg_hdr.msg_iovlen = 1;
    ++pending;
  }
  if (cur && !cur->removed) flush();
}

asio::awaitable<void> UdpListener::upstreamLoop(std::shared_ptr<Session> s) {
  auto alive = alive_;
  // Wait for readability, then drain into the listener's shared batch: a waiting session
  // holds no buffer of its own.
  for (;;) {
    auto [ec] = co_await s->upstream.async_wait(asio::socket_base::wait_read, kNoThrow);
    if (!*alive || s->removed) co_return;
    if (ec) {
      remove(s);  // closed: idle timeout, eviction, listener gone
      co_return;
    }
    for (int turn = 0;; ++turn) {
      if (turn == net::kUdpBatchesPerTurn) {
        turn = 0;
        co_await asio::post(worker_.io(), asio::use_awaitable);
        if (!*alive || s->removed) co_return;
      }
      Batch& b = *out_;
      b.prepareReceive(false);
      int n = receiveBatch(s->upstream.native_handle(), b.msgs, Batch::kN);
      if (n < 0) {
        // ICMP unreachable from a down backend surfaces once as an error (the session
        // stays; the error is consumed); EAGAIN: drained. A connected socket may cut a
        // batch short on such an error, so only EAGAIN ends the turn.
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
        break;
      }
      if (n == 0) break;
      unsigned m = 0;
      for (int i = 0; i < n; ++i) {
        if (b.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
        b.sendIov[m] = {b.slot(static_cast<unsigned>(i)), b.msgs[i].msg_len};
        b.send[m].msg_hdr = {};
        b.send[m].msg_hdr.msg_name = s->client.data();
        b.send[m].msg_hdr.msg_namelen = static_cast<socklen_t>(s->client.size());
        b.send[m].msg_hdr.msg_iov = &b.sendIov[m];
        b.send[m].msg_hdr.msg_iovlen = 1;
        ++m;
      }
      s->setDeadline(net::udpSessionIdleTimeout);
      uint64_t bytes = sendBatch(socket_.native_handle(), b.send, m);
      if (s->stats && bytes) stats::inc(s->stats->bytesSent, bytes);
    }
  }
}

}  // namespace archway::proxy
