#!/usr/bin/env bash
# The Python binding's own tests (bindings/python/tests, unittest) against this build's
# libkith.so.2, and through them examples/contacts.py.
set -euo pipefail
build=${KITH_BUILD_DIR:?set by ctest}
src=${KITH_SOURCE_DIR:?set by ctest}
case "${KITH_SANITIZE:-OFF}" in ON|1|TRUE|on|true) sanitized=1 ;; *) sanitized=0 ;; esac
if [ "$sanitized" = 1 ]; then
    echo "skipped: a plain python3 cannot load a sanitizer build's library"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
if ! command -v python3 >/dev/null; then
    echo "FAILED: python3 is not installed (scripts/deps.sh installs it)"
    exit 1
fi
cd "$src/bindings/python"
KITH_LIBRARY="$build/lib/libkith.so.2" PYTHONDONTWRITEBYTECODE=1 \
    python3 -m unittest discover -s tests -t . -v
