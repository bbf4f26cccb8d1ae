#include "sources/file_source.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>
#include <thread>
#include <unordered_set>

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
    // Only manifests renamed into place (or gone): complete files, nothing left to settle.
    bool renamesOnly = true;
    size_t off = 0;
    while (off + sizeof(inotify_event) <= n) {
      auto* ev = reinterpret_cast<const inotify_event*>(eventBuf_.data() + off);
      off += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_IGNORED) {
        watches_.erase(ev->wd);
        relevant = true;
      } else if (ev->mask & IN_Q_OVERFLOW) {
        relevant = true;  // events were lost: re-read everything
      } else {
        const char* name = ev->len ? ev->name : "";
        if (!this->relevant(ev->wd, name, ev->mask)) continue;
        relevant = true;
        if (*name == '\0' || (ev->mask & IN_ISDIR) ||
            !(ev->mask & (IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)))
          renamesOnly = false;
        // A manifest modified and not yet closed is still being written: wait longer.
        if (*name != '\0' && !(ev->mask & IN_ISDIR)) {
          auto key = std::make_pair(ev->wd, std::string(name));
          if (ev->mask & (IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM))
            writing_.erase(key);
          else if (ev->mask & (IN_MODIFY | IN_CREATE))
            writing_.insert(std::move(key));
        }
      }
    }
    if (relevant) scheduleReload(writing_.empty(), renamesOnly && writing_.empty());
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

