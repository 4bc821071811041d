"""The C side of the binding: loading libkith.so.2, the structs of include/kith.h mirrored
field for field, and the prototype of every KITH_API function.

Everything that must change when kith.h changes lives in this file. Structs are listed in the
header's order with the header's field names; a field appended to a C struct is appended here
(tests/test_layout.py compares every mirror with the library's own debug information). Structs
the caller allocates for C to read or fill are given zeroed slack behind them (see `slack`),
so a library newer than this file reads its appended fields as 0, the header's "default".
A function this file names but the library lacks (a library older than this file) is bound to
a stub that raises NotImplementedError when called, so the rest of the binding still loads.
"""

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, Union, c_bool, c_char, c_char_p, c_int,
                    c_int64, c_size_t, c_uint, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p)

# ---- the library ---------------------------------------------------------------------------

SONAME = "libkith.so.2"


def _candidates():
    env = os.environ.get("KITH_LIBRARY")
    if env:
        yield env
        return
    # a source checkout built with scripts/build.sh: bindings/python/kith -> build/lib
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "..", "..", "..", "build", "lib", SONAME)
    found = ctypes.util.find_library("kith")
    if found:
        yield found
    yield SONAME


def load():
    """Load libkith: $KITH_LIBRARY if set, else a build next to this source tree, else the
    system's (ctypes.util.find_library, then the SONAME through the dynamic loader)."""
    errors = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            errors.append("%s: no such file" % path)
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(str(e))
    raise OSError("cannot load libkith (set KITH_LIBRARY): " + "; ".join(errors))


lib = load()

# ---- sizes and constants (kith.h) ------------------------------------------------------------

KITH_ID_BYTES = 8
KITH_PUBKEY_BYTES = 32
KITH_DOCID_BYTES = 16
KITH_HASH_BYTES = 32
KITH_SIG_BYTES = 64
KITH_ID_HEX = 16
KITH_DOCID_HEX = 32

KITH_TYPE_NULL = 0
KITH_TYPE_STRING = 1
KITH_TYPE_INT = 2
KITH_TYPE_TIME = 3
KITH_TYPE_BOOL = 4
KITH_TYPE_BYTES = 5
KITH_TYPE_REF = 6
KITH_TYPE_DATE = 7
KITH_TYPE_ENUM = 8
KITH_TYPE_SET = 9

KITH_CREATE = 1 << 0
KITH_NOSYNC = 1 << 1
KITH_RDONLY = 1 << 2

KITH_TXN_READ = 0
KITH_TXN_WRITE = 1 << 0

KITH_CHANGE_LOCAL = 1
KITH_CHANGE_REMOTE = 2

KITH_OP_FIELD_SET = 1
KITH_OP_DOC_ADD = 2
KITH_OP_DOC_REMOVE = 3
KITH_OP_SET_ADD = 4
KITH_OP_SET_REMOVE = 5
KITH_OP_COUNTER_ADD = 6
KITH_OP_FLAG_ENABLE = 7
KITH_OP_FLAG_DISABLE = 8

KITH_CRDT_LWW = 0
KITH_CRDT_SET = 1
KITH_CRDT_COUNTER = 2
KITH_CRDT_FLAG = 3

KITH_LOG_ERROR = 3
KITH_LOG_WARNING = 4
KITH_LOG_INFO = 6
KITH_LOG_DEBUG = 7

KITH_FAILING_AFTER = 5

KITH_HOLD_CLOCK = 1
KITH_HOLD_DEPENDENCY = 2
KITH_HOLD_READY = 3

# C enums are int-sized on the platforms kith builds for
c_enum = c_int

# ---- structs, in the header's order ----------------------------------------------------------


class kith_dot(Structure):
    _fields_ = [("origin", c_uint64), ("seq", c_uint64)]


class kith_docid(Structure):
    _fields_ = [("bytes", c_uint8 * KITH_DOCID_BYTES)]


