// Hand-written checks of the core Kubernetes kinds Archway reads (they have no CRD here):
// the fields the controller and the migration tool use, with the API server's rules.
#pragma once

#include <string>
#include <string_view>

#include "api/object.h"

namespace archway::api {

// Receives problems found in one object ("field.path", "what is wrong").
class ValidationSink {
 public:
  virtual ~ValidationSink() = default;
  virtual void error(const std::string& path, const std::string& what) = 0;
  virtual void warning(const std::string& path, const std::string& what) = 0;
};

struct CoreKind {
  std::string_view group;
  std::string_view version;
  std::string_view kind;
  bool namespaced;
  // Validator for metadata.name.
  enum class NameRule { kSubdomain, kLabel, kDns1035 } nameRule;
};

// The core kind with this group and kind (any version), or nullptr.
const CoreKind* findCoreKind(std::string_view group, std::string_view kind);

// Validates the spec/data of a core object and applies the API server's defaults
// (Service port protocol TCP, Secret stringData merged into data).
void validateCoreObject(const CoreKind& kind, Object& object, ValidationSink& sink);

}  // namespace archway::api
