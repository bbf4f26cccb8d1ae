// Where a downstream HTTP connection starts, whatever carries it: the plain HTTP acceptor
// and the TLS front end (after the handshake) both call serveHttpConnection, which picks
// the codec — HTTP/2 when ALPN negotiated "h2", HTTP/1.1 otherwise. The HTTP/2 codec
// plugs in here and adds "h2" to downstreamAlpn().
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "net/byte_stream.h"
#include "runtime/worker.h"

namespace archway::http {

// ALPN protocols HTTPS listeners offer, in server preference order.
const std::vector<std::string>& downstreamAlpn();

// Takes ownership of an accepted (and, for TLS, handshaken) connection and serves it on
// the worker's loop.
void serveHttpConnection(runtime::Worker& worker, std::unique_ptr<net::ByteStream> transport,
                         const runtime::PortKey& key);

}  // namespace archway::http
