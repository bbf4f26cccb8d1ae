// Conversion logic: generic Ingress rules, the upstream bugs fixed, every Kong and
// ingress-nginx annotation and CRD field with the report entries it produces.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "api/loader.h"
#include "convert/convert.h"

namespace archway::convert {
namespace {

struct Run {
  ConvertResult result;

  const Json* find(const std::string& kind, const std::string& name) const {
    for (const auto& o : result.resources)
      if (o["kind"] == kind && o["metadata"]["name"] == name) return &o;
    return nullptr;
  }
  int count(const std::string& kind) const {
    int n = 0;
    for (const auto& o : result.resources) n += o["kind"] == kind;
    return n;
  }
  // A report entry whose field contains `field` with that outcome.
  bool reported(const std::string& field, Outcome outcome, const std::string& text = "") const {
    for (const auto& e : result.report)
      if (e.field.find(field) != std::string::npos && e.outcome == outcome &&
          e.message.find(text) != std::string::npos)
        return true;
    return false;
  }
  std::string dump() const { return toYaml(result.resources) + renderReport(result.report); }
};

Run convertYaml(const std::string& yaml, std::vector<std::string> providers = {},
                const std::string& cls = "", const std::string& ns = "") {
  auto loaded = api::decodeText(yaml, "test.yaml");
  EXPECT_FALSE(loaded.inputError);
  ConvertConfig c;
  c.providers = std::move(providers);
  c.gatewayClass = cls;
  c.ns = ns;
  return {convert(loaded.objects, c)};
}

std::string ingress(const std::string& name, const std::string& cls, const std::string& annotations,
                    const std::string& host = "example.com", const std::string& path = "/",
                    const std::string& pathType = "Prefix", const std::string& svc = "svc") {
  return "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " + name +
         "\n  namespace: default\n" +
         (annotations.empty() ? "" : "  annotations:\n" + annotations) +
         "spec:\n  ingressClassName: " + cls + "\n  rules:\n  - host: \"" + host +
         "\"\n    http:\n      paths:\n      - path: " + path + "\n        pathType: " + pathType +
         "\n        backend:\n          service:\n            name: " + svc +
         "\n            port:\n              number: 80\n---\n";
}

const Json& rules(const Json* route) { return (*route)["spec"]["rules"]; }

// ---- generic rules and upstream bugs ----

TEST(ConvertGeneric, NameFromHost) {
  EXPECT_EQ(nameFromHost("foo.example.com"), "foo-example-com");
  EXPECT_EQ(nameFromHost(""), "all-hosts");
  EXPECT_EQ(nameFromHost("*"), "all-hosts");
  EXPECT_NE(nameFromHost("*.example.com"), nameFromHost("example.com"));
}

TEST(ConvertGeneric, HeaderCombinationsAreACartesianProductWithoutDuplicates) {
  auto c = headerCombinations({{"a", {"1", "2"}}, {"b", {"x", "y"}}});
  ASSERT_EQ(c.size(), 4u);
  std::set<std::vector<std::pair<std::string, std::string>>> uniq(c.begin(), c.end());
  EXPECT_EQ(uniq.size(), 4u);
  EXPECT_TRUE(uniq.count({{"a", "2"}, {"b", "x"}}));
  EXPECT_EQ(headerCombinations({{"a", {"1", "1"}}}).size(), 1u);
  EXPECT_TRUE(headerCombinations({}).empty());
}

TEST(ConvertGeneric, TwoByTwoHeadersGiveFourDistinctMatches) {
  auto r = convertYaml(ingress("h", "kong",
                               "    konghq.com/headers.a: \"1,2\"\n"
                               "    konghq.com/headers.b: \"x,y\"\n"),
                       {"kong"});
  const Json* route = r.find("HTTPRoute", "h-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  const Json& m = rules(route)[0]["matches"];
  ASSERT_EQ(m.size(), 4u);
  std::set<std::string> seen;
  for (const auto& x : m) seen.insert(x["headers"].dump());
  EXPECT_EQ(seen.size(), 4u);
}

// Found by fuzzing: the matches of a rule were built before being counted, so 8 Kong header
// annotations of 8 values each (a few hundred bytes) made 8^8 combinations: minutes of work
// and gigabytes of memory before the 64-match limit refused them.
TEST(ConvertGeneric, HeaderCombinationsAreCountedBeforeTheyAreBuilt) {
  std::string annotations = "    konghq.com/methods: GET,POST\n";
  for (int h = 0; h < 8; ++h)
    annotations += "    konghq.com/headers.h" + std::to_string(h) + ": \"0,1,2,3,4,5,6,7\"\n";
  auto r = convertYaml(ingress("h", "kong", annotations), {"kong"});
  EXPECT_TRUE(r.reported("spec.rules[0]", Outcome::kUnconvertible,
                         "33554432 matches (methods × header values) exceed"))
      << renderReport(r.result.report);
  EXPECT_EQ(headerCombinationCount({{"a", {"1", "2", "2", ""}}, {"", {"x"}}, {"b", {"x", "y"}}}),
            4u);
  EXPECT_EQ(headerCombinationCount({}), 0u);
  std::vector<std::pair<std::string, std::vector<std::string>>> huge(
      70, {"h", {"0", "1", "2", "3", "4", "5", "6", "7"}});
  EXPECT_EQ(headerCombinationCount(huge), SIZE_MAX);
}

TEST(ConvertGeneric, AnnotationsDoNotLeakBetweenIngressesSharingAHost) {
  auto r = convertYaml(ingress("a", "kong",
                               "    konghq.com/methods: GET\n"
                               "    konghq.com/plugins: p1\n",
                               "example.com", "/a") +
                           ingress("b", "kong", "", "example.com", "/b"),
                       {"kong"});
  const Json* route = r.find("HTTPRoute", "a-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  ASSERT_EQ(rules(route).size(), 2u);
  for (const auto& rule : rules(route)) {
    std::string path = rule["matches"][0]["path"]["value"];
    if (path == "/a") {
      EXPECT_EQ(rule["matches"][0]["method"], "GET");
      EXPECT_TRUE(rule.contains("filters"));
    } else {
      EXPECT_FALSE(rule["matches"][0].contains("method")) << rule.dump();
      EXPECT_FALSE(rule.contains("filters")) << rule.dump();
    }
  }
}

TEST(ConvertGeneric, WildcardAndExactHostsKeepDistinctNames) {
  auto r2 = convertYaml(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: w, namespace: default}
spec:
  ingressClassName: kong
  rules:
  - host: "*.example.com"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: b, port: {number: 80}}}}]}
)",
                        {"kong"});
  EXPECT_NE(r2.find("HTTPRoute", "w-wildcard-example-com"), nullptr) << r2.dump();
  EXPECT_NE(r2.find("HTTPRoute", "w-example-com"), nullptr);
  const Json* gw = r2.find("Gateway", "kong");
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ((*gw)["spec"]["listeners"].size(), 2u);
}