void FileSource::scheduleReload(bool settled, bool immediate) {
  auto now = std::chrono::steady_clock::now();
  if (!pendingSince_) pendingSince_ = now;
  // Debounce, but never push a pending reload past kFileWatchMaxDelay from its first event.
  // A burst of renames into place needs no settling: each renamed file is complete (and a
  // later event reloads again), so the reload runs as soon as the loop gets to it.
  auto delay = immediate ? std::chrono::milliseconds(0)
               : settled ? net::kFileWatchSettle
                         : net::kFileWatchDebounce;
  auto due = std::min(now + delay, *pendingSince_ + net::kFileWatchMaxDelay);
  debounce_.expires_at(due);
  debounce_.async_wait([this](std::error_code ec) {
    if (ec) return;
    pendingSince_.reset();
    writing_.clear();  // a writer that never closes (or a hard link) must not slow us forever
    addWatches();      // new subdirectories, re-created directories
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
  // read(2) straight into the string (a stream copy through a stringstream was a third of
  // re-reading a 2,500-route file), one byte more than the size so a file that grew since
  // is read to its end.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open";
    return false;
  }
  std::string text(static_cast<size_t>(size) + 1, '\0');
  size_t got = 0;
  for (;;) {
    if (got == text.size()) {
      if (text.size() > api::kMaxManifestBytes) {
        ::close(fd);
        *error = fmt::format("file is larger than {} bytes", api::kMaxManifestBytes);
        return false;
      }
      text.resize(std::min<size_t>(text.size() * 2, api::kMaxManifestBytes + 1));
    }
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  *out = std::move(text);
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

namespace {

// One document of a multi-document stream, as text.
struct Segment {
  std::string_view text;
  int firstLine = 0;  // 0-based line of its first line in the file
  // Index of the same document (same text) in the last version's list, when the split
  // knows it; -1 otherwise (found by text, or decoded).
  int64_t was = -1;
};

// Scans the lines of `text` from `from` (the start of a document, at 0-based line `line`)
// for document markers ("---" at the start of a line, which YAML forbids inside any scalar
// or flow collection) and appends the documents to `out`: up to the end of the text, or up
// to `stop` when one is given (a line start; `*stopLine` gets its line). False when the
// stream uses directives or "..." end markers (the file is then decoded whole), or when
// `stop` is not where a line starts.
bool scanDocuments(std::string_view text, size_t from, int line, size_t stop,
                   std::vector<Segment>* out, int* stopLine = nullptr) {
  size_t start = from, pos = from;
  int startLine = line;
  auto marker = [&](std::string_view m) {
    if (text.compare(pos, m.size(), m) != 0) return false;
    size_t after = pos + m.size();
    return after == text.size() || text[after] == ' ' || text[after] == '\t' ||
           text[after] == '\r' || text[after] == '\n';
  };
  while (pos < text.size() && pos != stop) {
    if (text[pos] == '%' || marker("...")) return false;
    if (marker("---") && pos > start) {
      out->push_back({text.substr(start, pos - start), startLine});
      start = pos;
      startLine = line;
    }
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) {
      pos = text.size();
      break;
    }
    pos = nl + 1;
    ++line;
  }
  if (stop != std::string_view::npos) {
    if (pos != stop) return false;
    if (stop > start) out->push_back({text.substr(start, stop - start), startLine});
    *stopLine = line;
    return true;
  }
  if (start < text.size()) out->push_back({text.substr(start), startLine});
  return true;
}

// Splits a YAML stream at its document markers, so each document can be decoded (and
// cached) on its own. Nullopt when the stream uses directives or "..." end markers.
std::optional<std::vector<Segment>> splitDocuments(std::string_view text) {
  std::vector<Segment> out;
  if (!scanDocuments(text, 0, 0, std::string_view::npos, &out)) return std::nullopt;
  return out;
}

// Length of the common prefix (suffix) of a and b, compared a block at a time.
size_t commonPrefix(std::string_view a, std::string_view b) {
  constexpr size_t kBlock = 256;
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i + kBlock <= n && std::memcmp(a.data() + i, b.data() + i, kBlock) == 0) i += kBlock;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}
size_t commonSuffix(std::string_view a, std::string_view b, size_t limit) {
  constexpr size_t kBlock = 256;
  const char* ae = a.data() + a.size();
  const char* be = b.data() + b.size();
  size_t i = 0;
  while (i + kBlock <= limit && std::memcmp(ae - i - kBlock, be - i - kBlock, kBlock) == 0)
    i += kBlock;
  while (i < limit && ae[-1 - static_cast<ptrdiff_t>(i)] == be[-1 - static_cast<ptrdiff_t>(i)]) ++i;
  return i;
}

// Splits `text`, a new version of `before` whose split was `docs`, re-scanning only the part
// that changed: the documents before it and after it are the last version's (same text;
// those after it moved by the change's size and line count). A marker is decided by the
// newline before it and the four bytes from it, so a document of the last version is kept
// when those bytes around its boundaries lie in the common prefix or suffix. Nullopt when
// that does not work out (the caller splits the whole text).
template <typename Doc>
std::optional<std::vector<Segment>> splitChanged(std::string_view before,
                                                 const std::vector<Doc>& docs,
                                                 std::string_view text) {
  if (docs.empty() || docs.front().offset != 0) return std::nullopt;
  const size_t prefix = commonPrefix(before, text);
  const size_t suffix = commonSuffix(before, text, std::min(before.size(), text.size()) - prefix);
  // docs[0, a) are kept: the marker that ends each lies wholly in the common prefix.
  size_t a = 0;
  {
    size_t lo = 0, hi = docs.size() - 1;  // the largest a with docs[a].offset + 4 <= prefix
    while (lo < hi) {
      size_t mid = lo + (hi - lo + 1) / 2;
      if (docs[mid].offset + 4 <= prefix)
        lo = mid;
      else
        hi = mid - 1;
    }
    a = lo;
  }
  // docs[b, end) are kept: each starts after the newline that begins the common suffix.
  const size_t suffixStart = before.size() - suffix;
  size_t b = a + 1;
  {
    size_t lo = a + 1, hi = docs.size();  // the first b > a with offset > suffixStart
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (docs[mid].offset > suffixStart)
        hi = mid;
      else
        lo = mid + 1;
    }
    b = lo;
  }
  const auto delta = static_cast<ptrdiff_t>(text.size()) - static_cast<ptrdiff_t>(before.size());
  size_t stop = std::string_view::npos;
  if (b < docs.size()) {
    ptrdiff_t s = static_cast<ptrdiff_t>(docs[b].offset) + delta;
    if (s < static_cast<ptrdiff_t>(docs[a].offset)) return std::nullopt;
    stop = static_cast<size_t>(s);
  }
  std::vector<Segment> out;
  out.reserve(docs.size() + 2);
  for (size_t i = 0; i < a; ++i)
    out.push_back({text.substr(docs[i].offset, docs[i].size), docs[i].decoded->firstLine,
                   static_cast<int64_t>(i)});
  int stopLine = 0;
  if (!scanDocuments(text, docs[a].offset, docs[a].decoded->firstLine, stop, &out, &stopLine))
    return std::nullopt;
  if (b < docs.size()) {
    const int lines = stopLine - docs[b].decoded->firstLine;
    for (size_t i = b; i < docs.size(); ++i)
      out.push_back(
          {text.substr(static_cast<size_t>(static_cast<ptrdiff_t>(docs[i].offset) + delta),
                       docs[i].size),
           docs[i].decoded->firstLine + lines, static_cast<int64_t>(i)});
  }
  return out;
}

// The same object `delta` lines further down its file.
std::shared_ptr<const api::Object> shifted(const api::Object& o, int delta) {
  auto c = std::make_shared<api::Object>(o);
  if (c->location.line > 0) c->location.line += delta;
  if (c->lines) {
    auto lines = std::make_shared<api::FieldLines>(*c->lines);
    for (auto& [path, line] : *lines) line += delta;
    c->lines = std::move(lines);
  }
  return c;
}

void shiftDiagnostics(std::vector<api::Diagnostic>& diagnostics, int delta) {
  for (auto& d : diagnostics)
    if (d.location.line > 0) d.location.line += delta;
}

// Metadata equal but for the fields the store maintains itself.
bool sameMetadata(const api::Json& a, const api::Json& b) {
  auto own = [](const std::string& k) { return k == "generation" || k == "creationTimestamp"; };
  size_t na = 0, nb = 0;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (own(it.key())) continue;
    ++na;
    auto jt = b.find(it.key());
    if (jt == b.end() || *jt != *it) return false;
  }
  for (auto it = b.begin(); it != b.end(); ++it)
    if (!own(it.key())) ++nb;
  return na == nb;
}

