#!/usr/bin/env bash
# Every C file tracked is formatted with the repository's .clang-format (clang-format 14).
#   scripts/check-format.sh        check;   scripts/check-format.sh --fix   format in place
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
    clang-format -i $files
    exit 0
fi
bad=0
for f in $files; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=1; }
done
[ "$bad" -eq 0 ] && echo "format: all $(echo "$files" | wc -l) files formatted"
exit "$bad"