TEST(ConvertGeneric, TlsDeduplicatesCertificatesAndAddsHttpsListener) {
  auto r = convertYaml(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: t, namespace: default}
spec:
  ingressClassName: kong
  tls:
  - {hosts: [example.com], secretName: cert}
  - {hosts: [example.com], secretName: cert}
  - {hosts: [other.com], secretName: other}
  rules:
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
)",
                       {"kong"});
  const Json* gw = r.find("Gateway", "kong");
  ASSERT_NE(gw, nullptr);
  const Json& ls = (*gw)["spec"]["listeners"];
  ASSERT_EQ(ls.size(), 2u) << ls.dump();
  EXPECT_EQ(ls[1]["protocol"], "HTTPS");
  EXPECT_EQ(ls[1]["tls"]["certificateRefs"].size(), 1u);
  EXPECT_EQ(ls[1]["tls"]["certificateRefs"][0]["name"], "cert");
}

TEST(ConvertGeneric, TlsWithoutSecretIsReported) {
  auto r = convertYaml(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: t, namespace: default}
spec:
  ingressClassName: kong
  tls: [{hosts: [example.com]}]
  rules:
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
)",
                       {"kong"});
  EXPECT_TRUE(r.reported("spec.tls", Outcome::kUnconvertible, "secretName")) << r.dump();
}

TEST(ConvertGeneric, NamedPortResolvedOrReported) {
  std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n"
      "spec: {ports: [{name: web, port: 8080}]}\n---\n";
  std::string ing = R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: n, namespace: default}
spec:
  ingressClassName: kong
  rules:
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {name: web}}}}]}
)";
  auto ok = convertYaml(svc + ing, {"kong"});
  const Json* route = ok.find("HTTPRoute", "n-example-com");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(rules(route)[0]["backendRefs"][0]["port"], 8080);
  auto missing = convertYaml(ing, {"kong"});
  EXPECT_EQ(missing.find("HTTPRoute", "n-example-com"), nullptr);
  EXPECT_TRUE(missing.reported("service.port", Outcome::kUnconvertible, "cannot find port"));
}

TEST(ConvertGeneric, DuplicatePathInAnotherIngressIsReportedNotMerged) {
  auto r = convertYaml(ingress("a", "kong", "", "example.com", "/x", "Prefix", "one") +
                           ingress("b", "kong", "", "example.com", "/x", "Prefix", "two"),
                       {"kong"});
  const Json* route = r.find("HTTPRoute", "a-example-com");
  ASSERT_NE(route, nullptr);
  ASSERT_EQ(rules(route).size(), 1u);
  EXPECT_EQ(rules(route)[0]["backendRefs"].size(), 1u);
  EXPECT_TRUE(r.reported("paths[0]", Outcome::kUnconvertible, "already defined"));
}

TEST(ConvertGeneric, GatewayClassOverrideAndGeneratedGatewayClass) {
  auto r = convertYaml(ingress("a", "kong", ""), {"kong"}, "archway");
  const Json* gw = r.find("Gateway", "kong");
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ((*gw)["spec"]["gatewayClassName"], "archway");
  const Json* gc = r.find("GatewayClass", "archway");
  ASSERT_NE(gc, nullptr);
  EXPECT_EQ((*gc)["spec"]["controllerName"], "archway.dev/gateway-controller");
}

TEST(ConvertGeneric, NamespaceFilter) {
  std::string other = ingress("o", "kong", "");
  other.replace(other.find("namespace: default"), 18, "namespace: other");
  auto r = convertYaml(ingress("a", "kong", "") + other, {"kong"}, "", "other");
  EXPECT_EQ(r.count("HTTPRoute"), 1);
  EXPECT_NE(r.find("HTTPRoute", "o-example-com"), nullptr);
}

TEST(ConvertGeneric, ProviderNotSelectedIsReported) {
  auto r = convertYaml(ingress("a", "nginx", ""), {"kong"});
  EXPECT_EQ(r.count("HTTPRoute"), 0);
  EXPECT_TRUE(r.reported("ingressClassName", Outcome::kNote, "does not select"));
}

