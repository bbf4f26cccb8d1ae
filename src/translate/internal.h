// Shared state of one translation run. Not part of the public contract: only the files of
// src/translate include it. Every step (gateways, routes, policies, snapshot) reads the
// store and writes into one Context, in a fixed order, so the result is deterministic.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/object.h"
#include "snapshot/snapshot.h"
#include "translate/translator.h"
#include "translate/util.h"

namespace archway::translate {

inline constexpr const char* kGatewayGroup = "gateway.networking.k8s.io";

struct GatewayInfo;
struct ListenerSetInfo;

// One listener, from a Gateway or from a ListenerSet merged into its parent Gateway.
struct ListenerInfo {
  GatewayInfo* gateway = nullptr;
  ListenerSetInfo* listenerSet = nullptr;  // null for the Gateway's own listeners
  const api::Object* owner = nullptr;      // the Gateway or the ListenerSet
  const api::Json* spec = nullptr;
  std::string name;
  std::string protocol;
  int port = 0;
  std::optional<std::string> hostname;
  bool supportedProtocol = true;
  bool tlsPassthrough = false;
  // Route kinds this listener accepts (supportedKinds).
  std::vector<std::string> kinds;
  // allowedRoutes.namespaces
  std::string from = "Same";
  api::Json selector;

  // Outcome of validation.
  Condition accepted{"Accepted", true, "Accepted", "Listener is accepted"};
  Condition resolvedRefs{"ResolvedRefs", true, "ResolvedRefs", "All references are resolved"};
  std::optional<Condition> conflicted;  // reason HostnameConflict / ProtocolConflict
  std::string programmedFalseReason;    // set when not programmed for a reason of its own
  std::vector<snapshot::Certificate> certificates;
  std::shared_ptr<snapshot::ClientValidation> clientValidation;
  int attachedRoutes = 0;

