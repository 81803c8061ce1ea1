/* pull.c: de-duplicated registry pulls with progress (see pull.h). */
#include "pull.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "lines.h"
#include "log.h"

#define DEFAULT_TIMEOUT_MS 300000L
#define DEFAULT_ACTIVITY_MS 120000L
#define DEFAULT_RETRY_MS 1000L
#define INSPECT_TIMEOUT_MS 30000L
#define PULL_MAX_LINE ((size_t)256 * 1024)

/* --- durations and references -------------------------------------------------- */

void pull_ref(buf *out, const char *repo, const char *tag)
{
    buf_puts(out, repo != NULL ? repo : "");
    if (tag != NULL && tag[0] != '\0') {
        buf_puts(out, strncmp(tag, "sha256:", 7) == 0 ? "@" : ":");
        buf_puts(out, tag);
    }
}

void pull_duration(buf *out, long ms)
{
    if (ms < 0) {
        ms = 0;
    }
    if (ms < 1000) {
        buf_appendf(out, "%ldms", ms);
        return;
    }
    long s = ms / 1000, frac = ms % 1000;
    long h = s / 3600, m = (s / 60) % 60;
    s %= 60;
    if (h > 0) {
        buf_appendf(out, "%ldh", h);
    }
    if (h > 0 || m > 0) {
        buf_appendf(out, "%ldm", m);
    }
    if (frac == 0) {
        buf_appendf(out, "%lds", s);
        return;
    }
    char f[8];
    snprintf(f, sizeof f, "%03ld", frac);
    size_t n = strlen(f);
    while (n > 0 && f[n - 1] == '0') {
        f[--n] = '\0';
    }
    buf_appendf(out, "%ld.%ss", s, f);
}

/* --- layer states ------------------------------------------------------------------ */

static const char *const STATE_NAMES[] = {
    [PULL_LAYER_NONE] = "",
    [PULL_LAYER_PULLING_FS] = "Pulling fs layer",
    [PULL_LAYER_WAITING] = "Waiting",
    [PULL_LAYER_DOWNLOADING] = "Downloading",
    [PULL_LAYER_VERIFYING] = "Verifying Checksum",
    [PULL_LAYER_DOWNLOADED] = "Download complete",
    [PULL_LAYER_EXTRACTING] = "Extracting",
    [PULL_LAYER_COMPLETE] = "Pull complete",
    [PULL_LAYER_EXISTS] = "Already exists",
};

const char *pull_layer_state_name(pull_layer_state s)
{
    if ((size_t)s >= sizeof STATE_NAMES / sizeof STATE_NAMES[0]) {
        return "";
    }
    return STATE_NAMES[s];
}

pull_layer_state pull_layer_state_of(const char *status)
{
    for (size_t i = 1; i < sizeof STATE_NAMES / sizeof STATE_NAMES[0]; i++) {
        if (strcmp(status, STATE_NAMES[i]) == 0) {
            return (pull_layer_state)i;
        }
    }
    return PULL_LAYER_NONE;
}

/* --- the line scanner ----------------------------------------------------------------
 * The pull stream's objects are read with the json.h scanner: the few
 * members needed (status, id, error, errorDetail.message,
 * progressDetail.current/total) are decoded and the rest skipped. Measured
 * on a "Downloading" line (with its progress bar): 0.5 us a line, against
 * 4 us through the Lua decoder (driver.decode "stream_line"). */

typedef struct line_parse {
    pull_line *l;
    long status_at, error_at, detail_at;   /* offsets into store, -1 */
} line_parse;

static int progress_member(json_scan *j, const char *key, void *ud)
{
    pull_line *l = ud;
    long long *slot = strcmp(key, "current") == 0 ? &l->current
                      : strcmp(key, "total") == 0 ? &l->total : NULL;
    if (slot == NULL || json_peek(j) == 'n') {
        return 1;
    }
    json_num v;
    int rc = json_number(j, &v);
    if (rc == 0) {
        *slot = v.i;    /* the integer part */
    }
    return rc;
}

/* Appends a string value to the store (NUL-separated); its offset in *at. */
static int store_string(json_scan *j, pull_line *l, long *at)
{
    if (json_peek(j) != '"') {
        return 1;       /* not a string: skipped */
    }
    if (l->store.len > 0) {
        buf_append(&l->store, "", 1);   /* keep the previous NUL */
    }
    *at = (long)l->store.len;
    if (json_string(j, &l->store) < 0) {
        return -1;
    }
    return 0;
}

