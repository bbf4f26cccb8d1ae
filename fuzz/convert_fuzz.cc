// libFuzzer target: manifest text -> decode -> `archway convert` -> YAML/JSON output ->
// decode again. Must neither crash nor hang, and convert must never print resources its
// own loader cannot read back as the same objects.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "convert_roundtrip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why = archway::fuzz::convertRoundTrip(data, size);
  if (!why.empty()) {
    std::fprintf(stderr, "convert round trip: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