TEST(ConvertGeneric, IngressClassControllerPicksProvider) {
  std::string ic =
      "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: edge}\n"
      "spec: {controller: ingress-controllers.konghq.com/kong}\n---\n";
  auto r = convertYaml(ic + ingress("a", "edge", "    konghq.com/methods: GET\n"), {});
  const Json* route = r.find("HTTPRoute", "a-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  EXPECT_EQ(rules(route)[0]["matches"][0]["method"], "GET");
}

TEST(ConvertGeneric, DeterministicOutput) {
  std::string in = ingress("b", "kong", "", "b.com") + ingress("a", "kong", "", "a.com") +
                   ingress("c", "nginx", "", "c.com");
  EXPECT_EQ(toYaml(convertYaml(in).result.resources), toYaml(convertYaml(in).result.resources));
  auto r = convertYaml(in);
  std::vector<std::string> kinds;
  for (const auto& o : r.result.resources) kinds.push_back(o["kind"]);
  EXPECT_EQ(kinds.front(), "GatewayClass");
  EXPECT_EQ(kinds.back(), "HTTPRoute");
}

TEST(ConvertGeneric, YamlQuotesAmbiguousStrings) {
  std::string y = toYaml({Json{{"apiVersion", "v1"},
                               {"kind", "X"},
                               {"metadata", {{"name", "true"}}},
                               {"spec", {{"a", "80"}, {"b", ""}, {"c", "plain"}}}}});
  EXPECT_NE(y.find("name: \"true\""), std::string::npos) << y;
  EXPECT_NE(y.find("a: \"80\""), std::string::npos) << y;
  EXPECT_NE(y.find("b: \"\""), std::string::npos) << y;
  EXPECT_NE(y.find("c: plain"), std::string::npos) << y;
}

TEST(ConvertGeneric, UnknownKindsAreNotedNotDropped) {
  auto r =
      convertYaml("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: x}\n");
  EXPECT_TRUE(r.reported("", Outcome::kNote, "ignored"));
}

// ---- Kong annotations ----

TEST(ConvertKong, MethodsTrimmedAndUpperCased) {
  auto r = convertYaml(ingress("m", "kong", "    konghq.com/methods: \"get, post\"\n"), {"kong"});
  const Json* route = r.find("HTTPRoute", "m-example-com");
  ASSERT_NE(route, nullptr);
  ASSERT_EQ(rules(route)[0]["matches"].size(), 2u);
  EXPECT_EQ(rules(route)[0]["matches"][1]["method"], "POST");
  EXPECT_TRUE(r.reported("konghq.com/methods", Outcome::kConverted));
}

TEST(ConvertKong, InvalidMethodSkipsIngress) {
  auto r = convertYaml(ingress("m", "kong", "    konghq.com/methods: WRONG\n"), {"kong"});
  EXPECT_EQ(r.count("HTTPRoute"), 0);
  EXPECT_TRUE(r.reported("konghq.com/methods", Outcome::kUnconvertible, "WRONG"));
}

TEST(ConvertKong, PartlyInvalidMethodsKeepTheValidOnes) {
  auto r = convertYaml(ingress("m", "kong", "    konghq.com/methods: GET,PURGE\n"), {"kong"});
  const Json* route = r.find("HTTPRoute", "m-example-com");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(rules(route)[0]["matches"].size(), 1u);
  EXPECT_TRUE(r.reported("konghq.com/methods", Outcome::kUnconvertible, "PURGE"));
}

TEST(ConvertKong, HeadersSeparator) {
  auto r = convertYaml(ingress("h", "kong",
                               "    konghq.com/headers.x: \"a;b\"\n"
                               "    konghq.com/headers-separator: \";\"\n"),
                       {"kong"});
  const Json* route = r.find("HTTPRoute", "h-example-com");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(rules(route)[0]["matches"].size(), 2u);
  EXPECT_TRUE(r.reported("headers-separator", Outcome::kConverted));
}

TEST(ConvertKong, PluginsKongPluginClusterPluginAndCrossNamespace) {
  std::string plugins =
      "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {name: local, "
      "namespace: default}\nplugin: key-auth\n---\n"
      "apiVersion: configuration.konghq.com/v1\nkind: KongClusterPlugin\nmetadata: {name: "
      "global}\nplugin: cors\nstatus: {x: 1}\n---\n";
  auto r = convertYaml(
      plugins + ingress("p", "kong", "    konghq.com/plugins: local,global,ns:x\n"), {"kong"});
  const Json* route = r.find("HTTPRoute", "p-example-com");
  ASSERT_NE(route, nullptr);
  const Json& f = rules(route)[0]["filters"];
  ASSERT_EQ(f.size(), 2u) << f.dump();
  EXPECT_EQ(f[0]["extensionRef"]["kind"], "KongPlugin");
  EXPECT_EQ(f[1]["extensionRef"]["kind"], "KongClusterPlugin");
  EXPECT_TRUE(r.reported("konghq.com/plugins", Outcome::kUnconvertible, "another namespace"));
  const Json* kept = r.find("KongClusterPlugin", "global");
  ASSERT_NE(kept, nullptr);
  EXPECT_FALSE(kept->contains("status"));
  EXPECT_EQ((*kept)["plugin"], "cors");
  EXPECT_NE(r.find("KongPlugin", "local"), nullptr);
}

TEST(ConvertKong, StripPath) {
  auto r = convertYaml(
      ingress("s", "kong", "    konghq.com/strip-path: \"true\"\n", "example.com", "/api"),
      {"kong"});
  const Json* route = r.find("HTTPRoute", "s-example-com");
  ASSERT_NE(route, nullptr);
  const Json& f = rules(route)[0]["filters"][0];
  EXPECT_EQ(f["type"], "URLRewrite");
  EXPECT_EQ(f["urlRewrite"]["path"]["replacePrefixMatch"], "/");
}

TEST(ConvertKong, StripPathOnRegexPathIsReported) {
  auto r = convertYaml(ingress("s", "kong", "    konghq.com/strip-path: \"true\"\n", "example.com",
                               "/~/v[0-9]+", "ImplementationSpecific"),
                       {"kong"});
  EXPECT_TRUE(r.reported("paths[0]", Outcome::kUnconvertible, "regular-expression"));
}

TEST(ConvertKong, RegexPathAndCustomRegexPrefix) {
  auto r = convertYaml(ingress("r", "kong", "    konghq.com/regex-prefix: /@\n", "example.com",
                               "/@/v[0-9]+", "ImplementationSpecific"),
                       {"kong"});
  const Json* route = r.find("HTTPRoute", "r-example-com");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(rules(route)[0]["matches"][0]["path"]["type"], "RegularExpression");
  EXPECT_EQ(rules(route)[0]["matches"][0]["path"]["value"], "/v[0-9]+");
}

TEST(ConvertKong, ImplementationSpecificPrefixIsApproximated) {
  auto r = convertYaml(ingress("i", "kong", "", "example.com", "/echo", "ImplementationSpecific"),
                       {"kong"});
  EXPECT_TRUE(r.reported("pathType", Outcome::kApproximated, "character prefix"));
}

const char* kTlsIngress = R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: t
  namespace: default
  annotations:
ANNOTATIONS
spec:
  ingressClassName: CLASS
  tls: [{hosts: [example.com], secretName: cert}]
  rules:
  - host: example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: a, port: {number: 80}}}}]}
)";

std::string tlsIngress(const std::string& cls, const std::string& annotations) {
  std::string s = kTlsIngress;
  s.replace(s.find("ANNOTATIONS"), 11, annotations.empty() ? "    x: y" : annotations);
  s.replace(s.find("CLASS"), 5, cls);
  return s;
}

TEST(ConvertKong, ProtocolsHttpsWithRedirectCode) {
  auto r = convertYaml(tlsIngress("kong",
                                  "    konghq.com/protocols: https\n"
                                  "    konghq.com/https-redirect-status-code: \"301\""),
                       {"kong"});
  const Json* https = r.find("HTTPRoute", "t-example-com");
  const Json* http = r.find("HTTPRoute", "t-example-com-http");
  ASSERT_NE(https, nullptr) << r.dump();
  ASSERT_NE(http, nullptr) << r.dump();
  EXPECT_EQ((*https)["spec"]["parentRefs"][0]["sectionName"], "example-com-https");
  EXPECT_EQ((*http)["spec"]["parentRefs"][0]["sectionName"], "example-com-http");
  const Json& f = rules(http)[0]["filters"][0];
  EXPECT_EQ(f["type"], "RequestRedirect");
  EXPECT_EQ(f["requestRedirect"]["statusCode"], 301);
  EXPECT_EQ(f["requestRedirect"]["scheme"], "https");
  EXPECT_TRUE(r.reported("https-redirect-status-code", Outcome::kConverted));
}

