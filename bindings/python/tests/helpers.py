"""Shared by the binding's tests: a temporary directory per test, and replicas in it that are
closed when the test ends."""

import os
import shutil
import tempfile
import unittest

import kith


class ReplicaCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kith-py-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def open(self, name, create=True, **flags):
        if create and "schema" not in flags:
            flags["schema"] = kith.crm_schema()
        r = kith.Replica(os.path.join(self.dir, name), create=create, nosync=True, **flags)
        self.addCleanup(r.close)
        return r

    def pair(self, a, b):
        a.trust(b.pubkey, name="b")
        b.trust(a.pubkey, name="a")

    def carry(self, src, dst):
        path = os.path.join(self.dir, "bundle")
        src.bundle_write(path)
        return dst.bundle_apply(path)
