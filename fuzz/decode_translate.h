// The pipeline exercised by fuzz/decode_translate_fuzz.cc, shared with the unit test that
// replays the seed corpus under ASan/UBSan in every test run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/loader.h"
#include "api/object.h"
#include "api/validation.h"
#include "translate/translator.h"

namespace archway::fuzz {

inline void decodeTranslate(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  api::LoadResult loaded = api::decodeText(text, "fuzz.yaml");
  api::validateAll(loaded);
  for (const auto& d : loaded.diagnostics) (void)d.format();
  api::Store store;
  for (auto& o : loaded.objects) store.put(std::move(o));
  translate::TranslateResult result = translate::translate(store);
  for (const auto& d : result.diagnostics) (void)d.format();
  // Output as `check` prints it (must not throw on any decoded text).
  for (const auto& [key, status] : result.statuses) {
    (void)status.dump(2, ' ', false, api::Json::error_handler_t::strict);
  }
  for (const auto& [key, object] : store.all()) {
    (void)object.body.dump(2, ' ', false, api::Json::error_handler_t::strict);
  }
}

}  // namespace archway::fuzz
