// A connected byte stream as codecs see it: plain TCP here, TLS from the TLS front end.
// The HTTP/2 codec is written against this interface so the same code serves h2c (prior
// knowledge on HTTP listeners) and h2 over TLS (ALPN "h2"): the TLS front end wraps its
// handshaken stream in a Transport and calls http::h2::serveH2 (see src/http/h2/dispatch.h).
#pragma once

#include <span>
#include <string>
#include <system_error>
#include <utility>

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "net/write_now.h"

namespace archway::net {

class Transport {
 public:
  virtual ~Transport() = default;
  // Reads at least one byte; an error (eof included) otherwise.
  virtual asio::awaitable<std::pair<std::error_code, size_t>> readSome(
      asio::mutable_buffer buf) = 0;
  virtual asio::awaitable<std::error_code> writeAll(std::span<const asio::const_buffer> bufs) = 0;
  // Cancels pending reads and writes (deadlines).
  virtual void cancel() = 0;
  // Ends our sending direction (TLS: close_notify; TCP: FIN).
  virtual void shutdownSend() = 0;
  virtual void close() = 0;
  virtual asio::ip::tcp::socket& lowestLayer() = 0;
};

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  asio::awaitable<std::pair<std::error_code, size_t>> readSome(asio::mutable_buffer buf) override {
    auto [ec, n] =
        co_await socket_.async_read_some(buf, asio::experimental::as_tuple(asio::use_awaitable));
    co_return std::make_pair(ec, n);
  }
  asio::awaitable<std::error_code> writeAll(std::span<const asio::const_buffer> bufs) override {
    size_t sent = writeNow(socket_.native_handle(), bufs);
    if (sent == asio::buffer_size(bufs)) co_return std::error_code();
    auto [ec, n] = co_await asio::async_write(socket_, buffersAfter(bufs, sent),
                                              asio::experimental::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }
  void cancel() override {
    std::error_code ec;
    socket_.cancel(ec);
  }
  void shutdownSend() override {
    std::error_code ec;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }
  void close() override {
    std::error_code ec;
    socket_.close(ec);
  }
  asio::ip::tcp::socket& lowestLayer() override { return socket_; }

 private:
  asio::ip::tcp::socket socket_;
};

}  // namespace archway::net
