/*
 * allocgc.h: which alloc dirs and records `drvctl gc` removes, and the
 * removal (no Docker calls here: the caller lists the containers).
 *
 *   allocgc_scan   reads <data_dir>/alloc and <data_dir>/state/allocs and
 *                  picks the candidates: records that say "ended", records
 *                  whose owner process is gone (pid dead, or reused: start
 *                  time or boot id differ), and, with `orphans`, alloc dirs
 *                  without a record (left by older versions). Records of a
 *                  live owner are never candidates; records of a later
 *                  version are left alone (reported).
 *   allocgc_apply  given every container labelled drvctl.alloc_id (all
 *                  states), removes each candidate that has none: its stale
 *                  bind pins (<data_dir>/binds/<id>-*), its alloc dir
 *                  (rmtree.h: no symlink followed, mount points kept) and
 *                  then its record. A candidate with a container left is
 *                  kept and reported with the command that removes it
 *                  (`docker rm` for containers kept on purpose by
 *                  docker.cleanup.container = false, `docker rm -f`
 *                  otherwise); gc never removes containers itself.
 *
 * Directories are listed before records, and a run writes its record
 * before it creates its alloc dir, so an alloc dir a run is creating
 * concurrently is never taken for an orphan. One gc at a time per data dir
 * (an flock on state/allocs/gc.lock).
 */
#ifndef DRV_ALLOCGC_H
#define DRV_ALLOCGC_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

typedef struct allocgc_container {
    char *alloc_id;
    char *name;                /* without the leading '/' */
    char *state;               /* "running", "exited", ... */
} allocgc_container;

typedef struct allocgc_cand {
    char *alloc_id;
    char *job;                 /* or NULL (no record) */
    int has_record;
    int kept_on_purpose;       /* the record keeps containers (cleanup.container = false) */
    const char *why;           /* "ended", "owner gone", "no record" */
} allocgc_cand;

typedef struct allocgc {
    char *data_dir;
    int orphans;
    allocgc_cand *c;
    size_t n;
    /* results of apply */
    size_t removed, kept, failed;
    unsigned long long bytes;
} allocgc;

/// Picks the candidates. Messages about what is left alone go to `errs`.
int allocgc_scan(allocgc *g, const char *data_dir, int orphans, FILE *errs, drv_err *err);

/// Removes the candidates without containers. Lines for removed allocs (or,
/// with `json`, one JSON object at the end) go to `out`, reports to `errs`.
/// Returns 0, or DRV_EIO when an alloc could not be removed completely.
int allocgc_apply(allocgc *g, const allocgc_container *cs, size_t ncs, int json, FILE *out,
                  FILE *errs, drv_err *err);

void allocgc_free(allocgc *g);
void allocgc_containers_free(allocgc_container *cs, size_t n);

/// Formats `bytes` as "312.4 MB" (powers of 1000) into out[0..n).
void allocgc_size(unsigned long long bytes, char *out, size_t n);

#endif
