// The Kubernetes source: list + watch of every kind Archway reads, into the same api::Store
// the file source fills, and status written back through the status subresource.
//
// Threads: one background thread per kind runs the blocking list/watch loop (libcurl) and
// posts what it got to the control io_context; one writer thread sends status PATCHes. The
// store, the debounce and the decision of what to write live on the control thread only,
// so nothing there ever waits on the network.
//
// Watch protocol (as client-go's reflector): list (paged) to get a resourceVersion, then
// watch from it with allowWatchBookmarks and a server-side timeoutSeconds; when the watch
// ends, watch again from the last seen resourceVersion; 410 Gone (expired resourceVersion)
// -> list again; other errors -> exponential backoff; a kind whose CRD is not installed
// (404) is retried every kKubeMissingKindRetry with a warning while the rest keeps working.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "api/object.h"
#include "sources/kube_config.h"
#include "translate/translator.h"

namespace archway::sources {

// One kind read from the API server.
struct KubeKind {
  const char* kind;
  const char* group;  // "" for the core group
  const char* version;
  const char* plural;
  bool namespaced;
  bool gatewayApi;  // has a status subresource Archway writes
  std::string apiVersion() const;
  // "/api/v1/services" or "/apis/<group>/<version>/<plural>".
  std::string collectionPath() const;
  // Path of one object's status subresource.
  std::string statusPath(const std::string& ns, const std::string& name) const;
};
const std::vector<KubeKind>& kubeKinds();
const KubeKind* findKubeKind(const std::string& kind);

// --- limits (client-go and the API server are the peers) ---------------------------------
// Objects per list page; client-go's pager uses 500.
inline constexpr int kKubeListPageSize = 500;
// Bytes of one list page. A page of 500 objects of at most 1.5 MiB each (etcd's limit) is
// bounded by the API server at ~2 GiB in theory; real pages are a few MiB.
inline constexpr size_t kKubeMaxListPageBytes = 256u << 20;
// Objects of one kind held in total; beyond this the kind is not synced (error logged).
inline constexpr size_t kKubeMaxObjectsPerKind = 200000;
// Bytes of one watch event line (an object is at most ~1.5 MiB in etcd, plus framing).
inline constexpr size_t kKubeMaxEventBytes = 4u << 20;
// Server-side watch timeout; client-go picks 5-10 min at random.
inline constexpr std::chrono::seconds kKubeWatchTimeout{300};
// Silence tolerated on a watch before it is considered stalled (bookmarks arrive about every
// minute on a healthy server); past this the connection is dropped and re-established.
inline constexpr std::chrono::seconds kKubeWatchIdle{kKubeWatchTimeout.count() + 30};
// Whole time for a list page or a status PATCH; a stalled request is dropped earlier by the
// idle bound.
inline constexpr std::chrono::seconds kKubeRequestTimeout{60};
// Backoff between failed attempts: doubles from the initial value up to the maximum
// (client-go: 800 ms .. 30 s).
inline constexpr std::chrono::milliseconds kKubeBackoffInitial{500};
inline constexpr std::chrono::milliseconds kKubeBackoffMax{30000};
// How often a kind whose CRD is not installed is tried again.
inline constexpr std::chrono::seconds kKubeMissingKindRetry{30};

// Decides which status to write and stamps lastTransitionTime; pure, tested on its own.
class StatusPlanner {
 public:
  explicit StatusPlanner(std::string controllerName) : controller_(std::move(controllerName)) {}
  struct Write {
    api::ObjectKey key;
    std::string path;
    std::string body;  // merge patch {"status": ...}
  };
  // Status writes for one translation of `store`. `now` is RFC 3339, used for conditions
  // whose status changed.
  std::vector<Write> plan(const api::Store& store, const translate::TranslateResult& result,
                          const std::string& now);
  // The server's view of an object changed (watch event): forget what we last wrote when
  // someone else changed the status, so ours is written again.
  void observed(const api::ObjectKey& key, const api::Json* oldStatus, const api::Json* newStatus);
  void forget(const api::ObjectKey& key) { lastWritten_.erase(key); }

 private:
  bool ours(const api::Store& store, const api::Object& o, const api::Json& desired) const;
  std::string controller_;
  std::map<api::ObjectKey, api::Json> lastWritten_;
};

class KubeClient;

class KubeSource {
 public:
  // `translateAndPublish` runs on `io`'s thread after the initial sync and after every
  // effective change; it returns the translation result so its status can be written back.
  using OnChange = std::function<std::optional<translate::TranslateResult>(const api::Store&)>;
  KubeSource(asio::io_context& io, ClusterAccess access, OnChange onChange,
             std::string controllerName = translate::kControllerName);
  ~KubeSource();

  // Checks that the API server answers and accepts our credentials (blocking, bounded),
  // then starts the watch and writer threads. False with a clear error otherwise.
  bool start(std::string* error);
  void stop();

  const api::Store& store() const { return store_; }

 private:
  struct KindState;
  void runKind(size_t index);
  bool listKind(size_t index, KubeClient& client, std::string* resourceVersion, bool* missing,
                bool* gone, std::string* error);
  // Returns false when the watch must be replaced by a list (410 Gone).
  bool watchKind(size_t index, KubeClient& client, std::string* resourceVersion, std::string* error,
                 bool* progressed);
  bool sleepFor(std::chrono::milliseconds d);

  // Control thread.
  void applyList(size_t index, std::vector<api::Json> items);
  void applyEvent(size_t index, const std::string& type, api::Json object);
  void markSynced(size_t index);
  bool toObject(size_t index, api::Json body, api::Object* out);
  void putObject(api::Object o);
  void eraseObject(const api::ObjectKey& key);
  void scheduleTranslate();
  void translateNow();

  // Writer thread.
  void runWriter();
  void enqueueWrites(std::vector<StatusPlanner::Write> writes);

  asio::io_context& io_;
  ClusterAccess access_;
  OnChange onChange_;
  std::string controllerName_;
  api::Store store_;
  StatusPlanner planner_;
  std::vector<bool> synced_;
  bool initialSyncDone_ = false;
  asio::steady_timer debounce_;
  std::optional<std::chrono::steady_clock::time_point> pendingSince_;

  std::atomic<bool> stopping_{false};
  std::mutex mu_;  // guards sleeping, the write queue and the clients list
  std::condition_variable cv_;
  std::vector<KubeClient*> clients_;
  std::vector<std::thread> threads_;
  std::map<api::ObjectKey, StatusPlanner::Write> writeQueue_;
  std::thread writer_;
  // Shared with posted handlers so a handler posted after destruction does nothing.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace archway::sources
