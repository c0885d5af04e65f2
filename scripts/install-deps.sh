#!/usr/bin/env bash
# Installs what xdc needs to build and test, from Debian packages, skipping what is present.
# (The real Kafka broker's jars come from Maven Central: scripts/kafka.sh install.)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  clang                   # scripts/check-thread-safety.sh: -Wthread-safety (g++ ignores the annotations)
  libboost-dev            # Boost.Asio and Boost.Beast (header-only)
  libprotobuf-dev protobuf-compiler
  librdkafka-dev          # Kafka client and its mock cluster
  librocksdb-dev
  libabsl-dev
  prometheus-cpp-dev
  libgtest-dev libgmock-dev
  curl
  spin                    # model checker for models/*.pml
  openjdk-17-jre-headless maven   # the real Kafka broker (scripts/kafka.sh)
  prometheus              # promtool: checks and unit-tests runbooks/alerts.yml
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
