// libFuzzer target: Kubernetes API answers (LIST pages, watch event streams) -> objects, as
// KubeSource decodes them. A broken or hostile API server must cause errors, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "kube_event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why = archway::fuzz::kubeEvent(data, size);
  if (!why.empty()) {
    std::fprintf(stderr, "kube event: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