class _kith_value_s(Structure):
    _fields_ = [("ptr", c_void_p), ("len", c_size_t)]


class _kith_value_u(Union):
    _fields_ = [("i", c_int64), ("b", c_bool), ("ref", kith_docid), ("s", _kith_value_s)]


class kith_value(Structure):
    _fields_ = [("type", c_enum), ("u", _kith_value_u)]


class kith_field_def(Structure):
    _fields_ = [("name", c_char_p), ("type", c_enum), ("required", c_bool),
                ("ref_collection", c_char_p), ("enum_values", POINTER(c_char_p)),
                ("max_len", c_size_t),
                # appended in 0.2.0
                ("crdt", c_int), ("email", c_bool), ("has_min", c_bool), ("has_max", c_bool),
                ("min", c_int64), ("max", c_int64)]


# declared after kith_collection_def in kith.h, which points at it; defined first here
class kith_index_def(Structure):
    _fields_ = [("name", c_char_p), ("nfields", c_size_t), ("fields", POINTER(c_char_p))]


class kith_collection_def(Structure):
    _fields_ = [("name", c_char_p), ("nfields", c_size_t), ("fields", POINTER(kith_field_def)),
                # appended in 0.2.0
                ("nindexes", c_size_t), ("indexes", POINTER(kith_index_def))]


class kith_buf(Structure):
    _fields_ = [("data", c_void_p), ("len", c_size_t)]


class kith_field_entry(Structure):
    _fields_ = [("name", c_char_p), ("crdt", c_int), ("value", kith_value)]


class kith_conflict(Structure):
    _fields_ = [("id", c_uint64), ("collection", c_char_p), ("doc", kith_docid),
                ("field", c_char_p), ("winner_dot", kith_dot), ("loser_dot", kith_dot),
                ("winner_hlc", c_uint64), ("loser_hlc", c_uint64), ("winner", kith_value),
                ("loser", kith_value), ("recorded_ms", c_int64), ("resolved", c_bool)]


class kith_changed_doc(Structure):
    _fields_ = [("collection", c_char_p), ("doc", kith_docid)]


class kith_change(Structure):
    _fields_ = [("source", c_int), ("ndocs", c_size_t), ("docs", POINTER(kith_changed_doc))]


class kith_vv(Structure):
    _fields_ = [("len", c_size_t), ("entries", POINTER(kith_dot))]


class kith_collection_count(Structure):
    _fields_ = [("collection", c_char_p), ("live", c_uint64)]


# declared after kith_status in kith.h, which points at it; defined first here
class kith_hold(Structure):
    _fields_ = [("origin", c_uint64), ("ops", c_uint64), ("reason", c_int),
                ("ahead_ms", c_int64), ("hlc", c_uint64), ("missing", kith_dot)]


# declared after kith_status in kith.h, which points at it; defined first here
class kith_fork(Structure):
    _fields_ = [("origin", c_uint64), ("seq", c_uint64), ("ours", c_uint8 * KITH_HASH_BYTES),
                ("theirs", c_uint8 * KITH_HASH_BYTES), ("seen_from", c_uint64),
                ("recorded_ms", c_int64), ("source", c_int), ("has_head", c_bool),
                ("head_seq", c_uint64), ("head_chain", c_uint8 * KITH_HASH_BYTES),
                ("head_sig", c_uint8 * KITH_SIG_BYTES),
                # appended in 0.4.0: the fork proof held, if any
                ("has_proof", c_bool), ("proof_seq", c_uint64),
                ("winner", c_uint8 * KITH_HASH_BYTES), ("loser", c_uint8 * KITH_HASH_BYTES),
                ("holds", c_int)]


class kith_group_info(Structure):
    _fields_ = [("in_group", c_bool), ("id", c_char * 33), ("name", c_char * 64),
                ("members", c_size_t), ("removed", c_size_t), ("records", c_size_t),
                ("self_removed", c_bool), ("self_cutoff", c_uint64), ("needs_upgrade", c_bool),
                ("digest", c_uint8 * KITH_HASH_BYTES)]


