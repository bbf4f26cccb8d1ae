// Replays the `archway convert` fuzz corpus through the fuzz target's own pipeline, so every
// test run (under ASan/UBSan in CI) re-checks the hostile seeds and past reproducers.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "../../fuzz/convert_roundtrip.h"

namespace archway::convert {
namespace {

namespace fs = std::filesystem;

fs::path corpusDir() { return fs::path(ARCHWAY_SOURCE_DIR) / "fuzz" / "corpus" / "convert"; }

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(FuzzCorpus, ConvertOutputOfEveryInputReadsBack) {
  size_t files = 0;
  size_t converted = 0;
  for (const auto& entry : fs::directory_iterator(corpusDir())) {
    if (!entry.is_regular_file()) continue;
    ++files;
    std::string data = readFile(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(
        archway::fuzz::convertRoundTrip(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
        "");
    api::LoadResult loaded = api::decodeText(data, "in.yaml");
    if (loaded.inputError) continue;
    try {
      converted += convert(loaded.objects, {}).resources.empty() ? 0 : 1;
    } catch (const std::exception&) {
    }
  }
  EXPECT_GE(files, 40u);
  // The round trip is only checked on inputs that convert to something.
  EXPECT_GE(converted, 30u);
}

}  // namespace
}  // namespace archway::convert
