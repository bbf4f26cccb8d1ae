// One test per kind of schema rule and per CEL rule family: small manifests, exact messages
// and lines ("line: Kind ns/name: field.path: what is wrong").
#include "api/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "api/loader.h"

namespace archway::api {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Checked {
  std::vector<std::string> errors;    // "line: message"
  std::vector<std::string> warnings;  // "line: message"
  std::vector<std::string> notes;
  std::vector<Object> objects;
};

Checked check(std::string_view yaml) {
  LoadResult r = decodeText(yaml, "t.yaml");
  EXPECT_FALSE(r.inputError);
  validateAll(r);
  Checked out;
  for (const auto& d : r.diagnostics) {
    std::string s = std::to_string(d.location.line) + ": " + d.message;
    switch (d.severity) {
      case Diagnostic::Severity::kError:
        out.errors.push_back(s);
        break;
      case Diagnostic::Severity::kWarning:
        out.warnings.push_back(s);
        break;
      case Diagnostic::Severity::kNote:
        out.notes.push_back(s);
        break;
    }
  }
  out.objects = std::move(r.objects);
  return out;
}

std::vector<std::string> errorsOf(std::string_view yaml) { return check(yaml).errors; }

constexpr const char* kGateway = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: g
  namespace: ns
spec:
  gatewayClassName: archway
  listeners:
)";  // listeners start at line 9

constexpr const char* kRoute = R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
  namespace: ns
spec:
  parentRefs:
  - name: g
  rules:
)";  // rules start at line 10

// ---- schema rules ----

TEST(Schema, TypeMismatch) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) + "  - name: http\n    port: \"80\"\n    protocol: HTTP\n"),
      ElementsAre("10: Gateway ns/g: spec.listeners[0].port: Invalid value: \"80\": must "
                  "be of type integer (got string)"));
}

TEST(Schema, Enum) {
  EXPECT_THAT(errorsOf(std::string(kRoute) + "  - matches:\n    - path: {type: Glob, value: /a}\n"),
              ElementsAre("11: HTTPRoute ns/r: spec.rules[0].matches[0].path.type: Unsupported "
                          "value: \"Glob\": supported values: \"Exact\", \"PathPrefix\", "
                          "\"RegularExpression\"",
                          "11: HTTPRoute ns/r: spec.rules[0].matches[0].path: type must be one of "
                          "['Exact', 'PathPrefix', 'RegularExpression']"));
}

TEST(Schema, Pattern) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) + "  - name: Http_1\n    port: 80\n    protocol: HTTP\n"),
      ElementsAre("9: Gateway ns/g: spec.listeners[0].name: Invalid value: \"Http_1\": "
                  "should match "
                  "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"));
}

TEST(Schema, MinAndMaxLength) {
  std::string yaml = R"(apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: g, namespace: ns}
spec:
  gatewayClassName: ""
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: )" + std::string(250, 'a') +
                     ".com\n";
  EXPECT_THAT(errorsOf(yaml),
              ElementsAre("5: Gateway ns/g: spec.gatewayClassName: Invalid value: \"\": should be "
                          "at least 1 chars long",
                          "10: Gateway ns/g: spec.listeners[0].hostname: Too long: may not be more "
                          "than 253 characters"));
}

