#include "sources/kube_decode.h"

#include <algorithm>
#include <exception>

#include <fmt/format.h>

#include "api/validation.h"
#include "sources/kube_source.h"

namespace archway::sources {

namespace {

std::string str(const api::Json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const api::Json& field(const api::Json& j, const char* key) {
  static const api::Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

}  // namespace

bool parseKubeListPage(std::string_view body, KubeListPage* out, std::string* error) {
  api::Json page;
  try {
    page = api::Json::parse(body);
  } catch (const std::exception& e) {
    *error = fmt::format("invalid JSON: {}", e.what());
    return false;
  }
  const api::Json& items = field(page, "items");
  if (!page.is_object() || !page.contains("items") || !(items.is_array() || items.is_null())) {
    *error = "not a list";
    return false;
  }
  const api::Json& md = field(page, "metadata");
  out->resourceVersion = str(md, "resourceVersion");
  out->continueToken = str(md, "continue");
  out->items.clear();
  if (items.is_array())
    for (auto& item : page["items"]) out->items.push_back(std::move(item));
  return true;
}

KubeWatchEvent parseKubeWatchEvent(std::string_view line) {
  KubeWatchEvent ev;
  api::Json j;
  try {
    j = api::Json::parse(line);
  } catch (const std::exception& e) {
    ev.error = fmt::format("invalid watch event: {}", e.what());
    return ev;
  }
  if (!j.is_object() || !field(j, "object").is_object()) {
    ev.error = "watch event without an object";
    return ev;
  }
  std::string type = str(j, "type");
  api::Json& object = j["object"];
  if (type == "ERROR") {
    // A Status object; a code that is not a number is not "410 Gone".
    const api::Json& code = field(object, "code");
    if (code.is_number() && code.get<double>() == 410) {
      ev.kind = KubeWatchEvent::Kind::kExpired;
    } else {
      ev.error = fmt::format("watch error: {}", str(object, "message"));
    }
    return ev;
  }
  ev.resourceVersion = str(field(object, "metadata"), "resourceVersion");
  if (type == "BOOKMARK") {
    ev.kind = KubeWatchEvent::Kind::kBookmark;
    return ev;
  }
  if (type != "ADDED" && type != "MODIFIED" && type != "DELETED") {
    ev.error = fmt::format("unknown watch event type \"{}\"", type);
    ev.type = std::move(type);
    return ev;
  }
  ev.kind = KubeWatchEvent::Kind::kChange;
  ev.type = std::move(type);
  ev.object = std::move(object);
  return ev;
}

bool kubeObjectFromJson(const KubeKind& kind, api::Json body, api::Object* out,
                        std::vector<api::Diagnostic>* diagnostics) {
  if (!body.is_object()) return false;
  // List items carry no apiVersion/kind; watch events may use another served version.
  body["apiVersion"] = kind.apiVersion();
  body["kind"] = kind.kind;
  if (body.contains("metadata") && body["metadata"].is_object())
    body["metadata"].erase("managedFields");
  api::Object o;
  o.apiVersion = kind.apiVersion();
  o.kind = kind.kind;
  const api::Json& md = field(body, "metadata");
  o.name = str(md, "name");
  o.ns = str(md, "namespace");
  o.creationTimestamp = str(md, "creationTimestamp");
  if (const api::Json& g = field(md, "generation"); g.is_number_integer())
    o.generation = std::max<int64_t>(1, g.get<int64_t>());
  if (o.name.empty()) return false;
  o.location = {"kubernetes", 0};
  o.body = std::move(body);
  api::LoadResult r;
  r.objects.push_back(std::move(o));
  api::validateAll(r);  // as in file mode: the translator sees only what a cluster would
  for (auto& d : r.diagnostics) diagnostics->push_back(std::move(d));
  if (r.objects.empty()) return false;
  *out = std::move(r.objects.front());
  return true;
}

}  // namespace archway::sources
