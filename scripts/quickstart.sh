#!/usr/bin/env bash
# Installs dependencies, builds the release binary and serves examples/ (file mode).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/archway run -f examples/ "$@"
