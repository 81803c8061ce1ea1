/*
 * imagetar.h: what a `docker save` archive would tag, read before it is
 * handed to POST /images/load. Docker tags every name the archive lists
 * (manifest.json "RepoTags", or the legacy "repositories" file), silently
 * re-pointing tags that already exist, so a job's archive could replace
 * "alpine:latest" under every other task. This reads those files (bounded)
 * for driver.decode("load_manifest"), which allows only the task's own image.
 *
 * The archive may be compressed (gzip, bzip2, xz: Docker accepts them).
 * Entry names are cleaned the way extraction resolves them ("./x", "a/../x",
 * "/x" all name "x"). Refused: not a tar, an unreadable entry, one of the
 * files listed twice, not a regular file (a link, a directory), or larger
 * than IMAGETAR_MAX_FILE.
 */
#ifndef DRV_IMAGETAR_H
#define DRV_IMAGETAR_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define IMAGETAR_MAX_FILE ((size_t)1024 * 1024)

typedef struct imagetar {
    buf manifest;          /* manifest.json */
    buf repositories;      /* repositories (legacy format) */
    buf index;             /* index.json (OCI layout) */
    int has_manifest, has_repositories, has_index;
} imagetar;

/// Reads `path`; on failure `err` says why, quoting the path.
int imagetar_read(const char *path, imagetar *out, drv_err *err);
/// Reads the archive open on `fd` (left open, at an unspecified offset);
/// `path` is for messages. With fd < 0, opens `path` as imagetar_read.
int imagetar_read_fd(int fd, const char *path, imagetar *out, drv_err *err);
void imagetar_free(imagetar *t);

/// The JSON object driver.decode("load_manifest") takes: {"image": image,
/// "manifest": text, "repositories": text, "index": text} (absent files
/// left out; every value a JSON string, whatever bytes the archive held).
void imagetar_json(const imagetar *t, const char *image, buf *out);

#endif