class kith_device(Structure):
    _fields_ = [("id", c_uint64), ("pubkey", c_uint8 * KITH_PUBKEY_BYTES), ("name", c_char * 64),
                ("added_by", c_uint64), ("added_ms", c_int64), ("last_seen_ms", c_int64),
                ("removed", c_bool), ("cutoff", c_uint64), ("self", c_bool)]


class kith_rekey_info(Structure):
    _fields_ = [("old_id", c_uint64), ("new_id", c_uint64), ("rekeyed_ms", c_int64),
                ("lost_fork", c_bool), ("fork_seq", c_uint64), ("ops_aside", c_uint64),
                ("commits_reissued", c_uint64), ("ops_skipped", c_uint64),
                ("reissue_pending", c_bool)]


class kith_status(Structure):
    _fields_ = [("id", c_uint64), ("pubkey", c_uint8 * KITH_PUBKEY_BYTES), ("vv", kith_vv),
                ("ops_logged", c_uint64), ("pending_ops", c_uint64),
                ("open_conflicts", c_uint64), ("hlc", c_uint64), ("ncollections", c_size_t),
                ("collections", POINTER(kith_collection_count)),
                # appended in 0.1.0
                ("nholds", c_size_t), ("holds", POINTER(kith_hold)),
                # appended in 0.3.0
                ("nforks", c_size_t), ("forks", POINTER(kith_fork)),
                ("clock_offset_ms", c_int64), ("clock_peers", c_size_t),
                ("restored_seq", c_uint64), ("restored_from", c_uint64),
                ("restored_ms", c_int64), ("restored_accepted", c_bool),
                # appended in 0.4.0
                ("group", kith_group_info)]


class kith_log_entry(Structure):
    _fields_ = [("dot", kith_dot), ("hlc", c_uint64), ("kind", c_enum),
                ("collection", c_char_p), ("doc", kith_docid), ("field", c_char_p),
                ("value", kith_value), ("replaced", kith_dot),
                ("chain", c_uint8 * KITH_HASH_BYTES), ("commit_end", c_bool),
                ("applied", c_bool)]


class kith_journal_op(Structure):
    _fields_ = [("op", kith_log_entry), ("commit", kith_dot), ("set_aside_ms", c_int64),
                ("restored", c_bool)]


class kith_batch_opts(Structure):
    _fields_ = [("since", POINTER(kith_vv)), ("cursor", c_uint64), ("max_ops", c_size_t),
                ("max_bytes", c_size_t)]


class kith_batch_info(Structure):
    _fields_ = [("ops", c_uint64), ("commits", c_uint64), ("next_cursor", c_uint64),
                ("has_more", c_bool)]


class kith_apply_info(Structure):
    _fields_ = [("ops_new", c_uint64), ("ops_known", c_uint64), ("ops_applied", c_uint64),
                ("ops_pending", c_uint64), ("conflicts", c_uint64),
                # appended in 0.3.0
                ("forks", c_uint64),
                # appended in 0.4.0
                ("cut_off", c_uint64)]


class kith_peer(Structure):
    _fields_ = [("id", c_uint64), ("pubkey", c_uint8 * KITH_PUBKEY_BYTES),
                ("name", c_char * 64), ("addr", c_char * 256), ("trusted", c_bool),
                ("forked", c_bool), ("acked", kith_vv), ("cursor", c_uint64),
                ("pending_ops", c_uint64), ("last_sync_ms", c_int64), ("failures", c_uint32),
                ("last_error", c_char * 256),
                # appended in 0.1.0
                ("failing", c_bool), ("held_ops", c_uint64), ("held_ahead_ms", c_int64),
                # appended in 0.2.0
                ("schema_version", c_uint64), ("schema_digest", c_uint8 * KITH_HASH_BYTES),
                # appended in 0.3.0
                ("clock_offset_ms", c_int64), ("clock_checked_ms", c_int64),
                ("fork_seq", c_uint64)]


