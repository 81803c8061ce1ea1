/* test_http.c: the libcurl-multi / libuv transport: bodies, cancellation,
 * closing the client from inside a callback, and requests keeping their own
 * copy of the caller's URL (a use-after-free ASan once found); a thousand
 * endless streams at once, pause/resume, cancel of an idle stream, a server
 * that never answers, TCP keepalive. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "fake_server.h"
#include "http.h"
#include "loop.h"
#include "test.h"

typedef struct result {
    int calls;
    int rc;
    long status;
    char body[256];
    char msg[DRV_ERR_MSG_MAX];
    http_client *close_me;     /* closed from inside on_done when set */
    fake_server srv;           /* closed from inside on_done when has_srv */
    int has_srv;
    size_t body_len;
    size_t streamed;
} result;

static char tmpdir[64];

static void on_done(void *ud, http_req *r, int rc, long status, const buf *body,
                    const drv_err *err)
{
    result *res = ud;
    (void)r;
    res->calls++;
    res->rc = rc;
    res->status = status;
    snprintf(res->body, sizeof res->body, "%s", buf_str(body));
    snprintf(res->msg, sizeof res->msg, "%s", err ? err->msg : "");
    res->body_len = body->len;
    if (res->close_me != NULL) {
        http_client_close(res->close_me);
    }
    if (res->has_srv) {
        fake_server_close(&res->srv);
    }
}

static int on_stream(void *ud, const char *data, size_t len)
{
    result *res = ud;
    (void)data;
    res->streamed += len;
    return 0;
}

