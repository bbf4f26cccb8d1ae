#include "api/validation.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "api/core_types.h"
#include "api/schema.h"
#include "api/validation_cel.h"
#include "api/validation_util.h"

namespace archway::api {

using namespace validation;  // NOLINT: small helpers only

namespace {

constexpr std::string_view kGatewayGroup = "gateway.networking.k8s.io";
constexpr std::string_view kGatewayExperimentalGroup = "gateway.networking.x-k8s.io";

bool isVendorGroup(std::string_view group) {
  return group == "konghq.com" || group.ends_with(".konghq.com");
}

const char* typeName(SchemaNode::Type t) {
  switch (t) {
    case SchemaNode::Type::kObject:
      return "object";
    case SchemaNode::Type::kArray:
      return "array";
    case SchemaNode::Type::kString:
      return "string";
    case SchemaNode::Type::kInteger:
      return "integer";
    case SchemaNode::Type::kNumber:
      return "number";
    case SchemaNode::Type::kBoolean:
      return "boolean";
    case SchemaNode::Type::kAny:
      break;
  }
  return "any";
}

std::string jsonTypeName(const Json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

// Type check; an integral float is accepted (and normalised) where an integer is expected.
bool typeMatches(Json& v, SchemaNode::Type t) {
  switch (t) {
    case SchemaNode::Type::kAny:
      return true;
    case SchemaNode::Type::kObject:
      return v.is_object();
    case SchemaNode::Type::kArray:
      return v.is_array();
    case SchemaNode::Type::kString:
      return v.is_string();
    case SchemaNode::Type::kBoolean:
      return v.is_boolean();
    case SchemaNode::Type::kNumber:
      return v.is_number();
    case SchemaNode::Type::kInteger:
      if (v.is_number_integer()) return true;
      if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e15) {
          v = static_cast<int64_t>(d);
          return true;
        }
      }
      return false;
  }
  return false;
}

std::string formatNumber(double d) {
  if (std::floor(d) == d && std::fabs(d) < 9.0e15) return std::to_string(static_cast<int64_t>(d));
  return Json(d).dump();
}

std::string enumList(const std::vector<Json>& values) {
  std::string out;
  for (const auto& v : values) {
    if (!out.empty()) out += ", ";
    out += shortJson(v);
  }
  return out;
}

bool formatValid(std::string_view format, const Json& v) {
  if (format == "ipv4") return v.is_string() && isIPv4(v.get_ref<const std::string&>());
  if (format == "ipv6") return v.is_string() && isIPv6(v.get_ref<const std::string&>());
  if (format == "date-time") return v.is_string() && isDateTime(v.get_ref<const std::string&>());
  if (format == "int32" && v.is_number_integer()) {
    auto i = v.get<int64_t>();
    return i >= INT32_MIN && i <= INT32_MAX;
  }
  return true;  // other formats (int64, ...) carry no extra constraint here
}

// Whether a value conforms to a (small, value-level) schema: used for oneOf/anyOf/not.
// `discriminatorFailed` is set when an enum or `not` constraint fails: such a branch is
// not the one the author meant, and its failure is not worth explaining.
bool conforms(const Json& v, const SchemaNode& s, std::string* why, bool* discriminatorFailed) {
  Json copy;
  if (s.type != SchemaNode::Type::kAny) {
    copy = v;
    if (!typeMatches(copy, s.type)) {
      if (why) *why = std::string("must be of type ") + typeName(s.type);
      return false;
    }
  }
  if (!s.enumValues.empty() &&
      std::find(s.enumValues.begin(), s.enumValues.end(), v) == s.enumValues.end()) {
    if (discriminatorFailed) *discriminatorFailed = true;
    if (why) *why = "must be one of " + enumList(s.enumValues);
    return false;
  }
  if (!s.format.empty() && !formatValid(s.format, v)) {
    if (why) *why = "must be of format " + s.format;
    return false;
  }
  if (s.pattern && v.is_string()) {
    const auto& text = v.get_ref<const std::string&>();
    if (!RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *s.pattern)) {
      if (why) *why = "must match '" + s.patternText + "'";
      return false;
    }
  }
  if (v.is_object()) {
    for (const auto& [name, sub] : s.properties) {
      const Json* c = child(v, name);
      if (c == nullptr) continue;
      std::string subWhy;
      if (!conforms(*c, *sub, why ? &subWhy : nullptr, discriminatorFailed)) {
        if (why) *why = name + ": " + subWhy;
        return false;
      }
    }
  }
  if (s.notSchema && conforms(v, *s.notSchema, nullptr, nullptr)) {
    if (discriminatorFailed) *discriminatorFailed = true;
    if (why) *why = "must not match the excluded schema";
    return false;
  }
  if (!s.anyOf.empty()) {
    bool any = false;
    std::string alternatives;
    for (const auto& b : s.anyOf) {
      std::string bWhy;
      if (conforms(v, *b, &bWhy, nullptr)) {
        any = true;
        break;
      }
      alternatives += alternatives.empty() ? bWhy : " or " + bWhy;
    }
    if (!any) {
      if (why) *why = alternatives;
      return false;
    }
  }
  for (const auto& b : s.allOf) {
    if (!conforms(v, *b, why, discriminatorFailed)) return false;
  }
  if (!s.oneOf.empty()) {
    size_t passed = 0;
    for (const auto& b : s.oneOf) passed += conforms(v, *b, nullptr, nullptr) ? 1 : 0;
    if (passed != 1) {
      if (why) *why = "must validate one and only one schema (oneOf)";
      return false;
    }
  }
  return true;
}

