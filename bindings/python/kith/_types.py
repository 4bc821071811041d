"""Python values for kith's: errors, document ids, field values, and the records the library
returns (peers, status, reports), converted from the structs in _ffi."""

import collections
import ctypes
import datetime

from . import _ffi as ffi

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MS = datetime.timedelta(milliseconds=1)

# ---- errors ------------------------------------------------------------------------------------

ERRORS = ffi.error_table()  # {-9001: "KITH_EINVAL", ...}


class KithError(Exception):
    """A call failed. `code` is the negative return value (a KITH_E* code or -errno), `name`
    its kith_errname ("KITH_ESCHEMA", "EACCES"), `strerror` its kith_strerror, and `errmsg`
    the replica's kith_errmsg detail at the time ("" when there is none)."""

    def __init__(self, code, errmsg="", what=None):
        self.code = code
        self.name = ffi.kith_errname(code).decode()
        self.strerror = ffi.kith_strerror(code).decode()
        self.errmsg = errmsg
        self.what = what
        text = "%s: %s" % (self.name, self.strerror)
        if errmsg:
            text += " (%s)" % errmsg
        if what:
            text = "%s: %s" % (what, text)
        super().__init__(text)


class Cancelled(KithError):
    """A long call stopped because its progress callback said so (KITH_ECANCELED), with
    nothing half done (Replica.set_progress)."""


ECANCELED = -9021


def check(rc, replica=None, what=None):
    """Raise KithError (Cancelled for KITH_ECANCELED) for a negative return code; return rc
    otherwise. Call it in the thread that made the failing call, right after it: kith_errmsg
    is per thread."""
    if rc < 0:
        msg = ""
        if replica:
            msg = (ffi.kith_errmsg(replica) or b"").decode("utf-8", "replace")
        raise (Cancelled if rc == ECANCELED else KithError)(rc, msg, what)
    return rc


# ---- ids -----------------------------------------------------------------------------------------


class DocId(bytes):
    """A document id: its 16 bytes, shown as 32 lowercase hex characters."""

    def __new__(cls, value):
        if isinstance(value, str):
            return cls.parse(value)
        value = bytes(value)
        if len(value) != ffi.KITH_DOCID_BYTES:
            raise ValueError("a document id has %d bytes" % ffi.KITH_DOCID_BYTES)
        return super().__new__(cls, value)

    @classmethod
    def parse(cls, text):
        out = ffi.kith_docid()
        check(ffi.kith_docid_parse(text.encode(), ctypes.byref(out)), what="kith_docid_parse")
        return cls(bytes(out.bytes))

    def to_c(self):
        out = ffi.kith_docid()
        ctypes.memmove(out.bytes, self, ffi.KITH_DOCID_BYTES)
        return out

    @classmethod
    def from_c(cls, docid):
        return cls(bytes(docid.bytes))

    def __str__(self):
        out = ctypes.create_string_buffer(ffi.KITH_DOCID_HEX + 1)
        ffi.kith_docid_format(ctypes.byref(self.to_c()), out)
        return out.value.decode()

    def __repr__(self):
        return "DocId(%r)" % str(self)


def docid_arg(doc):
    """A DocId, bytes or hex string as a kith_docid."""
    if not isinstance(doc, DocId):
        doc = DocId(doc)
    return doc.to_c()


def id_hex(replica_id):
    return "%016x" % replica_id


# ---- times ---------------------------------------------------------------------------------------


def time_from_ms(ms):
    """Milliseconds since the epoch as an aware UTC datetime."""
    return _EPOCH + ms * _MS


def time_to_ms(t):
    """An aware datetime (a naive one is taken as UTC) or int milliseconds as milliseconds."""
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=datetime.timezone.utc)
        return (t - _EPOCH) // _MS
    return int(t)


def time_format(t):
    """ISO 8601 UTC with milliseconds, as kith_time_format writes it."""
    out = ctypes.create_string_buffer(32)
    ffi.kith_time_format(time_to_ms(t), out)
    return out.value.decode()


