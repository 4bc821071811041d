"""The change feed (kith.Feed, kith_feed_*): commits listed in apply order with what they
wrote, a cursor that resumes, a descriptor for selectors woken by another process's commit,
remote commits with their origin, read-only replicas, and feeds closed with their replica."""

import os
import selectors
import subprocess
import sys
import textwrap

import kith
from tests.helpers import ReplicaCase

BINDING = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


class Feed(ReplicaCase):
    def test_lists_commits_in_order_with_what_they_wrote(self):
        r = self.open("a")
        with r.write() as t:
            ada = t.create("contacts", name="Ada", tags={"math"})
        with r.write() as t:
            t.set("contacts", ada, "phone", "1")
            t.set("contacts", ada, "notes", "n")
        with r.write() as t:
            t.delete("contacts", ada)
        with r.feed() as f:
            evs = list(f)
            self.assertEqual(f.cursor, 3)
        self.assertEqual([e.cursor for e in evs], [1, 2, 3])
        self.assertTrue(all(e.local and e.source == kith.CHANGE_LOCAL for e in evs))
        self.assertTrue(all(e.origin == r.id for e in evs))
        d0 = evs[0].docs[0]
        self.assertEqual((d0.collection, d0.doc, d0.created, d0.deleted),
                         ("contacts", ada, True, False))
        self.assertEqual(d0.fields, ("name", "tags"))
        self.assertEqual(evs[1].docs[0].fields, ("notes", "phone"))
        self.assertEqual(evs[1].last_seq - evs[1].first_seq, 1)
        self.assertTrue(evs[2].docs[0].deleted)

    def test_a_cursor_resumes_and_now_starts_at_the_end(self):
        r = self.open("a")
        for i in range(5):
            with r.write() as t:
                t.create("contacts", name="c%d" % i)
        with r.feed() as f:
            self.assertEqual(f.next().cursor, 1)
            self.assertEqual(f.next().cursor, 2)
            saved = f.cursor
        with r.feed(since=saved) as f:
            self.assertEqual([e.cursor for e in f], [3, 4, 5])
        with r.feed(since="now") as f:
            self.assertIsNone(f.next())
            self.assertEqual(f.cursor, 5)
        with r.feed(since=kith.FEED_NOW) as f:
            self.assertEqual(f.cursor, 5)
        with self.assertRaises(kith.KithError) as e:
            r.feed(since=6)
        self.assertEqual(e.exception.code, kith.EINVAL)
        self.assertIn("past", e.exception.errmsg)

    def test_selectors_wake_for_a_commit_of_another_process(self):
        r = self.open("a")
        path = os.path.join(self.dir, "a")
        with r.feed(since="now") as f:
            sel = selectors.DefaultSelector()
            sel.register(f, selectors.EVENT_READ)
            self.assertEqual(sel.select(timeout=0), [], "nothing yet")
            script = textwrap.dedent("""
                import sys
                sys.path.insert(0, %r)
                import kith
                with kith.Replica(%r) as r:
                    with r.write() as t:
                        t.create("contacts", name="from another process")
            """ % (BINDING, path))
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                 timeout=120)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(len(sel.select(timeout=10)), 1, "the descriptor woke")
            evs = list(f)
            self.assertEqual(len(evs), 1)
            self.assertTrue(evs[0].docs[0].created)
            self.assertTrue(evs[0].local, "made by this replica, in another process")
            self.assertEqual(sel.select(timeout=0), [], "drained by reading the feed")
            self.assertFalse(f.wait(0))
            sel.close()

    def test_remote_commits_carry_their_origin(self):
        a, b = self.open("a"), self.open("b")
        self.pair(a, b)
        with a.write() as t:
            t.create("contacts", name="from a")
        with b.feed(since="now") as f:
            self.carry(a, b)
            self.assertTrue(f.wait(10))
            evs = list(f.follow(timeout=0))
        self.assertEqual(len(evs), 1)
        self.assertEqual(evs[0].source, kith.CHANGE_REMOTE)
        self.assertFalse(evs[0].local)
        self.assertEqual(evs[0].origin, a.id)

    def test_read_only_replica_and_close_order(self):
        w = self.open("a")
        with w.write() as t:
            t.create("contacts", name="x")
        ro = kith.Replica(os.path.join(self.dir, "a"), readonly=True)
        f = ro.feed()
        self.assertEqual([e.cursor for e in f], [1])
        ro.close()
        with self.assertRaises(ValueError):
            f.next()  # closed with its replica, not left dangling
        f.close()
