#!/usr/bin/env bash
# Formats the tracked C and C++ sources with clang-format-14 and the
# repository's .clang-format, or checks that they are formatted.
#
#   bash scripts/format.sh           rewrite every file that is not formatted
#   bash scripts/format.sh --check   list the files that are not, exit 1 if any
#
# CI runs --check (scripts/test.sh, stage "format"); clang-format-14 comes
# from scripts/setup.sh --test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
command -v "$CLANG_FORMAT" > /dev/null || {
  printf 'format: %s not found (bash scripts/setup.sh --test installs it)\n' "$CLANG_FORMAT" >&2
  exit 2
}

mapfile -t FILES < <(git ls-files '*.c' '*.cc' '*.h')

case ${1:-} in
  --check)
    unformatted=()
    for f in "${FILES[@]}"; do
      "$CLANG_FORMAT" --dry-run -Werror "$f" > /dev/null 2>&1 || unformatted+=("$f")
    done
    if ((${#unformatted[@]})); then
      printf 'format: not formatted (bash scripts/format.sh fixes them):\n' >&2
      printf '  %s\n' "${unformatted[@]}" >&2
      exit 1
    fi
    printf 'format: %d files, all formatted\n' "${#FILES[@]}"
    ;;
  '')
    "$CLANG_FORMAT" -i "${FILES[@]}"
    printf 'format: %d files formatted\n' "${#FILES[@]}"
    ;;
  -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0" ;;
  *) printf 'format: unknown option %s (try --help)\n' "$1" >&2; exit 2 ;;
esac
