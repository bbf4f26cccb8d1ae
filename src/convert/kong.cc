// Kong provider: konghq.com/* annotations on Ingresses and Services, KongIngress overrides,
// TCPIngress/UDPIngress, and KongPlugin/KongClusterPlugin kept for ExtensionRef filters.
#include <algorithm>
#include <map>
#include <set>

#include "convert/model.h"

namespace archway::convert {
namespace {

constexpr const char* kPrefix = "konghq.com/";
const std::set<std::string> kMethods = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
const std::set<std::string> kProtocols = {"http", "https", "grpc", "grpcs",           "ws",
                                          "wss",  "tls",   "tcp",  "tls_passthrough", "udp"};
const std::set<std::string> kServiceKeys = {"path",
                                            "protocol",
                                            "connect-timeout",
                                            "read-timeout",
                                            "write-timeout",
                                            "retries",
                                            "host-header",
                                            "client-cert",
                                            "tls-verify",
                                            "tls-verify-depth",
                                            "ca-certificates-secrets",
                                            "ca-certificates-configmaps",
                                            "upstream-policy"};

// One effective setting: from an annotation or from a KongIngress field.
struct Setting {
  std::string value;
  std::string field;  // what the report names
  const api::Object* source = nullptr;
};
using Settings = std::map<std::string, Setting>;

std::string joinStrings(const Json& arr, const std::string& sep = ",") {
  std::string out;
  for (const auto& v : arr) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

std::string scalar(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

void addAnnotations(const api::Object& o, Settings& s) {
  const Json& a = o.metadata().value("annotations", Json::object());
  if (!a.is_object()) return;
  for (auto it = a.begin(); it != a.end(); ++it)
    if (it.key().rfind(kPrefix, 0) == 0)
      s[it.key().substr(std::string(kPrefix).size())] = {scalar(it.value()), annField(it.key()),
                                                         &o};
}

const api::Object* kongIngressFor(const api::Object& o, Context& ctx) {
  std::string name = annotation(o, "konghq.com/override");
  if (name.empty()) return nullptr;
  const api::Object* ki = ctx.find("KongIngress", o.ns, name);
  if (!ki)
    ctx.report(o, annField("konghq.com/override"), Outcome::kUnconvertible,
               "KongIngress " + o.ns + "/" + name + " is not in the input");
  return ki;
}

// KongIngress route.* fields override the Ingress annotations, as in KIC.
void addKongIngressRoute(const api::Object& ki, Settings& s, Context& ctx) {
  const Json& route = ki.body.value("route", Json::object());
  auto set = [&](const std::string& key, const std::string& value, const std::string& f) {
    s[key] = {value, "route." + f, &ki};
  };
  for (auto it = route.begin(); it != route.end(); ++it) {
    const std::string& k = it.key();
    const Json& v = it.value();
    if (k == "methods")
      set("methods", joinStrings(v), k);
    else if (k == "protocols")
      set("protocols", joinStrings(v), k);
    else if (k == "strip_path")
      set("strip-path", scalar(v), k);
    else if (k == "preserve_host")
      set("preserve-host", scalar(v), k);
    else if (k == "https_redirect_status_code")
      set("https-redirect-status-code", scalar(v), k);
    else if (k == "regex_priority")
      set("regex-priority", scalar(v), k);
    else if (k == "path_handling")
      set("path-handling", scalar(v), k);
    else if (k == "snis")
      set("snis", joinStrings(v), k);
    else if (k == "request_buffering")
      set("request-buffering", scalar(v), k);
    else if (k == "response_buffering")
      set("response-buffering", scalar(v), k);
    else if (k == "headers" && v.is_object()) {
      for (auto h = v.begin(); h != v.end(); ++h)
        s["headers." + h.key()] = {joinStrings(h.value()), "route.headers." + h.key(), &ki};
    } else {
      ctx.report(ki, "route." + k, Outcome::kUnconvertible, "unknown KongIngress route field");
    }
  }
}

void addKongIngressProxy(const api::Object& ki, Settings& s, Context& ctx) {
  const Json& proxy = ki.body.value("proxy", Json::object());
  for (auto it = proxy.begin(); it != proxy.end(); ++it) {
    std::string key = it.key();
    std::replace(key.begin(), key.end(), '_', '-');
    if (key == "protocol" || key == "path" || key == "retries" || key == "connect-timeout" ||
        key == "read-timeout" || key == "write-timeout")
      s[key] = {scalar(it.value()), "proxy." + it.key(), &ki};
    else
      ctx.report(ki, "proxy." + it.key(), Outcome::kUnconvertible,
                 "unknown KongIngress proxy field");
  }
  if (ki.body.contains("upstream") && ctx.first("upstream:" + ki.displayName()))
    ctx.report(ki, "upstream", Outcome::kUnconvertible,
               "load balancing and health checks (KongIngress upstream / KongUpstreamPolicy) "
               "have no Gateway API equivalent; Archway balances round-robin");
}

bool truthy(const std::string& v) { return lower(trim(v)) == "true"; }

void reportAt(Context& ctx, const Setting& s, Outcome o, const std::string& msg) {
  ctx.report(*s.source, s.field, o, msg);
}

}  // namespace

IngressPolicy kongIngressPolicy(const api::Object& ing, Context& ctx) {
  IngressPolicy pol;
  pol.provider = kProviderKong;
  Settings s;
  addAnnotations(ing, s);
  if (const auto* ki = kongIngressFor(ing, ctx)) {
    addKongIngressRoute(*ki, s, ctx);
    if (ki->body.contains("proxy") || ki->body.contains("upstream"))
      ctx.report(ing, annField("konghq.com/override"), Outcome::kNote,
                 "KongIngress proxy/upstream sections apply through Services; on an Ingress "
                 "only the route section is used");
  }
  // Other vendors' annotations are not read by Kong.
  const Json& anns = ing.metadata().value("annotations", Json::object());
  if (anns.is_object())
    for (auto it = anns.begin(); it != anns.end(); ++it) {
      const std::string& k = it.key();
      if (k.rfind(kPrefix, 0) == 0 || k == "kubernetes.io/ingress.class") continue;
      if (k == "ingress.kubernetes.io/force-ssl-redirect") continue;
      if (k.find("kubernetes.io/") != std::string::npos && k.find("nginx") != std::string::npos)
        ctx.report(ing, annField(k), Outcome::kUnconvertible,
                   "annotation of another controller; Kong ignores it, so does the conversion");
    }

  std::string sep = ",";
  if (auto it = s.find("headers-separator"); it != s.end()) {
    if (!it->second.value.empty()) sep = it->second.value;
    reportAt(ctx, it->second, Outcome::kConverted, "separator '" + sep + "' for header values");
  }
  bool protocolsHttp = true, protocolsHttps = true;
  std::optional<int> redirectCode;
  const Setting* codeSetting = nullptr;
  for (const auto& [key, st] : s) {
    const std::string& v = st.value;
    if (key == "methods") {
      std::vector<std::string> ok, bad;
      for (auto m : splitList(v)) {
        m = upper(m);
        (kMethods.count(m) ? ok : bad).push_back(m);
      }
      for (const auto& b : bad)
        reportAt(ctx, st, Outcome::kUnconvertible,
                 "method '" + b + "' is not one of Gateway API's methods");
      if (ok.empty()) {
        reportAt(ctx, st, Outcome::kUnconvertible,
                 "no convertible method: the Ingress is not converted (matching every method "
                 "would route requests Kong rejects)");
        pol.skip = true;
      } else {
        pol.methods = ok;
        reportAt(ctx, st, Outcome::kConverted,
                 "one match per method (" + std::to_string(ok.size()) + ") on every rule");
      }
    } else if (key.rfind("headers.", 0) == 0) {
      std::string name = key.substr(8);
      std::vector<std::string> values;
      size_t start = 0;
      while (start <= v.size()) {
        size_t pos = v.find(sep, start);
        if (pos == std::string::npos) pos = v.size();
        std::string item = trim(v.substr(start, pos - start));
        if (!item.empty()) values.push_back(item);
        start = pos + sep.size();
      }
      if (name.empty() || values.empty()) {
        reportAt(ctx, st, Outcome::kUnconvertible, "empty header name or value; ignored");
        continue;
      }
      pol.headers.emplace_back(name, values);
      reportAt(ctx, st, Outcome::kConverted,
               "exact header matches (" + std::to_string(values.size()) +
                   " value(s), ORed; header names ANDed)");
    } else if (key == "headers-separator") {
    } else if (key == "plugins") {
      for (const auto& p : splitList(v)) {
        if (p.find(':') != std::string::npos) {
          reportAt(ctx, st, Outcome::kUnconvertible,
                   "plugin '" + p +
                       "' is in another namespace; an ExtensionRef filter can "
                       "only name a local object (copy the KongPlugin into " +
                       ing.ns + ")");
          continue;
        }
        std::string kind = "KongPlugin";
        if (!ctx.find("KongPlugin", ing.ns, p)) {
          if (ctx.find("KongClusterPlugin", "", p)) {
            kind = "KongClusterPlugin";
          } else {
            reportAt(ctx, st, Outcome::kNote,
                     "KongPlugin " + ing.ns + "/" + p + " is not in the input; referenced anyway");
          }
        }
        pol.filters.push_back(
            {{"type", "ExtensionRef"},
             {"extensionRef",
              {{"group", "configuration.konghq.com"}, {"kind", kind}, {"name", p}}}});
        reportAt(ctx, st, Outcome::kConverted,
                 "plugin '" + p + "' → ExtensionRef filter to " + kind + " on every rule");
      }
    } else if (key == "strip-path") {
      if (truthy(v)) {
        pol.replacePrefix = "/";
        reportAt(ctx, st, Outcome::kConverted,
                 "URLRewrite ReplacePrefixMatch '/' (the matched prefix is removed)");
      } else {
        reportAt(ctx, st, Outcome::kConverted, "path forwarded unchanged (the default)");
      }
    } else if (key == "protocols") {
      auto list = splitList(lower(v));
      bool valid = !list.empty();
      for (const auto& p : list) valid = valid && kProtocols.count(p);
      if (!valid) {
        reportAt(ctx, st, Outcome::kUnconvertible,
                 "invalid protocol list; Kong ignores the annotation, so does the conversion");
        continue;
      }
      auto has = [&](const char* p) {
        return std::find(list.begin(), list.end(), p) != list.end();
      };
      bool grpcOnly = (has("grpc") || has("grpcs")) && !has("http") && !has("https");
      protocolsHttp = has("http") || has("ws") || has("grpc");
      protocolsHttps = has("https") || has("wss") || has("grpcs");
      if (grpcOnly) pol.grpc = true;
      if (!protocolsHttp && !protocolsHttps) {
        reportAt(ctx, st, Outcome::kUnconvertible,
                 "L4 protocols on an Ingress (" + v + "): use a TCPIngress; routes kept as HTTP");
        protocolsHttp = protocolsHttps = true;
        continue;
      }
      reportAt(ctx, st, Outcome::kConverted,
               std::string("rules attached to the ") +
                   (protocolsHttp && protocolsHttps ? "HTTP and HTTPS listeners"
                    : protocolsHttp                 ? "HTTP listener only"
                                                    : "HTTPS listener only") +
                   (grpcOnly ? " as GRPCRoute" : ""));
    } else if (key == "https-redirect-status-code") {
      codeSetting = &st;
      redirectCode = parseInt(v);
    } else if (key == "preserve-host") {
      if (truthy(v)) {
        reportAt(ctx, st, Outcome::kConverted, "Host forwarded unchanged (Gateway API default)");
      } else {
        pol.hostToService = true;
        reportAt(ctx, st, Outcome::kApproximated,
                 "URLRewrite hostname '<service>.<namespace>.svc' (Kong sends its upstream "
                 "name, '<service>.<namespace>.<port>.svc')");
      }
    } else if (key == "regex-prefix") {
      pol.regexPrefix = v.empty() ? "/~" : v;
      reportAt(ctx, st, Outcome::kConverted, "paths starting with it become RegularExpression");
    } else if (key == "host-aliases") {
      pol.hostAliases = splitList(v);
      reportAt(ctx, st, Outcome::kConverted,
               "each alias gets the same rules (its own HTTPRoute and listeners)");
    } else if (key == "rewrite") {
      if (v.find('$') == std::string::npos) {
        pol.replaceFull = v;
        reportAt(ctx, st, Outcome::kConverted, "URLRewrite ReplaceFullPath '" + v + "'");
      } else {
        reportAt(ctx, st, Outcome::kUnconvertible,
                 "capture-group rewrites have no Gateway API equivalent");
      }
    } else if (key == "regex-priority") {
      reportAt(ctx, st, Outcome::kUnconvertible,
               "Gateway API orders matches by its own precedence rules (exact, longest prefix, "
               "method, headers); a priority cannot be set");
    } else if (key == "path-handling") {
      reportAt(ctx, st, Outcome::kUnconvertible,
               "Gateway API defines how prefixes are rewritten; no v0/v1 choice");
    } else if (key == "snis") {
      reportAt(ctx, st, Outcome::kUnconvertible,
               "HTTPRoutes have no SNI criteria; listener hostnames select certificates by SNI");
    } else if (key == "request-buffering" || key == "response-buffering") {
      reportAt(ctx, st, Outcome::kUnconvertible, "buffering is not configurable in Gateway API");
    } else if (key == "tags") {
      reportAt(ctx, st, Outcome::kNote, "Kong entity tags have no meaning in Gateway API; ignored");
    } else if (key == "override") {
      reportAt(ctx, st, Outcome::kConverted,
               "KongIngress route fields applied (reported under the KongIngress)");
    } else if (key == "ingress.class") {
    } else if (kServiceKeys.count(key)) {
      reportAt(ctx, st, Outcome::kUnconvertible,
               "a Service annotation; Kong ignores it on an Ingress (put it on the Service)");
    } else {
      reportAt(ctx, st, Outcome::kUnconvertible, "unknown Kong annotation");
    }
  }
  if (truthy(annotation(ing, "ingress.kubernetes.io/force-ssl-redirect"))) {
    protocolsHttp = false;
    protocolsHttps = true;
    if (!redirectCode) redirectCode = 302;
    ctx.report(ing, annField("ingress.kubernetes.io/force-ssl-redirect"), Outcome::kConverted,
               "HTTP requests redirected to https");
  }
  if (!protocolsHttps) pol.serveHttps = false;
  if (!protocolsHttp) {
    pol.redirectNeedsTls = false;
    int code = redirectCode.value_or(426);
    if (code == 301 || code == 302 || code == 307 || code == 308) {
      pol.httpMode = HttpMode::kRedirect;
      pol.redirectCode = code;
      if (codeSetting)
        reportAt(ctx, *codeSetting, Outcome::kConverted,
                 "HTTP listener rules redirect to https with " + std::to_string(code));
    } else {
      pol.httpMode = HttpMode::kDrop;
      std::string msg = "Kong answers plain-HTTP requests with " + std::to_string(code) +
                        "; Gateway API redirects only with 301/302/303/307/308, so the rules "
                        "are not attached to the HTTP listener (404 instead)";
      if (codeSetting)
        reportAt(ctx, *codeSetting, Outcome::kApproximated, msg);
      else
        ctx.report(ing, annField("konghq.com/protocols"), Outcome::kApproximated, msg);
    }
  } else if (codeSetting) {
    reportAt(ctx, *codeSetting, Outcome::kNote,
             "no effect: the route also accepts plain HTTP (see konghq.com/protocols)");
  }
  return pol;
}

void kongDecorateRule(Json& rule, const api::Object& ingress, const api::Object* service,
                      const std::string& field, Context& ctx) {
  (void)field;
  if (!service) return;
  Settings s;
  addAnnotations(*service, s);
  if (const auto* ki = kongIngressFor(*service, ctx)) addKongIngressProxy(*ki, s, ctx);
  bool firstTime = ctx.first("svc:" + service->displayName());
  auto report = [&](const Setting& st, Outcome o, const std::string& m) {
    if (firstTime) reportAt(ctx, st, o, m);
  };
  auto ms = [&](const char* k) -> std::optional<long long> {
    auto it = s.find(k);
    if (it == s.end()) return std::nullopt;
    auto v = parseInt(it->second.value);
    if (!v || *v <= 0) {
      report(it->second, Outcome::kUnconvertible, "not a positive number of milliseconds");
      return std::nullopt;
    }
    return *v;
  };
  auto rd = ms("read-timeout"), wr = ms("write-timeout"), co = ms("connect-timeout");
  if (rd || wr) {
    long long t = std::max(rd.value_or(0), wr.value_or(0));
    rule["timeouts"]["backendRequest"] = msDuration(t);
    for (const char* k : {"read-timeout", "write-timeout"})
      if (s.count(k))
        report(s[k], Outcome::kApproximated,
               "timeouts.backendRequest " + msDuration(t) +
                   " (Kong times each read/write; Gateway API the whole backend request)");
  }
  if (co)
    report(s["connect-timeout"], Outcome::kUnconvertible,
           "Gateway API has no connect timeout; Archway uses its own default");
  if (auto it = s.find("retries"); it != s.end()) {
    auto n = parseInt(it->second.value);
    if (n && *n >= 0) {
      rule["retry"] = {{"attempts", *n}};
      report(it->second, Outcome::kApproximated,
             "retry.attempts " + std::to_string(*n) +
                 " (Kong retries connection failures and timeouts; Gateway API retries the "
                 "listed codes too)");
    } else {
      report(it->second, Outcome::kUnconvertible, "not a number");
    }
  }
  Json* rewrite = nullptr;
  if (rule.contains("filters"))
    for (auto& f : rule["filters"])
      if (f.value("type", "") == "URLRewrite") rewrite = &f["urlRewrite"];
  auto ensureRewrite = [&]() -> Json& {
    if (!rewrite) {
      rule["filters"].push_back({{"type", "URLRewrite"}, {"urlRewrite", Json::object()}});
      rewrite = &rule["filters"].back()["urlRewrite"];
    }
    return *rewrite;
  };
  if (!rule.contains("filters")) rule["filters"] = Json::array();
  if (auto it = s.find("host-header"); it != s.end()) {
    ensureRewrite()["hostname"] = it->second.value;
    report(it->second, Outcome::kConverted, "URLRewrite hostname '" + it->second.value + "'");
  }
  if (auto it = s.find("path"); it != s.end()) {
    std::string sp = it->second.value;
    while (sp.size() > 1 && sp.back() == '/') sp.pop_back();
    bool done = false;
    const Json& matches = rule.value("matches", Json::array());
    std::string prefix;
    bool allPrefix = !matches.empty();
    for (const auto& m : matches) {
      const Json& p = m.value("path", Json::object());
      if (p.value("type", "") != "PathPrefix" ||
          (!prefix.empty() && prefix != p.value("value", "")))
        allPrefix = false;
      prefix = p.value("value", "");
    }
    if (allPrefix) {
      Json& rw = ensureRewrite();
      std::string current =
          rw.contains("path") ? rw["path"].value("replacePrefixMatch", "") : prefix;
      if (!rw.contains("path") || rw["path"].value("type", "") == "ReplacePrefixMatch") {
        std::string joined = current == "/" ? sp : sp + current;
        rw["path"] = {{"type", "ReplacePrefixMatch"}, {"replacePrefixMatch", joined}};
        done = true;
      }
    }
    report(it->second, done ? Outcome::kConverted : Outcome::kUnconvertible,
           done ? "URLRewrite ReplacePrefixMatch: the service path is prepended"
                : "the service path can be prepended only to prefix paths");
  }
  if (rule["filters"].empty()) rule.erase("filters");
  if (auto it = s.find("plugins"); it != s.end()) {
    for (const auto& p : splitList(it->second.value)) {
      if (p.find(':') != std::string::npos) continue;
      std::string kind =
          ctx.find("KongPlugin", service->ns, p) || !ctx.find("KongClusterPlugin", "", p)
              ? "KongPlugin"
              : "KongClusterPlugin";
      rule["filters"].push_back(
          {{"type", "ExtensionRef"},
           {"extensionRef", {{"group", "configuration.konghq.com"}, {"kind", kind}, {"name", p}}}});
    }
    report(it->second, Outcome::kConverted,
           "ExtensionRef filters on every rule that routes to this Service");
  }
  if (auto it = s.find("protocol"); it != s.end()) {
    std::string p = lower(it->second.value);
    if (p == "http")
      report(it->second, Outcome::kConverted, "plain HTTP upstream (the default)");
    else if (p == "grpc" || p == "h2c")
      report(it->second, Outcome::kUnconvertible,
             "set the Service port's appProtocol to kubernetes.io/h2c so Archway speaks "
             "HTTP/2 to it");
    else
      report(it->second, Outcome::kUnconvertible,
             "TLS to the upstream needs a BackendTLSPolicy with the CA that signs the "
             "backend's certificate; not generated");
  }
  for (const char* k : {"client-cert", "tls-verify", "tls-verify-depth", "ca-certificates-secrets",
                        "ca-certificates-configmaps"})
    if (auto it = s.find(k); it != s.end())
      report(it->second, Outcome::kUnconvertible,
             "upstream TLS settings: write a BackendTLSPolicy (client certificates have no "
             "Gateway API equivalent)");
  if (auto it = s.find("upstream-policy"); it != s.end())
    report(it->second, Outcome::kUnconvertible,
           "KongUpstreamPolicy (load balancing, health checks) has no Gateway API equivalent");
}

void kongConvertL4(Context& ctx, Output& out) {
  auto classOf = [&](const api::Object& o) {
    std::string c = annotation(o, "kubernetes.io/ingress.class");
    if (c.empty()) {
      c = "kong";
      ctx.report(o, "metadata.annotations", Outcome::kApproximated,
                 "no kubernetes.io/ingress.class: attached to Gateway 'kong'");
    }
    return c;
  };
  for (const auto* o : ctx.ofKind("TCPIngress")) {
    std::string gwName = classOf(*o);
    GatewayBuild& gw = out.gateway(o->ns, gwName, gwName);
    const Json& tls = o->spec().value("tls", Json::array());
    const Json& rules = o->spec().value("rules", Json::array());
    for (size_t i = 0; i < rules.size(); ++i) {
      const Json& r = rules[i];
      std::string field = "spec.rules[" + std::to_string(i) + "]";
      std::string host = r.value("host", "");
      int port = r.value("port", 0);
      const Json& b = r.value("backend", Json::object());
      std::string svc = b.value("serviceName", "");
      if (port <= 0 || port > 65535 || svc.empty() || !b.contains("servicePort")) {
        ctx.report(*o, field, Outcome::kUnconvertible,
                   "rule needs port, serviceName and servicePort");
        continue;
      }
      if (host.empty() && tls.size() == 1 && tls[0].value("hosts", Json::array()).size() == 1)
        host = tls[0]["hosts"][0].get<std::string>();
      Json secrets = Json::array();
      bool covered = false;
      for (const auto& t : tls) {
        const Json& hosts = t.value("hosts", Json::array());
        bool match = hosts.empty();
        for (const auto& h : hosts)
          if (h == host) match = true;
        if (!match) continue;
        covered = true;
        if (!t.value("secretName", "").empty())
          secrets.push_back({{"group", ""}, {"kind", "Secret"}, {"name", t["secretName"]}});
      }
      Json backend = {{"name", svc}, {"port", b["servicePort"]}};
      bool isTls = covered && !secrets.empty();
      std::string lname =
          std::string(isTls ? "tls-" : "tcp-") + nameFromHost(host) + "-" + std::to_string(port);
      ListenerBuild l{lname, "", isTls ? "TLS" : "TCP", port, nullptr};
      if (isTls) {
        l.hostname = host;
        l.tls = {{"mode", "Terminate"}, {"certificateRefs", secrets}};
      } else if (!host.empty()) {
        ctx.report(*o, field + ".host", Outcome::kApproximated,
                   "SNI '" + host + "' without TLS: a TCP listener cannot select by host");
      }
      std::string conflict;
      if (!out.addListener(gw, l, &conflict)) {
        ctx.report(*o, field, Outcome::kUnconvertible, conflict);
        continue;
      }
      std::string kind = isTls && !host.empty() ? "TLSRoute" : "TCPRoute";
      std::string base = o->name + "-" + nameFromHost(host);
      std::string name =
          out.uniqueName(kind, o->ns, rules.size() > 1 ? base + "-" + std::to_string(port) : base);
      Json spec = {{"parentRefs", Json::array({parentRef(gwName, lname)})},
                   {"rules", Json::array({{{"backendRefs", Json::array({backend})}}})}};
      if (kind == "TLSRoute") spec["hostnames"] = Json::array({host});
      out.addObject({{"apiVersion", "gateway.networking.k8s.io/v1"},
                     {"kind", kind},
                     {"metadata", makeMeta(name, o->ns)},
                     {"spec", spec}});
      ctx.report(*o, field, Outcome::kConverted,
                 isTls ? "TLS listener " + lname + " (Terminate, as Kong terminated it) + " + kind +
                             " " + name + " forwarding plain TCP"
                       : "TCP listener " + lname + " + TCPRoute " + name);
    }
  }
  for (const auto* o : ctx.ofKind("UDPIngress")) {
    std::string gwName = classOf(*o);
    GatewayBuild& gw = out.gateway(o->ns, gwName, gwName);
    const Json& rules = o->spec().value("rules", Json::array());
    for (size_t i = 0; i < rules.size(); ++i) {
      const Json& r = rules[i];
      std::string field = "spec.rules[" + std::to_string(i) + "]";
      int port = r.value("port", 0);
      const Json& b = r.value("backend", Json::object());
      std::string svc = b.value("serviceName", "");
      if (port <= 0 || port > 65535 || svc.empty() || !b.contains("servicePort")) {
        ctx.report(*o, field, Outcome::kUnconvertible,
                   "rule needs port, serviceName and servicePort");
        continue;
      }
      std::string lname = "udp-" + std::to_string(port);
      std::string conflict;
      if (!out.addListener(gw, {lname, "", "UDP", port, nullptr}, &conflict)) {
        ctx.report(*o, field, Outcome::kUnconvertible, conflict);
        continue;
      }
      std::string name = out.uniqueName("UDPRoute", o->ns, o->name + "-" + std::to_string(port));
      out.addObject(
          {{"apiVersion", "gateway.networking.k8s.io/v1"},
           {"kind", "UDPRoute"},
           {"metadata", makeMeta(name, o->ns)},
           {"spec",
            {{"parentRefs", Json::array({parentRef(gwName, lname)})},
             {"rules",
              Json::array({{{"backendRefs",
                             Json::array({{{"name", svc}, {"port", b["servicePort"]}}})}}})}}}});
      ctx.report(*o, field, Outcome::kConverted, "UDP listener " + lname + " + UDPRoute " + name);
    }
  }
}

void kongKeepPlugins(Context& ctx, Output& out) {
  for (const char* kind : {"KongPlugin", "KongClusterPlugin"})
    for (const auto* o : ctx.ofKind(kind)) {
      Json j = o->body;
      j.erase("status");
      Json meta = makeMeta(o->name, o->ns);
      for (const char* k : {"labels", "annotations"})
        if (o->metadata().contains(k)) meta[k] = o->metadata()[k];
      j["metadata"] = meta;
      out.addObject(j);
      ctx.report(*o, "", Outcome::kConverted, "kept as is for ExtensionRef filters");
    }
  for (const auto* o : ctx.ofKind("KongIngress"))
    if (ctx.first("kongingress-seen:" + o->displayName()))
      ctx.report(*o, "", Outcome::kNote,
                 "read through konghq.com/override on Ingresses and Services (route fields from "
                 "Ingresses, proxy fields from Services)");
}

}  // namespace archway::convert
