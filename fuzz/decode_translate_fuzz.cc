// libFuzzer target: manifest text -> decode -> validate -> store -> translate.
// Whatever the bytes, this must neither crash nor hang nor grow memory without bound.
#include <cstddef>
#include <cstdint>

#include "decode_translate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  archway::fuzz::decodeTranslate(data, size);
  return 0;
}