static int detail_member(json_scan *j, const char *key, void *ud)
{
    line_parse *p = ud;
    if (strcmp(key, "message") == 0) {
        return store_string(j, p->l, &p->detail_at);
    }
    return 1;
}

static int line_member(json_scan *j, const char *key, void *ud)
{
    line_parse *p = ud;
    pull_line *l = p->l;
    if (strcmp(key, "status") == 0) {
        return store_string(j, l, &p->status_at);
    }
    if (strcmp(key, "error") == 0) {
        return store_string(j, l, &p->error_at);
    }
    if (strcmp(key, "id") == 0) {
        if (json_peek(j) != '"') {
            return 1;
        }
        buf id = BUF_INIT;
        int rc = json_string(j, &id);
        snprintf(l->id, sizeof l->id, "%s", buf_str(&id));
        buf_free(&id);
        return rc;
    }
    if (strcmp(key, "progressDetail") == 0 && json_peek(j) == '{') {
        return json_object(j, progress_member, l);
    }
    if (strcmp(key, "errorDetail") == 0 && json_peek(j) == '{') {
        return json_object(j, detail_member, p);
    }
    return 1;
}

void pull_line_init(pull_line *l)
{
    memset(l, 0, sizeof *l);
    l->status = "";
    l->current = l->total = -1;
}

int pull_line_parse(pull_line *l, const char *s, size_t n, drv_err *err)
{
    json_scan j;
    line_parse p = { .l = l, .status_at = -1, .error_at = -1, .detail_at = -1 };
    buf_reset(&l->store);
    l->status = "";
    l->error = NULL;
    l->id[0] = '\0';
    l->current = l->total = -1;
    if (json_scan_init(&j, s, n) < 0 || json_object(&j, line_member, &p) < 0 ||
        json_end(&j) < 0) {
        return drv_err_set(err, DRV_EINVALID, "pull stream: not a JSON object: \"%.*s\"",
                           (int)(n > 80 ? 80 : n), s);
    }
    /* strings are NUL-separated in the store (json.h refuses "\u0000"):
     * point at them now that it no longer moves */
    if (p.status_at >= 0) {
        l->status = l->store.data + p.status_at;
    }
    if (p.detail_at >= 0) {
        l->error = l->store.data + p.detail_at;
    } else if (p.error_at >= 0) {
        l->error = l->store.data + p.error_at;
    }
    return 0;
}

void pull_line_free(pull_line *l)
{
    buf_free(&l->store);
}

/* --- the puller ------------------------------------------------------------------------ */

typedef enum {
    PH_REQUEST,        /* the Engine pull is streaming */
    PH_INSPECT,        /* confirming with an inspect */
    PH_BACKOFF,        /* waiting to retry */
    PH_DONE,           /* result delivered, or cancelled: winding down */
} phase;

typedef enum {
    CUT_NONE, CUT_ACTIVITY, CUT_TOTAL, CUT_ABANDON,
} cut_reason;

typedef struct pull_entry pull_entry;

struct pull_waiter {
    pull_entry *e;
    pull_event_cb ev;
    pull_done_cb done;
    void *ud;
    int replay;          /* joined late: replay the layers before the next event */
    int cancelled;
};

struct pull_entry {
    puller *p;
    pull_entry *next;
    char *key;           /* "repo:tag" (dedup) */
    char *ref;           /* for messages */
    char *repo, *tag, *auth;
    long timeout_ms, activity_ms;

    pull_waiter **waiters;
    size_t nwaiters, wcap;
    int delivering;

    phase ph;
    cut_reason cut;
    http_req *req;
    int attempt;
    lines lines;
    pull_line line;
    char *stream_error;  /* the stream's error line, this attempt */
    int saw_final;       /* "Status: ..." seen, this attempt */
    drv_err last;        /* why the last attempt failed */

    pull_layer *layers;
    size_t nlayers, lcap;
    pull_stats stats;

    uint64_t started;
    uv_timer_t timer;    /* activity, backoff, deferred work */
    uv_timer_t total;    /* image_pull_timeout */
    int handles;         /* open handles */
    int closing;
};

struct puller {
    puller_opts o;
    pull_entry *entries;     /* running, and winding down */
    unsigned long requests;
    int closing;
};

static void start_attempt(pull_entry *e);