TEST(ConvertKong, ProtocolsHttpsDefault426IsApproximated) {
  auto r = convertYaml(tlsIngress("kong", "    konghq.com/protocols: https"), {"kong"});
  EXPECT_EQ(r.find("HTTPRoute", "t-example-com-http"), nullptr);
  const Json* https = r.find("HTTPRoute", "t-example-com");
  ASSERT_NE(https, nullptr);
  EXPECT_EQ((*https)["spec"]["parentRefs"][0]["sectionName"], "example-com-https");
  EXPECT_TRUE(r.reported("konghq.com/protocols", Outcome::kApproximated, "426"));
}

TEST(ConvertKong, ProtocolsHttpOnlySkipsHttps) {
  auto r = convertYaml(tlsIngress("kong", "    konghq.com/protocols: http"), {"kong"});
  const Json* http = r.find("HTTPRoute", "t-example-com-http");
  ASSERT_NE(http, nullptr) << r.dump();
  EXPECT_EQ(r.count("HTTPRoute"), 1);
}

TEST(ConvertKong, ProtocolsGrpcMakesGrpcRoute) {
  auto r = convertYaml(ingress("g", "kong", "    konghq.com/protocols: grpc,grpcs\n", "example.com",
                               "/pkg.Svc/Call"),
                       {"kong"});
  const Json* route = r.find("GRPCRoute", "g-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  EXPECT_EQ(rules(route)[0]["matches"][0]["method"]["method"], "Call");
}

TEST(ConvertKong, InvalidProtocolsIgnoredAndReported) {
  auto r = convertYaml(ingress("p", "kong", "    konghq.com/protocols: ftp\n"), {"kong"});
  EXPECT_EQ(r.count("HTTPRoute"), 1);
  EXPECT_TRUE(r.reported("konghq.com/protocols", Outcome::kUnconvertible, "invalid"));
}

TEST(ConvertKong, ForceSslRedirect) {
  auto r = convertYaml(tlsIngress("kong", "    ingress.kubernetes.io/force-ssl-redirect: \"true\""),
                       {"kong"});
  const Json* http = r.find("HTTPRoute", "t-example-com-http");
  ASSERT_NE(http, nullptr) << r.dump();
  EXPECT_EQ(rules(http)[0]["filters"][0]["requestRedirect"]["statusCode"], 302);
}

TEST(ConvertKong, PreserveHost) {
  auto keep =
      convertYaml(ingress("h", "kong", "    konghq.com/preserve-host: \"true\"\n"), {"kong"});
  EXPECT_FALSE(rules(keep.find("HTTPRoute", "h-example-com"))[0].contains("filters"));
  EXPECT_TRUE(keep.reported("preserve-host", Outcome::kConverted));
  std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: default}\n"
      "spec: {ports: [{port: 80}]}\n---\n";
  auto drop = convertYaml(svc + ingress("h", "kong", "    konghq.com/preserve-host: \"false\"\n"),
                          {"kong"});
  const Json& f = rules(drop.find("HTTPRoute", "h-example-com"))[0]["filters"][0];
  EXPECT_EQ(f["urlRewrite"]["hostname"], "svc.default.svc");
  EXPECT_TRUE(drop.reported("preserve-host", Outcome::kApproximated));
}

TEST(ConvertKong, HostAliases) {
  auto r = convertYaml(ingress("a", "kong", "    konghq.com/host-aliases: alias.com\n"), {"kong"});
  EXPECT_NE(r.find("HTTPRoute", "a-example-com"), nullptr);
  EXPECT_NE(r.find("HTTPRoute", "a-alias-com"), nullptr) << r.dump();
  EXPECT_TRUE(r.reported("host-aliases", Outcome::kConverted));
}

TEST(ConvertKong, Rewrite) {
  auto r = convertYaml(ingress("w", "kong", "    konghq.com/rewrite: /new\n"), {"kong"});
  EXPECT_EQ(
      rules(r.find("HTTPRoute",
                   "w-example-com"))[0]["filters"][0]["urlRewrite"]["path"]["replaceFullPath"],
      "/new");
  auto c = convertYaml(ingress("w", "kong", "    konghq.com/rewrite: /x/$1\n"), {"kong"});
  EXPECT_TRUE(c.reported("konghq.com/rewrite", Outcome::kUnconvertible, "capture"));
}

TEST(ConvertKong, UnconvertibleRouteAnnotationsAreReported) {
  auto r = convertYaml(ingress("u", "kong",
                               "    konghq.com/regex-priority: \"10\"\n"
                               "    konghq.com/path-handling: v1\n"
                               "    konghq.com/snis: example.com\n"
                               "    konghq.com/request-buffering: \"false\"\n"
                               "    konghq.com/response-buffering: \"false\"\n"
                               "    konghq.com/read-timeout: \"10\"\n"
                               "    konghq.com/frobnicate: \"1\"\n"
                               "    konghq.com/tags: a\n"
                               "    nginx.ingress.kubernetes.io/rewrite-target: /\n"),
                       {"kong"});
  for (const char* k : {"regex-priority", "path-handling", "snis", "request-buffering",
                        "response-buffering", "read-timeout", "frobnicate", "rewrite-target"})
    EXPECT_TRUE(r.reported(k, Outcome::kUnconvertible)) << k << "\n" << r.dump();
  EXPECT_TRUE(r.reported("konghq.com/tags", Outcome::kNote));
  EXPECT_EQ(r.count("HTTPRoute"), 1);
}

