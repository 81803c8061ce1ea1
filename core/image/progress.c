/* progress.c: pull progress for people and programs (see progress.h). */
#include "progress.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "esc.h"

#define TTY_REDRAW_MS 100
#define JSON_PROGRESS_MS 500

/* Per task: which phases were announced, when bytes were last shown. */
typedef struct track {
    char *key;                 /* "<alloc_id>/<task>" */
    int downloading, extracting;
    uint64_t last_ms;
} track;

/* TTY: one row of the redraw block. */
typedef struct row {
    char *ref;                 /* the image */
    char layer[PULL_ID_MAX];   /* "" for the image's header row */
    buf text;
    buf who;                   /* header: the first waiter's label */
    int nwho;                  /* header: waiters since the pull began */
    int waiting;               /* header: waiters not done */
} row;

struct progress {
    FILE *out;
    progress_mode mode;
    int width;
    track *tracks;
    size_t ntracks;
    row *rows;
    size_t nrows;
    size_t drawn;              /* rows on screen from the last redraw */
    int active;                /* pulls not done (TTY) */
    uint64_t last_draw;
    int dirty;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

progress *progress_new(FILE *out, progress_mode mode, int width)
{
    progress *p = drv_xcalloc(1, sizeof *p);
    p->out = out;
    p->mode = mode;
    p->width = width > 10 ? width : 80;
    return p;
}

static void rows_clear(progress *p)
{
    for (size_t i = 0; i < p->nrows; i++) {
        free(p->rows[i].ref);
        buf_free(&p->rows[i].text);
        buf_free(&p->rows[i].who);
    }
    free(p->rows);
    p->rows = NULL;
    p->nrows = 0;
    p->drawn = 0;
}

void progress_free(progress *p)
{
    if (p == NULL) {
        return;
    }
    progress_flush(p);
    for (size_t i = 0; i < p->ntracks; i++) {
        free(p->tracks[i].key);
    }
    free(p->tracks);
    rows_clear(p);
    free(p);
}

/* --- formatting --------------------------------------------------------------- */

void progress_bytes(buf *out, long long n)
{
    static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
    if (n < 1000) {
        buf_appendf(out, "%lld B", n < 0 ? 0 : n);
        return;
    }
    double v = (double)n;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    buf_appendf(out, "%.1f %s", v, units[u]);
}

void progress_json_string(buf *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str != NULL ? str : "");
    size_t n = strlen((const char *)s);
    buf_puts(out, "\"");
    size_t i = 0;
    while (i < n) {
        uint32_t cp = 0;
        size_t len = esc_utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            buf_puts(out, "\\ufffd");
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            char e[2] = { '\\', (char)cp };
            buf_append(out, e, 2);
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
                   (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
                   cp == 0x2028 || cp == 0x2029 || cp == 0x200e || cp == 0x200f ||
                   cp == 0x061c) {
            buf_appendf(out, "\\u%04x", (unsigned)cp);
        } else {
            buf_append(out, s + i, len);
        }
        i += len;
    }
    buf_puts(out, "\"");
}

static void label(buf *b, const progress_who *who)
{
    esc_append(b, who->task != NULL ? who->task : "", strlen(who->task != NULL ? who->task : ""));
    buf_appendf(b, "[%d]", who->index);
}

static void esc_cat(buf *b, const char *s)
{
    if (s != NULL) {
        esc_append(b, s, strlen(s));
    }
}

static track *track_for(progress *p, const progress_who *who)
{
    buf k = BUF_INIT;
    buf_appendf(&k, "%s/%s", who->alloc_id ? who->alloc_id : "", who->task ? who->task : "");
    for (size_t i = 0; i < p->ntracks; i++) {
        if (strcmp(p->tracks[i].key, buf_str(&k)) == 0) {
            buf_free(&k);
            return &p->tracks[i];
        }
    }
    track *n = realloc(p->tracks, (p->ntracks + 1) * sizeof *n);
    if (n == NULL) {
        abort();
    }
    p->tracks = n;
    track *t = &p->tracks[p->ntracks++];
    memset(t, 0, sizeof *t);
    t->key = drv_xstrdup(buf_str(&k));
    buf_free(&k);
    return t;
}

