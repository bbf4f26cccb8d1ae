// The router: compiled once per snapshot, read-only afterwards, shared by every worker.
//
// ListenerSelector picks the one Listener of a Port whose hostname best matches the
// request's Host (exact > longest wildcard > catch-all; listener isolation).
// RouteTable finds the first entry, in the translator's precedence order, that matches a
// request. Lookup cost depends on the request (host labels, path segments) and on the
// handful of candidate entries sharing its path, not on the number of routes:
//   host bucket (exact host hash, wildcard suffix hash walked from the longest suffix,
//   then catch-all) -> path index (exact-path hash + prefix trie over path segments +
//   a short list of regex entries) -> the remaining conditions (method, headers, query)
//   evaluated over the candidates in precedence order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/message.h"
#include "snapshot/snapshot.h"

namespace archway::router {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// True when `path` (no query) matches a PathPrefix `prefix` element-wise: "/abc" matches
// "/abc", "/abc/" and "/abc/x", not "/abcd". A trailing '/' on the prefix is ignored.
bool pathPrefixMatches(std::string_view prefix, std::string_view path);

// Percent-decodes a query component ('+' is a space). Invalid escapes are kept verbatim.
std::string decodeQueryComponent(std::string_view s);

class ListenerSelector {
 public:
  // `hostnames[i]`: listener i's hostname, nullopt for a catch-all. Earlier listeners win
  // ties (the translator orders them most specific first).
  void build(const std::vector<std::optional<std::string>>& hostnames);
  // Index of the best listener for `host` (lower-case, no port), or -1.
  int select(std::string_view host) const;

 private:
  StringMap<int> exact_;
  StringMap<int> wildcard_;  // ".example.com" -> listener
  int catchAll_ = -1;
};

// A string-keyed map that successive route tables share: items live in buckets chosen by
// hash, and an update copies only the bucket array and the buckets it touches (not the
// whole map: the root of a 10,000-route trie has 10,000 children). A bucket or node is
// changed in place only by the update that created it (its `owner` token), before the
// table is published; once published, nothing in it changes.
template <typename V>
class SharedMap {
 public:
  struct Item {
    size_t hash = 0;
    std::string key;
    V value{};
  };
  struct Bucket {
    uint64_t owner = 0;
    std::vector<Item> items;
  };

  static size_t hashOf(std::string_view key) { return std::hash<std::string_view>{}(key); }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }

  const V* find(std::string_view key) const { return find(key, hashOf(key)); }
  const V* find(std::string_view key, size_t hash) const {
    if (buckets_.empty()) return nullptr;
    const Bucket& b = *buckets_[hash & (buckets_.size() - 1)];
    for (const Item& it : b.items)
      if (it.hash == hash && it.key == key) return &it.value;
    return nullptr;
  }

  // The value of `key`, inserted (value-initialized) when absent, in a bucket `owner` may
  // change.
  V& slot(std::string_view key, uint64_t owner) {
    size_t hash = hashOf(key);
    if (V* v = mutableFind(key, hash, owner)) return *v;
    if (buckets_.empty()) {
      buckets_.push_back(std::make_shared<Bucket>(Bucket{owner, {}}));
    } else if (size_ + 1 > kLoad * buckets_.size()) {
      grow(owner);
    }
    ++size_;
    Bucket& b = own(hash & (buckets_.size() - 1), owner);
    b.items.push_back({hash, std::string(key), V{}});
    return b.items.back().value;
  }

  // The value of `key` in a bucket `owner` may change, or null when absent.
  V* mutableFind(std::string_view key, uint64_t owner) {
    return mutableFind(key, hashOf(key), owner);
  }
  V* mutableFind(std::string_view key, size_t hash, uint64_t owner) {
    if (!find(key, hash)) return nullptr;
    Bucket& b = own(hash & (buckets_.size() - 1), owner);
    for (Item& it : b.items)
      if (it.hash == hash && it.key == key) return &it.value;
    return nullptr;
  }

  void erase(std::string_view key, uint64_t owner) {
    size_t hash = hashOf(key);
    if (!find(key, hash)) return;
    Bucket& b = own(hash & (buckets_.size() - 1), owner);
    for (size_t i = 0; i < b.items.size(); ++i) {
      if (b.items[i].hash == hash && b.items[i].key == key) {
        b.items.erase(b.items.begin() + static_cast<long>(i));
        --size_;
        return;
      }
    }
  }

  template <typename Fn>
  void forEach(Fn&& fn) const {
    for (const auto& b : buckets_)
      for (const Item& it : b->items) fn(it.key, it.value);
  }

 private:
  // Items per bucket on average before the bucket array doubles (a lookup compares hashes
  // over one bucket; an update copies one bucket and the array).
  static constexpr size_t kLoad = 8;

  Bucket& own(size_t i, uint64_t owner) {
    if (buckets_[i]->owner != owner) {
      auto copy = std::make_shared<Bucket>(*buckets_[i]);
      copy->owner = owner;
      buckets_[i] = std::move(copy);
    }
    return *buckets_[i];
  }

