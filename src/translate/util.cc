#include "translate/util.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <set>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace archway::translate {

std::string toLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isWildcard(std::string_view host) { return host.size() > 2 && host.substr(0, 2) == "*."; }

bool wildcardCovers(std::string_view pattern, std::string_view host) {
  if (!isWildcard(pattern)) return false;
  std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (isWildcard(host)) {
    // A wildcard falls within another when its suffix is the same or longer.
    std::string_view hostSuffix = host.substr(1);
    return hostSuffix.size() >= suffix.size() &&
           hostSuffix.substr(hostSuffix.size() - suffix.size()) == suffix;
  }
  // At least one label before the suffix.
  return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix &&
         host.size() - suffix.size() >= 1;
}

std::optional<std::vector<std::string>> intersectHostnames(
    const std::optional<std::string>& listenerHostname,
    const std::vector<std::string>& routeHostnames) {
  if (routeHostnames.empty()) return std::vector<std::string>{};
  if (!listenerHostname || listenerHostname->empty()) return routeHostnames;
  const std::string& l = *listenerHostname;
  std::vector<std::string> out;
  auto add = [&](const std::string& h) {
    if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(h);
  };
  for (const auto& h : routeHostnames) {
    if (h == l) {
      add(h);
    } else if (isWildcard(l) && wildcardCovers(l, h)) {
      add(h);  // route is as or more specific than the listener
    } else if (isWildcard(h) && wildcardCovers(h, l)) {
      add(l);  // a wildcard route on a more specific listener serves the listener's name
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool labelSelectorMatches(const nlohmann::json& selector,
                          const std::map<std::string, std::string>& labels) {
  if (selector.is_null()) return true;
  if (!selector.is_object()) return false;
  if (auto it = selector.find("matchLabels"); it != selector.end() && !it->is_null()) {
    if (!it->is_object()) return false;
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) return false;
      auto l = labels.find(k);
      if (l == labels.end() || l->second != v.get<std::string>()) return false;
    }
  }
  if (auto it = selector.find("matchExpressions"); it != selector.end() && !it->is_null()) {
    if (!it->is_array()) return false;
    for (const auto& e : *it) {
      if (!e.is_object() || !e.contains("key") || !e["key"].is_string() ||
          !e.contains("operator") || !e["operator"].is_string())
        return false;
      std::string key = e["key"], op = e["operator"];
      std::set<std::string> values;
      if (auto v = e.find("values"); v != e.end() && v->is_array())
        for (const auto& x : *v)
          if (x.is_string()) values.insert(x.get<std::string>());
      auto l = labels.find(key);
      bool has = l != labels.end();
      if (op == "In") {
        if (!has || !values.count(l->second)) return false;
      } else if (op == "NotIn") {
        if (has && values.count(l->second)) return false;
      } else if (op == "Exists") {
        if (!has) return false;
      } else if (op == "DoesNotExist") {
        if (has) return false;
      } else {
        return false;
      }
    }
  }
  return true;
}

std::optional<std::chrono::milliseconds> parseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // GEP-2257: ^([0-9]{1,5}(h|m|s|ms)){1,4}$
  int64_t total = 0;
  size_t i = 0, parts = 0;
  std::set<std::string> seen;
  while (i < text.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      ++i;
      if (i - start > 5) return std::nullopt;
    }
    if (i == start || i >= text.size()) return std::nullopt;
    std::string unit;
    if (text.substr(i, 2) == "ms") {
      unit = "ms";
      i += 2;
    } else if (text[i] == 'h' || text[i] == 'm' || text[i] == 's') {
      unit = std::string(1, text[i]);
      ++i;
    } else {
      return std::nullopt;
    }
    if (!seen.insert(unit).second) return std::nullopt;
    if (++parts > 4) return std::nullopt;
    int64_t factor = unit == "h" ? 3600000 : unit == "m" ? 60000 : unit == "s" ? 1000 : 1;
    total += n * factor;
  }
  return std::chrono::milliseconds(total);
}

std::optional<std::string> base64Decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    int v = val(c);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  return out;
}

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

BioPtr memBio(const std::string& s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}
}  // namespace

bool validCertificateAndKey(const std::string& certPem, const std::string& keyPem,
                            std::string* error) {
  auto fail = [&](const char* what) {
    if (error) *error = what;
    ERR_clear_error();
    return false;
  };
  if (certPem.empty()) return fail("tls.crt is empty");
  if (keyPem.empty()) return fail("tls.key is empty");
  BioPtr cb = memBio(certPem);
  X509Ptr cert(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return fail("tls.crt does not hold a PEM certificate");
  BioPtr kb = memBio(keyPem);
  PkeyPtr key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return fail("tls.key does not hold a PEM private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    return fail("tls.key does not match the certificate in tls.crt");
  ERR_clear_error();
  return true;
}

bool validCaBundle(const std::string& pem) {
  if (pem.empty()) return false;
  BioPtr b = memBio(pem);
  X509Ptr cert(b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return cert != nullptr;
}

int intField(const nlohmann::json& j, const char* key, int def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  if (it == j.end()) return def;
  if (it->is_number_unsigned()) {
    auto v = it->get<uint64_t>();
    return v <= static_cast<uint64_t>(std::numeric_limits<int>::max()) ? static_cast<int>(v) : def;
  }
  if (it->is_number_integer()) {
    auto v = it->get<int64_t>();
    return v >= std::numeric_limits<int>::min() && v <= std::numeric_limits<int>::max()
               ? static_cast<int>(v)
               : def;
  }
  return def;
}

bool boolField(const nlohmann::json& j, const char* key, bool def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

std::string stringField(const nlohmann::json& j, const char* key, std::string def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

bool isIpAddress(std::string_view text) {
  std::string s(text);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

std::optional<std::string> addressFromPool(std::string_view cidr, std::string_view key) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string base(cidr.substr(0, slash));
  int prefix = 0;
  std::string_view p = cidr.substr(slash + 1);
  if (p.empty() || p.size() > 3) return std::nullopt;
  for (char c : p) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    prefix = prefix * 10 + (c - '0');
  }
  unsigned char bytes[16];
  int family = AF_INET;
  size_t len = 4;
  if (inet_pton(AF_INET, base.c_str(), bytes) != 1) {
    if (inet_pton(AF_INET6, base.c_str(), bytes) != 1) return std::nullopt;
    family = AF_INET6;
    len = 16;
  }
  int bitsTotal = static_cast<int>(len * 8);
  if (prefix > bitsTotal) return std::nullopt;
  int hostBits = std::min(bitsTotal - prefix, 62);
  // FNV-1a of the key: stable across runs and builds.
  uint64_t h = 1469598103934665603ull;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  uint64_t offset = 0;
  if (hostBits > 0) {
    uint64_t size = uint64_t{1} << hostBits;
    if (size > 2) {
      offset = 1 + h % (size - 2);  // skip network and broadcast addresses
    } else {
      offset = h % size;
    }
  }
  // Clear host bits, then add the offset (big-endian).
  for (int bit = prefix; bit < bitsTotal; ++bit)
    bytes[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
  for (size_t i = len; i-- > 0 && offset;) {
    uint64_t sum = bytes[i] + (offset & 0xff);
    bytes[i] = static_cast<unsigned char>(sum & 0xff);
    offset = (offset >> 8) + (sum >> 8);
  }
  char out[INET6_ADDRSTRLEN];
  if (!inet_ntop(family, bytes, out, sizeof(out))) return std::nullopt;
  return std::string(out);
}

}  // namespace archway::translate
