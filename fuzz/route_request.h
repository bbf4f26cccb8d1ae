// What fuzz/route_request_fuzz.cc runs, shared with the unit test that replays its corpus:
// arbitrary client bytes go through the HTTP/1.1 request parser, and every request it
// accepts is routed through a fixed route table (every match type, wildcard hostnames) and
// the matched rule's filters (header modifiers, URL rewrites, redirects, CORS), as the proxy
// would. Checks: no crash or hang, and nothing a client sends turns into a malformed
// upstream target or response header (no CR/LF/NUL, rewritten paths stay origin-form).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/loader.h"
#include "api/object.h"
#include "api/validation.h"
#include "check.h"
#include "filters/filters.h"
#include "http/h1/request_parser.h"
#include "router/router.h"
#include "snapshot/snapshot.h"
#include "translate/translator.h"

namespace archway::fuzz {

inline constexpr std::string_view kRouteFuzzManifests = R"yaml(
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: archway}
spec: {controllerName: archway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: archway
  listeners:
  - {name: http, protocol: HTTP, port: 80}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {ports: [{port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matches, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["example.com", "*.wild.example"]
  rules:
  - matches: [{path: {type: Exact, value: /exact}}]
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: RegularExpression, value: "/re/[a-z]+/(\\d+)"}}]
    backendRefs: [{name: app, port: 80}]
  - matches:
    - path: {type: PathPrefix, value: /h}
      headers: [{name: X-Ver, value: "2"}, {type: RegularExpression, name: X-Re, value: "^a.*z$"}]
      queryParams: [{name: q, value: "1"}, {type: RegularExpression, name: r, value: "^[0-9]+$"}]
      method: POST
    backendRefs: [{name: app, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: s}]
        add: [{name: X-Add, value: a}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: X-Resp, value: r}]}
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /v1/}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2/new}}
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /full}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /replaced}}
    backendRefs: [{name: app, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /redir}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: secure.example
        port: 8443
        statusCode: 301
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /moved}
  - matches: [{path: {type: PathPrefix, value: /plainredir}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {statusCode: 302}
  - matches: [{path: {type: PathPrefix, value: /cors}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://*.example.com", "http://a.example"]
        allowMethods: [GET, POST]
        allowHeaders: [X-A]
        exposeHeaders: [X-B]
        allowCredentials: true
        maxAge: 60
    backendRefs: [{name: app, port: 80}]
  - backendRefs: [{name: app, port: 80}]
)yaml";

// The compiled route table, built once from kRouteFuzzManifests.
struct RouteFuzzTable {
  std::shared_ptr<const snapshot::Snapshot> snapshot;
  const snapshot::Listener* listener = nullptr;
  router::RouteTable table;
};

inline const RouteFuzzTable& routeFuzzTable() {
  static const RouteFuzzTable* t = [] {
    auto* out = new RouteFuzzTable;
    api::LoadResult loaded = api::decodeText(kRouteFuzzManifests, "route-fuzz.yaml");
    api::validateAll(loaded);
    api::Store store;
    for (auto& o : loaded.objects) store.put(std::move(o));
    translate::TranslateResult result = translate::translate(store);
    check(result.snapshot != nullptr);
    out->snapshot = std::make_shared<snapshot::Snapshot>(*result.snapshot);
    for (const auto& port : out->snapshot->ports)
      for (const auto& l : port.listeners)
        if (l->port == 80) out->listener = l.get();
    check(out->listener && out->listener->httpRoutes.size() >= 10);
    out->table = router::RouteTable(&out->listener->httpRoutes);
    return out;
  }();
  return *t;
}

// A value that can go on the wire in a header field or request line as it is.
inline bool wireSafe(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

inline void checkHeaders(const http::HeaderMap& headers) {
  for (const auto& h : headers) {
    check(!h.name.empty() && wireSafe(h.name) && wireSafe(h.value));
    for (char c : h.name) check(c != ' ' && c != ':' && !(c >= 'A' && c <= 'Z'));
  }
}

// Routes and filters one request the parser accepted; returns the matched entry or -1.
inline int routeAndFilter(http::RequestHead& request) {
  const RouteFuzzTable& t = routeFuzzTable();
  int index = t.table.match(request.host(), request);
  check(index >= -1 && index < static_cast<int>(t.listener->httpRoutes.size()));
  if (index < 0) return index;
  const snapshot::HttpRouteEntry& entry = t.listener->httpRoutes[static_cast<size_t>(index)];
  http::HeaderMap response;
  for (const auto& f : entry.rule->filters) {
    using Type = snapshot::HttpFilter::Type;
    switch (f.type) {
      case Type::kRequestHeaderModifier:
        filters::applyRequestHeaderModifier(f.headers, request);
        break;
      case Type::kResponseHeaderModifier:
        filters::applyHeaderModifier(f.headers, response);
        break;
      case Type::kUrlRewrite:
        filters::applyUrlRewrite(f.rewrite, request, entry.match.path);
        check(!request.path.empty() && request.path[0] == '/');
        check(wireSafe(request.path) && request.path.find(' ') == std::string::npos);
        check(wireSafe(request.authority));
        break;
      case Type::kRequestRedirect: {
        std::string location =
            filters::redirectLocation(f.redirect, request, request.scheme, 80, entry.match.path);
        check(wireSafe(location) && location.find(' ') == std::string::npos);
        check(location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0);
        break;
      }
      case Type::kCors:
        if (filters::isCorsPreflight(request)) {
          checkHeaders(filters::corsPreflightHeaders(f.cors, request));
        } else {
          checkHeaders(filters::corsResponseHeaders(f.cors, request));
        }
        break;
      default:
        break;
    }
  }
  checkHeaders(request.headers);
  checkHeaders(response);
  return index;
}

// Parses pipelined requests out of `data` and routes each one the parser accepts.
inline void routeRequests(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::h1::RequestParser parser;
  size_t pos = 0;
  for (int i = 0; i < 64 && pos < in.size(); ++i) {
    parser.reset("http");
    int reject = 0;
    size_t n = parser.feed(in.data() + pos, in.size() - pos, &reject);
    pos += n;
    if (reject != 0 || !parser.headersComplete()) return;
    routeAndFilter(parser.request());
    if (!parser.messageComplete() || parser.upgradeRequested()) return;
  }
}

}  // namespace archway::fuzz
