#!/usr/bin/env bash
# The installed package works for an app: install into a temporary prefix, build
# examples/contacts and examples/tasks against it with find_package(kith), run them, and check
# pkg-config too.
set -euo pipefail
build=${KITH_BUILD_DIR:?set by ctest}
src=${KITH_SOURCE_DIR:?set by ctest}
case "${KITH_SANITIZE:-OFF}" in ON|1|TRUE|on|true) sanitized=1 ;; *) sanitized=0 ;; esac
if [ "$sanitized" = 1 ]; then
    echo "skipped: a sanitizer build's library cannot be loaded by a plain program"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok: $1"; }
bad() { fail=$((fail + 1)); echo "FAILED: $1"; }

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(find "$tmp/prefix" -name 'libkith.so.2' -printf '%h\n' | head -n 1)
[ -n "$libdir" ] && ok "libkith.so.2 installed" || bad "libkith.so.2 installed"
[ -f "$tmp/prefix/include/kith.h" ] && ok "kith.h installed" || bad "kith.h installed"
[ -x "$tmp/prefix/bin/kith" ] && ok "kith installed" || bad "kith installed"
[ -n "$(find "$tmp/prefix" -path '*man1/kith.1')" ] && ok "kith(1) installed" || bad "kith(1) installed"
unit="$tmp/prefix/lib/systemd/user/kith.service"
[ -f "$unit" ] && ok "kith.service installed" || bad "kith.service installed"
# the unit runs the kith of its own prefix, and is hardened
exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ "$exe" = "$tmp/prefix/bin/kith" ] && ok "kith.service runs the kith of its prefix" ||
    bad "kith.service ExecStart is $exe, not $tmp/prefix/bin/kith"
grep -q 'network-online.target' "$unit" && bad "a user unit cannot order after network-online.target" ||
    ok "kith.service names no system-only target"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$tmp/xdg-runtime"
    score=$(XDG_RUNTIME_DIR="$tmp/xdg-runtime" systemd-analyze security --offline=yes --user \
        "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for kith.service: \([0-9.]*\).*/\1/p')
    if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 4.0) }'; then
        ok "systemd-analyze security rates kith.service $score (at most 4.0)"
    else
        bad "systemd-analyze security rates kith.service '${score:-?}', over 4.0"
    fi
else
    echo "skipped: systemd-analyze is not installed"
fi

if cmake -S "$src/examples/contacts" -B "$tmp/example" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
        >"$tmp/cfg.log" 2>&1 && cmake --build "$tmp/example" >"$tmp/build.log" 2>&1; then
    ok "example builds with find_package(kith)"
    mkdir -p "$tmp/replicas"
    if out=$(LD_LIBRARY_PATH="$libdir" "$tmp/example/contacts" "$tmp/replicas" 2>&1) &&
        grep -q 'replicas converged: yes' <<<"$out" && grep -q 'overruled' <<<"$out"; then
        ok "example converges and reports the overruled edit"
    else
        bad "example run: $out"
    fi
else
    cat "$tmp/cfg.log" "$tmp/build.log"
    bad "example builds with find_package(kith)"
fi

if cmake -S "$src/examples/tasks" -B "$tmp/tasks" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
        >"$tmp/cfg-tasks.log" 2>&1 && cmake --build "$tmp/tasks" >"$tmp/build-tasks.log" 2>&1; then
    ok "the tasks example (a schema of its own) builds with find_package(kith)"
    mkdir -p "$tmp/replicas-tasks"
    if out=$(LD_LIBRARY_PATH="$libdir" "$tmp/tasks/tasks" "$tmp/replicas-tasks" 2>&1) &&
        grep -q 'replicas converged: yes' <<<"$out" &&
        grep -q 'ship the release.*votes 3  done: yes  labels: q4 release urgent' <<<"$out"; then
        ok "tasks: votes add up, the tick wins, labels merge, replicas converge"
    else
        bad "tasks example run: $out"
    fi
else
    cat "$tmp/cfg-tasks.log" "$tmp/build-tasks.log"
    bad "the tasks example builds with find_package(kith)"
fi

pcdir=$(dirname "$(find "$tmp/prefix" -name kith.pc | head -n 1)")
if PKG_CONFIG_PATH="$pcdir" pkg-config --exists kith &&
    [ "$(PKG_CONFIG_PATH="$pcdir" pkg-config --modversion kith)" = 0.5.0 ]; then
    ok "kith.pc"
else
    bad "kith.pc"
