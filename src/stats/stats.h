// Counters and histograms. Each worker owns its own set (no sharing on the request path:
// a relaxed atomic add on a cache line only that worker writes); the admin thread sums
// them when /metrics is scraped. Stats objects are created when a snapshot is compiled
// (the only place the registry mutex is taken) and live as long as the process.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace archway::stats {

using Counter = std::atomic<uint64_t>;

inline void inc(Counter& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
inline void dec(Counter& c, uint64_t n = 1) { c.fetch_sub(n, std::memory_order_relaxed); }
inline uint64_t get(const Counter& c) { return c.load(std::memory_order_relaxed); }

// Latency histogram with fixed bucket bounds in seconds (Prometheus "le").
struct Histogram {
  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  std::array<Counter, kBounds.size() + 1> buckets{};  // last = +Inf
  Counter sumMicros{0};
  Counter count{0};
  void observe(std::chrono::microseconds d);
};

// Index of a status class: 1xx..5xx -> 0..4, anything else -> 5.
inline size_t statusClass(int status) {
  return status >= 100 && status < 600 ? static_cast<size_t>(status / 100 - 1) : 5;
}

struct ListenerStats {
  Counter connections{0};  // accepted (UDP: sessions created)
  Counter activeConnections{0};
  // L4 (TCP, TLS passthrough/terminate, UDP) relayed payload bytes.
  Counter bytesReceived{0};      // from clients
  Counter bytesSent{0};          // to clients
  Counter handshakeFailures{0};  // ClientHello garbage/timeout, TLS handshake errors
  Counter noRoute{0};            // L4 connections/datagrams with no route or backend
  Counter requests{0};
  std::array<Counter, 6> responses{};
  Histogram latency;
  // RequestMirror copies not sent because the request body streams (not buffered whole).
  Counter mirrorsSkippedStreamedBody{0};
};

struct BackendStats {
  Counter requests{0};  // upstream attempts
  std::array<Counter, 6> responses{};
  Counter connectionsOpened{0};
  Counter connectFailures{0};
  Counter activeConnections{0};
  Counter retries{0};
  Counter timeouts{0};
  Histogram latency;
};

// Process-level figures of one worker.
struct WorkerGlobal {
  Counter downstreamConnections{0};
  Counter activeDownstreamConnections{0};
  Counter rejectedConnections{0};  // over kMaxDownstreamConnections
  Counter badRequests{0};          // malformed requests answered 400/408/413/431
  Counter noRoute{0};              // 404 from the router
};

class WorkerStats {
 public:
  // Control thread (snapshot compile): find or create by key.
  ListenerStats* listener(const std::string& key);
  BackendStats* backend(const std::string& key);
  WorkerGlobal& global() { return global_; }

  // Scrape side.
  template <typename Fn>
  void forEachListener(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : listeners_) fn(k, *v);
  }
  template <typename Fn>
  void forEachBackend(Fn&& fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [k, v] : backends_) fn(k, *v);
  }
  const WorkerGlobal& global() const { return global_; }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ListenerStats>> listeners_;
  std::map<std::string, std::unique_ptr<BackendStats>> backends_;
  WorkerGlobal global_;
};

// Prometheus text exposition (version 0.0.4) of all workers, summed.
// Listener keys are "gatewayNs/gatewayName/listenerName"; backend keys are Backend::id.
std::string renderPrometheus(const std::vector<const WorkerStats*>& workers);

}  // namespace archway::stats
