// RuntimeConfig: a snapshot compiled for serving. Built once per snapshot on the control
// thread and shared (read-only) by every worker through a shared_ptr; a request holds the
// config it started with. Per-worker mutable state (round-robin cursors, pool caches) is
// allocated here too, one WorkerState per worker, touched only by its own worker.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "filters/plugin.h"
#include "proxy/l4.h"
#include "router/router.h"
#include "snapshot/snapshot.h"
#include "stats/stats.h"

namespace archway::upstream {
class Pool;
}

namespace archway::runtime {

struct CompiledFilter {
  const snapshot::HttpFilter* filter = nullptr;
  std::unique_ptr<filters::FilterPlugin> plugin;  // ExtensionRef only
  std::string error;                              // ExtensionRef that cannot run -> 500
  int32_t mirrorBackend = -1;                     // RequestMirror: index into backends
};

struct CompiledBackendRef {
  const snapshot::WeightedBackend* ref = nullptr;
  int32_t backend = -1;  // index into RuntimeConfig::backends; -1 = invalid ref -> 500
  std::vector<CompiledFilter> filters;
};

struct CompiledRule {
  const snapshot::HttpRule* rule = nullptr;
  uint32_t index = 0;
  std::vector<CompiledFilter> filters;
  std::vector<CompiledBackendRef> backends;
  uint64_t totalWeight = 0;
};

struct CompiledListener {
  std::shared_ptr<const snapshot::Listener> listener;
  std::string statsKey;  // "gatewayNs/gatewayName/listenerName"
  uint32_t statsIndex = 0;
  router::RouteTable routes;
  std::vector<uint32_t> entryRule;  // route entry index -> CompiledRule index
};

struct CompiledPort {
  std::string address;  // "" = all addresses
  uint16_t port = 0;
  snapshot::Protocol protocol = snapshot::Protocol::kHttp;
  router::ListenerSelector selector;
  std::vector<CompiledListener> listeners;
  bool udp = false;
  // TLS contexts and L4 routes (HTTPS, TLS, TCP, UDP ports); same listener order.
  std::shared_ptr<const proxy::L4Port> l4;
};

// Mutable state of one worker for one config.
struct WorkerState {
  std::vector<std::vector<int64_t>> swrr;  // per rule: smooth weighted round-robin weights
  struct Backend {
    uint64_t next = 0;  // endpoint round-robin cursor
    stats::BackendStats* stats = nullptr;
    std::vector<upstream::Pool*> pools;  // per endpoint, filled lazily
  };
  std::vector<Backend> backends;
  std::vector<stats::ListenerStats*> listeners;  // by CompiledListener::statsIndex
};

class RuntimeConfig {
 public:
  // `workers` gives each worker's stats registry (size = worker count).
  static std::shared_ptr<const RuntimeConfig> compile(
      std::shared_ptr<const snapshot::Snapshot> snapshot,
      const std::vector<stats::WorkerStats*>& workers);

  std::shared_ptr<const snapshot::Snapshot> snapshot;
  std::vector<CompiledPort> ports;
  std::vector<CompiledRule> rules;
  std::vector<std::shared_ptr<const snapshot::Backend>> backends;
  std::vector<std::string> problems;  // compile-time notes (plugin errors), for logs

  const CompiledPort* findPort(const std::string& address, uint16_t port) const;
  WorkerState& worker(uint32_t id) const { return *perWorker_[id]; }

 private:
  mutable std::vector<std::unique_ptr<WorkerState>> perWorker_;
};

// Selects a backendRef by smooth weighted round-robin (nginx's algorithm): over any window
// of totalWeight picks each ref is chosen exactly weight times, interleaved. -1 when every
// weight is zero.
int pickWeighted(const CompiledRule& rule, std::vector<int64_t>& current);

}  // namespace archway::runtime
