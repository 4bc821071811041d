/*
 * errors.c — the answers to "what went wrong" and a few identity helpers every layer shares:
 * kith_strerror and kith_errname (expanded from KITH_ERRNO_MAP in kith.h, plus a table of
 * the errnos kith passes through as -errno), the version, the size functions for bindings,
 * document id formatting, and kith_free.
 *
 * The errno table is ours rather than strerror()'s: strerror may hand back a static buffer
 * that another thread overwrites, and its text varies with the C library and the locale,
 * while these strings are constant and the same everywhere (tests and logs compare them).
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

struct errno_entry {
    int code;
    const char *name;
    const char *text;
};

/* The errnos the OS, LMDB and ZeroMQ hand kith; any other prints as "unknown error". */
static const struct errno_entry errno_table[] = {
    {EPERM, "EPERM", "operation not permitted"},
    {ENOENT, "ENOENT", "no such file or directory"},
    {ESRCH, "ESRCH", "no such process"},
    {EINTR, "EINTR", "interrupted system call"},
    {EIO, "EIO", "input/output error"},
    {ENXIO, "ENXIO", "no such device or address"},
    {E2BIG, "E2BIG", "argument list too long"},
    {EBADF, "EBADF", "bad file descriptor"},
    {ECHILD, "ECHILD", "no child processes"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {ENOMEM, "ENOMEM", "cannot allocate memory"},
    {EACCES, "EACCES", "permission denied"},
    {EFAULT, "EFAULT", "bad address"},
    {EBUSY, "EBUSY", "device or resource busy"},
    {EEXIST, "EEXIST", "file exists"},
    {EXDEV, "EXDEV", "invalid cross-device link"},
    {ENODEV, "ENODEV", "no such device"},
    {ENOTDIR, "ENOTDIR", "not a directory"},
    {EISDIR, "EISDIR", "is a directory"},
    {EINVAL, "EINVAL", "invalid argument"},
    {ENFILE, "ENFILE", "too many open files in system"},
    {EMFILE, "EMFILE", "too many open files"},
    {ETXTBSY, "ETXTBSY", "text file busy"},
    {EFBIG, "EFBIG", "file too large"},
    {ENOSPC, "ENOSPC", "no space left on device"},
    {ESPIPE, "ESPIPE", "illegal seek"},
    {EROFS, "EROFS", "read-only file system"},
    {EMLINK, "EMLINK", "too many links"},
    {EPIPE, "EPIPE", "broken pipe"},
    {EDOM, "EDOM", "numerical argument out of domain"},
    {ERANGE, "ERANGE", "numerical result out of range"},
    {EDEADLK, "EDEADLK", "resource deadlock avoided"},
    {ENAMETOOLONG, "ENAMETOOLONG", "file name too long"},
    {ENOLCK, "ENOLCK", "no locks available"},
    {ENOSYS, "ENOSYS", "function not implemented"},
    {ENOTEMPTY, "ENOTEMPTY", "directory not empty"},
    {ELOOP, "ELOOP", "too many levels of symbolic links"},
    {EOVERFLOW, "EOVERFLOW", "value too large for defined data type"},
    {EPROTO, "EPROTO", "protocol error"},
    {EBADMSG, "EBADMSG", "bad message"},
    {ENOTSOCK, "ENOTSOCK", "socket operation on non-socket"},
    {EMSGSIZE, "EMSGSIZE", "message too long"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT", "protocol not supported"},
    {ENOTSUP, "ENOTSUP", "operation not supported"},
    {EAFNOSUPPORT, "EAFNOSUPPORT", "address family not supported by protocol"},
    {EADDRINUSE, "EADDRINUSE", "address already in use"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL", "cannot assign requested address"},
    {ENETDOWN, "ENETDOWN", "network is down"},
    {ENETUNREACH, "ENETUNREACH", "network is unreachable"},
    {ECONNABORTED, "ECONNABORTED", "software caused connection abort"},
    {ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {ENOBUFS, "ENOBUFS", "no buffer space available"},
    {ENOTCONN, "ENOTCONN", "transport endpoint is not connected"},
    {ETIMEDOUT, "ETIMEDOUT", "connection timed out"},
    {ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {EHOSTUNREACH, "EHOSTUNREACH", "no route to host"},
    {EALREADY, "EALREADY", "operation already in progress"},
    {EINPROGRESS, "EINPROGRESS", "operation now in progress"},
    {ESTALE, "ESTALE", "stale file handle"},
    {EDQUOT, "EDQUOT", "disk quota exceeded"},
    {ECANCELED, "ECANCELED", "operation canceled"},
};

static const struct errno_entry *
errno_find(int rc)
{
    for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
        if (-errno_table[i].code == rc)
            return &errno_table[i];
    return NULL;
}

const char *
kith_strerror(int rc)
{
    if (rc == 0)
        return "success";
    switch (rc) {
#define KITH__ERR_TEXT(name, num, text)                                                            \
    case num:                                                                                      \
        return text;
        KITH_ERRNO_MAP(KITH__ERR_TEXT)
#undef KITH__ERR_TEXT
    default:
        break;
    }
    const struct errno_entry *e = errno_find(rc);
    return e ? e->text : "unknown error";
}

const char *
kith_errname(int rc)
{
    if (rc == 0)
        return "OK";
    switch (rc) {
#define KITH__ERR_NAME(name, num, text)                                                            \
    case num:                                                                                      \
        return #name;
        KITH_ERRNO_MAP(KITH__ERR_NAME)
#undef KITH__ERR_NAME
    default:
        break;
    }
    const struct errno_entry *e = errno_find(rc);
    return e ? e->name : "UNKNOWN";
}

const char *
kith_version(void)
{
    return KITH_VERSION_STRING;
}

size_t
kith_docid_bytes(void)
{
    return KITH_DOCID_BYTES;
}

size_t
kith_pubkey_bytes(void)
{
    return KITH_PUBKEY_BYTES;
}

void
kith_free(void *p)
{
    free(p);
}

/* ---- document ids ------------------------------------------------------------------------ */

void
kith__docid_from_dot(kith_docid *id, kith_dot d)
{
    kith__be64_put(id->bytes, d.origin);
    kith__be64_put(id->bytes + 8, d.seq);
}

kith_dot
kith__docid_to_dot(const kith_docid *id)
{
    kith_dot d = {kith__be64_get(id->bytes), kith__be64_get(id->bytes + 8)};
    return d;
}

void
kith_docid_format(const kith_docid *id, char out[KITH_DOCID_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < KITH_DOCID_BYTES; i++) {
        out[2 * i] = digits[id->bytes[i] >> 4];
        out[2 * i + 1] = digits[id->bytes[i] & 0x0f];
    }
    out[KITH_DOCID_HEX] = '\0';
}

/* The value of a lowercase hex digit, or -1. */
static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int
kith_docid_parse(const char *hex, kith_docid *out)
{
    kith_docid id;
    if (!hex || !out)
        return KITH_EINVAL;
    for (size_t i = 0; i < KITH_DOCID_BYTES; i++) {
        /* hex[2i] is read only after hex[2i-1] proved not to be the NUL. */
        int hi = hex_digit(hex[2 * i]);
        if (hi < 0)
            return KITH_EINVAL;
        int lo = hex_digit(hex[2 * i + 1]);
        if (lo < 0)
            return KITH_EINVAL;
        id.bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[KITH_DOCID_HEX] != '\0')
        return KITH_EINVAL;
    *out = id;
    return 0;
}
