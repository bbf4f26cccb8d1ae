// The plain TCP relay (TCPRoute, and TLSRoute passthrough once the ClientHello is peeked):
// the connection-rate path. It runs on raw non-blocking sockets registered directly in the
// worker's own epoll set (the one its Asio loop waits on, net/reactor_events.h): one
// epoll_ctl per socket, edge-triggered for reading, writing and the peer's FIN, and the
// event masks come back through the worker's ordinary epoll_wait, with no wait operation
// to re-arm. What this saves against an Asio socket pair, per connection: accept4/socket
// with SOCK_NONBLOCK instead of ioctl(FIONBIO) twice, one epoll_ctl per socket instead of
// add + modify + delete, no poll() or getsockopt() in the connect completion, no read that
// is bound to fail (a short read means the socket is drained; a peer's FIN seen by epoll
// ends the direction without one more read), and no shutdown(2) when close(2) ends the
// last direction anyway. The client's first bytes are read right after accept and sent
// right after connect(2) (which has usually completed on loopback or a LAN; EAGAIN falls
// back to the writable edge), and TCP_NODELAY costs nothing on the client side (inherited
// from the listening socket) and is set on the upstream side only before its second send
// (Nagle cannot hold back a first one). A request/response connection takes 14 system
// calls in all.
//
// Behaviour is the same as TcpRelay's (tcp_proxy.h): connect to a weighted backend of the
// route (connect timeout, net::kL4ConnectAttempts endpoints tried), copy both ways with
// half-close kept, a reset or the idle timeout closes both, bulk directions move by
// splice(2), bytes counted per listener. TLS termination keeps TcpRelay (Asio's TLS
// streams), and so does every TCP port when the reactor cannot be reached (another Asio).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <asio/ip/tcp.hpp>

#include "net/reactor_events.h"
#include "proxy/l4.h"
#include "runtime/config.h"
#include "runtime/timed.h"
#include "runtime/worker.h"

namespace archway::proxy {

class PlainTcpRelay;

// One per worker, created on its first plain TCP connection.
class RelayLoop {
 public:
  explicit RelayLoop(runtime::Worker& worker);
  // Closes every relay still open (worker shutdown). Destroyed after the worker's
  // io_context, which may hold queued events of open relays until then.
  ~RelayLoop();
  RelayLoop(const RelayLoop&) = delete;
  RelayLoop& operator=(const RelayLoop&) = delete;

  bool ok() const { return epfd_ >= 0; }
  int epollFd() const { return epfd_; }  // the worker's reactor's
  // Serves an accepted, non-blocking client socket of a TCP port; takes `fd`.
  void serve(int fd, const runtime::PortKey& key);
  // Takes the descriptor of an Asio socket (left closed) for servePeeked: non-blocking,
  // and still in the worker's epoll set (servePeeked re-points that registration with one
  // epoll_ctl instead of Asio's delete plus an add). -1 on failure (the socket is closed).
  int takeFromAsio(asio::ip::tcp::socket& socket);
  // Serves a TLS passthrough connection (TLSRoute): `initial` is what was read of it to
  // route it (the ClientHello and anything after it), relayed first. Takes `fd`, which
  // comes from takeFromAsio().
  void servePeeked(int fd, const runtime::PortKey& key, stats::ListenerStats* stats,
                   std::shared_ptr<const runtime::RuntimeConfig> config, const L4RouteSet* route,
                   std::string_view initial);

 private:
  friend class PlainTcpRelay;
  PlainTcpRelay* adopt(PlainTcpRelay* relay);
  // Watches `fd` (edge-triggered: readable, writable, peer's FIN) with `event`; `modify`
  // when it is still registered (takeFromAsio).
  bool watch(int fd, net::ReadyEvent& event, bool modify = false);
  // The relay is done: destroyed by a handler posted behind the events the loop has
  // already taken from epoll, the last that can refer to it (its sockets are closed).
  void retire(PlainTcpRelay* relay);
  void reap();

  runtime::Worker& worker_;
  int epfd_ = -1;                     // the worker's reactor's
  std::vector<PlainTcpRelay*> live_;  // every relay not yet destroyed (index in the relay)
  std::vector<PlainTcpRelay*> retired_;
  bool reapPosted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class PlainTcpRelay : public runtime::Timed, public runtime::DownstreamConnection {
 public:
  PlainTcpRelay(RelayLoop& loop, int downFd, runtime::PortKey key, stats::ListenerStats* stats,
                std::shared_ptr<const runtime::RuntimeConfig> config, const L4RouteSet* route);
  ~PlainTcpRelay() override;

  void start();
  void startPeeked(std::string_view initial);
  void onEvent(int side, uint32_t events);
  static void onReady(void* relay, int tag, uint32_t events);
  void drain() override {}  // like TcpRelay: L4 streams end with their peers or a timeout
  const runtime::PortKey& portKey() const override { return key_; }

 protected:
  void onDeadline() override;

 private:
  friend class RelayLoop;
  static constexpr int kDown = 0;
  static constexpr int kUp = 1;
  struct Side {
    int fd = -1;
    bool readable = false;
    bool writable = false;
    bool peerClosed = false;  // EPOLLRDHUP: the peer's FIN is queued behind its data
    bool sent = false;        // something was written to it
    bool noDelay = false;     // TCP_NODELAY is set
  };
  // Bytes moving from side `from` to the other side.
  struct Direction {
    std::unique_ptr<char[]> buf;  // kL4BufferBytes, or more for a large peeked ClientHello
    size_t off = 0;
    size_t len = 0;
    int pipeRead = -1;  // splice mode: bytes pass through this pipe
    int pipeWrite = -1;
    size_t inPipe = 0;
    bool ended = false;  // the FIN was passed on (or the relay finishes)
  };

  // Reads what the client sent before it was accepted; false on a reset.
  bool readFirst();
  // Serves the client from its first bytes on; `registered`: its socket is still in the
  // epoll set with a stale registration (re-pointed, not added).
  void begin(bool registered);
  // Connects to the next endpoint; false when none is left (the relay is then retired).
  bool connectNext();
  void connectFailed();
  void connected();
  void sendFirst();
  void progress();
  // Moves what it can in direction `d`; false when the relay was aborted.
  bool pump(int d);
  // Switches direction `dr` to splice mode; false when no pipe can be made.
  static bool startSplice(Direction& dr);
  // Direction `d` reached its end: pass the FIN on, or close everything when it was the
  // last direction.
  void endDirection(int d);
  void abort();
  void closeAll();

  RelayLoop& loop_;
  runtime::PortKey key_;
  stats::ListenerStats* stats_;
  std::shared_ptr<const runtime::RuntimeConfig> config_;  // keeps route_ alive
  const L4RouteSet* route_;
  Side side_[2];
  Direction dir_[2];
  // Epoll registrations: the client's, and the upstream attempts' alternating between two,
  // so that an event of a failed attempt already taken from epoll is not taken for its
  // successor's (upEvent_ is the current one).
  net::ReadyEvent events_[3];
  int upEvent_ = 1;
  int attempts_ = 0;
  bool connecting_ = false;
  bool done_ = false;
  size_t liveIndex_ = 0;
};

}  // namespace archway::proxy
