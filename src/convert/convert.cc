// The generic Ingress → Gateway API rules (one Gateway per namespace and class, one route
// per host, listeners per host), with each Ingress's provider policy applied to that
// Ingress's rules only.
#include "convert/convert.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <set>

#include <re2/re2.h>

#include "convert/model.h"

namespace archway::convert {
namespace {

constexpr int kHttpPort = 80;
constexpr int kHttpsPort = 443;
// Gateway API schema limits (HTTPRoute v1): rules per route, matches per rule.
constexpr size_t kMaxRulesPerRoute = 16;
constexpr size_t kMaxMatchesPerRule = 64;
constexpr size_t kMaxListeners = 64;

const std::set<std::string> kNamespacedKinds = {
    "Ingress",    "Service",    "EndpointSlice", "Endpoints",
    "TCPIngress", "UDPIngress", "KongIngress",   "KongPlugin",
    "Secret",     "ConfigMap",  "KongConsumer",  "KongUpstreamPolicy"};

struct Canary {
  const api::Object* ingress = nullptr;
  const IngressPolicy* policy = nullptr;
  Json backends;
};

struct RuleEntry {
  const api::Object* ingress = nullptr;
  const IngressPolicy* policy = nullptr;
  std::string pathKey;
  Json pathMatch;  // {"path": {...}} or {"method": {...}} for gRPC; null = no match
  bool pathIsPrefix = false;
  Json backendRefs = Json::array();
  std::string field;  // where it came from, for the report
  std::vector<Canary> canaries;
};

struct RouteGroup {
  std::string ns, gateway, host, listenerHost;
  bool grpc = false;
  const api::Object* firstIngress = nullptr;
  std::vector<RuleEntry> rules;
  std::vector<std::string> secrets;
  bool tlsWithoutSecret = false;
  bool isDefaultBackend = false;
};

using GroupKey = std::tuple<std::string, std::string, std::string, bool, bool>;

bool hostCovered(const std::string& tlsHost, const std::string& host) {
  if (tlsHost == host) return true;
  if (tlsHost.rfind("*.", 0) == 0 && !host.empty()) {
    auto dot = host.find('.');
    return dot != std::string::npos && host.substr(dot) == tlsHost.substr(1);
  }
  return false;
}

class Converter {
 public:
  Converter(const std::vector<api::Object>& input, const ConvertConfig& config)
      : ctx_(config), config_(config) {
    for (const auto& o : input) {
      api::Object copy = o;
      if (copy.ns.empty() && kNamespacedKinds.count(copy.kind))
        copy.ns = config.ns.empty() ? "default" : config.ns;
      if (!config.ns.empty() && !copy.ns.empty() && copy.ns != config.ns) continue;
      objects_.push_back(std::move(copy));
    }
    for (const auto& o : objects_) ctx_.add(&o);
  }

  ConvertResult run() {
    std::vector<const api::Object*> ingresses;
    for (const auto* o : ctx_.ofKind("Ingress")) ingresses.push_back(o);
    // Canary Ingresses join the rules of their primary, so they come last.
    policies_.reserve(ingresses.size());
    std::vector<std::pair<const api::Object*, size_t>> ordered;
    for (const auto* ing : ingresses) {
      auto pol = policyFor(*ing);
      if (!pol) continue;
      policies_.push_back(std::move(*pol));
      ordered.emplace_back(ing, policies_.size() - 1);
    }
    std::stable_partition(ordered.begin(), ordered.end(),
                          [&](const auto& p) { return !policies_[p.second].canary; });
    for (const auto& [ing, idx] : ordered) addIngress(*ing, policies_[idx]);
    emitRoutes();
    if (ctx_.providerEnabled(kProviderKong)) {
      kongConvertL4(ctx_, out_);
      kongKeepPlugins(ctx_, out_);
    }
    reportIgnoredKinds();
    ConvertResult r;
    r.resources = out_.finish(config_.gatewayClass);
    r.report = std::move(ctx_.entries());
    return r;
  }

 private:
  std::string providerOf(const api::Object& ing, const std::string& cls) {
    if (const auto* ic = ctx_.find("IngressClass", "", cls)) {
      std::string controller = ic->spec().value("controller", "");
      if (controller.find("konghq.com") != std::string::npos) return kProviderKong;
      if (controller.find("ingress-nginx") != std::string::npos) return kProviderIngressNginx;
    }
    std::string l = lower(cls);
    if (l.find("kong") != std::string::npos) return kProviderKong;
    if (l.find("nginx") != std::string::npos) return kProviderIngressNginx;
    bool kong = false, nginx = false;
    const Json& a = ing.metadata().value("annotations", Json::object());
    if (a.is_object())
      for (auto it = a.begin(); it != a.end(); ++it) {
        if (it.key().rfind("konghq.com/", 0) == 0) kong = true;
        if (it.key().rfind("nginx.ingress.kubernetes.io/", 0) == 0) nginx = true;
      }
    if (kong && !nginx) return kProviderKong;
    if (nginx && !kong) return kProviderIngressNginx;
    const auto& ps = config_.providers;
    if (ps.size() == 1) return ps[0];
    return "";
  }

  std::string defaultClass(const std::string& provider) {
    for (const auto* ic : ctx_.ofKind("IngressClass"))
      if (annotation(*ic, "ingressclass.kubernetes.io/is-default-class") == "true") return ic->name;
    if (provider == kProviderKong) return "kong";
    if (provider == kProviderIngressNginx) return "nginx";
    return "default";
  }

