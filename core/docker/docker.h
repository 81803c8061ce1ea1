/*
 * docker.h: the Docker Engine API, on top of http.h. Parses and validates the
 * endpoint (unix:///abs/path or tcp://host:port), negotiates the API version
 * from /_ping, and offers one typed call per endpoint the driver uses. Every
 * URL is built here, by docker_path(), which percent-escapes each path
 * parameter and query value: no caller formats a URL. Each call has its own
 * default timeout (none for streams). Bodies pass through untouched: JSON is
 * interpreted by Lua (driver.decode), never here. What an answer means (304,
 * 404, 409 and their messages) is decided in one place: docker_classify.
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

/// GET /containers/<id>/logs?follow=..&stdout=..&stderr=..&since=..&tail=..
/// (streamed: frames to cb->on_data). `since` is Unix seconds (0: from the
/// start), `tail` the number of last lines (negative: all). No timeout by
/// default when following, 120 s otherwise.
int docker_container_logs(docker *d, const char *id, int follow, int want_stdout,
                          int want_stderr, long long since, long tail, const docker_cb *cb,
                          http_req **out, drv_err *err);
/// GET /containers/<id>/stats?stream=1|0. Streamed (one JSON document per
/// second to cb->on_data, no timeout by default) or one sample (120 s).
int docker_container_stats(docker *d, const char *id, int stream, const docker_cb *cb,
                           http_req **out, drv_err *err);

/* One filter term: `key` ("label", "type", "event", "status", ...) and its
 * value ("drvctl.alloc=1234"). A list ends with a { NULL, NULL } entry; terms
 * with the same key are ORed by Docker, different keys ANDed. */
typedef struct docker_filter {
    const char *key;
    const char *value;
} docker_filter;

/// Appends the JSON filter map ({"label":["a=b","c"],"type":["container"]})
/// for `filters` to `out` (keys grouped in order of first appearance). A key
/// or value that is empty or not UTF-8 is DRV_EINVALID. NULL or an empty
/// list appends nothing.
int docker_filters_json(buf *out, const docker_filter *filters, drv_err *err);

/// GET /containers/json?all=..&filters=<JSON map, escaped>
int docker_container_list(docker *d, int all, const docker_filter *filters,
                          const docker_cb *cb, http_req **out, drv_err *err);
/// GET /events?since=<since>&filters=<JSON map, escaped> (streamed, no
/// timeout by default). `since` is what Docker takes (Unix seconds with an
/// optional fraction, or RFC 3339), or NULL.
int docker_events(docker *d, const docker_filter *filters, const char *since,
                  const docker_cb *cb, http_req **out, drv_err *err);

/// POST /containers/<id>/exec with the JSON body (ExecConfig).
int docker_exec_create(docker *d, const char *id, const char *json, const docker_cb *cb,
                       http_req **out, drv_err *err);
/// POST /exec/<exec_id>/start with the JSON body ({"Detach":false,"Tty":..}).
/// The output is streamed to cb->on_data (the connection is hijacked: no
/// timeout by default).
int docker_exec_start(docker *d, const char *exec_id, const char *json, const docker_cb *cb,
                      http_req **out, drv_err *err);
/// GET /exec/<exec_id>/json
int docker_exec_inspect(docker *d, const char *exec_id, const docker_cb *cb, http_req **out,
                        drv_err *err);
/// POST /exec/<exec_id>/resize?h=<rows>&w=<cols>; each 1 to 65535, else
/// DRV_EINVALID.
int docker_exec_resize(docker *d, const char *exec_id, long rows, long cols,
                       const docker_cb *cb, http_req **out, drv_err *err);

/// POST /images/create?fromImage=<ref>&tag=<tag> (progress streamed to
/// cb->on_data, no timeout by default). `tag` may be NULL only when `ref`
/// carries a tag or digest (else Docker would pull every tag: DRV_EINVALID).
/// `auth` is the X-Registry-Auth header value (base64url JSON) or NULL; it
/// is sent as is, never logged or quoted in a message, and refused
/// (DRV_EINVALID) unless every byte is printable ASCII without spaces.
int docker_image_pull(docker *d, const char *ref, const char *tag, const char *auth,
                      const docker_cb *cb, http_req **out, drv_err *err);
