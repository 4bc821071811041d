"""Replicas, transactions, documents, fields, sets, iteration, observers, conflicts, the log,
and errors, through the Python layer."""

import datetime
import os
import threading

import kith
from tests.helpers import ReplicaCase

UTC = datetime.timezone.utc


class Open(ReplicaCase):
    def test_create_then_reopen(self):
        path = os.path.join(self.dir, "r")
        with kith.Replica(path, create=True) as r:
            rid, pk = r.id, r.pubkey
            self.assertEqual(len(pk), 32)
            self.assertEqual(kith.id_from_pubkey(pk), rid)
            self.assertEqual(os.path.realpath(r.path), os.path.realpath(path))
        with kith.Replica(path) as r:
            self.assertEqual(r.id, rid)
            self.assertEqual(r.pubkey, pk)
        self.assertEqual(len(kith.id_hex(rid)), 16)

    def test_open_missing_raises_enotfound(self):
        with self.assertRaises(kith.KithError) as cm:
            kith.Replica(os.path.join(self.dir, "absent"))
        e = cm.exception
        self.assertEqual(e.code, kith.ENOTFOUND)
        self.assertEqual(e.name, "KITH_ENOTFOUND")
        self.assertEqual(e.strerror, "not found")

    def test_a_failed_open_says_why_in_errmsg(self):
        path = os.path.join(self.dir, "r")
        self.open("r").close()
        with open(os.path.join(path, "data.mdb"), "r+b") as f:
            f.truncate(100)
        with self.assertRaises(kith.KithError) as cm:
            kith.Replica(path)
        self.assertEqual(cm.exception.code, kith.ECORRUPT)
        self.assertIn("data.mdb", cm.exception.errmsg)

    def test_close_is_idempotent_and_a_closed_replica_refuses(self):
        r = self.open("r")
        r.close()
        r.close()
        with self.assertRaises(ValueError):
            r.txn()

    def test_close_aborts_a_transaction_left_open(self):
        r = self.open("r")
        t = r.write()
        t.create("contacts", name="Ada")
        r.close()
        self.assertFalse(t.open)
        with self.open("r", create=False) as again:
            self.assertEqual(again.vv(), {})

    def test_readonly_refuses_a_write(self):
        self.open("r").close()
        ro = self.open("r", create=False, readonly=True)
        with self.assertRaises(kith.KithError) as cm:
            ro.write()
        self.assertEqual(cm.exception.code, kith.EREADONLY)


