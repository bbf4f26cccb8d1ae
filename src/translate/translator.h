// The translator: a pure function from the store's contents to the status of every object
// and the snapshot the data plane serves (DESIGN §1). No I/O, no clocks, no globals: the
// same store always gives the same result, which is what golden tests and
// `archway check` rely on.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/loader.h"
#include "api/object.h"
#include "snapshot/snapshot.h"

namespace archway::translate {

inline constexpr const char* kControllerName = "archway.dev/gateway-controller";
// Condition (status True, reason Invalid) on an object whose newer version failed validation
// and was not applied (api::Object::rejectedChange); routes accepted by a parent report it
// as PartiallyInvalid with a "Fall Back" message instead, as the Gateway API spec describes.
inline constexpr const char* kRejectedChangeCondition = "archway.dev/RejectedChange";

struct TranslateOptions {
  std::string controllerName = kControllerName;
  // --address-pool CIDR: each Gateway without spec.addresses gets a stable address from it.
  std::optional<std::string> addressPool;
  // Address reported in status.addresses when listeners bind every address.
  std::string defaultAddress = "127.0.0.1";
  // Whether a static spec.addresses IP can be used by this instance (e.g. it is local).
  // Unset: every valid IP is usable. Unusable ones give Programmed=False AddressNotUsable.
  std::function<bool(const std::string&)> addressUsable;
  // False: result.statuses stays empty and no status JSON is built (at 10k routes that is
  // most of a translation). The snapshot and the diagnostics are the same either way, and
  // translate() being pure, statuses can be computed later from the same store.
  bool computeStatuses = true;
};

struct TranslateResult {
  // The computed `status` of every object Archway reports on (GatewayClass, Gateway,
  // ListenerSet, routes, policies), keyed by identity.
  std::map<api::ObjectKey, api::Json> statuses;
  std::shared_ptr<const snapshot::Snapshot> snapshot;
  std::vector<api::Diagnostic> diagnostics;
};

TranslateResult translate(const api::Store& store, const TranslateOptions& options = {});

struct TranslationCache;

// Translates successive versions of one store (a source's, after each change) with the same
// result as translate(), byte for byte, but faster when only routes changed: what each route
// contributed (attachments, conditions, diagnostics, its compiled route entries) is kept and
// replayed while neither the route (Object::revision) nor anything that is not a route
// changed; precedence order, counts and the snapshot are still assembled from scratch. Any
// other change (a Gateway, Service, EndpointSlice, ReferenceGrant, option...) translates
// every route again. Not thread-safe; one instance per source.
class Translator {
 public:
  Translator();
  ~Translator();
  Translator(const Translator&) = delete;
  Translator& operator=(const Translator&) = delete;

  // `options` should not change between calls (a change of its plain fields is detected and
  // rebuilds; addressUsable is only called, its answers are part of what is compared).
  TranslateResult translate(const api::Store& store, const TranslateOptions& options);

  struct Counters {
    uint64_t translations = 0;
    uint64_t contextChanges = 0;  // translations that could reuse nothing
    uint64_t routesReused = 0;    // routes replayed from their record
    uint64_t routesTranslated = 0;
  };
  const Counters& counters() const;

 private:
  std::unique_ptr<TranslationCache> cache_;
};

}  // namespace archway::translate
