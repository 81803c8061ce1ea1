/* auth.c: registry credentials for one pull (see auth.h).
 *
 * The decision (which source answers, config.json semantics, the header) is
 * lua/drv/registryauth.lua's; here: reading docker.auth.config, running a
 * helper (credhelper.c), soft fail, and calling back from the loop. Nothing
 * secret is logged or put into a message: the header, the task's password,
 * the config text and a helper's stdout are zeroed when dropped. */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "credhelper.h"
#include "esc.h"
#include "log.h"

#define AUTH_CONFIG_MAX (1024 * 1024)   /* bytes of docker.auth.config read */

struct auth_req {
    uv_loop_t *loop;
    script *script;
    long helper_timeout_ms;
    char *registry;
    char *image;
    int soft_fail;
    auth_done_cb cb;
    void *ud;
    uv_timer_t timer;          /* completes the synchronous answers from the loop */
    credhelper *helper;        /* running, or NULL */
    char *source;              /* which source answered (no secret) */
    char *input;               /* the helper's stdin */
    int rc;
    char *header;
    drv_err err;
    int done;                  /* the callback ran or is running */
    int canceled;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? drv_xstrdup(s) : NULL;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void on_timer_close(uv_handle_t *handle)
{
    auth_req *r = handle->data;
    free_secret(r->header);
    free(r->registry);
    free(r->image);
    free(r->source);
    free(r->input);
    free(r);
}

static void req_close(auth_req *r)
{
    uv_timer_stop(&r->timer);
    if (!uv_is_closing((uv_handle_t *)&r->timer)) {
        uv_close((uv_handle_t *)&r->timer, on_timer_close);
    }
}

/* Hands the outcome to the caller (soft fail applied), then frees. */
static void deliver(auth_req *r)
{
    r->done = 1;
    if (r->rc < 0 && r->soft_fail) {
        buf q = BUF_INIT;
        buf m = BUF_INIT;
        esc_str(&q, r->image != NULL ? r->image : r->registry);
        esc_str(&m, r->err.msg);
        log_warn("%s; auth_soft_fail is set: pulling \"%s\" without credentials", buf_str(&m),
                 buf_str(&q));
        buf_free(&q);
        buf_free(&m);
        free_secret(r->header);
        r->header = NULL;
        r->rc = 0;
        drv_err_clear(&r->err);
    }
    if (r->rc == 0) {
        if (r->source != NULL) {
            log_debug("%s: %s", r->source, r->header != NULL ? "credentials" : "anonymous");
        }
        r->cb(r->ud, 0, r->header, NULL);
    } else {
        r->cb(r->ud, r->rc, NULL, &r->err);
    }
    req_close(r);
}

static void on_timer(uv_timer_t *timer)
{
    deliver(timer->data);
}

/* Records the outcome and delivers it from the loop. */
static void finish_later(auth_req *r)
{
    uv_timer_start(&r->timer, on_timer, 0, 0);
}

/* Takes the Lua answer: a header, a helper to run, or anonymous. */
static void take(auth_req *r, script_auth *a)
{
    free(r->source);
    r->source = a->source;
    a->source = NULL;
    r->header = a->header;
    a->header = NULL;
}

static void on_helper(void *ud, int rc, const credhelper_result *res, const drv_err *err)
{
    auth_req *r = ud;
    r->helper = NULL;
    if (rc < 0) {
        r->rc = drv_err_set(&r->err, DRV_EIMAGE, "%s: %s", r->source ? r->source : "registry auth",
                            err != NULL ? err->msg : "helper failed");
        deliver(r);
        return;
    }
    char status[32];
    snprintf(status, sizeof status, "%ld", res->exit_status);
    script_field f[] = {
        { "source", r->source, r->source ? strlen(r->source) : 0 },
        { "input", r->input, r->input ? strlen(r->input) : 0 },
        { "status", status, strlen(status) },
        { "stdout", buf_str(&res->out), res->out.len },
        { "stderr", buf_str(&res->err), res->err.len },
    };
    script_auth a;
    r->rc = script_registry_auth(r->script, "helper_output", f, sizeof f / sizeof f[0], &a,
                                 &r->err);
    if (r->rc == 0) {
        take(r, &a);
        script_auth_free(&a);
    }
    deliver(r);
}

/* Reads docker.auth.config, at most AUTH_CONFIG_MAX bytes, a regular file
 * only (a FIFO would block the loop). On failure `why` says what happened. */
static int read_config(const char *path, buf *out, buf *why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        buf_appendf(why, "cannot read: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        buf_appendf(why, "cannot read: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        buf_puts(why, "not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_size > AUTH_CONFIG_MAX) {
        buf_appendf(why, "larger than %d bytes", AUTH_CONFIG_MAX);
        close(fd);
        return -1;
    }
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            buf_appendf(why, "cannot read: %s", strerror(errno));
            break;
        }
        if (n == 0) {
            break;
        }
        if (out->len + (size_t)n > AUTH_CONFIG_MAX) {
            buf_appendf(why, "larger than %d bytes", AUTH_CONFIG_MAX);
            break;
        }
        buf_append(out, chunk, (size_t)n);
    }
    explicit_bzero(chunk, sizeof chunk);
    close(fd);
    return why->len > 0 ? -1 : 0;
}

