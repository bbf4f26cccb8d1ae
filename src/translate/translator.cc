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

TranslateResult translate(const api::Store& store, const TranslateOptions& options) {
  TranslateResult result;
  Context ctx{store, options, result, {}, {}, {}, {}, {}, {}, {}, {}, {}};
  processGatewayClasses(ctx);
  processGateways(ctx);
  processRoutes(ctx);
  finishGateways(ctx);
  processPolicies(ctx);
  buildSnapshot(ctx);
  return result;
}

}  // namespace archway::translate
