// What KubeSource makes of API server answers, including malformed ones: errors, never
// exceptions (an exception in the watch callback would unwind through libcurl; one in the
// control thread would stop it).
#include "sources/kube_decode.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "../../fuzz/kube_event.h"
#include "sources/kube_source.h"

namespace archway::sources {
namespace {

namespace fs = std::filesystem;

const KubeKind& kindOf(const char* name) {
  const KubeKind* k = findKubeKind(name);
  EXPECT_NE(k, nullptr) << name;
  return *k;
}

TEST(KubeDecode, ListPage) {
  KubeListPage page;
  std::string error;
  ASSERT_TRUE(parseKubeListPage(
      R"({"metadata":{"resourceVersion":"12","continue":"c1"},"items":[{"a":1},{"b":2}]})", &page,
      &error));
  EXPECT_EQ(page.resourceVersion, "12");
  EXPECT_EQ(page.continueToken, "c1");
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[1]["b"], 2);
  ASSERT_TRUE(parseKubeListPage(R"({"items":null})", &page, &error));
  EXPECT_TRUE(page.items.empty());
  EXPECT_FALSE(parseKubeListPage(R"({"kind":"Status","code":403})", &page, &error));
  EXPECT_EQ(error, "not a list");
  EXPECT_FALSE(parseKubeListPage(R"({"items":[)", &page, &error));
  EXPECT_TRUE(error.starts_with("invalid JSON: ")) << error;
  // metadata of the wrong type is no resourceVersion, not an error.
  ASSERT_TRUE(parseKubeListPage(R"({"metadata":[1],"items":[]})", &page, &error));
  EXPECT_EQ(page.resourceVersion, "");
}

TEST(KubeDecode, WatchEvents) {
  KubeWatchEvent ev = parseKubeWatchEvent(
      R"({"type":"MODIFIED","object":{"metadata":{"name":"r","resourceVersion":"8"}}})");
  EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kChange);
  EXPECT_EQ(ev.type, "MODIFIED");
  EXPECT_EQ(ev.resourceVersion, "8");
  EXPECT_EQ(ev.object["metadata"]["name"], "r");
  ev = parseKubeWatchEvent(R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})");
  EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kBookmark);
  EXPECT_EQ(ev.resourceVersion, "9");
  ev = parseKubeWatchEvent(R"({"type":"ERROR","object":{"kind":"Status","code":410}})");
  EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kExpired);
  ev = parseKubeWatchEvent(R"({"type":"ERROR","object":{"code":500,"message":"boom"}})");
  EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kError);
  EXPECT_EQ(ev.error, "watch error: boom");
  ev = parseKubeWatchEvent(R"({"type":"PATCHED","object":{"metadata":{"resourceVersion":"3"}}})");
  EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kError);
  EXPECT_EQ(ev.type, "PATCHED");
  EXPECT_EQ(ev.resourceVersion, "3");
  EXPECT_EQ(parseKubeWatchEvent(R"({"type":"ADDED","object":5})").error,
            "watch event without an object");
  EXPECT_TRUE(parseKubeWatchEvent("{").error.starts_with("invalid watch event: "));
}

// Found while splitting the decoding out of KubeSource: `object.value("code", 0)` threw
// nlohmann's type_error when a Status carried a code that is not a number, from inside the
// libcurl write callback.
TEST(KubeDecode, ErrorEventWithANonNumericCodeIsAnError) {
  for (const char* line : {R"({"type":"ERROR","object":{"code":"410","message":"m"}})",
                           R"({"type":"ERROR","object":{"code":null}})",
                           R"({"type":"ERROR","object":{"code":[410]}})"}) {
    KubeWatchEvent ev;
    EXPECT_NO_THROW(ev = parseKubeWatchEvent(line)) << line;
    EXPECT_EQ(ev.kind, KubeWatchEvent::Kind::kError) << line;
  }
  EXPECT_EQ(parseKubeWatchEvent(R"({"type":"ERROR","object":{"code":410.0}})").kind,
            KubeWatchEvent::Kind::kExpired);
}

TEST(KubeDecode, ObjectFromJson) {
  std::vector<api::Diagnostic> diagnostics;
  api::Object o;
  ASSERT_TRUE(kubeObjectFromJson(
      kindOf("Service"),
      api::Json::parse(R"({"apiVersion":"v0","metadata":{"name":"s","namespace":"n",
          "generation":0,"managedFields":[{}]},"spec":{"ports":[{"port":80}]}})"),
      &o, &diagnostics));
  EXPECT_EQ(o.kind, "Service");
  EXPECT_EQ(o.apiVersion, "v1");
  EXPECT_EQ(o.body["apiVersion"], "v1");
  EXPECT_EQ(o.ns, "n");
  EXPECT_EQ(o.generation, 1);
  EXPECT_FALSE(o.body["metadata"].contains("managedFields"));
  EXPECT_TRUE(o.validationErrors.empty());
  // No name: skipped.
  EXPECT_FALSE(kubeObjectFromJson(kindOf("Service"), api::Json::parse(R"({"metadata":{}})"), &o,
                                  &diagnostics));
  // Wrong types are validation errors of the object, reported as diagnostics.
  diagnostics.clear();
  ASSERT_TRUE(kubeObjectFromJson(
      kindOf("Gateway"),
      api::Json::parse(R"({"metadata":{"name":"g"},"spec":{"gatewayClassName":42}})"), &o,
      &diagnostics));
  EXPECT_FALSE(o.validationErrors.empty());
  EXPECT_FALSE(diagnostics.empty());
}

// Found the same way: a LIST item that is not an object (`body["apiVersion"] = ...` on a
// number) threw type_error on the control thread.
TEST(KubeDecode, ListItemsThatAreNotObjectsAreSkipped) {
  std::vector<api::Diagnostic> diagnostics;
  api::Object o;
  for (const char* item : {"5", "\"x\"", "[]", "true", "null"}) {
    bool ok = true;
    EXPECT_NO_THROW(
        ok = kubeObjectFromJson(kindOf("HTTPRoute"), api::Json::parse(item), &o, &diagnostics))
        << item;
    EXPECT_FALSE(ok) << item;
  }
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Replays the kube_event fuzz corpus through the fuzz target's own pipeline, so every test
// run (under ASan/UBSan in CI) re-checks the seeds and past reproducers.
TEST(FuzzCorpus, EveryKubeAnswerDecodesWithoutBreakingAnInvariant) {
  size_t files = 0;
  for (const auto& entry :
       fs::directory_iterator(fs::path(ARCHWAY_SOURCE_DIR) / "fuzz" / "corpus" / "kube_event")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::string data = readFile(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(archway::fuzz::kubeEvent(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
              "");
  }
  EXPECT_GE(files, 15u);
}

}  // namespace
}  // namespace archway::sources
