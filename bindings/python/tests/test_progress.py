"""Progress and cancellation through Replica.set_progress and Replica.progress
(kith_progress_set): the numbers of each long call from 0 to its total, False or an exception
from the callback cancelling with nothing half done, and a cancelled sync that the next one
completes."""

import os

import kith
from tests.helpers import ReplicaCase


class Recorder:
    """Records each Progress; says stop (False) once done reaches `stop_at`, or raises
    `raise_at_call` at that call (1 is the first)."""

    def __init__(self, stop_at=None, raise_at_call=None):
        self.calls = []
        self.stop_at = stop_at
        self.raise_at_call = raise_at_call

    def __call__(self, p):
        self.calls.append(p)
        if self.raise_at_call == len(self.calls):
            raise KeyboardInterrupt
        if self.stop_at is not None and p.done >= self.stop_at:
            return False
        return None


class Progress(ReplicaCase):
    def contacts(self, r, n):
        for i in range(n):
            with r.write() as t:
                t.create("contacts", name="contact %d" % i)

    def assert_reports(self, rec, op, total):
        self.assertGreaterEqual(len(rec.calls), 2)
        self.assertEqual(rec.calls[0].done, 0)
        for before, p in zip(rec.calls, rec.calls[1:]):
            self.assertGreaterEqual(p.done, before.done)
        for p in rec.calls:
            self.assertEqual(p.op, op)
            if p.total:
                self.assertLessEqual(p.done, p.total)
        self.assertEqual((rec.calls[-1].done, rec.calls[-1].total), (total, total))

    def test_bundle_write_apply_and_verify_report_up_to_their_totals(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        self.contacts(a, 300)
        path = os.path.join(self.dir, "bundle")
        built, applied, verified = Recorder(), Recorder(), Recorder()
        with a.progress(built):
            info = a.bundle_write(path)
        self.assert_reports(built, kith.PROGRESS_BUILD, info.ops)
        with b.progress(applied):
            info = b.bundle_apply(path)
        self.assert_reports(applied, kith.PROGRESS_APPLY, info.ops_new)
        with b.progress(verified):
            rep = b.verify()
        self.assert_reports(verified, kith.PROGRESS_VERIFY, 2 * rep.ops_checked)
        # after the block, nothing is called
        n = len(verified.calls)
        b.verify()
        self.assertEqual(len(verified.calls), n)

    def test_false_cancels_an_apply_halfway_and_nothing_changes(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        self.contacts(a, 600)
        with b.write() as t:
            t.create("contacts", name="mine")
        data, info = a.batch_create()
        before, vv = b.export_json(), b.vv()
        rec = Recorder(stop_at=info.ops // 2)
        b.set_progress(rec)
        with self.assertRaises(kith.Cancelled) as cm:
            b.batch_apply(data)
        self.assertEqual(cm.exception.code, kith.ECANCELED)
        self.assertIsInstance(cm.exception, kith.KithError)
        self.assertLess(rec.calls[-1].done, info.ops)
        b.set_progress(None)
        self.assertEqual(b.export_json(), before)
        self.assertEqual(b.vv(), vv)
        self.assertEqual(b.verify().problems, 0)
        self.assertEqual(b.batch_apply(data).ops_new, info.ops)
        self.carry(b, a)
        self.assertEqual(a.export_json(), b.export_json())

    def test_an_exception_in_the_callback_cancels_and_is_raised(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        self.contacts(a, 10)
        path = os.path.join(self.dir, "bundle")
        a.bundle_write(path)
        before = b.export_json()
        with b.progress(Recorder(raise_at_call=1)):
            with self.assertRaises(KeyboardInterrupt):
                b.bundle_apply(path)
        self.assertEqual(b.export_json(), before)
        self.assertEqual(b.bundle_apply(path).ops_new, 20)

    def test_a_cancelled_bundle_write_leaves_no_file(self):
        a = self.open("a")
        self.contacts(a, 10)
        path = os.path.join(self.dir, "out", "bundle")
        os.mkdir(os.path.dirname(path))
        with a.progress(lambda p: False):
            with self.assertRaises(kith.Cancelled):
                a.bundle_write(path)
        self.assertEqual(os.listdir(os.path.dirname(path)), [])

    def test_a_cancelled_sync_is_recorded_and_the_next_one_converges(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        self.contacts(a, 20)
        self.contacts(b, 5)
        with a.serve(listen="tcp://127.0.0.1:*", log_level=kith.LOG_ERROR) as server:
            with b.progress(lambda p: False):
                with self.assertRaises(kith.Cancelled):
                    b.sync(server.endpoint, peer_pk=a.pubkey, timeout_ms=20000)
            peer = {p.id: p for p in b.peers()}[a.id]
            self.assertEqual(peer.last_error, "cancelled by the caller")
            self.assertEqual(peer.failures, 0)
            rec = Recorder()
            with b.progress(rec):
                info = b.sync(server.endpoint, peer_pk=a.pubkey, timeout_ms=20000)
            self.assertTrue(info.converged)
            self.assert_reports(rec, kith.PROGRESS_SYNC, info.ops_sent + info.ops_received)
        self.assertEqual(a.export_json(), b.export_json())
