#include "api/loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "api/validation_util.h"

namespace archway::api {

namespace fs = std::filesystem;

std::string Diagnostic::format() const {
  std::string where = location.format();
  return where.empty() ? message : where + ": " + message;
}

namespace {

struct DepthExceeded {};

// YAML 1.2 core schema resolution for plain (unquoted) scalars.
Json plainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // Integers: [-+]?[0-9]+ (also 0x / 0o forms).
  {
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(),
                                    [](char c) { return c >= '0' && c <= '9'; })) {
      try {
        size_t used = 0;
        long long v = std::stoll(s, &used, 10);
        if (used == s.size()) return v;
      } catch (...) {
        // Out of range: fall through to a floating-point or string value.
      }
    }
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    try {
      size_t used = 0;
      long long v = std::stoll(s.substr(2), &used, s[1] == 'x' ? 16 : 8);
      if (used == s.size() - 2) return v;
    } catch (...) {
    }
  }
  // Floats: only forms that look numeric ("1.5", "-2e3", ".inf" is kept as a string).
  {
    bool looksNumeric =
        std::any_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        std::all_of(s.begin(), s.end(), [](char c) {
          return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+';
        });
    if (looksNumeric) {
      try {
        size_t used = 0;
        double v = std::stod(s, &used);
        if (used == s.size()) return v;
      } catch (...) {
      }
    }
  }
  return s;
}

// Counts decoded nodes so that aliases cannot expand a small text into a huge tree
// ("billion laughs"): yaml-cpp shares aliased nodes, but converting them to JSON copies them.
struct DecodeBudget {
  size_t nodes = 0;
  size_t aliasedNodes = 0;
  // Start offsets of the collections already converted: meeting one again means an alias.
  std::unordered_set<size_t> seenCollections;
};

struct DecodeError {
  std::string message;
};

const std::string& checkedText(const std::string& s) {
  if (!validation::isValidUtf8(s)) throw DecodeError{"invalid UTF-8 in a scalar"};
  return s;
}

Json toJson(const YAML::Node& node, const std::string& path, FieldLines& lines, int depth,
            DecodeBudget& budget, bool inAlias) {
  if (depth > kMaxDocumentDepth) throw DepthExceeded{};
  if (++budget.nodes > kMaxDocumentNodes) {
    throw DecodeError{"document has more than " + std::to_string(kMaxDocumentNodes) + " nodes"};
  }
  // Fields inside an alias are not recorded: their lookups fall back to the alias's line.
  if (!path.empty() && !inAlias) lines.emplace(path, node.Mark().line + 1);
  if (node.IsSequence() || node.IsMap()) {
    if (!budget.seenCollections.insert(node.Mark().pos).second) inAlias = true;
  }
  if (inAlias && ++budget.aliasedNodes > kMaxAliasExpansion) {
    throw DecodeError{"aliases expand to more than " + std::to_string(kMaxAliasExpansion) +
                      " nodes"};
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      // Quoted scalars carry the non-specific tag "!"; only plain scalars are typed.
      const std::string& text = checkedText(node.Scalar());
      if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return text;
      return plainScalar(text);
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      size_t i = 0;
      for (const auto& item : node) {
        out.push_back(
            toJson(item, path + "[" + std::to_string(i) + "]", lines, depth + 1, budget, inAlias));
        ++i;
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) {
        // JSON (and Kubernetes) keys are strings; a collection as key is rejected rather
        // than serialised (an aliased key could be arbitrarily large).
        if (!kv.first.IsScalar() && !kv.first.IsNull()) {
          throw DecodeError{"mapping key at line " + std::to_string(kv.first.Mark().line + 1) +
                            " is not a scalar"};
        }
        std::string key = kv.first.IsScalar() ? checkedText(kv.first.Scalar()) : std::string();
        std::string child = path.empty() ? key : path + "." + key;
        out[key] = toJson(kv.second, child, lines, depth + 1, budget, inAlias);
        // A field's line is its key's line (a block value starts on the next line).
        if (!inAlias && kv.first.Mark().line >= 0) {
          lines.insert_or_assign(child, kv.first.Mark().line + 1);
        }
      }
      return out;
    }
  }
  return nullptr;
}

