// Reaper: frees retired configurations on a thread of its own. Freeing the runtime
// configuration and snapshot of 10,000 routes costs several milliseconds; done on the control
// thread it delays the next change, done by whichever worker drops the last reference it
// holds up that worker's requests. The reaper keeps a reference to each retired object and
// drops it once it is the only holder left, so the last release always happens here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace archway::runtime {

class Reaper {
 public:
  // `poll`: how often objects still held elsewhere are checked again.
  explicit Reaper(std::chrono::milliseconds poll = std::chrono::milliseconds(20));
  ~Reaper();  // frees everything left (waits for no one: the holders are gone by then)
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  void retire(std::shared_ptr<const void> object);
  // Objects retired and not freed yet (tests).
  size_t pending() const;

 private:
  void run();

  const std::chrono::milliseconds poll_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<const void>> incoming_;
  size_t held_ = 0;  // objects the thread holds (incoming_ excluded)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace archway::runtime
