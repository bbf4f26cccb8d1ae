// The CRDs' CEL rules (x-kubernetes-validations), each implemented by hand in C++ and looked
// up by its exact rule text: a CRD update that changes a rule's text makes the completeness
// test fail until the new rule is implemented or documented as skipped.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"

namespace archway::api::validation {

// Where a rule is violated, relative to the value carrying it: "" for the value itself,
// "[2]" for one element of a list (a more precise file:line than the whole list).
using Violations = std::vector<std::string>;

struct CelRule {
  std::string family;  // e.g. "listeners", "filters", "path-match" (tests and docs)
  std::function<void(const Json& self, Violations& out)> check;
};

// Collapses runs of whitespace so YAML line folding does not change a rule's identity.
std::string normalizeRule(std::string_view text);

// The implementation of a rule, or nullptr when the rule is unknown or skipped.
const CelRule* findCelRule(std::string_view normalizedRule);
// Why a rule is deliberately not evaluated, or nullptr when it is not skipped.
const char* skippedCelRuleReason(std::string_view normalizedRule);
// Number of implemented / skipped rules (for reports and tests).
size_t implementedCelRuleCount();
size_t skippedCelRuleCount();

}  // namespace archway::api::validation
