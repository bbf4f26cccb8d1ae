// libFuzzer target for the HTTP/1.1 response parser (every backend byte goes through it).
// Checks: no crash or hang, a HEAD response has no body, and the result does not depend on
// how the bytes were split across reads (the first input byte picks the read size and
// whether the request was a HEAD). See fuzz/h1_codec.h.
#include "h1_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  archway::fuzz::h1Response(data, size);
  return 0;
}