/* Sends one GET to a fake server answering `head` then `body_len` spaces. */
static void fetch(const char *head, size_t body_len, size_t max_body, int stream, result *res)
{
    uv_loop_t loop;
    http_client *c = NULL;
    fake_server *srv = &res->srv;
    buf resp = BUF_INIT;
    memset(res, 0, sizeof *res);
    buf_puts(&resp, head);
    char *pad = malloc(body_len + 1);
    memset(pad, ' ', body_len);
    buf_append(&resp, pad, body_len);
    free(pad);
    uv_loop_init(&loop);
    if (fake_server_start(srv, &loop, tmpdir, resp.data, resp.len) != 0) {
        buf_free(&resp);
        return;
    }
    buf_free(&resp);
    http_client_new(&c, &loop, NULL);
    res->close_me = c;
    res->has_srv = 1;
    http_opts o = { .url = "http://docker/x", .unix_socket = srv->path, .max_body = max_body,
                    .on_data = stream ? on_stream : NULL, .on_done = on_done, .ud = res };
    if (http_start(c, &o, NULL, NULL) != 0) {
        http_client_close(c);
        fake_server_close(srv);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    fake_server_free(srv);
}

static const char *head_for(long status, size_t len)
{
    static char h[256];
    snprintf(h, sizeof h, "HTTP/1.1 %ld X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             status, len);
    return h;
}

static const char *make_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

TEST(file_url_body_is_collected)
{
    uv_loop_t loop;
    http_client *c = NULL;
    result res;
    char url[256];
    memset(&res, 0, sizeof res);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    snprintf(url, sizeof url, "file://%s", make_file("body.txt", "hello body"));
    http_opts o = { .url = url, .on_done = on_done, .ud = &res };
    ASSERT_INT_EQ(0, http_start(c, &o, NULL, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("hello body", res.body);
}

TEST(cancel_reports_the_url_the_caller_no_longer_holds)
{
    uv_loop_t loop;
    http_client *c = NULL;
    http_req *r = NULL;
    result res;
    char *url = malloc(128);
    memset(&res, 0, sizeof res);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    /* cancelled before the loop runs: it never reaches the socket */
    snprintf(url, 128, "http://docker/v1.41/images/load");
    http_opts o = { .method = "GET", .url = url, .unix_socket = "/nonexistent/docker.sock",
                    .on_done = on_done, .ud = &res };
    ASSERT_INT_EQ(0, http_start(c, &o, &r, NULL));
    memset(url, 'X', 127);      /* the caller's buffer is gone */
    url[127] = '\0';
    free(url);
    http_cancel(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(DRV_ECANCELED, res.rc);
    ASSERT_CONTAINS(res.msg, "http://docker/v1.41/images/load");
}

TEST(unreachable_socket_names_the_path)
{
    uv_loop_t loop;
    http_client *c = NULL;
    result res;
    memset(&res, 0, sizeof res);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    http_opts o = { .url = "http://docker/_ping", .unix_socket = "/nonexistent/docker.sock",
                    .on_done = on_done, .ud = &res };
    ASSERT_INT_EQ(0, http_start(c, &o, NULL, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    ASSERT_INT_EQ(DRV_EHTTP, res.rc);
    ASSERT_CONTAINS(res.msg, "/nonexistent/docker.sock");
    ASSERT_CONTAINS(res.msg, "No such file or directory");
}

TEST(client_closes_from_inside_a_callback)
{
    uv_loop_t loop;
    http_client *c = NULL;
    result first, second;
    char url[256];
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    snprintf(url, sizeof url, "file://%s", make_file("a.txt", "a"));
    first.close_me = c;     /* its on_done closes the client */
    http_opts o1 = { .url = url, .on_done = on_done, .ud = &first };
    http_opts o2 = { .url = "http://docker/_ping", .unix_socket = "/nonexistent/docker.sock",
                     .on_done = on_done, .ud = &second };
    ASSERT_INT_EQ(0, http_start(c, &o1, NULL, NULL));
    ASSERT_INT_EQ(0, http_start(c, &o2, NULL, NULL));
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));   /* every handle was closed and freed */
    ASSERT_INT_EQ(1, first.calls);
    ASSERT_INT_EQ(1, second.calls);
}

TEST(start_after_close_is_refused)
{
    uv_loop_t loop;
    http_client *c = NULL;
    result res;
    drv_err err;
    memset(&res, 0, sizeof res);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    http_client_close(c);
    http_opts o = { .url = "file:///etc/hostname", .on_done = on_done, .ud = &res };
    ASSERT_INT_EQ(DRV_ECANCELED, http_start(c, &o, NULL, &err));
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    ASSERT_INT_EQ(0, res.calls);
}

TEST(body_within_the_cap_is_collected)
{
    result res;
    fetch(head_for(200, 4096), 4096, 4096, 0, &res);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_INT_EQ(200, res.status);
    ASSERT_INT_EQ(4096, res.body_len);
}

TEST(body_over_the_cap_ends_the_transfer)
{
    result res;
    fetch(head_for(200, 4097), 4097, 4096, 0, &res);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(DRV_EINVALID, res.rc);
    ASSERT_CONTAINS(res.msg, "http://docker/x: response body larger than 4096 bytes");
    /* an error body of a streamed call is capped the same way */
    fetch(head_for(500, 100000), 100000, 4096, 1, &res);
    ASSERT_INT_EQ(DRV_EINVALID, res.rc);
    ASSERT_INT_EQ(0, res.streamed);
}

TEST(default_cap_is_16_mib)
{
    result res;
    fetch(head_for(200, HTTP_MAX_BODY + 1), HTTP_MAX_BODY + 1, 0, 0, &res);
    ASSERT_INT_EQ(DRV_EINVALID, res.rc);
    ASSERT_CONTAINS(res.msg, "larger than 16777216 bytes");
}

TEST(streamed_body_is_not_capped_nor_collected)
{
    result res;
    fetch(head_for(200, 100000), 100000, 4096, 1, &res);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_INT_EQ(100000, res.streamed);
    ASSERT_INT_EQ(0, res.body_len);
}

TEST(header_block_over_64_kib_ends_the_transfer)
{
    buf head = BUF_INIT;
    result res;
    buf_puts(&head, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100; i++) {
        buf_appendf(&head, "X-Pad-%d: %01000d\r\n", i, 0);
    }
    buf_puts(&head, "Content-Length: 2\r\nConnection: close\r\n\r\n");
    fetch(buf_str(&head), 2, 0, 0, &res);
    buf_free(&head);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(DRV_EINVALID, res.rc);
    ASSERT_CONTAINS(res.msg, "response headers larger than 65536 bytes");
}

/* --- many endless streams ------------------------------------------------ */

/* A server for streams: on a unix socket (or tcp on 127.0.0.1), accepts any
 * number of connections; STREAM answers each request with a head and then a
 * body without end (16 bytes per connection every tick, with uv_try_write:
 * a client that stops reading just makes the writes fail, the server keeps
 * nothing queued); SILENT reads the request and never answers; HANGUP closes
 * the connection on the first bytes it reads (a TLS server refusing a client,
 * or a TLS port spoken to in plain HTTP). */
enum { SRV_STREAM, SRV_SILENT, SRV_HANGUP };

typedef struct stream_srv stream_srv;

typedef struct stream_conn {
    union { uv_pipe_t pipe; uv_tcp_t tcp; uv_stream_t s; } h;
    stream_srv *srv;
    size_t seen;               /* request bytes read */
    int streaming;
    struct stream_conn *prev, *next;
} stream_conn;

struct stream_srv {
    union { uv_pipe_t pipe; uv_tcp_t tcp; uv_stream_t s; } l;
    uv_timer_t tick;
    char path[108];
    int port;                  /* tcp: the bound port */
    int mode;
    int requests;              /* complete request heads received */
    int open;                  /* connections open */
    int eof;                   /* connections the client closed */
    size_t written;            /* body bytes the kernel accepted */
    size_t chunk;              /* body bytes per connection per tick */
    stream_conn *conns;
};

static void ss_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ss_conn_close(stream_conn *c)
{
    stream_srv *srv = c->srv;
    if (uv_is_closing((uv_handle_t *)&c->h.s)) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    srv->open--;
    uv_close((uv_handle_t *)&c->h.s, ss_conn_closed);
}

static void ss_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char scratch[4096];
    (void)h;
    (void)hint;
    b->base = scratch;
    b->len = sizeof scratch;
}

static void ss_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    stream_conn *c = s->data;
    if (n < 0) {
        c->srv->eof++;
        ss_conn_close(c);
        return;
    }
    if (n > 0 && c->srv->mode == SRV_HANGUP) {
        c->srv->requests++;
        ss_conn_close(c);
        return;
    }
    /* the request ends with an empty line; GETs have no body */
    if (n > 0 && c->seen == 0 && memmem(b->base, (size_t)n, "\r\n\r\n", 4) != NULL) {
        c->seen = (size_t)n;
        c->srv->requests++;
        if (c->srv->mode == SRV_STREAM) {
            static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                       "Connection: close\r\n\r\n";
            uv_buf_t out = uv_buf_init((char *)(uintptr_t)head, sizeof head - 1);
            if (uv_try_write(s, &out, 1) == (int)(sizeof head - 1)) {
                c->streaming = 1;
            }
        }
    }
}

static void ss_connection(uv_stream_t *l, int status)
{
    stream_srv *srv = l->data;
    if (status < 0) {
        return;
    }
    stream_conn *c = calloc(1, sizeof *c);
    c->srv = srv;
    if (srv->port != 0) {
        uv_tcp_init(l->loop, &c->h.tcp);
    } else {
        uv_pipe_init(l->loop, &c->h.pipe, 0);
    }
    c->h.s.data = c;
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->open++;
    if (uv_accept(l, &c->h.s) != 0) {
        ss_conn_close(c);
        return;
    }
    uv_read_start(&c->h.s, ss_alloc, ss_read);
}

static void ss_tick(uv_timer_t *t)
{
    stream_srv *srv = t->data;
    static char pattern[65536];
    if (pattern[0] == '\0') {
        memset(pattern, 'x', sizeof pattern);
    }
    uv_buf_t out = uv_buf_init(pattern, (unsigned)srv->chunk);
    for (stream_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c->streaming) {
            int n = uv_try_write(&c->h.s, &out, 1);
            if (n > 0) {
                srv->written += (size_t)n;
            }
        }
    }
}

/* tcp: listens on 127.0.0.1 (an ephemeral port), else on a unix socket. */
static int ss_start(stream_srv *srv, uv_loop_t *loop, int mode, int tcp)
{
    int rc;
    memset(srv, 0, sizeof *srv);
    srv->mode = mode;
    srv->chunk = 16;
    if (tcp) {
        struct sockaddr_in a;
        struct sockaddr_storage got;
        int len = sizeof got;
        uv_ip4_addr("127.0.0.1", 0, &a);
        uv_tcp_init(loop, &srv->l.tcp);
        rc = uv_tcp_bind(&srv->l.tcp, (const struct sockaddr *)&a, 0);
        if (rc == 0) {
            rc = uv_tcp_getsockname(&srv->l.tcp, (struct sockaddr *)&got, &len);
        }
        if (rc == 0) {
            srv->port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        }
    } else {
        snprintf(srv->path, sizeof srv->path, "%s/stream.sock", tmpdir);
        unlink(srv->path);
        uv_pipe_init(loop, &srv->l.pipe, 0);
        rc = uv_pipe_bind(&srv->l.pipe, srv->path);
    }
    srv->l.s.data = srv;
    if (rc == 0) {
        rc = uv_listen(&srv->l.s, 4096, ss_connection);
    }
    uv_timer_init(loop, &srv->tick);
    srv->tick.data = srv;
    uv_timer_start(&srv->tick, ss_tick, 5, 5);
    return rc;
}

static void ss_close(stream_srv *srv)
{
    while (srv->conns != NULL) {
        ss_conn_close(srv->conns);
    }
    if (!uv_is_closing((uv_handle_t *)&srv->tick)) {
        uv_close((uv_handle_t *)&srv->tick, NULL);
        uv_close((uv_handle_t *)&srv->l.s, NULL);
        if (srv->path[0] != '\0') {
            unlink(srv->path);
        }
    }
}

/* One stream of a test: what arrived, how it ended. */
typedef struct stream {
    http_req *req;
    size_t bytes;
    int done;
    int rc;
    long status;
    char msg[DRV_ERR_MSG_MAX];
    int pause_after;           /* on_data returns HTTP_DATA_PAUSE after this many calls */
    int data_calls;
    int keepalive;             /* on_head: SO_KEEPALIVE seen on the socket */
    int keepidle;
} stream;

static int stream_data(void *ud, const char *data, size_t len)
{
    stream *s = ud;
    (void)data;
    s->data_calls++;
    if (s->pause_after > 0 && s->data_calls > s->pause_after) {
        s->pause_after = 0;
        return HTTP_DATA_PAUSE;    /* not consumed: comes again on resume */
    }
    s->bytes += len;
    return 0;
}

static void stream_done(void *ud, http_req *r, int rc, long status, const buf *body,
                        const drv_err *err)
{
    stream *s = ud;
    (void)r;
    (void)body;
    s->done++;
    s->rc = rc;
    s->status = status;
    snprintf(s->msg, sizeof s->msg, "%s", err ? err->msg : "");
    s->req = NULL;
}

static int stream_start(http_client *c, stream_srv *srv, stream *s, long timeout_ms)
{
    char url[64];
    http_opts o = { .url = "http://docker/v1.41/containers/x/logs?follow=1",
                    .unix_socket = srv->path, .timeout_ms = timeout_ms,
                    .on_data = stream_data, .on_done = stream_done, .ud = s };
    if (srv->port != 0) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/events", srv->port);
        o.url = url;
        o.unix_socket = NULL;
    }
    return http_start(c, &o, &s->req, NULL);
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Runs the loop until `cond` holds (checked every 5 ms), at most `limit_ms`
 * (a safety net against a hang, not a timing assertion). Returns 1 if it held. */
typedef int (*cond_fn)(void *arg);
typedef struct waiter { cond_fn cond; void *arg; int held; } waiter;

static void wait_check(uv_timer_t *t)
{
    waiter *w = t->data;
    if (w->cond(w->arg)) {
        w->held = 1;
        uv_stop(t->loop);
    }
}

static void wait_limit(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static int run_until(uv_loop_t *loop, cond_fn cond, void *arg, uint64_t limit_ms)
{
    uv_timer_t check, limit;
    waiter w = { cond, arg, 0 };
    if (cond(arg)) {
        return 1;
    }
    uv_timer_init(loop, &check);
    uv_timer_init(loop, &limit);
    check.data = &w;
    uv_timer_start(&check, wait_check, 5, 5);
    uv_timer_start(&limit, wait_limit, limit_ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&limit, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return w.held;
}

/* Ends a test loop: client and server closed, every handle freed. */
static int finish_loop(uv_loop_t *loop, http_client *c, stream_srv *srv)
{
    http_client_close(c);
    ss_close(srv);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

#define NSTREAMS 1000

typedef struct many { stream *s; size_t n; size_t min_bytes; size_t skip; } many;

static int all_have(void *arg)
{
    many *m = arg;
    for (size_t i = 0; i < m->n; i++) {
        if (i != m->skip && m->s[i].bytes < m->min_bytes) {
            return 0;
        }
    }
    return 1;
}

TEST(a_thousand_endless_streams_in_bounded_memory)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv srv;
    stream *s = calloc(NSTREAMS, sizeof *s);
    /* two descriptors a stream (client and server side) */
    ASSERT(drv_raise_nofile(DRV_NOFILE_TARGET) >= 2 * NSTREAMS + 64);
    long before = peak_rss_kib();
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&srv, &loop, SRV_STREAM, 0));
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    for (size_t i = 0; i < NSTREAMS; i++) {
        ASSERT_INT_EQ(0, stream_start(c, &srv, &s[i], 0));
    }
    many m = { s, NSTREAMS, 64, (size_t)-1 };
    int flowing = run_until(&loop, all_have, &m, 60000);
    ASSERT_INT_EQ(NSTREAMS, srv.requests);
    ASSERT_INT_EQ(NSTREAMS, srv.open);
    ASSERT_INT_EQ(NSTREAMS, http_client_active(c));
    /* cancel one stream in the middle: it alone ends, the rest go on */
    http_cancel(s[NSTREAMS / 2].req);
    m.skip = NSTREAMS / 2;
    m.min_bytes = 256;
    int still = run_until(&loop, all_have, &m, 60000);
    long after = peak_rss_kib();
    printf("     %d concurrent endless streams: peak RSS %ld KiB before, %ld KiB after\n",
           NSTREAMS, before, after);
    int cancelled = 0;
    for (size_t i = 0; i < NSTREAMS; i++) {
        cancelled += s[i].done;
    }
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &srv));
    ASSERT(flowing);
    ASSERT(still);
    ASSERT_INT_EQ(1, cancelled);
    ASSERT_INT_EQ(1, s[NSTREAMS / 2].done);
    ASSERT_INT_EQ(DRV_ECANCELED, s[NSTREAMS / 2].rc);
    for (size_t i = 0; i < NSTREAMS; i++) {
        ASSERT_INT_EQ(1, s[i].done);
        ASSERT_INT_EQ(DRV_ECANCELED, s[i].rc);
    }
    ASSERT(after < 200 * 1024);
    free(s);
}

