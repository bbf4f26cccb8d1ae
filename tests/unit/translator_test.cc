// Snapshot-level behaviour of translate() that status output does not show: precedence
// order of route entries, gRPC translation, filters, L4 order, endpoints.
#include <gtest/gtest.h>

#include <filesystem>

#include "admin/admin.h"
#include "api/loader.h"
#include "api/validation.h"
#include "translate/translator.h"

namespace archway::translate {
namespace {

constexpr const char* kPrelude = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: archway}
spec: {controllerName: archway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: archway
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: tcp, port: 9000, protocol: TCP}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec:
  ports: [{name: web, port: 8080, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-1
  namespace: ns
  labels: {kubernetes.io/service-name: svc}
ports: [{name: web, port: 3000}]
endpoints:
- addresses: [10.0.0.2]
- addresses: [10.0.0.1]
  conditions: {ready: true}
- addresses: [10.0.0.9]
  conditions: {ready: false}
)";

TranslateResult run(const std::string& extra) {
  api::LoadResult loaded = api::decodeText(std::string(kPrelude) + "---\n" + extra, "test.yaml");
  EXPECT_FALSE(loaded.inputError);
  api::Store store;
  for (auto& o : loaded.objects) store.put(std::move(o));
  return translate(store);
}

const snapshot::Listener& listener(const TranslateResult& r, uint16_t port) {
  for (const auto& p : r.snapshot->ports)
    if (p.port == port) return *p.listeners.at(0);
  ADD_FAILURE() << "no port " << port;
  static snapshot::Listener empty;
  return empty;
}

std::vector<std::string> order(const snapshot::Listener& l) {
  std::vector<std::string> out;
  for (const auto& e : l.httpRoutes) {
    std::string host = e.hostnames.empty() ? "*" : e.hostnames[0];
    out.push_back(host + " " + e.rule->routeName + "#" + std::to_string(e.rule->ruleIndex) + " " +
                  e.match.path.value);
  }
  return out;
}

TEST(Translator, HttpPrecedenceAcrossRoutes) {
  TranslateResult r = run(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b-older, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    backendRefs: [{name: svc, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /a}, method: GET}]
  - matches: [{path: {type: PathPrefix, value: /a}, headers: [{name: X-One, value: "1"}]}]
  - matches: [{path: {type: Exact, value: /a}}]
  - matches: [{path: {type: PathPrefix, value: /abc}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a-newer, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  hostnames: [foo.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c-newest, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
)");
  const auto& l = listener(r, 80);
  // Hostname-specific routes first; then Exact, longest prefix, method, headers; ties by age.
  std::vector<std::string> want = {
      "foo.example.com a-newer#0 /",
      "* b-older#3 /a",
      "* b-older#4 /abc",
      "* b-older#1 /a",
      "* b-older#2 /a",
      "* b-older#0 /a",
      "* c-newest#0 /a",
  };
  EXPECT_EQ(order(l), want);
  // Backend resolved to ready endpoints only, h2c by appProtocol, target port from the slice.
  const auto& b = l.httpRoutes[5].rule->backends.at(0).backend;
  ASSERT_TRUE(b);
  EXPECT_EQ(b->protocol, snapshot::BackendProtocol::kH2c);
  ASSERT_EQ(b->endpoints.size(), 2u);
  EXPECT_EQ(b->endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(b->endpoints[0].port, 3000);
  // A rule without backendRefs keeps an empty backend list (500 on the data plane).
  EXPECT_TRUE(l.httpRoutes[1].rule->backends.empty());
}

TEST(Translator, GrpcRouteBecomesPathMatchesAndInvalidBackendIsNull) {
  TranslateResult r = run(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: pkg.Svc, method: Echo}, headers: [{name: X-A, value: b}]}]
    backendRefs: [{name: svc, port: 8080}, {name: missing, port: 80}]
  - matches: [{method: {method: Echo}}]
  - matches: [{method: {type: RegularExpression, service: "pkg\\..*"}}]
)");
  const auto& l = listener(r, 80);
  ASSERT_EQ(l.httpRoutes.size(), 3u);
  for (const auto& e : l.httpRoutes) EXPECT_TRUE(e.rule->isGrpc);
  EXPECT_EQ(l.httpRoutes[0].match.path.type, snapshot::MatchType::kExact);
  EXPECT_EQ(l.httpRoutes[0].match.path.value, "/pkg.Svc/Echo");
  ASSERT_EQ(l.httpRoutes[0].match.headers.size(), 1u);
  EXPECT_EQ(l.httpRoutes[0].match.headers[0].name, "x-a");
  EXPECT_TRUE(l.httpRoutes[0].rule->backends[0].backend);
  EXPECT_FALSE(l.httpRoutes[0].rule->backends[1].backend);
  EXPECT_EQ(l.httpRoutes[1].match.path.type, snapshot::MatchType::kRegularExpression);
  ASSERT_TRUE(l.httpRoutes[1].match.path.regex);
  EXPECT_TRUE(RE2::FullMatch("/pkg.Svc/Echo", *l.httpRoutes[1].match.path.regex));
  EXPECT_TRUE(RE2::FullMatch("/pkg.Other/Echo", *l.httpRoutes[2].match.path.regex));
}

TEST(Translator, FiltersTimeoutsAndPartiallyInvalidRules) {
  TranslateResult r = run(R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: f, namespace: ns}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-Set, value: v}], remove: [X-Gone]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc, port: 8080}, fraction: {numerator: 1, denominator: 4}}
    timeouts: {request: 1m, backendRequest: 500ms}
    backendRefs: [{name: svc, port: 8080, weight: 3}]
  - matches: [{path: {type: Exact, value: /x}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {scheme: https}}
    - {type: URLRewrite, urlRewrite: {hostname: h}}
)");
  const auto& l = listener(r, 80);
  ASSERT_EQ(l.httpRoutes.size(), 1u);  // the invalid rule is dropped
  const auto& rule = *l.httpRoutes[0].rule;
  ASSERT_EQ(rule.filters.size(), 2u);
  EXPECT_EQ(rule.filters[0].headers.set.at(0).first, "x-set");
  EXPECT_EQ(rule.filters[0].headers.remove.at(0), "x-gone");
  EXPECT_EQ(rule.filters[1].mirror.numerator, 1u);
  EXPECT_EQ(rule.filters[1].mirror.denominator, 4u);
  EXPECT_TRUE(rule.filters[1].mirror.backend);
  EXPECT_EQ(rule.requestTimeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(rule.backendRequestTimeout, std::chrono::milliseconds(500));
  EXPECT_EQ(rule.backends.at(0).weight, 3u);
  const auto& parents = r.statuses.at({"HTTPRoute", "ns", "f"})["parents"];
  bool partially = false;
  for (const auto& c : parents[0]["conditions"])
    if (c["type"] == "PartiallyInvalid") partially = c["status"] == "True";
  EXPECT_TRUE(partially);
}

