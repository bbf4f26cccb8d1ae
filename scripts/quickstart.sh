#!/usr/bin/env bash
# Installs dependencies, builds the release binary and serves examples/ (file mode):
# two demo backends on 127.0.0.1:9001/9002 and a Gateway on port 8080. Then try:
#   curl -H 'Host: demo.example.com' http://127.0.0.1:8080/
#   curl -H 'Host: demo.example.com' http://127.0.0.1:8080/v2/
#   curl -i -H 'Host: www.demo.example.com' http://127.0.0.1:8080/
#   curl http://127.0.0.1:9901/status
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
/usr/bin/python3 -m http.server 9001 --bind 127.0.0.1 --directory examples/backends/v1 >/dev/null 2>&1 &
v1=$!
/usr/bin/python3 -m http.server 9002 --bind 127.0.0.1 --directory examples/backends/v2 >/dev/null 2>&1 &
v2=$!
trap 'kill $v1 $v2 2>/dev/null' EXIT
echo "Gateway on http://127.0.0.1:8080 (admin on http://127.0.0.1:9901). Try:"
echo "  curl -H 'Host: demo.example.com' http://127.0.0.1:8080/"
build/archway run -f examples/quickstart.yaml "$@"
