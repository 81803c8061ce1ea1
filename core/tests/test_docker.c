/* test_docker.c: the Engine API layer: every path parameter and query value
 * is percent-escaped (checked on the request line a fake daemon on a unix
 * socket receives), API versions are "N.N" only, endpoints are validated. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "docker.h"
#include "fake_server.h"
#include "test.h"

static char tmpdir[64];

/* every byte class that must not pass through: & ? # / space % and UTF-8 */
#define NASTY "a&b?c#d/e f%g\xc3\xa9=h+i;j"
#define NASTY_ESCAPED "a%26b%3Fc%23d%2Fe%20f%25g%C3%A9%3Dh%2Bi%3Bj"

TEST(escape_keeps_only_unreserved)
{
    buf b = BUF_INIT;
    docker_escape(&b, "AZaz09-._~");
    ASSERT_STR_EQ("AZaz09-._~", buf_str(&b));
    buf_reset(&b);
    docker_escape(&b, NASTY);
    ASSERT_STR_EQ(NASTY_ESCAPED, buf_str(&b));
    buf_reset(&b);
    docker_escape(&b, "\x01\x7f\xff:@!$'()*,[]");
    ASSERT_STR_EQ("%01%7F%FF%3A%40%21%24%27%28%29%2A%2C%5B%5D", buf_str(&b));
    buf_free(&b);
}

TEST(path_escapes_segments_and_query_values)
{
    buf b = BUF_INIT;
    ASSERT_INT_EQ(0, docker_path(&b, NULL, "/containers/{}/kill", NASTY, "signal", "SIG&X=1",
                                 DOCKER_END));
    ASSERT_STR_EQ("/containers/" NASTY_ESCAPED "/kill?signal=SIG%26X%3D1", buf_str(&b));
    buf_reset(&b);
    ASSERT_INT_EQ(0, docker_path(&b, NULL, "/containers/create", "name", "web&platform=x",
                                 DOCKER_END));
    ASSERT_STR_EQ("/containers/create?name=web%26platform%3Dx", buf_str(&b));
    buf_reset(&b);
    /* a NULL value leaves its pair out; no query at all gives no "?" */
    ASSERT_INT_EQ(0, docker_path(&b, NULL, "/containers/{}", "c1", "force", "1", "v", (const char *)NULL,
                                 "x", "2", DOCKER_END));
    ASSERT_STR_EQ("/containers/c1?force=1&x=2", buf_str(&b));
    buf_reset(&b);
    ASSERT_INT_EQ(0, docker_path(&b, NULL, "/version", DOCKER_END));
    ASSERT_STR_EQ("/version", buf_str(&b));
    buf_free(&b);
}

TEST(path_refuses_empty_and_dot_segments)
{
    const char *bad[] = { "", ".", ".." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf b = BUF_INIT;
        drv_err err;
        drv_err_clear(&err);
        ASSERT_INT_EQ(DRV_EINVALID, docker_path(&b, &err, "/containers/{}/start", bad[i],
                                                DOCKER_END));
        ASSERT_CONTAINS(err.msg, "invalid path parameter");
        buf_free(&b);
    }
    buf b = BUF_INIT;
    ASSERT_INT_EQ(DRV_EINVALID, docker_path(&b, NULL, "/containers/{}/start",
                                            (const char *)NULL, DOCKER_END));
    buf_reset(&b);
    /* dots inside a longer segment are fine (unreserved) */
    ASSERT_INT_EQ(0, docker_path(&b, NULL, "/networks/{}", "...", DOCKER_END));
    ASSERT_STR_EQ("/networks/...", buf_str(&b));
    buf_free(&b);
}

TEST(api_version_must_be_digits_dot_digits)
{
    ASSERT(docker_api_version_valid("1.41"));
    ASSERT(docker_api_version_valid("1.24"));
    ASSERT(docker_api_version_valid("10.0"));
    const char *bad[] = { "", "1", "1.", ".1", "1.30/../../x?", "1.41 ", " 1.41", "1.4.1",
                          "v1.41", "1.41\r\nX: y", "12345.1", "1.12345", "1.x", "-1.2" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (docker_api_version_valid(bad[i])) {
            TEST_FAIL_("accepted API version \"%s\"", bad[i]);
        }
    }
    ASSERT(!docker_api_version_valid(NULL));
}