  std::optional<IngressPolicy> policyFor(const api::Object& ing) {
    std::string cls = ingressClassOf(ing);
    std::string provider = providerOf(ing, cls);
    if (!provider.empty() && !ctx_.providerEnabled(provider)) {
      ctx_.report(ing, "spec.ingressClassName", Outcome::kNote,
                  "not converted: its class '" + cls + "' belongs to provider " + provider +
                      ", which --providers does not select");
      return std::nullopt;
    }
    IngressPolicy pol;
    if (provider == kProviderKong) {
      pol = kongIngressPolicy(ing, ctx_);
    } else if (provider == kProviderIngressNginx) {
      pol = nginxIngressPolicy(ing, ctx_);
    } else {
      const Json& a = ing.metadata().value("annotations", Json::object());
      if (a.is_object())
        for (auto it = a.begin(); it != a.end(); ++it)
          if (it.key() != "kubernetes.io/ingress.class")
            ctx_.report(ing, annField(it.key()), Outcome::kUnconvertible,
                        "no provider recognises this Ingress's class '" + cls +
                            "'; select one with --providers to convert vendor annotations");
    }
    pol.provider = provider;
    if (pol.skip) return std::nullopt;
    return pol;
  }

  std::string gatewayNameFor(const api::Object& ing, const IngressPolicy& pol) {
    std::string cls = ingressClassOf(ing);
    if (cls.empty()) {
      cls = defaultClass(pol.provider);
      ctx_.report(ing, "spec.ingressClassName", Outcome::kApproximated,
                  "no ingress class: attached to Gateway '" + cls +
                      "' (the default class of the provider or the input's default IngressClass)");
    }
    return cls;
  }

  // Service port: number, or name resolved through the Service.
  std::optional<Json> serviceBackend(const api::Object& ing, const Json& backend,
                                     const std::string& field) {
    if (backend.contains("resource")) {
      const Json& r = backend["resource"];
      Json ref = {{"group", r.value("apiGroup", "")},
                  {"kind", r.value("kind", "")},
                  {"name", r.value("name", "")}};
      ctx_.report(
          ing, field + ".resource", Outcome::kConverted,
          "resource backend → backendRef " + r.value("kind", "") + "/" + r.value("name", ""));
      return ref;
    }
    const Json& svc = backend.value("service", Json::object());
    std::string name = svc.value("name", "");
    const Json& port = svc.value("port", Json::object());
    if (name.empty()) {
      ctx_.report(ing, field, Outcome::kUnconvertible, "backend has no service name");
      return std::nullopt;
    }
    Json ref = {{"name", name}};
    if (port.contains("number") && port["number"].is_number_integer()) {
      ref["port"] = port["number"];
      return ref;
    }
    std::string portName = port.value("name", "");
    const api::Object* s = ctx_.find("Service", ing.ns, name);
    if (s) {
      for (const auto& p : s->spec().value("ports", Json::array()))
        if (p.value("name", "") == portName && p.contains("port")) {
          ref["port"] = p["port"];
          ctx_.report(ing, field + ".service.port.name", Outcome::kConverted,
                      "named port '" + portName + "' resolved to " + p["port"].dump() +
                          " through Service " + ing.ns + "/" + name);
          return ref;
        }
    }
    ctx_.report(ing, field + ".service.port", Outcome::kUnconvertible,
                "cannot find port with name " + portName + " in service " + name +
                    " (include the Service in the input); the path is not converted");
    return std::nullopt;
  }

  // Path match from an Ingress path; nullopt when it cannot be converted.
  std::optional<Json> pathMatch(const api::Object& ing, const IngressPolicy& pol, const Json& p,
                                const std::string& field, bool* isPrefix) {
    std::string path = p.value("path", "");
    std::string type = p.value("pathType", "");
    *isPrefix = false;
    auto regex = [&](std::string v) -> std::optional<Json> {
      // Archway matches with RE2; a pattern it cannot compile would make the route invalid.
      RE2 re(v, RE2::Quiet);
      if (!re.ok()) {
        ctx_.report(ing, field + ".path", Outcome::kUnconvertible,
                    "regular expression '" + v + "' is not valid RE2 syntax (" + re.error() +
                        "); the path is not converted");
        return std::nullopt;
      }
      return Json{{"path", {{"type", "RegularExpression"}, {"value", v}}}};
    };
    if (type.empty()) {
      ctx_.report(ing, field + ".pathType", Outcome::kApproximated,
                  "pathType missing (required by networking.k8s.io/v1): treated as "
                  "ImplementationSpecific");
      type = "ImplementationSpecific";
    }
    if (path.empty()) path = "/";
    if (pol.rewriteIdiom) {
      for (const char* suffix : {"(/|$)(.*)", "(/|$)(.*)$", "/(.*)", "(.*)"})
        if (path.size() > std::string(suffix).size() && path.ends_with(suffix)) {
          path.resize(path.size() - std::string(suffix).size());
          break;
        }
      *isPrefix = true;
      return Json{{"path", {{"type", "PathPrefix"}, {"value", path}}}};
    }
    if (pol.useRegex) {
      ctx_.report(ing, field + ".path", Outcome::kApproximated,
                  "use-regex: '" + path +
                      "' → RegularExpression (nginx matches it as a "
                      "case-insensitive prefix regex; Gateway API regex dialects vary)");
      return regex(path + ".*");
    }
    if (type == "Exact") return Json{{"path", {{"type", "Exact"}, {"value", path}}}};
    if (type == "Prefix") {
      *isPrefix = true;
      return Json{{"path", {{"type", "PathPrefix"}, {"value", path}}}};
    }
    if (type != "ImplementationSpecific") {
      ctx_.report(ing, field + ".pathType", Outcome::kUnconvertible,
                  "unknown pathType '" + type + "'; the path is not converted");
      return std::nullopt;
    }
    if (pol.provider == kProviderKong && path.rfind(pol.regexPrefix, 0) == 0) {
      std::string re = path.substr(pol.regexPrefix.size());
      if (re.empty() || re[0] != '/') re = "/" + re;
      auto m = regex(re);
      if (m)
        ctx_.report(ing, field + ".path", Outcome::kConverted,
                    "Kong regex path '" + path + "' → RegularExpression '" + re + "'");
      return m;
    }
    *isPrefix = true;
    if (pol.provider == kProviderKong)
      ctx_.report(ing, field + ".pathType", Outcome::kApproximated,
                  "ImplementationSpecific '" + path +
                      "' → PathPrefix (Kong matches a character prefix, Gateway API whole "
                      "path segments: '" +
                      path + "x' no longer matches)");
    else
      ctx_.report(ing, field + ".pathType", Outcome::kConverted,
                  "ImplementationSpecific '" + path + "' → PathPrefix");
    return Json{{"path", {{"type", "PathPrefix"}, {"value", path}}}};
  }

