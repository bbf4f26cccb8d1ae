#include "sources/kube_client.h"

#include <curl/curl.h>

#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace archway::sources {

namespace {

// Connecting (TCP + TLS) to the API server. client-go's default dialer uses 30 s.
constexpr long kConnectTimeoutSeconds = 10;

std::once_flag curlInit;

const char* reasonPhrase(long status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "";
  }
}

}  // namespace

std::string HttpResult::describe() const {
  if (!error.empty()) return error;
  std::string message;
  try {
    auto j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("message") && j["message"].is_string())
      message = j["message"].get<std::string>();
  } catch (const std::exception&) {
    message = body.substr(0, 200);
  }
  std::string out = fmt::format("HTTP {} {}", status, reasonPhrase(status));
  if (!message.empty()) out += ": " + message;
  return out;
}

struct KubeClient::Transfer {
  // Whole-body mode.
  std::string body;
  size_t maxBytes = 0;
  // Line mode (watch streams).
  const std::function<bool(std::string_view)>* onLine = nullptr;
  std::string pending;
  bool stoppedByCaller = false;
  std::string limitError;
  const std::atomic<bool>* cancelled = nullptr;
  CURL* handle = nullptr;

  size_t write(const char* data, size_t n) {
    if (onLine && body.empty() && pending.empty()) {
      // An error answer (401, 403, 410...) is one Status document, not a stream of events.
      long status = 0;
      curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
      if (status < 200 || status >= 300) onLine = nullptr;
    }
    if (!onLine) {
      if (body.size() + n > maxBytes) {
        limitError = fmt::format("response larger than {} bytes", maxBytes);
        return 0;
      }
      body.append(data, n);
      return n;
    }
    pending.append(data, n);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && !(*onLine)(line)) {
        stoppedByCaller = true;
        return 0;
      }
    }
    pending.erase(0, start);
    if (pending.size() > maxBytes) {
      limitError = fmt::format("watch event larger than {} bytes", maxBytes);
      return 0;
    }
    return n;
  }
};

KubeClient::KubeClient(ClusterAccess access) : access_(std::move(access)) {
  std::call_once(curlInit, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
}

KubeClient::~KubeClient() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResult KubeClient::perform(Transfer& t, const std::string& method, const std::string& path,
                               const std::string* body, const std::string& contentType,
                               std::chrono::seconds idle, std::chrono::seconds total) {
  HttpResult r;
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) {
    r.error = "cannot initialise libcurl";
    return r;
  }
  if (cancelled_.load()) {
    r.error = "cancelled";
    return r;
  }
  std::string token, err;
  if (!access_.currentToken(&token, &err)) {
    r.error = "bearer token: " + err;
    return r;
  }
  t.cancelled = &cancelled_;
  t.handle = c;
  curl_easy_reset(c);
  char errbuf[CURL_ERROR_SIZE] = {};
  std::string url = access_.server + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(total.count()));
  // A stalled connection (no byte for `idle`) is dropped.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(idle.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "archway");
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
  if (access_.insecureSkipTlsVerify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_blob ca{const_cast<char*>(access_.caPem.data()), access_.caPem.size(), CURL_BLOB_COPY};
  if (!access_.caPem.empty()) curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  curl_blob cert{const_cast<char*>(access_.clientCertPem.data()), access_.clientCertPem.size(),
                 CURL_BLOB_COPY};
  curl_blob key{const_cast<char*>(access_.clientKeyPem.data()), access_.clientKeyPem.size(),
                CURL_BLOB_COPY};
  if (!access_.clientCertPem.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) headers = curl_slist_append(headers, auth.c_str());
  std::string ct = "Content-Type: " + contentType;
  if (body) {
    headers = curl_slist_append(headers, ct.c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* data, size_t, size_t n, void* user) -> size_t {
        return static_cast<Transfer*>(user)->write(data, n);
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(
      c, CURLOPT_XFERINFOFUNCTION,
      +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
        return static_cast<Transfer*>(user)->cancelled->load() ? 1 : 0;
      });
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);

  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  r.body = t.onLine ? std::move(t.pending) : std::move(t.body);
  if (r.body.empty() && !t.pending.empty()) r.body = std::move(t.pending);
  if (rc != CURLE_OK && !t.stoppedByCaller) {
    if (!t.limitError.empty()) {
      r.error = t.limitError;
    } else if (cancelled_.load()) {
      r.error = "cancelled";
    } else {
      r.error = fmt::format("{} {}: {}", method, access_.server,
                            errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
  }
  return r;
}

HttpResult KubeClient::get(const std::string& path, size_t maxBytes, std::chrono::seconds timeout) {
  Transfer t;
  t.maxBytes = maxBytes;
  return perform(t, "GET", path, nullptr, "", timeout, timeout);
}

HttpResult KubeClient::stream(const std::string& path, size_t maxLineBytes,
                              std::chrono::seconds idle, std::chrono::seconds total,
                              const std::function<bool(std::string_view)>& onLine) {
  Transfer t;
  t.maxBytes = maxLineBytes;
  // Error responses (401, 410 as a status body) arrive as one JSON document: keep the tail.
  t.onLine = &onLine;
  return perform(t, "GET", path, nullptr, "", idle, total);
}

HttpResult KubeClient::patch(const std::string& path, const std::string& body,
                             const std::string& contentType, std::chrono::seconds timeout) {
  Transfer t;
  t.maxBytes = 1u << 20;
  return perform(t, "PATCH", path, &body, contentType, timeout, timeout);
}

}  // namespace archway::sources