// Bodies equal but for metadata.generation and metadata.creationTimestamp (no copies).
bool sameBody(const api::Json& a, const api::Json& b) {
  if (!a.is_object() || !b.is_object() || a.size() != b.size()) return a == b;
  for (auto it = a.begin(); it != a.end(); ++it) {
    auto jt = b.find(it.key());
    if (jt == b.end()) return false;
    if (it.key() == "metadata" && it->is_object() && jt->is_object()) {
      if (!sameMetadata(*it, *jt)) return false;
    } else if (*it != *jt) {
      return false;
    }
  }
  return true;
}

int64_t wallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

namespace {

// Decodes and validates one document; a parsing library's exception becomes an input error.
api::LoadResult decodeDocument(std::string_view text, const std::string& file) {
  try {
    api::LoadResult r = api::decodeText(text, file);
    if (!r.inputError) api::validateAll(r);
    return r;
  } catch (const std::exception& e) {
    api::LoadResult r;
    r.inputError = true;
    r.diagnostics.push_back(
        {api::Diagnostic::Severity::kError, {file, 0}, std::string("cannot decode: ") + e.what()});
    return r;
  }
}

// Up to this many changed keys in a file, its objects are matched against each key (no
// key built per object).
constexpr size_t kFewKeys = 16;

// Below this many documents to decode, threads cost more than they save.
constexpr size_t kParallelDecodeMin = 64;
constexpr unsigned kMaxDecodeThreads = 4;

void decodeDocuments(const std::vector<Segment>& segments, const std::vector<size_t>& which,
                     const std::string& file, std::vector<api::LoadResult>* out) {
  unsigned threads = std::min(kMaxDecodeThreads, std::thread::hardware_concurrency());
  if (which.size() < kParallelDecodeMin || threads < 2) {
    for (size_t i : which) (*out)[i] = decodeDocument(segments[i].text, file);
    return;
  }
  // Decoding and validation only read shared state (schemas, compiled patterns).
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < which.size();)
      (*out)[which[k]] = decodeDocument(segments[which[k]].text, file);
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

}  // namespace

