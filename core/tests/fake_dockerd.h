/*
 * fake_dockerd.h: a scripted Docker daemon on a unix socket, on the test's
 * own libuv loop (header only, for test_*.c; beside fake_server.h).
 *
 * The script is an array of steps ended by a step with method NULL. Each
 * request is matched to the first unused step whose method equals and whose
 * path starts with `path` (the "/v1.41" version prefix is stripped before
 * matching; the query string is part of the path). Concurrent requests
 * (attach and start, wait and kill) thus match in any order while steps
 * with the same method and path are used in script order. A request that
 * matches no step gets HTTP 500 and counts in `unexpected`.
 *
 * Every request line received is recorded in `log` (one per line:
 * "POST /containers/create?name=x"), in arrival order.
 *
 * A step answers with `status`, extra `headers`, and `body` (JSON), after
 * `delay_ms`, or once a request matching `after` ("METHOD /path-prefix")
 * has arrived (a wait that answers once the kill came). `stream`: the
 * body is sent without a length and the connection stays open, like an
 * attach stream, until a step with `end_streams` answers, the client
 * closes, or the server closes. `drop`: 1 closes the connection without an
 * answer; 2 sends the head announcing the body's length and half the body,
 * then closes. `hold`: never answers (until the client gives up or the
 * server closes).
 *
 *     fd_step script[] = {
 *         { "POST", "/containers/create", 201, .body = "{\"Id\":\"c1\"}" },
 *         { "POST", "/containers/c1/attach", 200, .stream = 1 },
 *         ...
 *         { NULL },
 *     };
 *     fake_dockerd_start(&fd, &loop, dir, script);
 *     ... uv_run ...; fake_dockerd_close(&fd); uv_run; fake_dockerd_free(&fd);
 */
#ifndef DRV_FAKE_DOCKERD_H
#define DRV_FAKE_DOCKERD_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"

typedef struct fd_step {
    const char *method;
    const char *path;          /* prefix, after the version */
    int status;
    const char *body;          /* or NULL */
    const char *headers;       /* extra header lines, each ending "\r\n" */
    size_t body_len;           /* 0: strlen(body) (for frames with NULs) */
    int stream;
    int end_streams;           /* answering ends every open stream */
    int drop;                  /* 1: no answer; 2: half an answer */
    int hold;                  /* never answer */
    int delay_ms;
    const char *after;         /* "METHOD /prefix": answer once that came */
} fd_step;

#define FD_MAX_STEPS 64
#define FD_MAX_CONNS 64

typedef struct fake_dockerd fake_dockerd;

typedef struct fd_conn {
    uv_pipe_t pipe;
    uv_timer_t timer;          /* delay_ms */
    fake_dockerd *fd;
    buf in;
    const fd_step *step;       /* matched step, NULL until the request is in */
    int answered;
    int streaming;             /* answered a stream step, open */
    int waiting;               /* held for `after` */
    int closing;
    int handles;               /* open handles (pipe, timer) */
    uv_write_t wr;
    buf out;
    int close_after_write;
} fd_conn;

struct fake_dockerd {
    uv_pipe_t listener;
    uv_loop_t *loop;
    char path[108];
    const fd_step *script;
    int used[FD_MAX_STEPS];
    fd_conn *conns[FD_MAX_CONNS];
    buf log;                   /* request lines, one per line */
    int requests;
    int unexpected;
    int closed;
    /* optional: told of each request line once it is dispatched */
    void (*on_request)(void *ud, const char *line);
    void *ud;
};

static void fd_conn_free_cb(uv_handle_t *h)
{
    fd_conn *c = h->data;
    if (--c->handles > 0) {
        return;
    }
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

static void fd_conn_close(fd_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    for (size_t i = 0; i < FD_MAX_CONNS; i++) {
        if (c->fd->conns[i] == c) {
            c->fd->conns[i] = NULL;
        }
    }
    uv_close((uv_handle_t *)&c->timer, fd_conn_free_cb);
    uv_close((uv_handle_t *)&c->pipe, fd_conn_free_cb);
}

static void fd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(hint);
    b->len = b->base ? hint : 0;
}

static void fd_written(uv_write_t *w, int status)
{
    fd_conn *c = w->data;
    (void)status;
    if (c->close_after_write || status < 0) {
        fd_conn_close(c);
    }
}

