// Decoding manifests: files and directories of YAML or JSON, multi-document, into Objects.
// Parse errors and unreadable paths are fatal for the document or file they occur in and
// are reported with file:line; every other document keeps loading.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/object.h"

namespace archway::api {

struct Diagnostic {
  enum class Severity { kError, kWarning, kNote };
  Severity severity = Severity::kError;
  SourceLocation location;
  std::string message;  // "Kind ns/name: field.path: what is wrong" or a parse error

  std::string format() const;  // "file:line: message"
};

struct LoadResult {
  std::vector<Object> objects;
  std::vector<Diagnostic> diagnostics;
  // True when a path could not be read or a document could not be parsed at all
  // (DESIGN §2: `archway check` exits 2).
  bool inputError = false;
};

// Expands files and directories (recursively; *.yaml, *.yml, *.json) in a stable order.
std::vector<std::string> expandPaths(const std::vector<std::string>& paths,
                                     std::vector<Diagnostic>* diagnostics, bool* inputError);

// Decodes every document of one file's text. `fileName` is used only for messages.
// Objects are returned as decoded, without schema validation.
LoadResult decodeText(std::string_view text, const std::string& fileName);

// decodeText() as it was done before (yaml-cpp's LoadAll node tree, then a conversion):
// kept as the reference the one-pass decoder is tested against.
LoadResult decodeTextWithNodeTree(std::string_view text, const std::string& fileName);

// Reads and decodes every manifest under `paths`.
LoadResult loadPaths(const std::vector<std::string>& paths);

// Nesting limit for decoded documents; deeper input is rejected, never recursed into.
inline constexpr int kMaxDocumentDepth = 64;
// Nodes of one decoded document (the largest Gateway API CRD has ~60k); a bound on memory.
inline constexpr size_t kMaxDocumentNodes = 1u << 20;
// Nodes produced by alias expansion in one document (Go's YAML decoder has a similar
// guard against "billion laughs"); real manifests rarely use aliases at all.
inline constexpr size_t kMaxAliasExpansion = 100000;
// Documents in one file (a guard against parser loops; real files hold a few hundred).
inline constexpr size_t kMaxDocumentsPerFile = 1u << 20;
// Largest manifest file read (bytes); Kubernetes itself caps objects at ~1.5 MiB.
inline constexpr size_t kMaxManifestBytes = 64u << 20;

}  // namespace archway::api