typedef struct watch {
    const stream *s;
    size_t bytes;
    const stream_srv *srv;
    size_t written;
    int stable;                /* checks in a row without a byte written */
} watch;

static int got_more(void *arg)
{
    watch *w = arg;
    return w->s->bytes > w->bytes;
}

/* The server kept writing until the paused client's socket buffers were
 * full: its writes stopped being accepted. */
static int server_blocked(void *arg)
{
    watch *w = arg;
    if (w->srv->written == w->written && w->written > 0) {
        w->stable++;
    } else {
        w->stable = 0;
    }
    w->written = w->srv->written;
    return w->stable >= 20;    /* 20 checks, about 20 ticks */
}

TEST(pause_stops_delivery_and_resume_restarts_it)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv srv;
    stream s;
    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&srv, &loop, SRV_STREAM, 0));
    srv.chunk = 16384;
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    ASSERT_INT_EQ(0, stream_start(c, &srv, &s, 0));
    watch w = { &s, 0, &srv, 0, 0 };
    int flowing = run_until(&loop, got_more, &w, 10000);
    http_pause(s.req);
    int paused = http_paused(s.req);
    size_t at_pause = s.bytes;
    /* backpressure: the server writes until the kernel refuses, and not a
     * byte reaches on_data meanwhile */
    int blocked = run_until(&loop, server_blocked, &w, 30000);
    size_t while_paused = s.bytes;
    size_t server_sent = srv.written;
    http_resume(s.req);
    w.bytes = s.bytes;
    int resumed = run_until(&loop, got_more, &w, 10000);
    /* the data callback pauses by itself (HTTP_DATA_PAUSE) */
    s.pause_after = s.data_calls;
    w.bytes = s.bytes;
    w.stable = 0;
    run_until(&loop, server_blocked, &w, 30000);
    int self_paused = http_paused(s.req);
    size_t at_self_pause = s.bytes;
    http_resume(s.req);
    w.bytes = s.bytes;
    int resumed2 = run_until(&loop, got_more, &w, 10000);
    http_cancel(s.req);
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &srv));
    ASSERT(flowing);
    ASSERT(paused);
    ASSERT(blocked);
    ASSERT(server_sent > at_pause + 4096);   /* sent, but held in the kernel */
    ASSERT_INT_EQ(at_pause, while_paused);
    ASSERT(resumed);
    ASSERT(self_paused);
    ASSERT(at_self_pause > while_paused);
    ASSERT(resumed2);
    ASSERT_INT_EQ(1, s.done);
    ASSERT_INT_EQ(DRV_ECANCELED, s.rc);
}

