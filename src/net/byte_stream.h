// A concrete downstream or upstream byte stream: a TCP socket, optionally wrapped in TLS, which
// may first replay bytes already read from the socket (the ClientHello a TLS port peeked
// at to choose a listener). It models Asio's AsyncReadStream/AsyncWriteStream, so codecs
// use it exactly like a socket (async_read_some, asio::async_write), and it forwards the
// socket calls codecs make (cancel, close, shutdown, endpoints, options) to the TCP socket.
//
// Not movable once TLS is attached (the TLS stream refers to the inner socket): hold it
// by std::unique_ptr.
#pragma once

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/ssl/stream.hpp>

#include "net/drain_aware_read.h"
#include "net/write_now.h"

namespace archway::net {

// A TCP socket that first returns `prefix` bytes already taken off the wire.
class PrefixedSocket {
 public:
  using executor_type = asio::ip::tcp::socket::executor_type;
  using lowest_layer_type = asio::ip::tcp::socket::lowest_layer_type;

  PrefixedSocket(asio::ip::tcp::socket socket, std::string prefix)
      : socket_(std::move(socket)), reactor_(reactorOf(socket_)), prefix_(std::move(prefix)) {}

  executor_type get_executor() { return socket_.get_executor(); }
  lowest_layer_type& lowest_layer() { return socket_.lowest_layer(); }
  const lowest_layer_type& lowest_layer() const { return socket_.lowest_layer(); }
  asio::ip::tcp::socket& socket() { return socket_; }
  // Bytes taken off the wire but not yet returned by async_read_some.
  bool hasPrefix() const { return prefixPos_ < prefix_.size(); }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (prefixPos_ < prefix_.size()) {
            size_t n = asio::buffer_copy(
                b, asio::buffer(prefix_.data() + prefixPos_, prefix_.size() - prefixPos_));
            prefixPos_ += n;
            if (prefixPos_ == prefix_.size()) {
              prefix_.clear();
              prefix_.shrink_to_fit();
              prefixPos_ = 0;
            }
            asio::post(socket_.get_executor(),
                       [h = std::move(handler), n]() mutable { h(std::error_code(), n); });
            return;
          }
          if constexpr (std::is_convertible_v<const MutableBuffers&, asio::mutable_buffer>) {
            asyncReadSomeDrainAware(socket_, reactor_, asio::mutable_buffer(b), std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  asio::ip::tcp::socket socket_;
  ReactorHandle reactor_;
  std::string prefix_;
  size_t prefixPos_ = 0;
};

class ByteStream {
 public:
  using executor_type = asio::ip::tcp::socket::executor_type;
  using lowest_layer_type = asio::ip::tcp::socket::lowest_layer_type;
  using TlsStream = asio::ssl::stream<PrefixedSocket&>;

  explicit ByteStream(asio::ip::tcp::socket socket, std::string prefix = {})
      : raw_(std::move(socket), std::move(prefix)) {}
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  // Wraps the socket in a TLS server or client stream (handshake not done yet).
  TlsStream& attachTls(asio::ssl::context& ctx) {
    tls_ = std::make_unique<TlsStream>(raw_, ctx);
    return *tls_;
  }
  TlsStream* tls() { return tls_.get(); }
  bool secure() const { return tls_ != nullptr; }
  // Negotiated ALPN protocol ("" when none) and the client's SNI (server side).
  std::string alpn() const;
  std::string serverName() const;

  asio::ip::tcp::socket& tcp() { return raw_.socket(); }
  // True when reads come straight from the socket: no TLS layer and no replayed prefix, so
  // the kernel may move the bytes itself (splice).
  bool rawSocketReads() const { return !tls_ && !raw_.hasPrefix(); }
  executor_type get_executor() { return raw_.get_executor(); }
  lowest_layer_type& lowest_layer() { return raw_.lowest_layer(); }

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            raw_.async_read_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_) {
            tls_->async_write_some(b, std::move(handler));
          } else {
            raw_.async_write_some(b, std::move(handler));
          }
        },
        token, buffers);
  }

  // Writes what the socket takes at once, without waiting, and returns the byte count (0
  // when it takes nothing or fails: the asynchronous write that follows reports the
  // error). A response head and a small body usually fit the send buffer, and then the
  // write needs no reactor operation, no handler and no trip through the scheduler.
  // TLS streams write through the TLS engine only: 0.
  size_t tryWriteNow(std::span<const asio::const_buffer> buffers) {
    return tls_ ? 0 : writeNow(native_handle(), buffers);
  }

  // Socket calls, forwarded to the TCP socket (TLS has no half-close of its own here:
  // shutdown(send) ends the TCP direction, which peers treat as the end of the stream).
  void cancel(std::error_code& ec) { tcp().cancel(ec); }
  void close(std::error_code& ec) { tcp().close(ec); }
  void shutdown(asio::socket_base::shutdown_type what, std::error_code& ec) {
    tcp().shutdown(what, ec);
  }
  bool is_open() const { return const_cast<ByteStream*>(this)->tcp().is_open(); }
  template <typename Option>
  void set_option(const Option& o, std::error_code& ec) {
    tcp().set_option(o, ec);
  }
  asio::ip::tcp::endpoint remote_endpoint(std::error_code& ec) { return tcp().remote_endpoint(ec); }
  asio::ip::tcp::endpoint local_endpoint(std::error_code& ec) { return tcp().local_endpoint(ec); }
  int native_handle() { return tcp().native_handle(); }

 private:
  PrefixedSocket raw_;
  std::unique_ptr<TlsStream> tls_;
};

inline std::string ByteStream::alpn() const {
  if (!tls_) return {};
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(const_cast<TlsStream&>(*tls_).native_handle(), &p, &n);
  return p ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

inline std::string ByteStream::serverName() const {
  if (!tls_) return {};
  const char* n =
      SSL_get_servername(const_cast<TlsStream&>(*tls_).native_handle(), TLSEXT_NAMETYPE_host_name);
  std::string out = n ? std::string(n) : std::string();
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

}  // namespace archway::net
