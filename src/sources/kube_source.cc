#include "sources/kube_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/post.hpp>

#include "api/loader.h"
#include "api/validation.h"
#include "net/limits.h"
#include "sources/file_source.h"
#include "sources/kube_client.h"
#include "sources/kube_decode.h"

namespace archway::sources {

namespace {

constexpr const char* kGw = "gateway.networking.k8s.io";
constexpr const char* kGwX = "gateway.networking.x-k8s.io";
// Failed status writes of one object tried before giving up until the next change.
constexpr int kStatusWriteAttempts = 6;
// Whole-body limit of small answers (/version, PATCH responses).
constexpr size_t kSmallResponseBytes = 1u << 20;

std::string urlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string str(const api::Json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const api::Json& statusOf(const api::Object& o) {
  static const api::Json kNull;
  auto it = o.body.find("status");
  return it != o.body.end() ? *it : kNull;
}

// Identity of an element of status.parents / status.ancestors / status.listeners, to carry
// lastTransitionTime across writes.
std::string identity(const api::Json& e) {
  if (!e.is_object()) return {};
  if (auto it = e.find("parentRef"); it != e.end())
    return "p" + it->dump() + str(e, "controllerName");
  if (auto it = e.find("ancestorRef"); it != e.end())
    return "a" + it->dump() + str(e, "controllerName");
  if (auto it = e.find("name"); it != e.end() && it->is_string())
    return "n" + it->get<std::string>();
  return {};
}

// Conditions keep the previous lastTransitionTime while their status is unchanged.
void stamp(api::Json& node, const api::Json& base, const std::string& now) {
  if (!node.is_object()) return;
  for (auto& [key, value] : node.items()) {
    const api::Json* b = base.is_object() && base.contains(key) ? &base[key] : nullptr;
    if (key == "conditions" && value.is_array()) {
      for (auto& c : value) {
        if (!c.is_object()) continue;
        std::string t = now;
        if (b && b->is_array()) {
          for (const auto& old : *b) {
            if (str(old, "type") == str(c, "type") && str(old, "status") == str(c, "status") &&
                !str(old, "lastTransitionTime").empty()) {
              t = str(old, "lastTransitionTime");
              break;
            }
          }
        }
        c["lastTransitionTime"] = t;
      }
    } else if (value.is_object()) {
      stamp(value, b ? *b : api::Json(), now);
    } else if (value.is_array()) {
      for (auto& e : value) {
        api::Json match;
        std::string id = identity(e);
        if (b && b->is_array() && !id.empty()) {
          for (const auto& old : *b)
            if (identity(old) == id) match = old;
        }
        stamp(e, match, now);
      }
    }
  }
}

bool mentionsController(const api::Json& status, const std::string& controller) {
  if (!status.is_object()) return false;
  for (const char* list : {"parents", "ancestors"}) {
    auto it = status.find(list);
    if (it == status.end() || !it->is_array()) continue;
    for (const auto& e : *it)
      if (str(e, "controllerName") == controller) return true;
  }
  return false;
}

}  // namespace

// --- kinds --------------------------------------------------------------------------------

std::string KubeKind::apiVersion() const {
  return *group ? fmt::format("{}/{}", group, version) : std::string(version);
}

std::string KubeKind::collectionPath() const {
  return *group ? fmt::format("/apis/{}/{}/{}", group, version, plural)
                : fmt::format("/api/{}/{}", version, plural);
}

std::string KubeKind::statusPath(const std::string& ns, const std::string& name) const {
  std::string base =
      *group ? fmt::format("/apis/{}/{}", group, version) : fmt::format("/api/{}", version);
  if (namespaced) return fmt::format("{}/namespaces/{}/{}/{}/status", base, ns, plural, name);
  return fmt::format("{}/{}/{}/status", base, plural, name);
}

const std::vector<KubeKind>& kubeKinds() {
  // Versions: the served version of each CRD in deploy/crds/experimental that the
  // translator reads.
  static const std::vector<KubeKind> kinds = {
      {"GatewayClass", kGw, "v1", "gatewayclasses", false, true},
      {"Gateway", kGw, "v1", "gateways", true, true},
      {"ListenerSet", kGw, "v1", "listenersets", true, true},
      {"HTTPRoute", kGw, "v1", "httproutes", true, true},
      {"GRPCRoute", kGw, "v1", "grpcroutes", true, true},
      {"TLSRoute", kGw, "v1", "tlsroutes", true, true},
      {"TCPRoute", kGw, "v1", "tcproutes", true, true},
      {"UDPRoute", kGw, "v1", "udproutes", true, true},
      {"ReferenceGrant", kGw, "v1", "referencegrants", true, false},
      {"BackendTLSPolicy", kGw, "v1", "backendtlspolicies", true, true},
      {"XBackendTrafficPolicy", kGwX, "v1alpha1", "xbackendtrafficpolicies", true, true},
      {"Namespace", "", "v1", "namespaces", false, false},
      {"Service", "", "v1", "services", true, false},
      {"Secret", "", "v1", "secrets", true, false},
      {"ConfigMap", "", "v1", "configmaps", true, false},
      {"EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", true, false},
  };
  return kinds;
}

const KubeKind* findKubeKind(const std::string& kind) {
  for (const auto& k : kubeKinds())
    if (kind == k.kind) return &k;
  return nullptr;
}

// --- status planning ----------------------------------------------------------------------

bool StatusPlanner::ours(const api::Store& store, const api::Object& o,
                         const api::Json& desired) const {
  if (o.kind == "GatewayClass") return str(o.spec(), "controllerName") == controller_;
  if (o.kind == "Gateway") {
    const api::Object* gc = store.find("GatewayClass", "", str(o.spec(), "gatewayClassName"));
    return gc && str(gc->spec(), "controllerName") == controller_;
  }
  if (o.kind == "ListenerSet") {
    const api::Json& ref = o.spec().contains("parentRef") ? o.spec()["parentRef"] : api::Json();
    std::string ns = str(ref, "namespace");
    const api::Object* gw = store.find("Gateway", ns.empty() ? o.ns : ns, str(ref, "name"));
    return gw && ours(store, *gw, api::Json());
  }
  return mentionsController(desired, controller_) || mentionsController(statusOf(o), controller_);
}

std::vector<StatusPlanner::Write> StatusPlanner::plan(const api::Store& store,
                                                      const translate::TranslateResult& result,
                                                      const std::string& now) {
  std::vector<Write> writes;
  for (const auto& [key, desired] : result.statuses) {
    const KubeKind* kind = findKubeKind(key.kind);
    if (!kind || !kind->gatewayApi) continue;
    const api::Object* o = store.find(key.kind, key.ns, key.name);
    if (!o || !ours(store, *o, desired)) continue;
    const api::Json& server = statusOf(*o);
    auto last = lastWritten_.find(key);
    api::Json stamped = desired;
    stamp(stamped, last != lastWritten_.end() ? last->second : server, now);
    if (stamped == server) {
      lastWritten_[key] = stamped;
      continue;
    }
    if (last != lastWritten_.end() && last->second == stamped) continue;  // in flight
    lastWritten_[key] = stamped;
    // A merge patch merges objects: fields we no longer report are removed explicitly.
    api::Json patchStatus = stamped;
    if (server.is_object())
      for (const auto& [field, value] : server.items())
        if (!patchStatus.contains(field)) patchStatus[field] = nullptr;
    writes.push_back(
        {key, kind->statusPath(o->ns, o->name), api::Json{{"status", patchStatus}}.dump()});
  }
  return writes;
}

void StatusPlanner::observed(const api::ObjectKey& key, const api::Json* oldStatus,
                             const api::Json* newStatus) {
  auto last = lastWritten_.find(key);
  if (last == lastWritten_.end()) return;
  api::Json oldS = oldStatus ? *oldStatus : api::Json();
  api::Json newS = newStatus ? *newStatus : api::Json();
  if (oldS != newS && newS != last->second) lastWritten_.erase(last);
}

// --- source -------------------------------------------------------------------------------

KubeSource::KubeSource(asio::io_context& io, ClusterAccess access, OnChange onChange,
                       std::string controllerName)
    : io_(io),
      access_(std::move(access)),
      onChange_(std::move(onChange)),
      controllerName_(controllerName),
      planner_(controllerName),
      synced_(kubeKinds().size(), false),
      debounce_(io) {}

KubeSource::~KubeSource() {
  stop();
  alive_->store(false);
}

bool KubeSource::start(std::string* error) {
  {
    KubeClient probe(access_);
    HttpResult r = probe.get("/version", kSmallResponseBytes, std::chrono::seconds(15));
    if (!r.ok()) {
      std::string hint;
      if (r.status == 401)
        hint =
            " (the credentials were rejected: check the token or client "
            "certificate)";
      if (r.status == 403) hint = " (access denied: check RBAC for this identity)";
      *error = fmt::format("cannot use the Kubernetes API at {} ({}): {}{}", access_.server,
                           access_.origin, r.describe(), hint);
      return false;
    }
  }
  spdlog::info("watching the Kubernetes API at {} ({})", access_.server, access_.origin);
  for (size_t i = 0; i < kubeKinds().size(); ++i) threads_.emplace_back([this, i] { runKind(i); });
  writer_ = std::thread([this] { runWriter(); });
  return true;
}

void KubeSource::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_.store(true);
    for (auto* c : clients_) c->cancel();
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (writer_.joinable()) writer_.join();
  debounce_.cancel();
}

bool KubeSource::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_.load(); });
  return !stopping_.load();
}

