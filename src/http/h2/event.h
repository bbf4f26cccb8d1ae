// A single-waiter wake-up flag for coroutines on one io_context (no locks: everything runs
// on the worker thread). notify() before wait() is not lost.
#pragma once

#include <chrono>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "http/stream.h"

namespace archway::http::h2 {

class Event {
 public:
  explicit Event(asio::io_context& io) : timer_(io) {}
  // Waits for notify() (no default arguments and no co_await inside conditions: GCC 12
  // miscompiles both in coroutines).
  Awaitable<void> wait() {
    if (!set_) {
      timer_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await timer_.async_wait(kNoThrow);
    }
    set_ = false;
  }
  // Waits for notify(); false when `timeout` passed first.
  Awaitable<bool> waitFor(std::chrono::steady_clock::duration timeout) {
    if (set_) {
      set_ = false;
      co_return true;
    }
    timer_.expires_after(timeout);
    co_await timer_.async_wait(kNoThrow);
    bool woke = set_;
    set_ = false;
    co_return woke;
  }
  void notify() {
    set_ = true;
    timer_.cancel();
  }

 private:
  asio::steady_timer timer_;
  bool set_ = false;
};

}  // namespace archway::http::h2
