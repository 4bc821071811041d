#!/usr/bin/env bash
# The kith command on damaged replicas, full disks and files it may read but not write
# (spec/cli.md "On a damaged replica", spec/storage.md STO-2): no command dies by a signal,
# and each says what it could not do and why. Damage is made by hand: a zeroed B-tree page
# of a real replica (found by reading LMDB's page headers), a data.mdb cut short, a 0-byte
# data.mdb. Full disks are small tmpfs mounts (needs root; skipped with a message when
# mounting is impossible); unreadable files need a second user (setpriv to nobody; skipped
# likewise).
#   KITH_BIN   the kith binary (ctest sets it; default build/kith)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
KITH=${KITH_BIN:-$here/build/kith}
[ -x "$KITH" ] || { echo "no kith binary at $KITH"; exit 1; }
command -v perl >/dev/null || { echo "perl is needed to read LMDB page headers"; exit 1; }

tmp=$(mktemp -d /tmp/kith-test-damage.XXXXXX)
mounts=()
cleanup() {
    local m
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
unset KITH_DIR XDG_DATA_HOME NO_COLOR
# Under ASan, let a fault on a damaged page kill the process as it would unsanitized (ASan's
# own handler would turn it into exit 1 before kith could say why); memory errors are still
# reported.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:handle_sigbus=0:handle_abort=0"
export HOME="$tmp/home"
mkdir -p "$HOME"

pass=0 fail=0 skipped=0
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAILED: $1"
    if [ -s "$tmp/err" ]; then sed 's/^/    stderr: /' "$tmp/err" | head -5; fi
}
skip() {
    skipped=$((skipped + 1))
    echo "SKIPPED: $1"
}
check() { # check NAME CONDITION-COMMAND...
    local name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
# run EXPECTED_RC NAME ARGS... : run kith, keep stdout in $tmp/out and stderr in $tmp/err
run() {
    local want=$1 name=$2 rc=0
    shift 2
    "$KITH" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$? || true
    if [ "$rc" = "$want" ]; then ok; else bad "$name (exit $rc, wanted $want)"; fi
}
err_has() { grep -q -- "$1" "$tmp/err"; }
err_lacks() { ! grep -q -- "$1" "$tmp/err"; }
not() { ! "$@"; }

# pages FILE DB : "root child..." page numbers of database DB's B-tree (children when the root
# is a branch page), read from the newer meta page and the main database's leaf.
pages() {
    perl -e '
use strict; use warnings;
my ($file, $name) = @ARGV;
open(my $fh, "<:raw", $file) or die "$file: $!";
sysread($fh, my $p0, 4096) == 4096 or die "short file\n";
my $ps = unpack("V", substr($p0, 40, 4));
sub page { my $n = shift; sysseek($fh, $n * $ps, 0); sysread($fh, my $p, $ps); return $p; }
my ($meta, $txn) = (undef, -1);
for my $m (0, 1) {
    my $p = page($m);
    next unless unpack("V", substr($p, 16, 4)) == 0xBEEFC0DE;
    my $t = unpack("Q<", substr($p, 144, 8));
    ($meta, $txn) = ($p, $t) if $t > $txn;
}
sub nodes {
    my $p = shift;
    my $lower = unpack("v", substr($p, 12, 2));
    return map { unpack("v", substr($p, 16 + 2 * $_, 2)) } 0 .. ($lower - 16) / 2 - 1;
}
my $main = page(unpack("Q<", substr($meta, 128, 8)));
for my $off (nodes($main)) {
    my ($lo, $hi, $fl, $ks) = unpack("vvvv", substr($main, $off, 8));
    next unless substr($main, $off + 8, $ks) eq $name;
    my $root = unpack("Q<", substr($main, $off + 8 + $ks + 40, 8));
    my $rp = page($root);
    my @out = ($root);
    if (unpack("v", substr($rp, 10, 2)) & 1) {
        for my $o (nodes($rp)) {
            my ($a, $b, $c) = unpack("vvv", substr($rp, $o, 6));
            push @out, $a | ($b << 16) | ($c << 32);
        }
    }
    print "@out\n";
    exit 0;
}
die "no database $name\n";
' "$@"
}
# zero_page FILE PGNO : overwrite one 4096-byte page with zeros
zero_page() { dd if=/dev/zero of="$1" bs=4096 seek="$2" count=1 conv=notrunc status=none; }
# no_signal NAME ARGS... : kith exits by itself (status below 128) and says why when it fails
no_signal() {
    local name=$1 rc=0
    shift
    "$KITH" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$? || true
    if [ "$rc" -ge 128 ]; then
        bad "$name: killed by signal $((rc - 128))"
    elif [ "$rc" -ne 0 ] && ! grep -q "^kith: " "$tmp/err"; then
        bad "$name: exit $rc without a message"
    else
        ok
    fi
}
READ_CMDS=("verify" "export" "status" "log" "contact ls" "contact ls --json" "interaction ls"
    "reminder ls" "conflicts" "peers" "id")

# ---- a replica with enough data for branch pages -------------------------------------------------
R=$tmp/r
"$KITH" --dir "$R" init >/dev/null
long=$(printf 'n%.0s' $(seq 250))
notes=$(printf 'x%.0s' $(seq 1500))
for i in $(seq 1 30); do
    "$KITH" --dir "$R" contact add --name "$i $long" --notes "$notes" >/dev/null
done
big=$(printf 'y%.0s' $(seq 16000))
for i in $(seq 1 30); do
    "$KITH" --dir "$R" contact add --name "big $i" --notes "$big" >/dev/null
done
run 0 "the undamaged replica verifies" --dir "$R" verify
size=$(stat -c %s "$R/data.mdb")
check "the replica is over 1 MiB" test "$size" -gt 1048576

# ---- a zeroed B-tree page (STO-21) --------------------------------------------------------------
for db in log index; do
    D=$tmp/zero-$db
    cp -a "$R" "$D"
    read -r -a pg <<<"$(pages "$D/data.mdb" "$db")"
    if [ "${#pg[@]}" -lt 3 ]; then
        bad "database $db has no branch page to damage"
        continue
    fi
    zero_page "$D/data.mdb" "${pg[2]}" # the second leaf: reached by stepping from the first
    for cmd in "${READ_CMDS[@]}" "contact add --name After"; do
        # shellcheck disable=SC2086 # cmd is words
        no_signal "zeroed $db page: $cmd" --dir "$D" $cmd
    done
    run 1 "zeroed $db page: verify fails" --dir "$D" verify
    check "zeroed $db page: verify names the database" err_has "database $db cannot be read"
    check "zeroed $db page: verify reports it as damage" err_has "replica is damaged"
    run 1 "zeroed $db page: verify --json fails" --dir "$D" verify --json
    check "zeroed $db page: verify --json names it" grep -q "database $db cannot be read" "$tmp/out"
done
run 1 "zeroed index page: contact ls fails" --dir "$tmp/zero-index" contact ls
check "zeroed index page: contact ls names the index" err_has "database index cannot be read"
check "zeroed index page: not out of memory" err_lacks "out of memory"
run 1 "zeroed log page: log fails" --dir "$tmp/zero-log" log
check "zeroed log page: log names the log" err_has "database log cannot be read"

# ---- a node whose size points past the end of the file (CLI-12) ---------------------------------
# LMDB trusts a leaf node's data size; reading 16 MiB from a page of a 1.4 MiB file faults.
D=$tmp/long-node
cp -a "$R" "$D"
read -r -a pg <<<"$(pages "$D/data.mdb" log)"
perl -e 'my ($f, $pg) = @ARGV; open(my $h, "+<:raw", $f) or die;
    sysseek($h, $pg * 4096 + 16, 0); sysread($h, my $b, 2);
    sysseek($h, $pg * 4096 + unpack("v", $b), 0); syswrite($h, "\xff\xff\xff\x00");' \
    "$D/data.mdb" "${pg[2]}"
for cmd in "${READ_CMDS[@]}" "contact add --name After"; do
    # shellcheck disable=SC2086 # cmd is words
    no_signal "log node past the end: $cmd" --dir "$D" $cmd
done
run 1 "log node past the end: verify fails" --dir "$D" verify
check "log node past the end: verify says damaged" err_has "replica is damaged"

# ---- bytes overwritten in a register page: the cause is damage, not memory (STO-21) -------------
D=$tmp/scribbled-regs
cp -a "$R" "$D"
read -r -a pg <<<"$(pages "$D/data.mdb" regs)"
perl -e 'print "Z" x 2000' | dd of="$D/data.mdb" bs=1 seek=$((pg[0] * 4096 + 16)) conv=notrunc status=none
for cmd in "${READ_CMDS[@]}"; do
    # shellcheck disable=SC2086 # cmd is words
    no_signal "scribbled regs page: $cmd" --dir "$D" $cmd
done
run 1 "scribbled regs page: contact ls fails" --dir "$D" contact ls
check "scribbled regs page: contact ls names regs" err_has "database regs cannot be read"
check "scribbled regs page: not out of memory" err_lacks "out of memory"

# ---- data.mdb cut short (STO-2, STO-21) --------------------------------------------------------
for cut in 12288 65536 1048576 $((size - 4096)); do
    D=$tmp/cut-$cut
    cp -a "$R" "$D"
    truncate -s "$cut" "$D/data.mdb"
    for cmd in "${READ_CMDS[@]}" "contact add --name After" "init"; do
        # shellcheck disable=SC2086 # cmd is words
        no_signal "cut to $cut: $cmd" --dir "$D" $cmd
    done
    run 1 "cut to $cut: verify refuses" --dir "$D" verify
    check "cut to $cut: verify gives both sizes" \
        err_has "replica is damaged: data.mdb is $cut bytes, the database needs $size"
    run 1 "cut to $cut: status refuses" --dir "$D" status
    check "cut to $cut: status gives both sizes" err_has "data.mdb is $cut bytes"
    check "cut to $cut: nothing written" test "$(stat -c %s "$D/data.mdb")" = "$cut"
done
D=$tmp/empty-data
cp -a "$R" "$D"
: >"$D/data.mdb"
for cmd in "${READ_CMDS[@]}" "contact add --name After" "init"; do
    # shellcheck disable=SC2086 # cmd is words
    no_signal "0-byte data.mdb: $cmd" --dir "$D" $cmd
done
run 1 "0-byte data.mdb: export refuses" --dir "$D" export
check "0-byte data.mdb: says damaged" err_has "replica is damaged: data.mdb is 0 bytes"
check "0-byte data.mdb: not a bad descriptor" err_lacks "bad file descriptor"
run 1 "0-byte data.mdb: init does not make a new replica over it" --dir "$D" init
check "0-byte data.mdb: init leaves it" test ! -s "$D/data.mdb"

# ---- a full disk (STO-1, STO-22) -----------------------------------------------------------------
# small_fs DIR SIZE : mount a tmpfs of SIZE at DIR (unmounted at exit); fails when we cannot
small_fs() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2,mode=0755" kith-test "$1" 2>/dev/null || return 1
    mounts+=("$1")
}
# fill DIR KIB : fill the file system of DIR until KIB KiB are left
fill() {
    local avail
    rm -f "$1/fill"
    avail=$(df -B1 --output=avail "$1" | tail -1)
    head -c $((avail - $2 * 1024)) /dev/zero >"$1/fill" 2>/dev/null || true
}
M=$tmp/mnt
if ! small_fs "$M" 128k; then
    skip "full disk: cannot mount a tmpfs here (needs root); init, commit and apply untested"