size_t FileSource::TextHash::operator()(std::string_view s) const {
  // 8 bytes per step, multiply-xorshift mixing (as in wyhash/splitmix); only bucket spread
  // matters here, equality is checked on the text.
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * kMul;
  h ^= h >> 32;
  return static_cast<size_t>(h);
}

bool FileSource::decodeFile(const std::string& file, FileState& state, std::string_view previous,
                            std::vector<ObjectPtr>* objects,
                            std::vector<api::Diagnostic>* diagnostics) {
  auto whole = [&] {
    objects->clear();
    diagnostics->clear();
    // Schema/CEL checks and defaults, as an API server would apply.
    api::LoadResult r = decodeDocument(state.text, file);
    ++counters_.documentsDecoded;
    if (!r.inputError)
      for (auto& o : r.objects) objects->push_back(std::make_shared<api::Object>(std::move(o)));
    *diagnostics = std::move(r.diagnostics);
    state.documents.clear();
    return !r.inputError;
  };
  // Only the changed part is split again when the last version was split (an edit of one
  // document of a 2,500-document file re-split and looked up all 2,500).
  std::optional<std::vector<Segment>> segments;
  if (!state.documents.empty()) segments = splitChanged(previous, state.documents, state.text);
  if (!segments) segments = splitDocuments(state.text);
  if (!segments) return whole();
  const std::vector<Document>& docs = state.documents;
  // The last version's documents no segment took by position, by text: one that moved, or
  // was copied.
  std::vector<char> taken(docs.size(), 0);
  for (const Segment& seg : *segments)
    if (seg.was >= 0) taken[static_cast<size_t>(seg.was)] = 1;
  using ByText = std::unordered_map<std::string_view, std::shared_ptr<const CachedDocument>,
                                    TextHash, std::equal_to<>>;
  ByText byText;
  for (size_t i = 0; i < docs.size(); ++i)
    if (!taken[i]) byText.emplace(previous.substr(docs[i].offset, docs[i].size), docs[i].decoded);
  // Documents not known (each text once), decoded up front: in parallel when there are many
  // (the first load of a big file).
  std::vector<size_t> misses;
  {
    std::unordered_set<std::string_view, TextHash, std::equal_to<>> seen;
    for (size_t i = 0; i < segments->size(); ++i) {
      const Segment& seg = (*segments)[i];
      if (seg.was < 0 && !byText.contains(seg.text) && seen.insert(seg.text).second)
        misses.push_back(i);
    }
  }
  std::vector<api::LoadResult> decoded(segments->size());
  decodeDocuments(*segments, misses, file, &decoded);
  counters_.documentsDecoded += misses.size();
  ByText fresh;  // decoded now: a second copy of the text in this file takes it from here
  std::vector<Document> next;
  next.reserve(segments->size());
  for (size_t i = 0; i < segments->size(); ++i) {
    const Segment& seg = (*segments)[i];
    std::shared_ptr<const CachedDocument> cached;
    if (seg.was >= 0) {
      cached = docs[static_cast<size_t>(seg.was)].decoded;
    } else if (auto it = byText.find(seg.text); it != byText.end()) {
      cached = it->second;
    } else if (auto jt = fresh.find(seg.text); jt != fresh.end()) {
      cached = jt->second;
    }
    std::shared_ptr<const CachedDocument> doc;
    if (cached && cached->firstLine == seg.firstLine) {
      doc = cached;
    } else if (cached) {
      int delta = seg.firstLine - cached->firstLine;
      auto d = std::make_shared<CachedDocument>();
      d->firstLine = seg.firstLine;
      d->diagnostics = cached->diagnostics;
      for (const auto& o : cached->objects) d->objects.push_back(shifted(*o, delta));
      shiftDiagnostics(d->diagnostics, delta);
      doc = std::move(d);
    } else {
      api::LoadResult& r = decoded[i];
      // Errors are reported as for the whole file (same messages and lines).
      if (r.inputError) return whole();
      auto d = std::make_shared<CachedDocument>();
      d->firstLine = seg.firstLine;
      for (auto& o : r.objects) {
        if (o.location.line > 0) o.location.line += seg.firstLine;
        if (o.lines && seg.firstLine != 0) {
          auto lines = std::make_shared<api::FieldLines>(*o.lines);
          for (auto& [path, line] : *lines) line += seg.firstLine;
          o.lines = std::move(lines);
        }
        d->objects.push_back(std::make_shared<api::Object>(std::move(o)));
      }
      d->diagnostics = std::move(r.diagnostics);
      shiftDiagnostics(d->diagnostics, seg.firstLine);
      fresh.emplace(seg.text, d);
      doc = std::move(d);
    }
    objects->insert(objects->end(), doc->objects.begin(), doc->objects.end());
    diagnostics->insert(diagnostics->end(), doc->diagnostics.begin(), doc->diagnostics.end());
    next.push_back({static_cast<size_t>(seg.text.data() - state.text.data()), seg.text.size(),
                    std::move(doc)});
  }
  state.documents = std::move(next);
  return true;
}

