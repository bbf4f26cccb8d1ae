// `archway convert`: Ingress resources (plus Kong and ingress-nginx vendor annotations and
// CRDs) to Gateway API resources, with a report of what was converted, approximated or
// could not be converted. Pure: objects in, objects and report out.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "api/object.h"

namespace archway::convert {

using api::Json;

inline constexpr const char* kProviderKong = "kong";
inline constexpr const char* kProviderIngressNginx = "ingress-nginx";

struct ConvertConfig {
  std::vector<std::string> providers;  // empty = every provider
  std::string ns;                      // only this namespace when not empty
  std::string gatewayClass;            // overrides gatewayClassName when not empty
};

enum class Outcome {
  kConverted,      // expressed exactly in Gateway API
  kApproximated,   // expressed, with a documented difference in behaviour
  kUnconvertible,  // not expressed; the reason says why and what to do
  kNote,           // information (e.g. a default made explicit, an object skipped)
};

const char* outcomeName(Outcome o);

struct ReportEntry {
  std::string object;  // "Ingress ns/name"
  std::string field;   // "metadata.annotations.konghq.com/methods", "spec.rules[0]"
  Outcome outcome = Outcome::kNote;
  std::string message;
};

struct ConvertResult {
  std::vector<Json> resources;  // in output order
  std::vector<ReportEntry> report;
};

ConvertResult convert(const std::vector<api::Object>& objects, const ConvertConfig& config);

// Output helpers: resources as multi-document YAML or a JSON List; the report as text.
std::string toYaml(const std::vector<Json>& resources);
std::string toJson(const std::vector<Json>& resources);
std::string renderReport(const std::vector<ReportEntry>& report);

// Exposed for tests.
std::string nameFromHost(const std::string& host);
// How many combinations headerCombinations() makes (saturating at SIZE_MAX), without
// making them: a few headers with a few values each multiply into millions.
size_t headerCombinationCount(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& headers);
// Every combination of one value per header (names ANDed, values ORed), each exactly once.
std::vector<std::vector<std::pair<std::string, std::string>>> headerCombinations(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& headers);

}  // namespace archway::convert
