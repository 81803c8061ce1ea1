/* test_httpd.c: the agent's local HTTP server (core/event/httpd.c) on a real
 * unix socket. The server runs on this thread's loop; each test's client
 * runs on a second thread (the project's libcurl client, or raw sockets for
 * malformed input, pipelining and slow readers) and wakes the loop when it
 * is done, which closes the server. Every test ends with uv_loop_close
 * returning 0: every handle was closed and freed. Peer credentials: a
 * forked child setuid()s to nobody and connects (needs root). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "httpd.h"
#include "test.h"

static char tmpdir[64];

/* --- the server side: handlers ------------------------------------------- */

typedef struct fixture fixture;
typedef void (*client_fn)(fixture *f);

struct fixture {
    uv_loop_t loop;
    httpd *srv;
    httpd_opts o;
    char path[108];
    uv_async_t done;
    uv_async_t stop;            /* closes the server, keeps the loop */
    pthread_t th;
    client_fn client;
    /* server side results (read by the client thread through atomics) */
    atomic_int closed;          /* a stream's on_close ran */
    atomic_int aborted;         /* ... with aborted=1 */
    atomic_int write_rc;        /* flood: the failing write's code */
    size_t peak_pending;
    size_t chunks;
    size_t chunk_len;
    size_t nchunks;
    uv_timer_t timer;           /* slow answers and timed streams */
    int timer_init;
    httpd_res *held;            /* a response answered later */
    /* client side results */
    int ok;
    char msg[DRV_ERR_MSG_MAX + 512];
};

static fixture *g_f;

static void json_str(buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20) {
            buf_appendf(b, "\\u%04x", (unsigned char)*s);
        } else {
            buf_append(b, s, 1);
        }
    }
    buf_puts(b, "\"");
}

static void h_echo(void *ud, const httpreq *req, httpd_res *res)
{
    (void)ud;
    buf b = BUF_INIT;
    buf_puts(&b, "{\"method\":");
    json_str(&b, req->method);
    buf_puts(&b, ",\"path\":");
    json_str(&b, req->path);
    buf_puts(&b, ",\"a\":");
    json_str(&b, httpreq_param(req, "a"));
    buf_puts(&b, ",\"b\":");
    json_str(&b, httpreq_param(req, "b"));
    buf_puts(&b, ",\"x\":");
    json_str(&b, httpreq_header(req, "X-Test"));
    buf_appendf(&b, ",\"len\":%zu,\"body\":", req->body.len);
    json_str(&b, buf_str(&req->body));
    buf_puts(&b, "}");
    httpd_res_json(res, 200, b.data, b.len, NULL);
    buf_free(&b);
}

/* answers 50 ms later (a handler that waits for something) */
static void slow_fire(uv_timer_t *t)
{
    fixture *f = t->data;
    httpd_res *res = f->held;
    f->held = NULL;
    httpd_res_json(res, 200, "{\"slow\":true}", 13, NULL);
}

static void slow_closed(void *ud, httpd_res *res, int aborted)
{
    fixture *f = ud;
    (void)res;
    if (aborted && f->held != NULL) {
        f->held = NULL;
        uv_timer_stop(&f->timer);
    }
}

static void h_slow(void *ud, const httpreq *req, httpd_res *res)
{
    fixture *f = ud;
    (void)req;
    f->held = res;
    httpd_res_on_close(res, slow_closed, f);
    uv_timer_start(&f->timer, slow_fire, 50, 0);
}

/* a stream of f->nchunks chunks of f->chunk_len bytes, with backpressure */
static void stream_more(void *ud, httpd_res *res)
{
    fixture *f = ud;
    char *data = malloc(f->chunk_len);
    memset(data, 'a' + (int)(f->chunks % 26), f->chunk_len);
    while (f->chunks < f->nchunks) {
        memset(data, 'a' + (int)(f->chunks % 26), f->chunk_len);
        int rc = httpd_res_write(res, data, f->chunk_len, NULL);
        f->chunks++;
        if (httpd_res_pending(res) > f->peak_pending) {
            f->peak_pending = httpd_res_pending(res);
        }
        if (rc < 0) {
            free(data);
            return;
        }
        if (rc == HTTPD_RES_FULL) {
            free(data);
            return;    /* on_drain calls again */
        }
    }
    free(data);
    httpd_res_end(res, NULL);
}

static void stream_closed(void *ud, httpd_res *res, int aborted)
{
    fixture *f = ud;
    (void)res;
    if (f->timer_init) {
        uv_timer_stop(&f->timer);
    }
    f->held = NULL;
    atomic_store(&f->aborted, aborted);
    atomic_store(&f->closed, 1);
}

