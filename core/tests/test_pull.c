/* test_pull.c: the puller (pull.h) against a scripted fake dockerd: the
 * stream scanner, de-duplication, failure classes and retries, timeouts,
 * cancels and a cut stream; and the progress renderers (progress.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker.h"
#include "fake_dockerd.h"
#include "http.h"
#include "log.h"
#include "progress.h"
#include "pull.h"
#include "script.h"
#include "test.h"

static char tmpdir[64];
static script *lua;

#define FD(m, p, st, b, ...) { .method = (m), .path = (p), .status = (st), .body = (b), __VA_ARGS__ }
#define END { .method = NULL }

/* A pull of docker.io/library/img:1 with two layers. */
#define STREAM_OK \
    "{\"status\":\"Pulling from library/img\",\"id\":\"1\"}\n" \
    "{\"status\":\"Already exists\",\"progressDetail\":{},\"id\":\"aaaaaaaaaaaa\"}\n" \
    "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Waiting\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1000,\"total\":3000}," \
    "\"progress\":\"[=>  ]\",\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":2000,\"total\":3000}," \
    "\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Verifying Checksum\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":3000,\"total\":3000}," \
    "\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"bbbbbbbbbbbb\"}\n" \
    "{\"status\":\"Digest: sha256:0123\"}\n" \
    "{\"status\":\"Status: Downloaded newer image for img:1\"}\n"

#define PULL_OK FD("POST", "/images/create?fromImage=docker.io%2Flibrary%2Fimg&tag=1", 200, \
                   STREAM_OK)
#define INSPECT_OK FD("GET", "/images/docker.io/library/img", 200, \
                      "{\"Id\":\"sha256:feed\",\"RepoTags\":[\"img:1\"]}")

/* --- the line scanner --------------------------------------------------------- */

TEST(line_scanner_reads_the_members_it_needs)
{
    pull_line l;
    drv_err err;
    pull_line_init(&l);
    const char *s = "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":32768,"
                    "\"total\":3001130},\"progress\":\"[>  ]  32.77kB/3.001MB\","
                    "\"id\":\"9a04c67580ee\",\"aux\":{\"x\":[1,2.5e3,true,null,{\"y\":\"z\"}]}}";
    ASSERT_INT_EQ(0, pull_line_parse(&l, s, strlen(s), &err));
    ASSERT_STR_EQ("Downloading", l.status);
    ASSERT_STR_EQ("9a04c67580ee", l.id);
    ASSERT_INT_EQ(32768, l.current);
    ASSERT_INT_EQ(3001130, l.total);
    ASSERT(l.error == NULL);

    /* errorDetail.message wins over error, in either order */
    s = "{\"error\":\"short\",\"errorDetail\":{\"code\":1,\"message\":\"unknown blob\"}}";
    ASSERT_INT_EQ(0, pull_line_parse(&l, s, strlen(s), &err));
    ASSERT_STR_EQ("unknown blob", l.error);
    ASSERT_STR_EQ("", l.status);
    s = "{\"error\":\"only this\"}";
    ASSERT_INT_EQ(0, pull_line_parse(&l, s, strlen(s), &err));
    ASSERT_STR_EQ("only this", l.error);

    /* escapes decode: \n, \u001b, a surrogate pair, a lone surrogate */
    s = "{\"status\":\"a\\nb\\u001bc\\ud83d\\ude00\\ud800x\\\"\\/\"}";
    ASSERT_INT_EQ(0, pull_line_parse(&l, s, strlen(s), &err));
    ASSERT_STR_EQ("a\nb\x1b" "c\xf0\x9f\x98\x80\xef\xbf\xbdx\"/", l.status);

    /* an over-long id is cut, not overflowed */
    char big[400];
    memset(big, 'a', sizeof big);
    buf b = BUF_INIT;
    buf_appendf(&b, "{\"id\":\"%.*s\",\"status\":\"Waiting\"}", 300, big);
    ASSERT_INT_EQ(0, pull_line_parse(&l, b.data, b.len, &err));
    ASSERT_INT_EQ(PULL_ID_MAX - 1, strlen(l.id));
    buf_free(&b);

    /* not JSON objects */
    const char *bad[] = { "", "[]", "{\"status\":}", "{\"status\":\"x\"", "{\"a\":1} x",
                          "{\"a\":\"\x01\"}", "{\"a\":tru}", "\"str\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_INT_EQ(DRV_EINVALID, pull_line_parse(&l, bad[i], strlen(bad[i]), &err));
    }
    /* deep nesting is refused, not recursed into */
    buf deep = BUF_INIT;
    buf_puts(&deep, "{\"a\":");
    for (int i = 0; i < 1000; i++) {
        buf_puts(&deep, "[");
    }
    ASSERT_INT_EQ(DRV_EINVALID, pull_line_parse(&l, deep.data, deep.len, &err));
    buf_free(&deep);
    pull_line_free(&l);
}

