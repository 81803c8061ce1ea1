/*
 * allocrec.h: the durable record of one allocation,
 * <data_dir>/state/allocs/<alloc_id>.json, written atomically (state.h)
 * before anything of the alloc exists (its dirs, artifacts, containers) and
 * again when it ends. `drvctl gc` reads it to tell which alloc dirs may go;
 * the agent (issue 10) extends it. Format, version 1:
 *
 *   {"version":1,"alloc_id":"<uuid>","job":"web","group":"g",
 *    "owner":{"pid":12,"start":345,"boot":"<boot id>"},   owner.h
 *    "created":1700000000000,                 ms since the epoch
 *    "status":"running",                      "running" | "ended" (others:
 *                                             a later version's, kept as is)
 *    "ended":0,                               ms since the epoch, 0 while running
 *    "keep_containers":false,                 docker.cleanup.container = false
 *    "tasks":[{"task":"web","container":"web-<uuid>",
 *              "exit_code":0,                 when the container's exit was collected
 *              "oom_killed":false,
 *              "error":"...",                 the driver failure, when one ended it
 *              "left_behind":false,           the container may still exist
 *              "kept":false}]}                kept stopped for inspection
 *
 * A reader accepts members it does not know (a later version adds them);
 * a record whose version is above ALLOCREC_VERSION is read but flagged
 * (`newer`) so that older code leaves it alone.
 */
#ifndef DRV_ALLOCREC_H
#define DRV_ALLOCREC_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "owner.h"
#include "state.h"

#define ALLOCREC_VERSION 1
#define ALLOCREC_DIR "allocs"         /* under <data_dir>/state */

typedef struct allocrec_task {
    char *task;
    char *container;           /* container name, or NULL */
    int has_exit;              /* exit_code is the container's */
    long exit_code;
    int oom_killed;
    char *error;               /* driver failure, or NULL */
    int left_behind;
    int kept;
} allocrec_task;

typedef struct allocrec {
    int version;
    int newer;                 /* read from a version above ALLOCREC_VERSION */
    char *alloc_id;
    char *job;
    char *group;
    owner owner;
    long long created_ms;
    char *status;              /* "running", "ended" */
    long long ended_ms;
    int keep_containers;
    allocrec_task *tasks;
    size_t ntasks;
} allocrec;

/// 1 when `id` has the shape of an alloc id (8-4-4-4-12 lower-case hex).
int allocrec_id_ok(const char *id);

/// 1 when the record says the alloc has ended.
int allocrec_ended(const allocrec *r);

/// Appends a task entry (copies the strings); returns it.
allocrec_task *allocrec_add_task(allocrec *r, const char *task, const char *container);

void allocrec_encode(const allocrec *r, buf *out);
/// DRV_EINVALID for text that is not a record (names `what` in err).
int allocrec_decode(const char *s, size_t n, const char *what, allocrec *out, drv_err *err);

/// Opens <data_dir>/state/allocs (with `create`, making it; without, *out
/// is NULL when it does not exist).
int allocrec_open(const char *data_dir, int create, state **out, drv_err *err);

/// Writes "<alloc_id>.json" atomically.
int allocrec_write(state *allocs, const allocrec *r, drv_err *err);
/// Reads "<alloc_id>.json": DRV_ENOTFOUND when missing.
int allocrec_read(state *allocs, const char *alloc_id, allocrec *out, drv_err *err);
/// Removes "<alloc_id>.json".
int allocrec_remove(state *allocs, const char *alloc_id, drv_err *err);

/// The alloc ids that have a record, sorted (state_list_free).
int allocrec_list(state *allocs, char ***ids, size_t *n, drv_err *err);

/// Milliseconds since the epoch, now.
long long allocrec_now_ms(void);

void allocrec_free(allocrec *r);

#endif
