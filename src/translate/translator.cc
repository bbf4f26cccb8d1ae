// translate(): runs the steps of internal.h in order over one store (DESIGN §1).
#include "translate/translator.h"

#include "translate/internal.h"

namespace archway::translate {

void Context::diag(const api::Object& o, std::string_view field, const std::string& message) {
  api::Diagnostic d;
  d.severity = api::Diagnostic::Severity::kWarning;
  d.location = o.locationOf(field);
  d.message = o.displayName() + ": " + (field.empty() ? "" : std::string(field) + ": ") + message;
  result.diagnostics.push_back(std::move(d));
}

bool referenceAllowed(const api::Store& store, std::string_view fromGroup,
                      std::string_view fromKind, std::string_view fromNs, std::string_view toGroup,
                      std::string_view toKind, std::string_view toNs, std::string_view toName) {
  if (fromNs == toNs) return true;
  for (const api::Object* grant : store.ofKind("ReferenceGrant")) {
    if (grant->ns != toNs || !grant->validationErrors.empty()) continue;
    const api::Json& spec = grant->spec();
    bool fromOk = false;
    if (auto f = spec.find("from"); f != spec.end() && f->is_array()) {
      for (const auto& e : *f) {
        if (!e.is_object()) continue;
        if (stringField(e, "group") == fromGroup && stringField(e, "kind") == fromKind &&
            stringField(e, "namespace") == fromNs)
          fromOk = true;
      }
    }
    if (!fromOk) continue;
    if (auto t = spec.find("to"); t != spec.end() && t->is_array()) {
      for (const auto& e : *t) {
        if (!e.is_object()) continue;
        if (stringField(e, "group") != toGroup || stringField(e, "kind") != toKind) continue;
        std::string name = stringField(e, "name");
        if (name.empty() || name == toName) return true;
      }
    }
  }
  return false;
}

std::map<std::string, std::string> namespaceLabels(const api::Store& store, std::string_view ns) {
  std::map<std::string, std::string> labels;
  if (const api::Object* o = store.find("Namespace", "", ns)) {
    const api::Json& md = o->metadata();
    if (auto it = md.find("labels"); it != md.end() && it->is_object())
      for (const auto& [k, v] : it->items())
        if (v.is_string()) labels[k] = v.get<std::string>();
  }
  labels["kubernetes.io/metadata.name"] = std::string(ns);
  return labels;
}

std::optional<std::string> secretData(const api::Object& secret, std::string_view key) {
  const api::Json& body = secret.body;
  if (auto d = body.find("data"); d != body.end() && d->is_object()) {
    auto v = d->find(std::string(key));
    if (v != d->end() && v->is_string()) return base64Decode(v->get<std::string>());
  }
  if (auto d = body.find("stringData"); d != body.end() && d->is_object()) {
    auto v = d->find(std::string(key));
    if (v != d->end() && v->is_string()) return v->get<std::string>();
  }
  return std::nullopt;
}

std::optional<std::string> configMapData(const api::Object& cm, std::string_view key) {
  const api::Json& body = cm.body;
  if (auto d = body.find("data"); d != body.end() && d->is_object()) {
    auto v = d->find(std::string(key));
    if (v != d->end() && v->is_string()) return v->get<std::string>();
  }
  return std::nullopt;
}

api::Json conditionsJson(const std::vector<Condition>& conditions, int64_t generation) {
  api::Json out = api::Json::array();
  for (const auto& c : conditions) {
    out.push_back({{"type", c.type},
                   {"status", c.status ? "True" : "False"},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"observedGeneration", generation},
                   {"lastTransitionTime", kTransitionTime}});
  }
  return out;
}

