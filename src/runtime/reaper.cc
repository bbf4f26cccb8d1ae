#include "runtime/reaper.h"

namespace archway::runtime {

Reaper::Reaper(std::chrono::milliseconds poll) : poll_(poll), thread_([this] { run(); }) {}

Reaper::~Reaper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Reaper::retire(std::shared_ptr<const void> object) {
  if (!object) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming_.push_back(std::move(object));
  }
  cv_.notify_one();
}

size_t Reaper::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return incoming_.size() + held_;
}

void Reaper::run() {
  std::vector<std::shared_ptr<const void>> held;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (held.empty())
      cv_.wait(lock, [&] { return stop_ || !incoming_.empty(); });
    else
      cv_.wait_for(lock, poll_, [&] { return stop_ || !incoming_.empty(); });
    for (auto& o : incoming_) held.push_back(std::move(o));
    incoming_.clear();
    const bool stopping = stop_;
    lock.unlock();
    // use_count() == 1: this thread holds the only reference, nobody can take another one,
    // so the object is freed here. Otherwise a worker or a request still uses it.
    std::vector<std::shared_ptr<const void>> keep;
    for (auto& o : held)
      if (!stopping && o.use_count() > 1) keep.push_back(std::move(o));
    held.clear();  // frees the others, outside the lock
    held.swap(keep);
    lock.lock();
    held_ = held.size();
    if (stopping) return;
  }
}

}  // namespace archway::runtime