// Registers a client for cancellation for the lifetime of a thread's loop.
class ScopedClient {
 public:
  ScopedClient(std::mutex& mu, std::vector<KubeClient*>& list, const std::atomic<bool>& stopping,
               const ClusterAccess& access)
      : mu_(mu), list_(list), client_(access) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping.load()) client_.cancel();
    list_.push_back(&client_);
  }
  ~ScopedClient() {
    std::lock_guard<std::mutex> lock(mu_);
    list_.erase(std::remove(list_.begin(), list_.end(), &client_), list_.end());
  }
  KubeClient& get() { return client_; }

 private:
  std::mutex& mu_;
  std::vector<KubeClient*>& list_;
  KubeClient client_;
};

void KubeSource::runKind(size_t index) {
  const KubeKind& kind = kubeKinds()[index];
  ScopedClient scoped(mu_, clients_, stopping_, access_);
  KubeClient& client = scoped.get();
  auto backoff = kKubeBackoffInitial;
  auto grow = [&] { backoff = std::min(backoff * 2, kKubeBackoffMax); };
  std::string rv;
  bool needList = true;
  bool reportedMissing = false;
  std::string lastError;
  while (!stopping_.load()) {
    if (needList) {
      bool missing = false, gone = false;
      std::string error;
      if (!listKind(index, client, &rv, &missing, &gone, &error)) {
        if (stopping_.load()) break;
        auto alive = alive_;
        asio::post(io_, [this, alive, index] {
          if (*alive) markSynced(index);
        });
        if (missing) {
          if (!reportedMissing)
            spdlog::warn(
                "{} is not served by the API server (is its CRD installed? {}); "
                "trying again every {} s",
                kind.kind, error, kKubeMissingKindRetry.count());
          reportedMissing = true;
          sleepFor(kKubeMissingKindRetry);
          continue;
        }
        if (gone) {
          // The pagination token expired: start over, without spinning on a broken server.
          sleepFor(backoff);
          grow();
          continue;
        }
        if (error != lastError) spdlog::error("listing {}: {}", kind.kind, error);
        lastError = error;
        sleepFor(backoff);
        grow();
        continue;
      }
      if (reportedMissing) spdlog::info("{} is now served by the API server", kind.kind);
      if (!lastError.empty()) spdlog::info("listing {} works again", kind.kind);
      reportedMissing = false;
      lastError.clear();
      needList = false;
      backoff = kKubeBackoffInitial;
    }
    std::string error;
    bool progressed = false;
    if (!watchKind(index, client, &rv, &error, &progressed)) {
      if (stopping_.load()) break;
      spdlog::info("watch of {} expired (410 Gone); listing again", kind.kind);
      needList = true;
      if (!progressed) {
        sleepFor(backoff);  // expired at once: do not relist in a tight loop
        grow();
      }
      continue;
    }
    if (stopping_.load()) break;
    if (!error.empty()) {
      spdlog::warn("watching {}: {}", kind.kind, error);
      if (progressed) backoff = kKubeBackoffInitial;
      sleepFor(backoff);
      grow();
    } else if (progressed) {
      backoff = kKubeBackoffInitial;
    } else {
      // A watch that ends at once without events: do not spin.
      sleepFor(backoff);
      grow();
    }
  }
}

