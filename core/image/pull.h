/*
 * pull.h: registry pulls through the Engine (POST /images/create), shared by
 * every task of a process.
 *
 * A `puller` de-duplicates pulls by "<image_repo>:<image_tag>": the first
 * waiter starts one Engine pull (with its X-Registry-Auth, if any); later
 * waiters for the same key join it. Every waiter gets every progress event
 * from then on (the layers seen before it joined are replayed first) and
 * the same result: the same code and message, and on success the image id
 * (confirmed by an inspect after the stream ended cleanly).
 *
 * The progress stream (one JSON object per line) is parsed incrementally
 * with the json.h scanner (pull_line_parse): per-layer state and bytes are kept
 * and fanned out. An error inside the HTTP 200 (`errorDetail.message`, else
 * `error`) fails the attempt.
 *
 * Failures: "not found", "manifest unknown", "repository does not exist",
 * a 404, "unauthorized", "authentication required" and "denied" fail at
 * once; connection errors, other 5xx answers, stream errors ("unknown
 * blob") and a cut stream are retried with backoff (1 s, 2 s; at most
 * PULL_MAX_ATTEMPTS attempts), all within the total timeout. No stream
 * line for `activity_timeout_ms` cancels the pull ("image pull aborted: no
 * progress for 2m0s"); so does `timeout_ms` in total. Both are final.
 *
 * A waiter that cancels leaves the pull to the others; when the last one
 * goes, the request is cancelled. Every libuv handle is freed in its close
 * callback.
 */
#ifndef DRV_PULL_H
#define DRV_PULL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "docker.h"
#include "err.h"
#include "script.h"

#define PULL_MAX_ATTEMPTS 3

/* --- the stream's lines ------------------------------------------------------ */

typedef enum pull_layer_state {
    PULL_LAYER_NONE = 0,
    PULL_LAYER_PULLING_FS,     /* "Pulling fs layer" */
    PULL_LAYER_WAITING,        /* "Waiting" */
    PULL_LAYER_DOWNLOADING,    /* "Downloading" (current/total bytes) */
    PULL_LAYER_VERIFYING,      /* "Verifying Checksum" */
    PULL_LAYER_DOWNLOADED,     /* "Download complete" */
    PULL_LAYER_EXTRACTING,     /* "Extracting" (current/total bytes) */
    PULL_LAYER_COMPLETE,       /* "Pull complete" */
    PULL_LAYER_EXISTS,         /* "Already exists" */
} pull_layer_state;

/// The status text Docker sends for `s` ("Downloading"), "" for NONE.
const char *pull_layer_state_name(pull_layer_state s);
/// The state for a status text, PULL_LAYER_NONE when it is no layer status.
pull_layer_state pull_layer_state_of(const char *status);

#define PULL_ID_MAX 72
/* One line of the stream, decoded. Strings are NUL-terminated; `status`
 * and `error` point into `store`. Absent numbers are -1. */
typedef struct pull_line {
    const char *status;        /* "" when absent */
    char id[PULL_ID_MAX];      /* "" when absent (or too long: cut) */
    const char *error;         /* errorDetail.message, else error; NULL */
    long long current, total;  /* progressDetail */
    buf store;
} pull_line;

void pull_line_init(pull_line *l);
/// Decodes one line (a JSON object). Unknown members are skipped; a line
/// that is no JSON object is DRV_EINVALID.
int pull_line_parse(pull_line *l, const char *s, size_t n, drv_err *err);
void pull_line_free(pull_line *l);

/* --- progress ------------------------------------------------------------------ */

typedef struct pull_layer {
    char id[PULL_ID_MAX];
    pull_layer_state state;
    long long current;         /* of the phase in progress (download, extract) */
    long long total;
    long long size;            /* download size once known, else 0 */
} pull_layer;

typedef struct pull_stats {
    size_t nlayers;            /* layers seen */
    size_t ndone;              /* complete, or existing already */
    size_t nexisting;          /* "Already exists" */
    long long bytes_done;      /* downloaded */
    long long bytes_total;     /* sizes known so far */
    int fresh;                 /* the image came from the registry (not up to date already) */
} pull_stats;

typedef enum pull_event_kind {
    PULL_EV_START,             /* a waiter began (sent by its owner, not the puller) */
    PULL_EV_LAYER,             /* a layer changed state or progressed */
    PULL_EV_STATUS,            /* any other status line ("Digest: ...", "Status: ...") */
    PULL_EV_RETRY,             /* the attempt failed and will be retried */
    PULL_EV_DONE,              /* the result (sent by the owner, from its done callback) */
} pull_event_kind;

typedef struct pull_event {
    pull_event_kind kind;
    const char *ref;           /* "repo:tag" or "repo@sha256:..." */
    const pull_layer *layer;   /* LAYER */
    int changed;               /* LAYER: its state changed (else bytes only) */
    const char *status;        /* STATUS: the text */
    int attempt;               /* RETRY: the next attempt (2, 3) */
    long delay_ms;             /* RETRY: before it */
    int rc;                    /* DONE: 0 or < 0 */
    const drv_err *err;        /* RETRY: why; DONE: the failure */
    const char *image_id;      /* DONE: on success */
    const pull_stats *stats;
    uint64_t elapsed_ms;       /* since the pull started */
} pull_event;

/* --- the puller ------------------------------------------------------------------ */

typedef struct puller puller;
typedef struct pull_waiter pull_waiter;

typedef struct puller_opts {
    uv_loop_t *loop;
    docker *docker;
    script *script;            /* decodes error bodies and the inspect */
    long retry_base_ms;        /* first backoff (doubles); 0: 1000 */
} puller_opts;

typedef struct pull_request {
    const char *repo;          /* image_repo */
    const char *tag;           /* image_tag ("sha256:<hex>" for a digest) */
    const char *auth;          /* X-Registry-Auth value, or NULL (never shown) */
    long timeout_ms;           /* image_pull_timeout; <= 0: 300000 */
    long activity_timeout_ms;  /* pull_activity_timeout; <= 0: 120000 */
} pull_request;

typedef void (*pull_event_cb)(void *ud, const pull_event *ev);
/// The result: rc 0 with the image id ("sha256:..."), or rc < 0 with `err`
/// (DRV_EIMAGE, "pull \"<ref>\": <why>"). From the loop, once, never before
/// puller_pull returns; the waiter is gone afterwards.
typedef void (*pull_done_cb)(void *ud, int rc, const char *image_id, const pull_stats *stats,
                             const drv_err *err);

int puller_new(puller **out, const puller_opts *o, drv_err *err);
/// Cancels every pull (no callback runs) and frees the puller once its
/// requests and handles are closed (run the loop).
void puller_close(puller *p);

/// Waits for the image `q` names, starting its pull unless one runs. `ev`
/// may be NULL. The strings in `q` are copied.
int puller_pull(puller *p, const pull_request *q, pull_event_cb ev, pull_done_cb done, void *ud,
                pull_waiter **out, drv_err *err);
/// Stops waiting: no callback runs for `w` after this. The last waiter of a
/// pull cancels its request.
void pull_waiter_cancel(pull_waiter *w);

/// Engine pulls started (attempts counted), for tests and the bench.
unsigned long puller_requests(const puller *p);

/// "repo:tag", or "repo@sha256:..." when the tag is a digest.
void pull_ref(buf *out, const char *repo, const char *tag);
/// A duration as Go prints it: "2m0s", "30s", "1.5s", "250ms".
void pull_duration(buf *out, long ms);

#endif