class Values(ReplicaCase):
    def test_every_type_of_the_schema_round_trips(self):
        types = {f.type for fields in kith.schema().values() for f in fields.values()}
        covered = {kith.TYPE_STRING, kith.TYPE_DATE, kith.TYPE_SET, kith.TYPE_REF,
                   kith.TYPE_ENUM, kith.TYPE_TIME, kith.TYPE_BOOL}
        self.assertEqual(types - covered, set(), "a schema type this test does not write")
        r = self.open("r")
        at = datetime.datetime(2026, 11, 25, 18, 0, 0, 250000, tzinfo=UTC)
        due = datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.timezone(
            datetime.timedelta(hours=1)))
        with r.write() as t:
            ada = t.create("contacts", name="Ada Lovelace ✓", email="ada@example.org",
                           birthday=datetime.date(1815, 12, 10), tags={"math", "friend"})
            bob = t.create("contacts", name="Bob", birthday="--02-29")
            call = t.create("interactions", contact=ada, kind="call", at=at,
                            participants={ada, str(bob)})
            rem = t.create("reminders", contact=ada, due=due, text="notes", done=True)
        with r.read() as t:
            self.assertEqual(t.doc("contacts", ada), {
                "name": "Ada Lovelace ✓", "email": "ada@example.org", "phone": None,
                "company": None, "notes": None, "birthday": datetime.date(1815, 12, 10),
                "tags": {"math", "friend"}})
            self.assertEqual(t.get("contacts", bob, "birthday"), "--02-29")
            c = t.doc("interactions", call)
            self.assertEqual(c["contact"], ada)
            self.assertIsInstance(c["contact"], kith.DocId)
            self.assertEqual(c["kind"], "call")
            self.assertEqual(c["at"], at)
            self.assertEqual(c["at"].tzinfo, UTC)
            self.assertEqual(c["participants"], {str(ada), str(bob)})
            rd = t.doc("reminders", rem)
            self.assertEqual(rd["due"], due)
            self.assertIs(rd["done"], True)
            self.assertEqual(rd["contact"], ada)

    def test_none_clears_and_false_stays_false(self):
        r = self.open("r")
        with r.write() as t:
            ada = t.create("contacts", name="Ada", phone="1")
            rem = t.create("reminders", due=datetime.datetime(2026, 1, 1), text="x", done=False)
        with r.write() as t:
            t.set("contacts", ada, "phone", None)
        with r.read() as t:
            self.assertIsNone(t.get("contacts", ada, "phone"))
            self.assertIs(t.get("reminders", rem, "done"), False)

    def test_docid_text_and_times(self):
        d = kith.DocId(bytes(range(16)))
        self.assertEqual(str(d), "000102030405060708090a0b0c0d0e0f")
        self.assertEqual(kith.DocId.parse(str(d)), d)
        with self.assertRaises(kith.KithError) as cm:
            kith.DocId.parse("xyz")
        self.assertEqual(cm.exception.code, kith.EINVAL)
        t = datetime.datetime(2026, 11, 25, 18, tzinfo=UTC)
        self.assertEqual(kith.time_format(t), "2026-11-25T18:00:00.000Z")
        self.assertEqual(kith.time_from_ms(kith.time_to_ms(t)), t)
        self.assertEqual(kith.parse_value("interactions", "at", "2026-11-25T19:00:00+01:00"), t)
        with self.assertRaises(kith.KithError) as cm:
            kith.parse_value("interactions", "kind", "dance")
        self.assertEqual(cm.exception.code, kith.ESCHEMA)


class Documents(ReplicaCase):
    def test_sets_add_discard_and_replace(self):
        r = self.open("r")
        with r.write() as t:
            ada = t.create("contacts", name="Ada")
            t.add("contacts", ada, "tags", "b", "a", "c")
            t.discard("contacts", ada, "tags", "c", "absent")
        with r.read() as t:
            self.assertEqual(list(t.members("contacts", ada, "tags")), ["a", "b"])
        with r.write() as t:
            t.set("contacts", ada, "tags", {"b", "z"})
        with r.read() as t:
            self.assertEqual(t.get("contacts", ada, "tags"), {"b", "z"})

    def test_delete_and_exists(self):
        r = self.open("r")
        with r.write() as t:
            ada = t.create("contacts", name="Ada")
            self.assertTrue(t.exists("contacts", ada))
        with r.write() as t:
            t.delete("contacts", ada)
        with r.read() as t:
            self.assertFalse(t.exists("contacts", ada))
            self.assertEqual(list(t.docs("contacts")), [])

    def test_iteration_over_docs_and_indexes(self):
        r = self.open("r")
        base = datetime.datetime(2026, 1, 1, tzinfo=UTC)
        with r.write() as t:
            names = ["Carol", "Ada", "Bob"]
            ids = {n: t.create("contacts", name=n) for n in names}
            for day in range(3):
                t.create("interactions", contact=ids["Ada"], kind="note",
                         at=base + datetime.timedelta(days=day))
            t.create("interactions", contact=ids["Bob"], kind="note", at=base)
        with r.read() as t:
            self.assertEqual(sorted(t.docs("contacts")), sorted(ids.values()))
            by_name = [t.get("contacts", d, "name") for d in t.index("contacts.name")]
            self.assertEqual(by_name, ["Ada", "Bob", "Carol"])
            ada_days = [t.get("interactions", d, "at").day
                        for d in t.index("interactions.contact", eq=ids["Ada"],
                                         lo=base + datetime.timedelta(days=1))]
            self.assertEqual(ada_days, [2, 3])

    def test_an_iterator_left_open_is_closed_with_its_transaction(self):
        r = self.open("r")
        with r.write() as t:
            for n in ("a", "b"):
                t.create("contacts", name=n)
        with r.read() as t:
            it = t.docs("contacts")
            next(it)
        self.assertEqual(list(it), [])
        with r.read() as t:  # the replica is still usable
            self.assertEqual(len(list(t.docs("contacts"))), 2)