fi
# a consumer gets kith's own flags only: no private include paths of libzmq's
cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags kith)
foreign=""
for f in $cflags; do
    [ "${f#-I}" != "$f" ] && [ "$(realpath -m "${f#-I}")" = "$(realpath -m "$tmp/prefix/include")" ] ||
        foreign="$foreign $f"
done
if [ -n "$foreign" ]; then
    bad "pkg-config --cflags kith is kith's include path only; also:$foreign"
else
    ok "pkg-config --cflags kith is kith's include path only"
fi
mkdir -p "$tmp/replicas-pc" "$tmp/replicas-static"
# shellcheck disable=SC2046
if cc -o "$tmp/pc-contacts" "$src/examples/contacts/contacts.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs kith) 2>"$tmp/pc.log" &&
    out=$(LD_LIBRARY_PATH="$libdir" "$tmp/pc-contacts" "$tmp/replicas-pc" 2>&1) &&
    grep -q 'replicas converged: yes' <<<"$out"; then
    ok "example builds and runs with pkg-config --cflags --libs kith"
else
    cat "$tmp/pc.log"
    bad "example with pkg-config: $out"
fi
# the static library, with the private dependencies the CMake package looks up for it
mkdir -p "$tmp/static-src"
sed 's/find_package(kith 0.1 REQUIRED)/find_package(kith 0.1 REQUIRED COMPONENTS static)/;
     s/kith::kith)/kith::kith_static)/' "$src/examples/contacts/CMakeLists.txt" \
    >"$tmp/static-src/CMakeLists.txt"
cp "$src/examples/contacts/contacts.c" "$tmp/static-src/"
if cmake -S "$tmp/static-src" -B "$tmp/static" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
        >"$tmp/scfg.log" 2>&1 && cmake --build "$tmp/static" >"$tmp/sbuild.log" 2>&1 &&
    ! ldd "$tmp/static/contacts" | grep -q libkith &&
    out=$("$tmp/static/contacts" "$tmp/replicas-static" 2>&1) &&
    grep -q 'replicas converged: yes' <<<"$out"; then
    ok "example links kith::kith_static (find_package(kith COMPONENTS static))"
else
    cat "$tmp/scfg.log" "$tmp/sbuild.log"
    bad "example with kith::kith_static: ${out:-}"
fi

# section-3 pages: every page installed and rendering without a warning, and every KITH_API
# function of the header named by a page and reachable as `man FUNCTION`
man3=$(find "$tmp/prefix" -path '*/man3/kith.3' -printf '%h\n' | head -n 1)
if [ -n "$man3" ]; then
    ok "kith(3) installed"
    for page in "$src"/doc/man3/*.3; do
        name=$(basename "$page")
        if ! cmp -s "$page" "$man3/$name"; then
            bad "$name installed"
            continue
        fi
        warnings=$(groff -man -ww -z "$man3/$name" 2>&1 || echo "groff failed")
        if command -v man >/dev/null; then
            warnings+=$(MANWIDTH=80 man --warnings -l "$man3/$name" 2>&1 >/dev/null ||
                echo "man failed")
        fi
        [ -z "$warnings" ] && ok "$name installed, renders without warnings" ||
            bad "$name renders with warnings: $warnings"
    done
    functions=$(sed -n 's/^KITH_API[^(]*[ *]\(kith_[a-z0-9_]*\)(.*/\1/p' "$src/include/kith.h")
    [ "$(wc -w <<<"$functions")" -gt 50 ] && ok "kith.h declares $(wc -w <<<"$functions") functions" ||
        bad "found only $(wc -w <<<"$functions") KITH_API functions in kith.h"
    undocumented="" unlinked=""
    for fn in $functions; do
        # documented: named on the NAME line of some page beside the header
        grep -A1 -h '^\.SH NAME' "$src"/doc/man3/*.3 | grep -qE "(^|[ ,])$fn([ ,]|$)" ||
            undocumented="$undocumented $fn"
        # installed: its own page, or a .so link to a group page that is there
        target=$(sed -n 's/^\.so man3\///p' "$man3/$fn.3" 2>/dev/null || true)
        if [ ! -f "$man3/$fn.3" ] || { [ -n "$target" ] && [ ! -f "$man3/$target" ]; }; then
            unlinked="$unlinked $fn"
        fi
    done
    [ -z "$undocumented" ] && ok "every KITH_API function is documented in doc/man3" ||
        bad "KITH_API functions no man3 page names:$undocumented"
    [ -z "$unlinked" ] && ok "every KITH_API function has an installed man3 page" ||
        bad "KITH_API functions without an installed man3 page:$unlinked"
    if command -v man >/dev/null; then
        found=$(MANPATH="$(dirname "$man3")" man -w kith_txn_begin 2>/dev/null || true)
        text=$(MANPATH="$(dirname "$man3")" MANWIDTH=80 man kith_txn_begin 2>/dev/null || true)
        # man -w names the page the link sources
        [ "$found" = "$man3/kith_txn.3" ] && grep -q 'kith_txn_commit()' <<<"$text" &&
            ok "man kith_txn_begin shows kith_txn(3)" || bad "man kith_txn_begin: '$found'"
    fi
else
    bad "kith(3) installed"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
