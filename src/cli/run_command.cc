#include <cstdio>

#include "cli/commands.h"

namespace archway::cli {

int runServe(const RunOptions& options) {
  std::fprintf(stderr, "archway run: the data plane is not built yet\n");
  return 2;
}

}  // namespace archway::cli