else
    for free in 4 8 12 20; do
        rm -rf "${M:?}"/*
        fill "$M" "$free"
        no_signal "init with $free KiB free" --dir "$M/r" init
        if [ -e "$M/r/key" ]; then
            ok # it fitted
        else
            run 1 "init with $free KiB free fails" --dir "$M/r" init
            check "init with $free KiB free: says the disk is full" \
                err_has "no space left on device"
            run 1 "after init with $free KiB free: status" --dir "$M/r" status
            check "after init with $free KiB free: status says to finish init" \
                err_has "run 'kith init' to finish it"
        fi
        rm -f "$M/fill"
        run 0 "init with $free KiB free: init finishes once space is freed" --dir "$M/r" init
        run 0 "init with $free KiB free: the finished replica verifies" --dir "$M/r" verify
        run 0 "init with $free KiB free: a commit works" --dir "$M/r" contact add --name Later
    done
    umount "$M" && mounts=()

    small_fs "$M" 512k
    "$KITH" --dir "$R" bundle create -o "$tmp/r.bundle" 2>/dev/null
    "$KITH" --dir "$M/r" init >/dev/null
    "$KITH" --dir "$M/r" trust "$("$KITH" --dir "$R" id --json | sed -n 's/.*"pubkey": "\(.*\)".*/\1/p')" >/dev/null
    fill "$M" 16
    run 1 "full disk: bundle apply fails" --dir "$M/r" bundle apply "$tmp/r.bundle"
    check "full disk: bundle apply says the disk is full" grep -qi "no space left on device" "$tmp/err"
    check "full disk: bundle apply is not an I/O error" not grep -qi "input/output error" "$tmp/err"
    run 1 "full disk: contact add fails" --dir "$M/r" contact add --name "$long" --notes "$big"
    check "full disk: commit says the disk is full" err_has "no space left on device"
    check "full disk: commit is not an I/O error" err_lacks "input/output error"
    run 0 "full disk: the replica still verifies" --dir "$M/r" verify
    umount "$M" && mounts=()