static void write_line(progress *p, const buf *b)
{
    fwrite(b->data != NULL ? b->data : "", 1, b->len, p->out);
    fputc('\n', p->out);
    fflush(p->out);
}

static void summary(buf *b, const pull_event *ev)
{
    const pull_stats *s = ev->stats;
    size_t n = s != NULL ? s->nlayers : 0;
    buf_appendf(b, " (%zu layer%s", n, n == 1 ? "" : "s");
    if (s != NULL && s->nexisting > 0) {
        buf_appendf(b, ", %zu existing", s->nexisting);
    }
    if (s != NULL && s->bytes_done > 0) {
        buf_puts(b, ", ");
        progress_bytes(b, s->bytes_done);
    }
    buf_appendf(b, ") in %.1f s", (double)ev->elapsed_ms / 1000.0);
}

/* --- one line per phase -------------------------------------------------------- */

static void lines_event(progress *p, const progress_who *who, const pull_event *ev)
{
    track *t = track_for(p, who);
    buf b = BUF_INIT;
    label(&b, who);
    buf_puts(&b, " | ");
    switch (ev->kind) {
    case PULL_EV_START:
        t->downloading = t->extracting = 0;
        buf_puts(&b, "pulling ");
        esc_cat(&b, ev->ref);
        break;
    case PULL_EV_LAYER:
        if (ev->layer->state == PULL_LAYER_DOWNLOADING && !t->downloading) {
            t->downloading = 1;
            buf_puts(&b, "downloading ");
            esc_cat(&b, ev->ref);
            size_t n = ev->stats != NULL ? ev->stats->nlayers : 0;
            buf_appendf(&b, " (%zu layer%s)", n, n == 1 ? "" : "s");
        } else if (ev->layer->state == PULL_LAYER_EXTRACTING && !t->extracting) {
            t->extracting = 1;
            buf_puts(&b, "extracting ");
            esc_cat(&b, ev->ref);
        } else {
            buf_free(&b);
            return;
        }
        break;
    case PULL_EV_RETRY:
        esc_cat(&b, ev->err != NULL ? ev->err->msg : "pull failed");
        buf_puts(&b, "; retrying in ");
        pull_duration(&b, ev->delay_ms);
        buf_appendf(&b, " (attempt %d of %d)", ev->attempt, PULL_MAX_ATTEMPTS);
        break;
    case PULL_EV_DONE:
        if (ev->rc < 0) {
            buf_free(&b);      /* the failure is the task's error message */
            return;
        }
        buf_puts(&b, "pulled ");
        esc_cat(&b, ev->ref);
        summary(&b, ev);
        break;
    default:
        buf_free(&b);
        return;
    }
    write_line(p, &b);
    buf_free(&b);
}

/* --- JSON ---------------------------------------------------------------------- */

