/*
 * netaddr.h: which network addresses a job author may not make drvctl (or
 * dockerd on its behalf) reach: the host's own services and its private
 * networks. Shared by the artifact fetcher (client.artifact.allow_private)
 * and the registry check before image pulls (regcheck.h,
 * allow_private_registries).
 *
 * Refused classes: 0/8 "unspecified", 10/8 172.16/12 192.168/16 fc00::/7
 * fec0::/10 "private", 100.64/10 "shared (CGNAT)", 127/8 ::1 "loopback",
 * 169.254/16 fe80::/10 "link-local", 192.0.0/24 240/4 "reserved", 224/4
 * ff00::/8 "multicast", :: "unspecified". IPv4-mapped (::ffff:a.b.c.d),
 * -compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) IPv6 addresses are
 * judged by their IPv4 part. Documentation ranges (TEST-NET-1/2/3,
 * 192.0.2/24, 198.51.100/24, 203.0.113/24) and benchmarking (198.18/15)
 * are not routed on the Internet but do not name a host service either:
 * they pass as public.
 */
#ifndef DRV_NETADDR_H
#define DRV_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/// Why `sa` may not be reached ("loopback", "private", "link-local",
/// "unspecified", "shared (CGNAT)", "multicast", "reserved"), or NULL when
/// it is a public address. NULL `sa` and families other than AF_INET and
/// AF_INET6 are refused ("unspecified", "reserved").
const char *netaddr_class(const struct sockaddr *sa);

/// Writes the numeric form of `sa` ("127.0.0.1", "::1") into `out`; "?"
/// for other families. Returns `out`.
const char *netaddr_str(const struct sockaddr *sa, char *out, size_t size);

#endif
