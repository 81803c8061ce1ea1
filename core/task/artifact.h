/*
 * artifact.h: fetches one Nomad `artifact { source, destination, options {
 * checksum, archive } }` into a task directory, without ever leaving it.
 *
 * Sources (the plan already refused everything else; this re-checks):
 *   http://, https://  through http.h, restricted to http and https on every
 *                      redirect; each connection's resolved address is
 *                      checked (loopback, link-local, private, unspecified
 *                      and CGNAT addresses are refused unless allow_private);
 *                      proxies from the environment are not used.
 *   local_path         a regular file beneath local_root (an operator's
 *                      client.artifact.local_dirs entry), opened with
 *                      openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS).
 *
 * The destination task_dir/dest is opened with openat2(RESOLVE_BENEATH|
 * RESOLVE_NO_SYMLINKS) (created one component at a time, lazily: a refused
 * fetch creates nothing). The body streams into a hidden temporary file
 * there while the checksum is computed, then is renamed to its final name
 * (the last URL path segment) or unpacked with libarchive in a child process
 * that is chrooted (or, when not root, chdir'ed) into the destination, with
 * ARCHIVE_EXTRACT_SECURE_{SYMLINKS,NODOTDOT,NOABSOLUTEPATHS}, into a hidden
 * staging directory that is merged into the destination only on success.
 * On any failure or cancel, nothing downloaded or unpacked is left behind.
 *
 * checksum: NULL or "md5:HEX", "sha1:HEX", "sha256:HEX", "sha512:HEX".
 * archive:  NULL      by name: unpack *.tar.gz *.tgz *.tar.bz2 *.tbz2
 *                     *.tar.xz *.txz *.zip; decompress *.gz *.bz2 *.xz to
 *                     the name without the suffix; keep everything else
 *                     (so `load = "image.tar"` finds its file);
 *           "false"   never unpack;
 *           "tar", "tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz",
 *           "zip"     always unpack (the format is detected from the data);
 *           "gz", "bz2", "xz"  always decompress to one file.
 */
#ifndef DRV_ARTIFACT_H
#define DRV_ARTIFACT_H

#include <sys/socket.h>
#include <uv.h>

#include "err.h"
#include "http.h"

typedef struct artifact artifact;

/* Defaults for the agent's client.artifact block (see README). */
#define ARTIFACT_DEFAULT_MAX_SIZE        (10LL * 1024 * 1024 * 1024)  /* 10 GiB */
#define ARTIFACT_DEFAULT_READ_TIMEOUT_MS (30L * 60 * 1000)            /* 30 min */
#define ARTIFACT_DEFAULT_UNPACK_BYTES    (10LL * 1024 * 1024 * 1024)  /* 10 GiB */
#define ARTIFACT_DEFAULT_UNPACK_FILES    4096LL

/// Runs exactly once per successful artifact_fetch(), on the loop thread:
/// rc is 0, or a negative code (DRV_EARTIFACT, DRV_ECANCELED, ...) with `err`
/// set. The artifact is freed right after the callback returns.
typedef void (*artifact_done_cb)(void *ud, int rc, const drv_err *err);

typedef struct artifact_opts {
    const char *source;     /* as the job wrote it: http(s) URL, file:// URL
                               or absolute path (messages use it as is) */
    const char *task_dir;   /* absolute; must exist */
    const char *dest;       /* relative to task_dir, lexically clean ("" or
                               "." is the task dir itself) */
    const char *checksum;   /* or NULL */
    const char *archive;    /* or NULL (see above) */
    const char *local_path; /* local sources: the absolute, clean path (the
                               plan decodes file:// URLs), else NULL */
    const char *local_root; /* local sources: the allowed directory that
                               local_path lies beneath */
    long timeout_ms;        /* whole download; 0 = none */
    long read_timeout_ms;   /* no byte for this long fails it; 0 = default */
    long long max_size;     /* bytes downloaded; 0 = default */
    long long max_unpacked_bytes;  /* 0 = default */
    long long max_unpacked_files;  /* entries; 0 = default */
    int allow_private;      /* connect to private/loopback/link-local too */
    artifact_done_cb on_done;
    void *ud;
} artifact_opts;

/// Starts a fetch. On failure (bad options, a refused local source, ...)
/// returns a negative code with `err` set and on_done never runs. `out` may
/// be NULL. The options' strings are copied.
int artifact_fetch(http_client *c, uv_loop_t *loop, const artifact_opts *o,
                   artifact **out, drv_err *err);

/// Stops a fetch in progress; on_done then runs with DRV_ECANCELED (unless
/// the fetch already completed successfully in the meantime). The pointer
/// must not be used after on_done has run.
void artifact_cancel(artifact *a);

/// Why an address may not be reached without allow_private ("loopback",
/// "private", "link-local", "unspecified", "shared (CGNAT)", "multicast",
/// "reserved"), or NULL when it is a public address. IPv4-mapped,
/// -compatible and NAT64 IPv6 addresses are judged by their IPv4 part.
/// The same as netaddr_class (netaddr.h), which the registry check shares.
const char *artifact_addr_class(const struct sockaddr *sa);

#endif
