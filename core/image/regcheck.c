/*
 * regcheck.c: the registry check before an image pull (see regcheck.h).
 */
#include "regcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "esc.h"
#include "log.h"
#include "netaddr.h"

#define HOST_MAX 255            /* a DNS name is at most 253 bytes */

/* Docker Hub's index name: dockerd pulls from registry-1.docker.io, which
 * a job author does not control; nothing to check. */
#define HUB_INDEX "docker.io"

struct regcheck {
    uv_getaddrinfo_t req;
    regcheck_cb cb;             /* NULL once cancelled */
    void *ud;
    char *registry;
    char host[HOST_MAX + 1];
};

int regcheck_host(const char *registry, char *host, size_t size, drv_err *err)
{
    buf b = BUF_INIT;
    const char *start = registry, *end = NULL;
    if (registry == NULL || registry[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "image registry is empty");
    }
    if (registry[0] == '[') {
        /* "[v6]" or "[v6]:port" */
        start = registry + 1;
        end = strchr(start, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            int rc = drv_err_set(err, DRV_EINVALID, "image registry has no host: \"%s\"",
                                 esc_str(&b, registry));
            buf_free(&b);
            return rc;
        }
    } else {
        const char *colon = strchr(registry, ':');
        /* "host:port"; several colons without brackets: the whole text
         * is the host (getaddrinfo reads it as IPv6, or fails) */
        end = colon != NULL && strchr(colon + 1, ':') == NULL ? colon
                                                              : registry + strlen(registry);
    }
    size_t n = (size_t)(end - start);
    if (n == 0 || n > HOST_MAX || n >= size || memchr(start, '\0', n) != NULL) {
        int rc = drv_err_set(err, DRV_EINVALID, "image registry has no host: \"%s\"",
                             esc_str(&b, registry));
        buf_free(&b);
        return rc;
    }
    memcpy(host, start, n);
    host[n] = '\0';
    return 0;
}

static int literal(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int regcheck_verdict(const char *registry, const char *host, const struct addrinfo *res,
                     drv_err *err)
{
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addr == NULL ||
            (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) {
            continue;
        }
        const char *cls = netaddr_class(ai->ai_addr);
        if (cls == NULL) {
            continue;
        }
        const char *article = strchr("aeiou", cls[0]) != NULL ? "an" : "a";
        buf b = BUF_INIT;
        const char *reg = esc_str(&b, registry);
        int rc;
        if (literal(host)) {
            rc = drv_err_set(err, DRV_EDENIED, "image registry \"%s\" is %s %s address: "
                             "pulls from private registries are off "
                             "(allow_private_registries = true in the docker plugin config "
                             "allows them)", reg, article, cls);
        } else {
            char ip[INET6_ADDRSTRLEN];
            rc = drv_err_set(err, DRV_EDENIED, "image registry \"%s\" resolves to %s, %s %s "
                             "address: pulls from private registries are off "
                             "(allow_private_registries = true in the docker plugin config "
                             "allows them)", reg, netaddr_str(ai->ai_addr, ip, sizeof ip),
                             article, cls);
        }
        buf_free(&b);
        return rc;
    }
    return 0;
}

static void free_check(regcheck *r)
{
    free(r->registry);
    free(r);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    regcheck *r = req->data;
    if (r->cb == NULL) {
        /* cancelled: nobody waits */
        uv_freeaddrinfo(res);
        free_check(r);
        return;
    }
    drv_err e;
    drv_err_clear(&e);
    int rc = 0;
    if (status < 0) {
        /* does not resolve here: dockerd will say so (or, with another
         * resolver, reach whatever it finds: see regcheck.h) */
        buf b = BUF_INIT;
        log_debug("image registry \"%s\": host does not resolve (%s): the pull goes on",
                  esc_str(&b, r->registry), uv_strerror(status));
        buf_free(&b);
    } else {
        rc = regcheck_verdict(r->registry, r->host, res, &e);
    }
    uv_freeaddrinfo(res);
    regcheck_cb cb = r->cb;
    void *ud = r->ud;
    free_check(r);
    cb(ud, rc, rc < 0 ? &e : NULL);
}

int regcheck_start(uv_loop_t *loop, const char *registry, regcheck_cb cb, void *ud,
                   regcheck **out, drv_err *err)
{
    *out = NULL;
    if (registry != NULL && strcmp(registry, HUB_INDEX) == 0) {
        return 1;
    }
    regcheck *r = drv_xcalloc(1, sizeof *r);
    drv_err e;
    if (regcheck_host(registry, r->host, sizeof r->host, &e) < 0) {
        /* fail closed: what cannot be checked is not pulled */
        free(r);
        return drv_err_set(err, DRV_EDENIED, "%s", e.msg);
    }
    r->registry = drv_xstrdup(registry);
    r->cb = cb;
    r->ud = ud;
    r->req.data = r;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(loop, &r->req, on_resolved, r->host, NULL, &hints);
    if (rc < 0) {
        buf b = BUF_INIT;
        drv_err_set(err, DRV_EDENIED, "image registry \"%s\": cannot resolve its host: %s",
                    esc_str(&b, registry), uv_strerror(rc));
        buf_free(&b);
        free_check(r);
        return DRV_EDENIED;
    }
    *out = r;
    return 0;
}

void regcheck_cancel(regcheck *r)
{
    if (r == NULL || r->cb == NULL) {
        return;
    }
    r->cb = NULL;
    /* not started: on_resolved runs with UV_EAI_CANCELED and frees it;
     * running: it frees it when the lookup ends */
    uv_cancel((uv_req_t *)&r->req);
}