int puller_new(puller **out, const puller_opts *o, drv_err *err)
{
    if (o == NULL || o->loop == NULL || o->docker == NULL) {
        return drv_err_set(err, DRV_EINTERNAL, "puller: no loop or docker");
    }
    puller *p = drv_xcalloc(1, sizeof *p);
    p->o = *o;
    if (p->o.retry_base_ms <= 0) {
        p->o.retry_base_ms = DEFAULT_RETRY_MS;
    }
    *out = p;
    return 0;
}

unsigned long puller_requests(const puller *p)
{
    return p->requests;
}

static void puller_maybe_free(puller *p)
{
    if (p->closing && p->entries == NULL) {
        free(p);
    }
}

static void entry_closed(uv_handle_t *h)
{
    pull_entry *e = h->data;
    if (--e->handles > 0) {
        return;
    }
    puller *p = e->p;
    for (pull_entry **pp = &p->entries; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    for (size_t i = 0; i < e->nwaiters; i++) {
        free(e->waiters[i]);
    }
    free(e->waiters);
    free(e->key);
    free(e->ref);
    free(e->repo);
    free(e->tag);
    if (e->auth != NULL) {
        memset(e->auth, 0, strlen(e->auth));
        free(e->auth);
    }
    free(e->stream_error);
    free(e->layers);
    lines_free(&e->lines);
    pull_line_free(&e->line);
    free(e);
    puller_maybe_free(p);
}

/* Frees the entry once nothing is in flight: closes its timers. */
static void entry_release(pull_entry *e)
{
    if (e->req != NULL || e->closing || e->delivering) {
        return;
    }
    e->closing = 1;
    uv_close((uv_handle_t *)&e->timer, entry_closed);
    uv_close((uv_handle_t *)&e->total, entry_closed);
}

/* Drops cancelled waiters (not while delivering to them). */
static void sweep(pull_entry *e)
{
    if (e->delivering) {
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < e->nwaiters; i++) {
        if (e->waiters[i]->cancelled) {
            free(e->waiters[i]);
        } else {
            e->waiters[k++] = e->waiters[i];
        }
    }
    e->nwaiters = k;
}

static uint64_t elapsed(const pull_entry *e)
{
    return uv_now(e->p->o.loop) - e->started;
}

static void deliver_one(pull_entry *e, pull_waiter *w, pull_event *ev)
{
    if (w->cancelled || w->ev == NULL) {
        return;
    }
    if (w->replay) {
        w->replay = 0;
        for (size_t i = 0; i < e->nlayers && !w->cancelled; i++) {
            pull_event r = *ev;
            r.kind = PULL_EV_LAYER;
            r.layer = &e->layers[i];
            r.changed = 1;
            if (ev->kind == PULL_EV_LAYER && ev->layer == &e->layers[i]) {
                continue;    /* the event itself follows */
            }
            w->ev(w->ud, &r);
        }
        if (w->cancelled) {
            return;
        }
    }
    w->ev(w->ud, ev);
}

static void deliver(pull_entry *e, pull_event *ev)
{
    ev->ref = e->ref;
    ev->stats = &e->stats;
    ev->elapsed_ms = elapsed(e);
    e->delivering++;
    for (size_t i = 0; i < e->nwaiters; i++) {
        deliver_one(e, e->waiters[i], ev);
    }
    e->delivering--;
    sweep(e);
}

static size_t live_waiters(const pull_entry *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nwaiters; i++) {
        n += !e->waiters[i]->cancelled;
    }
    return n;
}

/* The result, to every waiter, each once; then the entry winds down. A
 * waiter's done callback may cancel another waiter still to be told: that
 * one is then not told. */
static void complete(pull_entry *e, int rc, const char *id, const drv_err *err)
{
    e->ph = PH_DONE;
    uv_timer_stop(&e->timer);
    uv_timer_stop(&e->total);
    /* off the dedup list: a new waiter starts a new pull */
    if (e->key != NULL) {
        free(e->key);
        e->key = NULL;
    }
    e->delivering++;
    for (size_t i = 0; i < e->nwaiters; i++) {
        pull_waiter *w = e->waiters[i];
        if (!w->cancelled) {
            w->cancelled = 1;     /* told: no later callback */
            w->done(w->ud, rc, id, &e->stats, err);
        }
    }
    e->delivering--;
    sweep(e);
    entry_release(e);
}

/* --- the stream ----------------------------------------------------------------------- */

