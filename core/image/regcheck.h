/*
 * regcheck.h: the registry check before an image pull.
 *
 * A job names the registry it pulls from (`image = "127.0.0.1:8080/x:1"`),
 * and dockerd, running as root on the host, sends the requests: without a
 * check a job author reaches the host's loopback and private services and
 * reads their answers back in the pull's error message (server-side request
 * forgery). So before any pull, and before registry credentials are looked
 * up (a credential helper is not run for a refused registry either), the
 * host of the registry index name (`image_registry`: "host", "host:port",
 * "[v6]:port") is resolved with uv_getaddrinfo on the loop's thread pool,
 * and the pull is refused (DRV_EDENIED, exit 77) when ANY address it
 * resolves to has a class of netaddr.h (loopback, private, link-local,
 * unspecified, CGNAT, multicast, reserved), unless the operator sets
 * `plugin "docker" { config { allow_private_registries = true } }`.
 *
 * Literal addresses are exact: getaddrinfo reads numeric spellings the way
 * inet_aton does ("2130706433", "0x7f.1", "127.1", "017700000001" are all
 * 127.0.0.1), which is how dockerd's resolver reads them too. Names are
 * best effort: dockerd resolves the name again when it pulls, so a DNS
 * server that answers differently the second time (DNS rebinding), or a
 * dockerd with another resolver configuration, is not covered. A name that
 * does not resolve here passes (dockerd reports the failure). "docker.io"
 * (Docker Hub, which dockerd reaches as registry-1.docker.io) passes
 * without a lookup.
 */
#ifndef DRV_REGCHECK_H
#define DRV_REGCHECK_H

#include <netdb.h>
#include <stddef.h>
#include <uv.h>

#include "err.h"

typedef struct regcheck regcheck;

/// rc 0: the pull may go on; rc DRV_EDENIED: refused, `err` says why
/// (`image registry "127.0.0.1:8080" is a loopback address: ...`).
/// Called once, from the loop, never before regcheck_start returns.
typedef void (*regcheck_cb)(void *ud, int rc, const drv_err *err);

/// Starts the check of `registry` (copied): returns 0 and `cb` follows.
/// Returns 1 when there is nothing to check ("docker.io"): `cb` never runs,
/// the pull may go on. A registry with no host to check, or a lookup that
/// cannot start, is refused: DRV_EDENIED with `err` set, `cb` never runs.
int regcheck_start(uv_loop_t *loop, const char *registry, regcheck_cb cb, void *ud,
                   regcheck **out, drv_err *err);
/// Stops a check in flight; `cb` is not called. The lookup's memory goes
/// when the thread pool hands it back (at once when it had not started).
void regcheck_cancel(regcheck *r);

/// The host part of a registry index name: "127.0.0.1:5000" ->
/// "127.0.0.1", "[::1]:5000" -> "::1", "localhost" -> "localhost".
/// DRV_EINVALID when there is no host (empty, "[" unclosed, too long).
int regcheck_host(const char *registry, char *host, size_t size, drv_err *err);

/// The verdict on what `host` (of `registry`) resolved to: 0 when every
/// address is public, else DRV_EDENIED naming the first refused one. Pure:
/// the unit tests call it with getaddrinfo's answer.
int regcheck_verdict(const char *registry, const char *host, const struct addrinfo *res,
                     drv_err *err);

#endif
