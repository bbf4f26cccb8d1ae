// TLS ClientHello inspection without terminating: enough of RFC 8446 §4.1.2 / RFC 5246
// §7.4.1.2 to read the server name (SNI) and the ALPN protocol list from the first
// handshake message. Used to route TLS passthrough connections and to pick the listener
// (and so the certificate) of a terminating port before the handshake starts.
//
// The parser is incremental in the simplest way: it is given every byte received so far
// and answers "need more", "done" or "not TLS". It copes with a handshake message split
// over several records and records split over several TCP segments, and it never reads
// past what it was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace archway::tls {

// Bytes of ClientHello (records included) we wait for before giving up. Envoy's
// tls_inspector max_client_hello_size is 64 KiB; nginx ssl_preread reads one 16 KiB
// record. A post-quantum ClientHello is ~2 KiB, so 64 KiB only stops abuse.
inline constexpr size_t kMaxClientHelloBytes = 64 * 1024;

enum class HelloStatus {
  kNeedMore,  // a prefix of a plausible ClientHello: read more
  kOk,        // parsed; `info` is filled
  kNotTls,    // not a TLS ClientHello (or malformed, or too large): close the connection
};

struct ClientHelloInfo {
  std::string serverName;         // lower-cased host_name from SNI; empty when absent
  std::vector<std::string> alpn;  // protocols offered, in client order
  uint16_t legacyVersion = 0;     // ClientHello.legacy_version
  size_t bytes = 0;               // bytes of `data` the ClientHello records occupy
};

HelloStatus parseClientHello(std::string_view data, ClientHelloInfo* info);

}  // namespace archway::tls