static void zero_buf(buf *b)
{
    if (b->data != NULL) {
        explicit_bzero(b->data, b->cap);
    }
    buf_free(b);
}

#define FIELD(k, v) { (k), (v), (v) != NULL ? strlen(v) : 0 }

int auth_resolve(const auth_opts *o, const auth_query *q, auth_done_cb cb, void *ud,
                 auth_req **out, drv_err *err)
{
    if (o == NULL || o->loop == NULL || o->script == NULL || q == NULL || q->registry == NULL ||
        cb == NULL || out == NULL) {
        return drv_err_set(err, DRV_EINTERNAL, "registry auth: missing arguments");
    }
    auth_req *r = drv_xcalloc(1, sizeof *r);
    r->loop = o->loop;
    r->script = o->script;
    r->helper_timeout_ms = o->helper_timeout_ms;
    r->registry = drv_xstrdup(q->registry);
    r->image = dup_or_null(q->image);
    r->soft_fail = q->soft_fail;
    r->cb = cb;
    r->ud = ud;
    uv_timer_init(o->loop, &r->timer);
    r->timer.data = r;

    buf config = BUF_INIT;
    buf why = BUF_INIT;
    int have_config = 0;
    if (o->config_path != NULL) {
        have_config = read_config(o->config_path, &config, &why) == 0;
    }
    script_field f[] = {
        FIELD("registry", q->registry),
        FIELD("username", q->username),
        FIELD("password", q->password),
        FIELD("email", q->email),
        FIELD("server", q->server),
        FIELD("config_path", o->config_path),
        { "config", have_config ? buf_str(&config) : NULL, config.len },
        { "config_error", why.len > 0 ? buf_str(&why) : NULL, why.len },
        FIELD("helper", o->helper),
    };
    script_auth a;
    r->rc = script_registry_auth(o->script, "resolve", f, sizeof f / sizeof f[0], &a, &r->err);
    zero_buf(&config);
    buf_free(&why);
    if (r->rc == 0) {
        if (a.helper != NULL) {
            drv_err herr;
            r->source = a.source;
            a.source = NULL;
            r->input = a.input;
            a.input = NULL;
            int rc = credhelper_run(o->loop, a.helper, r->input, o->helper_timeout_ms,
                                    on_helper, r, &r->helper, &herr);
            if (rc < 0) {
                r->rc = drv_err_set(&r->err, DRV_EIMAGE, "%s: %s",
                                    r->source ? r->source : "registry auth", herr.msg);
            }
        } else {
            take(r, &a);
        }
        script_auth_free(&a);
    }
    if (r->helper == NULL) {
        finish_later(r);
    }
    *out = r;
    return 0;
}

void auth_cancel(auth_req *r)
{
    if (r == NULL || r->done || r->canceled) {
        return;
    }
    r->canceled = 1;
    if (r->helper != NULL) {
        credhelper_cancel(r->helper);
        r->helper = NULL;
    }
    req_close(r);
}