class kith_verify_report(Structure):
    _fields_ = [("commits_checked", c_uint64), ("ops_checked", c_uint64),
                ("signatures_checked", c_uint64), ("problems", c_uint64),
                ("first_problem", c_char * 256)]


class kith_sync_info(Structure):
    _fields_ = [("peer_id", c_uint64), ("ops_sent", c_uint64), ("ops_received", c_uint64),
                ("batches_sent", c_uint64), ("batches_received", c_uint64),
                ("converged", c_bool),
                # appended in 0.3.0
                ("forks", c_uint64), ("proto", c_uint32), ("restored_seq", c_uint64)]


class kith_invite_opts(Structure):
    _fields_ = [("expires_ms", c_int64), ("addrs", POINTER(c_char_p)), ("naddrs", c_size_t),
                ("group_name", c_char_p), ("device_name", c_char_p)]


class kith_join_info(Structure):
    _fields_ = [("group_id", c_char * 33), ("inviter_id", c_uint64), ("endpoint", c_char * 256),
                ("sync", kith_sync_info)]


kith_listen_fn = CFUNCTYPE(None, c_void_p, c_char_p)
kith_log_fn = CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class kith_serve_opts(Structure):
    _fields_ = [("listen", c_char_p), ("peers", POINTER(c_char_p)), ("npeers", c_size_t),
                ("interval_ms", c_int), ("discover", c_bool), ("log_level", c_int),
                ("log_json", c_bool), ("stop", POINTER(c_int)), ("timeout_ms", c_int),
                ("beacon_port", c_uint16), ("on_listen", kith_listen_fn),
                ("on_listen_arg", c_void_p),
                # appended in 0.1.0
                ("on_log", kith_log_fn), ("on_log_arg", c_void_p), ("failing_after", c_uint32),
                ("handshake_ms", c_int)]


# every struct kith.h declares, by its C name (for tests/test_layout.py)
STRUCTS = [kith_dot, kith_docid, kith_value, kith_field_def, kith_collection_def, kith_index_def,
           kith_buf, kith_field_entry, kith_conflict, kith_changed_doc, kith_change, kith_vv,
           kith_collection_count, kith_status, kith_hold, kith_fork, kith_log_entry,
           kith_journal_op, kith_batch_opts,
           kith_batch_info, kith_apply_info, kith_peer, kith_verify_report, kith_sync_info,
           kith_serve_opts, kith_group_info, kith_device, kith_invite_opts, kith_join_info,
           kith_rekey_info]

# structs a newer library may have appended fields to without harm here: the binding
# allocates them only through slack() or reads them only through a pointer the library gave,
# never as an array element or embedded in another struct
GROWABLE = [kith_conflict, kith_change, kith_status, kith_log_entry, kith_batch_opts,
            kith_batch_info, kith_apply_info, kith_verify_report, kith_sync_info,
            kith_serve_opts]

SLACK = 256


def slack(struct_type):
    """A zeroed instance of `struct_type` with SLACK spare bytes behind it, kept alive with it:
    for structs the caller allocates and the library reads or fills."""
    buf = (c_char * (ctypes.sizeof(struct_type) + SLACK))()
    obj = struct_type.from_buffer(buf)
    obj._slack = buf
    return obj


kith_change_fn = CFUNCTYPE(None, c_void_p, POINTER(kith_change))
kith_conflict_fn = CFUNCTYPE(None, c_void_p, POINTER(kith_conflict))

# ---- functions: name, return type, argument types ---------------------------------------------

P = POINTER
u8p = P(c_uint8)
replica_p = c_void_p
txn_p = c_void_p
iter_p = c_void_p

