// The packed precedence key sorts route entries exactly as the precedence rules (the
// comparator below, the rules as the Gateway API states them) do with a stable sort.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "translate/internal.h"

namespace archway::translate {
namespace {

// The reference order: true when `a` takes precedence over `b`.
bool before(const EntryKey& a, const EntryKey& b) {
  if (a.hostClass != b.hostClass) return a.hostClass < b.hostClass;  // exact, wildcard, none
  if (a.hostLen != b.hostLen) return a.hostLen > b.hostLen;          // longer host first
  if (a.grpc != b.grpc) return !a.grpc;
  if (!a.grpc) {
    if (a.pathClass != b.pathClass) return a.pathClass < b.pathClass;  // Exact, Regex, Prefix
    if (a.pathLen != b.pathLen) return a.pathLen > b.pathLen;          // longer path first
    if (a.method != b.method) return a.method;                         // with a method first
    if (a.headers != b.headers) return a.headers > b.headers;          // more headers first
    if (a.queries != b.queries) return a.queries > b.queries;          // more params first
  } else {
    if (a.grpcService != b.grpcService) return a.grpcService > b.grpcService;
    if (a.grpcMethod != b.grpcMethod) return a.grpcMethod > b.grpcMethod;
    if (a.headers != b.headers) return a.headers > b.headers;
  }
  if (a.routeRank != b.routeRank) return a.routeRank < b.routeRank;  // older route first
  if (a.rule != b.rule) return a.rule < b.rule;
  return a.match < b.match;
}

EntryKey randomKey(std::mt19937& rng) {
  // Few distinct values per field (ties are common, as in real tables), including the
  // largest values validation lets through.
  auto pick = [&](std::initializer_list<size_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng));
  };
  EntryKey k;
  k.hostClass = static_cast<int>(pick({0, 1, 2}));
  k.hostLen = pick({0, 1, 11, 253});
  k.grpc = pick({0, 1}) == 1;
  k.pathClass = static_cast<int>(pick({0, 1, 2}));
  k.pathLen = pick({1, 2, 7, 1024});
  k.grpcService = pick({0, 5, 1024});
  k.grpcMethod = pick({0, 3, 1024});
  k.method = pick({0, 1}) == 1;
  k.headers = pick({0, 1, 16});
  k.queries = pick({0, 2, 16});
  k.routeRank = static_cast<uint32_t>(pick({0, 1, 9999, 4000000000u}));
  k.rule = pick({0, 1, 15});
  k.match = pick({0, 1, 63});
  return k;
}

TEST(PrecedenceKey, SortsAsTheStablePrecedenceOrder) {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<EntryKey> keys(400);
    for (auto& k : keys) k = randomKey(rng);
    std::vector<uint32_t> expected(keys.size());
    for (uint32_t i = 0; i < expected.size(); ++i) expected[i] = i;
    std::stable_sort(expected.begin(), expected.end(),
                     [&](uint32_t x, uint32_t y) { return before(keys[x], keys[y]); });
    std::vector<PackedEntryKey> packed(keys.size());
    for (uint32_t i = 0; i < packed.size(); ++i) packed[i] = packEntryKey(keys[i], i);
    std::sort(packed.begin(), packed.end());
    std::vector<uint32_t> got;
    for (const auto& p : packed) got.push_back(p.pos);
    ASSERT_EQ(got, expected) << "round " << round;
  }
}

TEST(PrecedenceKey, EachFieldDecides) {
  EntryKey base;
  base.hostLen = 10;
  base.pathLen = 5;
  auto first = [](const EntryKey& a, const EntryKey& b) {
    return packEntryKey(a, 1) < packEntryKey(b, 0);  // the position would say b
  };
  EntryKey k = base;
  k.pathLen = 6;  // longer path first
  EXPECT_TRUE(first(k, base));
  k = base;
  k.method = true;
  EXPECT_TRUE(first(k, base));
  k = base;
  k.hostClass = 1;  // a wildcard host after an exact one
  EXPECT_TRUE(first(base, k));
  k = base;
  k.routeRank = 1;  // an older route first
  EXPECT_TRUE(first(base, k));
  k = base;
  k.grpc = true;  // HTTPRoute entries before GRPCRoute ones
  EXPECT_TRUE(first(base, k));
  EXPECT_FALSE(first(base, base));  // a tie keeps the position
}

}  // namespace
}  // namespace archway::translate
