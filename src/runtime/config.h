// RuntimeConfig: a snapshot compiled for serving. Built once per snapshot on the control
// thread and shared (read-only) by every worker through a shared_ptr; a request holds the
// config it started with. Per-worker mutable state (round-robin cursors, pool caches) is
// allocated here too, one WorkerState per worker, touched only by its own worker.
#pragma once

#include <algorithm>
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

// Shared by successive configurations while its HttpRule (shared by their snapshots) and
// the backends it indexes stay the same: a change compiles only the rules it changed.
struct CompiledRule {
  const snapshot::HttpRule* rule = nullptr;
  std::vector<CompiledFilter> filters;
  std::vector<CompiledBackendRef> backends;
  uint64_t totalWeight = 0;
  std::vector<std::string> problems;  // this rule's part of RuntimeConfig::problems
};

struct CompiledListener {
  std::shared_ptr<const snapshot::Listener> listener;
  std::string statsKey;  // "gatewayNs/gatewayName/listenerName"
  uint32_t statsIndex = 0;
  router::RouteTable routes;
  std::vector<uint32_t> entryRule;  // route entry index -> index in RuntimeConfig::rules
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
  // Smooth weighted round-robin weights of every rule's backendRefs, rule i's from
  // RuntimeConfig::swrrOffset[i] (one allocation, not one per rule).
  std::vector<int64_t> swrr;
  int64_t* swrrOf(uint32_t rule, const class RuntimeConfig& cfg);
  struct Backend {
    uint64_t next = 0;  // endpoint round-robin cursor
    stats::BackendStats* stats = nullptr;
    std::vector<upstream::Pool*> pools;  // per endpoint, filled lazily
  };
  std::vector<Backend> backends;
  std::vector<stats::ListenerStats*> listeners;  // by CompiledListener::statsIndex
};

// Index in RuntimeConfig::rules of each HttpRule: open addressing over one array (a compile
// fills it with one key per rule, 10,000 at 10,000 routes; a node-based map allocated and
// freed a node per rule on every change).
class RuleIndex {
 public:
  static constexpr uint32_t kNotFound = UINT32_MAX;
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > slots_.size()) rehash(cap);
  }
  // {index of r, false} when present; else inserts {r, value}: {value, true}.
  std::pair<uint32_t, bool> tryEmplace(const snapshot::HttpRule* r, uint32_t value) {
    if (2 * (size_ + 1) > slots_.size()) rehash(std::max<size_t>(16, 2 * slots_.size()));
    for (size_t i = hash(r) & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == r) return {slots_[i].value, false};
      if (!slots_[i].key) {
        slots_[i] = {r, value};
        ++size_;
        return {value, true};
      }
    }
  }
  uint32_t find(const snapshot::HttpRule* r) const {
    if (slots_.empty()) return kNotFound;
    for (size_t i = hash(r) & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == r) return slots_[i].value;
      if (!slots_[i].key) return kNotFound;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    const snapshot::HttpRule* key = nullptr;
    uint32_t value = 0;
  };
  static size_t hash(const snapshot::HttpRule* r) {
    auto x = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(r));
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return static_cast<size_t>(x);
  }
  void rehash(size_t cap) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(cap, Slot{});
    size_ = 0;
    for (const Slot& s : old)
      if (s.key) tryEmplace(s.key, s.value);
  }
  std::vector<Slot> slots_;  // a power of two, at most half full
  size_t size_ = 0;
};

class RuntimeConfig {
 public:
  // `workers` gives each worker's stats registry (size = worker count).
  // `previous` (the configuration being replaced, kept alive during the call): its compiled
  // rules are reused for the rules the new snapshot shares with it.
  static std::shared_ptr<const RuntimeConfig> compile(
      std::shared_ptr<const snapshot::Snapshot> snapshot,
      const std::vector<stats::WorkerStats*>& workers, const RuntimeConfig* previous = nullptr);

  std::shared_ptr<const snapshot::Snapshot> snapshot;
  std::vector<CompiledPort> ports;
  std::vector<std::shared_ptr<const CompiledRule>> rules;
  std::vector<uint32_t> swrrOffset;  // per rule: its first weight in WorkerState::swrr
  std::vector<std::shared_ptr<const snapshot::Backend>> backends;
  std::vector<std::string> problems;  // compile-time notes (plugin errors), for logs
  // Index in `rules` of each HttpRule (compile() fills it; the next compile reuses by it).
  RuleIndex ruleIndex;

  const CompiledPort* findPort(const std::string& address, uint16_t port) const;
  WorkerState& worker(uint32_t id) const { return *perWorker_[id]; }
  // Rules compiled anew (not reused from the previous configuration) by compile().
  size_t rulesCompiled() const { return rulesCompiled_; }

 private:
  mutable std::vector<std::unique_ptr<WorkerState>> perWorker_;
  size_t rulesCompiled_ = 0;
};

inline int64_t* WorkerState::swrrOf(uint32_t rule, const RuntimeConfig& cfg) {
  return swrr.data() + cfg.swrrOffset[rule];
}

// Selects a backendRef by smooth weighted round-robin (nginx's algorithm): over any window
// of totalWeight picks each ref is chosen exactly weight times, interleaved. -1 when every
// weight is zero.
int pickWeighted(const CompiledRule& rule, int64_t* current);  // rule.backends.size() weights
inline int pickWeighted(const CompiledRule& rule, std::vector<int64_t>& current) {
  return pickWeighted(rule, current.data());
}

}  // namespace archway::runtime
