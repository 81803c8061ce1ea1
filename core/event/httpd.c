/* httpd.c: the local HTTP/1.1 + JSON server on a unix socket (libuv). */
#include "httpd.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

/* Unparsed bytes kept while a request is answered (pipelining); reading
 * stops beyond it until the response is written. */
#define HTTPD_INBUF_MAX ((size_t)64 * 1024)
#define HTTPD_BACKLOG 128
#define HTTPD_READ_CHUNK 65536
/* Lingering close: after a last response (an error while the client may
 * still be sending, or Connection: close), the write side is shut and
 * what comes is read and dropped, so the client reads the answer instead
 * of a reset; at most this long and this much. */
#define HTTPD_LINGER_MS 2000
#define HTTPD_LINGER_MAX ((size_t)4 * 1024 * 1024)

typedef struct httpd_conn httpd_conn;

enum { RES_IDLE, RES_STREAM, RES_ENDED, RES_DONE };

struct httpd_res {
    httpd_conn *c;
    int state;
    int chunked;
    int want_drain;
    int dispatched;            /* a handler got it (on_close is owed) */
    size_t pending;            /* bytes queued and not yet written */
    httpd_close_cb on_close;
    void *close_ud;
    httpd_drain_cb on_drain;
    void *drain_ud;
};

struct httpd_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;
    httpd *srv;
    httpd_conn *prev, *next;
    int nhandles;              /* open handles; freed at 0 */
    int served;                /* counted in srv->nconns */
    int closing;
    int busy;                  /* a response is in progress */
    int reading;
    int eof;
    int close_after;           /* close once the response is written */
    int in_process;
    int draining;              /* lingering close: input is dropped */
    size_t drained;
    uv_shutdown_t shut;
    buf in;                    /* bytes not yet given to the parser */
    httpreq req;
    httpd_res res;
};

struct httpd {
    uv_loop_t *loop;
    uv_pipe_t listener;
    int listener_open;
    int closing;
    httpd_opts o;
    httpd_route *routes;
    char *path;
    dev_t dev;
    ino_t ino;
    httpd_conn *conns;
    int nconns;                /* served */
    int nall;                  /* every connection struct alive */
    char rbuf[HTTPD_READ_CHUNK];
};

typedef struct httpd_wr {
    uv_write_t w;
    httpd_conn *c;
    size_t len;
    char data[];
} httpd_wr;

static void httpd_conn_process(httpd_conn *c);
static void httpd_conn_close(httpd_conn *c);
static void httpd_conn_read_start(httpd_conn *c);

/* --- server lifetime --------------------------------------------------- */

static void httpd_maybe_free(httpd *s)
{
    if (!s->closing || s->listener_open || s->nall > 0) {
        return;
    }
    free(s->routes);
    free(s->path);
    free(s);
}

static void httpd_listener_closed(uv_handle_t *h)
{
    httpd *s = h->data;
    s->listener_open = 0;
    httpd_maybe_free(s);
}

/* --- connections ------------------------------------------------------- */

static void httpd_conn_handle_closed(uv_handle_t *h)
{
    httpd_conn *c = h->data;
    if (--c->nhandles > 0) {
        return;
    }
    httpd *s = c->srv;
    httpd_res *res = &c->res;
    if (res->dispatched && res->state != RES_DONE) {
        httpd_close_cb cb = res->on_close;
        res->state = RES_DONE;
        if (cb != NULL) {
            cb(res->close_ud, res, 1);
        }
    }
    httpreq_free(&c->req);
    buf_free(&c->in);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    if (c->served) {
        s->nconns--;
    }
    s->nall--;
    free(c);
    httpd_maybe_free(s);
}

static void httpd_conn_close(httpd_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    uv_close((uv_handle_t *)&c->pipe, httpd_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, httpd_conn_handle_closed);
}

static void httpd_conn_idle(uv_timer_t *t)
{
    httpd_conn *c = t->data;
    log_debug("httpd: connection idle for %u ms, closed", c->srv->o.idle_timeout_ms);
    httpd_conn_close(c);
}

static void httpd_conn_arm(httpd_conn *c)
{
    uv_timer_start(&c->timer, httpd_conn_idle, c->srv->o.idle_timeout_ms, 0);
}

