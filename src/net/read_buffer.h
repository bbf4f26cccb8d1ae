#pragma once

#include <cstddef>
#include <memory>

namespace archway::net {

// A fixed-size socket read buffer whose bytes start uninitialised. std::vector<char>(n)
// zeroes all n bytes (16-32 KB per connection) although a typical request or response
// touches a few hundred; only the range a read filled is ever looked at.
class ReadBuffer {
 public:
  explicit ReadBuffer(size_t size)
      : data_(std::make_unique_for_overwrite<char[]>(size)), size_(size) {}

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

}  // namespace archway::net