TEST(Schema, LengthsCountCharactersNotBytes) {
  // 253 two-byte characters: too long by pattern, but not by maxLength (which counts runes).
  std::string name;
  for (int i = 0; i < 200; ++i) name += "\xC3\xA9";
  auto errors = errorsOf(std::string(kGateway) +
                         "  - name: http\n    port: 80\n    protocol: HTTP\n    hostname: \"" +
                         name + "\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::HasSubstr("should match"));
}

TEST(Schema, MinimumAndMaximum) {
  EXPECT_THAT(errorsOf(std::string(kGateway) +
                       "  - {name: a, port: 0, protocol: HTTP}\n  - {name: b, port: 70000, "
                       "protocol: HTTP}\n"),
              ElementsAre("9: Gateway ns/g: spec.listeners[0].port: Invalid value: 0: should be "
                          "greater than or equal to 1",
                          "10: Gateway ns/g: spec.listeners[1].port: Invalid value: 70000: should "
                          "be less than or equal to 65535"));
}

TEST(Schema, MinAndMaxItems) {
  std::string hostnames;
  for (int i = 0; i < 17; ++i) hostnames += "h" + std::to_string(i) + ".example.com, ";
  hostnames.resize(hostnames.size() - 2);
  auto c = check(std::string(kRoute) + "  - {}\n  hostnames: [" + hostnames + "]\n");
  EXPECT_THAT(c.errors,
              ElementsAre("11: HTTPRoute ns/r: spec.hostnames: Too many: 17: must have at "
                          "most 16 items"));
  EXPECT_THAT(errorsOf(std::string(kGateway) + "  []\n"),
              ElementsAre("8: Gateway ns/g: spec.listeners: Invalid value: 0: should have at "
                          "least 1 items"));
}

TEST(Schema, Required) {
  EXPECT_THAT(errorsOf(std::string(kGateway) + "  - name: http\n    protocol: HTTP\n"),
              ElementsAre("9: Gateway ns/g: spec.listeners[0].port: Required value"));
  EXPECT_THAT(errorsOf("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: "
                       "g, namespace: ns}\n"),
              ElementsAre("1: Gateway ns/g: spec: Required value"));
}

TEST(Schema, FormatThroughOneOf) {
  // Gateway addresses of type IPAddress must hold an IPv4 or IPv6 address.
  auto errors =
      errorsOf(std::string(kGateway) +
               "  - {name: a, port: 80, protocol: HTTP}\n  addresses:\n  - value: "
               "10.0.0.300\n  - value: \"::1\"\n  - {type: Hostname, value: a.example}\n");
  EXPECT_THAT(errors,
              ElementsAre("11: Gateway ns/g: spec.addresses[0]: Invalid value: object: must "
                          "validate one and only one schema (oneOf): value: must be of "
                          "format ipv4 or must be of format ipv6"));
}

TEST(Schema, ListTypeMapKeysAreUnique) {
  auto errors = errorsOf(std::string(kGateway) +
                         "  - {name: a, port: 80, protocol: HTTP}\n  - {name: a, port: 81, "
                         "protocol: HTTP}\n");
  EXPECT_THAT(errors, ElementsAre("10: Gateway ns/g: spec.listeners[1]: Duplicate value: "
                                  "{\"name\":\"a\"}",
                                  "9: Gateway ns/g: spec.listeners[0]: Listener name must be "
                                  "unique within the Gateway"));
}

TEST(Schema, ListTypeSetValuesAreUnique) {
  auto errors = errorsOf(std::string(kRoute) +
                         "  - filters:\n    - type: RequestHeaderModifier\n"
                         "      requestHeaderModifier:\n        remove: [x-a, x-b, x-a]\n");
  EXPECT_THAT(errors, ElementsAre("13: HTTPRoute ns/r: spec.rules[0].filters[0]."
                                  "requestHeaderModifier.remove[2]: Duplicate value: \"x-a\""));
}

TEST(Schema, UnknownFieldsArePrunedWithAWarning) {
  auto c = check(std::string(kGateway) +
                 "  - name: http\n    port: 80\n    protocol: HTTP\n    prot: 1\n");
  EXPECT_THAT(c.errors, IsEmpty());
  EXPECT_THAT(c.warnings,
              ElementsAre("12: Gateway ns/g: spec.listeners[0].prot: unknown field, ignored"));
  ASSERT_EQ(c.objects.size(), 1u);
  EXPECT_FALSE(c.objects[0].spec()["listeners"][0].contains("prot"));
}

TEST(Schema, NullsArePrunedThenDefaulted) {
  auto c = check(std::string(kRoute) +
                 "  - backendRefs:\n    - name: s\n      port: 80\n      weight: null\n");
  EXPECT_THAT(c.errors, IsEmpty());
  EXPECT_EQ(c.objects[0].spec()["rules"][0]["backendRefs"][0]["weight"], 1);
}

TEST(Schema, DefaultsAreApplied) {
  auto c = check(std::string(kGateway) + "  - {name: http, port: 80, protocol: HTTP}\n");
  ASSERT_THAT(c.errors, IsEmpty());
  EXPECT_EQ(c.objects[0].spec()["listeners"][0]["allowedRoutes"],
            Json::parse(R"({"namespaces": {"from": "Same"}})"));
  auto r = check(std::string(kRoute) + "  - backendRefs: [{name: s, port: 80}]\n");
  ASSERT_THAT(r.errors, IsEmpty());
  const Json& rule = r.objects[0].spec()["rules"][0];
  EXPECT_EQ(rule["matches"], Json::parse(R"([{"path": {"type": "PathPrefix", "value": "/"}}])"));
  EXPECT_EQ(
      rule["backendRefs"][0],
      Json::parse(R"({"group": "", "kind": "Service", "name": "s", "port": 80, "weight": 1})"));
  EXPECT_EQ(r.objects[0].spec()["parentRefs"][0]["kind"], "Gateway");
  // A route without rules gets the API server's default rule.
  auto empty = check(std::string(kRoute).substr(0, std::string(kRoute).size() - 9));
  ASSERT_THAT(empty.errors, IsEmpty());
  EXPECT_EQ(empty.objects[0].spec()["rules"][0]["matches"][0]["path"]["value"], "/");
}

TEST(Schema, StatusIsNeitherValidatedNorDefaulted) {
  auto c = check(std::string(kGateway) +
                 "  - {name: http, port: 80, protocol: HTTP}\nstatus:\n  addresses: 5\n");
  EXPECT_THAT(c.errors, IsEmpty());
  EXPECT_EQ(c.objects[0].body["status"]["addresses"], 5);
}

TEST(Metadata, NamesAndNamespaces) {
  auto c = check(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: Bad_Name
  namespace: Ns
  labels:
    "a/b/c": x
    ok: "not ok!"
spec: {}
)");
  EXPECT_THAT(
      c.errors,
      ElementsAre("4: HTTPRoute Ns/Bad_Name: metadata.name: Invalid value: \"Bad_Name\": "
                  "must be a lowercase RFC 1123 subdomain (lowercase alphanumerics, '-' or "
                  "'.', starting and ending with an alphanumeric, at most 253 characters)",
                  "5: HTTPRoute Ns/Bad_Name: metadata.namespace: Invalid value: \"Ns\": must "
                  "be a lowercase RFC 1123 label (lowercase alphanumerics or '-', starting "
                  "and ending with an alphanumeric, at most 63 characters)",
                  "7: HTTPRoute Ns/Bad_Name: metadata.labels.a/b/c: Invalid value: "
                  "\"a/b/c\": key name part must consist of alphanumeric characters, '-', "
                  "'_' or '.', and must start and end with an alphanumeric character",
                  "8: HTTPRoute Ns/Bad_Name: metadata.labels.ok: Invalid value: \"not "
                  "ok!\": a label value must be empty or consist of alphanumeric "
                  "characters, '-', '_' or '.', start and end with an alphanumeric "
                  "character, and be at most 63 characters"));
}

TEST(Metadata, NamespaceDefaultingFollowsScope) {
  auto c = check(R"(apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec: {}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: c, namespace: ns}
spec: {controllerName: archway.dev/gateway-controller}
)");
  EXPECT_THAT(c.errors, IsEmpty());
  ASSERT_EQ(c.objects.size(), 2u);
  EXPECT_EQ(c.objects[0].ns, "default");
  EXPECT_EQ(c.objects[0].metadata()["namespace"], "default");
  EXPECT_EQ(c.objects[1].ns, "");
  EXPECT_FALSE(c.objects[1].metadata().contains("namespace"));
  EXPECT_THAT(c.warnings, ElementsAre("8: GatewayClass c: metadata.namespace: ignored: "
                                      "GatewayClass is cluster-scoped"));
}

TEST(Versions, UnservedVersionIsAnErrorDeprecatedOneAWarning) {
  auto c = check(R"(apiVersion: gateway.networking.k8s.io/v2
kind: HTTPRoute
metadata: {name: r, namespace: ns}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: ns}
spec:
  parentRefs: [{name: g}]
  rules: [{backendRefs: [{name: s, port: 9000}]}]
)");
  EXPECT_THAT(c.errors, ElementsAre("1: HTTPRoute ns/r: apiVersion: Invalid value: "
                                    "\"gateway.networking.k8s.io/v2\": version v2 of HTTPRoute is "
                                    "not served (served: v1, v1beta1)"));
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_THAT(c.warnings[0], ::testing::StartsWith("5: TCPRoute ns/t: apiVersion: The v1alpha2 "
                                                   "version of TCPRoute has been deprecated"));
  ASSERT_EQ(c.objects.size(), 2u);  // invalid objects are kept (their status reports why)
  EXPECT_FALSE(c.objects[0].validationErrors.empty());
  EXPECT_EQ(c.objects[0].validationErrors[0].substr(0, 24), "apiVersion: Invalid valu");
}