static pull_layer *layer_for(pull_entry *e, const char *id)
{
    for (size_t i = 0; i < e->nlayers; i++) {
        if (strcmp(e->layers[i].id, id) == 0) {
            return &e->layers[i];
        }
    }
    if (e->nlayers == e->lcap) {
        size_t cap = e->lcap ? e->lcap * 2 : 8;
        pull_layer *n = realloc(e->layers, cap * sizeof *n);
        if (n == NULL) {
            abort();
        }
        e->layers = n;
        e->lcap = cap;
    }
    pull_layer *l = &e->layers[e->nlayers++];
    memset(l, 0, sizeof *l);
    snprintf(l->id, sizeof l->id, "%s", id);
    return l;
}

static void recount(pull_entry *e)
{
    pull_stats *s = &e->stats;
    s->nlayers = e->nlayers;
    s->ndone = s->nexisting = 0;
    s->bytes_done = s->bytes_total = 0;
    for (size_t i = 0; i < e->nlayers; i++) {
        const pull_layer *l = &e->layers[i];
        s->bytes_total += l->size;
        switch (l->state) {
        case PULL_LAYER_DOWNLOADING:
            s->bytes_done += l->current > 0 ? l->current : 0;
            break;
        case PULL_LAYER_VERIFYING:
        case PULL_LAYER_DOWNLOADED:
        case PULL_LAYER_EXTRACTING:
            s->bytes_done += l->size;
            break;
        case PULL_LAYER_COMPLETE:
            s->bytes_done += l->size;
            s->ndone++;
            break;
        case PULL_LAYER_EXISTS:
            s->ndone++;
            s->nexisting++;
            break;
        default:
            break;
        }
    }
}

static void arm_activity(pull_entry *e);

static int on_line(void *ud, const char *s, size_t n)
{
    pull_entry *e = ud;
    drv_err err;
    if (e->ph != PH_REQUEST) {
        return 0;
    }
    /* any line is progress */
    if (e->cut == CUT_NONE) {
        arm_activity(e);
    }
    if (pull_line_parse(&e->line, s, n, &err) < 0) {
        log_debug("pull %s: %s", e->ref, err.msg);
        return 0;       /* a line we cannot read is not worth failing the pull */
    }
    const pull_line *l = &e->line;
    if (l->error != NULL) {
        if (e->stream_error == NULL) {
            e->stream_error = drv_xstrdup(l->error);
        }
        return 0;
    }
    pull_layer_state st = pull_layer_state_of(l->status);
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    if (st != PULL_LAYER_NONE && l->id[0] != '\0') {
        pull_layer *ly = layer_for(e, l->id);
        ev.changed = ly->state != st;
        ly->state = st;
        if (st == PULL_LAYER_DOWNLOADING || st == PULL_LAYER_EXTRACTING) {
            ly->current = l->current > 0 ? l->current : 0;
            ly->total = l->total > 0 ? l->total : 0;
            if (st == PULL_LAYER_DOWNLOADING && l->total > 0) {
                ly->size = l->total;
            }
        } else {
            ly->current = ly->total = 0;
        }
        if (st == PULL_LAYER_COMPLETE) {
            e->stats.fresh = 1;
        }
        recount(e);
        ev.kind = PULL_EV_LAYER;
        ev.layer = ly;
    } else {
        if (strncmp(l->status, "Status: ", 8) == 0) {
            e->saw_final = 1;
            if (strncmp(l->status + 8, "Downloaded newer image", 22) == 0) {
                e->stats.fresh = 1;
            }
        }
        ev.kind = PULL_EV_STATUS;
        ev.status = l->status;
    }
    deliver(e, &ev);
    return 0;
}

static void on_activity_timeout(uv_timer_t *h);

static void arm_activity(pull_entry *e)
{
    uv_timer_start(&e->timer, on_activity_timeout, (uint64_t)e->activity_ms, 0);
}

static int on_pull_data(void *ud, const char *data, size_t len)
{
    pull_entry *e = ud;
    drv_err err;
    if (lines_feed(&e->lines, data, len, &err) < 0) {
        log_debug("pull %s: %s", e->ref, err.msg);
        return DRV_EINVALID;
    }
    return 0;
}

