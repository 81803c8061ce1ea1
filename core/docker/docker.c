/* docker.c: Docker Engine API: endpoint, version negotiation, typed calls. */
#include "docker.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    if (cause != NULL && strncmp(cause->msg, HTTP_TLS_PREFIX, strlen(HTTP_TLS_PREFIX)) == 0) {
        return drv_err_set(err, DRV_EDOCKER,
            "docker: TLS with the Docker daemon at \"%s\" failed: %s\n"
            "  check docker.tls.ca (the CA that signed the daemon's certificate, which must name\n"
            "  the endpoint's host) and docker.tls.cert/docker.tls.key (a client certificate\n"
            "  signed by a CA the daemon trusts; with DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem)",
            d->endpoint, cause->msg + strlen(HTTP_TLS_PREFIX));
    }
    if (strncmp(d->base, "https://", 8) != 0 && strncmp(d->endpoint, "tcp://", 6) == 0 &&
        cause != NULL && (strstr(cause->msg, HTTP_NO_ANSWER) != NULL ||
                          strstr(cause->msg, "HTTP/0.9") != NULL)) {
        /* a TLS port spoken to in plain HTTP answers with a TLS alert */
        return drv_err_set(err, DRV_EDOCKER,
            "docker: the Docker daemon at \"%s\" did not answer plain HTTP (%s)\n"
            "  it probably wants TLS: set docker.tls.ca, docker.tls.cert and docker.tls.key\n"
            "  (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)",
            d->endpoint, cause->msg);
    }
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

/* One request: `path` is appended to base + "/v<version>" (or to base when
 * `unversioned`); `timeout_ms` applies when cb->timeout_ms is 0 (0: none). */
typedef struct call {
    const char *method;
    const buf *path;
    int unversioned;
    const char *json;            /* body, or NULL */
    FILE *tar;                   /* streamed body, or NULL */
    const char *const *headers;  /* extra "Name: value" lines, or NULL */
    long timeout_ms;
    size_t max_body;             /* 0: DOCKER_MAX_BODY */
} call;

static int start(docker *d, const call *k, const docker_cb *cb, http_req **out, drv_err *err)
{
    buf url = BUF_INIT;
    http_opts o;

    if (k->unversioned) {
        buf_appendf(&url, "%s%s", d->base, buf_str(k->path));
    } else {
        buf_appendf(&url, "%s/v%s%s", d->base, d->version, buf_str(k->path));
    }
    memset(&o, 0, sizeof o);
    o.method = k->method;
    o.url = buf_str(&url);
    o.unix_socket = d->socket;
    o.ca_file = d->ca;
    o.cert_file = d->cert;
    o.key_file = d->key;
    /* cb is never NULL here; cppcheck's whole-program pass follows a test
     * that passes NULL to docker_image_inspect with a name refused before
     * start() is reached. */
    /* cppcheck-suppress ctunullpointer */
    o.timeout_ms = cb->timeout_ms > 0 ? cb->timeout_ms : k->timeout_ms;
    o.connect_timeout_ms = 5000;
    o.max_body = k->max_body > 0 ? k->max_body : DOCKER_MAX_BODY;
    o.headers = k->headers;
    if (k->json != NULL) {
        o.content_type = "application/json";
        o.body = k->json;
        o.body_len = strlen(k->json);
    } else if (k->tar != NULL) {
        o.content_type = "application/x-tar";
        o.upload = k->tar;
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
    call k = { .method = "GET", .path = &path, .unversioned = 1,
               .max_body = DOCKER_MAX_PING_BODY };
    int rc = start(d, &k, &c, NULL, err);
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
        call k = { .method = method, .path = &path, .json = json, .timeout_ms = def_timeout_ms };
        rc = start(d, &k, cb, out, err);
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
        call k = { .method = "POST", .path = &path, .tar = tar };
        rc = start(d, &k, cb, out, err);
    }
    buf_free(&path);
    return rc;
}

