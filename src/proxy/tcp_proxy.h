// TCP relay (TCPRoute, TLSRoute passthrough and terminate): connects to a weighted backend
// of the route (connect timeout, a few endpoints tried), then copies bytes both ways.
// Half-close is kept: when one side ends its direction (FIN, or TLS end of stream) the
// relay ends the same direction toward the other side and keeps the opposite one open.
// A reset or the idle timeout closes both. Bytes are counted per listener.
// A terminated TLS stream (TLSRoute Terminate) to a backend with a BackendTLSPolicy is
// re-encrypted: the relay opens TLS to the backend with the policy's SNI, trust and
// hostname/subjectAltName checks (and the Gateway's client certificate). Passthrough and
// plain TCP never are: their bytes go to the backend untouched.
#pragma once

#include <memory>

#include <asio/awaitable.hpp>

#include "net/byte_stream.h"
#include "proxy/l4.h"
#include "runtime/config.h"
#include "runtime/timed.h"
#include "runtime/worker.h"

namespace archway::proxy {

class TcpRelay : public runtime::Timed, public runtime::DownstreamConnection {
 public:
  TcpRelay(runtime::Worker& worker, std::unique_ptr<net::ByteStream> downstream,
           runtime::PortKey key, stats::ListenerStats* stats);
  ~TcpRelay() override;

  // Owns the relay for its whole life. `config` keeps `route` alive.
  static asio::awaitable<void> run(std::unique_ptr<TcpRelay> self,
                                   std::shared_ptr<const runtime::RuntimeConfig> config,
                                   const L4RouteSet* route);

  // L4 streams have no request boundary to stop at: they end with their peers or the
  // idle timeout; a graceful stop closes them at its deadline.
  void drain() override {}
  const runtime::PortKey& portKey() const override { return key_; }

 protected:
  void onDeadline() override;

 private:
  asio::awaitable<bool> connect(const L4RouteSet& route);
  // TLS to the backend on the freshly connected up_ (BackendTLSPolicy); false on failure.
  asio::awaitable<bool> startUpstreamTls(const snapshot::Backend& backend,
                                         const snapshot::Endpoint& endpoint);
  // Copies one direction until its end (then half-closes `to`) or a failure (then aborts).
  asio::awaitable<void> pump(net::ByteStream& from, net::ByteStream& to, stats::Counter* bytes);
  // The rest of a bulk plain-TCP direction, moved by splice(2) through a pipe.
  asio::awaitable<void> splicePump(net::ByteStream& from, net::ByteStream& to,
                                   stats::Counter* bytes);
  // End of a direction: FIN toward `to`.
  static void endDirection(net::ByteStream& to);
  void abort();

  runtime::Worker& worker_;
  std::unique_ptr<net::ByteStream> down_;
  std::unique_ptr<net::ByteStream> up_;
  runtime::PortKey key_;
  stats::ListenerStats* stats_;
  bool connecting_ = false;
  bool aborted_ = false;
};

// Starts a relay for an accepted connection on a TCP port (the first route, the oldest).
void serveTcpPort(runtime::Worker& worker, asio::ip::tcp::socket socket,
                  const runtime::PortKey& key);

}  // namespace archway::proxy
