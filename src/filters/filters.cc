#include "filters/filters.h"

#include <fmt/format.h>

#include "router/router.h"

namespace archway::filters {

namespace {

std::string_view withoutTrailingSlashes(std::string_view p) {
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  return p;
}

std::string joinList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out.append(", ");
    out.append(s);
  }
  return out;
}

bool containsStar(const std::vector<std::string>& items) {
  for (const auto& s : items)
    if (s == "*") return true;
  return false;
}

struct Origin {
  std::string scheme, host;
  int port = 0;
};

// "https://Foo.example.com:8443" -> {https, foo.example.com, 8443}; default ports filled.
bool parseOrigin(std::string_view s, Origin* out) {
  auto sep = s.find("://");
  if (sep == std::string_view::npos) return false;
  out->scheme = http::toLower(s.substr(0, sep));
  std::string_view rest = s.substr(sep + 3);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && rest.find(']', colon) == std::string_view::npos) {
    int port = 0;
    for (char c : rest.substr(colon + 1)) {
      if (c < '0' || c > '9') return false;
      port = port * 10 + (c - '0');
      if (port > 65535) return false;
    }
    out->port = port;
    rest = rest.substr(0, colon);
  } else {
    out->port = out->scheme == "https" ? 443 : out->scheme == "http" ? 80 : 0;
  }
  out->host = http::toLower(rest);
  return !out->host.empty();
}

}  // namespace

std::string replacePrefixMatch(std::string_view path, std::string_view prefix,
                               std::string_view replacement) {
  std::string_view p = withoutTrailingSlashes(prefix);
  std::string_view rest;
  if (router::pathPrefixMatches(prefix, path)) {
    rest = path.substr(p.size());
  } else {
    rest = path;  // not a match (should not happen): keep the path under the replacement
  }
  std::string out(withoutTrailingSlashes(replacement));
  out.append(rest);
  if (out.empty()) out = "/";
  return out;
}

std::string modifiedPath(const snapshot::PathModifier& modifier, const http::RequestHead& request,
                         const snapshot::PathMatch& matched) {
  std::string_view path = request.pathOnly();
  std::string out;
  switch (modifier.type) {
    case snapshot::PathModifierType::kNone:
      out.assign(path);
      break;
    case snapshot::PathModifierType::kReplaceFullPath:
      out = modifier.value.empty() ? "/" : modifier.value;
      break;
    case snapshot::PathModifierType::kReplacePrefixMatch:
      out = matched.type == snapshot::MatchType::kPathPrefix
                ? replacePrefixMatch(path, matched.value, modifier.value)
                : std::string(path);
      break;
  }
  std::string_view q = request.query();
  if (!q.empty() || request.path.find('?') != std::string::npos) {
    out.push_back('?');
    out.append(q);
  }
  return out;
}

void applyHeaderModifier(const snapshot::HeaderModifier& m, http::HeaderMap& headers) {
  for (const auto& [name, value] : m.set) headers.set(name, value);
  for (const auto& [name, value] : m.add) headers.append(name, value);
  for (const auto& name : m.remove) headers.remove(name);
}

void applyRequestHeaderModifier(const snapshot::HeaderModifier& m, http::RequestHead& request) {
  for (const auto& [name, value] : m.set) {
    if (name == "host") {
      request.authority = value;
    } else {
      request.headers.set(name, value);
    }
  }
  for (const auto& [name, value] : m.add) {
    if (name != "host") request.headers.append(name, value);
  }
  for (const auto& name : m.remove) request.headers.remove(name);
}

void applyUrlRewrite(const snapshot::UrlRewrite& rewrite, http::RequestHead& request,
                     const snapshot::PathMatch& matched) {
  if (rewrite.path.type != snapshot::PathModifierType::kNone)
    request.path = modifiedPath(rewrite.path, request, matched);
  if (rewrite.hostname) request.authority = *rewrite.hostname;
}

std::string redirectLocation(const snapshot::RequestRedirect& r, const http::RequestHead& request,
                             std::string_view scheme, uint16_t listenerPort,
                             const snapshot::PathMatch& matched) {
  std::string outScheme = r.scheme ? *r.scheme : std::string(scheme);
  std::string host = r.hostname ? *r.hostname : std::string(request.host());
  uint32_t port;
  if (r.port) {
    port = *r.port;
  } else if (r.scheme) {
    port = *r.scheme == "https" ? 443 : 80;
  } else {
    port = listenerPort;
  }
  bool defaultPort = (outScheme == "http" && port == 80) || (outScheme == "https" && port == 443);
  std::string location = outScheme + "://" + host;
  if (!defaultPort && port != 0) location += fmt::format(":{}", port);
  location += modifiedPath(r.path, request, matched);
  return location;
}

bool corsOriginAllowed(const snapshot::Cors& cors, std::string_view originValue) {
  Origin origin;
  if (!parseOrigin(originValue, &origin)) return false;
  for (const auto& allowed : cors.allowOrigins) {
    if (allowed == "*") return true;
    Origin pattern;
    if (!parseOrigin(allowed, &pattern)) continue;
    if (pattern.scheme != origin.scheme || pattern.port != origin.port) continue;
    if (pattern.host.starts_with("*")) {
      std::string_view suffix = std::string_view(pattern.host).substr(1);  // ".bar.com"
      if (origin.host.size() > suffix.size() && origin.host.ends_with(suffix)) return true;
    } else if (pattern.host == origin.host) {
      return true;
    }
  }
  return false;
}

bool isCorsPreflight(const http::RequestHead& request) {
  return request.method == "OPTIONS" && request.headers.get("origin") &&
         request.headers.get("access-control-request-method");
}

http::HeaderMap corsPreflightHeaders(const snapshot::Cors& cors, const http::RequestHead& request) {
  http::HeaderMap h;
  const std::string* origin = request.headers.get("origin");
  if (!origin || !corsOriginAllowed(cors, *origin)) return h;
  h.add("access-control-allow-origin", *origin);
  if (cors.allowCredentials) h.add("access-control-allow-credentials", "true");
  if (const std::string* m = request.headers.get("access-control-request-method")) {
    if (containsStar(cors.allowMethods)) {
      h.add("access-control-allow-methods", cors.allowCredentials ? *m : std::string("*"));
    } else if (!cors.allowMethods.empty()) {
      h.add("access-control-allow-methods", joinList(cors.allowMethods));
    }
  }
  if (const std::string* rh = request.headers.get("access-control-request-headers")) {
    if (containsStar(cors.allowHeaders)) {
      h.add("access-control-allow-headers", cors.allowCredentials ? *rh : std::string("*"));
    } else if (!cors.allowHeaders.empty()) {
      h.add("access-control-allow-headers", joinList(cors.allowHeaders));
    }
  }
  if (!cors.exposeHeaders.empty())
    h.add("access-control-expose-headers", joinList(cors.exposeHeaders));
  h.add("access-control-max-age", std::to_string(cors.maxAgeSeconds));
  return h;
}

http::HeaderMap corsResponseHeaders(const snapshot::Cors& cors, const http::RequestHead& request) {
  http::HeaderMap h;
  const std::string* origin = request.headers.get("origin");
  if (!origin || !corsOriginAllowed(cors, *origin)) return h;
  h.add("access-control-allow-origin", *origin);
  if (cors.allowCredentials) h.add("access-control-allow-credentials", "true");
  if (!cors.exposeHeaders.empty())
    h.add("access-control-expose-headers", joinList(cors.exposeHeaders));
  return h;
}

}  // namespace archway::filters
