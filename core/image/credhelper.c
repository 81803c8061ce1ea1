/* credhelper.c: one Docker credential helper run (see credhelper.h). */
#include "credhelper.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include "esc.h"

#define PREFIX "docker-credential-"
#define NAME_MAX_LEN 100
#define STDERR_SHOWN 512       /* bytes of stderr quoted in a message */

struct credhelper {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t wreq;
    char *program;             /* "docker-credential-<name>" */
    char *input;
    size_t input_len;
    long timeout_ms;
    credhelper_cb cb;
    void *ud;
    credhelper_result res;
    int handles;               /* handles not yet closed: freed at 0 */
    int exited, out_eof, err_eof;
    int term_signal;
    int canceled, timed_out, overflow, done;
    char rbuf[4096];           /* read buffer (zeroed after stdout reads) */
};

int credhelper_name_ok(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > NAME_MAX_LEN) {
        return 0;
    }
    for (const char *c = name; *c != '\0'; c++) {
        int alnum = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9');
        if (!alnum && (c == name || (*c != '.' && *c != '_' && *c != '-'))) {
            return 0;
        }
    }
    return 1;
}

static void helper_free(credhelper *h)
{
    if (h->res.out.data != NULL) {
        explicit_bzero(h->res.out.data, h->res.out.cap);
    }
    buf_free(&h->res.out);
    buf_free(&h->res.err);
    if (h->input != NULL) {
        explicit_bzero(h->input, h->input_len);
    }
    free(h->input);
    free(h->program);
    explicit_bzero(h->rbuf, sizeof h->rbuf);
    free(h);
}

static void on_close(uv_handle_t *handle)
{
    credhelper *h = handle->data;
    if (--h->handles == 0) {
        helper_free(h);
    }
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle)) {
        uv_close(handle, on_close);
    }
}

/* SIGKILL to the helper's process group (it is a session leader), while
 * the group can still exist: after the leader is reaped, its pid may be
 * reused, but a live member keeps the group id from being reused. */
static void kill_group(credhelper *h)
{
    if (h->proc.pid > 0 && !h->exited) {
        kill(-h->proc.pid, SIGKILL);
    }
}

/* After the leader exited: what is left of its group (children holding
 * our pipes). Only while a pipe is open, i.e. some process holds it. */
static void kill_leftovers(credhelper *h)
{
    if (h->proc.pid > 0 && (!h->out_eof || !h->err_eof)) {
        kill(-h->proc.pid, SIGKILL);
    }
}

/* ": stderr: <escaped, cut>" when the helper wrote any. */
static void append_stderr(credhelper *h, buf *b)
{
    const char *s = buf_str(&h->res.err);
    size_t n = h->res.err.len;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) {
        n--;
    }
    while (n > 0 && (*s == '\n' || *s == '\r' || *s == ' ')) {
        s++;
        n--;
    }
    if (n == 0) {
        return;
    }
    buf_puts(b, ": ");
    esc_append(b, s, n > STDERR_SHOWN ? STDERR_SHOWN : n);
    if (n > STDERR_SHOWN || h->res.err_truncated) {
        buf_puts(b, "...");
    }
}

/* Stops reading stdout and stderr (what came so far is kept). */
static void close_pipes(credhelper *h)
{
    if (!h->out_eof) {
        h->out_eof = 1;
        close_handle((uv_handle_t *)&h->out);
    }
    if (!h->err_eof) {
        h->err_eof = 1;
        close_handle((uv_handle_t *)&h->err);
    }
}

static void maybe_finish(credhelper *h)
{
    if (h->done || !h->exited || !h->out_eof || !h->err_eof) {
        return;
    }
    h->done = 1;
    uv_timer_stop(&h->timer);
    if (!h->canceled) {
        drv_err e;
        int rc = 0;
        buf m = BUF_INIT;
        drv_err_clear(&e);
        if (h->timed_out) {
            if (h->timeout_ms % 1000 == 0) {
                buf_appendf(&m, "helper \"%s get\" timed out after %ld s", h->program,
                            h->timeout_ms / 1000);
            } else {
                buf_appendf(&m, "helper \"%s get\" timed out after %ld ms", h->program,
                            h->timeout_ms);
            }
        } else if (h->overflow) {
            buf_appendf(&m, "helper \"%s get\" wrote more than %d bytes on stdout", h->program,
                        CREDHELPER_OUTPUT_MAX);
        } else if (h->term_signal != 0) {
            buf_appendf(&m, "helper \"%s get\" was killed by signal %d", h->program,
                        h->term_signal);
        }
        if (m.len > 0) {
            append_stderr(h, &m);
            rc = drv_err_set(&e, DRV_EIMAGE, "%s", buf_str(&m));
        }
        buf_free(&m);
        h->cb(h->ud, rc, rc == 0 ? &h->res : NULL, rc == 0 ? NULL : &e);
    }
    close_handle((uv_handle_t *)&h->timer);
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    credhelper *h = proc->data;
    h->exited = 1;
    h->res.exit_status = (long)status;
    h->term_signal = term_signal;
    /* children it left behind holding our pipes would keep us waiting */
    kill_leftovers(h);
    close_handle((uv_handle_t *)proc);
    if (h->timed_out) {
        close_pipes(h);   /* else the pending timeout does it */
    }
    maybe_finish(h);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *b)
{
    credhelper *h = handle->data;
    (void)suggested;
    *b = uv_buf_init(h->rbuf, sizeof h->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    credhelper *h = stream->data;
    int is_out = stream == (uv_stream_t *)&h->out;
    if (nread > 0) {
        buf *dst = is_out ? &h->res.out : &h->res.err;
        size_t n = (size_t)nread;
        if (dst->len + n > CREDHELPER_OUTPUT_MAX) {
            n = CREDHELPER_OUTPUT_MAX - dst->len;
            if (is_out) {
                h->overflow = 1;
                kill_group(h);
            } else {
                h->res.err_truncated = 1;
            }
        }
        if (!h->canceled) {
            buf_append(dst, b->base, n);
        }
        if (is_out) {
            explicit_bzero(b->base, (size_t)nread);
        }
        if (!(is_out && h->overflow)) {
            return;
        }
    } else if (nread == 0) {
        return;
    }
    /* EOF, an error, or stdout over the cap: done with this pipe */
    if (is_out) {
        h->out_eof = 1;
    } else {
        h->err_eof = 1;
    }
    close_handle((uv_handle_t *)stream);
    maybe_finish(h);
}

static void on_write(uv_write_t *req, int status)
{
    credhelper *h = req->data;
    (void)status;   /* a helper that exits without reading: EPIPE, fine */
    close_handle((uv_handle_t *)&h->in);
}

static void on_timeout(uv_timer_t *timer)
{
    credhelper *h = timer->data;
    h->timed_out = 1;
    if (!h->exited) {
        kill_group(h);
        return;
    }
    /* exited, but something outside its group still holds a pipe */
    close_pipes(h);
    maybe_finish(h);
}

/* Marks every descriptor above stderr close-on-exec, so the helper gets
 * only its three pipes: libcurl's sockets (to dockerd, root-equivalent),
 * lock and state files are not created with O_CLOEXEC everywhere. Harmless
 * for this process: the flag only acts on exec, and libuv dup2()s the
 * stdio it hands a child. */
static void cloexec_all(void)
{
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
        return;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return;
    }
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end == '\0' && end != e->d_name && fd > 2 && fd != self) {
            int fl = fcntl((int)fd, F_GETFD);
            if (fl >= 0 && !(fl & FD_CLOEXEC)) {
                fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
            }
        }
    }
    closedir(d);
}