static void h_stream(void *ud, const httpreq *req, httpd_res *res)
{
    fixture *f = ud;
    (void)req;
    httpd_res_on_close(res, stream_closed, f);
    httpd_res_on_drain(res, stream_more, f);
    httpd_res_start(res, 200, "text/plain", NULL);
    stream_more(f, res);
}

/* ignores HTTPD_RES_FULL: writes until the server refuses */
static void h_flood(void *ud, const httpreq *req, httpd_res *res)
{
    fixture *f = ud;
    char data[4096];
    drv_err err;
    (void)req;
    memset(data, 'x', sizeof data);
    httpd_res_on_close(res, stream_closed, f);
    httpd_res_start(res, 200, "text/plain", NULL);
    for (int i = 0; i < 100000; i++) {
        int rc = httpd_res_write(res, data, sizeof data, &err);
        if (httpd_res_pending(res) > f->peak_pending) {
            f->peak_pending = httpd_res_pending(res);
        }
        if (rc < 0) {
            atomic_store(&f->write_rc, rc);
            return;
        }
    }
}

/* an endless stream, one chunk every 5 ms */
static void tick_fire(uv_timer_t *t)
{
    fixture *f = t->data;
    if (f->held != NULL) {
        httpd_res_write(f->held, "tick\n", 5, NULL);
    }
}

static void h_ticks(void *ud, const httpreq *req, httpd_res *res)
{
    fixture *f = ud;
    (void)req;
    f->held = res;
    httpd_res_on_close(res, stream_closed, f);
    httpd_res_start(res, 200, "text/plain", NULL);
    uv_timer_start(&f->timer, tick_fire, 5, 5);
}

/* --- the fixture ----------------------------------------------------------- */

static void on_stop(uv_async_t *a)
{
    fixture *f = a->data;
    httpd_close(f->srv);
    f->srv = NULL;
}

static void on_client_done(uv_async_t *a)
{
    fixture *f = a->data;
    httpd_close(f->srv);
    f->srv = NULL;
    uv_close((uv_handle_t *)&f->done, NULL);
    uv_close((uv_handle_t *)&f->stop, NULL);
    if (f->timer_init) {
        uv_close((uv_handle_t *)&f->timer, NULL);
    }
}

static void *client_main(void *arg)
{
    fixture *f = arg;
    f->client(f);
    uv_async_send(&f->done);
    return NULL;
}

static void fixture_opts(fixture *f)
{
    static httpd_route routes[6];
    httpd_route r[] = {
        { "GET", "/v1/echo", 0, h_echo, NULL },
        { "POST", "/v1/echo", 0, h_echo, NULL },
        { "GET", "/v1/items/", 1, h_echo, NULL },
        { "GET", "/v1/slow", 0, h_slow, f },
        { "GET", "/v1/stream", 0, h_stream, f },
        { "GET", "/v1/flood", 0, h_flood, f },
    };
    memcpy(routes, r, sizeof r);
    memset(&f->o, 0, sizeof f->o);
    f->o.routes = routes;
    f->o.nroutes = 6;
    f->o.path = f->path;
    f->o.max_head = 4096;
    f->o.max_body = 65536;
    f->o.max_conns = 4;
    f->o.idle_timeout_ms = 5000;
    f->o.stream_high_water = 16384;
    f->o.stream_max_pending = 65536;
}

/* Runs `client` on a thread against a server with `f->o`; returns the
 * client's verdict (f->ok) and whether every handle was freed. */
static int fixture_run(fixture *f, client_fn client, const httpd_route *extra)
{
    drv_err err;
    f->client = client;
    uv_loop_init(&f->loop);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    f->timer_init = 1;
    httpd_route routes[8];
    if (extra != NULL) {
        memcpy(routes, f->o.routes, f->o.nroutes * sizeof *routes);
        routes[f->o.nroutes] = *extra;
        f->o.routes = routes;
        f->o.nroutes++;
    }
    if (httpd_new(&f->srv, &f->loop, &f->o, &err) != 0) {
        snprintf(f->msg, sizeof f->msg, "httpd_new: %s", err.msg);
        uv_close((uv_handle_t *)&f->timer, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
        return 0;
    }
    uv_async_init(&f->loop, &f->done, on_client_done);
    f->done.data = f;
    uv_async_init(&f->loop, &f->stop, on_stop);
    f->stop.data = f;
    pthread_create(&f->th, NULL, client_main, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    if (uv_loop_close(&f->loop) != 0) {
        snprintf(f->msg, sizeof f->msg, "a handle was left open");
        return 0;
    }
    return f->ok;
}

static fixture *fixture_new(void)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/api.sock", tmpdir);
    fixture_opts(f);
    g_f = f;
    return f;
}

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            snprintf(f->msg, sizeof f->msg, __VA_ARGS__);                     \
            return;                                                           \
        }                                                                     \
    } while (0)

/* --- the client side: raw sockets ------------------------------------------- */

