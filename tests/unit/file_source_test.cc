// FileSource::reload() over a temporary directory: the last valid version of an object keeps
// serving when an edit fails validation, as an API server would have rejected the update.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <asio/io_context.hpp>

#include "api/validation.h"
#include "sources/file_source.h"

namespace archway::sources {
namespace {

namespace fs = std::filesystem;

std::string route(const std::string& name, int port) {
  return "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " + name +
         ", namespace: ns}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: "
         "[{name: svc, port: " +
         std::to_string(port) + "}]\n";
}

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("archway-file-source-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& text) { writeFile("routes.yaml", text); }
  void writeFile(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::trunc) << text;
  }
  // A modification time well outside the window in which mtimes are not trusted.
  void setOldMtime(const std::string& name, std::chrono::hours age) {
    fs::last_write_time(dir_ / name, fs::file_time_type::clock::now() - age);
  }
  int port(const api::Object& o) { return o.spec()["rules"][0]["backendRefs"][0]["port"]; }

  fs::path dir_;
  asio::io_context io_;
  int changes_ = 0;
};

TEST_F(FileSourceTest, InvalidEditKeepsLastValidVersion) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  write(route("r", 80) + "---\n" + route("never", 70000));
  source.reload();
  const api::Object* r = source.store().find("HTTPRoute", "ns", "r");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->validationErrors.empty());
  // Never valid: stored as read, with its errors (the translator reports it, serves nothing).
  const api::Object* never = source.store().find("HTTPRoute", "ns", "never");
  ASSERT_NE(never, nullptr);
  EXPECT_FALSE(never->validationErrors.empty());
  EXPECT_FALSE(never->rejectedChange);

  write(route("r", 70000) + "---\n" + route("never", 70001));
  EXPECT_TRUE(source.reload());
  r = source.store().find("HTTPRoute", "ns", "r");
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->validationErrors.empty());
  EXPECT_EQ(port(*r), 80);
  EXPECT_EQ(r->generation, 1);
  ASSERT_TRUE(r->rejectedChange);
  EXPECT_EQ(r->rejectedChange->location.file, (dir_ / "routes.yaml").string());
  ASSERT_FALSE(r->rejectedChange->errors.empty());
  EXPECT_NE(r->rejectedChange->errors[0].find("backendRefs[0].port"), std::string::npos);
  never = source.store().find("HTTPRoute", "ns", "never");
  ASSERT_NE(never, nullptr);
  EXPECT_EQ(port(*never), 70001);  // replaced: no valid version to keep

  // The same invalid text again is no change.
  EXPECT_FALSE(source.reload());

  // Back to the exact last valid text: the rejection is cleared.
  write(route("r", 80));
  EXPECT_TRUE(source.reload());
  r = source.store().find("HTTPRoute", "ns", "r");
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->rejectedChange);
  EXPECT_EQ(r->generation, 1);
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "never"), nullptr);

  // A valid edit is applied; then an invalid edit followed by removal removes the object.
  write(route("r", 81));
  source.reload();
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "r")), 81);
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "r")->generation, 2);
  write(route("r", 0));
  source.reload();
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "r")), 81);
  write("");
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "r"), nullptr);
}

TEST_F(FileSourceTest, SyntaxErrorKeepsEveryObjectOfTheFile) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  write(route("a", 80) + "---\n" + route("b", 81));
  source.reload();
  ASSERT_EQ(source.store().size(), 2u);
  write(route("a", 82) + "---\nkind: [unterminated\n");
  EXPECT_FALSE(source.reload());
  ASSERT_NE(source.store().find("HTTPRoute", "ns", "a"), nullptr);
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "a")), 80);
  EXPECT_NE(source.store().find("HTTPRoute", "ns", "b"), nullptr);
}

