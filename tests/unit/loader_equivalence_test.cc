// decodeText() builds documents from parser events in one pass; it must give exactly what
// the node-tree conversion it replaced gives (decodeTextWithNodeTree): objects, values and
// their JSON types, field lines, diagnostics and their order.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "api/loader.h"
#include "strict_json_equal.h"

namespace archway::api {
namespace {

namespace fs = std::filesystem;

using testing::strictEqual;

// "" when both decodings agree, else what differs.
std::string compare(std::string_view text) {
  LoadResult want = decodeTextWithNodeTree(text, "f.yaml");
  LoadResult got = decodeText(text, "f.yaml");
  if (want.inputError != got.inputError) return "inputError differs";
  if (want.diagnostics.size() != got.diagnostics.size()) {
    return "diagnostic count differs: want " + std::to_string(want.diagnostics.size()) +
           (want.diagnostics.empty() ? "" : " (" + want.diagnostics[0].format() + ")") + ", got " +
           std::to_string(got.diagnostics.size()) +
           (got.diagnostics.empty() ? "" : " (" + got.diagnostics[0].format() + ")");
  }
  for (size_t i = 0; i < want.diagnostics.size(); ++i) {
    const auto& w = want.diagnostics[i];
    const auto& g = got.diagnostics[i];
    if (w.severity != g.severity || w.format() != g.format())
      return "diagnostic differs: want '" + w.format() + "', got '" + g.format() + "'";
  }
  if (want.objects.size() != got.objects.size()) return "object count differs";
  for (size_t i = 0; i < want.objects.size(); ++i) {
    const Object& w = want.objects[i];
    const Object& g = got.objects[i];
    std::string who = w.displayName() + ": ";
    if (w.apiVersion != g.apiVersion || w.kind != g.kind || w.name != g.name || w.ns != g.ns)
      return who + "identity differs";
    if (w.generation != g.generation || w.creationTimestamp != g.creationTimestamp)
      return who + "metadata differs";
    if (!(w.location == g.location)) return who + "location differs";
    if (!strictEqual(w.body, g.body)) return who + "body differs: " + g.body.dump();
    if ((w.lines == nullptr) != (g.lines == nullptr)) return who + "lines presence differs";
    if (w.lines && *w.lines != *g.lines) {
      for (const auto& [path, line] : *w.lines) {
        auto it = g.lines->find(path);
        if (it == g.lines->end()) return who + "no line for " + path;
        if (it->second != line)
          return who + "line of " + path + ": want " + std::to_string(line) + ", got " +
                 std::to_string(it->second);
      }
      return who + "extra field lines";
    }
  }
  return "";
}

TEST(LoaderEquivalence, CraftedDocuments) {
  std::string deep = "a: ";
  for (int i = 0; i < 70; ++i) deep += "[";
  for (int i = 0; i < 70; ++i) deep += "]";
  std::string deepOk = "a: ";
  for (int i = 0; i < 60; ++i) deepOk += "[";
  for (int i = 0; i < 60; ++i) deepOk += "]";
  std::string aliasDeep = "apiVersion: v1\nkind: K\nmetadata: {name: n}\nbase: &b ";
  for (int i = 0; i < 40; ++i) aliasDeep += "[";
  for (int i = 0; i < 40; ++i) aliasDeep += "]";
  aliasDeep += "\nx: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[*b]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n";
  std::string laughs =
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  std::string prev = "a";
  for (char c : std::string("bcdefgh")) {
    std::string name(1, c);
    laughs += name + ": &" + name + " [";
    for (int i = 0; i < 10; ++i) laughs += std::string(i ? ", " : "") + "*" + prev;
    laughs += "]\n";
    prev = name;
  }
  const std::vector<std::string> cases = {
      "",
      "---\n",
      "---\n---\n",
      "# only a comment\n",
      "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: ns\nspec:\n  ports:\n"
      "  - port: 80\n    name: http\n",
      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\n"
      "apiVersion: v1\nkind: Service\nmetadata: {name: t}\n",
      // Typing of plain and quoted scalars, tags.
      "apiVersion: v1\nkind: K\nmetadata: {name: n, generation: 7}\nv: [1, -2, +3, 0x1f, 0o17, "
      "1.5, -2e3, .inf, true, False, NULL, ~, '', \"1\", '2', !!str 3, !!int 4, !!null '', "
      "yes, 99999999999999999999, 1e400, 0x, 1_000]\n",
      // Duplicate keys (the last wins), nested under both.
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nspec:\n  a:\n    b: 1\n    c: 2\n  a:\n"
      "    b: 3\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nspec: {a: 1, a: {b: 2}}\n",
      // Null and empty keys and values.
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nspec:\n  ? \n  : 1\n  empty:\n  ~: 2\n",
      // Anchors and aliases: scalars, collections, keys, nested, redefined.
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nbase: &b {x: 1, y: [1, 2]}\ncopy: *b\n"
      "list: [*b, *b, {z: *b}]\nscalar: &s hello\nagain: *s\n*s : keyed\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\na: &x 1\nb: &x [2]\nc: *x\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\na: &n ~\nb: *n\n*n : v\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nk: &k [1]\n*k : v\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\n<<: &m {a: 1}\nb: {<<: *m}\n",
      // A collection inside its own anchor (a cycle in the node tree).
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\na: &r [1, *r]\n",
      aliasDeep,
      laughs,
      // Collections as keys.
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\n? [a, b]\n: 1\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\n{a: 1}: 2\n---\napiVersion: v1\nkind: K\n"
      "metadata: {name: m}\n",
      // Depth.
      deep,
      deepOk,
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\n" + deep +
          "\n---\napiVersion: v1\nkind: "
          "K\nmetadata: {name: m}\n",
      // Not objects, missing fields.
      "- a\n- b\n",
      "just a string\n",
      "apiVersion: v1\nmetadata: {name: n}\n",
      "apiVersion: v1\nkind: K\nmetadata: {namespace: x}\n",
      // Lists.
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: K\n  metadata: {name: a}\n"
      "  spec:\n    x: 1\n- apiVersion: v1\n  kind: K\n  metadata: {name: b}\n",
      // Invalid UTF-8 in a value and in a key.
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\nv: \"\xff\"\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\n\xc3\x28: 1\n",
      // Syntax errors, directives, document end markers, JSON.
      "apiVersion: v1\nkind: K\nmetadata: {name: n\n",
      "a: b: c\n",
      "%YAML 1.2\n---\napiVersion: v1\nkind: K\nmetadata: {name: n}\n...\n",
      "{\"apiVersion\": \"v1\", \"kind\": \"K\", \"metadata\": {\"name\": \"n\"}, \"n\": [1, 2.5, "
      "null, true, \"x\"]}\n",
      "apiVersion: v1\nkind: K\nmetadata: {name: n}\ntext: |\n  line one\n  line two\nfolded: >\n"
      "  a\n  b\n",
      "--- !!map\napiVersion: v1\nkind: K\nmetadata: !!map {name: n}\n",
      "\xef\xbb\xbf"
      "apiVersion: v1\nkind: K\nmetadata: {name: bom}\n",
      "apiVersion: v1\r\nkind: K\r\nmetadata:\r\n  name: crlf\r\n",
      "- &a\n- *a\n",
      "&a [*a]\n",
      "*a\n",
  };
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(compare(cases[i]), "") << "case " << i;
}

// Every manifest of the repository (golden cases, examples, CRDs, fuzz corpora) and, when
// present, the shared conformance manifests.
TEST(LoaderEquivalence, RepositoryManifests) {
  size_t files = 0;
  std::vector<fs::path> roots = {
      fs::path(ARCHWAY_SOURCE_DIR) / "tests",
      fs::path(ARCHWAY_SOURCE_DIR) / "examples",
      fs::path(ARCHWAY_SOURCE_DIR) / "deploy",
      fs::path(ARCHWAY_SOURCE_DIR) / "fuzz" / "corpus",
      fs::path(ARCHWAY_SOURCE_DIR) / ".." / "shared" / "conformance",
  };
  for (const auto& root : roots) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(root, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      auto ext = it->path().extension().string();
      bool corpus = it->path().string().find("corpus") != std::string::npos;
      if (!corpus && ext != ".yaml" && ext != ".yml" && ext != ".json") continue;
      if (it->file_size(ec) > (1u << 20)) continue;
      std::ifstream in(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      EXPECT_EQ(compare(ss.str()), "") << it->path();
      ++files;
    }
  }
  EXPECT_GT(files, 50u);
}

}  // namespace
}  // namespace archway::api
