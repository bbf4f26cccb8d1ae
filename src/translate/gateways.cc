// GatewayClass acceptance, Gateway and listener validation, ListenerSet merging, addresses.
#include <algorithm>

#include "translate/internal.h"

namespace archway::translate {

namespace {

std::string str(const api::Json& j, const char* key, std::string def = "") {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

std::string joinErrors(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += (out.empty() ? "" : "; ") + e;
  return out;
}

std::vector<std::string> defaultKinds(const std::string& protocol) {
  if (protocol == "HTTP" || protocol == "HTTPS") return {"HTTPRoute", "GRPCRoute"};
  if (protocol == "TLS") return {"TLSRoute"};
  if (protocol == "TCP") return {"TCPRoute"};
  if (protocol == "UDP") return {"UDPRoute"};
  return {};
}

// Protocol family: listeners of different families cannot share a port.
std::string family(const std::string& protocol) {
  if (protocol == "HTTPS" || protocol == "TLS") return "tls";
  if (protocol == "HTTP") return "http";
  if (protocol == "TCP") return "tcp";
  return "udp";
}

std::optional<std::string> conflictReason(const ListenerInfo& a, const ListenerInfo& b) {
  if (!a.supportedProtocol || !b.supportedProtocol || a.port != b.port) return std::nullopt;
  std::string fa = family(a.protocol), fb = family(b.protocol);
  // UDP and TCP sockets on one port number do not collide.
  if ((fa == "udp") != (fb == "udp")) return std::nullopt;
  if (fa != fb) return "ProtocolConflict";
  if (fa == "tcp" || fa == "udp") return "ProtocolConflict";
  if (a.hostname.value_or("") == b.hostname.value_or("")) return "HostnameConflict";
  return std::nullopt;
}

// Resolves one certificateRef of a listener into `out`; returns a failure reason or "".
std::string resolveCertificate(Context& ctx, const api::Object& owner, const api::Json& ref,
                               std::vector<snapshot::Certificate>& out, std::string* message) {
  std::string group = str(ref, "group"), kind = str(ref, "kind", "Secret");
  std::string name = str(ref, "name"), ns = str(ref, "namespace", owner.ns);
  if (!group.empty() || kind != "Secret") {
    *message = "certificateRef " + group + "/" + kind + " " + name + " is not a core Secret";
    return "InvalidCertificateRef";
  }
  if (!referenceAllowed(ctx.store, kGatewayGroup, owner.kind, owner.ns, "", "Secret", ns, name)) {
    *message =
        "certificateRef to Secret " + ns + "/" + name + " is not permitted by any ReferenceGrant";
    return "RefNotPermitted";
  }
  const api::Object* secret = ctx.store.find("Secret", ns, name);
  if (secret && !secret->validationErrors.empty()) secret = nullptr;  // invalid: not served
  if (!secret) {
    *message = "Secret " + ns + "/" + name + " does not exist or is invalid";
    return "InvalidCertificateRef";
  }
  std::string type = str(secret->body, "type");
  auto crt = secretData(*secret, "tls.crt"), key = secretData(*secret, "tls.key");
  std::string error;
  if (type != "kubernetes.io/tls" || !crt || !key || !validCertificateAndKey(*crt, *key, &error)) {
    *message = "Secret " + ns + "/" + name + " is not a valid kubernetes.io/tls Secret" +
               (error.empty() ? "" : ": " + error);
    return "InvalidCertificateRef";
  }
  out.push_back({*crt, *key, ns, name});
  return "";
}

// Frontend client-certificate validation config that applies to `port`, if any.
const api::Json* frontendValidation(const api::Object& gateway, int port) {
  const api::Json& spec = gateway.spec();
  auto tls = spec.find("tls");
  if (tls == spec.end() || !tls->is_object()) return nullptr;
  auto fe = tls->find("frontend");
  if (fe == tls->end() || !fe->is_object()) return nullptr;
  if (auto pp = fe->find("perPort"); pp != fe->end() && pp->is_array()) {
    for (const auto& e : *pp) {
      if (e.is_object() && intField(e, "port", 0) == port) {
        auto t = e.find("tls");
        if (t != e.end() && t->is_object()) {
          auto v = t->find("validation");
          if (v != t->end() && v->is_object()) return &*v;
        }
      }
    }
  }
  if (auto d = fe->find("default"); d != fe->end() && d->is_object()) {
    auto v = d->find("validation");
    if (v != d->end() && v->is_object()) return &*v;
  }
  return nullptr;
}

void applyFrontendValidation(Context& ctx, const api::Object& gateway, ListenerInfo& l) {
  const api::Json* v = frontendValidation(gateway, l.port);
  if (!v) return;
  auto validation = std::make_shared<snapshot::ClientValidation>();
  validation->allowInsecureFallback = str(*v, "mode") == "AllowInsecureFallback";
  std::string firstReason, firstMessage;
  int valid = 0;
  if (auto refs = v->find("caCertificateRefs"); refs != v->end() && refs->is_array()) {
    for (const auto& ref : *refs) {
      std::string group = str(ref, "group"), kind = str(ref, "kind", "ConfigMap");
      std::string name = str(ref, "name"), ns = str(ref, "namespace", gateway.ns);
      std::string reason, message;
      if (!group.empty() || kind != "ConfigMap") {
        reason = "InvalidCACertificateKind";
        message = "caCertificateRef kind " + kind + " is not supported (ConfigMap only)";
      } else if (!referenceAllowed(ctx.store, kGatewayGroup, "Gateway", gateway.ns, "", "ConfigMap",
                                   ns, name)) {
        reason = "RefNotPermitted";
        message = "caCertificateRef to ConfigMap " + ns + "/" + name +
                  " is not permitted by any ReferenceGrant";
      } else {
        const api::Object* cm = ctx.store.find("ConfigMap", ns, name);
        if (cm && !cm->validationErrors.empty()) cm = nullptr;
        auto ca = cm ? configMapData(*cm, "ca.crt") : std::nullopt;
        if (!ca || !validCaBundle(*ca)) {
          reason = "InvalidCACertificateRef";
          message = "ConfigMap " + ns + "/" + name +
                    (cm ? " has no valid PEM certificate in ca.crt" : " does not exist");
        } else {
          validation->caPem += *ca;
          if (validation->caPem.back() != '\n') validation->caPem += "\n";
          ++valid;
        }
      }
      if (!reason.empty() && firstReason.empty()) {
        firstReason = reason;
        firstMessage = message;
      }
    }
  }
  if (!firstReason.empty()) l.resolvedRefs = {"ResolvedRefs", false, firstReason, firstMessage};
  if (valid == 0) {
    l.accepted = {"Accepted", false, "NoValidCACertificate",
                  "No valid CA certificate for frontend client certificate validation"};
    return;
  }
  l.clientValidation = std::move(validation);
}

ListenerInfo validateListener(Context& ctx, GatewayInfo* gw, ListenerSetInfo* ls,
                              const api::Object& owner, const api::Json& spec) {
  ListenerInfo l;
  l.gateway = gw;
  l.listenerSet = ls;
  l.owner = &owner;
  l.spec = &spec;
  l.name = str(spec, "name");
  l.protocol = str(spec, "protocol");
  l.port = intField(spec, "port", 0);
  if (std::string h = str(spec, "hostname"); !h.empty()) l.hostname = toLower(h);

  static const std::set<std::string> kProtocols = {"HTTP", "HTTPS", "TLS", "TCP", "UDP"};
  if (!kProtocols.count(l.protocol)) {
    l.supportedProtocol = false;
    l.accepted = {"Accepted", false, "UnsupportedProtocol",
                  "Protocol " + l.protocol + " is not supported"};
    return l;
  }
  if (l.protocol == "TCP" || l.protocol == "UDP") l.hostname.reset();  // not used for L4

  // allowedRoutes
  std::vector<std::string> compatible = defaultKinds(l.protocol);
  const api::Json* allowed = nullptr;
  if (auto it = spec.find("allowedRoutes"); it != spec.end() && it->is_object()) allowed = &*it;
  bool invalidKinds = false;
  std::string badKinds;
  if (allowed) {
    if (auto ns = allowed->find("namespaces"); ns != allowed->end() && ns->is_object()) {
      l.from = str(*ns, "from", "Same");
      if (auto sel = ns->find("selector"); sel != ns->end()) l.selector = *sel;
    }
    auto kinds = allowed->find("kinds");
    if (kinds != allowed->end() && kinds->is_array() && !kinds->empty()) {
      for (const auto& k : *kinds) {
        std::string group = str(k, "group", kGatewayGroup), kind = str(k, "kind");
        bool ok = group == kGatewayGroup &&
                  std::find(compatible.begin(), compatible.end(), kind) != compatible.end();
        if (ok) {
          if (std::find(l.kinds.begin(), l.kinds.end(), kind) == l.kinds.end())
            l.kinds.push_back(kind);
        } else {
          invalidKinds = true;
          badKinds += (badKinds.empty() ? "" : ", ") + group + "/" + kind;
        }
      }
    } else {
      l.kinds = compatible;
    }
  } else {
    l.kinds = compatible;
  }
  if (invalidKinds)
    l.resolvedRefs = {"ResolvedRefs", false, "InvalidRouteKinds",
                      "Route kinds not supported on a " + l.protocol + " listener: " + badKinds};

  // TLS
  const api::Json* tls = nullptr;
  if (auto it = spec.find("tls"); it != spec.end() && it->is_object()) tls = &*it;
  std::string mode = tls ? str(*tls, "mode", "Terminate") : "Terminate";
  if (l.protocol == "HTTPS" || l.protocol == "TLS") {
    if (l.protocol == "HTTPS" && mode != "Terminate") {
      l.kinds.clear();
      l.accepted = {"Accepted", false, "UnsupportedValue",
                    "HTTPS listeners support only tls.mode Terminate"};
      return l;
    }
    if (mode == "Passthrough") {
      l.tlsPassthrough = true;
    } else if (mode != "Terminate") {
      l.kinds.clear();
      l.accepted = {"Accepted", false, "UnsupportedValue", "Unsupported tls.mode " + mode};
      return l;
    } else {
      const api::Json* refs = nullptr;
      if (tls) {
        auto it = tls->find("certificateRefs");
        if (it != tls->end() && it->is_array()) refs = &*it;
      }
      if (!refs || refs->empty()) {
        if (l.resolvedRefs.status)
          l.resolvedRefs = {"ResolvedRefs", false, "InvalidCertificateRef",
                            "A Terminate listener needs tls.certificateRefs"};
      } else {
        for (const auto& ref : *refs) {
          std::string message;
          std::string reason = resolveCertificate(ctx, owner, ref, l.certificates, &message);
          if (!reason.empty() && l.resolvedRefs.status)
            l.resolvedRefs = {"ResolvedRefs", false, reason, message};
        }
      }
      if (gw) applyFrontendValidation(ctx, *gw->object, l);
    }
  }
  return l;
}

api::Json listenerStatusJson(const ListenerInfo& l, bool parentProgrammed,
                             const std::string& parentReason, int64_t generation) {
  api::Json kinds = api::Json::array();
  for (const auto& k : l.kinds) kinds.push_back({{"group", kGatewayGroup}, {"kind", k}});
  std::vector<Condition> conds;
  Condition accepted = l.accepted;
  Condition programmed{"Programmed", true, "Programmed", "Listener is programmed"};
  if (l.conflicted) {
    accepted = {"Accepted", false, l.conflicted->reason, l.conflicted->message};
    programmed = {"Programmed", false, l.conflicted->reason, l.conflicted->message};
  } else if (!l.valid()) {
    programmed = {"Programmed", false, "Invalid", "Listener is not valid"};
  } else if (!parentProgrammed) {
    programmed = {"Programmed", false, parentReason.empty() ? "Invalid" : parentReason,
                  "Parent is not programmed"};
  }
  conds.push_back(accepted);
  conds.push_back(programmed);
  conds.push_back(l.resolvedRefs);
  conds.push_back(l.conflicted ? *l.conflicted
                               : Condition{"Conflicted", false, "NoConflicts", "No conflicts"});
  return {{"name", l.name},
          {"supportedKinds", kinds},
          {"attachedRoutes", l.attachedRoutes},
          {"conditions", conditionsJson(conds, generation)}};
}

// Addresses: spec.addresses IPAddress as given; else the pool; else the default address.
void assignAddresses(Context& ctx, GatewayInfo& gw, std::optional<Condition>& acceptedFailure,
                     std::optional<Condition>& programmedFailure) {
  const api::Json& spec = gw.object->spec();
  bool wantsAuto = true;
  if (auto addrs = spec.find("addresses"); addrs != spec.end() && addrs->is_array()) {
    for (const auto& a : *addrs) {
      std::string type = str(a, "type", "IPAddress"), value = str(a, "value");
      if (type != "IPAddress") {
        if (!acceptedFailure)
          acceptedFailure = Condition{"Accepted", false, "UnsupportedAddress",
                                      "Address type " + type + " is not supported"};
        continue;
      }
      if (value.empty()) continue;  // an IPAddress without value: assign one
      wantsAuto = false;            // static addresses given: never fall back to others
      bool usable =
          isIpAddress(value) && (!ctx.options.addressUsable || ctx.options.addressUsable(value));
      if (!usable) {
        if (!programmedFailure)
          programmedFailure = Condition{"Programmed", false, "AddressNotUsable",
                                        "Address " + value + " cannot be used"};
        continue;
      }
      if (std::find(gw.addresses.begin(), gw.addresses.end(), value) == gw.addresses.end())
        gw.addresses.push_back(value);
    }
  }
  if (!wantsAuto) return;
  if (ctx.options.addressPool) {
    if (auto a = addressFromPool(*ctx.options.addressPool, gw.object->ns + "/" + gw.object->name)) {
      gw.addresses.push_back(*a);
      return;
    }
    if (!programmedFailure)
      programmedFailure = Condition{"Programmed", false, "AddressNotAssigned",
                                    "Address pool " + *ctx.options.addressPool + " is invalid"};
    return;
  }
  gw.bindAll = true;
  gw.addresses.push_back(ctx.options.defaultAddress);
}

std::string parametersRefProblem(Context& ctx, const api::Json& ref, const std::string& ns) {
  std::string group = str(ref, "group"), kind = str(ref, "kind"), name = str(ref, "name");
  if (!group.empty() || kind != "ConfigMap")
    return "parametersRef " + group + "/" + kind + " " + name + " is not supported";
  std::string refNs = str(ref, "namespace", ns);
  if (!ctx.store.find("ConfigMap", refNs, name))
    return "parametersRef ConfigMap " + (refNs.empty() ? "" : refNs + "/") + name +
           " does not exist";
  return "";
}

void validateBackendClientCertificate(Context& ctx, GatewayInfo& gw,
                                      std::optional<Condition>& failure) {
  const api::Json& spec = gw.object->spec();
  auto tls = spec.find("tls");
  if (tls == spec.end() || !tls->is_object()) return;
  auto backend = tls->find("backend");
  if (backend == tls->end() || !backend->is_object()) return;
  auto ref = backend->find("clientCertificateRef");
  if (ref == backend->end() || !ref->is_object()) return;
  std::string group = str(*ref, "group"), kind = str(*ref, "kind", "Secret");
  std::string name = str(*ref, "name"), ns = str(*ref, "namespace", gw.object->ns);
  if (!group.empty() || kind != "Secret") {
    failure = Condition{"ResolvedRefs", false, "InvalidClientCertificateRef",
                        "clientCertificateRef " + group + "/" + kind + " is not a core Secret"};
    return;
  }
  if (!referenceAllowed(ctx.store, kGatewayGroup, "Gateway", gw.object->ns, "", "Secret", ns,
                        name)) {
    failure = Condition{"ResolvedRefs", false, "RefNotPermitted",
                        "clientCertificateRef to Secret " + ns + "/" + name +
                            " is not permitted by any ReferenceGrant"};
    return;
  }
  const api::Object* secret = ctx.store.find("Secret", ns, name);
  if (secret && !secret->validationErrors.empty()) secret = nullptr;
  auto crt = secret ? secretData(*secret, "tls.crt") : std::nullopt;
  auto key = secret ? secretData(*secret, "tls.key") : std::nullopt;
  std::string error;
  if (!secret || !crt || !key || !validCertificateAndKey(*crt, *key, &error)) {
    failure = Condition{
        "ResolvedRefs", false, "InvalidClientCertificateRef",
        "Secret " + ns + "/" + name + (secret ? " is not a valid TLS Secret" : " does not exist")};
    return;
  }
  gw.clientCertPem = *crt;
  gw.clientKeyPem = *key;
}

bool insecureFallback(const api::Object& gateway) {
  const api::Json& spec = gateway.spec();
  auto tls = spec.find("tls");
  if (tls == spec.end() || !tls->is_object()) return false;
  auto fe = tls->find("frontend");
  if (fe == tls->end() || !fe->is_object()) return false;
  auto modeOf = [](const api::Json& holder) {
    auto v = holder.find("validation");
    return v != holder.end() && v->is_object() && str(*v, "mode") == "AllowInsecureFallback";
  };
  if (auto d = fe->find("default"); d != fe->end() && d->is_object() && modeOf(*d)) return true;
  if (auto pp = fe->find("perPort"); pp != fe->end() && pp->is_array())
    for (const auto& e : *pp)
      if (e.is_object())
        if (auto t = e.find("tls"); t != e.end() && t->is_object() && modeOf(*t)) return true;
  return false;
}

}  // namespace

// Creation order used for every "oldest first" rule.
bool olderThan(const api::Object* a, const api::Object* b) {
  if (a->creationTimestamp != b->creationTimestamp && !a->creationTimestamp.empty() &&
      !b->creationTimestamp.empty())
    return a->creationTimestamp < b->creationTimestamp;
  if (a->creationOrder != b->creationOrder) return a->creationOrder < b->creationOrder;
  return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
}

void processGatewayClasses(Context& ctx) {
  for (const api::Object* gc : ctx.store.ofKind("GatewayClass")) {
    if (str(gc->spec(), "controllerName") != ctx.options.controllerName) continue;
    ctx.ourClasses.insert(gc->name);
    Condition accepted{"Accepted", true, "Accepted", "GatewayClass is accepted"};
    if (!gc->validationErrors.empty()) {
      accepted = {"Accepted", false, "InvalidParameters", joinErrors(gc->validationErrors)};
    } else if (auto p = gc->spec().find("parametersRef"); p != gc->spec().end() && p->is_object()) {
      std::string problem = parametersRefProblem(ctx, *p, str(*p, "namespace"));
      if (!problem.empty()) accepted = {"Accepted", false, "InvalidParameters", problem};
    }
    std::vector<Condition> conds{
        accepted, {"SupportedVersion", true, "SupportedVersion", "Gateway API version supported"}};
    if (ctx.options.computeStatuses)
      ctx.result.statuses[api::keyOf(*gc)] = {
          {"conditions", conditionsJson(conds, gc->generation)}};
  }
}

void processGateways(Context& ctx) {
  std::vector<const api::Object*> gateways;
  for (const api::Object* g : ctx.store.ofKind("Gateway"))
    if (ctx.ourClasses.count(str(g->spec(), "gatewayClassName"))) gateways.push_back(g);
  for (const api::Object* g : gateways) {
    auto info = std::make_unique<GatewayInfo>();
    info->object = g;
    ctx.gatewayByKey[api::keyOf(*g)] = info.get();
    ctx.gateways.push_back(std::move(info));
  }

  // Listeners of each Gateway; indistinct listeners of one Gateway are all conflicted.
  for (auto& gwp : ctx.gateways) {
    GatewayInfo& gw = *gwp;
    const api::Json& spec = gw.object->spec();
    if (auto ls = spec.find("listeners"); ls != spec.end() && ls->is_array())
      for (const auto& l : *ls)
        gw.listeners.push_back(validateListener(ctx, &gw, nullptr, *gw.object, l));
    for (size_t i = 0; i < gw.listeners.size(); ++i) {
      for (size_t j = 0; j < gw.listeners.size(); ++j) {
        if (i == j) continue;
        if (auto r = conflictReason(gw.listeners[i], gw.listeners[j]);
            r && !gw.listeners[i].conflicted)
          gw.listeners[i].conflicted =
              Condition{"Conflicted", true, *r, "Listener conflicts with " + gw.listeners[j].name};
      }
    }
  }

  // ListenerSets whose parent is one of our Gateways.
  std::vector<const api::Object*> sets = ctx.store.ofKind("ListenerSet");
  std::sort(sets.begin(), sets.end(), olderThan);
  for (const api::Object* s : sets) {
    const api::Json& spec = s->spec();
    auto pr = spec.find("parentRef");
    if (pr == spec.end() || !pr->is_object()) continue;
    if (str(*pr, "group", kGatewayGroup) != kGatewayGroup ||
        str(*pr, "kind", "Gateway") != "Gateway")
      continue;
    auto it = ctx.gatewayByKey.find({"Gateway", str(*pr, "namespace", s->ns), str(*pr, "name")});
    if (it == ctx.gatewayByKey.end()) continue;
    auto info = std::make_unique<ListenerSetInfo>();
    info->object = s;
    info->gateway = it->second;
    const api::Object& gwo = *it->second->object;
    std::string from = "None";
    api::Json selector;
    if (auto al = gwo.spec().find("allowedListeners"); al != gwo.spec().end() && al->is_object())
      if (auto ns = al->find("namespaces"); ns != al->end() && ns->is_object()) {
        from = str(*ns, "from", "None");
        if (auto sel = ns->find("selector"); sel != ns->end()) selector = *sel;
      }
    info->allowed =
        from == "All" || (from == "Same" && s->ns == gwo.ns) ||
        (from == "Selector" && labelSelectorMatches(selector, namespaceLabels(ctx.store, s->ns)));
    if (auto ls = spec.find("listeners"); ls != spec.end() && ls->is_array())
      for (const auto& l : *ls)
        info->listeners.push_back(validateListener(ctx, it->second, info.get(), *s, l));
    ctx.listenerSetByKey[api::keyOf(*s)] = info.get();
    ctx.listenerSets.push_back(std::move(info));
  }
  // Merge: the Gateway's own listeners win, then ListenerSets oldest first.
  for (auto& lsp : ctx.listenerSets) {
    ListenerSetInfo& ls = *lsp;
    if (!ls.allowed || !ls.object->validationErrors.empty()) continue;
    GatewayInfo& gw = *ls.gateway;
    for (auto& l : ls.listeners) {
      auto check = [&](const ListenerInfo& other) {
        if (l.conflicted || other.conflicted) return;
        if (auto r = conflictReason(l, other))
          l.conflicted = Condition{"Conflicted", true, *r,
                                   "Listener conflicts with " + other.owner->kind + " " +
                                       other.owner->name + " listener " + other.name};
      };
      for (const auto& other : gw.listeners) check(other);
      for (ListenerSetInfo* prev : gw.listenerSets)
        for (const auto& other : prev->listeners) check(other);
      for (const auto& other : ls.listeners) {
        if (&other == &l) break;
        check(other);
      }
    }
    ls.accepted = std::any_of(ls.listeners.begin(), ls.listeners.end(),
                              [](const ListenerInfo& l) { return l.valid(); });
    if (ls.accepted) gw.listenerSets.push_back(&ls);
  }

  // Gateway-level acceptance (statuses are written after routes count attachments).
  for (auto& gwp : ctx.gateways) {
    GatewayInfo& gw = *gwp;
    std::optional<Condition> acceptedFailure, programmedFailure, refsFailure;
    if (!gw.object->validationErrors.empty())
      acceptedFailure =
          Condition{"Accepted", false, "Invalid", joinErrors(gw.object->validationErrors)};
    assignAddresses(ctx, gw, acceptedFailure, programmedFailure);
    if (auto infra = gw.object->spec().find("infrastructure");
        infra != gw.object->spec().end() && infra->is_object())
      if (auto p = infra->find("parametersRef"); p != infra->end() && p->is_object()) {
        std::string problem = parametersRefProblem(ctx, *p, gw.object->ns);
        if (!problem.empty() && !acceptedFailure)
          acceptedFailure = Condition{"Accepted", false, "InvalidParameters", problem};
      }
    validateBackendClientCertificate(ctx, gw, refsFailure);
    size_t valid = std::count_if(gw.listeners.begin(), gw.listeners.end(),
                                 [](const ListenerInfo& l) { return l.valid(); });
    Condition accepted{"Accepted", true, "Accepted", "Gateway is accepted"};
    if (acceptedFailure) {
      accepted = *acceptedFailure;
    } else if (valid < gw.listeners.size()) {
      accepted = {"Accepted", valid > 0 || gw.listeners.empty(), "ListenersNotValid",
                  "Some listeners are not valid"};
    }
    gw.accepted = accepted.status;
    // Routes cannot attach to a Gateway rejected as a whole (not merely for its listeners).
    gw.rejected = acceptedFailure.has_value();
    Condition programmed{"Programmed", true, "Programmed", "Gateway is programmed"};
    if (!gw.accepted)
      programmed = {"Programmed", false, "Invalid", "Gateway is not accepted"};
    else if (programmedFailure)
      programmed = *programmedFailure;
    Condition resolved{"ResolvedRefs", true, "ResolvedRefs", "All references are resolved"};
    if (refsFailure) {
      resolved = *refsFailure;
    } else if (std::any_of(gw.listeners.begin(), gw.listeners.end(),
                           [](const ListenerInfo& l) { return !l.resolvedRefs.status; })) {
      resolved = {"ResolvedRefs", false, "ListenersNotResolved",
                  "Some listeners have unresolved references"};
    }
    if (!accepted.status || !programmed.status)
      ctx.diag(*gw.object, "spec",
               (accepted.status ? programmed.reason + ": " + programmed.message
                                : accepted.reason + ": " + accepted.message));
    for (size_t i = 0; i < gw.listeners.size(); ++i) {
      const ListenerInfo& l = gw.listeners[i];
      if (l.valid()) continue;
      const Condition& c = l.conflicted         ? *l.conflicted
                           : !l.accepted.status ? l.accepted
                                                : l.resolvedRefs;
      ctx.diag(*gw.object, "spec.listeners[" + std::to_string(i) + "]",
               "listener " + l.name + ": " + c.reason + ": " + c.message);
    }
    std::vector<Condition> conds{accepted, programmed, resolved};
    if (insecureFallback(*gw.object))
      conds.push_back({"InsecureFrontendValidationMode", true, "ConfigurationChanged",
                       "Frontend client certificate validation allows insecure fallback"});
    api::Json addresses = api::Json::array();
    for (const auto& a : gw.addresses) addresses.push_back({{"type", "IPAddress"}, {"value", a}});
    gw.status = {{"addresses", addresses},
                 {"conditions", conditionsJson(conds, gw.object->generation)},
                 {"programmed", programmed.status},
                 {"programmedReason", programmed.reason}};
  }
}

void finishGateways(Context& ctx) {
  for (auto& gwp : ctx.gateways) {
    GatewayInfo& gw = *gwp;
    bool programmed = gw.status["programmed"].get<bool>();
    std::string reason = gw.status["programmedReason"].get<std::string>();
    gw.status.erase("programmed");
    gw.status.erase("programmedReason");
    api::Json listeners = api::Json::array();
    for (const auto& l : gw.listeners)
      listeners.push_back(listenerStatusJson(l, programmed, reason, gw.object->generation));
    gw.status["listeners"] = listeners;
    gw.status["attachedListenerSets"] = static_cast<int>(gw.listenerSets.size());
    if (ctx.options.computeStatuses) ctx.result.statuses[api::keyOf(*gw.object)] = gw.status;
  }
  for (auto& lsp : ctx.listenerSets) {
    ListenerSetInfo& ls = *lsp;
    const api::Object& o = *ls.object;
    Condition accepted{"Accepted", true, "Accepted", "ListenerSet is accepted"};
    Condition programmed{"Programmed", true, "Programmed", "ListenerSet is programmed"};
    if (!o.validationErrors.empty()) {
      accepted = {"Accepted", false, "Invalid", joinErrors(o.validationErrors)};
      programmed = {"Programmed", false, "Invalid", accepted.message};
    } else if (!ls.allowed) {
      accepted = {"Accepted", false, "NotAllowed",
                  "The parent Gateway's allowedListeners does not allow this ListenerSet"};
      programmed = {"Programmed", false, "NotAllowed", accepted.message};
    } else if (!ls.gateway->accepted) {
      accepted = {"Accepted", false, "ParentNotAccepted", "The parent Gateway is not accepted"};
      programmed = {"Programmed", false, "ParentNotAccepted", accepted.message};
    } else if (!ls.accepted) {
      accepted = {"Accepted", false, "ListenersNotValid", "No listener is valid"};
      programmed = {"Programmed", false, "ListenersNotValid", accepted.message};
    }
    bool lsProgrammed = programmed.status;
    api::Json listeners = api::Json::array();
    for (const auto& l : ls.listeners)
      listeners.push_back(listenerStatusJson(l, lsProgrammed, programmed.reason, o.generation));
    if (ctx.options.computeStatuses)
      ctx.result.statuses[api::keyOf(o)] = {
          {"conditions", conditionsJson({accepted, programmed}, o.generation)},
          {"listeners", listeners}};
  }
}

}  // namespace archway::translate
