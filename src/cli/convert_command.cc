// `archway convert`: reads manifests, prints Gateway API resources on stdout and the
// conversion report on stderr. Exit 2 only when the input cannot be read.
#include <cstdio>
#include <iostream>

#include "api/loader.h"
#include "cli/commands.h"
#include "convert/convert.h"

namespace archway::cli {

int runConvert(const ConvertOptions& options) {
  if (!options.ns.empty() && options.allNamespaces) {
    std::fprintf(stderr, "archway convert: -n and -A are mutually exclusive\n");
    return 2;
  }
  for (const auto& p : options.providers)
    if (p != convert::kProviderKong && p != convert::kProviderIngressNginx) {
      std::fprintf(stderr,
                   "archway convert: %s is not a supported provider (ingress-nginx, kong)\n",
                   p.c_str());
      return 2;
    }
  api::LoadResult loaded = api::loadPaths(options.paths);
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
  if (loaded.inputError) {
    std::fprintf(stderr, "archway convert: input could not be read\n");
    return 2;
  }
  convert::ConvertConfig config;
  config.providers = options.providers;
  config.ns = options.allNamespaces ? "" : options.ns;
  config.gatewayClass = options.gatewayClass;
  convert::ConvertResult result;
  try {
    result = convert::convert(loaded.objects, config);
  } catch (const std::exception& e) {
    // Malformed field types in the input surface as JSON type errors.
    std::fprintf(stderr, "archway convert: malformed input: %s\n", e.what());
    return 2;
  }
  std::string report = convert::renderReport(result.report);
  std::fwrite(report.data(), 1, report.size(), stderr);
  std::string out = options.output == "json" ? convert::toJson(result.resources)
                                             : convert::toYaml(result.resources);
  if (result.resources.empty()) std::fprintf(stderr, "No resources found\n");
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace archway::cli