TEST(set_api_version_refuses_and_keeps_the_old_one)
{
    docker *d = NULL;
    drv_err err;
    docker_opts o = { .endpoint = "unix:///run/x.sock" };
    ASSERT_INT_EQ(0, docker_new(&d, NULL, &o, NULL));
    ASSERT_INT_EQ(0, docker_set_api_version(d, "1.41", NULL));
    ASSERT_STR_EQ("1.41", docker_api_version(d));
    ASSERT_INT_EQ(DRV_EINVALID, docker_set_api_version(d, "1.30/../../x?", &err));
    ASSERT_CONTAINS(err.msg, "\"1.30/../../x?\"");
    ASSERT_STR_EQ("1.41", docker_api_version(d));
    docker_free(d);
}

TEST(endpoints_are_validated)
{
    const char *good[] = { "unix:///var/run/docker.sock", "unix:///x", "tcp://127.0.0.1:2375",
                           "tcp://docker-host.example:1", "tcp://h:65535", "tcp://h:2376/",
                           "tcp://[::1]:2375", "tcp://my_host:80" };
    const char *bad[] = { "tcp://", "tcp://:2375", "tcp://host", "tcp://host:", "tcp://host:0",
                          "tcp://host:65536", "tcp://host:99999999", "tcp://host:12a",
                          "tcp://user@host:1", "tcp://host:1/x", "tcp://host:1?x",
                          "tcp://[]:1", "tcp://[::1]", "tcp://host:-1", "unix://", "unix://rel",
                          "unix:///", "unix:///a\nb", "http://127.0.0.1:2375", "https://h:1",
                          "ssh://h", "fd://", "", "/var/run/docker.sock" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        drv_err err;
        if (docker_endpoint_check(good[i], NULL, &err) != 0) {
            TEST_FAIL_("refused endpoint \"%s\": %s", good[i], err.msg);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (docker_endpoint_check(bad[i], NULL, NULL) != DRV_ECONFIG) {
            TEST_FAIL_("accepted endpoint \"%s\"", bad[i]);
        }
    }
    drv_err err;
    docker *d = NULL;
    docker_opts o = { .endpoint = "tcp://", .field = "agent config: docker.endpoint" };
    ASSERT_INT_EQ(DRV_ECONFIG, docker_new(&d, NULL, &o, &err));
    ASSERT(d == NULL);
    ASSERT_CONTAINS(err.msg, "agent config: docker.endpoint: ");
    ASSERT_CONTAINS(err.msg, "\"tcp://\"");
    /* control bytes are shown escaped, not printed raw */
    ASSERT_INT_EQ(DRV_ECONFIG, docker_endpoint_check("unix:///a\nb", NULL, &err));
    ASSERT_CONTAINS(err.msg, "\"unix:///a\\x0ab\"");
}

/* --- against a fake daemon --------------------------------------------------- */

typedef struct result {
    int calls;
    int rc;
    long status;
    size_t streamed;           /* bytes through on_data */
    char head[4096];           /* the request's head, as received */
    char msg[DRV_ERR_MSG_MAX];
    http_client *http;
    fake_server srv;
    int has_srv;
} result;

static void on_done(void *ud, http_req *r, int rc, long status, const buf *body,
                    const drv_err *err)
{
    result *res = ud;
    (void)r;
    (void)body;
    res->calls++;
    res->rc = rc;
    res->status = status;
    snprintf(res->msg, sizeof res->msg, "%s", err ? err->msg : "");
    http_client_close(res->http);
    fake_server_close(&res->srv);
}

static int on_data(void *ud, const char *data, size_t len)
{
    result *res = ud;
    (void)data;
    res->streamed += len;
    return 0;
}

static void on_ping_done(void *ud, int rc, const drv_err *err)
{
    result *res = ud;
    res->calls++;
    res->rc = rc;
    snprintf(res->msg, sizeof res->msg, "%s", err ? err->msg : "");
    http_client_close(res->http);
    fake_server_close(&res->srv);
}

#define OK_RESPONSE "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
                    "Content-Length: 2\r\nConnection: close\r\n\r\n{}"

typedef int (*call_fn)(docker *d, const docker_cb *cb);

static int call_create(docker *d, const docker_cb *cb)
{
    return docker_container_create(d, "web&platform=x", "{\"Image\":\"x\"}", cb, NULL, NULL);
}

static int call_kill(docker *d, const docker_cb *cb)
{
    return docker_container_kill(d, NASTY, "SIGTERM&x=1", cb, NULL, NULL);
}

static int call_remove(docker *d, const docker_cb *cb)
{
    return docker_container_remove(d, "../../images/x", 1, 1, cb, NULL, NULL);
}

static int call_network(docker *d, const docker_cb *cb)
{
    return docker_network_inspect(d, "bridge?x#y", cb, NULL, NULL);
}

static int call_image(docker *d, const docker_cb *cb)
{
    return docker_image_inspect(d, "reg:5000/a b/img:1.0?x=1#f@sha256:ab", cb, NULL, NULL);
}

/* Runs one call against the fake daemon; returns the request line. */
static void run_call(call_fn fn, const char *response, result *res, char *line, size_t n)
{
    uv_loop_t loop;
    fake_server *srv = &res->srv;
    docker *d = NULL;
    memset(res, 0, sizeof *res);
    uv_loop_init(&loop);
    if (fake_server_start(srv, &loop, tmpdir, response, strlen(response)) != 0) {
        snprintf(line, n, "fake server failed");
        return;
    }
    char ep[160];
    snprintf(ep, sizeof ep, "unix://%s", srv->path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&res->http, &loop, NULL);
    res->has_srv = 1;
    docker_new(&d, res->http, &o, NULL);
    docker_set_api_version(d, "1.41", NULL);
    docker_cb cb = { .on_done = on_done, .on_data = on_data, .ud = res };
    if (fn(d, &cb) != 0) {
        http_client_close(res->http);
        fake_server_close(srv);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    snprintf(line, n, "%s", srv->request_line);
    snprintf(res->head, sizeof res->head, "%s", buf_str(&srv->request));
    docker_free(d);
    fake_server_free(srv);
}

TEST(create_escapes_the_name_on_the_wire)
{
    result res;
    char line[2048];
    run_call(call_create, OK_RESPONSE, &res, line, sizeof line);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("POST /v1.41/containers/create?name=web%26platform%3Dx HTTP/1.1", line);
}

TEST(kill_escapes_the_id_and_the_signal)
{
    result res;
    char line[2048];
    run_call(call_kill, OK_RESPONSE, &res, line, sizeof line);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("POST /v1.41/containers/" NASTY_ESCAPED "/kill?signal=SIGTERM%26x%3D1 HTTP/1.1",
                  line);
}

TEST(remove_cannot_climb_out_of_containers)
{
    result res;
    char line[2048];
    run_call(call_remove, OK_RESPONSE, &res, line, sizeof line);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("DELETE /v1.41/containers/..%2F..%2Fimages%2Fx?force=1&v=1 HTTP/1.1", line);
}

TEST(network_inspect_escapes_the_name)
{
    result res;
    char line[2048];
    run_call(call_network, OK_RESPONSE, &res, line, sizeof line);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("GET /v1.41/networks/bridge%3Fx%23y HTTP/1.1", line);
}

TEST(image_inspect_keeps_slashes_and_escapes_each_component)
{
    result res;
    char line[2048];
    run_call(call_image, OK_RESPONSE, &res, line, sizeof line);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("GET /v1.41/images/reg:5000/a%20b/img:1.0%3Fx%3D1%23f@sha256:ab/json HTTP/1.1",
                  line);
}

TEST(image_inspect_refuses_dot_dot_and_empty_components)
{
    drv_err err;
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_inspect(NULL, "a/../containers/x", NULL, NULL, &err));
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_inspect(NULL, "a//b", NULL, NULL, &err));
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_inspect(NULL, "", NULL, NULL, &err));
}