/* 1 when Docker's message says retrying cannot help. */
static int permanent_message(const char *m)
{
    static const char *const words[] = {
        "not found", "manifest unknown", "repository does not exist", "unauthorized",
        "authentication required", "denied", "invalid reference format",
        /* a login-only registry asked anonymously (plain HTTP, and a TLS
         * registry on loopback that dockerd retried over HTTP), and
         * certificates dockerd does not accept */
        "no basic auth credentials", "HTTP request to an HTTPS server", "x509:",
    };
    if (m == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (strcasestr(m, words[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

static void on_backoff(uv_timer_t *h)
{
    pull_entry *e = h->data;
    if (e->ph == PH_BACKOFF) {
        start_attempt(e);
    }
}

/* The attempt failed with `why`: retry when it may help and time allows,
 * else fail everyone. */
static void attempt_failed(pull_entry *e, int transient, const drv_err *why)
{
    e->last = *why;
    long delay = e->p->o.retry_base_ms << (e->attempt > 1 ? e->attempt - 1 : 0);
    uint64_t left = (uint64_t)e->timeout_ms > elapsed(e) ? (uint64_t)e->timeout_ms - elapsed(e) : 0;
    if (!transient || e->attempt >= PULL_MAX_ATTEMPTS || (uint64_t)delay >= left ||
        live_waiters(e) == 0) {
        complete(e, why->code, NULL, why);
        return;
    }
    log_debug("%s; retrying in %ld ms (attempt %d of %d)", why->msg, delay, e->attempt + 1,
              PULL_MAX_ATTEMPTS);
    e->ph = PH_BACKOFF;
    pull_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = PULL_EV_RETRY;
    ev.attempt = e->attempt + 1;
    ev.delay_ms = delay;
    ev.err = why;
    deliver(e, &ev);
    if (e->ph == PH_BACKOFF) {
        uv_timer_start(&e->timer, on_backoff, (uint64_t)delay, 0);
    }
}

static void on_inspect(void *ud, http_req *r, int rc, long status, const buf *body,
                       const drv_err *cause)
{
    pull_entry *e = ud;
    (void)r;
    e->req = NULL;
    if (e->ph != PH_INSPECT) {
        entry_release(e);
        return;
    }
    drv_err err;
    if (rc == DRV_ECANCELED) {
        if (e->cut == CUT_TOTAL) {
            buf d = BUF_INIT;
            pull_duration(&d, e->timeout_ms);
            drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": timed out after %s (image_pull_timeout)",
                        e->ref, buf_str(&d));
            buf_free(&d);
            complete(e, DRV_EIMAGE, NULL, &err);
        } else {
            e->ph = PH_DONE;
            complete(e, DRV_ECANCELED, NULL, cause);
        }
        return;
    }
    if (rc < 0) {
        drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": inspect after the pull: %s", e->ref,
                    cause != NULL ? cause->msg : "no answer");
        complete(e, DRV_EIMAGE, NULL, &err);
        return;
    }
    decoded d;
    memset(&d, 0, sizeof d);
    if (status == 200 &&
        script_decode(e->p->o.script, "image_inspect", status, buf_str(body), &d, NULL) == 0 &&
        d.id != NULL) {
        char *id = d.id;
        d.id = NULL;
        decoded_free(&d);
        complete(e, 0, id, NULL);
        free(id);
        return;
    }
    decoded_free(&d);
    drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": docker reported the pull done but the image "
                "is not there (inspect: HTTP %ld)", e->ref, status);
    complete(e, DRV_EIMAGE, NULL, &err);
}

static void start_inspect(pull_entry *e)
{
    drv_err err;
    e->ph = PH_INSPECT;
    uv_timer_stop(&e->timer);
    docker_cb cb = { .on_done = on_inspect, .ud = e, .timeout_ms = INSPECT_TIMEOUT_MS };
    if (docker_image_inspect(e->p->o.docker, e->ref, &cb, &e->req, &err) < 0) {
        drv_err f;
        drv_err_set(&f, DRV_EIMAGE, "pull \"%s\": %s", e->ref, err.msg);
        complete(e, DRV_EIMAGE, NULL, &f);
    }
}

static void on_pull_done(void *ud, http_req *r, int rc, long status, const buf *body,
                         const drv_err *cause)
{
    pull_entry *e = ud;
    (void)r;
    drv_err err;
    e->req = NULL;
    uv_timer_stop(&e->timer);
    if (rc == 0 && status >= 200 && status < 300) {
        (void)lines_finish(&e->lines, NULL);
    }
    lines_free(&e->lines);
    if (e->ph != PH_REQUEST) {
        entry_release(e);
        return;
    }
    if (rc == DRV_ECANCELED || (rc < 0 && e->cut != CUT_NONE)) {
        buf d = BUF_INIT;
        switch (e->cut) {
        case CUT_ACTIVITY:
            pull_duration(&d, e->activity_ms);
            drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": image pull aborted: no progress for %s",
                        e->ref, buf_str(&d));
            complete(e, DRV_EIMAGE, NULL, &err);
            break;
        case CUT_TOTAL:
            pull_duration(&d, e->timeout_ms);
            drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": timed out after %s (image_pull_timeout)",
                        e->ref, buf_str(&d));
            complete(e, DRV_EIMAGE, NULL, &err);
            break;
        default:
            drv_err_set(&err, DRV_ECANCELED, "pull \"%s\": cancelled", e->ref);
            complete(e, DRV_ECANCELED, NULL, &err);
            break;
        }
        buf_free(&d);
        return;
    }
    if (rc < 0) {
        /* no answer, a dropped connection, a cut stream: worth another try */
        drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": %s", e->ref,
                    cause != NULL && cause->msg[0] != '\0' ? cause->msg : "no answer from docker");
        attempt_failed(e, 1, &err);
        return;
    }
    if (status < 200 || status >= 300) {
        decoded d;
        memset(&d, 0, sizeof d);
        const char *msg = NULL;
        if (script_decode(e->p->o.script, "error", status, buf_str(body), &d, NULL) == 0) {
            msg = d.message;
        }
        if (msg != NULL) {
            drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": %s", e->ref, msg);
        } else {
            drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": docker: HTTP %ld: %.200s", e->ref, status,
                        buf_str(body));
        }
        int transient = status >= 500 && !permanent_message(msg);
        decoded_free(&d);
        attempt_failed(e, transient, &err);
        return;
    }
    if (e->stream_error != NULL) {
        drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": %s", e->ref, e->stream_error);
        attempt_failed(e, !permanent_message(e->stream_error), &err);
        return;
    }
    if (!e->saw_final) {
        drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": the progress stream ended before the pull "
                    "finished", e->ref);
        attempt_failed(e, 1, &err);
        return;
    }
    start_inspect(e);
}

