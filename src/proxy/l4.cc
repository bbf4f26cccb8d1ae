#include "proxy/l4.h"

#include <fmt/format.h>

#include "tls/context.h"

namespace archway::proxy {

std::shared_ptr<const L4Port> L4Port::build(const snapshot::Port& port,
                                            const std::vector<std::string>& alpn,
                                            std::vector<std::string>* problems) {
  auto out = std::make_shared<L4Port>();
  for (const auto& l : port.listeners) {
    L4Listener ll;
    bool terminates = l->protocol == snapshot::Protocol::kHttps ||
                      (l->protocol == snapshot::Protocol::kTls && !l->tlsPassthrough);
    if (terminates) {
      static const std::vector<std::string> kNoAlpn;
      ll.serverTls = tls::makeServerContext(
          *l, l->protocol == snapshot::Protocol::kHttps ? alpn : kNoAlpn, &ll.tlsError);
      if (!ll.serverTls)
        problems->push_back(fmt::format("listener {}/{}/{}: TLS disabled: {}", l->gatewayNs,
                                        l->gatewayName, l->name, ll.tlsError));
    }
    for (const auto& r : l->l4Routes) {
      L4RouteSet rs;
      rs.name = fmt::format("{}/{}", r.routeNs, r.routeName);
      rs.hostnames = r.hostnames;
      for (const auto& wb : r.backends) {
        rs.backends.push_back(L4Backend{wb.backend, wb.weight});
        if (wb.backend) rs.totalWeight += wb.weight;
      }
      ll.routes.push_back(std::move(rs));
    }
    out->listeners_.push_back(std::move(ll));
  }
  return out;
}

const L4RouteSet* L4Port::route(size_t index, std::string_view name, bool bySni) const {
  if (index >= listeners_.size()) return nullptr;
  const auto& routes = listeners_[index].routes;
  if (routes.empty()) return nullptr;
  if (!bySni) return &routes.front();
  const L4RouteSet* wildcard = nullptr;
  size_t wildcardLen = 0;
  const L4RouteSet* any = nullptr;
  for (const auto& r : routes) {
    if (r.hostnames.empty()) {
      if (!any) any = &r;
      continue;
    }
    for (const auto& h : r.hostnames) {
      if (h == name) return &r;
      if (h.starts_with("*.") && tls::hostnameMatches(h, name) && h.size() > wildcardLen) {
        wildcard = &r;
        wildcardLen = h.size();
      }
    }
  }
  return wildcard ? wildcard : any;
}

const snapshot::Backend* pickBackend(const L4RouteSet& route, uint64_t random) {
  if (route.totalWeight == 0) return nullptr;
  uint64_t x = random % route.totalWeight;
  for (const auto& b : route.backends) {
    if (!b.backend) continue;
    if (x < b.weight) return b.backend.get();
    x -= b.weight;
  }
  return nullptr;
}

}  // namespace archway::proxy