class Validator final : public ValidationSink {
 public:
  Validator(Object& object, std::vector<Diagnostic>& diagnostics)
      : object_(object), diagnostics_(diagnostics) {}

  void error(const std::string& path, const std::string& what) override {
    if (object_.validationErrors.size() >= kMaxErrorsPerObject) {
      ++dropped_;
      return;
    }
    std::string text = path.empty() ? what : path + ": " + what;
    diagnostics_.push_back({Diagnostic::Severity::kError, object_.locationOf(path),
                            object_.displayName() + ": " + text});
    object_.validationErrors.push_back(std::move(text));
  }

  void warning(const std::string& path, const std::string& what) override {
    if (warnings_++ >= kMaxErrorsPerObject) return;
    diagnostics_.push_back(
        {Diagnostic::Severity::kWarning, object_.locationOf(path),
         object_.displayName() + ": " + (path.empty() ? what : path + ": " + what)});
  }

  void finish() {
    if (dropped_ > 0) {
      std::string text = "too many errors: " + std::to_string(dropped_) + " more not shown";
      diagnostics_.push_back(
          {Diagnostic::Severity::kError, object_.location, object_.displayName() + ": " + text});
      object_.validationErrors.push_back(std::move(text));
    }
  }

  bool full() const { return dropped_ > 0; }

  // Validates (pruning and defaulting) the value at `path` against `s`.
  void walk(Json& v, const SchemaNode& s, std::string& path) {
    if (full()) return;
    if (v.is_null()) {
      if (!s.nullable)
        error(path, std::string("Invalid value: null: must be of type ") + typeName(s.type));
      return;
    }
    if (!typeMatches(v, s.type)) {
      error(path, "Invalid value: " + shortJson(v) + ": must be of type " + typeName(s.type) +
                      " (got " + jsonTypeName(v) + ")");
      return;
    }
    if (!s.enumValues.empty() &&
        std::find(s.enumValues.begin(), s.enumValues.end(), v) == s.enumValues.end()) {
      error(path,
            "Unsupported value: " + shortJson(v) + ": supported values: " + enumList(s.enumValues));
    }
    bool ruleBudgetOk = true;  // CEL rules assume the schema's list bounds
    if (v.is_object()) {
      walkObject(v, s, path);
    } else if (v.is_array()) {
      ruleBudgetOk = walkArray(v, s, path);
    } else if (v.is_string()) {
      checkString(v.get_ref<const std::string&>(), s, path);
    } else if (v.is_number()) {
      checkNumber(v, s, path);
    }
    if (!s.oneOf.empty() || !s.anyOf.empty() || !s.allOf.empty() || s.notSchema) {
      std::string why;
      if (!conformsCombinators(v, s, &why))
        error(path, "Invalid value: " + shortJson(v) + ": " + why);
    }
    if (ruleBudgetOk) runRules(v, s, path);
  }

