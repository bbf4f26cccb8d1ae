#include "http/dispatch.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include "http/h1/server_connection.h"

namespace archway::http {

const std::vector<std::string>& downstreamAlpn() {
  static const std::vector<std::string> kAlpn = {"http/1.1"};
  return kAlpn;
}

void serveHttpConnection(runtime::Worker& worker, std::unique_ptr<net::ByteStream> transport,
                         const runtime::PortKey& key) {
  auto conn = std::make_unique<h1::ServerConnection>(worker, std::move(transport), key);
  asio::co_spawn(worker.io(), h1::ServerConnection::serve(std::move(conn)), asio::detached);
}

}  // namespace archway::http
