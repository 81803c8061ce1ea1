/*
 * auth.h: registry credentials for one pull, resolved in Nomad's order,
 * first answer wins:
 *
 *   1. the task's config { auth { username password email server_address } }
 *   2. docker.auth.config (a Docker config.json): `auths`, then
 *      `credHelpers[<registry>]`, then `credsStore`
 *   3. docker.auth.helper
 *
 * Helpers run as `docker-credential-<name> get` through libuv (never a
 * shell) with the bare registry host on stdin and a timeout. A helper's
 * "credentials not found" means anonymous; any other failure fails the
 * pull unless the task sets auth_soft_fail. Credentials never reach logs,
 * messages or files.
 */
#ifndef DRV_AUTH_H
#define DRV_AUTH_H

#include <uv.h>

#include "err.h"
#include "script.h"

typedef struct auth_opts {
    uv_loop_t *loop;
    script *script;
    const char *config_path;   /* docker.auth.config, or NULL */
    const char *helper;        /* docker.auth.helper suffix, or NULL */
    long helper_timeout_ms;    /* 0: the default (10 s) */
} auth_opts;

/* What to authenticate: the image's registry and the task's own auth. */
typedef struct auth_query {
    const char *registry;      /* index name: "docker.io" or "host[:port]" */
    const char *image;         /* for messages only: the reference as given */
    const char *username, *password, *email, *server;   /* task auth, or NULL */
    int soft_fail;             /* auth_soft_fail: on failure pull anonymously */
} auth_query;

typedef struct auth_req auth_req;

/// `header` is the X-Registry-Auth value (padded base64url JSON), or NULL
/// for an anonymous pull; on failure rc < 0 and `err` says why (DRV_EIMAGE,
/// naming the source: the config file, the helper and its stderr).
/// Called once, from the loop, never before auth_resolve returns; the
/// request is freed after the callback returns.
typedef void (*auth_done_cb)(void *ud, int rc, const char *header, const drv_err *err);

/// Starts resolving. The strings in `o` and `q` are copied.
int auth_resolve(const auth_opts *o, const auth_query *q, auth_done_cb cb, void *ud,
                 auth_req **out, drv_err *err);
/// Stops a request in flight (a helper is killed); `cb` is not called.
void auth_cancel(auth_req *r);

#endif
