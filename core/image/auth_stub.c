/* auth_stub.c: TEMPORARY (dropped at merge): anonymous pulls until the real
 * auth.c lands. The callback still comes from the loop, never before
 * auth_resolve returns, and auth_cancel stops it. */
#include "auth.h"

#include <stdlib.h>

struct auth_req {
    uv_timer_t timer;
    auth_done_cb cb;
    void *ud;
};

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_timer(uv_timer_t *h)
{
    auth_req *r = h->data;
    r->cb(r->ud, 0, NULL, NULL);
    uv_close((uv_handle_t *)&r->timer, on_closed);
}

int auth_resolve(const auth_opts *o, const auth_query *q, auth_done_cb cb, void *ud,
                 auth_req **out, drv_err *err)
{
    (void)q;
    (void)err;
    auth_req *r = drv_xcalloc(1, sizeof *r);
    r->cb = cb;
    r->ud = ud;
    uv_timer_init(o->loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, 0, 0);
    if (out != NULL) {
        *out = r;
    }
    return 0;
}

void auth_cancel(auth_req *r)
{
    if (r != NULL && !uv_is_closing((uv_handle_t *)&r->timer)) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, on_closed);
    }
}
