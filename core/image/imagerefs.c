/*
 * imagerefs.c: image references shared by every drvctl process on the host,
 * and the delayed removal of the images drvctl acquired (see imagerefs.h).
 *
 * The record is one file, <data_dir>/state/images.json, read and rewritten
 * (state_write: temp file, fsync, rename) under an flock on images.json.lock.
 * The lock is held only while the file is read, changed and written; never
 * across a Docker call. The format (version 1):
 *
 *   {"version":1,"images":[{
 *      "refs":["127.0.0.1:5000/rsx/x:1"],      the names tasks used
 *      "id":"sha256:...",                       or absent when unknown
 *      "acquired":true,                         drvctl pulled or loaded it
 *      "holders":[{"holder":"<alloc_id>/<task>","pid":12,"start":345,"boot":"<boot id>"}],
 *      "released":1700000000000,                ms since the epoch the last
 *                                               holder went (0: held)
 *      "claim":{"pid":..,"start":..,"boot":..}  a process removing it now
 *   }]}
 *
 * A holder is owned by the process that took it: its pid, its start time
 * (field 22 of /proc/<pid>/stat) and the boot id, so that a pid reused by
 * another process, or a record from before a reboot, does not look alive.
 * Holders (and claims) of processes that are gone are dropped whenever the
 * record is read, which makes the image due as if released then.
 *
 * An image is due `delay_ms` (the delay of the process that looks at it,
 * i.e. the agent config's docker.cleanup.image.delay) after "released".
 * Removing it: inspect (404: gone), list the containers whose ancestor it
 * is (any: in use, retried later), re-check under the lock that nobody took
 * it meanwhile, then DELETE: by id with force=1 when it has several tags,
 * else by its one reference (by id when it has none left). 404 is done,
 * 409 is in use (kept, retried later); other failures are tried 3 times,
 * 3 s apart, then left to the next drvctl process.
 *
 * This file and the two Docker answers read here (image inspect, container
 * list) are read with json.h (json_parse).
 */
#include "imagerefs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "owner.h"
#include "state.h"

#define REFS_FILE "images.json"
#define MAX_REFS 16              /* names kept per image */
#define MAX_ATTEMPTS 3
#define RETRY_MS 3000L
#define INUSE_RETRY_MIN_MS 3000L /* an image in use is looked at again no sooner */
#define CALL_TIMEOUT_MS 30000L
#define CLOSE_GRACE_MS 30000L    /* close: removals due by max_wait may take this much longer */

/* --- JSON reading (json.h) ----------------------------------------------- */

/* Member `key` of `o` when it is a non-negative integer, else 0. */
static long long jnum(const json_val *o, const char *key)
{
    const json_val *v = json_get(o, key);
    if (v == NULL || v->t != JSON_NUM || !v->num.integral || v->num.i < 0) {
        return 0;
    }
    return v->num.i;
}

/* --- JSON writing ------------------------------------------------------------ */

static void wstr(buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_appendf(b, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_appendf(b, "\\u%04x", *p);
        } else {
            buf_append(b, p, 1);
        }
    }
    buf_puts(b, "\"");
}

/* --- the record ------------------------------------------------------------ */

typedef struct holder {
    char *name;
    owner by;
} holding;

typedef struct rec {
    char *refs[MAX_REFS];
    size_t nrefs;
    char *id;                  /* or NULL */
    int acquired;
    holding *h;
    size_t nh, caph;
    long long released;        /* ms since the epoch; 0 while held */
    owner claim;               /* pid 0: none */
} rec;

typedef struct table {
    rec *v;
    size_t n, cap;
    int dirty;
} table;

static void rec_free(rec *r)
{
    for (size_t i = 0; i < r->nrefs; i++) {
        free(r->refs[i]);
    }
    for (size_t i = 0; i < r->nh; i++) {
        free(r->h[i].name);
    }
    free(r->h);
    free(r->id);
    memset(r, 0, sizeof *r);
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        rec_free(&t->v[i]);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

static rec *table_add(table *t)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        rec *nv = realloc(t->v, t->cap * sizeof *nv);
        if (nv == NULL) {
            abort();
        }
        t->v = nv;
    }
    rec *r = &t->v[t->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static void table_del(table *t, size_t i)
{
    rec_free(&t->v[i]);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof *t->v);
    t->n--;
    t->dirty = 1;
}