/* --- the calls added for the agent: one request line each --------------------- */

#define STREAM_RESPONSE "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                        "Content-Length: 5\r\nConnection: close\r\n\r\nhello"

static void expect_line(call_fn fn, const char *response, const char *want, result *res)
{
    char line[2048];
    run_call(fn, response, res, line, sizeof line);
    ASSERT_INT_EQ(1, res->calls);
    ASSERT_INT_EQ(0, res->rc);
    ASSERT_STR_EQ(want, line);
}

static int call_logs_follow(docker *d, const docker_cb *cb)
{
    return docker_container_logs(d, NASTY, 1, 1, 0, 1700000000LL, 100, cb, NULL, NULL);
}

static int call_logs_all(docker *d, const docker_cb *cb)
{
    return docker_container_logs(d, "c1", 0, 0, 1, 0, -1, cb, NULL, NULL);
}

TEST(logs_escapes_the_id_and_streams)
{
    result res;
    expect_line(call_logs_follow, STREAM_RESPONSE,
                "GET /v1.41/containers/" NASTY_ESCAPED "/logs?follow=1&stdout=1&stderr=0"
                "&since=1700000000&tail=100 HTTP/1.1", &res);
    ASSERT_INT_EQ(5, (long)res.streamed);
    expect_line(call_logs_all, STREAM_RESPONSE,
                "GET /v1.41/containers/c1/logs?follow=0&stdout=0&stderr=1&tail=all HTTP/1.1", &res);
    drv_err err;
    ASSERT_INT_EQ(DRV_EINVALID, docker_container_logs(NULL, "c1", 0, 1, 1, -5, 0, NULL, NULL, &err));
    ASSERT_INT_EQ(DRV_EINVALID, docker_container_logs(NULL, "..", 0, 1, 1, 0, 0, NULL, NULL, &err));
}

