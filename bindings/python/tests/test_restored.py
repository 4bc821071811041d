"""A replica restored from a copy of itself (spec/data-model.md RESTORE-*): the handshake marks
it, writes are refused with KITH_ERESTORED until its own ops are back or restored_accept()."""

import os
import shutil

import kith
from tests.helpers import ReplicaCase


class Restored(ReplicaCase):
    def test_restore_is_found_and_accepted(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            t.create("contacts", name="kept")
        with b.serve(listen="tcp://127.0.0.1:*", log_level=kith.LOG_ERROR) as server:
            a.sync(server.endpoint, peer_pk=b.pubkey, timeout_ms=20000)
            a.close()
            shutil.copytree(os.path.join(self.dir, "a"), os.path.join(self.dir, "backup"))
            a = self.open("a", create=False)
            for name in ("lost 1", "lost 2"):
                with a.write() as t:
                    t.create("contacts", name=name)
            a.sync(server.endpoint, peer_pk=b.pubkey, timeout_ms=20000)
            a.close()
            shutil.rmtree(os.path.join(self.dir, "a"))
            shutil.copytree(os.path.join(self.dir, "backup"), os.path.join(self.dir, "a"))
            a = self.open("a", create=False)
            self.assertEqual(a.status().restored_seq, 0)
            with a.write() as t:  # the copy writes before it meets a peer: a fork of its own
                t.create("contacts", name="written on the copy")
            info = a.sync(server.endpoint, peer_pk=b.pubkey, timeout_ms=20000)
            self.assertGreater(info.restored_seq, 0)
        status = a.status()
        self.assertEqual(status.restored_seq, info.restored_seq)
        self.assertEqual(status.restored_from, b.id)
        self.assertFalse(status.restored_accepted)
        self.assertIn(a.id, [f.origin for f in a.forks()])
        with self.assertRaises(kith.KithError) as refused:
            with a.write() as t:
                t.create("contacts", name="refused")
        self.assertEqual(refused.exception.name, "KITH_ERESTORED")
        a.restored_accept()
        self.assertTrue(a.status().restored_accepted)
        with a.write() as t:
            t.create("contacts", name="after accept")