 private:
  static bool conformsCombinators(const Json& v, const SchemaNode& s, std::string* why) {
    for (const auto& b : s.allOf) {
      if (!conforms(v, *b, why, nullptr)) return false;
    }
    if (s.notSchema && conforms(v, *s.notSchema, nullptr, nullptr)) {
      *why = "must not match the excluded schema";
      return false;
    }
    if (!s.anyOf.empty()) {
      std::string alternatives;
      bool any = false;
      for (const auto& b : s.anyOf) {
        std::string bWhy;
        if (conforms(v, *b, &bWhy, nullptr)) {
          any = true;
          break;
        }
        alternatives += alternatives.empty() ? bWhy : " or " + bWhy;
      }
      if (!any) {
        *why = alternatives;
        return false;
      }
    }
    if (!s.oneOf.empty()) {
      size_t passed = 0;
      std::string explained;
      for (const auto& b : s.oneOf) {
        std::string bWhy;
        bool discriminatorFailed = false;
        if (conforms(v, *b, &bWhy, &discriminatorFailed)) {
          ++passed;
        } else if (!discriminatorFailed && explained.empty()) {
          explained = bWhy;
        }
      }
      if (passed != 1) {
        *why = "must validate one and only one schema (oneOf)";
        if (passed == 0 && !explained.empty()) *why += ": " + explained;
        return false;
      }
    }
    return true;
  }

  const SchemaNode* propertySchema(const SchemaNode& s, std::string_view key) const {
    auto it = s.properties.find(key);
    if (it != s.properties.end()) return it->second.get();
    return s.additionalProperties.get();
  }

  void walkObject(Json& v, const SchemaNode& s, std::string& path) {
    const bool keepsAll = s.preserveUnknown || (s.type == SchemaNode::Type::kAny &&
                                                s.properties.empty() && !s.additionalProperties);
    if (!keepsAll) {
      for (auto it = v.begin(); it != v.end();) {
        const SchemaNode* sub = propertySchema(s, it.key());
        if (sub == nullptr) {
          warning(childPath(path, it.key()), "unknown field, ignored");
          it = v.erase(it);
        } else if (it->is_null() && !sub->nullable) {
          it = v.erase(it);  // the API server prunes nulls of non-nullable fields
        } else {
          ++it;
        }
      }
    }
    for (const auto& [name, sub] : s.properties) {
      if (sub->defaultValue && !v.contains(name)) v[name] = *sub->defaultValue;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      const SchemaNode* sub = propertySchema(s, it.key());
      if (sub == nullptr) continue;
      size_t mark = path.size();
      appendKey(path, it.key());
      walk(*it, *sub, path);
      path.resize(mark);
    }
    for (const auto& r : s.required) {
      if (!v.contains(r)) error(childPath(path, r), "Required value");
    }
    if (s.maxProperties && static_cast<int64_t>(v.size()) > *s.maxProperties) {
      error(path, "Too many: " + std::to_string(v.size()) + ": must have at most " +
                      std::to_string(*s.maxProperties) + " items");
    }
    if (s.minProperties && static_cast<int64_t>(v.size()) < *s.minProperties) {
      error(path, "Invalid value: " + std::to_string(v.size()) + ": should have at least " +
                      std::to_string(*s.minProperties) + " properties");
    }
  }

