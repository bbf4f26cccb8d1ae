// JSON-lines access log (off unless --access-log). Each worker buffers its own lines and
// appends them with one write(2) per batch (O_APPEND keeps lines whole across workers).
#pragma once

#include <string>

namespace archway::runtime {

class AccessLogFile {
 public:
  // Opens (creates/appends) the file; false with a message on failure.
  bool open(const std::string& path, std::string* error);
  ~AccessLogFile();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(const AccessLogFile* file) : file_(file) {}
  bool enabled() const { return file_ && file_->fd() >= 0; }
  std::string& line() { return buf_; }  // append one JSON object + '\n'
  void maybeFlush() {
    if (buf_.size() >= 16 * 1024) flush();
  }
  void flush();

 private:
  const AccessLogFile* file_;
  std::string buf_;
};

// Appends s as a JSON string literal (quotes included).
void appendJsonString(std::string& out, std::string_view s);

}  // namespace archway::runtime
