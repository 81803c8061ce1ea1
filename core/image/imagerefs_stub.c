/* imagerefs_stub.c: TEMPORARY (dropped at merge): no-op image references
 * until the real imagerefs.c lands. */
#include "imagerefs.h"

#include <stdlib.h>

struct imagerefs {
    uv_timer_t timer;
    void (*cb)(void *ud);
    void *ud;
};

int imagerefs_open(imagerefs **out, const imagerefs_opts *o, drv_err *err)
{
    (void)err;
    imagerefs *r = drv_xcalloc(1, sizeof *r);
    uv_timer_init(o->loop, &r->timer);
    r->timer.data = r;
    *out = r;
    return 0;
}

int imagerefs_take(imagerefs *r, const char *holder, const char *ref, const char *id,
                   int acquired, drv_err *err)
{
    (void)r, (void)holder, (void)ref, (void)id, (void)acquired, (void)err;
    return 0;
}

void imagerefs_release(imagerefs *r, const char *holder)
{
    (void)r, (void)holder;
}

static void on_closed(uv_handle_t *h)
{
    imagerefs *r = h->data;
    void (*cb)(void *) = r->cb;
    void *ud = r->ud;
    free(r);
    if (cb != NULL) {
        cb(ud);
    }
}

void imagerefs_close(imagerefs *r, long max_wait_ms, void (*cb)(void *ud), void *ud)
{
    (void)max_wait_ms;
    r->cb = cb;
    r->ud = ud;
    uv_close((uv_handle_t *)&r->timer, on_closed);
}