bool FileSource::refreshFile(const std::string& file, FileState& state, std::vector<ObjectPtr>* old,
                             int64_t nowNs) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    // Vanished between listing and reading (rename in progress): keep the last good state.
    spdlog::warn("{}: {}", file, std::strerror(errno));
    return false;
  }
  FileId id{st.st_dev, st.st_ino,
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
            static_cast<int64_t>(st.st_size)};
  if (id == state.id && !state.racy) return false;
  std::string text, error;
  if (!readFile(file, &text, &error)) {
    spdlog::warn("{}: {}", file, error);
    return false;
  }
  ++counters_.filesRead;
  bool seen = state.id.size >= 0;
  state.id = id;
  state.racy = id.mtimeNs >= nowNs - std::chrono::nanoseconds(net::kFileWatchRacyWindow).count();
  if (seen && text == state.text) return false;  // touched, or rewritten identically
  std::string previous = std::move(state.text);
  state.text = std::move(text);
  std::vector<ObjectPtr> objects;
  std::vector<api::Diagnostic> diagnostics;
  if (!decodeFile(file, state, previous, &objects, &diagnostics)) {
    std::string msg;
    for (const auto& d : diagnostics) {
      if (!msg.empty()) msg += "; ";
      msg += d.format();
    }
    if (state.lastError != msg) {
      spdlog::error("{} (keeping the last good version of {} serving)", msg, file);
      state.lastError = msg;
    }
    return false;
  }
  // Diagnostics once per version of the file, not on every reload of other files.
  for (const auto& d : diagnostics) spdlog::warn("{}", d.format());
  state.lastError.clear();
  *old = std::move(state.objects);
  state.objects = std::move(objects);
  return true;
}

