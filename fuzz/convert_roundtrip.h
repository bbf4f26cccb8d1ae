// The pipeline exercised by fuzz/convert_fuzz.cc (`archway convert` on untrusted manifests),
// shared with the unit test that replays the seed corpus under ASan/UBSan in every test run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

#include "api/loader.h"
#include "api/object.h"
#include "convert/convert.h"

namespace archway::fuzz {

namespace detail {

// Decodes what convert printed with the project's own loader; "" when it reads back as the
// same resources.
inline std::string readBack(const std::string& text, const char* format,
                            const std::vector<api::Json>& resources) {
  api::LoadResult back = api::decodeText(text, std::string("out.") + format);
  if (back.inputError) {
    std::string why;
    for (const auto& d : back.diagnostics) why += "\n  " + d.format();
    return std::string(format) + " output does not decode:" + why;
  }
  if (back.objects.size() != resources.size())
    return std::string(format) + " output decodes to " + std::to_string(back.objects.size()) +
           " objects, expected " + std::to_string(resources.size());
  for (size_t i = 0; i < resources.size(); ++i) {
    if (back.objects[i].body != resources[i])
      return std::string(format) + " output object " + std::to_string(i) +
             " reads back differently: " +
             back.objects[i].body.dump(-1, ' ', false, api::Json::error_handler_t::replace) +
             " vs " + resources[i].dump(-1, ' ', false, api::Json::error_handler_t::replace);
  }
  return "";
}

}  // namespace detail

// Returns "" or why the output of convert cannot be read back (the fuzzer aborts on that).
// Crashes, hangs and sanitizer reports are caught by the harness itself.
inline std::string convertRoundTrip(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  api::LoadResult loaded = api::decodeText(text, "fuzz.yaml");
  for (const auto& d : loaded.diagnostics) (void)d.format();
  if (loaded.inputError) return "";  // the CLI exits 2: nothing is converted
  convert::ConvertResult result;
  try {
    result = convert::convert(loaded.objects, {});
  } catch (const std::exception& e) {
    // The CLI reports wrongly typed fields this way ("malformed input") and exits 2.
    (void)e.what();
    return "";
  }
  (void)convert::renderReport(result.report);
  std::string yaml = convert::toYaml(result.resources);
  std::string json = convert::toJson(result.resources);
  if (result.resources.empty()) return "";
  if (std::string why = detail::readBack(yaml, "yaml", result.resources); !why.empty()) return why;
  return detail::readBack(json, "json", result.resources);
}

}  // namespace archway::fuzz
