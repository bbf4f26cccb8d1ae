#include "api/core_types.h"

#include <array>
#include <set>

#include "api/validation_util.h"

namespace archway::api {

using validation::child;
using validation::has;
using validation::shortJson;
using validation::str;

namespace {

constexpr std::array<CoreKind, 7> kCoreKinds = {{
    {"", "v1", "Namespace", false, CoreKind::NameRule::kLabel},
    {"", "v1", "Service", true, CoreKind::NameRule::kDns1035},
    {"", "v1", "Secret", true, CoreKind::NameRule::kSubdomain},
    {"", "v1", "ConfigMap", true, CoreKind::NameRule::kSubdomain},
    {"discovery.k8s.io", "v1", "EndpointSlice", true, CoreKind::NameRule::kSubdomain},
    {"networking.k8s.io", "v1", "Ingress", true, CoreKind::NameRule::kSubdomain},
    {"networking.k8s.io", "v1", "IngressClass", false, CoreKind::NameRule::kSubdomain},
}};

enum class JType { kObject, kArray, kString, kInteger, kBoolean };

const char* jtypeName(JType t) {
  switch (t) {
    case JType::kObject:
      return "object";
    case JType::kArray:
      return "array";
    case JType::kString:
      return "string";
    case JType::kInteger:
      return "integer";
    case JType::kBoolean:
      return "boolean";
  }
  return "";
}

bool isType(const Json& v, JType t) {
  switch (t) {
    case JType::kObject:
      return v.is_object();
    case JType::kArray:
      return v.is_array();
    case JType::kString:
      return v.is_string();
    case JType::kInteger:
      return v.is_number_integer();
    case JType::kBoolean:
      return v.is_boolean();
  }
  return false;
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string quotedValue(std::string_view s) { return shortJson(Json(std::string(s))); }

// Typed field access that reports wrong types and missing required fields.
class Fields {
 public:
  explicit Fields(ValidationSink& sink) : sink_(sink) {}

  Json* get(Json& parent, std::string_view key, const std::string& path, JType type,
            bool required = false) {
    if (!parent.is_object()) return nullptr;
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) sink_.error(join(path, key), "Required value");
      return nullptr;
    }
    if (!isType(*it, type)) {
      sink_.error(join(path, key),
                  "Invalid value: " + shortJson(*it) + ": must be of type " + jtypeName(type));
      return nullptr;
    }
    return &*it;
  }

  void oneOf(const Json* v, const std::string& path,
             std::initializer_list<std::string_view> values) {
    if (v == nullptr || !v->is_string()) return;
    std::string_view s = v->get_ref<const std::string&>();
    std::string list;
    for (auto value : values) {
      if (s == value) return;
      list += (list.empty() ? "" : ", ") + quotedValue(value);
    }
    sink_.error(path, "Unsupported value: " + quotedValue(s) + ": supported values: " + list);
  }

  void port(const Json* v, const std::string& path, int64_t min = 1) {
    if (v == nullptr) return;
    int64_t p = v->get<int64_t>();
    if (p < min || p > 65535) {
      sink_.error(path, "Invalid value: " + std::to_string(p) + ": must be between " +
                            std::to_string(min) + " and 65535, inclusive");
    }
  }

  void stringMap(Json& parent, std::string_view key, const std::string& path) {
    Json* m = get(parent, key, path, JType::kObject);
    if (m == nullptr) return;
    for (const auto& [k, value] : m->items()) {
      if (!value.is_string()) {
        sink_.error(join(join(path, key), k),
                    "Invalid value: " + shortJson(value) + ": must be of type string");
      }
    }
  }

  ValidationSink& sink() { return sink_; }

 private:
  ValidationSink& sink_;
};

// ConfigMap/Secret data keys: [-._a-zA-Z0-9]+, at most 253 characters, not "." or "..".
bool isConfigKey(std::string_view k) {
  if (k.empty() || k.size() > 253 || k == "." || k == "..") return false;
  for (char c : k) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool isBase64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  size_t pad = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
    if (c == '=') {
      if (i + 2 < s.size()) return false;
      ++pad;
    } else if (!alpha || pad > 0) {
      return false;
    }
  }
  return pad <= 2;
}