fi

# ---- a replica the user may read but not write (STO-23, CLI-12) ----------------------------------
# run_as EXPECTED_RC NAME ARGS... : as run, as the user nobody
run_as() {
    local want=$1 name=$2 rc=0
    shift 2
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$KITH" "$@" >"$tmp/out" 2>"$tmp/err" ||
        rc=$? || true
    if [ "$rc" = "$want" ]; then ok; else bad "$name (exit $rc, wanted $want)"; fi
}
if [ "$(id -u)" != 0 ] || ! setpriv --reuid=nobody --regid=nogroup --clear-groups true 2>/dev/null; then
    skip "read-only replica: cannot run as nobody here (needs root and setpriv)"
else
    chmod 711 "$tmp"
    P=$tmp/shared
    cp -a "$R" "$P"
    chmod 755 "$P"
    chmod 644 "$P/data.mdb" "$P/lock.mdb"
    chmod 600 "$P/key"
    own_id=$("$KITH" --dir "$P" id | awk '$1 == "id" {print $2}')
    doc=$("$KITH" --dir "$P" contact ls | awk 'NR == 2 {print $1}')
    for cmd in status "contact ls" "contact ls --json" "contact show $doc" export verify log \
        "interaction ls" "reminder ls" conflicts peers; do
        # shellcheck disable=SC2086 # cmd is words
        run_as 0 "read-only replica: $cmd" --dir "$P" $cmd
    done
    run_as 0 "read-only replica: id" --dir "$P" id
    check "read-only replica: the same id as its owner sees" grep -q "^id  *$own_id\$" "$tmp/out"
    run_as 1 "read-only replica: a write is refused" --dir "$P" contact add --name Nobody
    check "read-only replica: the write says permission denied" err_has "permission denied"
    run_as 1 "read-only replica: bundle create cannot sign" --dir "$P" bundle create -o "$tmp/nobody.bundle"
    check "read-only replica: bundle create names the key" err_has "key: cannot be read"
    run 0 "read-only replica: the owner still writes" --dir "$P" contact add --name Owner

    run 0 "key mode 0600: no warning" --dir "$P" status
    check "key mode 0600: stderr is empty" test ! -s "$tmp/err"
    chmod 644 "$P/key"
    run 0 "key mode 0644: still works" --dir "$P" status
    check "key mode 0644: warns" err_has "warning: .*key is readable by other users"
    run_as 0 "key mode 0644, another user: works" --dir "$P" status

    chmod 700 "$P"
    run_as 1 "unreadable directory: status fails" --dir "$P" status
    check "unreadable directory: says permission denied" err_has "permission denied"
    check "unreadable directory: not 'no replica'" err_lacks "no replica"
    run_as 1 "unreadable directory: verify fails" --dir "$P" verify
    check "unreadable directory: verify says permission denied" err_has "permission denied"
fi

echo "test_damage: $pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ]