static void httpd_conn_shut(uv_shutdown_t *req, int status)
{
    httpd_conn *c = req->data;
    if (status < 0 && !c->closing) {
        httpd_conn_close(c);
    }
}

/* The last response is out: shut the write side, drop what still comes
 * until the client closes (see HTTPD_LINGER_MS). */
static void httpd_conn_linger(httpd_conn *c)
{
    if (!c->served || c->eof) {
        httpd_conn_close(c);
        return;
    }
    c->draining = 1;
    buf_reset(&c->in);
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->pipe, httpd_conn_shut) != 0) {
        httpd_conn_close(c);
        return;
    }
    if (!c->reading) {
        httpd_conn_read_start(c);
    }
    unsigned ms = c->srv->o.idle_timeout_ms < HTTPD_LINGER_MS ? c->srv->o.idle_timeout_ms
                                                                : HTTPD_LINGER_MS;
    uv_timer_start(&c->timer, httpd_conn_idle, ms, 0);
}

/* The response is over: tell the handler, then read the next request. */
static void httpd_res_finish(httpd_conn *c)
{
    httpd_res *res = &c->res;
    httpd_close_cb cb = res->on_close;
    int dispatched = res->dispatched;
    res->state = RES_DONE;
    if (dispatched && cb != NULL) {
        cb(res->close_ud, res, 0);
    }
    if (c->closing) {
        return;
    }
    memset(res, 0, sizeof *res);
    c->busy = 0;
    httpreq_next(&c->req);
    if (c->close_after) {
        httpd_conn_linger(c);
        return;
    }
    httpd_conn_arm(c);
    httpd_conn_process(c);
}

static void httpd_conn_written(uv_write_t *w, int status)
{
    httpd_wr *wr = (httpd_wr *)w;
    httpd_conn *c = wr->c;
    httpd_res *res = &c->res;
    res->pending -= wr->len;
    free(wr);
    if (c->closing) {
        return;
    }
    if (status < 0) {
        log_debug("httpd: write failed: %s", uv_strerror(status));
        httpd_conn_close(c);
        return;
    }
    if (res->state == RES_ENDED && res->pending == 0) {
        httpd_res_finish(c);
        return;
    }
    if (res->state == RES_STREAM && res->want_drain &&
        res->pending <= c->srv->o.stream_high_water / 2) {
        res->want_drain = 0;
        if (res->on_drain != NULL) {
            res->on_drain(res->drain_ud, res);
        }
    }
}

/* Queues the concatenation of up to three pieces as one write. */
static int httpd_conn_send(httpd_conn *c, const char *a, size_t alen, const char *b,
                           size_t blen, const char *z, size_t zlen, drv_err *err)
{
    size_t len = alen + blen + zlen;
    httpd_wr *wr = drv_xmalloc(sizeof *wr + len + 1);
    wr->c = c;
    wr->len = len;
    if (alen) {
        memcpy(wr->data, a, alen);
    }
    if (blen) {
        memcpy(wr->data + alen, b, blen);
    }
    if (zlen) {
        memcpy(wr->data + alen + blen, z, zlen);
    }
    uv_buf_t ub = uv_buf_init(wr->data, (unsigned)len);
    int rc = uv_write(&wr->w, (uv_stream_t *)&c->pipe, &ub, 1, httpd_conn_written);
    if (rc != 0) {
        free(wr);
        httpd_conn_close(c);
        return drv_err_set(err, DRV_EIO, "httpd: write: %s", uv_strerror(rc));
    }
    c->res.pending += len;
    return 0;
}

static void httpd_res_head(httpd_res *res, buf *b, int status, const char *ctype,
                           const size_t *clen, const char *extra)
{
    const char *reason = http_status_str((enum http_status)status);
    buf_appendf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n", status, reason,
                ctype ? ctype : "application/json");
    if (clen != NULL) {
        buf_appendf(b, "Content-Length: %zu\r\n", *clen);
    } else if (res->chunked) {
        buf_puts(b, "Transfer-Encoding: chunked\r\n");
    }
    buf_puts(b, "Cache-Control: no-store\r\n");
    if (res->c->close_after) {
        buf_puts(b, "Connection: close\r\n");
    }
    if (extra != NULL) {
        buf_puts(b, extra);
    }
    buf_puts(b, "\r\n");
}