bool KubeSource::listKind(size_t index, KubeClient& client, std::string* resourceVersion,
                          bool* missing, bool* gone, std::string* error) {
  const KubeKind& kind = kubeKinds()[index];
  std::vector<api::Json> items;
  std::string cont;
  do {
    std::string path = fmt::format("{}?limit={}", kind.collectionPath(), kKubeListPageSize);
    if (!cont.empty()) path += "&continue=" + urlEncode(cont);
    HttpResult r = client.get(path, kKubeMaxListPageBytes, kKubeRequestTimeout);
    if (!r.ok()) {
      *missing = r.error.empty() && r.status == 404;
      *gone = r.error.empty() && r.status == 410;
      *error = fmt::format("GET {}: {}", path, r.describe());
      return false;
    }
    KubeListPage page;
    std::string why;
    if (!parseKubeListPage(r.body, &page, &why)) {
      *error = fmt::format("GET {}: {}", path, why);
      return false;
    }
    *resourceVersion = std::move(page.resourceVersion);
    cont = std::move(page.continueToken);
    for (auto& item : page.items) items.push_back(std::move(item));
    if (items.size() > kKubeMaxObjectsPerKind) {
      *error = fmt::format("more than {} {} objects", kKubeMaxObjectsPerKind, kind.kind);
      return false;
    }
  } while (!cont.empty() && !stopping_.load());
  if (stopping_.load()) return false;
  auto alive = alive_;
  asio::post(io_, [this, alive, index, items = std::move(items)]() mutable {
    if (*alive) applyList(index, std::move(items));
  });
  return true;
}

