#include "router/router.h"

#include <gtest/gtest.h>

namespace archway::router {
namespace {

using snapshot::HttpRouteEntry;
using snapshot::MatchType;

HttpRouteEntry entry(MatchType type, std::string path, std::vector<std::string> hosts = {}) {
  HttpRouteEntry e;
  e.match.path.type = type;
  e.match.path.value = std::move(path);
  if (type == MatchType::kRegularExpression)
    e.match.path.regex = std::make_shared<re2::RE2>(e.match.path.value);
  e.hostnames = std::move(hosts);
  e.rule = std::make_shared<snapshot::HttpRule>();
  return e;
}

http::RequestHead req(std::string path, std::string method = "GET") {
  http::RequestHead r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.authority = "example.com";
  return r;
}

TEST(PathPrefix, MatchesWholeElements) {
  EXPECT_TRUE(pathPrefixMatches("/abc", "/abc"));
  EXPECT_TRUE(pathPrefixMatches("/abc", "/abc/"));
  EXPECT_TRUE(pathPrefixMatches("/abc", "/abc/def"));
  EXPECT_FALSE(pathPrefixMatches("/abc", "/abcd"));
  EXPECT_TRUE(pathPrefixMatches("/abc/", "/abc"));
  EXPECT_TRUE(pathPrefixMatches("/", "/anything"));
  EXPECT_FALSE(pathPrefixMatches("/abc", "/Abc"));
}

TEST(RouteTable, FirstMatchInPrecedenceOrderWins) {
  // Already in precedence order, as the translator hands them over.
  std::vector<HttpRouteEntry> entries = {
      entry(MatchType::kExact, "/exact"),
      entry(MatchType::kPathPrefix, "/v2/api"),
      entry(MatchType::kPathPrefix, "/v2"),
      entry(MatchType::kPathPrefix, "/"),
  };
  RouteTable t(&entries);
  EXPECT_EQ(t.match("example.com", req("/exact")), 0);
  EXPECT_EQ(t.match("example.com", req("/exact/no")), 3);
  EXPECT_EQ(t.match("example.com", req("/v2/api/x?q=1")), 1);
  EXPECT_EQ(t.match("example.com", req("/v2/apix")), 2);
  EXPECT_EQ(t.match("example.com", req("/v2")), 2);
  EXPECT_EQ(t.match("example.com", req("/v3")), 3);
}

TEST(RouteTable, NoMatchIsMinusOne) {
  std::vector<HttpRouteEntry> entries = {entry(MatchType::kPathPrefix, "/only")};
  RouteTable t(&entries);
  EXPECT_EQ(t.match("example.com", req("/other")), -1);
  EXPECT_EQ(t.match("example.com", req("/onlyx")), -1);
  EXPECT_EQ(t.match("example.com", req("/only/x")), 0);
}

TEST(RouteTable, ConditionsEvaluatedInOrderOverCandidates) {
  std::vector<HttpRouteEntry> entries = {
      entry(MatchType::kPathPrefix, "/"),
      entry(MatchType::kPathPrefix, "/"),
      entry(MatchType::kPathPrefix, "/"),
      entry(MatchType::kPathPrefix, "/"),
  };
  entries[0].match.method = "POST";
  entries[1].match.headers.push_back({MatchType::kExact, "version", "two", nullptr});
  entries[2].match.queryParams.push_back({MatchType::kExact, "animal", "whale", nullptr});
  RouteTable t(&entries);
  EXPECT_EQ(t.match("example.com", req("/", "POST")), 0);
  auto r = req("/");
  r.headers.add("version", "two");
  EXPECT_EQ(t.match("example.com", r), 1);
  EXPECT_EQ(t.match("example.com", req("/?animal=whale")), 2);
  // Query names are case-sensitive.
  EXPECT_EQ(t.match("example.com", req("/?ANIMAL=whale")), 3);
  EXPECT_EQ(t.match("example.com", req("/?x=1&animal=whale")), 2);
  EXPECT_EQ(t.match("example.com", req("/?animal=dolphin&animal=whale")), 3);  // first wins
}

TEST(RouteTable, RegexPaths) {
  std::vector<HttpRouteEntry> entries = {
      entry(MatchType::kExact, "/a"),
      entry(MatchType::kRegularExpression, "/re/[0-9]+"),
      entry(MatchType::kPathPrefix, "/"),
  };
  RouteTable t(&entries);
  EXPECT_EQ(t.match("h", req("/re/123")), 1);
  EXPECT_EQ(t.match("h", req("/re/12x")), 2);
}

TEST(RouteTable, HostBuckets) {
  std::vector<HttpRouteEntry> entries = {
      entry(MatchType::kPathPrefix, "/", {"foo.example.com"}),
      entry(MatchType::kPathPrefix, "/", {"*.example.com"}),
      entry(MatchType::kPathPrefix, "/", {"*.b.example.com"}),
      entry(MatchType::kPathPrefix, "/only-any", {}),
  };
  RouteTable t(&entries);
  auto r = req("/x");
  EXPECT_EQ(t.match("foo.example.com", r), 0);
  EXPECT_EQ(t.match("bar.example.com", r), 1);
  EXPECT_EQ(t.match("a.b.example.com", r), 2);  // longest wildcard first
  EXPECT_EQ(t.match("x.y.example.com", r), 1);  // '*' spans labels
  EXPECT_EQ(t.match("example.com", r), -1);     // wildcard needs a label
  EXPECT_EQ(t.match("other.org", req("/only-any")), 3);
  // More specific host with no matching rule falls through to less specific ones.
  EXPECT_EQ(t.match("foo.example.com", req("/only-any/z")), 0);
}

TEST(RouteTable, ManyRoutesLookupUsesIndex) {
  std::vector<HttpRouteEntry> entries;
  for (int i = 0; i < 5000; ++i)
    entries.push_back(entry(MatchType::kExact, "/svc/" + std::to_string(i)));
  for (int i = 0; i < 5000; ++i)
    entries.push_back(entry(MatchType::kPathPrefix, "/p/" + std::to_string(i)));
  RouteTable t(&entries);
  EXPECT_EQ(t.match("h", req("/svc/4321")), 4321);
  EXPECT_EQ(t.match("h", req("/p/17/deeper")), 5017);
  EXPECT_EQ(t.match("h", req("/svc/5000")), -1);
}

TEST(ListenerSelector, ExactBeatsWildcardBeatsCatchAll) {
  ListenerSelector s;
  s.build({std::string("foo.example.com"), std::string("*.example.com"),
           std::string("*.b.example.com"), std::nullopt});
  EXPECT_EQ(s.select("foo.example.com"), 0);
  EXPECT_EQ(s.select("bar.example.com"), 1);
  EXPECT_EQ(s.select("a.b.example.com"), 2);
  EXPECT_EQ(s.select("example.com"), 3);
  EXPECT_EQ(s.select("other.net"), 3);
  ListenerSelector only;
  only.build({std::string("foo.example.com")});
  EXPECT_EQ(only.select("bar.example.com"), -1);
}

TEST(QueryDecoding, PercentAndPlus) {
  EXPECT_EQ(decodeQueryComponent("a%20b+c"), "a b c");
  EXPECT_EQ(decodeQueryComponent("bad%2"), "bad%2");
  EXPECT_EQ(decodeQueryComponent("%zz"), "%zz");
}

}  // namespace
}  // namespace archway::router
