/* test_http.c: the libcurl-multi / libuv transport: bodies, cancellation,
 * closing the client from inside a callback, and requests keeping their own
 * copy of the caller's URL (a use-after-free ASan once found). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "fake_server.h"
#include "http.h"
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);   /* the fake server writes to clients that left */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-http.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return test_summary();
}
