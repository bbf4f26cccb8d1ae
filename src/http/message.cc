#include "http/message.h"

#include <algorithm>
#include <array>

namespace archway::http {

void toLowerInPlace(std::string& s) {
  for (auto& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
}

std::string toLower(std::string_view s) {
  std::string out(s);
  toLowerInPlace(out);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  bool done = false;
  auto it = items_.begin();
  while (it != items_.end()) {
    if (it->name == name) {
      if (!done) {
        it->value.assign(value);
        done = true;
        ++it;
      } else {
        it = items_.erase(it);
      }
    } else {
      ++it;
    }
  }
  if (!done) add(name, value);
}

void HeaderMap::append(std::string_view name, std::string_view value) {
  for (auto& h : items_) {
    if (h.name == name) {
      if (!h.value.empty()) h.value.append(",");
      h.value.append(value);
      return;
    }
  }
  add(name, value);
}

size_t HeaderMap::remove(std::string_view name) {
  auto before = items_.size();
  std::erase_if(items_, [&](const Header& h) { return h.name == name; });
  return before - items_.size();
}

size_t HeaderMap::count(std::string_view name) const {
  return static_cast<size_t>(
      std::count_if(items_.begin(), items_.end(), [&](const Header& h) { return h.name == name; }));
}

std::string_view RequestHead::host() const {
  std::string_view a = authority;
  if (!a.empty() && a.front() == '[') {  // IPv6 literal
    auto close = a.find(']');
    return close == std::string_view::npos ? a : a.substr(0, close + 1);
  }
  auto colon = a.rfind(':');
  return colon == std::string_view::npos ? a : a.substr(0, colon);
}

const char* reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

bool isHopByHop(std::string_view n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
         n == "transfer-encoding" || n == "te" || n == "trailer" || n == "upgrade" ||
         n == "content-length" || n == "expect";
}

namespace {
// RFC 3986 host and port characters (reg-name, IP literal brackets, port), as a table: this
// runs on every request.
constexpr std::array<bool, 256> kAuthorityChars = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (unsigned char c : std::string_view("-.:[]_~%!$&'()*+,;=")) t[c] = true;
  return t;
}();
}  // namespace

bool isValidAuthority(std::string_view authority) {
  for (char c : authority)
    if (!kAuthorityChars[static_cast<unsigned char>(c)]) return false;
  return true;
}

}  // namespace archway::http
