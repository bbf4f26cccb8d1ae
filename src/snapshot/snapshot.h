// The snapshot: an immutable, compiled description of everything the data plane serves.
// Built once per configuration change by the translator (src/translate) on the control
// thread, published to the workers as std::shared_ptr<const Snapshot>; a request keeps the
// snapshot it started with. Everything that can be decided or compiled ahead of time is
// decided here (regexes, lower-cased header names, effective hostnames, precedence order),
// so the request path does no parsing of configuration.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <re2/re2.h>

namespace archway::snapshot {

using Duration = std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------
// Backends

struct Endpoint {
  std::string address;  // IP literal
  uint16_t port = 0;    // target port
};

enum class BackendProtocol { kHttp1, kH2c, kWebSocket, kTcp, kUdp };

// Upstream TLS from a BackendTLSPolicy (and the Gateway's backend client certificate).
struct BackendTls {
  std::string sni;                          // validation.hostname
  std::string caPem;                        // concatenated CA certificates
  bool useSystemCas = false;                // wellKnownCACertificates: System
  std::vector<std::string> subjectAltNames; // "DNS:host" / "URI:spiffe://..."; empty = check sni
  std::string clientCertPem, clientKeyPem;  // Gateway spec.tls.backend.clientCertificateRef
  // A policy that targets this backend but cannot be satisfied: traffic must get a 5xx.
  bool invalid = false;
};

// One Service port resolved to its ready endpoints.
struct Backend {
  std::string id;  // "namespace/service:port", stable; used for metrics and pool keys
  std::string ns, service;
  uint16_t port = 0;
  BackendProtocol protocol = BackendProtocol::kHttp1;
  std::vector<Endpoint> endpoints;  // ready endpoints only; empty -> 503
  std::shared_ptr<const BackendTls> tls;
};

// ---------------------------------------------------------------------------------------
// HTTP filters (one struct per filter kind; a rule holds them in spec order)

struct HeaderModifier {
  std::vector<std::pair<std::string, std::string>> set;  // names lower-cased
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::string> remove;
};

enum class PathModifierType { kNone, kReplaceFullPath, kReplacePrefixMatch };

struct PathModifier {
  PathModifierType type = PathModifierType::kNone;
  std::string value;  // full path, or replacement for the matched prefix
};

struct RequestRedirect {
  std::optional<std::string> scheme;    // http | https
  std::optional<std::string> hostname;  // no port
  std::optional<uint16_t> port;
  PathModifier path;
  int statusCode = 302;
};

struct UrlRewrite {
  std::optional<std::string> hostname;
  PathModifier path;
};

struct RequestMirror {
  std::shared_ptr<const Backend> backend;  // null if unresolved (mirror is skipped)
  // Fraction of requests mirrored: numerator / denominator (percent p -> p/100).
  uint32_t numerator = 100, denominator = 100;
};

struct Cors {
  std::vector<std::string> allowOrigins;  // may contain "*" and "https://*.example.com"
  bool allowCredentials = false;
  std::vector<std::string> allowMethods;  // may be {"*"}
  std::vector<std::string> allowHeaders;
  std::vector<std::string> exposeHeaders;
  int maxAgeSeconds = 5;
};

// ExtensionRef filter: a plugin (src/filters) named by group/kind/name with its config.
struct ExtensionFilter {
  std::string group, kind, ns, name;
  std::string configJson;  // the referenced object's body, for the plugin to interpret
  bool resolved = false;   // unresolved -> requests get 500 (spec: must not be skipped)
};

struct HttpFilter {
  enum class Type {
    kRequestHeaderModifier,
    kResponseHeaderModifier,
    kRequestRedirect,
    kUrlRewrite,
    kRequestMirror,
    kCors,
    kExtensionRef,
  };
  Type type;
  HeaderModifier headers;  // for the two header modifiers
  RequestRedirect redirect;
  UrlRewrite rewrite;
  RequestMirror mirror;
  Cors cors;
  ExtensionFilter extension;
};

// ---------------------------------------------------------------------------------------
// HTTP routing

struct WeightedBackend {
  std::shared_ptr<const Backend> backend;  // null when the ref is invalid -> 500
  uint32_t weight = 1;
  std::vector<HttpFilter> filters;  // backendRef-level filters
};

struct RetryPolicy {
  std::vector<int> codes;  // status codes that trigger a retry
  int attempts = 0;        // retries after the first try
  Duration backoff{0};
  bool retryConnectionErrors = true;
};

// What a matched rule does.
struct HttpRule {
  std::string routeNs, routeName;  // owning route (for logs, access log, metrics labels)
  std::string ruleName;            // rules[].name, may be empty
  size_t ruleIndex = 0;
  std::vector<HttpFilter> filters;
  std::vector<WeightedBackend> backends;  // empty -> 500 (no backendRefs)
  std::optional<Duration> requestTimeout;         // timeouts.request; nullopt = none
  std::optional<Duration> backendRequestTimeout;  // timeouts.backendRequest
  std::optional<RetryPolicy> retry;
  bool isGrpc = false;  // from a GRPCRoute: errors are answered as gRPC status
};

enum class MatchType { kExact, kPathPrefix, kRegularExpression };

struct StringMatch {
  MatchType type = MatchType::kExact;
  std::string name;   // header names lower-cased; query names as written
  std::string value;
  std::shared_ptr<const re2::RE2> regex;  // compiled when type is kRegularExpression
};

struct PathMatch {
  MatchType type = MatchType::kPathPrefix;
  std::string value = "/";
  std::shared_ptr<const re2::RE2> regex;
};

// One entry of HTTPRoute rules[].matches[] (or a GRPCRoute match, translated to
// path "/service/method" matching plus headers).
struct HttpMatch {
  PathMatch path;
  std::optional<std::string> method;
  std::vector<StringMatch> headers;
  std::vector<StringMatch> queryParams;
};

// One (match, rule) pair, with the hostnames it serves on its listener. A listener's
// entries are sorted in the spec's precedence order (the first matching entry wins),
// so a router may index them any way it likes as long as it preserves that order.
// The translator emits one entry per effective hostname (hostnames has 0 or 1 element),
// so hostname specificity is part of the order: exact names, then wildcards (longest
// first), then entries without hostname. Within one hostname: Exact path, then
// RegularExpression (longest pattern first), then PathPrefix (longest first), then
// method, header count, query count, route age, namespace/name, rule and match order.
// GRPCRoute entries (rule->isGrpc) share the vector but are never merged with HTTPRoute
// precedence: a gRPC request (content-type application/grpc*) matches only isGrpc
// entries, any other request only the others. Unmatched: 404, or gRPC Unimplemented.
struct HttpRouteEntry {
  // Effective hostnames (route ∩ listener); empty = any host the listener accepts.
  std::vector<std::string> hostnames;
  HttpMatch match;
  std::shared_ptr<const HttpRule> rule;
};

// ---------------------------------------------------------------------------------------
// Listeners

enum class Protocol { kHttp, kHttps, kTls, kTcp, kUdp };

struct Certificate {
  std::string certChainPem, keyPem;
  std::string secretNs, secretName;
};

// Frontend client certificate validation (Gateway spec.tls.frontend).
struct ClientValidation {
  std::string caPem;
  bool allowInsecureFallback = false;
};

// A weighted set of L4 backends (TCPRoute, UDPRoute, TLSRoute).
struct L4Route {
  std::string routeNs, routeName;
  std::vector<std::string> hostnames;  // TLSRoute: effective SNI names; empty = any
  std::vector<WeightedBackend> backends;
};

struct Listener {
  std::string gatewayNs, gatewayName;
  std::string listenerSetNs, listenerSetName;  // set when the listener comes from a ListenerSet
  std::string name;                             // listener name
  Protocol protocol = Protocol::kHttp;
  uint16_t port = 0;
  std::optional<std::string> hostname;  // nullopt = catch-all
  // HTTPS, and TLS with mode Terminate:
  std::vector<Certificate> certificates;
  bool tlsPassthrough = false;  // TLS listener with mode Passthrough
  std::shared_ptr<const ClientValidation> clientValidation;
  // HTTP/HTTPS: entries sorted by precedence (HTTPRoute and GRPCRoute, never merged with
  // each other: GRPCRoute entries carry rule->isGrpc).
  std::vector<HttpRouteEntry> httpRoutes;
  // TLS (passthrough or terminate), TCP, UDP: routes in precedence order (for TCP/UDP
  // only the first — the oldest — receives traffic). TLSRoutes: one entry per SNI name
  // (hostnames has 0 or 1 element), exact names first, then wildcards (longest first),
  // then entries without hostname, ties oldest first; pick the first entry whose hostname
  // matches the SNI (exact, or "*.suffix" covering one or more labels).
  std::vector<L4Route> l4Routes;
};

// Everything bound to one address:port. Listeners of one port share a protocol family
// (HTTP; HTTPS/TLS; TCP; UDP): the translator reports conflicts and leaves losers out.
struct Port {
  std::string address;  // "" or "0.0.0.0" = all addresses
  uint16_t port = 0;
  bool udp = false;
  std::vector<std::shared_ptr<const Listener>> listeners;  // most specific hostname first
};

struct Snapshot {
  uint64_t version = 0;  // grows with every published snapshot
  std::vector<Port> ports;
  std::map<std::string, std::shared_ptr<const Backend>> backends;  // by Backend::id
};

}  // namespace archway::snapshot
