// Translator (incremental) against translate() (from scratch): after every step of random
// sequences of edits, both must give the same snapshot (every field, see dump()), the same
// statuses and the same diagnostics, in the same order.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "api/loader.h"
#include "api/validation.h"
#include "translate/translator.h"

namespace archway::translate {
namespace {

using api::Json;

Json regexJson(const std::shared_ptr<const re2::RE2>& re) {
  return re ? Json(re->pattern()) : Json(nullptr);
}

// Every field of a snapshot; backends by id, with a check that each reference is the very
// Backend the snapshot lists under that id (the data plane relies on it).
Json dump(const snapshot::Snapshot& s) {
  auto backendRef = [&](const std::shared_ptr<const snapshot::Backend>& b) -> Json {
    if (!b) return nullptr;
    auto it = s.backends.find(b->id);
    return {{"id", b->id}, {"listed", it != s.backends.end() && it->second == b}};
  };
  auto pathMod = [](const snapshot::PathModifier& p) {
    return Json{{"type", static_cast<int>(p.type)}, {"value", p.value}};
  };
  auto filters = [&](const std::vector<snapshot::HttpFilter>& list) {
    Json out = Json::array();
    for (const auto& f : list) {
      Json j = {{"type", static_cast<int>(f.type)}};
      j["headers"] = {{"set", f.headers.set}, {"add", f.headers.add}, {"remove", f.headers.remove}};
      j["redirect"] = {{"scheme", f.redirect.scheme.value_or("-")},
                       {"hostname", f.redirect.hostname.value_or("-")},
                       {"port", f.redirect.port ? *f.redirect.port : -1},
                       {"path", pathMod(f.redirect.path)},
                       {"status", f.redirect.statusCode}};
      j["rewrite"] = {{"hostname", f.rewrite.hostname.value_or("-")},
                      {"path", pathMod(f.rewrite.path)}};
      j["mirror"] = {{"backend", backendRef(f.mirror.backend)},
                     {"num", f.mirror.numerator},
                     {"den", f.mirror.denominator}};
      j["cors"] = {{"origins", f.cors.allowOrigins}, {"credentials", f.cors.allowCredentials},
                   {"methods", f.cors.allowMethods}, {"headers", f.cors.allowHeaders},
                   {"expose", f.cors.exposeHeaders}, {"maxAge", f.cors.maxAgeSeconds}};
      j["extension"] = {{"group", f.extension.group},
                        {"kind", f.extension.kind},
                        {"ns", f.extension.ns},
                        {"name", f.extension.name},
                        {"config", f.extension.configJson},
                        {"resolved", f.extension.resolved}};
      out.push_back(j);
    }
    return out;
  };
  auto weighted = [&](const std::vector<snapshot::WeightedBackend>& list) {
    Json out = Json::array();
    for (const auto& b : list)
      out.push_back({{"backend", backendRef(b.backend)},
                     {"weight", b.weight},
                     {"filters", filters(b.filters)}});
    return out;
  };
  auto stringMatches = [](const std::vector<snapshot::StringMatch>& list) {
    Json out = Json::array();
    for (const auto& m : list)
      out.push_back({{"type", static_cast<int>(m.type)},
                     {"name", m.name},
                     {"value", m.value},
                     {"regex", regexJson(m.regex)}});
    return out;
  };
  Json ports = Json::array();
  for (const auto& p : s.ports) {
    Json listeners = Json::array();
    for (const auto& l : p.listeners) {
      Json certs = Json::array();
      for (const auto& c : l->certificates)
        certs.push_back({c.certChainPem, c.keyPem, c.secretNs, c.secretName});
      Json http = Json::array();
      for (const auto& e : l->httpRoutes) {
        Json rule = nullptr;
        if (e.rule) {
          const auto& r = *e.rule;
          rule = {
              {"route", r.routeNs + "/" + r.routeName},
              {"name", r.ruleName},
              {"index", r.ruleIndex},
              {"filters", filters(r.filters)},
              {"backends", weighted(r.backends)},
              {"timeout", r.requestTimeout ? r.requestTimeout->count() : -1},
              {"backendTimeout", r.backendRequestTimeout ? r.backendRequestTimeout->count() : -1},
              {"grpc", r.isGrpc}};
          if (r.retry)
            rule["retry"] = {{"codes", r.retry->codes},
                             {"attempts", r.retry->attempts},
                             {"backoff", r.retry->backoff.count()},
                             {"connErrors", r.retry->retryConnectionErrors}};
        }
        http.push_back({{"hostnames", e.hostnames},
                        {"path",
                         {{"type", static_cast<int>(e.match.path.type)},
                          {"value", e.match.path.value},
                          {"regex", regexJson(e.match.path.regex)}}},
                        {"method", e.match.method.value_or("-")},
                        {"headers", stringMatches(e.match.headers)},
                        {"query", stringMatches(e.match.queryParams)},
                        {"rule", rule}});
      }
      Json l4 = Json::array();
      for (const auto& r : l->l4Routes)
        l4.push_back({{"route", r.routeNs + "/" + r.routeName},
                      {"hostnames", r.hostnames},
                      {"backends", weighted(r.backends)}});
      listeners.push_back({{"gateway", l->gatewayNs + "/" + l->gatewayName},
                           {"listenerSet", l->listenerSetNs + "/" + l->listenerSetName},
                           {"name", l->name},
                           {"protocol", static_cast<int>(l->protocol)},
                           {"port", l->port},
                           {"hostname", l->hostname.value_or("-")},
                           {"certificates", certs},
                           {"passthrough", l->tlsPassthrough},
                           {"clientValidation",
                            l->clientValidation ? Json{l->clientValidation->caPem,
                                                       l->clientValidation->allowInsecureFallback}
                                                : Json(nullptr)},
                           {"http", http},
                           {"l4", l4}});
    }
    ports.push_back(
        {{"address", p.address}, {"port", p.port}, {"udp", p.udp}, {"listeners", listeners}});
  }
  Json backends = Json::object();
  for (const auto& [id, b] : s.backends) {
    Json eps = Json::array();
    for (const auto& e : b->endpoints) eps.push_back(e.address + ":" + std::to_string(e.port));
    Json tls = nullptr;
    if (b->tls)
      tls = {{"sni", b->tls->sni},
             {"ca", b->tls->caPem},
             {"system", b->tls->useSystemCas},
             {"sans", b->tls->subjectAltNames},
             {"cert", b->tls->clientCertPem},
             {"key", b->tls->clientKeyPem},
             {"invalid", b->tls->invalid}};
    backends[id] = {{"id", b->id},
                    {"ns", b->ns},
                    {"service", b->service},
                    {"port", b->port},
                    {"protocol", static_cast<int>(b->protocol)},
                    {"endpoints", eps},
                    {"tls", tls}};
  }
  return {{"ports", ports}, {"backends", backends}, {"version", s.version}};
}

std::vector<std::string> diagnostics(const TranslateResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.format());
  return out;
}

bool isRoute(const api::Object& o) {
  return o.apiVersion.starts_with("gateway.networking.k8s.io/") &&
         (o.kind == "HTTPRoute" || o.kind == "GRPCRoute" || o.kind == "TLSRoute" ||
          o.kind == "TCPRoute" || o.kind == "UDPRoute");
}

// A changed copy of a route: one of a few edits that change attachment, hostnames, matches,
// backends or rules.
api::Object mutateRoute(api::Object o, std::mt19937& rng) {
  Json& spec = o.body["spec"];
  if (!spec.is_object()) return o;
  std::uniform_int_distribution<int> pick(0, 6);
  switch (pick(rng)) {
    case 0:  // another hostname list
      if (o.kind == "HTTPRoute" || o.kind == "GRPCRoute" || o.kind == "TLSRoute") {
        static const char* kHosts[] = {"a.example.com", "*.example.com", "b.example.org", "x.y.z"};
        spec["hostnames"] = Json::array({kHosts[rng() % 4]});
        if (rng() % 3 == 0) spec.erase("hostnames");
      }
      break;
    case 1:  // detach from / re-target the section
      if (spec.contains("parentRefs") && spec["parentRefs"].is_array() &&
          !spec["parentRefs"].empty() && spec["parentRefs"][0].is_object()) {
        Json& p = spec["parentRefs"][0];
        if (p.contains("sectionName"))
          p.erase("sectionName");
        else
          p["sectionName"] = rng() % 2 ? "http" : "nope";
      }
      break;
    case 2:  // change a path or add a rule
      if (o.kind == "HTTPRoute" && spec.contains("rules") && spec["rules"].is_array()) {
        Json rule = {
            {"matches", Json::array({{{"path",
                                       {{"type", rng() % 2 ? "PathPrefix" : "Exact"},
                                        {"value", "/m" + std::to_string(rng() % 50)}}}}})}};
        if (!spec["rules"].empty() && spec["rules"][0].is_object() && rng() % 2) {
          spec["rules"][0]["matches"] = rule["matches"];
        } else {
          if (!spec["rules"].empty() && spec["rules"][0].is_object() &&
              spec["rules"][0].contains("backendRefs"))
            rule["backendRefs"] = spec["rules"][0]["backendRefs"];
          spec["rules"].push_back(rule);
        }
      }
      break;
    case 3:  // a backend port that may not exist
      if (spec.contains("rules") && spec["rules"].is_array())
        for (auto& r : spec["rules"])
          if (r.is_object() && r.contains("backendRefs") && r["backendRefs"].is_array())
            for (auto& b : r["backendRefs"])
              if (b.is_object() && b.contains("port")) b["port"] = rng() % 2 ? 80 : 8080;
      break;
    case 4:  // drop the rules' matches (the default match) or the first rule
      if (spec.contains("rules") && spec["rules"].is_array() && !spec["rules"].empty()) {
        if (rng() % 2 && spec["rules"][0].is_object())
          spec["rules"][0].erase("matches");
        else if (spec["rules"].size() > 1)
          spec["rules"].erase(0);
      }
      break;
    case 5:  // a regular expression, valid or not
      if (o.kind == "HTTPRoute" && spec.contains("rules") && spec["rules"].is_array() &&
          !spec["rules"].empty() && spec["rules"][0].is_object())
        spec["rules"][0]["matches"] = Json::array(
            {{{"path",
               {{"type", "RegularExpression"}, {"value", rng() % 3 ? "/r[0-9]+" : "/("}}}}});
      break;
    default:  // same content, new revision (a re-applied manifest)
      break;
  }
  o.generation += 1;
  return o;
}

// A changed copy of a non-route object (the context): a Service port, endpoint readiness,
// a Gateway listener, a namespace label; or the same object again.
api::Object mutateOther(api::Object o, std::mt19937& rng) {
  if (o.kind == "Service" && o.body["spec"].contains("ports") &&
      o.body["spec"]["ports"].is_array() && !o.body["spec"]["ports"].empty() &&
      o.body["spec"]["ports"][0].is_object()) {
    o.body["spec"]["ports"][0]["port"] = rng() % 2 ? 80 : 8080;
  } else if (o.kind == "EndpointSlice" && o.body.contains("endpoints") &&
             o.body["endpoints"].is_array()) {
    o.body["endpoints"].push_back(
        {{"addresses", Json::array({"10.9.9." + std::to_string(rng() % 9)})},
         {"conditions", {{"ready", rng() % 2 == 0}}}});
  } else if (o.kind == "Gateway" && o.body["spec"].contains("listeners") &&
             o.body["spec"]["listeners"].is_array() && !o.body["spec"]["listeners"].empty() &&
             o.body["spec"]["listeners"][0].is_object()) {
    Json& l = o.body["spec"]["listeners"][0];
    if (l.contains("hostname"))
      l.erase("hostname");
    else
      l["hostname"] = "*.example.com";
  } else if (o.kind == "Namespace") {
    o.body["metadata"]["labels"]["team"] = rng() % 2 ? "a" : "b";
  }
  return o;
}

// Applies `steps` random edits to a store holding (at first) part of `pool`, comparing the
// Translator with translate() after each; adds how many routes the Translator reused.
// Creation timestamps given to routes as a source would: none (as loaded), all stamped (a few
// distinct stamps, so that ties fall to creation order; the Translator's order is then
// updated by merging the changed routes in), or some stamped (everything sorted again).
enum class Stamps { kNone, kAll, kSome };

void runSequence(const std::vector<api::Object>& pool, uint32_t seed, int steps, bool statuses,
                 const std::string& what, uint64_t* reused, Stamps stamps = Stamps::kNone) {
  std::mt19937 rng(seed);
  api::Store store;
  std::vector<const api::Object*> absent;
  // A route put for the first time (or again after a delete) gets a stamp; a changed
  // version keeps the stored one (Store::put), as with the file source.
  auto put = [&](api::Object o) {
    if (stamps != Stamps::kNone && isRoute(o) && o.creationTimestamp.empty() &&
        (stamps == Stamps::kAll || rng() % 3 != 0) && !store.find(o.kind, o.ns, o.name))
      o.creationTimestamp = "2026-01-0" + std::to_string(1 + rng() % 3) + "T00:00:00Z";
    store.put(std::move(o));
  };
  for (const auto& o : pool) {
    if (isRoute(o) && rng() % 4 == 0)
      absent.push_back(&o);
    else
      put(o);
  }
  TranslateOptions options;
  options.computeStatuses = statuses;
  Translator translator;
  for (int step = 0; step <= steps; ++step) {
    if (step > 0) {
      std::vector<const api::Object*> routes, others;
      for (const auto& [key, o] : store.all()) (isRoute(o) ? routes : others).push_back(&o);
      int action = static_cast<int>(rng() % 10);
      if (action < 4 && !routes.empty()) {  // edit a route (most changes)
        put(mutateRoute(*routes[rng() % routes.size()], rng));
      } else if (action < 6 && !absent.empty()) {  // add a route
        size_t i = rng() % absent.size();
        put(*absent[i]);
        absent.erase(absent.begin() + static_cast<long>(i));
      } else if (action < 7 && !routes.empty()) {  // delete a route
        const api::Object* r = routes[rng() % routes.size()];
        for (const auto& o : pool)
          if (api::keyOf(o) == api::keyOf(*r)) absent.push_back(&o);
        store.erase(api::keyOf(*r));
      } else if (action < 8) {  // several routes at once
        for (int k = 0; k < 3 && !routes.empty(); ++k)
          put(mutateRoute(*routes[rng() % routes.size()], rng));
      } else if (action < 9 && !others.empty()) {  // the context changes
        put(mutateOther(*others[rng() % others.size()], rng));
      }
      // else: nothing changed (a translation of the same store)
    }
    TranslateResult full = translate(store, options);
    SCOPED_TRACE(what + " seed " + std::to_string(seed) + " step " + std::to_string(step));
    // Translated after the change, then again without one (every route replayed).
    for (int again = 0; again < 2; ++again) {
      TranslateResult inc = translator.translate(store, options);
      ASSERT_TRUE(inc.snapshot && full.snapshot);
      ASSERT_EQ(dump(*inc.snapshot).dump(1), dump(*full.snapshot).dump(1)) << again;
      ASSERT_EQ(diagnostics(inc), diagnostics(full)) << again;
      ASSERT_EQ(inc.statuses.size(), full.statuses.size()) << again;
      for (const auto& [key, st] : full.statuses) {
        auto it = inc.statuses.find(key);
        ASSERT_TRUE(it != inc.statuses.end()) << key.kind << " " << key.ns << "/" << key.name;
        ASSERT_EQ(it->second.dump(), st.dump()) << key.kind << " " << key.ns << "/" << key.name;
      }
    }
  }
  *reused += translator.counters().routesReused;
}

std::vector<api::Object> loadCase(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::path golden = fs::path(ARCHWAY_SOURCE_DIR) / "tests" / "golden";
  std::vector<std::string> paths{(golden / "fixtures" / "common.yaml").string()};
  for (const auto& f : fs::directory_iterator(dir))
    if (f.path().filename() != "expected.yaml") paths.push_back(f.path().string());
  std::sort(paths.begin() + 1, paths.end());
  api::LoadResult loaded = api::loadPaths(paths);
  api::validateAll(loaded);
  return loaded.objects;
}

// Every golden case (all route kinds, filters, grants, ListenerSets, policies, TLS) as the
// pool of objects, a few random sequences each, with and without statuses.
TEST(TranslatorIncremental, RandomEditsMatchFullTranslationOnGoldenCases) {
  namespace fs = std::filesystem;
  fs::path cases = fs::path(ARCHWAY_SOURCE_DIR) / "tests" / "golden" / "cases";
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(cases)) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  uint64_t reused = 0;
  for (size_t c = 0; c < dirs.size(); ++c) {
    std::vector<api::Object> pool = loadCase(dirs[c]);
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      runSequence(pool, seed * 1000 + static_cast<uint32_t>(c), 10, seed % 2 == 0,
                  dirs[c].filename().string(), &reused, static_cast<Stamps>(seed - 1));
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GT(dirs.size(), 10u);
  EXPECT_GT(reused, 100u);  // the comparison is about reuse: it must happen
}

// Many routes on a few listeners (the shape of large configurations): long sequences where
// most steps change one route and a few change the context.
TEST(TranslatorIncremental, RandomEditsMatchFullTranslationWithManyRoutes) {
  std::string text = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: archway}
spec: {controllerName: archway.dev/gateway-controller}
---
apiVersion: v1
kind: Namespace
metadata: {name: other, labels: {team: a}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: archway
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: web, port: 80, protocol: HTTP, hostname: "*.example.com",
     allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: a}}}}}
  - {name: tcp, port: 9000, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec:
  ports: [{name: web, port: 8080}, {name: alt, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-1, namespace: ns, labels: {kubernetes.io/service-name: svc}}
ports: [{name: web, port: 3000}, {name: alt, port: 3001}]
endpoints:
- addresses: [10.0.0.1]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: grant, namespace: ns}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: other}]
  to: [{group: "", kind: Service}]
)";
  for (int i = 0; i < 60; ++i) {
    std::string ns = i % 5 == 0 ? "other" : "ns";
    std::string host = i % 3 == 0 ? "" : i % 3 == 1 ? "a.example.com" : "*.example.com";
    text +=
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r" +
        std::to_string(i) + ", namespace: " + ns +
        "}\nspec:\n  parentRefs: [{name: gw, namespace: ns}]\n" +
        (host.empty() ? "" : "  hostnames: [\"" + host + "\"]\n") +
        "  rules:\n  - matches: [{path: {type: PathPrefix, value: /p" + std::to_string(i % 7) +
        "}, headers: [{name: x-n, value: \"" + std::to_string(i % 4) +
        "\"}]}]\n    backendRefs: [{name: svc, namespace: ns, port: " + (i % 2 ? "8080" : "80") +
        "}]\n";
  }
  text += R"(---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t1, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t2, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{name: svc, port: 80}]}]
)";
  api::LoadResult loaded = api::decodeText(text, "many.yaml");
  ASSERT_FALSE(loaded.inputError);
  api::validateAll(loaded);
  uint64_t reused = 0;
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    runSequence(loaded.objects, seed, 40, seed % 2 == 1, "many routes", &reused,
                static_cast<Stamps>(seed % 3));
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(reused, 1000u);
}

}  // namespace
}  // namespace archway::translate