/* Appends "/images/<reference>": the reference keeps its slashes (the router
 * matches /images/{name:.*}/...); each component between them is escaped
 * like any other segment, ':' and '@' (RFC 3986 pchar) kept readable. */
static int image_path(buf *path, const char *ref, drv_err *err)
{
    const char *p = ref != NULL ? ref : "";
    buf_puts(path, "/images");
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
        char part[256];
        if (n == 0 || n >= sizeof part || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            buf q = BUF_INIT;
            quote(&q, ref != NULL ? ref : "");
            int rc = drv_err_set(err, DRV_EINVALID, "docker: invalid image reference: %s",
                                 buf_str(&q));
            buf_free(&q);
            return rc;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        buf_puts(path, "/");
        for (char *q = part, *colon; *q != '\0'; q = colon + 1) {
            colon = q + strcspn(q, ":@");
            char sep = *colon;
            *colon = '\0';
            docker_escape(path, q);
            if (sep == '\0') {
                break;
            }
            buf_append(path, &sep, 1);
        }
        if (slash == NULL) {
            return 0;
        }
        p = slash + 1;
    }
}

/* An image call: "/images/<ref>" + `suffix` + the query pairs (ending with
 * DOCKER_END). */
static int image_call(docker *d, const char *method, const char *ref, const char *suffix,
                      const docker_cb *cb, http_req **out, drv_err *err, ...)
{
    buf path = BUF_INIT;
    int rc = image_path(&path, ref, err);
    if (rc == 0) {
        va_list ap;
        va_start(ap, err);
        rc = vpath(&path, err, suffix, ap);
        va_end(ap);
    }
    if (rc == 0) {
        call k = { .method = method, .path = &path, .timeout_ms = DEFAULT_TIMEOUT_MS };
        rc = start(d, &k, cb, out, err);
    }
    buf_free(&path);
    return rc;
}

int docker_image_inspect(docker *d, const char *ref, const docker_cb *cb, http_req **out,
                         drv_err *err)
{
    return image_call(d, "GET", ref, "/json", cb, out, err, DOCKER_END);
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

/* --- logs, stats, lists, events ----------------------------------------------- */

int docker_container_logs(docker *d, const char *id, int follow, int want_stdout,
                          int want_stderr, long long since, long tail, const docker_cb *cb,
                          http_req **out, drv_err *err)
{
    char s[32], n[32];
    if (since < 0) {
        return drv_err_set(err, DRV_EINVALID, "docker: logs: negative since: %lld", since);
    }
    snprintf(s, sizeof s, "%lld", since);
    snprintf(n, sizeof n, "%ld", tail);
    return json_call(d, "GET", NULL, follow ? 0 : DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/logs", id, "follow", follow ? "1" : "0",
                     "stdout", want_stdout ? "1" : "0", "stderr", want_stderr ? "1" : "0",
                     "since", since > 0 ? s : DOCKER_END, "tail", tail >= 0 ? n : "all",
                     DOCKER_END);
}

int docker_container_stats(docker *d, const char *id, int stream, const docker_cb *cb,
                           http_req **out, drv_err *err)
{
    return json_call(d, "GET", NULL, stream ? 0 : DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/stats", id, "stream", stream ? "1" : "0", DOCKER_END);
}

/* 1 when `s` is well-formed UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF). */
static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        unsigned c = *p;
        size_t n;
        unsigned cp, min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += n + 1;
    }
    return 1;
}

/* Appends `s` as a JSON string (valid UTF-8 assumed). */
static void json_string(buf *out, const char *s)
{
    buf_puts(out, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\') {
            char e[2] = { '\\', (char)*c };
            buf_append(out, e, 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            buf_appendf(out, "\\u%04x", *c);
        } else {
            buf_append(out, c, 1);
        }
    }
    buf_puts(out, "\"");
}

