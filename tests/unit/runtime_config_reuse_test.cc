// RuntimeConfig::compile with the previous configuration (reusing the compiled rules of the
// routes a change did not touch) against a compile from scratch of the same snapshot: after
// each of a series of random route adds, edits and deletes (and a Service change, after
// which nothing can be reused) both must describe the same configuration.
#include <gtest/gtest.h>

#include <random>

#include "api/loader.h"
#include "api/validation.h"
#include "runtime/config.h"
#include "stats/stats.h"
#include "translate/translator.h"

namespace archway::runtime {
namespace {

std::string route(int i, int variant) {
  std::string name = "r" + std::to_string(i);
  std::string path = "/p" + std::to_string(i) + "-" + std::to_string(variant);
  std::string text =
      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " + name +
      ", namespace: ns}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n";
  text += "  - matches: [{path: {type: PathPrefix, value: " + path + "}}]\n";
  switch ((i + variant) % 4) {
    case 0:  // two weighted backends
      text += "    backendRefs: [{name: a, port: 80, weight: 3}, {name: b, port: 80}]\n";
      break;
    case 1:  // a mirror to the other Service
      text +=
          "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: b, port: "
          "80}}}]\n    backendRefs: [{name: a, port: 80}]\n";
      break;
    case 2:  // an ExtensionRef no plugin serves (a problem message)
      text +=
          "    filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Nope, "
          "name: x}}]\n    backendRefs: [{name: b, port: 80}]\n";
      break;
    default:  // a backend that does not exist (index -1)
      text += "    backendRefs: [{name: missing, port: 80}]\n";
      break;
  }
  return text;
}

std::string base(int servicePort) {
  return R"(apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: archway}
spec: {controllerName: archway.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns}
spec:
  gatewayClassName: archway
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: ns}
spec: {ports: [{port: )" +
         std::to_string(servicePort) + "}]}\n";
}

// What the data plane reads from a configuration, with rules and backends by content and
// index (pointers into the shared snapshot are compared as pointers).
std::string describe(const RuntimeConfig& c) {
  std::string out;
  for (const auto& b : c.backends) out += "backend " + b->id + "\n";
  for (size_t i = 0; i < c.rules.size(); ++i) {
    const CompiledRule& r = *c.rules[i];
    out += "rule " + std::to_string(i) + " of " + r.rule->routeName + "#" +
           std::to_string(r.rule->ruleIndex) + " swrr@" + std::to_string(c.swrrOffset[i]) +
           " weight " + std::to_string(r.totalWeight) + "\n";
    auto filters = [&](const std::vector<CompiledFilter>& fs,
                       const std::vector<snapshot::HttpFilter>& src) {
      EXPECT_EQ(fs.size(), src.size());
      for (size_t k = 0; k < fs.size() && k < src.size(); ++k) {
        EXPECT_EQ(fs[k].filter, &src[k]);
        out += "  filter mirror=" + std::to_string(fs[k].mirrorBackend) +
               " plugin=" + (fs[k].plugin ? "yes" : "no") + " error=" + fs[k].error + "\n";
      }
    };
    filters(r.filters, r.rule->filters);
    EXPECT_EQ(r.backends.size(), r.rule->backends.size());
    for (size_t k = 0; k < r.backends.size(); ++k) {
      EXPECT_EQ(r.backends[k].ref, &r.rule->backends[k]);
      out += "  ref backend=" + std::to_string(r.backends[k].backend) + "\n";
      if (r.backends[k].backend >= 0) {
        EXPECT_EQ(c.backends[static_cast<size_t>(r.backends[k].backend)],
                  r.rule->backends[k].backend);
      }
      filters(r.backends[k].filters, r.rule->backends[k].filters);
    }
  }
  for (const auto& p : c.ports)
    for (const auto& l : p.listeners) {
      out += "listener " + l.statsKey + "\n";
      EXPECT_EQ(l.entryRule.size(), l.listener->httpRoutes.size());
      for (size_t e = 0; e < l.entryRule.size(); ++e) {
        EXPECT_EQ(c.rules[l.entryRule[e]]->rule, l.listener->httpRoutes[e].rule.get());
        out += " " + std::to_string(l.entryRule[e]);
      }
      out += "\n";
    }
  for (const auto& p : c.problems) out += "problem " + p + "\n";
  return out;
}

TEST(RuntimeConfigReuse, CompileWithPreviousMatchesCompileFromScratch) {
  std::mt19937 rng(7);
  constexpr int kRoutes = 40;
  std::vector<int> variant(kRoutes, 0);
  std::vector<bool> present(kRoutes, true);
  int servicePort = 80;
  translate::Translator translator;
  translate::TranslateOptions options;
  options.computeStatuses = false;
  stats::WorkerStats w1, w2;
  std::vector<stats::WorkerStats*> workers{&w1, &w2};
  std::shared_ptr<const RuntimeConfig> previous;
  api::Store live;
  size_t reused = 0, derived = 0;
  for (int step = 0; step < 60; ++step) {
    if (step > 0) {
      int i = static_cast<int>(rng() % kRoutes);
      switch (rng() % 8) {
        case 0:
          present[static_cast<size_t>(i)] = !present[static_cast<size_t>(i)];
          break;
        case 1:
          servicePort = servicePort == 80 ? 81 : 80;
          break;  // the context changes
        case 2:
          break;  // nothing changes
        default:
          ++variant[static_cast<size_t>(i)];
          break;
      }
    }
    std::string text = base(servicePort);
    for (int i = 0; i < kRoutes; ++i)
      if (present[static_cast<size_t>(i)]) text += route(i, variant[static_cast<size_t>(i)]);
    api::LoadResult loaded = api::decodeText(text, "routes.yaml");
    ASSERT_FALSE(loaded.inputError);
    api::validateAll(loaded);
    api::Store store;
    for (auto& o : loaded.objects) store.put(std::move(o));
    // As a source does: only objects that changed are put again (a new revision), so the
    // Translator reuses the others and their HttpRules are shared with the last snapshot.
    for (const auto& [key, o] : store.all()) {
      const api::Object* old = live.find(key.kind, key.ns, key.name);
      if (!old || old->body != o.body) live.put(o);
    }
    std::vector<api::ObjectKey> gone;
    for (const auto& [key, o] : live.all())
      if (!store.find(key.kind, key.ns, key.name)) gone.push_back(key);
    for (const auto& key : gone) live.erase(key);

    translate::TranslateResult result = translator.translate(live, options);
    ASSERT_TRUE(result.snapshot);
    auto incremental = RuntimeConfig::compile(result.snapshot, workers, previous.get());
    auto scratch = RuntimeConfig::compile(result.snapshot, workers, nullptr);
    SCOPED_TRACE("step " + std::to_string(step));
    EXPECT_EQ(describe(*incremental), describe(*scratch));
    EXPECT_EQ(scratch->rulesCompiled(), scratch->rules.size());
    reused += incremental->rules.size() - incremental->rulesCompiled();
    ASSERT_EQ(incremental->worker(0).swrr.size(), scratch->worker(0).swrr.size());
    // Route tables derived from the previous configuration's answer as fresh ones.
    ASSERT_EQ(incremental->ports.size(), scratch->ports.size());
    for (size_t p = 0; p < scratch->ports.size(); ++p) {
      ASSERT_EQ(incremental->ports[p].listeners.size(), scratch->ports[p].listeners.size());
      for (size_t l = 0; l < scratch->ports[p].listeners.size(); ++l) {
        const router::RouteTable& a = incremental->ports[p].listeners[l].routes;
        const router::RouteTable& b = scratch->ports[p].listeners[l].routes;
        if (a.entriesIndexed() < a.size()) ++derived;
        for (int i = 0; i < kRoutes; ++i) {
          for (int v = 0; v <= variant[static_cast<size_t>(i)]; ++v) {
            http::RequestHead r;
            r.method = "GET";
            r.path = "/p" + std::to_string(i) + "-" + std::to_string(v) + "/x";
            EXPECT_EQ(a.match("h", r), b.match("h", r)) << r.path;
          }
        }
      }
    }
    previous = incremental;
    if (HasFailure()) return;
  }
  EXPECT_GT(reused, 500u);  // the comparison is about reuse: it must happen
  EXPECT_GT(derived, 20u);  // and about route tables derived from the previous ones
}

}  // namespace
}  // namespace archway::runtime
