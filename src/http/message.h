// Protocol-independent HTTP messages: what a codec (HTTP/1 now, HTTP/2 later) produces
// from the wire and what the proxy, router and filters work on. Header names are stored
// lower-cased; the authority (Host / :authority) is kept apart from the header list so
// HTTP/1 and HTTP/2 look the same to everything above the codec.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace archway::http {

struct Header {
  std::string name;  // lower-case
  std::string value;
};

// Lower-cases ASCII in place.
void toLowerInPlace(std::string& s);
std::string toLower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);

class HeaderMap {
 public:
  // `name` must already be lower-case.
  void add(std::string_view name, std::string_view value) {
    items_.push_back(Header{std::string(name), std::string(value)});
  }
  // Value of the first header with this (lower-case) name, or nullptr.
  const std::string* get(std::string_view name) const {
    for (const auto& h : items_)
      if (h.name == name) return &h.value;
    return nullptr;
  }
  // Replaces every header with this name by one with `value`.
  void set(std::string_view name, std::string_view value);
  // Appends to an existing header with ", " or adds it.
  void append(std::string_view name, std::string_view value);
  size_t remove(std::string_view name);
  size_t count(std::string_view name) const;
  void clear() { items_.clear(); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<Header>& items() { return items_; }
  const std::vector<Header>& items() const { return items_; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<Header> items_;
};

struct RequestHead {
  std::string method;     // "GET"
  std::string path;       // origin-form target, query included ("/a/b?x=1")
  std::string authority;  // Host header / :authority (may carry ":port")
  std::string scheme = "http";
  HeaderMap headers;  // everything else; no Host, no framing headers
  bool hasBody = false;
  std::string upgrade;   // protocol asked for (HTTP/1.1 Upgrade / extended CONNECT), or empty
  int versionMinor = 1;  // HTTP/1.x minor version (HTTP/2 codecs leave 1)

  std::string_view pathOnly() const {
    auto q = path.find('?');
    return q == std::string::npos ? std::string_view(path) : std::string_view(path).substr(0, q);
  }
  // Query string without '?', empty when absent.
  std::string_view query() const {
    auto q = path.find('?');
    return q == std::string::npos ? std::string_view() : std::string_view(path).substr(q + 1);
  }
  // Host without port, lower-cased by the codec.
  std::string_view host() const;
};

struct ResponseHead {
  int status = 200;
  HeaderMap headers;                      // no framing/hop-by-hop headers
  std::optional<uint64_t> contentLength;  // known body length, if any
};

// Status-line reason phrase ("Not Found"); "Unknown" for unlisted codes.
const char* reasonPhrase(int status);

// An authority (Host / :authority) made only of the characters a host[:port] may hold
// (RFC 3986 reg-name, IP literals, port; no userinfo "@", no whitespace or controls).
// Both codecs refuse others with 400, so routing and backends see the same names.
bool isValidAuthority(std::string_view authority);

// Hop-by-hop headers that never cross the proxy (RFC 9110 §7.6.1).
bool isHopByHop(std::string_view lowerName);

}  // namespace archway::http
