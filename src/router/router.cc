#include "router/router.h"

#include "http/grpc/status.h"

#include <algorithm>
#include <atomic>

namespace archway::router {

namespace {

std::string_view stripTrailingSlash(std::string_view p) {
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  return p;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls fn(suffix) for every ".label..." suffix of host, longest first.
template <typename Fn>
bool forEachWildcardSuffix(std::string_view host, Fn&& fn) {
  for (size_t pos = host.find('.'); pos != std::string_view::npos; pos = host.find('.', pos + 1)) {
    if (fn(host.substr(pos))) return true;
  }
  return false;
}

}  // namespace

bool pathPrefixMatches(std::string_view prefix, std::string_view path) {
  prefix = stripTrailingSlash(prefix);
  if (prefix == "/") return true;
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

std::string decodeQueryComponent(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------

void ListenerSelector::build(const std::vector<std::optional<std::string>>& hostnames) {
  exact_.clear();
  wildcard_.clear();
  catchAll_ = -1;
  for (size_t i = 0; i < hostnames.size(); ++i) {
    int idx = static_cast<int>(i);
    if (!hostnames[i] || hostnames[i]->empty() || *hostnames[i] == "*") {
      if (catchAll_ < 0) catchAll_ = idx;
      continue;
    }
    std::string h = http::toLower(*hostnames[i]);
    if (h.starts_with("*.")) {
      wildcard_.try_emplace(h.substr(1), idx);
    } else {
      exact_.try_emplace(h, idx);
    }
  }
}

int ListenerSelector::select(std::string_view host) const {
  if (auto it = exact_.find(host); it != exact_.end()) return it->second;
  int found = -1;
  if (!wildcard_.empty()) {
    forEachWildcardSuffix(host, [&](std::string_view suffix) {
      auto it = wildcard_.find(suffix);
      if (it == wildcard_.end()) return false;
      found = it->second;
      return true;
    });
  }
  return found >= 0 ? found : catchAll_;
}

// ---------------------------------------------------------------------------------------

namespace {

constexpr uint32_t kNone = UINT32_MAX;

// A fresh token per table: nodes and buckets carrying it belong to the table being built.
uint64_t nextOwner() {
  static std::atomic<uint64_t> counter{0};
  return ++counter;
}

// `p`, made changeable by `owner`: created, or copied when another table owns it.
template <typename T>
T& own(std::shared_ptr<T>& p, uint64_t owner) {
  if (!p) {
    p = std::make_shared<T>();
    p->owner = owner;
  } else if (p->owner != owner) {
    p = std::make_shared<T>(*p);
    p->owner = owner;
  }
  return *p;
}

// Calls fn(segment) for each non-empty '/'-separated segment of a PathPrefix value.
template <typename Fn>
void forEachSegment(std::string_view rest, Fn&& fn) {
  while (!rest.empty()) {
    if (rest.front() == '/') {
      rest.remove_prefix(1);
      continue;
    }
    size_t slash = rest.find('/');
    fn(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
}

bool eraseId(std::vector<uint32_t>& list, uint32_t id) {
  auto it = std::find(list.begin(), list.end(), id);
  if (it == list.end()) return false;
  list.erase(it);
  return true;
}

bool isGrpcEntry(const snapshot::HttpRouteEntry& e) { return e.rule && e.rule->isGrpc; }

}  // namespace

void RouteTable::insertSorted(std::vector<uint32_t>& list, uint32_t id) const {
  // Ids of the same list keep their relative order between tables (precedence among kept
  // entries does not change), so the list stays sorted by this table's positions.
  const uint32_t at = pos_[id];
  if (list.empty() || pos_[list.back()] < at) {
    list.push_back(id);
    return;
  }
  auto it = std::lower_bound(list.begin(), list.end(), at,
                             [&](uint32_t x, uint32_t p) { return pos_[x] < p; });
  list.insert(it, id);
}

void RouteTable::insertPath(std::shared_ptr<PathIndex>& indexPtr, uint32_t id,
                            const snapshot::PathMatch& path) {
  PathIndex& index = own(indexPtr, owner_);
  ++index.count;
  switch (path.type) {
    case snapshot::MatchType::kExact:
      insertSorted(index.exact.slot(path.value, owner_), id);
      break;
    case snapshot::MatchType::kPathPrefix: {
      TrieNode* node = &own(index.prefixRoot, owner_);
      forEachSegment(path.value, [&](std::string_view seg) {
        node = &own(node->children.slot(seg, owner_), owner_);
      });
      insertSorted(node->ids, id);
      break;
    }
    case snapshot::MatchType::kRegularExpression:
      insertSorted(index.other, id);
      break;
  }
}

bool RouteTable::removePath(std::shared_ptr<PathIndex>& indexPtr, uint32_t id,
                            const snapshot::PathMatch& path) {
  if (!indexPtr || indexPtr->count == 0) return false;
  PathIndex& index = own(indexPtr, owner_);
  --index.count;
  switch (path.type) {
    case snapshot::MatchType::kExact: {
      std::vector<uint32_t>* list = index.exact.mutableFind(path.value, owner_);
      if (!list || !eraseId(*list, id)) return false;
      if (list->empty()) index.exact.erase(path.value, owner_);
      return true;
    }
    case snapshot::MatchType::kPathPrefix: {
      if (!index.prefixRoot) return false;
      // The nodes down to the entry's, made changeable, to drop those left empty after.
      std::vector<std::pair<TrieNode*, std::string_view>> trail;
      TrieNode* node = &own(index.prefixRoot, owner_);
      bool found = true;
      forEachSegment(path.value, [&](std::string_view seg) {
        if (!found) return;
        std::shared_ptr<TrieNode>* child = node->children.mutableFind(seg, owner_);
        if (!child || !*child) {
          found = false;
          return;
        }
        trail.emplace_back(node, seg);
        node = &own(*child, owner_);
      });
      if (!found || !eraseId(node->ids, id)) return false;
      for (size_t i = trail.size(); i-- > 0;) {
        TrieNode* child = i + 1 < trail.size() ? trail[i + 1].first : node;
        if (!child->ids.empty() || !child->children.empty()) break;
        trail[i].first->children.erase(trail[i].second, owner_);
      }
      return true;
    }
    case snapshot::MatchType::kRegularExpression:
      return eraseId(index.other, id);
  }
  return false;
}

void RouteTable::insert(uint32_t id, const snapshot::HttpRouteEntry& e) {
  ++indexed_;
  if (isGrpcEntry(e)) ++grpcEntries_;
  if (e.hostnames.empty()) {
    insertPath(anyHost_, id, e.match.path);
    return;
  }
  for (const auto& raw : e.hostnames) {
    std::string h = http::toLower(raw);
    if (h.empty() || h == "*") {
      insertPath(anyHost_, id, e.match.path);
    } else if (h.starts_with("*.")) {
      insertPath(wildcardHosts_.slot(std::string_view(h).substr(1), owner_), id, e.match.path);
    } else {
      insertPath(exactHosts_.slot(h, owner_), id, e.match.path);
    }
  }
}

bool RouteTable::remove(uint32_t id, const snapshot::HttpRouteEntry& e) {
  if (isGrpcEntry(e)) --grpcEntries_;
  if (e.hostnames.empty()) return removePath(anyHost_, id, e.match.path);
  for (const auto& raw : e.hostnames) {
    std::string h = http::toLower(raw);
    if (h.empty() || h == "*") {
      if (!removePath(anyHost_, id, e.match.path)) return false;
      continue;
    }
    auto& hosts = h.starts_with("*.") ? wildcardHosts_ : exactHosts_;
    std::string_view key = h.starts_with("*.") ? std::string_view(h).substr(1) : h;
    std::shared_ptr<PathIndex>* index = hosts.mutableFind(key, owner_);
    if (!index || !removePath(*index, id, e.match.path)) return false;
    if ((*index)->count == 0) hosts.erase(key, owner_);
  }
  return true;
}

RouteTable::RouteTable(const std::vector<snapshot::HttpRouteEntry>* entries)
    : entries_(entries), owner_(nextOwner()) {
  const auto n = static_cast<uint32_t>(entries->size());
  pos_.resize(n);
  idAt_.resize(n);
  for (uint32_t i = 0; i < n; ++i) pos_[i] = idAt_[i] = i;
  for (uint32_t i = 0; i < n; ++i) insert(i, (*entries)[i]);
}

bool RouteTable::derive(const RouteTable& previous,
                        const std::vector<snapshot::HttpRouteEntry>* entries, const KeptFn& kept) {
  if (!previous.entries_) return false;
  const auto& old = *previous.entries_;
  const auto& now = *entries;
  // Beyond this many changed entries a build from scratch is as cheap.
  const size_t limit = std::max<size_t>(64, now.size() / 4);
  // Kept entries appear in both vectors in the same relative order: one pass pairs them.
  std::vector<uint32_t> removed, inserted;
  idAt_.assign(now.size(), kNone);
  size_t i = 0;
  for (size_t j = 0; j < now.size(); ++j) {
    const snapshot::HttpRouteEntry& e = now[j];
    if (!e.rule || !kept(j)) {
      inserted.push_back(static_cast<uint32_t>(j));
    } else {
      while (i < old.size() && old[i].rule != e.rule) removed.push_back(static_cast<uint32_t>(i++));
      if (i == old.size()) return false;
      // A cheap check of the pairing (a mistake would index the entry in the wrong place).
      const snapshot::HttpRouteEntry& o = old[i];
      if (o.match.path.type != e.match.path.type ||
          o.match.path.value.size() != e.match.path.value.size() ||
          o.hostnames.size() != e.hostnames.size())
        return false;
      idAt_[j] = previous.idAt_[i++];
    }
    if (removed.size() + inserted.size() > limit) return false;
  }
  while (i < old.size()) removed.push_back(static_cast<uint32_t>(i++));
  if (removed.size() + inserted.size() > limit) return false;

  entries_ = entries;
  owner_ = nextOwner();
  exactHosts_ = previous.exactHosts_;
  wildcardHosts_ = previous.wildcardHosts_;
  anyHost_ = previous.anyHost_;
  grpcEntries_ = previous.grpcEntries_;
  freeIds_ = previous.freeIds_;
  auto idCount = static_cast<uint32_t>(previous.pos_.size());
  for (uint32_t p : removed) {
    uint32_t id = previous.idAt_[p];
    if (!remove(id, old[p])) return false;
    freeIds_.push_back(id);
  }
  for (uint32_t j : inserted) {
    if (!freeIds_.empty()) {
      idAt_[j] = freeIds_.back();
      freeIds_.pop_back();
    } else {
      idAt_[j] = idCount++;
    }
  }
  pos_.assign(idCount, kNone);
  for (uint32_t j = 0; j < now.size(); ++j) pos_[idAt_[j]] = j;
  for (uint32_t j : inserted) insert(idAt_[j], now[j]);
  indexed_ = inserted.size();
  return true;
}

bool RouteTable::conditionsMatch(const snapshot::HttpMatch& m,
                                 const http::RequestHead& request) const {
  if (m.path.type == snapshot::MatchType::kRegularExpression) {
    if (!m.path.regex || !re2::RE2::FullMatch(request.pathOnly(), *m.path.regex)) return false;
  }
  if (m.method && *m.method != request.method) return false;
  for (const auto& hm : m.headers) {
    const std::string* v = nullptr;
    if (hm.name == "host") {
      v = &request.authority;
    } else {
      v = request.headers.get(hm.name);
    }
    if (!v) return false;
    if (hm.type == snapshot::MatchType::kRegularExpression) {
      if (!hm.regex || !re2::RE2::FullMatch(*v, *hm.regex)) return false;
    } else if (*v != hm.value) {
      return false;
    }
  }
  if (!m.queryParams.empty()) {
    std::string_view q = request.query();
    for (const auto& qm : m.queryParams) {
      // First occurrence of the (case-sensitive) name.
      std::optional<std::string> value;
      std::string_view rest = q;
      while (!rest.empty() && !value) {
        size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        size_t eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        std::string_view val =
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (decodeQueryComponent(name) == qm.name) value = decodeQueryComponent(val);
      }
      if (!value) return false;
      if (qm.type == snapshot::MatchType::kRegularExpression) {
        if (!qm.regex || !re2::RE2::FullMatch(*value, *qm.regex)) return false;
      } else if (*value != qm.value) {
        return false;
      }
    }
  }
  return true;
}

int RouteTable::matchIn(const PathIndex* index, const http::RequestHead& request, bool grpc) const {
  if (!index || index->count == 0) return -1;
  const auto& entries = *entries_;
  const uint32_t* pos = pos_.data();
  uint32_t best = UINT32_MAX;
  // Each candidate list is in precedence order; its first fully matching entry is its best.
  auto scan = [&](const std::vector<uint32_t>& list) {
    for (uint32_t id : list) {
      uint32_t i = pos[id];
      if (i >= best) return;
      if (isGrpcEntry(entries[i]) != grpc) continue;
      if (conditionsMatch(entries[i].match, request)) {
        best = i;
        return;
      }
    }
  };
  std::string_view path = request.pathOnly();
  if (!index->exact.empty()) {
    if (const auto* list = index->exact.find(path)) scan(*list);
  }
  if (const TrieNode* node = index->prefixRoot.get()) {
    scan(node->ids);
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    while (!rest.empty() && !node->children.empty()) {
      size_t slash = rest.find('/');
      std::string_view seg = rest.substr(0, slash);
      const auto* child = node->children.find(seg);
      if (!child) break;
      node = child->get();
      scan(node->ids);
      if (slash == std::string_view::npos) break;
      rest = rest.substr(slash + 1);
    }
  }
  scan(index->other);
  return best == UINT32_MAX ? -1 : static_cast<int>(best);
}

int RouteTable::match(std::string_view host, const http::RequestHead& request) const {
  if (!entries_) return -1;
  bool grpc = grpcEntries_ > 0 && http::grpc::isGrpcRequest(request);
  if (!exactHosts_.empty()) {
    if (const auto* index = exactHosts_.find(host)) {
      int r = matchIn(index->get(), request, grpc);
      if (r >= 0) return r;
    }
  }
  if (!wildcardHosts_.empty()) {
    int found = -1;
    forEachWildcardSuffix(host, [&](std::string_view suffix) {
      const auto* index = wildcardHosts_.find(suffix);
      if (!index) return false;
      found = matchIn(index->get(), request, grpc);
      return found >= 0;
    });
    if (found >= 0) return found;
  }
  return matchIn(anyHost_.get(), request, grpc);
}

}  // namespace archway::router
