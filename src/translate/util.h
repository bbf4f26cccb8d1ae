// Small pure functions of the Gateway API rules, kept apart so they can be unit-tested:
// hostname matching and intersection, label selectors, durations, PEM checks, addresses.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace archway::translate {

// One status condition, before it is written with observedGeneration.
struct Condition {
  std::string type;
  bool status = true;
  std::string reason;
  std::string message;
};

// Fixed lastTransitionTime: the translator is pure (no clock) and its output is compared
// byte for byte by golden tests. The status writer may substitute real times.
inline constexpr const char* kTransitionTime = "1970-01-01T00:00:00Z";

std::string toLower(std::string_view s);
bool isWildcard(std::string_view host);  // "*.example.com"

// Does `host` (exact or wildcard) fall within the wildcard `pattern` ("*.example.com")?
// "*" covers one or more labels; "example.com" itself does not match.
bool wildcardCovers(std::string_view pattern, std::string_view host);

// Effective hostnames of a route on a listener (Gateway API "hostname intersection").
// Returns nullopt when nothing intersects; an empty vector means "no restriction beyond
// the listener's own hostname".
std::optional<std::vector<std::string>> intersectHostnames(
    const std::optional<std::string>& listenerHostname,
    const std::vector<std::string>& routeHostnames);

// Kubernetes LabelSelector (matchLabels + matchExpressions In/NotIn/Exists/DoesNotExist).
// An empty selector matches everything; a malformed one matches nothing.
bool labelSelectorMatches(const nlohmann::json& selector,
                          const std::map<std::string, std::string>& labels);

// Gateway API Duration (GEP-2257): one or more <number><unit> with units h, m, s, ms,
// e.g. "1h2m3s500ms" or "0s". Returns nullopt when malformed.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);

std::optional<std::string> base64Decode(std::string_view in);

// True when `certPem` holds at least one X.509 certificate and `keyPem` a private key that
// matches the first one (OpenSSL parses both).
bool validCertificateAndKey(const std::string& certPem, const std::string& keyPem,
                            std::string* error);
// True when `pem` holds at least one parseable X.509 certificate.
bool validCaBundle(const std::string& pem);

bool isIpAddress(std::string_view text);

// Typed fields of a JSON object, or `def` when the object, the field or its type is not as
// expected (an integer must also fit an int). Objects that failed validation are still
// translated for their status, so any field may hold any type; nlohmann's value() throws.
int intField(const nlohmann::json& j, const char* key, int def);
bool boolField(const nlohmann::json& j, const char* key, bool def);
std::string stringField(const nlohmann::json& j, const char* key, std::string def = "");

// A stable address for `key` inside `cidr` (IPv4 or IPv6), avoiding the network and
// broadcast addresses where the prefix allows; nullopt for a malformed CIDR.
std::optional<std::string> addressFromPool(std::string_view cidr, std::string_view key);

}  // namespace archway::translate