PROTOTYPES = [
    ("kith_version", c_char_p, []),
    ("kith_strerror", c_char_p, [c_int]),
    ("kith_errname", c_char_p, [c_int]),
    ("kith_docid_bytes", c_size_t, []),
    ("kith_pubkey_bytes", c_size_t, []),
    ("kith_docid_format", None, [P(kith_docid), c_char_p]),
    ("kith_docid_parse", c_int, [c_char_p, P(kith_docid)]),
    ("kith_value_parse", c_int, [c_char_p, c_char_p, c_char_p, P(kith_value), c_char_p,
                                 c_size_t]),
    ("kith_time_format", None, [c_int64, c_char_p]),
    ("kith_time_parse", c_int, [c_char_p, P(c_int64)]),
    ("kith_duration_format", None, [c_int64, c_char_p]),
    ("kith_schema", P(kith_collection_def), [P(c_size_t)]),
    ("kith_schema_crm", c_char_p, []),
    ("kith_open", c_int, [c_char_p, c_uint, P(replica_p)]),
    ("kith_close", None, [replica_p]),
    ("kith_errmsg", c_char_p, [replica_p]),
    ("kith_replica_id", c_uint64, [replica_p]),
    ("kith_replica_pubkey", None, [replica_p, u8p]),
    ("kith_replica_path", c_char_p, [replica_p]),
    ("kith_id_from_pubkey", c_uint64, [u8p]),
    ("kith_schema_apply", c_int, [replica_p, c_char_p, c_size_t]),
    ("kith_schema_declare", c_int, [replica_p, P(kith_collection_def), c_size_t]),
    ("kith_schema_json", c_int, [replica_p, P(kith_buf)]),
    ("kith_schema_info", c_int, [replica_p, P(c_uint64), u8p]),
    ("kith_value_parse_in", c_int, [replica_p, c_char_p, c_char_p, c_char_p, P(kith_value),
                                    c_char_p, c_size_t]),
    ("kith_txn_begin", c_int, [replica_p, c_uint, P(txn_p)]),
    ("kith_txn_commit", c_int, [P(txn_p)]),
    ("kith_txn_abort", None, [P(txn_p)]),
    ("kith_doc_create", c_int, [txn_p, c_char_p, P(kith_docid)]),
    ("kith_doc_delete", c_int, [txn_p, c_char_p, P(kith_docid)]),
    ("kith_doc_exists", c_int, [txn_p, c_char_p, P(kith_docid)]),
    ("kith_field_set", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, P(kith_value)]),
    ("kith_field_get", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, P(kith_value)]),
    ("kith_set_add", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, c_char_p, c_size_t]),
    ("kith_set_remove", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, c_char_p, c_size_t]),
    ("kith_counter_add", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, c_int64]),
    ("kith_flag_set", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, c_bool]),
    ("kith_iter_docs", c_int, [txn_p, c_char_p, P(iter_p)]),
    ("kith_iter_index", c_int, [txn_p, c_char_p, P(kith_value), P(kith_value), P(kith_value),
                                P(iter_p)]),
    ("kith_iter_set", c_int, [txn_p, c_char_p, P(kith_docid), c_char_p, P(iter_p)]),
    ("kith_iter_fields", c_int, [txn_p, c_char_p, P(kith_docid), P(iter_p)]),
    ("kith_iter_next_field", c_int, [iter_p, P(kith_field_entry)]),
    ("kith_iter_next", c_int, [iter_p, P(kith_docid)]),
    ("kith_iter_next_elem", c_int, [iter_p, P(c_void_p), P(c_size_t)]),
    ("kith_iter_close", None, [iter_p]),
    ("kith_iter_conflicts", c_int, [txn_p, c_bool, P(iter_p)]),
    ("kith_iter_next_conflict", c_int, [iter_p, P(kith_conflict)]),
    ("kith_conflict_get", c_int, [txn_p, c_uint64, P(kith_conflict)]),
    ("kith_conflict_resolve", c_int, [txn_p, c_uint64, c_bool]),
    ("kith_observe", None, [replica_p, kith_change_fn, kith_conflict_fn, c_void_p]),
    ("kith_vv_parse", c_int, [c_char_p, P(kith_vv)]),
    ("kith_vv_format", c_int, [P(kith_vv), P(c_void_p)]),
    ("kith_vv_free", None, [P(kith_vv)]),
    ("kith_vv_get", c_int, [replica_p, P(kith_vv)]),
    ("kith_status_get", c_int, [replica_p, P(P(kith_status))]),
    ("kith_status_free", None, [P(kith_status)]),
    ("kith_holds_get", c_int, [replica_p, P(P(kith_hold)), P(c_size_t)]),
    ("kith_holds_free", None, [P(kith_hold), c_size_t]),
    ("kith_forks_get", c_int, [replica_p, P(P(kith_fork)), P(c_size_t)]),
    ("kith_restored_accept", c_int, [replica_p]),
    ("kith_forks_free", None, [P(kith_fork), c_size_t]),
    ("kith_iter_log", c_int, [txn_p, c_uint64, P(iter_p)]),
    ("kith_iter_next_log", c_int, [iter_p, P(kith_log_entry)]),
    ("kith_iter_journal", c_int, [txn_p, c_uint64, P(iter_p)]),
    ("kith_iter_next_journal", c_int, [iter_p, P(kith_journal_op)]),
    ("kith_journal_restore", c_int, [txn_p, P(kith_dot), P(c_size_t)]),
    ("kith_batch_create", c_int, [replica_p, P(kith_batch_opts), P(kith_buf),
                                  P(kith_batch_info)]),
    ("kith_batch_apply", c_int, [replica_p, c_void_p, c_size_t, P(kith_apply_info)]),
    ("kith_holds_apply", c_int, [replica_p, P(kith_apply_info)]),
    ("kith_bundle_write", c_int, [replica_p, P(kith_vv), c_char_p, P(kith_batch_info)]),
    ("kith_bundle_apply", c_int, [replica_p, c_char_p, P(kith_apply_info)]),
    ("kith_trust_add", c_int, [replica_p, u8p, c_char_p, c_char_p]),
    ("kith_trust_remove", c_int, [replica_p, c_uint64]),
    ("kith_peers_get", c_int, [replica_p, P(P(kith_peer)), P(c_size_t)]),
    ("kith_peers_free", None, [P(kith_peer), c_size_t]),
    ("kith_peer_record", c_int, [replica_p, c_uint64, P(kith_vv), c_uint64, c_char_p]),
    ("kith_peer_record_ex", c_int, [replica_p, c_uint64, P(kith_vv), c_uint64, c_char_p,
                                    c_uint32]),
    ("kith_is_trusted", c_bool, [replica_p, u8p]),
    ("kith_group_create", c_int, [replica_p, c_char_p, c_char_p]),
    ("kith_group_get", c_int, [replica_p, P(kith_group_info)]),
    ("kith_devices_get", c_int, [replica_p, P(P(kith_device)), P(c_size_t)]),
    ("kith_devices_free", None, [P(kith_device), c_size_t]),
    ("kith_device_remove", c_int, [replica_p, c_uint64]),
    ("kith_rekey", c_int, [replica_p, P(kith_rekey_info)]),
    ("kith_rekey_get", c_int, [replica_p, P(kith_rekey_info)]),
    ("kith_curve_keys", c_int, [replica_p, u8p, u8p]),
    ("kith_curve_public", c_int, [u8p, u8p]),
    ("kith_sign", c_int, [replica_p, c_char_p, c_void_p, c_size_t, u8p]),
    ("kith_sign_verify", c_int, [u8p, c_char_p, c_void_p, c_size_t, u8p]),
    ("kith_schema_fingerprint", None, [u8p]),
    ("kith_export_json", c_int, [replica_p, P(kith_buf)]),
    ("kith_verify", c_int, [replica_p, P(kith_verify_report)]),
    ("kith_free", None, [c_void_p]),
    ("kith_sync", c_int, [replica_p, c_char_p, u8p, c_int, P(kith_sync_info)]),
    ("kith_serve", c_int, [replica_p, P(kith_serve_opts)]),
    ("kith_invite_create", c_int, [replica_p, P(kith_invite_opts), P(c_void_p)]),
    ("kith_join", c_int, [replica_p, c_char_p, c_char_p, c_int, P(kith_join_info)]),
]

