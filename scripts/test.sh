#!/usr/bin/env bash
# The "test everything" command (also what CI runs, through .ci/run).
#
#   bash scripts/test.sh [--no-asan] [--no-tsan]
#
# Stages, each timed:
#   setup          scripts/setup.sh --test
#   format         scripts/format.sh --check (clang-format-14, .clang-format)
#   release-build  build/       Release, -DFLUX_WERROR=ON
#   release-ctest  ctest in build/
#   asan-build     build-asan/  Debug, clang-14, ASan + UBSan
#   asan-ctest     ctest in build-asan/
#   fuzz           build-fuzz/  libFuzzer 60 s, clang-14, ASan + UBSan
#   tsan-build     build-tsan/  Debug, clang-14, ThreadSanitizer
#   tsan-ctest     the tests labelled "threaded" (metrics thread vs reactor)
# A failed build skips its own ctest but not the other build. A test that
# fails is run once more on its own: one that passes then is named FLAKY in
# the summary (the stage passes; a flaky test is a defect to mend, but not
# one that should hide every other result), one that fails again fails the
# stage, named too. Exits non-zero if any stage failed. --no-asan skips the
# sanitizer stages (local use only).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CTEST_ARGS=(--output-on-failure -j2 --timeout 300 --no-tests=error)
ASAN_CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Debug
  "-DFLUX_SANITIZE=address,undefined"
  -DCMAKE_C_COMPILER=clang-14
  -DCMAKE_CXX_COMPILER=clang++-14
)
TSAN_CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Debug
  -DFLUX_SANITIZE=thread
  -DCMAKE_C_COMPILER=clang-14
  -DCMAKE_CXX_COMPILER=clang++-14
)
TSAN_ENV=(TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1)
SANITIZER_ENV=(
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
)
# Symbolized sanitizer reports need llvm-symbolizer; clang-14's own copy
# matches its runtime.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  SANITIZER_ENV+=(ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer)
fi

log() { printf 'test: %s\n' "$*"; }

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }

WITH_ASAN=1
WITH_TSAN=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) WITH_ASAN=0 ;;
    --no-tsan) WITH_TSAN=0 ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'test: error: unknown option %s (try --help)\n' "$arg" >&2; exit 2 ;;
  esac
done

# Integration tests open thousands of sockets: use the whole hard limit.
raise_fd_limit() {
  local hard
  hard=$(ulimit -Hn)
  if [[ $hard == unlimited ]]; then
    hard=$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)
  fi
  if ulimit -n "$hard" 2>/dev/null; then
    log "open-files limit: $(ulimit -n)"
  else
    log "warning: could not raise the open-files limit (now $(ulimit -n))"
  fi
}

now_us() { echo "${EPOCHREALTIME/./}"; }

# Formats a microsecond count as "12.3s" or "4m05.2s".
fmt_duration() {
  local tenths=$(($1 / 100000))
  local secs=$((tenths / 10)) frac=$((tenths % 10))
  if ((secs >= 60)); then
    printf '%dm%02d.%ds' $((secs / 60)) $((secs % 60)) "$frac"
  else
    printf '%d.%ds' "$secs" "$frac"
  fi
}

STAGE_NAMES=()
STAGE_RESULTS=()
STAGE_TIMES=()
NOTES=()  # lines for the summary: tests that failed, or passed only on retry

record() {
  STAGE_NAMES+=("$1")
  STAGE_RESULTS+=("$2")
  STAGE_TIMES+=("$3")
}

# run_stage NAME CMD... : runs CMD, prints and records its result and time.
# Returns CMD's status without tripping set -e in the caller's `if`.
run_stage() {
  local name=$1 start rc elapsed
  shift
  printf '\n==== %s: %s\n' "$name" "$*"
  start=$(now_us)
  if "$@"; then rc=0; else rc=$?; fi
  elapsed=$(fmt_duration $(($(now_us) - start)))
  if ((rc == 0)); then
    record "$name" ok "$elapsed"
    printf '==== %s: ok (%s)\n' "$name" "$elapsed"
  else
    record "$name" "FAILED(exit $rc)" "$elapsed"
    printf '==== %s: FAILED with exit %d (%s)\n' "$name" "$rc" "$elapsed"
  fi
  return "$rc"
}

skip_stage() {
  record "$1" "skipped ($2)" "-"
  printf '\n==== %s: skipped (%s)\n' "$1" "$2"
}