namespace {

// Largest message of the condition reporting a rejected change (metav1.Condition allows
// 32768 bytes; a shorter one keeps status readable, the log has every error).
constexpr size_t kMaxRejectedMessage = 4096;

std::string rejectedMessage(const api::Object& o, const api::RejectedChange& rc) {
  std::string what =
      rc.generation > 0 ? "generation " + std::to_string(rc.generation) : "the version";
  if (!rc.location.file.empty()) what += " at " + rc.location.format();
  std::string msg = "Fall Back: " + what + " is invalid and was not applied (";
  for (size_t i = 0; i < rc.errors.size(); ++i) msg += (i ? "; " : "") + rc.errors[i];
  msg += "); generation " + std::to_string(o.generation) + " is still served";
  if (msg.size() > kMaxRejectedMessage) msg = msg.substr(0, kMaxRejectedMessage - 3) + "...";
  return msg;
}

bool acceptedTrue(const api::Json& conditions) {
  for (const auto& c : conditions)
    if (c.value("type", "") == "Accepted") return c.value("status", "") == "True";
  return false;
}

// An object kept at its last valid version (a newer version failed validation) says so in
// its status. Routes use the spec's PartiallyInvalid "Fall Back" form on every parent that
// accepted them (Accepted stays True at the served generation); other kinds, and parents
// that did not accept the route, get the implementation-specific kRejectedChangeCondition.
void reportRejectedChanges(Context& ctx) {
  for (const auto& [key, o] : ctx.store.all()) {
    if (!o.rejectedChange) continue;
    auto st = ctx.result.statuses.find(key);
    if (st == ctx.result.statuses.end()) continue;  // a kind without status (Service, ...)
    std::string msg = rejectedMessage(o, *o.rejectedChange);
    const int64_t generation = o.generation;  // clang 14 cannot capture structured bindings
    auto add = [&](api::Json& conditions, bool route) {
      if (!conditions.is_array()) return;
      bool fallBack = route && acceptedTrue(conditions);
      Condition c{fallBack ? "PartiallyInvalid" : kRejectedChangeCondition, true,
                  fallBack ? "UnsupportedValue" : "Invalid", msg};
      conditions.push_back(conditionsJson({c}, generation)[0]);
    };
    api::Json& status = st->second;
    if (auto it = status.find("conditions"); it != status.end()) add(*it, false);
    for (const char* list : {"parents", "ancestors"}) {
      auto it = status.find(list);
      if (it == status.end() || !it->is_array()) continue;
      for (auto& entry : *it)
        if (entry.is_object() && entry.contains("conditions"))
          add(entry["conditions"], std::string_view(list) == "parents");
    }
  }
}

void indexListeners(Context& ctx) {
  uint32_t gateways = static_cast<uint32_t>(ctx.gateways.size());
  for (uint32_t i = 0; i < gateways; ++i) ctx.indexOf[ctx.gateways[i].get()] = i;
  auto add = [&](ListenerInfo& l) {
    ctx.indexOf[&l] = static_cast<uint32_t>(ctx.allListeners.size());
    ctx.allListeners.push_back(&l);
  };
  for (auto& gw : ctx.gateways)
    for (auto& l : gw->listeners) add(l);
  for (auto& ls : ctx.listenerSets)
    for (auto& l : ls->listeners) add(l);
}

std::string conditionDigest(const Condition& c) {
  return c.type + (c.status ? "+" : "-") + c.reason + "\n" + c.message + "\n";
}

// Everything routes are translated against that is not an object's revision: the options
// and the state derived from Gateways and ListenerSets (addressUsable is a function).
std::string derivedDigest(const Context& ctx) {
  const TranslateOptions& o = ctx.options;
  std::string d = o.controllerName + "\n" + (o.computeStatuses ? "statuses\n" : "-\n") +
                  o.addressPool.value_or("-") + "\n" + o.defaultAddress + "\n";
  auto listener = [&](const ListenerInfo& l) {
    d += l.name + "\n" + std::to_string(l.port) + l.protocol + "\n" + l.hostname.value_or("*") +
         "\n" + conditionDigest(l.accepted) + conditionDigest(l.resolvedRefs) +
         (l.conflicted ? conditionDigest(*l.conflicted) : "-\n") + l.programmedFalseReason + "\n";
  };
  for (const auto& gw : ctx.gateways) {
    d += gw->object->ns + "/" + gw->object->name + (gw->accepted ? "+" : "-") +
         (gw->rejected ? "+" : "-") + (gw->bindAll ? "+" : "-") + "\n";
    for (const auto& a : gw->addresses) d += a + ",";
    d += gw->status.dump() + "\n";
    for (const auto& l : gw->listeners) listener(l);
  }
  for (const auto& ls : ctx.listenerSets) {
    d += ls->object->ns + "/" + ls->object->name + (ls->allowed ? "+" : "-") +
         (ls->accepted ? "+" : "-") + "\n";
    for (const auto& l : ls->listeners) listener(l);
  }
  return d;
}

// Drops every record when anything but a route changed since the last translation.
void checkContext(Context& ctx, TranslationCache& cache) {
  bool same = true;
  size_t i = 0;
  std::vector<std::pair<api::ObjectKey, uint64_t>> current;
  for (const auto& [key, o] : ctx.store.all()) {
    if (isRouteKind(o)) continue;
    if (same && i < cache.objects.size() && cache.objects[i].second == o.revision &&
        o.revision != 0 && cache.objects[i].first == key) {
      ++i;
      continue;
    }
    if (same) {
      same = false;
      current.assign(cache.objects.begin(), cache.objects.begin() + static_cast<long>(i));
    }
    current.emplace_back(key, o.revision);
  }
  if (same && i != cache.objects.size()) {
    same = false;
    current.assign(cache.objects.begin(), cache.objects.begin() + static_cast<long>(i));
  }
  if (!same) cache.objects = std::move(current);
  std::string derived = derivedDigest(ctx);
  if (derived != cache.derived) {
    same = false;
    cache.derived = std::move(derived);
  }
  if (same) return;
  cache.routes.clear();
  cache.httpOrder.clear();
  cache.backends.clear();
  ++cache.counters.contextChanges;
}

TranslateResult run(const api::Store& store, const TranslateOptions& options,
                    TranslationCache* cache) {
  TranslateResult result;
  Context ctx{store, options, result, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, cache, {}, {}};
  processGatewayClasses(ctx);
  processGateways(ctx);
  indexListeners(ctx);
  if (cache) {
    ++cache->epoch;
    checkContext(ctx, *cache);
    cache->next.clear();
  }
  processRoutes(ctx);
  finishGateways(ctx);
  processPolicies(ctx);
  buildSnapshot(ctx);
  reportRejectedChanges(ctx);
  if (cache) {
    // Records of routes that are gone are dropped; the others are this translation's.
    cache->routes.swap(cache->next);
    cache->next.clear();
    ++cache->counters.translations;
  }
  return result;
}

}  // namespace

TranslateResult translate(const api::Store& store, const TranslateOptions& options) {
  return run(store, options, nullptr);
}

Translator::Translator() : cache_(std::make_unique<TranslationCache>()) {}
Translator::~Translator() = default;

TranslateResult Translator::translate(const api::Store& store, const TranslateOptions& options) {
  return run(store, options, cache_.get());
}

const Translator::Counters& Translator::counters() const { return cache_->counters; }

}  // namespace archway::translate
