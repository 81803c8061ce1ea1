/* docker.c: Docker Engine API endpoint and version negotiation. */
#include "docker.h"

#include <stdlib.h>
#include <string.h>

struct docker {
    http_client *http;
    char *endpoint;          /* as configured, for messages */
    char *base;              /* "http://docker" or "https://host:port" */
    char *socket;            /* unix socket path or NULL */
    char *ca, *cert, *key;
    char version[16];
    char server[64];         /* engine version from the Server header */
};

static char *dup_or_null(const char *s)
{
    return s ? drv_xstrdup(s) : NULL;
}

int docker_new(docker **out, http_client *http, const docker_opts *o, drv_err *err)
{
    const char *ep = o->endpoint ? o->endpoint : "unix:///var/run/docker.sock";
    docker *d = drv_xcalloc(1, sizeof *d);
    buf b = BUF_INIT;

    d->http = http;
    d->endpoint = drv_xstrdup(ep);
    snprintf(d->version, sizeof d->version, "%s", DOCKER_API_MAX);
    if (strncmp(ep, "unix://", 7) == 0) {
        if (ep[7] != '/') {
            docker_free(d);
            return drv_err_set(err, DRV_ECONFIG, "docker: endpoint must be an absolute socket path: \"%s\"", ep);
        }
        d->socket = drv_xstrdup(ep + 7);
        d->base = drv_xstrdup("http://docker");
    } else if (strncmp(ep, "tcp://", 6) == 0 || strncmp(ep, "http://", 7) == 0 ||
               strncmp(ep, "https://", 8) == 0) {
        const char *hostport = strstr(ep, "://") + 3;
        int tls = strncmp(ep, "https://", 8) == 0 || (o->tls_cert != NULL || o->tls_ca != NULL);
        buf_appendf(&b, "%s://%s", tls ? "https" : "http", hostport);
        while (b.len > 0 && b.data[b.len - 1] == '/') {
            b.data[--b.len] = '\0';
        }
        d->base = drv_xstrdup(buf_str(&b));
        buf_free(&b);
    } else {
        docker_free(d);
        return drv_err_set(err, DRV_ECONFIG,
                           "docker: unsupported endpoint (use unix:// or tcp://): \"%s\"", ep);
    }
    d->ca = dup_or_null(o->tls_ca);
    d->cert = dup_or_null(o->tls_cert);
    d->key = dup_or_null(o->tls_key);
    *out = d;
    return 0;
}

void docker_free(docker *d)
{
    if (d == NULL) {
        return;
    }
    free(d->endpoint);
    free(d->base);
    free(d->socket);
    free(d->ca);
    free(d->cert);
    free(d->key);
    free(d);
}

const char *docker_api_version(const docker *d)
{
    return d->version;
}

void docker_set_api_version(docker *d, const char *version)
{
    snprintf(d->version, sizeof d->version, "%s", version);
}

const char *docker_endpoint(const docker *d)
{
    return d->endpoint;
}

const char *docker_server_version(const docker *d)
{
    return d->server;
}

/* "Docker/20.10.24+dfsg1 (linux)" -> "20.10.24+dfsg1" */
static void parse_server(docker *d, const char *h)
{
    d->server[0] = '\0';
    if (h == NULL || strncmp(h, "Docker/", 7) != 0) {
        return;
    }
    h += 7;
    size_t n = strcspn(h, " \t");
    if (n > 0 && n < sizeof d->server) {
        memcpy(d->server, h, n);
        d->server[n] = '\0';
    }
}

/* Compares "1.41"-style versions. */
static int version_cmp(const char *a, const char *b)
{
    unsigned long amaj = strtoul(a, NULL, 10), bmaj = strtoul(b, NULL, 10);
    const char *ad = strchr(a, '.'), *bd = strchr(b, '.');
    unsigned long amin = ad ? strtoul(ad + 1, NULL, 10) : 0;
    unsigned long bmin = bd ? strtoul(bd + 1, NULL, 10) : 0;
    if (amaj != bmaj) {
        return amaj < bmaj ? -1 : 1;
    }
    return amin < bmin ? -1 : amin > bmin;
}

