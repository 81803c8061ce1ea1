/*
 * http.h: libcurl multi interface driven by a libuv loop. Transport only; it
 * knows nothing of Docker. Every request is asynchronous: http_start() returns
 * at once and `on_done` runs later on the loop thread, exactly once, unless
 * http_start() itself failed (then no callback runs).
 */
#ifndef DRV_HTTP_H
#define DRV_HTTP_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <uv.h>

#include "buf.h"
#include "err.h"

/* Default cap on a collected response body, and the fixed cap on the
 * response header block (status line and headers together). */
#define HTTP_MAX_BODY ((size_t)16 * 1024 * 1024)
#define HTTP_MAX_HEAD ((size_t)64 * 1024)

/* TCP keepalive of every connection to a tcp endpoint: an endless stream
 * (logs, events, wait) through a dead peer or a NAT that forgot it fails
 * after idle + probes * interval instead of hanging forever. */
#define HTTP_KEEPALIVE_IDLE_S 30L
#define HTTP_KEEPALIVE_INTVL_S 10L

/* Start of the message of a transport failure in the TLS layer (handshake,
 * certificate verification, the peer refusing the client certificate). */
#define HTTP_TLS_PREFIX "tls: "
/* Message of a plain-HTTP transfer whose peer accepted the TCP connection and
 * closed it without any HTTP answer (e.g. a TLS port). */
#define HTTP_NO_ANSWER "the peer closed the connection without an HTTP answer"

typedef struct http_client http_client;
typedef struct http_req http_req;

/// Returned by an http_data_cb: the bytes were NOT consumed; the request is
/// paused (as by http_pause) and the same bytes come again after http_resume.
#define HTTP_DATA_PAUSE 1

/// Streaming body bytes of a response whose status is 2xx (other statuses are
/// always collected into the body passed to on_done). Returns 0 (consumed),
/// HTTP_DATA_PAUSE (backpressure: not consumed, pause), or a negative code to
/// abort the transfer (on_done then gets that code).
typedef int (*http_data_cb)(void *ud, const char *data, size_t len);

/// Called once the status line and headers are in (optional). Runs inside
/// libcurl: it must not start or cancel requests (defer that to the loop).
typedef void (*http_head_cb)(void *ud, http_req *r, long status);

/// `rc` is 0 when a response arrived (any status), else a negative code with
/// `err` describing the transport failure (DRV_ECANCELED after http_cancel).
/// `body` holds the collected body (empty when streamed). Both pointers are
/// valid only during the call.
typedef void (*http_done_cb)(void *ud, http_req *r, int rc, long status, const buf *body,
                             const drv_err *err);

/// Asked before every connection libcurl opens (redirects included) with the
/// resolved address. Returns 0 to allow it, nonzero to refuse it (libcurl then
/// tries the next address, or fails the transfer as unable to connect).
typedef int (*http_connect_cb)(void *ud, const struct sockaddr *addr);

typedef struct http_opts {
    const char *method;        /* "GET" (default), "POST", "DELETE", "HEAD" */
    const char *url;           /* absolute URL: http://, https://, file:// (copied) */
    const char *unix_socket;   /* connect through this socket, or NULL */
    const char *content_type;  /* sets Content-Type when not NULL */
    const char *body;          /* request body (copied), or NULL */
    size_t body_len;
    FILE *upload;              /* stream this file as the body instead (not closed) */
    const char *const *headers;/* NULL-terminated extra "Name: value" lines */
    long timeout_ms;           /* whole-transfer limit; 0 = none (streams) */
    long connect_timeout_ms;   /* 0 = libcurl default */
    const char *ca_file;       /* TLS: CA bundle, client cert and key (or NULL) */
    const char *cert_file;
    const char *key_file;
    int insecure;              /* TLS: skip peer verification */
    size_t max_body;           /* collected body limit; 0 = HTTP_MAX_BODY.
                                  A larger body ends the transfer with
                                  DRV_EINVALID (streamed bytes not counted) */
    const char *protocols;     /* libcurl protocol list for the URL and any
                                  redirect; NULL: "http,https,file" */
    long low_speed_time_s;     /* fail when no byte arrives for this long */
    long keepalive_idle_s;     /* TCP keepalive on tcp endpoints (not unix
                                  sockets): first probe after this much
                                  idle time; 0 = HTTP_KEEPALIVE_IDLE_S */
    int no_proxy;              /* ignore http_proxy and friends */
    http_connect_cb on_connect;/* vets every connection's address, or NULL */
    http_head_cb on_head;
    http_data_cb on_data;      /* NULL: collect the body */
    http_done_cb on_done;      /* required */
    void *ud;
} http_opts;

int http_client_new(http_client **out, uv_loop_t *loop, drv_err *err);

/// Cancels every request (their on_done runs with DRV_ECANCELED), closes the
/// libuv handles and frees the client once they are closed. Safe with NULL.
void http_client_close(http_client *c);

/// Number of requests in flight.
int http_client_active(const http_client *c);

int http_start(http_client *c, const http_opts *o, http_req **out, drv_err *err);

/// Aborts a request; its on_done runs (soon, from the loop) with
/// DRV_ECANCELED. Does nothing if the request already finished. O(1): the
/// request is queued for the deferred finish, no list is scanned.
void http_cancel(http_req *r);

/// Backpressure: stops receiving (libcurl stops reading the socket, the
/// kernel's buffers fill and the peer's writes block). Timeouts still count.
/// Call from the loop, not from inside an http callback.
void http_pause(http_req *r);

/// Resumes a paused request (by http_pause or HTTP_DATA_PAUSE). Bytes held
/// by libcurl may be delivered to on_data before this returns. Call from the
/// loop, not from inside an http callback.
void http_resume(http_req *r);

/// The request's socket, or -1 before it has one (for diagnostics and
/// tests; inside on_head/on_data/on_done only).
int http_socket(const http_req *r);

/// 1 while the request is paused.
int http_paused(const http_req *r);

/// Returns a response header's value (case-insensitive name) or NULL. Valid
/// inside on_head/on_done only.
const char *http_header(const http_req *r, const char *name);

#endif
