/* docker.c: Docker Engine API: endpoint, version negotiation, typed calls. */
#include "docker.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define DEFAULT_TIMEOUT_MS 120000L

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

/* --- endpoint ------------------------------------------------------------ */

static int is_host_char(int c)
{
    return isalnum(c) || c == '.' || c == '-' || c == '_';
}

/* "host:port" or "[v6]:port", then an optional "/". Returns 1 when valid and
 * sets *len to the length without the trailing "/". */
static int valid_hostport(const char *s, size_t *len)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '/') {
        n--;
    }
    size_t i = 0;
    if (s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++) {
            if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.') {
                return 0;
            }
        }
        if (i >= n || i == 1) {
            return 0;
        }
        i++;   /* past ']' */
    } else {
        while (i < n && is_host_char((unsigned char)s[i])) {
            i++;
        }
        if (i == 0) {
            return 0;
        }
    }
    if (i >= n || s[i] != ':') {
        return 0;
    }
    i++;
    size_t digits = n - i;
    if (digits < 1 || digits > 5) {
        return 0;
    }
    unsigned long port = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    if (port < 1 || port > 65535) {
        return 0;
    }
    *len = n;
    return 1;
}

static int valid_socket_path(const char *p)
{
    struct sockaddr_un sun;
    size_t n = strlen(p);
    if (p[0] != '/' || n < 2 || n >= sizeof sun.sun_path) {
        return 0;
    }
    for (const unsigned char *c = (const unsigned char *)p; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Quotes `s` for a message, with control bytes as \xNN. */
static void quote(buf *out, const char *s)
{
    buf_puts(out, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '"' || *c == '\\') {
            buf_appendf(out, "\\x%02x", *c);
        } else {
            buf_append(out, c, 1);
        }
    }
    buf_puts(out, "\"");
}

int docker_endpoint_check(const char *ep, const char *field, drv_err *err)
{
    const char *why = NULL;
    size_t n;
    if (field == NULL) {
        field = "agent config: docker.endpoint";
    }
    if (strncmp(ep, "unix://", 7) == 0) {
        if (!valid_socket_path(ep + 7)) {
            why = "unix:// needs an absolute socket path (unix:///var/run/docker.sock)";
        }
    } else if (strncmp(ep, "tcp://", 6) == 0) {
        if (!valid_hostport(ep + 6, &n)) {
            why = "tcp:// needs host:port with a port from 1 to 65535 (tcp://127.0.0.1:2376)";
        }
    } else {
        why = "use unix:///path or tcp://host:port";
    }
    if (why == NULL) {
        return 0;
    }
    buf q = BUF_INIT;
    quote(&q, ep);
    int rc = drv_err_set(err, DRV_ECONFIG, "%s: invalid Docker endpoint (%s): %s",
                         field, why, buf_str(&q));
    buf_free(&q);
    return rc;
}

int docker_new(docker **out, http_client *http, const docker_opts *o, drv_err *err)
{
    const char *ep = o->endpoint ? o->endpoint : "unix:///var/run/docker.sock";
    int rc = docker_endpoint_check(ep, o->field, err);
    if (rc < 0) {
        return rc;
    }
    docker *d = drv_xcalloc(1, sizeof *d);
    d->http = http;
    d->endpoint = drv_xstrdup(ep);
    snprintf(d->version, sizeof d->version, "%s", DOCKER_API_MAX);
    if (strncmp(ep, "unix://", 7) == 0) {
        d->socket = drv_xstrdup(ep + 7);
        d->base = drv_xstrdup("http://docker");
    } else {
        buf b = BUF_INIT;
        size_t n = 0;
        int tls = o->tls_cert != NULL || o->tls_ca != NULL;
        (void)valid_hostport(ep + 6, &n);
        buf_appendf(&b, "%s://%.*s", tls ? "https" : "http", (int)n, ep + 6);
        d->base = drv_xstrdup(buf_str(&b));
        buf_free(&b);
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

/* --- API version ----------------------------------------------------------- */

int docker_api_version_valid(const char *v)
{
    size_t a = 0, b = 0;
    if (v == NULL) {
        return 0;
    }
    while (v[a] >= '0' && v[a] <= '9') {
        a++;
    }
    if (a < 1 || a > 4 || v[a] != '.') {
        return 0;
    }
    const char *m = v + a + 1;
    while (m[b] >= '0' && m[b] <= '9') {
        b++;
    }
    return b >= 1 && b <= 4 && m[b] == '\0';
}

const char *docker_api_version(const docker *d)
{
    return d->version;
}

int docker_set_api_version(docker *d, const char *version, drv_err *err)
{
    if (!docker_api_version_valid(version)) {
        buf q = BUF_INIT;
        quote(&q, version ? version : "");
        int rc = drv_err_set(err, DRV_EINVALID, "docker: invalid API version (want N.N): %s",
                             buf_str(&q));
        buf_free(&q);
        return rc;
    }
    snprintf(d->version, sizeof d->version, "%s", version);
    return 0;
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

/* Compares valid "1.41"-style versions. */
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

/* --- paths ----------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

void docker_escape(buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (unreserved(*c)) {
            buf_append(out, c, 1);
        } else {
            char e[3] = { '%', hex[*c >> 4], hex[*c & 15] };
            buf_append(out, e, 3);
        }
    }
}

static int vpath(buf *out, drv_err *err, const char *tmpl, va_list ap)
{
    const char *p = tmpl;
    while (*p != '\0') {
        const char *hole = strstr(p, "{}");
        if (hole == NULL) {
            buf_puts(out, p);
            break;
        }
        buf_append(out, p, (size_t)(hole - p));
        const char *seg = va_arg(ap, const char *);
        if (seg == NULL || seg[0] == '\0' || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0) {
            buf q = BUF_INIT;
            quote(&q, seg ? seg : "");
            int rc = drv_err_set(err, DRV_EINVALID, "docker: %s: invalid path parameter: %s",
                                 tmpl, buf_str(&q));
            buf_free(&q);
            return rc;
        }
        docker_escape(out, seg);
        p = hole + 2;
    }
    char sep = '?';
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        if (val == NULL) {
            continue;
        }
        buf_append(out, &sep, 1);
        docker_escape(out, key);
        buf_puts(out, "=");
        docker_escape(out, val);
        sep = '&';
    }
    return 0;
}

int docker_path(buf *out, drv_err *err, const char *tmpl, ...)
{
    va_list ap;
    va_start(ap, tmpl);
    int rc = vpath(out, err, tmpl, ap);
    va_end(ap);
    return rc;
}

/* --- requests -------------------------------------------------------------- */

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
        if (!docker_api_version_valid(v)) {
            buf q = BUF_INIT;
            quote(&q, v);
            rc = drv_err_set(&err, DRV_EDOCKER,
                             "docker: \"%s\" sent an invalid Api-Version header (want N.N): %s",
                             d->endpoint, buf_str(&q));
            buf_free(&q);
        } else if (version_cmp(v, DOCKER_API_MIN) < 0) {
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

/* Starts `method` on base + "/v<version>" + path (or base + path when
 * `versioned` is 0). `def_timeout_ms` applies when cb->timeout_ms is 0. */
static int start(docker *d, const char *method, const buf *path, int versioned, const char *json,
                 FILE *tar, long def_timeout_ms, size_t max_body, const docker_cb *cb,
                 http_req **out, drv_err *err)
{
    buf url = BUF_INIT;
    http_opts o;

    if (versioned) {
        buf_appendf(&url, "%s/v%s%s", d->base, d->version, buf_str(path));
    } else {
        buf_appendf(&url, "%s%s", d->base, buf_str(path));
    }
    memset(&o, 0, sizeof o);
    o.method = method;
    o.url = buf_str(&url);
    o.unix_socket = d->socket;
    o.ca_file = d->ca;
    o.cert_file = d->cert;
    o.key_file = d->key;
    /* cb is never NULL here; cppcheck's whole-program pass follows a test
     * that passes NULL to docker_image_inspect with a name refused before
     * start() is reached. */
    /* cppcheck-suppress ctunullpointer */
    o.timeout_ms = cb->timeout_ms > 0 ? cb->timeout_ms : def_timeout_ms;
    o.connect_timeout_ms = 5000;
    o.max_body = max_body;
    if (json != NULL) {
        o.content_type = "application/json";
        o.body = json;
        o.body_len = strlen(json);
    } else if (tar != NULL) {
        o.content_type = "application/x-tar";
        o.upload = tar;
    }
    o.on_head = cb->on_head;
    o.on_data = cb->on_data;
    o.on_done = cb->on_done;
    o.ud = cb->ud;
    int rc = http_start(d->http, &o, out, err);
    buf_free(&url);
    return rc;
}

int docker_ping(docker *d, docker_ping_cb cb, void *ud, drv_err *err)
{
    ping_ctx *p = drv_xcalloc(1, sizeof *p);
    buf path = BUF_INIT;

    p->d = d;
    p->cb = cb;
    p->ud = ud;
    docker_cb c = { .on_done = on_ping, .ud = p, .timeout_ms = 10000 };
    buf_puts(&path, "/_ping");
    int rc = start(d, "GET", &path, 0, NULL, NULL, 0, DOCKER_MAX_PING_BODY, &c, NULL, err);
    buf_free(&path);
    if (rc < 0) {
        free(p);
    }
    return rc;
}

/* A JSON call: builds the path from `tmpl` and its arguments, then starts it
 * with the default timeout and body cap. */
static int json_call(docker *d, const char *method, const char *json, long def_timeout_ms,
                     const docker_cb *cb, http_req **out, drv_err *err, const char *tmpl, ...)
{
    buf path = BUF_INIT;
    va_list ap;
    va_start(ap, tmpl);
    int rc = vpath(&path, err, tmpl, ap);
    va_end(ap);
    if (rc == 0) {
        rc = start(d, method, &path, 1, json, NULL, def_timeout_ms, DOCKER_MAX_BODY, cb, out, err);
    }
    buf_free(&path);
    return rc;
}

int docker_container_create(docker *d, const char *name, const char *json,
                            const docker_cb *cb, http_req **out, drv_err *err)
{
    return json_call(d, "POST", json, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/create", "name", name, DOCKER_END);
}

int docker_container_attach(docker *d, const char *id, const docker_cb *cb,
                            http_req **out, drv_err *err)
{
    return json_call(d, "POST", NULL, 0, cb, out, err, "/containers/{}/attach", id,
                     "stream", "1", "stdout", "1", "stderr", "1", DOCKER_END);
}

int docker_container_start(docker *d, const char *id, const docker_cb *cb,
                           http_req **out, drv_err *err)
{
    return json_call(d, "POST", NULL, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/start", id, DOCKER_END);
}

int docker_container_wait(docker *d, const char *id, const char *condition,
                          const docker_cb *cb, http_req **out, drv_err *err)
{
    return json_call(d, "POST", NULL, 0, cb, out, err, "/containers/{}/wait", id,
                     "condition", condition, DOCKER_END);
}

int docker_container_kill(docker *d, const char *id, const char *signal,
                          const docker_cb *cb, http_req **out, drv_err *err)
{
    return json_call(d, "POST", NULL, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/kill", id, "signal", signal, DOCKER_END);
}

int docker_container_stop(docker *d, const char *id, long seconds,
                          const docker_cb *cb, http_req **out, drv_err *err)
{
    char t[32];
    snprintf(t, sizeof t, "%ld", seconds);
    return json_call(d, "POST", NULL, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/stop", id, "t", t, DOCKER_END);
}

int docker_container_inspect(docker *d, const char *id, const docker_cb *cb,
                             http_req **out, drv_err *err)
{
    return json_call(d, "GET", NULL, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/json", id, DOCKER_END);
}

int docker_container_remove(docker *d, const char *id, int force, int volumes,
                            const docker_cb *cb, http_req **out, drv_err *err)
{
    return json_call(d, "DELETE", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/containers/{}", id,
                     "force", force ? "1" : DOCKER_END, "v", volumes ? "1" : DOCKER_END, DOCKER_END);
}

int docker_image_load(docker *d, FILE *tar, int quiet, const docker_cb *cb,
                      http_req **out, drv_err *err)
{
    buf path = BUF_INIT;
    int rc = docker_path(&path, err, "/images/load", "quiet", quiet ? "1" : DOCKER_END,
                         DOCKER_END);
    if (rc == 0) {
        rc = start(d, "POST", &path, 1, NULL, tar, 0, DOCKER_MAX_BODY, cb, out, err);
    }
    buf_free(&path);
    return rc;
}

int docker_image_inspect(docker *d, const char *ref, const docker_cb *cb, http_req **out,
                         drv_err *err)
{
    /* a reference keeps its slashes (the router matches /images/{name:.*}/json);
     * each component between them is escaped like any other segment */
    buf path = BUF_INIT;
    const char *p = ref != NULL ? ref : "";
    int rc = 0;
    buf_puts(&path, "/images");
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char part[256];
        if (n == 0 || n >= sizeof part || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            rc = drv_err_set(err, DRV_EINVALID, "docker: invalid image reference: \"%s\"",
                             ref != NULL ? ref : "");
            break;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        buf_puts(&path, "/");
        /* ':' and '@' are path characters (RFC 3986 pchar): the tag and
         * digest separators stay readable */
        for (char *q = part, *colon; *q != '\0'; q = colon + 1) {
            colon = q + strcspn(q, ":@");
            char sep = *colon;
            *colon = '\0';
            docker_escape(&path, q);
            if (sep == '\0') {
                break;
            }
            buf_append(&path, &sep, 1);
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    if (rc == 0) {
        buf_puts(&path, "/json");
        rc = start(d, "GET", &path, 1, NULL, NULL, DEFAULT_TIMEOUT_MS, DOCKER_MAX_BODY, cb, out, err);
    }
    buf_free(&path);
    return rc;
}

int docker_network_inspect(docker *d, const char *name, const docker_cb *cb,
                           http_req **out, drv_err *err)
{
    return json_call(d, "GET", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/networks/{}", name,
                     DOCKER_END);
}

int docker_version(docker *d, const docker_cb *cb, http_req **out, drv_err *err)
{
    return json_call(d, "GET", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/version", DOCKER_END);
}
