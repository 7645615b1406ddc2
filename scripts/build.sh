#!/usr/bin/env bash
# Configures and builds Flux with CMake + Ninja (Release unless told otherwise).
#
#   bash scripts/build.sh [BUILD_DIR] [CMAKE_ARGS...]
#
# BUILD_DIR defaults to build/ at the repository root; a relative BUILD_DIR is
# taken from the current directory. It is recognised as the first argument
# when that argument does not start with '-'. Every other argument goes to the
# CMake configure step and may override the defaults, e.g.
#   bash scripts/build.sh build-debug -DCMAKE_BUILD_TYPE=Debug
# FLUX_JOBS sets the number of parallel compile jobs (default: nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'build: %s\n' "$*"; }
die() { printf 'build: error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac

BUILD_DIR="$ROOT/build"
if [[ $# -gt 0 && $1 != -* ]]; then
  BUILD_DIR=$1
  shift
fi
JOBS=${FLUX_JOBS:-$(nproc)}

# A directory configured earlier with another generator cannot switch to
# Ninja in place; say so instead of letting CMake fail cryptically.
CACHE="$BUILD_DIR/CMakeCache.txt"
if [[ -f $CACHE ]] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$CACHE"; then
  die "$BUILD_DIR was configured with another generator; remove it and rerun"
fi

log "configuring $BUILD_DIR (Release by default) ${*:+with: $*}"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"

log "building $BUILD_DIR with $JOBS jobs"
cmake --build "$BUILD_DIR" --parallel "$JOBS"
log "done: $BUILD_DIR"
