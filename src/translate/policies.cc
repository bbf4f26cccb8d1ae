// BackendTLSPolicy: targets, CA resolution, conflicts (oldest wins, then namespace/name),
// and status.ancestors = the Gateways whose accepted routes use the targeted Service.
#include <algorithm>

#include "translate/internal.h"

namespace archway::translate {

namespace {

std::string str(const api::Json& j, const char* key, std::string def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

const api::Json& arr(const api::Json& j, const char* key) {
  static const api::Json kEmpty = api::Json::array();
  if (!j.is_object()) return kEmpty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

}  // namespace

void processPolicies(Context& ctx) {
  std::vector<const api::Object*> policies;
  for (const api::Object* p : ctx.store.ofKind("BackendTLSPolicy"))
    if (p->group() == kGatewayGroup) policies.push_back(p);
  std::sort(policies.begin(), policies.end(), olderThan);

  std::set<std::string> claimed;  // "ns/service[:section]" already owned by an older policy
  for (const api::Object* policy : policies) {
    const api::Json& spec = policy->spec();
    const api::Json& validation = spec.contains("validation") && spec["validation"].is_object()
                                      ? spec["validation"]
                                      : api::Json::object();
    // Targets and the Gateways that use them.
    std::vector<std::string> targets;
    std::set<GatewayInfo*> ancestors;
    bool targetFound = false;
    for (const auto& t : arr(spec, "targetRefs")) {
      if (!str(t, "group").empty() || str(t, "kind") != "Service") continue;
      std::string name = str(t, "name");
      if (!ctx.store.find("Service", policy->ns, name)) continue;
      targetFound = true;
      std::string section = str(t, "sectionName");
      targets.push_back(policy->ns + "/" + name + (section.empty() ? "" : ":" + section));
      if (auto u = ctx.serviceUsers.find(policy->ns + "/" + name); u != ctx.serviceUsers.end())
        ancestors.insert(u->second.begin(), u->second.end());
    }

    auto tls = std::make_shared<snapshot::BackendTls>();
    tls->sni = str(validation, "hostname");
    Condition accepted{"Accepted", true, "Accepted", "Policy is accepted"};
    Condition resolved{"ResolvedRefs", true, "ResolvedRefs", "All references are resolved"};
    int validCas = 0;
    for (const auto& ref : arr(validation, "caCertificateRefs")) {
      std::string group = str(ref, "group"), kind = str(ref, "kind"), name = str(ref, "name");
      if (!group.empty() || kind != "ConfigMap") {
        if (resolved.status)
          resolved = {"ResolvedRefs", false, "InvalidKind",
                      "caCertificateRef kind " + kind + " is not supported (ConfigMap only)"};
        continue;
      }
      const api::Object* cm = ctx.store.find("ConfigMap", policy->ns, name);
      if (cm && !cm->validationErrors.empty()) cm = nullptr;
      auto ca = cm ? configMapData(*cm, "ca.crt") : std::nullopt;
      if (!ca || !validCaBundle(*ca)) {
        if (resolved.status)
          resolved = {"ResolvedRefs", false, "InvalidCACertificateRef",
                      "ConfigMap " + policy->ns + "/" + name +
                          (cm ? " has no valid PEM certificate in ca.crt" : " does not exist")};
        continue;
      }
      tls->caPem += *ca;
      if (tls->caPem.back() != '\n') tls->caPem += "\n";
      ++validCas;
    }
    tls->useSystemCas = str(validation, "wellKnownCACertificates") == "System";
    for (const auto& san : arr(validation, "subjectAltNames")) {
      std::string type = str(san, "type");
      if (type == "Hostname") tls->subjectAltNames.push_back("DNS:" + str(san, "hostname"));
      if (type == "URI") tls->subjectAltNames.push_back("URI:" + str(san, "uri"));
    }
    if (!policy->validationErrors.empty()) {
      std::string msg;
      for (const auto& e : policy->validationErrors) msg += (msg.empty() ? "" : "; ") + e;
      accepted = {"Accepted", false, "Invalid", msg};
    } else if (!targetFound) {
      accepted = {"Accepted", false, "TargetNotFound", "No targeted Service exists"};
    } else if (validCas == 0 && !tls->useSystemCas) {
      accepted = {"Accepted", false, "NoValidCACertificate", "No valid CA certificate"};
    }
    tls->invalid = !accepted.status;
    // Conflicts: a target already claimed by an older policy.
    bool conflicted = false;
    for (const auto& t : targets)
      if (claimed.count(t)) conflicted = true;
    if (conflicted && accepted.status) {
      accepted = {"Accepted", false, "Conflicted",
                  "An older BackendTLSPolicy targets the same Service and section"};
    } else {
      for (const auto& t : targets) {
        claimed.insert(t);
        ctx.backendTls[t] = tls;
      }
    }

    std::vector<GatewayInfo*> sorted(ancestors.begin(), ancestors.end());
    std::sort(sorted.begin(), sorted.end(), [](GatewayInfo* a, GatewayInfo* b) {
      return std::tie(a->object->ns, a->object->name) < std::tie(b->object->ns, b->object->name);
    });
    if (sorted.empty()) continue;  // no Gateway of ours uses it: nothing to report
    api::Json list = api::Json::array();
    for (GatewayInfo* gw : sorted)
      list.push_back({{"ancestorRef",
                       {{"group", kGatewayGroup},
                        {"kind", "Gateway"},
                        {"namespace", gw->object->ns},
                        {"name", gw->object->name}}},
                      {"controllerName", ctx.options.controllerName},
                      {"conditions", conditionsJson({accepted, resolved}, policy->generation)}});
    // Keep ancestors reported by other controllers.
    api::Json merged = api::Json::array();
    if (auto st = policy->body.find("status"); st != policy->body.end() && st->is_object())
      for (const auto& a : arr(*st, "ancestors"))
        if (str(a, "controllerName") != ctx.options.controllerName) merged.push_back(a);
    for (auto& a : list) merged.push_back(std::move(a));
    if (ctx.options.computeStatuses)
      ctx.result.statuses[api::keyOf(*policy)] = {{"ancestors", merged}};
  }
}

}  // namespace archway::translate
