#!/usr/bin/env bash
# Refuse calls that STYLE.md bans (sprintf strcpy strcat strtok atoi gets rand) in the
# project's C sources. Comments and string literals are not code, so they are stripped first.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for f in $(git ls-files '*.c' '*.h'; git ls-files --others --exclude-standard '*.c' '*.h'); do
    hits=$(sed -e 's://.*$::' -e 's:"[^"]*"::g' "$f" |
        grep -nE '(^|[^a-zA-Z0-9_.>])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets|rand|srand)[[:space:]]*\(' || true)
    if [ -n "$hits" ]; then
        echo "$f: banned call:"
        echo "$hits"
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "banned calls: none"
exit "$status"