  static std::optional<Json> grpcMatch(const std::string& path) {
    // "/service/method", "/service/" or "" (any).
    if (path.empty() || path == "/") return Json(nullptr);
    std::string p = path[0] == '/' ? path.substr(1) : path;
    auto slash = p.find('/');
    Json m = Json::object();
    if (slash == std::string::npos) {
      m["service"] = p;
    } else {
      m["service"] = p.substr(0, slash);
      std::string method = p.substr(slash + 1);
      if (!method.empty()) m["method"] = method;
    }
    return Json{{"method", m}};
  }

  RouteGroup& group(const std::string& ns, const std::string& gw, const std::string& host,
                    bool grpc, bool isDefault, const api::Object& ing) {
    GroupKey key{ns, gw, host, grpc, isDefault};
    auto it = groups_.find(key);
    if (it != groups_.end()) return it->second;
    RouteGroup g;
    g.ns = ns;
    g.gateway = gw;
    g.host = host;
    g.grpc = grpc;
    g.isDefaultBackend = isDefault;
    g.firstIngress = &ing;
    return groups_.emplace(key, std::move(g)).first->second;
  }

  void addTls(RouteGroup& g, const api::Object& ing) {
    for (const auto& t : ing.spec().value("tls", Json::array())) {
      const Json& hosts = t.value("hosts", Json::array());
      bool covers = hosts.empty();
      for (const auto& h : hosts)
        if (h.is_string() && hostCovered(h.get<std::string>(), g.host)) covers = true;
      if (g.host.empty() && hosts.size() == 1) covers = true;
      if (!covers) continue;
      std::string secret = t.value("secretName", "");
      if (secret.empty()) {
        g.tlsWithoutSecret = true;
        continue;
      }
      if (std::find(g.secrets.begin(), g.secrets.end(), secret) == g.secrets.end())
        g.secrets.push_back(secret);
    }
    if (g.host.empty() && g.listenerHost.empty()) {
      const Json& tls = ing.spec().value("tls", Json::array());
      if (tls.size() == 1 && tls[0].value("hosts", Json::array()).size() == 1)
        g.listenerHost = tls[0]["hosts"][0].get<std::string>();
    }
  }

  void addIngress(const api::Object& ing, const IngressPolicy& pol) {
    std::string gw = gatewayNameFor(ing, pol);
    const Json& spec = ing.spec();
    const Json& rules = spec.value("rules", Json::array());
    std::set<std::string> tlsSeen;
    for (size_t i = 0; i < rules.size(); ++i) {
      const Json& rule = rules[i];
      std::string host = rule.value("host", "");
      std::string rfield = "spec.rules[" + std::to_string(i) + "]";
      std::vector<std::string> hosts = {host};
      if (!host.empty())
        for (const auto& a : pol.hostAliases) hosts.push_back(a);
      const Json& paths = rule.value("http", Json::object()).value("paths", Json::array());
      if (paths.empty()) {
        ctx_.report(ing, rfield, Outcome::kNote, "rule has no http paths; nothing to convert");
        continue;
      }
      for (const auto& h : hosts) {
        RouteGroup& g = group(ing.ns, gw, h, pol.grpc, false, ing);
        if (g.listenerHost.empty()) g.listenerHost = h;
        addTls(g, ing);
        for (size_t j = 0; j < paths.size(); ++j) {
          std::string pfield = rfield + ".http.paths[" + std::to_string(j) + "]";
          addPath(g, ing, pol, paths[j], pfield);
        }
      }
      ctx_.report(ing, rfield, Outcome::kConverted,
                  std::string(pol.grpc ? "GRPCRoute" : "HTTPRoute") + " for host '" +
                      (host.empty() ? "*" : host) + "' on Gateway " + ing.ns + "/" + gw);
    }
    if (pol.appRoot) addAppRoot(ing, pol);
    if (pol.fromToWww) addWwwRedirects(ing, pol, gw);
    if (spec.contains("tls"))
      ctx_.report(ing, "spec.tls", Outcome::kConverted,
                  "HTTPS listeners (port 443, Terminate) with the secrets as certificateRefs, "
                  "one per host that has rules");
    if (spec.contains("defaultBackend")) addDefaultBackend(ing, pol, gw);
  }