static int httpd_res_usable(httpd_res *res, int want, drv_err *err)
{
    if (res->c == NULL || res->c->closing || res->state == RES_DONE) {
        return drv_err_set(err, DRV_ECANCELED, "httpd: response aborted");
    }
    if (res->state != want) {
        return drv_err_set(err, DRV_EINVALID, "httpd: response in the wrong state: %d",
                           res->state);
    }
    return 0;
}

static int httpd_res_send(httpd_res *res, int status, const char *extra, const char *json,
                          size_t len, drv_err *err)
{
    int rc = httpd_res_usable(res, RES_IDLE, err);
    if (rc != 0) {
        return rc;
    }
    httpd_conn *c = res->c;
    buf head = BUF_INIT;
    httpd_res_head(res, &head, status, NULL, &len, extra);
    res->state = RES_ENDED;
    rc = httpd_conn_send(c, head.data, head.len, json, len, NULL, 0, err);
    buf_free(&head);
    if (rc == 0) {
        httpd_conn_arm(c);    /* a client that never reads it is dropped */
    }
    return rc;
}

int httpd_res_json(httpd_res *res, int status, const char *json, size_t len, drv_err *err)
{
    return httpd_res_send(res, status, NULL, json, len, err);
}

static void httpd_json_str(buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_appendf(b, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_appendf(b, "\\u%04x", *p);
        } else {
            buf_append(b, p, 1);
        }
    }
    buf_puts(b, "\"");
}

static int httpd_res_error_x(httpd_res *res, int status, const char *extra, const char *msg,
                             drv_err *err)
{
    buf b = BUF_INIT;
    buf_puts(&b, "{\"error\":");
    httpd_json_str(&b, msg);
    buf_puts(&b, "}\n");
    int rc = httpd_res_send(res, status, extra, b.data, b.len, err);
    buf_free(&b);
    return rc;
}

int httpd_res_error(httpd_res *res, int status, const char *msg, drv_err *err)
{
    return httpd_res_error_x(res, status, NULL, msg, err);
}

int httpd_res_start(httpd_res *res, int status, const char *content_type, drv_err *err)
{
    int rc = httpd_res_usable(res, RES_IDLE, err);
    if (rc != 0) {
        return rc;
    }
    httpd_conn *c = res->c;
    res->chunked = c->req.http_minor >= 1;
    if (!res->chunked) {
        c->close_after = 1;    /* HTTP/1.0: the body ends with the connection */
    }
    buf head = BUF_INIT;
    httpd_res_head(res, &head, status, content_type, NULL, NULL);
    res->state = RES_STREAM;
    rc = httpd_conn_send(c, head.data, head.len, NULL, 0, NULL, 0, err);
    buf_free(&head);
    return rc;
}

int httpd_res_write(httpd_res *res, const char *data, size_t len, drv_err *err)
{
    int rc = httpd_res_usable(res, RES_STREAM, err);
    if (rc != 0) {
        return rc;
    }
    if (len == 0) {
        return 0;    /* an empty chunk would end the stream */
    }
    httpd_conn *c = res->c;
    if (res->pending + len > c->srv->o.stream_max_pending) {
        size_t pending = res->pending;
        httpd_conn_close(c);
        return drv_err_set(err, DRV_EIO,
                           "httpd: client not reading, stream aborted: %zu bytes pending",
                           pending);
    }
    char size[32];
    int n = res->chunked ? snprintf(size, sizeof size, "%zx\r\n", len) : 0;
    rc = httpd_conn_send(c, size, (size_t)n, data, len, "\r\n", res->chunked ? 2 : 0, err);
    if (rc != 0) {
        return rc;
    }
    if (res->pending >= c->srv->o.stream_high_water) {
        res->want_drain = 1;
        return HTTPD_RES_FULL;
    }
    return 0;
}