bool KubeSource::watchKind(size_t index, KubeClient& client, std::string* resourceVersion,
                           std::string* error, bool* progressed) {
  const KubeKind& kind = kubeKinds()[index];
  std::string path =
      fmt::format("{}?watch=1&allowWatchBookmarks=true&timeoutSeconds={}&resourceVersion={}",
                  kind.collectionPath(), kKubeWatchTimeout.count(), urlEncode(*resourceVersion));
  bool expired = false;
  auto alive = alive_;
  auto onLine = [&](std::string_view line) {
    KubeWatchEvent ev = parseKubeWatchEvent(line);
    if (ev.kind == KubeWatchEvent::Kind::kExpired) {
      expired = true;
      return false;
    }
    if (ev.kind == KubeWatchEvent::Kind::kError && ev.type.empty()) {
      *error = std::move(ev.error);
      return false;
    }
    if (!ev.resourceVersion.empty()) *resourceVersion = ev.resourceVersion;
    *progressed = true;
    if (ev.kind == KubeWatchEvent::Kind::kError) {  // an unknown event type
      *error = std::move(ev.error);
      return false;
    }
    if (ev.kind == KubeWatchEvent::Kind::kBookmark) return true;
    std::string type = std::move(ev.type);
    api::Json object = std::move(ev.object);
    asio::post(io_, [this, alive, index, type, object = std::move(object)]() mutable {
      if (*alive) applyEvent(index, type, std::move(object));
    });
    return true;
  };
  HttpResult r = client.stream(path, kKubeMaxEventBytes, kKubeWatchIdle,
                               kKubeWatchIdle + std::chrono::seconds(30), onLine);
  if (expired || (r.error.empty() && r.status == 410)) return false;
  if (error->empty()) {
    if (!r.error.empty()) {
      *error = r.error;
    } else if (r.status < 200 || r.status >= 300) {
      *error = fmt::format("GET {}: {}", path, r.describe());
    }
  }
  return true;
}

