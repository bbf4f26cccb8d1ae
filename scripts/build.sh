#!/usr/bin/env bash
# Builds one preset: release (default), debug, asan-ubsan, tsan or fuzz.
# The release binary ends up at build/archway; other presets at build-<preset>/archway.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
