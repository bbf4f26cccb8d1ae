// Internal model shared by the generic converter and the providers.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api/object.h"
#include "convert/convert.h"

namespace archway::convert {

// How a rule behaves on the plain-HTTP listener of its host.
enum class HttpMode { kServe, kRedirect, kDrop };

// What a provider read from one Ingress (annotations, KongIngress overrides). The generic
// converter applies it to the rules of that Ingress only, never to other Ingresses that
// share the host.
struct IngressPolicy {
  std::string provider;  // kong | ingress-nginx | "" (generic)
  bool skip = false;     // the Ingress cannot be converted safely (reported by the provider)
  bool grpc = false;     // routes become GRPCRoutes
  std::vector<std::string> methods;                                       // ORed; empty = any
  std::vector<std::pair<std::string, std::vector<std::string>>> headers;  // ANDed names
  Json filters = Json::array();                                           // added to every rule
  // Path rewrite: ReplacePrefixMatch (prefix paths) or ReplaceFullPath.
  std::optional<std::string> replacePrefix;
  std::optional<std::string> replaceFull;
  std::optional<std::string> hostRewrite;
  std::optional<std::string> backendTimeout;  // Gateway API duration
  std::optional<std::string> requestTimeout;
  std::optional<int> retryAttempts;
  std::optional<Json> redirectAll;  // RequestRedirect filter replacing the backends
  HttpMode httpMode = HttpMode::kServe;
  int redirectCode = 0;
  bool serveHttps = true;
  bool redirectNeedsTls = true;    // nginx ssl-redirect applies only to hosts with TLS
  bool useRegex = false;           // nginx use-regex: every path is a regex
  bool rewriteIdiom = false;       // nginx "/foo(/|$)(.*)" with rewrite-target "/$2"
  bool fromToWww = false;          // nginx from-to-www-redirect
  std::string regexPrefix = "/~";  // kong
  std::vector<std::string> hostAliases;
  // ingress-nginx canary.
  bool canary = false;
  std::optional<int> canaryWeight;
  int canaryWeightTotal = 100;
  std::optional<std::string> canaryHeader, canaryHeaderValue, canaryHeaderPattern, canaryCookie;
  std::optional<std::string> appRoot;
  bool hostToService = false;   // kong preserve-host: false
  bool sslPassthrough = false;  // nginx ssl-passthrough: TLS on 443 relayed by SNI, untouched
};

class Context {
 public:
  explicit Context(const ConvertConfig& config) : config_(config) {}

  void report(const api::Object& o, std::string field, Outcome outcome, std::string message) {
    report_.push_back({o.displayName(), std::move(field), outcome, std::move(message)});
  }
  void report(std::string object, std::string field, Outcome outcome, std::string message) {
    report_.push_back({std::move(object), std::move(field), outcome, std::move(message)});
  }

  const api::Object* find(const std::string& kind, const std::string& ns,
                          const std::string& name) const {
    auto it = index_.find({kind, ns, name});
    return it == index_.end() ? nullptr : it->second;
  }
  std::vector<const api::Object*> ofKind(const std::string& kind) const {
    std::vector<const api::Object*> out;
    for (const auto& [key, o] : index_)
      if (key.kind == kind) out.push_back(o);
    return out;
  }
  void add(const api::Object* o) { index_[api::keyOf(*o)] = o; }
  bool providerEnabled(const std::string& p) const {
    if (config_.providers.empty()) return true;
    for (const auto& q : config_.providers)
      if (q == p) return true;
    return false;
  }

  // True the first time a key is seen (reports about shared objects are given once).
  bool first(const std::string& key) { return once_.insert(key).second; }
  const ConvertConfig& config() const { return config_; }
  std::vector<ReportEntry>& entries() { return report_; }

 private:
  const ConvertConfig& config_;
  std::map<api::ObjectKey, const api::Object*> index_;
  std::vector<ReportEntry> report_;
  std::set<std::string> once_;
};

// Shared output under construction: Gateways with their listeners and every route.
struct ListenerBuild {
  std::string name, hostname, protocol;
  int port = 0;
  Json tls;  // null when none
};

struct GatewayBuild {
  std::string ns, name, className;
  std::vector<ListenerBuild> listeners;
};

class Output {
 public:
  GatewayBuild& gateway(const std::string& ns, const std::string& name,
                        const std::string& className);
  // Adds a listener unless one with the same name exists; returns false and sets
  // `conflict` when the name exists with different settings.
  bool addListener(GatewayBuild& gw, const ListenerBuild& l, std::string* conflict);
  // Reserves a unique object name of a kind in a namespace.
  std::string uniqueName(const std::string& kind, const std::string& ns, std::string name);
  void addObject(Json object) { objects_.push_back(std::move(object)); }

  std::vector<Json> finish(const std::string& classOverride);

  std::map<std::pair<std::string, std::string>, GatewayBuild> gateways;

 private:
  std::set<std::tuple<std::string, std::string, std::string>> names_;
  std::vector<Json> objects_;
};

// Providers.
IngressPolicy kongIngressPolicy(const api::Object& ing, Context& ctx);
IngressPolicy nginxIngressPolicy(const api::Object& ing, Context& ctx);
// Kong Service-level settings applied to a rule whose backends are that Service.
void kongDecorateRule(Json& rule, const api::Object& ingress, const api::Object* service,
                      const std::string& serviceField, Context& ctx);
void kongConvertL4(Context& ctx, Output& out);
void kongKeepPlugins(Context& ctx, Output& out);

// Helpers.
std::string annotation(const api::Object& o, const std::string& key);
bool hasAnnotation(const api::Object& o, const std::string& key);
std::vector<std::string> splitList(const std::string& s, char sep = ',');
std::string trim(const std::string& s);
std::string lower(std::string s);
std::string upper(std::string s);
std::optional<int> parseInt(const std::string& s);
std::string ingressClassOf(const api::Object& o);
Json parentRef(const std::string& gateway, const std::string& section = "");
Json makeMeta(const std::string& name, const std::string& ns);
inline std::string annField(const std::string& key) { return "metadata.annotations." + key; }
// Milliseconds to a Gateway API duration ("1500ms", "2s").
std::string msDuration(long long ms);
// nginx-style seconds ("60", "60s") to a Gateway API duration; nullopt when invalid.
std::optional<std::string> secondsDuration(const std::string& v);

}  // namespace archway::convert
