// A small blocking HTTP client for the Kubernetes API (libcurl), for background threads only:
// GET (lists), streaming GET (watches, one JSON event per line) and PATCH (status). Every
// call is bounded in size and time and can be cancelled through `stop`.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "sources/kube_config.h"

namespace archway::sources {

struct HttpResult {
  long status = 0;    // HTTP status; 0 when no response was received
  std::string body;   // response body (for watches: the unconsumed remainder, if any)
  std::string error;  // transport error or limit hit; empty on a complete exchange
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
  // "HTTP 401 Unauthorized: message" or the transport error, for logs.
  std::string describe() const;
};

class KubeClient {
 public:
  explicit KubeClient(ClusterAccess access);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  // Each method may be used from one thread at a time per KubeClient (one curl handle).
  HttpResult get(const std::string& path, size_t maxBytes, std::chrono::seconds timeout);
  // Streams newline-delimited JSON; `onLine` returns false to stop. `idle` bounds the silence
  // between bytes (bookmarks keep healthy watches talking), `total` the whole call.
  HttpResult stream(const std::string& path, size_t maxLineBytes, std::chrono::seconds idle,
                    std::chrono::seconds total,
                    const std::function<bool(std::string_view line)>& onLine);
  HttpResult patch(const std::string& path, const std::string& body, const std::string& contentType,
                   std::chrono::seconds timeout);

  // Makes every in-flight and future call return promptly (from any thread).
  void cancel() { cancelled_.store(true); }
  const ClusterAccess& access() const { return access_; }

 private:
  struct Transfer;
  HttpResult perform(Transfer& t, const std::string& method, const std::string& path,
                     const std::string* body, const std::string& contentType,
                     std::chrono::seconds idle, std::chrono::seconds total);

  ClusterAccess access_;
  void* curl_ = nullptr;  // CURL*
  std::atomic<bool> cancelled_{false};
};

}  // namespace archway::sources
