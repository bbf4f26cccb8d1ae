// RouteTable::update (a table derived from the previous one by the entries that changed,
// sharing untouched trie nodes) against a table built from scratch: through random
// sequences of route additions, edits and removals over shared hosts and path prefixes,
// both must answer every request the same way.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "router/router.h"

namespace archway::router {
namespace {

using snapshot::HttpRouteEntry;
using snapshot::MatchType;

const std::vector<std::string> kHosts = {
    "", "a.example.com", "b.example.com", "*.example.com", "*.b.example.com", "*"};
const std::vector<std::string> kPrefixes = {"/",     "/a",     "/a/b", "/a/b/c", "/b",
                                            "/c/d/", "/a/b/d", "/e",   "/e/f"};
const std::vector<std::string> kRegexes = {"/a/.*", "/[bc]/.*", "/e/[0-9]+"};

// A route: 1-3 entries sharing one rule, as a translated rule with several matches.
std::vector<HttpRouteEntry> makeRoute(std::mt19937& rng) {
  auto rule = std::make_shared<snapshot::HttpRule>();
  rule->isGrpc = rng() % 10 == 0;
  std::vector<HttpRouteEntry> out;
  size_t n = 1 + rng() % 3;
  for (size_t k = 0; k < n; ++k) {
    HttpRouteEntry e;
    const std::string& host = kHosts[rng() % kHosts.size()];
    if (!host.empty()) e.hostnames.push_back(host);
    switch (rng() % 5) {
      case 0:
        e.match.path.type = MatchType::kExact;
        e.match.path.value = kPrefixes[rng() % kPrefixes.size()];
        break;
      case 1:
        e.match.path.type = MatchType::kRegularExpression;
        e.match.path.value = kRegexes[rng() % kRegexes.size()];
        e.match.path.regex = std::make_shared<re2::RE2>(e.match.path.value);
        break;
      default:
        e.match.path.type = MatchType::kPathPrefix;
        e.match.path.value = kPrefixes[rng() % kPrefixes.size()];
        break;
    }
    if (rng() % 4 == 0) e.match.method = rng() % 2 ? "GET" : "POST";
    e.rule = rule;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<http::RequestHead> requests() {
  std::vector<http::RequestHead> out;
  for (const char* path : {"/", "/a", "/a/", "/a/b", "/a/b/c/d", "/a/b/d", "/ab", "/b", "/b/x",
                           "/c/d", "/c/d/e", "/e", "/e/12", "/e/f/g", "/zz"}) {
    for (const char* method : {"GET", "POST"}) {
      for (bool grpc : {false, true}) {
        http::RequestHead r;
        r.method = method;
        r.path = path;
        if (grpc) r.headers.add("content-type", "application/grpc");
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

const std::vector<std::string> kRequestHosts = {"a.example.com", "b.example.com", "x.b.example.com",
                                                "example.com", "other.org"};

// Every request's answer, for comparison.
std::vector<int> answers(const RouteTable& t) {
  static const std::vector<http::RequestHead> reqs = requests();
  std::vector<int> out;
  for (const auto& host : kRequestHosts)
    for (const auto& r : reqs) out.push_back(t.match(host, r));
  return out;
}

TEST(RouteTableIncremental, UpdatesMatchABuildFromScratch) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    // Routes in precedence order (any order will do: the table follows the vector's).
    std::vector<std::vector<HttpRouteEntry>> routes;
    for (int i = 0; i < 40; ++i) routes.push_back(makeRoute(rng));
    auto flatten = [&] {
      auto v = std::make_unique<std::vector<HttpRouteEntry>>();
      for (const auto& r : routes) v->insert(v->end(), r.begin(), r.end());
      return v;
    };
    auto entries = flatten();
    RouteTable table(entries.get());
    size_t derived = 0;
    for (int step = 0; step < 150; ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      // 1-3 changes per step: add a route anywhere, remove one, or edit one (a new rule).
      size_t changes = 1 + rng() % 3;
      for (size_t c = 0; c < changes; ++c) {
        switch (rng() % 3) {
          case 0:
            routes.insert(routes.begin() + static_cast<long>(rng() % (routes.size() + 1)),
                          makeRoute(rng));
            break;
          case 1:
            if (!routes.empty())
              routes.erase(routes.begin() + static_cast<long>(rng() % routes.size()));
            break;
          default:
            if (!routes.empty()) routes[rng() % routes.size()] = makeRoute(rng);
            break;
        }
      }
      std::set<const snapshot::HttpRule*> before;
      for (const auto& e : *entries) before.insert(e.rule.get());
      auto next = flatten();
      RouteTable updated = RouteTable::update(
          table, next.get(), [&](size_t j) { return before.count((*next)[j].rule.get()) != 0; });
      RouteTable scratch(next.get());
      ASSERT_EQ(answers(updated), answers(scratch));
      if (updated.entriesIndexed() < next->size()) ++derived;
      table = std::move(updated);
      entries = std::move(next);  // the old vector goes once no table refers to it
    }
    // The comparison is about derived tables: most steps must have been derived.
    EXPECT_GT(derived, 100u);
  }
}

// A table derived over many steps never reads the tables it came from: after they and their
// entry vectors are gone, it still answers as a fresh build.
TEST(RouteTableIncremental, DerivedTableOutlivesItsAncestors) {
  std::mt19937 rng(99);
  std::vector<std::vector<HttpRouteEntry>> routes;
  for (int i = 0; i < 30; ++i) routes.push_back(makeRoute(rng));
  auto flatten = [&] {
    auto v = std::make_unique<std::vector<HttpRouteEntry>>();
    for (const auto& r : routes) v->insert(v->end(), r.begin(), r.end());
    return v;
  };
  auto entries = flatten();
  auto table = std::make_unique<RouteTable>(entries.get());
  for (int step = 0; step < 50; ++step) {
    routes.erase(routes.begin() + static_cast<long>(rng() % routes.size()));
    routes.insert(routes.begin() + static_cast<long>(rng() % (routes.size() + 1)), makeRoute(rng));
    std::set<const snapshot::HttpRule*> before;
    for (const auto& e : *entries) before.insert(e.rule.get());
    auto next = flatten();
    auto updated = std::make_unique<RouteTable>(RouteTable::update(
        *table, next.get(), [&](size_t j) { return before.count((*next)[j].rule.get()) != 0; }));
    table.reset();
    entries = std::move(next);
    table = std::move(updated);
  }
  RouteTable scratch(entries.get());
  EXPECT_EQ(answers(*table), answers(scratch));
}

// When "kept" entries are not in their previous relative order (not what a translator
// produces), the update notices and builds from scratch instead of answering wrongly.
TEST(RouteTableIncremental, ReorderedKeptEntriesFallBackToAFullBuild) {
  std::mt19937 rng(5);
  std::vector<HttpRouteEntry> a;
  for (int i = 0; i < 10; ++i) {
    auto r = makeRoute(rng);
    a.insert(a.end(), r.begin(), r.end());
  }
  RouteTable t(&a);
  std::vector<HttpRouteEntry> b(a.rbegin(), a.rend());
  RouteTable updated = RouteTable::update(t, &b, [](size_t) { return true; });
  RouteTable scratch(&b);
  EXPECT_EQ(answers(updated), answers(scratch));
  EXPECT_EQ(updated.entriesIndexed(), b.size());
}

}  // namespace
}  // namespace archway::router
