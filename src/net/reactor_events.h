// Readiness events for raw sockets straight from the worker's own epoll set.
//
// Asio registers a socket edge-triggered once, but every wait operation on it
// (async_wait, a read of null_buffers) re-registers it with epoll_ctl(MOD), and it does not
// ask for EPOLLRDHUP, so a read that empties a socket cannot tell whether the peer's FIN is
// already queued behind the data. A raw relay wants neither: one registration per socket
// (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) and the event mask of every wake-up.
//
// A ReadyEvent is that registration's sink. It is put into the reactor's own epoll set
// (the set Asio's io_context waits on) with the event as the epoll user data. Asio's
// reactor hands what an epoll_wait returns to the scheduler as operations without looking
// at them beyond the operation base every registration shares, so the scheduler calls the
// ReadyEvent with the event mask, in order with everything else of the loop, and no system
// call beyond the one epoll_wait of the loop turn.
//
// This reaches into Asio's reactor (detail namespace and a private member): it is written
// against Asio 1.22 (the Debian bookworm package). reactorEpollFd() returns -1 on any
// other version or reactor, and callers then use Asio's own sockets.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <system_error>
#include <type_traits>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/version.hpp>

#if ASIO_VERSION == 102201 && defined(ASIO_HAS_EPOLL) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(ASIO_ENABLE_HANDLER_TRACKING)
#define ARCHWAY_REACTOR_EVENTS 1
#include <asio/detail/epoll_reactor.hpp>
#include <asio/detail/scheduler.hpp>
#include <asio/detail/scheduler_operation.hpp>
#include <asio/detail/socket_ops.hpp>
#endif

namespace archway::net {

#if defined(ARCHWAY_REACTOR_EVENTS)

namespace reactor_events_detail {
// The reactor's epoll descriptor is private. An explicit instantiation may name a private
// member ([temp.spec.general]): this one defines a function that returns the pointer to it.
struct EpollFd {
  using type = int asio::detail::epoll_reactor::*;
  friend type member(EpollFd);
};
template <typename Tag, typename Tag::type M>
struct Expose {
  friend typename Tag::type member(Tag) { return M; }
};
template struct Expose<EpollFd, &asio::detail::epoll_reactor::epoll_fd_>;
}  // namespace reactor_events_detail

// The epoll descriptor of the io_context's reactor (which then runs its task), or -1.
inline int reactorEpollFd(asio::io_context& io) {
  auto& reactor = asio::use_service<asio::detail::epoll_reactor>(io);
  reactor.init_task();  // the scheduler waits on the reactor from now on
  return reactor.*member(reactor_events_detail::EpollFd{});
}

class ReadyEvent : public asio::detail::scheduler_operation {
 public:
  // Called on the loop's thread with the epoll event mask.
  using Fn = void (*)(void* context, int tag, uint32_t events);
  ReadyEvent(Fn fn, void* context, int tag)
      : scheduler_operation(&ReadyEvent::complete), fn_(fn), context_(context), tag_(tag) {}
  ~ReadyEvent() = default;
  ReadyEvent(const ReadyEvent&) = delete;
  ReadyEvent& operator=(const ReadyEvent&) = delete;

  // What the reactor gets as epoll user data: it reads the operation base at this address.
  void* userData() { return static_cast<asio::detail::scheduler_operation*>(this); }

 private:
  static void complete(void* owner, asio::detail::scheduler_operation* base, const std::error_code&,
                       std::size_t events) {
    if (!owner) return;  // the io_context is being destroyed with this event queued
    // Readiness is not counted as work (see epoll_reactor::run); the scheduler counts one
    // finished when this returns.
    static_cast<asio::detail::scheduler*>(owner)->compensating_work_started();
    auto* self = static_cast<ReadyEvent*>(base);
    self->fn_(self->context_, self->tag_, static_cast<uint32_t>(events));
  }

  Fn fn_;
  void* context_;
  int tag_;
};
// The reactor reads the operation base at the registered address: no vtable before it.
static_assert(!std::is_polymorphic_v<ReadyEvent>);

// A socket assigned from accept4(SOCK_NONBLOCK): Asio's own flags say it is non-blocking
// (no ioctl(FIONBIO) before its first asynchronous operation) and not a duplicate of another
// descriptor (closing it needs no epoll_ctl(DEL): the kernel drops the registration).
inline void markAcceptedNonBlocking(asio::ip::tcp::socket& socket) {
  struct Access : asio::ip::tcp::socket {
    static auto& io(asio::ip::tcp::socket& s) { return s.*(&Access::impl_); }
  };
  namespace ops = asio::detail::socket_ops;
  auto& impl = Access::io(socket).get_implementation();
  impl.state_ =
      static_cast<ops::state_type>((impl.state_ | ops::internal_non_blocking) & ~ops::possible_dup);
}

#else

inline int reactorEpollFd(asio::io_context&) { return -1; }
inline void markAcceptedNonBlocking(asio::ip::tcp::socket&) {}

class ReadyEvent {
 public:
  using Fn = void (*)(void* context, int tag, uint32_t events);
  ReadyEvent(Fn, void*, int) {}
  void* userData() { return this; }
};

#endif

// Every registration wants edge-triggered reads, writes and the peer's FIN.
inline bool watchEdges(int epfd, int fd, ReadyEvent& event, int op = EPOLL_CTL_ADD) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = event.userData();
  return ::epoll_ctl(epfd, op, fd, &ev) == 0;
}

}  // namespace archway::net
