// Coarse per-worker deadlines. Every connection (downstream and upstream) is a Timed
// linked into its worker's TimedList; setting a deadline is a plain store, and one sweep
// per kTimeoutSweepInterval fires the expired ones (onDeadline cancels/closes sockets, the
// owning coroutine then sees the error). No timer object per read, no lock.
#pragma once

#include <chrono>

namespace archway::runtime {

using Clock = std::chrono::steady_clock;

class TimedList;

class Timed {
 public:
  Timed() = default;
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;
  virtual ~Timed();

  void link(TimedList* list);
  void unlink();
  void setDeadline(Clock::duration d) { deadline_ = Clock::now() + d; }
  void clearDeadline() { deadline_ = Clock::time_point::max(); }
  Clock::time_point deadline() const { return deadline_; }

 protected:
  // Called once when the deadline passes; must not destroy `this`.
  virtual void onDeadline() = 0;

 private:
  friend class TimedList;
  Clock::time_point deadline_ = Clock::time_point::max();
  Timed* prev_ = nullptr;
  Timed* next_ = nullptr;
  TimedList* list_ = nullptr;
};

class TimedList {
 public:
  void sweep(Clock::time_point now);
  size_t size() const { return size_; }
  template <typename Fn>
  void forEach(Fn&& fn) {
    for (Timed* t = head_; t;) {
      Timed* next = t->next_;
      fn(t);
      t = next;
    }
  }

 private:
  friend class Timed;
  Timed* head_ = nullptr;
  size_t size_ = 0;
};

inline Timed::~Timed() { unlink(); }

inline void Timed::link(TimedList* list) {
  unlink();
  list_ = list;
  next_ = list->head_;
  if (next_) next_->prev_ = this;
  list->head_ = this;
  prev_ = nullptr;
  ++list->size_;
}

inline void Timed::unlink() {
  if (!list_) return;
  if (prev_) {
    prev_->next_ = next_;
  } else {
    list_->head_ = next_;
  }
  if (next_) next_->prev_ = prev_;
  --list_->size_;
  list_ = nullptr;
  prev_ = next_ = nullptr;
}

inline void TimedList::sweep(Clock::time_point now) {
  for (Timed* t = head_; t;) {
    Timed* next = t->next_;
    if (now >= t->deadline_) {
      t->deadline_ = Clock::time_point::max();
      t->onDeadline();
    }
    t = next;
  }
}

}  // namespace archway::runtime