TEST(ConvertKong, ServiceAnnotationsTimeoutsRetriesHostHeaderPathPlugins) {
  std::string svc = R"(apiVersion: v1
kind: Service
metadata:
  name: svc
  namespace: default
  annotations:
    konghq.com/read-timeout: "5000"
    konghq.com/write-timeout: "7000"
    konghq.com/connect-timeout: "1000"
    konghq.com/retries: "3"
    konghq.com/host-header: upstream.internal
    konghq.com/path: /base
    konghq.com/plugins: rl
    konghq.com/protocol: https
    konghq.com/upstream-policy: pol
spec: {ports: [{port: 80}]}
---
)";
  auto r = convertYaml(svc + ingress("s", "kong", "", "example.com", "/api"), {"kong"});
  const Json& rule = rules(r.find("HTTPRoute", "s-example-com"))[0];
  EXPECT_EQ(rule["timeouts"]["backendRequest"], "7s") << rule.dump();
  EXPECT_EQ(rule["retry"]["attempts"], 3);
  bool rewrite = false, plugin = false;
  for (const auto& f : rule["filters"]) {
    if (f["type"] == "URLRewrite") {
      rewrite = true;
      EXPECT_EQ(f["urlRewrite"]["hostname"], "upstream.internal");
      EXPECT_EQ(f["urlRewrite"]["path"]["replacePrefixMatch"], "/base/api");
    }
    if (f["type"] == "ExtensionRef") plugin = f["extensionRef"]["name"] == "rl";
  }
  EXPECT_TRUE(rewrite && plugin) << rule.dump();
  EXPECT_TRUE(r.reported("read-timeout", Outcome::kApproximated));
  EXPECT_TRUE(r.reported("connect-timeout", Outcome::kUnconvertible));
  EXPECT_TRUE(r.reported("retries", Outcome::kApproximated));
  EXPECT_TRUE(r.reported("host-header", Outcome::kConverted));
  EXPECT_TRUE(r.reported("konghq.com/path", Outcome::kConverted));
  EXPECT_TRUE(r.reported("konghq.com/protocol", Outcome::kUnconvertible, "BackendTLSPolicy"));
  EXPECT_TRUE(r.reported("upstream-policy", Outcome::kUnconvertible));
}

TEST(ConvertKong, ServicePathWithStripPathReplacesPrefix) {
  std::string svc =
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  namespace: default\n"
      "  annotations: {konghq.com/path: /base/}\nspec: {ports: [{port: 80}]}\n---\n";
  auto r = convertYaml(
      svc + ingress("s", "kong", "    konghq.com/strip-path: \"true\"\n", "example.com", "/api"),
      {"kong"});
  const Json& f = rules(r.find("HTTPRoute", "s-example-com"))[0]["filters"][0];
  EXPECT_EQ(f["urlRewrite"]["path"]["replacePrefixMatch"], "/base");
}

TEST(ConvertKong, KongIngressRouteAndProxyFields) {
  std::string ki = R"(apiVersion: configuration.konghq.com/v1
kind: KongIngress
metadata: {name: ki, namespace: default}
route:
  methods: [GET]
  strip_path: true
  protocols: [https]
  https_redirect_status_code: 308
  headers: {x-env: [prod, stage]}
  regex_priority: 5
proxy:
  read_timeout: 2000
  retries: 2
  connect_timeout: 100
upstream:
  algorithm: least-connections
---
apiVersion: v1
kind: Service
metadata:
  name: a
  namespace: default
  annotations: {konghq.com/override: ki}
spec: {ports: [{port: 80}]}
---
)";
  auto r = convertYaml(ki + tlsIngress("kong", "    konghq.com/override: ki"), {"kong"});
  const Json* https = r.find("HTTPRoute", "t-example-com");
  const Json* http = r.find("HTTPRoute", "t-example-com-http");
  ASSERT_NE(https, nullptr) << r.dump();
  ASSERT_NE(http, nullptr) << r.dump();
  // strip_path (ReplacePrefixMatch) needs one match per rule: one rule per header value.
  ASSERT_EQ(rules(https).size(), 2u);
  const Json& rule = rules(https)[0];
  EXPECT_EQ(rule["matches"].size(), 1u);
  EXPECT_EQ(rule["matches"][0]["method"], "GET");
  EXPECT_EQ(rule["timeouts"]["backendRequest"], "2s");
  EXPECT_EQ(rule["retry"]["attempts"], 2);
  EXPECT_EQ(rules(http)[0]["filters"][0]["requestRedirect"]["statusCode"], 308);
  EXPECT_TRUE(r.reported("route.regex_priority", Outcome::kUnconvertible));
  EXPECT_TRUE(r.reported("route.methods", Outcome::kConverted));
  EXPECT_TRUE(r.reported("route.strip_path", Outcome::kConverted));
  EXPECT_TRUE(r.reported("upstream", Outcome::kUnconvertible));
  EXPECT_TRUE(r.reported("proxy.connect_timeout", Outcome::kUnconvertible));
}

TEST(ConvertKong, MissingKongIngressIsReported) {
  auto r = convertYaml(ingress("o", "kong", "    konghq.com/override: nope\n"), {"kong"});
  EXPECT_TRUE(r.reported("konghq.com/override", Outcome::kUnconvertible, "not in the input"));
}

TEST(ConvertKong, TcpIngressTlsTerminates) {
  auto r = convertYaml(R"(apiVersion: configuration.konghq.com/v1beta1
kind: TCPIngress
metadata: {name: t, namespace: default, annotations: {kubernetes.io/ingress.class: kong}}
spec:
  tls: [{hosts: [db.example.com, db2.example.com], secretName: db-cert}]
  rules:
  - {host: db.example.com, port: 9443, backend: {serviceName: db, servicePort: 5432}}
  - {port: 9000, backend: {serviceName: raw, servicePort: 9000}}
)",
                       {"kong"});
  const Json* gw = r.find("Gateway", "kong");
  ASSERT_NE(gw, nullptr) << r.dump();
  const Json& ls = (*gw)["spec"]["listeners"];
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(ls[0]["protocol"], "TLS");
  EXPECT_EQ(ls[0]["tls"]["mode"], "Terminate");
  EXPECT_EQ(ls[1]["protocol"], "TCP");
  EXPECT_EQ(r.count("TLSRoute") + r.count("TCPRoute"), 2);
}

TEST(ConvertKong, UdpIngress) {
  auto r = convertYaml(R"(apiVersion: configuration.konghq.com/v1beta1
kind: UDPIngress
metadata: {name: dns, namespace: default}
spec:
  rules:
  - {port: 9053, backend: {serviceName: coredns, servicePort: 53}}
  - {port: 0, backend: {serviceName: bad, servicePort: 1}}
)",
                       {"kong"});
  const Json* route = r.find("UDPRoute", "dns-9053");
  ASSERT_NE(route, nullptr) << r.dump();
  EXPECT_EQ((*route)["spec"]["parentRefs"][0]["sectionName"], "udp-9053");
  EXPECT_EQ(rules(route)[0]["backendRefs"][0]["port"], 53);
  EXPECT_TRUE(r.reported("spec.rules[1]", Outcome::kUnconvertible));
  EXPECT_TRUE(r.reported("metadata.annotations", Outcome::kApproximated, "kong"));
}

