// async_read_some on a TCP socket without the read that is bound to fail.
//
// Asio 1.22 tries every async_read_some at once, before it waits for epoll. On a keep-alive
// proxy the next bytes almost never are there yet (the client waits for our response, the
// backend for our request), so that try is one recv() failing with EAGAIN per request in
// each direction. Asio skips the immediate try only after a read its operation reports as
// "exhausted", which its own receive operation says for end of stream alone. The operation
// below also says it for a short read (fewer bytes than the buffer holds): that drained the
// socket's receive queue, so the next read waits for the next EPOLLIN edge. The socket is
// registered edge-triggered, and bytes that arrive after the read raise a new edge, so
// nothing is missed; an edge also re-enables the immediate try (see
// epoll_reactor::descriptor_state::perform_io). A FIN that came with the last bytes raises no
// edge of its own, so the read also asks for one byte more in the same system call
// (recvmmsg) and calls the socket drained only when that second read finds nothing.
//
// This reaches into Asio's reactor (detail namespace); it is written against Asio 1.22 (the
// Debian bookworm package) and falls back to the plain async_read_some on any other version.
#pragma once

#include <cstddef>
#include <system_error>
#include <utility>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/version.hpp>

#if ASIO_VERSION == 102201 && defined(ASIO_HAS_EPOLL) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT)
#define ARCHWAY_DRAIN_AWARE_READ 1
#include <sys/socket.h>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/detail/bind_handler.hpp>
#include <asio/detail/fenced_block.hpp>
#include <asio/detail/handler_alloc_helpers.hpp>
#include <asio/detail/handler_cont_helpers.hpp>
#include <asio/detail/handler_work.hpp>
#include <asio/detail/memory.hpp>
#include <asio/detail/reactor.hpp>
#include <asio/detail/reactor_op.hpp>
#include <asio/detail/socket_ops.hpp>
#include <cerrno>
#endif

namespace archway::net {

#if defined(ARCHWAY_DRAIN_AWARE_READ)
namespace drain_aware_detail {

// The socket's implementation (descriptor, state, reactor registration) is a protected
// member of asio::basic_socket; a pointer to member named through a derived class reaches it.
struct SocketAccess : asio::ip::tcp::socket {
  static auto& impl(asio::ip::tcp::socket& s) { return s.*(&SocketAccess::impl_); }
};

template <typename Handler, typename IoExecutor>
class RecvOp : public asio::detail::reactor_op {
 public:
  ASIO_DEFINE_HANDLER_PTR(RecvOp);

  RecvOp(int socket, asio::mutable_buffer buffer, Handler& handler, const IoExecutor& ioEx)
      : reactor_op(std::error_code(), &RecvOp::perform, &RecvOp::complete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, ioEx) {}

  // One recvmmsg() asks the kernel for two reads: the bytes, then one more byte. The second
  // read tells a drained socket (EAGAIN) from one whose peer has also sent its FIN (0 bytes):
  // a FIN that arrived together with the last bytes raises no edge of its own, so calling
  // such a socket drained would wait for an edge that never comes (a client that half-closes
  // after its request would never see our close). The second read's byte lands in the
  // buffer's last slot, so a full first read continues there without a copy.
  static status perform(reactor_op* base) {
    auto* o = static_cast<RecvOp*>(base);
    char* data = static_cast<char*>(o->buffer_.data());
    const size_t size = o->buffer_.size();
    if (size < 2) return performSingle(o);
    iovec iov[2] = {{data, size - 1}, {data + size - 1, 1}};
    mmsghdr msgs[2] = {};
    msgs[0].msg_hdr.msg_iov = &iov[0];
    msgs[0].msg_hdr.msg_iovlen = 1;
    msgs[1].msg_hdr.msg_iov = &iov[1];
    msgs[1].msg_hdr.msg_iovlen = 1;
    int got;
    do {
      got = ::recvmmsg(o->socket_, msgs, 2, MSG_DONTWAIT, nullptr);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;  // queued until an edge
      o->ec_ = std::error_code(errno, asio::error::get_system_category());
      o->bytes_transferred_ = 0;
      return done;
    }
    const size_t first = msgs[0].msg_len;
    o->ec_ = std::error_code();
    if (first == 0) {  // end of stream
      o->ec_ = asio::error::eof;
      o->bytes_transferred_ = 0;
      return done_and_exhausted;
    }
    if (got == 1) {
      // The second read failed: EAGAIN (drained; the next bytes or the FIN raise an edge),
      // or, rarely, a reset that arrived between the two reads, which the kernel keeps for
      // the next read; its arrival woke epoll after this wake-up was taken, so an edge does
      // follow. (A reset that is already there when recvmmsg starts is reported by it at
      // once, before any bytes.) A full first read may have left more.
      o->bytes_transferred_ = first;
      return first < size - 1 ? done_and_exhausted : done;
    }
    if (msgs[1].msg_len == 0) {
      // The peer's FIN is already here: the next read must try at once and see it.
      o->bytes_transferred_ = first;
      return done;
    }
    if (first < size - 1) data[first] = data[size - 1];  // the extra byte follows the others
    o->bytes_transferred_ = first + 1;
    return done;  // more may be waiting
  }