TEST(Kinds, UnknownKindsAreSkippedWithANoteVendorKindsKept) {
  auto c = check(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: ns}
---
apiVersion: configuration.konghq.com/v1
kind: KongPlugin
metadata: {name: p, namespace: ns}
plugin: cors
---
apiVersion: gateway.networking.k8s.io/v1
kind: FancyRoute
metadata: {name: f, namespace: ns}
)");
  EXPECT_THAT(c.notes, ElementsAre("1: Deployment ns/d: skipped unknown kind (apiVersion apps/v1)",
                                   "10: FancyRoute ns/f: skipped unknown kind (apiVersion "
                                   "gateway.networking.k8s.io/v1)"));
  ASSERT_EQ(c.objects.size(), 1u);
  EXPECT_EQ(c.objects[0].kind, "KongPlugin");
  EXPECT_THAT(c.errors, IsEmpty());
}

TEST(Validation, InvalidObjectDoesNotStopOthers) {
  auto c = check(std::string(kGateway) + "  - {name: a, port: 0, protocol: HTTP}\n---\n" +
                 kGateway + "  - {name: a, port: 80, protocol: HTTP}\n");
  ASSERT_EQ(c.objects.size(), 2u);
  EXPECT_THAT(c.objects[0].validationErrors,
              ElementsAre("spec.listeners[0].port: Invalid value: 0: should be greater than or "
                          "equal to 1"));
  EXPECT_THAT(c.objects[1].validationErrors, IsEmpty());
}

