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

// Builds each document's JSON value straight from yaml-cpp's parser events, in one pass: no
// YAML::Node tree (yaml-cpp's LoadAll builds one and toJson copied it), and no separate
// pre-scan. The values, field lines, limits and messages are those of the node-tree
// conversion this replaces (see toJson's rules, kept below as the reference for them).
class DocumentBuilder final : public YAML::EventHandler {
 public:
  struct Document {
    Json value;
    int line = 0;  // 1-based line of the root node
    std::shared_ptr<FieldLines> lines;
    std::string error;  // decode error (the document is skipped), "" when none
    bool tooDeep = false;
  };

  void OnDocumentStart(const YAML::Mark& mark) override {
    lastStart_ = mark.pos;
    stack_.clear();
    anchors_.clear();
    budget_ = {};
    doc_ = Document{};
    doc_.lines = std::make_shared<FieldLines>();
  }
  void OnDocumentEnd() override { docs_.push_back(std::move(doc_)); }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    leaf(mark, Json(nullptr), std::nullopt, anchor);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    leaf(mark, Json(), &value, anchor, &tag);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (failed()) return;
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) {
      // An alias to a collection still being built: the node tree had a cycle, which the
      // conversion followed until the depth limit.
      doc_.tooDeep = true;
      return;
    }
    const Anchored& a = it->second;
    if (isKeyPosition()) {
      if (a.collection) return fail(keyNotScalar(a.line));
      return setKey(a.keyText, a.line);
    }
    int depth = static_cast<int>(stack_.size());
    if (depth + a.height > kMaxDocumentDepth) {
      doc_.tooDeep = true;
      return;
    }
    if (!countNodes(a.nodes, a.collection)) return;
    std::string path = childPath();
    if (!path.empty()) doc_.lines->emplace(path, a.line);
    place(Json(a.value), path);
    noteHeight(a.height);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, Json::array(), anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, Json::object(), anchor);
  }
  void OnMapEnd() override { close(); }

  int lastStart() const { return lastStart_; }
  std::vector<Document>& documents() { return docs_; }

 private:
  struct Frame {
    Json value;
    std::string path;
    int line = 0;
    YAML::anchor_t anchor = YAML::NullAnchor;
    size_t nodesAtStart = 0;  // budget_.nodes before this collection was counted
    int height = 0;           // levels below this collection so far
    // Maps: the key waiting for its value.
    bool haveKey = false;
    std::string key;
    int keyLine = 0;
    size_t index = 0;  // sequences: the next item's index
  };
  struct Anchored {
    Json value;
    int line = 0;
    bool collection = false;
    size_t nodes = 1;  // nodes the value counts for when copied by an alias
    int height = 0;
    std::string keyText;  // the scalar's text (a null scalar as a key is "")
  };

  bool failed() const { return doc_.tooDeep || !doc_.error.empty(); }
  void fail(std::string message) {
    if (!failed()) doc_.error = std::move(message);
  }
  static std::string keyNotScalar(int line) {
    return "mapping key at line " + std::to_string(line) + " is not a scalar";
  }
  bool isKeyPosition() const {
    return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().haveKey;
  }
  std::string childPath() const {
    if (stack_.empty()) return "";
    const Frame& f = stack_.back();
    if (f.value.is_array()) return f.path + "[" + std::to_string(f.index) + "]";
    return f.path.empty() ? f.key : f.path + "." + f.key;
  }
  void setKey(std::string key, int line) {
    Frame& f = stack_.back();
    f.haveKey = true;
    f.key = std::move(key);
    f.keyLine = line;
  }
  // Counts `n` decoded nodes (aliased: copies of an anchored value), with toJson's limits.
  bool countNodes(size_t n, bool aliased) {
    size_t nodeRoom = kMaxDocumentNodes - std::min(budget_.nodes, kMaxDocumentNodes);
    size_t aliasRoom =
        aliased ? kMaxAliasExpansion - std::min(budget_.aliasedNodes, kMaxAliasExpansion) : n;
    if (n > nodeRoom && (!aliased || nodeRoom <= aliasRoom)) {
      fail("document has more than " + std::to_string(kMaxDocumentNodes) + " nodes");
      return false;
    }
    if (aliased && n > aliasRoom) {
      fail("aliases expand to more than " + std::to_string(kMaxAliasExpansion) + " nodes");
      return false;
    }
    budget_.nodes += n;
    if (aliased) budget_.aliasedNodes += n;
    return true;
  }
  // A finished value goes into its parent (or becomes the document).
  void place(Json value, const std::string& path) {
    if (stack_.empty()) {
      doc_.value = std::move(value);
      return;
    }
    Frame& f = stack_.back();
    if (f.value.is_array()) {
      f.value.push_back(std::move(value));
      ++f.index;
    } else {
      f.value[f.key] = std::move(value);
      // A field's line is its key's line (a block value starts on the next line).
      doc_.lines->insert_or_assign(path, f.keyLine);
      f.haveKey = false;
    }
  }
  void leaf(const YAML::Mark& mark, Json nullValue, std::optional<const std::string*> text,
            YAML::anchor_t anchor, const std::string* tag = nullptr) {
    if (failed()) return;
    int line = mark.line + 1;
    if (stack_.empty()) doc_.line = line;
    if (text && !validation::isValidUtf8(**text)) return fail("invalid UTF-8 in a scalar");
    if (isKeyPosition()) {
      std::string key = text ? **text : std::string();
      if (anchor != YAML::NullAnchor)
        anchors_[anchor] = Anchored{Json(key), line, false, 1, 0, key};
      return setKey(std::move(key), line);
    }
    if (static_cast<int>(stack_.size()) > kMaxDocumentDepth) {
      doc_.tooDeep = true;
      return;
    }
    if (!countNodes(1, false)) return;
    Json value = std::move(nullValue);
    if (text) {
      // Quoted scalars carry the non-specific tag "!"; only plain scalars are typed.
      value = (*tag == "!" || *tag == "tag:yaml.org,2002:str") ? Json(**text) : plainScalar(**text);
    }
    std::string path = childPath();
    if (!path.empty()) doc_.lines->emplace(path, line);
    if (anchor != YAML::NullAnchor)
      anchors_[anchor] = Anchored{value, line, false, 1, 0, text ? **text : std::string()};
    place(std::move(value), path);
    noteHeight(0);
  }
  void open(const YAML::Mark& mark, Json empty, YAML::anchor_t anchor) {
    int line = mark.line + 1;
    if (failed()) {
      ++skipDepth_;
      return;
    }
    if (isKeyPosition()) {
      fail(keyNotScalar(line));
      ++skipDepth_;
      return;
    }
    if (static_cast<int>(stack_.size()) > kMaxDocumentDepth) {
      doc_.tooDeep = true;
      ++skipDepth_;
      return;
    }
    size_t before = budget_.nodes;
    if (!countNodes(1, false)) {
      ++skipDepth_;
      return;
    }
    Frame f;
    f.path = childPath();
    if (!f.path.empty()) doc_.lines->emplace(f.path, line);
    f.value = std::move(empty);
    f.line = line;
    f.anchor = anchor;
    f.nodesAtStart = before;
    if (stack_.empty()) doc_.line = line;
    stack_.push_back(std::move(f));
  }
  void close() {
    if (skipDepth_ > 0) {
      --skipDepth_;
      return;
    }
    if (failed() || stack_.empty()) {
      stack_.clear();
      return;
    }
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor != YAML::NullAnchor) {
      anchors_[f.anchor] =
          Anchored{f.value, f.line, true, budget_.nodes - f.nodesAtStart, f.height, ""};
    }
    place(std::move(f.value), f.path);
    noteHeight(f.height);
  }
  // A child of `height` levels was placed: its parent has at least one more.
  void noteHeight(int height) {
    if (!stack_.empty()) stack_.back().height = std::max(stack_.back().height, height + 1);
  }

  std::vector<Frame> stack_;
  std::unordered_map<YAML::anchor_t, Anchored> anchors_;
  DecodeBudget budget_;
  Document doc_;
  std::vector<Document> docs_;
  size_t skipDepth_ = 0;
  int lastStart_ = -1;
};

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

