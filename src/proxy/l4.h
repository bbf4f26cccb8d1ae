// What the TLS front end and the L4 proxies need from a snapshot Port, compiled once per
// snapshot beside runtime::CompiledPort (same listener order): each terminating
// listener's server TLS context and each listener's L4 routes with their weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ssl/context.hpp>

#include "snapshot/snapshot.h"

namespace archway::proxy {

struct L4Backend {
  std::shared_ptr<const snapshot::Backend> backend;  // null: invalid ref (never picked)
  uint32_t weight = 1;
};

struct L4RouteSet {
  std::string name;                    // "namespace/name" of the route
  std::vector<std::string> hostnames;  // TLSRoute effective SNI names; empty = any
  std::vector<L4Backend> backends;
  uint64_t totalWeight = 0;
};

struct L4Listener {
  std::shared_ptr<asio::ssl::context> serverTls;  // HTTPS / TLS Terminate; null otherwise
  std::string tlsError;                           // why serverTls is null, if it should exist
  std::vector<L4RouteSet> routes;                 // precedence order
};

class L4Port {
 public:
  // `alpn`: protocols HTTPS listeners offer. Problems (unusable certificates) are appended.
  static std::shared_ptr<const L4Port> build(const snapshot::Port& port,
                                             const std::vector<std::string>& alpn,
                                             std::vector<std::string>* problems);

  const std::vector<L4Listener>& listeners() const { return listeners_; }
  // The route of listener `index` for a TLS server name: exact hostname, then the longest
  // matching wildcard, then a route without hostnames. TCP/UDP (name ignored): the first
  // route, the oldest. Null when none.
  const L4RouteSet* route(size_t index, std::string_view serverName, bool bySni) const;

 private:
  std::vector<L4Listener> listeners_;
};

// Weighted random choice of a backend with endpoints; null when none can take traffic.
const snapshot::Backend* pickBackend(const L4RouteSet& route, uint64_t random);

}  // namespace archway::proxy
