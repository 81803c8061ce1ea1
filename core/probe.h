/*
 * probe.h: asks Docker for the facts planning needs (driver.docker,
 * driver.docker.version, driver.docker.bridge_ip) on a private libuv loop.
 * Used before the main loop exists: by `plan`, `run` and `fingerprint`.
 */
#ifndef DRV_PROBE_H
#define DRV_PROBE_H

#include "err.h"
#include "node.h"
#include "plan.h"
#include "script.h"

/// Adds the driver.docker.* attributes to `f` (driver.docker.bridge_ip only
/// with `want_bridge`: it costs one more request) and copies the negotiated
/// API version into `api_version` (16 bytes) when not NULL. On failure
/// returns DRV_EDOCKER with the "cannot reach the Docker daemon" message and
/// leaves `f` unchanged.
int probe_docker(const agent_conf *a, script *s, node_facts *f, int want_bridge,
                 char *api_version, drv_err *err);

#endif