TEST(ConvertKong, TcpPortConflictReported) {
  auto r = convertYaml(R"(apiVersion: configuration.konghq.com/v1beta1
kind: TCPIngress
metadata: {name: t, namespace: default}
spec:
  rules:
  - {port: 9000, backend: {serviceName: a, servicePort: 1}}
  - {host: x.com, port: 9000, backend: {serviceName: b, servicePort: 1}}
)",
                       {"kong"});
  EXPECT_TRUE(r.reported("spec.rules[1]", Outcome::kUnconvertible, "already used")) << r.dump();
}

// ---- ingress-nginx annotations ----

TEST(ConvertNginx, SslRedirectDefaultWithTls) {
  auto r = convertYaml(tlsIngress("nginx", ""), {"ingress-nginx"});
  const Json* http = r.find("HTTPRoute", "t-example-com-http");
  ASSERT_NE(http, nullptr) << r.dump();
  EXPECT_EQ(rules(http)[0]["filters"][0]["requestRedirect"]["statusCode"], 308);
  EXPECT_TRUE(r.reported("spec.tls", Outcome::kNote, "by default"));
  auto off =
      convertYaml(tlsIngress("nginx", "    nginx.ingress.kubernetes.io/ssl-redirect: \"false\""),
                  {"ingress-nginx"});
  EXPECT_EQ(off.find("HTTPRoute", "t-example-com-http"), nullptr);
  EXPECT_EQ(off.count("HTTPRoute"), 1);
}

TEST(ConvertNginx, ForceSslRedirectWithoutTls) {
  auto r = convertYaml(
      ingress("f", "nginx", "    nginx.ingress.kubernetes.io/force-ssl-redirect: \"true\"\n"),
      {"ingress-nginx"});
  const Json* route = r.find("HTTPRoute", "f-example-com");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(rules(route)[0]["filters"][0]["type"], "RequestRedirect");
}

TEST(ConvertNginx, RewriteTarget) {
  auto r = convertYaml(ingress("w", "nginx", "    nginx.ingress.kubernetes.io/rewrite-target: /\n",
                               "example.com", "/app"),
                       {"ingress-nginx"});
  EXPECT_EQ(
      rules(r.find("HTTPRoute", "w-example-com"))[0]["filters"][0]["urlRewrite"]["path"]["type"],
      "ReplaceFullPath");
  auto idiom = convertYaml(ingress("w", "nginx",
                                   "    nginx.ingress.kubernetes.io/rewrite-target: /$2\n"
                                   "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n",
                                   "example.com", "/app"),
                           {"ingress-nginx"});
  const Json& rule = rules(idiom.find("HTTPRoute", "w-example-com"))[0];
  EXPECT_EQ(rule["filters"][0]["urlRewrite"]["path"]["type"], "ReplacePrefixMatch") << rule.dump();
  EXPECT_EQ(rule["matches"][0]["path"]["type"], "PathPrefix");
  auto bad = convertYaml(
      ingress("w", "nginx", "    nginx.ingress.kubernetes.io/rewrite-target: /x/$1/$3\n"),
      {"ingress-nginx"});
  EXPECT_TRUE(bad.reported("rewrite-target", Outcome::kUnconvertible));
}

TEST(ConvertNginx, UseRegex) {
  auto r =
      convertYaml(ingress("u", "nginx", "    nginx.ingress.kubernetes.io/use-regex: \"true\"\n",
                          "example.com", "/v[0-9]+/", "ImplementationSpecific"),
                  {"ingress-nginx"});
  const Json& m = rules(r.find("HTTPRoute", "u-example-com"))[0]["matches"][0];
  EXPECT_EQ(m["path"]["type"], "RegularExpression");
  EXPECT_TRUE(r.reported("use-regex", Outcome::kApproximated));
}

