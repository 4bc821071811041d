"""kith for Python: a ctypes binding of libkith (include/kith.h).

    import kith
    with kith.Replica("/tmp/laptop", create=True) as r:
        with r.write() as t:                       # commits here, or aborts on an exception
            ada = t.create("contacts", name="Ada Lovelace", tags={"math"})
        with r.read() as t:
            print(t.doc("contacts", ada))

Values map to Python types: strings and enums to str, times to aware UTC datetimes, dates to
datetime.date, booleans to bool, references to DocId, set fields to Python sets. Failures raise
KithError with the library's code, name, message and the replica's detail. The library is
$KITH_LIBRARY if set, else a build/ beside this source tree, else the system's libkith.so.1.
"""

from . import _ffi
from ._replica import (FieldDef, Replica, Server, Txn, crm_schema, curve_public,
                       id_from_pubkey, parse_value, schema, schema_fingerprint, sign_verify)
from ._types import (ERRORS, Change, DocId, Dot, Hold, KithError, duration_format, id_hex,
                     time_format, time_from_ms, time_to_ms, vv_format, vv_parse)
from ._feed import FEED_NOW, Feed, FeedDoc, FeedEvent
from ._replica import Progress
from ._types import Cancelled

# KITH_E* codes as module constants (kith.ESCHEMA == -9006), from the library's own table
for _code, _name in ERRORS.items():
    globals()[_name[len("KITH_"):]] = _code
del _code, _name

TYPE_NULL = _ffi.KITH_TYPE_NULL
TYPE_STRING = _ffi.KITH_TYPE_STRING
TYPE_INT = _ffi.KITH_TYPE_INT
TYPE_TIME = _ffi.KITH_TYPE_TIME
TYPE_BOOL = _ffi.KITH_TYPE_BOOL
TYPE_BYTES = _ffi.KITH_TYPE_BYTES
TYPE_REF = _ffi.KITH_TYPE_REF
TYPE_DATE = _ffi.KITH_TYPE_DATE
TYPE_ENUM = _ffi.KITH_TYPE_ENUM
TYPE_SET = _ffi.KITH_TYPE_SET

CHANGE_LOCAL = _ffi.KITH_CHANGE_LOCAL
CHANGE_REMOTE = _ffi.KITH_CHANGE_REMOTE

LOG_ERROR = _ffi.KITH_LOG_ERROR
LOG_WARNING = _ffi.KITH_LOG_WARNING
LOG_INFO = _ffi.KITH_LOG_INFO
LOG_DEBUG = _ffi.KITH_LOG_DEBUG

FAILING_AFTER = _ffi.KITH_FAILING_AFTER

HOLD_CLOCK = _ffi.KITH_HOLD_CLOCK
HOLD_DEPENDENCY = _ffi.KITH_HOLD_DEPENDENCY
HOLD_READY = _ffi.KITH_HOLD_READY

PROGRESS_BUILD = _ffi.KITH_PROGRESS_BUILD
PROGRESS_APPLY = _ffi.KITH_PROGRESS_APPLY
PROGRESS_SYNC = _ffi.KITH_PROGRESS_SYNC
PROGRESS_VERIFY = _ffi.KITH_PROGRESS_VERIFY


def version():
    """The library's version, "MAJOR.MINOR.PATCH" (kith_version)."""
    return _ffi.kith_version().decode()


__all__ = [
    "Change", "DocId", "Dot", "ERRORS", "FieldDef", "Hold", "KithError", "Replica", "Server",
    "Txn", "crm_schema", "curve_public", "duration_format", "id_from_pubkey", "id_hex", "parse_value",
    "schema", "schema_fingerprint", "sign_verify", "time_format", "time_from_ms",
    "time_to_ms", "version", "vv_format", "vv_parse",
]
__all__ += ["FEED_NOW", "Feed", "FeedDoc", "FeedEvent"]
__all__ += ["Cancelled", "Progress"]