bool FileSource::applyKey(const api::ObjectKey& key, const std::string& now) {
  ObjectPtr src;
  if (auto it = byKey_.find(key); it != byKey_.end() && !it->second.empty())
    src = it->second.rbegin()->second;  // later files win duplicates
  auto applied = applied_.find(key);
  if (!src) {
    if (applied != applied_.end()) applied_.erase(applied);
    return store_.erase(key);
  }
  if (applied != applied_.end() && applied->second == src) return false;
  applied_[key] = src;
  ++counters_.objectsCompared;
  const api::Object* prev = store_.find(key.kind, key.ns, key.name);
  if (prev && !src->validationErrors.empty() && prev->validationErrors.empty()) {
    // An API server would have rejected this update: keep serving the last valid version
    // (same generation) and say why in the log and, through the translator, in status.
    api::RejectedChange rc{src->location, 0, src->validationErrors};
    if (prev->rejectedChange == rc) return false;
    logRejected(*src, *prev);
    api::Object kept = *prev;
    kept.rejectedChange = std::move(rc);
    store_.put(std::move(kept));
    return true;
  }
  if (prev) {
    // Compare with what the file said last time (our own metadata edits excluded).
    if (sameBody(prev->body, src->body) && prev->location.file == src->location.file &&
        !prev->rejectedChange)
      return false;
  }
  api::Object o = *src;
  if (prev) {
    bool specChanged = prev->spec() != o.spec();
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
  return true;
}

void FileSource::reindex(const std::string& file, const std::vector<ObjectPtr>& old,
                         const std::vector<ObjectPtr>& now, std::set<api::ObjectKey>* affected) {
  // An object kept by pointer comes from a document whose text and position did not change,
  // so its index entry stands: only keys with an object added or removed are looked at
  // (an edit of one route in a 2,500-route file re-indexed and re-applied all 2,500).
  // Objects are unique pointers in file order, so the common prefix and suffix of both lists
  // are the same objects: only the window between them is compared.
  size_t lo = 0, oldEnd = old.size(), nowEnd = now.size();
  while (lo < oldEnd && lo < nowEnd && old[lo] == now[lo]) ++lo;
  while (oldEnd > lo && nowEnd > lo && old[oldEnd - 1] == now[nowEnd - 1]) --oldEnd, --nowEnd;
  std::unordered_set<const api::Object*> before, after;
  before.reserve(oldEnd - lo);
  after.reserve(nowEnd - lo);
  for (size_t i = lo; i < oldEnd; ++i) before.insert(old[i].get());
  for (size_t i = lo; i < nowEnd; ++i) after.insert(now[i].get());
  std::set<api::ObjectKey> changed;
  for (size_t i = lo; i < oldEnd; ++i)
    if (!after.count(old[i].get())) changed.insert(api::keyOf(*old[i]));
  for (size_t i = lo; i < nowEnd; ++i)
    if (!before.count(now[i].get())) changed.insert(api::keyOf(*now[i]));
  for (const auto& key : changed) {
    if (auto it = byKey_.find(key); it != byKey_.end()) {
      it->second.erase(file);
      if (it->second.empty()) byKey_.erase(it);
    }
  }
  if (changed.size() <= kFewKeys) {
    // Every object of the file with a changed key, kept or new: the last one wins.
    for (const auto& o : now) {
      for (const auto& key : changed) {
        if (o->name == key.name && o->ns == key.ns && o->kind == key.kind) byKey_[key][file] = o;
      }
    }
  } else {
    for (const auto& o : now) {
      api::ObjectKey key = api::keyOf(*o);
      if (changed.count(key)) byKey_[key][file] = o;
    }
  }
  affected->merge(changed);
}

bool FileSource::reload() {
  std::vector<api::Diagnostic> diags;
  bool inputError = false;
  std::vector<std::string> files = api::expandPaths(paths_, &diags, &inputError);
  for (const auto& d : diags) spdlog::warn("{}", d.format());
  std::set<std::string> present(files.begin(), files.end());
  std::set<api::ObjectKey> affected;
  auto unindex = [&](const std::string& file, const std::vector<ObjectPtr>& objects) {
    for (const auto& o : objects) {
      api::ObjectKey key = api::keyOf(*o);
      if (auto it = byKey_.find(key); it != byKey_.end()) {
        it->second.erase(file);
        if (it->second.empty()) byKey_.erase(it);
      }
      affected.insert(std::move(key));
    }
  };
  for (auto it = files_.begin(); it != files_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    unindex(it->first, it->second.objects);
    it = files_.erase(it);
  }
  int64_t nowNs = wallClockNs();
  for (const auto& file : files) {
    FileState& state = files_[file];
    std::vector<ObjectPtr> old;
    if (!refreshFile(file, state, &old, nowNs)) continue;
    reindex(file, old, state.objects, &affected);
  }

  // Apply what changed to the store with cluster-like generation and creation bookkeeping.
  bool changed = firstLoad_;
  firstLoad_ = false;
  std::string now = nowRfc3339();
  for (const auto& key : affected) changed = applyKey(key, now) || changed;
  if (changed) onChange_(store_);
  return changed;
}

}  // namespace archway::sources
