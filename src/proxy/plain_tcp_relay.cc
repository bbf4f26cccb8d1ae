#include "proxy/plain_tcp_relay.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include "net/limits.h"

namespace archway::proxy {

namespace {

void setNoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// What a read or write system call did, from its return value and errno.
enum class IoResult { kMoved, kEnd, kRetry, kAgain, kFailed };

IoResult classify(ssize_t n) {
  if (n > 0) return IoResult::kMoved;
  if (n == 0) return IoResult::kEnd;  // a read's EOF (a write of n > 0 bytes never returns 0)
  if (errno == EINTR) return IoResult::kRetry;
  if (errno == EAGAIN) return IoResult::kAgain;
  return IoResult::kFailed;
}

void closeFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

// ------------------------------------------------------------------------- RelayLoop

RelayLoop::RelayLoop(runtime::Worker& worker)
    : worker_(worker), epfd_(net::reactorEpollFd(worker.io())) {
  if (epfd_ < 0) spdlog::debug("tcp relay: no epoll reactor, TCP ports use Asio sockets");
}

RelayLoop::~RelayLoop() {
  *alive_ = false;
  std::vector<PlainTcpRelay*> all;
  all.swap(live_);
  for (auto* r : all) delete r;  // closes its sockets
  retired_.clear();
}

bool RelayLoop::watch(int fd, net::ReadyEvent& event, bool modify) {
  return net::watchEdges(epfd_, fd, event, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
}

void RelayLoop::serve(int fd, const runtime::PortKey& key) {
  const auto& config = worker_.config();
  const runtime::CompiledPort* port = config ? config->findPort(key.first, key.second) : nullptr;
  if (!port || !port->l4 || port->listeners.empty()) {
    ::close(fd);
    return;
  }
  // TCP listeners are distinct by port: one listener, its first (oldest) route serves.
  stats::ListenerStats* ls =
      config->worker(worker_.id()).listeners[port->listeners.front().statsIndex];
  const L4RouteSet* route = port->l4->route(0, {}, false);
  // No TCP_NODELAY call: accepted sockets inherit it from the listening socket.
  adopt(new PlainTcpRelay(*this, fd, key, ls, config, route))->start();
}

int RelayLoop::takeFromAsio(asio::ip::tcp::socket& socket) {
  std::error_code ec;
#if defined(ARCHWAY_REACTOR_EVENTS)
  // basic_socket's implementation is protected: a pointer to member named through a
  // derived class reaches it (as in net/drain_aware_read.h).
  struct Access : asio::ip::tcp::socket {
    static auto& io(asio::ip::tcp::socket& s) { return s.*(&Access::impl_); }
  };
  auto& io = Access::io(socket);
  auto& impl = io.get_implementation();
  int fd = impl.socket_;
  if (fd < 0) return -1;
  // The peek's reads made Asio set O_NONBLOCK (its own flag says so, without a system
  // call); otherwise it is set here.
  if (!socket.native_non_blocking()) {
    int on = 1;
    if (::ioctl(fd, FIONBIO, &on) != 0) {
      socket.close(ec);
      return -1;
    }
  }
  // "Closing": Asio forgets the descriptor without epoll_ctl(DEL); its registration stays
  // until servePeeked re-points it, in this same handler (no epoll_wait in between).
  auto& reactor = asio::use_service<asio::detail::epoll_reactor>(worker_.io());
  reactor.deregister_descriptor(fd, impl.reactor_data_, true);
  reactor.cleanup_descriptor_data(impl.reactor_data_);
  io.get_service().construct(impl);  // the socket object no longer owns fd
  return fd;
#else
  socket.close(ec);  // not reached: without the reactor there is no RelayLoop
  return -1;
#endif
}

void RelayLoop::servePeeked(int fd, const runtime::PortKey& key, stats::ListenerStats* stats,
                            std::shared_ptr<const runtime::RuntimeConfig> config,
                            const L4RouteSet* route, std::string_view initial) {
  adopt(new PlainTcpRelay(*this, fd, key, stats, std::move(config), route))->startPeeked(initial);
}

PlainTcpRelay* RelayLoop::adopt(PlainTcpRelay* relay) {
  relay->liveIndex_ = live_.size();
  live_.push_back(relay);
  return relay;
}

void RelayLoop::retire(PlainTcpRelay* relay) {
  retired_.push_back(relay);
  if (reapPosted_) return;
  reapPosted_ = true;
  // Posted from the loop's thread: queued behind every event already taken from epoll.
  asio::post(worker_.io(), [this, alive = alive_] {
    if (!*alive) return;
    reapPosted_ = false;
    reap();
  });
}

void RelayLoop::reap() {
  std::vector<PlainTcpRelay*> dead;
  dead.swap(retired_);
  for (auto* r : dead) {
    size_t i = r->liveIndex_;
    live_[i] = live_.back();
    live_[i]->liveIndex_ = i;
    live_.pop_back();
    delete r;
  }
}

// ---------------------------------------------------------------------- PlainTcpRelay

PlainTcpRelay::PlainTcpRelay(RelayLoop& loop, int downFd, runtime::PortKey key,
                             stats::ListenerStats* stats,
                             std::shared_ptr<const runtime::RuntimeConfig> config,
                             const L4RouteSet* route)
    : loop_(loop),
      key_(std::move(key)),
      stats_(stats),
      config_(std::move(config)),
      route_(route),
      events_{{&PlainTcpRelay::onReady, this, 0},
              {&PlainTcpRelay::onReady, this, 1},
              {&PlainTcpRelay::onReady, this, 2}} {
  side_[kDown].fd = downFd;
  side_[kDown].noDelay = true;  // inherited from the listening socket
  link(&loop_.worker_.timers());
  loop_.worker_.addConnection(this);
  if (stats_) {
    stats::inc(stats_->connections);
    stats::inc(stats_->activeConnections);
  }
}

PlainTcpRelay::~PlainTcpRelay() {
  for (auto& s : side_) closeFd(s.fd);
  for (auto& d : dir_) {
    closeFd(d.pipeRead);
    closeFd(d.pipeWrite);
  }
  if (stats_) stats::dec(stats_->activeConnections);
  loop_.worker_.removeConnection(this);
}

void PlainTcpRelay::start() {
  // The client's first bytes are usually queued by the time it is accepted. Reading them
  // before the socket is registered keeps the registration from reporting them again, and
  // lets them leave with the upstream connect (below) instead of one loop turn later.
  if (!readFirst()) {
    closeAll();
    return;
  }
  begin(false);
}

void PlainTcpRelay::startPeeked(std::string_view initial) {
  Direction& dr = dir_[kDown];
  dr.buf = std::make_unique_for_overwrite<char[]>(std::max(net::kL4BufferBytes, initial.size()));
  std::memcpy(dr.buf.get(), initial.data(), initial.size());
  dr.len = initial.size();
  // Anything after the peeked bytes (or the FIN) is reported by the registration: epoll
  // reports a socket's state as of the epoll_ctl, edge-triggered or not.
  begin(true);
}

void PlainTcpRelay::begin(bool registered) {
  if (!loop_.watch(side_[kDown].fd, events_[kDown], registered)) {
    closeAll();
    return;
  }
  if (!route_ || !connectNext()) {
    if (stats_) stats::inc(stats_->noRoute);
    closeAll();  // the client connection closes
    return;
  }
  sendFirst();
}

bool PlainTcpRelay::readFirst() {
  Direction& dr = dir_[kDown];
  Side& s = side_[kDown];
  dr.buf = std::make_unique_for_overwrite<char[]>(net::kL4BufferBytes);
  for (;;) {
    ssize_t n = ::recv(s.fd, dr.buf.get(), net::kL4BufferBytes, 0);
    switch (classify(n)) {
      case IoResult::kMoved:
        dr.len = static_cast<size_t>(n);
        s.readable = dr.len == net::kL4BufferBytes;  // a short read emptied the socket
        return true;
      case IoResult::kEnd:
        s.readable = true;  // the FIN: read again (and passed on) once connected
        return true;
      case IoResult::kRetry:
        continue;
      case IoResult::kAgain:
        return true;  // nothing yet: the registration reports the first bytes
      case IoResult::kFailed:
        return false;  // reset before anything was relayed
    }
  }
}

bool PlainTcpRelay::connectNext() {
  runtime::Worker& worker = loop_.worker_;
  while (attempts_ < net::kL4ConnectAttempts) {
    ++attempts_;
    const snapshot::Backend* backend = pickBackend(*route_, worker.random());
    if (!backend || backend->endpoints.empty()) return false;
    const auto& ep = backend->endpoints[worker.random() % backend->endpoints.size()];
    std::error_code ec;
    auto address = asio::ip::make_address(ep.address, ec);
    if (ec) continue;
    asio::ip::tcp::endpoint target(address, ep.port);
    int fd = ::socket(target.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                      IPPROTO_TCP);
    if (fd < 0) return false;  // out of descriptors
    int rc = ::connect(fd, target.data(), static_cast<socklen_t>(target.size()));
    // Watched only once the connect is under way: an unconnected socket polls as hung up.
    int ev = 1 + attempts_ % 2;  // not the previous attempt's registration
    if ((rc == 0 || errno == EINPROGRESS) && loop_.watch(fd, events_[ev])) {
      upEvent_ = ev;
      side_[kUp] = Side{};
      side_[kUp].fd = fd;
      side_[kUp].writable = true;  // optimistic: see sendFirst()
      connecting_ = true;
      setDeadline(net::kUpstreamConnectTimeout);
      return true;
    }
    spdlog::debug("tcp relay: connect to {}:{} failed: {}", ep.address, ep.port,
                  std::strerror(errno));
    ::close(fd);
  }
  return false;
}

void PlainTcpRelay::connectFailed() {
  connecting_ = false;
  clearDeadline();
  if (spdlog::should_log(spdlog::level::debug)) {
    int err = 0;
    socklen_t len = sizeof(err);
    (void)::getsockopt(side_[kUp].fd, SOL_SOCKET, SO_ERROR, &err, &len);
    spdlog::debug("tcp relay: connect failed: {}", err ? std::strerror(err) : "timed out");
  }
  closeFd(side_[kUp].fd);
  if (!connectNext()) {
    if (stats_) stats::inc(stats_->noRoute);
    closeAll();
  }
}

void PlainTcpRelay::onDeadline() {
  if (done_) return;
  if (connecting_) {
    connectFailed();  // the next endpoint may be tried
    return;
  }
  abort();  // idle
}

void PlainTcpRelay::onReady(void* relay, int tag, uint32_t events) {
  auto* self = static_cast<PlainTcpRelay*>(relay);
  if (tag == kDown) {
    self->onEvent(kDown, events);
  } else if (tag == self->upEvent_) {
    self->onEvent(kUp, events);
  }  // else: a failed attempt's, taken from epoll before its socket was closed
}

void PlainTcpRelay::onEvent(int side, uint32_t events) {
  if (done_) return;  // retired earlier in this batch
  Side& s = side_[side];
  if (side == kUp && connecting_) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      connectFailed();
      return;
    }
    if (!(events & EPOLLOUT)) return;
    connected();
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) s.readable = true;  // a read reports errors
  if (events & EPOLLRDHUP) s.peerClosed = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) s.writable = true;
  progress();
}

