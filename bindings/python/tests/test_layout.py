"""The ctypes mirrors in kith/_ffi.py match the C library: the header's size functions, every
struct's size and field offsets as the library's debug information states them (through gdb,
when it and the debug information are there), and a prototype for every KITH_API function."""

import ctypes
import os
import re
import shutil
import subprocess
import unittest

import kith
from kith import _ffi as ffi

HEADER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "include",
                      "kith.h")


def c_name(struct_type):
    return struct_type.__name__


def field_paths(struct_type, prefix=""):
    """(C access path, ctypes offset) of every field, descending into the anonymous
    union and struct of kith_value, whose mirrors have names starting with '_'."""
    for name, ftype, *_ in struct_type._fields_:
        off = getattr(struct_type, name).offset
        yield prefix + name, off
        if isinstance(ftype, type) and issubclass(ftype, (ctypes.Structure, ctypes.Union)) and \
                ftype.__name__.startswith("_"):
            for sub, suboff in field_paths(ftype, prefix + name + "."):
                yield sub, off + suboff


class Sizes(unittest.TestCase):
    def test_size_functions_match_constants(self):
        self.assertEqual(ffi.kith_docid_bytes(), ffi.KITH_DOCID_BYTES)
        self.assertEqual(ffi.kith_pubkey_bytes(), ffi.KITH_PUBKEY_BYTES)
        self.assertEqual(ctypes.sizeof(ffi.kith_docid), ffi.kith_docid_bytes())

    def test_version(self):
        self.assertRegex(kith.version(), r"^\d+\.\d+\.\d+$")


@unittest.skipUnless(os.path.exists(HEADER), "include/kith.h is not beside this binding")
class Header(unittest.TestCase):
    def test_every_api_function_has_a_prototype(self):
        with open(HEADER) as f:
            text = f.read()
        names = re.findall(r"^KITH_API\b[^(]*?\b(kith_\w+)\s*\(", text, re.M)
        self.assertGreater(len(names), 50)
        bound = {p[0] for p in ffi.PROTOTYPES}
        self.assertEqual(sorted(set(names) - bound), [], "declared in kith.h, not in _ffi.py")
        self.assertEqual(sorted(bound - set(names)), [], "in _ffi.py, not declared in kith.h")

    def test_every_struct_is_mirrored(self):
        with open(HEADER) as f:
            text = f.read()
        declared = set(re.findall(r"^typedef struct (kith_\w+) \{", text, re.M))
        mirrored = {c_name(s) for s in ffi.STRUCTS}
        self.assertEqual(sorted(declared - mirrored), [], "declared in kith.h, not mirrored")


def gdb_print(exprs):
    """Evaluate C expressions as long against the library's debug information with one gdb
    run; None for each that gdb could not evaluate."""
    args = ["gdb", "-batch", "-nx"]
    for e in exprs:
        args += ["-ex", "print (long)(%s)" % e, "-ex", "echo @@\\n"]
    out = subprocess.run(args + [ffi.lib._name], capture_output=True, text=True, timeout=300)
    chunks = out.stdout.split("@@\n")[:len(exprs)]
    values = []
    for chunk in chunks:
        m = re.search(r"^\$\d+ = (-?\d+)$", chunk, re.M)
        values.append(int(m.group(1)) if m else None)
    return values + [None] * (len(exprs) - len(values)), out.stderr


class Layout(unittest.TestCase):
    def setUp(self):
        if not shutil.which("gdb"):
            self.skipTest("gdb is not installed (scripts/deps.sh installs it)")

    def test_structs_match_the_library(self):
        """Every mirrored field sits at C's offset, and every struct has C's size, except
        that a struct in ffi.GROWABLE may be shorter than C's by fields appended to it, up to
        ffi.SLACK bytes: the binding allocates those with that much zeroed slack (read by the
        library as defaults) or only reads them through the library's pointers. A struct the
        header declares and no code of the library uses yet has no debug information to
        compare with: it is named in a note, not failed."""
        checks = []  # (expression, expected, what, struct, struct name)
        for s in ffi.STRUCTS:
            n = c_name(s)
            checks.append(("sizeof(struct %s)" % n, ctypes.sizeof(s), "sizeof(%s)" % n, s, n))
            for path, off in field_paths(s):
                checks.append(("&((struct %s *)0)->%s" % (n, path), off,
                               "offsetof(%s, %s)" % (n, path), None, n))
        got, errors = gdb_print([c[0] for c in checks])
        if all(v is None for v in got):
            self.skipTest("no debug information for kith's types in %s" % ffi.lib._name)
        unknown = {c[4] for c, g in zip(checks, got) if c[3] is not None and g is None}
        wrong, shorter = [], []
        for (_, want, what, s, n), g in zip(checks, got):
            if g == want or n in unknown:
                continue
            if s in ffi.GROWABLE and g is not None and \
                    want < g <= want + ffi.SLACK:
                shorter.append("%s: C says %d, _ffi.py %d" % (what, g, want))
                continue
            wrong.append("%s: C says %s, _ffi.py says %d" % (what, g, want))
        self.assertEqual(wrong, [], errors[-2000:])
        if shorter:
            print("\nnote: fields appended in C, not mirrored yet: " + "; ".join(shorter))
        if unknown:
            print("\nnote: not in the library's debug information (unused by its code), so "
                  "not compared: " + ", ".join(sorted(unknown)))