// The reload cache: a file is read again only when its (device, inode, mtime, size) changed.
TEST_F(FileSourceTest, UnchangedFilesAreNotReadAgain) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  writeFile("a.yaml", route("a", 80));
  writeFile("b.yaml", route("b", 81));
  setOldMtime("a.yaml", std::chrono::hours(2));
  setOldMtime("b.yaml", std::chrono::hours(2));
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.counters().filesRead, 2u);
  EXPECT_EQ(source.counters().documentsDecoded, 2u);
  EXPECT_FALSE(source.reload());
  EXPECT_EQ(source.counters().filesRead, 2u);

  // A changed file (other size and mtime) is read and applied; the other one is not read.
  writeFile("b.yaml", route("b", 8081));
  setOldMtime("b.yaml", std::chrono::hours(1));
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.counters().filesRead, 3u);
  EXPECT_EQ(source.counters().documentsDecoded, 3u);
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "b")), 8081);
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "a")), 80);
  EXPECT_EQ(changes_, 2);
}

TEST_F(FileSourceTest, ReplacedFileWithSameSizeAndMtimeIsReadAgain) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  writeFile("a.yaml", route("a", 80));
  auto mtime = fs::file_time_type::clock::now() - std::chrono::hours(3);
  fs::last_write_time(dir_ / "a.yaml", mtime);
  source.reload();
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "a")), 80);
  // Same size, same mtime, new inode (written aside and renamed into place).
  writeFile("a.yaml.new", route("a", 81));
  fs::last_write_time(dir_ / "a.yaml.new", mtime);
  ASSERT_EQ(fs::file_size(dir_ / "a.yaml.new"), fs::file_size(dir_ / "a.yaml"));
  fs::rename(dir_ / "a.yaml.new", dir_ / "a.yaml");
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "a")), 81);
  EXPECT_EQ(source.counters().filesRead, 2u);
}

// A file written within the file system's timestamp granularity can keep its mtime and
// size across an in-place rewrite: a recent mtime is not trusted.
TEST_F(FileSourceTest, RecentlyWrittenFileIsReadAgainEvenWithSameMtimeAndSize) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  writeFile("a.yaml", route("a", 80));
  auto mtime = fs::file_time_type::clock::now();
  fs::last_write_time(dir_ / "a.yaml", mtime);
  source.reload();
  writeFile("a.yaml", route("a", 81));  // in place: same inode
  fs::last_write_time(dir_ / "a.yaml", mtime);
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "a")), 81);
  // Read again but identical: nothing decoded, no change.
  uint64_t decoded = source.counters().documentsDecoded;
  EXPECT_FALSE(source.reload());
  EXPECT_EQ(source.counters().documentsDecoded, decoded);
}

TEST_F(FileSourceTest, DeletedFileDropsItsObjects) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  writeFile("a.yaml", route("a", 80) + "---\n" + route("shared", 90));
  writeFile("b.yaml", route("b", 81) + "---\n" + route("shared", 91));
  source.reload();
  ASSERT_EQ(source.store().size(), 3u);
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "shared")), 91);  // later file wins
  fs::remove(dir_ / "b.yaml");
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "b"), nullptr);
  ASSERT_NE(source.store().find("HTTPRoute", "ns", "a"), nullptr);
  // The duplicate falls back to the remaining file's version.
  ASSERT_NE(source.store().find("HTTPRoute", "ns", "shared"), nullptr);
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "shared")), 90);
  EXPECT_EQ(source.store().size(), 2u);
}

// Only the documents whose text changed are decoded again; the others keep their objects,
// with their lines moved when an edit above them changed the line count.
TEST_F(FileSourceTest, OnlyChangedDocumentsAreDecoded) {
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  write(route("a", 80) + "---\n" + route("b", 81) + "---\n" + route("c", 82));
  source.reload();
  EXPECT_EQ(source.counters().documentsDecoded, 3u);
  int cLine = source.store().find("HTTPRoute", "ns", "c")->location.line;
  int64_t bGeneration = source.store().find("HTTPRoute", "ns", "b")->generation;

  write(route("a", 80) + "---\n" + route("b", 85) + "---\n" + route("c", 82));
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.counters().documentsDecoded, 4u);
  EXPECT_EQ(source.counters().objectsCompared, 4u);  // three at first, then only b
  EXPECT_EQ(port(*source.store().find("HTTPRoute", "ns", "b")), 85);
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "b")->generation, bGeneration + 1);

  // Two more lines in the first document: c is not decoded again, and a new object (as
  // `archway check` would load it) carries its new line.
  write("# one\n# two\n" + route("a", 80) + "---\n" + route("b", 85) + "---\n" + route("c", 83));
  EXPECT_TRUE(source.reload());
  EXPECT_EQ(source.counters().documentsDecoded, 6u);
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "c")->location.line, cLine + 2);
  EXPECT_EQ(source.store().find("HTTPRoute", "ns", "c")->locationOf("spec.rules").line,
            cLine + 2 + 5);
}

