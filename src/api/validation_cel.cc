// Hand-written implementations of every CEL rule (x-kubernetes-validations) of the embedded
// CRDs. Each is keyed by its exact (whitespace-normalised) rule text and mirrors the CEL
// expression term by term; the comment above each gives the schema location and message.
// Unset fields behave as CEL's has(): absent or null. A field whose type is wrong was
// already reported by the schema check, so a rule reads it as absent and never throws.
#include "api/validation_cel.h"

#include <map>

#include <re2/re2.h>

#include "api/validation_util.h"

namespace archway::api::validation {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kHour = 3600 * kSecond;

void fail(Violations& out) { out.push_back(""); }

bool matches(std::string_view s, const RE2& re) {
  return RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), re);
}

const RE2& wildcardHostnameRe() {
  static const RE2 kRe(
      R"re(^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)re");
  return kRe;
}

const RE2& rfc1123Re() {
  static const RE2 kRe(
      R"re(^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$)re");
  return kRe;
}

// self.all(x, pred): reports the first element for which pred is false.
template <typename Pred>
void forAll(const Json& self, Violations& out, Pred pred) {
  if (!self.is_array()) return;
  for (size_t i = 0; i < self.size(); ++i) {
    if (!pred(self[i])) {
      out.push_back("[" + std::to_string(i) + "]");
      return;
    }
  }
}

template <typename Pred>
bool forAllOf(const Json& self, Pred pred) {
  if (!self.is_array()) return true;
  for (const auto& e : self) {
    if (!pred(e)) return false;
  }
  return true;
}

// self.all(key, pred) over the keys of a map.
template <typename Pred>
void forAllKeys(const Json& self, Violations& out, Pred pred) {
  if (!self.is_object()) return;
  for (const auto& [key, value] : self.items()) {
    if (!pred(std::string_view(key))) {
      out.push_back("." + key);
      return;
    }
  }
}

template <typename Pred>
bool existsOne(const Json& self, Pred pred) {
  if (!self.is_array()) return false;
  size_t n = 0;
  for (const auto& e : self) n += pred(e) ? 1 : 0;
  return n == 1;
}

// a.key == b.key, where two absent fields compare equal.
bool eq(const Json& a, const Json& b, std::string_view key) {
  const Json* x = child(a, key);
  const Json* y = child(b, key);
  if (x == nullptr || x->is_null()) return y == nullptr || y->is_null();
  return y != nullptr && *x == *y;
}

bool emptyOrAbsent(const Json& j, std::string_view key) {
  return !has(j, key) || (child(j, key)->is_string() && str(j, key).empty());
}

bool zeroOrAbsent(const Json& j, std::string_view key) {
  const Json* c = child(j, key);
  return c == nullptr || c->is_null() || (c->is_number() && c->get<double>() == 0);
}

bool sameGkn(const Json& a, const Json& b) {
  return eq(a, b, "group") && eq(a, b, "kind") && eq(a, b, "name");
}

bool sameNamespace(const Json& a, const Json& b) {
  return (emptyOrAbsent(a, "namespace") && emptyOrAbsent(b, "namespace")) ||
         (has(a, "namespace") && has(b, "namespace") && eq(a, b, "namespace"));
}

bool sameListenerAddress(const Json& l1, const Json& l2) {
  bool hostnames = has(l1, "hostname") && has(l2, "hostname")
                       ? eq(l1, l2, "hostname")
                       : !has(l1, "hostname") && !has(l2, "hostname");
  return eq(l1, l2, "port") && eq(l1, l2, "protocol") && hostnames;
}

size_t countType(const Json& filters, std::string_view type) {
  if (!filters.is_array()) return 0;
  size_t n = 0;
  for (const auto& f : filters) n += str(f, "type") == type ? 1 : 0;
  return n;
}

// Sum of matches over the first 16 rules (the CEL rule unrolls exactly 16 terms).
size_t totalMatches(const Json& rules) {
  if (!rules.is_array()) return 0;
  size_t n = 0;
  for (size_t i = 0; i < rules.size() && i < 16; ++i) n += sizeOf(rules[i], "matches");
  return n;
}

// Filters with f.<field>.path.type == 'ReplacePrefixMatch' and a replacePrefixMatch.
size_t countWithPrefixReplace(const Json& filters, std::string_view field) {
  if (!filters.is_array()) return 0;
  size_t n = 0;
  for (const auto& f : filters) {
    const Json* modifier = child(f, field);
    if (modifier == nullptr || modifier->is_null() || !has(*modifier, "path")) continue;
    const Json& path = *child(*modifier, "path");
    if (str(path, "type") == "ReplacePrefixMatch" && has(path, "replacePrefixMatch")) ++n;
  }
  return n;
}

size_t backendRefsWithPrefixReplace(const Json& rule, std::string_view field) {
  const Json* refs = child(rule, "backendRefs");
  if (refs == nullptr || !refs->is_array()) return 0;
  size_t n = 0;
  for (const auto& b : *refs) {
    const Json* filters = child(b, "filters");
    if (filters != nullptr && countWithPrefixReplace(*filters, field) == 1) ++n;
  }
  return n;
}

// size(self.matches) == 1 && has(self.matches[0].path) && self.matches[0].path.type == 'PathPrefix'
bool singlePrefixMatch(const Json& rule) {
  const Json* m = child(rule, "matches");
  if (m == nullptr || !m->is_array() || m->size() != 1) return false;
  const Json* path = child((*m)[0], "path");
  return path != nullptr && !path->is_null() && str(*path, "type") == "PathPrefix";
}