def duration_format(ms):
    """A span of milliseconds (or a datetime.timedelta) for people, in its two largest units,
    as kith_duration_format writes it: "2 h 13 min", "45 s", "-250 ms"."""
    if isinstance(ms, datetime.timedelta):
        ms = ms // _MS
    out = ctypes.create_string_buffer(32)
    ffi.kith_duration_format(int(ms), out)
    return out.value.decode()


# ---- values --------------------------------------------------------------------------------------

_STRINGY = (ffi.KITH_TYPE_STRING, ffi.KITH_TYPE_DATE, ffi.KITH_TYPE_ENUM, ffi.KITH_TYPE_BYTES)


def _infer_type(py):
    if py is None:
        return ffi.KITH_TYPE_NULL
    if isinstance(py, bool):
        return ffi.KITH_TYPE_BOOL
    if isinstance(py, int):
        return ffi.KITH_TYPE_INT
    if isinstance(py, datetime.datetime):
        return ffi.KITH_TYPE_TIME
    if isinstance(py, datetime.date):
        return ffi.KITH_TYPE_DATE
    if isinstance(py, DocId):
        return ffi.KITH_TYPE_REF
    if isinstance(py, str):
        return ffi.KITH_TYPE_STRING
    if isinstance(py, (bytes, bytearray, memoryview)):
        return ffi.KITH_TYPE_BYTES
    raise TypeError("no kith type for %s" % type(py).__name__)


_FITS = {
    ffi.KITH_TYPE_STRING: (str,),
    ffi.KITH_TYPE_ENUM: (str,),
    ffi.KITH_TYPE_DATE: (str, datetime.date),
    ffi.KITH_TYPE_TIME: (datetime.datetime, int),
    ffi.KITH_TYPE_INT: (int,),
    ffi.KITH_TYPE_BOOL: (bool,),
    ffi.KITH_TYPE_BYTES: (bytes, bytearray, memoryview),
    ffi.KITH_TYPE_REF: (DocId, bytes, str),
}


def to_value(py, ftype=None):
    """A Python value as a kith_value. With `ftype` (the field's type) a Python value that fits
    it is converted to it (a str for a REF is hex, a date for a DATE); any other value gets the
    type its Python type suggests, and the library judges it (KITH_ESCHEMA). The returned
    struct keeps the bytes it points at alive."""
    v = ffi.kith_value()
    if ftype is not None and py is not None and isinstance(py, _FITS.get(ftype, ())) and not (
            ftype != ffi.KITH_TYPE_BOOL and isinstance(py, bool)):
        t = ftype
    else:
        t = _infer_type(py)
    v.type = t
    if t == ffi.KITH_TYPE_NULL:
        return v
    if t in (ffi.KITH_TYPE_INT, ffi.KITH_TYPE_TIME):
        v.u.i = time_to_ms(py) if t == ffi.KITH_TYPE_TIME else int(py)
    elif t == ffi.KITH_TYPE_BOOL:
        v.u.b = bool(py)
    elif t == ffi.KITH_TYPE_REF:
        v.u.ref = docid_arg(py)
    else:
        if isinstance(py, datetime.date):
            py = py.isoformat()
        raw = py.encode("utf-8") if isinstance(py, str) else bytes(py)
        buf = ctypes.create_string_buffer(raw, len(raw))
        v.u.s.ptr = ctypes.cast(buf, ctypes.c_void_p)
        v.u.s.len = len(raw)
        v._keep = buf
    return v


def from_value(v):
    """A kith_value (a view) as a Python value that owns its data: None, str, int, bool,
    bytes, DocId, an aware UTC datetime (TIME), a datetime.date (DATE; a yearless "--MM-DD"
    date stays a str)."""
    t = v.type
    if t == ffi.KITH_TYPE_NULL:
        return None
    if t == ffi.KITH_TYPE_INT:
        return v.u.i
    if t == ffi.KITH_TYPE_TIME:
        return time_from_ms(v.u.i)
    if t == ffi.KITH_TYPE_BOOL:
        return bool(v.u.b)
    if t == ffi.KITH_TYPE_REF:
        return DocId.from_c(v.u.ref)
    if t in _STRINGY:
        raw = ctypes.string_at(v.u.s.ptr, v.u.s.len) if v.u.s.len else b""
        if t == ffi.KITH_TYPE_BYTES:
            return raw
        text = raw.decode("utf-8")
        if t == ffi.KITH_TYPE_DATE and not text.startswith("--"):
            return datetime.date.fromisoformat(text)
        return text
    raise ValueError("unknown kith type %d" % t)


