"""Feed: the change feed of include/kith.h (kith_feed_*), every commit applied to a replica by
any process — this one's writes, another process's, a daemon's applies — in the order the
replica applied it, from a cursor the app keeps across restarts.

    with r.feed(since=saved_cursor) as feed:
        sel = selectors.DefaultSelector()
        sel.register(feed, selectors.EVENT_READ)     # feed.fileno(): readable on any commit
        while True:
            for ev in feed:                          # what is there now; never blocks
                for d in ev.docs:
                    print(ev.cursor, d.collection, d.doc, d.fields)
                saved_cursor = ev.cursor
            sel.select()

An event lists what a commit *wrote*, not what changed: a write that lost to a concurrent one
is listed too. Re-read the documents it names.
"""

import ctypes
from ctypes import byref

from . import _ffi as ffi
from ._types import DocId, KithError, check

ENOTFOUND = -9002
ETIMEDOUT = -9017
FEED_NOW = ffi.KITH_FEED_NOW


class FeedDoc:
    """A document a commit touched: `collection`, `doc` (DocId), `created` and `deleted` (the
    commit added or removed it), and `fields`, the fields it wrote (a tuple of str, sorted)."""

    __slots__ = ("collection", "doc", "created", "deleted", "fields")

    def __init__(self, collection, doc, created, deleted, fields):
        self.collection, self.doc = collection, doc
        self.created, self.deleted, self.fields = created, deleted, fields

    def __repr__(self):
        flags = ("+" if self.created else "") + ("-" if self.deleted else "")
        return "FeedDoc(%s %s%s %s)" % (self.collection, self.doc, flags and " " + flags,
                                       ",".join(self.fields))


class FeedEvent:
    """One commit: `cursor` (resume after it with Replica.feed(since=cursor)), `source`
    (kith.CHANGE_LOCAL when this replica made it, in any process, else kith.CHANGE_REMOTE),
    `origin`, `first_seq`, `last_seq`, `hlc`, and `docs`, a list of FeedDoc in the order the
    commit first touched them."""

    __slots__ = ("cursor", "source", "origin", "first_seq", "last_seq", "hlc", "docs")

    def __init__(self, e):
        self.cursor, self.source, self.origin = e.cursor, e.source, e.origin
        self.first_seq, self.last_seq, self.hlc = e.first_seq, e.last_seq, e.hlc
        self.docs = []
        for i in range(e.ndocs):
            d = e.docs[i]
            fields = tuple(d.fields[j].decode() for j in range(d.nfields))
            self.docs.append(FeedDoc(d.collection.decode(), DocId.from_c(d.doc), bool(d.created),
                                     bool(d.deleted), fields))

    @property
    def local(self):
        return self.source == ffi.KITH_CHANGE_LOCAL

    def __repr__(self):
        return "FeedEvent(cursor=%d, origin=%016x, seqs=%d..%d, docs=%r)" % (
            self.cursor, self.origin, self.first_seq, self.last_seq, self.docs)


class Feed:
    """A change feed of `replica` (kith_feed_open) after cursor `since`: 0 for every commit,
    kith.FEED_NOW (or "now") for those applied from now on. Iterating it yields the events
    there are now and stops when it has caught up (it never blocks); fileno() makes it
    usable with select, selectors and event loops (readable when any process commits);
    wait() blocks; follow() yields events as they come. A context manager; the replica's
    close() closes its feeds first. Belongs to one thread at a time."""

    def __init__(self, replica, since=0):
        if since == "now":
            since = FEED_NOW
        self._replica = replica
        self._h = None
        h = ctypes.c_void_p()
        rc = ffi.kith_feed_open(replica.handle, since, byref(h))
        check(rc, replica.handle, "kith_feed_open")
        self._h = h
        self._event = ffi.slack(ffi.kith_feed_event)

    @property
    def handle(self):
        if not self._h:
            raise ValueError("the feed is closed")
        return self._h

    def close(self):
        """Close the feed and its descriptor (kith_feed_close). Idempotent."""
        if self._h:
            ffi.kith_feed_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            replica = getattr(self, "_replica", None)
            if getattr(self, "_h", None) and replica is not None and replica._h:
                self.close()
        except Exception:
            pass

    def fileno(self):
        """The descriptor to wait on (kith_feed_fd): readable when any process commits to the
        replica. Read the feed until it has caught up, which drains it. Do not read or close
        it yourself."""
        return ffi.kith_feed_fd(self.handle)

    @property
    def cursor(self):
        """The cursor of the last event handed out (or where the feed started): store it to
        resume after a restart."""
        return ffi.kith_feed_cursor(self.handle)

    def next(self):
        """The next FeedEvent, or None when the feed has caught up (kith_feed_next)."""
        rc = ffi.kith_feed_next(self.handle, byref(self._event))
        if rc == ENOTFOUND:
            return None
        check(rc, self._replica.handle, "kith_feed_next")
        return FeedEvent(self._event)

    def __iter__(self):
        return self

    def __next__(self):
        ev = self.next()
        if ev is None:
            raise StopIteration
        return ev

    def wait(self, timeout=None):
        """Block until there may be an event (True) or `timeout` seconds pass (False);
        kith_feed_wait. None waits as long as it takes."""
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        while True:
            rc = ffi.kith_feed_wait(self.handle, ms)
            if rc == -4:  # -EINTR: a signal; Python ran its handlers, so look again
                continue
            if rc == ETIMEDOUT:
                return False
            check(rc, self._replica.handle, "kith_feed_wait")
            return True

    def follow(self, timeout=None):
        """Yield events as they are applied, waiting between them; stop once `timeout`
        seconds pass without one (None: never)."""
        while True:
            ev = self.next()
            if ev is not None:
                yield ev
            elif not self.wait(timeout):
                return


__all__ = ["FEED_NOW", "Feed", "FeedDoc", "FeedEvent", "KithError"]
