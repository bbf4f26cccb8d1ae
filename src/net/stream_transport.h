// net::Transport over a net::ByteStream: lets the HTTP/2 codec (written against Transport)
// serve connections the TLS front end handshook (ALPN "h2"), and lets the upstream HTTP/2
// client speak TLS to backends (BackendTLSPolicy).
#pragma once

#include <memory>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "net/byte_stream.h"
#include "net/transport.h"

namespace archway::net {

class StreamTransport final : public Transport {
 public:
  explicit StreamTransport(std::unique_ptr<ByteStream> stream) : stream_(std::move(stream)) {}

  asio::awaitable<std::pair<std::error_code, size_t>> readSome(asio::mutable_buffer buf) override {
    auto [ec, n] =
        co_await stream_->async_read_some(buf, asio::experimental::as_tuple(asio::use_awaitable));
    co_return std::make_pair(ec, n);
  }
  asio::awaitable<std::error_code> writeAll(std::span<const asio::const_buffer> bufs) override {
    size_t sent = stream_->tryWriteNow(bufs);
    if (sent == asio::buffer_size(bufs)) co_return std::error_code();
    auto [ec, n] = co_await asio::async_write(*stream_, buffersAfter(bufs, sent),
                                              asio::experimental::as_tuple(asio::use_awaitable));
    (void)n;
    co_return ec;
  }
  void cancel() override {
    std::error_code ec;
    stream_->cancel(ec);
  }
  void shutdownSend() override {
    std::error_code ec;
    stream_->shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }
  void close() override {
    std::error_code ec;
    stream_->close(ec);
  }
  asio::ip::tcp::socket& lowestLayer() override { return stream_->tcp(); }
  ByteStream& stream() { return *stream_; }

 private:
  std::unique_ptr<ByteStream> stream_;
};

}  // namespace archway::net