static void on_activity_timeout(uv_timer_t *h)
{
    pull_entry *e = h->data;
    if (e->ph == PH_REQUEST && e->req != NULL) {
        e->cut = CUT_ACTIVITY;
        http_cancel(e->req);
    }
}

static void on_total_timeout(uv_timer_t *h)
{
    pull_entry *e = h->data;
    drv_err err;
    e->cut = CUT_TOTAL;
    if ((e->ph == PH_REQUEST || e->ph == PH_INSPECT) && e->req != NULL) {
        http_cancel(e->req);
        return;
    }
    if (e->ph == PH_BACKOFF) {
        buf d = BUF_INIT;
        pull_duration(&d, e->timeout_ms);
        drv_err_set(&err, DRV_EIMAGE, "pull \"%s\": timed out after %s (image_pull_timeout); "
                    "last failure: %s", e->ref, buf_str(&d), e->last.msg);
        buf_free(&d);
        complete(e, DRV_EIMAGE, NULL, &err);
    }
}

/* Deferred: a start that failed before any request (reported from the
 * loop), or the last waiter gone (cancel from the loop, not from inside a
 * libcurl callback). */
static void on_deferred(uv_timer_t *h)
{
    pull_entry *e = h->data;
    if (e->cut == CUT_ABANDON) {
        if (e->req != NULL) {
            http_cancel(e->req);
        } else {
            e->ph = PH_DONE;
            entry_release(e);
        }
        return;
    }
    if (e->ph == PH_BACKOFF) {
        complete(e, e->last.code, NULL, &e->last);
    }
}

static void start_attempt(pull_entry *e)
{
    drv_err err;
    e->attempt++;
    e->ph = PH_REQUEST;
    e->saw_final = 0;
    free(e->stream_error);
    e->stream_error = NULL;
    lines_init(&e->lines, PULL_MAX_LINE, on_line, e);
    docker_cb cb = { .on_data = on_pull_data, .on_done = on_pull_done, .ud = e };
    e->p->requests++;
    if (docker_image_pull(e->p->o.docker, e->repo, e->tag, e->auth, &cb, &e->req, &err) < 0) {
        lines_free(&e->lines);
        e->p->requests--;
        drv_err_set(&e->last, DRV_EIMAGE, "pull \"%s\": %s", e->ref, err.msg);
        e->ph = PH_BACKOFF;      /* reported from the loop (on_deferred) */
        uv_timer_start(&e->timer, on_deferred, 0, 0);
        return;
    }
    arm_activity(e);
}

