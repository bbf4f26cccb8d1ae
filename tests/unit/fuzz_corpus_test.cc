// Replays the fuzz corpora through the fuzz targets' own checks (decode+translate, the
// HTTP/1.1 request and response parsers), so every test run (under ASan/UBSan in CI)
// re-checks the hostile seeds and past crash reproducers.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "../../fuzz/decode_translate.h"
#include "../../fuzz/h1_codec.h"
#include "../../fuzz/route_request.h"

namespace archway::api {
namespace {

namespace fs = std::filesystem;

fs::path corpusDir() {
  return fs::path(ARCHWAY_SOURCE_DIR) / "fuzz" / "corpus" / "decode_translate";
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(FuzzCorpus, EveryInputRunsThroughDecodeValidateTranslate) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpusDir())) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::string data = readFile(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    archway::fuzz::decodeTranslate(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    // Every object left invalid by validation is reported with a located error.
    LoadResult loaded = decodeText(data, "in.yaml");
    validateAll(loaded);
    for (const auto& o : loaded.objects) {
      for (const auto& e : o.validationErrors) {
        bool reported = false;
        for (const auto& d : loaded.diagnostics) {
          reported = reported || (d.severity == Diagnostic::Severity::kError &&
                                  d.message == o.displayName() + ": " + e);
        }
        EXPECT_TRUE(reported) << e;
      }
    }
  }
  EXPECT_GE(files, 40u);
}

// Runs every file of fuzz/corpus/<name> through `target`; returns how many there were.
template <typename Target>
size_t replayCorpus(const char* name, Target target) {
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(corpusDir().parent_path() / name)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::string data = readFile(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    target(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  return files;
}

TEST(FuzzCorpus, Http1RequestParserChecksHoldOnEverySeed) {
  EXPECT_GE(replayCorpus("h1_request", archway::fuzz::h1Request), 26u);
}

TEST(FuzzCorpus, Http1ResponseParserChecksHoldOnEverySeed) {
  EXPECT_GE(replayCorpus("h1_response", archway::fuzz::h1Response), 13u);
}

TEST(FuzzCorpus, RoutedRequestChecksHoldOnEverySeed) {
  EXPECT_GE(replayCorpus("route_request", archway::fuzz::routeRequests), 13u);
}

// The seeds reach the rules they were written for (the fuzz table is not vacuous).
TEST(FuzzCorpus, RouteFuzzTableRoutesTheSeedsToTheirRules) {
  auto route = [](std::string_view raw) {
    http::h1::RequestParser p;
    p.reset("http");
    int reject = 0;
    p.feed(raw.data(), raw.size(), &reject);
    EXPECT_EQ(reject, 0) << raw;
    http::RequestHead& r = p.request();
    int index = archway::fuzz::routeAndFilter(r);
    EXPECT_GE(index, 0) << raw;
    return r;
  };
  EXPECT_EQ(route("GET /api/users?id=1 HTTP/1.1\r\nHost: any\r\nX-Remove: 1\r\n\r\n").path,
            "/users?id=1");
  http::RequestHead r = route("GET /api/x HTTP/1.1\r\nHost: any\r\nX-Remove: 1\r\n\r\n");
  EXPECT_EQ(r.authority, "internal.example");
  EXPECT_EQ(r.headers.get("x-remove"), nullptr);
  EXPECT_NE(r.headers.get("x-set"), nullptr);
  EXPECT_EQ(route("GET /v1/a/b HTTP/1.1\r\nHost: any\r\n\r\n").path, "/v2/new/a/b");
  EXPECT_EQ(route("GET /full/x?y HTTP/1.1\r\nHost: any\r\n\r\n").path, "/replaced?y");
}

LoadResult decodeCorpusFile(const char* name) {
  std::string data = readFile(corpusDir() / name);
  EXPECT_FALSE(data.empty()) << name;
  LoadResult loaded = decodeText(data, name);
  validateAll(loaded);
  return loaded;
}

bool hasDiagnostic(const LoadResult& r, std::string_view text) {
  for (const auto& d : r.diagnostics) {
    if (d.message.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(FuzzCorpus, AliasBombsAreRejectedNotExpanded) {
  LoadResult laughs = decodeCorpusFile("alias-billion-laughs.yaml");
  EXPECT_TRUE(laughs.objects.empty());
  EXPECT_TRUE(hasDiagnostic(laughs, "aliases expand to more than 100000 nodes"));
  LoadResult maps = decodeCorpusFile("alias-map-bomb.yaml");
  EXPECT_TRUE(hasDiagnostic(maps, "aliases expand to more than 100000 nodes"));
  // A modest, legitimate use of aliases still decodes.
  LoadResult valid = decodeCorpusFile("alias-valid.yaml");
  ASSERT_EQ(valid.objects.size(), 2u);
  EXPECT_EQ(valid.objects[1].spec()["ports"][0]["port"], 80);
  EXPECT_TRUE(valid.objects[1].validationErrors.empty());
}

TEST(FuzzCorpus, DeepNestingIsRejected) {
  for (const char* name : {"deep-flow-seq.yaml", "deep-flow-map.yaml", "deep-block-map.yaml"}) {
    LoadResult r = decodeCorpusFile(name);
    EXPECT_TRUE(r.inputError) << name;
    EXPECT_TRUE(r.objects.empty()) << name;
  }
}

TEST(FuzzCorpus, InvalidUtf8IsAnInputError) {
  LoadResult r = decodeCorpusFile("invalid-utf8.yaml");
  EXPECT_TRUE(r.inputError);
  EXPECT_TRUE(r.objects.empty());
}

TEST(FuzzCorpus, WrongTypesAreReportedAndDoNotStopOtherObjects) {
  LoadResult r = decodeCorpusFile("wrong-types.yaml");
  size_t invalid = 0;
  for (const auto& o : r.objects) invalid += o.validationErrors.empty() ? 0 : 1;
  EXPECT_GE(invalid, 5u);
  EXPECT_TRUE(hasDiagnostic(r, "spec.gatewayClassName: Invalid value: 42: must be of type string"));
}

}  // namespace
}  // namespace archway::api