TEST(layer_states_and_durations)
{
    ASSERT_INT_EQ(PULL_LAYER_EXTRACTING, pull_layer_state_of("Extracting"));
    ASSERT_INT_EQ(PULL_LAYER_EXISTS, pull_layer_state_of("Already exists"));
    ASSERT_INT_EQ(PULL_LAYER_NONE, pull_layer_state_of("Digest: sha256:1"));
    ASSERT_STR_EQ("Verifying Checksum", pull_layer_state_name(PULL_LAYER_VERIFYING));
    const struct { long ms; const char *s; } d[] = {
        { 120000, "2m0s" }, { 300000, "5m0s" }, { 30000, "30s" }, { 1500, "1.5s" },
        { 250, "250ms" }, { 3723000, "1h2m3s" }, { 0, "0ms" },
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        buf b = BUF_INIT;
        pull_duration(&b, d[i].ms);
        ASSERT_STR_EQ(d[i].s, buf_str(&b));
        buf_free(&b);
    }
    buf r = BUF_INIT;
    pull_ref(&r, "docker.io/library/redis", "sha256:ab");
    ASSERT_STR_EQ("docker.io/library/redis@sha256:ab", buf_str(&r));
    buf_reset(&r);
    pull_ref(&r, "127.0.0.1:5000/rsx/x", "1");
    ASSERT_STR_EQ("127.0.0.1:5000/rsx/x:1", buf_str(&r));
    buf_free(&r);
}

/* --- the puller ------------------------------------------------------------- */

#define NW 5

typedef struct waiter {
    struct env *env;
    pull_waiter *w;
    int events, layers, statuses, retries;
    int done;
    int rc;
    char id[80];
    char msg[DRV_ERR_MSG_MAX];
    pull_stats stats;
    size_t nlayers_seen;
} waiter;

typedef struct env {
    uv_loop_t loop;
    fake_dockerd fd;
    http_client *http;
    docker *docker;
    puller *p;
    waiter w[NW];
    int nw;
    int ndone;
    int expect_done;            /* close down once this many are done */
    uv_timer_t check;           /* for cancel tests */
    int check_open;
} env;

static void env_down(env *e)
{
    puller_close(e->p);
    e->p = NULL;
    http_client_close(e->http);
    e->http = NULL;
    fake_dockerd_close(&e->fd);
    if (e->check_open) {
        uv_close((uv_handle_t *)&e->check, NULL);
        e->check_open = 0;
    }
}

static void on_ev(void *ud, const pull_event *ev)
{
    waiter *w = ud;
    w->events++;
    if (ev->kind == PULL_EV_LAYER) {
        w->layers++;
    } else if (ev->kind == PULL_EV_STATUS) {
        w->statuses++;
    } else if (ev->kind == PULL_EV_RETRY) {
        w->retries++;
    }
    w->nlayers_seen = ev->stats->nlayers;
}

static void on_done(void *ud, int rc, const char *id, const pull_stats *stats, const drv_err *err)
{
    waiter *w = ud;
    w->done++;
    w->rc = rc;
    w->w = NULL;
    snprintf(w->id, sizeof w->id, "%s", id ? id : "");
    snprintf(w->msg, sizeof w->msg, "%s", err ? err->msg : "");
    if (stats != NULL) {
        w->stats = *stats;
    }
    if (++w->env->ndone == w->env->expect_done) {
        env_down(w->env);
    }
}