static void json_event(progress *p, const progress_who *who, const pull_event *ev)
{
    track *t = track_for(p, who);
    static const char *const phases[] = {
        [PULL_EV_START] = "start", [PULL_EV_LAYER] = "layer", [PULL_EV_STATUS] = "status",
        [PULL_EV_RETRY] = "retry", [PULL_EV_DONE] = "done",
    };
    if (ev->kind == PULL_EV_LAYER && !ev->changed) {
        uint64_t now = now_ms();
        if (now - t->last_ms < JSON_PROGRESS_MS) {
            return;
        }
        t->last_ms = now;
    }
    buf b = BUF_INIT;
    buf_puts(&b, "{\"event\":\"pull\",\"phase\":");
    progress_json_string(&b, phases[ev->kind]);
    buf_puts(&b, ",\"task\":");
    progress_json_string(&b, who->task);
    buf_appendf(&b, ",\"index\":%d,\"alloc_id\":", who->index);
    progress_json_string(&b, who->alloc_id);
    buf_puts(&b, ",\"image\":");
    progress_json_string(&b, ev->ref);
    switch (ev->kind) {
    case PULL_EV_LAYER:
        buf_puts(&b, ",\"layer\":");
        progress_json_string(&b, ev->layer->id);
        buf_puts(&b, ",\"status\":");
        progress_json_string(&b, pull_layer_state_name(ev->layer->state));
        if (ev->layer->state == PULL_LAYER_DOWNLOADING ||
            ev->layer->state == PULL_LAYER_EXTRACTING) {
            buf_appendf(&b, ",\"current\":%lld,\"total\":%lld", ev->layer->current,
                        ev->layer->total);
        }
        break;
    case PULL_EV_STATUS:
        buf_puts(&b, ",\"status\":");
        progress_json_string(&b, ev->status);
        break;
    case PULL_EV_RETRY:
        buf_appendf(&b, ",\"attempt\":%d,\"delay_ms\":%ld,\"error\":", ev->attempt, ev->delay_ms);
        progress_json_string(&b, ev->err != NULL ? ev->err->msg : "");
        break;
    case PULL_EV_DONE:
        if (ev->rc == 0) {
            buf_puts(&b, ",\"ok\":true,\"image_id\":");
            progress_json_string(&b, ev->image_id);
        } else {
            buf_puts(&b, ",\"ok\":false,\"error\":");
            progress_json_string(&b, ev->err != NULL ? ev->err->msg : "pull failed");
        }
        if (ev->stats != NULL) {
            buf_appendf(&b, ",\"layers\":%zu,\"layers_existing\":%zu,\"bytes\":%lld",
                        ev->stats->nlayers, ev->stats->nexisting, ev->stats->bytes_done);
        }
        buf_appendf(&b, ",\"elapsed_ms\":%llu", (unsigned long long)ev->elapsed_ms);
        break;
    default:
        break;
    }
    buf_puts(&b, "}");
    write_line(p, &b);
    buf_free(&b);
}

/* --- terminal ------------------------------------------------------------------ */

static row *row_for(progress *p, const char *ref, const char *layer)
{
    for (size_t i = 0; i < p->nrows; i++) {
        if (strcmp(p->rows[i].ref, ref) == 0 && strcmp(p->rows[i].layer, layer) == 0) {
            return &p->rows[i];
        }
    }
    row *n = realloc(p->rows, (p->nrows + 1) * sizeof *n);
    if (n == NULL) {
        abort();
    }
    p->rows = n;
    row *r = &p->rows[p->nrows++];
    memset(r, 0, sizeof *r);
    r->ref = drv_xstrdup(ref);
    snprintf(r->layer, sizeof r->layer, "%s", layer);
    return r;
}

/* Cuts `b` to `cols` columns (escaped text: code points, one column each). */
static void fit(buf *b, int cols)
{
    int c = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (((unsigned char)b->data[i] & 0xc0) != 0x80) {
            if (c == cols) {
                b->len = i;
                b->data[i] = '\0';
                return;
            }
            c++;
        }
    }
}

static void redraw(progress *p, int force)
{
    uint64_t now = now_ms();
    if (!force && now - p->last_draw < TTY_REDRAW_MS) {
        p->dirty = 1;
        return;
    }
    p->last_draw = now;
    p->dirty = 0;
    buf out = BUF_INIT;
    if (p->drawn > 0) {
        buf_appendf(&out, "\r\x1b[%zuA", p->drawn);
    }
    for (size_t i = 0; i < p->nrows; i++) {
        buf line = BUF_INIT;
        buf_append(&line, p->rows[i].text.data != NULL ? p->rows[i].text.data : "",
                   p->rows[i].text.len);
        fit(&line, p->width - 1);
        buf_puts(&out, "\x1b[2K");
        buf_append(&out, line.data != NULL ? line.data : "", line.len);
        buf_puts(&out, "\n");
        buf_free(&line);
    }
    p->drawn = p->nrows;
    fwrite(out.data != NULL ? out.data : "", 1, out.len, p->out);
    fflush(p->out);
    buf_free(&out);
}