static int srv_has_requests(void *arg)
{
    const stream_srv *srv = arg;
    return srv->requests > 0;
}

static int srv_saw_eof(void *arg)
{
    const stream_srv *srv = arg;
    return srv->eof > 0;
}

TEST(cancel_of_an_idle_stream_frees_it)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv srv;
    stream s;
    memset(&s, 0, sizeof s);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&srv, &loop, SRV_SILENT, 0));
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    ASSERT_INT_EQ(0, stream_start(c, &srv, &s, 0));
    int asked = run_until(&loop, srv_has_requests, &srv, 10000);
    ASSERT_INT_EQ(1, http_client_active(c));
    http_cancel(s.req);
    http_cancel(s.req);            /* twice: still one on_done */
    int closed = run_until(&loop, srv_saw_eof, &srv, 10000);
    int active = http_client_active(c);
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &srv));
    ASSERT(asked);
    ASSERT(closed);                /* the connection was closed, not pooled */
    ASSERT_INT_EQ(0, active);
    ASSERT_INT_EQ(1, s.done);
    ASSERT_INT_EQ(DRV_ECANCELED, s.rc);
    ASSERT_INT_EQ(0, s.bytes);
}

static int stream_ended(void *arg)
{
    const stream *s = arg;
    return s->done > 0;
}

