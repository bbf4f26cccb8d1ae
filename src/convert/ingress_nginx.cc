// ingress-nginx provider: nginx.ingress.kubernetes.io/* annotations.
#include <map>
#include <set>

#include "convert/model.h"

namespace archway::convert {
namespace {

constexpr const char* kPrefix = "nginx.ingress.kubernetes.io/";

// Annotations Gateway API cannot express, with the reason given in the report.
const std::map<std::string, std::string> kUnconvertible = {
    {"proxy-body-size", "Gateway API has no request body size limit"},
    {"client-body-buffer-size", "buffering is not configurable in Gateway API"},
    {"proxy-buffering", "buffering is not configurable in Gateway API"},
    {"proxy-buffer-size", "buffering is not configurable in Gateway API"},
    {"proxy-request-buffering", "buffering is not configurable in Gateway API"},
    {"whitelist-source-range", "Gateway API has no client IP filter"},
    {"allowlist-source-range", "Gateway API has no client IP filter"},
    {"denylist-source-range", "Gateway API has no client IP filter"},
    {"affinity", "cookie session affinity (sessionPersistence) is not converted"},
    {"affinity-mode", "cookie session affinity (sessionPersistence) is not converted"},
    {"session-cookie-name", "cookie session affinity (sessionPersistence) is not converted"},
    {"session-cookie-expires", "cookie session affinity (sessionPersistence) is not converted"},
    {"session-cookie-max-age", "cookie session affinity (sessionPersistence) is not converted"},
    {"session-cookie-path", "cookie session affinity (sessionPersistence) is not converted"},
    {"configuration-snippet", "raw nginx configuration has no Gateway API equivalent"},
    {"server-snippet", "raw nginx configuration has no Gateway API equivalent"},
    {"auth-url", "external authentication is not part of Gateway API"},
    {"auth-signin", "external authentication is not part of Gateway API"},
    {"auth-type", "basic/digest authentication is not part of Gateway API"},
    {"auth-secret", "basic/digest authentication is not part of Gateway API"},
    {"auth-realm", "basic/digest authentication is not part of Gateway API"},
    {"auth-tls-secret",
     "client certificate validation is per listener (frontend TLS), not per route"},
    {"auth-tls-verify-client",
     "client certificate validation is per listener (frontend TLS), not per route"},
    {"limit-rps", "rate limiting is not part of Gateway API"},
    {"limit-rpm", "rate limiting is not part of Gateway API"},
    {"limit-connections", "connection limits are not part of Gateway API"},
    {"custom-headers", "response headers from a ConfigMap: write a ResponseHeaderModifier filter"},
    {"custom-http-errors", "custom error pages are not part of Gateway API"},
    {"default-backend", "a fallback Service for errors is not part of Gateway API"},
    {"proxy-redirect-from", "Location header rewriting is not part of Gateway API"},
    {"proxy-redirect-to", "Location header rewriting is not part of Gateway API"},
    {"proxy-ssl-secret", "TLS to the backend: write a BackendTLSPolicy"},
    {"proxy-ssl-verify", "TLS to the backend: write a BackendTLSPolicy"},
    {"proxy-ssl-name", "TLS to the backend: write a BackendTLSPolicy"},
    {"proxy-ssl-verify-depth", "not expressible in BackendTLSPolicy"},
    {"proxy-ssl-protocols", "not expressible in BackendTLSPolicy"},
    {"proxy-ssl-ciphers", "not expressible in BackendTLSPolicy"},
    {"proxy-ssl-server-name", "TLS to the backend: write a BackendTLSPolicy"},
    {"ssl-ciphers", "TLS parameters are not configurable per route"},
    {"ssl-prefer-server-ciphers", "TLS parameters are not configurable per route"},
    {"mirror-target", "mirroring to a URL (Gateway API mirrors to a Service: RequestMirror)"},
    {"mirror-uri", "mirroring to a URL (Gateway API mirrors to a Service: RequestMirror)"},
    {"service-upstream", "Archway always balances over the endpoints"},
    {"upstream-hash-by", "consistent hashing is not part of Gateway API"},
    {"load-balance", "the balancing algorithm is not part of Gateway API"},
    {"proxy-next-upstream", "retry conditions are fixed by Gateway API's retry codes"},
    {"connection-proxy-header", "hop-by-hop headers are managed by the proxy"},
    {"enable-access-log", "logging is configured on Archway, not per route"},
    {"enable-modsecurity", "no WAF in Gateway API"},
    {"satisfy", "authentication is not part of Gateway API"},
    {"http2-push-preload", "not supported"},
    {"proxy-http-version", "Archway picks the upstream protocol from the Service appProtocol"},
    {"proxy-max-temp-file-size", "buffering is not configurable in Gateway API"},
    {"client-max-body-size", "Gateway API has no request body size limit"},
};

// Read by other annotations' handlers.
const std::set<std::string> kCompanions = {"canary-weight-total",
                                           "canary-by-header-value",
                                           "canary-by-header-pattern",
                                           "permanent-redirect-code",
                                           "temporal-redirect-code",
                                           "cors-allow-origin",
                                           "cors-allow-methods",
                                           "cors-allow-headers",
                                           "cors-expose-headers",
                                           "cors-allow-credentials",
                                           "cors-max-age"};

std::optional<Json> redirectFromUrl(const std::string& url, int code) {
  // scheme://host[:port][/path]; query strings cannot be set by RequestRedirect.
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  Json r = {{"scheme", url.substr(0, sep)}, {"statusCode", code}};
  std::string rest = url.substr(sep + 3);
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (path.find('?') != std::string::npos || path.find('$') != std::string::npos)
    return std::nullopt;
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    auto p = parseInt(hostport.substr(colon + 1));
    if (!p) return std::nullopt;
    r["port"] = *p;
    hostport = hostport.substr(0, colon);
  }
  if (hostport.empty()) return std::nullopt;
  r["hostname"] = hostport;
  r["path"] = {{"type", "ReplaceFullPath"}, {"replaceFullPath", path.empty() ? "/" : path}};
  return r;
}

std::optional<long long> seconds(std::string v) {
  v = trim(v);
  if (!v.empty() && v.back() == 's') v.pop_back();
  auto n = parseInt(v);
  if (!n || *n <= 0) return std::nullopt;
  return *n;
}

}  // namespace