  // ingress-nginx app-root: "/" redirects to the application root on each host.
  void addAppRoot(const api::Object& ing, const IngressPolicy& pol) {
    IngressPolicy& rp = extraPolicies_.emplace_back(pol);
    rp.redirectAll =
        Json{{"path", {{"type", "ReplaceFullPath"}, {"replaceFullPath", *pol.appRoot}}},
             {"statusCode", 302}};
    rp.methods.clear();
    rp.headers.clear();
    for (auto& [key, g] : groups_) {
      bool mine = false;
      for (const auto& r : g.rules) mine = mine || r.ingress == &ing;
      if (!mine || std::get<4>(key)) continue;
      RuleEntry e;
      e.ingress = &ing;
      e.policy = &rp;
      e.field = annField("nginx.ingress.kubernetes.io/app-root");
      e.pathMatch = Json{{"path", {{"type", "Exact"}, {"value", "/"}}}};
      e.pathKey = "Exact:/";
      bool exists = false;
      for (const auto& r : g.rules) exists = exists || r.pathKey == e.pathKey;
      if (!exists) g.rules.insert(g.rules.begin(), e);
    }
  }

  // ingress-nginx from-to-www-redirect: "www.h" redirects to "h" and the reverse, unless
  // the twin host has rules of its own.
  void addWwwRedirects(const api::Object& ing, const IngressPolicy& pol, const std::string& gw) {
    std::set<std::string> hosts;
    for (const auto* o : ctx_.ofKind("Ingress"))
      for (const auto& r : o->spec().value("rules", Json::array()))
        hosts.insert(r.value("host", ""));
    for (const auto& r : ing.spec().value("rules", Json::array())) {
      std::string h = r.value("host", "");
      if (h.empty() || h[0] == '*') continue;
      std::string twin = h.rfind("www.", 0) == 0 ? h.substr(4) : "www." + h;
      if (hosts.count(twin)) {
        ctx_.report(ing, annField("nginx.ingress.kubernetes.io/from-to-www-redirect"),
                    Outcome::kNote, "'" + twin + "' has rules of its own; no redirect for it");
        continue;
      }
      IngressPolicy& rp = extraPolicies_.emplace_back(pol);
      rp.redirectAll = Json{{"hostname", h}, {"statusCode", 308}};
      rp.methods.clear();
      rp.headers.clear();
      rp.httpMode = HttpMode::kServe;
      RouteGroup& g = group(ing.ns, gw, twin, false, false, ing);
      if (g.listenerHost.empty()) g.listenerHost = twin;
      addTls(g, ing);
      RuleEntry e;
      e.ingress = &ing;
      e.policy = &rp;
      e.field = annField("nginx.ingress.kubernetes.io/from-to-www-redirect");
      e.pathKey = "www-redirect";
      e.pathMatch = nullptr;
      g.rules.push_back(e);
      hosts.insert(twin);
    }
  }

  void addPath(RouteGroup& g, const api::Object& ing, const IngressPolicy& pol, const Json& p,
               const std::string& field) {
    auto backend = serviceBackend(ing, p.value("backend", Json::object()), field + ".backend");
    if (!backend) return;
    RuleEntry e;
    e.ingress = &ing;
    e.policy = &pol;
    e.field = field;
    e.backendRefs.push_back(*backend);
    std::string path = p.value("path", "");
    if (g.grpc) {
      auto m = grpcMatch(path);
      e.pathMatch = *m;
      e.pathKey = "grpc:" + path;
    } else {
      bool prefix = false;
      auto m = pathMatch(ing, pol, p, field, &prefix);
      if (!m) return;
      e.pathMatch = *m;
      e.pathIsPrefix = prefix;
      e.pathKey =
          (*m)["path"]["type"].get<std::string>() + ":" + (*m)["path"]["value"].get<std::string>();
    }
    if (pol.canary) {
      addCanary(g, ing, pol, e);
      return;
    }
    for (auto& other : g.rules) {
      if (other.pathKey != e.pathKey) continue;
      if (other.ingress == &ing) {
        // Same path twice in one Ingress: upstream merges the backends into one rule.
        for (const auto& b : e.backendRefs) other.backendRefs.push_back(b);
        ctx_.report(ing, field, Outcome::kApproximated,
                    "path repeated in the same Ingress: backends share one rule "
                    "(traffic is split between them)");
        return;
      }
      ctx_.report(ing, field, Outcome::kUnconvertible,
                  "host '" + g.host + "' path " + e.pathKey + " is already defined by " +
                      other.ingress->displayName() +
                      " (converted first); the controller serves only one of them");
      return;
    }
    g.rules.push_back(std::move(e));
  }

  void addCanary(RouteGroup& g, const api::Object& ing, const IngressPolicy& pol, RuleEntry& e) {
    for (auto& other : g.rules) {
      if (other.pathKey != e.pathKey || other.policy->canary) continue;
      other.canaries.push_back({&ing, &pol, e.backendRefs});
      return;
    }
    ctx_.report(ing, e.field, Outcome::kUnconvertible,
                "canary Ingress has no primary Ingress with host '" + g.host + "' and path " +
                    e.pathKey + " in the input; ingress-nginx ignores it too");
  }

