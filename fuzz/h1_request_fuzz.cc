// libFuzzer target for the HTTP/1.1 request parser (every client byte goes through it).
// Checks: no crash or hang, limits hold, an accepted request carries no framing or
// hop-by-hop headers, and the result does not depend on how the bytes were split across
// reads (the first input byte picks the read size). See fuzz/h1_codec.h.
#include "h1_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  archway::fuzz::h1Request(data, size);
  return 0;
}