int httpd_res_end(httpd_res *res, drv_err *err)
{
    int rc = httpd_res_usable(res, RES_STREAM, err);
    if (rc != 0) {
        return rc;
    }
    res->state = RES_ENDED;
    /* HTTP/1.0: an empty write, so the end still comes through a write
     * callback once everything before it is out */
    return httpd_conn_send(res->c, "0\r\n\r\n", res->chunked ? 5 : 0, NULL, 0, NULL, 0, err);
}

void httpd_res_on_close(httpd_res *res, httpd_close_cb cb, void *ud)
{
    res->on_close = cb;
    res->close_ud = ud;
}

void httpd_res_on_drain(httpd_res *res, httpd_drain_cb cb, void *ud)
{
    res->on_drain = cb;
    res->drain_ud = ud;
}

size_t httpd_res_pending(const httpd_res *res)
{
    return res->pending;
}

/* --- routing ----------------------------------------------------------- */

static int httpd_path_matches(const httpd_route *r, const char *path)
{
    size_t n = strlen(r->path);
    if (strncmp(path, r->path, n) != 0) {
        return 0;
    }
    if (path[n] == '\0') {
        return 1;
    }
    return r->prefix && (path[n] == '/' || (n > 0 && r->path[n - 1] == '/'));
}

static void httpd_dispatch(httpd_conn *c)
{
    httpd *s = c->srv;
    httpreq *req = &c->req;
    c->busy = 1;
    uv_timer_stop(&c->timer);
    memset(&c->res, 0, sizeof c->res);
    c->res.c = c;
    if (!req->keep_alive || req->http_minor < 1) {
        c->close_after = 1;
    }
    buf allow = BUF_INIT;
    for (size_t i = 0; i < s->o.nroutes; i++) {
        const httpd_route *r = &s->routes[i];
        if (!httpd_path_matches(r, req->path)) {
            continue;
        }
        if (strcmp(r->method, req->method) == 0) {
            buf_free(&allow);
            c->res.dispatched = 1;
            r->handler(r->ud, req, &c->res);
            return;
        }
        buf_appendf(&allow, "%s%s", allow.len ? ", " : "Allow: ", r->method);
    }
    if (allow.len > 0) {
        buf_puts(&allow, "\r\n");
        httpd_res_error_x(&c->res, 405, allow.data, "method not allowed", NULL);
    } else {
        httpd_res_error(&c->res, 404, "not found", NULL);
    }
    buf_free(&allow);
}

static void httpd_conn_process(httpd_conn *c)
{
    if (c->in_process) {
        return;    /* the loop below goes on */
    }
    c->in_process = 1;
    while (!c->closing && !c->busy) {
        if (c->req.state == HTTPREQ_MORE && c->in.len > 0) {
            size_t n = httpreq_feed(&c->req, c->in.data, c->in.len);
            buf_consume(&c->in, n);
        }
        if (c->req.state == HTTPREQ_DONE) {
            httpd_dispatch(c);
            continue;
        }
        if (c->req.state == HTTPREQ_ERROR) {
            log_debug("httpd: bad request (%d): %s", c->req.status, c->req.why);
            c->busy = 1;
            c->close_after = 1;
            memset(&c->res, 0, sizeof c->res);
            c->res.c = c;
            httpd_res_error(&c->res, c->req.status, c->req.why, NULL);
            break;
        }
        if (c->eof) {
            httpd_conn_close(c);
            break;
        }
        if (!c->reading) {
            httpd_conn_read_start(c);
        }
        break;
    }
    c->in_process = 0;
}

static void httpd_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    httpd_conn *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void httpd_conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    httpd_conn *c = st->data;
    if (n == 0 || c->closing) {
        return;
    }
    if (c->draining) {
        if (n < 0 || (c->drained += (size_t)n) > HTTPD_LINGER_MAX) {
            httpd_conn_close(c);
        }
        return;
    }
    if (n < 0) {
        /* a stream has no end but the client's: EOF there means it left */
        if (n != UV_EOF || (c->busy && c->res.state == RES_STREAM)) {
            httpd_conn_close(c);
            return;
        }
        c->eof = 1;
        c->reading = 0;
        uv_read_stop(st);
        if (!c->busy) {
            httpd_conn_process(c);
        }
        return;
    }
    buf_append(&c->in, b->base, (size_t)n);
    if (c->busy) {
        if (c->in.len > HTTPD_INBUF_MAX) {
            c->reading = 0;
            uv_read_stop(st);
        }
        return;
    }
    httpd_conn_process(c);
}