static int raw_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static int raw_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One read with a 5 s guard: >0 bytes, 0 EOF, -1 error or timeout. */
static ssize_t raw_read(int fd, char *b, size_t n)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 5000) <= 0) {
        return -1;
    }
    ssize_t r = recv(fd, b, n, 0);
    return r < 0 ? -1 : r;
}

/* Reads until EOF (or error), at most `max` bytes kept. */
static size_t raw_read_all(int fd, buf *out)
{
    char b[4096];
    ssize_t n;
    while ((n = raw_read(fd, b, sizeof b)) > 0) {
        buf_append(out, b, (size_t)n);
    }
    return out->len;
}

/* Reads `count` complete responses (Content-Length bodies) into `out`;
 * returns how many came. */
static int raw_read_responses(int fd, buf *out, int count)
{
    int got = 0;
    size_t pos = 0;
    char b[4096];
    while (got < count) {
        const char *s = buf_str(out) + pos;
        const char *end = strstr(s, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strstr(s, "Content-Length: ");
            size_t len = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
            size_t total = (size_t)(end + 4 - s) + len;
            if (out->len - pos >= total) {
                pos += total;
                got++;
                continue;
            }
        }
        ssize_t n = raw_read(fd, b, sizeof b);
        if (n <= 0) {
            break;
        }
        buf_append(out, b, (size_t)n);
    }
    return got;
}

/* Sends `req` on a new connection and reads until the server closes. */
static void raw_exchange(const char *path, const char *req, size_t len, buf *out)
{
    int fd = raw_connect(path);
    if (fd < 0) {
        return;
    }
    raw_send(fd, req, len);
    raw_read_all(fd, out);
    close(fd);
}

/* --- the client side: the project's libcurl client ------------------------ */

typedef struct creq {
    int rc;
    long status;
    buf body;
    char allow[128];
} creq;

static void curl_done(void *ud, http_req *r, int rc, long status, const buf *body,
                      const drv_err *err)
{
    creq *c = ud;
    const char *allow = http_header(r, "Allow");
    (void)err;
    c->rc = rc;
    c->status = status;
    buf_append(&c->body, body->data ? body->data : "", body->len);
    snprintf(c->allow, sizeof c->allow, "%s", allow ? allow : "");
}