TEST(a_server_that_never_answers_times_out_or_is_cancelled)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv srv;
    stream t, u;
    memset(&t, 0, sizeof t);
    memset(&u, 0, sizeof u);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&srv, &loop, SRV_SILENT, 0));
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    ASSERT_INT_EQ(0, stream_start(c, &srv, &t, 200));   /* per-request timeout */
    ASSERT_INT_EQ(0, stream_start(c, &srv, &u, 0));     /* none: waits forever */
    int timed_out = run_until(&loop, stream_ended, &t, 30000);
    int u_done = u.done;
    http_cancel(u.req);
    int cancelled = run_until(&loop, stream_ended, &u, 10000);
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &srv));
    ASSERT(timed_out);
    ASSERT_INT_EQ(DRV_EHTTP, t.rc);
    ASSERT_CONTAINS(t.msg, "timed out");
    ASSERT_INT_EQ(0, u_done);
    ASSERT(cancelled);
    ASSERT_INT_EQ(DRV_ECANCELED, u.rc);
    ASSERT_INT_EQ(2, srv.requests);
}

static void keepalive_head(void *ud, http_req *r, long status)
{
    stream *s = ud;
    int fd = http_socket(r);
    int on = 0, idle = 0;
    socklen_t len = sizeof on;
    (void)status;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, &len) == 0) {
        s->keepalive = on;
        len = sizeof idle;
        getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, &len);
        s->keepidle = idle;
    }
}

