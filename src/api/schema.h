// Compiled OpenAPI v3 schemas of the embedded Gateway API CRDs, one per served
// (group, kind, version). Built once, lazily and thread-safely, on first use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "api/object.h"

namespace archway::api {

// {file name, JSON text} of every CRD file of deploy/crds/experimental, generated at build
// time (cmake/embed_crds.cc): a JSON array of the file's CRDs reduced to what schema
// compilation reads (group, names.kind, scope, versions with their schemas, no descriptions).
const std::vector<std::pair<std::string_view, std::string_view>>& embeddedCrdJson();

namespace validation {
struct CelRule;
}

struct SchemaNode;

// One x-kubernetes-validations entry, bound to its hand-written implementation.
struct SchemaRule {
  std::string rule;     // CEL text as written in the CRD (whitespace-normalised)
  std::string message;  // the CRD's message
  // Null when the rule is documented as skipped (see validation_cel.cc) or not implemented.
  const validation::CelRule* impl = nullptr;
};

struct SchemaNode {
  enum class Type { kAny, kObject, kArray, kString, kInteger, kNumber, kBoolean };
  enum class ListType { kNone, kAtomic, kSet, kMap };

  Type type = Type::kAny;
  bool nullable = false;
  // Properties of an object; an object schema without properties and without
  // additionalProperties keeps no fields (Kubernetes pruning), unless preserveUnknown.
  std::map<std::string, std::unique_ptr<SchemaNode>, std::less<>> properties;
  std::unique_ptr<SchemaNode> additionalProperties;
  bool preserveUnknown = false;
  std::vector<std::string> required;
  std::unique_ptr<SchemaNode> items;

  std::optional<int64_t> minLength, maxLength, minItems, maxItems, minProperties, maxProperties;
  std::optional<double> minimum, maximum;
  bool exclusiveMinimum = false, exclusiveMaximum = false;
  std::vector<Json> enumValues;
  std::shared_ptr<const RE2> pattern;
  std::string patternText;
  std::string format;
  ListType listType = ListType::kNone;
  std::vector<std::string> listMapKeys;
  std::optional<Json> defaultValue;
  std::vector<SchemaRule> rules;

  // Value-level combinators (used by Gateway addresses: IPAddress values must be IPs).
  std::vector<std::unique_ptr<SchemaNode>> oneOf, anyOf, allOf;
  std::unique_ptr<SchemaNode> notSchema;
};

struct CrdVersion {
  std::string name;  // "v1"
  bool served = false;
  bool deprecated = false;
  std::string deprecationWarning;
  std::unique_ptr<SchemaNode> schema;  // openAPIV3Schema
};

struct Crd {
  std::string group;
  std::string kind;
  std::string file;  // embedded file name, for messages
  bool namespaced = true;
  std::vector<CrdVersion> versions;

  const CrdVersion* version(std::string_view name) const;
  std::string servedVersions() const;  // "v1, v1beta1"
};

// Every rule location found while compiling, for the completeness test.
struct RuleLocation {
  std::string crd;   // "HTTPRoute/v1"
  std::string path;  // ".spec.rules[].matches[].path"
  const SchemaRule* rule = nullptr;
};

class SchemaRegistry {
 public:
  // The registry of the embedded CRDs (compiled on first call; thread-safe).
  static const SchemaRegistry& instance();
  // Compiles CRD documents from YAML texts ({name, text}); used by tests.
  static std::unique_ptr<SchemaRegistry> compile(
      const std::vector<std::pair<std::string_view, std::string_view>>& files);
  // Compiles the compact JSON form of embeddedCrdJson(); used by instance().
  static std::unique_ptr<SchemaRegistry> compileJson(
      const std::vector<std::pair<std::string_view, std::string_view>>& files);

  const Crd* find(std::string_view group, std::string_view kind) const;
  bool hasGroup(std::string_view group) const;
  const std::vector<RuleLocation>& ruleLocations() const { return ruleLocations_; }
  // Problems met while compiling (unparsable CRD, bad pattern); empty for the embedded set.
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::map<std::pair<std::string, std::string>, Crd, std::less<>> crds_;
  std::vector<RuleLocation> ruleLocations_;
  std::vector<std::string> errors_;
  friend class SchemaCompiler;
};

}  // namespace archway::api
