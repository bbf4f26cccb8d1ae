// libFuzzer target: client bytes -> HTTP/1.1 request parser -> route table -> the matched
// rule's filters, as the proxy runs them. See fuzz/route_request.h for what is checked.
#include "route_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  archway::fuzz::routeRequests(data, size);
  return 0;
}
