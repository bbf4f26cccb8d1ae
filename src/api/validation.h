// Validation of decoded objects, as the Kubernetes API server would do it on create:
//  - Gateway API kinds against the embedded CRDs' OpenAPI schemas (types, enums, patterns,
//    lengths, bounds, required fields, list uniqueness) and their CEL rules (hand-written,
//    see validation_cel.cc); unknown fields are pruned with a warning and `default` values
//    are applied to the body, so the translator sees what a cluster would store;
//  - core kinds Archway reads (Namespace, Service, EndpointSlice, Secret, ConfigMap, Ingress,
//    IngressClass) with hand-written checks of the fields it uses (core_types.cc);
//  - metadata of every object (name and namespace formats, label and annotation keys).
// Namespaced objects without a namespace are placed in "default" (as kubectl does);
// cluster-scoped objects lose a namespace they should not have (as the API server does).
#pragma once

#include <vector>

#include "api/loader.h"
#include "api/object.h"

namespace archway::api {

enum class KindSupport {
  kGatewayApi,  // a kind of the embedded CRDs
  kCore,        // a core kind with hand-written checks
  kVendor,      // konghq.com kinds the migration tool reads; not validated
  kUnknown,     // anything else: skipped
};

KindSupport kindSupport(const Object& object);

// Validates (and defaults) one object. Fills object.validationErrors with
// "field.path: what is wrong" and returns diagnostics "Kind ns/name: field.path: what is
// wrong" located at the field's file:line (errors, warnings for pruned fields and
// deprecated versions, a note for an unknown kind).
std::vector<Diagnostic> validateObject(Object& object);

// Validates every object of a load result, appending the diagnostics. Objects of unknown
// kinds are removed (with a note); invalid objects are kept with their validationErrors.
void validateAll(LoadResult& result);

// At most this many errors are recorded per object; the rest are summarised.
inline constexpr size_t kMaxErrorsPerObject = 64;

}  // namespace archway::api
