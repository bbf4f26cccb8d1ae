// Output: YAML documents through yaml-cpp, JSON through nlohmann, and the text report.
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <tuple>

#include <re2/re2.h>

#include "convert/model.h"

namespace archway::convert {
namespace {

// Strings a YAML 1.1 or 1.2 reader would take for another type must be quoted.
bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const RE2 kSpecial(
      "^(~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|"
      "ON|off|Off|OFF|[-+]?[0-9][0-9_:]*(\\.[0-9_]*)?([eE][-+]?[0-9]+)?|[-+]?\\.[0-9]+|"
      "[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)|0x[0-9a-fA-F]+|0o[0-7]+)$");
  return RE2::FullMatch(s, kSpecial);
}

void emit(YAML::Emitter& e, const Json& j) {
  switch (j.type()) {
    case Json::value_t::object:
      // "name" and "type" first, as Kubernetes manifests are usually written.
      e << YAML::BeginMap;
      for (const char* k : {"name", "type"})
        if (j.contains(k)) {
          e << YAML::Key << k << YAML::Value;
          emit(e, j[k]);
        }
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "name" || it.key() == "type") continue;
        e << YAML::Key << it.key() << YAML::Value;
        emit(e, it.value());
      }
      e << YAML::EndMap;
      break;
    case Json::value_t::array:
      e << YAML::BeginSeq;
      for (const auto& v : j) emit(e, v);
      e << YAML::EndSeq;
      break;
    case Json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      if (needsQuotes(s)) e << YAML::DoubleQuoted;
      e << s;
      break;
    }
    case Json::value_t::boolean:
      e << (j.get<bool>() ? "true" : "false");
      break;
    case Json::value_t::null:
      e << YAML::Null;
      break;
    default:
      e << j.dump();
  }
}

}  // namespace

std::string toYaml(const std::vector<Json>& resources) {
  std::string out;
  for (const auto& r : resources) {
    YAML::Emitter e;
    e.SetIndent(2);
    e.SetSeqFormat(YAML::Block);
    // apiVersion, kind, metadata, spec first; the rest alphabetically.
    e << YAML::BeginMap;
    for (const char* k : {"apiVersion", "kind", "metadata", "spec"})
      if (r.contains(k)) {
        e << YAML::Key << k << YAML::Value;
        emit(e, r[k]);
      }
    for (auto it = r.begin(); it != r.end(); ++it) {
      std::string k = it.key();
      if (k == "apiVersion" || k == "kind" || k == "metadata" || k == "spec") continue;
      e << YAML::Key << k << YAML::Value;
      emit(e, it.value());
    }
    e << YAML::EndMap;
    out += "---\n";
    out += e.c_str();
    out += "\n";
  }
  return out;
}

std::string toJson(const std::vector<Json>& resources) {
  Json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", Json::array()}};
  for (const auto& r : resources) list["items"].push_back(r);
  return list.dump(2) + "\n";
}

std::string renderReport(const std::vector<ReportEntry>& report) {
  // Grouped per object, objects sorted, entries in the order they were found.
  std::map<std::string, std::vector<const ReportEntry*>> byObject;
  std::map<Outcome, int> counts;
  std::set<std::tuple<std::string, std::string, Outcome, std::string>> seen;
  for (const auto& e : report) {
    // The same path converted for several host aliases is one finding.
    if (!seen.insert({e.object, e.field, e.outcome, e.message}).second) continue;
    byObject[e.object].push_back(&e);
    counts[e.outcome]++;
  }
  std::string out;
  for (const auto& [object, entries] : byObject) {
    out += object + "\n";
    for (const auto* e : entries) {
      std::string tag = outcomeName(e->outcome);
      tag.resize(14, ' ');
      out += "  " + tag + (e->field.empty() ? "" : e->field + ": ") + e->message + "\n";
    }
  }
  out += "summary: " + std::to_string(counts[Outcome::kConverted]) + " converted, " +
         std::to_string(counts[Outcome::kApproximated]) + " approximated, " +
         std::to_string(counts[Outcome::kUnconvertible]) + " unconvertible, " +
         std::to_string(counts[Outcome::kNote]) + " notes\n";
  return out;
}

}  // namespace archway::convert