  // Returns false when the list is longer than its maxItems (CEL rules are then skipped:
  // their cost is bounded by maxItems in the API server).
  bool walkArray(Json& v, const SchemaNode& s, std::string& path) {
    bool withinBounds = true;
    if (s.maxItems && static_cast<int64_t>(v.size()) > *s.maxItems) {
      error(path, "Too many: " + std::to_string(v.size()) + ": must have at most " +
                      std::to_string(*s.maxItems) + " items");
      withinBounds = false;
    }
    if (s.minItems && static_cast<int64_t>(v.size()) < *s.minItems) {
      error(path, "Invalid value: " + std::to_string(v.size()) + ": should have at least " +
                      std::to_string(*s.minItems) + " items");
    }
    if (s.items) {
      for (size_t i = 0; i < v.size() && !full(); ++i) {
        size_t mark = path.size();
        path += "[" + std::to_string(i) + "]";
        walk(v[i], *s.items, path);
        path.resize(mark);
      }
    }
    if (s.listType == SchemaNode::ListType::kSet) {
      auto less = [](const Json* a, const Json* b) { return *a < *b; };
      std::set<const Json*, decltype(less)> seen(less);
      for (size_t i = 0; i < v.size(); ++i) {
        if (!seen.insert(&v[i]).second) {
          error(path + "[" + std::to_string(i) + "]", "Duplicate value: " + shortJson(v[i]));
        }
      }
    } else if (s.listType == SchemaNode::ListType::kMap && !s.listMapKeys.empty()) {
      std::set<Json> seen;
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_object()) continue;
        Json key = Json::object();
        for (const auto& k : s.listMapKeys) {
          auto it = v[i].find(k);
          key[k] = it == v[i].end() ? Json() : *it;
        }
        if (!seen.insert(key).second) {
          error(path + "[" + std::to_string(i) + "]",
                "Duplicate value: " + key.dump(-1, ' ', false, Json::error_handler_t::replace));
        }
      }
    }
    return withinBounds;
  }

  void checkString(const std::string& text, const SchemaNode& s, const std::string& path) {
    if (s.maxLength || s.minLength) {
      size_t length = utf8Length(text);
      if (s.maxLength && static_cast<int64_t>(length) > *s.maxLength) {
        error(path,
              "Too long: may not be more than " + std::to_string(*s.maxLength) + " characters");
      }
      if (s.minLength && static_cast<int64_t>(length) < *s.minLength) {
        error(path, "Invalid value: " + shortJson(text) + ": should be at least " +
                        std::to_string(*s.minLength) + " chars long");
      }
    }
    if (s.pattern && !RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *s.pattern)) {
      error(path, "Invalid value: " + shortJson(text) + ": should match '" + s.patternText + "'");
    }
    if (!s.format.empty() && !formatValid(s.format, Json(text))) {
      error(path, "Invalid value: " + shortJson(text) + ": must be of format " + s.format);
    }
  }

  void checkNumber(const Json& v, const SchemaNode& s, const std::string& path) {
    double d = v.get<double>();
    if (s.minimum && (d < *s.minimum || (s.exclusiveMinimum && d == *s.minimum))) {
      error(path, "Invalid value: " + shortJson(v) + ": should be greater than " +
                      std::string(s.exclusiveMinimum ? "" : "or equal to ") +
                      formatNumber(*s.minimum));
    }
    if (s.maximum && (d > *s.maximum || (s.exclusiveMaximum && d == *s.maximum))) {
      error(path, "Invalid value: " + shortJson(v) + ": should be less than " +
                      std::string(s.exclusiveMaximum ? "" : "or equal to ") +
                      formatNumber(*s.maximum));
    }
    if (!s.format.empty() && !formatValid(s.format, v)) {
      error(path, "Invalid value: " + shortJson(v) + ": out of range for format " + s.format);
    }
  }

  void runRules(const Json& v, const SchemaNode& s, const std::string& path) {
    for (const auto& rule : s.rules) {
      if (rule.impl == nullptr) continue;  // documented as skipped (or flagged by the test)
      Violations violations;
      rule.impl->check(v, violations);
      for (const auto& sub : violations) error(path + sub, rule.message);
    }
  }

  static std::string childPath(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static void appendKey(std::string& path, std::string_view key) {
    if (!path.empty()) path += '.';
    path += key;
  }

  Object& object_;
  std::vector<Diagnostic>& diagnostics_;
  size_t dropped_ = 0;
  size_t warnings_ = 0;
};

