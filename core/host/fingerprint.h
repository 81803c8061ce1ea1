/*
 * fingerprint.h: this node's facts (kernel, cpu, memory, address: node.c)
 * plus the Docker driver's (driver.docker, driver.docker.version,
 * driver.docker.bridge_ip), as one long-lived object on the caller's libuv
 * loop. Docker is asked asynchronously: nothing here runs a loop of its own,
 * so an agent can keep it on its main loop and refresh it on a timer while
 * log streams run.
 */
#ifndef DRV_FINGERPRINT_H
#define DRV_FINGERPRINT_H

#include <uv.h>

#include "err.h"
#include "node.h"
#include "plan.h"
#include "script.h"

typedef struct fingerprint fingerprint;

/// rc 0: Docker answered and the facts hold driver.docker.*; otherwise
/// DRV_EDOCKER ("cannot reach the Docker daemon ...") or DRV_ECONFIG (bad
/// endpoint) and the facts are the node's alone.
typedef void (*fingerprint_cb)(void *ud, fingerprint *fp, int rc, const drv_err *err);

/// Gathers the node facts (synchronous: a few small /proc and /sys reads)
/// and prepares a Docker client on `loop` for the agent's endpoint. Fails
/// only on the node facts (DRV_ECONFIG: a bad network_interface).
int fingerprint_new(fingerprint **out, uv_loop_t *loop, const agent_conf *a, drv_err *err);

/// Asks Docker (ping, version when the ping names none, the bridge network
/// with `want_bridge`) and calls `cb` once, from the loop. `s` decodes the
/// answers and must outlive the refresh. One refresh at a time.
int fingerprint_refresh(fingerprint *fp, script *s, int want_bridge, fingerprint_cb cb,
                        void *ud, drv_err *err);

/// The facts (node, plus driver.docker.* after a successful refresh).
node_facts *fingerprint_facts(fingerprint *fp);

/// Copies the facts into `out` (node_facts_free it).
void fingerprint_copy_facts(const fingerprint *fp, node_facts *out);

/// The API version the last successful refresh negotiated, or "".
const char *fingerprint_api_version(const fingerprint *fp);

/// Closes the Docker client; memory goes when its handles are closed. May be
/// called from the refresh callback, or with a refresh in flight (its
/// callback then never runs).
void fingerprint_free(fingerprint *fp);

#endif