static void holder_add(rec *r, const char *name, const owner *by)
{
    if (r->nh == r->caph) {
        r->caph = r->caph ? r->caph * 2 : 4;
        holding *nh = realloc(r->h, r->caph * sizeof *nh);
        if (nh == NULL) {
            abort();
        }
        r->h = nh;
    }
    r->h[r->nh].name = drv_xstrdup(name);
    r->h[r->nh].by = *by;
    r->nh++;
}

static void holder_del(rec *r, size_t i)
{
    free(r->h[i].name);
    memmove(&r->h[i], &r->h[i + 1], (r->nh - i - 1) * sizeof *r->h);
    r->nh--;
}

static void rec_add_ref(rec *r, const char *ref)
{
    for (size_t i = 0; i < r->nrefs; i++) {
        if (strcmp(r->refs[i], ref) == 0) {
            return;
        }
    }
    if (r->nrefs < MAX_REFS) {
        r->refs[r->nrefs++] = drv_xstrdup(ref);
    }
}

static int rec_has_ref(const rec *r, const char *ref)
{
    for (size_t i = 0; i < r->nrefs; i++) {
        if (strcmp(r->refs[i], ref) == 0) {
            return 1;
        }
    }
    return 0;
}

static void owner_read(const json_val *o, owner *out)
{
    memset(out, 0, sizeof *out);
    if (o == NULL || o->t != JSON_OBJ) {
        return;
    }
    out->pid = (long)jnum(o, "pid");
    out->start = (unsigned long long)jnum(o, "start");
    const char *b = json_get_str(o, "boot");
    snprintf(out->boot, sizeof out->boot, "%s", b ? b : "");
}

static void owner_write(buf *b, const owner *o)
{
    buf_appendf(b, "\"pid\":%ld,\"start\":%llu,\"boot\":", o->pid, o->start);
    wstr(b, o->boot);
}

/* Reads the file's text into `t`. Entries that make no sense are skipped. */
static int table_parse(const char *s, size_t n, table *t)
{
    json_val root;
    if (json_parse(s, n, &root) < 0) {
        return -1;
    }
    const json_val *images = json_get(&root, "images");
    if (images == NULL || images->t != JSON_ARR || images->v == NULL) {
        json_free(&root);
        return 0;
    }
    const json_val *items = images->v;
    for (size_t i = 0; i < images->n; i++) {
        const json_val *e = items + i;
        const json_val *refs = json_get(e, "refs");
        const json_val *holders = json_get(e, "holders");
        if (refs == NULL || refs->t != JSON_ARR) {
            continue;
        }
        rec *r = table_add(t);
        for (size_t k = 0; k < refs->n; k++) {
            if (refs->v[k].t == JSON_STR && refs->v[k].s[0] != '\0') {
                rec_add_ref(r, refs->v[k].s);
            }
        }
        const char *id = json_get_str(e, "id");
        r->id = id != NULL && id[0] != '\0' ? drv_xstrdup(id) : NULL;
        const json_val *acq = json_get(e, "acquired");
        r->acquired = acq != NULL && acq->t == JSON_BOOL && acq->b;
        r->released = jnum(e, "released");
        owner_read(json_get(e, "claim"), &r->claim);
        for (size_t k = 0; holders != NULL && holders->t == JSON_ARR && k < holders->n; k++) {
            const char *name = json_get_str(&holders->v[k], "holder");
            owner by;
            owner_read(&holders->v[k], &by);
            if (name != NULL && name[0] != '\0') {
                holder_add(r, name, &by);
            }
        }
        if (r->nrefs == 0 && r->id == NULL) {
            rec_free(r);
            t->n--;
        }
    }
    json_free(&root);
    return 0;
}