  static status performSingle(RecvOp* o) {
    if (!asio::detail::socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(),
                                                      o->buffer_.size(), 0, true, o->ec_,
                                                      o->bytes_transferred_))
      return not_done;
    return o->ec_ == asio::error::eof ? done_and_exhausted : done;
  }

  static void complete(void* owner, asio::detail::operation* base, const std::error_code&,
                       std::size_t) {
    auto* o = static_cast<RecvOp*>(base);
    ptr p = {asio::detail::addressof(o->handler_), o, o};
    asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler is moved out before the operation's memory is freed: it may own it.
    asio::detail::binder2<Handler, std::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                         o->bytes_transferred_);
    p.h = asio::detail::addressof(handler.handler_);
    p.reset();
    if (owner) {
      asio::detail::fenced_block b(asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  int socket_;
  asio::mutable_buffer buffer_;
  Handler handler_;
  asio::detail::handler_work<Handler, IoExecutor> work_;
};

// Per-operation cancellation (asio::cancellation_slot), as Asio's own socket operations
// offer it: awaitable operators (a || b) cancel the losing read this way.
class Cancellation {
 public:
  Cancellation(asio::detail::reactor* r, asio::detail::reactor::per_descriptor_data* d, int fd)
      : reactor_(r), data_(d), fd_(fd) {}
  void operator()(asio::cancellation_type_t type) {
    if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)))
      reactor_->cancel_ops_by_key(fd_, *data_, asio::detail::reactor::read_op, this);
  }

 private:
  asio::detail::reactor* reactor_;
  asio::detail::reactor::per_descriptor_data* data_;
  int fd_;
};

}  // namespace drain_aware_detail
#endif

// The socket's reactor, looked up once per socket (asio::use_service takes a lock and
// walks the context's service list: too slow for every read).
#if defined(ARCHWAY_DRAIN_AWARE_READ)
using ReactorHandle = asio::detail::reactor*;
inline ReactorHandle reactorOf(asio::ip::tcp::socket& socket) {
  return &asio::use_service<asio::detail::reactor>(
      asio::query(socket.get_executor(), asio::execution::context));
}
#else
using ReactorHandle = void*;
inline ReactorHandle reactorOf(asio::ip::tcp::socket&) { return nullptr; }
#endif

// Like socket.async_read_some(buffer, handler) (the handler gets (error_code, size_t));
// `reactor` is reactorOf(socket).
template <typename Handler>
void asyncReadSomeDrainAware(asio::ip::tcp::socket& socket, ReactorHandle reactorHandle,
                             asio::mutable_buffer buffer, Handler&& handler) {
#if defined(ARCHWAY_DRAIN_AWARE_READ)
  namespace d = drain_aware_detail;
  auto& io = d::SocketAccess::impl(socket);
  auto& impl = io.get_implementation();
  using H = std::decay_t<Handler>;
  using IoExecutor = std::decay_t<decltype(io.get_executor())>;
  if (buffer.size() == 0 || impl.socket_ < 0) {  // Asio's own path answers these at once
    socket.async_read_some(buffer, std::forward<Handler>(handler));
    return;
  }
  H h(std::forward<Handler>(handler));
  asio::detail::reactor& reactor = *reactorHandle;
  bool isContinuation = asio_handler_cont_helpers::is_continuation(h);
  auto slot = asio::get_associated_cancellation_slot(h);
  using Op = d::RecvOp<H, IoExecutor>;
  typename Op::ptr p = {asio::detail::addressof(h), Op::ptr::allocate(h), 0};
  p.p = new (p.v) Op(impl.socket_, buffer, h, io.get_executor());
  if (slot.is_connected())
    p.p->cancellation_key_ =
        &slot.template emplace<d::Cancellation>(&reactor, &impl.reactor_data_, impl.socket_);
  if ((impl.state_ & asio::detail::socket_ops::non_blocking) ||
      asio::detail::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true,
                                                          p.p->ec_)) {
    reactor.start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                     isContinuation, true);
  } else {
    reactor.post_immediate_completion(p.p, isContinuation);
  }
  p.v = p.p = 0;
#else
  (void)reactorHandle;
  socket.async_read_some(buffer, std::forward<Handler>(handler));
#endif
}

}  // namespace archway::net
