// Builds the immutable snapshot from what the earlier steps decided: listeners grouped by
// (address, port), certificates, compiled HTTP/gRPC route tables in precedence order,
// L4 routes, and Services resolved to their ready endpoints.
//
// HTTP precedence (one entry per (effective hostname, rule, match), first match wins):
//   1. hostname: exact before wildcard before none; longer first within each;
//   2. path: Exact, then RegularExpression (longer pattern first — implementation-specific
//      in the spec), then PathPrefix by length (longest first);
//   3. method match; 4. more header matches; 5. more query matches;
//   6. older route, then "{namespace}/{name}", then rule order, then match order.
// GRPCRoute entries (rule->isGrpc) share the vector but are never compared with HTTPRoute
// entries by the router: a gRPC request matches only isGrpc entries, any other request only
// non-gRPC ones. Among gRPC entries: hostname, then service length, then method length,
// then header count, then the same tie-breakers.
#include <algorithm>

#include <re2/re2.h>

#include "translate/internal.h"

namespace archway::translate {

namespace {

uint64_t upTo(size_t v, unsigned bits) {
  uint64_t max = (uint64_t{1} << bits) - 1;
  return v > max ? max : static_cast<uint64_t>(v);
}

// "Larger first" as an ascending field.
uint64_t desc(size_t v, unsigned bits) { return ((uint64_t{1} << bits) - 1) - upTo(v, bits); }

}  // namespace

PackedEntryKey packEntryKey(const EntryKey& k, uint32_t pos) {
  PackedEntryKey p;
  p.pos = pos;
  p.a = upTo(static_cast<size_t>(k.hostClass), 2) << 62 | desc(k.hostLen, 16) << 46 |
        uint64_t{k.grpc} << 45;
  if (!k.grpc) {
    p.b = upTo(static_cast<size_t>(k.pathClass), 2) << 62 | desc(k.pathLen, 30) << 32 |
          uint64_t{!k.method} << 31 | desc(k.headers, 15) << 16 | desc(k.queries, 16);
  } else {
    p.b = desc(k.grpcService, 31) << 32 | desc(k.grpcMethod, 16) << 16 | desc(k.headers, 16);
  }
  p.c = uint64_t{k.routeRank} << 32 | upTo(k.rule, 16) << 16 | upTo(k.match, 16);
  return p;
}

namespace {

using snapshot::HttpFilter;

std::string str(const api::Json& j, const char* key, std::string def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

const api::Json& arr(const api::Json& j, const char* key) {
  static const api::Json kEmpty = api::Json::array();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

std::shared_ptr<const re2::RE2> compile(const std::string& pattern) {
  RE2::Options opts;
  opts.set_log_errors(false);
  auto re = std::make_shared<re2::RE2>(pattern, opts);
  return re->ok() ? re : nullptr;
}

class Builder {
 public:
  explicit Builder(Context& ctx) : ctx_(ctx), snap_(std::make_shared<snapshot::Snapshot>()) {}

  void run();

 private:
  std::shared_ptr<const snapshot::Backend> backend(const api::Object& route, const api::Json& ref,
                                                   const GatewayInfo& gw, bool l4Udp, bool l4Tcp);
  std::vector<HttpFilter> filters(const api::Object& route, const api::Json& list,
                                  const GatewayInfo& gw);
  std::shared_ptr<snapshot::HttpRule> httpRule(const api::Object& route, const api::Json& rule,
                                               size_t index, const GatewayInfo& gw, bool grpc);
  void addHttp(const Attachment& a);
  void addL4(const Attachment& a);
  // Adds a recorded attachment's output (its L4 routes; its HTTP entries are merged by
  // mergeHttp()); false (nothing added but backends the recorded calls would have added
  // anyway) when a backend would not be the recorded one.
  bool replay(const Attachment& a, const RouteRecord::Built& built);
  // With a Translator: each listener's HTTP entries in precedence order from the last
  // order (entries of replayed attachments) and the entries built this time.
  void mergeHttp();
  // Without: every entry sorted.
  void sortHttp();

  Context& ctx_;
  std::shared_ptr<snapshot::Snapshot> snap_;
  // Entries of each listener with their sort keys.

  std::map<snapshot::Listener*, std::vector<std::pair<EntryKey, snapshot::HttpRouteEntry>>>
      entries_;
  std::map<snapshot::Listener*, std::vector<std::pair<const api::Object*, snapshot::L4Route>>> l4_;
  // The attachment being recorded (Translator), and whether it read an object by a name
  // that could be a route's (ExtensionRef: not recorded).
  RouteRecord::Built* recording_ = nullptr;
  bool unrecordable_ = false;
  // With a Translator: the record that keeps each entry of entries_ (null: none).
  std::map<snapshot::Listener*, std::vector<RouteRecord*>> owners_;
  // Backends a replayed call was already checked against in this build.
  std::vector<const snapshot::Backend*> checked_;
};

std::shared_ptr<const snapshot::Backend> Builder::backend(const api::Object& route,
                                                          const api::Json& ref,
                                                          const GatewayInfo& gw, bool l4Udp,
                                                          bool l4Tcp) {
  BackendResolution r = resolveBackendRef(ctx_, route, ref);
  if (!r.reason.empty() || !r.service) return nullptr;
  const api::Object& svc = *r.service;
  std::string portName = r.servicePort ? str(*r.servicePort, "name") : "";
  std::string app = r.servicePort ? str(*r.servicePort, "appProtocol") : "";
  std::string section = portName;
  std::shared_ptr<snapshot::BackendTls> policy;
  if (auto it = ctx_.backendTls.find(svc.ns + "/" + svc.name + ":" + section);
      !section.empty() && it != ctx_.backendTls.end())
    policy = it->second;
  else if (auto it2 = ctx_.backendTls.find(svc.ns + "/" + svc.name); it2 != ctx_.backendTls.end())
    policy = it2->second;
  bool clientCert = policy && !gw.clientCertPem.empty();
  std::string id = svc.ns + "/" + svc.name + ":" + std::to_string(r.port);
  if (l4Udp) id += "/udp";
  if (clientCert) id += "@" + gw.object->ns + "/" + gw.object->name;
  if (auto it = snap_->backends.find(id); it != snap_->backends.end()) {
    if (recording_) recording_->backends.push_back({id, l4Udp, l4Tcp, it->second});
    return it->second;
  }
  // The same id with the same flags in the same context is the same Backend.
  std::tuple<std::string, bool, bool> memoKey{id, l4Udp, l4Tcp};
  if (ctx_.cache) {
    if (auto it = ctx_.cache->backends.find(memoKey); it != ctx_.cache->backends.end()) {
      snap_->backends[id] = it->second;
      if (recording_) recording_->backends.push_back({id, l4Udp, l4Tcp, it->second});
      return it->second;
    }
  }

  auto b = std::make_shared<snapshot::Backend>();
  b->id = id;
  b->ns = svc.ns;
  b->service = svc.name;
  b->port = static_cast<uint16_t>(r.port);
  b->protocol = l4Udp                        ? snapshot::BackendProtocol::kUdp
                : l4Tcp                      ? snapshot::BackendProtocol::kTcp
                : app == "kubernetes.io/h2c" ? snapshot::BackendProtocol::kH2c
                : app == "kubernetes.io/ws"  ? snapshot::BackendProtocol::kWebSocket
                                             : snapshot::BackendProtocol::kHttp1;
  if (policy) {
    auto tls = std::make_shared<snapshot::BackendTls>(*policy);
    if (clientCert) {
      tls->clientCertPem = gw.clientCertPem;
      tls->clientKeyPem = gw.clientKeyPem;
    }
    b->tls = tls;
  }
  // Ready endpoints of the EndpointSlices of this Service, on the slice port whose name
  // matches the Service port's name.
  std::set<std::pair<std::string, uint16_t>> seen;
  for (const api::Object* slice : ctx_.store.ofKind("EndpointSlice")) {
    if (slice->ns != svc.ns || !slice->validationErrors.empty()) continue;
    const api::Json& md = slice->metadata();
    auto labels = md.find("labels");
    if (labels == md.end() || !labels->is_object() ||
        str(*labels, "kubernetes.io/service-name") != svc.name)
      continue;
    int target = -1;
    for (const auto& p : arr(slice->body, "ports"))
      if (str(p, "name") == portName && p.is_object() && p.contains("port") &&
          p["port"].is_number_integer())
        target = p["port"].get<int>();
    if (target <= 0 || target > 65535) continue;
    for (const auto& e : arr(slice->body, "endpoints")) {
      if (auto c = e.find("conditions"); c != e.end() && c->is_object())
        if (auto ready = c->find("ready"); ready != c->end() && ready->is_boolean() && !*ready)
          continue;
      for (const auto& a : arr(e, "addresses"))
        if (a.is_string() && isIpAddress(a.get<std::string>()) &&
            seen.insert({a.get<std::string>(), static_cast<uint16_t>(target)}).second)
          b->endpoints.push_back({a.get<std::string>(), static_cast<uint16_t>(target)});
    }
  }
  std::sort(b->endpoints.begin(), b->endpoints.end(), [](const auto& x, const auto& y) {
    return std::tie(x.address, x.port) < std::tie(y.address, y.port);
  });
  snap_->backends[id] = b;
  if (ctx_.cache) ctx_.cache->backends[memoKey] = b;
  if (recording_) recording_->backends.push_back({id, l4Udp, l4Tcp, b});
  return b;
}

snapshot::HeaderModifier headerModifier(const api::Json& cfg) {
  snapshot::HeaderModifier m;
  for (const auto& h : arr(cfg, "set"))
    m.set.emplace_back(toLower(str(h, "name")), str(h, "value"));
  for (const auto& h : arr(cfg, "add"))
    m.add.emplace_back(toLower(str(h, "name")), str(h, "value"));
  for (const auto& h : arr(cfg, "remove"))
    if (h.is_string()) m.remove.push_back(toLower(h.get<std::string>()));
  return m;
}

snapshot::PathModifier pathModifier(const api::Json& cfg) {
  snapshot::PathModifier p;
  auto path = cfg.find("path");
  if (path == cfg.end() || !path->is_object()) return p;
  std::string type = str(*path, "type");
  if (type == "ReplaceFullPath") {
    p.type = snapshot::PathModifierType::kReplaceFullPath;
    p.value = str(*path, "replaceFullPath");
  } else if (type == "ReplacePrefixMatch") {
    p.type = snapshot::PathModifierType::kReplacePrefixMatch;
    p.value = str(*path, "replacePrefixMatch");
  }
  return p;
}

std::vector<HttpFilter> Builder::filters(const api::Object& route, const api::Json& list,
                                         const GatewayInfo& gw) {
  std::vector<HttpFilter> out;
  for (const auto& f : list) {
    std::string type = str(f, "type");
    HttpFilter h{};
    auto cfgOf = [&](const char* key) -> const api::Json& {
      static const api::Json kEmpty = api::Json::object();
      auto it = f.find(key);
      return it != f.end() && it->is_object() ? *it : kEmpty;
    };
    if (type == "RequestHeaderModifier") {
      h.type = HttpFilter::Type::kRequestHeaderModifier;
      h.headers = headerModifier(cfgOf("requestHeaderModifier"));
    } else if (type == "ResponseHeaderModifier") {
      h.type = HttpFilter::Type::kResponseHeaderModifier;
      h.headers = headerModifier(cfgOf("responseHeaderModifier"));
    } else if (type == "RequestRedirect") {
      const api::Json& c = cfgOf("requestRedirect");
      h.type = HttpFilter::Type::kRequestRedirect;
      if (c.contains("scheme") && c["scheme"].is_string()) h.redirect.scheme = c["scheme"];
      if (c.contains("hostname") && c["hostname"].is_string()) h.redirect.hostname = c["hostname"];
      if (c.contains("port") && c["port"].is_number_integer())
        h.redirect.port = static_cast<uint16_t>(c["port"].get<int>());
      h.redirect.path = pathModifier(c);
      h.redirect.statusCode = intField(c, "statusCode", 302);
    } else if (type == "URLRewrite") {
      const api::Json& c = cfgOf("urlRewrite");
      h.type = HttpFilter::Type::kUrlRewrite;
      if (c.contains("hostname") && c["hostname"].is_string()) h.rewrite.hostname = c["hostname"];
      h.rewrite.path = pathModifier(c);
    } else if (type == "RequestMirror") {
      const api::Json& c = cfgOf("requestMirror");
      h.type = HttpFilter::Type::kRequestMirror;
      if (auto b = c.find("backendRef"); b != c.end() && b->is_object())
        h.mirror.backend = backend(route, *b, gw, false, false);
      if (c.contains("percent") && c["percent"].is_number_integer()) {
        h.mirror.numerator = static_cast<uint32_t>(std::clamp(c["percent"].get<int>(), 0, 100));
        h.mirror.denominator = 100;
      } else if (auto fr = c.find("fraction"); fr != c.end() && fr->is_object()) {
        int num = intField(*fr, "numerator", 0), den = intField(*fr, "denominator", 100);
        if (den <= 0) den = 100;
        h.mirror.numerator = static_cast<uint32_t>(std::clamp(num, 0, den));
        h.mirror.denominator = static_cast<uint32_t>(den);
      }
    } else if (type == "CORS") {
      const api::Json& c = cfgOf("cors");
      h.type = HttpFilter::Type::kCors;
      auto list2 = [&](const char* key) {
        std::vector<std::string> v;
        for (const auto& x : arr(c, key))
          if (x.is_string()) v.push_back(x.get<std::string>());
        return v;
      };
      h.cors.allowOrigins = list2("allowOrigins");
      h.cors.allowMethods = list2("allowMethods");
      h.cors.allowHeaders = list2("allowHeaders");
      h.cors.exposeHeaders = list2("exposeHeaders");
      h.cors.allowCredentials = boolField(c, "allowCredentials", false);
      h.cors.maxAgeSeconds = intField(c, "maxAge", 5);
    } else if (type == "ExtensionRef") {
      const api::Json& c = cfgOf("extensionRef");
      h.type = HttpFilter::Type::kExtensionRef;
      h.extension.group = str(c, "group");
      h.extension.kind = str(c, "kind");
      h.extension.name = str(c, "name");
      h.extension.ns = route.ns;
      unrecordable_ = true;
      for (const auto& [key, obj] : ctx_.store.all()) {
        if (key.kind == h.extension.kind && key.ns == route.ns && key.name == h.extension.name &&
            obj.group() == h.extension.group) {
          h.extension.configJson = obj.body.dump();
          h.extension.resolved = true;
        }
      }
    } else {
      continue;
    }
    out.push_back(std::move(h));
  }
  return out;
}

std::shared_ptr<snapshot::HttpRule> Builder::httpRule(const api::Object& route,
                                                      const api::Json& rule, size_t index,
                                                      const GatewayInfo& gw, bool grpc) {
  auto r = std::make_shared<snapshot::HttpRule>();
  r->routeNs = route.ns;
  r->routeName = route.name;
  r->ruleName = str(rule, "name");
  r->ruleIndex = index;
  r->isGrpc = grpc;
  r->filters = filters(route, arr(rule, "filters"), gw);
  for (const auto& b : arr(rule, "backendRefs")) {
    snapshot::WeightedBackend wb;
    wb.backend = backend(route, b, gw, false, false);
    int weight = intField(b, "weight", 1);
    wb.weight = static_cast<uint32_t>(std::max(weight, 0));
    wb.filters = filters(route, arr(b, "filters"), gw);
    r->backends.push_back(std::move(wb));
  }
  if (auto t = rule.find("timeouts"); t != rule.end() && t->is_object()) {
    if (auto d = parseDuration(str(*t, "request")); d && d->count() > 0) r->requestTimeout = *d;
    if (auto d = parseDuration(str(*t, "backendRequest")); d && d->count() > 0)
      r->backendRequestTimeout = *d;
  }
  if (auto rt = rule.find("retry"); rt != rule.end() && rt->is_object()) {
    snapshot::RetryPolicy p;
    for (const auto& c : arr(*rt, "codes"))
      if (c.is_number_integer()) p.codes.push_back(c.get<int>());
    p.attempts = rt->value("attempts", 1);
    if (auto d = parseDuration(str(*rt, "backoff"))) p.backoff = *d;
    r->retry = p;
  }
  return r;
}

void Builder::addHttp(const Attachment& a) {
  const api::Object& route = *a.route;
  bool grpc = route.kind == "GRPCRoute";
  snapshot::Listener* listener = a.listener->compiled.get();
  const GatewayInfo& gw = *a.listener->gateway;
  std::set<size_t> dropped;
  if (auto it = ctx_.invalidRules.find(api::keyOf(route)); it != ctx_.invalidRules.end())
    dropped = it->second;
  std::vector<std::string> hosts = a.hostnames;
  if (hosts.empty()) hosts.push_back("");  // any host of the listener
  const api::Json& rules = arr(route.spec(), "rules");
  uint32_t entryCount = 0;  // entries of this attachment so far (EntryKey::entry)
  for (size_t ri = 0; ri < rules.size(); ++ri) {
    if (dropped.count(ri)) continue;
    auto rule = httpRule(route, rules[ri], ri, gw, grpc);
    std::vector<std::pair<EntryKey, snapshot::HttpMatch>> matches;
    const api::Json& ms = arr(rules[ri], "matches");
    api::Json defaultMatch = api::Json::array({api::Json::object()});
    const api::Json& list = ms.empty() ? defaultMatch : ms;
    for (size_t mi = 0; mi < list.size(); ++mi) {
      const api::Json& m = list[mi];
      EntryKey k;
      k.grpc = grpc;
      k.routeRank = a.routeRank;
      k.rule = ri;
      k.match = mi;
      snapshot::HttpMatch hm;
      std::set<std::string> seenHeaders, seenQueries;
      for (const auto& h : arr(m, "headers")) {
        snapshot::StringMatch s;
        s.name = toLower(str(h, "name"));
        if (!seenHeaders.insert(s.name).second) continue;  // only the first entry counts
        s.value = str(h, "value");
        if (str(h, "type", "Exact") == "RegularExpression") {
          s.type = snapshot::MatchType::kRegularExpression;
          s.regex = compile(s.value);
        }
        hm.headers.push_back(std::move(s));
      }
      if (grpc) {
        std::string service, method, type = "Exact";
        if (auto me = m.find("method"); me != m.end() && me->is_object()) {
          service = str(*me, "service");
          method = str(*me, "method");
          type = str(*me, "type", "Exact");
        }
        if (type == "Exact" && !service.empty() && !method.empty()) {
          hm.path = {snapshot::MatchType::kExact, "/" + service + "/" + method, nullptr};
        } else if (type == "Exact" && !service.empty()) {
          hm.path = {snapshot::MatchType::kPathPrefix, "/" + service, nullptr};
        } else if (service.empty() && method.empty()) {
          hm.path = {snapshot::MatchType::kPathPrefix, "/", nullptr};
        } else {
          auto esc = [&](const std::string& s) { return type == "Exact" ? RE2::QuoteMeta(s) : s; };
          std::string re = "/" + (service.empty() ? std::string("[^/]+") : esc(service)) + "/" +
                           (method.empty() ? std::string("[^/]+") : esc(method));
          hm.path = {snapshot::MatchType::kRegularExpression, re, compile(re)};
        }
        k.grpcService = service.size();
        k.grpcMethod = method.size();
      } else {
        if (auto p = m.find("path"); p != m.end() && p->is_object()) {
          std::string type = str(*p, "type", "PathPrefix");
          hm.path.value = str(*p, "value", "/");
          if (type == "Exact") hm.path.type = snapshot::MatchType::kExact;
          if (type == "RegularExpression") {
            hm.path.type = snapshot::MatchType::kRegularExpression;
            hm.path.regex = compile(hm.path.value);
          }
        }
        if (auto me = m.find("method"); me != m.end() && me->is_string()) hm.method = *me;
        for (const auto& q : arr(m, "queryParams")) {
          snapshot::StringMatch s;
          s.name = str(q, "name");
          if (!seenQueries.insert(s.name).second) continue;
          s.value = str(q, "value");
          if (str(q, "type", "Exact") == "RegularExpression") {
            s.type = snapshot::MatchType::kRegularExpression;
            s.regex = compile(s.value);
          }
          hm.queryParams.push_back(std::move(s));
        }
        k.pathClass = hm.path.type == snapshot::MatchType::kExact               ? 0
                      : hm.path.type == snapshot::MatchType::kRegularExpression ? 1
                                                                                : 2;
        k.pathLen = hm.path.value.size();
        k.method = hm.method.has_value();
        k.queries = hm.queryParams.size();
      }
      k.headers = hm.headers.size();
      matches.emplace_back(k, std::move(hm));
    }
    for (const auto& host : hosts) {
      for (const auto& [k0, hm] : matches) {
        EntryKey k = k0;
        k.hostClass = host.empty() ? 2 : isWildcard(host) ? 1 : 0;
        k.hostLen = host.size();
        k.attachment = static_cast<uint32_t>(a.index);
        k.entry = entryCount++;
        snapshot::HttpRouteEntry e;
        if (!host.empty()) e.hostnames.push_back(host);
        e.match = hm;
        e.rule = rule;
        if (recording_) recording_->http.emplace_back(k, e);
        entries_[listener].emplace_back(k, std::move(e));
      }
    }
  }
}

void Builder::addL4(const Attachment& a) {
  const api::Object& route = *a.route;
  snapshot::Listener* listener = a.listener->compiled.get();
  const GatewayInfo& gw = *a.listener->gateway;
  bool udp = route.kind == "UDPRoute";
  snapshot::L4Route r;
  r.routeNs = route.ns;
  r.routeName = route.name;
  r.hostnames = a.hostnames;
  // TCP/UDP/TLS routes carry one rule in practice; backends of every rule are merged.
  for (const auto& rule : arr(route.spec(), "rules")) {
    for (const auto& b : arr(rule, "backendRefs")) {
      snapshot::WeightedBackend wb;
      wb.backend = backend(route, b, gw, udp, !udp);
      int weight = intField(b, "weight", 1);
      wb.weight = static_cast<uint32_t>(std::max(weight, 0));
      r.backends.push_back(std::move(wb));
    }
  }
  // One entry per SNI name, so the listener's order can rank exact names first.
  if (r.hostnames.size() > 1) {
    for (const auto& h : a.hostnames) {
      snapshot::L4Route one = r;
      one.hostnames = {h};
      if (recording_) recording_->l4.push_back(one);
      l4_[listener].emplace_back(&route, std::move(one));
    }
    return;
  }
  if (recording_) recording_->l4.push_back(r);
  l4_[listener].emplace_back(&route, std::move(r));
}

bool Builder::replay(const Attachment& a, const RouteRecord::Built& built) {
  for (const auto& call : built.backends) {
    // A backend checked once is listed under its id (call.id is always backend->id): the
    // same check again would pass. Routes share few backends, so the list stays short.
    if (std::find(checked_.begin(), checked_.end(), call.backend.get()) != checked_.end()) continue;
    if (auto it = snap_->backends.find(call.id); it != snap_->backends.end()) {
      if (it->second != call.backend) return false;
    } else {
      auto memo = ctx_.cache->backends.find({call.id, call.udp, call.tcp});
      if (memo == ctx_.cache->backends.end() || memo->second != call.backend) return false;
      snap_->backends.emplace(call.id, memo->second);
    }
    if (checked_.size() < 64) checked_.push_back(call.backend.get());
  }
  // HTTP entries stay in the record: mergeHttp() takes them from the last order.
  snapshot::Listener* listener = a.listener->compiled.get();
  if (!built.l4.empty()) {
    auto& list = l4_[listener];
    for (const auto& r : built.l4) list.emplace_back(a.route, r);
  }
  return true;
}

snapshot::Protocol protocolOf(const std::string& p) {
  if (p == "HTTPS") return snapshot::Protocol::kHttps;
  if (p == "TLS") return snapshot::Protocol::kTls;
  if (p == "TCP") return snapshot::Protocol::kTcp;
  if (p == "UDP") return snapshot::Protocol::kUdp;
  return snapshot::Protocol::kHttp;
}

// More specific listener hostnames first: exact, then wildcard by length, then catch-all.
bool moreSpecific(const std::shared_ptr<const snapshot::Listener>& a,
                  const std::shared_ptr<const snapshot::Listener>& b) {
  auto rank = [](const snapshot::Listener& l) {
    if (!l.hostname) return std::make_tuple(2, size_t{0});
    return std::make_tuple(isWildcard(*l.hostname) ? 1 : 0, ~l.hostname->size());
  };
  if (rank(*a) != rank(*b)) return rank(*a) < rank(*b);
  return std::tie(a->gatewayNs, a->gatewayName, a->name) <
         std::tie(b->gatewayNs, b->gatewayName, b->name);
}

void Builder::sortHttp() {
  for (auto& [listener, entryList] : entries_) {
    auto& list = entryList;  // a plain reference: clang 14 cannot capture a structured binding
    // Sort compact keys, not the entries themselves (moving an entry moves its match strings;
    // comparing the entries' keys in place missed the cache for every comparison). The packed
    // key orders exactly as the precedence rules do (fields descending where longer or more
    // wins), and the position makes it the stable order.
    std::vector<PackedEntryKey> order(list.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = packEntryKey(list[i].first, i);
    std::sort(order.begin(), order.end());
    listener->httpRoutes.reserve(list.size());
    for (const PackedEntryKey& k : order)
      listener->httpRoutes.push_back(std::move(list[k.pos].second));
  }
}

namespace {

// The precedence order of sortHttp() with the position replaced by (attachment, entry):
// entries with equal packed keys belong to one route (the rank is in the key), and that
// route's entries on a listener were listed by attachment, then entry.
struct MergeKey {
  uint64_t a = 0, b = 0, c = 0;
  uint32_t attachment = 0, entry = 0;
  bool operator<(const MergeKey& o) const {
    return std::tie(a, b, c, attachment, entry) < std::tie(o.a, o.b, o.c, o.attachment, o.entry);
  }
};

MergeKey mergeKey(const EntryKey& k, uint32_t rank) {
  EntryKey current = k;
  current.routeRank = rank;
  PackedEntryKey p = packEntryKey(current, 0);
  return {p.a, p.b, p.c, k.attachment, k.entry};
}

}  // namespace

void Builder::mergeHttp() {
  TranslationCache& cache = *ctx_.cache;
  using EntryRef = TranslationCache::EntryRef;
  cache.httpOrder.resize(ctx_.allListeners.size());
  const uint64_t epoch = cache.epoch;
  for (size_t li = 0; li < ctx_.allListeners.size(); ++li) {
    std::vector<EntryRef>& last = cache.httpOrder[li];
    snapshot::Listener* listener = ctx_.allListeners[li]->compiled.get();
    if (!listener) {
      last.clear();
      continue;
    }
    // Entries of attachments replayed this time, still in precedence order: their keys only
    // changed by their routes' ranks, which keep the routes' relative order.
    std::vector<EntryRef> kept;
    kept.reserve(last.size());
    for (const EntryRef& r : last)
      if (r.record->built[r.attachment].replayedIn == epoch) kept.push_back(r);
    auto keptKey = [&](const EntryRef& r) {
      return mergeKey(r.record->built[r.attachment].http[r.entry].first, r.record->rank);
    };
    if (!cache.ranksKeepOrder) {
      std::vector<std::pair<MergeKey, EntryRef>> keyed;
      keyed.reserve(kept.size());
      for (const EntryRef& r : kept) keyed.emplace_back(keptKey(r), r);
      std::sort(keyed.begin(), keyed.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      for (size_t i = 0; i < kept.size(); ++i) kept[i] = keyed[i].second;
    }
    // Entries built this time, sorted.
    static std::vector<std::pair<EntryKey, snapshot::HttpRouteEntry>> kNone;
    auto built = entries_.find(listener);
    auto& fresh = built != entries_.end() ? built->second : kNone;
    const std::vector<RouteRecord*>& owners = owners_[listener];
    std::vector<std::pair<MergeKey, uint32_t>> order(fresh.size());
    for (uint32_t i = 0; i < fresh.size(); ++i)
      order[i] = {mergeKey(fresh[i].first, fresh[i].first.routeRank), i};
    std::sort(order.begin(), order.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    // Each built entry goes after the kept ones that precede it (binary search: a change
    // usually builds a few entries among thousands). Keys are unique: no ties.
    std::vector<EntryRef> next;
    next.reserve(kept.size() + fresh.size());
    listener->httpRoutes.reserve(kept.size() + fresh.size());
    size_t from = 0;
    auto emitKept = [&](size_t upTo) {
      for (; from < upTo; ++from) {
        const EntryRef& r = kept[from];
        listener->httpRoutes.push_back(r.record->built[r.attachment].http[r.entry].second);
        next.push_back(r);
      }
    };
    for (const auto& [key, i] : order) {
      size_t lo = from, hi = kept.size();
      while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key < keptKey(kept[mid]))
          hi = mid;
        else
          lo = mid + 1;
      }
      emitKept(lo);
      // Recorded: the record holds a copy for the next translation.
      if (RouteRecord* owner = owners[i]) next.push_back({owner, key.attachment, key.entry});
      listener->httpRoutes.push_back(std::move(fresh[i].second));
    }
    emitKept(kept.size());
    last = std::move(next);
  }
}

void Builder::run() {
  // Listeners that serve: valid, on an accepted and programmed Gateway (or accepted
  // ListenerSet).
  std::map<std::tuple<std::string, int, bool>, std::vector<std::shared_ptr<snapshot::Listener>>>
      ports;
  auto compileListener = [&](ListenerInfo& l, GatewayInfo& gw) {
    auto out = std::make_shared<snapshot::Listener>();
    out->gatewayNs = gw.object->ns;
    out->gatewayName = gw.object->name;
    if (l.listenerSet) {
      out->listenerSetNs = l.listenerSet->object->ns;
      out->listenerSetName = l.listenerSet->object->name;
    }
    out->name = l.name;
    out->protocol = protocolOf(l.protocol);
    out->port = static_cast<uint16_t>(l.port);
    out->hostname = l.hostname;
    out->certificates = l.certificates;
    out->tlsPassthrough = l.tlsPassthrough;
    out->clientValidation = l.clientValidation;
    l.compiled = out;
    for (const auto& addr : gw.addresses)
      ports[{gw.bindAll ? std::string() : addr, l.port, l.protocol == "UDP"}].push_back(out);
  };
  for (auto& gwp : ctx_.gateways) {
    GatewayInfo& gw = *gwp;
    const api::Json& conds = gw.status["conditions"];
    bool programmed = false;
    for (const auto& c : conds)
      if (c["type"] == "Programmed") programmed = c["status"] == "True";
    if (!programmed || gw.addresses.empty()) continue;
    for (auto& l : gw.listeners)
      if (l.valid()) compileListener(l, gw);
    for (ListenerSetInfo* ls : gw.listenerSets)
      for (auto& l : ls->listeners)
        if (l.valid()) compileListener(l, gw);
  }
  const bool incremental = ctx_.cache != nullptr;
  for (const auto& a : ctx_.attachments) {
    if (!a.listener->compiled) continue;
    RouteRecord::Built* built = nullptr;
    if (a.record && a.record->buildable && a.index < a.record->built.size()) {
      built = &a.record->built[a.index];
      if (built->done && replay(a, *built)) {
        built->replayedIn = ctx_.cache->epoch;
        continue;
      }
      *built = RouteRecord::Built{};
    }
    recording_ = built;
    unrecordable_ = false;
    const std::string& kind = a.route->kind;
    const bool http = kind == "HTTPRoute" || kind == "GRPCRoute";
    if (http)
      addHttp(a);
    else
      addL4(a);
    recording_ = nullptr;
    if (built) {
      if (unrecordable_) {
        a.record->buildable = false;
        *built = RouteRecord::Built{};
      } else {
        built->done = true;
      }
    }
    if (incremental && http) {
      snapshot::Listener* listener = a.listener->compiled.get();
      owners_[listener].resize(entries_[listener].size(),
                               built && built->done ? a.record : nullptr);
    }
  }
  if (incremental)
    mergeHttp();
  else
    sortHttp();
  for (auto& [listener, list] : l4_) {
    // TLS: more specific SNI first; TCP/UDP: oldest first (only the oldest serves).
    std::stable_sort(list.begin(), list.end(), [](const auto& x, const auto& y) {
      auto rank = [](const snapshot::L4Route& r) {
        if (r.hostnames.empty()) return std::make_tuple(2, size_t{0});
        const std::string& h = r.hostnames.front();
        return std::make_tuple(isWildcard(h) ? 1 : 0, ~h.size());  // longer first
      };
      if (rank(x.second) != rank(y.second)) return rank(x.second) < rank(y.second);
      return olderThan(x.first, y.first);
    });
    for (auto& [route, r] : list) listener->l4Routes.push_back(std::move(r));
  }
  for (auto& [key, listeners] : ports) {
    snapshot::Port p;
    p.address = std::get<0>(key);
    p.port = static_cast<uint16_t>(std::get<1>(key));
    p.udp = std::get<2>(key);
    for (auto& l : listeners) p.listeners.push_back(l);
    std::sort(p.listeners.begin(), p.listeners.end(), moreSpecific);
    snap_->ports.push_back(std::move(p));
  }
  ctx_.result.snapshot = snap_;
}

}  // namespace

void buildSnapshot(Context& ctx) {
  Builder b(ctx);
  b.run();
}

}  // namespace archway::translate