// --- control thread -----------------------------------------------------------------------

bool KubeSource::toObject(size_t index, api::Json body, api::Object* out) {
  std::vector<api::Diagnostic> diagnostics;
  bool ok = kubeObjectFromJson(kubeKinds()[index], std::move(body), out, &diagnostics);
  for (const auto& d : diagnostics) {
    if (d.severity == api::Diagnostic::Severity::kError)
      spdlog::warn("{}", d.message);
    else
      spdlog::debug("{}", d.message);
  }
  return ok;
}

void KubeSource::putObject(api::Object o) {
  api::ObjectKey key = api::keyOf(o);
  const api::Object* prev = store_.find(key.kind, key.ns, key.name);
  if (prev && !o.validationErrors.empty() && prev->validationErrors.empty()) {
    // The API server accepted an update our validation rejects (a webhook would have refused
    // it): keep serving the last valid version, with the server's current status so status
    // writes stay based on what is stored there. The status says why (translator).
    api::RejectedChange rc{{}, o.generation, o.validationErrors};
    if (prev->rejectedChange != rc) {
      std::string why;
      for (const auto& e : rc.errors) why += (why.empty() ? "" : "; ") + e;
      spdlog::error(
          "{}: generation {} rejected ({}); the last valid version (generation {}) keeps serving",
          o.displayName(), o.generation, why, prev->generation);
    }
    api::Object kept = *prev;
    kept.rejectedChange = std::move(rc);
    if (auto st = o.body.find("status"); st != o.body.end())
      kept.body["status"] = *st;
    else
      kept.body.erase("status");
    o = std::move(kept);
  }
  planner_.observed(key, prev ? &statusOf(*prev) : nullptr, &statusOf(o));
  store_.put(std::move(o));
}

void KubeSource::eraseObject(const api::ObjectKey& key) {
  store_.erase(key);
  planner_.forget(key);
}

void KubeSource::applyList(size_t index, std::vector<api::Json> items) {
  const KubeKind& kind = kubeKinds()[index];
  std::set<api::ObjectKey> present;
  bool changed = false;
  for (auto& item : items) {
    api::Object o;
    if (!toObject(index, std::move(item), &o)) continue;
    present.insert(api::keyOf(o));
    const api::Object* prev = store_.find(o.kind, o.ns, o.name);
    if (prev && prev->body == o.body) continue;
    putObject(std::move(o));
    changed = true;
  }
  std::vector<api::ObjectKey> gone;
  for (const api::Object* o : store_.ofKind(kind.kind))
    if (!present.count(api::keyOf(*o))) gone.push_back(api::keyOf(*o));
  for (const auto& key : gone) eraseObject(key);
  changed = changed || !gone.empty();
  spdlog::debug("listed {} {} objects", present.size(), kind.kind);
  markSynced(index);
  if (changed) scheduleTranslate();
}