/* Starts reading, or sets up a canned refusal. */
static void httpd_conn_refuse(httpd_conn *c, int status, const char *msg)
{
    c->busy = 1;
    c->close_after = 1;
    c->res.c = c;
    httpd_res_error(&c->res, status, msg, NULL);
}

static void httpd_conn_read_start(httpd_conn *c)
{
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->pipe, httpd_conn_alloc, httpd_conn_read);
}

static void httpd_on_conn(uv_stream_t *l, int status)
{
    httpd *s = l->data;
    if (status < 0 || s->closing) {
        log_debug("httpd: accept: %s", uv_strerror(status));
        return;
    }
    httpd_conn *c = drv_xcalloc(1, sizeof *c);
    c->srv = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->pipe.data = c;
    c->timer.data = c;
    c->nhandles = 2;
    httpreq_init(&c->req, s->o.max_head, s->o.max_body);
    c->next = s->conns;
    if (s->conns) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->nall++;
    int rc = uv_accept(l, (uv_stream_t *)&c->pipe);
    if (rc != 0) {
        log_debug("httpd: accept: %s", uv_strerror(rc));
        httpd_conn_close(c);
        return;
    }
    uv_os_fd_t fd = -1;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || clen != sizeof cred) {
        log_debug("httpd: no peer credentials, connection closed");
        httpd_conn_close(c);
        return;
    }
    httpd_conn_arm(c);
    if (cred.uid != geteuid() && cred.uid != 0) {
        log_info("httpd: request from uid %u refused (only uid %u and root)",
                 (unsigned)cred.uid, (unsigned)geteuid());
        httpd_conn_refuse(c, 403, "forbidden: the agent serves only its own user");
        return;
    }
    if (s->nconns >= s->o.max_conns) {
        log_info("httpd: %d connections open, one more refused", s->nconns);
        httpd_conn_refuse(c, 503, "too many connections");
        return;
    }
    c->served = 1;
    s->nconns++;
    httpd_conn_read_start(c);
}

/* --- the socket -------------------------------------------------------- */

/* 0 when nothing answers on the socket at `path` (stale), else an error. */
static int httpd_probe_stale(const char *path, drv_err *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return drv_err_set(err, DRV_EIO, "httpd: socket: %s", strerror(errno));
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    if (rc == 0) {
        return drv_err_set(err, DRV_EINVALID, "httpd: a server already answers on \"%s\"", path);
    }
    if (e != ECONNREFUSED && e != ENOENT) {
        return drv_err_set(err, DRV_EIO, "httpd: cannot probe the socket: %s: \"%s\"",
                           strerror(e), path);
    }
    return 0;
}

/* Refuses anything at `path` but a stale socket. */
static int httpd_check_path(const char *path, drv_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return drv_err_set(err, DRV_EIO, "httpd: %s: \"%s\"", strerror(errno), path);
    }
    if (!S_ISSOCK(st.st_mode)) {
        return drv_err_set(err, DRV_EINVALID,
                           "httpd: not a socket, refusing to replace it: \"%s\"", path);
    }
    return httpd_probe_stale(path, err);
}

/* Binds a listening socket at `path`, mode 0600, never wider (see httpd.h);
 * returns the fd or a negative code. */
