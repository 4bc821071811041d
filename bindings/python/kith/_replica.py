"""Replica, Txn and Server: the Pythonic layer over the handles of include/kith.h.

A Replica is a context manager that closes its handle; a Txn commits when its `with` block
ends normally and aborts when it raises. The thread rules are the library's: a Txn belongs to
the thread that began it, and a thread has at most one open. Every read converts the library's
views into Python objects at once, so nothing read outlives its transaction.
"""

import collections
import contextlib
import ctypes
import json
import os
import threading
import weakref
from ctypes import byref

from . import _ffi as ffi
from ._types import (Change, DocId, KithError, check, docid_arg, from_value, hold, record,
                     to_value, vv_from_c, vv_to_c)

ENOTFOUND = -9002


def _b(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else s.encode()


def schema():
    """The built-in schema: {collection: {field: FieldDef}} in the library's order."""
    n = ctypes.c_size_t()
    cols = ffi.kith_schema(byref(n))
    out = {}
    for i in range(n.value):
        c = cols[i]
        fields = {}
        for j in range(c.nfields):
            f = c.fields[j]
            enum = []
            if f.enum_values:
                k = 0
                while f.enum_values[k] is not None:
                    enum.append(f.enum_values[k].decode())
                    k += 1
            fd = FieldDef(f.name.decode(), f.type, bool(f.required),
                          f.ref_collection.decode() if f.ref_collection else None, tuple(enum),
                          f.max_len)
            fields[fd.name] = fd
        out[c.name.decode()] = fields
    return out


class FieldDef:
    """One field of the schema: name, type (a kith.TYPE_* number), required, ref_collection,
    enum_values and max_len, as in kith_field_def."""

    __slots__ = ("name", "type", "required", "ref_collection", "enum_values", "max_len")

    def __init__(self, name, type, required, ref_collection, enum_values, max_len):
        self.name, self.type, self.required = name, type, required
        self.ref_collection, self.enum_values, self.max_len = ref_collection, enum_values, max_len

    def __repr__(self):
        return "FieldDef(%r, type=%d)" % (self.name, self.type)


_SCHEMA = schema()


def _field(collection, field):
    try:
        return _SCHEMA[collection][field]
    except KeyError:
        return None


class Replica:
    """An open replica (kith_open). `create` makes it if absent (KITH_CREATE); `nosync` and
    `readonly` are KITH_NOSYNC and KITH_RDONLY."""

    def __init__(self, path, create=False, nosync=False, readonly=False, schema=None):
        """`schema`, when given (a schema document as str or dict, e.g. crm_schema()), is
        declared at once (kith_schema_apply), as an app declares its schema at every open."""
        flags = ((ffi.KITH_CREATE if create else 0) | (ffi.KITH_NOSYNC if nosync else 0)
                 | (ffi.KITH_RDONLY if readonly else 0))
        self._h = None
        self._observers = None
        self._txns = weakref.WeakSet()
        h = ctypes.c_void_p()
        rc = ffi.kith_open(os.fsencode(path), flags, byref(h))
        if rc < 0:
            # kith_errmsg(NULL): why this thread's last kith_open failed
            raise KithError(rc, (ffi.kith_errmsg(None) or b"").decode("utf-8", "replace"),
                            "kith_open")
        self._h = h
        if schema is not None:
            try:
                self.apply_schema(schema)
            except KithError:
                self.close()
                raise

    # -- lifetime --

    def close(self):
        """Close the handle (kith_close). Transactions of it still open in this thread are
        aborted first; one open in another thread is an error (RuntimeError), since only its
        own thread may end it. Idempotent."""
        if self._h:
            me = threading.get_ident()
            for t in list(self._txns):
                if t.open and t.thread != me:
                    raise RuntimeError("a transaction of this replica is open in another thread")
            for t in list(self._txns):
                t.abort()
            for f in list(self.__dict__.get("_feeds", ())):
                f.close()  # a feed must not outlive its replica's handle
            if self._observers:
                ffi.kith_observe(self._h, ffi.kith_change_fn(), ffi.kith_conflict_fn(), None)
                self._observers = None
            ffi.kith_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_h", None):
                self.close()
        except Exception:
            pass  # at interpreter exit, or a transaction left open elsewhere

    @property
    def handle(self):
        if not self._h:
            raise ValueError("the replica is closed")
        return self._h

    def _check(self, rc, what):
        if rc == ECANCELED and self._progress_errors:  # the progress callback raised
            e = self._progress_errors.pop(threading.get_ident(), None)
            if e is not None:
                raise e
        return check(rc, self._h, what)

    # -- identity --

    @property
    def errmsg(self):
        """kith_errmsg: the detail of the calling thread's last failed call on this replica
        ("" if none). Per thread, and not cleared by a call that succeeds; KithError.errmsg
        holds it as it was right after the failure."""
        return ffi.kith_errmsg(self.handle).decode("utf-8", "replace")

    @property
    def id(self):
        """The replica id, an int (kith.id_hex(r.id) for its hex form)."""
        return ffi.kith_replica_id(self.handle)

    @property
    def pubkey(self):
        out = (ctypes.c_uint8 * ffi.KITH_PUBKEY_BYTES)()
        ffi.kith_replica_pubkey(self.handle, out)
        return bytes(out)

    @property
    def path(self):
        return ffi.kith_replica_path(self.handle).decode()

    def schema_info(self):
        """kith_schema_info: (version, digest) of the schema this replica declared, as its
        handshakes tell peers; (0, 32 zero bytes) when nothing is stored. A Peer record's
        schema_version and schema_digest are the same of a peer, as it last told them."""
        version = ctypes.c_uint64()
        digest = (ctypes.c_uint8 * ffi.KITH_HASH_BYTES)()
        self._check(ffi.kith_schema_info(self.handle, byref(version), digest),
                    "kith_schema_info")
        return version.value, bytes(digest)

    # -- transactions --

    def apply_schema(self, doc):
        """Declare or extend the schema (kith_schema_apply) from a schema document, a str or a
        dict; refused whole (KithError ESCHEMA naming the field) when it does not fit."""
        raw = (doc if isinstance(doc, str) else json.dumps(doc)).encode()
        self._check(ffi.kith_schema_apply(self.handle, raw, len(raw)), "kith_schema_apply")

    def schema_json(self):
        """The declared schema (kith_schema_json) as a dict, with its "version"."""
        buf = ffi.kith_buf()
        self._check(ffi.kith_schema_json(self.handle, byref(buf)), "kith_schema_json")
        try:
            return json.loads(ctypes.string_at(buf.data, buf.len))
        finally:
            ffi.kith_free(buf.data)

    def txn(self, write=False):
        """Begin a transaction (kith_txn_begin); use it as a context manager."""
        return Txn(self, write)

    def read(self):
        return Txn(self, False)

    def write(self):
        return Txn(self, True)

    # -- observers --

    def observe(self, on_change=None, on_conflict=None):
        """Call on_change(Change) after each commit through this handle, and on_conflict(Conflict)
        for each conflict recorded; None clears. Callbacks run in the committing thread (a
        serving thread too), after the commit is durable; they must not begin a write
        transaction on this replica. An exception in a callback is printed, not raised."""
        def change(_ctx, c):
            c = c.contents
            docs = [(c.docs[i].collection.decode(), DocId.from_c(c.docs[i].doc))
                    for i in range(c.ndocs)]
            on_change(Change(c.source, docs))

        def conflict(_ctx, c):
            on_conflict(record(c.contents, "Conflict"))

        cf = ffi.kith_change_fn(change) if on_change else ffi.kith_change_fn()
        kf = ffi.kith_conflict_fn(conflict) if on_conflict else ffi.kith_conflict_fn()
        ffi.kith_observe(self.handle, cf, kf, None)
        # the library holds the function pointers: keep the trampolines alive with the handle
        self._observers = (cf, kf) if (on_change or on_conflict) else None

    def feed(self, since=0):
        """A Feed of the commits applied after cursor `since` (0: all; kith.FEED_NOW or "now":
        from now on), by any process; see kith.Feed. Closed with the replica at the latest."""
        from ._feed import Feed
        f = Feed(self, since)
        self.__dict__.setdefault("_feeds", weakref.WeakSet()).add(f)
        return f

    # -- state --

    def vv(self):
        """The version vector, {origin: highest seq applied}."""
        vv = ffi.kith_vv()
        self._check(ffi.kith_vv_get(self.handle, byref(vv)), "kith_vv_get")
        try:
            return vv_from_c(vv)
        finally:
            ffi.kith_vv_free(byref(vv))

    def status(self):
        """kith_status_get as a Status record; `collections` is {collection: live documents},
        `holds` a list of Hold records, as holds() gives them (read with the counts)."""
        p = ctypes.POINTER(ffi.kith_status)()
        self._check(ffi.kith_status_get(self.handle, byref(p)), "kith_status_get")
        try:
            s = p.contents
            counts = {s.collections[i].collection.decode(): s.collections[i].live
                      for i in range(s.ncollections)}
            holds = [hold(s.holds[i]) for i in range(s.nholds)]
            forks = [record(s.forks[i], "Fork") for i in range(s.nforks)]
            return _status(s, counts, holds, forks)
        finally:
            ffi.kith_status_free(p)

    def forks(self):
        """The forked origins (kith_forks_get): a Fork record per origin, by origin; [] when
        none has forked."""
        arr = ctypes.POINTER(ffi.kith_fork)()
        n = ctypes.c_size_t()
        self._check(ffi.kith_forks_get(self.handle, byref(arr), byref(n)), "kith_forks_get")
        try:
            return [record(arr[i], "Fork") for i in range(n.value)]
        finally:
            ffi.kith_forks_free(arr, n)

    def holds(self):
        """The held ops (kith_holds_get): one Hold record per origin that has any, by origin;
        [] when nothing is held. A Hold has origin, ops, reason ("clock", "dependency" or
        "ready", from KITH_HOLD_*), ahead_ms, hlc, and missing (a Dot, or None unless the
        reason is "dependency")."""
        arr = ctypes.POINTER(ffi.kith_hold)()
        n = ctypes.c_size_t()
        self._check(ffi.kith_holds_get(self.handle, byref(arr), byref(n)), "kith_holds_get")
        try:
            return [hold(arr[i]) for i in range(n.value)]
        finally:
            ffi.kith_holds_free(arr, n)

    def apply_holds(self):
        """kith_holds_apply: apply the held commits whose turn has come; an ApplyInfo whose
        ops_applied counts what applied and ops_pending what still waits."""
        info = ffi.slack(ffi.kith_apply_info)
        self._check(ffi.kith_holds_apply(self.handle, byref(info)), "kith_holds_apply")
        return record(info, "ApplyInfo")

    def restored_accept(self):
        """kith_restored_accept: this replica was restored from a copy and no device holds its
        newer ops any more: write on at the next seq (a fork of its own origin wherever the
        lost ops still exist). status().restored_seq and its neighbours say whether it is marked."""
        self._check(ffi.kith_restored_accept(self.handle), "kith_restored_accept")

    def export_json(self):
        """The canonical JSON export (kith_export_json), as bytes."""
        buf = ffi.kith_buf()
        self._check(ffi.kith_export_json(self.handle, byref(buf)), "kith_export_json")
        try:
            return ctypes.string_at(buf.data, buf.len)
        finally:
            ffi.kith_free(buf.data)

    def verify(self):
        """kith_verify: a VerifyReport (look at .problems)."""
        rep = ffi.slack(ffi.kith_verify_report)
        self._check(ffi.kith_verify(self.handle, byref(rep)), "kith_verify")
        return record(rep, "VerifyReport")

    # -- batches and bundles --

    def batch_create(self, since=None, cursor=0, max_ops=0, max_bytes=0):
        """kith_batch_create: (bytes, BatchInfo) of the ops `since` ({origin: seq}) lacks."""
        opts = ffi.slack(ffi.kith_batch_opts)
        vv = vv_to_c(since)
        if vv is not None:
            opts.since = ctypes.pointer(vv)
        opts.cursor, opts.max_ops, opts.max_bytes = cursor, max_ops, max_bytes
        buf = ffi.kith_buf()
        info = ffi.slack(ffi.kith_batch_info)
        self._check(ffi.kith_batch_create(self.handle, byref(opts), byref(buf), byref(info)),
                    "kith_batch_create")
        try:
            return ctypes.string_at(buf.data, buf.len), record(info, "BatchInfo")
        finally:
            ffi.kith_free(buf.data)

    def batch_apply(self, data):
        """kith_batch_apply: verify and apply a batch, all or nothing; an ApplyInfo."""
        data = bytes(data)
        info = ffi.slack(ffi.kith_apply_info)
        self._check(ffi.kith_batch_apply(self.handle, data, len(data), byref(info)),
                    "kith_batch_apply")
        return record(info, "ApplyInfo")

    def bundle_write(self, path, since=None):
        """kith_bundle_write: the ops `since` lacks (None: all) to the file `path`."""
        vv = vv_to_c(since)
        info = ffi.slack(ffi.kith_batch_info)
        self._check(ffi.kith_bundle_write(self.handle, byref(vv) if vv is not None else None,
                                          os.fsencode(path), byref(info)), "kith_bundle_write")
        return record(info, "BatchInfo")

    def bundle_apply(self, path):
        """kith_bundle_apply: apply the bundle file `path`; an ApplyInfo."""
        info = ffi.slack(ffi.kith_apply_info)
        self._check(ffi.kith_bundle_apply(self.handle, os.fsencode(path), byref(info)),
                    "kith_bundle_apply")
        return record(info, "ApplyInfo")

    # -- trust and peers --

    def trust(self, pubkey, name=None, addr=None):
        """kith_trust_add: trust a replica's 32-byte public key (bytes or hex)."""
        pk = _pk(pubkey)
        self._check(ffi.kith_trust_add(self.handle, pk, _b(name), _b(addr)), "kith_trust_add")

    def untrust(self, replica_id):
        self._check(ffi.kith_trust_remove(self.handle, replica_id), "kith_trust_remove")

    def is_trusted(self, pubkey):
        return bool(ffi.kith_is_trusted(self.handle, _pk(pubkey)))

    def group_create(self, group_name, device_name):
        """kith_group_create: found a device group with this replica as its first member."""
        self._check(ffi.kith_group_create(self.handle, group_name.encode(), device_name.encode()),
                    "kith_group_create")

    def group(self):
        """kith_group_get: a Group record (in_group, id as hex, name, members, removed,
        records, self_removed, self_cutoff, needs_upgrade, digest)."""
        g = ffi.kith_group_info()
        self._check(ffi.kith_group_get(self.handle, byref(g)), "kith_group_get")
        return record(g, "Group")

    def devices(self):
        """kith_devices_get: every key the group admitted, as Device records (id, pubkey,
        name, added_by, added_ms, last_seen_ms, removed, cutoff, self); [] in no group."""
        arr = ctypes.POINTER(ffi.kith_device)()
        n = ctypes.c_size_t()
        self._check(ffi.kith_devices_get(self.handle, byref(arr), byref(n)), "kith_devices_get")
        try:
            return [record(arr[i], "Device") for i in range(n.value)]
        finally:
            ffi.kith_devices_free(arr, n)

    def rekey(self):
        """kith_rekey: take a new key, admitted to the group by the old one; after a fork this
        replica's own key lost, its set-aside edits are written again under the new key.
        Returns a Rekey record (old_id, new_id, rekeyed_ms, lost_fork, fork_seq, ops_aside,
        commits_reissued, ops_skipped, reissue_pending)."""
        ri = ffi.kith_rekey_info()
        self._check(ffi.kith_rekey(self.handle, byref(ri)), "kith_rekey")
        return record(ri, "Rekey")

    def rekeyed(self):
        """kith_rekey_get: the last re-key as a Rekey record, or None when there was none."""
        ri = ffi.kith_rekey_info()
        rc = ffi.kith_rekey_get(self.handle, byref(ri))
        self._check(rc, "kith_rekey_get")
        return record(ri, "Rekey") if rc > 0 else None

    def device_remove(self, device_id):
        """kith_device_remove: remove member `device_id` from the group; its ops after those
        this replica holds are refused everywhere."""
        self._check(ffi.kith_device_remove(self.handle, device_id), "kith_device_remove")

    def peers(self):
        """Every peer record (kith_peers_get), as Peer records, by id."""
        arr = ctypes.POINTER(ffi.kith_peer)()
        n = ctypes.c_size_t()
        self._check(ffi.kith_peers_get(self.handle, byref(arr), byref(n)), "kith_peers_get")
        try:
            return [record(arr[i], "Peer") for i in range(n.value)]
        finally:
            ffi.kith_peers_free(arr, n)

    def peer_record(self, peer_id, acked=None, cursor=0, error=None, failing_after=0):
        """kith_peer_record_ex: record a sync attempt with peer `peer_id`, a success when
        `error` is None. A failure marks the peer failing once its consecutive failures
        reach `failing_after` (0: kith.FAILING_AFTER); a success clears the mark."""
        vv = vv_to_c(acked)
        self._check(ffi.kith_peer_record_ex(self.handle, peer_id,
                                            byref(vv) if vv is not None else None, cursor,
                                            _b(error), failing_after), "kith_peer_record_ex")

    def curve_keys(self):
        """(public, secret) X25519 keys for ZeroMQ CURVE; the caller keeps the secret safe."""
        pub = (ctypes.c_uint8 * 32)()
        sec = (ctypes.c_uint8 * 32)()
        self._check(ffi.kith_curve_keys(self.handle, pub, sec), "kith_curve_keys")
        try:
            return bytes(pub), bytes(sec)
        finally:
            ctypes.memset(sec, 0, 32)

    def sign(self, context, msg):
        """kith_sign: a 64-byte signature of `msg` for the 8-byte `context`."""
        ctx = _context(context)
        msg = bytes(msg)
        sig = (ctypes.c_uint8 * ffi.KITH_SIG_BYTES)()
        self._check(ffi.kith_sign(self.handle, ctx, msg, len(msg), sig), "kith_sign")
        return bytes(sig)

    # -- sync --

    def sync(self, endpoint, peer_pk=None, timeout_ms=0):
        """One session with the peer at `endpoint` (kith_sync); a SyncInfo."""
        info = ffi.slack(ffi.kith_sync_info)
        pk = _pk(peer_pk) if peer_pk is not None else None
        self._check(ffi.kith_sync(self.handle, endpoint.encode(), pk, timeout_ms, byref(info)),
                    "kith_sync")
        return record(info, "SyncInfo")

    def invite(self, expires_ms=0, addrs=(), group_name=None, device_name=None):
        """A one-time invite code (kith_invite_create), as str: founds a group first when the
        replica is in none; `addrs` are the endpoints the joiner tries (none: where this
        replica's daemon last listened)."""
        o = ffi.kith_invite_opts()
        arr = (ctypes.c_char_p * max(len(addrs), 1))(*[a.encode() for a in addrs])
        o.expires_ms = expires_ms
        o.addrs = ctypes.cast(arr, ctypes.POINTER(ctypes.c_char_p))
        o.naddrs = len(addrs)
        o.group_name = group_name.encode() if group_name is not None else None
        o.device_name = device_name.encode() if device_name is not None else None
        code = ctypes.c_void_p()
        self._check(ffi.kith_invite_create(self.handle, byref(o), byref(code)),
                    "kith_invite_create")
        try:
            return ctypes.string_at(code).decode()
        finally:
            ffi.kith_free(code)

    def join(self, code, device_name=None, timeout_ms=0):
        """Join the group of the replica that made `code` (kith_join), then sync with it; a
        JoinInfo (group_id, inviter_id, endpoint, sync: a SyncInfo)."""
        info = ffi.slack(ffi.kith_join_info)
        name = device_name.encode() if device_name is not None else None
        self._check(ffi.kith_join(self.handle, code.encode(), name, timeout_ms, byref(info)),
                    "kith_join")
        return JoinInfo(info.group_id.decode(), info.inviter_id, info.endpoint.decode(),
                        record(info.sync, "SyncInfo"))

    def serve(self, listen=None, peers=(), on_listen=None, on_log=None, **opts):
        """Run kith_serve in a new thread; returns a started Server. `listen` is the endpoint
        to bind ("tcp://127.0.0.1:*" lets the kernel pick the port; Server.endpoint waits for
        it). on_listen(endpoint) is called once it listens. on_log(level, line), when given,
        receives each log line at or below log_level (a kith.LOG_* level and the message
        alone, as str) instead of stderr; it is called from the daemon's threads, one line at
        a time. Other keywords are the fields of kith_serve_opts: interval_ms, discover,
        log_level, log_json, timeout_ms, beacon_port, failing_after, handshake_ms."""
        return Server(self, listen, peers, on_listen, on_log, opts)

    # -- progress and cancellation (kith_progress_set) --

    _progress = None  # the ctypes callback, kept alive while set
    _progress_errors = None  # {thread id: exception the callback raised}

    def set_progress(self, fn):
        """Have fn(Progress) called during this replica's long calls (kith_progress_set):
        batch_create, bundle_write (op PROGRESS_BUILD), batch_apply, bundle_apply (APPLY),
        sync (SYNC), verify (VERIFY). Progress is (op, done, total): done never decreases,
        total is 0 while unknown, and the last call has done == total. fn returns True or
        None to go on, False to cancel: the call stops with nothing half done (an apply
        changes nothing, a bundle write leaves no file, a sync keeps whole batches) and raises
        kith.Cancelled. An exception fn raises cancels too, and is raised in its place (so
        Ctrl-C in the callback stops the call cleanly). fn None clears it. fn runs in the
        thread making the call, maybe inside the apply's write transaction: it must not use
        this replica. kith_serve's sessions never call it."""
        if fn is None:
            ffi.kith_progress_set(self.handle, ffi.kith_progress_fn(), None)
            self._progress = None
            return
        if self._progress_errors is None:
            self._progress_errors = {}
        errors = self._progress_errors

        def call(_ctx, p):
            try:
                go = fn(Progress(p.contents.op, p.contents.done, p.contents.total))
            except BaseException as e:  # noqa: B036 - handed back to the caller
                errors[threading.get_ident()] = e
                return 1
            return 1 if go is False else 0

        cb = ffi.kith_progress_fn(call)
        ffi.kith_progress_set(self.handle, cb, None)
        self._progress = cb

    @contextlib.contextmanager
    def progress(self, fn):
        """`with replica.progress(fn):` — set_progress(fn) for the block, cleared after it."""
        self.set_progress(fn)
        try:
            yield self
        finally:
            if self._h:
                self.set_progress(None)


Progress = collections.namedtuple("Progress", ["op", "done", "total"])
JoinInfo = collections.namedtuple("JoinInfo", ["group_id", "inviter_id", "endpoint", "sync"])
ECANCELED = -9021


_StatusT = collections.namedtuple(
    "Status", [f[0] for f in ffi.kith_status._fields_
               if f[0] not in ("ncollections", "nholds", "nforks")])


def _status(s, counts, holds, forks):
    """A Status record: kith_status's fields, `collections` as {collection: live count},
    `holds` as a list of Hold records, `forks` as a list of Fork records."""
    d = record(s, "_StatusFields", skip=("ncollections", "collections", "nholds",
                                         "holds", "nforks", "forks", "group"))._asdict()
    d["group"] = record(s.group, "Group")
    d["collections"] = counts
    d["holds"] = holds
    d["forks"] = forks
    return _StatusT(**d)


def _pk(pubkey):
    if isinstance(pubkey, str):
        pubkey = bytes.fromhex(pubkey)
    pubkey = bytes(pubkey)
    if len(pubkey) != ffi.KITH_PUBKEY_BYTES:
        raise ValueError("a public key has %d bytes" % ffi.KITH_PUBKEY_BYTES)
    return (ctypes.c_uint8 * ffi.KITH_PUBKEY_BYTES).from_buffer_copy(pubkey)


def _context(context):
    ctx = context.encode() if isinstance(context, str) else bytes(context)
    if len(ctx) != 8:
        raise ValueError("a signing context has 8 bytes")
    return ctx


def sign_verify(pubkey, context, msg, sig):
    """kith_sign_verify: True if `sig` is `pubkey`'s signature of `msg` for `context`."""
    msg = bytes(msg)
    sig = (ctypes.c_uint8 * ffi.KITH_SIG_BYTES).from_buffer_copy(bytes(sig))
    rc = ffi.kith_sign_verify(_pk(pubkey), _context(context), msg, len(msg), sig)
    if rc == -9004:  # KITH_EBADSIG
        return False
    check(rc, what="kith_sign_verify")
    return True


def id_from_pubkey(pubkey):
    return ffi.kith_id_from_pubkey(_pk(pubkey))


def curve_public(pubkey):
    out = (ctypes.c_uint8 * 32)()
    check(ffi.kith_curve_public(_pk(pubkey), out), what="kith_curve_public")
    return bytes(out)


def crm_schema():
    """The built-in CRM schema document (kith_schema_crm), as a str."""
    return ffi.kith_schema_crm().decode()


def schema_fingerprint():
    out = (ctypes.c_uint8 * ffi.KITH_HASH_BYTES)()
    ffi.kith_schema_fingerprint(out)
    return bytes(out)


def parse_value(collection, field, text):
    """kith_value_parse: `text` as the field's type would be read by the CLI, as Python."""
    v = ffi.kith_value()
    why = ctypes.create_string_buffer(256)
    raw = text.encode()
    rc = ffi.kith_value_parse(collection.encode(), field.encode(), raw, byref(v), why, 256)
    if rc < 0:
        raise KithError(rc, why.value.decode("utf-8", "replace"), "kith_value_parse")
    return from_value(v)


# ---- transactions ------------------------------------------------------------------------------


class _Iter:
    """One kith_iter, closed when exhausted, when closed, or when its transaction ends."""

    def __init__(self, txn, handle, step):
        self._txn, self._h, self._step = txn, handle, step
        txn._iters.add(self)

    def __iter__(self):
        return self

    def __next__(self):
        if not self._h:
            raise StopIteration
        try:
            item = self._step(self._h)
        except BaseException:
            self.close()
            raise
        if item is _END:
            self.close()
            raise StopIteration
        return item

    def close(self):
        if self._h:
            ffi.kith_iter_close(self._h)
            self._h = None
            self._txn._iters.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_END = object()


class Txn:
    """A transaction (kith_txn_begin). As a context manager it commits a write transaction
    when the block ends normally and aborts when the block raises; a read transaction is
    always just ended. Iterators opened in it are closed before it ends."""

    def __init__(self, replica, write=False):
        self.replica = replica
        self.write = write
        self._iters = set()
        h = ctypes.c_void_p()
        check(ffi.kith_txn_begin(replica.handle,
                                 ffi.KITH_TXN_WRITE if write else ffi.KITH_TXN_READ, byref(h)),
              replica.handle, "kith_txn_begin")
        self._h = h
        self.thread = threading.get_ident()
        replica._txns.add(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self.write:
            self.commit()
        else:
            self.abort()

    @property
    def open(self):
        return bool(self._h)

    def _handle(self):
        if not self._h:
            raise ValueError("the transaction has ended")
        return self._h

    def _close_iters(self):
        for it in list(self._iters):
            it.close()

    def commit(self):
        """kith_txn_commit; the transaction ends whether or not it succeeds."""
        self._handle()
        self._close_iters()
        rc = ffi.kith_txn_commit(byref(self._h))
        self._h = ctypes.c_void_p()
        check(rc, self.replica._h, "kith_txn_commit")

    def abort(self):
        """kith_txn_abort; does nothing on an ended transaction."""
        if self._h:
            self._close_iters()
            ffi.kith_txn_abort(byref(self._h))
            self._h = ctypes.c_void_p()

    def _check(self, rc, what):
        return check(rc, self.replica._h, what)

    # -- documents and fields --

    def create(self, collection, **fields):
        """Create a document (kith_doc_create) and set `fields`; its DocId."""
        out = ffi.kith_docid()
        self._check(ffi.kith_doc_create(self._handle(), collection.encode(), byref(out)),
                    "kith_doc_create")
        doc = DocId.from_c(out)
        self.update(collection, doc, **fields)
        return doc

    def delete(self, collection, doc):
        self._check(ffi.kith_doc_delete(self._handle(), collection.encode(),
                                        byref(docid_arg(doc))), "kith_doc_delete")

    def exists(self, collection, doc):
        rc = self._check(ffi.kith_doc_exists(self._handle(), collection.encode(),
                                             byref(docid_arg(doc))), "kith_doc_exists")
        return rc == 1

    def set(self, collection, doc, field, value):
        """Set a field (kith_field_set); None clears it. For a set field, `value` is an iterable
        of strings and the set is made equal to it (elements added and removed)."""
        fd = _field(collection, field)
        if fd is not None and fd.type == ffi.KITH_TYPE_SET:
            want = {_elem_str(e) for e in (value or ())}
            have = set(self.members(collection, doc, field))
            for e in sorted(have - want):
                self.discard(collection, doc, field, e)
            for e in sorted(want - have):
                self.add(collection, doc, field, e)
            return
        v = to_value(value, fd.type if fd else None)
        self._check(ffi.kith_field_set(self._handle(), collection.encode(), byref(docid_arg(doc)),
                                       field.encode(), byref(v)), "kith_field_set")

    def update(self, collection, doc, **fields):
        for field, value in fields.items():
            self.set(collection, doc, field, value)

    def get(self, collection, doc, field):
        """Read a field (kith_field_get) as Python; a set field as a Python set."""
        fd = _field(collection, field)
        if fd is not None and fd.type == ffi.KITH_TYPE_SET:
            return set(self.members(collection, doc, field))
        v = ffi.kith_value()
        self._check(ffi.kith_field_get(self._handle(), collection.encode(), byref(docid_arg(doc)),
                                       field.encode(), byref(v)), "kith_field_get")
        return from_value(v)

    def doc(self, collection, doc):
        """Every field of a document, {field: value} in schema order (None where unset)."""
        if collection not in _SCHEMA:
            raise KithError(ENOTFOUND, "no collection %r" % collection)
        return {f: self.get(collection, doc, f) for f in _SCHEMA[collection]}

    def increment(self, collection, doc, field, delta=1):
        """Add `delta` to a counter field (kith_counter_add)."""
        self._check(ffi.kith_counter_add(self._handle(), collection.encode(),
                                         byref(docid_arg(doc)), field.encode(), int(delta)),
                    "kith_counter_add")

    def flag(self, collection, doc, field, on=True):
        """Set or clear a flag field (kith_flag_set); a set concurrent with a clear wins."""
        self._check(ffi.kith_flag_set(self._handle(), collection.encode(), byref(docid_arg(doc)),
                                      field.encode(), bool(on)), "kith_flag_set")

    def add(self, collection, doc, field, *elems):
        """Add elements to a set field (kith_set_add)."""
        for e in elems:
            raw = _elem_str(e).encode()
            self._check(ffi.kith_set_add(self._handle(), collection.encode(),
                                         byref(docid_arg(doc)), field.encode(), raw, len(raw)),
                        "kith_set_add")

    def discard(self, collection, doc, field, *elems):
        """Remove elements from a set field (kith_set_remove); absent ones are no error."""
        for e in elems:
            raw = _elem_str(e).encode()
            self._check(ffi.kith_set_remove(self._handle(), collection.encode(),
                                            byref(docid_arg(doc)), field.encode(), raw,
                                            len(raw)), "kith_set_remove")

    # -- iteration --

    def _next_doc(self, h):
        out = ffi.kith_docid()
        rc = ffi.kith_iter_next(h, byref(out))
        if rc == ENOTFOUND:
            return _END
        self._check(rc, "kith_iter_next")
        return DocId.from_c(out)

    def docs(self, collection):
        """Every live document of a collection, in id order (kith_iter_docs)."""
        h = ctypes.c_void_p()
        self._check(ffi.kith_iter_docs(self._handle(), collection.encode(), byref(h)),
                    "kith_iter_docs")
        return _Iter(self, h, self._next_doc)

    def index(self, name, eq=None, lo=None, hi=None):
        """Documents through an index ("contacts.name", ...) in index order (kith_iter_index);
        `eq` fixes the first field of a two-field index, `lo` (inclusive) and `hi` (exclusive)
        bound the last."""
        vals = [None if x is None else to_value(x) for x in (eq, lo, hi)]
        ptrs = [None if v is None else byref(v) for v in vals]
        h = ctypes.c_void_p()
        self._check(ffi.kith_iter_index(self._handle(), name.encode(), *ptrs, byref(h)),
                    "kith_iter_index")
        return _Iter(self, h, self._next_doc)

    def members(self, collection, doc, field):
        """The elements of a set field as str, in byte order (kith_iter_set)."""
        h = ctypes.c_void_p()
        self._check(ffi.kith_iter_set(self._handle(), collection.encode(), byref(docid_arg(doc)),
                                      field.encode(), byref(h)), "kith_iter_set")

        def step(ih):
            p = ctypes.c_void_p()
            n = ctypes.c_size_t()
            rc = ffi.kith_iter_next_elem(ih, byref(p), byref(n))
            if rc == ENOTFOUND:
                return _END
            self._check(rc, "kith_iter_next_elem")
            return ctypes.string_at(p, n.value).decode("utf-8") if n.value else ""

        return _Iter(self, h, step)

    def conflicts(self, include_resolved=False):
        """Conflict records (kith_iter_conflicts)."""
        h = ctypes.c_void_p()
        self._check(ffi.kith_iter_conflicts(self._handle(), include_resolved, byref(h)),
                    "kith_iter_conflicts")

        def step(ih):
            c = ffi.slack(ffi.kith_conflict)
            rc = ffi.kith_iter_next_conflict(ih, byref(c))
            if rc == ENOTFOUND:
                return _END
            self._check(rc, "kith_iter_next_conflict")
            return record(c, "Conflict")

        return _Iter(self, h, step)

    def conflict(self, conflict_id):
        c = ffi.slack(ffi.kith_conflict)
        self._check(ffi.kith_conflict_get(self._handle(), conflict_id, byref(c)),
                    "kith_conflict_get")
        return record(c, "Conflict")

    def resolve(self, conflict_id, restore_loser=False):
        """kith_conflict_resolve, in a write transaction."""
        self._check(ffi.kith_conflict_resolve(self._handle(), conflict_id, restore_loser),
                    "kith_conflict_resolve")

    def log(self, origin=0):
        """The op log of one origin (0: all), as LogEntry records (kith_iter_log)."""
        h = ctypes.c_void_p()
        self._check(ffi.kith_iter_log(self._handle(), origin, byref(h)), "kith_iter_log")

        def step(ih):
            e = ffi.slack(ffi.kith_log_entry)
            rc = ffi.kith_iter_next_log(ih, byref(e))
            if rc == ENOTFOUND:
                return _END
            self._check(rc, "kith_iter_next_log")
            return record(e, "LogEntry")

        return _Iter(self, h, step)


def _elem_str(e):
    return str(e) if isinstance(e, DocId) else e


# ---- the daemon in a thread --------------------------------------------------------------------


class Server:
    """kith_serve running in its own thread. `endpoint` waits until it listens and gives the
    endpoint it bound; stop() sets the stop flag, joins the thread and raises what kith_serve
    returned. A context manager that stops on exit."""

    def __init__(self, replica, listen, peers, on_listen, on_log, opts):
        self.replica = replica
        self._stop = ctypes.c_int(0)
        self._listening = threading.Event()
        self._endpoint = None
        self._user_on_listen = on_listen
        self._user_on_log = on_log
        self.rc = None
        self._errmsg = ""
        o = ffi.slack(ffi.kith_serve_opts)
        o.listen = _b(listen)
        peers = [p.encode() for p in peers]
        parr = (ctypes.c_char_p * max(len(peers), 1))(*peers)
        o.peers = ctypes.cast(parr, ctypes.POINTER(ctypes.c_char_p))
        o.npeers = len(peers)
        for k, v in opts.items():
            if k in ("listen", "peers", "npeers", "stop", "on_listen", "on_listen_arg", "on_log",
                     "on_log_arg") or not any(f[0] == k for f in ffi.kith_serve_opts._fields_):
                raise TypeError("serve() has no option %r" % k)
            setattr(o, k, v)
        o.stop = ctypes.pointer(self._stop)
        self._cb = ffi.kith_listen_fn(self._on_listen)
        o.on_listen = self._cb
        # the daemon calls on_log until kith_serve returns: the trampoline lives with self,
        # which the running thread holds
        self._log_cb = ffi.kith_log_fn(self._on_log) if on_log else ffi.kith_log_fn()
        o.on_log = self._log_cb
        self._opts, self._peers = o, parr  # alive as long as the thread runs
        self._thread = threading.Thread(target=self._run, name="kith-serve", daemon=True)
        self._thread.start()

    def _on_listen(self, _arg, endpoint):
        self._endpoint = endpoint.decode()
        self._listening.set()
        if self._user_on_listen:
            self._user_on_listen(self._endpoint)

    def _on_log(self, _arg, level, line):
        self._user_on_log(level, line.decode("utf-8", "replace"))

    def _run(self):
        rc = ffi.kith_serve(self.replica.handle, ctypes.byref(self._opts))
        if rc < 0:
            # kith_errmsg is per thread: read it here, in the thread that failed
            self._errmsg = (ffi.kith_errmsg(self.replica.handle) or b"").decode("utf-8",
                                                                                "replace")
        self.rc = rc
        self._listening.set()  # wake a waiter if it failed before listening

    def _check(self):
        if self.rc is not None and self.rc < 0:
            raise KithError(self.rc, self._errmsg, "kith_serve")

    def wait_listening(self, timeout=30):
        """The bound endpoint, once the daemon listens; KithError if kith_serve failed first."""
        if not self._listening.wait(timeout):
            raise TimeoutError("kith_serve did not listen within %s s" % timeout)
        if self._endpoint is None:
            self._thread.join()
            self._check()
            raise RuntimeError("kith_serve returned without listening")
        return self._endpoint

    @property
    def endpoint(self):
        return self.wait_listening()

    @property
    def running(self):
        return self._thread.is_alive()

    def stop(self, timeout=30):
        self._stop.value = 1
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("kith_serve did not stop within %s s" % timeout)
        self._check()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