static int env_up(env *e, const fd_step *steps)
{
    memset(e, 0, sizeof *e);
    uv_loop_init(&e->loop);
    if (fake_dockerd_start(&e->fd, &e->loop, tmpdir, steps) != 0) {
        return -1;
    }
    char ep[160];
    snprintf(ep, sizeof ep, "unix://%s", e->fd.path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&e->http, &e->loop, NULL);
    docker_new(&e->docker, e->http, &o, NULL);
    docker_set_api_version(e->docker, "1.41", NULL);
    puller_opts po = { .loop = &e->loop, .docker = e->docker, .script = lua, .retry_base_ms = 10 };
    if (puller_new(&e->p, &po, NULL) < 0) {
        return -1;
    }
    for (int i = 0; i < NW; i++) {
        e->w[i].env = e;
    }
    uv_timer_init(&e->loop, &e->check);
    e->check.data = e;
    e->check_open = 1;
    return 0;
}

static int env_pull(env *e, int i, long timeout_ms, long activity_ms)
{
    pull_request q = { .repo = "docker.io/library/img", .tag = "1", .timeout_ms = timeout_ms,
                       .activity_timeout_ms = activity_ms };
    e->nw++;
    return puller_pull(e->p, &q, on_ev, on_done, &e->w[i], &e->w[i].w, NULL);
}

static void env_free(env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&e->loop));   /* every handle closed */
    docker_free(e->docker);
    fake_dockerd_free(&e->fd);
}

static int count_lines(const char *log, const char *prefix)
{
    int n = 0;
    size_t pl = strlen(prefix);
    for (const char *p = log; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, pl) == 0) {
            n++;
        }
        p = strchr(p, '\n');
        p = p != NULL ? p + 1 : NULL;
    }
    return n;
}

