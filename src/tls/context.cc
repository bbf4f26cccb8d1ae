#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>

#include <fmt/format.h>

namespace archway::tls {

namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

std::string opensslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

BioPtr memBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::vector<X509Ptr> readCerts(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio = memBio(pem);
  if (!bio) return out;
  for (;;) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (!x) break;
    out.emplace_back(x);
  }
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

void commonSettings(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_cipher_list(ctx, kTls12Ciphers);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

// Certificate chain (leaf first) and key from PEM.
bool useCertificate(SSL_CTX* ctx, const snapshot::Certificate& c, std::string* error) {
  auto chain = readCerts(c.certChainPem);
  if (chain.empty()) {
    *error = fmt::format("secret {}/{}: no certificate in tls.crt", c.secretNs, c.secretName);
    return false;
  }
  if (SSL_CTX_use_certificate(ctx, chain[0].get()) != 1) {
    *error = fmt::format("secret {}/{}: {}", c.secretNs, c.secretName, opensslError());
    return false;
  }
  for (size_t i = 1; i < chain.size(); ++i) SSL_CTX_add1_chain_cert(ctx, chain[i].get());
  BioPtr bio = memBio(c.keyPem);
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    *error = fmt::format("secret {}/{}: bad tls.key: {}", c.secretNs, c.secretName, opensslError());
    return false;
  }
  return true;
}

// ALPN selection: the first of our protocols (server preference) the client offers.
struct AlpnList {
  std::string wire;  // length-prefixed
};

int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned int inLen, void* arg) {
  const auto* ours = static_cast<const AlpnList*>(arg);
  const auto* w = reinterpret_cast<const unsigned char*>(ours->wire.data());
  size_t wn = ours->wire.size();
  for (size_t i = 0; i < wn; i += 1 + w[i]) {
    for (unsigned int j = 0; j < inLen; j += 1u + in[j]) {
      if (j + 1u + in[j] > inLen) break;
      if (in[j] == w[i] && std::memcmp(in + j + 1, w + i + 1, w[i]) == 0) {
        *out = in + j + 1;
        *outLen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  // No overlap: carry on without ALPN (HTTP/1.1), as nginx and Envoy do.
  return SSL_TLSEXT_ERR_NOACK;
}

int acceptAnyClientCert(int, X509_STORE_CTX*) { return 1; }

int appDataIndex() {
  static int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

bool hostnameMatches(std::string_view pattern, std::string_view name) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  }
  return pattern == name;
}

std::shared_ptr<asio::ssl::context> makeServerContext(const snapshot::Listener& listener,
                                                      const std::vector<std::string>& alpn,
                                                      std::string* error) {
  if (listener.certificates.empty()) {
    *error = "listener has no usable certificate";
    return nullptr;
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  commonSettings(c);
  for (const auto& cert : listener.certificates)
    if (!useCertificate(c, cert, error)) return nullptr;
  // Resumption is scoped to this context (one listener); required with client auth.
  std::string sid =
      fmt::format("{}/{}/{}", listener.gatewayNs, listener.gatewayName, listener.name);
  if (sid.size() > SSL_MAX_SID_CTX_LENGTH) sid.resize(SSL_MAX_SID_CTX_LENGTH);
  SSL_CTX_set_session_id_context(c, reinterpret_cast<const unsigned char*>(sid.data()),
                                 static_cast<unsigned int>(sid.size()));
  if (!alpn.empty()) {
    auto list = std::make_unique<AlpnList>();
    for (const auto& p : alpn) {
      list->wire.push_back(static_cast<char>(p.size()));
      list->wire.append(p);
    }
    SSL_CTX_set_alpn_select_cb(c, selectAlpn, list.get());
    // The list lives as long as the context: hand it to the context's ex-data and keep it
    // alive with the shared_ptr's deleter-free lifetime trick below.
    SSL_CTX_set_ex_data(c, appDataIndex(), list.get());
    auto holder = std::shared_ptr<AlpnList>(std::move(list));
    ctx = std::shared_ptr<asio::ssl::context>(ctx.get(), [ctx, holder](asio::ssl::context*) {});
  }
  if (const auto& v = listener.clientValidation) {
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    auto cas = readCerts(v->caPem);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const auto& ca : cas) {
      X509_STORE_add_cert(store, ca.get());
      if (X509_NAME* n = X509_NAME_dup(X509_get_subject_name(ca.get())))
        sk_X509_NAME_push(names, n);
    }
    SSL_CTX_set_client_CA_list(c, names);
    if (cas.empty() && !v->allowInsecureFallback) {
      *error = "frontend validation has no valid CA certificate";
      return nullptr;
    }
    if (v->allowInsecureFallback) {
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, acceptAnyClientCert);
    } else {
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
  }
  return ctx;
}

std::shared_ptr<asio::ssl::context> makeClientContext(const snapshot::BackendTls& tls,
                                                      std::string* error, bool h2) {
  if (tls.invalid) {
    *error = "BackendTLSPolicy is invalid";
    return nullptr;
  }
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();
  commonSettings(c);
  if (tls.useSystemCas) {
    if (SSL_CTX_set_default_verify_paths(c) != 1) {
      *error = "cannot load the system CA certificates";
      return nullptr;
    }
  }
  if (!tls.caPem.empty()) {
    auto cas = readCerts(tls.caPem);
    if (cas.empty()) {
      *error = "no CA certificate in the BackendTLSPolicy's CA bundle";
      return nullptr;
    }
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    for (const auto& ca : cas) X509_STORE_add_cert(store, ca.get());
  } else if (!tls.useSystemCas) {
    *error = "BackendTLSPolicy has no CA";
    return nullptr;
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  if (!tls.clientCertPem.empty()) {
    snapshot::Certificate cert{tls.clientCertPem, tls.clientKeyPem, "", "backend-client"};
    if (!useCertificate(c, cert, error)) return nullptr;
  }
  static const unsigned char kHttp11[] = "\x08http/1.1";
  static const unsigned char kH2[] = "\x02h2";
  if (h2) {
    SSL_CTX_set_alpn_protos(c, kH2, sizeof(kH2) - 1);
  } else {
    SSL_CTX_set_alpn_protos(c, kHttp11, sizeof(kHttp11) - 1);
  }
  return ctx;
}

namespace {

int sanIndex() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// True when the leaf certificate carries one of the wanted subjectAltNames: a Hostname
// (DNS SAN, wildcards in the certificate honoured) or a URI (exact).
bool leafMatchesSans(X509* leaf, const std::vector<std::string>& wanted) {
  for (const auto& w : wanted) {
    std::string_view v = w;
    if (v.starts_with("DNS:")) {
      std::string host(v.substr(4));
      if (X509_check_host(leaf, host.data(), host.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                          nullptr) == 1)
        return true;
    } else if (v.starts_with("URI:")) {
      std::string_view uri = v.substr(4);
      auto* names = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
      bool found = false;
      for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type != GEN_URI) continue;
        const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
        found = std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                 static_cast<size_t>(ASN1_STRING_length(s))) == uri;
      }
      GENERAL_NAMES_free(names);
      if (found) return true;
    }
  }
  return false;
}

int verifySans(int ok, X509_STORE_CTX* store) {
  if (!ok || X509_STORE_CTX_get_error_depth(store) != 0) return ok;
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* tls =
      ssl ? static_cast<const snapshot::BackendTls*>(SSL_get_ex_data(ssl, sanIndex())) : nullptr;
  if (!tls) return 0;
  if (!leafMatchesSans(X509_STORE_CTX_get_current_cert(store), tls->subjectAltNames)) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return 0;
  }
  return 1;
}

}  // namespace

bool configureClient(SSL* ssl, const snapshot::BackendTls& tls) {
  if (!tls.sni.empty() && SSL_set_tlsext_host_name(ssl, tls.sni.c_str()) != 1) return false;
  if (tls.subjectAltNames.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return X509_VERIFY_PARAM_set1_host(param, tls.sni.c_str(), 0) == 1;
  }
  // subjectAltNames replace the hostname check. `tls` outlives the connection: the pool
  // that owns the connection holds it.
  SSL_set_ex_data(ssl, sanIndex(), const_cast<snapshot::BackendTls*>(&tls));
  SSL_set_verify(ssl, SSL_VERIFY_PEER, verifySans);
  return true;
}

}  // namespace archway::tls
