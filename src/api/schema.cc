#include "api/schema.h"

#include "api/loader.h"
#include "api/validation_cel.h"
#include "api/validation_util.h"

namespace archway::api {

using validation::child;
using validation::str;

const CrdVersion* Crd::version(std::string_view name) const {
  for (const auto& v : versions) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

std::string Crd::servedVersions() const {
  std::string out;
  for (const auto& v : versions) {
    if (!v.served) continue;
    if (!out.empty()) out += ", ";
    out += v.name;
  }
  return out;
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(SchemaRegistry& registry) : registry_(registry) {}

  void compileFile(std::string_view fileName, std::string_view text) {
    if (fileName == "kustomization.yaml") return;  // packaging, not a CRD
    LoadResult loaded = decodeText(text, std::string(fileName));
    for (const auto& d : loaded.diagnostics) {
      if (d.severity == Diagnostic::Severity::kError) registry_.errors_.push_back(d.format());
    }
    for (const auto& o : loaded.objects) {
      if (o.kind == "CustomResourceDefinition") compileCrd(o, fileName);
    }
  }

  // A JSON array of CRD bodies (embeddedCrdJson()).
  void compileJsonFile(std::string_view fileName, std::string_view text) {
    Json crds = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!crds.is_array()) {
      registry_.errors_.push_back(std::string(fileName) + ": embedded CRD JSON does not parse");
      return;
    }
    for (auto& body : crds) {
      Object o;
      o.kind = body.is_object() ? std::string(str(body, "kind")) : std::string();
      o.body = std::move(body);
      if (o.kind == "CustomResourceDefinition") compileCrd(o, fileName);
    }
  }

 private:
  void compileCrd(const Object& o, std::string_view fileName) {
    const Json& spec = o.spec();
    Crd crd;
    crd.group = std::string(str(spec, "group"));
    crd.file = std::string(fileName);
    const Json* names = child(spec, "names");
    crd.kind = names != nullptr ? std::string(str(*names, "kind")) : std::string();
    crd.namespaced = str(spec, "scope") != "Cluster";
    if (crd.group.empty() || crd.kind.empty()) {
      registry_.errors_.push_back(std::string(fileName) + ": CRD without group or kind");
      return;
    }
    const Json* versions = child(spec, "versions");
    if (versions != nullptr && versions->is_array()) {
      for (const auto& v : *versions) {
        CrdVersion cv;
        cv.name = std::string(str(v, "name"));
        const Json* served = child(v, "served");
        cv.served = served != nullptr && served->is_boolean() && served->get<bool>();
        const Json* deprecated = child(v, "deprecated");
        cv.deprecated =
            deprecated != nullptr && deprecated->is_boolean() && deprecated->get<bool>();
        cv.deprecationWarning = std::string(str(v, "deprecationWarning"));
        const Json* schema = child(v, "schema");
        const Json* root = schema != nullptr ? child(*schema, "openAPIV3Schema") : nullptr;
        crdName_ = crd.kind + "/" + cv.name;
        cv.schema = root != nullptr ? compileNode(*root, "") : std::make_unique<SchemaNode>();
        crd.versions.push_back(std::move(cv));
      }
    }
    auto key = std::make_pair(crd.group, crd.kind);
    registry_.crds_.insert_or_assign(std::move(key), std::move(crd));
  }

  static std::optional<int64_t> intField(const Json& s, const char* key) {
    const Json* c = child(s, key);
    if (c == nullptr || !c->is_number()) return std::nullopt;
    return c->is_number_integer() ? c->get<int64_t>() : static_cast<int64_t>(c->get<double>());
  }

  static std::optional<double> numField(const Json& s, const char* key) {
    const Json* c = child(s, key);
    if (c == nullptr || !c->is_number()) return std::nullopt;
    return c->get<double>();
  }

  static bool boolField(const Json& s, const char* key) {
    const Json* c = child(s, key);
    return c != nullptr && c->is_boolean() && c->get<bool>();
  }

  // JSON parsing types non-negative integers as unsigned, the YAML loader as signed: values
  // copied into objects (defaults) or compared with them (enums) are typed as a manifest's.
  static Json signedIntegers(Json v) {
    if (v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t(INT64_MAX)) {
      return Json(static_cast<int64_t>(v.get<uint64_t>()));
    }
    if (v.is_structured()) {
      for (auto& item : v) item = signedIntegers(std::move(item));
    }
    return v;
  }

  std::shared_ptr<const RE2> compilePattern(const std::string& text, const std::string& where) {
    auto it = patterns_.find(text);
    if (it != patterns_.end()) return it->second;
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const RE2>(text, options);
    if (!re->ok()) {
      registry_.errors_.push_back(crdName_ + where + ": pattern " + text +
                                  " does not compile: " + re->error());
      re = nullptr;
    }
    patterns_.emplace(text, re);
    return re;
  }

  std::unique_ptr<SchemaNode> compileNode(const Json& s, const std::string& path) {
    auto node = std::make_unique<SchemaNode>();
    if (!s.is_object()) return node;
    std::string_view type = str(s, "type");
    using T = SchemaNode::Type;
    if (type == "object") {
      node->type = T::kObject;
    } else if (type == "array") {
      node->type = T::kArray;
    } else if (type == "string") {
      node->type = T::kString;
    } else if (type == "integer") {
      node->type = T::kInteger;
    } else if (type == "number") {
      node->type = T::kNumber;
    } else if (type == "boolean") {
      node->type = T::kBoolean;
    }
    node->nullable = boolField(s, "nullable");
    node->preserveUnknown = boolField(s, "x-kubernetes-preserve-unknown-fields");
    if (const Json* props = child(s, "properties"); props != nullptr && props->is_object()) {
      for (const auto& [name, sub] : props->items()) {
        node->properties.emplace(name, compileNode(sub, path + "." + name));
      }
    }
    if (const Json* ap = child(s, "additionalProperties"); ap != nullptr) {
      if (ap->is_object()) {
        node->additionalProperties = compileNode(*ap, path + "{}");
      } else if (ap->is_boolean() && ap->get<bool>()) {
        node->additionalProperties = std::make_unique<SchemaNode>();
      }
    }
    if (const Json* req = child(s, "required"); req != nullptr && req->is_array()) {
      for (const auto& r : *req) {
        if (r.is_string()) node->required.push_back(r.get<std::string>());
      }
    }
    if (const Json* items = child(s, "items"); items != nullptr) {
      node->items = compileNode(*items, path + "[]");
    }
    node->minLength = intField(s, "minLength");
    node->maxLength = intField(s, "maxLength");
    node->minItems = intField(s, "minItems");
    node->maxItems = intField(s, "maxItems");
    node->minProperties = intField(s, "minProperties");
    node->maxProperties = intField(s, "maxProperties");
    node->minimum = numField(s, "minimum");
    node->maximum = numField(s, "maximum");
    node->exclusiveMinimum = boolField(s, "exclusiveMinimum");
    node->exclusiveMaximum = boolField(s, "exclusiveMaximum");
    if (const Json* e = child(s, "enum"); e != nullptr && e->is_array()) {
      for (const auto& value : *e) node->enumValues.push_back(signedIntegers(value));
    }
    if (std::string_view p = str(s, "pattern"); !p.empty()) {
      node->patternText = std::string(p);
      node->pattern = compilePattern(node->patternText, path);
    }
    node->format = std::string(str(s, "format"));
    std::string_view listType = str(s, "x-kubernetes-list-type");
    if (listType == "atomic") {
      node->listType = SchemaNode::ListType::kAtomic;
    } else if (listType == "set") {
      node->listType = SchemaNode::ListType::kSet;
    } else if (listType == "map") {
      node->listType = SchemaNode::ListType::kMap;
    }
    if (const Json* keys = child(s, "x-kubernetes-list-map-keys");
        keys != nullptr && keys->is_array()) {
      for (const auto& k : *keys) {
        if (k.is_string()) node->listMapKeys.push_back(k.get<std::string>());
      }
    }
    if (const Json* d = child(s, "default"); d != nullptr) node->defaultValue = signedIntegers(*d);
    if (const Json* rules = child(s, "x-kubernetes-validations");
        rules != nullptr && rules->is_array()) {
      for (const auto& r : *rules) {
        SchemaRule rule;
        rule.rule = validation::normalizeRule(str(r, "rule"));
        rule.message = std::string(str(r, "message"));
        if (rule.message.empty()) rule.message = "failed rule: " + rule.rule;
        rule.impl = validation::findCelRule(rule.rule);
        node->rules.push_back(std::move(rule));
      }
    }
    auto compileList = [&](const char* key, std::vector<std::unique_ptr<SchemaNode>>& out) {
      if (const Json* list = child(s, key); list != nullptr && list->is_array()) {
        for (const auto& sub : *list) out.push_back(compileNode(sub, path));
      }
    };
    compileList("oneOf", node->oneOf);
    compileList("anyOf", node->anyOf);
    compileList("allOf", node->allOf);
    if (const Json* n = child(s, "not"); n != nullptr) node->notSchema = compileNode(*n, path);
    for (const auto& rule : node->rules) pendingRules_.push_back({crdName_, path, &rule});
    return node;
  }

 public:
  void finish() { registry_.ruleLocations_ = std::move(pendingRules_); }

 private:
  SchemaRegistry& registry_;
  std::string crdName_;
  std::map<std::string, std::shared_ptr<const RE2>> patterns_;
  std::vector<RuleLocation> pendingRules_;
};

std::unique_ptr<SchemaRegistry> SchemaRegistry::compile(
    const std::vector<std::pair<std::string_view, std::string_view>>& files) {
  auto registry = std::make_unique<SchemaRegistry>();
  SchemaCompiler compiler(*registry);
  for (const auto& [name, text] : files) compiler.compileFile(name, text);
  compiler.finish();
  return registry;
}

std::unique_ptr<SchemaRegistry> SchemaRegistry::compileJson(
    const std::vector<std::pair<std::string_view, std::string_view>>& files) {
  auto registry = std::make_unique<SchemaRegistry>();
  SchemaCompiler compiler(*registry);
  for (const auto& [name, text] : files) compiler.compileJsonFile(name, text);
  compiler.finish();
  return registry;
}

const SchemaRegistry& SchemaRegistry::instance() {
  // Function-local static: compiled once, thread-safe (C++11 guarantees).
  static const std::unique_ptr<SchemaRegistry> kRegistry = compileJson(embeddedCrdJson());
  return *kRegistry;
}

const Crd* SchemaRegistry::find(std::string_view group, std::string_view kind) const {
  auto it = crds_.find(std::make_pair(std::string(group), std::string(kind)));
  return it == crds_.end() ? nullptr : &it->second;
}

bool SchemaRegistry::hasGroup(std::string_view group) const {
  for (const auto& [key, crd] : crds_) {
    if (key.first == group) return true;
  }
  return false;
}

}  // namespace archway::api
