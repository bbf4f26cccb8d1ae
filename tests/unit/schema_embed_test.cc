// The schemas compiled at start-up from the build-time JSON form of the CRDs
// (embeddedCrdJson) must equal those compiled from the CRD YAML files themselves.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "api/loader.h"
#include "api/schema.h"
#include "strict_json_equal.h"

namespace archway::api {
namespace {

namespace fs = std::filesystem;

using testing::strictEqual;

// The first difference between two compiled schemas, or "" when they are the same.
std::string diff(const SchemaNode* a, const SchemaNode* b, const std::string& path) {
  if ((a == nullptr) != (b == nullptr)) return path + ": present in one only";
  if (a == nullptr) return "";
  auto differ = [&](const char* what) { return path + ": " + what + " differs"; };
  if (a->type != b->type) return differ("type");
  if (a->nullable != b->nullable) return differ("nullable");
  if (a->preserveUnknown != b->preserveUnknown) return differ("preserveUnknown");
  if (a->required != b->required) return differ("required");
  if (a->minLength != b->minLength || a->maxLength != b->maxLength) return differ("length");
  if (a->minItems != b->minItems || a->maxItems != b->maxItems) return differ("items bounds");
  if (a->minProperties != b->minProperties || a->maxProperties != b->maxProperties)
    return differ("properties bounds");
  if (a->minimum != b->minimum || a->maximum != b->maximum) return differ("min/max");
  if (a->exclusiveMinimum != b->exclusiveMinimum || a->exclusiveMaximum != b->exclusiveMaximum)
    return differ("exclusive bounds");
  if (a->enumValues.size() != b->enumValues.size()) return differ("enum");
  for (size_t i = 0; i < a->enumValues.size(); ++i)
    if (!strictEqual(a->enumValues[i], b->enumValues[i])) return differ("enum");
  if (a->patternText != b->patternText || (a->pattern == nullptr) != (b->pattern == nullptr))
    return differ("pattern");
  if (a->format != b->format) return differ("format");
  if (a->listType != b->listType || a->listMapKeys != b->listMapKeys) return differ("list type");
  if (a->defaultValue.has_value() != b->defaultValue.has_value() ||
      (a->defaultValue && !strictEqual(*a->defaultValue, *b->defaultValue)))
    return differ("default");
  if (a->rules.size() != b->rules.size()) return differ("rule count");
  for (size_t i = 0; i < a->rules.size(); ++i) {
    const auto& ra = a->rules[i];
    const auto& rb = b->rules[i];
    if (ra.rule != rb.rule || ra.message != rb.message || ra.impl != rb.impl) return differ("rule");
  }
  if (a->properties.size() != b->properties.size()) return differ("property set");
  for (const auto& [name, sub] : a->properties) {
    auto it = b->properties.find(name);
    if (it == b->properties.end()) return path + "." + name + ": present in one only";
    if (auto d = diff(sub.get(), it->second.get(), path + "." + name); !d.empty()) return d;
  }
  if (auto d = diff(a->additionalProperties.get(), b->additionalProperties.get(), path + "{}");
      !d.empty())
    return d;
  if (auto d = diff(a->items.get(), b->items.get(), path + "[]"); !d.empty()) return d;
  if (auto d = diff(a->notSchema.get(), b->notSchema.get(), path + "!"); !d.empty()) return d;
  auto list = [&](const auto& la, const auto& lb, const char* what) -> std::string {
    if (la.size() != lb.size()) return differ(what);
    for (size_t i = 0; i < la.size(); ++i) {
      if (auto d = diff(la[i].get(), lb[i].get(), path + "<" + what + ">"); !d.empty()) return d;
    }
    return "";
  };
  if (auto d = list(a->oneOf, b->oneOf, "oneOf"); !d.empty()) return d;
  if (auto d = list(a->anyOf, b->anyOf, "anyOf"); !d.empty()) return d;
  return list(a->allOf, b->allOf, "allOf");
}

std::string diff(const Crd& a, const Crd& b) {
  if (a.group != b.group || a.kind != b.kind || a.namespaced != b.namespaced)
    return a.kind + ": identity or scope differs";
  if (a.versions.size() != b.versions.size()) return a.kind + ": version count differs";
  for (size_t i = 0; i < a.versions.size(); ++i) {
    const auto& va = a.versions[i];
    const auto& vb = b.versions[i];
    if (va.name != vb.name || va.served != vb.served || va.deprecated != vb.deprecated ||
        va.deprecationWarning != vb.deprecationWarning)
      return a.kind + "/" + va.name + ": version fields differ";
    if (auto d = diff(va.schema.get(), vb.schema.get(), a.kind + "/" + va.name); !d.empty())
      return d;
  }
  return "";
}

struct CrdFile {
  std::string name, text;
};

std::vector<CrdFile> crdFiles() {
  std::vector<CrdFile> out;
  for (const auto& e :
       fs::directory_iterator(fs::path(ARCHWAY_SOURCE_DIR) / "deploy" / "crds" / "experimental")) {
    if (e.path().extension() != ".yaml") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    out.push_back({e.path().filename().string(), ss.str()});
  }
  // The build embeds them in name order; rule locations are listed in compilation order.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

TEST(SchemaEmbedTest, EmbeddedJsonCompilesToTheSameSchemasAsTheYaml) {
  std::vector<CrdFile> files = crdFiles();
  ASSERT_GT(files.size(), 5u);
  std::vector<std::pair<std::string_view, std::string_view>> texts;
  for (const auto& f : files) texts.emplace_back(f.name, f.text);
  auto fromYaml = SchemaRegistry::compile(texts);
  const SchemaRegistry& embedded = SchemaRegistry::instance();
  EXPECT_TRUE(fromYaml->errors().empty());
  EXPECT_TRUE(embedded.errors().empty());

  size_t crds = 0;
  for (const auto& f : files) {
    for (const auto& o : decodeText(f.text, f.name).objects) {
      if (o.kind != "CustomResourceDefinition") continue;
      std::string group = o.spec().value("group", "");
      std::string kind = o.spec()["names"].value("kind", "");
      const Crd* a = fromYaml->find(group, kind);
      const Crd* b = embedded.find(group, kind);
      ASSERT_NE(a, nullptr) << kind;
      ASSERT_NE(b, nullptr) << kind << " missing from the embedded schemas";
      EXPECT_EQ(diff(*a, *b), "") << f.name;
      ++crds;
    }
  }
  EXPECT_GE(crds, 10u);
  ASSERT_EQ(fromYaml->ruleLocations().size(), embedded.ruleLocations().size());
  for (size_t i = 0; i < embedded.ruleLocations().size(); ++i) {
    EXPECT_EQ(fromYaml->ruleLocations()[i].crd, embedded.ruleLocations()[i].crd);
    EXPECT_EQ(fromYaml->ruleLocations()[i].path, embedded.ruleLocations()[i].path);
  }
}

// The comparison above sees a difference deep in a schema (it is not vacuous).
TEST(SchemaEmbedTest, ComparisonFindsADifference) {
  auto crd = [](const char* maxLength, const char* dflt) {
    return std::string(R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: string, maxLength: )") +
           maxLength + ", default: " + dflt + "}\n";
  };
  std::string base = crd("5", "\"a\""), longer = crd("6", "\"a\""), other = crd("5", "\"b\"");
  auto a = SchemaRegistry::compile({{"a.yaml", base}});
  auto b = SchemaRegistry::compile({{"b.yaml", longer}});
  auto c = SchemaRegistry::compile({{"c.yaml", other}});
  auto same = SchemaRegistry::compile({{"d.yaml", base}});
  const Crd* wa = a->find("example.com", "Widget");
  ASSERT_NE(wa, nullptr);
  EXPECT_EQ(diff(*wa, *same->find("example.com", "Widget")), "");
  EXPECT_EQ(diff(*wa, *b->find("example.com", "Widget")), "Widget/v1.spec.size: length differs");
  EXPECT_EQ(diff(*wa, *c->find("example.com", "Widget")), "Widget/v1.spec.size: default differs");
  EXPECT_FALSE(strictEqual(Json(5), Json(5u)));
}

}  // namespace
}  // namespace archway::api
