/*
 * state.h: durable state under <data_dir>/state (ARCHITECTURE §8).
 *
 * Every file there is written through state_write: a unique temp file in the
 * same directory, write, fsync, rename over the name, fsync of the
 * directory. A reader (or a drvctl restarted after `kill -9` at any point)
 * sees the old content or the new one, never a mix. Names are flat: only
 * [A-Za-z0-9._-], not starting with '.', no "..". Names starting with '.'
 * are the temp files of writes in flight (".tmp-<pid>-..."); those of
 * processes that are gone are removed by state_open.
 *
 * Cross-process sections (read, decide, write) take state_lock on a lock
 * file "<name>.lock" (flock, released by state_unlock or on exit).
 */
#ifndef DRV_STATE_H
#define DRV_STATE_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

typedef struct state state;

/// Opens <data_dir>/state, creating data_dir (parents 0755, itself 0700)
/// and state (0700) if missing. data_dir may be a symlink the operator made;
/// state itself may not (DRV_ECONFIG), nor be owned by another user. A state
/// dir with group or other bits is made 0700.
int state_open(const char *data_dir, state **out, drv_err *err);

/// Like state_open but creates nothing: *out is NULL (and 0 returned) when
/// <data_dir>/state does not exist.
int state_open_existing(const char *data_dir, state **out, drv_err *err);

/// Opens the subdirectory `sub` (a valid name) of `parent` as a state of
/// its own ("<data_dir>/state/allocs"): created 0700 with `create`, else
/// *out is NULL (and 0 returned) when missing. A symlink or a directory
/// owned by another user is refused (DRV_ECONFIG).
int state_open_sub(state *parent, const char *sub, int create, state **out, drv_err *err);

void state_close(state *st);

/// The directory's path ("<data_dir>/state"), for messages.
const char *state_path(const state *st);

/// 1 if `name` is a valid state file name.
int state_name_ok(const char *name);

/// Atomically replaces (or creates) `name` with `len` bytes of `data`, mode
/// 0600. On failure the old content stays and no temp file is left.
int state_write(state *st, const char *name, const void *data, size_t len, drv_err *err);

/// Reads `name` into `out` (appended). DRV_ENOTFOUND when it does not
/// exist; a symlink is refused (DRV_EIO), as is a file over 16 MiB.
int state_read(state *st, const char *name, buf *out, drv_err *err);

/// Removes `name` and syncs the directory. A missing file is fine (0).
int state_remove(state *st, const char *name, drv_err *err);

/// The names starting with `prefix` ("" for all; temp files never), sorted.
/// *names is a NULL-terminated array; free it with state_list_free.
int state_list(state *st, const char *prefix, char ***names, size_t *n, drv_err *err);
void state_list_free(char **names);

/// Takes an exclusive flock on "<name>.lock" (created 0600), waiting for
/// it. *fd is the lock; state_unlock(*fd) releases it. A child forked
/// meanwhile shares the lock until it closes its copy of *fd.
int state_lock(state *st, const char *name, int *fd, drv_err *err);
void state_unlock(int fd);

#endif
