/*
 * docker.h: the Docker Engine API, on top of http.h. Parses and validates the
 * endpoint (unix:///abs/path or tcp://host:port), negotiates the API version
 * from /_ping, and offers one typed call per endpoint the driver uses. Every
 * URL is built here, by docker_path(), which percent-escapes each path
 * parameter and query value: no caller formats a URL. Bodies pass through
 * untouched: JSON is interpreted by Lua (driver.decode), never here.
 */
#ifndef DRV_DOCKER_H
#define DRV_DOCKER_H

#include "http.h"

/* API versions this driver speaks: requests use min(server, MAX). */
#define DOCKER_API_MIN "1.24"
#define DOCKER_API_MAX "1.44"

/* Largest response body collected for a call (streamed bodies are not
 * collected; their error bodies are capped the same way). */
#define DOCKER_MAX_BODY ((size_t)16 * 1024 * 1024)
#define DOCKER_MAX_PING_BODY ((size_t)64 * 1024)

typedef struct docker docker;

typedef struct docker_opts {
    const char *endpoint;   /* unix:///abs/path or tcp://host:port */
    const char *field;      /* where the endpoint came from, for messages
                               (default "agent config: docker.endpoint") */
    const char *tls_ca;     /* PEM files for tcp with TLS, or NULL */
    const char *tls_cert;
    const char *tls_key;
} docker_opts;

/* What a call reports to, and how long it may take. */
typedef struct docker_cb {
    http_head_cb on_head;       /* optional */
    http_data_cb on_data;       /* streamed 2xx body (attach, load), or NULL */
    http_done_cb on_done;       /* required */
    void *ud;
    long timeout_ms;            /* 0: the call's default (none for streams and
                                   wait, 120 s otherwise) */
} docker_cb;

/// Parses and validates `o->endpoint`; does not connect. A bad endpoint is
/// DRV_ECONFIG naming o->field and the value.
int docker_new(docker **out, http_client *http, const docker_opts *o, drv_err *err);
void docker_free(docker *d);

/// Checks an endpoint without building a client: unix:///abs/path or
/// tcp://host:port (port 1-65535, optional trailing "/"). `field` names it.
int docker_endpoint_check(const char *endpoint, const char *field, drv_err *err);

/// 1 when `v` is an API version "N.N" (1 to 4 digits each), else 0.
int docker_api_version_valid(const char *v);

typedef void (*docker_ping_cb)(void *ud, int rc, const drv_err *err);

/// GET /_ping, then sets the API version. On failure rc is DRV_EDOCKER and
/// the message says how to start a daemon.
int docker_ping(docker *d, docker_ping_cb cb, void *ud, drv_err *err);

/// Negotiated version ("1.41"), or DOCKER_API_MAX before docker_ping.
const char *docker_api_version(const docker *d);

/// Uses `version`, negotiated by an earlier ping of the same endpoint.
/// Refuses (DRV_EINVALID) anything but "N.N", keeping the current version.
int docker_set_api_version(docker *d, const char *version, drv_err *err);
const char *docker_endpoint(const docker *d);

/// The engine version from the ping's Server header ("20.10.24+dfsg1"), or
/// "" when the daemon sent none (then ask GET /version).
const char *docker_server_version(const docker *d);

/* Ends docker_path's argument list (a typed NULL: a bare NULL may be an int). */
#define DOCKER_END ((const char *)NULL)

/// Appends a request path to `out`: each "{}" in `tmpl` is replaced by the
/// next argument, percent-escaped as one path segment; the arguments after
/// those are query key/value pairs ending with DOCKER_END (a NULL value
/// leaves its pair out). Only RFC 3986 unreserved characters stay as they
/// are. An empty, ".", ".." or missing segment is DRV_EINVALID.
///     docker_path(&b, err, "/containers/{}/kill", id, "signal", sig, DOCKER_END)
int docker_path(buf *out, drv_err *err, const char *tmpl, ...);

/// Percent-escapes `s` (RFC 3986 unreserved characters kept) onto `out`.
void docker_escape(buf *out, const char *s);

/* --- the Engine API calls -------------------------------------------------
 * Each starts one request; `out` (may be NULL) receives it for http_cancel.
 * On failure nothing runs later and the callback is never called. */

/// POST /containers/create?name=<name> with the JSON body.
int docker_container_create(docker *d, const char *name, const char *json,
                            const docker_cb *cb, http_req **out, drv_err *err);
/// POST /containers/<id>/attach?stream=1&stdout=1&stderr=1 (streamed).
int docker_container_attach(docker *d, const char *id, const docker_cb *cb,
                            http_req **out, drv_err *err);
/// POST /containers/<id>/start
int docker_container_start(docker *d, const char *id, const docker_cb *cb,
                           http_req **out, drv_err *err);
/// POST /containers/<id>/wait?condition=<condition> (no timeout by default).
int docker_container_wait(docker *d, const char *id, const char *condition,
                          const docker_cb *cb, http_req **out, drv_err *err);
/// POST /containers/<id>/kill?signal=<signal>
int docker_container_kill(docker *d, const char *id, const char *signal,
                          const docker_cb *cb, http_req **out, drv_err *err);
/// POST /containers/<id>/stop?t=<seconds>
int docker_container_stop(docker *d, const char *id, long seconds,
                          const docker_cb *cb, http_req **out, drv_err *err);
/// GET /containers/<id>/json
int docker_container_inspect(docker *d, const char *id, const docker_cb *cb,
                             http_req **out, drv_err *err);
/// DELETE /containers/<id>?force=1&v=1 (flags as given).
int docker_container_remove(docker *d, const char *id, int force, int volumes,
                            const docker_cb *cb, http_req **out, drv_err *err);
/// POST /images/load[?quiet=1] with the tar as body (progress streamed).
int docker_image_load(docker *d, FILE *tar, int quiet, const docker_cb *cb,
                      http_req **out, drv_err *err);
/// GET /images/<reference>/json (the reference's slashes kept, each component
/// escaped; an empty, "." or ".." component is DRV_EINVALID).
int docker_image_inspect(docker *d, const char *ref, const docker_cb *cb, http_req **out,
                         drv_err *err);
/// GET /networks/<name>
int docker_network_inspect(docker *d, const char *name, const docker_cb *cb,
                           http_req **out, drv_err *err);
/// GET /version
int docker_version(docker *d, const docker_cb *cb, http_req **out, drv_err *err);

/// Formats a transport failure as the user-facing "cannot reach Docker" text.
int docker_unreachable(const docker *d, const drv_err *cause, drv_err *err);

#endif