  void grow(uint64_t owner) {
    std::vector<std::shared_ptr<Bucket>> next(buckets_.size() * 2);
    for (auto& b : next) b = std::make_shared<Bucket>(Bucket{owner, {}});
    for (const auto& b : buckets_)
      for (const Item& it : b->items) next[it.hash & (next.size() - 1)]->items.push_back(it);
    buckets_ = std::move(next);
  }

  std::vector<std::shared_ptr<Bucket>> buckets_;  // size: 0 or a power of two
  size_t size_ = 0;
};

// The route table of one listener. Entries are indexed by a stable id, not by their
// position in the (re-sorted) entry vector: a table for the next snapshot is derived from
// the previous one by removing the entries that left and inserting the new ones (update()),
// sharing every untouched trie node and map bucket with it. Only the id -> position array
// (and its inverse) is per table; lookups compare positions, so precedence is exactly the
// entry vector's order.
class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(const std::vector<snapshot::HttpRouteEntry>* entries);
  RouteTable(RouteTable&&) = default;
  RouteTable& operator=(RouteTable&&) = default;

  // The table for `entries`, derived from `previous` (whose entry vector must still be
  // alive). `kept(j)` says whether entry j may be one of the previous entries: its rule was
  // in the previous snapshot (replayed routes share their HttpRule between snapshots and
  // keep their relative order). Such an entry is taken to be the previous entry with that
  // rule at the same rank among them; the others are new, and previous entries not taken
  // are gone. Falls back to a build from scratch when that pairing does not hold up or when
  // most entries changed; the result answers as a build from scratch either way.
  template <typename Kept>
  static RouteTable update(const RouteTable& previous,
                           const std::vector<snapshot::HttpRouteEntry>* entries, Kept&& kept) {
    RouteTable t;
    if (t.derive(previous, entries, [&](size_t j) { return static_cast<bool>(kept(j)); })) return t;
    return RouteTable(entries);
  }

  // Index (into the entries given at construction) of the first matching entry, or -1.
  // `host` is lower-case without port.
  int match(std::string_view host, const http::RequestHead& request) const;
  size_t size() const { return entries_ ? entries_->size() : 0; }
  // Entries inserted by the last update (all of them for a build from scratch).
  size_t entriesIndexed() const { return indexed_; }

 private:
  struct TrieNode {
    uint64_t owner = 0;
    SharedMap<std::shared_ptr<TrieNode>> children;
    std::vector<uint32_t> ids;  // ascending position (= precedence order)
  };
  struct PathIndex {
    uint64_t owner = 0;
    SharedMap<std::vector<uint32_t>> exact;
    std::shared_ptr<TrieNode> prefixRoot;
    std::vector<uint32_t> other;  // regular expressions
    size_t count = 0;             // ids held: 0 = empty
  };
  using KeptFn = std::function<bool(size_t)>;

  bool derive(const RouteTable& previous, const std::vector<snapshot::HttpRouteEntry>* entries,
              const KeptFn& kept);
  // Adds (removes) entry `id` under every host it names; false when a removal does not
  // find what it removes (the tables disagree: the caller rebuilds).
  void insert(uint32_t id, const snapshot::HttpRouteEntry& e);
  bool remove(uint32_t id, const snapshot::HttpRouteEntry& e);
  void insertPath(std::shared_ptr<PathIndex>& index, uint32_t id, const snapshot::PathMatch& path);
  bool removePath(std::shared_ptr<PathIndex>& index, uint32_t id, const snapshot::PathMatch& path);
  void insertSorted(std::vector<uint32_t>& list, uint32_t id) const;

  // `grpc`: only GRPCRoute entries (rule->isGrpc) qualify; otherwise only HTTPRoute ones.
  int matchIn(const PathIndex* index, const http::RequestHead& request, bool grpc) const;
  bool conditionsMatch(const snapshot::HttpMatch& m, const http::RequestHead& request) const;

  const std::vector<snapshot::HttpRouteEntry>* entries_ = nullptr;
  uint64_t owner_ = 0;  // this table's update token
  SharedMap<std::shared_ptr<PathIndex>> exactHosts_;
  SharedMap<std::shared_ptr<PathIndex>> wildcardHosts_;  // ".example.com"
  std::shared_ptr<PathIndex> anyHost_;
  std::vector<uint32_t> pos_;      // id -> position in *entries_ (kNone: unused id)
  std::vector<uint32_t> idAt_;     // position -> id
  std::vector<uint32_t> freeIds_;  // ids below pos_.size() not in use
  size_t indexed_ = 0;
  // Some entry comes from a GRPCRoute: gRPC requests are then matched against GRPCRoutes
  // only (never merged with HTTPRoutes); without any, HTTPRoutes may carry gRPC.
  size_t grpcEntries_ = 0;
};

}  // namespace archway::router