// ---- CEL rule families ----

TEST(Cel, Listeners) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) +
               "  - {name: a, port: 80, protocol: HTTP, tls: {certificateRefs: [{name: c}]}}\n"
               "  - {name: b, port: 443, protocol: TLS}\n"
               "  - {name: c, port: 90, protocol: TCP, hostname: a.example}\n"
               "  - {name: d, port: 90, protocol: TCP}\n"
               "  - {name: e, port: 90, protocol: TCP}\n"),
      ElementsAre("9: Gateway ns/g: spec.listeners[0]: tls must not be specified for protocols "
                  "['HTTP', 'TCP', 'UDP']",
                  "10: Gateway ns/g: spec.listeners[1]: tls mode must be set for protocol TLS",
                  "11: Gateway ns/g: spec.listeners[2]: hostname must not be specified for "
                  "protocols ['TCP', 'UDP']",
                  "12: Gateway ns/g: spec.listeners[3]: Combination of port, protocol and "
                  "hostname must be unique for each listener"));
}

TEST(Cel, ListenerTlsNeedsCertificates) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) +
               "  - name: a\n    port: 443\n    protocol: HTTPS\n    tls: {mode: Terminate}\n"),
      ElementsAre("12: Gateway ns/g: spec.listeners[0].tls: certificateRefs or options must "
                  "be specified when mode is Terminate"));
}

TEST(Cel, Addresses) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) + "  - {name: a, port: 80, protocol: HTTP}\n  addresses:\n"
                                       "  - {value: 10.0.0.1}\n  - {value: 10.0.0.1}\n"
                                       "  - {type: Hostname, value: Bad..Host}\n"),
      ElementsAre("13: Gateway ns/g: spec.addresses[2]: Hostname value must be empty or "
                  "contain only valid characters (matching "
                  "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)",
                  "11: Gateway ns/g: spec.addresses[0]: IPAddress values must be unique"));
}

