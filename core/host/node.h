/*
 * node.h: facts about this host, as Nomad's node attributes (kernel.name,
 * cpu.numcores, memory.totalbytes, unique.network.ip-address, ...). A flat
 * list of (name, value) strings; the Docker facts (driver.docker.*) are added
 * by the caller with node_facts_set once Docker has answered.
 */
#ifndef DRV_NODE_H
#define DRV_NODE_H

#include <stddef.h>

#include "err.h"

typedef struct node_attr {
    char *name;
    char *value;
} node_attr;

typedef struct node_facts {
    node_attr *v;
    size_t n;
    char *network_ip;        /* the node address ports bind to (IPv4 text) */
} node_facts;

/// Gathers the host attributes. `network_interface` (agent config) picks the
/// node address: the first IPv4 address of that interface, DRV_ECONFIG if it
/// does not exist or has none. NULL: the interface of the default route,
/// else 127.0.0.1. Attributes the host cannot tell (no /etc/os-release, no
/// CPU frequency) are left out rather than guessed.
int node_facts_gather(node_facts *out, const char *network_interface, drv_err *err);

/// Adds `name` or replaces its value (both copied).
void node_facts_set(node_facts *f, const char *name, const char *value);

/// Removes `name` if present.
void node_facts_unset(node_facts *f, const char *name);

/// The value of `name`, or NULL.
const char *node_facts_get(const node_facts *f, const char *name);

/// Sorts the attributes by name (for printing).
void node_facts_sort(node_facts *f);

void node_facts_free(node_facts *f);

/// Resolves the node address into `out` (IPv4 text): see node_facts_gather.
int node_network_ip(const char *network_interface, char *out, size_t len, drv_err *err);

/// Maps a uname machine to Nomad's cpu.arch ("x86_64" -> "amd64").
const char *node_arch(const char *machine);

#endif
