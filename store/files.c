/*
 * files.c — a replica's files other than through LMDB: the key file (written to key.tmp,
 * renamed to key when the replica is whole), whether a file exists or may be written, and the
 * checks made on data.mdb and lock.mdb before LMDB maps them, for the two ways a mapped file
 * kills a process with SIGBUS instead of returning an error.
 *
 * A data.mdb shorter than the pages its meta page names: reading a page past the end of the
 * file through the map raises SIGBUS. So the two meta pages are read with pread, the newer
 * valid one (LMDB's own choice: the higher txnid) gives the last page number and the page
 * size, and the file must hold every page up to that one. LMDB may legitimately leave the
 * highest pages unwritten when a transaction allocated them and freed them again (a "loose"
 * page is recorded as free and never flushed), so before calling a short file damaged the
 * free-page list is read, also with pread, and a file whose missing pages are all free is
 * accepted. spec/storage.md STO-2 and STO-21.
 *
 * A lock.mdb whose pages are not allocated: LMDB sizes it with ftruncate and writes to it
 * through a shared map, so on a full disk the first write faults with SIGBUS. The lock file
 * is given its blocks with fallocate before LMDB opens it, which fails with ENOSPC instead.
 *
 * The layouts read here are LMDB 0.9's on-disk format on a 64-bit machine (lmdb/mdb.c
 * MDB_page, MDB_meta, MDB_db, MDB_node); the offsets are in the table below.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * offset  size  field (page header, then a meta page's body)
 * 0       8     mp_pgno
 * 10      2     mp_flags (P_BRANCH 0x01, P_LEAF 0x02, P_OVERFLOW 0x04, P_META 0x08)
 * 12      2     mp_lower (end of the node offsets; overflow pages: mp_pages, 4 bytes)
 * 16      ...   node offsets (2 bytes each), or the meta:
 * 16      4     mm_magic 0xBEEFC0DE      20  4  mm_version (1)
 * 40      48    mm_dbs[FREE_DBI]: md_pad (4: the page size) at 40, md_depth (2) at 46,
 *               md_root (8) at 80
 * 136     8     mm_last_pg               144 8  mm_txnid
 * A node: lo(2) hi(2) flags(2) ksize(2) key data; a branch node's child page is
 * lo | hi << 16 | flags << 32, a leaf node's data size lo | hi << 16, F_BIGDATA (0x01): the
 * data is the number of its first overflow page. A free-list record is an IDL: a count, then
 * that many page numbers, 8 bytes each.
 */
#define PAGEHDR 16
#define META_MAGIC 0xBEEFC0DEu
#define META_HDR_BYTES 152
#define P_BRANCH 0x01
#define P_LEAF 0x02
#define F_BIGDATA 0x01
#define MAX_DEPTH 32
#define LOCK_BYTES 8192 /* lock.mdb for 126 readers (kith's mdb_env_set_maxreaders) */

static uint16_t
le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int
read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = pread(fd, (uint8_t *)buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return KITH_ECORRUPT; /* past the end */
        got += (size_t)n;
    }
    return 0;
}

/* What the free-list walk needs: the file, and which missing pages it found free. */
struct freewalk {
    int fd;
    uint32_t psize;
    uint64_t have;   /* pages the file holds */
    uint64_t last;   /* the last page the meta names */
    uint8_t *free;   /* bit i: page have + i is free */
    uint8_t *page;   /* a page buffer */
    uint8_t *ovf;    /* an overflow record buffer */
    size_t ovf_size; /* its capacity */
};

static void
mark_free(struct freewalk *w, const uint8_t *idl, size_t len)
{
    uint64_t n;

    if (len < 8)
        return;
    n = le64(idl);
    if (n > (len - 8) / 8)
        n = (len - 8) / 8;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pg = le64(idl + 8 + 8 * i);
        if (pg >= w->have && pg <= w->last)
            w->free[(pg - w->have) / 8] |= (uint8_t)(1u << ((pg - w->have) % 8));
    }
}