int docker_filters_json(buf *out, const docker_filter *filters, drv_err *err)
{
    if (filters == NULL || filters[0].key == NULL) {
        return 0;
    }
    for (const docker_filter *f = filters; f->key != NULL; f++) {
        const char *bad = NULL;
        if (f->key[0] == '\0' || !utf8_valid(f->key)) {
            bad = f->key;
        } else if (f->value == NULL || f->value[0] == '\0' || !utf8_valid(f->value)) {
            bad = f->value != NULL ? f->value : "";
        }
        if (bad != NULL) {
            buf q = BUF_INIT;
            quote(&q, bad);
            int rc = drv_err_set(err, DRV_EINVALID,
                                 "docker: filter %s: empty or not UTF-8: %s",
                                 bad == f->key ? "key" : "value", buf_str(&q));
            buf_free(&q);
            return rc;
        }
    }
    buf_puts(out, "{");
    int first_key = 1;
    for (const docker_filter *f = filters; f->key != NULL; f++) {
        const docker_filter *g = filters;
        while (g != f && strcmp(g->key, f->key) != 0) {
            g++;
        }
        if (g != f) {
            continue;        /* this key was written with its first term */
        }
        if (!first_key) {
            buf_puts(out, ",");
        }
        first_key = 0;
        json_string(out, f->key);
        buf_puts(out, ":[");
        for (g = f; g->key != NULL; g++) {
            if (strcmp(g->key, f->key) == 0) {
                if (g != f) {
                    buf_puts(out, ",");
                }
                json_string(out, g->value);
            }
        }
        buf_puts(out, "]");
    }
    buf_puts(out, "}");
    return 0;
}

int docker_container_list(docker *d, int all, const docker_filter *filters,
                          const docker_cb *cb, http_req **out, drv_err *err)
{
    buf f = BUF_INIT;
    int rc = docker_filters_json(&f, filters, err);
    if (rc == 0) {
        rc = json_call(d, "GET", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/containers/json",
                       "all", all ? "1" : DOCKER_END,
                       "filters", f.len > 0 ? buf_str(&f) : DOCKER_END, DOCKER_END);
    }
    buf_free(&f);
    return rc;
}

int docker_events(docker *d, const docker_filter *filters, const char *since,
                  const docker_cb *cb, http_req **out, drv_err *err)
{
    buf f = BUF_INIT;
    int rc = docker_filters_json(&f, filters, err);
    if (rc == 0) {
        rc = json_call(d, "GET", NULL, 0, cb, out, err, "/events", "since", since,
                       "filters", f.len > 0 ? buf_str(&f) : DOCKER_END, DOCKER_END);
    }
    buf_free(&f);
    return rc;
}

/* --- exec ------------------------------------------------------------------- */

int docker_exec_create(docker *d, const char *id, const char *json, const docker_cb *cb,
                       http_req **out, drv_err *err)
{
    return json_call(d, "POST", json, DEFAULT_TIMEOUT_MS, cb, out, err,
                     "/containers/{}/exec", id, DOCKER_END);
}

int docker_exec_start(docker *d, const char *exec_id, const char *json, const docker_cb *cb,
                      http_req **out, drv_err *err)
{
    return json_call(d, "POST", json, 0, cb, out, err, "/exec/{}/start", exec_id, DOCKER_END);
}

int docker_exec_inspect(docker *d, const char *exec_id, const docker_cb *cb, http_req **out,
                        drv_err *err)
{
    return json_call(d, "GET", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/exec/{}/json",
                     exec_id, DOCKER_END);
}

int docker_exec_resize(docker *d, const char *exec_id, long rows, long cols,
                       const docker_cb *cb, http_req **out, drv_err *err)
{
    char h[16], w[16];
    if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535) {
        return drv_err_set(err, DRV_EINVALID,
                           "docker: exec resize: rows and columns must be 1 to 65535: %ldx%ld",
                           rows, cols);
    }
    snprintf(h, sizeof h, "%ld", rows);
    snprintf(w, sizeof w, "%ld", cols);
    return json_call(d, "POST", NULL, DEFAULT_TIMEOUT_MS, cb, out, err, "/exec/{}/resize",
                     exec_id, "h", h, "w", w, DOCKER_END);
}

/* --- images ------------------------------------------------------------------- */