const char* nameRuleText(CoreKind::NameRule rule) {
  switch (rule) {
    case CoreKind::NameRule::kLabel:
      return "must be a lowercase RFC 1123 label (lowercase alphanumerics or '-', starting and "
             "ending with an alphanumeric, at most 63 characters)";
    case CoreKind::NameRule::kDns1035:
      return "must be a DNS-1035 label (lowercase alphanumerics or '-', starting with a letter "
             "and ending with an alphanumeric, at most 63 characters)";
    case CoreKind::NameRule::kSubdomain:
      break;
  }
  return "must be a lowercase RFC 1123 subdomain (lowercase alphanumerics, '-' or '.', starting "
         "and ending with an alphanumeric, at most 253 characters)";
}

bool nameValid(CoreKind::NameRule rule, std::string_view name) {
  switch (rule) {
    case CoreKind::NameRule::kLabel:
      return isDns1123Label(name);
    case CoreKind::NameRule::kDns1035:
      return isDns1035Label(name);
    case CoreKind::NameRule::kSubdomain:
      break;
  }
  return isDns1123Subdomain(name);
}

void checkStringMap(const Json& md, const char* key, bool labels, ValidationSink& sink) {
  const Json* m = child(md, key);
  if (m == nullptr || m->is_null()) return;
  std::string base = std::string("metadata.") + key;
  if (!m->is_object()) {
    sink.error(base, "Invalid value: " + shortJson(*m) + ": must be of type object");
    return;
  }
  size_t total = 0;
  for (const auto& [k, value] : m->items()) {
    std::string path = base + "." + k;
    if (std::string why = qualifiedNameError(k); !why.empty()) {
      sink.error(path, "Invalid value: " + shortJson(Json(k)) + ": key " + why);
    }
    if (!value.is_string()) {
      sink.error(path, "Invalid value: " + shortJson(value) + ": must be of type string");
      continue;
    }
    const auto& s = value.get_ref<const std::string&>();
    total += k.size() + s.size();
    if (labels && !isLabelValue(s)) {
      sink.error(path, "Invalid value: " + shortJson(value) +
                           ": a label value must be empty or consist of alphanumeric characters, "
                           "'-', '_' or '.', start and end with an alphanumeric character, and "
                           "be at most 63 characters");
    }
  }
  if (!labels && total > 256 * 1024) {
    sink.error(base, "Too long: must have at most 262144 bytes");
  }
}

// metadata.name/namespace, labels, annotations; namespace defaulting by scope.
void checkMetadata(Object& o, bool namespaced, CoreKind::NameRule nameRule, ValidationSink& sink) {
  auto mdIt = o.body.find("metadata");
  if (mdIt == o.body.end() || !mdIt->is_object()) {
    sink.error("metadata", "Required value");
    return;
  }
  Json& md = *mdIt;
  if (!nameValid(nameRule, o.name)) {
    sink.error("metadata.name",
               "Invalid value: " + shortJson(Json(o.name)) + ": " + nameRuleText(nameRule));
  }
  if (const Json* ns = child(md, "namespace");
      ns != nullptr && !ns->is_null() && !ns->is_string()) {
    sink.error("metadata.namespace",
               "Invalid value: " + shortJson(*ns) + ": must be of type string");
  }
  if (namespaced) {
    if (o.ns.empty()) {
      o.ns = "default";  // what kubectl does for a manifest without a namespace
      md["namespace"] = o.ns;
    } else if (!isDns1123Label(o.ns)) {
      sink.error("metadata.namespace", "Invalid value: " + shortJson(Json(o.ns)) + ": " +
                                           nameRuleText(CoreKind::NameRule::kLabel));
    }
  } else if (!o.ns.empty() || md.contains("namespace")) {
    o.ns.clear();
    sink.warning("metadata.namespace", "ignored: " + o.kind + " is cluster-scoped");
    md.erase("namespace");
  }
  checkStringMap(md, "labels", true, sink);
  checkStringMap(md, "annotations", false, sink);
}