bool exactOrPrefix(const Json& match) {
  std::string_view type = str(match, "type");
  return type == "Exact" || type == "PathPrefix";
}

struct Registry {
  std::map<std::string, CelRule, std::less<>> rules;
  std::map<std::string, std::string, std::less<>> skipped;

  void add(std::string_view text, const char* family,
           std::function<void(const Json&, Violations&)> check) {
    rules.insert_or_assign(normalizeRule(text), CelRule{family, std::move(check)});
  }
  void skip(std::string_view text, const char* reason) {
    skipped.insert_or_assign(normalizeRule(text), reason);
  }

  Registry() {
    // .spec.targetRefs: sectionName must be specified when targetRefs includes 2 or more references
    // to the same target
    add(R"cel(self.all(p1, self.all(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name ? ((!has(p1.sectionName) || p1.sectionName == '') == (!has(p2.sectionName) || p2.sectionName == '')) : true)))cel",
        "targetRefs", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& p1) {
            return forAllOf(self, [&](const Json& p2) {
              return sameGkn(p1, p2)
                         ? emptyOrAbsent(p1, "sectionName") == emptyOrAbsent(p2, "sectionName")
                         : true;
            });
          });
        });
    // .spec.targetRefs: sectionName must be unique when targetRefs includes 2 or more references to
    // the same target
    add(R"cel(self.all(p1, self.exists_one(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.sectionName) || p1.sectionName == '') && (!has(p2.sectionName) || p2.sectionName == '')) || (has(p1.sectionName) && has(p2.sectionName) && p1.sectionName == p2.sectionName)))))cel",
        "targetRefs", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& p1) {
            return existsOne(self, [&](const Json& p2) {
              return sameGkn(p1, p2) &&
                     ((emptyOrAbsent(p1, "sectionName") && emptyOrAbsent(p2, "sectionName")) ||
                      (has(p1, "sectionName") && has(p2, "sectionName") &&
                       eq(p1, p2, "sectionName")));
            });
          });
        });
    // .spec.validation: must not contain both CACertificateRefs and WellKnownCACertificates
    add(R"cel(!(has(self.caCertificateRefs) && size(self.caCertificateRefs) > 0 && has(self.wellKnownCACertificates) && self.wellKnownCACertificates != ""))cel",
        "backend-tls", [](const Json& self, Violations& out) {
          if (sizeOf(self, "caCertificateRefs") > 0 && has(self, "wellKnownCACertificates") &&
              str(self, "wellKnownCACertificates") != "")
            fail(out);
        });
    // .spec.validation: must specify either CACertificateRefs or WellKnownCACertificates
    add(R"cel((has(self.caCertificateRefs) && size(self.caCertificateRefs) > 0 || has(self.wellKnownCACertificates) && self.wellKnownCACertificates != ""))cel",
        "backend-tls", [](const Json& self, Violations& out) {
          if (!(sizeOf(self, "caCertificateRefs") > 0 ||
                (has(self, "wellKnownCACertificates") &&
                 str(self, "wellKnownCACertificates") != "")))
            fail(out);
        });
    // .spec.validation.subjectAltNames[]: SubjectAltName element must contain Hostname, if Type is
    // set to Hostname
    add(R"cel(!(self.type == "Hostname" && (!has(self.hostname) || self.hostname == "")))cel",
        "backend-tls", [](const Json& self, Violations& out) {
          if (str(self, "type") == "Hostname" && emptyOrAbsent(self, "hostname")) fail(out);
        });
    // .spec.validation.subjectAltNames[]: SubjectAltName element must not contain Hostname, if Type
    // is not set to Hostname
    add(R"cel(!(self.type != "Hostname" && has(self.hostname) && self.hostname != ""))cel",
        "backend-tls", [](const Json& self, Violations& out) {
          if (str(self, "type") != "Hostname" && !emptyOrAbsent(self, "hostname")) fail(out);
        });
    // .spec.validation.subjectAltNames[]: SubjectAltName element must contain URI, if Type is set
    // to URI
    add(R"cel(!(self.type == "URI" && (!has(self.uri) || self.uri == "")))cel", "backend-tls",
        [](const Json& self, Violations& out) {
          if (str(self, "type") == "URI" && emptyOrAbsent(self, "uri")) fail(out);
        });
    // .spec.validation.subjectAltNames[]: SubjectAltName element must not contain URI, if Type is
    // not set to URI
    add(R"cel(!(self.type != "URI" && has(self.uri) && self.uri != ""))cel", "backend-tls",
        [](const Json& self, Violations& out) {
          if (str(self, "type") != "URI" && !emptyOrAbsent(self, "uri")) fail(out);
        });
    // .spec.controllerName
    skip(R"cel(self == oldSelf)cel",
         "transition rule (oldSelf): immutability is only checked on update against the stored "
         "object; file mode and `check` have no previous version to compare with");
    // .spec.addresses: IPAddress values must be unique
    add(R"cel(self.all(a1, a1.type == 'IPAddress' && has(a1.value) ? self.exists_one(a2, a2.type == a1.type && has(a2.value) && a2.value == a1.value) : true ))cel",
        "addresses", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& a1) {
            if (!(str(a1, "type") == "IPAddress" && has(a1, "value"))) return true;
            return existsOne(self, [&](const Json& a2) {
              return eq(a1, a2, "type") && has(a2, "value") && eq(a1, a2, "value");
            });
          });
        });
    // .spec.addresses: Hostname values must be unique
    add(R"cel(self.all(a1, a1.type == 'Hostname' && has(a1.value) ? self.exists_one(a2, a2.type == a1.type && has(a2.value) && a2.value == a1.value) : true ))cel",
        "addresses", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& a1) {
            if (!(str(a1, "type") == "Hostname" && has(a1, "value"))) return true;
            return existsOne(self, [&](const Json& a2) {
              return eq(a1, a2, "type") && has(a2, "value") && eq(a1, a2, "value");
            });
          });
        });
    // .spec.addresses[]: Hostname value must be empty or contain only valid characters (matching
    // ^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)
    add(R"cel(self.type == 'Hostname' ? (!has(self.value) || self.value.matches(r"""^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$""")): true)cel",
        "addresses", [](const Json& self, Violations& out) {
          if (str(self, "type") == "Hostname" && has(self, "value") &&
              !matches(str(self, "value"), wildcardHostnameRe()))
            fail(out);
        });
    // .spec.infrastructure.annotations: Annotation keys must be in the form of an optional DNS
    // subdomain prefix followed by a required name segment of up to 63 characters.
    add(R"cel(self.all(key, key.matches(r"""^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$""")))cel",
        "infrastructure", [](const Json& self, Violations& out) {
          static const RE2 kKey(
              R"re(^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$)re");
          forAllKeys(self, out, [&](std::string_view key) { return matches(key, kKey); });
        });
    // .spec.infrastructure.annotations: If specified, the annotation key's prefix must be a DNS
    // subdomain not longer than 253 characters in total.
    add(R"cel(self.all(key, key.split("/")[0].size() < 253))cel", "infrastructure",
        [](const Json& self, Violations& out) {
          forAllKeys(self, out, [&](std::string_view key) {
            return key.substr(0, key.find('/')).size() < 253;
          });
        });
    // .spec.listeners: tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']
    add(R"cel(self.all(l, l.protocol in ['HTTP', 'TCP', 'UDP'] ? !has(l.tls) : true))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l) {
            std::string_view p = str(l, "protocol");
            return (p == "HTTP" || p == "TCP" || p == "UDP") ? !has(l, "tls") : true;
          });
        });
    // .spec.listeners: tls mode must be Terminate for protocol HTTPS
    add(R"cel(self.all(l, (l.protocol == 'HTTPS' && has(l.tls)) ? (l.tls.mode == '' || l.tls.mode == 'Terminate') : true))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l) {
            if (!(str(l, "protocol") == "HTTPS" && has(l, "tls"))) return true;
            std::string_view mode = str(l["tls"], "mode");
            return mode == "" || mode == "Terminate";
          });
        });
    // .spec.listeners: tls mode must be set for protocol TLS
    add(R"cel(self.all(l, (l.protocol == 'TLS' ? has(l.tls) && has(l.tls.mode) && l.tls.mode != '' : true)))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l) {
            if (str(l, "protocol") != "TLS") return true;
            return has(l, "tls") && has(l["tls"], "mode") && str(l["tls"], "mode") != "";
          });
        });
    // .spec.listeners: hostname must not be specified for protocols ['TCP', 'UDP']
    add(R"cel(self.all(l, l.protocol in ['TCP', 'UDP'] ? (!has(l.hostname) || l.hostname == '') : true))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l) {
            std::string_view p = str(l, "protocol");
            return (p == "TCP" || p == "UDP") ? emptyOrAbsent(l, "hostname") : true;
          });
        });
    // .spec.listeners: Listener name must be unique within the Gateway
    add(R"cel(self.all(l1, self.exists_one(l2, l1.name == l2.name)))cel", "listeners",
        [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l1) {
            return existsOne(self, [&](const Json& l2) { return eq(l1, l2, "name"); });
          });
        });
    // .spec.listeners: Combination of port, protocol and hostname must be unique for each listener
    add(R"cel(self.all(l1, self.exists_one(l2, l1.port == l2.port && l1.protocol == l2.protocol && (has(l1.hostname) && has(l2.hostname) ? l1.hostname == l2.hostname : !has(l1.hostname) && !has(l2.hostname)))))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l1) {
            return existsOne(self, [&](const Json& l2) { return sameListenerAddress(l1, l2); });
          });
        });
    // .spec.listeners[].tls: certificateRefs or options must be specified when mode is Terminate
    add(R"cel(self.mode == 'Terminate' ? size(self.certificateRefs) > 0 || size(self.options) > 0 : true)cel",
        "listeners", [](const Json& self, Violations& out) {
          if (str(self, "mode") == "Terminate" && sizeOf(self, "certificateRefs") == 0 &&
              sizeOf(self, "options") == 0)
            fail(out);
        });
    // .spec.tls.frontend.perPort: Port for TLS configuration must be unique within the Gateway
    add(R"cel(self.all(t1, self.exists_one(t2, t1.port == t2.port)))cel", "listeners",
        [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& t1) {
            return existsOne(self, [&](const Json& t2) { return eq(t1, t2, "port"); });
          });
        });
    // .status.addresses[]: Hostname value must only contain valid characters (matching
    // ^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)
    add(R"cel(self.type == 'Hostname' ? self.value.matches(r"""^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"""): true)cel",
        "addresses", [](const Json& self, Violations& out) {
          if (str(self, "type") == "Hostname" && !matches(str(self, "value"), wildcardHostnameRe()))
            fail(out);
        });
    // .spec.parentRefs: sectionName or port must be specified when parentRefs includes 2 or more
    // references to the same parent
    add(R"cel(self.all(p1, self.all(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__)) ? ((!has(p1.sectionName) || p1.sectionName == '') == (!has(p2.sectionName) || p2.sectionName == '') && (!has(p1.port) || p1.port == 0) == (!has(p2.port) || p2.port == 0)): true)))cel",
        "parentRefs", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& p1) {
            return forAllOf(self, [&](const Json& p2) {
              if (!(sameGkn(p1, p2) && sameNamespace(p1, p2))) return true;
              return emptyOrAbsent(p1, "sectionName") == emptyOrAbsent(p2, "sectionName") &&
                     zeroOrAbsent(p1, "port") == zeroOrAbsent(p2, "port");
            });
          });
        });
    // .spec.parentRefs: sectionName or port must be unique when parentRefs includes 2 or more
    // references to the same parent
    add(R"cel(self.all(p1, self.exists_one(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__ )) && (((!has(p1.sectionName) || p1.sectionName == '') && (!has(p2.sectionName) || p2.sectionName == '')) || ( has(p1.sectionName) && has(p2.sectionName) && p1.sectionName == p2.sectionName)) && (((!has(p1.port) || p1.port == 0) && (!has(p2.port) || p2.port == 0)) || (has(p1.port) && has(p2.port) && p1.port == p2.port)))))cel",
        "parentRefs", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& p1) {
            return existsOne(self, [&](const Json& p2) {
              return sameGkn(p1, p2) && sameNamespace(p1, p2) &&
                     ((emptyOrAbsent(p1, "sectionName") && emptyOrAbsent(p2, "sectionName")) ||
                      (has(p1, "sectionName") && has(p2, "sectionName") &&
                       eq(p1, p2, "sectionName"))) &&
                     ((zeroOrAbsent(p1, "port") && zeroOrAbsent(p2, "port")) ||
                      (has(p1, "port") && has(p2, "port") && eq(p1, p2, "port")));
            });
          });
        });
    // .spec.rules: While 16 rules and 64 matches per rule are allowed, the total number of matches
    // across all rules in a route must be less than 128
    add(R"cel((self.size() > 0 ? (has(self[0].matches) ? self[0].matches.size() : 0) : 0) + (self.size() > 1 ? (has(self[1].matches) ? self[1].matches.size() : 0) : 0) + (self.size() > 2 ? (has(self[2].matches) ? self[2].matches.size() : 0) : 0) + (self.size() > 3 ? (has(self[3].matches) ? self[3].matches.size() : 0) : 0) + (self.size() > 4 ? (has(self[4].matches) ? self[4].matches.size() : 0) : 0) + (self.size() > 5 ? (has(self[5].matches) ? self[5].matches.size() : 0) : 0) + (self.size() > 6 ? (has(self[6].matches) ? self[6].matches.size() : 0) : 0) + (self.size() > 7 ? (has(self[7].matches) ? self[7].matches.size() : 0) : 0) + (self.size() > 8 ? (has(self[8].matches) ? self[8].matches.size() : 0) : 0) + (self.size() > 9 ? (has(self[9].matches) ? self[9].matches.size() : 0) : 0) + (self.size() > 10 ? (has(self[10].matches) ? self[10].matches.size() : 0) : 0) + (self.size() > 11 ? (has(self[11].matches) ? self[11].matches.size() : 0) : 0) + (self.size() > 12 ? (has(self[12].matches) ? self[12].matches.size() : 0) : 0) + (self.size() > 13 ? (has(self[13].matches) ? self[13].matches.size() : 0) : 0) + (self.size() > 14 ? (has(self[14].matches) ? self[14].matches.size() : 0) : 0) + (self.size() > 15 ? (has(self[15].matches) ? self[15].matches.size() : 0) : 0) <= 128)cel",
        "matches-limit", [](const Json& self, Violations& out) {
          if (totalMatches(self) > 128) fail(out);
        });
    // .spec.rules: Rule name must be unique within the route
    add(R"cel(self.all(l1, !has(l1.name) || self.exists_one(l2, has(l2.name) && l1.name == l2.name)))cel",
        "rule-names", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l1) {
            if (!has(l1, "name")) return true;
            return existsOne(self,
                             [&](const Json& l2) { return has(l2, "name") && eq(l1, l2, "name"); });
          });
        });
    // .spec.rules[].backendRefs[]: Must have port for Service reference
    add(R"cel((size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true)cel",
        "backendRefs", [](const Json& self, Violations& out) {
          if (str(self, "group").empty() && str(self, "kind") == "Service" && !has(self, "port"))
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters: RequestHeaderModifier filter cannot be repeated
    add(R"cel(self.filter(f, f.type == 'RequestHeaderModifier').size() <= 1)cel", "filters",
        [](const Json& self, Violations& out) {
          if (countType(self, "RequestHeaderModifier") > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters: ResponseHeaderModifier filter cannot be repeated
    add(R"cel(self.filter(f, f.type == 'ResponseHeaderModifier').size() <= 1)cel", "filters",
        [](const Json& self, Violations& out) {
          if (countType(self, "ResponseHeaderModifier") > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestHeaderModifier must be nil if the
    // filter.type is not RequestHeaderModifier
    add(R"cel(!(has(self.requestHeaderModifier) && self.type != 'RequestHeaderModifier'))cel",
        "filters", [](const Json& self, Violations& out) {
          if (has(self, "requestHeaderModifier") && str(self, "type") != "RequestHeaderModifier")
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestHeaderModifier must be specified for
    // RequestHeaderModifier filter.type
    add(R"cel(!(!has(self.requestHeaderModifier) && self.type == 'RequestHeaderModifier'))cel",
        "filters", [](const Json& self, Violations& out) {
          if (!has(self, "requestHeaderModifier") && str(self, "type") == "RequestHeaderModifier")
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.responseHeaderModifier must be nil if the
    // filter.type is not ResponseHeaderModifier
    add(R"cel(!(has(self.responseHeaderModifier) && self.type != 'ResponseHeaderModifier'))cel",
        "filters", [](const Json& self, Violations& out) {
          if (has(self, "responseHeaderModifier") && str(self, "type") != "ResponseHeaderModifier")
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.responseHeaderModifier must be specified for
    // ResponseHeaderModifier filter.type
    add(R"cel(!(!has(self.responseHeaderModifier) && self.type == 'ResponseHeaderModifier'))cel",
        "filters", [](const Json& self, Violations& out) {
          if (!has(self, "responseHeaderModifier") && str(self, "type") == "ResponseHeaderModifier")
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestMirror must be nil if the filter.type is
    // not RequestMirror
    add(R"cel(!(has(self.requestMirror) && self.type != 'RequestMirror'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "requestMirror") && str(self, "type") != "RequestMirror") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestMirror must be specified for
    // RequestMirror filter.type
    add(R"cel(!(!has(self.requestMirror) && self.type == 'RequestMirror'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "requestMirror") && str(self, "type") == "RequestMirror") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.extensionRef must be nil if the filter.type is
    // not ExtensionRef
    add(R"cel(!(has(self.extensionRef) && self.type != 'ExtensionRef'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "extensionRef") && str(self, "type") != "ExtensionRef") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.extensionRef must be specified for ExtensionRef
    // filter.type
    add(R"cel(!(!has(self.extensionRef) && self.type == 'ExtensionRef'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "extensionRef") && str(self, "type") == "ExtensionRef") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestMirror: Only one of percent or fraction may be
    // specified in HTTPRequestMirrorFilter
    add(R"cel(!(has(self.percent) && has(self.fraction)))cel", "mirror",
        [](const Json& self, Violations& out) {
          if (has(self, "percent") && has(self, "fraction")) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestMirror.fraction: numerator must be less than or
    // equal to denominator
    add(R"cel(self.numerator <= self.denominator)cel", "mirror",
        [](const Json& self, Violations& out) {
          const Json* n = child(self, "numerator");
          const Json* d = child(self, "denominator");
          if (n != nullptr && d != nullptr && n->is_number() && d->is_number() &&
              n->get<double>() > d->get<double>())
            fail(out);
        });
    // .spec.rules[].matches[].method: One or both of 'service' or 'method' must be specified
    add(R"cel(has(self.type) ? has(self.service) || has(self.method) : true)cel", "grpc-method",
        [](const Json& self, Violations& out) {
          if (has(self, "type") && !has(self, "service") && !has(self, "method")) fail(out);
        });
    // .spec.rules[].matches[].method: service must only contain valid characters (matching
    // ^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$)
    add(R"cel((!has(self.type) || self.type == 'Exact') && has(self.service) ? self.service.matches(r"""^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$"""): true)cel",
        "grpc-method", [](const Json& self, Violations& out) {
          static const RE2 kService(R"re(^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$)re");
          if ((!has(self, "type") || str(self, "type") == "Exact") && has(self, "service") &&
              !matches(str(self, "service"), kService))
            fail(out);
        });
    // .spec.rules[].matches[].method: method must only contain valid characters (matching
    // ^[A-Za-z_][A-Za-z_0-9]*$)
    add(R"cel((!has(self.type) || self.type == 'Exact') && has(self.method) ? self.method.matches(r"""^[A-Za-z_][A-Za-z_0-9]*$"""): true)cel",
        "grpc-method", [](const Json& self, Violations& out) {
          static const RE2 kMethod(R"re(^[A-Za-z_][A-Za-z_0-9]*$)re");
          if ((!has(self, "type") || str(self, "type") == "Exact") && has(self, "method") &&
              !matches(str(self, "method"), kMethod))
            fail(out);
        });
    // .spec.rules[].sessionPersistence: AbsoluteTimeout must be specified when cookie lifetimeType
    // is Permanent
    add(R"cel(!has(self.cookieConfig) || !has(self.cookieConfig.lifetimeType) || self.cookieConfig.lifetimeType != 'Permanent' || has(self.absoluteTimeout))cel",
        "session-persistence", [](const Json& self, Violations& out) {
          if (!has(self, "cookieConfig")) return;
          const Json& cookie = self["cookieConfig"];
          if (has(cookie, "lifetimeType") && str(cookie, "lifetimeType") == "Permanent" &&
              !has(self, "absoluteTimeout"))
            fail(out);
        });
    // .spec.rules[].sessionPersistence: cookieConfig can only be set with type Cookie
    add(R"cel(!has(self.cookieConfig) || self.type == 'Cookie')cel", "session-persistence",
        [](const Json& self, Violations& out) {
          if (has(self, "cookieConfig") && str(self, "type") != "Cookie") fail(out);
        });
    // .spec.rules: While 16 rules and 64 matches per rule are allowed, the total number of matches
    // across all rules in a route must be less than 128
    add(R"cel((self.size() > 0 ? self[0].matches.size() : 0) + (self.size() > 1 ? self[1].matches.size() : 0) + (self.size() > 2 ? self[2].matches.size() : 0) + (self.size() > 3 ? self[3].matches.size() : 0) + (self.size() > 4 ? self[4].matches.size() : 0) + (self.size() > 5 ? self[5].matches.size() : 0) + (self.size() > 6 ? self[6].matches.size() : 0) + (self.size() > 7 ? self[7].matches.size() : 0) + (self.size() > 8 ? self[8].matches.size() : 0) + (self.size() > 9 ? self[9].matches.size() : 0) + (self.size() > 10 ? self[10].matches.size() : 0) + (self.size() > 11 ? self[11].matches.size() : 0) + (self.size() > 12 ? self[12].matches.size() : 0) + (self.size() > 13 ? self[13].matches.size() : 0) + (self.size() > 14 ? self[14].matches.size() : 0) + (self.size() > 15 ? self[15].matches.size() : 0) <= 128)cel",
        "matches-limit", [](const Json& self, Violations& out) {
          if (totalMatches(self) > 128) fail(out);
        });
    // .spec.rules[]: RequestRedirect filter must not be used together with backendRefs
    add(R"cel((has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters) || self.filters.all(f, !has(f.requestRedirect))): true)cel",
        "redirect-rewrite", [](const Json& self, Violations& out) {
          if (sizeOf(self, "backendRefs") == 0 || !has(self, "filters")) return;
          const Json& filters = self["filters"];
          if (!filters.is_array()) return;
          for (const auto& f : filters) {
            if (has(f, "requestRedirect")) return fail(out);
          }
        });
    // .spec.rules[]: When using RequestRedirect filter with path.replacePrefixMatch, exactly one
    // PathPrefix match must be specified
    add(R"cel((has(self.filters) && self.filters.exists_one(f, has(f.requestRedirect) && has(f.requestRedirect.path) && f.requestRedirect.path.type == 'ReplacePrefixMatch' && has(f.requestRedirect.path.replacePrefixMatch))) ? ((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true)cel",
        "redirect-rewrite", [](const Json& self, Violations& out) {
          if (!has(self, "filters")) return;
          if (countWithPrefixReplace(self["filters"], "requestRedirect") == 1 &&
              !singlePrefixMatch(self))
            fail(out);
        });
    // .spec.rules[]: When using URLRewrite filter with path.replacePrefixMatch, exactly one
    // PathPrefix match must be specified
    add(R"cel((has(self.filters) && self.filters.exists_one(f, has(f.urlRewrite) && has(f.urlRewrite.path) && f.urlRewrite.path.type == 'ReplacePrefixMatch' && has(f.urlRewrite.path.replacePrefixMatch))) ? ((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true)cel",
        "redirect-rewrite", [](const Json& self, Violations& out) {
          if (!has(self, "filters")) return;
          if (countWithPrefixReplace(self["filters"], "urlRewrite") == 1 &&
              !singlePrefixMatch(self))
            fail(out);
        });
    // .spec.rules[]: Within backendRefs, when using RequestRedirect filter with
    // path.replacePrefixMatch, exactly one PathPrefix match must be specified
    add(R"cel((has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, has(f.requestRedirect) && has(f.requestRedirect.path) && f.requestRedirect.path.type == 'ReplacePrefixMatch' && has(f.requestRedirect.path.replacePrefixMatch))) )) ? ((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true)cel",
        "redirect-rewrite", [](const Json& self, Violations& out) {
          if (backendRefsWithPrefixReplace(self, "requestRedirect") == 1 &&
              !singlePrefixMatch(self))
            fail(out);
        });
    // .spec.rules[]: Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch,
    // exactly one PathPrefix match must be specified
    add(R"cel((has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, has(f.urlRewrite) && has(f.urlRewrite.path) && f.urlRewrite.path.type == 'ReplacePrefixMatch' && has(f.urlRewrite.path.replacePrefixMatch))) )) ? ((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true)cel",
        "redirect-rewrite", [](const Json& self, Violations& out) {
          if (backendRefsWithPrefixReplace(self, "urlRewrite") == 1 && !singlePrefixMatch(self))
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters: May specify either httpRouteFilterRequestRedirect or
    // httpRouteFilterRequestRewrite, but not both
    add(R"cel(!(self.exists(f, f.type == 'RequestRedirect') && self.exists(f, f.type == 'URLRewrite')))cel",
        "filters", [](const Json& self, Violations& out) {
          if (countType(self, "RequestRedirect") > 0 && countType(self, "URLRewrite") > 0)
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters: CORS filter cannot be repeated
    add(R"cel(self.filter(f, f.type == 'CORS').size() <= 1)cel", "filters",
        [](const Json& self, Violations& out) {
          if (countType(self, "CORS") > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters: RequestRedirect filter cannot be repeated
    add(R"cel(self.filter(f, f.type == 'RequestRedirect').size() <= 1)cel", "filters",
        [](const Json& self, Violations& out) {
          if (countType(self, "RequestRedirect") > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters: URLRewrite filter cannot be repeated
    add(R"cel(self.filter(f, f.type == 'URLRewrite').size() <= 1)cel", "filters",
        [](const Json& self, Violations& out) {
          if (countType(self, "URLRewrite") > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.cors must be nil if the filter.type is not CORS
    add(R"cel(!(has(self.cors) && self.type != 'CORS'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "cors") && str(self, "type") != "CORS") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.cors must be specified for CORS filter.type
    add(R"cel(!(!has(self.cors) && self.type == 'CORS'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "cors") && str(self, "type") == "CORS") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestRedirect must be nil if the filter.type
    // is not RequestRedirect
    add(R"cel(!(has(self.requestRedirect) && self.type != 'RequestRedirect'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "requestRedirect") && str(self, "type") != "RequestRedirect") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.requestRedirect must be specified for
    // RequestRedirect filter.type
    add(R"cel(!(!has(self.requestRedirect) && self.type == 'RequestRedirect'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "requestRedirect") && str(self, "type") == "RequestRedirect") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.urlRewrite must be nil if the filter.type is
    // not URLRewrite
    add(R"cel(!(has(self.urlRewrite) && self.type != 'URLRewrite'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "urlRewrite") && str(self, "type") != "URLRewrite") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.urlRewrite must be specified for URLRewrite
    // filter.type
    add(R"cel(!(!has(self.urlRewrite) && self.type == 'URLRewrite'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "urlRewrite") && str(self, "type") == "URLRewrite") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.externalAuth must be nil if the filter.type is
    // not ExternalAuth
    add(R"cel(!(has(self.externalAuth) && self.type != 'ExternalAuth'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (has(self, "externalAuth") && str(self, "type") != "ExternalAuth") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[]: filter.externalAuth must be specified for ExternalAuth
    // filter.type
    add(R"cel(!(!has(self.externalAuth) && self.type == 'ExternalAuth'))cel", "filters",
        [](const Json& self, Violations& out) {
          if (!has(self, "externalAuth") && str(self, "type") == "ExternalAuth") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].cors.allowHeaders: AllowHeaders cannot contain '*'
    // alongside other methods
    add(R"cel(!('*' in self && self.size() > 1))cel", "cors",
        [](const Json& self, Violations& out) {
          if (!self.is_array()) return;
          bool star = false;
          for (const auto& v : self)
            star = star || (v.is_string() && v.get_ref<const std::string&>() == "*");
          if (star && self.size() > 1) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].externalAuth: grpc must be specified when protocol is
    // set to 'GRPC'
    add(R"cel(self.protocol == 'GRPC' ? has(self.grpc) : true)cel", "external-auth",
        [](const Json& self, Violations& out) {
          if (str(self, "protocol") == "GRPC" && !has(self, "grpc")) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].externalAuth: protocol must be 'GRPC' when grpc is set
    add(R"cel(has(self.grpc) ? self.protocol == 'GRPC' : true)cel", "external-auth",
        [](const Json& self, Violations& out) {
          if (has(self, "grpc") && str(self, "protocol") != "GRPC") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].externalAuth: http must be specified when protocol is
    // set to 'HTTP'
    add(R"cel(self.protocol == 'HTTP' ? has(self.http) : true)cel", "external-auth",
        [](const Json& self, Violations& out) {
          if (str(self, "protocol") == "HTTP" && !has(self, "http")) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].externalAuth: protocol must be 'HTTP' when http is set
    add(R"cel(has(self.http) ? self.protocol == 'HTTP' : true)cel", "external-auth",
        [](const Json& self, Violations& out) {
          if (has(self, "http") && str(self, "protocol") != "HTTP") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestRedirect.path: replaceFullPath must be specified
    // when type is set to 'ReplaceFullPath'
    add(R"cel(self.type == 'ReplaceFullPath' ? has(self.replaceFullPath) : true)cel",
        "path-modifier", [](const Json& self, Violations& out) {
          if (str(self, "type") == "ReplaceFullPath" && !has(self, "replaceFullPath")) fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestRedirect.path: type must be 'ReplaceFullPath'
    // when replaceFullPath is set
    add(R"cel(has(self.replaceFullPath) ? self.type == 'ReplaceFullPath' : true)cel",
        "path-modifier", [](const Json& self, Violations& out) {
          if (has(self, "replaceFullPath") && str(self, "type") != "ReplaceFullPath") fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestRedirect.path: replacePrefixMatch must be
    // specified when type is set to 'ReplacePrefixMatch'
    add(R"cel(self.type == 'ReplacePrefixMatch' ? has(self.replacePrefixMatch) : true)cel",
        "path-modifier", [](const Json& self, Violations& out) {
          if (str(self, "type") == "ReplacePrefixMatch" && !has(self, "replacePrefixMatch"))
            fail(out);
        });
    // .spec.rules[].backendRefs[].filters[].requestRedirect.path: type must be 'ReplacePrefixMatch'
    // when replacePrefixMatch is set
    add(R"cel(has(self.replacePrefixMatch) ? self.type == 'ReplacePrefixMatch' : true)cel",
        "path-modifier", [](const Json& self, Violations& out) {
          if (has(self, "replacePrefixMatch") && str(self, "type") != "ReplacePrefixMatch")
            fail(out);
        });
    // .spec.rules[].matches[].path: value must be an absolute path and start with '/' when type one
    // of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? self.value.startsWith('/') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (!value.starts_with('/')) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '//' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('//') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find("//") != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '/./' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('/./') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find("/./") != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '/../' when type one of ['Exact',
    // 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('/../') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find("/../") != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '%2f' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('%2f') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find("%2f") != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '%2F' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('%2F') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find("%2F") != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not contain '#' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.contains('#') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.find('#') != std::string_view::npos) fail(out);
        });
    // .spec.rules[].matches[].path: must not end with '/..' when type one of ['Exact',
    // 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.endsWith('/..') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.ends_with("/..")) fail(out);
        });
    // .spec.rules[].matches[].path: must not end with '/.' when type one of ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? !self.value.endsWith('/.') : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          if (!exactOrPrefix(self)) return;
          std::string_view value = str(self, "value");
          if (value.ends_with("/.")) fail(out);
        });
    // .spec.rules[].matches[].path: type must be one of ['Exact', 'PathPrefix',
    // 'RegularExpression']
    add(R"cel(self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression')cel",
        "path-match", [](const Json& self, Violations& out) {
          std::string_view type = str(self, "type");
          if (type != "Exact" && type != "PathPrefix" && type != "RegularExpression") fail(out);
        });
    // .spec.rules[].matches[].path: must only contain valid characters (matching
    // ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']
    add(R"cel((self.type in ['Exact','PathPrefix']) ? self.value.matches(r"""^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$""") : true)cel",
        "path-match", [](const Json& self, Violations& out) {
          static const RE2 kPath(R"re(^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$)re");
          if (exactOrPrefix(self) && !matches(str(self, "value"), kPath)) fail(out);
        });
    // .spec.rules[].timeouts: backendRequest timeout cannot be longer than request timeout
    add(R"cel(!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request)))cel",
        "timeouts", [](const Json& self, Violations& out) {
          if (!has(self, "request") || !has(self, "backendRequest")) return;
          auto request = parseGoDuration(str(self, "request"));
          auto backend = parseGoDuration(str(self, "backendRequest"));
          if (request && backend && *request != 0 && *backend > *request) fail(out);
        });
    // .spec.listeners: Combination of port, protocol and hostname must be unique for each listener
    add(R"cel(self.all(l1, !has(l1.port) || self.exists_one(l2, has(l2.port) && l1.port == l2.port && l1.protocol == l2.protocol && (has(l1.hostname) && has(l2.hostname) ? l1.hostname == l2.hostname : !has(l1.hostname) && !has(l2.hostname)))))cel",
        "listeners", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& l1) {
            if (!has(l1, "port")) return true;
            return existsOne(self, [&](const Json& l2) {
              return has(l2, "port") && sameListenerAddress(l1, l2);
            });
          });
        });
    // .spec.hostnames: Hostnames cannot contain an IP
    add(R"cel(self.all(h, !isIP(h)))cel", "hostnames", [](const Json& self, Violations& out) {
      forAll(self, out, [&](const Json& h) { return !isIP(str(&h)); });
    });
    // .spec.hostnames: Hostnames must be valid based on RFC-1123
    add(R"cel(self.all(h, !h.contains('*') ? h.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$') : true))cel",
        "hostnames", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& h) {
            std::string_view s = str(&h);
            return s.find('*') != std::string_view::npos || matches(s, rfc1123Re());
          });
        });
    // .spec.hostnames: Wildcards on hostnames must be the first label, and the rest of hostname
    // must be valid based on RFC-1123
    add(R"cel(self.all(h, h.contains('*') ? (h.startsWith('*.') && h.substring(2).matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$')) : true))cel",
        "hostnames", [](const Json& self, Violations& out) {
          forAll(self, out, [&](const Json& h) {
            std::string_view s = str(&h);
            if (s.find('*') == std::string_view::npos) return true;
            return s.starts_with("*.") && matches(s.substr(2), rfc1123Re());
          });
        });
    // .spec: externalHostname must be set when type is ExternalHostname and must be unset otherwise
    add(R"cel(self.type == 'ExternalHostname' ? has(self.externalHostname) : !has(self.externalHostname))cel",
        "xbackend", [](const Json& self, Violations& out) {
          bool external = str(self, "type") == "ExternalHostname";
          if (external != has(self, "externalHostname")) fail(out);
        });
    // .spec.externalHostname.hostname: hostname must not be an IP address or end with
    // .cluster.local
    add(R"cel(!self.endsWith('.cluster.local'))cel", "xbackend",
        [](const Json& self, Violations& out) {
          if (str(&self).ends_with(".cluster.local")) fail(out);
        });
    // .spec.port.name: Name must be a valid DNS label
    add(R"cel(size(self) == 0 || format.dns1123Label().validate(self) == null)cel", "xbackend",
        [](const Json& self, Violations& out) {
          std::string_view s = str(&self);
          if (!s.empty() && !isDns1123Label(s)) fail(out);
        });
    // .spec.tls: clientCertificateRef must be set if and only if mode is ClientAndServer
    add(R"cel(self.mode == 'ClientAndServer' ? has(self.clientCertificateRef) : !has(self.clientCertificateRef))cel",
        "xbackend", [](const Json& self, Violations& out) {
          bool both = str(self, "mode") == "ClientAndServer";
          if (both != has(self, "clientCertificateRef")) fail(out);
        });
    // .spec.retryConstraint.budget.interval: interval cannot be greater than one hour or less than
    // one second
    add(R"cel(!(duration(self) < duration('1s') || duration(self) > duration('1h')))cel",
        "durations", [](const Json& self, Violations& out) {
          auto d = parseGoDuration(str(&self));
          if (d && (*d < kSecond || *d > kHour)) fail(out);
        });
    // .spec.retryConstraint.minRetryRate.interval: interval cannot be greater than one hour
    add(R"cel(!(duration(self) == duration('0s') || duration(self) > duration('1h')))cel",
        "durations", [](const Json& self, Violations& out) {
          auto d = parseGoDuration(str(&self));
          if (d && (*d == 0 || *d > kHour)) fail(out);
        });
  }
};

const Registry& registry() {
  static const Registry kRegistry;
  return kRegistry;
}

}  // namespace

std::string normalizeRule(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

const CelRule* findCelRule(std::string_view normalizedRule) {
  const auto& r = registry();
  auto it = r.rules.find(normalizedRule);
  return it == r.rules.end() ? nullptr : &it->second;
}

const char* skippedCelRuleReason(std::string_view normalizedRule) {
  const auto& r = registry();
  auto it = r.skipped.find(normalizedRule);
  return it == r.skipped.end() ? nullptr : it->second.c_str();
}

size_t implementedCelRuleCount() { return registry().rules.size(); }
size_t skippedCelRuleCount() { return registry().skipped.size(); }

}  // namespace archway::api::validation
