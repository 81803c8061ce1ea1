/*
 * docker.h: the Docker Engine API endpoint, on top of http.h. Parses the
 * endpoint (unix://, tcp://, http://, https://), negotiates the API version
 * from /_ping, and prefixes paths with /v<version>. Bodies pass through
 * untouched: JSON is interpreted by Lua (driver.decode), never here.
 */
#ifndef DRV_DOCKER_H
#define DRV_DOCKER_H

#include "http.h"

/* API versions this driver speaks: requests use min(server, MAX). */
#define DOCKER_API_MIN "1.24"
#define DOCKER_API_MAX "1.44"

typedef struct docker docker;

typedef struct docker_opts {
    const char *endpoint;   /* unix:///path, tcp://host:port, http(s)://host:port */
    const char *tls_ca;     /* PEM files for tcp with TLS, or NULL */
    const char *tls_cert;
    const char *tls_key;
} docker_opts;

typedef struct docker_req {
    const char *method;         /* default GET */
    const char *path;           /* "/containers/create?name=x", before versioning */
    const char *json;           /* JSON body (Content-Type application/json) */
    FILE *tar;                  /* tar body (Content-Type application/x-tar) */
    const char *const *headers; /* extra header lines, NULL-terminated */
    long timeout_ms;            /* 0: none (wait, logs, load) */
    http_head_cb on_head;
    http_data_cb on_data;       /* streamed 2xx body */
    http_done_cb on_done;
    void *ud;
} docker_req;

/// Parses `o->endpoint`; does not connect.
int docker_new(docker **out, http_client *http, const docker_opts *o, drv_err *err);
void docker_free(docker *d);

typedef void (*docker_ping_cb)(void *ud, int rc, const drv_err *err);

/// GET /_ping, then sets the API version. On failure rc is DRV_EDOCKER and
/// the message says how to start a daemon.
int docker_ping(docker *d, docker_ping_cb cb, void *ud, drv_err *err);

/// Negotiated version ("1.41"), or DOCKER_API_MAX before docker_ping.
const char *docker_api_version(const docker *d);

/// Uses `version`, negotiated by an earlier ping of the same endpoint.
void docker_set_api_version(docker *d, const char *version);
const char *docker_endpoint(const docker *d);

/// The engine version from the ping's Server header ("20.10.24+dfsg1"), or
/// "" when the daemon sent none (then ask GET /version).
const char *docker_server_version(const docker *d);

int docker_request(docker *d, const docker_req *q, http_req **out, drv_err *err);

/// Formats a transport failure as the user-facing "cannot reach Docker" text.
int docker_unreachable(const docker *d, const drv_err *cause, drv_err *err);

#endif
