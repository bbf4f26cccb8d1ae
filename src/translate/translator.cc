// Placeholder until the translator lands: produces an empty snapshot and no status.
#include "translate/translator.h"

namespace archway::translate {

TranslateResult translate(const api::Store& store, const TranslateOptions& options) {
  TranslateResult result;
  result.snapshot = std::make_shared<snapshot::Snapshot>();
  return result;
}

}  // namespace archway::translate
