#!/usr/bin/env bash
# Archway vs nginx vs haproxy as reverse proxies, in one run on one machine.
# Usage: bench/run.sh [--quick] [--l4] [--grpc] [more options: bench/run.sh --help]
# Needs: scripts/setup.sh (wrk, h2load, nginx, haproxy, gcc) and a release build
# (scripts/build.sh release -> build/archway; rows say "not available" without it).
# Every process this script starts is stopped on exit, including on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d -t archway-bench.XXXXXX)"
cleanup() {
  local rc=$?
  if [ -f "$work/pids" ]; then
    while read -r pid; do
      # Each child runs in its own session: stop its whole process group (nginx workers).
      kill -TERM -- "-$pid" 2>/dev/null || true
    done <"$work/pids"
    sleep 0.3
    while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$work/pids"
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    echo "bench: logs and configs kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/bin"
for tool in backend loadgen relay; do
  cc -O2 -Wall -Wextra -Werror -o "$work/bin/$tool" "bench/tools/$tool.c"
done
if [ -f bench/tools/grpc_backend.c ] && pkg-config --exists libnghttp2; then
  cc -O2 -Wall -Wextra -Werror -o "$work/bin/grpc_backend" bench/tools/grpc_backend.c \
    $(pkg-config --cflags --libs libnghttp2)
fi
ulimit -n 20000 2>/dev/null || true
/usr/bin/python3 bench/bench.py --workdir "$work" --tools "$work/bin" "$@"
