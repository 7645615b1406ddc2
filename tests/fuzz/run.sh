#!/usr/bin/env bash
# Builds the gateway fuzzer (clang-14: libFuzzer + ASan + UBSan) and runs it.
#
#   bash tests/fuzz/run.sh [SECONDS] [libFuzzer flags...]     (default 60 s)
#
# - Builds in build-fuzz/ (FUZZ_BUILD_DIR to change), Debug at -O1.
# - Runs on a fresh scratch copy of tests/fuzz/corpus/ (FUZZ_WORK_DIR to
#   keep one between runs): new inputs never land in the repository.
# - A finding (crash, leak, sanitizer report, invariant violation, timeout)
#   is saved as build-fuzz/artifacts/crash-* (or leak-*, timeout-*), and the
#   script exits non-zero. Keep it as tests/fuzz/corpus/regression-<name>
#   once the bug is fixed; reproduce with
#     build-fuzz/tests/fuzz/gateway_fuzzer build-fuzz/artifacts/crash-...
# - FUZZ_JOBS=N runs N fuzzing processes in parallel (default 1).
# - Reading a finding: python3 tests/fuzz/make_corpus.py --describe FILE
#   lists its actions; FLUX_FUZZ_TRACE=1 build-fuzz/tests/fuzz/gateway_fuzzer
#   FILE replays it printing every write and checked frame.
#
# Longer campaigns: bash tests/fuzz/run.sh 3600, or FUZZ_WORK_DIR=~/flux-corpus
# bash tests/fuzz/run.sh 600 several times to grow one corpus.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SECONDS_TO_RUN=${1:-60}
[[ $# -gt 0 ]] && shift
if ! [[ $SECONDS_TO_RUN =~ ^[0-9]+$ ]]; then
  echo "fuzz: SECONDS must be a whole number, got '$SECONDS_TO_RUN'" >&2
  exit 2
fi
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-1}

log() { printf 'fuzz: %s\n' "$*"; }

for tool in clang-14 clang++-14; do
  command -v "$tool" >/dev/null || { echo "fuzz: $tool not found (scripts/setup.sh --test installs it)" >&2; exit 2; }
done
if ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz: libFuzzer runtime missing: apt-get install libclang-rt-14-dev" >&2
  exit 2
fi

log "building in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  "-DFLUX_SANITIZE=address,undefined" -DFLUX_FUZZ=ON >/dev/null
cmake --build "$BUILD" --target gateway_fuzzer
BUILD=$(cd "$BUILD" && pwd)  # absolute: the fuzzer runs from inside it

FUZZER=$BUILD/tests/fuzz/gateway_fuzzer
ARTIFACTS=$BUILD/artifacts
mkdir -p "$ARTIFACTS"
if [[ -n ${FUZZ_WORK_DIR:-} ]]; then
  WORK=$FUZZ_WORK_DIR
  mkdir -p "$WORK"
else
  WORK=$BUILD/work
  rm -rf "$WORK"
  mkdir -p "$WORK"
fi
WORK=$(cd "$WORK" && pwd)
cp -n "$ROOT"/tests/fuzz/corpus/* "$WORK"/ 2>/dev/null || true
log "corpus: $(find "$WORK" -type f | wc -l) inputs in $WORK; running ${SECONDS_TO_RUN}s"

if [[ -z ${ASAN_SYMBOLIZER_PATH:-} && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

ARGS=(
  -max_total_time="$SECONDS_TO_RUN"
  -artifact_prefix="$ARTIFACTS/"
  -dict="$ROOT/tests/fuzz/gateway.dict"
  -max_len=4096
  -timeout=20
  -rss_limit_mb=2048
  -print_final_stats=1
)
if ((JOBS > 1)); then
  ARGS+=(-jobs="$JOBS" -workers="$JOBS")
fi

rc=0
# With FUZZ_JOBS > 1, libFuzzer writes fuzz-<n>.log files to the current directory.
cd "$BUILD"
"$FUZZER" "${ARGS[@]}" "$@" "$WORK" || rc=$?
if ((rc != 0)); then
  log "FINDING (exit $rc); artifacts:"
  ls -l "$ARTIFACTS" >&2 || true
  exit "$rc"
fi
log "no findings in ${SECONDS_TO_RUN}s; corpus now $(find "$WORK" -type f | wc -l) inputs"
