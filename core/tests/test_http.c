/* test_http.c: the libcurl-multi / libuv transport: bodies, cancellation,
 * closing the client from inside a callback, and requests keeping their own
 * copy of the caller's URL (a use-after-free ASan once found). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "test.h"

typedef struct result {
    int calls;
    int rc;
    long status;
    char body[256];
    char msg[DRV_ERR_MSG_MAX];
    http_client *close_me;     /* closed from inside on_done when set */
} result;

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
    if (res->close_me != NULL) {
        http_client_close(res->close_me);
    }
}

static char tmpdir[64];

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

int main(void)
{
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
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return test_summary();
}
