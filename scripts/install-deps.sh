#!/usr/bin/env bash
# Installs the Debian 12 packages Samokoder needs, and only those that are missing.
#   scripts/install-deps.sh build   compilers and libraries (make run)
#   scripts/install-deps.sh test    build + what the test suite runs (make test)
#   scripts/install-deps.sh bench   test + load generators and the reference peers (make bench)
# Idempotent: when everything is present it changes nothing and does not touch the network.
set -euo pipefail

group="${1:-build}"

build_packages=(
  g++ make cmake pkg-config binutils file
  libboost1.81-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev
  libpoco-dev libsqlite3-dev libpq-dev libargon2-dev zlib1g-dev
  # Runtime needs of the default preview runner (preview.sandbox): namespaces, and the bridge into an
  # app that has no network.
  bubblewrap socat
)
# chromium: the console's browser test drives Debian's Chromium headless.
test_packages=(libgtest-dev libgmock-dev curl postgresql clang libclang-rt-14-dev wrk python3
               json-schema-test-suite chromium)
bench_packages=(libbenchmark-dev nginx-light python3-fastapi python3-uvicorn python3-jwt)

case "$group" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  bench) wanted=("${build_packages[@]}" "${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

# The web console is built with Node.js and npm. A machine may have them from elsewhere (NodeSource's
# nodejs carries its own npm, which Debian's npm package would conflict with): only when either command
# is missing are Debian's installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "Installing missing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
