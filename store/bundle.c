/*
 * bundle.c — bundle files: one batch behind an 8-byte header ("KITHBDL1"), the same bytes
 * kith_batch_create makes and kith_batch_apply takes (spec/storage.md "Bundle files").
 * Written through a temporary file, fsync and rename, so a bundle on disk is whole or
 * absent; read up to the batch limit, so an oversized file is refused before it is decoded.
 * The batch is built whole before the file is made, so a write cancelled through the progress
 * callback (spec/decisions.md D-11) leaves nothing behind, on stdout too.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUNDLE_MAGIC "KITHBDL1"
#define BUNDLE_MAGIC_BYTES 8

static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
kith_bundle_write(kith_replica *r, const kith_vv *since, const char *path, kith_batch_info *info)
{
    kith_batch_opts opts = {.since = since};
    kith_batch_info bi;
    kith_buf buf = {0};
    struct kith__progress pg;
    char *tmp = NULL;
    int fd = -1, rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL || path == NULL || *path == '\0')
        return KITH_EINVAL;
    kith__progress_init(&pg, r, KITH_PROGRESS_BUILD);
    rc = kith__batch_create(r, &opts, NULL, &buf, &bi, kith__progress_live(&pg));
    if (rc < 0)
        return rc;
    if (bi.has_more) {
        rc = kith__fail(r, KITH_ETOOBIG,
                        "the ops do not fit in one bundle of %u bytes; "
                        "write several with --since",
                        KITH__MAX_BATCH_BYTES);
        goto out_free;
    }
    if (strcmp(path, "-") == 0) {
        rc = write_all(STDOUT_FILENO, (const uint8_t *)BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES);
        if (rc == 0)
            rc = write_all(STDOUT_FILENO, buf.data, buf.len);
        if (rc < 0)
            kith__fail(r, rc, "cannot write the bundle to stdout");
        goto out_free;
    }
    size_t n = strlen(path) + 16;
    tmp = malloc(n);
    if (tmp == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = kith__fail(r, -errno, "cannot create %s", tmp);
        goto out_free;
    }
    if (fchmod(fd, 0644) != 0 && errno != EPERM) {
        rc = -errno;
        goto out_unlink;
    }
    rc = write_all(fd, (const uint8_t *)BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES);
    if (rc == 0)
        rc = write_all(fd, buf.data, buf.len);
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    fd = -1;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0) {
        kith__fail(r, rc, "cannot write %s: %s", path, kith_strerror(rc));
        goto out_unlink;
    }
    if (info != NULL)
        *info = bi;
    goto out_free;
out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out_free:
    free(tmp);
    kith_free(buf.data);
    return rc;
}

int
kith_bundle_apply(kith_replica *r, const char *path, kith_apply_info *info)
{
    struct stat st;
    struct kith__progress pg;
    uint8_t *data = NULL;
    size_t off = 0, size;
    int fd, rc = 0;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL || path == NULL)
        return KITH_EINVAL;
    /* the start, before a read that may wait (a pipe): the total comes once it is decoded */
    kith__progress_init(&pg, r, KITH_PROGRESS_APPLY);
    if ((rc = kith__progress_report(kith__progress_live(&pg), 0, 0)) < 0)
        return rc;
    fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kith__fail(r, -errno, "cannot open %s", path);
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto out_close;
    }
    if (S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size > (uint64_t)KITH__MAX_BATCH_BYTES + BUNDLE_MAGIC_BYTES) {
        rc = kith__fail(r, KITH_ETOOBIG, "%s: %lld bytes, over the bundle limit", path,
                        (long long)st.st_size);
        goto out_close;
    }
    size = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 1 << 16;
    data = malloc(size);
    if (data == NULL) {
        rc = KITH_ENOMEM;
        goto out_close;
    }
    for (;;) {
        if (off == size) {
            if (size > (size_t)KITH__MAX_BATCH_BYTES + BUNDLE_MAGIC_BYTES) {
                rc = kith__fail(r, KITH_ETOOBIG, "%s: over the bundle limit", path);
                goto out_close;
            }
            uint8_t *p = realloc(data, size * 2);
            if (p == NULL) {
                rc = KITH_ENOMEM;
                goto out_close;
            }
            data = p;
            size *= 2;
        }
        ssize_t n = read(fd, data + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = kith__fail(r, -errno, "cannot read %s", path);
            goto out_close;
        }
        if (n == 0)
            break;
        off += (size_t)n;
    }
    if (off > (size_t)KITH__MAX_BATCH_BYTES + BUNDLE_MAGIC_BYTES) {
        rc = kith__fail(r, KITH_ETOOBIG, "%s: over the bundle limit", path);
        goto out_close;
    }
    if (off < BUNDLE_MAGIC_BYTES || memcmp(data, BUNDLE_MAGIC, BUNDLE_MAGIC_BYTES) != 0) {
        rc = kith__fail(r, KITH_EMALFORMED, "%s: not a kith bundle (bad header)", path);
        goto out_close;
    }
    rc = kith__batch_apply(r, data + BUNDLE_MAGIC_BYTES, off - BUNDLE_MAGIC_BYTES, info,
                           kith__progress_live(&pg));
out_close:
    if (fd != STDIN_FILENO)
        close(fd);
    free(data);
    return rc;
}