class Transactions(ReplicaCase):
    def test_an_exception_aborts(self):
        r = self.open("r")
        with self.assertRaises(RuntimeError):
            with r.write() as t:
                t.create("contacts", name="Ada")
                raise RuntimeError("app failure")
        with r.read() as t:
            self.assertEqual(list(t.docs("contacts")), [])
        self.assertEqual(r.vv(), {})

    def test_a_failed_write_leaves_only_abort(self):
        r = self.open("r")
        t = r.write()
        ada = t.create("contacts", name="Ada")
        with self.assertRaises(kith.KithError) as cm:
            t.set("contacts", ada, "name", 42)
        e = cm.exception
        self.assertEqual(e.code, kith.ESCHEMA)
        self.assertIn("name", e.errmsg)
        with self.assertRaises(kith.KithError) as cm:
            t.set("contacts", ada, "name", "Ada")
        self.assertEqual(cm.exception.code, kith.EBADTXN)
        t.abort()
        self.assertFalse(t.open)

    def test_errors_carry_code_name_and_detail(self):
        r = self.open("r")
        with r.write() as t:
            ada = t.create("contacts", name="Ada")
        for call, code in [
                (lambda t: t.create("nosuch"), kith.ENOTFOUND),
                (lambda t: t.set("contacts", ada, "name", None), kith.ESCHEMA),
                (lambda t: t.set("interactions", ada, "kind", "dance"), kith.ESCHEMA),
                (lambda t: t.set("contacts", ada, "email", "not an address"), kith.ESCHEMA)]:
            with self.assertRaises(kith.KithError) as cm:
                with r.write() as t:
                    call(t)
            self.assertEqual(cm.exception.code, code, str(cm.exception))
            self.assertEqual(cm.exception.name, kith.ERRORS[code])
            self.assertIn(cm.exception.strerror, str(cm.exception))

    def test_one_transaction_per_thread(self):
        r = self.open("r")
        with r.read():
            with self.assertRaises(kith.KithError) as cm:
                r.read()
            self.assertEqual(cm.exception.code, kith.EBADTXN)
            seen = []

            def other():
                with r.read() as t:
                    seen.append(list(t.docs("contacts")))
            th = threading.Thread(target=other)
            th.start()
            th.join()
            self.assertEqual(seen, [[]])

    def test_errmsg_is_the_failing_threads_own(self):
        r = self.open("r")
        with r.write() as t:
            ada = t.create("contacts", name="Ada")
        with self.assertRaises(kith.KithError) as cm:
            with r.write() as t:
                t.set("contacts", ada, "email", "not an address")
        self.assertIn("email", cm.exception.errmsg)
        with r.read() as t:
            self.assertTrue(t.exists("contacts", ada))
        self.assertEqual(r.errmsg, cm.exception.errmsg)  # a success does not clear it
        seen = []
        th = threading.Thread(target=lambda: seen.append(r.errmsg))
        th.start()
        th.join()
        self.assertEqual(seen, [""])


class Observers(ReplicaCase):
    def test_observe_hears_a_local_commit(self):
        r = self.open("r")
        heard = []
        r.observe(on_change=heard.append)
        with r.write() as t:
            ada = t.create("contacts", name="Ada")
            t.create("reminders", contact=ada, due=datetime.datetime(2026, 1, 1), text="x")
        self.assertEqual(len(heard), 1)
        self.assertEqual(heard[0].source, kith.CHANGE_LOCAL)
        self.assertIn(("contacts", ada), heard[0].docs)
        self.assertEqual({c for c, _ in heard[0].docs}, {"contacts", "reminders"})
        r.observe()  # cleared: no more calls
        with r.write() as t:
            t.set("contacts", ada, "phone", "1")
        self.assertEqual(len(heard), 1)