// Decoding a file document by document gives what decoding it whole gives: objects, lines,
// validation results.
TEST_F(FileSourceTest, DocumentCacheMatchesWholeFileDecoding) {
  std::string text = "# leading comment\n\n" + route("a", 80) + "--- # a comment\n" +
                     route("b", 81) + "---\n---\n\n" +
                     "--- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: ns}, "
                     "spec: {ports: [{port: 80}]}}\n" +
                     "---\napiVersion: v1\nkind: List\nitems:\n- " +
                     "apiVersion: v1\n  kind: Namespace\n  metadata: {name: listed}\n" + "---\r\n" +
                     route("c", 70000) + "---\n" + route("a", 80);
  write(text);
  FileSource source(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  source.reload();
  api::LoadResult whole = api::loadPaths({dir_.string()});
  ASSERT_FALSE(whole.inputError);
  api::validateAll(whole);
  ASSERT_EQ(whole.objects.size(), 6u);
  EXPECT_EQ(source.store().size(), 5u);  // "a" twice
  for (const auto& o : whole.objects) {
    const api::Object* got = source.store().find(o.kind, o.ns, o.name);
    ASSERT_NE(got, nullptr) << o.displayName();
    if (o.name == "a" && o.location.line != got->location.line) continue;  // the first "a"
    EXPECT_EQ(got->location, o.location) << o.displayName();
    ASSERT_TRUE(got->lines && o.lines);
    EXPECT_EQ(*got->lines, *o.lines) << o.displayName();
    EXPECT_EQ(got->spec(), o.spec()) << o.displayName();
    EXPECT_EQ(got->validationErrors, o.validationErrors) << o.displayName();
  }
}

// Random edits of files that hold duplicate keys (within and across files), some of which
// shift the documents below them: after every reload the incrementally maintained store
// serves what a source loading the directory from scratch serves.
TEST_F(FileSourceTest, IncrementalReloadsMatchAFreshLoad) {
  const char* names[] = {"a", "b", "c", "d"};
  const char* files[] = {"one.yaml", "two.yaml", "three.yaml"};
  std::map<std::string, std::vector<std::pair<std::string, int>>> content;
  unsigned seed = 12345;
  auto next = [&](unsigned n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
  };
  auto render = [&](const std::string& file) {
    std::string text;
    for (const auto& [name, port] : content[file]) {
      if (!text.empty()) text += "---\n";
      if (port % 3 == 0) text += "# a comment line\n";  // shifts what follows
      text += route(name, port);
    }
    return text;
  };
  FileSource incremental(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  for (int step = 0; step < 60; ++step) {
    std::string file = files[next(3)];
    auto& docs = content[file];
    switch (next(4)) {
      case 0:
        docs.emplace_back(names[next(4)], 80 + static_cast<int>(next(20)));
        break;
      case 1:
        if (!docs.empty()) docs.erase(docs.begin() + next(static_cast<unsigned>(docs.size())));
        break;
      default:
        if (!docs.empty())
          docs[next(static_cast<unsigned>(docs.size()))].second = 80 + next(20);
        else
          docs.emplace_back(names[next(4)], 80);
    }
    writeFile(file, render(file));
    incremental.reload();
    FileSource fresh(io_, {dir_.string()}, [](const api::Store&) {});
    fresh.reload();
    ASSERT_EQ(incremental.store().size(), fresh.store().size()) << "step " << step;
    for (const auto& [key, o] : fresh.store().all()) {
      const api::Object* got = incremental.store().find(key.kind, key.ns, key.name);
      ASSERT_NE(got, nullptr) << "step " << step << ": " << o.displayName();
      EXPECT_EQ(got->spec(), o.spec()) << "step " << step << ": " << o.displayName();
      EXPECT_EQ(got->location.file, o.location.file) << "step " << step << ": " << o.displayName();
    }
  }
}

// An edit re-splits only the part of the file that changed and keeps the documents before
// and after it by position: random edits of a 60-document file (values, comment lines that
// shift what follows, documents added and removed, blank lines and comments at document
// markers, the first and last documents) give the objects of a fresh load, a changed object
// has the lines and field lines of a fresh load, and an edit of one document decodes only
// that one.
TEST_F(FileSourceTest, SplittingOnlyTheChangedPartMatchesAFreshLoad) {
  unsigned seed = 777;
  auto next = [&](unsigned n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
  };
  struct Doc {
    std::string name;
    int port = 80;
    std::string before;  // comment or blank lines at the top of the document
    std::string marker = "---\n";
  };
  std::vector<Doc> docs;
  int made = 0;
  auto make = [&] {
    Doc d;
    d.name = "r" + std::to_string(made++);
    d.port = 80 + static_cast<int>(next(50));
    return d;
  };
  for (int i = 0; i < 60; ++i) docs.push_back(make());
  auto render = [&] {
    std::string text;
    for (size_t i = 0; i < docs.size(); ++i) {
      if (i > 0) text += docs[i].marker;
      text += docs[i].before + route(docs[i].name, docs[i].port);
    }
    return text;
  };
  const char* markers[] = {"---\n", "--- # next\n", "---\n\n", "---  \n"};
  FileSource incremental(io_, {dir_.string()}, [this](const api::Store&) { ++changes_; });
  write(render());
  incremental.reload();
  for (int step = 0; step < 80; ++step) {
    auto& d = docs[next(static_cast<unsigned>(docs.size()))];
    uint64_t decodedBefore = incremental.counters().documentsDecoded;
    bool one = true;  // the edit changes one document's text only
    // The document whose body changes: the store takes its new object (the others keep
    // theirs, lines included, while their body is the same), and its lines must be right
    // however the edits before moved it.
    std::string changed;
    switch (next(7)) {
      case 0:
        d.port = 80 + static_cast<int>(next(50));
        changed = d.name;
        break;
      case 1:
        d.before = d.before.empty() ? "# moved down\n" : "";
        break;
      case 2:
        d.marker = markers[next(4)];
        one = false;
        break;
      case 3:
        docs.insert(docs.begin() + next(static_cast<unsigned>(docs.size() + 1)), make());
        changed = "r" + std::to_string(made - 1);
        break;
      case 4:
        if (docs.size() > 2) {
          docs.erase(docs.begin() + next(static_cast<unsigned>(docs.size())));
          one = false;
        }
        break;
      case 5:
        docs.front().port = 80 + static_cast<int>(next(50));
        changed = docs.front().name;
        break;
      default:
        docs.back().port = 80 + static_cast<int>(next(50));
        changed = docs.back().name;
        break;
    }
    write(render());
    incremental.reload();
    if (one) {
      EXPECT_LE(incremental.counters().documentsDecoded - decodedBefore, 1u) << step;
    }
    FileSource fresh(io_, {dir_.string()}, [](const api::Store&) {});
    fresh.reload();
    ASSERT_EQ(incremental.store().size(), fresh.store().size()) << "step " << step;
    for (const auto& [key, o] : fresh.store().all()) {
      const api::Object* got = incremental.store().find(key.kind, key.ns, key.name);
      ASSERT_NE(got, nullptr) << "step " << step << ": " << o.displayName();
      EXPECT_EQ(got->spec(), o.spec()) << "step " << step << ": " << o.displayName();
      if (o.name != changed) continue;
      EXPECT_EQ(got->location, o.location) << "step " << step << ": " << o.displayName();
      ASSERT_TRUE(got->lines && o.lines);
      EXPECT_EQ(*got->lines, *o.lines) << "step " << step << ": " << o.displayName();
    }
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace archway::sources