TEST(ConvertNginx, CanaryByWeightAndHeader) {
  auto r = convertYaml(ingress("main", "nginx", "", "example.com", "/", "Prefix", "stable") +
                           ingress("canary", "nginx",
                                   "    nginx.ingress.kubernetes.io/canary: \"true\"\n"
                                   "    nginx.ingress.kubernetes.io/canary-weight: \"20\"\n"
                                   "    nginx.ingress.kubernetes.io/canary-by-header: X-Canary\n",
                                   "example.com", "/", "Prefix", "next"),
                       {"ingress-nginx"});
  const Json* route = r.find("HTTPRoute", "main-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  ASSERT_EQ(rules(route).size(), 2u) << route->dump();
  const Json& weighted = rules(route)[0]["backendRefs"];
  ASSERT_EQ(weighted.size(), 2u);
  EXPECT_EQ(weighted[0]["weight"], 80);
  EXPECT_EQ(weighted[1]["weight"], 20);
  const Json& header = rules(route)[1];
  EXPECT_EQ(header["matches"][0]["headers"][0]["name"], "X-Canary");
  EXPECT_EQ(header["matches"][0]["headers"][0]["value"], "always");
  EXPECT_EQ(header["backendRefs"][0]["name"], "next");
  EXPECT_EQ(r.find("HTTPRoute", "canary-example-com"), nullptr);
}

TEST(ConvertNginx, CanaryHeaderValuePatternCookieAndOrphan) {
  auto v = convertYaml(ingress("main", "nginx", "", "example.com", "/", "Prefix", "stable") +
                           ingress("c", "nginx",
                                   "    nginx.ingress.kubernetes.io/canary: \"true\"\n"
                                   "    nginx.ingress.kubernetes.io/canary-by-cookie: beta\n",
                                   "example.com", "/", "Prefix", "next"),
                       {"ingress-nginx"});
  const Json& h = rules(v.find("HTTPRoute", "main-example-com"))[1]["matches"][0]["headers"][0];
  EXPECT_EQ(h["name"], "Cookie");
  EXPECT_EQ(h["type"], "RegularExpression");
  auto orphan =
      convertYaml(ingress("c", "nginx", "    nginx.ingress.kubernetes.io/canary: \"true\"\n"),
                  {"ingress-nginx"});
  EXPECT_EQ(orphan.count("HTTPRoute"), 0);
  EXPECT_TRUE(orphan.reported("paths[0]", Outcome::kUnconvertible, "no primary"));
}

TEST(ConvertNginx, Cors) {
  auto r = convertYaml(ingress("c", "nginx",
                               "    nginx.ingress.kubernetes.io/enable-cors: \"true\"\n"
                               "    nginx.ingress.kubernetes.io/cors-allow-origin: https://a.com\n"
                               "    nginx.ingress.kubernetes.io/cors-max-age: \"60\"\n"),
                       {"ingress-nginx"});
  const Json& f = rules(r.find("HTTPRoute", "c-example-com"))[0]["filters"][0];
  EXPECT_EQ(f["type"], "CORS");
  EXPECT_EQ(f["cors"]["allowOrigins"][0], "https://a.com");
  EXPECT_EQ(f["cors"]["maxAge"], 60);
}

TEST(ConvertNginx, BackendProtocol) {
  auto g =
      convertYaml(ingress("g", "nginx", "    nginx.ingress.kubernetes.io/backend-protocol: GRPC\n"),
                  {"ingress-nginx"});
  EXPECT_EQ(g.count("GRPCRoute"), 1);
  auto s = convertYaml(
      ingress("s", "nginx", "    nginx.ingress.kubernetes.io/backend-protocol: HTTPS\n"),
      {"ingress-nginx"});
  EXPECT_TRUE(s.reported("backend-protocol", Outcome::kUnconvertible, "BackendTLSPolicy"));
}

TEST(ConvertNginx, TimeoutsVhostPrefixRetries) {
  auto r =
      convertYaml(ingress("t", "nginx",
                          "    nginx.ingress.kubernetes.io/proxy-read-timeout: \"120\"\n"
                          "    nginx.ingress.kubernetes.io/proxy-send-timeout: \"30\"\n"
                          "    nginx.ingress.kubernetes.io/proxy-connect-timeout: \"5\"\n"
                          "    nginx.ingress.kubernetes.io/upstream-vhost: internal.local\n"
                          "    nginx.ingress.kubernetes.io/x-forwarded-prefix: /p\n"
                          "    nginx.ingress.kubernetes.io/proxy-next-upstream-tries: \"2\"\n"),
                  {"ingress-nginx"});
  const Json& rule = rules(r.find("HTTPRoute", "t-example-com"))[0];
  EXPECT_EQ(rule["timeouts"]["backendRequest"], "2m");
  EXPECT_EQ(rule["retry"]["attempts"], 2);
  bool vhost = false, prefix = false;
  for (const auto& f : rule["filters"]) {
    if (f["type"] == "URLRewrite") vhost = f["urlRewrite"]["hostname"] == "internal.local";
    if (f["type"] == "RequestHeaderModifier")
      prefix = f["requestHeaderModifier"]["set"][0]["value"] == "/p";
  }
  EXPECT_TRUE(vhost && prefix) << rule.dump();
  EXPECT_TRUE(r.reported("proxy-connect-timeout", Outcome::kUnconvertible));
  EXPECT_TRUE(r.reported("proxy-read-timeout", Outcome::kApproximated));
}

TEST(ConvertNginx, PermanentAndTemporalRedirect) {
  auto p = convertYaml(
      ingress(
          "p", "nginx",
          "    nginx.ingress.kubernetes.io/permanent-redirect: https://new.example.com:8443/x\n"),
      {"ingress-nginx"});
  const Json& rule = rules(p.find("HTTPRoute", "p-example-com"))[0];
  EXPECT_FALSE(rule.contains("backendRefs"));
  const Json& rr = rule["filters"][0]["requestRedirect"];
  EXPECT_EQ(rr["statusCode"], 301);
  EXPECT_EQ(rr["hostname"], "new.example.com");
  EXPECT_EQ(rr["port"], 8443);
  EXPECT_EQ(rr["path"]["replaceFullPath"], "/x");
  auto t = convertYaml(ingress("t", "nginx",
                               "    nginx.ingress.kubernetes.io/temporal-redirect: http://a.com\n"
                               "    nginx.ingress.kubernetes.io/temporal-redirect-code: \"307\"\n"),
                       {"ingress-nginx"});
  EXPECT_EQ(
      rules(t.find("HTTPRoute", "t-example-com"))[0]["filters"][0]["requestRedirect"]["statusCode"],
      307);
  auto bad = convertYaml(
      ingress("b", "nginx", "    nginx.ingress.kubernetes.io/permanent-redirect: /relative\n"),
      {"ingress-nginx"});
  EXPECT_TRUE(bad.reported("permanent-redirect", Outcome::kUnconvertible));
}

TEST(ConvertNginx, SslPassthroughBecomesTlsPassthroughListenerAndTlsRoute) {
  auto r =
      convertYaml(tlsIngress("nginx", "    nginx.ingress.kubernetes.io/ssl-passthrough: \"true\""),
                  {"ingress-nginx"});
  const Json* route = r.find("TLSRoute", "t-example-com");
  ASSERT_NE(route, nullptr) << r.dump();
  EXPECT_EQ((*route)["spec"]["hostnames"][0], "example.com");
  EXPECT_EQ((*route)["spec"]["parentRefs"][0]["sectionName"], "example-com-tls-passthrough");
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"][0]["name"], "a");
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"][0]["port"], 80);
  const Json* gw = r.find("Gateway", "nginx");
  ASSERT_NE(gw, nullptr) << r.dump();
  bool passthrough = false;
  for (const auto& l : (*gw)["spec"]["listeners"]) {
    // 443 relays TLS for the host; it is not also terminated by an HTTPS listener.
    EXPECT_NE(l["protocol"], "HTTPS") << l.dump();
    if (l["protocol"] == "TLS" && l["port"] == 443 && l["hostname"] == "example.com" &&
        l["tls"]["mode"] == "Passthrough")
      passthrough = true;
  }
  EXPECT_TRUE(passthrough) << gw->dump();
  EXPECT_TRUE(r.reported("ssl-passthrough", Outcome::kConverted));
  // Plain HTTP keeps its HTTPRoute (for a host with TLS, ingress-nginx's 308 to https).
  EXPECT_NE(r.find("HTTPRoute", "t-example-com"), nullptr) << r.dump();
}

TEST(ConvertNginx, AppRoot) {
  auto r = convertYaml(ingress("a", "nginx", "    nginx.ingress.kubernetes.io/app-root: /app\n"),
                       {"ingress-nginx"});
  const Json& rs = rules(r.find("HTTPRoute", "a-example-com"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0]["matches"][0]["path"]["type"], "Exact");
  EXPECT_EQ(rs[0]["filters"][0]["requestRedirect"]["path"]["replaceFullPath"], "/app");
  EXPECT_EQ(rs[0]["filters"][0]["requestRedirect"]["statusCode"], 302);
}

TEST(ConvertNginx, UnconvertibleAnnotationsAreReported) {
  auto r =
      convertYaml(ingress("u", "nginx",
                          "    nginx.ingress.kubernetes.io/proxy-body-size: 8m\n"
                          "    nginx.ingress.kubernetes.io/whitelist-source-range: 10.0.0.0/8\n"
                          "    nginx.ingress.kubernetes.io/configuration-snippet: x\n"
                          "    nginx.ingress.kubernetes.io/auth-url: http://auth\n"
                          "    nginx.ingress.kubernetes.io/limit-rps: \"5\"\n"
                          "    nginx.ingress.kubernetes.io/affinity: cookie\n"
                          "    nginx.ingress.kubernetes.io/made-up: x\n"
                          "    konghq.com/methods: GET\n"),
                  {"ingress-nginx"});
  for (const char* k : {"proxy-body-size", "whitelist-source-range", "configuration-snippet",
                        "auth-url", "limit-rps", "affinity", "made-up", "konghq.com/methods"})
    EXPECT_TRUE(r.reported(k, Outcome::kUnconvertible)) << k;
  EXPECT_EQ(r.count("HTTPRoute"), 1);
}

TEST(ConvertNginx, DefaultBackendCatchesOtherHostsAndPaths) {
  auto r = convertYaml(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: d, namespace: default}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: fallback, port: {number: 80}}}
  rules:
  - host: example.com
    http: {paths: [{path: /app, pathType: Prefix, backend: {service: {name: app, port: {number: 80}}}}]}
)",
                       {"ingress-nginx"});
  EXPECT_NE(r.find("HTTPRoute", "d-default-backend"), nullptr);
  const Json& rs = rules(r.find("HTTPRoute", "d-example-com"));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1]["backendRefs"][0]["name"], "fallback");
  const Json* gw = r.find("Gateway", "nginx");
  bool hostless = false;
  for (const auto& l : (*gw)["spec"]["listeners"]) hostless = hostless || !l.contains("hostname");
  EXPECT_TRUE(hostless);
}