static int httpd_bind(httpd *s, const char *path, drv_err *err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash - path) : 1;
    char tmpdir[sizeof sa.sun_path - 2];
    if (strlen(path) >= sizeof sa.sun_path || dlen + 16 >= sizeof tmpdir) {
        return drv_err_set(err, DRV_EINVALID, "httpd: socket path too long: \"%s\"", path);
    }
    int rc = httpd_check_path(path, err);
    if (rc != 0) {
        return rc;
    }
    if (slash == NULL) {
        snprintf(tmpdir, sizeof tmpdir, "./.httpd-XXXXXX");
    } else {
        snprintf(tmpdir, sizeof tmpdir, "%.*s/.httpd-XXXXXX", (int)dlen, path);
    }
    if (mkdtemp(tmpdir) == NULL) {    /* mode 0700 */
        return drv_err_set(err, DRV_EIO, "httpd: cannot make a directory beside the socket: %s: \"%s\"",
                           strerror(errno), tmpdir);
    }
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/s", tmpdir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct stat st;
    if (fd < 0) {
        rc = drv_err_set(err, DRV_EIO, "httpd: socket: %s", strerror(errno));
    } else if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
               chmod(sa.sun_path, 0600) != 0 || listen(fd, HTTPD_BACKLOG) != 0 ||
               lstat(sa.sun_path, &st) != 0) {
        rc = drv_err_set(err, DRV_EIO, "httpd: cannot bind: %s: \"%s\"", strerror(errno), path);
    } else if ((rc = httpd_check_path(path, err)) == 0 && rename(sa.sun_path, path) != 0) {
        rc = drv_err_set(err, DRV_EIO, "httpd: cannot move the socket into place: %s: \"%s\"",
                         strerror(errno), path);
    }
    if (rc != 0) {
        unlink(sa.sun_path);
    } else {
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    rmdir(tmpdir);
    if (rc != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    return fd;
}

int httpd_new(httpd **out, uv_loop_t *loop, const httpd_opts *o, drv_err *err)
{
    *out = NULL;
    if (o->path == NULL || o->path[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "httpd: no socket path");
    }
    for (size_t i = 0; i < o->nroutes; i++) {
        const httpd_route *r = &o->routes[i];
        if (r->method == NULL || r->path == NULL || r->path[0] != '/' || r->handler == NULL) {
            return drv_err_set(err, DRV_EINVALID, "httpd: route %zu incomplete", i);
        }
    }
    httpd *s = drv_xcalloc(1, sizeof *s);
    s->loop = loop;
    s->o = *o;
    if (s->o.max_conns <= 0) {
        s->o.max_conns = HTTPD_MAX_CONNS;
    }
    if (s->o.idle_timeout_ms == 0) {
        s->o.idle_timeout_ms = HTTPD_IDLE_TIMEOUT_MS;
    }
    if (s->o.stream_high_water == 0) {
        s->o.stream_high_water = HTTPD_STREAM_HIGH_WATER;
    }
    if (s->o.stream_max_pending == 0) {
        s->o.stream_max_pending = HTTPD_STREAM_MAX_PENDING;
    }
    if (s->o.stream_max_pending < s->o.stream_high_water) {
        s->o.stream_max_pending = s->o.stream_high_water;
    }
    if (o->nroutes > 0) {
        s->routes = drv_xcalloc(o->nroutes, sizeof *s->routes);
        memcpy(s->routes, o->routes, o->nroutes * sizeof *s->routes);
    }
    s->o.routes = s->routes;
    s->path = drv_xstrdup(o->path);
    s->o.path = s->path;
    int fd = httpd_bind(s, s->path, err);
    if (fd < 0) {
        free(s->routes);
        free(s->path);
        free(s);
        return fd;
    }
    uv_pipe_init(loop, &s->listener, 0);
    s->listener.data = s;
    s->listener_open = 1;
    int rc = uv_pipe_open(&s->listener, fd);
    int opened = rc == 0;
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&s->listener, HTTPD_BACKLOG, httpd_on_conn);
    }
    if (rc != 0) {
        if (!opened) {
            close(fd);
        }
        drv_err_set(err, DRV_EIO, "httpd: listen: %s: \"%s\"", uv_strerror(rc), s->path);
        httpd_close(s);
        return DRV_EIO;
    }
    log_debug("httpd: listening on %s", s->path);
    *out = s;
    return 0;
}

void httpd_close(httpd *s)
{
    if (s == NULL || s->closing) {
        return;
    }
    s->closing = 1;
    struct stat st;
    if (lstat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino) {
        unlink(s->path);
    }
    for (httpd_conn *c = s->conns; c != NULL; c = c->next) {
        httpd_conn_close(c);
    }
    uv_close((uv_handle_t *)&s->listener, httpd_listener_closed);
}

int httpd_conns(const httpd *s)
{
    return s->nconns;
}
