// The data plane as the control thread sees it: the workers, snapshot publication
// (RCU-style: compile once, post the shared pointer to every worker; a request keeps the
// config it started with and the old one is freed with its last reference), readiness,
// metrics and graceful drain.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "runtime/access_log.h"
#include "runtime/worker.h"
#include "snapshot/snapshot.h"

namespace archway::runtime {

class Server {
 public:
  Server(uint32_t workers, const AccessLogFile* accessLog);
  ~Server();

  void start();
  // Compiles and publishes a snapshot to every worker. Returns the configuration published
  // before it, which the workers are about to drop: a caller that keeps it until they have
  // (a few ms) frees it on its own thread instead of a worker's, where freeing a large
  // configuration (tens of ms at 10k routes) would hold up requests. May be ignored.
  std::shared_ptr<const void> publish(std::shared_ptr<const snapshot::Snapshot> snapshot);
  // True once every worker installed the first published snapshot.
  bool ready() const { return ready_.load(std::memory_order_acquire); }
  std::shared_ptr<const snapshot::Snapshot> current() const { return current_; }
  std::string metrics() const;

  void beginDrain();
  size_t activeConnections() const;
  void stop();
  uint32_t workerCount() const { return static_cast<uint32_t>(workers_.size()); }

 private:
  std::vector<std::unique_ptr<Worker>> workers_;
  std::shared_ptr<const snapshot::Snapshot> current_;
  std::shared_ptr<const RuntimeConfig> currentConfig_;
  std::shared_ptr<std::atomic<uint32_t>> firstAcks_ = std::make_shared<std::atomic<uint32_t>>(0);
  std::atomic<bool> ready_{false};
  bool published_ = false;
};

}  // namespace archway::runtime
