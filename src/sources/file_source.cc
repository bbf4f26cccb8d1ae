#include "sources/file_source.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "api/validation.h"
#include "net/limits.h"

namespace archway::sources {

namespace fs = std::filesystem;

std::string nowRfc3339() {
  auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", now);
}

FileSource::FileSource(asio::io_context& io, std::vector<std::string> paths,
                       std::function<void(const api::Store&)> onChange)
    : io_(io),
      paths_(std::move(paths)),
      onChange_(std::move(onChange)),
      debounce_(io),
      eventBuf_(64 * 1024) {}

FileSource::~FileSource() {
  if (stream_) {
    std::error_code ec;
    stream_->close(ec);
  } else if (inotifyFd_ >= 0) {
    ::close(inotifyFd_);
  }
}

bool FileSource::start(std::string* error) {
  inotifyFd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotifyFd_ < 0) {
    *error = fmt::format("inotify: {}", std::strerror(errno));
    return false;
  }
  stream_ = std::make_unique<asio::posix::stream_descriptor>(io_, inotifyFd_);
  addWatches();
  reload();
  readEvents();
  return true;
}

void FileSource::watchDir(const std::string& dir) {
  constexpr uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO |
                             IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;
  int wd = inotify_add_watch(inotifyFd_, dir.c_str(), kMask);
  if (wd >= 0) {
    watches_[wd] = dir;
  } else {
    spdlog::debug("cannot watch {}: {}", dir, std::strerror(errno));
  }
}

// Directories given are watched recursively; for a file, its directory is watched so
// rename-replace (the file's inode changes) is seen.
void FileSource::addWatches() {
  std::set<std::string> dirs;
  for (const auto& p : paths_) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      dirs.insert(fs::absolute(p, ec).lexically_normal().string());
      for (auto it = fs::recursive_directory_iterator(
               p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory(ec))
          dirs.insert(fs::absolute(it->path(), ec).lexically_normal().string());
      }
    } else {
      fs::path parent = fs::absolute(p, ec).parent_path();
      dirs.insert(parent.lexically_normal().string());
    }
  }
  for (const auto& d : dirs) watchDir(d);
}

void FileSource::readEvents() {
  stream_->async_read_some(asio::buffer(eventBuf_), [this](std::error_code ec, size_t n) {
    if (ec) {
      if (ec != asio::error::operation_aborted) spdlog::error("inotify read: {}", ec.message());
      return;
    }
    bool relevant = false;
    size_t off = 0;
    while (off + sizeof(inotify_event) <= n) {
      auto* ev = reinterpret_cast<const inotify_event*>(eventBuf_.data() + off);
      off += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_IGNORED) {
        watches_.erase(ev->wd);
        relevant = true;
      } else if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;  // events were lost: re-read everything
      } else if (!relevant) {
        relevant = this->relevant(ev->wd, ev->len ? ev->name : "", ev->mask);
      }
    }
    if (relevant) scheduleReload();
    readEvents();
  });
}

// Only manifests, the files named on the command line and directories matter: other files
// in a watched directory (an access log, editor swap files) must not trigger reloads.
bool FileSource::relevant(int wd, const char* name, uint32_t mask) const {
  if (*name == '\0' || (mask & IN_ISDIR)) return true;  // the directory itself, or a subdir
  fs::path p(name);
  auto ext = p.extension().string();
  if (ext == ".yaml" || ext == ".yml" || ext == ".json") return true;
  auto dir = watches_.find(wd);
  if (dir == watches_.end()) return true;
  std::string full = (fs::path(dir->second) / p).lexically_normal().string();
  for (const auto& given : paths_) {
    std::error_code ec;
    if (fs::absolute(given, ec).lexically_normal().string() == full) return true;
  }
  return false;
}

void FileSource::scheduleReload() {
  auto now = std::chrono::steady_clock::now();
  if (!pendingSince_) pendingSince_ = now;
  // Debounce, but never push a pending reload past kFileWatchMaxDelay from its first event.
  auto due = std::min(now + net::kFileWatchDebounce, *pendingSince_ + net::kFileWatchMaxDelay);
  debounce_.expires_at(due);
  debounce_.async_wait([this](std::error_code ec) {
    if (ec) return;
    pendingSince_.reset();
    addWatches();  // new subdirectories, re-created directories
    reload();
  });
}

