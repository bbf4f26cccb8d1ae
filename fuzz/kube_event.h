// The pipeline exercised by fuzz/kube_event_fuzz.cc (what KubeSource does with the bytes the
// API server sends), shared with the unit test that replays the seed corpus under
// ASan/UBSan in every test run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api/object.h"
#include "sources/kube_decode.h"
#include "sources/kube_source.h"

namespace archway::fuzz {

namespace detail {

inline std::string kubeObject(const sources::KubeKind& kind, api::Json body) {
  std::vector<api::Diagnostic> diagnostics;
  api::Object o;
  bool ok = sources::kubeObjectFromJson(kind, std::move(body), &o, &diagnostics);
  for (const auto& d : diagnostics) (void)d.format();
  if (!ok) return "";
  if (o.name.empty() || o.kind != kind.kind || o.generation < 1)
    return "object accepted without a name, with another kind or generation < 1";
  (void)o.body.dump(-1, ' ', false, api::Json::error_handler_t::strict);
  return "";
}

}  // namespace detail

// First byte: bit 0 picks a LIST page (0) or a watch stream (1), the rest the kind. The rest
// of the input is the response body. Returns "" or a broken invariant (the fuzzer aborts).
inline std::string kubeEvent(const uint8_t* data, size_t size) {
  if (size == 0) return "";
  const auto& kinds = sources::kubeKinds();
  const sources::KubeKind& kind = kinds[(data[0] >> 1) % kinds.size()];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) == 0) {
    sources::KubeListPage page;
    std::string error;
    if (!sources::parseKubeListPage(body, &page, &error)) return error.empty() ? "no error" : "";
    for (auto& item : page.items)
      if (std::string why = detail::kubeObject(kind, std::move(item)); !why.empty()) return why;
    return "";
  }
  // A watch stream: one event per line, as the client splits it.
  size_t start = 0;
  while (start <= body.size()) {
    size_t nl = body.find('\n', start);
    std::string_view line = body.substr(start, nl == std::string_view::npos ? nl : nl - start);
    start = nl == std::string_view::npos ? body.size() + 1 : nl + 1;
    if (line.empty()) continue;
    sources::KubeWatchEvent ev = sources::parseKubeWatchEvent(line);
    using Kind = sources::KubeWatchEvent::Kind;
    if (ev.kind == Kind::kError && ev.error.empty()) return "error event without a reason";
    if (ev.kind != Kind::kChange) continue;
    if (ev.type != "ADDED" && ev.type != "MODIFIED" && ev.type != "DELETED")
      return "change of unknown type " + ev.type;
    if (!ev.object.is_object()) return "change without an object";
    if (ev.type == "DELETED") continue;
    if (std::string why = detail::kubeObject(kind, std::move(ev.object)); !why.empty()) return why;
  }
  return "";
}

}  // namespace archway::fuzz
