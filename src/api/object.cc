#include "api/object.h"

#include <atomic>

namespace archway::api {

std::string SourceLocation::format() const {
  if (line > 0) return file + ":" + std::to_string(line);
  return file;
}

std::string Object::group() const {
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? std::string() : apiVersion.substr(0, slash);
}

std::string Object::version() const {
  auto slash = apiVersion.find('/');
  return slash == std::string::npos ? apiVersion : apiVersion.substr(slash + 1);
}

namespace {
const Json& emptyObject() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}
}  // namespace

const Json& Object::spec() const {
  auto it = body.find("spec");
  return it != body.end() && it->is_object() ? *it : emptyObject();
}

const Json& Object::metadata() const {
  auto it = body.find("metadata");
  return it != body.end() && it->is_object() ? *it : emptyObject();
}

std::string Object::displayName() const {
  return ns.empty() ? kind + " " + name : kind + " " + ns + "/" + name;
}

SourceLocation Object::locationOf(std::string_view fieldPath) const {
  if (lines) {
    // Walk up the path until a recorded field is found: "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a".
    std::string path(fieldPath);
    while (!path.empty()) {
      auto it = lines->find(path);
      if (it != lines->end()) return {location.file, it->second};
      auto cut = path.find_last_of(".[");
      if (cut == std::string::npos) break;
      path.resize(cut);
    }
  }
  return location;
}

namespace {
std::atomic<uint64_t> nextRevision{1};
}  // namespace

void Store::put(Object object) {
  object.revision = nextRevision.fetch_add(1, std::memory_order_relaxed);
  ObjectKey key = keyOf(object);
  auto it = objects_.find(key);
  if (it != objects_.end()) {
    object.creationOrder = it->second.creationOrder;
    if (object.creationTimestamp.empty()) object.creationTimestamp = it->second.creationTimestamp;
    it->second = std::move(object);
    return;
  }
  object.creationOrder = nextOrder_++;
  objects_.emplace(std::move(key), std::move(object));
}

bool Store::erase(const ObjectKey& key) { return objects_.erase(key) > 0; }

const Object* Store::find(std::string_view kind, std::string_view ns, std::string_view name) const {
  auto it = objects_.find(ObjectKey{std::string(kind), std::string(ns), std::string(name)});
  return it == objects_.end() ? nullptr : &it->second;
}

std::vector<const Object*> Store::ofKind(std::string_view kind) const {
  // Keys sort by kind first: the objects of one kind are one contiguous range.
  std::vector<const Object*> out;
  for (auto it = objects_.lower_bound(ObjectKey{std::string(kind), {}, {}});
       it != objects_.end() && it->first.kind == kind; ++it)
    out.push_back(&it->second);
  return out;
}

}  // namespace archway::api
