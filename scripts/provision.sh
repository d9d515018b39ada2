#!/usr/bin/env bash
# Installs the programs the test suite runs, when they are missing: one script for `make test`
# (a developer's machine) and `.ci/run` (a clean CI image), so the two cannot drift apart.
#
#   scripts/provision.sh             install what `make test` needs
#   scripts/provision.sh --ci        also docker-compose (CI validates docker-compose.yml)
#   scripts/provision.sh --dry-run   only say what is missing and what would be done
#
# It installs with apt-get when it can: as root, or with sudo that asks no password. Otherwise
# it prints what to install and exits 1, so `make test` stops before any test runs instead of
# failing tests one by one for want of a program.
set -euo pipefail

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }

ci=false dry_run=false
for arg in "$@"; do
  case "$arg" in
    --ci) ci=true ;;
    --dry-run | -n) dry_run=true ;;
    -h | --help) usage; exit 0 ;;
    *) echo "provision: unknown option $arg" >&2; usage >&2; exit 2 ;;
  esac
done

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Each missing program: its Debian package, and why the suite needs it.
packages=() reasons=()
need() { packages+=("$1"); reasons+=("$(printf '%-24s %s' "$1" "$2")"); }

java_major() {
  # `java -version` prints e.g. openjdk version "17.0.13" (or "1.8.0_402" for Java 8).
  java -version 2>&1 | sed -n 's/.* version "\(1\.\)\{0,1\}\([0-9]*\).*/\2/p' | sed -n 1p
}

# Kafka runs on any Java from 17 on; Debian 13 and later no longer have 17 itself.
java_package=openjdk-17-jre-headless
if command -v apt-cache >/dev/null && ! apt-cache show "$java_package" >/dev/null 2>&1 &&
  apt-cache show openjdk-21-jre-headless >/dev/null 2>&1; then
  java_package=openjdk-21-jre-headless
fi
if ! command -v java >/dev/null || [ "$(java_major)" -lt 17 ] 2>/dev/null; then
  need "$java_package" "Java 17+ runs Apache Kafka for the integration tests"
fi
command -v mvn >/dev/null || need maven "fetches Apache Kafka's jars once into ~/.cache/churnwatch"
command -v redis-server >/dev/null || need redis-server "the read-model tests run a real Redis"
command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
  need chromium "the page and report tests render in headless Chromium"
command -v openssl >/dev/null || need openssl "makes the certificate of the Redis TLS test"
if [ ! -x "$VENV/bin/python" ] && command -v "$PYTHON" >/dev/null &&
  ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  need python3-venv "make creates $VENV with $PYTHON -m venv"
fi
if $ci; then
  command -v docker-compose >/dev/null || need docker-compose "CI validates docker-compose.yml"
fi

if ((${#packages[@]} == 0)); then
  $dry_run && echo "provision: everything the tests need is installed; nothing to do"
  exit 0
fi

sudo=""
can_install=false
if command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    can_install=true
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    can_install=true sudo="sudo"
  fi
fi

explain() {
  echo "The test suite needs programs that are not installed:"
  printf '  %s\n' "${reasons[@]}"
}

instructions() {
  if command -v apt-get >/dev/null; then
    echo "Install them as root, then run make test again:"
    echo "  apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
  else
    echo "Install them with your system's package manager (any Java from 17 on will do),"
    echo "then run make test again."
  fi
}

install_command="${sudo:+$sudo }apt-get update -q && ${sudo:+$sudo }apt-get install -y -q --no-install-recommends ${packages[*]}"

if $dry_run; then
  explain
  if $can_install; then
    echo "provision would install them from the distribution with:"
    echo "  $install_command"
  else
    echo "provision cannot install them here (it needs apt-get, and root or sudo without a"
    echo "password): make test would stop before running any test, saying:"
    instructions
  fi
  exit 0
fi

if ! $can_install; then
  { explain; instructions; } >&2
  exit 1
fi

echo "== installing from the distribution: ${packages[*]}"
${sudo:+$sudo} apt-get update -q
${sudo:+$sudo} env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${packages[@]}"

# A package can install without providing the command (a renamed or transitional package).
still=()
for tool in java mvn redis-server openssl; do
  command -v "$tool" >/dev/null || still+=("$tool")
done
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || still+=(chromium)
if $ci; then command -v docker-compose >/dev/null || still+=(docker-compose); fi
if ((${#still[@]})); then
  echo "provision: installed ${packages[*]}, but still missing: ${still[*]}" >&2
  exit 1
fi
