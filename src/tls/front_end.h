// The front end of HTTPS and TLS ports. For each accepted connection it reads the
// ClientHello without answering it (bounded by kMaxClientHelloBytes and
// net::kTlsClientHelloTimeout; anything that is not a ClientHello is closed), picks the
// listener from the server name (exact > wildcard > catch-all, as the router does for
// Host), then:
//   - TLS Passthrough listener: picks the TLSRoute by SNI and relays the untouched bytes
//     (the peeked ClientHello first) to the backend;
//   - TLS Terminate listener: completes the handshake with the listener's certificate and
//     relays the plaintext to the TLSRoute's backend;
//   - HTTPS listener: completes the handshake (ALPN) and hands the stream to
//     http::serveHttpConnection.
#pragma once

#include <asio/ip/tcp.hpp>

#include "runtime/worker.h"

namespace archway::tls {

void serveTlsPort(runtime::Worker& worker, asio::ip::tcp::socket socket,
                  const runtime::PortKey& key);

}  // namespace archway::tls