static void bar(buf *b, long long cur, long long total)
{
    const int w = 30;
    int fill = total > 0 ? (int)((double)cur * w / (double)total) : 0;
    if (fill > w) {
        fill = w;
    }
    buf_puts(b, "[");
    for (int i = 0; i < w; i++) {
        buf_puts(b, i < fill ? "=" : i == fill ? ">" : " ");
    }
    buf_puts(b, "] ");
    progress_bytes(b, cur);
    buf_puts(b, "/");
    progress_bytes(b, total);
}

/* The header row of an image: who waits for it ("web[0]", "web[0] +4"). */
static void header(buf *t, const row *h, const char *what, const char *ref)
{
    buf_reset(t);
    buf_append(t, h->who.data != NULL ? h->who.data : "", h->who.len);
    if (h->nwho > 1) {
        buf_appendf(t, " +%d", h->nwho - 1);
    }
    buf_puts(t, " | ");
    buf_puts(t, what);
    esc_cat(t, ref);
}

static void tty_event(progress *p, const progress_who *who, const pull_event *ev)
{
    const char *ref = ev->ref != NULL ? ev->ref : "";
    row *h = row_for(p, ref, "");
    row *r = h;
    buf old = BUF_INIT;
    int force = 0;
    switch (ev->kind) {
    case PULL_EV_START:
        if (h->waiting == 0) {
            p->active++;
            h->nwho = 0;
            buf_reset(&h->who);
            label(&h->who, who);
        }
        h->waiting++;
        h->nwho++;
        header(&h->text, h, "pulling ", ref);
        force = 1;
        break;
    case PULL_EV_LAYER:
        r = row_for(p, ref, ev->layer->id);
        buf_append(&old, r->text.data != NULL ? r->text.data : "", r->text.len);
        buf_reset(&r->text);
        buf_puts(&r->text, "  ");
        esc_cat(&r->text, ev->layer->id);
        buf_puts(&r->text, ": ");
        buf_puts(&r->text, pull_layer_state_name(ev->layer->state));
        if ((ev->layer->state == PULL_LAYER_DOWNLOADING ||
             ev->layer->state == PULL_LAYER_EXTRACTING) && ev->layer->total > 0) {
            buf_puts(&r->text, " ");
            bar(&r->text, ev->layer->current, ev->layer->total);
        }
        force = ev->changed;
        if (strcmp(buf_str(&old), buf_str(&r->text)) == 0) {
            buf_free(&old);
            return;     /* the same news from another waiter of this pull */
        }
        break;
    case PULL_EV_RETRY:
        buf_append(&old, h->text.data != NULL ? h->text.data : "", h->text.len);
        header(&h->text, h, "pulling ", ref);
        buf_puts(&h->text, ": ");
        esc_cat(&h->text, ev->err != NULL ? ev->err->msg : "");
        buf_puts(&h->text, "; retrying in ");
        pull_duration(&h->text, ev->delay_ms);
        buf_appendf(&h->text, " (attempt %d of %d)", ev->attempt, PULL_MAX_ATTEMPTS);
        if (strcmp(buf_str(&old), buf_str(&h->text)) == 0) {
            buf_free(&old);
            return;
        }
        force = 1;
        break;
    case PULL_EV_DONE:
        if (h->waiting > 0 && --h->waiting == 0) {
            p->active--;
            if (ev->rc == 0) {
                header(&h->text, h, "pulled ", ref);
                summary(&h->text, ev);
            } else {
                header(&h->text, h, "pull failed: ", ref);
            }
            force = 1;
            break;
        }
        return;
    default:
        return;
    }
    buf_free(&old);
    redraw(p, force);
    if (p->active <= 0) {
        /* every pull ended: the block stays as it is on screen */
        p->active = 0;
        rows_clear(p);
    }
}

void progress_event(progress *p, const progress_who *who, const pull_event *ev)
{
    if (p == NULL || ev == NULL) {
        return;
    }
    switch (p->mode) {
    case PROGRESS_JSON:
        json_event(p, who, ev);
        break;
    case PROGRESS_TTY:
        tty_event(p, who, ev);
        break;
    default:
        lines_event(p, who, ev);
        break;
    }
}

void progress_flush(progress *p)
{
    if (p != NULL && p->mode == PROGRESS_TTY && p->dirty) {
        redraw(p, 1);
    }
}