/* Walk the free-list B-tree below page `pgno`. 0, or KITH_ECORRUPT if it is not whole. */
static int
walk(struct freewalk *w, uint64_t pgno, int depth)
{
    uint8_t *p;
    size_t nkeys;
    uint16_t flags;
    int rc;

    if (depth > MAX_DEPTH || pgno >= w->have)
        return KITH_ECORRUPT; /* a page of the free list itself is missing */
    p = malloc(w->psize);
    if (p == NULL)
        return KITH_ENOMEM;
    rc = read_at(w->fd, p, w->psize, pgno * w->psize);
    if (rc < 0)
        goto out;
    flags = le16(p + 10);
    if (le16(p + 12) < PAGEHDR || le16(p + 12) > w->psize) {
        rc = KITH_ECORRUPT;
        goto out;
    }
    nkeys = (size_t)(le16(p + 12) - PAGEHDR) / 2;
    for (size_t i = 0; i < nkeys && rc == 0; i++) {
        size_t off = le16(p + PAGEHDR + 2 * i);
        const uint8_t *node = p + off;
        if (off + 8 > w->psize) {
            rc = KITH_ECORRUPT;
            break;
        }
        if (flags & P_BRANCH) {
            rc = walk(w,
                      le16(node) | (uint64_t)le16(node + 2) << 16 | (uint64_t)le16(node + 4) << 32,
                      depth + 1);
        } else if (flags & P_LEAF) {
            size_t dsize = le16(node) | (size_t)le16(node + 2) << 16, ksize = le16(node + 6);
            const uint8_t *data = node + 8 + ksize;
            if (le16(node + 4) & F_BIGDATA) {
                uint64_t opg;
                if (off + 8 + ksize + 8 > w->psize)
                    rc = KITH_ECORRUPT;
                else if ((opg = le64(data)) >= w->have ||
                         (opg * w->psize + PAGEHDR + dsize) > w->have * w->psize)
                    rc = KITH_ECORRUPT;
                else if (dsize > w->ovf_size) {
                    uint8_t *b = realloc(w->ovf, dsize);
                    if (b == NULL)
                        rc = KITH_ENOMEM;
                    else {
                        w->ovf = b;
                        w->ovf_size = dsize;
                    }
                }
                if (rc == 0)
                    rc = read_at(w->fd, w->ovf, dsize, opg * w->psize + PAGEHDR);
                if (rc == 0)
                    mark_free(w, w->ovf, dsize);
            } else if (off + 8 + ksize + dsize > w->psize) {
                rc = KITH_ECORRUPT;
            } else {
                mark_free(w, data, dsize);
            }
        } else {
            rc = KITH_ECORRUPT;
        }
    }
out:
    free(p);
    return rc;
}

/* Are all pages from `have` to `last` in the free list rooted at `root`? */
static bool
missing_pages_free(int fd, uint32_t psize, uint64_t have, uint64_t last, uint64_t root)
{
    struct freewalk w = {.fd = fd, .psize = psize, .have = have, .last = last};
    uint64_t n = last - have + 1;
    bool all = false;

    if (root == UINT64_MAX || n > (1u << 20))
        return false; /* no free list, or far more missing than a transaction leaves loose */
    w.free = calloc((size_t)(n + 7) / 8, 1);
    if (w.free == NULL)
        return false;
    if (walk(&w, root, 0) == 0) {
        all = true;
        for (uint64_t i = 0; i < n && all; i++)
            all = (w.free[i / 8] >> (i % 8)) & 1;
    }
    free(w.free);
    free(w.ovf);
    return all;
}