  void addDefaultBackend(const api::Object& ing, const IngressPolicy& pol, const std::string& gw) {
    auto backend = serviceBackend(ing, ing.spec()["defaultBackend"], "spec.defaultBackend");
    if (!backend) return;
    RouteGroup& g = group(ing.ns, gw, "", pol.grpc, true, ing);
    RuleEntry e;
    e.ingress = &ing;
    e.policy = &pol;
    e.field = "spec.defaultBackend";
    e.pathKey = "default";
    e.pathMatch = nullptr;
    e.backendRefs.push_back(*backend);
    g.rules.push_back(e);
    // The Ingress's own hosts fall back to the default backend for unmatched paths too.
    int added = 0;
    for (auto& [key, hg] : groups_) {
      if (std::get<4>(key) || hg.ns != ing.ns || hg.gateway != gw || hg.grpc) continue;
      bool mine = false, hasRoot = false;
      for (const auto& r : hg.rules) {
        if (r.ingress == &ing) mine = true;
        if (r.pathKey == "PathPrefix:/") hasRoot = true;
      }
      if (!mine || hasRoot) continue;
      RuleEntry f = e;
      f.pathMatch = Json{{"path", {{"type", "PathPrefix"}, {"value", "/"}}}};
      f.pathIsPrefix = true;
      f.pathKey = "PathPrefix:/";
      hg.rules.push_back(f);
      ++added;
    }
    ctx_.report(ing, "spec.defaultBackend", Outcome::kConverted,
                "catch-all HTTPRoute " + ing.name +
                    "-default-backend on a hostname-less "
                    "listener" +
                    (added ? ", plus a PathPrefix / rule on this Ingress's hosts" : ""));
  }

  // Matches of one rule: the path match × methods × header combinations.
  Json expandMatches(const RuleEntry& e, const Json& extraHeader) {
    const IngressPolicy& pol = *e.policy;
    Json base = e.pathMatch.is_null() ? Json::object() : e.pathMatch;
    std::vector<Json> out;
    std::vector<std::string> methods = pol.methods;
    if (methods.empty() || e.pathMatch.is_null() == false) {
    }
    if (methods.empty()) methods.push_back("");
    auto combos = headerCombinations(pol.headers);
    if (combos.empty()) combos.push_back({});
    for (const auto& m : methods)
      for (const auto& c : combos) {
        Json match = base;
        if (!m.empty() && !e.policy->grpc) match["method"] = m;
        Json hs = Json::array();
        for (const auto& [n, v] : c) hs.push_back({{"name", n}, {"value", v}});
        if (!extraHeader.is_null()) hs.push_back(extraHeader);
        if (!hs.empty()) match["headers"] = hs;
        out.push_back(match);
      }
    Json arr = Json::array();
    for (auto& m : out)
      if (!m.empty()) arr.push_back(m);
    return arr;
  }

  // Gateway API allows ReplacePrefixMatch only with exactly one PathPrefix match, so such a
  // rule becomes one rule per match.
  static void pushSplit(std::vector<Json>& out, const Json& rule) {
    bool prefixRewrite = false;
    for (const auto& f : rule.value("filters", Json::array()))
      if (f.value("type", "") == "URLRewrite" &&
          f["urlRewrite"].value("path", Json::object()).value("type", "") == "ReplacePrefixMatch")
        prefixRewrite = true;
    if (!prefixRewrite || rule.value("matches", Json::array()).size() <= 1) {
      out.push_back(rule);
      return;
    }
    for (const auto& m : rule["matches"]) {
      Json one = rule;
      one["matches"] = Json::array({m});
      out.push_back(one);
    }
  }

