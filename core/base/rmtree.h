/*
 * rmtree.h: removes a directory tree that untrusted code wrote (an alloc
 * dir: tasks run as container uids and may plant symlinks, bind-mount
 * leftovers, read-only or unreadable directories, trees thousands of levels
 * deep).
 *
 * Every step is relative to a directory fd: fstatat/statx with
 * AT_SYMLINK_NOFOLLOW, openat with O_NOFOLLOW | O_DIRECTORY, unlinkat. A
 * symlink is removed, never followed. A directory on another file system or
 * another mount (st_dev, the mount id, STATX_ATTR_MOUNT_ROOT) is not
 * entered: it is kept, with the directories that lead to it, and reported.
 * A directory that cannot be written or read is made so (chmod u+rwx through
 * its fd) before its entries go. The walk is iterative (no recursion) and
 * holds at most RMTREE_OPEN_DIRS directory fds; deeper levels are reopened
 * through ".." and checked (device and inode) against what was entered, so
 * a directory moved meanwhile stops the removal instead of misleading it.
 */
#ifndef DRV_RMTREE_H
#define DRV_RMTREE_H

#include "err.h"

#define RMTREE_OPEN_DIRS 64

typedef struct rmtree_result {
    unsigned long long bytes;    /* allocated bytes of the files removed */
    unsigned long long entries;  /* entries removed (the top dir included) */
    unsigned long kept;          /* entries left: mount points, failures */
} rmtree_result;

/// Called for each entry left in place; `path` is relative to the top
/// directory ("" for the top itself).
typedef void (*rmtree_report_fn)(void *ud, const char *path, const char *why);

/// Removes `name` beneath the directory `parentfd` with everything in it.
/// A missing `name` is 0 (nothing removed); a symlink or other non-directory
/// there is removed itself. DRV_EIO when something had to be kept (each
/// reported; err says how many) or the walk was stopped.
int rmtree_at(int parentfd, const char *name, rmtree_report_fn report, void *ud,
              rmtree_result *res, drv_err *err);

#endif