static void table_encode(const table *t, buf *b)
{
    buf_puts(b, "{\"version\":1,\"images\":[");
    for (size_t i = 0; i < t->n; i++) {
        const rec *r = &t->v[i];
        buf_puts(b, i ? ",\n{\"refs\":[" : "\n{\"refs\":[");
        for (size_t k = 0; k < r->nrefs; k++) {
            if (k) {
                buf_puts(b, ",");
            }
            wstr(b, r->refs[k]);
        }
        buf_puts(b, "]");
        if (r->id != NULL) {
            buf_puts(b, ",\"id\":");
            wstr(b, r->id);
        }
        buf_appendf(b, ",\"acquired\":%s,\"holders\":[", r->acquired ? "true" : "false");
        for (size_t k = 0; k < r->nh; k++) {
            buf_puts(b, k ? ",{\"holder\":" : "{\"holder\":");
            wstr(b, r->h[k].name);
            buf_puts(b, ",");
            owner_write(b, &r->h[k].by);
            buf_puts(b, "}");
        }
        buf_appendf(b, "],\"released\":%lld", r->released);
        if (r->claim.pid > 0) {
            buf_puts(b, ",\"claim\":{");
            owner_write(b, &r->claim);
            buf_puts(b, "}");
        }
        buf_puts(b, "}");
    }
    buf_puts(b, "]}\n");
}

/* --- the object --------------------------------------------------------------- */

/* One removal under way (one at a time, oldest due first). */
typedef struct removal {
    char *key;                 /* id when known, else the reference */
    char *id;                  /* from the inspect */
    char *target;              /* what DELETE names */
    char *refs[MAX_REFS];      /* the record's references (drvctl's names) */
    size_t nrefs;
    int again;                 /* after this untag, inspect again */
    int force;
    int attempts;
    enum { RM_INSPECT, RM_LIST, RM_DELETE } step;
} removal;

