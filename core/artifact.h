/*
 * artifact.h: fetches one Nomad `artifact { source, destination, options {
 * checksum } }` into a task directory.
 *
 * The download streams (through http.h) into a hidden temporary file in
 * dest_dir while the checksum is computed; after verification the file is
 * renamed to its final name (the last segment of the URL path), or unpacked
 * with the system `tar` and deleted. On any failure no downloaded file is
 * left behind.
 *
 * Sources: http://, https://, file:// URLs, or an absolute path.
 * checksum: NULL or "md5:HEX", "sha1:HEX", "sha256:HEX", "sha512:HEX".
 * archive:  NULL      unpack "*.tar.gz" and "*.tgz", keep everything else
 *                     (so `load = "image.tar"` finds its file);
 *           "false"   never unpack;
 *           "tar", "tar.gz", "tgz"  always unpack (gzip for the latter two).
 */
#ifndef DRV_ARTIFACT_H
#define DRV_ARTIFACT_H

#include <uv.h>

#include "err.h"
#include "http.h"

typedef struct artifact artifact;

/// Runs exactly once per successful artifact_fetch(), on the loop thread:
/// rc is 0, or a negative code (DRV_EARTIFACT, DRV_ECANCELED, ...) with `err`
/// set. The artifact is freed right after the callback returns.
typedef void (*artifact_done_cb)(void *ud, int rc, const drv_err *err);

typedef struct artifact_opts {
    const char *source;     /* URL or absolute path */
    const char *dest_dir;   /* absolute; created (with parents) if missing */
    const char *checksum;   /* or NULL */
    const char *archive;    /* or NULL (see above) */
    long timeout_ms;        /* whole download; 0 = none */
    artifact_done_cb on_done;
    void *ud;
} artifact_opts;

/// Starts a fetch. On failure (bad options, unwritable dest_dir, ...) returns
/// a negative code with `err` set and on_done never runs. `out` may be NULL.
/// The options' strings are copied.
int artifact_fetch(http_client *c, uv_loop_t *loop, const artifact_opts *o,
                   artifact **out, drv_err *err);

/// Stops a fetch in progress; on_done then runs with DRV_ECANCELED (unless
/// the fetch already completed successfully in the meantime). The pointer
/// must not be used after on_done has run.
void artifact_cancel(artifact *a);

#endif