static int call_stats_stream(docker *d, const docker_cb *cb)
{
    return docker_container_stats(d, "a/b", 1, cb, NULL, NULL);
}

static int call_stats_once(docker *d, const docker_cb *cb)
{
    return docker_container_stats(d, "c1", 0, cb, NULL, NULL);
}

TEST(stats_streamed_or_one_shot)
{
    result res;
    expect_line(call_stats_stream, STREAM_RESPONSE,
                "GET /v1.41/containers/a%2Fb/stats?stream=1 HTTP/1.1", &res);
    ASSERT_INT_EQ(5, (long)res.streamed);
    expect_line(call_stats_once, OK_RESPONSE, "GET /v1.41/containers/c1/stats?stream=0 HTTP/1.1",
                &res);
}

TEST(filters_json_groups_keys_and_escapes_values)
{
    buf b = BUF_INIT;
    const docker_filter f[] = { { "label", "drvctl.alloc=1" }, { "type", "container" },
                                { "label", "q\"b\\s\n\x01" }, { "label", "caf\xc3\xa9" },
                                { NULL, NULL } };
    ASSERT_INT_EQ(0, docker_filters_json(&b, f, NULL));
    ASSERT_STR_EQ("{\"label\":[\"drvctl.alloc=1\",\"q\\\"b\\\\s\\u000a\\u0001\",\"caf\xc3\xa9\"],"
                  "\"type\":[\"container\"]}", buf_str(&b));
    buf_reset(&b);
    ASSERT_INT_EQ(0, docker_filters_json(&b, NULL, NULL));
    ASSERT_STR_EQ("", buf_str(&b));
    /* not UTF-8 (Docker would turn it into U+FFFD and match something else),
     * overlong, surrogate, empty: refused */
    const char *bad[] = { "a\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_err err;
        const docker_filter g[] = { { "label", bad[i] }, { NULL, NULL } };
        buf_reset(&b);
        ASSERT_INT_EQ(DRV_EINVALID, docker_filters_json(&b, g, &err));
        ASSERT_CONTAINS(err.msg, "filter value");
        const docker_filter k[] = { { bad[i], "x" }, { NULL, NULL } };
        ASSERT_INT_EQ(DRV_EINVALID, docker_filters_json(&b, k, &err));
        ASSERT_CONTAINS(err.msg, "filter key");
    }
    const docker_filter nv[] = { { "label", NULL }, { NULL, NULL } };
    ASSERT_INT_EQ(DRV_EINVALID, docker_filters_json(&b, nv, NULL));
    buf_free(&b);
}

static int call_list(docker *d, const docker_cb *cb)
{
    const docker_filter f[] = { { "label", "drvctl.alloc=a&b=c" }, { "label", "x#y" },
                                { NULL, NULL } };
    return docker_container_list(d, 1, f, cb, NULL, NULL);
}

static int call_list_plain(docker *d, const docker_cb *cb)
{
    return docker_container_list(d, 0, NULL, cb, NULL, NULL);
}

TEST(container_list_escapes_the_filters)
{
    result res;
    expect_line(call_list, OK_RESPONSE,
                "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22drvctl.alloc%3D"
                "a%26b%3Dc%22%2C%22x%23y%22%5D%7D HTTP/1.1", &res);
    expect_line(call_list_plain, OK_RESPONSE, "GET /v1.41/containers/json HTTP/1.1", &res);
}

