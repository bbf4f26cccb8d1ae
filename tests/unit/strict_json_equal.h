// Test helper: JSON equality that also compares value types.
#pragma once

#include "api/object.h"

namespace archway::api::testing {

// Equal values of equal JSON types (5 and 5u, or 1 and 1.0, are not the same here).
inline bool strictEqual(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      if (jt == b.end() || !strictEqual(*it, *jt)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!strictEqual(a[i], b[i])) return false;
    return true;
  }
  return a == b;
}

}  // namespace archway::api::testing