void KubeSource::applyEvent(size_t index, const std::string& type, api::Json object) {
  api::Object o;
  if (type == "DELETED") {
    const KubeKind& kind = kubeKinds()[index];
    const api::Json& md = object.contains("metadata") ? object["metadata"] : api::Json();
    std::string ns = kind.namespaced ? str(md, "namespace") : "";
    if (kind.namespaced && ns.empty()) ns = "default";
    eraseObject({kind.kind, ns, str(md, "name")});
    scheduleTranslate();
    return;
  }
  if (!toObject(index, std::move(object), &o)) return;
  const api::Object* prev = store_.find(o.kind, o.ns, o.name);
  if (prev && prev->body == o.body) return;
  putObject(std::move(o));
  scheduleTranslate();
}

void KubeSource::markSynced(size_t index) {
  if (synced_[index]) return;
  synced_[index] = true;
  if (!initialSyncDone_ && std::all_of(synced_.begin(), synced_.end(), [](bool b) { return b; })) {
    initialSyncDone_ = true;
    spdlog::info("initial sync from the Kubernetes API done ({} objects)", store_.size());
    translateNow();
  }
}

void KubeSource::scheduleTranslate() {
  if (!initialSyncDone_) return;  // the first translation waits for every kind
  auto now = std::chrono::steady_clock::now();
  if (!pendingSince_) pendingSince_ = now;
  auto due = std::min(now + net::kFileWatchDebounce, *pendingSince_ + net::kFileWatchMaxDelay);
  debounce_.expires_at(due);
  debounce_.async_wait([this](std::error_code ec) {
    if (ec) return;
    pendingSince_.reset();
    translateNow();
  });
}

void KubeSource::translateNow() {
  std::optional<translate::TranslateResult> result = onChange_(store_);
  if (!result) return;
  auto writes = planner_.plan(store_, *result, nowRfc3339());
  if (!writes.empty()) enqueueWrites(std::move(writes));
}

// --- status writer ------------------------------------------------------------------------

void KubeSource::enqueueWrites(std::vector<StatusPlanner::Write> writes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& w : writes) {
      auto key = w.key;
      writeQueue_[key] = std::move(w);  // a newer status replaces one not yet sent
    }
  }
  cv_.notify_all();
}

void KubeSource::runWriter() {
  ScopedClient scoped(mu_, clients_, stopping_, access_);
  KubeClient& client = scoped.get();
  std::map<api::ObjectKey, int> failures;
  while (true) {
    StatusPlanner::Write w;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_.load() || !writeQueue_.empty(); });
      if (stopping_.load()) return;
      auto it = writeQueue_.begin();
      w = std::move(it->second);
      writeQueue_.erase(it);
    }
    HttpResult r =
        client.patch(w.path, w.body, "application/merge-patch+json", kKubeRequestTimeout);
    if (stopping_.load()) return;
    if (r.ok()) {
      failures.erase(w.key);
      spdlog::debug("status of {} {}/{} written", w.key.kind, w.key.ns, w.key.name);
      continue;
    }
    bool retryable = !r.error.empty() || r.status == 409 || r.status == 429 || r.status >= 500;
    int& n = failures[w.key];
    ++n;
    if (r.status == 404) {
      failures.erase(w.key);  // the object is gone
      continue;
    }
    if (!retryable || n >= kStatusWriteAttempts) {
      spdlog::error("writing status of {} {}/{}: {}{}", w.key.kind, w.key.ns, w.key.name,
                    r.describe(), retryable ? " (giving up until the next change)" : "");
      failures.erase(w.key);
      auto alive = alive_;
      auto key = w.key;
      asio::post(io_, [this, alive, key] {
        if (*alive) planner_.forget(key);
      });
      continue;
    }
    spdlog::warn("writing status of {} {}/{}: {} (retrying)", w.key.kind, w.key.ns, w.key.name,
                 r.describe());
    auto delay = std::min(kKubeBackoffInitial * (1 << std::min(n, 6)), kKubeBackoffMax);
    if (!sleepFor(std::chrono::duration_cast<std::chrono::milliseconds>(delay))) return;
    std::lock_guard<std::mutex> lock(mu_);
    writeQueue_.try_emplace(w.key, std::move(w));  // unless a newer status arrived meanwhile
  }
}

}  // namespace archway::sources