# ctest_with_retry DIR ARGS...: ctest; the tests that failed run once more.
# Adds their names to NOTES; fails if any failed twice.
ctest_with_retry() {
  local dir=$1 failed_log first second
  shift
  failed_log="$dir/Testing/Temporary/LastTestsFailed.log"
  rm -f "$failed_log"
  ctest --test-dir "$dir" "$@" && return 0
  [[ -s $failed_log ]] || return 1  # no test failed: ctest itself did
  first=$(cut -d: -f2- "$failed_log" | paste -sd' ')
  printf '\n==== %s: retrying the failed tests once: %s\n' "$(basename "$dir")" "$first"
  if ctest --test-dir "$dir" --output-on-failure --timeout 300 --rerun-failed; then
    NOTES+=("FLAKY in $(basename "$dir") (failed, then passed alone): $first")
    return 0
  fi
  second=$(cut -d: -f2- "$failed_log" | paste -sd' ')
  NOTES+=("FAILED in $(basename "$dir") (twice): $second")
  return 1
}

# build_and_test PREFIX DIR ENV... -- CMAKE_ARGS...
# CTEST_LABEL (optional, in the environment of the call) limits ctest to a label.
build_and_test() {
  local prefix=$1 dir=$2 label_args=()
  [[ -n ${CTEST_LABEL:-} ]] && label_args=(-L "$CTEST_LABEL")
  shift 2
  local env=()
  while [[ $1 != -- ]]; do env+=("$1"); shift; done
  shift
  if run_stage "$prefix-build" env "${env[@]}" bash scripts/build.sh "$dir" "$@"; then
    # The sanitizer options reach ctest (a shell function) through the environment.
    ((${#env[@]} == 0)) || export "${env[@]}"
    run_stage "$prefix-ctest" ctest_with_retry "$dir" "${CTEST_ARGS[@]}" "${label_args[@]}" || true
    ((${#env[@]} == 0)) || unset "${env[@]%%=*}"
  else
    skip_stage "$prefix-ctest" "$prefix-build failed"
  fi
}

summary() {
  local total=$1 i failed=()
  printf '\n==== summary\n'
  for i in "${!STAGE_NAMES[@]}"; do
    printf '  %-14s %-32s %s\n' "${STAGE_NAMES[$i]}" "${STAGE_RESULTS[$i]}" "${STAGE_TIMES[$i]}"
    [[ ${STAGE_RESULTS[$i]} == ok || ${STAGE_RESULTS[$i]} == skipped* ]] || failed+=("${STAGE_NAMES[$i]}")
  done
  ((${#NOTES[@]} == 0)) || printf '  %s\n' "${NOTES[@]}"
  # Avoid the "N passed, N failed" shape: ctest's own lines carry the counts.
  if [[ ${#failed[@]} -eq 0 ]]; then
    printf 'test.sh: OK, every stage succeeded in %s\n' "$total"
    return 0
  fi
  printf 'test.sh: FAILED stages: %s (total %s)\n' "${failed[*]}" "$total"
  return 1
}

main() {
  local t0
  t0=$(now_us)
  raise_fd_limit
  if ! run_stage setup bash scripts/setup.sh --test; then
    summary "$(fmt_duration $(($(now_us) - t0)))" || true
    exit 1
  fi
  run_stage format bash scripts/format.sh --check || true
  build_and_test release "$ROOT/build" -- -DFLUX_WERROR=ON
  if ((WITH_ASAN)); then
    build_and_test asan "$ROOT/build-asan" "${SANITIZER_ENV[@]}" -- "${ASAN_CMAKE_ARGS[@]}"
  else
    skip_stage asan-build "--no-asan"
    skip_stage asan-ctest "--no-asan"
  fi
  if ((WITH_ASAN)); then
    run_stage fuzz bash tests/fuzz/run.sh 60 || true
  else
    skip_stage fuzz "--no-asan"
  fi
  if ((WITH_TSAN)); then
    CTEST_LABEL=threaded build_and_test tsan "$ROOT/build-tsan" "${TSAN_ENV[@]}" -- "${TSAN_CMAKE_ARGS[@]}"
  else
    skip_stage tsan-build "--no-tsan"
    skip_stage tsan-ctest "--no-tsan"
  fi
  summary "$(fmt_duration $(($(now_us) - t0)))"
}

main
