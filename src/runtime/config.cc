#include "runtime/config.h"

#include <fmt/format.h>

#include <map>
#include <tuple>

#include "http/dispatch.h"

namespace archway::runtime {

namespace {

struct Builder {
  RuntimeConfig& cfg;
  const RuntimeConfig* previous;
  std::unordered_map<const snapshot::Backend*, int32_t> backendIndex;
  RuleIndex& ruleIndex;
  uint32_t swrrSize = 0;
  size_t compiled = 0;
  std::vector<char> reused;  // per rule: shared with the previous configuration

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
                                      const snapshot::HttpRule& r, CompiledRule& c) {
    std::vector<CompiledFilter> out;
    out.reserve(in.size());
    for (const auto& f : in) {
      CompiledFilter cf;
      cf.filter = &f;
      if (f.type == snapshot::HttpFilter::Type::kExtensionRef) {
        cf.plugin = filters::PluginRegistry::instance().create(f.extension, &cf.error);
        if (!cf.plugin) {
          if (cf.error.empty()) cf.error = "filter plugin rejected its configuration";
          c.problems.push_back(fmt::format("HTTPRoute {}/{} rule {}: ExtensionRef {}/{} {}: {}",
                                           r.routeNs, r.routeName, r.ruleIndex, f.extension.group,
                                           f.extension.kind, f.extension.name, cf.error));
        }
      } else if (f.type == snapshot::HttpFilter::Type::kRequestMirror) {
        cf.mirrorBackend = backend(f.mirror.backend);
      }
      out.push_back(std::move(cf));
    }
    return out;
  }

  // The same index means the same Backend in both configurations.
  bool sameBackend(int32_t index) const {
    if (index < 0) return true;
    auto i = static_cast<size_t>(index);
    return i < cfg.backends.size() && i < previous->backends.size() &&
           cfg.backends[i] == previous->backends[i];
  }

  // The previous configuration's compiled `r`, when its backend indices mean the same here.
  std::shared_ptr<const CompiledRule> reusable(const snapshot::HttpRule* r) const {
    if (!previous) return nullptr;
    uint32_t at = previous->ruleIndex.find(r);
    if (at == RuleIndex::kNotFound) return nullptr;
    const auto& c = previous->rules[at];
    for (const auto& f : c->filters)
      if (!sameBackend(f.mirrorBackend)) return nullptr;
    for (const auto& ref : c->backends) {
      if (!sameBackend(ref.backend)) return nullptr;
      for (const auto& f : ref.filters)
        if (!sameBackend(f.mirrorBackend)) return nullptr;
    }
    return c;
  }

  uint32_t rule(const std::shared_ptr<const snapshot::HttpRule>& r) {
    auto [index, inserted] = ruleIndex.tryEmplace(r.get(), static_cast<uint32_t>(cfg.rules.size()));
    if (!inserted) return index;
    std::shared_ptr<const CompiledRule> shared = reusable(r.get());
    reused.push_back(shared != nullptr);
    if (!shared) {
      auto c = std::make_shared<CompiledRule>();
      c->rule = r.get();
      c->filters = filters(r->filters, *r, *c);
      c->backends.reserve(r->backends.size());
      for (const auto& wb : r->backends) {
        CompiledBackendRef ref;
        ref.ref = &wb;
        ref.backend = backend(wb.backend);
        ref.filters = filters(wb.filters, *r, *c);
        c->totalWeight += wb.weight;
        c->backends.push_back(std::move(ref));
      }
      shared = std::move(c);
      ++compiled;
    }
    for (const auto& p : shared->problems) cfg.problems.push_back(p);
    cfg.swrrOffset.push_back(swrrSize);
    swrrSize += static_cast<uint32_t>(shared->backends.size());
    cfg.rules.push_back(std::move(shared));
    return index;
  }
};

}  // namespace

std::shared_ptr<const RuntimeConfig> RuntimeConfig::compile(
    std::shared_ptr<const snapshot::Snapshot> snap, const std::vector<stats::WorkerStats*>& workers,
    const RuntimeConfig* previous) {
  auto cfg = std::make_shared<RuntimeConfig>();
  cfg->snapshot = snap;
  Builder b{*cfg, previous, {}, cfg->ruleIndex};
  if (previous) {
    // About as many rules as last time: no rehash and no reallocation on the way.
    cfg->ruleIndex.reserve(previous->rules.size() + 16);
    cfg->rules.reserve(previous->rules.size() + 16);
    cfg->swrrOffset.reserve(previous->rules.size() + 16);
    b.reused.reserve(previous->rules.size() + 16);
  }
  for (const auto& [id, backend] : snap->backends) b.backend(backend);
  std::vector<std::string> listenerKeys;
  // The previous configuration's route table of the same listener (same port and name), if
  // any: the new one is derived from it by the entries that changed.
  std::map<std::tuple<std::string, uint16_t, std::string>, const router::RouteTable*> before;
  if (previous)
    for (const auto& p : previous->ports)
      if (!p.udp)
        for (const auto& l : p.listeners) before[{p.address, p.port, l.statsKey}] = &l.routes;
  // An entry whose compiled rule is the previous configuration's has that rule's HttpRule,
  // so it may be one of the previous table's entries.
  auto routeTable = [&](const CompiledListener& cl, const CompiledPort& cp) {
    const auto& entries = cl.listener->httpRoutes;
    auto it = before.find({cp.address, cp.port, cl.statsKey});
    if (cp.udp || it == before.end()) return router::RouteTable(&entries);
    return router::RouteTable::update(*it->second, &entries,
                                      [&](size_t j) { return b.reused[cl.entryRule[j]] != 0; });
  };
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
      cl.entryRule.reserve(l->httpRoutes.size());
      for (const auto& e : l->httpRoutes) cl.entryRule.push_back(b.rule(e.rule));
      cl.routes = routeTable(cl, cp);
      hostnames.push_back(l->hostname);
      cp.listeners.push_back(std::move(cl));
    }
    cp.selector.build(hostnames);
    if (cp.protocol != snapshot::Protocol::kHttp)
      cp.l4 = proxy::L4Port::build(port, http::downstreamAlpn(), &cfg->problems);
    cfg->ports.push_back(std::move(cp));
  }
  cfg->rulesCompiled_ = b.compiled;
  for (auto* ws : workers) {
    auto state = std::make_unique<WorkerState>();
    state->swrr.assign(b.swrrSize, 0);
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

int pickWeighted(const CompiledRule& rule, int64_t* current) {
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