static void ka_start(http_client *c, stream_srv *srv, stream *s)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/events", srv->port);
    http_opts o = { .url = url, .unix_socket = srv->path[0] ? srv->path : NULL,
                    .on_head = keepalive_head, .on_data = stream_data,
                    .on_done = stream_done, .ud = s };
    http_start(c, &o, &s->req, NULL);
}

TEST(tcp_streams_have_keepalive_unix_sockets_do_not_need_it)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv tcp, unx;
    stream a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&tcp, &loop, SRV_STREAM, 1));
    ASSERT_INT_EQ(0, ss_start(&unx, &loop, SRV_STREAM, 0));
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    ka_start(c, &tcp, &a);
    ka_start(c, &unx, &b);
    watch wa = { &a, 0, NULL, 0, 0 }, wb = { &b, 0, NULL, 0, 0 };
    int fa = run_until(&loop, got_more, &wa, 10000);
    int fb = run_until(&loop, got_more, &wb, 10000);
    http_cancel(a.req);
    http_cancel(b.req);
    ss_close(&unx);
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &tcp));
    ASSERT(fa);
    ASSERT(fb);
    ASSERT_INT_EQ(1, a.keepalive);
    ASSERT_INT_EQ(HTTP_KEEPALIVE_IDLE_S, a.keepidle);
    ASSERT_INT_EQ(0, b.keepalive);
}