int puller_pull(puller *p, const pull_request *q, pull_event_cb ev, pull_done_cb done, void *ud,
                pull_waiter **out, drv_err *err)
{
    if (p->closing) {
        return drv_err_set(err, DRV_ECANCELED, "puller: closing");
    }
    if (q->repo == NULL || q->repo[0] == '\0' || q->tag == NULL || q->tag[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "pull: no image repository or tag: \"%s:%s\"",
                           q->repo ? q->repo : "", q->tag ? q->tag : "");
    }
    buf key = BUF_INIT;
    buf_appendf(&key, "%s:%s", q->repo, q->tag);
    pull_entry *e = p->entries;
    while (e != NULL && (e->key == NULL || strcmp(e->key, buf_str(&key)) != 0 ||
                         e->cut != CUT_NONE)) {
        e = e->next;
    }
    int fresh = e == NULL;
    if (fresh) {
        e = drv_xcalloc(1, sizeof *e);
        e->p = p;
        e->key = drv_xstrdup(buf_str(&key));
        buf r = BUF_INIT;
        pull_ref(&r, q->repo, q->tag);
        e->ref = drv_xstrdup(buf_str(&r));
        buf_free(&r);
        e->repo = drv_xstrdup(q->repo);
        e->tag = drv_xstrdup(q->tag);
        e->auth = q->auth != NULL ? drv_xstrdup(q->auth) : NULL;
        e->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : DEFAULT_TIMEOUT_MS;
        e->activity_ms = q->activity_timeout_ms > 0 ? q->activity_timeout_ms : DEFAULT_ACTIVITY_MS;
        pull_line_init(&e->line);
        uv_timer_init(p->o.loop, &e->timer);
        uv_timer_init(p->o.loop, &e->total);
        e->timer.data = e;
        e->total.data = e;
        e->handles = 2;
        e->started = uv_now(p->o.loop);
        e->next = p->entries;
        p->entries = e;
    }
    buf_free(&key);
    pull_waiter *w = drv_xcalloc(1, sizeof *w);
    w->e = e;
    w->ev = ev;
    w->done = done;
    w->ud = ud;
    w->replay = e->nlayers > 0;
    if (e->nwaiters == e->wcap) {
        size_t cap = e->wcap ? e->wcap * 2 : 4;
        pull_waiter **n = realloc(e->waiters, cap * sizeof *n);
        if (n == NULL) {
            abort();
        }
        e->waiters = n;
        e->wcap = cap;
    }
    e->waiters[e->nwaiters++] = w;
    if (fresh) {
        uv_timer_start(&e->total, on_total_timeout, (uint64_t)e->timeout_ms, 0);
        start_attempt(e);
    }
    if (out != NULL) {
        *out = w;
    }
    return 0;
}

void pull_waiter_cancel(pull_waiter *w)
{
    if (w == NULL || w->cancelled) {
        return;
    }
    pull_entry *e = w->e;
    w->cancelled = 1;
    sweep(e);
    if (e->ph == PH_DONE || live_waiters(e) > 0) {
        return;
    }
    /* the last waiter: stop the pull (from the loop) */
    free(e->key);
    e->key = NULL;
    e->cut = CUT_ABANDON;
    uv_timer_stop(&e->total);
    uv_timer_start(&e->timer, on_deferred, 0, 0);
    e->ph = e->req != NULL ? e->ph : PH_DONE;
}

void puller_close(puller *p)
{
    if (p == NULL) {
        return;
    }
    p->closing = 1;
    for (pull_entry *e = p->entries; e != NULL; e = e->next) {
        for (size_t i = 0; i < e->nwaiters; i++) {
            e->waiters[i]->cancelled = 1;
        }
        sweep(e);
        free(e->key);
        e->key = NULL;
        if (e->ph != PH_DONE) {
            e->cut = CUT_ABANDON;
            e->ph = PH_DONE;
        }
        if (e->req != NULL) {
            http_cancel(e->req);
        } else {
            entry_release(e);
        }
    }
    puller_maybe_free(p);
}