void validateGatewayApi(Object& o, const Crd& crd, Validator& v,
                        std::vector<Diagnostic>& diagnostics) {
  const CrdVersion* version = crd.version(o.version());
  if (version == nullptr || !version->served || !version->schema) {
    v.error("apiVersion", "Invalid value: " + shortJson(Json(o.apiVersion)) + ": version " +
                              o.version() + " of " + crd.kind +
                              " is not served (served: " + crd.servedVersions() + ")");
    return;
  }
  if (version->deprecated) {
    v.warning("apiVersion", version->deprecationWarning.empty()
                                ? o.apiVersion + " " + crd.kind + " is deprecated"
                                : version->deprecationWarning);
  }
  checkMetadata(o, crd.namespaced, CoreKind::NameRule::kSubdomain, v);
  const SchemaNode& root = *version->schema;
  // apiVersion, kind and metadata are the API machinery's; status is written by controllers
  // through the status subresource and ignored on create, so neither is validated here.
  for (auto it = o.body.begin(); it != o.body.end();) {
    const std::string& key = it.key();
    if (key == "apiVersion" || key == "kind" || key == "metadata" || key == "status") {
      ++it;
      continue;
    }
    auto prop = root.properties.find(key);
    if (prop == root.properties.end()) {
      v.warning(key, "unknown field, ignored");
      it = o.body.erase(it);
      continue;
    }
    if (it->is_null() && !prop->second->nullable) {
      it = o.body.erase(it);
      continue;
    }
    ++it;
  }
  for (const auto& [name, sub] : root.properties) {
    if (name == "status" || name == "metadata") continue;
    if (sub->defaultValue && !o.body.contains(name)) o.body[name] = *sub->defaultValue;
  }
  for (const auto& [name, sub] : root.properties) {
    if (name == "status" || name == "metadata" || name == "apiVersion" || name == "kind") continue;
    auto it = o.body.find(name);
    if (it == o.body.end()) continue;
    std::string path = name;
    v.walk(*it, *sub, path);
  }
  for (const auto& r : root.required) {
    if (!o.body.contains(r)) v.error(r, "Required value");
  }
  // CEL rules on the root itself (none in the current CRDs) would see metadata too.
  (void)diagnostics;
}

}  // namespace

KindSupport kindSupport(const Object& object) {
  std::string group = object.group();
  if (group == kGatewayGroup || group == kGatewayExperimentalGroup) {
    return SchemaRegistry::instance().find(group, object.kind) != nullptr ? KindSupport::kGatewayApi
                                                                          : KindSupport::kUnknown;
  }
  if (findCoreKind(group, object.kind) != nullptr) return KindSupport::kCore;
  if (isVendorGroup(group)) return KindSupport::kVendor;
  return KindSupport::kUnknown;
}

std::vector<Diagnostic> validateObject(Object& object) {
  std::vector<Diagnostic> diagnostics;
  object.validationErrors.clear();
  Validator v(object, diagnostics);
  std::string group = object.group();
  switch (kindSupport(object)) {
    case KindSupport::kGatewayApi:
      validateGatewayApi(object, *SchemaRegistry::instance().find(group, object.kind), v,
                         diagnostics);
      break;
    case KindSupport::kCore: {
      const CoreKind& core = *findCoreKind(group, object.kind);
      if (object.version() != core.version) {
        v.error("apiVersion", "Invalid value: " + shortJson(Json(object.apiVersion)) +
                                  ": version " + object.version() + " of " + object.kind +
                                  " is not served (served: " + std::string(core.version) + ")");
        break;
      }
      checkMetadata(object, core.namespaced, core.nameRule, v);
      validateCoreObject(core, object, v);
      break;
    }
    case KindSupport::kVendor:
      break;
    case KindSupport::kUnknown:
      diagnostics.push_back(
          {Diagnostic::Severity::kNote, object.location,
           object.displayName() + ": skipped unknown kind (apiVersion " + object.apiVersion + ")"});
      break;
  }
  v.finish();
  return diagnostics;
}

void validateAll(LoadResult& result) {
  std::vector<Object> kept;
  kept.reserve(result.objects.size());
  for (auto& o : result.objects) {
    auto diagnostics = validateObject(o);
    for (auto& d : diagnostics) result.diagnostics.push_back(std::move(d));
    if (kindSupport(o) != KindSupport::kUnknown) kept.push_back(std::move(o));
  }
  result.objects = std::move(kept);
}

}  // namespace archway::api
