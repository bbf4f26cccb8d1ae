#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages (DESIGN §3). Idempotent.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build ccache clang lld pkg-config
  libasio-dev node-llhttp libnghttp2-dev libssl-dev libre2-dev libyaml-cpp-dev libjemalloc-dev
  nlohmann-json3-dev libcurl4-openssl-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  python3 python3-h2 python3-grpcio python3-yaml
  curl nghttp2-client wrk openssl nginx libnginx-mod-stream haproxy iproute2 procps util-linux
  clang-format clang-tidy valgrind
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
