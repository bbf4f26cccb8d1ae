// libFuzzer target for the ClientHello parser (TLS passthrough and SNI selection read
// untrusted bytes with it). Checks it never reads out of bounds, and that the verdict on
// a full buffer agrees with feeding the same bytes in two pieces.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tls/client_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using archway::tls::HelloStatus;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  archway::tls::ClientHelloInfo info;
  HelloStatus full = archway::tls::parseClientHello(all, &info);
  if (full == HelloStatus::kOk) {
    if (info.bytes == 0 || info.bytes > size) std::abort();
    if (info.serverName.size() > 255) std::abort();
  }
  // A prefix never says "not TLS" about bytes that complete to a ClientHello.
  if (size > 1) {
    archway::tls::ClientHelloInfo prefixInfo;
    HelloStatus prefix = archway::tls::parseClientHello(all.substr(0, size / 2), &prefixInfo);
    if (full == HelloStatus::kOk && prefix == HelloStatus::kNotTls) std::abort();
    if (prefix == HelloStatus::kOk && full != HelloStatus::kOk) std::abort();
  }
  return 0;
}
