// Small value checks shared by the schema validator, the CEL rule implementations and the
// core-kind checks: Kubernetes name formats, IP addresses, Go durations, safe JSON access.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/object.h"

namespace archway::api::validation {

// RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool isDns1123Label(std::string_view s);
// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
bool isDns1123Subdomain(std::string_view s);
// RFC 1035 label (Service names): like a 1123 label but starting with a letter.
bool isDns1035Label(std::string_view s);
// Label/annotation key: optional DNS subdomain prefix + "/" + name ([A-Za-z0-9][-A-Za-z0-9_.]*,
// at most 63 characters). Empty on success, otherwise what is wrong.
std::string qualifiedNameError(std::string_view s);
// Label value: empty or [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters.
bool isLabelValue(std::string_view s);
// IANA service name (named ports): at most 15 characters, [a-z0-9-], at least one letter,
// no leading/trailing or double hyphen.
bool isIanaServiceName(std::string_view s);

// Strict textual IP addresses (no leading zeros in IPv4, no zones in IPv6).
bool isIPv4(std::string_view s);
bool isIPv6(std::string_view s);
inline bool isIP(std::string_view s) { return isIPv4(s) || isIPv6(s); }

// Go time.ParseDuration; nullopt when the text is not a duration. Nanoseconds, saturating.
std::optional<int64_t> parseGoDuration(std::string_view s);

// RFC 3339 date-time (the OpenAPI "date-time" format).
bool isDateTime(std::string_view s);

// Number of Unicode characters (OpenAPI lengths count characters, not bytes).
size_t utf8Length(std::string_view s);
bool isValidUtf8(std::string_view s);

// Safe accessors: never throw, whatever the JSON shape.
const Json* child(const Json& j, std::string_view key);
// A present, non-null field (CEL has()).
bool has(const Json& j, std::string_view key);
// The string at j[key], or "" when absent or not a string.
std::string_view str(const Json& j, std::string_view key);
std::string_view str(const Json* j);
// Size of an array/object/string at j[key]; 0 when absent.
size_t sizeOf(const Json& j, std::string_view key);

// JSON text for messages; never throws (invalid UTF-8 is replaced), long values are cut.
std::string shortJson(const Json& j, size_t maxChars = 80);

}  // namespace archway::api::validation