struct imagerefs {
    imagerefs_opts o;
    state *st;
    owner self;
    uv_timer_t timer;          /* next due removal, or a retry */
    uv_timer_t deadline;       /* close: max_wait and grace */
    int handles;
    removal *rm;               /* in flight, or NULL */
    http_req *req;
    int retry_wait;            /* timer runs for a retry of rm */
    char **tried;              /* keys this process gave up on or found in use */
    size_t ntried;
    int closing;
    int cutoff;                /* past max_wait + CLOSE_GRACE_MS: stop */
    long long close_until;     /* wall ms: removals due by then are waited for */
    void (*cb)(void *ud);
    void *ud;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long due_of(const imagerefs *r, const rec *e)
{
    return e->released + (r->o.delay_ms > 0 ? r->o.delay_ms : 0);
}

static int tried(const imagerefs *r, const char *key)
{
    for (size_t i = 0; i < r->ntried; i++) {
        if (strcmp(r->tried[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

static void add_tried(imagerefs *r, const char *key)
{
    if (tried(r, key)) {
        return;
    }
    char **nv = realloc(r->tried, (r->ntried + 1) * sizeof *nv);
    if (nv == NULL) {
        abort();
    }
    r->tried = nv;
    r->tried[r->ntried++] = drv_xstrdup(key);
}

static const char *rec_key(const rec *e)
{
    return e->id != NULL ? e->id : e->refs[0];
}

/* Drops holders and claims of processes that are gone; a record left without
 * holders becomes due from now (when drvctl acquired it) or goes. */
static void prune(imagerefs *r, table *t)
{
    long long now = now_ms();
    owner last;              /* most holders share a few owners: one /proc read each */
    int last_alive = 0;
    memset(&last, 0, sizeof last);
    for (size_t i = 0; i < t->n;) {
        rec *e = &t->v[i];
        size_t before = e->nh;
        for (size_t k = 0; k < e->nh;) {
            if (last.pid == 0 || !owner_same(&last, &e->h[k].by)) {
                last = e->h[k].by;
                last_alive = owner_alive(&last, &r->self);
            }
            if (!last_alive) {
                log_debug("image cleanup: holder \"%s\" of \"%s\" ended without releasing it",
                          e->h[k].name, rec_key(e));
                holder_del(e, k);
                t->dirty = 1;
            } else {
                k++;
            }
        }
        if (e->claim.pid > 0 && !owner_alive(&e->claim, &r->self)) {
            memset(&e->claim, 0, sizeof e->claim);
            t->dirty = 1;
        }
        if (e->nh == 0 && !e->acquired) {
            table_del(t, i);
            continue;
        }
        if (e->nh == 0 && before > 0) {
            e->released = now;
        }
        if (e->nh == 0 && e->released == 0) {
            e->released = now;
            t->dirty = 1;
        }
        i++;
    }
}

/* Locks and reads the record. */
static int tx_begin(imagerefs *r, table *t, int *lock, drv_err *err)
{
    buf b = BUF_INIT;
    drv_err e2;
    memset(t, 0, sizeof *t);
    int rc = state_lock(r->st, REFS_FILE, lock, err);
    if (rc < 0) {
        return rc;
    }
    rc = state_read(r->st, REFS_FILE, &b, &e2);
    if (rc == 0 && table_parse(buf_str(&b), b.len, t) < 0) {
        log_warn("image cleanup: unreadable record, starting a new one (images it named are "
                 "left alone): \"%s/%s\"", state_path(r->st), REFS_FILE);
        table_free(t);
        t->dirty = 1;
    } else if (rc < 0 && rc != DRV_ENOTFOUND) {
        buf_free(&b);
        state_unlock(*lock);
        *lock = -1;
        if (err != NULL) {
            *err = e2;
        }
        return rc;
    }
    buf_free(&b);
    prune(r, t);
    return 0;
}

/* Writes the record when it changed, unlocks, frees. */
static int tx_end(imagerefs *r, table *t, int lock, drv_err *err)
{
    int rc = 0;
    if (t->dirty) {
        buf b = BUF_INIT;
        if (t->n == 0) {
            rc = state_remove(r->st, REFS_FILE, err);
        } else {
            table_encode(t, &b);
            rc = state_write(r->st, REFS_FILE, b.data, b.len, err);
        }
        buf_free(&b);
    }
    state_unlock(lock);
    table_free(t);
    return rc;
}

static rec *find_key(table *t, const char *key, size_t *idx)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(rec_key(&t->v[i]), key) == 0) {
            if (idx != NULL) {
                *idx = i;
            }
            return &t->v[i];
        }
    }
    return NULL;
}

static void schedule(imagerefs *r);
static void rm_free(removal *m);
static void next_step(imagerefs *r);
static void finish_close(imagerefs *r);
static void on_timer(uv_timer_t *h);

/* A record this process may start removing now (or, later, when due). */
static int eligible(const imagerefs *r, const rec *e)
{
    /* closing: what was found in use or failed here is not waited for again */
    if (e->nh > 0 || !e->acquired || e->released == 0 || (r->closing && tried(r, rec_key(e)))) {
        return 0;
    }
    return e->claim.pid == 0;   /* dead claimants were pruned */
}

/* Claims the first due record and starts removing it; else arms the timer
 * for the next one. */
static void schedule(imagerefs *r)
{
    table t;
    int lock;
    drv_err err;
    if (r->rm != NULL || r->st == NULL || r->cutoff) {
        if (r->closing && r->rm == NULL) {
            finish_close(r);
        }
        return;
    }
    if (tx_begin(r, &t, &lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
        if (r->closing) {
            finish_close(r);
        }
        return;
    }
    long long now = now_ms(), next = -1;
    rec *pick = NULL;
    for (size_t i = 0; i < t.n; i++) {
        rec *e = &t.v[i];
        if (!eligible(r, e)) {
            continue;
        }
        long long due = due_of(r, e);
        if (due <= now && (pick == NULL || due < due_of(r, pick))) {
            pick = e;
        } else if (due > now && (next < 0 || due < next)) {
            next = due;
        }
    }
    if (pick != NULL) {
        pick->claim = r->self;
        t.dirty = 1;
        r->rm = drv_xcalloc(1, sizeof *r->rm);
        r->rm->key = drv_xstrdup(rec_key(pick));
        for (size_t i = 0; i < pick->nrefs; i++) {
            r->rm->refs[r->rm->nrefs++] = drv_xstrdup(pick->refs[i]);
        }
    }
    if (tx_end(r, &t, lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
        if (r->rm != NULL) {
            rm_free(r->rm);
            r->rm = NULL;
        }
        if (r->closing) {
            finish_close(r);
        }
        return;
    }
    if (r->rm != NULL) {
        r->rm->step = RM_INSPECT;
        next_step(r);
        return;
    }
    if (r->closing && (next < 0 || next > r->close_until)) {
        finish_close(r);
        return;
    }
    if (next >= 0) {
        long long wait = next - now;
        r->retry_wait = 0;
        uv_timer_start(&r->timer, on_timer, (uint64_t)(wait > 0 ? wait : 0), 0);
        if (!r->closing) {
            uv_unref((uv_handle_t *)&r->timer);   /* a pending removal keeps no loop alive */
        }
    }
}

/* --- removing one image ---------------------------------------------------- */

/* `ref` as Docker lists it in RepoTags ("redis:3.2", "bitnami/x:1",
 * "127.0.0.1:5000/a/b:1"): docker.io's domain and "library/" dropped, an
 * implied ":latest" added. Refs with a digest stay as they are. */
static void familiar(const char *ref, char *out, size_t len)
{
    const char *p = ref;
    if (strncmp(p, "docker.io/", 10) == 0) {
        p += 10;
    } else if (strncmp(p, "index.docker.io/", 16) == 0) {
        p += 16;
    }
    if (strncmp(p, "library/", 8) == 0 && strchr(p + 8, '/') == NULL) {
        p += 8;
    }
    const char *last = strrchr(p, '/');
    last = last != NULL ? last : p;
    int tagged = strchr(last, ':') != NULL || strchr(p, '@') != NULL;
    snprintf(out, len, "%s%s", p, tagged ? "" : ":latest");
}

/* 1 when `tag` (from RepoTags) is one of the names drvctl recorded. */
static int is_ours(const removal *m, const char *tag)
{
    char a[600], b[600];
    familiar(tag, a, sizeof a);
    for (size_t i = 0; i < m->nrefs; i++) {
        familiar(m->refs[i], b, sizeof b);
        if (strcmp(a, b) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef enum { OUT_GONE, OUT_INUSE, OUT_FAIL, OUT_STOP, OUT_TAKEN } outcome;

static void rm_free(removal *m)
{
    if (m != NULL) {
        free(m->key);
        free(m->id);
        free(m->target);
        for (size_t i = 0; i < m->nrefs; i++) {
            free(m->refs[i]);
        }
        free(m);
    }
}

/* Records how the removal of r->rm ended, then looks for the next one. */
static void rm_end(imagerefs *r, outcome out, const char *why)
{
    removal *m = r->rm;
    table t;
    int lock;
    drv_err err;
    r->rm = NULL;
    r->retry_wait = 0;
    if (out == OUT_INUSE || out == OUT_FAIL) {
        add_tried(r, m->key);
    }
    if (out == OUT_FAIL) {
        log_warn("image cleanup: cannot remove image \"%s\" (left for a later drvctl run or "
                 "gc): %s", m->key, why);
    } else if (out == OUT_GONE) {
        log_debug("image cleanup: image \"%s\": done (%s)", m->key, why);
    } else {
        log_debug("image cleanup: image \"%s\" kept: %s", m->key, why);
    }
    if (tx_begin(r, &t, &lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
    } else {
        size_t i;
        rec *e = find_key(&t, m->key, &i);
        if (e != NULL && out == OUT_GONE && e->nh == 0) {
            table_del(&t, i);
        } else if (e != NULL && owner_same(&e->claim, &r->self)) {
            memset(&e->claim, 0, sizeof e->claim);
            if ((out == OUT_INUSE || out == OUT_FAIL) && e->nh == 0) {
                /* looked at again no sooner than INUSE_RETRY_MIN_MS from now */
                long long delay = r->o.delay_ms > 0 ? r->o.delay_ms : 0;
                long long again = INUSE_RETRY_MIN_MS > delay ? INUSE_RETRY_MIN_MS : delay;
                e->released = now_ms() + again - delay;
            }
            t.dirty = 1;
        }
        if (tx_end(r, &t, lock, &err) < 0) {
            log_warn("image cleanup: %s", err.msg);
        }
    }
    rm_free(m);
    schedule(r);
}

/* An attempt failed: again in RETRY_MS, at most MAX_ATTEMPTS in all. */
static void rm_failed(imagerefs *r, const char *why)
{
    if (++r->rm->attempts >= MAX_ATTEMPTS || r->cutoff) {
        rm_end(r, r->cutoff ? OUT_STOP : OUT_FAIL, why);
        return;
    }
    log_debug("image cleanup: \"%s\": %s (attempt %d of %d)", r->rm->key, why, r->rm->attempts,
              MAX_ATTEMPTS);
    r->retry_wait = 1;
    r->rm->step = RM_INSPECT;
    uv_timer_start(&r->timer, on_timer, RETRY_MS, 0);
    if (!r->closing) {
        uv_unref((uv_handle_t *)&r->timer);
    }
}

/* "message" of Docker's error body, for logs. */
static void answer_why(char *out, size_t n, long status, const buf *body)
{
    json_val j;
    const char *msg = NULL;
    int ok = body != NULL && body->len > 0 && json_parse(buf_str(body), body->len, &j) == 0;
    if (ok) {
        msg = json_get_str(&j, "message");
    }
    snprintf(out, n, "HTTP %ld%s%s", status, msg ? ": " : "", msg ? msg : "");
    if (ok) {
        json_free(&j);
    }
}

/* Under the lock: the image is still due, unheld and claimed by us. */
static int still_ours(imagerefs *r)
{
    table t;
    int lock;
    drv_err err;
    if (tx_begin(r, &t, &lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
        return 0;
    }
    rec *e = find_key(&t, r->rm->key, NULL);
    int ok = e != NULL && e->nh == 0 && e->released > 0 && owner_same(&e->claim, &r->self);
    tx_end(r, &t, lock, NULL);
    return ok;
}

static void on_answer(void *ud, http_req *req, int rc, long status, const buf *body,
                      const drv_err *err)
{
    imagerefs *r = ud;
    removal *m = r->rm;
    char why[512];
    json_val j;
    (void)req;
    r->req = NULL;
    if (rc == DRV_ECANCELED) {
        rm_end(r, OUT_STOP, "canceled");
        return;
    }
    if (rc < 0) {
        rm_failed(r, err != NULL ? err->msg : "transfer failed");
        return;
    }
    answer_why(why, sizeof why, status, body);
    switch (m->step) {
    case RM_INSPECT:
        if (status == 404) {
            rm_end(r, OUT_GONE, "no such image");
            return;
        }
        if (status != 200 || json_parse(buf_str(body), body->len, &j) < 0) {
            rm_failed(r, why);
            return;
        } else {
            const char *id = json_get_str(&j, "Id");
            const json_val *tags = json_get(&j, "RepoTags");
            size_t ntags = 0, nours = 0;
            const char *tag = NULL, *ours = NULL;
            for (size_t i = 0; tags != NULL && tags->t == JSON_ARR && i < tags->n; i++) {
                if (tags->v[i].t == JSON_STR && tags->v[i].s[0] != '\0') {
                    ntags++;
                    tag = tags->v[i].s;
                    if (is_ours(m, tag)) {
                        nours++;
                        ours = tag;
                    }
                }
            }
            if (id == NULL || id[0] == '\0') {
                json_free(&j);
                rm_failed(r, "image inspect: no Id");
                return;
            }
            free(m->id);
            free(m->target);
            m->id = drv_xstrdup(id);
            const json_val *digests = json_get(&j, "RepoDigests");
            size_t ndigests = digests != NULL && digests->t == JSON_ARR ? digests->n : 0;
            m->again = 0;
            if (nours < ntags) {
                /* the image also carries names drvctl did not give it (an
                 * image that was here, tagged again by a pull): untag only
                 * drvctl's, one at a time; the image stays theirs */
                if (nours == 0) {
                    json_free(&j);
                    rm_end(r, OUT_GONE, "only names drvctl did not pull are left");
                    return;
                }
                m->force = 0;
                m->target = drv_xstrdup(ours);
                m->again = nours > 1;
            } else {
                /* every tag is drvctl's. Several: by id, forced (Nomad
                 * GH-15962); one: by that reference (its digests go with
                 * it); none (pulled by digest, or the name moved on): by id,
                 * forced only to drop several digest references, as no tag
                 * is left to lose */
                m->force = ntags > 1 || (ntags == 0 && ndigests > 1);
                m->target = drv_xstrdup(ntags == 1 ? tag : id);
            }
            json_free(&j);
        }
        m->step = RM_LIST;
        next_step(r);
        return;
    case RM_LIST:
        if (status != 200 || json_parse(buf_str(body), body->len, &j) < 0 || j.t != JSON_ARR) {
            rm_failed(r, why);
            return;
        } else {
            size_t n = j.n;
            json_free(&j);
            if (n > 0) {
                rm_end(r, OUT_INUSE, "a container uses it");
                return;
            }
        }
        if (!still_ours(r)) {
            rm_end(r, OUT_TAKEN, "taken again");
            return;
        }
        m->step = RM_DELETE;
        next_step(r);
        return;
    case RM_DELETE:
        if (((status >= 200 && status < 300) || status == 404) && m->again) {
            m->step = RM_INSPECT;
            next_step(r);
        } else if ((status >= 200 && status < 300) || status == 404) {
            rm_end(r, OUT_GONE, "removed");
        } else if (status == 409) {
            rm_end(r, OUT_INUSE, why);
        } else {
            rm_failed(r, why);
        }
        return;
    }
}

static void next_step(imagerefs *r)
{
    removal *m = r->rm;
    drv_err err;
    int rc;
    docker_cb cb = { .on_done = on_answer, .ud = r, .timeout_ms = CALL_TIMEOUT_MS };
    switch (m->step) {
    case RM_INSPECT:
        rc = docker_image_inspect(r->o.docker, m->key, &cb, &r->req, &err);
        break;
    case RM_LIST: {
        docker_filter f[] = { { "ancestor", m->id }, { NULL, NULL } };
        rc = docker_container_list(r->o.docker, 1, f, &cb, &r->req, &err);
        break;
    }
    default:
        rc = docker_image_remove(r->o.docker, m->target, m->force, 0, &cb, &r->req, &err);
        break;
    }
    if (rc < 0) {
        r->req = NULL;
        rm_end(r, OUT_FAIL, err.msg);
    }
}

static void on_timer(uv_timer_t *h)
{
    imagerefs *r = h->data;
    if (r->retry_wait && r->rm != NULL) {
        r->retry_wait = 0;
        next_step(r);
        return;
    }
    schedule(r);
}

/* --- the interface ------------------------------------------------------------ */

static int text_ok(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > max) {
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
    return 1;
}

int imagerefs_open(imagerefs **out, const imagerefs_opts *o, drv_err *err)
{
    *out = NULL;
    imagerefs *r = drv_xcalloc(1, sizeof *r);
    r->o = *o;
    if (o->enabled) {
        /* state_open takes the data dir: the parent of "<data_dir>/state" */
        size_t n = o->state_dir != NULL ? strlen(o->state_dir) : 0;
        if (n < 7 || strcmp(o->state_dir + n - 6, "/state") != 0) {
            free(r);
            return drv_err_set(err, DRV_EINTERNAL, "image cleanup: not a <data_dir>/state "
                               "path: \"%s\"", o->state_dir ? o->state_dir : "");
        }
        char *data_dir = drv_xstrdup(o->state_dir);
        data_dir[n - 6] = '\0';
        int rc = state_open(data_dir, &r->st, err);
        free(data_dir);
        if (rc < 0) {
            free(r);
            return rc;
        }
    }
    owner_self(&r->self);
    uv_timer_init(o->loop, &r->timer);
    uv_timer_init(o->loop, &r->deadline);
    r->timer.data = r;
    r->deadline.data = r;
    r->handles = 2;
    uv_unref((uv_handle_t *)&r->timer);
    *out = r;
    if (r->st != NULL) {
        schedule(r);
    }
    return 0;
}

int imagerefs_take(imagerefs *r, const char *holder, const char *ref, const char *id,
                   int acquired, drv_err *err)
{
    table t;
    int lock;
    if (r == NULL || r->st == NULL) {
        return 0;      /* docker.cleanup.image = false: nothing is counted */
    }
    if (!text_ok(holder, 1024) || !text_ok(ref, 1024) || (id != NULL && !text_ok(id, 256))) {
        return drv_err_set(err, DRV_EINVALID, "image cleanup: invalid reference for \"%s\"",
                           text_ok(holder, 1024) ? holder : "?");
    }
    int rc = tx_begin(r, &t, &lock, err);
    if (rc < 0) {
        return rc;
    }
    rec *e = NULL;
    for (size_t i = 0; i < t.n && e == NULL; i++) {
        if (id != NULL && t.v[i].id != NULL && strcmp(t.v[i].id, id) == 0) {
            e = &t.v[i];
        }
    }
    for (size_t i = 0; i < t.n && e == NULL; i++) {
        if ((id == NULL || t.v[i].id == NULL) && rec_has_ref(&t.v[i], ref)) {
            e = &t.v[i];
        }
    }
    if (e == NULL) {
        e = table_add(&t);
        e->acquired = acquired != 0;   /* the first holder with the id tells */
    }
    if (e->id == NULL && id != NULL) {
        /* held so far without a known id (a create that found the image
         * missing, say, before the pull that this taker brought it with):
         * the image is now the one this taker names, and its answer counts */
        e->id = drv_xstrdup(id);
        e->acquired = e->acquired || acquired != 0;
    }
    rec_add_ref(e, ref);
    size_t k = 0;
    while (k < e->nh && strcmp(e->h[k].name, holder) != 0) {
        k++;
    }
    if (k < e->nh) {
        e->h[k].by = r->self;
    } else {
        holder_add(e, holder, &r->self);
    }
    e->released = 0;                        /* a new reference cancels the removal */
    memset(&e->claim, 0, sizeof e->claim);
    t.dirty = 1;
    return tx_end(r, &t, lock, err);
}

void imagerefs_release(imagerefs *r, const char *holder)
{
    table t;
    int lock;
    drv_err err;
    if (r == NULL || r->st == NULL || holder == NULL) {
        return;
    }
    if (tx_begin(r, &t, &lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
        return;
    }
    long long now = now_ms();
    for (size_t i = 0; i < t.n;) {
        rec *e = &t.v[i];
        size_t k = 0;
        while (k < e->nh && strcmp(e->h[k].name, holder) != 0) {
            k++;
        }
        if (k < e->nh) {
            holder_del(e, k);
            t.dirty = 1;
            if (e->nh == 0 && !e->acquired) {
                table_del(&t, i);
                continue;
            }
            if (e->nh == 0) {
                e->released = now;
            }
        }
        i++;
    }
    if (tx_end(r, &t, lock, &err) < 0) {
        log_warn("image cleanup: %s", err.msg);
    }
    if (!r->closing) {
        schedule(r);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    imagerefs *r = h->data;
    if (--r->handles > 0) {
        return;
    }
    void (*cb)(void *) = r->cb;
    void *ud = r->ud;
    for (size_t i = 0; i < r->ntried; i++) {
        free(r->tried[i]);
    }
    free(r->tried);
    state_close(r->st);
    free(r);
    if (cb != NULL) {
        cb(ud);
    }
}

static void finish_close(imagerefs *r)
{
    if (r->handles != 2 || uv_is_closing((uv_handle_t *)&r->timer)) {
        return;
    }
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->deadline, on_handle_closed);
}

static void on_deadline(uv_timer_t *h)
{
    imagerefs *r = h->data;
    /* the removals due by max_wait took too long (Docker hangs?): what is
     * left stays recorded for the next drvctl process */
    r->cutoff = 1;
    log_warn("image cleanup: giving up for now; due removals stay recorded for the next "
             "drvctl run or gc");
    if (r->req != NULL) {
        http_cancel(r->req);          /* on_answer ends it (OUT_STOP) */
    } else if (r->rm != NULL) {
        uv_timer_stop(&r->timer);
        rm_end(r, OUT_STOP, "drvctl is ending");
    } else {
        finish_close(r);
    }
}

void imagerefs_close(imagerefs *r, long max_wait_ms, void (*cb)(void *ud), void *ud)
{
    r->closing = 1;
    r->cb = cb;
    r->ud = ud;
    if (max_wait_ms < 0) {
        max_wait_ms = 0;
    }
    r->close_until = now_ms() + max_wait_ms;
    uv_ref((uv_handle_t *)&r->timer);
    if (r->st == NULL) {
        finish_close(r);
        return;
    }
    /* the removals due by then are carried out one after the other; a
     * hard stop bounds them (each Docker call has its own timeout too) */
    uv_timer_start(&r->deadline, on_deadline, (uint64_t)max_wait_ms + CLOSE_GRACE_MS, 0);
    if (r->rm == NULL) {
        uv_timer_stop(&r->timer);
        schedule(r);
    }
}