int docker_unreachable(const docker *d, const drv_err *cause, drv_err *err)
{
    return drv_err_set(err, DRV_EDOCKER,
        "docker: cannot reach the Docker daemon at \"%s\": %s\n"
        "  start it with `systemctl start docker` (or `dockerd &`), or run scripts/bootstrap;\n"
        "  set DOCKER_HOST or client.options \"docker.endpoint\" if it listens elsewhere",
        d->endpoint, cause && cause->msg[0] ? cause->msg : "no answer");
}

typedef struct ping_ctx {
    docker *d;
    docker_ping_cb cb;
    void *ud;
} ping_ctx;

static void on_ping(void *ud, http_req *r, int rc, long status, const buf *body, const drv_err *cause)
{
    ping_ctx *p = ud;
    docker *d = p->d;
    drv_err err;
    (void)body;

    drv_err_clear(&err);
    if (rc == 0 && (status < 200 || status >= 300) && status != 500) {
        rc = drv_err_set(&err, DRV_EDOCKER, "docker: \"%s\" answered /_ping with HTTP %ld: %s",
                         d->endpoint, status, buf_str(body));
    } else if (rc < 0) {
        rc = docker_unreachable(d, cause, &err);
    } else {
        parse_server(d, http_header(r, "Server"));
        const char *v = http_header(r, "Api-Version");
        if (v == NULL || *v == '\0') {
            v = DOCKER_API_MIN;
        }
        if (version_cmp(v, DOCKER_API_MIN) < 0) {
            rc = drv_err_set(&err, DRV_EDOCKER,
                             "docker: daemon API %s is older than the oldest supported (%s): \"%s\"",
                             v, DOCKER_API_MIN, d->endpoint);
        } else {
            snprintf(d->version, sizeof d->version, "%s",
                     version_cmp(v, DOCKER_API_MAX) < 0 ? v : DOCKER_API_MAX);
        }
    }
    p->cb(p->ud, rc, rc ? &err : NULL);
    free(p);
}

static int start(docker *d, const docker_req *q, const char *url, http_req **out, drv_err *err)
{
    http_opts o;
    memset(&o, 0, sizeof o);
    o.method = q->method;
    o.url = url;
    o.unix_socket = d->socket;
    o.ca_file = d->ca;
    o.cert_file = d->cert;
    o.key_file = d->key;
    o.headers = q->headers;
    o.timeout_ms = q->timeout_ms;
    o.connect_timeout_ms = 5000;
    if (q->json != NULL) {
        o.content_type = "application/json";
        o.body = q->json;
        o.body_len = strlen(q->json);
    } else if (q->tar != NULL) {
        o.content_type = "application/x-tar";
        o.upload = q->tar;
    }
    o.on_head = q->on_head;
    o.on_data = q->on_data;
    o.on_done = q->on_done;
    o.ud = q->ud;
    return http_start(d->http, &o, out, err);
}

int docker_ping(docker *d, docker_ping_cb cb, void *ud, drv_err *err)
{
    ping_ctx *p = drv_xcalloc(1, sizeof *p);
    docker_req q;
    buf url = BUF_INIT;

    p->d = d;
    p->cb = cb;
    p->ud = ud;
    memset(&q, 0, sizeof q);
    q.timeout_ms = 10000;
    q.on_done = on_ping;
    q.ud = p;
    buf_appendf(&url, "%s/_ping", d->base);
    int rc = start(d, &q, buf_str(&url), NULL, err);
    buf_free(&url);
    if (rc < 0) {
        free(p);
    }
    return rc;
}

int docker_request(docker *d, const docker_req *q, http_req **out, drv_err *err)
{
    buf url = BUF_INIT;
    buf_appendf(&url, "%s/v%s%s", d->base, d->version, q->path);
    int rc = start(d, q, buf_str(&url), out, err);
    buf_free(&url);
    return rc;
}