void PlainTcpRelay::connected() {
  connecting_ = false;
  setDeadline(net::tcpIdleTimeout);
}

void PlainTcpRelay::progress() {
  if (done_ || connecting_) return;
  if (!pump(kDown)) return;
  pump(kUp);
}

void PlainTcpRelay::sendFirst() {
  // A connect on loopback or a LAN has usually completed by the time connect(2) returns:
  // the client's first bytes are sent at once, and only EAGAIN (still connecting) waits
  // for the writable edge. A refused connect moves on to the next endpoint with the bytes
  // kept. Not done from an event batch, where a stale event of a failed socket could
  // then be taken for its successor's.
  if (dir_[kDown].len > 0) pump(kDown);
}

// Copy mode moves bytes through a user-space buffer (recv/send); splice mode, taken once
// a direction fills the whole buffer, through a pipe (splice both ways).
bool PlainTcpRelay::pump(int d) {
  Side& from = side_[d];
  Side& to = side_[1 - d];
  Direction& dr = dir_[d];
  for (;;) {
    bool splicing = dr.pipeRead >= 0;
    size_t pending = splicing ? dr.inPipe : dr.len - dr.off;
    if (pending > 0) {
      if (!to.writable) return true;
      if (to.sent && !to.noDelay) {
        // Nagle can only hold back a socket's second and later sends: the option is set
        // then, which short request/response connections never pay for.
        setNoDelay(to.fd);
        to.noDelay = true;
      }
      ssize_t n = splicing ? ::splice(dr.pipeRead, nullptr, to.fd, nullptr, pending,
                                      SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                           : ::send(to.fd, dr.buf.get() + dr.off, pending, MSG_NOSIGNAL);
      IoResult r = classify(n);
      if (r == IoResult::kRetry) continue;
      if (r == IoResult::kAgain) {
        to.writable = false;  // full, or (first send) still connecting: an edge follows
        return true;
      }
      if (r != IoResult::kMoved) {
        if (connecting_) {
          connectFailed();  // refused: the bytes are still here for the next endpoint
          return false;
        }
        abort();
        return false;
      }
      if (connecting_) connected();
      to.sent = true;
      size_t moved = static_cast<size_t>(n);
      if (stats_) stats::inc(d == kDown ? stats_->bytesReceived : stats_->bytesSent, moved);
      setDeadline(net::tcpIdleTimeout);
      if (splicing) {
        dr.inPipe -= moved;
        continue;
      }
      dr.off += moved;
      if (dr.off < dr.len) {
        to.writable = false;  // the send buffer is full: its edge comes when it drains
        return true;
      }
      bool bulk = dr.len == net::kL4BufferBytes;
      dr.off = dr.len = 0;
      if (bulk && !startSplice(dr)) {
        abort();  // out of descriptors: drop this stream rather than copy half of it
        return false;
      }
      continue;
    }
    if (dr.ended) return true;
    if (!from.readable) {
      // Drained, and the peer's FIN is next: the direction ends without another read.
      if (from.peerClosed) {
        endDirection(d);
        return !done_;
      }
      return true;
    }
    ssize_t n;
    if (splicing) {
      // The pipe is empty here, so EAGAIN means the socket has nothing to read.
      n = ::splice(from.fd, nullptr, dr.pipeWrite, nullptr, net::kSplicePipeBytes,
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } else {
      if (!dr.buf) dr.buf = std::make_unique_for_overwrite<char[]>(net::kL4BufferBytes);
      n = ::recv(from.fd, dr.buf.get(), net::kL4BufferBytes, 0);
    }
    switch (classify(n)) {
      case IoResult::kMoved:
        if (splicing) {
          dr.inPipe = static_cast<size_t>(n);
        } else {
          dr.off = 0;
          dr.len = static_cast<size_t>(n);
          // Edge-triggered: a short read emptied the socket; new bytes bring a new edge.
          if (dr.len < net::kL4BufferBytes) from.readable = false;
        }
        continue;
      case IoResult::kEnd:
        endDirection(d);
        return !done_;
      case IoResult::kRetry:
        continue;
      case IoResult::kAgain:
        from.readable = false;
        return true;
      case IoResult::kFailed:
        abort();  // reset
        return false;
    }
  }
}

bool PlainTcpRelay::startSplice(Direction& dr) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  dr.pipeRead = fds[0];
  dr.pipeWrite = fds[1];
  // Best effort: a larger pipe moves more per splice call.
  (void)::fcntl(dr.pipeWrite, F_SETPIPE_SZ, static_cast<int>(net::kSplicePipeBytes));
  dr.buf.reset();
  return true;
}

void PlainTcpRelay::endDirection(int d) {
  Direction& dr = dir_[d];
  dr.ended = true;
  dr.buf.reset();
  closeFd(dr.pipeRead);
  closeFd(dr.pipeWrite);
  // Both ways ended: close(2) sends this FIN (every byte was written, nothing is unread).
  if (dir_[1 - d].ended) {
    closeAll();
    return;
  }
  (void)::shutdown(side_[1 - d].fd, SHUT_WR);  // half-close: the other way stays open
}

void PlainTcpRelay::abort() { closeAll(); }

void PlainTcpRelay::closeAll() {
  if (done_) return;
  done_ = true;
  connecting_ = false;
  clearDeadline();
  for (auto& s : side_) closeFd(s.fd);
  for (auto& dr : dir_) {
    dr.buf.reset();
    closeFd(dr.pipeRead);
    closeFd(dr.pipeWrite);
  }
  loop_.retire(this);
}

}  // namespace archway::proxy
