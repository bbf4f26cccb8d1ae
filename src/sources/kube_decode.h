// Decoding of what the Kubernetes API server sends (LIST pages, watch event lines, objects),
// split from KubeSource so it can be tested and fuzzed without a cluster or threads. The
// server is trusted to be Kubernetes, not to be well-formed: every function here reports
// bad input as an error and never throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/loader.h"
#include "api/object.h"

namespace archway::sources {

struct KubeKind;

struct KubeListPage {
  std::vector<api::Json> items;
  std::string resourceVersion;
  std::string continueToken;
};

// One page of a LIST answer. False with *error ("invalid JSON: ...", "not a list").
bool parseKubeListPage(std::string_view body, KubeListPage* out, std::string* error);

struct KubeWatchEvent {
  enum class Kind {
    kChange,    // ADDED, MODIFIED or DELETED: type and object are set
    kBookmark,  // only resourceVersion moves on
    kExpired,   // ERROR 410: the resourceVersion is too old, list again
    kError,     // error says why; the watch is restarted (type is set when only the
                // event type was unknown: resourceVersion then still moves past it)
  };
  Kind kind = Kind::kError;
  std::string type;
  api::Json object;
  std::string resourceVersion;  // metadata.resourceVersion of the object, "" if absent
  std::string error;
};

// One line of a watch stream.
KubeWatchEvent parseKubeWatchEvent(std::string_view line);

// A LIST item or watch event object as the translator's object (validated as in file mode;
// the findings are appended to *diagnostics). False when it has no name.
bool kubeObjectFromJson(const KubeKind& kind, api::Json body, api::Object* out,
                        std::vector<api::Diagnostic>* diagnostics);

}  // namespace archway::sources
