/*
 * loop.c: see loop.h.
 */
#include "loop.h"

#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"

static const int stop_signals[DRV_LOOP_NSIGNALS] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

int64_t drv_raise_nofile(uint64_t target)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > target ? (rlim_t)target
                                                                       : rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            log_debug("open file limit raised from %llu to %llu", (unsigned long long)old,
                      (unsigned long long)want);
        } else {
            rl.rlim_cur = old;
            log_debug("open file limit stays %llu: cannot raise it to %llu",
                      (unsigned long long)old, (unsigned long long)want);
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : (int64_t)rl.rlim_cur;
}

void drv_process_setup(void)
{
    static int done;
    if (done) {
        return;
    }
    done = 1;
    signal(SIGPIPE, SIG_IGN);
    drv_raise_nofile(DRV_NOFILE_TARGET);
}

static void on_uv_signal(uv_signal_t *h, int signum)
{
    drv_loop *l = h->data;
    if (l->first_signal == 0) {
        l->first_signal = signum;
    }
    l->count++;
    if (l->on_signal != NULL) {
        l->on_signal(l->ud, signum, l->count);
    }
}

int drv_loop_init(drv_loop *l, uv_loop_t *uv, drv_loop_signal_cb on_signal, void *ud,
                  drv_err *err)
{
    memset(l, 0, sizeof *l);
    drv_process_setup();
    int rc = uv_loop_init(uv);
    if (rc != 0) {
        return drv_err_set(err, DRV_EINTERNAL, "loop: %s", uv_strerror(rc));
    }
    l->uv = uv;
    l->on_signal = on_signal;
    l->ud = ud;
    for (int i = 0; i < DRV_LOOP_NSIGNALS; i++) {
        uv_signal_init(uv, &l->sigs[i]);
        l->sigs[i].data = l;
        l->nsigs++;
        rc = uv_signal_start(&l->sigs[i], on_uv_signal, stop_signals[i]);
        if (rc != 0) {
            drv_loop_close(l);
            return drv_err_set(err, DRV_EINTERNAL, "loop: signal %d: %s", stop_signals[i],
                               uv_strerror(rc));
        }
    }
    return 0;
}

void drv_loop_stop_signals(drv_loop *l)
{
    for (int i = 0; i < l->nsigs; i++) {
        uv_signal_stop(&l->sigs[i]);
        uv_close((uv_handle_t *)&l->sigs[i], NULL);
    }
    l->nsigs = 0;
}

static void close_straggler(uv_handle_t *h, void *arg)
{
    int *n = arg;
    if (uv_is_closing(h)) {
        return;
    }
    log_debug("loop: closing a %s handle left open at shutdown", uv_handle_type_name(h->type));
    uv_close(h, NULL);
    (*n)++;
}

static void on_guard(uv_timer_t *t)
{
    uv_stop(t->loop);
}

int drv_loop_close(drv_loop *l)
{
    int stragglers = 0;
    uv_timer_t guard;
    if (l->uv == NULL) {
        return 0;
    }
    drv_loop_stop_signals(l);
    /* the close callbacks and deferred work the command left (an http
     * client's final close, ...); the unreferenced guard ends the wait when
     * an active handle nobody closes would keep the loop alive forever */
    uv_timer_init(l->uv, &guard);
    uv_timer_start(&guard, on_guard, DRV_LOOP_CLOSE_GRACE_MS, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(l->uv, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_walk(l->uv, close_straggler, &stragglers);
    uv_run(l->uv, UV_RUN_DEFAULT);     /* guard's close, stragglers' closes */
    if (uv_loop_close(l->uv) != 0) {
        log_debug("loop: closed with handles still open");
    }
    l->uv = NULL;
    return stragglers;
}