TEST(Cel, InfrastructureLabelKeys) {
  EXPECT_THAT(
      errorsOf(std::string(kGateway) +
               "  - {name: a, port: 80, protocol: HTTP}\n  infrastructure:\n    labels:\n"
               "      \"-bad\": x\n"),
      ElementsAre("12: Gateway ns/g: spec.infrastructure.labels.-bad: Label keys must be in "
                  "the form of an optional DNS subdomain prefix followed by a required name "
                  "segment of up to 63 characters."));
}

TEST(Cel, ParentRefs) {
  const std::string head =
      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: "
      "ns}\nspec:\n  parentRefs:\n";  // refs start at line 6
  EXPECT_THAT(
      errorsOf(head + "  - {name: g, sectionName: http}\n  - {name: g, sectionName: http}\n"),
      ElementsAre("6: HTTPRoute ns/r: spec.parentRefs[0]: sectionName or port must be "
                  "unique when parentRefs includes 2 or more references to the same parent"));
  EXPECT_THAT(errorsOf(head + "  - {name: g}\n  - {name: g, sectionName: http}\n"),
              ElementsAre("6: HTTPRoute ns/r: spec.parentRefs[0]: sectionName or port must be "
                          "specified when parentRefs includes 2 or more references to the same "
                          "parent"));
  // Same name in another namespace, or another port, is a different parent.
  EXPECT_THAT(errorsOf(head + "  - {name: g}\n  - {name: g, namespace: other}\n"
                              "  - {name: g, namespace: other, port: 80}\n  - {name: g, namespace: "
                              "other, port: 81}\n"),
              ElementsAre("7: HTTPRoute ns/r: spec.parentRefs[1]: sectionName or port must be "
                          "specified when parentRefs includes 2 or more references to the same "
                          "parent"));
}

TEST(Cel, RuleNamesAndBackendPorts) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) + "  - name: a\n    backendRefs: [{name: s}]\n  - name: a\n"),
      ElementsAre("11: HTTPRoute ns/r: spec.rules[0].backendRefs[0]: Must have port for "
                  "Service reference",
                  "10: HTTPRoute ns/r: spec.rules[0]: Rule name must be unique within the "
                  "route"));
}

TEST(Cel, FilterTypeAndFieldMustAgree) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - filters:\n    - type: RequestHeaderModifier\n"
               "      responseHeaderModifier: {set: [{name: a, value: b}]}\n"),
      ElementsAre("11: HTTPRoute ns/r: spec.rules[0].filters[0]: filter.requestHeaderModifier "
                  "must be specified for RequestHeaderModifier filter.type",
                  "11: HTTPRoute ns/r: spec.rules[0].filters[0]: "
                  "filter.responseHeaderModifier must be nil if the filter.type is not "
                  "ResponseHeaderModifier"));
}

TEST(Cel, FiltersCannotRepeatOrCombineRedirectAndRewrite) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - filters:\n"
               "    - {type: RequestRedirect, requestRedirect: {scheme: https}}\n"
               "    - {type: URLRewrite, urlRewrite: {hostname: a.example}}\n"
               "    - {type: URLRewrite, urlRewrite: {hostname: b.example}}\n"),
      ElementsAre(
          "10: HTTPRoute ns/r: spec.rules[0].filters: May specify either "
          "httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both",
          "10: HTTPRoute ns/r: spec.rules[0].filters: URLRewrite filter cannot be repeated"));
}

TEST(Cel, RedirectAndPrefixRewrite) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - backendRefs: [{name: s, port: 80}]\n"
               "    filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]\n"
               "  - matches: [{path: {type: Exact, value: /a}}]\n"
               "    filters:\n"
               "    - type: URLRewrite\n"
               "      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}\n"),
      ElementsAre("10: HTTPRoute ns/r: spec.rules[0]: RequestRedirect filter must not be used "
                  "together with backendRefs",
                  "12: HTTPRoute ns/r: spec.rules[1]: When using URLRewrite filter with "
                  "path.replacePrefixMatch, exactly one PathPrefix match must be specified"));
}

TEST(Cel, PathModifier) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - filters:\n    - type: URLRewrite\n"
               "      urlRewrite: {path: {type: ReplaceFullPath, replacePrefixMatch: /b}}\n"),
      ElementsAre("12: HTTPRoute ns/r: spec.rules[0].filters[0].urlRewrite.path: "
                  "replaceFullPath must be specified when type is set to 'ReplaceFullPath'",
                  "12: HTTPRoute ns/r: spec.rules[0].filters[0].urlRewrite.path: type must "
                  "be 'ReplacePrefixMatch' when replacePrefixMatch is set"));
}