/* 1 when the reference names a tag or a digest: a ':' after the last '/'
 * (not the registry's port) or an '@'. */
static int ref_has_tag(const char *ref)
{
    const char *slash = strrchr(ref, '/');
    return strchr(ref, '@') != NULL || strchr(slash != NULL ? slash : ref, ':') != NULL;
}

/* 1 when the X-Registry-Auth value is a plausible header value: printable
 * ASCII, no space (base64url JSON), so nothing can end the header line. */
static int auth_valid(const char *auth)
{
    if (auth[0] == '\0') {
        return 0;
    }
    for (const unsigned char *c = (const unsigned char *)auth; *c != '\0'; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            return 0;
        }
    }
    return 1;
}

int docker_image_pull(docker *d, const char *ref, const char *tag, const char *auth,
                      const docker_cb *cb, http_req **out, drv_err *err)
{
    if (ref == NULL || ref[0] == '\0' ||
        ((tag == NULL || tag[0] == '\0') && !ref_has_tag(ref))) {
        buf q = BUF_INIT;
        quote(&q, ref != NULL ? ref : "");
        int rc = drv_err_set(err, DRV_EINVALID,
                             "docker: pull: the image needs a tag or a digest (else Docker "
                             "pulls every tag): %s", buf_str(&q));
        buf_free(&q);
        return rc;
    }
    if (auth != NULL && !auth_valid(auth)) {
        /* the value is a credential: never in a message */
        return drv_err_set(err, DRV_EINVALID,
                           "docker: pull: registry auth is not a valid header value "
                           "(printable ASCII, no spaces)");
    }
    buf path = BUF_INIT;
    buf hdr = BUF_INIT;
    int rc = docker_path(&path, err, "/images/create", "fromImage", ref,
                         "tag", tag != NULL && tag[0] != '\0' ? tag : DOCKER_END, DOCKER_END);
    if (rc == 0) {
        const char *headers[2] = { NULL, NULL };
        if (auth != NULL) {
            buf_appendf(&hdr, "X-Registry-Auth: %s", auth);
            headers[0] = buf_str(&hdr);
        }
        call k = { .method = "POST", .path = &path, .headers = headers };
        rc = start(d, &k, cb, out, err);   /* http copies the header */
    }
    if (hdr.data != NULL) {
        memset(hdr.data, 0, hdr.len);
    }
    buf_free(&hdr);
    buf_free(&path);
    return rc;
}

int docker_image_remove(docker *d, const char *ref, int force, int noprune,
                        const docker_cb *cb, http_req **out, drv_err *err)
{
    return image_call(d, "DELETE", ref, "", cb, out, err, "force", force ? "1" : DOCKER_END,
                      "noprune", noprune ? "1" : DOCKER_END, DOCKER_END);
}

int docker_image_tag(docker *d, const char *ref, const char *repo, const char *tag,
                     const docker_cb *cb, http_req **out, drv_err *err)
{
    if (repo == NULL || repo[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "docker: tag: empty repository");
    }
    return image_call(d, "POST", ref, "/tag", cb, out, err, "repo", repo, "tag", tag,
                      DOCKER_END);
}

/* --- classification ------------------------------------------------------------ */