  // The rule of an entry for one listener role; null when the rule does not apply there.
  std::vector<Json> buildRules(const RouteGroup& g, const RuleEntry& e, bool https) {
    const IngressPolicy& pol = *e.policy;
    std::vector<Json> out;
    if (https && !pol.serveHttps) return out;
    HttpMode mode = https ? HttpMode::kServe : pol.httpMode;
    if (mode == HttpMode::kRedirect && pol.redirectNeedsTls && g.secrets.empty())
      mode = HttpMode::kServe;
    if (mode == HttpMode::kDrop) return out;
    // Counted before expanding: the product can be far too large to build.
    size_t count = std::max<size_t>(1, pol.methods.size());
    if (__builtin_mul_overflow(count, std::max<size_t>(1, headerCombinationCount(pol.headers)),
                               &count))
      count = SIZE_MAX;
    if (count > kMaxMatchesPerRule) {
      ctx_.report(*e.ingress, e.field, Outcome::kUnconvertible,
                  std::to_string(count) +
                      " matches (methods × header values) exceed "
                      "Gateway API's 64 per rule; the path is not converted");
      return out;
    }
    Json matches = expandMatches(e, nullptr);
    Json rule = Json::object();
    if (!matches.empty()) rule["matches"] = matches;
    if (mode == HttpMode::kRedirect) {
      rule["filters"] = Json::array(
          {{{"type", "RequestRedirect"},
            {"requestRedirect", {{"scheme", "https"}, {"statusCode", pol.redirectCode}}}}});
      out.push_back(rule);
      return out;
    }
    if (pol.redirectAll) {
      rule["filters"] =
          Json::array({{{"type", "RequestRedirect"}, {"requestRedirect", *pol.redirectAll}}});
      out.push_back(rule);
      return out;
    }
    Json filters = pol.filters;
    bool serviceBackend = !e.backendRefs.empty() && !e.backendRefs[0].contains("group");
    if (!g.grpc && (pol.replacePrefix || pol.replaceFull || pol.hostRewrite ||
                    (pol.hostToService && serviceBackend))) {
      Json rw = Json::object();
      if (pol.hostRewrite)
        rw["hostname"] = *pol.hostRewrite;
      else if (pol.hostToService && serviceBackend)
        rw["hostname"] = e.backendRefs[0]["name"].get<std::string>() + "." + g.ns + ".svc";
      if (pol.replaceFull) {
        rw["path"] = {{"type", "ReplaceFullPath"}, {"replaceFullPath", *pol.replaceFull}};
      } else if (pol.replacePrefix) {
        std::string type = e.pathMatch.is_null() ? "" : e.pathMatch["path"].value("type", "");
        if (type == "PathPrefix")
          rw["path"] = {{"type", "ReplacePrefixMatch"}, {"replacePrefixMatch", *pol.replacePrefix}};
        else if (type == "Exact")
          rw["path"] = {{"type", "ReplaceFullPath"}, {"replaceFullPath", *pol.replacePrefix}};
        else if (!e.pathMatch.is_null())
          ctx_.report(*e.ingress, e.field, Outcome::kUnconvertible,
                      "prefix rewrite (strip-path) cannot apply to a regular-expression path; "
                      "the path is forwarded unchanged");
      }
      if (!rw.empty()) filters.push_back({{"type", "URLRewrite"}, {"urlRewrite", rw}});
    }
    if (!filters.empty()) rule["filters"] = filters;
    Json backends = e.backendRefs;
    for (auto& b : backends)
      if (!b.contains("group")) b["weight"] = 1;
    if (backends.size() == 1) backends[0].erase("weight");
    int canaryWeight = 0;
    for (const auto& c : e.canaries) {
      if (c.policy->canaryWeight) {
        int total = c.policy->canaryWeightTotal;
        int w = std::clamp(*c.policy->canaryWeight, 0, total);
        canaryWeight += w;
        for (auto b : c.backends) {
          b["weight"] = w;
          backends.push_back(b);
        }
        for (size_t i = 0; i < e.backendRefs.size(); ++i)
          backends[i]["weight"] = std::max(0, total - canaryWeight);
      }
    }
    rule["backendRefs"] = backends;
    if (pol.backendTimeout || pol.requestTimeout) {
      Json t = Json::object();
      if (pol.requestTimeout) t["request"] = *pol.requestTimeout;
      if (pol.backendTimeout) t["backendRequest"] = *pol.backendTimeout;
      rule["timeouts"] = t;
    }
    if (pol.retryAttempts) rule["retry"] = {{"attempts", *pol.retryAttempts}};
    if (pol.provider == kProviderKong && !e.backendRefs.empty() &&
        !e.backendRefs[0].contains("group")) {
      std::string svc = e.backendRefs[0]["name"].get<std::string>();
      kongDecorateRule(rule, *e.ingress, ctx_.find("Service", g.ns, svc), e.field, ctx_);
    }
    pushSplit(out, rule);
    // Canary by header/cookie: a more specific rule to the canary backends.
    for (const auto& c : e.canaries) {
      const IngressPolicy& cp = *c.policy;
      Json header;
      if (cp.canaryHeader) {
        if (cp.canaryHeaderValue)
          header = {{"name", *cp.canaryHeader}, {"value", *cp.canaryHeaderValue}};
        else if (cp.canaryHeaderPattern)
          header = {{"type", "RegularExpression"},
                    {"name", *cp.canaryHeader},
                    {"value", *cp.canaryHeaderPattern}};
        else
          header = {{"name", *cp.canaryHeader}, {"value", "always"}};
      } else if (cp.canaryCookie) {
        header = {{"type", "RegularExpression"},
                  {"name", "Cookie"},
                  {"value", "(^|.*;\\s*)" + *cp.canaryCookie + "=always(;.*|$)"}};
      }
      if (header.is_null()) continue;
      Json cr = rule;
      cr["matches"] = expandMatches(e, header);
      cr["backendRefs"] = c.backends;
      pushSplit(out, cr);
    }
    return out;
  }