// A file or document that cannot be read: an input error with its place.
void addInputError(LoadResult& out, const std::string& fileName, int line, std::string message) {
  out.inputError = true;
  out.diagnostics.push_back({Diagnostic::Severity::kError, {fileName, line}, std::move(message)});
}

std::string tooDeepMessage() {
  return "document nested deeper than " + std::to_string(kMaxDocumentDepth) + " levels; skipped";
}

// Feeds every document of `parser` to `handler` (which records where the last document
// started). yaml-cpp 0.7 can loop forever producing empty documents on some malformed input
// (found by fuzzing): stop when a document does not move forward, and after
// kMaxDocumentsPerFile documents.
template <typename Handler>
void handleAllDocuments(YAML::Parser& parser, Handler& handler) {
  int previous = -1;
  size_t documents = 0;
  while (parser.HandleNextDocument(handler)) {
    if (++documents > kMaxDocumentsPerFile) {
      throw YAML::ParserException(
          YAML::Mark::null_mark(),
          "more than " + std::to_string(kMaxDocumentsPerFile) + " documents");
    }
    if (documents > 1 && handler.lastStart() <= previous) {
      throw YAML::ParserException(
          YAML::Mark::null_mark(),
          "the parser does not advance past offset " + std::to_string(handler.lastStart()));
    }
    previous = handler.lastStart();
  }
}