/// DELETE /images/<reference>?force=1&noprune=1 (flags as given; the
/// reference's path like docker_image_inspect's).
int docker_image_remove(docker *d, const char *ref, int force, int noprune,
                        const docker_cb *cb, http_req **out, drv_err *err);
/// POST /images/<reference>/tag?repo=<repo>&tag=<tag> (tag may be NULL).
int docker_image_tag(docker *d, const char *ref, const char *repo, const char *tag,
                     const docker_cb *cb, http_req **out, drv_err *err);

/* --- what an answer means ---------------------------------------------------
 * The one place that interprets Docker's status codes and error messages. */

/* The call an answer belongs to (the meaning of 304, 404 and 409 depends on
 * it). */
typedef enum docker_op {
    DOCKER_OP_OTHER = 0,
    DOCKER_OP_CONTAINER_CREATE,
    DOCKER_OP_CONTAINER_ATTACH,
    DOCKER_OP_CONTAINER_START,
    DOCKER_OP_CONTAINER_WAIT,
    DOCKER_OP_CONTAINER_KILL,
    DOCKER_OP_CONTAINER_STOP,
    DOCKER_OP_CONTAINER_INSPECT,
    DOCKER_OP_CONTAINER_REMOVE,
    DOCKER_OP_CONTAINER_LOGS,
    DOCKER_OP_CONTAINER_STATS,
    DOCKER_OP_CONTAINER_LIST,
    DOCKER_OP_EXEC_CREATE,
    DOCKER_OP_EXEC_START,
    DOCKER_OP_EXEC_INSPECT,
    DOCKER_OP_EXEC_RESIZE,
    DOCKER_OP_IMAGE_LOAD,
    DOCKER_OP_IMAGE_INSPECT,
    DOCKER_OP_IMAGE_PULL,
    DOCKER_OP_IMAGE_REMOVE,
    DOCKER_OP_IMAGE_TAG,
    DOCKER_OP_NETWORK_INSPECT,
    DOCKER_OP_EVENTS,
    DOCKER_OP_VERSION
} docker_op;

typedef enum docker_class {
    DOCKER_OK = 0,            /* 2xx (and 101 for attach and exec start) */
    DOCKER_NOT_MODIFIED,      /* 304: start of a running, stop of a stopped container */
    DOCKER_NOT_FOUND,         /* 404: the object of the call does not exist */
    DOCKER_NO_SUCH_IMAGE,     /* 404 on create: the image is not here */
    DOCKER_CONFLICT,          /* 409: see docker_answer.conflict */
    DOCKER_BAD_REQUEST,       /* any other 4xx */
    DOCKER_SERVER,            /* 5xx */
    DOCKER_UNEXPECTED         /* anything else (1xx, other 3xx) */
} docker_class;

typedef enum docker_conflict {
    DOCKER_CONFLICT_NONE = 0,   /* not a 409 */
    DOCKER_CONFLICT_NOT_RUNNING,/* "... is not running" (kill, stop, exec) */
    DOCKER_CONFLICT_IN_PROGRESS,/* "removal of container ... is already in progress" */
    DOCKER_CONFLICT_NAME_IN_USE,/* create: "... is already in use by container ..." */
    DOCKER_CONFLICT_OTHER       /* anything else, a missing message included */
} docker_conflict;

typedef struct docker_answer {
    docker_class cls;
    docker_conflict conflict;
    int done;      /* 1: what the call asks for holds: OK, or it held already
                      (start: 304; stop: 304, 404, 409 not running; kill:
                      404, 409 not running; remove: 404) */
    int code;      /* 0 when done, else the drvctl error: DRV_EIMAGE for image
                      calls and a missing image, DRV_ETASK for container and
                      exec calls, DRV_EDOCKER for the rest */
} docker_answer;

/// Classifies the answer `status` to `op`. `message` is Docker's error
/// message (the "message" member of the JSON error body, decoded by the
/// caller) or NULL; it matters only for 404 on create and for 409, so a
/// caller may decode it only when a first call without it gives
/// DOCKER_NOT_FOUND or DOCKER_CONFLICT.
void docker_classify(docker_op op, long status, const char *message, docker_answer *out);

/// The class's name ("not found"), for messages and logs.
const char *docker_class_name(docker_class cls);

/// Formats a transport failure as the user-facing "cannot reach Docker" text.
int docker_unreachable(const docker *d, const drv_err *cause, drv_err *err);

#endif
