/*
 * ports.h: host port allocation for task networks. A port is never handed
 * out twice: not to two tasks, not to two drvctl processes sharing a data
 * dir, and never when some socket on the host already holds it.
 *
 * Cross-process state lives under <data_dir>/state/ (state.h, every file
 * written atomically): `ports.lock` (flock, held while allocating and
 * releasing) and one record per alloc, `ports-<alloc_id>.json`:
 *
 *   {"version":1,"alloc_id":"<id>","owner":{"pid":P,"start":S},
 *    "ports":[{"port":N,"key":"<alloc_id>/<task>/<label>"},...]}
 *
 * The owner is the process that reserved the ports: its pid and its start
 * time (/proc/<pid>/stat field 22, clock ticks since boot), so a recycled
 * pid is not mistaken for the owner. Records of owners that are gone are
 * stale and reclaimed by the next allocation, so a crashed drvctl leaks
 * nothing for long.
 */
#ifndef DRV_PORTS_H
#define DRV_PORTS_H

#include <stddef.h>

#include "err.h"

/* Nomad's client defaults for the dynamic range. */
#define PORTS_MIN_DYNAMIC 20000
#define PORTS_MAX_DYNAMIC 32000

typedef struct port_req {
    const char *key;      /* "<alloc_id>/<task>/<label>": messages name task and label */
    int static_port;      /* 0: dynamic */
    int result;           /* the allocated port, set on success */
    const char *alloc_id; /* the alloc the port is recorded under; NULL: the
                             key up to its first '/' */
} port_req;

/// Allocates every request, all or nothing: static ports are honoured if
/// free, else DRV_EINVALID `task "web": static port 8080 ("http") is already
/// in use`; dynamic ones are picked at random from [min, max] (a linear scan
/// after a few tries), DRV_ETASK when the range has no free port left. `ip`
/// is the node address (also checked: 0.0.0.0). Records the ports of each
/// alloc in that alloc's record, owned by this process (an earlier record of
/// this process for the alloc is extended; one of another live process is
/// DRV_EINTERNAL), before returning.
int ports_reserve(const char *data_dir, const char *ip, int min, int max,
                  port_req *reqs, size_t n, drv_err *err);

/// Like ports_reserve but writes nothing and creates no directory (for
/// `drvctl plan`): the result shows ports that were free at that moment.
int ports_peek(const char *data_dir, const char *ip, int min, int max,
               port_req *reqs, size_t n, drv_err *err);

/// Removes the ports of `reqs` (their `result`) from the records of their
/// allocs that this process owns; a record left without ports is removed.
/// Returns 0, or DRV_EIO if a record could not be updated.
int ports_release(const char *data_dir, const port_req *reqs, size_t n);

/// 1 if binding `port` on `ip` or 0.0.0.0 (TCP or UDP) fails with
/// EADDRINUSE, else 0.
int ports_bound(const char *ip, int port);

#endif