TEST(five_waiters_share_one_pull_and_its_result)
{
    static const fd_step s[] = { PULL_OK, INSPECT_OK, END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = NW;
    for (int i = 0; i < NW; i++) {
        ASSERT_INT_EQ(0, env_pull(&e, i, 0, 0));
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    ASSERT_INT_EQ(0, e.fd.unexpected);
    for (int i = 0; i < NW; i++) {
        ASSERT_INT_EQ(1, e.w[i].done);
        ASSERT_INT_EQ(0, e.w[i].rc);
        ASSERT_STR_EQ("sha256:feed", e.w[i].id);
        /* every layer line and both status lines reached every waiter */
        ASSERT_INT_EQ(9, e.w[i].layers);
        ASSERT_INT_EQ(3, e.w[i].statuses);
        ASSERT_INT_EQ(2, e.w[i].stats.nlayers);
        ASSERT_INT_EQ(2, e.w[i].stats.ndone);
        ASSERT_INT_EQ(1, e.w[i].stats.nexisting);
        ASSERT_INT_EQ(3000, e.w[i].stats.bytes_done);
        ASSERT_INT_EQ(1, e.w[i].stats.fresh);
    }
    env_free(&e);
}

TEST(a_new_waiter_after_the_result_starts_a_new_pull)
{
    static const fd_step s[] = { PULL_OK, INSPECT_OK, PULL_OK, INSPECT_OK, END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 99;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    while (e.w[0].done == 0) {
        uv_run(&e.loop, UV_RUN_ONCE);
    }
    ASSERT_INT_EQ(0, env_pull(&e, 1, 0, 0));
    while (e.w[1].done == 0) {
        uv_run(&e.loop, UV_RUN_ONCE);
    }
    env_down(&e);
    ASSERT_INT_EQ(2, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    ASSERT_INT_EQ(0, e.w[1].rc);
    env_free(&e);
}

TEST(error_inside_200_fails_the_pull)
{
    /* "denied" cannot get better: at once */
    static const fd_step s[] = {
        FD("POST", "/images/create", 200,
           "{\"status\":\"Pulling from library/img\",\"id\":\"1\"}\n"
           "{\"errorDetail\":{\"message\":\"denied: requested access to the resource is denied\"},"
           "\"error\":\"x\"}\n"),
        END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 2;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    ASSERT_INT_EQ(0, env_pull(&e, 1, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        ASSERT_INT_EQ(DRV_EIMAGE, e.w[i].rc);
        ASSERT_STR_EQ("pull \"docker.io/library/img:1\": denied: requested access to the "
                      "resource is denied", e.w[i].msg);
    }
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    ASSERT(strstr(buf_str(&e.fd.log), "GET") == NULL);     /* no inspect */
    env_free(&e);

    /* "unknown blob" may: retried, and failing every time it fails */
    static const fd_step s2[] = {
        FD("POST", "/images/create", 200, "{\"error\":\"unknown blob\"}\n"),
        FD("POST", "/images/create", 200, "{\"error\":\"unknown blob\"}\n"),
        FD("POST", "/images/create", 200, "{\"error\":\"unknown blob\"}\n"),
        END };
    ASSERT_INT_EQ(0, env_up(&e, s2));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(DRV_EIMAGE, e.w[0].rc);
    ASSERT_STR_EQ("pull \"docker.io/library/img:1\": unknown blob", e.w[0].msg);
    ASSERT_INT_EQ(3, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    ASSERT_INT_EQ(2, e.w[0].retries);
    ASSERT_INT_EQ(0, e.fd.unexpected);
    env_free(&e);
}

TEST(manifest_unknown_404_fails_at_once)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 404,
           "{\"message\":\"manifest for img:1 not found: manifest unknown: manifest unknown\"}"),
        END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 3;
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(0, env_pull(&e, i, 0, 0));
    }
    uv_run(&e.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 3; i++) {
        ASSERT_INT_EQ(DRV_EIMAGE, e.w[i].rc);
        ASSERT_STR_EQ("pull \"docker.io/library/img:1\": manifest for img:1 not found: "
                      "manifest unknown: manifest unknown", e.w[i].msg);
        ASSERT_INT_EQ(0, e.w[i].retries);
    }
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    /* and a 500 saying "unauthorized" is as final */
    env_free(&e);
    static const fd_step s2[] = {
        FD("POST", "/images/create", 500,
           "{\"message\":\"unauthorized: authentication required\"}"),
        END };
    ASSERT_INT_EQ(0, env_up(&e, s2));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_CONTAINS(e.w[0].msg, "unauthorized: authentication required");
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    env_free(&e);
    /* a TLS registry on loopback asked anonymously: dockerd retried it
     * over plain HTTP and reports that (docker-api.md §2.3): as final */
    static const fd_step s3[] = {
        FD("POST", "/images/create", 500,
           "{\"message\":\"error parsing HTTP 400 response body: invalid character 'C' looking "
           "for beginning of value: \\\"Client sent an HTTP request to an HTTPS server.\\\\n\\\"\"}"),
        END };
    ASSERT_INT_EQ(0, env_up(&e, s3));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_CONTAINS(e.w[0].msg, "HTTP request to an HTTPS server");
    ASSERT_INT_EQ(0, e.w[0].retries);
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    env_free(&e);
}

TEST(transient_500_is_retried_then_succeeds)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 500,
           "{\"message\":\"Get \\\"https://r/v2/\\\": dial tcp: connect: connection refused\"}"),
        PULL_OK, INSPECT_OK, END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 2;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    ASSERT_INT_EQ(0, env_pull(&e, 1, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++) {
        ASSERT_INT_EQ(0, e.w[i].rc);
        ASSERT_STR_EQ("sha256:feed", e.w[i].id);
        ASSERT_INT_EQ(1, e.w[i].retries);
    }
    ASSERT_INT_EQ(2, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    ASSERT_INT_EQ(0, fake_dockerd_unused(&e.fd));
    env_free(&e);
}

TEST(a_cut_stream_is_retried)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, STREAM_OK, .drop = 2),
        PULL_OK, INSPECT_OK, END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, e.w[0].rc);
    ASSERT_INT_EQ(1, e.w[0].retries);
    ASSERT_INT_EQ(2, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    env_free(&e);

    /* a stream that ends cleanly but early (no "Status:" line) is cut too */
    static const fd_step s2[] = {
        FD("POST", "/images/create", 200, "{\"status\":\"Pulling from library/img\"}\n"),
        PULL_OK, INSPECT_OK, END };
    ASSERT_INT_EQ(0, env_up(&e, s2));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, e.w[0].rc);
    ASSERT_INT_EQ(1, e.w[0].retries);
    env_free(&e);
}

TEST(no_progress_for_the_activity_timeout_aborts)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, "{\"status\":\"Pulling from library/img\"}\n",
           .stream = 1),
        END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 10000, 100));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(DRV_EIMAGE, e.w[0].rc);
    ASSERT_STR_EQ("pull \"docker.io/library/img:1\": image pull aborted: no progress for 100ms",
                  e.w[0].msg);
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));   /* final */
    env_free(&e);
}

