// The fuzz targets' invariant check: abort (a libFuzzer crash) when `ok` is false. An
// abort rather than a return code, so the same checks fail the corpus-replay unit tests.
#pragma once

#include <cstdlib>

namespace archway::fuzz {

inline void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace archway::fuzz
