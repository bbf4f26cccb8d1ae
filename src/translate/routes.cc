// Route attachment (parentRefs, sectionName, port, allowedRoutes, hostnames), rule
// validation and backendRef resolution, for HTTPRoute, GRPCRoute, TLSRoute, TCPRoute and
// UDPRoute. Writes status.parents (merged with other controllers' entries).
#include <algorithm>

#include <re2/re2.h>

#include "translate/internal.h"

namespace archway::translate {

namespace {

const char* const kRouteKinds[] = {"HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"};

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

bool regexOk(const std::string& pattern) {
  RE2::Options opts;
  opts.set_log_errors(false);
  RE2 re(pattern, opts);
  return re.ok();
}

std::optional<Condition> unsupported(const std::string& message) {
  return Condition{"Accepted", false, "UnsupportedValue", message};
}

std::optional<Condition> validateHttpFilters(const api::Json& filters, const api::Json& matches,
                                             bool backendLevel) {
  bool redirect = false, rewrite = false;
  bool allPrefix = true;
  for (const auto& m : matches) {
    auto p = m.find("path");
    if (p != m.end() && p->is_object() && str(*p, "type", "PathPrefix") != "PathPrefix")
      allPrefix = false;
  }
  static const std::set<std::string> kTypes = {"RequestHeaderModifier", "ResponseHeaderModifier",
                                               "RequestRedirect",       "URLRewrite",
                                               "RequestMirror",         "CORS",
                                               "ExtensionRef"};
  for (const auto& f : filters) {
    std::string type = str(f, "type");
    if (!kTypes.count(type)) return unsupported("Filter type " + type + " is not supported");
    const char* field = type == "RequestRedirect" ? "requestRedirect"
                        : type == "URLRewrite"    ? "urlRewrite"
                                                  : nullptr;
    if (type == "RequestRedirect") redirect = true;
    if (type == "URLRewrite") rewrite = true;
    if (field) {
      auto cfg = f.find(field);
      if (cfg != f.end() && cfg->is_object()) {
        auto path = cfg->find("path");
        if (path != cfg->end() && path->is_object() && str(*path, "type") == "ReplacePrefixMatch" &&
            !allPrefix)
          return unsupported("ReplacePrefixMatch requires PathPrefix matches");
      }
    }
    if (type == "RequestMirror") {
      auto cfg = f.find("requestMirror");
      if (cfg != f.end() && cfg->is_object() && cfg->contains("percent") &&
          cfg->contains("fraction"))
        return unsupported("RequestMirror sets both percent and fraction");
    }
  }
  (void)backendLevel;
  if (redirect && rewrite)
    return Condition{"Accepted", false, "IncompatibleFilters",
                     "RequestRedirect and URLRewrite cannot be combined"};
  return std::nullopt;
}

std::optional<Condition> validateHttpRule(const api::Json& rule) {
  static const std::set<std::string> kMethods = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                                 "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  const api::Json& matches = arr(rule, "matches");
  for (const auto& m : matches) {
    if (auto p = m.find("path"); p != m.end() && p->is_object()) {
      std::string type = str(*p, "type", "PathPrefix"), value = str(*p, "value", "/");
      if (type == "Exact" || type == "PathPrefix") {
        if (value.empty() || value[0] != '/' || value.find("//") != std::string::npos)
          return unsupported("Path " + value + " must start with / and not contain //");
      } else if (type == "RegularExpression") {
        if (!regexOk(value)) return unsupported("Invalid path regular expression " + value);
      } else {
        return unsupported("Path match type " + type + " is not supported");
      }
    }
    for (const char* key : {"headers", "queryParams"}) {
      for (const auto& h : arr(m, key)) {
        std::string type = str(h, "type", "Exact");
        if (type == "RegularExpression") {
          if (!regexOk(str(h, "value"))) return unsupported("Invalid regular expression");
        } else if (type != "Exact") {
          return unsupported("Match type " + type + " is not supported");
        }
      }
    }
    if (auto me = m.find("method");
        me != m.end() && me->is_string() && !kMethods.count(me->get<std::string>()))
      return unsupported("Method " + me->get<std::string>() + " is not supported");
  }
  if (auto bad = validateHttpFilters(arr(rule, "filters"), matches, false)) return bad;
  for (const auto& b : arr(rule, "backendRefs"))
    if (auto bad = validateHttpFilters(arr(b, "filters"), matches, true)) return bad;
  if (auto t = rule.find("timeouts"); t != rule.end() && t->is_object()) {
    std::optional<std::chrono::milliseconds> request, backend;
    if (t->contains("request")) {
      request = parseDuration(str(*t, "request"));
      if (!request) return unsupported("Invalid timeouts.request");
    }
    if (t->contains("backendRequest")) {
      backend = parseDuration(str(*t, "backendRequest"));
      if (!backend) return unsupported("Invalid timeouts.backendRequest");
    }
    if (request && backend && request->count() > 0 && *backend > *request)
      return unsupported("timeouts.backendRequest must not exceed timeouts.request");
  }
  if (auto r = rule.find("retry"); r != rule.end() && r->is_object() && r->contains("backoff"))
    if (!parseDuration(str(*r, "backoff"))) return unsupported("Invalid retry.backoff");
  return std::nullopt;
}

std::optional<Condition> validateGrpcRule(const api::Json& rule) {
  for (const auto& m : arr(rule, "matches")) {
    if (auto me = m.find("method"); me != m.end() && me->is_object()) {
      std::string type = str(*me, "type", "Exact");
      std::string service = str(*me, "service"), method = str(*me, "method");
      if (type == "Exact") {
        if (service.empty() && method.empty())
          return unsupported("A method match needs a service or a method");
      } else if (type == "RegularExpression") {
        if ((!service.empty() && !regexOk(service)) || (!method.empty() && !regexOk(method)))
          return unsupported("Invalid method regular expression");
      } else {
        return unsupported("Method match type " + type + " is not supported");
      }
    }
    for (const auto& h : arr(m, "headers")) {
      std::string type = str(h, "type", "Exact");
      if (type == "RegularExpression" && !regexOk(str(h, "value")))
        return unsupported("Invalid header regular expression");
      if (type != "Exact" && type != "RegularExpression")
        return unsupported("Header match type " + type + " is not supported");
    }
  }
  static const std::set<std::string> kTypes = {"RequestHeaderModifier", "ResponseHeaderModifier",
                                               "RequestMirror", "ExtensionRef"};
  for (const auto& f : arr(rule, "filters"))
    if (!kTypes.count(str(f, "type")))
      return unsupported("Filter type " + str(f, "type") + " is not supported on GRPCRoute");
  for (const auto& b : arr(rule, "backendRefs"))
    for (const auto& f : arr(b, "filters"))
      if (!kTypes.count(str(f, "type")))
        return unsupported("Filter type " + str(f, "type") + " is not supported on GRPCRoute");
  return std::nullopt;
}

// Every backendRef of a route, including mirror targets.
std::vector<const api::Json*> allBackendRefs(const api::Object& route) {
  std::vector<const api::Json*> out;
  auto mirrors = [&](const api::Json& filters) {
    for (const auto& f : filters)
      if (str(f, "type") == "RequestMirror")
        if (auto m = f.find("requestMirror"); m != f.end() && m->is_object())
          if (auto b = m->find("backendRef"); b != m->end() && b->is_object()) out.push_back(&*b);
  };
  for (const auto& rule : arr(route.spec(), "rules")) {
    mirrors(arr(rule, "filters"));
    for (const auto& b : arr(rule, "backendRefs")) {
      out.push_back(&b);
      mirrors(arr(b, "filters"));
    }
  }
  return out;
}

bool namespaceAllowed(Context& ctx, const ListenerInfo& l, const std::string& routeNs) {
  if (l.from == "All") return true;
  if (l.from == "Selector")
    return labelSelectorMatches(l.selector, namespaceLabels(ctx.store, routeNs));
  return routeNs == l.owner->ns;  // Same: the namespace of the Gateway or ListenerSet
}

std::vector<std::string> routeHostnames(const api::Object& route) {
  std::vector<std::string> out;
  if (route.kind == "TCPRoute" || route.kind == "UDPRoute") return out;
  for (const auto& h : arr(route.spec(), "hostnames"))
    if (h.is_string()) out.push_back(toLower(h.get<std::string>()));
  return out;
}

}  // namespace

bool isRouteKind(const api::Object& o) {
  for (const char* k : kRouteKinds)
    if (o.kind == k)
      return std::string_view(o.apiVersion).starts_with("gateway.networking.k8s.io/");
  return false;
}

namespace {

BackendResolution resolveUncached(Context& ctx, const api::Object& route, const api::Json& ref) {
  BackendResolution r;
  std::string group = str(ref, "group"), kind = str(ref, "kind", "Service");
  std::string name = str(ref, "name"), ns = str(ref, "namespace", route.ns);
  if (!group.empty() || kind != "Service") {
    r.reason = "InvalidKind";
    r.message = "backendRef " + (group.empty() ? "core" : group) + "/" + kind + " " + name +
                " is not a supported kind";
    return r;
  }
  if (!referenceAllowed(ctx.store, kGatewayGroup, route.kind, route.ns, "", "Service", ns, name)) {
    r.reason = "RefNotPermitted";
    r.message =
        "backendRef to Service " + ns + "/" + name + " is not permitted by any ReferenceGrant";
    return r;
  }
  const api::Object* svc = ctx.store.find("Service", ns, name);
  if (svc && !svc->validationErrors.empty()) {
    r.reason = "BackendNotFound";
    r.message = "Service " + ns + "/" + name + " is invalid: " + svc->validationErrors.front();
    return r;
  }
  if (!svc) {
    r.reason = "BackendNotFound";
    r.message = "Service " + ns + "/" + name + " does not exist";
    return r;
  }
  r.service = svc;
  r.port = intField(ref, "port", 0);
  const api::Json& ports = arr(svc->spec(), "ports");
  if (r.port == 0) {
    r.reason = "BackendNotFound";
    r.message = "backendRef to Service " + ns + "/" + name + " needs a port";
    return r;
  }
  for (const auto& p : ports)
    if (p.is_object() && intField(p, "port", 0) == r.port) r.servicePort = &p;
  if (!ports.empty() && !r.servicePort) {
    r.reason = "BackendNotFound";
    r.message = "Service " + ns + "/" + name + " has no port " + std::to_string(r.port);
    return r;
  }
  if (r.servicePort) {
    std::string app = str(*r.servicePort, "appProtocol");
    if (app.rfind("kubernetes.io/", 0) == 0 && app != "kubernetes.io/h2c" &&
        app != "kubernetes.io/ws") {
      r.reason = "UnsupportedProtocol";
      r.message = "appProtocol " + app + " is not supported";
      return r;
    }
  }
  return r;
}

}  // namespace

BackendResolution resolveBackendRef(Context& ctx, const api::Object& route, const api::Json& ref) {
  auto it = ctx.resolvedRefs.find(&ref);
  if (it == ctx.resolvedRefs.end())
    it = ctx.resolvedRefs.emplace(&ref, resolveUncached(ctx, route, ref)).first;
  return it->second;
}

namespace {

uint32_t listenerIndex(const Context& ctx, const ListenerInfo* l) { return ctx.indexOf.at(l); }
uint32_t gatewayIndex(const Context& ctx, const GatewayInfo* gw) { return ctx.indexOf.at(gw); }

// Translates one route: its rules, references and parents. Everything it adds to the
// context is also written to `rec` when given (Translator replays it next time).
void translateRoute(Context& ctx, const api::Object* route, uint32_t rank, RouteRecord* rec) {
  const size_t firstDiagnostic = ctx.result.diagnostics.size();
  const size_t firstAttachment = ctx.attachments.size();
  [&] {
    const api::Json& spec = route->spec();
    const api::Json& parentRefs = arr(spec, "parentRefs");
    api::ObjectKey key = api::keyOf(*route);

    // Rules: drop invalid ones (PartiallyInvalid) unless every rule is invalid.
    std::optional<Condition> ruleFailure;
    size_t ruleCount = 0;
    std::set<size_t> invalid;
    if (route->kind == "HTTPRoute" || route->kind == "GRPCRoute") {
      const api::Json& rules = arr(spec, "rules");
      ruleCount = rules.size();
      for (size_t i = 0; i < rules.size(); ++i) {
        auto bad =
            route->kind == "HTTPRoute" ? validateHttpRule(rules[i]) : validateGrpcRule(rules[i]);
        if (bad) {
          invalid.insert(i);
          if (!ruleFailure) ruleFailure = bad;
        }
      }
    }
    if (!invalid.empty()) ctx.invalidRules[key] = invalid;
    bool allRulesInvalid = ruleCount > 0 && invalid.size() == ruleCount;

    Condition resolved{"ResolvedRefs", true, "ResolvedRefs", "All references are resolved"};
    for (const api::Json* ref : allBackendRefs(*route)) {
      BackendResolution r = resolveBackendRef(ctx, *route, *ref);
      if (!r.reason.empty()) {
        resolved = {"ResolvedRefs", false, r.reason, r.message};
        ctx.diag(*route, "spec.rules", r.reason + ": " + r.message);
        break;
      }
    }
    std::vector<std::string> hostnames = routeHostnames(*route);

    api::Json ourParents = api::Json::array();
    std::set<const ListenerInfo*> countedOn;
    bool anyOurs = false;
    for (size_t pi = 0; pi < parentRefs.size(); ++pi) {
      const api::Json& pref = parentRefs[pi];
      std::string group = str(pref, "group", kGatewayGroup), kind = str(pref, "kind", "Gateway");
      std::string ns = str(pref, "namespace", route->ns), name = str(pref, "name");
      if (group != kGatewayGroup) continue;
      std::vector<ListenerInfo>* listeners = nullptr;
      GatewayInfo* gw = nullptr;
      ListenerSetInfo* ls = nullptr;
      if (kind == "Gateway") {
        auto it = ctx.gatewayByKey.find({"Gateway", ns, name});
        if (it == ctx.gatewayByKey.end()) continue;  // not ours (or absent): no status from us
        gw = it->second;
        listeners = &gw->listeners;
      } else if (kind == "ListenerSet") {
        auto it = ctx.listenerSetByKey.find({"ListenerSet", ns, name});
        if (it == ctx.listenerSetByKey.end()) continue;
        ls = it->second;
        gw = ls->gateway;
        listeners = &ls->listeners;
      } else {
        continue;
      }
      anyOurs = true;
      std::optional<std::string> sectionName;
      if (auto s = pref.find("sectionName"); s != pref.end() && s->is_string())
        sectionName = s->get<std::string>();
      std::optional<int> port;
      if (auto p = pref.find("port"); p != pref.end() && p->is_number_integer())
        port = p->get<int>();

      Condition accepted{"Accepted", true, "Accepted", "Route is accepted"};
      std::vector<std::pair<ListenerInfo*, std::vector<std::string>>> attachTo;
      if (!route->validationErrors.empty()) {
        std::string msg;
        for (const auto& e : route->validationErrors) msg += (msg.empty() ? "" : "; ") + e;
        // A filter combination the schema forbids keeps its specific reason.
        bool incompatible = ruleFailure && ruleFailure->reason == "IncompatibleFilters";
        accepted = {"Accepted", false, incompatible ? "IncompatibleFilters" : "UnsupportedValue",
                    msg};
      } else if (gw->rejected) {
        accepted = {"Accepted", false, "NoMatchingParent",
                    "Gateway " + gw->object->ns + "/" + gw->object->name + " is not accepted"};
      } else if (allRulesInvalid) {
        accepted = *ruleFailure;
      } else if (ls && !ls->accepted) {
        accepted = {"Accepted", false, "NotAllowedByListeners",
                    "ListenerSet " + ns + "/" + name + " is not accepted"};
      } else {
        bool selected = false, allowed = false;
        for (auto& l : *listeners) {
          if (sectionName && l.name != *sectionName) continue;
          if (port && l.port != *port) continue;
          selected = true;
          bool kindOk = std::find(l.kinds.begin(), l.kinds.end(), route->kind) != l.kinds.end();
          if (!kindOk || !namespaceAllowed(ctx, l, route->ns)) continue;
          allowed = true;
          auto effective = intersectHostnames(l.hostname, hostnames);
          if (!effective) continue;
          attachTo.emplace_back(&l, *effective);
        }
        if (!selected) {
          accepted = {"Accepted", false, "NoMatchingParent",
                      "No listener matches the parentRef's sectionName/port"};
        } else if (!allowed) {
          accepted = {"Accepted", false, "NotAllowedByListeners",
                      "No listener allows this route's kind and namespace"};
        } else if (attachTo.empty()) {
          accepted = {"Accepted", false, "NoMatchingListenerHostname",
                      "No listener hostname intersects the route's hostnames"};
        }
      }
      if (accepted.status) {
        for (auto& [l, effective] : attachTo) {
          if (countedOn.insert(l).second) ++l->attachedRoutes;
          ctx.attachments.push_back({route, l, effective});
        }
        // Services this Gateway routes to (BackendTLSPolicy ancestors).
        for (const api::Json* ref : allBackendRefs(*route)) {
          BackendResolution r = resolveBackendRef(ctx, *route, *ref);
          if (!r.service) continue;
          std::string user = r.service->ns + "/" + r.service->name;
          ctx.serviceUsers[user].insert(gw);
          if (rec) rec->serviceUsers.emplace_back(std::move(user), gatewayIndex(ctx, gw));
        }
      }
      if (!accepted.status)
        ctx.diag(*route, "spec.parentRefs[" + std::to_string(pi) + "]",
                 "not accepted by " + kind + " " + ns + "/" + name + ": " + accepted.reason + ": " +
                     accepted.message);
      if (!ctx.options.computeStatuses) continue;
      std::vector<Condition> conds{accepted, resolved};
      if (accepted.status && !invalid.empty())
        conds.push_back({"PartiallyInvalid", true, "UnsupportedValue",
                         "Dropped Rule(s): " + ruleFailure->message});
      api::Json parentRef = {{"group", group}, {"kind", kind}, {"namespace", ns}, {"name", name}};
      if (sectionName) parentRef["sectionName"] = *sectionName;
      if (port) parentRef["port"] = *port;
      ourParents.push_back({{"parentRef", parentRef},
                            {"controllerName", ctx.options.controllerName},
                            {"conditions", conditionsJson(conds, route->generation)}});
    }
    if (!anyOurs || !ctx.options.computeStatuses) return;
    // Keep entries written by other controllers; ours replace our previous ones.
    api::Json parents = api::Json::array();
    if (auto st = route->body.find("status"); st != route->body.end() && st->is_object())
      for (const auto& p : arr(*st, "parents"))
        if (str(p, "controllerName") != ctx.options.controllerName) parents.push_back(p);
    for (auto& p : ourParents) parents.push_back(std::move(p));
    ctx.result.statuses[key] = {{"parents", parents}};
  }();
  for (size_t i = firstAttachment; i < ctx.attachments.size(); ++i)
    ctx.attachments[i].routeRank = rank;
  if (!rec) return;
  if (auto it = ctx.invalidRules.find(api::keyOf(*route)); it != ctx.invalidRules.end())
    rec->invalidRules = it->second;
  rec->diagnostics.assign(ctx.result.diagnostics.begin() + firstDiagnostic,
                          ctx.result.diagnostics.end());
  for (size_t i = firstAttachment; i < ctx.attachments.size(); ++i) {
    Attachment& a = ctx.attachments[i];
    a.record = rec;
    a.index = rec->attachments.size();
    rec->attachments.push_back({listenerIndex(ctx, a.listener), a.hostnames});
  }
  rec->built.resize(rec->attachments.size());
  if (ctx.options.computeStatuses)
    if (auto it = ctx.result.statuses.find(api::keyOf(*route)); it != ctx.result.statuses.end())
      rec->status = it->second;
}

// Adds what a recorded route contributed, as translateRoute() did when it recorded it.
void replayRoute(Context& ctx, const api::Object* route, uint32_t rank, RouteRecord& rec) {
  if (!rec.invalidRules.empty()) ctx.invalidRules[api::keyOf(*route)] = rec.invalidRules;
  ctx.result.diagnostics.insert(ctx.result.diagnostics.end(), rec.diagnostics.begin(),
                                rec.diagnostics.end());
  for (size_t i = 0; i < rec.attachments.size(); ++i) {
    const uint32_t index = rec.attachments[i].listener;
    ListenerInfo* l = ctx.allListeners[index];
    bool first = true;  // attachedRoutes counts a route once per listener
    for (size_t j = 0; j < i && first; ++j) first = rec.attachments[j].listener != index;
    if (first) ++l->attachedRoutes;
    ctx.attachments.push_back({route, l, rec.attachments[i].hostnames, &rec, i, rank});
  }
  for (const auto& [user, gw] : rec.serviceUsers)
    ctx.serviceUsers[user].insert(ctx.gateways[gw].get());
  if (rec.status) ctx.result.statuses[api::keyOf(*route)] = *rec.status;
}

}  // namespace

namespace {

// Sorts routes in olderThan order, with each distinct creationTimestamp compared once
// (routes share few, and neighbours in the store usually share one).
void sortByAge(std::vector<const api::Object*>& routes) {
  std::map<std::string_view, uint32_t> stamps;
  const std::string* last = nullptr;
  for (const api::Object* o : routes) {
    if (last && *last == o->creationTimestamp) continue;
    last = &o->creationTimestamp;
    stamps.emplace(*last, 0);
  }
  uint32_t n = 0;
  for (auto& [stamp, rank] : stamps) rank = n++;
  struct Keyed {
    uint32_t stamp;
    bool noStamp;
    int64_t order;
    const api::Object* route;
  };
  std::vector<Keyed> keyed;
  keyed.reserve(routes.size());
  last = nullptr;
  uint32_t lastRank = 0;
  for (const api::Object* o : routes) {
    if (!last || *last != o->creationTimestamp) {
      last = &o->creationTimestamp;
      lastRank = stamps.find(*last)->second;
    }
    keyed.push_back({lastRank, o->creationTimestamp.empty(), o->creationOrder, o});
  }
  std::sort(keyed.begin(), keyed.end(), [](const Keyed& a, const Keyed& b) {
    if (a.stamp != b.stamp && !a.noStamp && !b.noStamp) return a.stamp < b.stamp;
    if (a.order != b.order) return a.order < b.order;
    return std::tie(a.route->ns, a.route->name) < std::tie(b.route->ns, b.route->name);
  });
  for (size_t i = 0; i < keyed.size(); ++i) routes[i] = keyed[i].route;
}

}  // namespace

void processRoutes(Context& ctx) {
  std::vector<const api::Object*> routes;
  for (const char* kind : kRouteKinds)
    for (const api::Object* o : ctx.store.ofKind(kind))
      if (std::string_view(o->apiVersion).starts_with("gateway.networking.k8s.io/"))
        routes.push_back(o);  // isRouteKind(), the kind being known

  TranslationCache* cache = ctx.cache;
  // Usually one attachment per route: no reallocation on the way (10,000 routes moved
  // their attachments and records many times).
  ctx.attachments.reserve(routes.size());
  if (!cache) {
    sortByAge(routes);
    for (uint32_t rank = 0; rank < routes.size(); ++rank)
      translateRoute(ctx, routes[rank], rank, nullptr);
    return;
  }
  // Routes with a record (same revision: same age and name) move to this translation's
  // records; they keep their relative order from the last translation, so only the others
  // are sorted, then merged in. olderThan is a total order when every route has a creation
  // timestamp (creationOrder is unique in a store); otherwise everything is sorted again.
  std::vector<const api::Object*> fresh;
  bool stamped = true;
  cache->next.reserve(routes.size());
  for (const api::Object* o : routes) {
    if (o->creationTimestamp.empty()) stamped = false;
    if (auto node = cache->routes.extract(o->revision)) {
      node.mapped().current = o;
      cache->next.insert(std::move(node));
    } else {
      fresh.push_back(o);
    }
  }
  std::vector<std::pair<const api::Object*, RouteRecord*>> ordered;
  ordered.reserve(routes.size());
  cache->ranksKeepOrder = stamped;
  if (stamped) {
    std::vector<std::pair<const api::Object*, RouteRecord*>> kept;
    kept.reserve(routes.size() - fresh.size());
    for (uint64_t revision : cache->order)
      if (auto it = cache->next.find(revision); it != cache->next.end())
        kept.emplace_back(it->second.current, &it->second);
    sortByAge(fresh);
    auto older = [](const std::pair<const api::Object*, RouteRecord*>& a,
                    const std::pair<const api::Object*, RouteRecord*>& b) {
      return olderThan(a.first, b.first);
    };
    // Each changed route is placed by binary search (a change is usually one route among
    // thousands); kept routes before it are copied over. Ties cannot happen (total order).
    auto from = kept.begin();
    for (const api::Object* o : fresh) {
      std::pair<const api::Object*, RouteRecord*> f{o, nullptr};
      auto at = std::upper_bound(from, kept.end(), f, older);
      ordered.insert(ordered.end(), from, at);
      ordered.push_back(f);
      from = at;
    }
    ordered.insert(ordered.end(), from, kept.end());
  } else {
    sortByAge(routes);
    for (const api::Object* o : routes) {
      auto it = cache->next.find(o->revision);
      ordered.emplace_back(o, it != cache->next.end() ? &it->second : nullptr);
    }
  }
  cache->order.clear();
  cache->order.reserve(ordered.size());
  for (uint32_t rank = 0; rank < ordered.size(); ++rank) {
    auto [route, record] = ordered[rank];
    cache->order.push_back(route->revision);
    if (record) {
      record->rank = rank;
      replayRoute(ctx, route, rank, *record);
      ++cache->counters.routesReused;
      continue;
    }
    RouteRecord& rec = cache->next[route->revision];
    rec = RouteRecord{};
    rec.rank = rank;
    translateRoute(ctx, route, rank, &rec);
    ++cache->counters.routesTranslated;
  }
}

}  // namespace archway::translate