static void fd_write(fd_conn *c, int close_after)
{
    c->close_after_write = close_after;
    uv_buf_t out = uv_buf_init(c->out.data, (unsigned)c->out.len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &out, 1, fd_written) != 0) {
        fd_conn_close(c);
    }
}

static void fd_end_streams(fake_dockerd *fd)
{
    for (size_t i = 0; i < FD_MAX_CONNS; i++) {
        fd_conn *c = fd->conns[i];
        if (c != NULL && c->streaming) {
            fd_conn_close(c);
        }
    }
}

/* Sends the matched step's answer. */
static void fd_answer(fd_conn *c)
{
    const fd_step *s = c->step;
    size_t blen = s->body != NULL ? (s->body_len ? s->body_len : strlen(s->body)) : 0;
    c->answered = 1;
    if (s->drop == 1) {
        fd_conn_close(c);
        return;
    }
    buf_reset(&c->out);
    buf_appendf(&c->out, "HTTP/1.1 %d X\r\nApi-Version: 1.41\r\nConnection: close\r\n", s->status);
    if (s->headers != NULL) {
        buf_puts(&c->out, s->headers);
    }
    if (s->stream) {
        buf_puts(&c->out, "Content-Type: application/vnd.docker.raw-stream\r\n\r\n");
    } else {
        buf_appendf(&c->out, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                    blen);
    }
    if (s->drop == 2) {
        buf_append(&c->out, s->body != NULL ? s->body : "", blen / 2);
        fd_write(c, 1);
        return;
    }
    if (blen > 0) {
        buf_append(&c->out, s->body, blen);
    }
    if (s->end_streams) {
        fd_end_streams(c->fd);
    }
    if (s->stream) {
        c->streaming = 1;
        fd_write(c, 0);
        return;
    }
    fd_write(c, 1);
}

static void fd_on_delay(uv_timer_t *h)
{
    fd_answer(h->data);
}

/* "METHOD /path?q" with the version prefix stripped. */
static void fd_request_line(const buf *in, char *out, size_t n)
{
    size_t ll = strcspn(in->data, "\r\n");
    const char *sp = memchr(in->data, ' ', ll);
    size_t ml = sp != NULL ? (size_t)(sp - in->data) : ll;
    const char *path = sp != NULL ? sp + 1 : "";
    const char *end = memchr(path, ' ', ll - ml - (sp != NULL ? 1 : 0));
    size_t pl = end != NULL ? (size_t)(end - path) : strlen(path);
    if (pl > 2 && path[0] == '/' && path[1] == 'v' && path[2] >= '0' && path[2] <= '9') {
        const char *slash = memchr(path + 1, '/', pl - 1);
        if (slash != NULL) {
            pl -= (size_t)(slash - path);
            path = slash;
        }
    }
    snprintf(out, n, "%.*s %.*s", (int)ml, in->data, (int)pl, path);
}

static int fd_matches(const char *line, const char *method, const char *prefix)
{
    size_t ml = strlen(method);
    return strncmp(line, method, ml) == 0 && line[ml] == ' ' &&
           strncmp(line + ml + 1, prefix, strlen(prefix)) == 0;
}

/* Releases held answers whose `after` matches this request. */
static void fd_release(fake_dockerd *fd, const char *line)
{
    for (size_t i = 0; i < FD_MAX_CONNS; i++) {
        fd_conn *c = fd->conns[i];
        if (c == NULL || !c->waiting) {
            continue;
        }
        char m[16];
        const char *sp = strchr(c->step->after, ' ');
        size_t ml = sp != NULL ? (size_t)(sp - c->step->after) : 0;
        snprintf(m, sizeof m, "%.*s", (int)ml, c->step->after);
        if (sp != NULL && fd_matches(line, m, sp + 1)) {
            c->waiting = 0;
            fd_answer(c);
        }
    }
}

static int fd_complete(const buf *in)
{
    const char *end = in->data ? strstr(in->data, "\r\n\r\n") : NULL;
    if (end == NULL) {
        return 0;
    }
    size_t head = (size_t)(end - in->data) + 4;
    size_t body = 0;
    const char *cl = strcasestr(in->data, "\r\nContent-Length:");
    if (cl != NULL && cl < end) {
        body = strtoul(cl + 17, NULL, 10);
    }
    /* chunked uploads (image load) end with the zero chunk */
    const char *te = strcasestr(in->data, "\r\nTransfer-Encoding: chunked");
    if (te != NULL && te < end) {
        return in->len >= head + 5 && memcmp(in->data + in->len - 5, "0\r\n\r\n", 5) == 0;
    }
    return in->len >= head + body;
}