# ---- version vectors -----------------------------------------------------------------------------


def vv_from_c(vv):
    """A kith_vv as {origin: seq}."""
    return {vv.entries[i].origin: vv.entries[i].seq for i in range(vv.len)}


def vv_to_c(d):
    """{origin: seq} (or the text form "origin:seq,...") as a kith_vv that keeps its entries
    alive; None stays None."""
    if d is None:
        return None
    if isinstance(d, str):
        d = vv_parse(d)
    items = sorted(d.items())
    arr = (ffi.kith_dot * max(len(items), 1))()
    for i, (origin, seq) in enumerate(items):
        arr[i].origin = origin
        arr[i].seq = seq
    vv = ffi.kith_vv(len(items), ctypes.cast(arr, ctypes.POINTER(ffi.kith_dot)))
    vv._keep = arr
    return vv


def vv_parse(text):
    vv = ffi.kith_vv()
    check(ffi.kith_vv_parse(text.encode(), ctypes.byref(vv)), what="kith_vv_parse")
    try:
        return vv_from_c(vv)
    finally:
        ffi.kith_vv_free(ctypes.byref(vv))


def vv_format(d):
    out = ctypes.c_void_p()
    check(ffi.kith_vv_format(ctypes.byref(vv_to_c(d)), ctypes.byref(out)), what="kith_vv_format")
    try:
        return ctypes.string_at(out).decode()
    finally:
        ffi.kith_free(out)


# ---- records: one namedtuple per struct, its fields converted ----------------------------------

Dot = collections.namedtuple("Dot", "origin seq")
Change = collections.namedtuple("Change", "source docs")  # docs: [(collection, DocId)]
_records = {}


def _convert(value, ctype):
    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        if ctype._type_ is ctypes.c_char:
            return value.decode("utf-8", "replace")  # ctypes stops at the NUL
        return bytes(value)
    if ctype is ffi.kith_vv:
        return vv_from_c(value)
    if ctype is ffi.kith_docid:
        return DocId.from_c(value)
    if ctype is ffi.kith_dot:
        return Dot(value.origin, value.seq)
    if ctype is ffi.kith_value:
        return from_value(value)
    if ctype is ctypes.c_char_p:
        return None if value is None else value.decode()
    return value


HOLD_REASONS = {ffi.KITH_HOLD_CLOCK: "clock", ffi.KITH_HOLD_DEPENDENCY: "dependency",
                ffi.KITH_HOLD_READY: "ready"}
Hold = collections.namedtuple("Hold", "origin ops reason ahead_ms hlc missing")


def hold(h):
    """A kith_hold as a Hold: `reason` named ("clock", "dependency", "ready"; a number this
    binding does not know stays an int), `missing` a Dot, or None when it is {0, 0}."""
    missing = Dot(h.missing.origin, h.missing.seq) if h.missing.origin or h.missing.seq else None
    return Hold(h.origin, h.ops, HOLD_REASONS.get(h.reason, h.reason), h.ahead_ms, h.hlc,
                missing)


def record(struct, name, skip=()):
    """A namedtuple `name` of every field of `struct` (the ones in `skip` left out), converted
    to Python: char arrays to str, byte arrays to bytes, vectors to dicts, values to Python."""
    fields = [(f[0], f[1]) for f in type(struct)._fields_ if f[0] not in skip]
    cls = _records.get(name)
    if cls is None:
        cls = _records[name] = collections.namedtuple(name, [f for f, _ in fields])
    return cls(*[_convert(getattr(struct, f), t) for f, t in fields])
