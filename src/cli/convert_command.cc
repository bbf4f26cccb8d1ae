#include <cstdio>

#include "cli/commands.h"

namespace archway::cli {

int runConvert(const ConvertOptions& options) {
  std::fprintf(stderr, "archway convert: not built yet\n");
  return 2;
}

}  // namespace archway::cli