static void fd_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    fd_conn *c = st->data;
    fake_dockerd *fd = c->fd;
    if (n > 0) {
        buf_append(&c->in, b->base, (size_t)n);
    }
    free(b->base);
    if (n < 0) {
        fd_conn_close(c);
        return;
    }
    if (c->step != NULL || !fd_complete(&c->in)) {
        return;
    }
    char line[1024];
    fd_request_line(&c->in, line, sizeof line);
    buf_puts(&fd->log, line);
    buf_puts(&fd->log, "\n");
    fd->requests++;
    for (size_t i = 0; fd->script[i].method != NULL && i < FD_MAX_STEPS; i++) {
        if (!fd->used[i] && fd_matches(line, fd->script[i].method, fd->script[i].path)) {
            fd->used[i] = 1;
            c->step = &fd->script[i];
            break;
        }
    }
    if (c->step == NULL) {
        static const fd_step unexpected = {
            .method = "?", .path = "", .status = 500,
            .body = "{\"message\":\"unexpected request\"}",
        };
        fd->unexpected++;
        fprintf(stderr, "fake_dockerd: unexpected request: %s\n", line);
        c->step = &unexpected;
    }
    const fd_step *s = c->step;
    if (s->hold) {
        /* no answer */
    } else if (s->after != NULL) {
        c->waiting = 1;
    } else if (s->delay_ms > 0) {
        uv_timer_start(&c->timer, fd_on_delay, (uint64_t)s->delay_ms, 0);
    } else {
        fd_answer(c);
    }
    fd_release(fd, line);
    if (fd->on_request != NULL) {
        fd->on_request(fd->ud, line);
    }
}

static void fd_connection(uv_stream_t *l, int status)
{
    fake_dockerd *fd = l->data;
    if (status < 0) {
        return;
    }
    fd_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    uv_pipe_init(l->loop, &c->pipe, 0);
    uv_timer_init(l->loop, &c->timer);
    c->pipe.data = c;
    c->timer.data = c;
    c->handles = 2;
    size_t i = 0;
    while (i < FD_MAX_CONNS && fd->conns[i] != NULL) {
        i++;
    }
    if (i < FD_MAX_CONNS) {
        fd->conns[i] = c;
    }
    if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0 || i == FD_MAX_CONNS) {
        fd_conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, fd_alloc, fd_read);
}

/// Listens on `dir`/dockerd.sock. Returns 0 or a libuv error.
static int fake_dockerd_start(fake_dockerd *fd, uv_loop_t *loop, const char *dir,
                              const fd_step *steps)
{
    memset(fd, 0, sizeof *fd);
    signal(SIGPIPE, SIG_IGN);  /* a client that hung up: EPIPE, not death */
    fd->loop = loop;
    fd->script = steps;
    snprintf(fd->path, sizeof fd->path, "%s/dockerd.sock", dir);
    unlink(fd->path);
    uv_pipe_init(loop, &fd->listener, 0);
    fd->listener.data = fd;
    int rc = uv_pipe_bind(&fd->listener, fd->path);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&fd->listener, 16, fd_connection);
    }
    return rc;
}

/// Steps of the script no request used (0 when the script was played out).
static int fake_dockerd_unused(const fake_dockerd *fd)
{
    int n = 0;
    for (size_t i = 0; fd->script[i].method != NULL && i < FD_MAX_STEPS; i++) {
        n += !fd->used[i];
    }
    return n;
}

/// Stops listening and closes every open connection.
static void fake_dockerd_close(fake_dockerd *fd)
{
    if (fd->closed) {
        return;
    }
    fd->closed = 1;
    uv_close((uv_handle_t *)&fd->listener, NULL);
    for (size_t i = 0; i < FD_MAX_CONNS; i++) {
        if (fd->conns[i] != NULL) {
            fd_conn_close(fd->conns[i]);
        }
    }
}

/// After the loop has run the closes: frees the log, removes the socket.
static void fake_dockerd_free(fake_dockerd *fd)
{
    buf_free(&fd->log);
    unlink(fd->path);
}

#endif
