// `archway check`: load manifests, translate, print every object with its computed status.
// Exit codes (DESIGN §2): 0 every Gateway of our class and every route attached to one is
// Accepted; 1 one is not; 2 input could not be read or parsed.

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <set>

#include <yaml-cpp/yaml.h>

#include "api/loader.h"
#include "api/validation.h"
#include "cli/commands.h"
#include "net/local_address.h"
#include "translate/translator.h"

namespace archway::cli {

namespace {

// Output order: Gateway API kinds first (in this order), then everything else by kind.
int kindRank(const std::string& kind) {
  static const char* const kOrder[] = {"GatewayClass",
                                       "Gateway",
                                       "ListenerSet",
                                       "HTTPRoute",
                                       "GRPCRoute",
                                       "TLSRoute",
                                       "TCPRoute",
                                       "UDPRoute",
                                       "ReferenceGrant",
                                       "BackendTLSPolicy",
                                       "XBackendTrafficPolicy"};
  for (size_t i = 0; i < std::size(kOrder); ++i)
    if (kind == kOrder[i]) return static_cast<int>(i);
  return 100;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Strings that YAML would read back as another type must be quoted.
void emitYaml(YAML::Emitter& out, const api::Json& j) {
  switch (j.type()) {
    case api::Json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key << k << YAML::Value;
        emitYaml(out, v);
      }
      out << YAML::EndMap;
      return;
    case api::Json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j) emitYaml(out, v);
      out << YAML::EndSeq;
      return;
    case api::Json::value_t::string: {
      const std::string s = j.get<std::string>();
      // Plain only for simple words that YAML reads back as the same string.
      static const std::set<std::string> kReserved = {"true", "false", "yes", "no", "on",
                                                      "off",  "null",  "~",   "y",  "n"};
      bool plainString =
          !s.empty() && !kReserved.count(lower(s)) && s.find(": ") == std::string::npos &&
          s.back() != ':' && s.back() != ' ' &&
          std::all_of(s.begin(), s.end(),
                      [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                               c == '_' || c == '.' || c == '/' || c == ':' || c == ' ';
                      }) &&
          (std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '/' || s[0] == '_');
      if (plainString)
        out << s;
      else
        out << YAML::DoubleQuoted << s;
      return;
    }
    case api::Json::value_t::boolean:
      out << j.get<bool>();
      return;
    case api::Json::value_t::number_integer:
      out << j.get<int64_t>();
      return;
    case api::Json::value_t::number_unsigned:
      out << j.get<uint64_t>();
      return;
    case api::Json::value_t::number_float:
      out << j.get<double>();
      return;
    default:
      out << YAML::Null;
  }
}

bool acceptedTrue(const api::Json& conditions) {
  if (!conditions.is_array()) return false;
  for (const auto& c : conditions)
    if (c.is_object() && c.value("type", "") == "Accepted") return c.value("status", "") == "True";
  return false;
}

}  // namespace

int runCheck(const CheckOptions& options) {
  api::LoadResult loaded = api::loadPaths(options.paths);
  api::validateAll(loaded);
  for (const auto& d : loaded.diagnostics) std::cerr << d.format() << "\n";
  if (loaded.inputError) return 2;
  api::Store store;
  for (auto& o : loaded.objects) store.put(std::move(o));
  translate::TranslateOptions topts;
  topts.addressUsable = net::isLocalAddress;
  translate::TranslateResult result = translate::translate(store, topts);
  for (const auto& d : result.diagnostics) std::cerr << d.format() << "\n";

  std::vector<const api::Object*> objects;
  for (const auto& [key, object] : store.all()) objects.push_back(&object);
  std::sort(objects.begin(), objects.end(), [](const api::Object* a, const api::Object* b) {
    int ra = kindRank(a->kind), rb = kindRank(b->kind);
    if (ra != rb) return ra < rb;
    return std::tie(a->kind, a->ns, a->name) < std::tie(b->kind, b->ns, b->name);
  });

  int exitCode = 0;
  api::Json items = api::Json::array();
  for (const api::Object* o : objects) {
    api::Json item = api::Json::object();
    item["apiVersion"] = o->apiVersion;
    item["kind"] = o->kind;
    api::Json md = {{"name", o->name}, {"generation", o->generation}};
    if (!o->ns.empty()) md["namespace"] = o->ns;
    item["metadata"] = md;
    if (o->body.contains("spec")) item["spec"] = o->body["spec"];
    auto st = result.statuses.find(api::keyOf(*o));
    if (st != result.statuses.end()) {
      item["status"] = st->second;
      // Exit status: our Gateways and the routes attached to them must be Accepted.
      if (o->kind == "Gateway" && !acceptedTrue(st->second.value("conditions", api::Json())))
        exitCode = 1;
      if (o->kind.size() > 5 && o->kind.substr(o->kind.size() - 5) == "Route")
        for (const auto& p : st->second.value("parents", api::Json::array()))
          if (p.value("controllerName", "") == topts.controllerName &&
              !acceptedTrue(p.value("conditions", api::Json())))
            exitCode = 1;
    } else if (o->body.contains("status")) {
      item["status"] = o->body["status"];
    }
    items.push_back(std::move(item));
  }
  api::Json doc = {{"items", items}};
  if (options.output == "json") {
    std::cout << doc.dump(2) << "\n";
  } else {
    YAML::Emitter out;
    emitYaml(out, doc);
    std::cout << out.c_str() << "\n";
  }
  return exitCode;
}

}  // namespace archway::cli
