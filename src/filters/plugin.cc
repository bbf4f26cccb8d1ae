#include "filters/plugin.h"

#include <nlohmann/json.hpp>

namespace archway::filters {

namespace {

const nlohmann::json& specOf(const nlohmann::json& body) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto it = body.find("spec");
  return it != body.end() && it->is_object() ? *it : kEmpty;
}

class StaticResponsePlugin : public FilterPlugin {
 public:
  explicit StaticResponsePlugin(LocalResponse r) : response_(std::move(r)) {}
  std::optional<LocalResponse> onRequest(http::RequestHead&) const override { return response_; }

 private:
  LocalResponse response_;
};

class HeaderStampPlugin : public FilterPlugin {
 public:
  explicit HeaderStampPlugin(std::vector<std::pair<std::string, std::string>> set)
      : set_(std::move(set)) {}
  std::optional<LocalResponse> onRequest(http::RequestHead& request) const override {
    for (const auto& [n, v] : set_) request.headers.set(n, v);
    return std::nullopt;
  }

 private:
  std::vector<std::pair<std::string, std::string>> set_;
};

nlohmann::json parseBody(const snapshot::ExtensionFilter& ref, std::string* error) {
  nlohmann::json body = nlohmann::json::parse(ref.configJson, nullptr, false);
  if (body.is_discarded()) {
    *error = "config is not valid JSON";
    return nlohmann::json();
  }
  return body;
}

std::unique_ptr<FilterPlugin> makeStaticResponse(const snapshot::ExtensionFilter& ref,
                                                 std::string* error) {
  nlohmann::json body = parseBody(ref, error);
  if (body.is_null()) return nullptr;
  const auto& spec = specOf(body);
  LocalResponse r;
  r.status = spec.value("statusCode", 200);
  if (r.status < 200 || r.status > 599) {
    *error = "spec.statusCode must be 200-599";
    return nullptr;
  }
  r.body = spec.value("body", std::string());
  if (auto h = spec.find("headers"); h != spec.end() && h->is_object()) {
    for (auto it = h->begin(); it != h->end(); ++it)
      if (it.value().is_string()) r.headers.add(http::toLower(it.key()), it.value().get<std::string>());
  }
  return std::make_unique<StaticResponsePlugin>(std::move(r));
}

std::unique_ptr<FilterPlugin> makeHeaderStamp(const snapshot::ExtensionFilter& ref,
                                              std::string* error) {
  nlohmann::json body = parseBody(ref, error);
  if (body.is_null()) return nullptr;
  const auto& spec = specOf(body);
  std::vector<std::pair<std::string, std::string>> set;
  if (auto s = spec.find("set"); s != spec.end() && s->is_object()) {
    for (auto it = s->begin(); it != s->end(); ++it)
      if (it.value().is_string()) set.emplace_back(http::toLower(it.key()), it.value().get<std::string>());
  }
  return std::make_unique<HeaderStampPlugin>(std::move(set));
}

}  // namespace

PluginRegistry& PluginRegistry::instance() {
  static PluginRegistry registry;
  return registry;
}

PluginRegistry::PluginRegistry() {
  factories_[{"archway.dev", "StaticResponse"}] = makeStaticResponse;
  factories_[{"archway.dev", "HeaderStamp"}] = makeHeaderStamp;
}

void PluginRegistry::registerKind(const std::string& group, const std::string& kind,
                                  PluginFactory factory) {
  std::lock_guard lock(mu_);
  factories_[{group, kind}] = std::move(factory);
}

std::unique_ptr<FilterPlugin> PluginRegistry::create(const snapshot::ExtensionFilter& ref,
                                                     std::string* error) const {
  if (!ref.resolved) {
    *error = "the referenced object was not found";
    return nullptr;
  }
  PluginFactory factory;
  {
    std::lock_guard lock(mu_);
    auto it = factories_.find({ref.group, ref.kind});
    if (it == factories_.end()) {
      *error = "no filter plugin is registered for " + ref.group + "/" + ref.kind;
      return nullptr;
    }
    factory = it->second;
  }
  return factory(ref, error);
}

}  // namespace archway::filters