int
kith__datafile_check(const char *dir, char *why, size_t whylen)
{
    char path[4096];
    uint8_t m[2][META_HDR_BYTES];
    bool valid[2] = {false, false};
    struct stat st;
    uint64_t need, last, txnid[2] = {0, 0};
    uint32_t psize;
    int fd, rc = 0, best;

    why[0] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
        return -ENAMETOOLONG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (read_at(fd, m[0], sizeof m[0], 0) < 0 || le32(m[0] + 16) != META_MAGIC) {
        snprintf(why, whylen,
                 "replica is damaged: data.mdb is %lld bytes, without a valid meta page",
                 (long long)st.st_size);
        rc = KITH_ECORRUPT;
        goto out_close;
    }
    psize = le32(m[0] + 40);
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)) != 0) {
        snprintf(why, whylen, "replica is damaged: data.mdb names a page size of %u", psize);
        rc = KITH_ECORRUPT;
        goto out_close;
    }
    valid[0] = le32(m[0] + 20) == 1;
    valid[1] = read_at(fd, m[1], sizeof m[1], psize) == 0 && le32(m[1] + 16) == META_MAGIC &&
               le32(m[1] + 20) == 1;
    for (int i = 0; i < 2; i++)
        if (valid[i])
            txnid[i] = le64(m[i] + 144);
    if (!valid[0] && !valid[1]) {
        rc = 0; /* LMDB refuses it itself (MDB_INVALID / MDB_VERSION_MISMATCH) without mapping */
        goto out_close;
    }
    best = !valid[0] || (valid[1] && txnid[1] > txnid[0]);
    last = le64(m[best] + 136);
    need = (last + 1) * (uint64_t)psize;
    if (last < (1ull << 40) && (uint64_t)st.st_size >= need)
        goto out_close;
    if (last < (1ull << 40) &&
        missing_pages_free(fd, psize, (uint64_t)st.st_size / psize, last, le64(m[best] + 80)))
        goto out_close;
    snprintf(why, whylen, "replica is damaged: data.mdb is %lld bytes, the database needs %llu",
             (long long)st.st_size, (unsigned long long)need);
    rc = KITH_ECORRUPT;
out_close:
    close(fd);
    return rc;
}

int
kith__lockfile_prepare(const char *dir)
{
    char path[4096];
    struct stat st;
    int fd, rc = 0;

    if ((size_t)snprintf(path, sizeof path, "%s/lock.mdb", dir) >= sizeof path)
        return -ENAMETOOLONG;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (st.st_blocks * 512 < LOCK_BYTES && fallocate(fd, 0, 0, LOCK_BYTES) != 0 &&
             errno != EOPNOTSUPP && errno != ENOSYS)
        rc = -errno; /* ENOSPC: say so now rather than fault later */
    close(fd);
    return rc;
}

/* ---- paths and the key file ------------------------------------------------------------ */

char *
kith__path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);

    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* 1 if dir/name exists, 0 if not, -errno when that cannot be told (-EACCES: the directory
 * cannot be searched). */
int
kith__file_probe(const char *dir, const char *name)
{
    char *p = kith__path_join(dir, name);
    struct stat st;
    int rc;

    if (p == NULL)
        return KITH_ENOMEM;
    rc = stat(p, &st) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
    free(p);
    return rc;
}

/* Can this process write dir/name (or create it, when it is absent)? */
bool
kith__file_writable(const char *dir, const char *name)
{
    char *p = kith__path_join(dir, name);
    bool ok;

    if (p == NULL)
        return false;
    ok = faccessat(AT_FDCWD, p, W_OK, AT_EACCESS) == 0 ||
         (errno == ENOENT && faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == 0);
    free(p);
    return ok;
}

int
kith__fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Write sk to dir/name, mode 0600, and fsync it; with `excl` a leftover is unlinked first
 * and the file made anew (O_EXCL), else it is truncated. No file is left on failure. */
static int
key_write(const char *dir, const char *name, const uint8_t sk[64], bool excl)
{
    char *tmp = kith__path_join(dir, name);
    int fd = -1, rc = 0;
    size_t off = 0;

    if (tmp == NULL)
        return KITH_ENOMEM;
    if (excl)
        unlink(tmp); /* a leftover of an interrupted creation */
    fd = open(tmp, O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC) | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out_free;
    }
    while (off < 64) {
        ssize_t w = write(fd, sk + off, 64 - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = w < 0 ? -errno : -EIO;
            goto out_close;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = -errno;
        goto out_unlink;
    }
    goto out_free;
out_close:
    close(fd);
out_unlink:
    unlink(tmp);
out_free:
    free(tmp);
    return rc;
}

/* Write the secret key to dir/key.tmp, mode 0600, and fsync it: the key of a replica being
 * created. key_commit makes it the replica's key once the replica is whole. */
int
kith__key_write_tmp(const char *dir, const uint8_t sk[64])
{
    return key_write(dir, KITH__KEY_TMP, sk, true);
}

/* ---- the side file of a re-key (spec/storage.md STO-32) -------------------------------- */

void
kith__key_next_name(uint64_t id, char out[KITH__KEY_NEXT_NAME_BYTES])
{
    snprintf(out, KITH__KEY_NEXT_NAME_BYTES, "%s%016llx", KITH__KEY_NEXT_PREFIX,
             (unsigned long long)id);
}

