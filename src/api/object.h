// The resource model: every Kubernetes object Archway reads, kept as its decoded JSON tree
// plus the facts the translator needs without digging (identity, generation, origin).
//
// Objects stay generic (JSON) rather than one C++ struct per CRD version: validation is
// driven by the CRDs' own OpenAPI schemas (src/api/validation), and the translator reads
// the few fields it needs through the typed accessors in src/api/fields.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace archway::api {

using Json = nlohmann::json;

// Where an object or one of its fields came from; line is 1-based, 0 when unknown.
struct SourceLocation {
  std::string file;
  int line = 0;

  std::string format() const;  // "file:line" or "file"
  bool operator==(const SourceLocation&) const = default;
};

// Lines of every field of one object, keyed by dotted path ("spec.listeners[0].port").
using FieldLines = std::map<std::string, int, std::less<>>;

// A newer version of an object that failed validation while a valid version was serving.
// A source that follows changes (file watch, Kubernetes watch) keeps the last valid version
// in its store, as the API server would have rejected the update, and records here why.
struct RejectedChange {
  SourceLocation location;          // where the rejected version was read
  int64_t generation = 0;           // its metadata.generation when known (Kubernetes), else 0
  std::vector<std::string> errors;  // its validationErrors ("field.path: what is wrong")

  bool operator==(const RejectedChange&) const = default;
};

struct Object {
  std::string apiVersion;  // "gateway.networking.k8s.io/v1"
  std::string kind;        // "HTTPRoute"
  std::string name;
  std::string ns;  // empty for cluster-scoped kinds
  int64_t generation = 1;
  // RFC 3339 as written in metadata.creationTimestamp, or assigned by the store in load
  // order. Route precedence ties are broken by (creationTimestamp, creationOrder, ns/name).
  std::string creationTimestamp;
  int64_t creationOrder = 0;
  Json body;  // the whole object as decoded; status written by other controllers included
  SourceLocation location;
  std::shared_ptr<const FieldLines> lines;
  // Schema/CEL violations found by validation ("field.path: what is wrong"). An object
  // with violations is not served; the translator reports them in its status conditions
  // (e.g. Accepted=False) and `check` prints them as file:line diagnostics.
  std::vector<std::string> validationErrors;
  // Set on a valid object kept serving in place of a newer, invalid version of it; the
  // translator reports it in the object's status (docs/architecture.md, "last good").
  std::optional<RejectedChange> rejectedChange;
  // Set by Store::put from a process-wide counter: two objects with the same non-zero
  // revision have the same content (copies of one put), so a translation can reuse what it
  // derived from an object whose revision did not change. 0: never put in a store.
  uint64_t revision = 0;

  std::string group() const;    // "" for the core group
  std::string version() const;  // "v1"
  const Json& spec() const;     // body["spec"] or an empty object
  const Json& metadata() const;
  // "Kind ns/name" or "Kind name" for messages.
  std::string displayName() const;
  // Line of a field path, falling back to the object's own line.
  SourceLocation locationOf(std::string_view fieldPath) const;
};

// Identity of an object inside a store.
struct ObjectKey {
  std::string kind;
  std::string ns;
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
};

inline ObjectKey keyOf(const Object& o) { return {o.kind, o.ns, o.name}; }

// Every object the sources currently hold. Immutable once handed to the translator.
class Store {
 public:
  // Adds or replaces (same kind/namespace/name) an object; gives it a new revision.
  void put(Object object);
  bool erase(const ObjectKey& key);

  const Object* find(std::string_view kind, std::string_view ns, std::string_view name) const;
  std::vector<const Object*> ofKind(std::string_view kind) const;
  const std::map<ObjectKey, Object>& all() const { return objects_; }
  size_t size() const { return objects_.size(); }

 private:
  std::map<ObjectKey, Object> objects_;
  int64_t nextOrder_ = 0;
};

}  // namespace archway::api
