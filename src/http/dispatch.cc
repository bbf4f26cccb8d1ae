#include "http/dispatch.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "http/h1/server_connection.h"
#include "http/h2/dispatch.h"
#include "net/stream_transport.h"

namespace archway::http {

const std::vector<std::string>& downstreamAlpn() {
  // Server preference: HTTP/2 when the client offers it (as nginx and Envoy do).
  static const std::vector<std::string> kAlpn = {"h2", "http/1.1"};
  return kAlpn;
}

void serveHttpConnection(runtime::Worker& worker, std::unique_ptr<net::ByteStream> transport,
                         const runtime::PortKey& key) {
  if (transport->secure() && transport->alpn() == "h2") {
    ConnectionInfo info = h2::connectionInfoOf(transport->tcp(), key);
    info.scheme = "https";
    info.sni = transport->serverName();
    asio::co_spawn(worker.io(),
                   h2::serveH2(worker, std::make_unique<net::StreamTransport>(std::move(transport)),
                               key, std::move(info)),
                   asio::detached);
    return;
  }
  auto conn = std::make_unique<h1::ServerConnection>(worker, std::move(transport), key);
  asio::co_spawn(worker.io(), h1::ServerConnection::serve(std::move(conn)), asio::detached);
}

}  // namespace archway::http