std::string base64Encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i < in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// data (base64 values when `base64`) / stringData maps with valid keys.
void checkDataMap(Fields& f, Json& spec, std::string_view key, bool base64) {
  Json* m = f.get(spec, key, "", JType::kObject);
  if (m == nullptr) return;
  for (const auto& [k, value] : m->items()) {
    std::string path = join(std::string(key), k);
    if (!isConfigKey(k)) {
      f.sink().error(path, "Invalid value: " + quotedValue(k) +
                               ": a valid config key must consist of alphanumeric characters, "
                               "'-', '_' or '.'");
    }
    if (!value.is_string()) {
      f.sink().error(path, "Invalid value: " + shortJson(value) + ": must be of type string");
    } else if (base64 && !isBase64(value.get_ref<const std::string&>())) {
      f.sink().error(path, "Invalid value: " + shortJson(value) + ": must be base64-encoded");
    }
  }
}

void validateSecret(Object& o, Fields& f) {
  Json& body = o.body;
  Json* type = f.get(body, "type", "", JType::kString);
  checkDataMap(f, body, "data", true);
  checkDataMap(f, body, "stringData", false);
  f.get(body, "immutable", "", JType::kBoolean);
  // The API server merges stringData into data (stringData wins) and never stores it.
  if (auto sd = body.find("stringData"); sd != body.end() && sd->is_object()) {
    auto data = body.find("data");
    if (data == body.end() || !data->is_object()) {
      body["data"] = Json::object();
      data = body.find("data");
    }
    for (const auto& [k, value] : sd->items()) {
      if (value.is_string()) (*data)[k] = base64Encode(value.get_ref<const std::string&>());
    }
    body.erase("stringData");
  }
  if (type == nullptr) body["type"] = "Opaque";
  std::string_view t = str(body, "type");
  if (t == "kubernetes.io/tls") {
    for (const char* key : {"tls.crt", "tls.key"}) {
      const Json* data = child(body, "data");
      if (data == nullptr || !has(*data, key)) {
        f.sink().error(std::string("data.") + key, "Required value");
      }
    }
  }
}

void validateConfigMap(Object& o, Fields& f) {
  checkDataMap(f, o.body, "data", false);
  checkDataMap(f, o.body, "binaryData", true);
  f.get(o.body, "immutable", "", JType::kBoolean);
  const Json* data = child(o.body, "data");
  const Json* binary = child(o.body, "binaryData");
  if (data != nullptr && binary != nullptr && data->is_object() && binary->is_object()) {
    for (const auto& [k, value] : binary->items()) {
      if (data->contains(k)) {
        f.sink().error("binaryData." + k,
                       "Invalid value: " + quotedValue(k) + ": duplicate of key present in data");
      }
    }
  }
}