IngressPolicy nginxIngressPolicy(const api::Object& ing, Context& ctx) {
  IngressPolicy pol;
  pol.provider = kProviderIngressNginx;
  auto get = [&](const std::string& k) { return annotation(ing, kPrefix + k); };
  auto has = [&](const std::string& k) { return hasAnnotation(ing, kPrefix + k); };
  auto rep = [&](const std::string& k, Outcome o, const std::string& m) {
    ctx.report(ing, annField(kPrefix + k), o, m);
  };
  bool hasTls = !ing.spec().value("tls", Json::array()).empty();

  // ssl-redirect defaults to true in ingress-nginx when the host has TLS.
  bool force = lower(get("force-ssl-redirect")) == "true";
  bool sslRedirect = has("ssl-redirect") ? lower(get("ssl-redirect")) == "true" : true;
  if (force || sslRedirect) {
    pol.httpMode = HttpMode::kRedirect;
    pol.redirectCode = 308;
    pol.redirectNeedsTls = !force;
  }
  if (force) rep("force-ssl-redirect", Outcome::kConverted, "HTTP rules redirect to https (308)");
  if (has("ssl-redirect"))
    rep("ssl-redirect", Outcome::kConverted,
        sslRedirect ? "HTTP rules of hosts with TLS redirect to https (308)"
                    : "HTTP and HTTPS both serve the rules");
  else if (hasTls)
    ctx.report(ing, "spec.tls", Outcome::kNote,
               "ingress-nginx redirects HTTP to HTTPS by default for hosts with TLS: a 308 "
               "RequestRedirect rule is generated for the HTTP listener");

  const Json& anns = ing.metadata().value("annotations", Json::object());
  if (!anns.is_object()) return pol;
  std::optional<long long> readT, sendT;
  for (auto it = anns.begin(); it != anns.end(); ++it) {
    const std::string& full = it.key();
    if (full.rfind(kPrefix, 0) != 0) {
      if (full.rfind("konghq.com/", 0) == 0)
        ctx.report(ing, annField(full), Outcome::kUnconvertible,
                   "annotation of another controller; ingress-nginx ignores it");
      continue;
    }
    std::string k = full.substr(std::string(kPrefix).size());
    std::string v = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    if (k == "ssl-redirect" || k == "force-ssl-redirect" || kCompanions.count(k)) continue;
    if (auto u = kUnconvertible.find(k); u != kUnconvertible.end()) {
      rep(k, Outcome::kUnconvertible, u->second);
    } else if (k == "use-regex") {
      if (lower(v) == "true") {
        pol.useRegex = true;
        rep(k, Outcome::kApproximated,
            "paths become RegularExpression matches (nginx: case-insensitive prefix regex)");
      } else {
        rep(k, Outcome::kConverted, "paths are not regexes (the default)");
      }
    } else if (k == "rewrite-target") {
      if (v.find('$') == std::string::npos) {
        pol.replaceFull = v;
        rep(k, Outcome::kConverted, "URLRewrite ReplaceFullPath '" + v + "'");
      } else if (v == "/$2" || v == "/$1") {
        // The documented idiom: path "/foo(/|$)(.*)" with "/$2" strips the prefix.
        pol.replacePrefix = "/";
        pol.rewriteIdiom = true;
        rep(k, Outcome::kApproximated,
            "capture idiom '" + v +
                "' → PathPrefix match with ReplacePrefixMatch '/' "
                "(the capture-group path is reduced to its literal prefix)");
      } else {
        rep(k, Outcome::kUnconvertible, "capture-group rewrites have no Gateway API equivalent");
      }
    } else if (k == "app-root") {
      pol.appRoot = v;
      rep(k, Outcome::kConverted, "requests for '/' redirect (302) to '" + v + "'");
    } else if (k == "permanent-redirect" || k == "temporal-redirect") {
      bool perm = k == "permanent-redirect";
      int code = perm ? 301 : 302;
      if (auto c = parseInt(get(perm ? "permanent-redirect-code" : "temporal-redirect-code")))
        code = *c;
      if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308) {
        rep(k, Outcome::kUnconvertible,
            "status " + std::to_string(code) + " is not a Gateway API redirect code");
        continue;
      }
      auto r = redirectFromUrl(v, code);
      if (!r) {
        rep(k, Outcome::kUnconvertible,
            "only absolute URLs without query or variables can be expressed as RequestRedirect");
        continue;
      }
      pol.redirectAll = *r;
      rep(k, Outcome::kConverted, "RequestRedirect " + std::to_string(code) + " to " + v);
    } else if (k == "canary") {
      pol.canary = lower(v) == "true";
      rep(k, Outcome::kConverted,
          pol.canary ? "canary backends join the rules of the primary Ingress" : "not a canary");
      if (!pol.canary) continue;
      if (auto w = parseInt(get("canary-weight"))) pol.canaryWeight = *w;
      if (auto t = parseInt(get("canary-weight-total")); t && *t > 0) pol.canaryWeightTotal = *t;
      if (has("canary-by-header")) pol.canaryHeader = get("canary-by-header");
      if (has("canary-by-header-value")) pol.canaryHeaderValue = get("canary-by-header-value");
      if (has("canary-by-header-pattern"))
        pol.canaryHeaderPattern = get("canary-by-header-pattern");
      if (has("canary-by-cookie")) pol.canaryCookie = get("canary-by-cookie");
    } else if (k == "canary-weight") {
      rep(k, Outcome::kConverted,
          "backend weights " + v + " (canary) / total - " + v + " (primary)");
    } else if (k == "canary-by-header") {
      std::string how =
          has("canary-by-header-value")     ? "equal to '" + get("canary-by-header-value") + "'"
          : has("canary-by-header-pattern") ? "matching '" + get("canary-by-header-pattern") + "'"
                                            : "equal to 'always'";
      rep(k, Outcome::kApproximated,
          "a rule with a header match (" + how +
              ") to the canary; the 'never' value that "
              "forces the primary is not expressed");
    } else if (k == "canary-by-cookie") {
      rep(k, Outcome::kApproximated,
          "regular-expression match on the Cookie header for '" + v + "=always'");
    } else if (k == "enable-cors") {
      if (lower(v) != "true") continue;
      auto list = [&](const std::string& key, const std::string& def) {
        Json a = Json::array();
        for (const auto& s : splitList(has(key) ? get(key) : def)) a.push_back(s);
        return a;
      };
      Json cors = {
          {"allowOrigins", list("cors-allow-origin", "*")},
          {"allowMethods", list("cors-allow-methods", "GET, PUT, POST, DELETE, PATCH, OPTIONS")},
          {"allowHeaders",
           list("cors-allow-headers",
                "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,"
                "Content-Type,Range,Authorization")},
          {"allowCredentials",
           has("cors-allow-credentials") ? lower(get("cors-allow-credentials")) == "true" : true},
          {"maxAge", parseInt(get("cors-max-age")).value_or(1728000)}};
      if (has("cors-expose-headers")) cors["exposeHeaders"] = list("cors-expose-headers", "");
      pol.filters.push_back({{"type", "CORS"}, {"cors", cors}});
      rep(k, Outcome::kConverted, "CORS filter (with the cors-* annotations and nginx defaults)");
    } else if (k == "backend-protocol") {
      std::string p = upper(v);
      if (p == "HTTP") {
        rep(k, Outcome::kConverted, "plain HTTP upstream (the default)");
      } else if (p == "GRPC") {
        pol.grpc = true;
        rep(k, Outcome::kApproximated,
            "GRPCRoute; set the Service port's appProtocol to kubernetes.io/h2c so Archway "
            "speaks HTTP/2 cleartext to it");
      } else {
        rep(k, Outcome::kUnconvertible,
            p + " upstream: TLS to the backend needs a BackendTLSPolicy with the backend's CA");
      }
    } else if (k == "proxy-read-timeout") {
      readT = seconds(v);
      if (!readT) rep(k, Outcome::kUnconvertible, "not a number of seconds");
    } else if (k == "proxy-send-timeout") {
      sendT = seconds(v);
      if (!sendT) rep(k, Outcome::kUnconvertible, "not a number of seconds");
    } else if (k == "proxy-connect-timeout") {
      rep(k, Outcome::kUnconvertible, "Gateway API has no connect timeout");
    } else if (k == "from-to-www-redirect") {
      pol.fromToWww = lower(v) == "true";
      rep(k, Outcome::kConverted,
          pol.fromToWww ? "the www/non-www twin of each host redirects (308) to it"
                        : "no redirect (the default)");
    } else if (k == "upstream-vhost") {
      pol.hostRewrite = v;
      rep(k, Outcome::kConverted, "URLRewrite hostname '" + v + "'");
    } else if (k == "x-forwarded-prefix") {
      pol.filters.push_back(
          {{"type", "RequestHeaderModifier"},
           {"requestHeaderModifier",
            {{"set", Json::array({{{"name", "X-Forwarded-Prefix"}, {"value", v}}})}}}});
      rep(k, Outcome::kConverted, "RequestHeaderModifier sets X-Forwarded-Prefix");
    } else if (k == "ssl-passthrough") {
      if (lower(v) == "true") {
        pol.sslPassthrough = true;
        rep(k, Outcome::kConverted,
            "TLS listener on 443 in Passthrough mode + TLSRoute by SNI to the backend of the "
            "host's '/' path (as ingress-nginx: paths and other annotations do not apply to "
            "the relayed TLS; HTTP on port 80 keeps the HTTPRoute)");
      } else {
        rep(k, Outcome::kConverted, "not enabled: nothing to do");
      }
    } else if (k == "proxy-next-upstream-tries") {
      if (auto n = parseInt(v); n && *n >= 0) {
        pol.retryAttempts = *n;
        rep(k, Outcome::kApproximated,
            "retry.attempts " + v + " (nginx retries on errors and timeouts)");
      } else {
        rep(k, Outcome::kUnconvertible, "not a number");
      }
    } else {
      rep(k, Outcome::kUnconvertible, "unknown or unsupported ingress-nginx annotation");
    }
  }
  if (pol.rewriteIdiom) pol.useRegex = false;
  if (readT || sendT) {
    long long t = std::max(readT.value_or(0), sendT.value_or(0));
    pol.backendTimeout = msDuration(t * 1000);
    for (const char* k : {"proxy-read-timeout", "proxy-send-timeout"})
      if (has(k))
        rep(k, Outcome::kApproximated,
            std::string("timeouts.backendRequest ") + *pol.backendTimeout +
                " (nginx times each read/send; Gateway API the whole backend request)");
  }
  return pol;
}

}  // namespace archway::convert