int credhelper_run(uv_loop_t *loop, const char *name, const char *input, long timeout_ms,
                   credhelper_cb cb, void *ud, credhelper **out, drv_err *err)
{
    if (!credhelper_name_ok(name)) {
        buf q = BUF_INIT;
        esc_str(&q, name != NULL ? name : "");
        int rc = drv_err_set(err, DRV_EIMAGE,
                             "credential helper name not allowed (want "
                             "[a-z0-9][a-z0-9._-]*): \"%s\"", buf_str(&q));
        buf_free(&q);
        return rc;
    }
    credhelper *h = drv_xcalloc(1, sizeof *h);
    size_t plen = strlen(PREFIX) + strlen(name) + 1;
    h->program = drv_xmalloc(plen);
    snprintf(h->program, plen, "%s%s", PREFIX, name);
    h->input = drv_xstrdup(input != NULL ? input : "");
    h->input_len = strlen(h->input);
    h->timeout_ms = timeout_ms > 0 ? timeout_ms : CREDHELPER_TIMEOUT_MS;
    h->loop = loop;
    h->cb = cb;
    h->ud = ud;
    h->proc.data = h->in.data = h->out.data = h->err.data = h->timer.data = h;
    h->wreq.data = h;

    uv_pipe_init(loop, &h->in, 0);
    uv_pipe_init(loop, &h->out, 0);
    uv_pipe_init(loop, &h->err, 0);
    uv_timer_init(loop, &h->timer);
    h->handles = 5;   /* in, out, err, timer, proc (initialised by uv_spawn) */

    char *args[] = { h->program, (char *)(uintptr_t)"get", NULL };
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&h->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&h->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&h->err;
    uv_process_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.exit_cb = on_exit_cb;
    opts.file = h->program;        /* no '/': found on PATH, never a shell */
    opts.args = args;
    opts.stdio_count = 3;
    opts.stdio = stdio;
    opts.flags = UV_PROCESS_DETACHED;   /* setsid: its own process group */

    cloexec_all();
    int r = uv_spawn(loop, &h->proc, &opts);
    if (r < 0) {
        if (r == UV_ENOENT) {
            drv_err_set(err, DRV_EIMAGE, "helper \"%s\" not found on PATH", h->program);
        } else {
            drv_err_set(err, DRV_EIMAGE, "cannot run helper \"%s\": %s", h->program,
                        uv_strerror(r));
        }
        h->done = 1;
        close_handle((uv_handle_t *)&h->proc);
        close_handle((uv_handle_t *)&h->in);
        close_handle((uv_handle_t *)&h->out);
        close_handle((uv_handle_t *)&h->err);
        close_handle((uv_handle_t *)&h->timer);
        return DRV_EIMAGE;
    }
    uv_read_start((uv_stream_t *)&h->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&h->err, on_alloc, on_read);
    if (h->input_len > 0) {
        uv_buf_t b = uv_buf_init(h->input, (unsigned int)h->input_len);
        if (uv_write(&h->wreq, (uv_stream_t *)&h->in, &b, 1, on_write) < 0) {
            close_handle((uv_handle_t *)&h->in);
        }
    } else {
        close_handle((uv_handle_t *)&h->in);
    }
    uv_timer_start(&h->timer, on_timeout, (uint64_t)h->timeout_ms, 0);
    *out = h;
    return 0;
}

void credhelper_cancel(credhelper *h)
{
    if (h == NULL || h->canceled) {
        return;
    }
    h->canceled = 1;
    if (h->done) {
        return;
    }
    if (!h->exited) {
        kill_group(h);
    }
    /* the output is of no use now; the process handle stays open until
     * the helper is reaped (closing it earlier would leave a zombie) */
    close_pipes(h);
    maybe_finish(h);
}