TEST(Translator, TcpRoutesOldestFirst) {
  TranslateResult r = run(R"(
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: z-older, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: a-newer, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
)");
  const auto& l = listener(r, 9000);
  ASSERT_EQ(l.l4Routes.size(), 2u);
  EXPECT_EQ(l.l4Routes[0].routeName, "z-older");
  EXPECT_EQ(l.l4Routes[0].backends.at(0).backend->protocol, snapshot::BackendProtocol::kTcp);
  EXPECT_EQ(r.statuses.at({"Gateway", "ns", "gw"})["listeners"][1]["attachedRoutes"], 2);
}

TEST(Translator, TlsRoutesOnePerSniNameExactFirst) {
  std::string gw = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls, namespace: ns}
spec:
  gatewayClassName: archway
  listeners:
  - {name: pass, port: 8443, protocol: TLS, tls: {mode: Passthrough}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: wide, namespace: ns}
spec:
  parentRefs: [{name: tls}]
  hostnames: ["*.example.com", a.example.com]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: narrow, namespace: ns}
spec:
  parentRefs: [{name: tls}]
  hostnames: ["*.b.example.com"]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
)";
  TranslateResult r = run(gw);
  const auto& l = listener(r, 8443);
  ASSERT_TRUE(l.tlsPassthrough);
  std::vector<std::string> got;
  for (const auto& e : l.l4Routes) got.push_back(e.routeName + " " + e.hostnames.at(0));
  EXPECT_EQ(got, (std::vector<std::string>{"wide a.example.com", "narrow *.b.example.com",
                                           "wide *.example.com"}));
}

TEST(Translator, IsDeterministic) {
  std::string route = R"(
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw}, {name: other-controller-gw}]
  rules: [{backendRefs: [{name: svc, port: 8080}]}]
)";
  TranslateResult a = run(route), b = run(route);
  EXPECT_EQ(a.statuses, b.statuses);
  // A parentRef to a Gateway that is not ours gets no entry from us.
  EXPECT_EQ(a.statuses.at({"HTTPRoute", "ns", "r"})["parents"].size(), 1u);
}