std::string stringField(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Turns one decoded document into objects ("List" kinds are unpacked).
void collectObjects(Json doc, const std::string& file, int line,
                    std::shared_ptr<const FieldLines> lines, const std::string& pathPrefix,
                    LoadResult& out) {
  SourceLocation loc{file, line};
  if (doc.is_null()) return;  // empty document
  if (!doc.is_object()) {
    out.diagnostics.push_back(
        {Diagnostic::Severity::kError, loc,
         "document is not a mapping (got " + std::string(doc.type_name()) + "); skipped"});
    return;
  }
  std::string kind = stringField(doc, "kind");
  if (kind.ends_with("List") && doc.contains("items") && doc["items"].is_array()) {
    size_t i = 0;
    for (auto& item : doc["items"]) {
      std::string itemPath = pathPrefix + "items[" + std::to_string(i) + "]";
      int itemLine = line;
      if (lines) {
        auto it = lines->find(itemPath);
        if (it != lines->end()) itemLine = it->second;
      }
      // Field lines of list items keep their prefix; re-key them for the item.
      auto itemLines = std::make_shared<FieldLines>();
      if (lines) {
        std::string prefix = itemPath + ".";
        for (auto it = lines->lower_bound(prefix);
             it != lines->end() && it->first.starts_with(prefix); ++it) {
          itemLines->emplace(it->first.substr(prefix.size()), it->second);
        }
      }
      collectObjects(std::move(item), file, itemLine, itemLines, "", out);
      ++i;
    }
    return;
  }
  Object o;
  o.apiVersion = stringField(doc, "apiVersion");
  o.kind = kind;
  if (o.apiVersion.empty() || o.kind.empty()) {
    out.diagnostics.push_back(
        {Diagnostic::Severity::kError, loc, "object has no apiVersion or kind; skipped"});
    return;
  }
  const Json& md =
      doc.contains("metadata") && doc["metadata"].is_object() ? doc["metadata"] : Json::object();
  o.name = stringField(md, "name");
  o.ns = stringField(md, "namespace");
  o.creationTimestamp = stringField(md, "creationTimestamp");
  if (auto it = md.find("generation"); it != md.end() && it->is_number_integer()) {
    o.generation = std::max<int64_t>(1, it->get<int64_t>());
  }
  if (o.name.empty()) {
    out.diagnostics.push_back(
        {Diagnostic::Severity::kError, loc, o.kind + ": metadata.name: Required value; skipped"});
    return;
  }
  o.body = std::move(doc);
  o.location = loc;
  o.lines = std::move(lines);
  out.objects.push_back(std::move(o));
}

// Events are ignored; only document starts are watched (see checkDocumentsAdvance).
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { lastStart_ = mark.pos; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  int lastStart() const { return lastStart_; }

 private:
  int lastStart_ = -1;
};

// yaml-cpp 0.7's LoadAll can loop forever producing empty documents on some malformed input
// (found by fuzzing): pre-scan the stream and stop when a document does not move forward.
void checkDocumentsAdvance(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  int previous = -1;
  size_t documents = 0;
  while (parser.HandleNextDocument(counter)) {
    if (++documents > kMaxDocumentsPerFile) {
      throw YAML::ParserException(
          YAML::Mark::null_mark(),
          "more than " + std::to_string(kMaxDocumentsPerFile) + " documents");
    }
    if (documents > 1 && counter.lastStart() <= previous) {
      throw YAML::ParserException(
          YAML::Mark::null_mark(),
          "the parser does not advance past offset " + std::to_string(counter.lastStart()));
    }
    previous = counter.lastStart();
  }
}

}  // namespace

LoadResult decodeText(std::string_view text, const std::string& fileName) {
  LoadResult out;
  std::vector<YAML::Node> docs;
  try {
    std::string owned(text);
    checkDocumentsAdvance(owned);
    docs = YAML::LoadAll(owned);
  } catch (const YAML::Exception& e) {
    out.inputError = true;
    out.diagnostics.push_back({Diagnostic::Severity::kError,
                               {fileName, e.mark.is_null() ? 0 : e.mark.line + 1},
                               "cannot parse YAML/JSON: " + e.msg});
    return out;
  } catch (const std::exception& e) {
    out.inputError = true;
    out.diagnostics.push_back(
        {Diagnostic::Severity::kError, {fileName, 0}, std::string("cannot parse: ") + e.what()});
    return out;
  }
  for (const auto& doc : docs) {
    int line = doc.Mark().line + 1;
    auto lines = std::make_shared<FieldLines>();
    try {
      DecodeBudget budget;
      Json j = toJson(doc, "", *lines, 0, budget, false);
      collectObjects(std::move(j), fileName, line, std::move(lines), "", out);
    } catch (const DecodeError& e) {
      out.inputError = true;
      out.diagnostics.push_back(
          {Diagnostic::Severity::kError, {fileName, line}, "cannot decode document: " + e.message});
    } catch (const DepthExceeded&) {
      out.inputError = true;
      out.diagnostics.push_back({Diagnostic::Severity::kError,
                                 {fileName, line},
                                 "document nested deeper than " +
                                     std::to_string(kMaxDocumentDepth) + " levels; skipped"});
    } catch (const std::exception& e) {
      out.inputError = true;
      out.diagnostics.push_back({Diagnostic::Severity::kError,
                                 {fileName, line},
                                 std::string("cannot decode document: ") + e.what()});
    }
  }
  return out;
}

std::vector<std::string> expandPaths(const std::vector<std::string>& paths,
                                     std::vector<Diagnostic>* diagnostics, bool* inputError) {
  std::vector<std::string> files;
  auto isManifest = [](const fs::path& p) {
    auto ext = p.extension().string();
    return ext == ".yaml" || ext == ".yml" || ext == ".json";
  };
  for (const auto& p : paths) {
    std::error_code ec;
    auto status = fs::status(p, ec);
    if (ec || !fs::exists(status)) {
      if (inputError) *inputError = true;
      if (diagnostics) {
        diagnostics->push_back(
            {Diagnostic::Severity::kError, {p, 0}, "cannot read: no such file or directory"});
      }
      continue;
    }
    if (fs::is_directory(status)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(
               p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && isManifest(it->path())) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  return files;
}

LoadResult loadPaths(const std::vector<std::string>& paths) {
  LoadResult out;
  for (const auto& file : expandPaths(paths, &out.diagnostics, &out.inputError)) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      out.inputError = true;
      out.diagnostics.push_back({Diagnostic::Severity::kError, {file, 0}, "cannot read file"});
      continue;
    }
    std::string text;
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      text.append(buf, static_cast<size_t>(in.gcount()));
      if (text.size() > kMaxManifestBytes) break;
    }
    if (text.size() > kMaxManifestBytes) {
      out.inputError = true;
      out.diagnostics.push_back(
          {Diagnostic::Severity::kError,
           {file, 0},
           "file larger than " + std::to_string(kMaxManifestBytes) + " bytes"});
      continue;
    }
    LoadResult one = decodeText(text, file);
    out.inputError = out.inputError || one.inputError;
    for (auto& o : one.objects) out.objects.push_back(std::move(o));
    for (auto& d : one.diagnostics) out.diagnostics.push_back(std::move(d));
  }
  return out;
}

}  // namespace archway::api