TEST(the_total_timeout_aborts)
{
    static const fd_step s[] = { FD("POST", "/images/create", 0, NULL, .hold = 1), END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 150, 10000));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(DRV_EIMAGE, e.w[0].rc);
    ASSERT_STR_EQ("pull \"docker.io/library/img:1\": timed out after 150ms (image_pull_timeout)",
                  e.w[0].msg);
    env_free(&e);

    /* retries stay inside it: a backoff longer than what is left fails now */
    static const fd_step s2[] = {
        FD("POST", "/images/create", 500, "{\"message\":\"registry down\"}", .delay_ms = 60),
        END };
    ASSERT_INT_EQ(0, env_up(&e, s2));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 65, 10000));
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(DRV_EIMAGE, e.w[0].rc);
    ASSERT_STR_EQ("pull \"docker.io/library/img:1\": registry down", e.w[0].msg);
    ASSERT_INT_EQ(1, count_lines(buf_str(&e.fd.log), "POST /images/create"));
    env_free(&e);
}

static void on_check_cancel_one(uv_timer_t *t)
{
    env *e = t->data;
    pull_waiter_cancel(e->w[0].w);
    e->w[0].w = NULL;
}

TEST(one_waiter_cancels_the_others_keep_the_pull)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, STREAM_OK, .delay_ms = 80), INSPECT_OK, END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    e.expect_done = 1;
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    ASSERT_INT_EQ(0, env_pull(&e, 1, 0, 0));
    uv_timer_start(&e.check, on_check_cancel_one, 20, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, e.w[0].done);
    ASSERT_INT_EQ(0, e.w[0].events);
    ASSERT_INT_EQ(1, e.w[1].done);
    ASSERT_INT_EQ(0, e.w[1].rc);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&e.fd));
    env_free(&e);
}

static void on_check_cancel_all(uv_timer_t *t)
{
    env *e = t->data;
    if (e->w[0].w != NULL) {
        pull_waiter_cancel(e->w[0].w);
        e->w[0].w = NULL;
        pull_waiter_cancel(e->w[1].w);
        e->w[1].w = NULL;
        uv_timer_start(t, on_check_cancel_all, 50, 0);
        return;
    }
    /* the request went with the last waiter */
    e->nw = http_client_active(e->http);
    env_down(e);
}

TEST(the_last_waiter_cancels_the_request)
{
    static const fd_step s[] = { FD("POST", "/images/create", 0, NULL, .hold = 1), END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    ASSERT_INT_EQ(0, env_pull(&e, 1, 0, 0));
    uv_timer_start(&e.check, on_check_cancel_all, 20, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, e.nw);          /* no request in flight after the cancel */
    ASSERT_INT_EQ(0, e.w[0].done + e.w[1].done);
    env_free(&e);

    /* a new waiter for the same image after that starts a new pull */
}

static void on_check_close(uv_timer_t *t)
{
    env *e = t->data;
    e->nw = (int)puller_requests(e->p);
    env_down(e);
}

TEST(closing_the_puller_mid_pull_calls_nothing)
{
    static const fd_step s[] = {
        FD("POST", "/images/create", 200, "{\"status\":\"Pulling from x\"}\n", .stream = 1),
        END };
    env e;
    ASSERT_INT_EQ(0, env_up(&e, s));
    ASSERT_INT_EQ(0, env_pull(&e, 0, 0, 0));
    uv_timer_start(&e.check, on_check_close, 30, 0);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, e.w[0].done);
    ASSERT_INT_EQ(1, e.nw);          /* one Engine pull was started */
    env_free(&e);
}

