#include "runtime/server.h"

#include <spdlog/spdlog.h>

#include "runtime/config.h"

namespace archway::runtime {

Server::Server(uint32_t workers, const AccessLogFile* accessLog) {
  for (uint32_t i = 0; i < workers; ++i)
    workers_.push_back(std::make_unique<Worker>(i, workers, accessLog));
}

Server::~Server() { stop(); }

void Server::start() {
  for (auto& w : workers_) w->start();
}

std::shared_ptr<const void> Server::publish(std::shared_ptr<const snapshot::Snapshot> snapshot) {
  std::vector<stats::WorkerStats*> ws;
  for (auto& w : workers_) ws.push_back(&w->stats());
  // The current configuration lives until the workers moved off it: its rules can be reused.
  auto config = RuntimeConfig::compile(snapshot, ws, currentConfig_.get());
  for (const auto& p : config->problems) spdlog::warn("{}", p);
  current_ = std::move(snapshot);
  bool first = !published_;
  published_ = true;
  auto acks = firstAcks_;
  uint32_t n = workerCount();
  for (auto& w : workers_) {
    std::function<void()> done;
    if (first) {
      done = [this, acks, n] {
        if (acks->fetch_add(1) + 1 == n) ready_.store(true, std::memory_order_release);
      };
    }
    w->publish(config, std::move(done));
  }
  std::shared_ptr<const void> previous = std::move(currentConfig_);
  currentConfig_ = std::move(config);
  return previous;
}

std::string Server::metrics() const {
  std::vector<const stats::WorkerStats*> ws;
  for (const auto& w : workers_) ws.push_back(&w->stats());
  return stats::renderPrometheus(ws);
}

void Server::beginDrain() {
  for (auto& w : workers_) w->beginDrain();
}

size_t Server::activeConnections() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->activeConnections();
  return n;
}

void Server::stop() {
  for (auto& w : workers_) w->stop();
}

}  // namespace archway::runtime