int
kith__key_write_next(const char *dir, uint64_t id, const uint8_t sk[64])
{
    char name[KITH__KEY_NEXT_NAME_BYTES];
    int rc;

    kith__key_next_name(id, name);
    rc = key_write(dir, name, sk, false);
    if (rc == 0)
        rc = kith__fsync_dir(dir);
    return rc;
}

int
kith__key_read_next(const char *dir, uint64_t id, uint8_t sk[64])
{
    char name[KITH__KEY_NEXT_NAME_BYTES];

    kith__key_next_name(id, name);
    return kith__key_read(dir, name, sk);
}

int
kith__key_adopt_next(const char *dir, uint64_t id)
{
    char name[KITH__KEY_NEXT_NAME_BYTES], *src, *dst;
    int rc = 0;

    kith__key_next_name(id, name);
    src = kith__path_join(dir, name);
    dst = kith__path_join(dir, KITH__KEY_FILE);
    if (src == NULL || dst == NULL)
        rc = KITH_ENOMEM;
    else if (rename(src, dst) != 0)
        rc = errno == ENOENT ? KITH_ENOTFOUND : -errno;
    else
        rc = kith__fsync_dir(dir);
    free(src);
    free(dst);
    return rc;
}

int
kith__key_next_sweep(const char *dir, uint64_t keep)
{
    char name[KITH__KEY_NEXT_NAME_BYTES];
    size_t plen = strlen(KITH__KEY_NEXT_PREFIX);
    struct dirent *e;
    DIR *d = opendir(dir);
    int rc = 0, fd;

    if (d == NULL)
        return -errno;
    fd = dirfd(d);
    kith__key_next_name(keep, name);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, KITH__KEY_NEXT_PREFIX, plen) == 0 && strcmp(e->d_name, name) != 0 &&
            unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT)
            rc = -errno;
    closedir(d);
    return rc;
}

int
kith__key_wipe_open(const char *dir)
{
    char *p = kith__path_join(dir, KITH__KEY_FILE);
    int fd;

    if (p == NULL)
        return KITH_ENOMEM;
    fd = open(p, O_RDWR | O_CLOEXEC);
    free(p);
    return fd >= 0 ? fd : -errno;
}

int
kith__key_wipe(int fd)
{
    static const uint8_t zeros[64];
    int rc = 0;

    if (pwrite(fd, zeros, sizeof zeros, 0) != (ssize_t)sizeof zeros || fsync(fd) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Rename dir/key.tmp to dir/key and fsync the directory: the last step of a creation. */
int
kith__key_commit(const char *dir)
{
    char *tmp = kith__path_join(dir, KITH__KEY_TMP), *dst = kith__path_join(dir, KITH__KEY_FILE);
    int rc = 0;

    if (tmp == NULL || dst == NULL)
        rc = KITH_ENOMEM;
    else if (rename(tmp, dst) != 0)
        rc = -errno;
    else
        rc = kith__fsync_dir(dir);
    free(tmp);
    free(dst);
    return rc;
}

int
kith__key_read(const char *dir, const char *name, uint8_t sk[64])
{
    char *p = kith__path_join(dir, name);
    struct stat st;
    size_t off = 0;
    int fd, rc = 0;

    if (p == NULL)
        return KITH_ENOMEM;
    fd = open(p, O_RDONLY | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return errno == ENOENT ? KITH_ECORRUPT : -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (st.st_size != 64) {
        rc = KITH_ECORRUPT;
        goto out_close;
    }
    while (off < 64) {
        ssize_t n = read(fd, sk + off, 64 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : KITH_ECORRUPT;
            goto out_close;
        }
        off += (size_t)n;
    }
out_close:
    close(fd);
    return rc;
}

/* 0 if `dir` holds nothing but what an interrupted creation leaves (lock.mdb, key.tmp, and
 * data.mdb when `with_data`), else KITH_ECORRUPT. */
int
kith__dir_only_ours(const char *dir, bool with_data)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (d == NULL)
        return -errno;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, "lock.mdb") == 0 || strcmp(e->d_name, KITH__KEY_TMP) == 0 ||
            (with_data && strcmp(e->d_name, "data.mdb") == 0))
            continue;
        rc = KITH_ECORRUPT;
    }
    closedir(d);
    return rc;
}