TEST(Cel, PathMatchValue) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - matches:\n    - path: {type: PathPrefix, value: /a//b/..}\n"),
      ElementsAre("11: HTTPRoute ns/r: spec.rules[0].matches[0].path: must not contain '//' "
                  "when type one of ['Exact', 'PathPrefix']",
                  "11: HTTPRoute ns/r: spec.rules[0].matches[0].path: must not end with "
                  "'/..' when type one of ['Exact', 'PathPrefix']"));
  EXPECT_THAT(
      errorsOf(std::string(kRoute) + "  - matches:\n    - path: {type: Exact, value: \"a b\"}\n"),
      ElementsAre("11: HTTPRoute ns/r: spec.rules[0].matches[0].path: value must be an "
                  "absolute path and start with '/' when type one of ['Exact', "
                  "'PathPrefix']",
                  "11: HTTPRoute ns/r: spec.rules[0].matches[0].path: must only contain "
                  "valid characters (matching "
                  "^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types "
                  "['Exact', 'PathPrefix']"));
  // RegularExpression values are not subject to those rules.
  EXPECT_THAT(errorsOf(std::string(kRoute) +
                       "  - matches:\n    - path: {type: RegularExpression, value: \"a//b\"}\n"),
              IsEmpty());
}

TEST(Cel, Mirror) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - filters:\n    - type: RequestMirror\n      requestMirror:\n"
               "        backendRef: {name: m, port: 80}\n        percent: 10\n"
               "        fraction: {numerator: 5, denominator: 2}\n"),
      ElementsAre("15: HTTPRoute ns/r: spec.rules[0].filters[0].requestMirror.fraction: numerator "
                  "must be less than or equal to denominator",
                  "12: HTTPRoute ns/r: spec.rules[0].filters[0].requestMirror: Only one of percent "
                  "or fraction may be specified in HTTPRequestMirrorFilter"));
}

TEST(Cel, Cors) {
  EXPECT_THAT(errorsOf(std::string(kRoute) +
                       "  - filters:\n    - type: CORS\n      cors: {allowOrigins: ['*', "
                       "'https://a.example']}\n"),
              ElementsAre("12: HTTPRoute ns/r: spec.rules[0].filters[0].cors.allowOrigins: "
                          "AllowOrigins cannot contain '*' alongside other origins"));
}

TEST(Cel, ExternalAuth) {
  EXPECT_THAT(
      errorsOf(std::string(kRoute) +
               "  - filters:\n    - type: ExternalAuth\n      externalAuth:\n"
               "        protocol: GRPC\n        backendRef: {name: a, port: 9000}\n"
               "        http: {}\n"),
      ElementsAre("12: HTTPRoute ns/r: spec.rules[0].filters[0].externalAuth: grpc must be "
                  "specified when protocol is set to 'GRPC'",
                  "12: HTTPRoute ns/r: spec.rules[0].filters[0].externalAuth: protocol must "
                  "be 'HTTP' when http is set"));
}

TEST(Cel, Timeouts) {
  EXPECT_THAT(errorsOf(std::string(kRoute) + "  - timeouts: {request: 1s, backendRequest: 2s}\n"),
              ElementsAre("10: HTTPRoute ns/r: spec.rules[0].timeouts: backendRequest timeout "
                          "cannot be longer than request timeout"));
  EXPECT_THAT(errorsOf(std::string(kRoute) + "  - timeouts: {request: 0s, backendRequest: 2s}\n"),
              IsEmpty());
}

TEST(Cel, SessionPersistence) {
  EXPECT_THAT(errorsOf(std::string(kRoute) + "  - sessionPersistence:\n      type: Header\n"
                                             "      cookieConfig: {lifetimeType: Permanent}\n"),
              ElementsAre("10: HTTPRoute ns/r: spec.rules[0].sessionPersistence: AbsoluteTimeout "
                          "must be specified when cookie lifetimeType is Permanent",
                          "10: HTTPRoute ns/r: spec.rules[0].sessionPersistence: cookieConfig can "
                          "only be set with type Cookie"));
}

