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

class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(const std::vector<snapshot::HttpRouteEntry>* entries);
  RouteTable(RouteTable&&) = default;
  RouteTable& operator=(RouteTable&&) = default;

  // Index (into the entries given at construction) of the first matching entry, or -1.
  // `host` is lower-case without port.
  int match(std::string_view host, const http::RequestHead& request) const;
  size_t size() const { return entries_ ? entries_->size() : 0; }

 private:
  struct TrieNode {
    StringMap<std::unique_ptr<TrieNode>> children;
    std::vector<uint32_t> entries;  // ascending (= precedence order)
  };
  struct PathIndex {
    StringMap<std::vector<uint32_t>> exact;
    TrieNode prefixRoot;
    std::vector<uint32_t> other;  // regular expressions
    bool empty = true;
    void add(uint32_t index, const snapshot::PathMatch& path);
  };

  // `grpc`: only GRPCRoute entries (rule->isGrpc) qualify; otherwise only HTTPRoute ones.
  int matchIn(const PathIndex& index, const http::RequestHead& request, bool grpc) const;
  bool conditionsMatch(const snapshot::HttpMatch& m, const http::RequestHead& request) const;

  const std::vector<snapshot::HttpRouteEntry>* entries_ = nullptr;
  StringMap<PathIndex> exactHosts_;
  StringMap<PathIndex> wildcardHosts_;  // ".example.com"
  PathIndex anyHost_;
  // Some entry comes from a GRPCRoute: gRPC requests are then matched against GRPCRoutes
  // only (never merged with HTTPRoutes); without any, HTTPRoutes may carry gRPC.
  bool hasGrpc_ = false;
};

}  // namespace archway::router