class Bundles(ReplicaCase):
    def test_bundles_converge_and_report_the_overruled_edit(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            ada = t.create("contacts", name="Ada", tags={"x"})
        info = self.carry(a, b)
        self.assertEqual(info.ops_new, 3)
        self.assertEqual(b.vv(), a.vv())
        remote, conflicts = [], []
        a.observe(on_change=remote.append, on_conflict=conflicts.append)
        with a.write() as t:
            t.set("contacts", ada, "phone", "from a")
        with b.write() as t:
            t.set("contacts", ada, "phone", "from b")
            t.discard("contacts", ada, "tags", "x")
        self.carry(b, a)
        self.carry(a, b)
        self.assertEqual(a.export_json(), b.export_json())
        self.assertEqual(remote[-1].source, kith.CHANGE_REMOTE)
        self.assertEqual(len(conflicts), 1)
        c = conflicts[0]
        self.assertEqual((c.collection, c.doc, c.field), ("contacts", ada, "phone"))
        self.assertEqual({c.winner, c.loser}, {"from a", "from b"})
        with a.read() as t:
            listed = list(t.conflicts())
            self.assertEqual([x.id for x in listed], [c.id])
            winner = t.get("contacts", ada, "phone")
        # restore the losing value: an ordinary write that replicates
        with a.write() as t:
            t.resolve(c.id, restore_loser=True)
        with a.read() as t:
            self.assertEqual(list(t.conflicts()), [])
            self.assertTrue(t.conflict(c.id).resolved)
            self.assertNotEqual(t.get("contacts", ada, "phone"), winner)
        self.carry(a, b)
        self.assertEqual(a.export_json(), b.export_json())

    def test_batches_since_a_vector(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            t.create("contacts", name="One")
        data, info = a.batch_create()
        self.assertEqual((info.ops, info.commits, info.has_more), (2, 1, False))
        self.assertEqual(b.batch_apply(data).ops_new, 2)
        self.assertEqual(b.batch_apply(data).ops_known, 2)  # twice changes nothing
        with a.write() as t:
            t.create("contacts", name="Two")
        data, info = a.batch_create(since=b.vv())
        self.assertEqual(info.ops, 2)
        b.batch_apply(data)
        self.assertEqual(a.export_json(), b.export_json())
        text = kith.vv_format(a.vv())
        self.assertEqual(kith.vv_parse(text), a.vv())
        self.assertEqual(text, "%s:4" % kith.id_hex(a.id))

    def test_untrusted_and_malformed_batches_are_refused(self):
        a, b = self.open("a"), self.open("b")
        with a.write() as t:
            t.create("contacts", name="One")
        data, _ = a.batch_create()
        with self.assertRaises(kith.KithError) as cm:
            b.batch_apply(data)
        self.assertEqual(cm.exception.code, kith.EUNTRUSTED)
        with self.assertRaises(kith.KithError) as cm:
            b.batch_apply(b"not a batch")
        self.assertEqual(cm.exception.code, kith.EMALFORMED)
        self.assertEqual(b.vv(), {})


class Inspection(ReplicaCase):
    def test_status_log_verify_and_signatures(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            t.create("contacts", name="Ada")
        s = a.status()
        self.assertEqual((s.id, s.pubkey, s.vv), (a.id, a.pubkey, {a.id: 2}))
        self.assertEqual(s.collections["contacts"], 1)
        with a.read() as t:
            log = list(t.log())
        self.assertEqual([e.dot.seq for e in log], [1, 2])
        self.assertEqual(log[1].field, "name")
        self.assertEqual(log[1].value, "Ada")
        self.assertTrue(log[1].commit_end)
        rep = a.verify()
        self.assertEqual(rep.problems, 0, rep.first_problem)
        self.assertEqual(rep.ops_checked, 2)
        sig = a.sign("kithtest", b"hello")
        self.assertTrue(kith.sign_verify(a.pubkey, "kithtest", b"hello", sig))
        self.assertFalse(kith.sign_verify(a.pubkey, "kithtest", b"hellO", sig))
        peers = a.peers()
        self.assertEqual([(p.id, p.name, p.trusted) for p in peers], [(b.id, "b", True)])
        self.assertTrue(a.is_trusted(b.pubkey))
        a.untrust(b.id)
        self.assertFalse(a.is_trusted(b.pubkey))
        self.assertEqual(len(kith.schema_fingerprint()), 32)
        self.assertEqual(len(a.curve_keys()[0]), 32)
        self.assertEqual(kith.curve_public(a.pubkey), a.curve_keys()[0])

    def test_duration_format(self):
        self.assertEqual(kith.duration_format(8_000_000), "2 h 13 min")
        self.assertEqual(kith.duration_format(datetime.timedelta(seconds=45)), "45 s")
        self.assertEqual(kith.duration_format(-250), "-250 ms")


class Holds(ReplicaCase):
    def test_a_fresh_replica_holds_nothing(self):
        r = self.open("r")
        self.assertEqual(r.holds(), [])
        self.assertEqual(r.status().holds, [])
        info = r.apply_holds()
        self.assertEqual((info.ops_applied, info.ops_pending), (0, 0))
        self.assertEqual(r.vv(), {})

    def test_an_op_that_names_a_missing_one_is_held_until_it_arrives(self):
        a, b, c = self.open("a"), self.open("b"), self.open("c")
        for x, y in [(a, b), (a, c), (b, c)]:
            self.pair(x, y)
        with a.write() as t:
            ada = t.create("contacts", name="Ada")  # a:1 creates, a:2 sets the name
        b.batch_apply(a.batch_create()[0])
        with b.write() as t:
            t.set("contacts", ada, "name", "Ada L")  # b:1 overwrites a:2
        c.batch_apply(b.batch_create(since={a.id: 2})[0])  # b's op without a's
        holds = c.holds()
        self.assertEqual(holds, [kith.Hold(origin=b.id, ops=1, reason="dependency", ahead_ms=0,
                                           hlc=holds[0].hlc, missing=kith.Dot(a.id, 2))])
        self.assertGreater(holds[0].hlc, 0)
        s = c.status()
        self.assertEqual((s.pending_ops, s.holds), (1, holds))
        peers = {p.id: p for p in c.peers()}
        self.assertEqual((peers[b.id].held_ops, peers[b.id].held_ahead_ms), (1, 0))
        self.assertEqual(peers[a.id].held_ops, 0)
        info = c.apply_holds()  # a's op is still missing: nothing moves
        self.assertEqual((info.ops_applied, info.ops_pending), (0, 1))
        info = c.batch_apply(a.batch_create()[0])
        self.assertEqual((info.ops_applied, info.ops_pending), (3, 0))
        self.assertEqual(c.holds(), [])
        with c.read() as t:
            self.assertEqual(t.get("contacts", ada, "name"), "Ada L")


class Peers(ReplicaCase):
    def test_failures_mark_a_peer_failing_and_a_success_clears_it(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        p = a.peers()[0]
        self.assertEqual((p.failures, p.failing, p.held_ops, p.held_ahead_ms), (0, False, 0, 0))
        # no handshake yet: its schema is unknown
        self.assertEqual((p.schema_version, p.schema_digest), (0, bytes(32)))
        a.peer_record(b.id, error="no answer", failing_after=2)
        p = a.peers()[0]
        self.assertEqual((p.failures, p.failing, p.last_error), (1, False, "no answer"))
        a.peer_record(b.id, error="no answer", failing_after=2)
        self.assertEqual((a.peers()[0].failures, a.peers()[0].failing), (2, True))
        a.peer_record(b.id, acked={}, cursor=0)
        p = a.peers()[0]
        self.assertEqual((p.failures, p.failing, p.last_error), (0, False, ""))
        self.assertGreater(p.last_sync_ms, 0)
        for _ in range(kith.FAILING_AFTER - 1):
            a.peer_record(b.id, error="refused")
        self.assertFalse(a.peers()[0].failing)
        a.peer_record(b.id, error="refused")
        self.assertTrue(a.peers()[0].failing)
        with self.assertRaises(kith.KithError) as cm:
            a.peer_record(12345, error="x")
        self.assertEqual(cm.exception.code, kith.ENOTFOUND)


class Schema(ReplicaCase):
    def test_schema_info_is_a_version_and_a_digest(self):
        r = self.open("r")
        version, digest = r.schema_info()
        self.assertIsInstance(version, int)
        self.assertEqual(len(digest), 32)