TEST(Cel, MatchesLimit) {
  std::string rules;
  for (int r = 0; r < 3; ++r) {
    rules += "  - matches:\n";
    for (int m = 0; m < 43; ++m) rules += "    - path: {value: /p" + std::to_string(m) + "}\n";
  }
  EXPECT_THAT(errorsOf(std::string(kRoute) + rules),
              ElementsAre("9: HTTPRoute ns/r: spec.rules: While 16 rules and 64 matches per rule "
                          "are allowed, the total number of matches across all rules in a route "
                          "must be less than 128"));
}

TEST(Cel, GrpcMethod) {
  EXPECT_THAT(errorsOf(R"(apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: r, namespace: ns}
spec:
  rules:
  - matches:
    - method: {type: Exact}
    - method: {service: "1bad", method: "get-x"}
)"),
              ElementsAre("7: GRPCRoute ns/r: spec.rules[0].matches[0].method: One or both of "
                          "'service' or 'method' must be specified",
                          "8: GRPCRoute ns/r: spec.rules[0].matches[1].method: service must only "
                          "contain valid characters (matching "
                          "^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)",
                          "8: GRPCRoute ns/r: spec.rules[0].matches[1].method: method must only "
                          "contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)"));
}

TEST(Cel, TlsRouteHostnames) {
  EXPECT_THAT(
      errorsOf(R"(apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: r, namespace: ns}
spec:
  hostnames: ["10.0.0.1", "a.*.example"]
  rules: [{backendRefs: [{name: s, port: 443}]}]
)"),
      ElementsAre("5: TLSRoute ns/r: spec.hostnames[1]: Invalid value: \"a.*.example\": "
                  "should match "
                  "'^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
                  "5: TLSRoute ns/r: spec.hostnames[0]: Hostnames cannot contain an IP",
                  "5: TLSRoute ns/r: spec.hostnames[1]: Wildcards on hostnames must be the "
                  "first label, and the rest of hostname must be valid based on RFC-1123"));
}

TEST(Cel, BackendTlsPolicy) {
  EXPECT_THAT(
      errorsOf(R"(apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: p, namespace: ns}
spec:
  targetRefs:
  - {group: "", kind: Service, name: s}
  - {group: "", kind: Service, name: s, sectionName: https}
  validation:
    hostname: s.example
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    wellKnownCACertificates: System
    subjectAltNames:
    - {type: Hostname, uri: "spiffe://a"}
)"),
      ElementsAre("6: BackendTLSPolicy ns/p: spec.targetRefs[0]: sectionName must be "
                  "specified when targetRefs includes 2 or more references to the same "
                  "target",
                  "13: BackendTLSPolicy ns/p: spec.validation.subjectAltNames[0]: "
                  "SubjectAltName element must contain Hostname, if Type is set to Hostname",
                  "13: BackendTLSPolicy ns/p: spec.validation.subjectAltNames[0]: "
                  "SubjectAltName element must not contain URI, if Type is not set to URI",
                  "8: BackendTLSPolicy ns/p: spec.validation: must not contain both "
                  "CACertificateRefs and WellKnownCACertificates"));
}

TEST(Cel, RetryBudgetDurations) {
  EXPECT_THAT(
      errorsOf(R"(apiVersion: gateway.networking.x-k8s.io/v1alpha1
kind: XBackendTrafficPolicy
metadata: {name: p, namespace: ns}
spec:
  targetRefs: [{group: "", kind: Service, name: s}]
  retryConstraint:
    budget: {interval: 2h}
    minRetryRate: {count: 1, interval: 0s}
)"),
      ElementsAre("7: XBackendTrafficPolicy ns/p: spec.retryConstraint.budget.interval: "
                  "interval cannot be greater than one hour or less than one second",
                  "8: XBackendTrafficPolicy ns/p: spec.retryConstraint.minRetryRate.interval: "
                  "interval cannot be greater than one hour"));
}

// ---- core kinds ----

