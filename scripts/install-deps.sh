#!/usr/bin/env bash
# Installs what Conveyor needs to build and test, from Debian's packages only.
# Idempotent and quick when everything is present: it asks dpkg first and only calls apt
# for what is missing. Used by `make run`, `make test` and `.ci/run`.
# It also installs Node.js (Debian's, when no `node` is on PATH) and the beanstalkd client
# libraries pinned in tests/integration/beanstalk_clients/package.json (npm install, when
# its node_modules is missing): the tests drive Conveyor's beanstalkd listener with them.
# `--peers` also installs the peer servers and load tools that bench/peers/run.py measures
# Conveyor against (not needed to build or test): Debian's servers, Node.js when no `node`
# is on PATH, and the npm clients pinned in bench/peers/node/package.json (npm install,
# when bench/peers/node/node_modules is missing).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libcli11-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libabsl-dev librocksdb-dev libssl-dev
  clang libclang-rt-14-dev clang-format libtomlplusplus-dev
  curl beanstalkd
)
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs npm); fi
peers=false
if [ "${1:-}" = "--peers" ]; then
  peers=true
  packages+=(redis-server redis-tools nginx-light nats-server wrk rabbitmq-server)
fi

# The npm clients of the tests (beanstalkd) and of bench/peers/node/peer_load.js
# (RabbitMQ, NATS, BullMQ, with --peers), once. Any Node.js >= 18 will do.
npm_clients() {
  if [ ! -d "$root/tests/integration/beanstalk_clients/node_modules" ]; then
    echo "install-deps: npm install in tests/integration/beanstalk_clients"
    (cd "$root/tests/integration/beanstalk_clients" && npm install --no-audit --no-fund \
      --loglevel=error --omit-lockfile-registry-resolved)
  fi
  if $peers && [ ! -d "$root/bench/peers/node/node_modules" ]; then
    echo "install-deps: npm install in bench/peers/node"
    (cd "$root/bench/peers/node" && npm install --no-audit --no-fund --loglevel=error \
      --omit-lockfile-registry-resolved)
  fi
}

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  npm_clients
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# A new machine has empty apt lists; refresh them once before the first install.
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
npm_clients
echo "install-deps: done"
