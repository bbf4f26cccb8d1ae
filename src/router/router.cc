#include "router/router.h"

#include "http/grpc/status.h"

#include <algorithm>

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

void RouteTable::PathIndex::add(uint32_t index, const snapshot::PathMatch& path) {
  empty = false;
  switch (path.type) {
    case snapshot::MatchType::kExact:
      exact[path.value].push_back(index);
      break;
    case snapshot::MatchType::kPathPrefix: {
      TrieNode* node = &prefixRoot;
      std::string_view rest = path.value;
      while (!rest.empty()) {
        if (rest.front() == '/') {
          rest.remove_prefix(1);
          continue;
        }
        size_t slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        auto it = node->children.find(seg);
        if (it == node->children.end())
          it = node->children.emplace(std::string(seg), std::make_unique<TrieNode>()).first;
        node = it->second.get();
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
      }
      node->entries.push_back(index);
      break;
    }
    case snapshot::MatchType::kRegularExpression:
      other.push_back(index);
      break;
  }
}

RouteTable::RouteTable(const std::vector<snapshot::HttpRouteEntry>* entries) : entries_(entries) {
  for (uint32_t i = 0; i < entries->size(); ++i) {
    const auto& e = (*entries)[i];
    if (e.rule && e.rule->isGrpc) hasGrpc_ = true;
    if (e.hostnames.empty()) {
      anyHost_.add(i, e.match.path);
      continue;
    }
    for (const auto& raw : e.hostnames) {
      std::string h = http::toLower(raw);
      if (h.empty() || h == "*") {
        anyHost_.add(i, e.match.path);
      } else if (h.starts_with("*.")) {
        wildcardHosts_[h.substr(1)].add(i, e.match.path);
      } else {
        exactHosts_[h].add(i, e.match.path);
      }
    }
  }
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

int RouteTable::matchIn(const PathIndex& index, const http::RequestHead& request, bool grpc) const {
  if (index.empty) return -1;
  const auto& entries = *entries_;
  uint32_t best = UINT32_MAX;
  // Each candidate list is ascending; its first fully matching entry is its best.
  auto scan = [&](const std::vector<uint32_t>& list) {
    for (uint32_t i : list) {
      if (i >= best) return;
      if ((entries[i].rule && entries[i].rule->isGrpc) != grpc) continue;
      if (conditionsMatch(entries[i].match, request)) {
        best = i;
        return;
      }
    }
  };
  std::string_view path = request.pathOnly();
  if (!index.exact.empty()) {
    if (auto it = index.exact.find(path); it != index.exact.end()) scan(it->second);
  }
  const TrieNode* node = &index.prefixRoot;
  scan(node->entries);
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (!rest.empty() && !node->children.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    auto it = node->children.find(seg);
    if (it == node->children.end()) break;
    node = it->second.get();
    scan(node->entries);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  scan(index.other);
  return best == UINT32_MAX ? -1 : static_cast<int>(best);
}

int RouteTable::match(std::string_view host, const http::RequestHead& request) const {
  if (!entries_) return -1;
  bool grpc = hasGrpc_ && http::grpc::isGrpcRequest(request);
  if (!exactHosts_.empty()) {
    if (auto it = exactHosts_.find(host); it != exactHosts_.end()) {
      int r = matchIn(it->second, request, grpc);
      if (r >= 0) return r;
    }
  }
  if (!wildcardHosts_.empty()) {
    int found = -1;
    forEachWildcardSuffix(host, [&](std::string_view suffix) {
      auto it = wildcardHosts_.find(suffix);
      if (it == wildcardHosts_.end()) return false;
      found = matchIn(it->second, request, grpc);
      return found >= 0;
    });
    if (found >= 0) return found;
  }
  return matchIn(anyHost_, request, grpc);
}

}  // namespace archway::router
