// Entry points that pick the HTTP codec for a new downstream connection.
//
// Plain HTTP listeners: serveDetected() peeks at the first bytes; the HTTP/2 connection
// preface ("PRI * HTTP/2.0...", h2c with prior knowledge) selects the HTTP/2 codec,
// anything else the HTTP/1.1 codec (which gets the socket untouched).
//
// TLS listeners (seam for the TLS front end): once the handshake is done, call serveH2()
// when ALPN selected "h2", with the handshaken stream wrapped in a net::Transport and
// info.scheme = "https" / info.sni set.
#pragma once

#include <memory>
#include <string>

#include <asio/ip/tcp.hpp>

#include "http/stream.h"
#include "net/transport.h"
#include "runtime/worker.h"

namespace archway::http::h2 {

// The client connection preface (RFC 9113 3.4).
inline constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Fills the address facts of a connection accepted on `key`.
ConnectionInfo connectionInfoOf(const asio::ip::tcp::socket& socket, const runtime::PortKey& key);

Awaitable<void> serveDetected(runtime::Worker& worker, asio::ip::tcp::socket socket,
                              runtime::PortKey key);

// Serves an HTTP/2 connection on an established transport until it closes.
Awaitable<void> serveH2(runtime::Worker& worker, std::unique_ptr<net::Transport> transport,
                        runtime::PortKey key, ConnectionInfo info, std::string initial = {});

}  // namespace archway::http::h2