static void curl_do(const char *path, const char *method, const char *target,
                    const char *body, creq *out)
{
    uv_loop_t loop;
    http_client *c = NULL;
    char url[512];
    const char *headers[] = { "X-Test: hello \"there\"", NULL };
    memset(out, 0, sizeof *out);
    out->rc = -1;
    snprintf(url, sizeof url, "http://localhost%s", target);
    uv_loop_init(&loop);
    if (http_client_new(&c, &loop, NULL) != 0) {
        return;
    }
    http_opts o = { .method = method, .url = url, .unix_socket = path,
                    .content_type = body ? "application/json" : NULL,
                    .body = body, .body_len = body ? strlen(body) : 0, .headers = headers,
                    .timeout_ms = 5000, .on_done = curl_done, .ud = out };
    if (http_start(c, &o, NULL, NULL) == 0) {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* --- tests ------------------------------------------------------------------ */

static void c_json(fixture *f)
{
    creq r;
    curl_do(f->path, "GET", "/v1/echo?a=x%20y%2Fz&b=1+2&a=second&c", NULL, &r);
    CHECK(r.rc == 0 && r.status == 200, "GET: rc %d status %ld", r.rc, r.status);
    CHECK(strstr(buf_str(&r.body), "\"a\":\"x y/z\",\"b\":\"1 2\"") != NULL, "GET: %s",
          buf_str(&r.body));
    CHECK(strstr(buf_str(&r.body), "\"x\":\"hello \\u0022there\\u0022\"") != NULL,
          "header: %s", buf_str(&r.body));
    buf_free(&r.body);
    curl_do(f->path, "POST", "/v1/echo", "{\"job\":\"web\"}", &r);
    CHECK(r.rc == 0 && r.status == 200, "POST: rc %d status %ld", r.rc, r.status);
    CHECK(strstr(buf_str(&r.body), "\"method\":\"POST\"") != NULL, "POST: %s", buf_str(&r.body));
    CHECK(strstr(buf_str(&r.body), "\"len\":13,\"body\":\"{\\u0022job\\u0022") != NULL,
          "POST body: %s", buf_str(&r.body));
    buf_free(&r.body);
    /* over max_body: the client still reads the 413 while it sends */
    char *big = malloc(300001);
    memset(big, ' ', 300000);
    big[300000] = '\0';
    curl_do(f->path, "POST", "/v1/echo", big, &r);
    free(big);
    CHECK(r.rc == 0 && r.status == 413, "big POST: rc %d status %ld", r.rc, r.status);
    buf_free(&r.body);
    curl_do(f->path, "GET", "/v1/items/abc?a=1", NULL, &r);
    CHECK(r.status == 200 && strstr(buf_str(&r.body), "\"path\":\"/v1/items/abc\""),
          "prefix: %ld %s", r.status, buf_str(&r.body));
    buf_free(&r.body);
    curl_do(f->path, "GET", "/v1/itemsx", NULL, &r);
    CHECK(r.status == 404, "not a whole segment: %ld", r.status);
    buf_free(&r.body);
    curl_do(f->path, "GET", "/nope", NULL, &r);
    CHECK(r.status == 404 && strstr(buf_str(&r.body), "\"error\":\"not found\""),
          "404: %ld %s", r.status, buf_str(&r.body));
    buf_free(&r.body);
    curl_do(f->path, "DELETE", "/v1/echo", NULL, &r);
    CHECK(r.status == 405, "405: %ld", r.status);
    CHECK(strcmp(r.allow, "GET, POST") == 0, "Allow: \"%s\"", r.allow);
    buf_free(&r.body);
    f->ok = 1;
}

TEST(json_query_routes_curl)
{
    fixture *f = fixture_new();
    int ok = fixture_run(f, c_json, NULL);
    if (!ok) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

static void c_keepalive(fixture *f)
{
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    buf out = BUF_INIT;
    for (int i = 0; i < 5; i++) {
        char req[128];
        int n = snprintf(req, sizeof req, "GET /v1/echo?a=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        raw_send(fd, req, (size_t)n);
        buf_reset(&out);
        int got = raw_read_responses(fd, &out, 1);
        char want[32];
        snprintf(want, sizeof want, "\"a\":\"%d\"", i);
        if (got != 1 || strstr(buf_str(&out), want) == NULL) {
            close(fd);
            CHECK(0, "request %d on one connection: %s", i, buf_str(&out));
        }
    }
    CHECK(httpd_conns(f->srv) >= 0, "conns");
    close(fd);
    buf_free(&out);
    f->ok = 1;
}

TEST(keep_alive_five_requests_one_connection)
{
    fixture *f = fixture_new();
    if (!fixture_run(f, c_keepalive, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

static void c_pipeline(fixture *f)
{
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    const char *reqs =
        "GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /v1/echo?a=two HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /v1/echo?a=three HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_send(fd, reqs, strlen(reqs));
    buf out = BUF_INIT;
    raw_read_all(fd, &out);    /* the last one closes */
    close(fd);
    const char *s = buf_str(&out);
    const char *p1 = strstr(s, "{\"slow\":true}");
    const char *p2 = strstr(s, "\"a\":\"two\"");
    const char *p3 = strstr(s, "\"a\":\"three\"");
    const char *p4 = strstr(s, "HTTP/1.1 404");
    int ok = p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4 &&
             strstr(s, "\"body\":\"hello\"") && strstr(p4, "Connection: close");
    buf_free(&out);
    CHECK(ok, "pipelined answers out of order or missing: %s", s);
    f->ok = 1;
}

TEST(pipelined_requests_answered_in_order)
{
    fixture *f = fixture_new();
    if (!fixture_run(f, c_pipeline, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

/* each: request bytes, the status expected */
static const struct {
    const char *name;
    const char *req;
    const char *status;
} bad[] = {
    { "garbage", "HELLO THERE\r\n\r\n", "HTTP/1.1 400" },
    { "absolute target", "GET http://x/v1/echo HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "dot-dot segment", "GET /v1/items/../echo HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "dot segment at the end", "GET /v1/items/. HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "bad escape", "GET /v1/echo?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "NUL escape", "GET /v1/echo?a=x%00y HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "space in target", "GET /v1/ec ho HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400" },
    { "header without colon", "GET /v1/echo HTTP/1.1\r\nHost\r\n\r\n", "HTTP/1.1 400" },
    { "control byte in a value", "GET /v1/echo HTTP/1.1\r\nX: a\001b\r\n\r\n", "HTTP/1.1 400" },
    { "CR inside a value", "GET /v1/echo HTTP/1.1\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400" },
    { "bad length", "POST /v1/echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400" },
    { "two lengths",
      "POST /v1/echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 400" },
    { "upgrade", "GET /v1/echo HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
      "HTTP/1.1 400" },
    { "body over limit", "POST /v1/echo HTTP/1.1\r\nContent-Length: 65537\r\n\r\n",
      "HTTP/1.1 413" },
    { "chunked body over limit", NULL, "HTTP/1.1 413" },
    { "head over limit", NULL, "HTTP/1.1 431" },
    { "too many headers", NULL, "HTTP/1.1 431" },
    { "body at the limit", NULL, "HTTP/1.1 200" },
};

static void bad_request(size_t i, buf *req)
{
    buf_reset(req);
    if (bad[i].req != NULL) {
        buf_puts(req, bad[i].req);
    } else if (strcmp(bad[i].name, "chunked body over limit") == 0) {
        buf_puts(req, "POST /v1/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int k = 0; k < 17; k++) {
            buf_puts(req, "1000\r\n");
            for (int j = 0; j < 4096; j++) {
                buf_puts(req, "z");
            }
            buf_puts(req, "\r\n");
        }
        buf_puts(req, "0\r\n\r\n");
    } else if (strcmp(bad[i].name, "head over limit") == 0) {
        buf_puts(req, "GET /v1/echo HTTP/1.1\r\nX-Big: ");
        for (int j = 0; j < 4096; j++) {
            buf_puts(req, "y");
        }
        buf_puts(req, "\r\n\r\n");
    } else if (strcmp(bad[i].name, "too many headers") == 0) {
        buf_puts(req, "GET /v1/echo HTTP/1.1\r\n");
        for (int j = 0; j < HTTPREQ_MAX_HEADERS + 1; j++) {
            buf_appendf(req, "X-%d: 1\r\n", j);
        }
        buf_puts(req, "\r\n");
    } else {
        buf_puts(req, "POST /v1/echo HTTP/1.1\r\nConnection: close\r\nContent-Length: 65536\r\n\r\n");
        for (int j = 0; j < 65536; j++) {
            buf_puts(req, "q");
        }
    }
}

static void c_bad(fixture *f)
{
    buf req = BUF_INIT, out = BUF_INIT;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad_request(i, &req);
        buf_reset(&out);
        raw_exchange(f->path, req.data, req.len, &out);
        if (strncmp(buf_str(&out), bad[i].status, strlen(bad[i].status)) != 0) {
            snprintf(f->msg, sizeof f->msg, "%s: want %s, got \"%.80s\"", bad[i].name,
                     bad[i].status, buf_str(&out));
            buf_free(&req);
            buf_free(&out);
            return;
        }
    }
    buf_free(&req);
    buf_free(&out);
    f->ok = 1;
}

TEST(malformed_and_over_limit_requests_400_413_431)
{
    fixture *f = fixture_new();
    if (!fixture_run(f, c_bad, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

static void c_conns(fixture *f)
{
    int fds[4];
    buf out = BUF_INIT;
    for (int i = 0; i < 4; i++) {
        fds[i] = raw_connect(f->path);
        CHECK(fds[i] >= 0, "connect %d", i);
        /* one answered request each: the server has accepted it */
        const char *req = "GET /v1/echo HTTP/1.1\r\n\r\n";
        raw_send(fds[i], req, strlen(req));
        buf_reset(&out);
        CHECK(raw_read_responses(fds[i], &out, 1) == 1, "connection %d not served", i);
    }
    int fd5 = raw_connect(f->path);
    CHECK(fd5 >= 0, "connect 5");
    buf_reset(&out);
    raw_read_all(fd5, &out);
    close(fd5);
    CHECK(strncmp(buf_str(&out), "HTTP/1.1 503", 12) == 0, "5th: \"%.60s\"", buf_str(&out));
    /* one leaves: a new one is served again */
    close(fds[0]);
    int served = 0;
    for (int tries = 0; tries < 200 && !served; tries++) {
        int fd = raw_connect(f->path);
        const char *req = "GET /v1/echo HTTP/1.1\r\nConnection: close\r\n\r\n";
        raw_send(fd, req, strlen(req));
        buf_reset(&out);
        raw_read_all(fd, &out);
        close(fd);
        served = strncmp(buf_str(&out), "HTTP/1.1 200", 12) == 0;
        if (!served) {
            usleep(10000);
        }
    }
    for (int i = 1; i < 4; i++) {
        close(fds[i]);
    }
    buf_free(&out);
    CHECK(served, "no connection served after one closed");
    f->ok = 1;
}

TEST(connections_over_max_conns_get_503)
{
    fixture *f = fixture_new();
    if (!fixture_run(f, c_conns, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

static void c_idle(fixture *f)
{
    char b[64];
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    ssize_t n = raw_read(fd, b, sizeof b);    /* nothing sent: closed */
    close(fd);
    CHECK(n == 0, "idle connection not closed: %zd", n);
    fd = raw_connect(f->path);
    raw_send(fd, "GET /v1/echo HTTP/1.1\r\nHos", 26);    /* a slow request */
    n = raw_read(fd, b, sizeof b);
    close(fd);
    CHECK(n == 0, "partial request not closed: %zd", n);
    f->ok = 1;
}

TEST(idle_and_slow_connections_closed)
{
    fixture *f = fixture_new();
    f->o.idle_timeout_ms = 100;
    if (!fixture_run(f, c_idle, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

/* Decodes a chunked body in s[0..n) into the count of its bytes; -1 if
 * malformed or unterminated; checks every chunk's letters. */
static long dechunk(const char *s, size_t n, size_t *chunks)
{
    const char *p = strstr(s, "\r\n\r\n");
    if (p == NULL) {
        return -1;
    }
    p += 4;
    long total = 0;
    *chunks = 0;
    for (;;) {
        char *e;
        unsigned long len = strtoul(p, &e, 16);
        if (e == p || strncmp(e, "\r\n", 2) != 0) {
            return -1;
        }
        p = e + 2;
        if (len == 0) {
            return strncmp(p, "\r\n", 2) == 0 ? total : -1;
        }
        if ((size_t)(p - s) + len + 2 > n) {
            return -1;
        }
        for (unsigned long i = 0; i < len; i++) {
            if (p[i] < 'a' || p[i] > 'z') {
                return -1;
            }
        }
        p += len + 2;
        total += (long)len;
        (*chunks)++;
    }
}

static void c_slow_reader(fixture *f)
{
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const char *req = "GET /v1/stream HTTP/1.1\r\nConnection: close\r\n\r\n";
    raw_send(fd, req, strlen(req));
    buf out = BUF_INIT;
    char b[1024];
    ssize_t n;
    while ((n = raw_read(fd, b, sizeof b)) > 0) {
        buf_append(&out, b, (size_t)n);
        usleep(50);    /* slower than the server writes */
    }
    close(fd);
    size_t chunks = 0;
    long total = dechunk(out.data, out.len, &chunks);
    buf_free(&out);
    CHECK(total == (long)(f->nchunks * f->chunk_len), "stream: %ld bytes", total);
    CHECK(chunks == f->nchunks, "stream: %zu chunks", chunks);
    f->ok = 1;
}

TEST(stream_to_slow_reader_bounded_by_backpressure)
{
    fixture *f = fixture_new();
    f->nchunks = 1000;
    f->chunk_len = 2048;
    if (!fixture_run(f, c_slow_reader, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    printf("     stream of %zu x %zu bytes: peak queued %zu bytes (high water %zu)\n",
           f->nchunks, f->chunk_len, f->peak_pending, f->o.stream_high_water);
    ASSERT(f->peak_pending <= f->o.stream_high_water + f->chunk_len + 16);
    ASSERT_INT_EQ(1, atomic_load(&f->closed));
    ASSERT_INT_EQ(0, atomic_load(&f->aborted));
    free(f);
}

/* HTTP/1.0 has no chunks: the stream's body ends with the connection */
static void c_stream_http10(fixture *f)
{
    buf out = BUF_INIT;
    const char *req = "GET /v1/stream HTTP/1.0\r\n\r\n";
    raw_exchange(f->path, req, strlen(req), &out);
    const char *s = buf_str(&out);
    const char *body = strstr(s, "\r\n\r\n");
    int ok = strncmp(s, "HTTP/1.1 200", 12) == 0 && body != NULL &&
             strstr(s, "Transfer-Encoding") == NULL && strcmp(body + 4, "aaaaabbbbbccccc") == 0;
    CHECK(ok, "HTTP/1.0 stream: \"%s\"", s);
    buf_free(&out);
    f->ok = 1;
}

TEST(stream_to_http10_client_ends_with_close)
{
    fixture *f = fixture_new();
    f->nchunks = 3;
    f->chunk_len = 5;
    if (!fixture_run(f, c_stream_http10, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    ASSERT_INT_EQ(0, atomic_load(&f->aborted));
    ASSERT_INT_EQ(1, atomic_load(&f->closed));
    free(f);
}

static void c_never_reads(fixture *f)
{
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    const char *req = "GET /v1/flood HTTP/1.1\r\n\r\n";
    raw_send(fd, req, strlen(req));
    for (int i = 0; i < 500 && !atomic_load(&f->closed); i++) {
        usleep(10000);    /* wait, never reading */
    }
    close(fd);
    CHECK(atomic_load(&f->closed), "flood never stopped");
    f->ok = 1;
}

TEST(client_that_never_reads_is_cut_off)
{
    fixture *f = fixture_new();
    if (!fixture_run(f, c_never_reads, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    printf("     never-reading client: write refused with %d at %zu bytes queued (max %zu)\n",
           atomic_load(&f->write_rc), f->peak_pending, f->o.stream_max_pending);
    ASSERT_INT_EQ(DRV_EIO, atomic_load(&f->write_rc));
    ASSERT(f->peak_pending <= f->o.stream_max_pending);
    ASSERT_INT_EQ(1, atomic_load(&f->aborted));
    free(f);
}

static void c_disconnect(fixture *f)
{
    int fd = raw_connect(f->path);
    CHECK(fd >= 0, "connect");
    const char *req = "GET /v1/ticks HTTP/1.1\r\n\r\n";
    raw_send(fd, req, strlen(req));
    buf out = BUF_INIT;
    char b[256];
    ssize_t n;
    while (strstr(buf_str(&out), "tick") == NULL && (n = raw_read(fd, b, sizeof b)) > 0) {
        buf_append(&out, b, (size_t)n);
    }
    int got = strstr(buf_str(&out), "Transfer-Encoding: chunked") != NULL &&
              strstr(buf_str(&out), "5\r\ntick\n\r\n") != NULL;
    buf_free(&out);
    close(fd);    /* mid-stream */
    for (int i = 0; i < 500 && !atomic_load(&f->closed); i++) {
        usleep(10000);
    }
    CHECK(got, "no chunk before the disconnect");
    CHECK(atomic_load(&f->closed), "handler not told of the disconnect");
    f->ok = 1;
}

TEST(client_leaving_mid_stream_tells_the_handler)
{
    fixture *f = fixture_new();
    httpd_route ticks = { "GET", "/v1/ticks", 0, h_ticks, f };
    if (!fixture_run(f, c_disconnect, &ticks)) {
        TEST_FAIL_("%s", f->msg);
    }
    ASSERT_INT_EQ(1, atomic_load(&f->aborted));
    free(f);
}

/* The server closes while a stream and an idle keep-alive connection are
 * open: both clients see the end, the handler is told. */
static void c_close_server(fixture *f)
{
    int a = raw_connect(f->path), b = raw_connect(f->path);
    CHECK(a >= 0 && b >= 0, "connect");
    raw_send(a, "GET /v1/ticks HTTP/1.1\r\n\r\n", 26);
    char x[64];
    CHECK(raw_read(a, x, sizeof x) > 0, "stream start");
    raw_send(b, "GET /v1/echo HTTP/1.1\r\n\r\n", 25);
    buf out = BUF_INIT;
    CHECK(raw_read_responses(b, &out, 1) == 1, "keep-alive answer");
    buf_free(&out);
    uv_async_send(&f->stop);    /* closes the server now */
    buf rest = BUF_INIT;
    raw_read_all(a, &rest);
    raw_read_all(b, &rest);
    close(a);
    close(b);
    buf_free(&rest);
    f->ok = 1;
}

TEST(closing_the_server_closes_every_connection)
{
    fixture *f = fixture_new();
    httpd_route ticks = { "GET", "/v1/ticks", 0, h_ticks, f };
    if (!fixture_run(f, c_close_server, &ticks)) {
        TEST_FAIL_("%s", f->msg);
    }
    ASSERT_INT_EQ(1, atomic_load(&f->closed));
    ASSERT_INT_EQ(1, atomic_load(&f->aborted));
    free(f);
}

/* --- the socket file --------------------------------------------------------- */

static int leftovers(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        n += strncmp(e->d_name, ".httpd-", 7) == 0;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

static void c_mode(fixture *f)
{
    struct stat st;
    CHECK(lstat(f->path, &st) == 0, "no socket");
    CHECK(S_ISSOCK(st.st_mode), "not a socket");
    CHECK((st.st_mode & 07777) == 0600, "mode %o", (unsigned)(st.st_mode & 07777));
    CHECK(st.st_uid == geteuid(), "owner %u", (unsigned)st.st_uid);
    CHECK(leftovers() == 0, "temporary directory left beside the socket");
    /* a second server on the same live path is refused */
    httpd *s2 = NULL;
    drv_err err;
    uv_loop_t l2;
    uv_loop_init(&l2);
    int rc = httpd_new(&s2, &l2, &f->o, &err);
    uv_loop_close(&l2);
    CHECK(rc == DRV_EINVALID && strstr(err.msg, "already answers"), "second server: %d %s", rc,
          err.msg);
    CHECK(leftovers() == 0, "temporary directory left after a refusal");
    f->ok = 1;
}

TEST(socket_mode_0600_owned_and_live_socket_kept)
{
    fixture *f = fixture_new();
    mode_t old = umask(0);    /* even a permissive umask gives 0600 */
    int ok = fixture_run(f, c_mode, NULL);
    umask(old);
    if (!ok) {
        TEST_FAIL_("%s", f->msg);
    }
    struct stat st;
    ASSERT(lstat(f->path, &st) != 0);    /* removed on close */
    free(f);
}

static void c_noop(fixture *f)
{
    creq r;
    curl_do(f->path, "GET", "/v1/echo", NULL, &r);
    buf_free(&r.body);
    CHECK(r.status == 200, "served: %ld", r.status);
    f->ok = 1;
}

TEST(stale_socket_replaced_anything_else_refused)
{
    fixture *f = fixture_new();
    /* a stale socket: bound, nobody listening */
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_INT_EQ(0, bind(fd, (struct sockaddr *)&sa, sizeof sa));
    close(fd);
    if (!fixture_run(f, c_noop, NULL)) {
        TEST_FAIL_("stale: %s", f->msg);
    }
    free(f);

    /* a regular file, a directory, a symlink to a stale socket: refused, kept */
    char target[96];
    snprintf(target, sizeof target, "%s/other.sock", tmpdir);
    for (int kind = 0; kind < 3; kind++) {
        f = fixture_new();
        if (kind == 0) {
            FILE *fp = fopen(f->path, "w");
            fputs("precious", fp);
            fclose(fp);
        } else if (kind == 1) {
            mkdir(f->path, 0700);
        } else {
            snprintf(sa.sun_path, sizeof sa.sun_path, "%s", target);
            fd = socket(AF_UNIX, SOCK_STREAM, 0);
            bind(fd, (struct sockaddr *)&sa, sizeof sa);
            close(fd);
            ASSERT_INT_EQ(0, symlink(target, f->path));
        }
        uv_loop_t l;
        httpd *s = NULL;
        drv_err err;
        uv_loop_init(&l);
        int rc = httpd_new(&s, &l, &f->o, &err);
        ASSERT_INT_EQ(0, uv_loop_close(&l));
        ASSERT_INT_EQ(DRV_EINVALID, rc);
        ASSERT_CONTAINS(err.msg, "not a socket, refusing to replace it");
        ASSERT_CONTAINS(err.msg, f->path);
        struct stat st;
        ASSERT_INT_EQ(0, lstat(f->path, &st));
        ASSERT(kind == 0 ? S_ISREG(st.st_mode) : kind == 1 ? S_ISDIR(st.st_mode)
                                                             : S_ISLNK(st.st_mode));
        ASSERT_INT_EQ(0, leftovers());
        if (kind == 1) {
            rmdir(f->path);
        } else {
            unlink(f->path);
        }
        free(f);
    }
    unlink(target);
}

/* --- peer credentials ----------------------------------------------------------- */

/* The child, as nobody: exit 10 when connect is refused (EACCES), 11 when
 * the server answered 403, 12 when it closed without an answer, 20 when it
 * was served (the failure). */
static int as_nobody(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(30);
        }
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            _exit(errno == EACCES ? 10 : 31);
        }
        const char *req = "GET /v1/echo HTTP/1.1\r\n\r\n";
        (void)!send(fd, req, strlen(req), MSG_NOSIGNAL);    /* it may have closed already */
        char b[512];
        ssize_t n = 0, r;
        while (n < (ssize_t)sizeof b - 1 && (r = read(fd, b + n, sizeof b - 1 - (size_t)n)) > 0) {
            n += r;
        }
        b[n > 0 ? n : 0] = '\0';
        if (strncmp(b, "HTTP/1.1 403", 12) == 0) {
            _exit(11);
        }
        _exit(n <= 0 ? 12 : 20);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void c_peer(fixture *f)
{
    /* the socket's mode keeps nobody out already */
    chmod(tmpdir, 0755);
    int rc = as_nobody(f->path);
    CHECK(rc == 10, "nobody through mode 0600: exit %d", rc);
    /* with the mode opened (as a careless operator might), SO_PEERCRED */
    chmod(f->path, 0666);
    rc = as_nobody(f->path);
    CHECK(rc == 11, "nobody through SO_PEERCRED: exit %d", rc);
    chmod(tmpdir, 0700);
    /* root is served */
    creq r;
    curl_do(f->path, "GET", "/v1/echo", NULL, &r);
    buf_free(&r.body);
    CHECK(r.status == 200, "root: %ld", r.status);
    f->ok = 1;
}

TEST(other_users_refused_403)
{
    if (geteuid() != 0) {
        TEST_FAIL_("needs root (setuid to nobody)");
    }
    fixture *f = fixture_new();
    if (!fixture_run(f, c_peer, NULL)) {
        TEST_FAIL_("%s", f->msg);
    }
    free(f);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-httpd.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    /* libcurl's global init, once, before any thread */
    uv_loop_t loop;
    http_client *c = NULL;
    uv_loop_init(&loop);
    http_client_new(&c, &loop, NULL);
    http_client_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);

    RUN(json_query_routes_curl);
    RUN(keep_alive_five_requests_one_connection);
    RUN(pipelined_requests_answered_in_order);
    RUN(malformed_and_over_limit_requests_400_413_431);
    RUN(connections_over_max_conns_get_503);
    RUN(idle_and_slow_connections_closed);
    RUN(stream_to_slow_reader_bounded_by_backpressure);
    RUN(stream_to_http10_client_ends_with_close);
    RUN(client_that_never_reads_is_cut_off);
    RUN(client_leaving_mid_stream_tells_the_handler);
    RUN(closing_the_server_closes_every_connection);
    RUN(socket_mode_0600_owned_and_live_socket_kept);
    RUN(stale_socket_replaced_anything_else_refused);
    RUN(other_users_refused_403);
    rmdir(tmpdir);
    return test_summary();
}