def _missing(name):
    def call(*args):
        raise NotImplementedError("%s has no %s (a library older than this binding)"
                                  % (lib._name, name))
    call.__name__ = name
    return call


_fn = None
for _name, _restype, _argtypes in PROTOTYPES:
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        globals()[_name] = _missing(_name)
        continue
    _fn.restype = _restype
    _fn.argtypes = _argtypes
    globals()[_name] = _fn
del _name, _restype, _argtypes, _fn


def error_table():
    """{code: name} for every KITH_E* code this library knows, read from kith_errname so
    that codes added to KITH_ERRNO_MAP appear without a change here."""
    table = {}
    code = -9001
    while True:
        name = lib.kith_errname(code).decode()
        if not name.startswith("KITH_E"):
            return table
        table[code] = name
        code -= 1


# ---- the change feed (kith_feed_*), kept together so that it is appended in one place --------

KITH_FEED_NOW = (1 << 64) - 1


class kith_feed_doc(Structure):
    _fields_ = [("collection", c_char_p), ("doc", kith_docid), ("created", c_bool),
                ("deleted", c_bool), ("nfields", c_size_t), ("fields", POINTER(c_char_p))]


class kith_feed_event(Structure):
    _fields_ = [("cursor", c_uint64), ("source", c_int), ("origin", c_uint64),
                ("first_seq", c_uint64), ("last_seq", c_uint64), ("hlc", c_uint64),
                ("ndocs", c_size_t), ("docs", POINTER(kith_feed_doc))]


