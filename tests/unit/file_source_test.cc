// FileSource::reload() over a temporary directory: the last valid version of an object keeps
// serving when an edit fails validation, as an API server would have rejected the update.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <asio/io_context.hpp>

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

  void write(const std::string& text) {
    std::ofstream(dir_ / "routes.yaml", std::ios::trunc) << text;
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

}  // namespace
}  // namespace archway::sources
