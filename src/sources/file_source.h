// The file source: manifests from files and directories, followed with inotify.
//
// Objects behave as in a cluster: metadata.generation starts at 1 (or what the file says)
// and grows when an object's spec changes; metadata.creationTimestamp is assigned at first
// sight and kept; an object whose file (or document) disappears is gone. Rename-replace,
// create, write and delete of manifests count as changes (other files in a watched directory,
// such as an access log, do not); bursts are coalesced (kFileWatchDebounce, at most
// kFileWatchMaxDelay).
// A file that stops parsing keeps its last good objects serving and the error is logged
// with file:line. An object whose new version fails validation keeps its last valid version
// serving, as an API server would have rejected the update: the errors are logged and the
// kept object carries api::Object::rejectedChange, which the translator reports in status.
// An object never valid is stored as read (the translator reports it, nothing is served);
// removing an object from its file removes it, whatever its state.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include "api/loader.h"
#include "api/object.h"

namespace archway::sources {

class FileSource {
 public:
  // `onChange` runs on `io`'s thread after the initial load and after every effective change.
  FileSource(asio::io_context& io, std::vector<std::string> paths,
             std::function<void(const api::Store&)> onChange);
  ~FileSource();

  // Loads everything and starts watching. False only when inotify cannot be set up.
  bool start(std::string* error);
  // Re-reads every path now (also used by tests); returns true when the store changed.
  bool reload();
  const api::Store& store() const { return store_; }

 private:
  void addWatches();
  void watchDir(const std::string& dir);
  void readEvents();
  void scheduleReload();
  // True when an event on `name` (in a watched directory) can change what we load.
  bool relevant(int wd, const char* name, uint32_t mask) const;

  asio::io_context& io_;
  std::vector<std::string> paths_;
  std::function<void(const api::Store&)> onChange_;
  api::Store store_;
  // Last objects that parsed, per file.
  std::map<std::string, std::vector<api::Object>> lastGood_;
  std::map<std::string, std::string> lastError_;  // file -> message already logged
  std::map<std::string, size_t> lastText_;        // file -> hash of the text last decoded
  int inotifyFd_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> stream_;
  asio::steady_timer debounce_;
  // When the first change of the pending burst was seen; reset when the reload runs.
  std::optional<std::chrono::steady_clock::time_point> pendingSince_;
  std::map<int, std::string> watches_;
  std::vector<char> eventBuf_;
  bool firstLoad_ = true;
};

// RFC 3339 UTC timestamp of "now" (seconds precision), for creationTimestamp.
std::string nowRfc3339();

}  // namespace archway::sources
