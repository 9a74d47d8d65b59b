#!/usr/bin/env bash
# Installs what Conveyor needs to build and test, from Debian's packages only.
# Idempotent and quick when everything is present: it asks dpkg first and only calls apt
# for what is missing. Used by `make run`, `make test` and `.ci/run`.
# `--peers` also installs the peer servers and load tools that bench/peers/run.py measures
# Conveyor against (not needed to build or test).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcli11-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libabsl-dev librocksdb-dev libssl-dev
  clang libclang-rt-14-dev clang-format libtomlplusplus-dev
  curl beanstalkd
)
if [ "${1:-}" = "--peers" ]; then
  packages+=(redis-server redis-tools nginx-light nats-server wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# A new machine has empty apt lists; refresh them once before the first install.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
