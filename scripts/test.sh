#!/usr/bin/env bash
# Installs dependencies, builds under ASan+UBSan and runs every test suite.
# Usage: scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh asan-ubsan
export ARCHWAY_BIN="$PWD/build-asan-ubsan/archway"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
run() { echo "==> $*"; if ! "$@"; then echo "FAILED: $*"; status=1; fi; }
run ctest --test-dir build-asan-ubsan --output-on-failure -j"$(nproc)" --timeout 300
for t in tests/integration/test_*.py tests/golden/run_golden.py tests/conformance/run_status.py; do
  [ -f "$t" ] && run /usr/bin/python3 "$t"
done
# Conformance traffic replay against `archway run`. GATEWAY-HTTP always; every GATEWAY-*
# profile (gRPC, TLS, TCP, UDP too: several more minutes) with ARCHWAY_CONFORMANCE_ALL=1.
if [ "${ARCHWAY_CONFORMANCE_ALL:-0}" = 1 ]; then
  run /usr/bin/python3 tests/conformance/run_traffic.py
else
  run /usr/bin/python3 tests/conformance/run_traffic.py --profile GATEWAY-HTTP
fi
exit $status