static int call_events(docker *d, const docker_cb *cb)
{
    const docker_filter f[] = { { "type", "container" }, { "label", "k=v&since=0" },
                                { "event", "die" }, { "event", "oom" }, { NULL, NULL } };
    return docker_events(d, f, "1700000000.5&until=1", cb, NULL, NULL);
}

TEST(events_escape_since_and_filters_and_stream)
{
    result res;
    expect_line(call_events, STREAM_RESPONSE,
                "GET /v1.41/events?since=1700000000.5%26until%3D1&filters=%7B%22type%22%3A%5B%22"
                "container%22%5D%2C%22label%22%3A%5B%22k%3Dv%26since%3D0%22%5D%2C%22event%22%3A%5B"
                "%22die%22%2C%22oom%22%5D%7D HTTP/1.1", &res);
    ASSERT_INT_EQ(5, (long)res.streamed);
}

static int call_exec_create(docker *d, const docker_cb *cb)
{
    return docker_exec_create(d, "c1?x", "{\"Cmd\":[\"sh\"]}", cb, NULL, NULL);
}

static int call_exec_start(docker *d, const docker_cb *cb)
{
    return docker_exec_start(d, "e/../1", "{\"Detach\":false}", cb, NULL, NULL);
}

static int call_exec_inspect(docker *d, const docker_cb *cb)
{
    return docker_exec_inspect(d, "e 1", cb, NULL, NULL);
}

static int call_exec_resize(docker *d, const docker_cb *cb)
{
    return docker_exec_resize(d, "e1", 24, 80, cb, NULL, NULL);
}

TEST(exec_calls_escape_their_ids)
{
    result res;
    expect_line(call_exec_create, OK_RESPONSE, "POST /v1.41/containers/c1%3Fx/exec HTTP/1.1", &res);
    ASSERT_CONTAINS(res.head, "Content-Type: application/json");
    expect_line(call_exec_start, STREAM_RESPONSE, "POST /v1.41/exec/e%2F..%2F1/start HTTP/1.1",
                &res);
    ASSERT_INT_EQ(5, (long)res.streamed);
    expect_line(call_exec_inspect, OK_RESPONSE, "GET /v1.41/exec/e%201/json HTTP/1.1", &res);
    expect_line(call_exec_resize, OK_RESPONSE, "POST /v1.41/exec/e1/resize?h=24&w=80 HTTP/1.1",
                &res);
    const long bad[][2] = { { 0, 80 }, { 24, 0 }, { -1, 80 }, { 24, 65536 }, { 65536, 1 } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_INT_EQ(DRV_EINVALID, docker_exec_resize(NULL, "e1", bad[i][0], bad[i][1], NULL,
                                                       NULL, NULL));
    }
    ASSERT_INT_EQ(DRV_EINVALID, docker_exec_inspect(NULL, "", NULL, NULL, NULL));
}

#define AUTH "eyJ1c2VybmFtZSI6ImEiLCJwYXNzd29yZCI6InMzY3IzdCJ9"

static int call_pull(docker *d, const docker_cb *cb)
{
    return docker_image_pull(d, "reg:5000/team/app", "1.0&fromImage=evil", AUTH, cb, NULL, NULL);
}

static int call_pull_digest(docker *d, const docker_cb *cb)
{
    return docker_image_pull(d, "app@sha256:ab", NULL, NULL, cb, NULL, NULL);
}

TEST(image_pull_escapes_and_passes_the_auth_header)
{
    result res;
    expect_line(call_pull, STREAM_RESPONSE,
                "POST /v1.41/images/create?fromImage=reg%3A5000%2Fteam%2Fapp"
                "&tag=1.0%26fromImage%3Devil HTTP/1.1", &res);
    ASSERT_CONTAINS(res.head, "\r\nX-Registry-Auth: " AUTH "\r\n");
    ASSERT_INT_EQ(5, (long)res.streamed);
    expect_line(call_pull_digest, STREAM_RESPONSE,
                "POST /v1.41/images/create?fromImage=app%40sha256%3Aab HTTP/1.1", &res);
    if (strstr(res.head, "X-Registry-Auth") != NULL) {
        TEST_FAIL_("sent an auth header without auth");
    }
}

