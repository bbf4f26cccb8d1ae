#include "runtime/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace archway::runtime {

bool AccessLogFile::open(const std::string& path, std::string* error) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    *error = fmt::format("cannot open access log {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

AccessLogFile::~AccessLogFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AccessLogBuffer::flush() {
  if (!enabled() || buf_.empty()) return;
  const char* p = buf_.data();
  size_t left = buf_.size();
  while (left > 0) {
    ssize_t n = ::write(file_->fd(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // disk full etc.: drop the batch rather than stall the worker
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  buf_.clear();
}

void appendJsonString(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out.append(fmt::format("\\u{:04x}", c));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace archway::runtime
