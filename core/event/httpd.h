/*
 * httpd.h: the agent's local HTTP/1.1 + JSON server on a unix socket, on a
 * libuv loop.
 *
 * The socket: bound in a fresh 0700 directory beside `path`, made 0600 and
 * renamed over `path`, so it is never reachable with wider rights; owned by
 * the process's user. An existing socket at `path` is replaced only when
 * nothing answers on it; anything else there (a file, a directory, a
 * symlink, a live socket) is refused.
 *
 * Every accepted connection's peer is checked (SO_PEERCRED) before a byte is
 * read: only the process's own uid and root are served; others get 403 and
 * are closed. Beyond `max_conns` served connections, a new one gets 503.
 *
 * Requests (httpreq: request line and headers at most `max_head` bytes, else
 * 431; body at most `max_body`, else 413; malformed: 400) are routed by a
 * table of (method, path, exact or prefix) -> handler: an unknown path is a
 * 404, a known path with another method a 405. Keep-alive and pipelining:
 * the requests of one connection are handled one at a time, in order; the
 * next one is read only once the previous response is fully written. A
 * connection with no request in progress is closed after `idle_timeout_ms`.
 *
 * A handler answers at once or later through its httpd_res: httpd_res_json
 * (status and body together), or httpd_res_start + httpd_res_write... +
 * httpd_res_end (a chunked stream). Streams have backpressure: write returns
 * HTTPD_RES_FULL once `stream_high_water` bytes wait for the client, and the
 * on_drain callback runs when they are written; a stream that lets more than
 * `stream_max_pending` bytes pile up (a client that never reads) is aborted.
 * A handler that answers later must set on_close: it runs exactly once, from
 * the loop, when the response is over (written, or aborted because the
 * client left or the server closed); the request and response are invalid
 * after it.
 */
#ifndef DRV_HTTPD_H
#define DRV_HTTPD_H

#include <stddef.h>
#include <uv.h>

#include "err.h"
#include "httpreq.h"

#define HTTPD_MAX_CONNS 64
#define HTTPD_IDLE_TIMEOUT_MS 30000
#define HTTPD_STREAM_HIGH_WATER ((size_t)64 * 1024)
#define HTTPD_STREAM_MAX_PENDING ((size_t)1024 * 1024)

/// httpd_res_write: queued, but the client is behind; wait for on_drain.
#define HTTPD_RES_FULL 1

typedef struct httpd httpd;
typedef struct httpd_res httpd_res;

/// Handles one request; answers through `res` now or later.
typedef void (*httpd_handler)(void *ud, const httpreq *req, httpd_res *res);

/// The response is over: `aborted` is 0 when all of it was written, 1 when
/// the client left, did not read, or the server closed.
typedef void (*httpd_close_cb)(void *ud, httpd_res *res, int aborted);

/// A stream's queued bytes went below half the high-water mark.
typedef void (*httpd_drain_cb)(void *ud, httpd_res *res);

typedef struct httpd_route {
    const char *method;     /* "GET", "POST", ... */
    const char *path;       /* "/v1/jobs" */
    int prefix;             /* 1: also "/v1/jobs/..." (whole segments) */
    httpd_handler handler;
    void *ud;
} httpd_route;

typedef struct httpd_opts {
    const char *path;              /* the socket path (required) */
    const httpd_route *routes;     /* the table (copied) */
    size_t nroutes;
    size_t max_head;               /* 0: HTTPREQ_MAX_HEAD */
    size_t max_body;               /* 0: HTTPREQ_MAX_BODY */
    int max_conns;                 /* 0: HTTPD_MAX_CONNS */
    unsigned idle_timeout_ms;      /* 0: HTTPD_IDLE_TIMEOUT_MS */
    size_t stream_high_water;      /* 0: HTTPD_STREAM_HIGH_WATER */
    size_t stream_max_pending;     /* 0: HTTPD_STREAM_MAX_PENDING */
} httpd_opts;

/// Creates the socket (see above) and starts serving on `loop`.
int httpd_new(httpd **out, uv_loop_t *loop, const httpd_opts *o, drv_err *err);

/// Stops listening, aborts every connection (on_close runs with aborted=1),
/// removes the socket file if it is still the one this server made, and
/// frees the server once every handle is closed. Safe with NULL.
void httpd_close(httpd *s);

/// Served connections open now (refused ones not counted).
int httpd_conns(const httpd *s);

/// Sends `status` with a JSON body (Content-Length), all at once.
int httpd_res_json(httpd_res *res, int status, const char *json, size_t len, drv_err *err);

/// Sends `status` with {"error": msg} (escaped).
int httpd_res_error(httpd_res *res, int status, const char *msg, drv_err *err);

/// Starts a chunked stream with `status` and `content_type` (NULL: JSON).
int httpd_res_start(httpd_res *res, int status, const char *content_type, drv_err *err);

/// Queues stream bytes: 0, HTTPD_RES_FULL (queued; wait for on_drain), or
/// a negative code (DRV_ECANCELED: the response was aborted; DRV_EIO: the
/// client is too far behind, the response is now aborted).
int httpd_res_write(httpd_res *res, const char *data, size_t len, drv_err *err);

/// Ends the stream.
int httpd_res_end(httpd_res *res, drv_err *err);

void httpd_res_on_close(httpd_res *res, httpd_close_cb cb, void *ud);
void httpd_res_on_drain(httpd_res *res, httpd_drain_cb cb, void *ud);

/// Bytes queued for the client and not yet written.
size_t httpd_res_pending(const httpd_res *res);

#endif