TEST(Core, Service) {
  auto c = check(R"(apiVersion: v1
kind: Service
metadata: {name: web, namespace: ns}
spec:
  type: Magic
  ports:
  - {port: 80, targetPort: http-port-too-long-name}
  - {name: b, port: 70000, protocol: QUIC}
)");
  EXPECT_THAT(
      c.errors,
      ElementsAre("5: Service ns/web: spec.type: Unsupported value: \"Magic\": supported "
                  "values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\"",
                  "7: Service ns/web: spec.ports[0].name: Required value",
                  "7: Service ns/web: spec.ports[0].targetPort: Invalid value: "
                  "\"http-port-too-long-name\": must be a port number or an IANA service name "
                  "(at most 15 lowercase alphanumerics or '-', with at least one letter)",
                  "8: Service ns/web: spec.ports[1].protocol: Unsupported value: \"QUIC\": "
                  "supported values: \"TCP\", \"UDP\", \"SCTP\"",
                  "8: Service ns/web: spec.ports[1].port: Invalid value: 70000: must be "
                  "between 1 and 65535, inclusive"));
  EXPECT_EQ(c.objects[0].spec()["ports"][0]["protocol"], "TCP");  // defaulted
}

TEST(Core, EndpointSlice) {
  EXPECT_THAT(errorsOf(R"(apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: e, namespace: ns}
addressType: IPv4
endpoints:
- addresses: ["10.0.0.1", "::1"]
  conditions: {ready: "true"}
ports: [{port: 8080}]
)"),
              ElementsAre("6: EndpointSlice ns/e: endpoints[0].addresses[1]: Invalid value: "
                          "\"::1\": must be a valid IPv4 address",
                          "7: EndpointSlice ns/e: endpoints[0].conditions.ready: Invalid value: "
                          "\"true\": must be of type boolean"));
}

TEST(Core, SecretAndConfigMap) {
  auto c = check(R"(apiVersion: v1
kind: Secret
metadata: {name: s, namespace: ns}
type: kubernetes.io/tls
data:
  tls.key: "not base64!"
---
apiVersion: v1
kind: Secret
metadata: {name: t, namespace: ns}
type: kubernetes.io/tls
stringData: {tls.crt: "abc", tls.key: "de"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: ns}
data: {"a b": x}
)");
  EXPECT_THAT(
      c.errors,
      ElementsAre("6: Secret ns/s: data.tls.key: Invalid value: \"not base64!\": must be "
                  "base64-encoded",
                  "5: Secret ns/s: data.tls.crt: Required value",
                  "17: ConfigMap ns/c: data.a b: Invalid value: \"a b\": a valid config key "
                  "must consist of alphanumeric characters, '-', '_' or '.'"));
  // stringData is merged into data, base64-encoded, as the API server stores it.
  EXPECT_EQ(c.objects[1].body["data"], Json::parse(R"({"tls.crt": "YWJj", "tls.key": "ZGU="})"));
  EXPECT_FALSE(c.objects[1].body.contains("stringData"));
}

TEST(Core, Ingress) {
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i, namespace: ns}
spec:
  rules:
  - host: 10.0.0.1
    http:
      paths:
      - path: /
        pathType: Glob
        backend: {service: {name: web, port: {number: 80, name: http}}}
)"),
              ElementsAre("6: Ingress ns/i: spec.rules[0].host: Invalid value: \"10.0.0.1\": must "
                          "be a DNS name (optionally with a leading '*.'), not an IP",
                          "10: Ingress ns/i: spec.rules[0].http.paths[0].pathType: Unsupported "
                          "value: \"Glob\": supported values: \"Exact\", \"Prefix\", "
                          "\"ImplementationSpecific\"",
                          "11: Ingress ns/i: spec.rules[0].http.paths[0].backend.service.port: "
                          "Invalid value: object: exactly one of name or number must be set"));
}

TEST(Core, WrongApiVersion) {
  EXPECT_THAT(errorsOf("apiVersion: networking.k8s.io/v1beta1\nkind: Ingress\nmetadata: {name: i, "
                       "namespace: ns}\n"),
              ElementsAre("1: Ingress ns/i: apiVersion: Invalid value: "
                          "\"networking.k8s.io/v1beta1\": version v1beta1 of Ingress is not served "
                          "(served: v1)"));
}

}  // namespace
}  // namespace archway::api
