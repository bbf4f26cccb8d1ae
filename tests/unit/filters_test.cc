#include "filters/filters.h"

#include <gtest/gtest.h>

#include "filters/plugin.h"
#include "runtime/config.h"

namespace archway::filters {
namespace {

http::RequestHead req(std::string path, std::string authority = "example.com") {
  http::RequestHead r;
  r.method = "GET";
  r.path = std::move(path);
  r.authority = std::move(authority);
  return r;
}

snapshot::PathMatch prefix(std::string v) {
  snapshot::PathMatch m;
  m.type = snapshot::MatchType::kPathPrefix;
  m.value = std::move(v);
  return m;
}

// The ReplacePrefixMatch table from the Gateway API documentation.
TEST(ReplacePrefixMatch, SpecTable) {
  struct Case {
    const char* path;
    const char* prefix;
    const char* replacement;
    const char* expected;
  } cases[] = {
      {"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
      {"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
      {"/foo", "/foo", "/xyz", "/xyz"},
      {"/foo/", "/foo", "/xyz", "/xyz/"},
      {"/foo/bar", "/foo", "", "/bar"},
      {"/foo/", "/foo", "", "/"},
      {"/foo", "/foo", "", "/"},
      {"/foo/", "/foo", "/", "/"},
      {"/foo", "/foo", "/", "/"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(replacePrefixMatch(c.path, c.prefix, c.replacement), c.expected)
        << c.path << " " << c.prefix << " -> " << c.replacement;
}

TEST(UrlRewrite, HostnameAndPathKeepQuery) {
  snapshot::UrlRewrite rw;
  rw.hostname = "rewritten.example";
  rw.path.type = snapshot::PathModifierType::kReplacePrefixMatch;
  rw.path.value = "/new";
  auto r = req("/old/thing?x=1");
  applyUrlRewrite(rw, r, prefix("/old"));
  EXPECT_EQ(r.path, "/new/thing?x=1");
  EXPECT_EQ(r.authority, "rewritten.example");

  snapshot::UrlRewrite full;
  full.path.type = snapshot::PathModifierType::kReplaceFullPath;
  full.path.value = "/one";
  auto r2 = req("/a/b/c");
  applyUrlRewrite(full, r2, prefix("/a"));
  EXPECT_EQ(r2.path, "/one");
}

TEST(Redirect, PortRulesAndDefaultPortsOmitted) {
  snapshot::RequestRedirect r;
  // No scheme, no port: the listener port is used.
  EXPECT_EQ(redirectLocation(r, req("/p?q=1", "Example.com:8080"), "http", 8080, prefix("/")),
            "http://Example.com:8080/p?q=1");
  // Listener on 80: omitted.
  EXPECT_EQ(redirectLocation(r, req("/p"), "http", 80, prefix("/")), "http://example.com/p");
  // Scheme https without port: 443, omitted.
  r.scheme = "https";
  EXPECT_EQ(redirectLocation(r, req("/p"), "http", 8080, prefix("/")), "https://example.com/p");
  // Explicit port kept unless it is the scheme's default.
  r.port = 8443;
  EXPECT_EQ(redirectLocation(r, req("/p"), "http", 8080, prefix("/")),
            "https://example.com:8443/p");
  r.port = 443;
  EXPECT_EQ(redirectLocation(r, req("/p"), "http", 8080, prefix("/")), "https://example.com/p");
  // Hostname and path modifiers.
  snapshot::RequestRedirect h;
  h.hostname = "other.example";
  h.scheme = "http";
  h.path.type = snapshot::PathModifierType::kReplacePrefixMatch;
  h.path.value = "/to";
  EXPECT_EQ(redirectLocation(h, req("/from/x"), "http", 9000, prefix("/from")),
            "http://other.example/to/x");
  h.port = 8080;
  EXPECT_EQ(redirectLocation(h, req("/from"), "http", 9000, prefix("/from")),
            "http://other.example:8080/to");
}

TEST(HeaderModifier, SetAddRemove) {
  snapshot::HeaderModifier m;
  m.set = {{"x-set", "one"}};
  m.add = {{"x-add", "two"}};
  m.remove = {"x-gone"};
  http::HeaderMap h;
  h.add("x-set", "old");
  h.add("x-set", "older");
  h.add("x-add", "first");
  h.add("x-gone", "bye");
  applyHeaderModifier(m, h);
  EXPECT_EQ(*h.get("x-set"), "one");
  EXPECT_EQ(h.count("x-set"), 1u);
  EXPECT_EQ(*h.get("x-add"), "first,two");
  EXPECT_EQ(h.get("x-gone"), nullptr);
}

TEST(Cors, OriginMatching) {
  snapshot::Cors c;
  c.allowOrigins = {"https://www.foo.com", "https://*.bar.com", "http://plain.com:8080"};
  EXPECT_TRUE(corsOriginAllowed(c, "https://www.foo.com"));
  EXPECT_TRUE(corsOriginAllowed(c, "https://www.foo.com:443"));
  EXPECT_FALSE(corsOriginAllowed(c, "http://www.foo.com"));
  EXPECT_TRUE(corsOriginAllowed(c, "https://xpto.www.bar.com"));
  EXPECT_FALSE(corsOriginAllowed(c, "https://bar.com"));
  EXPECT_TRUE(corsOriginAllowed(c, "http://plain.com:8080"));
  EXPECT_FALSE(corsOriginAllowed(c, "http://plain.com"));
  snapshot::Cors any;
  any.allowOrigins = {"*"};
  EXPECT_TRUE(corsOriginAllowed(any, "https://anything.example"));
}

TEST(Cors, PreflightHeaders) {
  snapshot::Cors c;
  c.allowOrigins = {"https://www.foo.com"};
  c.allowCredentials = true;
  c.allowMethods = {"GET", "OPTIONS"};
  c.allowHeaders = {"x-header-1", "x-header-2"};
  c.exposeHeaders = {"x-header-3"};
  c.maxAgeSeconds = 3600;
  auto r = req("/cors");
  r.method = "OPTIONS";
  r.headers.add("origin", "https://www.foo.com");
  r.headers.add("access-control-request-method", "GET");
  ASSERT_TRUE(isCorsPreflight(r));
  auto h = corsPreflightHeaders(c, r);
  EXPECT_EQ(*h.get("access-control-allow-origin"), "https://www.foo.com");
  EXPECT_EQ(*h.get("access-control-allow-methods"), "GET, OPTIONS");
  EXPECT_EQ(h.get("access-control-allow-headers"), nullptr);  // not requested
  EXPECT_EQ(*h.get("access-control-allow-credentials"), "true");
  EXPECT_EQ(*h.get("access-control-max-age"), "3600");
  // Wildcards with credentials echo the request.
  c.allowMethods = {"*"};
  c.allowHeaders = {"*"};
  r.headers.add("access-control-request-headers", "x-a, x-b");
  h = corsPreflightHeaders(c, r);
  EXPECT_EQ(*h.get("access-control-allow-methods"), "GET");
  EXPECT_EQ(*h.get("access-control-allow-headers"), "x-a, x-b");
  c.allowCredentials = false;
  h = corsPreflightHeaders(c, r);
  EXPECT_EQ(*h.get("access-control-allow-methods"), "*");
  EXPECT_EQ(h.get("access-control-allow-credentials"), nullptr);
  // Unknown origin: no CORS headers.
  auto bad = req("/cors");
  bad.method = "OPTIONS";
  bad.headers.add("origin", "https://evil.com");
  bad.headers.add("access-control-request-method", "GET");
  EXPECT_TRUE(corsPreflightHeaders(c, bad).empty());
}

TEST(Plugins, BuiltinStaticResponseAndUnknownKinds) {
  snapshot::ExtensionFilter ref;
  ref.group = "archway.dev";
  ref.kind = "StaticResponse";
  ref.name = "teapot";
  ref.resolved = true;
  ref.configJson =
      R"({"spec": {"statusCode": 418, "body": "short and stout", "headers": {"X-Tea": "yes"}}})";
  std::string error;
  auto p = PluginRegistry::instance().create(ref, &error);
  ASSERT_TRUE(p) << error;
  auto r = req("/");
  auto resp = p->onRequest(r);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 418);
  EXPECT_EQ(resp->body, "short and stout");
  EXPECT_EQ(*resp->headers.get("x-tea"), "yes");

  ref.kind = "NoSuchKind";
  EXPECT_FALSE(PluginRegistry::instance().create(ref, &error));
  EXPECT_NE(error.find("no filter plugin"), std::string::npos);
  ref.kind = "StaticResponse";
  ref.resolved = false;
  EXPECT_FALSE(PluginRegistry::instance().create(ref, &error));
}

TEST(WeightedChoice, SmoothAndProportional) {
  runtime::CompiledRule rule;
  std::vector<snapshot::WeightedBackend> wbs(3);
  wbs[0].weight = 5;
  wbs[1].weight = 1;
  wbs[2].weight = 0;
  for (auto& wb : wbs) {
    runtime::CompiledBackendRef ref;
    ref.ref = &wb;
    rule.backends.push_back(std::move(ref));
  }
  std::vector<int64_t> state(3, 0);
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 600; ++i) counts[runtime::pickWeighted(rule, state)]++;
  EXPECT_EQ(counts[0], 500);
  EXPECT_EQ(counts[1], 100);
  EXPECT_EQ(counts[2], 0);
  // All weights zero: nothing to pick.
  wbs[0].weight = wbs[1].weight = 0;
  EXPECT_EQ(runtime::pickWeighted(rule, state), -1);
}

}  // namespace
}  // namespace archway::filters
