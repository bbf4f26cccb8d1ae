// OpenSSL contexts, built once per snapshot on the control thread and shared read-only by
// every worker (creating SSL objects from one SSL_CTX is thread-safe).
//
// Downstream: one server context per terminating listener (HTTPS, or TLS mode Terminate)
// with that listener's certificates, its frontend client-certificate validation and ALPN.
// The listener (and so the context) is chosen from the SNI of the peeked ClientHello, so
// certificates of different listeners never mix and session tickets never cross listeners.
// Upstream: one client context per BackendTLSPolicy'd backend.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ssl/context.hpp>

#include "snapshot/snapshot.h"

namespace archway::tls {

// TLS 1.2 cipher suites (Mozilla "intermediate"): forward-secret AEADs only. TLS 1.3
// suites are OpenSSL's defaults (all AEAD).
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Server context for a terminating listener. `alpn` lists the protocols offered, in
// server preference order (empty: no ALPN). Null with `error` set when the certificate
// or key cannot be used.
std::shared_ptr<asio::ssl::context> makeServerContext(const snapshot::Listener& listener,
                                                      const std::vector<std::string>& alpn,
                                                      std::string* error);

// Client context for a backend with a BackendTLSPolicy (CA or system trust, client
// certificate). ALPN offers "h2" with `h2` set (HTTP/2 and gRPC backends), else
// "http/1.1". Null with `error` set when the policy cannot be honoured.
std::shared_ptr<asio::ssl::context> makeClientContext(const snapshot::BackendTls& tls,
                                                      std::string* error, bool h2 = false);

// Per-connection client settings: SNI, and hostname or subjectAltName verification.
// Returns false when the SSL object cannot be configured.
bool configureClient(SSL* ssl, const snapshot::BackendTls& tls);

// True when `name` matches hostname `pattern` ("*.example.com" covers one or more labels).
bool hostnameMatches(std::string_view pattern, std::string_view name);

}  // namespace archway::tls
