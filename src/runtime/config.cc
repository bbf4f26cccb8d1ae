#include "runtime/config.h"

#include <fmt/format.h>

#include "http/dispatch.h"

namespace archway::runtime {

namespace {

struct Builder {
  RuntimeConfig& cfg;
  std::unordered_map<const snapshot::Backend*, int32_t> backendIndex;
  std::unordered_map<const snapshot::HttpRule*, uint32_t> ruleIndex;

  int32_t backend(const std::shared_ptr<const snapshot::Backend>& b) {
    if (!b) return -1;
    auto [it, inserted] =
        backendIndex.try_emplace(b.get(), static_cast<int32_t>(cfg.backends.size()));
    if (inserted) cfg.backends.push_back(b);
    return it->second;
  }

  // `r` names the rule in problem messages (formatted only when there is one: formatting it
  // for each of 10,000 rules was a sixth of a runtime compile).
  std::vector<CompiledFilter> filters(const std::vector<snapshot::HttpFilter>& in,
                                      const snapshot::HttpRule& r) {
    std::vector<CompiledFilter> out;
    out.reserve(in.size());
    for (const auto& f : in) {
      CompiledFilter c;
      c.filter = &f;
      if (f.type == snapshot::HttpFilter::Type::kExtensionRef) {
        c.plugin = filters::PluginRegistry::instance().create(f.extension, &c.error);
        if (!c.plugin) {
          if (c.error.empty()) c.error = "filter plugin rejected its configuration";
          cfg.problems.push_back(fmt::format("HTTPRoute {}/{} rule {}: ExtensionRef {}/{} {}: {}",
                                             r.routeNs, r.routeName, r.ruleIndex, f.extension.group,
                                             f.extension.kind, f.extension.name, c.error));
        }
      } else if (f.type == snapshot::HttpFilter::Type::kRequestMirror) {
        c.mirrorBackend = backend(f.mirror.backend);
      }
      out.push_back(std::move(c));
    }
    return out;
  }

  uint32_t rule(const std::shared_ptr<const snapshot::HttpRule>& r) {
    auto it = ruleIndex.find(r.get());
    if (it != ruleIndex.end()) return it->second;
    CompiledRule c;
    c.rule = r.get();
    c.index = static_cast<uint32_t>(cfg.rules.size());
    c.filters = filters(r->filters, *r);
    for (const auto& wb : r->backends) {
      CompiledBackendRef ref;
      ref.ref = &wb;
      ref.backend = backend(wb.backend);
      ref.filters = filters(wb.filters, *r);
      c.totalWeight += wb.weight;
      c.backends.push_back(std::move(ref));
    }
    ruleIndex.emplace(r.get(), c.index);
    cfg.rules.push_back(std::move(c));
    return cfg.rules.back().index;
  }
};

}  // namespace

std::shared_ptr<const RuntimeConfig> RuntimeConfig::compile(
    std::shared_ptr<const snapshot::Snapshot> snap,
    const std::vector<stats::WorkerStats*>& workers) {
  auto cfg = std::make_shared<RuntimeConfig>();
  cfg->snapshot = snap;
  Builder b{*cfg, {}, {}};
  for (const auto& [id, backend] : snap->backends) b.backend(backend);
  std::vector<std::string> listenerKeys;
  for (const auto& port : snap->ports) {
    CompiledPort cp;
    cp.udp = port.udp;
    cp.address = port.address == "0.0.0.0" ? "" : port.address;
    cp.port = port.port;
    if (!port.listeners.empty()) cp.protocol = port.listeners.front()->protocol;
    std::vector<std::optional<std::string>> hostnames;
    for (const auto& l : port.listeners) {
      CompiledListener cl;
      cl.listener = l;
      cl.statsKey = fmt::format("{}/{}/{}", l->gatewayNs, l->gatewayName, l->name);
      cl.statsIndex = static_cast<uint32_t>(listenerKeys.size());
      listenerKeys.push_back(cl.statsKey);
      cl.routes = router::RouteTable(&l->httpRoutes);
      cl.entryRule.reserve(l->httpRoutes.size());
      for (const auto& e : l->httpRoutes) cl.entryRule.push_back(b.rule(e.rule));
      hostnames.push_back(l->hostname);
      cp.listeners.push_back(std::move(cl));
    }
    cp.selector.build(hostnames);
    if (cp.protocol != snapshot::Protocol::kHttp)
      cp.l4 = proxy::L4Port::build(port, http::downstreamAlpn(), &cfg->problems);
    cfg->ports.push_back(std::move(cp));
  }
  for (auto* ws : workers) {
    auto state = std::make_unique<WorkerState>();
    state->swrr.resize(cfg->rules.size());
    for (size_t i = 0; i < cfg->rules.size(); ++i)
      state->swrr[i].assign(cfg->rules[i].backends.size(), 0);
    state->backends.resize(cfg->backends.size());
    for (size_t i = 0; i < cfg->backends.size(); ++i) {
      state->backends[i].stats = ws->backend(cfg->backends[i]->id);
      state->backends[i].pools.assign(cfg->backends[i]->endpoints.size(), nullptr);
    }
    for (const auto& key : listenerKeys) state->listeners.push_back(ws->listener(key));
    cfg->perWorker_.push_back(std::move(state));
  }
  return cfg;
}

const CompiledPort* RuntimeConfig::findPort(const std::string& address, uint16_t port) const {
  for (const auto& p : ports)
    if (p.port == port && p.address == address && !p.udp) return &p;
  return nullptr;
}

int pickWeighted(const CompiledRule& rule, std::vector<int64_t>& current) {
  int best = -1;
  int64_t total = 0;
  for (size_t i = 0; i < rule.backends.size(); ++i) {
    int64_t w = rule.backends[i].ref->weight;
    if (w == 0) continue;
    current[i] += w;
    total += w;
    if (best < 0 || current[i] > current[static_cast<size_t>(best)]) best = static_cast<int>(i);
  }
  if (best >= 0) current[static_cast<size_t>(best)] -= total;
  return best;
}

}  // namespace archway::runtime