  // Routes are served only on listeners that are valid in every respect.
  bool valid() const { return accepted.status && resolvedRefs.status && !conflicted; }
  std::shared_ptr<snapshot::Listener> compiled;  // filled by the snapshot builder
};

struct GatewayInfo {
  const api::Object* object = nullptr;
  std::vector<ListenerInfo> listeners;         // the Gateway's own, in spec order
  std::vector<ListenerSetInfo*> listenerSets;  // accepted ones, merge order
  std::vector<std::string> addresses;          // IP addresses in use
  bool bindAll = false;                        // no spec address and no pool
  bool accepted = true;
  bool rejected = false;  // Accepted=False for a Gateway-level reason (Invalid, addresses...)
  api::Json status;
  // spec.tls.backend.clientCertificateRef, when it resolves.
  std::string clientCertPem, clientKeyPem;
};

struct ListenerSetInfo {
  const api::Object* object = nullptr;
  GatewayInfo* gateway = nullptr;  // parent, when it is one of ours
  bool allowed = false;            // by the parent's allowedListeners
  bool accepted = false;           // allowed and has at least one valid listener
  std::vector<ListenerInfo> listeners;
};

// A backendRef resolved to a Service port, or the reason it does not resolve.
struct BackendResolution {
  std::string reason;  // empty when resolved
  std::string message;
  const api::Object* service = nullptr;
  const api::Json* servicePort = nullptr;  // the matching spec.ports[] entry
  int port = 0;
};

struct RouteRecord;

// A route attached to a listener, kept for the snapshot builder.
struct Attachment {
  const api::Object* route = nullptr;
  ListenerInfo* listener = nullptr;
  // Effective hostnames on that listener (route ∩ listener); empty = listener's own.
  std::vector<std::string> hostnames;
  // With a Translator: the route's record and this attachment's index in it.
  RouteRecord* record = nullptr;
  size_t index = 0;
  uint32_t routeRank = 0;  // the route's position in olderThan order
};

// Sort key of one HTTP route entry (snapshot builder; precedence order in snapshot.h).
struct EntryKey {
  int hostClass = 0;  // 0 exact, 1 wildcard, 2 none
  size_t hostLen = 0;
  bool grpc = false;
  int pathClass = 0;  // 0 Exact, 1 Regex, 2 Prefix
  size_t pathLen = 0;
  size_t grpcService = 0, grpcMethod = 0;
  bool method = false;
  size_t headers = 0, queries = 0;
  uint32_t routeRank = 0;  // Attachment::routeRank: older routes first
  size_t rule = 0, match = 0;
  // With a Translator: the attachment's index in its route record and the entry's index in
  // the attachment's output; they order one route's entries that are otherwise equal (as
  // the position of each entry in the listener's list does without a Translator).
  uint32_t attachment = 0, entry = 0;
};

// An EntryKey as three words compared in order, then the entry's position: a smaller key
// takes precedence, exactly as the precedence rules order EntryKeys (stable). Counts and
// lengths saturate at widths well above what validation allows (hostnames 253 bytes, paths
// 1024, 16 headers, 16 query params, 16 rules, 64 matches).
struct PackedEntryKey {
  uint64_t a = 0, b = 0, c = 0;
  uint32_t pos = 0;
  bool operator<(const PackedEntryKey& o) const {
    if (a != o.a) return a < o.a;
    if (b != o.b) return b < o.b;
    if (c != o.c) return c < o.c;
    return pos < o.pos;
  }
};
PackedEntryKey packEntryKey(const EntryKey& k, uint32_t pos);

// ---------------------------------------------------------------------------------------
// What Translator keeps between translations (translator.h). Everything a route step and
// the snapshot builder derive from one route is a function of that route and of the
// "context" (every object that is not a route, the options, and the Gateway/listener state
// derived from them): while the context is unchanged, a route whose revision did not change
// replays its record instead of being translated again. Any change of context drops every
// record. Routes do not depend on each other in these steps; what is global (precedence
// order, attachedRoutes, serviceUsers) is recomputed from the records on every translation.

// One Builder::backend() call of a recorded attachment, in call order.
struct BackendCall {
  std::string id;
  bool udp = false, tcp = false;
  std::shared_ptr<const snapshot::Backend> backend;
};

struct RouteRecord {
  const api::Object* current = nullptr;  // the route in the store being translated
  uint32_t rank = 0;                     // its position in olderThan order, this translation
  std::set<size_t> invalidRules;
  std::vector<api::Diagnostic> diagnostics;
  struct Attached {
    uint32_t listener = 0;  // index in Context::allListeners
    std::vector<std::string> hostnames;
  };
  std::vector<Attached> attachments;
  std::vector<std::pair<std::string, uint32_t>> serviceUsers;  // "ns/name" -> gateway index
  std::optional<api::Json> status;
  // The snapshot builder's output for each attachment (same order), once built.
  struct Built {
    bool done = false;
    uint64_t replayedIn = 0;  // TranslationCache::epoch of the last translation that replayed it
    std::vector<std::pair<EntryKey, snapshot::HttpRouteEntry>> http;
    std::vector<snapshot::L4Route> l4;
    std::vector<BackendCall> backends;
  };
  bool buildable = true;  // false: the builder output reads objects that may be routes
  std::vector<Built> built;
};

struct TranslationCache {
  // The context the records were made in: every non-route object (key, revision) in store
  // order, and a digest of options and derived Gateway/listener state.
  std::vector<std::pair<api::ObjectKey, uint64_t>> objects;
  std::string derived;
  // Records by route revision.
  std::unordered_map<uint64_t, RouteRecord> routes;
  std::unordered_map<uint64_t, RouteRecord> next;  // this translation's, replaces `routes`
  // Revisions of the last translation's routes in olderThan order (their ranks).
  std::vector<uint64_t> order;
  uint64_t epoch = 0;  // grows with every translation
  // Set by processRoutes: this translation's ranks keep the relative order of the routes
  // of the last one (always, unless a route has no creation timestamp: olderThan is then
  // not a strict order and a full sort may order the same routes differently).
  bool ranksKeepOrder = false;
  // Each listener's HTTP entries (by index in Context::allListeners) in precedence order, as
  // the last translation left them, by where their record keeps them. The records of the
  // last translation all live until the end of the next one (in `routes` or `next`), so
  // these stay valid until then; entries whose attachment was replayed keep their relative
  // order (a change of route ranks keeps the order of the others), only the rest is sorted
  // and merged in. Cleared with the records.
  struct EntryRef {
    RouteRecord* record = nullptr;
    uint32_t attachment = 0, entry = 0;
  };
  std::vector<std::vector<EntryRef>> httpOrder;
  // Backends by (id, udp, tcp): a function of those and of the context.
  std::map<std::tuple<std::string, bool, bool>, std::shared_ptr<const snapshot::Backend>> backends;
  Translator::Counters counters;
};

struct Context {
  const api::Store& store;
  const TranslateOptions& options;
  TranslateResult& result;