/* --- rendering ----------------------------------------------------------------- */

static const char *render(progress_mode mode, const char *task, const char *err_msg)
{
    static char out[8192];
    FILE *f = fmemopen(out, sizeof out - 1, "w");
    progress *p = progress_new(f, mode, 60);
    progress_who who = { .task = task, .index = 2, .alloc_id = "a1" };
    pull_stats st = { .nlayers = 3, .ndone = 3, .nexisting = 1, .bytes_done = 48200000, .fresh = 1 };
    pull_layer ly = { .id = "bbbbbbbbbbbb", .state = PULL_LAYER_DOWNLOADING, .current = 5,
                      .total = 10, .size = 10 };
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ref = "127.0.0.1:5000/rsx/x:1";
    ev.stats = &st;
    ev.kind = PULL_EV_START;
    progress_event(p, &who, &ev);
    ev.kind = PULL_EV_LAYER;
    ev.layer = &ly;
    ev.changed = 1;
    progress_event(p, &who, &ev);
    ly.state = PULL_LAYER_EXTRACTING;
    progress_event(p, &who, &ev);
    drv_err e;
    if (err_msg != NULL) {
        drv_err_set(&e, DRV_EIMAGE, "%s", err_msg);
        ev.kind = PULL_EV_RETRY;
        ev.attempt = 2;
        ev.delay_ms = 1000;
        ev.err = &e;
        progress_event(p, &who, &ev);
    }
    ev.kind = PULL_EV_DONE;
    ev.rc = 0;
    ev.err = NULL;
    ev.image_id = "sha256:feed";
    ev.elapsed_ms = 2100;
    progress_event(p, &who, &ev);
    progress_free(p);
    fclose(f);
    return out;
}

TEST(progress_lines_one_per_phase)
{
    const char *o = render(PROGRESS_LINES, "web", NULL);
    ASSERT_STR_EQ("web[2] | pulling 127.0.0.1:5000/rsx/x:1\n"
                  "web[2] | downloading 127.0.0.1:5000/rsx/x:1 (3 layers)\n"
                  "web[2] | extracting 127.0.0.1:5000/rsx/x:1\n"
                  "web[2] | pulled 127.0.0.1:5000/rsx/x:1 (3 layers, 1 existing, 48.2 MB) in 2.1 s\n",
                  o);
    /* Docker's text is escaped: no escape sequence reaches the terminal */
    o = render(PROGRESS_LINES, "web", "pull \"x\": evil\x1b]0;title\x07\nweb[0] | forged");
    ASSERT(strchr(o, '\x1b') == NULL);
    ASSERT(strchr(o, '\x07') == NULL);
    ASSERT_CONTAINS(o, "evil\\x1b]0;title\\x07\\nweb[0] | forged; retrying in 1s (attempt 2 of 3)");
}

TEST(progress_json_events)
{
    const char *o = render(PROGRESS_JSON, "w\"eb", "bad \x1b\xff");
    ASSERT_CONTAINS(o, "{\"event\":\"pull\",\"phase\":\"start\",\"task\":\"w\\\"eb\",\"index\":2,"
                       "\"alloc_id\":\"a1\",\"image\":\"127.0.0.1:5000/rsx/x:1\"}\n");
    ASSERT_CONTAINS(o, "\"phase\":\"layer\"");
    ASSERT_CONTAINS(o, "\"layer\":\"bbbbbbbbbbbb\",\"status\":\"Downloading\",\"current\":5,"
                       "\"total\":10}");
    ASSERT_CONTAINS(o, "\"phase\":\"retry\"");
    ASSERT_CONTAINS(o, "\"attempt\":2,\"delay_ms\":1000,\"error\":\"bad \\u001b\\ufffd\"}");
    ASSERT_CONTAINS(o, "\"phase\":\"done\"");
    ASSERT_CONTAINS(o, "\"ok\":true,\"image_id\":\"sha256:feed\",\"layers\":3,"
                       "\"layers_existing\":1,\"bytes\":48200000,\"elapsed_ms\":2100}\n");
    /* one event, one line */
    int n = 0;
    for (const char *c = o; *c; c++) {
        n += *c == '\n';
    }
    ASSERT_INT_EQ(5, n);
}

