/* test_loop.c: the command loop unit: RLIMIT_NOFILE raised and never
 * lowered, SIGPIPE ignored, the stop signals delivered with their count,
 * and the ordered shutdown (deferred closes run, stragglers closed). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "http.h"
#include "loop.h"
#include "test.h"

TEST(nofile_is_raised_to_the_hard_limit_and_never_lowered)
{
    struct rlimit rl, now;
    ASSERT_INT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
    ASSERT(rl.rlim_max >= 512);
    rlim_t want = rl.rlim_max > 4096 ? 4096 : rl.rlim_max;
    struct rlimit low = { 256, rl.rlim_max };
    ASSERT_INT_EQ(0, setrlimit(RLIMIT_NOFILE, &low));
    ASSERT_INT_EQ((int64_t)want, drv_raise_nofile(4096));
    ASSERT_INT_EQ(0, getrlimit(RLIMIT_NOFILE, &now));
    ASSERT_INT_EQ(want, now.rlim_cur);
    ASSERT_INT_EQ(rl.rlim_max, now.rlim_max);
    /* a smaller target does not lower it */
    ASSERT_INT_EQ((int64_t)want, drv_raise_nofile(100));
    ASSERT_INT_EQ(0, getrlimit(RLIMIT_NOFILE, &now));
    ASSERT_INT_EQ(want, now.rlim_cur);
    ASSERT_INT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
}

TEST(process_setup_ignores_sigpipe_and_raises_nofile)
{
    struct rlimit rl, now;
    struct sigaction sa;
    ASSERT_INT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
    struct rlimit low = { 256, rl.rlim_max };
    ASSERT_INT_EQ(0, setrlimit(RLIMIT_NOFILE, &low));
    signal(SIGPIPE, SIG_DFL);
    drv_process_setup();
    ASSERT_INT_EQ(0, sigaction(SIGPIPE, NULL, &sa));
    ASSERT(sa.sa_handler == SIG_IGN);
    ASSERT_INT_EQ(0, getrlimit(RLIMIT_NOFILE, &now));
    rlim_t want = rl.rlim_max > DRV_NOFILE_TARGET ? DRV_NOFILE_TARGET : rl.rlim_max;
    ASSERT_INT_EQ(want, now.rlim_cur);
}

typedef struct sigrec {
    drv_loop *lp;
    int got[8];
    int counts[8];
    int n;
    uv_timer_t kick;
} sigrec;

static const int to_send[4] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };

static void on_sig(void *ud, int signum, int count)
{
    sigrec *s = ud;
    s->got[s->n] = signum;
    s->counts[s->n] = count;
    s->n++;
    if (s->n < 4) {
        uv_kill(getpid(), to_send[s->n]);   /* the next one, from the loop */
    } else {
        uv_close((uv_handle_t *)&s->kick, NULL);
        drv_loop_stop_signals(s->lp);         /* uv_run can now return */
    }
}

static void kick(uv_timer_t *t)
{
    (void)t;
    uv_kill(getpid(), to_send[0]);
}

TEST(stop_signals_reach_the_command_with_their_count)
{
    uv_loop_t uv;
    drv_loop lp;
    sigrec s;
    memset(&s, 0, sizeof s);
    s.lp = &lp;
    ASSERT_INT_EQ(0, drv_loop_init(&lp, &uv, on_sig, &s, NULL));
    uv_timer_init(&uv, &s.kick);
    uv_timer_start(&s.kick, kick, 0, 0);
    uv_run(&uv, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, drv_loop_close(&lp));
    ASSERT_INT_EQ(4, s.n);
    for (int i = 0; i < 4; i++) {
        ASSERT_INT_EQ(to_send[i], s.got[i]);
        ASSERT_INT_EQ(i + 1, s.counts[i]);
    }
    ASSERT_INT_EQ(SIGTERM, lp.first_signal);
}

typedef struct closed { int calls; } closed;

static void on_closed(uv_handle_t *h)
{
    closed *c = h->data;
    c->calls++;
}

static void on_http_done(void *ud, http_req *r, int rc, long status, const buf *body,
                         const drv_err *err)
{
    int *got = ud;
    (void)r;
    (void)status;
    (void)body;
    (void)err;
    *got = rc;
}

static void on_timer_noop(uv_timer_t *t)
{
    (void)t;
}

TEST(shutdown_runs_deferred_closes_and_closes_stragglers)
{
    uv_loop_t uv;
    drv_loop lp;
    uv_timer_t left, closing;
    http_client *c = NULL;
    http_req *r = NULL;
    closed cl = { 0 };
    int got = 1;
    ASSERT_INT_EQ(0, drv_loop_init(&lp, &uv, NULL, NULL, NULL));
    /* a client closed just before shutdown frees itself from a 0 ms timer */
    ASSERT_INT_EQ(0, http_client_new(&c, &uv, NULL));
    http_opts o = { .url = "http://docker/_ping", .unix_socket = "/nonexistent/docker.sock",
                    .on_done = on_http_done, .ud = &got };
    ASSERT_INT_EQ(0, http_start(c, &o, &r, NULL));
    http_client_close(c);
    /* a handle being closed: its close callback runs */
    uv_timer_init(&uv, &closing);
    closing.data = &cl;
    uv_close((uv_handle_t *)&closing, on_closed);
    /* a repeating timer nobody closes: a straggler, closed by force */
    uv_timer_init(&uv, &left);
    uv_timer_start(&left, on_timer_noop, 1000, 1000);
    ASSERT_INT_EQ(1, drv_loop_close(&lp));
    ASSERT(lp.uv == NULL);
    ASSERT_INT_EQ(1, cl.calls);
    ASSERT_INT_EQ(DRV_ECANCELED, got);
    ASSERT_INT_EQ(0, drv_loop_close(&lp));   /* twice: nothing left to do */
}

int main(void)
{
    RUN(nofile_is_raised_to_the_hard_limit_and_never_lowered);
    RUN(process_setup_ignores_sigpipe_and_raises_nofile);
    RUN(stop_signals_reach_the_command_with_their_count);
    RUN(shutdown_runs_deferred_closes_and_closes_stragglers);
    return test_summary();
}