static int both_done(void *arg)
{
    stream *s = arg;
    return s[0].done && s[1].done;
}

TEST(a_peer_that_hangs_up_is_named_tls_or_no_answer)
{
    uv_loop_t loop;
    http_client *c = NULL;
    stream_srv srv;
    stream s[2];
    char plain[64], tls[64];
    memset(s, 0, sizeof s);
    uv_loop_init(&loop);
    ASSERT_INT_EQ(0, ss_start(&srv, &loop, SRV_HANGUP, 1));
    ASSERT_INT_EQ(0, http_client_new(&c, &loop, NULL));
    snprintf(plain, sizeof plain, "http://127.0.0.1:%d/_ping", srv.port);
    snprintf(tls, sizeof tls, "https://127.0.0.1:%d/_ping", srv.port);
    http_opts a = { .url = plain, .on_done = stream_done, .ud = &s[0] };
    http_opts b = { .url = tls, .on_done = stream_done, .ud = &s[1] };
    ASSERT_INT_EQ(0, http_start(c, &a, &s[0].req, NULL));
    ASSERT_INT_EQ(0, http_start(c, &b, &s[1].req, NULL));
    int held = run_until(&loop, both_done, s, 10000);
    ASSERT_INT_EQ(0, finish_loop(&loop, c, &srv));
    ASSERT(held);
    ASSERT_INT_EQ(DRV_EHTTP, s[0].rc);
    ASSERT(strstr(s[0].msg, HTTP_NO_ANSWER) != NULL);
    ASSERT(strncmp(s[0].msg, HTTP_TLS_PREFIX, strlen(HTTP_TLS_PREFIX)) != 0);
    ASSERT_INT_EQ(DRV_EHTTP, s[1].rc);
    ASSERT(strncmp(s[1].msg, HTTP_TLS_PREFIX, strlen(HTTP_TLS_PREFIX)) == 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);   /* the fake server writes to clients that left */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-http.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(a_thousand_endless_streams_in_bounded_memory);   /* first: peak RSS */
    RUN(file_url_body_is_collected);
    RUN(cancel_reports_the_url_the_caller_no_longer_holds);
    RUN(unreachable_socket_names_the_path);
    RUN(client_closes_from_inside_a_callback);
    RUN(start_after_close_is_refused);
    RUN(body_within_the_cap_is_collected);
    RUN(body_over_the_cap_ends_the_transfer);
    RUN(default_cap_is_16_mib);
    RUN(streamed_body_is_not_capped_nor_collected);
    RUN(header_block_over_64_kib_ends_the_transfer);
    RUN(pause_stops_delivery_and_resume_restarts_it);
    RUN(cancel_of_an_idle_stream_frees_it);
    RUN(a_server_that_never_answers_times_out_or_is_cancelled);
    RUN(tcp_streams_have_keepalive_unix_sockets_do_not_need_it);
    RUN(a_peer_that_hangs_up_is_named_tls_or_no_answer);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return test_summary();
}