// A source kept an object's last valid version because a newer one failed validation: the
// route says so with PartiallyInvalid "Fall Back" (Accepted stays True at the served
// generation), the Gateway with kRejectedChangeCondition; nothing else changes.
TEST(Translator, RejectedChangeIsReportedInStatus) {
  api::LoadResult loaded = api::decodeText(std::string(kPrelude) + R"(---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: ns}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules:
  - backendRefs: [{name: svc, port: 8080}]
)",
                                           "test.yaml");
  ASSERT_FALSE(loaded.inputError);
  api::Store store;
  for (auto& o : loaded.objects) store.put(std::move(o));
  TranslateResult before = translate(store);

  for (const char* kind : {"HTTPRoute", "Gateway"}) {
    api::Object o = *store.find(kind, "ns", std::string(kind) == "Gateway" ? "gw" : "r");
    o.rejectedChange =
        api::RejectedChange{{"test.yaml", 7}, 0, {"spec.rules[0].backendRefs[0].port: too big"}};
    store.put(std::move(o));
  }
  TranslateResult after = translate(store);
  EXPECT_EQ(before.snapshot->ports.size(), after.snapshot->ports.size());

  const api::Json& parent = after.statuses.at({"HTTPRoute", "ns", "r"})["parents"][0];
  std::map<std::string, api::Json> conds;
  for (const auto& c : parent["conditions"]) conds[c["type"]] = c;
  EXPECT_EQ(conds["Accepted"]["status"], "True");
  ASSERT_TRUE(conds.count("PartiallyInvalid"));
  EXPECT_EQ(conds["PartiallyInvalid"]["status"], "True");
  EXPECT_EQ(conds["PartiallyInvalid"]["reason"], "UnsupportedValue");
  EXPECT_EQ(conds["PartiallyInvalid"]["observedGeneration"], 1);
  std::string msg = conds["PartiallyInvalid"]["message"];
  EXPECT_EQ(msg.rfind("Fall Back: the version at test.yaml:7 is invalid", 0), 0u) << msg;
  EXPECT_NE(msg.find("backendRefs[0].port: too big"), std::string::npos) << msg;

  bool gatewayReports = false;
  for (const auto& c : after.statuses.at({"Gateway", "ns", "gw"})["conditions"])
    if (c["type"] == kRejectedChangeCondition) gatewayReports = c["status"] == "True";
  EXPECT_TRUE(gatewayReports);
  // Without a rejected change none of this appears.
  EXPECT_EQ(before.statuses.at({"HTTPRoute", "ns", "r"})["parents"][0]["conditions"].size() + 1,
            parent["conditions"].size());
}

// Publishing without statuses (archway run with the file source) serves exactly what a
// translation with statuses serves, on every golden case.
TEST(Translator, WithoutStatusesTheSnapshotAndDiagnosticsAreTheSame) {
  namespace fs = std::filesystem;
  fs::path golden = fs::path(ARCHWAY_SOURCE_DIR) / "tests" / "golden";
  size_t cases = 0;
  for (const auto& entry : fs::directory_iterator(golden / "cases")) {
    std::vector<std::string> paths{(golden / "fixtures" / "common.yaml").string()};
    for (const auto& f : fs::directory_iterator(entry.path()))
      if (f.path().filename() != "expected.yaml") paths.push_back(f.path().string());
    api::LoadResult loaded = api::loadPaths(paths);
    api::validateAll(loaded);
    api::Store store;
    for (auto& o : loaded.objects) store.put(std::move(o));
    TranslateOptions without;
    without.computeStatuses = false;
    TranslateResult full = translate(store), lean = translate(store, without);
    EXPECT_TRUE(lean.statuses.empty()) << entry.path();
    EXPECT_FALSE(full.statuses.empty()) << entry.path();
    ASSERT_TRUE(full.snapshot && lean.snapshot);
    EXPECT_EQ(admin::snapshotToJson(*full.snapshot), admin::snapshotToJson(*lean.snapshot))
        << entry.path();
    ASSERT_EQ(full.diagnostics.size(), lean.diagnostics.size()) << entry.path();
    for (size_t i = 0; i < full.diagnostics.size(); ++i)
      EXPECT_EQ(full.diagnostics[i].format(), lean.diagnostics[i].format());
    ++cases;
  }
  EXPECT_GT(cases, 10u);
}

}  // namespace
}  // namespace archway::translate