void validateService(Object& o, Fields& f) {
  Json* spec = f.get(o.body, "spec", "", JType::kObject);
  if (spec == nullptr) return;
  Json* type = f.get(*spec, "type", "spec", JType::kString);
  if (type == nullptr) (*spec)["type"] = "ClusterIP";
  f.oneOf(child(*spec, "type"), "spec.type",
          {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"});
  std::string_view svcType = str(*spec, "type");
  if (Json* ip = f.get(*spec, "clusterIP", "spec", JType::kString); ip != nullptr) {
    std::string_view s = ip->get_ref<const std::string&>();
    if (!s.empty() && s != "None" && !validation::isIP(s)) {
      f.sink().error("spec.clusterIP", "Invalid value: " + quotedValue(s) +
                                           ": must be empty, 'None', or a valid IP address");
    }
  }
  if (Json* name = f.get(*spec, "externalName", "spec", JType::kString, svcType == "ExternalName");
      name != nullptr && svcType == "ExternalName") {
    std::string_view s = name->get_ref<const std::string&>();
    std::string_view host = s.ends_with('.') ? s.substr(0, s.size() - 1) : s;
    if (!validation::isDns1123Subdomain(host)) {
      f.sink().error("spec.externalName",
                     "Invalid value: " + quotedValue(s) + ": must be a lowercase RFC 1123 subdomain");
    }
  }
  if (Json* selector = f.get(*spec, "selector", "spec", JType::kObject); selector != nullptr) {
    f.stringMap(*spec, "selector", "spec");
  }
  Json* ports = f.get(*spec, "ports", "spec", JType::kArray);
  if (ports == nullptr) return;
  std::set<std::string> names;
  std::set<std::pair<int64_t, std::string>> portProtocols;
  for (size_t i = 0; i < ports->size(); ++i) {
    std::string path = index("spec.ports", i);
    Json& p = (*ports)[i];
    if (!p.is_object()) {
      f.sink().error(path, "Invalid value: " + shortJson(p) + ": must be of type object");
      continue;
    }
    Json* name = f.get(p, "name", path, JType::kString, ports->size() > 1);
    if (name != nullptr) {
      const auto& n = name->get_ref<const std::string&>();
      if (!n.empty() && !validation::isDns1123Label(n)) {
        f.sink().error(join(path, "name"),
                       "Invalid value: " + quotedValue(n) + ": must be a lowercase RFC 1123 label");
      }
      if (!names.insert(n).second) {
        f.sink().error(join(path, "name"), "Duplicate value: " + quotedValue(n));
      }
    }
    if (!p.contains("protocol") || p["protocol"].is_null()) p["protocol"] = "TCP";
    Json* protocol = f.get(p, "protocol", path, JType::kString);
    f.oneOf(protocol, join(path, "protocol"), {"TCP", "UDP", "SCTP"});
    Json* port = f.get(p, "port", path, JType::kInteger, true);
    f.port(port, join(path, "port"));
    if (port != nullptr && protocol != nullptr &&
        !portProtocols.insert({port->get<int64_t>(), protocol->get<std::string>()}).second) {
      f.sink().error(path, "Duplicate value: port " + std::to_string(port->get<int64_t>()) + "/" +
                               protocol->get<std::string>());
    }
    if (const Json* target = child(p, "targetPort"); target != nullptr && !target->is_null()) {
      if (target->is_number_integer()) {
        f.port(target, join(path, "targetPort"));
      } else if (target->is_string()) {
        if (!validation::isIanaServiceName(target->get_ref<const std::string&>())) {
          f.sink().error(join(path, "targetPort"),
                         "Invalid value: " + shortJson(*target) +
                             ": must be a port number or an IANA service name (at most 15 "
                             "lowercase alphanumerics or '-', with at least one letter)");
        }
      } else {
        f.sink().error(join(path, "targetPort"),
                       "Invalid value: " + shortJson(*target) + ": must be an integer or a string");
      }
    }
    f.port(f.get(p, "nodePort", path, JType::kInteger), join(path, "nodePort"), 0);
    if (Json* app = f.get(p, "appProtocol", path, JType::kString); app != nullptr) {
      if (std::string why = validation::qualifiedNameError(app->get_ref<const std::string&>());
          !why.empty()) {
        f.sink().error(join(path, "appProtocol"), "Invalid value: " + shortJson(*app) + ": " + why);
      }
    }
  }
}

void validateEndpointSlice(Object& o, Fields& f) {
  Json* addressType = f.get(o.body, "addressType", "", JType::kString, true);
  f.oneOf(addressType, "addressType", {"IPv4", "IPv6", "FQDN"});
  std::string_view family = str(o.body, "addressType");
  if (Json* endpoints = f.get(o.body, "endpoints", "", JType::kArray); endpoints != nullptr) {
    for (size_t i = 0; i < endpoints->size(); ++i) {
      std::string path = index("endpoints", i);
      Json& e = (*endpoints)[i];
      if (!e.is_object()) {
        f.sink().error(path, "Invalid value: " + shortJson(e) + ": must be of type object");
        continue;
      }
      Json* addresses = f.get(e, "addresses", path, JType::kArray, true);
      if (addresses != nullptr) {
        if (addresses->empty() || addresses->size() > 100) {
          f.sink().error(join(path, "addresses"),
                         "Invalid value: " + std::to_string(addresses->size()) +
                             ": must have between 1 and 100 addresses");
        }
        for (size_t k = 0; k < addresses->size(); ++k) {
          const Json& a = (*addresses)[k];
          std::string apath = index(join(path, "addresses"), k);
          std::string_view s = str(&a);
          bool ok = a.is_string() && (family == "IPv4"   ? validation::isIPv4(s)
                                      : family == "IPv6" ? validation::isIPv6(s)
                                      : family == "FQDN" ? validation::isDns1123Subdomain(s)
                                                         : true);
          if (!ok) {
            f.sink().error(apath, "Invalid value: " + shortJson(a) + ": must be a valid " +
                                      (family.empty() ? std::string("address")
                                                      : std::string(family) + " address"));
          }
        }
      }
      if (Json* conditions = f.get(e, "conditions", path, JType::kObject); conditions != nullptr) {
        for (const char* c : {"ready", "serving", "terminating"}) {
          f.get(*conditions, c, join(path, "conditions"), JType::kBoolean);
        }
      }
      if (Json* hostname = f.get(e, "hostname", path, JType::kString); hostname != nullptr) {
        if (!validation::isDns1123Label(hostname->get_ref<const std::string&>())) {
          f.sink().error(join(path, "hostname"), "Invalid value: " + shortJson(*hostname) +
                                                     ": must be a lowercase RFC 1123 label");
        }
      }
      f.get(e, "nodeName", path, JType::kString);
      f.get(e, "zone", path, JType::kString);
    }
  }
  if (Json* ports = f.get(o.body, "ports", "", JType::kArray); ports != nullptr) {
    std::set<std::string> names;
    for (size_t i = 0; i < ports->size(); ++i) {
      std::string path = index("ports", i);
      Json& p = (*ports)[i];
      if (!p.is_object()) {
        f.sink().error(path, "Invalid value: " + shortJson(p) + ": must be of type object");
        continue;
      }
      if (Json* name = f.get(p, "name", path, JType::kString); name != nullptr) {
        const auto& n = name->get_ref<const std::string&>();
        if (!n.empty() && !validation::isDns1123Label(n)) {
          f.sink().error(join(path, "name"),
                         "Invalid value: " + quotedValue(n) + ": must be a lowercase RFC 1123 label");
        }
        if (!names.insert(n).second) {
          f.sink().error(join(path, "name"), "Duplicate value: " + quotedValue(n));
        }
      }
      f.port(f.get(p, "port", path, JType::kInteger), join(path, "port"));
      if (!p.contains("protocol") || p["protocol"].is_null()) p["protocol"] = "TCP";
      f.oneOf(f.get(p, "protocol", path, JType::kString), join(path, "protocol"),
              {"TCP", "UDP", "SCTP"});
      f.get(p, "appProtocol", path, JType::kString);
    }
  }
}

void checkIngressBackend(Fields& f, Json& backend, const std::string& path) {
  Json* service = f.get(backend, "service", path, JType::kObject);
  Json* resource = f.get(backend, "resource", path, JType::kObject);
  if ((service != nullptr) == (resource != nullptr)) {
    f.sink().error(path, "Invalid value: object: exactly one of service or resource must be set");
  }
  if (service != nullptr) {
    std::string spath = join(path, "service");
    if (Json* name = f.get(*service, "name", spath, JType::kString, true); name != nullptr) {
      if (!validation::isDns1035Label(name->get_ref<const std::string&>())) {
        f.sink().error(join(spath, "name"),
                       "Invalid value: " + shortJson(*name) + ": must be a DNS-1035 label");
      }
    }
    if (Json* port = f.get(*service, "port", spath, JType::kObject, true); port != nullptr) {
      std::string ppath = join(spath, "port");
      Json* name = f.get(*port, "name", ppath, JType::kString);
      Json* number = f.get(*port, "number", ppath, JType::kInteger);
      if ((name != nullptr) == (number != nullptr)) {
        f.sink().error(ppath, "Invalid value: object: exactly one of name or number must be set");
      }
      f.port(number, join(ppath, "number"));
      if (name != nullptr && !validation::isIanaServiceName(name->get_ref<const std::string&>())) {
        f.sink().error(join(ppath, "name"),
                       "Invalid value: " + shortJson(*name) + ": must be an IANA service name");
      }
    }
  }
  if (resource != nullptr) {
    std::string rpath = join(path, "resource");
    f.get(*resource, "kind", rpath, JType::kString, true);
    f.get(*resource, "name", rpath, JType::kString, true);
    f.get(*resource, "apiGroup", rpath, JType::kString);
  }
}

// Ingress hosts: DNS subdomain, optionally "*." wildcard first label, never an IP.
void checkIngressHost(Fields& f, const Json& host, const std::string& path) {
  std::string_view s = str(&host);
  std::string_view rest = s.starts_with("*.") ? s.substr(2) : s;
  if (!host.is_string() || validation::isIP(s) || !validation::isDns1123Subdomain(rest)) {
    f.sink().error(path, "Invalid value: " + shortJson(host) +
                             ": must be a DNS name (optionally with a leading '*.'), not an IP");
  }
}

void validateIngress(Object& o, Fields& f) {
  Json* spec = f.get(o.body, "spec", "", JType::kObject);
  if (spec == nullptr) return;
  if (Json* cls = f.get(*spec, "ingressClassName", "spec", JType::kString); cls != nullptr) {
    if (!validation::isDns1123Subdomain(cls->get_ref<const std::string&>())) {
      f.sink().error("spec.ingressClassName", "Invalid value: " + shortJson(*cls) +
                                                  ": must be a lowercase RFC 1123 subdomain");
    }
  }
  Json* defaultBackend = f.get(*spec, "defaultBackend", "spec", JType::kObject);
  if (defaultBackend != nullptr) checkIngressBackend(f, *defaultBackend, "spec.defaultBackend");
  Json* rules = f.get(*spec, "rules", "spec", JType::kArray);
  if (defaultBackend == nullptr && (rules == nullptr || rules->empty())) {
    f.sink().error("spec",
                   "Invalid value: object: either `defaultBackend` or `rules` must be specified");
  }
  if (Json* tls = f.get(*spec, "tls", "spec", JType::kArray); tls != nullptr) {
    for (size_t i = 0; i < tls->size(); ++i) {
      std::string path = index("spec.tls", i);
      Json& t = (*tls)[i];
      if (!t.is_object()) {
        f.sink().error(path, "Invalid value: " + shortJson(t) + ": must be of type object");
        continue;
      }
      if (Json* hosts = f.get(t, "hosts", path, JType::kArray); hosts != nullptr) {
        for (size_t k = 0; k < hosts->size(); ++k) {
          checkIngressHost(f, (*hosts)[k], index(join(path, "hosts"), k));
        }
      }
      f.get(t, "secretName", path, JType::kString);
    }
  }
  if (rules == nullptr) return;
  for (size_t i = 0; i < rules->size(); ++i) {
    std::string path = index("spec.rules", i);
    Json& r = (*rules)[i];
    if (!r.is_object()) {
      f.sink().error(path, "Invalid value: " + shortJson(r) + ": must be of type object");
      continue;
    }
    if (Json* host = f.get(r, "host", path, JType::kString); host != nullptr) {
      checkIngressHost(f, *host, join(path, "host"));
    }
    Json* http = f.get(r, "http", path, JType::kObject);
    if (http == nullptr) continue;
    std::string hpath = join(path, "http");
    Json* paths = f.get(*http, "paths", hpath, JType::kArray, true);
    if (paths == nullptr) continue;
    if (paths->empty()) f.sink().error(join(hpath, "paths"), "Required value");
    for (size_t k = 0; k < paths->size(); ++k) {
      std::string ppath = index(join(hpath, "paths"), k);
      Json& p = (*paths)[k];
      if (!p.is_object()) {
        f.sink().error(ppath, "Invalid value: " + shortJson(p) + ": must be of type object");
        continue;
      }
      Json* pathType = f.get(p, "pathType", ppath, JType::kString, true);
      f.oneOf(pathType, join(ppath, "pathType"), {"Exact", "Prefix", "ImplementationSpecific"});
      if (Json* value = f.get(p, "path", ppath, JType::kString); value != nullptr) {
        std::string_view v = value->get_ref<const std::string&>();
        if (!v.empty() && !v.starts_with('/')) {
          f.sink().error(join(ppath, "path"),
                         "Invalid value: " + quotedValue(v) + ": must be an absolute path");
        }
      } else if (str(p, "pathType") == "Exact" || str(p, "pathType") == "Prefix") {
        f.sink().error(join(ppath, "path"), "Required value");
      }
      if (Json* backend = f.get(p, "backend", ppath, JType::kObject, true); backend != nullptr) {
        checkIngressBackend(f, *backend, join(ppath, "backend"));
      }
    }
  }
}

void validateIngressClass(Object& o, Fields& f) {
  Json* spec = f.get(o.body, "spec", "", JType::kObject);
  if (spec == nullptr) return;
  if (Json* controller = f.get(*spec, "controller", "spec", JType::kString);
      controller != nullptr) {
    if (controller->get_ref<const std::string&>().size() > 250) {
      f.sink().error("spec.controller", "Too long: may not be more than 250 characters");
    }
  }
  f.get(*spec, "parameters", "spec", JType::kObject);
}

}  // namespace

const CoreKind* findCoreKind(std::string_view group, std::string_view kind) {
  for (const auto& k : kCoreKinds) {
    if (k.group == group && k.kind == kind) return &k;
  }
  return nullptr;
}

void validateCoreObject(const CoreKind& kind, Object& object, ValidationSink& sink) {
  Fields f(sink);
  if (kind.kind == "Service") {
    validateService(object, f);
  } else if (kind.kind == "EndpointSlice") {
    validateEndpointSlice(object, f);
  } else if (kind.kind == "Secret") {
    validateSecret(object, f);
  } else if (kind.kind == "ConfigMap") {
    validateConfigMap(object, f);
  } else if (kind.kind == "Ingress") {
    validateIngress(object, f);
  } else if (kind.kind == "IngressClass") {
    validateIngressClass(object, f);
  }
  // Namespace: only its metadata (labels) is read, checked with every object's metadata.
}

}  // namespace archway::api