TEST(image_pull_refuses_header_injection_and_every_tag)
{
    drv_err err;
    const char *bad[] = { "abc\r\nX-Evil: 1", "abc def", "abc\n", "\x7f", "caf\xc3\xa9", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_err_clear(&err);
        ASSERT_INT_EQ(DRV_EINVALID, docker_image_pull(NULL, "app", "1", bad[i], NULL, NULL, &err));
        ASSERT_CONTAINS(err.msg, "registry auth is not a valid header value");
        if (bad[i][0] != '\0' && strstr(err.msg, bad[i]) != NULL) {
            TEST_FAIL_("the credential is in the message: %s", err.msg);
        }
    }
    /* no tag and none in the reference: Docker would pull every tag */
    const char *untagged[] = { "app", "reg:5000/app", "" };
    for (size_t i = 0; i < sizeof untagged / sizeof untagged[0]; i++) {
        ASSERT_INT_EQ(DRV_EINVALID, docker_image_pull(NULL, untagged[i], NULL, NULL, NULL, NULL,
                                                      &err));
        ASSERT_CONTAINS(err.msg, "needs a tag or a digest");
        ASSERT_INT_EQ(DRV_EINVALID, docker_image_pull(NULL, untagged[i], "", NULL, NULL, NULL,
                                                      &err));
    }
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_pull(NULL, NULL, "1", NULL, NULL, NULL, &err));
}

static int call_image_remove(docker *d, const docker_cb *cb)
{
    return docker_image_remove(d, "reg:5000/a b/img:1?x", 1, 1, cb, NULL, NULL);
}

static int call_image_remove_plain(docker *d, const docker_cb *cb)
{
    return docker_image_remove(d, "img", 0, 0, cb, NULL, NULL);
}

static int call_image_tag(docker *d, const docker_cb *cb)
{
    return docker_image_tag(d, "sha256:ab", "reg:5000/team/app", "1.0&force=1", cb, NULL, NULL);
}

TEST(image_remove_and_tag_escape_the_reference)
{
    result res;
    expect_line(call_image_remove, OK_RESPONSE,
                "DELETE /v1.41/images/reg:5000/a%20b/img:1%3Fx?force=1&noprune=1 HTTP/1.1", &res);
    expect_line(call_image_remove_plain, OK_RESPONSE, "DELETE /v1.41/images/img HTTP/1.1", &res);
    expect_line(call_image_tag, OK_RESPONSE,
                "POST /v1.41/images/sha256:ab/tag?repo=reg%3A5000%2Fteam%2Fapp&tag=1.0%26force%3D1"
                " HTTP/1.1", &res);
    drv_err err;
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_remove(NULL, "a/../containers/c1", 1, 0, NULL, NULL,
                                                    &err));
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_tag(NULL, "img", "", "1", NULL, NULL, &err));
    ASSERT_INT_EQ(DRV_EINVALID, docker_image_tag(NULL, "..", "r", "1", NULL, NULL, &err));
}

/* --- classification -------------------------------------------------------------- */

typedef struct case_ {
    docker_op op;
    long status;
    const char *message;
    docker_class cls;
    docker_conflict conflict;
    int done;
    int code;
} case_;

#define KILL_NOT_RUNNING "Cannot kill container: 974c: Container 974c is not running"
#define NAME_IN_USE "Conflict. The container name \"/web\" is already in use by container " \
                    "\"974c\". You have to remove (or rename) that container to be able to " \
                    "reuse that name."