  void emitRoutes() {
    for (auto& [key, g] : groups_) {
      if (g.rules.empty()) continue;
      GatewayBuild& gw = out_.gateway(g.ns, g.gateway, g.gateway);
      std::string lhost = g.isDefaultBackend ? "" : g.listenerHost;
      std::string prefix = lhost.empty() ? "" : nameFromHost(lhost) + "-";
      ListenerBuild http{prefix + "http", lhost, "HTTP", kHttpPort, nullptr};
      addListener(gw, http, *g.firstIngress);
      bool hasHttps = !g.secrets.empty() && !g.isDefaultBackend;
      if (g.tlsWithoutSecret && g.secrets.empty())
        ctx_.report(*g.firstIngress, "spec.tls", Outcome::kUnconvertible,
                    "TLS for host '" + g.host +
                        "' has no secretName (the controller's default "
                        "certificate); add a certificateRef to listener " +
                        prefix + "https");
      ListenerBuild httpsL{prefix + "https", lhost, "HTTPS", kHttpsPort, nullptr};
      if (!g.isDefaultBackend && emitPassthrough(gw, g, prefix, lhost)) {
        hasHttps = false;  // port 443 of this host relays TLS; it is never terminated here
      } else if (hasHttps) {
        Json refs = Json::array();
        for (const auto& s : g.secrets)
          refs.push_back({{"group", ""}, {"kind", "Secret"}, {"name", s}});
        httpsL.tls = {{"certificateRefs", refs}};
        addListener(gw, httpsL, *g.firstIngress);
      }
      Json httpRules = Json::array(), httpsRules = Json::array();
      for (const auto& e : g.rules) {
        for (auto& r : buildRules(g, e, false)) httpRules.push_back(r);
        if (hasHttps)
          for (auto& r : buildRules(g, e, true)) httpsRules.push_back(r);
      }
      std::string base = g.isDefaultBackend ? g.firstIngress->name + "-default-backend"
                                            : g.firstIngress->name + "-" + nameFromHost(g.host);
      std::string kind = g.grpc ? "GRPCRoute" : "HTTPRoute";
      if (!hasHttps || httpRules == httpsRules) {
        emitRoute(kind, g, base, "", httpRules);
      } else {
        emitRoute(kind, g, base, httpsL.name, httpsRules);
        emitRoute(kind, g, base + "-http", http.name, httpRules);
      }
    }
  }

  // nginx ssl-passthrough: a TLS Passthrough listener for the host on 443 and a TLSRoute to
  // the backend ingress-nginx would pick (the rule for path '/', else the first rule).
  // True when emitted.
  bool emitPassthrough(GatewayBuild& gw, const RouteGroup& g, const std::string& prefix,
                       const std::string& lhost) {
    const RuleEntry* chosen = nullptr;
    for (const auto& e : g.rules) {
      if (!e.policy || !e.policy->sslPassthrough) continue;
      bool root = e.pathMatch.is_object() && e.pathMatch.contains("path") &&
                  e.pathMatch["path"].value("value", "") == "/";
      if (!chosen ||
          (root && !(chosen->pathMatch.is_object() && chosen->pathMatch.contains("path") &&
                     chosen->pathMatch["path"].value("value", "") == "/")))
        chosen = &e;
    }
    if (!chosen) return false;
    if (lhost.empty()) {
      ctx_.report(*chosen->ingress, annField("nginx.ingress.kubernetes.io/ssl-passthrough"),
                  Outcome::kUnconvertible, "passthrough needs a host (SNI) to route by");
      return false;
    }
    Json backends = Json::array();
    for (const auto& b : chosen->backendRefs)
      if (!b.contains("group")) backends.push_back({{"name", b["name"]}, {"port", b["port"]}});
    if (backends.empty()) {
      ctx_.report(*chosen->ingress, chosen->field, Outcome::kUnconvertible,
                  "ssl-passthrough needs a Service backend");
      return false;
    }
    ListenerBuild tlsL{prefix + "tls-passthrough", lhost, "TLS", kHttpsPort,
                       Json{{"mode", "Passthrough"}}};
    std::string conflict;
    if (!out_.addListener(gw, tlsL, &conflict)) {
      ctx_.report(*chosen->ingress, "spec", Outcome::kUnconvertible, conflict);
      return false;
    }
    std::string name =
        out_.uniqueName("TLSRoute", g.ns, chosen->ingress->name + "-" + nameFromHost(g.host));
    out_.addObject({{"apiVersion", "gateway.networking.k8s.io/v1"},
                    {"kind", "TLSRoute"},
                    {"metadata", makeMeta(name, g.ns)},
                    {"spec",
                     {{"parentRefs", Json::array({parentRef(g.gateway, tlsL.name)})},
                      {"hostnames", Json::array({g.host})},
                      {"rules", Json::array({{{"backendRefs", backends}}})}}}});
    if (!g.secrets.empty())
      ctx_.report(*chosen->ingress, "spec.tls", Outcome::kNote,
                  "with ssl-passthrough the backend terminates TLS for '" + g.host +
                      "': the Ingress's TLS secret is not used");
    return true;
  }

  void addListener(GatewayBuild& gw, const ListenerBuild& l, const api::Object& ing) {
    std::string conflict;
    if (!out_.addListener(gw, l, &conflict))
      ctx_.report(ing, "spec", Outcome::kUnconvertible, conflict);
  }

  void emitRoute(const std::string& kind, const RouteGroup& g, const std::string& base,
                 const std::string& section, const Json& rules) {
    if (rules.empty()) return;
    for (size_t start = 0, part = 1; start < rules.size(); start += kMaxRulesPerRoute, ++part) {
      std::string name =
          out_.uniqueName(kind, g.ns, part == 1 ? base : base + "-" + std::to_string(part));
      Json spec = {{"parentRefs", Json::array({parentRef(g.gateway, section)})}};
      if (!g.host.empty()) spec["hostnames"] = Json::array({g.host});
      Json chunk = Json::array();
      for (size_t i = start; i < std::min(rules.size(), start + kMaxRulesPerRoute); ++i)
        chunk.push_back(rules[i]);
      spec["rules"] = chunk;
      out_.addObject({{"apiVersion", "gateway.networking.k8s.io/v1"},
                      {"kind", kind},
                      {"metadata", makeMeta(name, g.ns)},
                      {"spec", spec}});
    }
  }