feed_p = c_void_p
FEED_PROTOTYPES = [
    ("kith_feed_open", c_int, [replica_p, c_uint64, P(feed_p)]),
    ("kith_feed_next", c_int, [feed_p, P(kith_feed_event)]),
    ("kith_feed_fd", c_int, [feed_p]),
    ("kith_feed_wait", c_int, [feed_p, c_int]),
    ("kith_feed_cursor", c_uint64, [feed_p]),
    ("kith_feed_close", None, [feed_p]),
]
STRUCTS += [kith_feed_doc, kith_feed_event]
GROWABLE += [kith_feed_event]
PROTOTYPES += FEED_PROTOTYPES
_fn = None
for _name, _restype, _argtypes in FEED_PROTOTYPES:
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        globals()[_name] = _missing(_name)
        continue
    _fn.restype = _restype
    _fn.argtypes = _argtypes
    globals()[_name] = _fn
del _name, _restype, _argtypes, _fn


# ---- progress and cancellation (kith_progress_set), appended to what is above -----------------

KITH_PROGRESS_BUILD = 1
KITH_PROGRESS_APPLY = 2
KITH_PROGRESS_SYNC = 3
KITH_PROGRESS_VERIFY = 4


class kith_progress(Structure):
    _fields_ = [("op", c_int), ("done", c_uint64), ("total", c_uint64)]


kith_progress_fn = CFUNCTYPE(c_int, c_void_p, POINTER(kith_progress))
STRUCTS.append(kith_progress)
GROWABLE.append(kith_progress)  # only read through the library's pointer
PROTOTYPES.append(("kith_progress_set", None, [replica_p, kith_progress_fn, c_void_p]))
try:
    kith_progress_set = lib.kith_progress_set
    kith_progress_set.restype = None
    kith_progress_set.argtypes = PROTOTYPES[-1][2]
except AttributeError:
    kith_progress_set = _missing("kith_progress_set")