TEST(classify_maps_status_and_message)
{
    const case_ cases[] = {
        { DOCKER_OP_CONTAINER_CREATE, 201, NULL, DOCKER_OK, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_CREATE, 404, "No such image: busybox:1", DOCKER_NO_SUCH_IMAGE,
          DOCKER_CONFLICT_NONE, 0, DRV_EIMAGE },
        /* only create's own message means a missing image: a network named
         * like the message, or another call, is plain "not found" */
        { DOCKER_OP_CONTAINER_CREATE, 404, "network No such image not found", DOCKER_NOT_FOUND,
          DOCKER_CONFLICT_NONE, 0, DRV_ETASK },
        { DOCKER_OP_CONTAINER_CREATE, 404, NULL, DOCKER_NOT_FOUND, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        { DOCKER_OP_IMAGE_INSPECT, 404, "No such image: busybox:1", DOCKER_NOT_FOUND,
          DOCKER_CONFLICT_NONE, 0, DRV_EIMAGE },
        { DOCKER_OP_CONTAINER_CREATE, 409, NAME_IN_USE, DOCKER_CONFLICT,
          DOCKER_CONFLICT_NAME_IN_USE, 0, DRV_ETASK },
        { DOCKER_OP_CONTAINER_CREATE, 500, "boom", DOCKER_SERVER, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        { DOCKER_OP_CONTAINER_START, 204, NULL, DOCKER_OK, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_START, 304, NULL, DOCKER_NOT_MODIFIED, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_START, 404, "No such container: c1", DOCKER_NOT_FOUND,
          DOCKER_CONFLICT_NONE, 0, DRV_ETASK },
        { DOCKER_OP_CONTAINER_STOP, 304, NULL, DOCKER_NOT_MODIFIED, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_STOP, 404, NULL, DOCKER_NOT_FOUND, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_KILL, 409, KILL_NOT_RUNNING, DOCKER_CONFLICT,
          DOCKER_CONFLICT_NOT_RUNNING, 1, 0 },
        { DOCKER_OP_CONTAINER_KILL, 409, "Container 974c is paused, unpause the container "
          "before stopping or killing", DOCKER_CONFLICT, DOCKER_CONFLICT_OTHER, 0, DRV_ETASK },
        { DOCKER_OP_CONTAINER_KILL, 409, NULL, DOCKER_CONFLICT, DOCKER_CONFLICT_OTHER, 0,
          DRV_ETASK },
        { DOCKER_OP_CONTAINER_KILL, 404, "No such container: c1", DOCKER_NOT_FOUND,
          DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_REMOVE, 404, NULL, DOCKER_NOT_FOUND, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_REMOVE, 409, "removal of container 974c is already in progress",
          DOCKER_CONFLICT, DOCKER_CONFLICT_IN_PROGRESS, 0, DRV_ETASK },
        { DOCKER_OP_CONTAINER_REMOVE, 500, NULL, DOCKER_SERVER, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        /* 304 means "already" only for start and stop */
        { DOCKER_OP_CONTAINER_KILL, 304, NULL, DOCKER_NOT_MODIFIED, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        { DOCKER_OP_CONTAINER_INSPECT, 404, NULL, DOCKER_NOT_FOUND, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        { DOCKER_OP_CONTAINER_ATTACH, 101, NULL, DOCKER_OK, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_EXEC_START, 101, NULL, DOCKER_OK, DOCKER_CONFLICT_NONE, 1, 0 },
        { DOCKER_OP_CONTAINER_WAIT, 101, NULL, DOCKER_UNEXPECTED, DOCKER_CONFLICT_NONE, 0,
          DRV_ETASK },
        { DOCKER_OP_EXEC_CREATE, 409, "Container c1 is not running", DOCKER_CONFLICT,
          DOCKER_CONFLICT_NOT_RUNNING, 0, DRV_ETASK },
        { DOCKER_OP_IMAGE_LOAD, 500, NULL, DOCKER_SERVER, DOCKER_CONFLICT_NONE, 0, DRV_EIMAGE },
        { DOCKER_OP_IMAGE_PULL, 400, "bad ref", DOCKER_BAD_REQUEST, DOCKER_CONFLICT_NONE, 0,
          DRV_EIMAGE },
        { DOCKER_OP_IMAGE_REMOVE, 409, "conflict: unable to remove repository reference",
          DOCKER_CONFLICT, DOCKER_CONFLICT_OTHER, 0, DRV_EIMAGE },
        { DOCKER_OP_EVENTS, 500, NULL, DOCKER_SERVER, DOCKER_CONFLICT_NONE, 0, DRV_EDOCKER },
        { DOCKER_OP_NETWORK_INSPECT, 404, NULL, DOCKER_NOT_FOUND, DOCKER_CONFLICT_NONE, 0,
          DRV_EDOCKER },
        { DOCKER_OP_VERSION, 302, NULL, DOCKER_UNEXPECTED, DOCKER_CONFLICT_NONE, 0, DRV_EDOCKER },
        { DOCKER_OP_VERSION, 0, NULL, DOCKER_UNEXPECTED, DOCKER_CONFLICT_NONE, 0, DRV_EDOCKER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const case_ *c = &cases[i];
        docker_answer a;
        docker_classify(c->op, c->status, c->message, &a);
        if (a.cls != c->cls || a.conflict != c->conflict || a.done != c->done ||
            a.code != c->code) {
            TEST_FAIL_("case %zu (op %d, HTTP %ld, \"%s\"): got %s/%d done %d code %d, "
                       "want %s/%d done %d code %d", i, (int)c->op, c->status,
                       c->message ? c->message : "(null)", docker_class_name(a.cls),
                       (int)a.conflict, a.done, a.code, docker_class_name(c->cls),
                       (int)c->conflict, c->done, c->code);
        }
    }
}

/* Pings a fake daemon answering with `api_header`; fills res and version. */
static void run_ping(const char *api_header, result *res, char *version, size_t n)
{
    uv_loop_t loop;
    fake_server *srv = &res->srv;
    docker *d = NULL;
    char response[512];
    snprintf(response, sizeof response,
             "HTTP/1.1 200 OK\r\nApi-Version: %s\r\nServer: Docker/24.0.5 (linux)\r\n"
             "Content-Length: 2\r\nConnection: close\r\n\r\nOK", api_header);
    memset(res, 0, sizeof *res);
    uv_loop_init(&loop);
    if (fake_server_start(srv, &loop, tmpdir, response, strlen(response)) != 0) {
        return;
    }
    char ep[160];
    snprintf(ep, sizeof ep, "unix://%s", srv->path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&res->http, &loop, NULL);
    res->has_srv = 1;
    docker_new(&d, res->http, &o, NULL);
    if (docker_ping(d, on_ping_done, res, NULL) != 0) {
        http_client_close(res->http);
        fake_server_close(srv);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    snprintf(version, n, "%s", docker_api_version(d));
    docker_free(d);
    fake_server_free(srv);
}

TEST(ping_takes_a_valid_api_version)
{
    result res;
    char v[32];
    run_ping("1.41", &res, v, sizeof v);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ("1.41", v);
    run_ping("1.99", &res, v, sizeof v);
    ASSERT_INT_EQ(0, res.rc);
    ASSERT_STR_EQ(DOCKER_API_MAX, v);
}

TEST(ping_refuses_a_path_in_the_api_version)
{
    result res;
    char v[32];
    run_ping("1.30/../../x?", &res, v, sizeof v);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(DRV_EDOCKER, res.rc);
    ASSERT_CONTAINS(res.msg, "invalid Api-Version header");
    ASSERT_CONTAINS(res.msg, "\"1.30/../../x?\"");
    ASSERT_STR_EQ(DOCKER_API_MAX, v);   /* unchanged */
}

TEST(error_body_over_the_cap_is_refused)
{
    /* a 20 MiB error body: more than DOCKER_MAX_BODY */
    size_t big = DOCKER_MAX_BODY + 4 * 1024 * 1024;
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n", big);
    buf resp = BUF_INIT;
    buf_puts(&resp, head);
    char *pad = malloc(big + 1);
    memset(pad, ' ', big);
    pad[big] = '\0';
    buf_append(&resp, pad, big);
    free(pad);
    result res;
    char line[2048];
    run_call(call_network, buf_str(&resp), &res, line, sizeof line);
    buf_free(&resp);
    ASSERT_INT_EQ(1, res.calls);
    ASSERT_INT_EQ(DRV_EINVALID, res.rc);
    ASSERT_CONTAINS(res.msg, "response body larger than");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);   /* the fake daemon writes to clients that left */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-docker.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(escape_keeps_only_unreserved);
    RUN(path_escapes_segments_and_query_values);
    RUN(path_refuses_empty_and_dot_segments);
    RUN(api_version_must_be_digits_dot_digits);
    RUN(set_api_version_refuses_and_keeps_the_old_one);
    RUN(endpoints_are_validated);
    RUN(create_escapes_the_name_on_the_wire);
    RUN(kill_escapes_the_id_and_the_signal);
    RUN(remove_cannot_climb_out_of_containers);
    RUN(network_inspect_escapes_the_name);
    RUN(image_inspect_keeps_slashes_and_escapes_each_component);
    RUN(image_inspect_refuses_dot_dot_and_empty_components);
    RUN(ping_takes_a_valid_api_version);
    RUN(ping_refuses_a_path_in_the_api_version);
    RUN(error_body_over_the_cap_is_refused);
    RUN(logs_escapes_the_id_and_streams);
    RUN(stats_streamed_or_one_shot);
    RUN(filters_json_groups_keys_and_escapes_values);
    RUN(container_list_escapes_the_filters);
    RUN(events_escape_since_and_filters_and_stream);
    RUN(exec_calls_escape_their_ids);
    RUN(image_pull_escapes_and_passes_the_auth_header);
    RUN(image_pull_refuses_header_injection_and_every_tag);
    RUN(image_remove_and_tag_escape_the_reference);
    RUN(classify_maps_status_and_message);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return test_summary();
}
