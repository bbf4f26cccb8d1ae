// Reaper: a retired object is freed on the reaper's thread, and only once nobody else holds it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "runtime/reaper.h"

namespace archway::runtime {
namespace {

struct Freed {
  std::atomic<bool> done{false};
  std::atomic<bool> onCaller{false};
  std::thread::id caller = std::this_thread::get_id();
};

std::shared_ptr<const void> tracked(Freed* f) {
  return std::shared_ptr<const int>(new int(1), [f](const int* p) {
    f->onCaller = std::this_thread::get_id() == f->caller;
    delete p;
    f->done = true;
  });
}

// Waits (bounded) until `f` is freed; the bound is a safety net, not a timing assertion.
bool waitFreed(const Freed& f) {
  for (int i = 0; i < 5000 && !f.done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return f.done;
}

TEST(Reaper, FreesOnItsOwnThreadOnceTheLastOtherHolderIsGone) {
  Reaper reaper(std::chrono::milliseconds(1));
  Freed f;
  std::shared_ptr<const void> held = tracked(&f);
  std::shared_ptr<const void> stillUsed = held;  // a worker still on the old configuration
  reaper.retire(std::move(held));
  // Give the reaper several rounds: it must keep the object while another holder exists.
  for (int i = 0; i < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_FALSE(f.done);
  EXPECT_EQ(reaper.pending(), 1u);
  stillUsed.reset();  // not the last reference: the reaper's is
  EXPECT_FALSE(f.done);
  ASSERT_TRUE(waitFreed(f));
  EXPECT_FALSE(f.onCaller);
  for (int i = 0; i < 5000 && reaper.pending() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(reaper.pending(), 0u);
}

TEST(Reaper, UnsharedObjectIsFreedAndNullIsIgnored) {
  Freed f;
  {
    Reaper reaper;
    reaper.retire(nullptr);
    reaper.retire(tracked(&f));
    ASSERT_TRUE(waitFreed(f));
    EXPECT_FALSE(f.onCaller);
  }
}

TEST(Reaper, DestructionReleasesWhatIsStillHeld) {
  Freed f;
  std::shared_ptr<const void> other;
  {
    Reaper reaper(std::chrono::milliseconds(1000));
    auto o = tracked(&f);
    other = o;
    reaper.retire(std::move(o));
  }
  EXPECT_FALSE(f.done);  // the reaper dropped its reference; ours keeps it alive
  other.reset();
  EXPECT_TRUE(f.done);
}

}  // namespace
}  // namespace archway::runtime