TEST(ConvertGeneric, TooManyMatchesAreReported) {
  auto r = convertYaml(ingress("m", "kong",
                               "    konghq.com/methods: GET,POST,PUT,DELETE,PATCH\n"
                               "    konghq.com/headers.a: \"1,2,3,4\"\n"
                               "    konghq.com/headers.b: \"1,2,3,4\"\n"),
                       {"kong"});
  EXPECT_EQ(r.count("HTTPRoute"), 0);
  EXPECT_TRUE(r.reported("paths[0]", Outcome::kUnconvertible, "64"));
}

TEST(ConvertGeneric, ManyPathsSplitIntoRoutesOf16Rules) {
  std::string paths;
  for (int i = 0; i < 20; ++i)
    paths += "      - {path: /p" + std::to_string(i) +
             ", pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}\n";
  auto r = convertYaml(
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: big, "
      "namespace: default}\nspec:\n  ingressClassName: kong\n  rules:\n  - host: "
      "example.com\n    http:\n      paths:\n" +
          paths,
      {"kong"});
  ASSERT_NE(r.find("HTTPRoute", "big-example-com"), nullptr);
  EXPECT_EQ(rules(r.find("HTTPRoute", "big-example-com")).size(), 16u);
  EXPECT_EQ(rules(r.find("HTTPRoute", "big-example-com-2")).size(), 4u);
}

}  // namespace
}  // namespace archway::convert

namespace archway::convert {
namespace {

TEST(ConvertKong, InvalidRegexIsReportedNotEmitted) {
  auto r = convertYaml(
      ingress("r", "kong", "", "example.com", "/~/echo/**/test", "ImplementationSpecific"),
      {"kong"});
  EXPECT_EQ(r.count("HTTPRoute"), 0);
  EXPECT_TRUE(r.reported("paths[0].path", Outcome::kUnconvertible, "RE2"));
}

TEST(ConvertKong, PrefixRewriteWithSeveralMatchesSplitsRules) {
  auto r = convertYaml(ingress("s", "kong",
                               "    konghq.com/strip-path: \"true\"\n"
                               "    konghq.com/methods: GET,POST\n",
                               "example.com", "/api"),
                       {"kong"});
  const Json& rs = rules(r.find("HTTPRoute", "s-example-com"));
  ASSERT_EQ(rs.size(), 2u);
  for (const auto& rule : rs) EXPECT_EQ(rule["matches"].size(), 1u);
}

}  // namespace
}  // namespace archway::convert

namespace archway::convert {
namespace {

TEST(ConvertNginx, FromToWwwRedirect) {
  auto r = convertYaml(
      ingress("w", "nginx", "    nginx.ingress.kubernetes.io/from-to-www-redirect: \"true\"\n",
              "www.example.com"),
      {"ingress-nginx"});
  const Json* twin = r.find("HTTPRoute", "w-example-com");
  ASSERT_NE(twin, nullptr) << r.dump();
  EXPECT_EQ((*twin)["spec"]["hostnames"][0], "example.com");
  const Json& rr = rules(twin)[0]["filters"][0]["requestRedirect"];
  EXPECT_EQ(rr["hostname"], "www.example.com");
  EXPECT_EQ(rr["statusCode"], 308);
  EXPECT_NE(r.find("HTTPRoute", "w-www-example-com"), nullptr);
}

TEST(ConvertKong, PreserveHostFalseFromKongIngress) {
  auto r = convertYaml(
      "apiVersion: configuration.konghq.com/v1\nkind: KongIngress\nmetadata: {name: k, "
      "namespace: default}\nroute: {preserve_host: false}\n---\n" +
          ingress("p", "kong", "    konghq.com/override: k\n"),
      {"kong"});
  const Json& f = rules(r.find("HTTPRoute", "p-example-com"))[0]["filters"][0];
  EXPECT_EQ(f["urlRewrite"]["hostname"], "svc.default.svc");
  EXPECT_TRUE(r.reported("route.preserve_host", Outcome::kApproximated));
}

TEST(ConvertGeneric, ReportDeduplicatesAndSummarises) {
  std::vector<ReportEntry> entries = {{"Ingress a/b", "f", Outcome::kConverted, "m"},
                                      {"Ingress a/b", "f", Outcome::kConverted, "m"},
                                      {"Ingress a/b", "g", Outcome::kUnconvertible, "why"}};
  std::string text = renderReport(entries);
  EXPECT_EQ(text.find("f: m"), text.rfind("f: m"));
  EXPECT_NE(text.find("1 converted, 0 approximated, 1 unconvertible"), std::string::npos) << text;
}

}  // namespace
}  // namespace archway::convert
