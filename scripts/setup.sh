#!/usr/bin/env bash
# Installs the Debian 12 packages Flux needs, and only those that are missing.
#
#   bash scripts/setup.sh            build + run dependencies
#   bash scripts/setup.sh --test     the same plus the test tools
#   bash scripts/setup.sh --dry-run  only say what would be installed
#
# Idempotent: when everything is present it touches nothing (no apt-get update).
# Runs as root; otherwise through sudo when sudo exists.
set -euo pipefail

# --- Package groups ----------------------------------------------------------
# One group per purpose. To add a group: define an array here, give it an
# option in parse_args, and append it in main. Keep one package per line so
# diffs stay readable.

# Build and run: compiler, CMake + Ninja, libevent for the reactor,
# prometheus-cpp / cpp-httplib / nlohmann-json for the metrics thread,
# libsystemd for sd_notify (the systemd unit's readiness and watchdog),
# hiredis (and its libevent adapter) for --session-store redis://,
# GoogleTest + GoogleMock for the test binaries (they are built by default).
CORE_PACKAGES=(
  build-essential
  cmake
  ninja-build
  pkg-config
  libevent-dev
  prometheus-cpp-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  libsystemd-dev
  libhiredis-dev
  libgtest-dev
  libgmock-dev
)

# Run a cluster (scripts/cluster.sh): HAProxy balances the nodes, routes
# resumes by session id and sends them PROXY v2 headers; Redis is the
# session store of `--session-store redis://` (cluster.sh --session-store redis). Installed by default
# like the core group, since a cluster is one way of running Flux.
RUN_PACKAGES=(
  haproxy
  redis-server
)

# Test tools (--test): clang + its sanitizer runtimes for the ASan/UBSan
# build, clang-format-14 for the format check (scripts/format.sh --check),
# llvm-14 for llvm-symbolizer (readable sanitizer stack traces, since
# recommends are not installed), prometheus for promtool (metrics exposition
# checks), procps (ps/pgrep), curl (HTTP endpoints).
TEST_PACKAGES=(
  clang-14 clang-format-14
  libclang-rt-14-dev
  llvm-14
  prometheus
  procps
  curl
)

# Dashboard browser test: Debian's Chromium, driven headless.
TEST_PACKAGES+=(
  chromium
)

# Observability proof (tests/observability, tests/cluster): Python for the
# tests, PyYAML to read prometheus.yml and the rules, docker-compose for
# `docker-compose config` (works without an engine).
TEST_PACKAGES+=(
  python3 python3-pytest python3-yaml
  docker-compose
)

# Packaging (tests/packaging): lintian on the .deb CPack builds, systemd for
# systemd-analyze (verify and security of the unit file, offline).
TEST_PACKAGES+=(
  lintian
  systemd
)

# Node.js and npm install the dashboard's charting library (uPlot) from the
# npm registry, pinned by dashboard/package-lock.json. Checked by command
# rather than by package: a machine may already have a Node.js of its own.
NODE_PACKAGES=(
  nodejs
  npm
)

# Packages whose Debian postinst enables a daemon on a port Flux uses by
# default (prometheus listens on 9090 = the gateway's --port). Only the
# promtool binary is wanted, so the service is kept stopped and disabled
# when this script is the one installing it.
# haproxy's package starts a haproxy.service; cluster.sh runs its own.
SERVICE_PACKAGES=(prometheus haproxy)

# --- Helpers -----------------------------------------------------------------
log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,9s/^# \{0,1\}//p' "$0"
}

# True when dpkg reports PKG as fully installed (not just "config-files").
is_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null || true)
  [[ $'\n'"$status"$'\n' == *$'\n'installed$'\n'* ]]
}

# Prints the packages among "$@" that are not installed, one per line.
missing_packages() {
  local pkg
  for pkg in "$@"; do
    is_installed "$pkg" || printf '%s\n' "$pkg"
  done
}

# Sets SUDO to the prefix needed for privileged commands ("" or "sudo").
pick_privilege() {
  SUDO=()
  if [[ $(id -u) -eq 0 ]]; then
    return
  fi
  if command -v sudo >/dev/null 2>&1; then
    log "not root: using sudo"
    SUDO=(sudo)
    return
  fi
  die "not root and sudo is not available; as root run: apt-get install $*"
}

# Stops and disables the daemon a just-installed package started, so it does
# not hold a port the gateway needs. Harmless where no init system runs.
quiet_services() {
  local pkg
  for pkg in "$@"; do
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      log "stopping and disabling the $pkg service (only its tools are used)"
      "${SUDO[@]}" systemctl disable --now "$pkg" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$pkg ]]; then
      "${SUDO[@]}" /etc/init.d/"$pkg" stop >/dev/null 2>&1 || true
    fi
  done
}

apt_install() {
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  log "running apt-get update"
  "${apt[@]}" update -q
  log "running apt-get install $*"
  "${apt[@]}" install -y -q --no-install-recommends \
    -o Dpkg::Use-Pty=0 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$@"
}

# --- Main --------------------------------------------------------------------
parse_args() {
  WANT_TEST=0
  DRY_RUN=0
  local arg
  for arg in "$@"; do
    case "$arg" in
      --test) WANT_TEST=1 ;;
      --dry-run) DRY_RUN=1 ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option '$arg' (try --help)" ;;
    esac
  done
}

# npm ci in dashboard/ when node_modules is missing or older than the lockfile.
install_dashboard_modules() {
  local root dir
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  dir="$root/dashboard"
  if [[ -d $dir/node_modules/uplot && $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
    log "dashboard npm modules up to date"
    return
  fi
  [[ $DRY_RUN -eq 1 ]] && { log "dry run: would run npm ci in dashboard/"; return; }
  log "running npm ci in dashboard/ (uPlot, pinned by package-lock.json)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

main() {
  parse_args "$@"
  command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script targets Debian 12"

  local wanted=("${CORE_PACKAGES[@]}" "${RUN_PACKAGES[@]}") group="core+run"
  if [[ $WANT_TEST -eq 1 ]]; then
    wanted+=("${TEST_PACKAGES[@]}")
    group="core+run+test"
  fi

  command -v npm >/dev/null 2>&1 || wanted+=("${NODE_PACKAGES[@]}")

  local missing=()
  mapfile -t missing < <(missing_packages "${wanted[@]}")
  if [[ ${#missing[@]} -eq 0 ]]; then
    log "all ${#wanted[@]} $group packages already installed"
    install_dashboard_modules
    return
  fi
  log "missing ${#missing[@]} of ${#wanted[@]} $group packages: ${missing[*]}"
  if [[ $DRY_RUN -eq 1 ]]; then
    log "dry run: not installing"
    return
  fi

  pick_privilege "${missing[@]}"
  apt_install "${missing[@]}"

  local quiet=() pkg
  for pkg in "${SERVICE_PACKAGES[@]}"; do
    [[ " ${missing[*]} " == *" $pkg "* ]] && quiet+=("$pkg")
  done
  [[ ${#quiet[@]} -gt 0 ]] && quiet_services "${quiet[@]}"

  local still=()
  mapfile -t still < <(missing_packages "${missing[@]}")
  [[ ${#still[@]} -eq 0 ]] || die "still missing after install: ${still[*]}"
  log "installed: ${missing[*]}"
  install_dashboard_modules
}

main "$@"