  void reportIgnoredKinds() {
    static const std::set<std::string> kUsed = {
        "Ingress",     "IngressClass", "Service",           "TCPIngress",    "UDPIngress",
        "KongIngress", "KongPlugin",   "KongClusterPlugin", "EndpointSlice", "Endpoints"};
    for (const auto& o : objects_)
      if (!kUsed.count(o.kind))
        ctx_.report(o, "", Outcome::kNote, "not an input of the conversion; ignored");
  }

  std::vector<api::Object> objects_;
  Context ctx_;
  const ConvertConfig& config_;
  std::vector<IngressPolicy> policies_;
  std::deque<IngressPolicy> extraPolicies_;
  std::map<GroupKey, RouteGroup> groups_;
  Output out_;
};

int kindRank(const std::string& kind) {
  static const std::vector<std::string> kOrder = {
      "GatewayClass",   "Gateway",           "HTTPRoute", "GRPCRoute",
      "TLSRoute",       "TCPRoute",          "UDPRoute",  "BackendTLSPolicy",
      "ReferenceGrant", "KongClusterPlugin", "KongPlugin"};
  auto it = std::find(kOrder.begin(), kOrder.end(), kind);
  return static_cast<int>(it - kOrder.begin());
}

}  // namespace

GatewayBuild& Output::gateway(const std::string& ns, const std::string& name,
                              const std::string& className) {
  auto key = std::make_pair(ns, name);
  auto it = gateways.find(key);
  if (it != gateways.end()) return it->second;
  GatewayBuild g;
  g.ns = ns;
  g.name = name;
  g.className = className;
  return gateways.emplace(key, std::move(g)).first->second;
}

bool Output::addListener(GatewayBuild& gw, const ListenerBuild& l, std::string* conflict) {
  for (auto& e : gw.listeners) {
    if (e.name == l.name) {
      if (e.hostname == l.hostname && e.protocol == l.protocol && e.port == l.port) {
        // Same listener: merge certificates.
        if (l.tls.is_object() && e.tls.is_object())
          for (const auto& c : l.tls.value("certificateRefs", Json::array())) {
            auto& refs = e.tls["certificateRefs"];
            if (std::find(refs.begin(), refs.end(), c) == refs.end()) refs.push_back(c);
          }
        return true;
      }
      *conflict = "listener " + l.name + " of Gateway " + gw.ns + "/" + gw.name +
                  " already exists with other settings";
      return false;
    }
    // Only one TCP/UDP listener can own a port with no hostname.
    if (e.port == l.port && (e.protocol == "TCP" || e.protocol == "UDP") &&
        e.protocol == l.protocol) {
      *conflict = "port " + std::to_string(l.port) + "/" + l.protocol + " of Gateway " + gw.ns +
                  "/" + gw.name + " is already used by listener " + e.name;
      return false;
    }
  }
  if (gw.listeners.size() >= kMaxListeners) {
    *conflict = "Gateway " + gw.ns + "/" + gw.name + " would exceed 64 listeners";
    return false;
  }
  gw.listeners.push_back(l);
  return true;
}

std::string Output::uniqueName(const std::string& kind, const std::string& ns, std::string name) {
  std::string candidate = name;
  for (int i = 2; names_.count({kind, ns, candidate}); ++i)
    candidate = name + "-" + std::to_string(i);
  names_.insert({kind, ns, candidate});
  return candidate;
}

std::vector<Json> Output::finish(const std::string& classOverride) {
  std::vector<Json> all;
  std::set<std::string> classes;
  for (const auto& [key, g] : gateways) {
    std::string cls = classOverride.empty() ? g.className : classOverride;
    classes.insert(cls);
    Json listeners = Json::array();
    for (const auto& l : g.listeners) {
      Json j = {{"name", l.name}, {"port", l.port}, {"protocol", l.protocol}};
      if (!l.hostname.empty()) j["hostname"] = l.hostname;
      if (!l.tls.is_null()) j["tls"] = l.tls;
      listeners.push_back(j);
    }
    all.push_back({{"apiVersion", "gateway.networking.k8s.io/v1"},
                   {"kind", "Gateway"},
                   {"metadata", makeMeta(g.name, g.ns)},
                   {"spec", {{"gatewayClassName", cls}, {"listeners", listeners}}}});
  }
  for (const auto& cls : classes)
    all.push_back({{"apiVersion", "gateway.networking.k8s.io/v1"},
                   {"kind", "GatewayClass"},
                   {"metadata", {{"name", cls}}},
                   {"spec", {{"controllerName", "archway.dev/gateway-controller"}}}});
  for (auto& o : objects_) all.push_back(std::move(o));
  objects_.clear();
  std::stable_sort(all.begin(), all.end(), [](const Json& a, const Json& b) {
    int ra = kindRank(a.value("kind", "")), rb = kindRank(b.value("kind", ""));
    if (ra != rb) return ra < rb;
    auto ka = std::make_pair(a["metadata"].value("namespace", ""), a["metadata"].value("name", ""));
    auto kb = std::make_pair(b["metadata"].value("namespace", ""), b["metadata"].value("name", ""));
    return ka < kb;
  });
  return all;
}

ConvertResult convert(const std::vector<api::Object>& objects, const ConvertConfig& config) {
  Converter c(objects, config);
  return c.run();
}

}  // namespace archway::convert
