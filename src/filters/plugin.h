// ExtensionRef filters: plugins registered by (group, kind).
//
// An HTTPRoute filter `{type: ExtensionRef, extensionRef: {group, kind, name}}` names an
// object; the translator resolves it and puts its body in snapshot::ExtensionFilter. When
// a snapshot is compiled, the registry's factory for (group, kind) turns that body into a
// FilterPlugin instance, once; workers then call it for every request the rule serves.
// A reference that is unresolved, has no registered kind, or whose factory rejects the
// config makes the rule answer 500 (the spec forbids skipping it).
//
// Writing a plugin: implement FilterPlugin (const and thread-safe: one instance is shared
// by every worker; no blocking calls), then register a factory at start-up with
// PluginRegistry::instance().registerKind("example.com", "MyFilter", factory).
// Built in: archway.dev/StaticResponse (answers {statusCode, body, headers} from its spec)
// and archway.dev/HeaderStamp (sets request headers listed in spec.set).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http/message.h"
#include "snapshot/snapshot.h"

namespace archway::filters {

struct LocalResponse {
  int status = 200;
  std::string body;
  http::HeaderMap headers;
};

class FilterPlugin {
 public:
  virtual ~FilterPlugin() = default;
  // Request phase: edit the request, or return a response to answer it without proxying.
  virtual std::optional<LocalResponse> onRequest(http::RequestHead& request) const = 0;
  // Response phase (proxied and plugin-generated responses alike).
  virtual void onResponse(http::ResponseHead& response) const {}
};

// Builds a plugin from the referenced object; on bad config returns null and sets *error.
using PluginFactory = std::function<std::unique_ptr<FilterPlugin>(
    const snapshot::ExtensionFilter& ref, std::string* error)>;

class PluginRegistry {
 public:
  static PluginRegistry& instance();
  void registerKind(const std::string& group, const std::string& kind, PluginFactory factory);
  // Null when the kind is unknown or the config is rejected (reason in *error).
  std::unique_ptr<FilterPlugin> create(const snapshot::ExtensionFilter& ref,
                                       std::string* error) const;

 private:
  PluginRegistry();
  mutable std::mutex mu_;  // registration and compile time only; never on the request path
  std::map<std::pair<std::string, std::string>, PluginFactory> factories_;
};

}  // namespace archway::filters
