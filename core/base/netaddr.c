/*
 * netaddr.c: the address classes of netaddr.h.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *v4_class(uint32_t ip)
{
    static const struct { uint32_t net, mask; const char *what; } nets[] = {
        { 0x00000000u, 0xff000000u, "unspecified" },        /* 0/8 */
        { 0x0a000000u, 0xff000000u, "private" },            /* 10/8 */
        { 0x64400000u, 0xffc00000u, "shared (CGNAT)" },     /* 100.64/10 */
        { 0x7f000000u, 0xff000000u, "loopback" },           /* 127/8 */
        { 0xa9fe0000u, 0xffff0000u, "link-local" },         /* 169.254/16 */
        { 0xac100000u, 0xfff00000u, "private" },            /* 172.16/12 */
        { 0xc0000000u, 0xffffff00u, "reserved" },           /* 192.0.0/24 */
        { 0xc0a80000u, 0xffff0000u, "private" },            /* 192.168/16 */
        { 0xe0000000u, 0xf0000000u, "multicast" },          /* 224/4 */
        { 0xf0000000u, 0xf0000000u, "reserved" },           /* 240/4 */
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        if ((ip & nets[i].mask) == nets[i].net) {
            return nets[i].what;
        }
    }
    return NULL;
}

const char *netaddr_class(const struct sockaddr *sa)
{
    if (sa == NULL) {
        return "unspecified";
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_class(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6) {
        return "reserved";
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    const unsigned char *b = in6->sin6_addr.s6_addr;
    static const unsigned char zero[16];
    static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const unsigned char nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) {
        return b[15] == 0 ? "unspecified" : "loopback";
    }
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0 || memcmp(b, zero, 12) == 0) {
        uint32_t ip = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
        const char *c = v4_class(ip);
        return c != NULL ? c : (memcmp(b, zero, 12) == 0 ? "reserved" : NULL);
    }
    if ((b[0] & 0xfe) == 0xfc) {
        return "private";                                   /* fc00::/7 */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
        return "link-local";                                /* fe80::/10 */
    }
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
        return "private";                                   /* fec0::/10 (site-local) */
    }
    if (b[0] == 0xff) {
        return "multicast";
    }
    return NULL;
}

const char *netaddr_str(const struct sockaddr *sa, char *out, size_t size)
{
    const void *a = NULL;
    if (sa != NULL && sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    }
    if (size == 0) {
        return out;
    }
    if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)size) == NULL) {
        snprintf(out, size, "?");
    }
    return out;
}
