/*
 * pin.h: bind sources that no container can swap.
 *
 * A path inside the alloc dir is writable by the tasks' containers: one of
 * them can replace a directory by a symlink to / between any check drvctl
 * makes and the moment Docker resolves the path at start. So a bind source
 * there is opened beneath its root without following any symlink (openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, one component at a time), and the
 * opened object is bind-mounted (mount of /proc/self/fd/N) onto a staging
 * path in a root-only directory; Docker is given the staging path, which
 * keeps naming that object whatever happens to the original path later.
 *
 *   pin_bind(alloc_dir, "alloc/data/x", 1, "<data_dir>/binds/<id>-1-3", &err);
 *   ... create and start the container (runc makes its own mounts) ...
 *   pin_release("<data_dir>/binds/<id>-1-3", &err);
 *
 * Where mount(2) is not permitted, pin_bind fails (DRV_EDENIED): there is no
 * unpinned fallback.
 */
#ifndef DRV_PIN_H
#define DRV_PIN_H

#include "err.h"

/// Opens `rel` (a relative path, components separated by '/', no "..")
/// beneath the directory `root` with O_PATH, refusing symlinks in every
/// component. With `create`, missing components are made as directories
/// (0755), as Docker does for a missing bind source. Returns the fd (>= 0),
/// or a negative code: DRV_EDENIED (symlink, "..", escape, not a directory
/// or regular file), DRV_ETASK (missing without `create`), DRV_EIO.
int pin_open(const char *root, const char *rel, int create, drv_err *err);

/// pin_open for something that is not a bind source: messages name `what`
/// ("image archive") instead.
int pin_open_as(const char *what, const char *root, const char *rel, int create, drv_err *err);

/// pin_open, then bind-mounts the opened directory or file onto `staging`
/// (created as an empty directory 0700 or file 0600; it must not exist).
/// On failure nothing is left behind. EPERM/EACCES from mount give
/// DRV_EDENIED.
int pin_bind(const char *root, const char *rel, int create, const char *staging,
             drv_err *err);

/// Unmounts `staging` (MNT_DETACH) and removes it. A staging path that does
/// not exist is fine (0).
int pin_release(const char *staging, drv_err *err);

/// Makes `dir` a directory only its owner can enter: creates it (parents
/// 0755, itself 0700) or, when it exists with group or other bits, chmods it
/// to 0700 and says so at info level. Refuses a symlink (unless `follow`), a
/// non-directory, or a directory owned by another user (DRV_ECONFIG).
int pin_private_dir(const char *dir, int follow, drv_err *err);

#endif
