// The file source: manifests from files and directories, followed with inotify.
//
// Objects behave as in a cluster: metadata.generation starts at 1 (or what the file says)
// and grows when an object's spec changes; metadata.creationTimestamp is assigned at first
// sight and kept; an object whose file (or document) disappears is gone. Rename-replace,
// create, write and delete of manifests count as changes (other files in a watched directory,
// such as an access log, do not); bursts are coalesced (no delay after a rename into place
// or a removal, kFileWatchSettle once every written manifest is closed, kFileWatchDebounce
// while one is still being written, at most kFileWatchMaxDelay).
// A reload reads only the files whose (device, inode, mtime, size) changed (or that were
// written too recently to trust their mtime), and decodes and validates only the documents
// of a file whose text changed: the others keep their decoded objects. Only objects whose
// source changed are compared with the store, so one edit costs what it changes, not what
// is loaded.
// A file that stops parsing keeps its last good objects serving and the error is logged
// with file:line. An object whose new version fails validation keeps its last valid version
// serving, as an API server would have rejected the update: the errors are logged and the
// kept object carries api::Object::rejectedChange, which the translator reports in status.
// An object never valid is stored as read (the translator reports it, nothing is served);
// removing an object from its file removes it, whatever its state.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
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

  // Work done by reloads so far (tests check that unchanged files are not read again).
  struct Counters {
    uint64_t filesRead = 0;         // files whose text was read
    uint64_t documentsDecoded = 0;  // documents parsed and validated (cache misses)
    uint64_t objectsCompared = 0;   // objects whose source changed, compared with the store
  };
  const Counters& counters() const { return counters_; }

 private:
  // What identifies a version of a file without reading it.
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t mtimeNs = 0;
    int64_t size = -1;
    bool operator==(const FileId&) const = default;
  };
  using ObjectPtr = std::shared_ptr<const api::Object>;
  // One document of a file, decoded and validated.
  struct CachedDocument {
    int firstLine = 0;  // 0-based line of the document's first line in the file
    std::vector<ObjectPtr> objects;
    std::vector<api::Diagnostic> diagnostics;
  };
  // A document of the last text decoded, in file order: where it is and what it gave.
  struct Document {
    size_t offset = 0, size = 0;
    std::shared_ptr<const CachedDocument> decoded;
  };
  // Looks documents up by the text's string_view (no copy of each document), with a
  // word-at-a-time hash (std::hash's byte loop was a tenth of a big file's reload).
  struct TextHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const;
  };
  struct FileState {
    FileId id;
    bool racy = true;      // mtime too recent to trust: read again next time
    std::string text;      // last text read (decoded or not)
    bool decoded = false;  // text decoded without input error
    // Last objects that parsed (and were validated), in file order.
    std::vector<ObjectPtr> objects;
    std::string lastError;  // input error message already logged; "" when none
    // The documents of `text` when it was split and decoded per document; empty when the
    // file was decoded whole (directives, "..." markers, an input error).
    std::vector<Document> documents;
  };

  // Reads `file` if it changed; true when its objects changed (fills `old` with the previous
  // ones). `now` is the wall-clock time of the reload start (racy rule).
  bool refreshFile(const std::string& file, FileState& state, std::vector<ObjectPtr>* old,
                   int64_t nowNs);
  // Decodes and validates a file's text, reusing cached documents; false on an input error
  // (diagnostics logged by the caller).
  // `previous`: the text `state.documents` describe.
  bool decodeFile(const std::string& file, FileState& state, std::string_view previous,
                  std::vector<ObjectPtr>* objects, std::vector<api::Diagnostic>* diagnostics);
  // Updates byKey_ for a file whose objects went from `old` to `now`; adds the keys whose
  // winner may have changed to `affected`.
  void reindex(const std::string& file, const std::vector<ObjectPtr>& old,
               const std::vector<ObjectPtr>& now, std::set<api::ObjectKey>* affected);
  // Applies the current winner of `key` (later files win duplicates) to the store.
  bool applyKey(const api::ObjectKey& key, const std::string& now);

  void addWatches();
  void watchDir(const std::string& dir);
  void readEvents();
  // `settled`: no manifest is being written; `immediate`: the burst only renamed manifests
  // into place or removed them.
  void scheduleReload(bool settled, bool immediate);
  // True when an event on `name` (in a watched directory) can change what we load.
  bool relevant(int wd, const char* name, uint32_t mask) const;

  asio::io_context& io_;
  std::vector<std::string> paths_;
  std::function<void(const api::Store&)> onChange_;
  api::Store store_;
  std::map<std::string, FileState> files_;
  // Objects of every file by identity: key -> file -> the file's (last) object of that key.
  std::map<api::ObjectKey, std::map<std::string, ObjectPtr>> byKey_;
  // The source object last applied to the store for each key.
  std::map<api::ObjectKey, ObjectPtr> applied_;
  Counters counters_;
  // Manifests modified and not yet closed since the last reload (wd, name).
  std::set<std::pair<int, std::string>> writing_;
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