// yaml-cpp's LoadAll has the same loop: pre-scan the stream with the checks above first.
void checkDocumentsAdvance(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  handleAllDocuments(parser, counter);
}

}  // namespace

// The reference conversion (yaml-cpp's node tree, after a pre-scan of the stream); tests
// check that decodeText() gives the same result.
LoadResult decodeTextWithNodeTree(std::string_view text, const std::string& fileName) {
  LoadResult out;
  std::vector<YAML::Node> docs;
  try {
    std::string owned(text);
    checkDocumentsAdvance(owned);
    docs = YAML::LoadAll(owned);
  } catch (const YAML::Exception& e) {
    addInputError(out, fileName, e.mark.is_null() ? 0 : e.mark.line + 1,
                  "cannot parse YAML/JSON: " + e.msg);
    return out;
  } catch (const std::exception& e) {
    addInputError(out, fileName, 0, std::string("cannot parse: ") + e.what());
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
      addInputError(out, fileName, line, "cannot decode document: " + e.message);
    } catch (const DepthExceeded&) {
      addInputError(out, fileName, line, tooDeepMessage());
    } catch (const std::exception& e) {
      addInputError(out, fileName, line, std::string("cannot decode document: ") + e.what());
    }
  }
  return out;
}

LoadResult decodeText(std::string_view text, const std::string& fileName) {
  LoadResult out;
  DocumentBuilder builder;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    handleAllDocuments(parser, builder);
  } catch (const YAML::Exception& e) {
    addInputError(out, fileName, e.mark.is_null() ? 0 : e.mark.line + 1,
                  "cannot parse YAML/JSON: " + e.msg);
    return out;
  } catch (const std::exception& e) {
    addInputError(out, fileName, 0, std::string("cannot parse: ") + e.what());
    return out;
  }
  for (auto& doc : builder.documents()) {
    int line = doc.line;
    if (doc.tooDeep) {
      addInputError(out, fileName, line, tooDeepMessage());
      continue;
    }
    if (!doc.error.empty()) {
      addInputError(out, fileName, line, "cannot decode document: " + doc.error);
      continue;
    }
    try {
      collectObjects(std::move(doc.value), fileName, line, std::move(doc.lines), "", out);
    } catch (const std::exception& e) {
      addInputError(out, fileName, line, std::string("cannot decode document: ") + e.what());
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