namespace {

bool readFile(const std::string& path, std::string* out, std::string* error) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) {
    *error = ec.message();
    return false;
  }
  if (size > api::kMaxManifestBytes) {
    *error = fmt::format("file is larger than {} bytes", api::kMaxManifestBytes);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// The per-field errors ("file:line: Kind ns/name: field: why") are logged with the file's
// diagnostics; this says what happened to the change.
void logRejected(const api::Object& rejected, const api::Object& served) {
  std::string why;
  for (const auto& e : rejected.validationErrors) why += (why.empty() ? "" : "; ") + e;
  spdlog::error(
      "{}: {}: change rejected ({}); the last valid version (generation {}, {}) "
      "keeps serving",
      rejected.location.format(), rejected.displayName(), why, served.generation,
      served.location.format());
}

}  // namespace

bool FileSource::reload() {
  std::vector<api::Diagnostic> diags;
  bool inputError = false;
  std::vector<std::string> files = api::expandPaths(paths_, &diags, &inputError);
  for (const auto& d : diags) spdlog::warn("{}", d.format());
  std::set<std::string> present(files.begin(), files.end());
  for (auto it = lastGood_.begin(); it != lastGood_.end();) {
    it = present.count(it->first) ? std::next(it) : lastGood_.erase(it);
  }
  for (auto it = lastText_.begin(); it != lastText_.end();)
    it = present.count(it->first) ? std::next(it) : lastText_.erase(it);
  for (const auto& file : files) {
    std::string text, error;
    if (!readFile(file, &text, &error)) {
      // Vanished between listing and reading (rename in progress): keep the last good state.
      spdlog::warn("{}: {}", file, error);
      continue;
    }
    api::LoadResult r = api::decodeText(text, file);
    if (r.inputError) {
      std::string msg;
      for (const auto& d : r.diagnostics) {
        if (!msg.empty()) msg += "; ";
        msg += d.format();
      }
      if (lastError_[file] != msg) {
        spdlog::error("{} (keeping the last good version of {} serving)", msg, file);
        lastError_[file] = msg;
      }
      continue;
    }
    api::validateAll(r);  // schema/CEL checks and defaults, as an API server would apply
    // Diagnostics once per version of the file, not on every reload of other files.
    size_t textHash = std::hash<std::string>{}(text);
    if (lastError_[file] != "ok" || lastText_[file] != textHash) {
      for (const auto& d : r.diagnostics) spdlog::warn("{}", d.format());
    }
    lastError_[file] = "ok";
    lastText_[file] = textHash;
    lastGood_[file] = std::move(r.objects);
  }

  // Merge into the store with cluster-like generation and creation bookkeeping.
  std::map<api::ObjectKey, const api::Object*> next;
  for (const auto& [file, objects] : lastGood_)
    for (const auto& o : objects) next[api::keyOf(o)] = &o;  // later files win duplicates
  bool changed = firstLoad_;
  firstLoad_ = false;
  std::vector<api::ObjectKey> gone;
  for (const auto& [key, o] : store_.all())
    if (!next.count(key)) gone.push_back(key);
  for (const auto& key : gone) {
    store_.erase(key);
    changed = true;
  }
  std::string now = nowRfc3339();
  for (const auto& [key, src] : next) {
    const api::Object* prev = store_.find(key.kind, key.ns, key.name);
    if (prev && !src->validationErrors.empty() && prev->validationErrors.empty()) {
      // An API server would have rejected this update: keep serving the last valid version
      // (same generation) and say why in the log and, through the translator, in status.
      api::RejectedChange rc{src->location, 0, src->validationErrors};
      if (prev->rejectedChange == rc) continue;
      logRejected(*src, *prev);
      api::Object kept = *prev;
      kept.rejectedChange = std::move(rc);
      store_.put(std::move(kept));
      changed = true;
      continue;
    }
    api::Object o = *src;
    if (prev) {
      // Compare with what the file said last time (our own metadata edits excluded).
      bool specChanged = prev->spec() != o.spec();
      api::Json prevBody = prev->body, newBody = o.body;
      for (auto* b : {&prevBody, &newBody}) {
        if (b->contains("metadata")) {
          (*b)["metadata"].erase("generation");
          (*b)["metadata"].erase("creationTimestamp");
        }
      }
      if (prevBody == newBody && prev->location.file == o.location.file && !prev->rejectedChange)
        continue;
      if (prev->rejectedChange)
        spdlog::info("{}: {}: valid again; the rejected change is no longer reported",
                     o.location.format(), o.displayName());
      o.generation = prev->generation + (specChanged ? 1 : 0);
      if (o.creationTimestamp.empty()) o.creationTimestamp = prev->creationTimestamp;
    } else if (o.creationTimestamp.empty()) {
      o.creationTimestamp = now;
    }
    o.body["metadata"]["generation"] = o.generation;
    o.body["metadata"]["creationTimestamp"] = o.creationTimestamp;
    store_.put(std::move(o));
    changed = true;
  }
  if (changed) onChange_(store_);
  return changed;
}

}  // namespace archway::sources