TEST(progress_tty_redraws_in_place)
{
    const char *o = render(PROGRESS_TTY, "web", NULL);
    ASSERT_CONTAINS(o, "\x1b[2Kweb[2] | pulling 127.0.0.1:5000/rsx/x:1\n");
    ASSERT_CONTAINS(o, "  bbbbbbbbbbbb: Downloading [");
    ASSERT_CONTAINS(o, "\x1b[2A");        /* back over the two rows */
    ASSERT_CONTAINS(o, "\x1b[2Kweb[2] | pulled 127.0.0.1:5000/rsx/x:1 (3 layers");
    /* every row fits the 60 columns */
    for (const char *l = o; l != NULL && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        const char *k = strstr(l, "\x1b[2K");
        if (k != NULL && k < l + len) {
            ASSERT((size_t)(l + len - (k + 4)) <= 59);
        }
        l = nl ? nl + 1 : NULL;
    }
}

TEST(progress_tty_one_block_per_image_for_all_its_waiters)
{
    static char out[8192];
    FILE *f = fmemopen(out, sizeof out - 1, "w");
    progress *p = progress_new(f, PROGRESS_TTY, 80);
    progress_who a = { .task = "web", .index = 0, .alloc_id = "a0" };
    progress_who b = { .task = "web", .index = 1, .alloc_id = "a1" };
    pull_stats st = { .nlayers = 1, .ndone = 1 };
    pull_layer ly = { .id = "cccccccccccc", .state = PULL_LAYER_COMPLETE };
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    ev.ref = "img:1";
    ev.stats = &st;
    ev.kind = PULL_EV_START;
    progress_event(p, &a, &ev);
    progress_event(p, &b, &ev);
    ev.kind = PULL_EV_LAYER;
    ev.layer = &ly;
    ev.changed = 1;
    progress_event(p, &a, &ev);
    progress_event(p, &b, &ev);       /* the same news: no redraw */
    ev.kind = PULL_EV_DONE;
    progress_event(p, &a, &ev);
    progress_event(p, &b, &ev);
    progress_free(p);
    fclose(f);
    ASSERT_CONTAINS(out, "web[0] +1 | pulling img:1\n");
    ASSERT_CONTAINS(out, "web[0] +1 | pulled img:1 (1 layer) in 0.0 s\n");
    /* one pulled line, and the layer row drawn twice: with the layer, and with the result */
    int pulled = 0, rows = 0;
    for (const char *c = out; (c = strstr(c, "| pulled ")) != NULL; c++) {
        pulled++;
    }
    for (const char *c = out; (c = strstr(c, "cccccccccccc: Pull complete")) != NULL; c++) {
        rows++;
    }
    ASSERT_INT_EQ(1, pulled);
    ASSERT_INT_EQ(2, rows);
}

int main(void)
{
    drv_err err;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-pull-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || script_open(&lua, "lua", &err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    log_set_level(LOG_ERROR);
    RUN(line_scanner_reads_the_members_it_needs);
    RUN(layer_states_and_durations);
    RUN(five_waiters_share_one_pull_and_its_result);
    RUN(a_new_waiter_after_the_result_starts_a_new_pull);
    RUN(error_inside_200_fails_the_pull);
    RUN(manifest_unknown_404_fails_at_once);
    RUN(transient_500_is_retried_then_succeeds);
    RUN(a_cut_stream_is_retried);
    RUN(no_progress_for_the_activity_timeout_aborts);
    RUN(the_total_timeout_aborts);
    RUN(one_waiter_cancels_the_others_keep_the_pull);
    RUN(the_last_waiter_cancels_the_request);
    RUN(closing_the_puller_mid_pull_calls_nothing);
    RUN(progress_lines_one_per_phase);
    RUN(progress_json_events);
    RUN(progress_tty_redraws_in_place);
    RUN(progress_tty_one_block_per_image_for_all_its_waiters);
    script_close(lua);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cleanup failed\n");
    }
    return test_summary();
}
