#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

#include "convert/model.h"

namespace archway::convert {

const char* outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kConverted:
      return "converted";
    case Outcome::kApproximated:
      return "approximated";
    case Outcome::kUnconvertible:
      return "unconvertible";
    case Outcome::kNote:
      return "note";
  }
  return "note";
}

std::string annotation(const api::Object& o, const std::string& key) {
  const Json& a = o.metadata().value("annotations", Json::object());
  if (!a.is_object()) return "";
  auto it = a.find(key);
  if (it == a.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

bool hasAnnotation(const api::Object& o, const std::string& key) {
  const Json& a = o.metadata().value("annotations", Json::object());
  return a.is_object() && a.contains(key);
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> splitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t pos = s.find(sep, start);
    if (pos == std::string::npos) pos = s.size();
    std::string item = trim(s.substr(start, pos - start));
    if (!item.empty()) out.push_back(item);
    start = pos + 1;
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::optional<int> parseInt(const std::string& raw) {
  std::string s = trim(raw);
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::string ingressClassOf(const api::Object& o) {
  const Json& spec = o.spec();
  if (spec.contains("ingressClassName") && spec["ingressClassName"].is_string())
    return spec["ingressClassName"].get<std::string>();
  return annotation(o, "kubernetes.io/ingress.class");
}

Json parentRef(const std::string& gateway, const std::string& section) {
  Json p = {{"name", gateway}};
  if (!section.empty()) p["sectionName"] = section;
  return p;
}

Json makeMeta(const std::string& name, const std::string& ns) {
  Json m = {{"name", name}};
  if (!ns.empty()) m["namespace"] = ns;
  return m;
}

std::string msDuration(long long ms) {
  if (ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<std::string> secondsDuration(const std::string& raw) {
  std::string v = trim(raw);
  if (!v.empty() && v.back() == 's') v.pop_back();
  auto n = parseInt(v);
  if (!n || *n <= 0) return std::nullopt;
  return msDuration(static_cast<long long>(*n) * 1000);
}

std::string nameFromHost(const std::string& host) {
  if (host.empty() || host == "*") return "all-hosts";
  std::string prefix;
  std::string h = host;
  // "*.example.com" and "example.com" must not collide.
  if (h.rfind("*.", 0) == 0) {
    prefix = "wildcard-";
    h = h.substr(2);
  }
  std::string out;
  bool dash = false;
  for (unsigned char c : h) {
    if (std::isalnum(c)) {
      out.push_back(static_cast<char>(std::tolower(c)));
      dash = false;
    } else if (!dash) {
      out.push_back('-');
      dash = true;
    }
  }
  while (!out.empty() && out.front() == '-') out.erase(out.begin());
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty()) return "all-hosts";
  return prefix + out;
}

size_t headerCombinationCount(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& headers) {
  size_t count = 0;
  for (const auto& [name, values] : headers) {
    std::vector<std::string> uniq;
    for (const auto& v : values)
      if (!v.empty() && std::find(uniq.begin(), uniq.end(), v) == uniq.end()) uniq.push_back(v);
    if (name.empty() || uniq.empty()) continue;
    if (count == 0) count = 1;
    if (__builtin_mul_overflow(count, uniq.size(), &count)) return SIZE_MAX;
  }
  return count;
}

std::vector<std::vector<std::pair<std::string, std::string>>> headerCombinations(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& headers) {
  std::vector<std::vector<std::pair<std::string, std::string>>> out;
  std::vector<std::pair<std::string, std::vector<std::string>>> used;
  for (const auto& [name, values] : headers) {
    std::vector<std::string> uniq;
    for (const auto& v : values)
      if (!v.empty() && std::find(uniq.begin(), uniq.end(), v) == uniq.end()) uniq.push_back(v);
    if (!name.empty() && !uniq.empty()) used.emplace_back(name, uniq);
  }
  if (used.empty()) return out;
  out.push_back({});
  for (const auto& [name, values] : used) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& partial : out)
      for (const auto& v : values) {
        auto c = partial;
        c.emplace_back(name, v);
        next.push_back(std::move(c));
      }
    out = std::move(next);
  }
  return out;
}

}  // namespace archway::convert