  std::set<std::string> ourClasses;  // GatewayClass names with our controllerName
  // Owned storage; pointers into these stay valid (reserved up front).
  std::vector<std::unique_ptr<GatewayInfo>> gateways;
  std::vector<std::unique_ptr<ListenerSetInfo>> listenerSets;
  std::map<api::ObjectKey, GatewayInfo*> gatewayByKey;
  std::map<api::ObjectKey, ListenerSetInfo*> listenerSetByKey;
  std::vector<Attachment> attachments;
  // Rules dropped from a route (PartiallyInvalid), by route key.
  std::map<api::ObjectKey, std::set<size_t>> invalidRules;
  // Services used by accepted routes, per Gateway: "ns/name" -> gateways.
  std::map<std::string, std::set<GatewayInfo*>> serviceUsers;
  // Resolved BackendTLSPolicy per "ns/service" or "ns/service:sectionName".
  std::map<std::string, std::shared_ptr<snapshot::BackendTls>> backendTls;
  // resolveBackendRef() results by backendRef node (each node belongs to one route; the
  // routes step and the snapshot builder resolve every ref several times).
  std::unordered_map<const api::Json*, BackendResolution> resolvedRefs;
  // Set by Translator (null for translate()).
  TranslationCache* cache = nullptr;
  // Every listener (Gateways' in order, then ListenerSets') and every Gateway, by index:
  // how records name them.
  std::vector<ListenerInfo*> allListeners;
  std::unordered_map<const void*, uint32_t> indexOf;  // listener or Gateway -> its index

  void diag(const api::Object& o, std::string_view field, const std::string& message);
};

// Steps, in the order translate() runs them.
void processGatewayClasses(Context& ctx);
void processGateways(Context& ctx);
void processRoutes(Context& ctx);
void finishGateways(Context& ctx);  // writes Gateway/ListenerSet status (needs attachedRoutes)
void processPolicies(Context& ctx);
void buildSnapshot(Context& ctx);

// Reference checks shared by the steps.
// ReferenceGrant in `toNs` allowing `fromGroup/fromKind` in `fromNs` to `toGroup/toKind/name`.
bool referenceAllowed(const api::Store& store, std::string_view fromGroup,
                      std::string_view fromKind, std::string_view fromNs, std::string_view toGroup,
                      std::string_view toKind, std::string_view toNs, std::string_view toName);

BackendResolution resolveBackendRef(Context& ctx, const api::Object& route, const api::Json& ref);

// True for the apiVersions we read for each route kind.
bool isRouteKind(const api::Object& o);
bool olderThan(const api::Object* a, const api::Object* b);

// Labels of a namespace (with the kubernetes.io/metadata.name label Kubernetes adds).
std::map<std::string, std::string> namespaceLabels(const api::Store& store, std::string_view ns);

// Decoded data[key] of a Secret (base64) or ConfigMap (plain); nullopt when absent.
std::optional<std::string> secretData(const api::Object& secret, std::string_view key);
std::optional<std::string> configMapData(const api::Object& cm, std::string_view key);

// Condition list as status JSON, every entry with observedGeneration.
api::Json conditionsJson(const std::vector<Condition>& conditions, int64_t generation);

}  // namespace archway::translate
