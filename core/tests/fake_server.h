/*
 * fake_server.h: a scripted HTTP server on a unix socket, on the test's own
 * libuv loop (header only, for test_*.c). Each connection gets one request
 * read (head plus Content-Length body), recorded, then the canned response
 * and a close. The test closes the server (fake_server_close) when done,
 * usually from its last on_done, so uv_run returns.
 */
#ifndef DRV_FAKE_SERVER_H
#define DRV_FAKE_SERVER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "buf.h"

typedef struct fake_server {
    uv_pipe_t listener;
    char path[108];
    buf response;              /* raw bytes sent to every request */
    char request_line[2048];   /* the last request's first line */
    buf request;               /* the last request's raw head */
    int requests;
    int closed;
} fake_server;

typedef struct fake_conn {
    uv_pipe_t pipe;
    fake_server *srv;
    buf in;
    int answered;
    uv_write_t wr;
} fake_conn;

static void fake_conn_closed(uv_handle_t *h)
{
    fake_conn *c = h->data;
    buf_free(&c->in);
    free(c);
}

static void fake_conn_close(fake_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
        uv_close((uv_handle_t *)&c->pipe, fake_conn_closed);
    }
}

static void fake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(hint);
    b->len = b->base ? hint : 0;
}

static void fake_written(uv_write_t *w, int status)
{
    (void)status;
    fake_conn_close(w->data);
}

/* Returns 1 once `in` holds a complete request (head and body). */
static int fake_complete(const buf *in, size_t *head_len)
{
    const char *end = in->data ? strstr(in->data, "\r\n\r\n") : NULL;
    if (end == NULL) {
        return 0;
    }
    *head_len = (size_t)(end - in->data) + 4;
    size_t body = 0;
    const char *cl = strcasestr(in->data, "\r\nContent-Length:");
    if (cl != NULL && cl < end) {
        body = strtoul(cl + 17, NULL, 10);
    }
    return in->len >= *head_len + body;
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fake_conn *c = s->data;
    size_t head_len = 0;
    if (n > 0) {
        buf_append(&c->in, b->base, (size_t)n);
    }
    free(b->base);
    if (n < 0) {
        fake_conn_close(c);
        return;
    }
    if (c->answered || !fake_complete(&c->in, &head_len)) {
        return;
    }
    c->answered = 1;
    fake_server *srv = c->srv;
    srv->requests++;
    buf_reset(&srv->request);
    buf_append(&srv->request, c->in.data, head_len);
    size_t ll = strcspn(c->in.data, "\r\n");
    if (ll >= sizeof srv->request_line) {
        ll = sizeof srv->request_line - 1;
    }
    memcpy(srv->request_line, c->in.data, ll);
    srv->request_line[ll] = '\0';
    uv_buf_t out = uv_buf_init(srv->response.data, (unsigned)srv->response.len);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &out, 1, fake_written) != 0) {
        fake_conn_close(c);
    }
}

static void fake_connection(uv_stream_t *l, int status)
{
    fake_server *srv = l->data;
    if (status < 0) {
        return;
    }
    fake_conn *c = calloc(1, sizeof *c);
    c->srv = srv;
    uv_pipe_init(l->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
        fake_conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, fake_alloc, fake_read);
}

/// Listens on `dir`/fake.sock; `response` is the raw reply (status line,
/// headers, body). Returns 0 or a libuv error.
static int fake_server_start(fake_server *srv, uv_loop_t *loop, const char *dir,
                             const char *response, size_t len)
{
    memset(srv, 0, sizeof *srv);
    snprintf(srv->path, sizeof srv->path, "%s/fake.sock", dir);
    unlink(srv->path);
    buf_append(&srv->response, response, len);
    uv_pipe_init(loop, &srv->listener, 0);
    srv->listener.data = srv;
    int rc = uv_pipe_bind(&srv->listener, srv->path);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&srv->listener, 8, fake_connection);
    }
    return rc;
}

/// Stops listening (open connections finish on their own).
static void fake_server_close(fake_server *srv)
{
    if (!srv->closed) {
        srv->closed = 1;
        uv_close((uv_handle_t *)&srv->listener, NULL);
    }
}

/// After the loop has run the close: frees the buffers, removes the socket.
static void fake_server_free(fake_server *srv)
{
    buf_free(&srv->response);
    buf_free(&srv->request);
    unlink(srv->path);
}

#endif
