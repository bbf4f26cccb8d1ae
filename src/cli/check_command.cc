// `archway check`: load manifests, translate, print every object with its computed status.
#include <cstdio>
#include <iostream>

#include <yaml-cpp/yaml.h>

#include "api/loader.h"
#include "api/validation.h"
#include "cli/commands.h"
#include "translate/translator.h"

namespace archway::cli {

int runCheck(const CheckOptions& options) {
  api::LoadResult loaded = api::loadPaths(options.paths);
  api::validateAll(loaded);
  for (const auto& d : loaded.diagnostics) std::cerr << d.format() << "\n";
  if (loaded.inputError) return 2;
  api::Store store;
  for (auto& o : loaded.objects) store.put(std::move(o));
  translate::TranslateResult result = translate::translate(store);
  for (const auto& d : result.diagnostics) std::cerr << d.format() << "\n";
  api::Json items = api::Json::array();
  for (const auto& [key, object] : store.all()) {
    api::Json item = object.body;
    auto st = result.statuses.find(key);
    if (st != result.statuses.end()) item["status"] = st->second;
    items.push_back(std::move(item));
  }
  std::cout << api::Json{{"items", items}}.dump(2) << "\n";
  return 0;
}

}  // namespace archway::cli