/* Case-insensitive: 1 when `s` starts with `prefix`. */
static int starts_with(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Case-insensitive: 1 when `s` ends with `suffix`. */
static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Docker's 409 messages (moby daemon/errors.go and friends):
 *   "Cannot kill container: <id>: Container <id> is not running"
 *   "removal of container <id> is already in progress"
 *   "Conflict. The container name \"/x\" is already in use by container \"<id>\". ..."
 * Container names and ids cannot hold spaces or quotes, so a job cannot make
 * one message look like another. */
static docker_conflict conflict_of(const char *message)
{
    if (message == NULL) {
        return DOCKER_CONFLICT_OTHER;
    }
    if (ends_with(message, "not running")) {
        return DOCKER_CONFLICT_NOT_RUNNING;
    }
    if (starts_with(message, "removal of container ") &&
        ends_with(message, " is already in progress")) {
        return DOCKER_CONFLICT_IN_PROGRESS;
    }
    if (starts_with(message, "Conflict. The container name ") &&
        strstr(message, " is already in use by container ") != NULL) {
        return DOCKER_CONFLICT_NAME_IN_USE;
    }
    return DOCKER_CONFLICT_OTHER;
}

static int image_op(docker_op op)
{
    return op == DOCKER_OP_IMAGE_LOAD || op == DOCKER_OP_IMAGE_INSPECT ||
           op == DOCKER_OP_IMAGE_PULL || op == DOCKER_OP_IMAGE_REMOVE ||
           op == DOCKER_OP_IMAGE_TAG;
}

static int task_op(docker_op op)
{
    return (op >= DOCKER_OP_CONTAINER_CREATE && op <= DOCKER_OP_CONTAINER_LIST) ||
           (op >= DOCKER_OP_EXEC_CREATE && op <= DOCKER_OP_EXEC_RESIZE);
}

void docker_classify(docker_op op, long status, const char *message, docker_answer *out)
{
    memset(out, 0, sizeof *out);
    if (status >= 200 && status < 300) {
        out->cls = DOCKER_OK;
    } else if (status == 101 &&
               (op == DOCKER_OP_CONTAINER_ATTACH || op == DOCKER_OP_EXEC_START)) {
        out->cls = DOCKER_OK;        /* the connection was upgraded (hijacked) */
    } else if (status == 304) {
        out->cls = DOCKER_NOT_MODIFIED;
    } else if (status == 404) {
        /* create answers 404 for a missing image and for a missing network
         * or volume; Docker's message starts "No such image: <ref>" */
        out->cls = op == DOCKER_OP_CONTAINER_CREATE && message != NULL &&
                   starts_with(message, "No such image") ? DOCKER_NO_SUCH_IMAGE : DOCKER_NOT_FOUND;
    } else if (status == 409) {
        out->cls = DOCKER_CONFLICT;
        out->conflict = conflict_of(message);
    } else if (status >= 400 && status < 500) {
        out->cls = DOCKER_BAD_REQUEST;
    } else if (status >= 500 && status < 600) {
        out->cls = DOCKER_SERVER;
    } else {
        out->cls = DOCKER_UNEXPECTED;
    }

    switch (out->cls) {
    case DOCKER_OK:
        out->done = 1;
        break;
    case DOCKER_NOT_MODIFIED:
        out->done = op == DOCKER_OP_CONTAINER_START || op == DOCKER_OP_CONTAINER_STOP;
        break;
    case DOCKER_NOT_FOUND:
        out->done = op == DOCKER_OP_CONTAINER_STOP || op == DOCKER_OP_CONTAINER_KILL ||
                    op == DOCKER_OP_CONTAINER_REMOVE;
        break;
    case DOCKER_CONFLICT:
        out->done = (op == DOCKER_OP_CONTAINER_STOP || op == DOCKER_OP_CONTAINER_KILL) &&
                    out->conflict == DOCKER_CONFLICT_NOT_RUNNING;
        break;
    default:
        break;
    }
    if (out->done) {
        out->code = 0;
    } else if (out->cls == DOCKER_NO_SUCH_IMAGE || image_op(op)) {
        out->code = DRV_EIMAGE;
    } else if (task_op(op)) {
        out->code = DRV_ETASK;
    } else {
        out->code = DRV_EDOCKER;
    }
}

const char *docker_class_name(docker_class cls)
{
    switch (cls) {
    case DOCKER_OK: return "ok";
    case DOCKER_NOT_MODIFIED: return "not modified";
    case DOCKER_NOT_FOUND: return "not found";
    case DOCKER_NO_SUCH_IMAGE: return "no such image";
    case DOCKER_CONFLICT: return "conflict";
    case DOCKER_BAD_REQUEST: return "bad request";
    case DOCKER_SERVER: return "server error";
    case DOCKER_UNEXPECTED: return "unexpected answer";
    }
    return "unexpected answer";
}
