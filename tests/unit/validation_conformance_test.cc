// Whole-set checks: every CEL rule of the embedded CRDs is implemented or documented as
// skipped, the CRDs compile, and the upstream conformance manifests (valid by construction)
// validate without errors.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "api/loader.h"
#include "api/schema.h"
#include "api/validation.h"
#include "api/validation_cel.h"

namespace archway::api {
namespace {

TEST(Schema, EmbeddedCrdsCompileWithoutErrors) {
  const auto& registry = SchemaRegistry::instance();
  for (const auto& e : registry.errors()) ADD_FAILURE() << e;
  for (const char* kind :
       {"GatewayClass", "Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute",
        "UDPRoute", "ReferenceGrant", "BackendTLSPolicy"}) {
    EXPECT_NE(registry.find("gateway.networking.k8s.io", kind), nullptr) << kind;
  }
  EXPECT_NE(registry.find("gateway.networking.x-k8s.io", "XBackendTrafficPolicy"), nullptr);
  const Crd* tcp = registry.find("gateway.networking.k8s.io", "TCPRoute");
  ASSERT_NE(tcp, nullptr);
  ASSERT_NE(tcp->version("v1alpha2"), nullptr);
  EXPECT_TRUE(tcp->version("v1alpha2")->served);
  const Crd* grant = registry.find("gateway.networking.k8s.io", "ReferenceGrant");
  ASSERT_NE(grant, nullptr);
  EXPECT_EQ(grant->servedVersions(), "v1, v1beta1");
}

// Fails when a CRD update brings a rule that is neither implemented nor documented as
// skipped (with its reason) in validation_cel.cc.
TEST(CelRules, EveryRuleOfTheEmbeddedCrdsIsImplementedOrSkipped) {
  const auto& registry = SchemaRegistry::instance();
  std::set<std::string> implemented, skipped;
  ASSERT_GT(registry.ruleLocations().size(), 300u);
  for (const auto& loc : registry.ruleLocations()) {
    const SchemaRule& rule = *loc.rule;
    if (rule.impl != nullptr) {
      implemented.insert(rule.rule);
      continue;
    }
    const char* reason = validation::skippedCelRuleReason(rule.rule);
    if (reason != nullptr) {
      skipped.insert(rule.rule);
      continue;
    }
    ADD_FAILURE() << loc.crd << " " << loc.path << ": CEL rule not implemented: " << rule.rule
                  << " (" << rule.message << ")";
  }
  // Every registered implementation is used by some CRD rule (no stale entries).
  EXPECT_EQ(implemented.size(), validation::implementedCelRuleCount());
  EXPECT_EQ(skipped.size(), validation::skippedCelRuleCount());
  std::cout << "CEL rules: " << implemented.size() << " implemented, " << skipped.size()
            << " skipped, " << registry.ruleLocations().size() << " locations\n";
}

std::filesystem::path conformanceManifests() {
  if (const char* shared = std::getenv("ARCHWAY_SHARED_DIR")) {
    return std::filesystem::path(shared) / "conformance" / "manifests";
  }
  return std::filesystem::path(ARCHWAY_SOURCE_DIR) / ".." / "shared" / "conformance" / "manifests";
}

void replaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

TEST(Validation, ConformanceManifestsValidateWithoutErrors) {
  auto dir = conformanceManifests();
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no conformance manifests at " << dir;
  SchemaRegistry::instance();  // compile outside the timed section
  // The suite rewrites placeholders before applying manifests (generated-fixtures.json,
  // other_setup): the controller name and the static-address pools.
  LoadResult loaded;
  for (const auto& file : expandPaths({dir.string()}, nullptr, nullptr)) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    replaceAll(s, "{GATEWAY_CONTROLLER_NAME}", "archway.dev/gateway-controller");
    replaceAll(s, "PLACEHOLDER_USABLE_ADDRS", "192.0.2.1");
    replaceAll(s, "PLACEHOLDER_UNUSABLE_ADDRS", "198.51.100.1");
    LoadResult one = decodeText(s, file);
    ASSERT_FALSE(one.inputError) << file;
    for (auto& o : one.objects) loaded.objects.push_back(std::move(o));
  }
  size_t before = loaded.objects.size();
  auto start = std::chrono::steady_clock::now();
  validateAll(loaded);
  auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  std::cout << "validated " << before << " objects in " << elapsed.count() << " ms\n";
  size_t errors = 0;
  for (const auto& d : loaded.diagnostics) {
    if (d.severity == Diagnostic::Severity::kError) {
      ++errors;
      ADD_FAILURE() << d.format();
    }
  }
  EXPECT_EQ(errors, 0u);
  EXPECT_GT(loaded.objects.size(), 300u);
  for (const auto& o : loaded.objects) EXPECT_TRUE(o.validationErrors.empty()) << o.displayName();
}

}  // namespace
}  // namespace archway::api
