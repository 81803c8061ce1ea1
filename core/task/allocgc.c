/* allocgc.c: alloc dirs and records `drvctl gc` removes (see allocgc.h). */
#include "allocgc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocrec.h"
#include "buf.h"
#include "esc.h"
#include "owner.h"
#include "pin.h"
#include "rmtree.h"
#include "state.h"

void allocgc_size(unsigned long long bytes, char *out, size_t n)
{
    static const char *units[] = { "kB", "MB", "GB", "TB", "PB" };
    if (bytes < 1000) {
        snprintf(out, n, "%llu B", bytes);
        return;
    }
    double v = (double)bytes / 1000.0;
    size_t u = 0;
    while (v >= 1000.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1000.0;
        u++;
    }
    snprintf(out, n, "%.1f %s", v, units[u]);
}

static void add_cand(allocgc *g, const char *id, const allocrec *r, const char *why)
{
    allocgc_cand *nc = realloc(g->c, (g->n + 1) * sizeof *nc);
    if (nc == NULL) {
        abort();
    }
    g->c = nc;
    allocgc_cand *c = &g->c[g->n++];
    memset(c, 0, sizeof *c);
    c->alloc_id = drv_xstrdup(id);
    c->why = why;
    if (r != NULL) {
        c->has_record = 1;
        c->job = r->job ? drv_xstrdup(r->job) : NULL;
        c->kept_on_purpose = r->keep_containers;
        for (size_t i = 0; i < r->ntasks; i++) {
            c->kept_on_purpose |= r->tasks[i].kept;
        }
    }
}

/* The alloc-id-shaped names in <data_dir>/alloc (none when it is missing). */
static char **list_dirs(const char *data_dir, size_t *n)
{
    char path[PATH_MAX];
    size_t cap = 16, len = 0;
    char **v = drv_xcalloc(cap, sizeof *v);
    *n = 0;
    snprintf(path, sizeof path, "%s/alloc", data_dir);
    DIR *d = opendir(path);
    if (d == NULL) {
        return v;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!allocrec_id_ok(e->d_name)) {
            continue;
        }
        if (len + 1 >= cap) {
            cap *= 2;
            char **nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) {
                abort();
            }
            v = nv;
        }
        v[len++] = drv_xstrdup(e->d_name);
    }
    closedir(d);
    v[len] = NULL;
    *n = len;
    return v;
}

int allocgc_scan(allocgc *g, const char *data_dir, int orphans, FILE *errs, drv_err *err)
{
    state *allocs = NULL;
    char **ids = NULL;
    size_t nids = 0, ndirs = 0;
    owner self;

    memset(g, 0, sizeof *g);
    if (data_dir == NULL || data_dir[0] == '\0') {
        return drv_err_set(err, DRV_ECONFIG, "gc: no data_dir");
    }
    g->data_dir = drv_xstrdup(data_dir);
    g->orphans = orphans;
    owner_self(&self);
    /* directories first: a run records its alloc before it makes the dir */
    char **dirs = list_dirs(data_dir, &ndirs);
    int rc = allocrec_open(data_dir, 0, &allocs, err);
    if (rc == 0 && allocs != NULL) {
        rc = allocrec_list(allocs, &ids, &nids, err);
    }
    for (size_t i = 0; rc == 0 && i < nids; i++) {
        allocrec r;
        drv_err e;
        if (allocrec_read(allocs, ids[i], &r, &e) < 0) {
            if (e.code != DRV_ENOTFOUND) {
                buf b = BUF_INIT;
                fprintf(errs, "gc: alloc %s left alone: %s\n", ids[i], esc_msg(&b, e.msg));
                buf_free(&b);
            }
            continue;
        }
        if (r.newer) {
            fprintf(errs, "gc: alloc %s left alone: its record is of version %d (this drvctl "
                    "knows %d)\n", ids[i], r.version, ALLOCREC_VERSION);
        } else if (allocrec_ended(&r)) {
            add_cand(g, ids[i], &r, "ended");
        } else if (!owner_alive(&r.owner, &self)) {
            add_cand(g, ids[i], &r, "owner gone");
        }
        allocrec_free(&r);
    }
    for (size_t i = 0; rc == 0 && i < ndirs; i++) {
        int known = 0;
        for (size_t k = 0; k < nids && !known; k++) {
            known = strcmp(ids[k], dirs[i]) == 0;
        }
        if (known) {
            continue;
        }
        if (orphans) {
            add_cand(g, dirs[i], NULL, "no record");
        } else {
            buf b = BUF_INIT;
            fprintf(errs, "gc: alloc dir without a record left in place: \"%s/alloc/%s\" "
                    "(drvctl gc -orphans removes it once no container of it exists)\n",
                    esc_str(&b, data_dir), dirs[i]);
            buf_free(&b);
        }
    }
    state_list_free(ids);
    state_list_free(dirs);
    state_close(allocs);
    return rc;
}

/* Unmounts and removes the bind pins a killed run left for alloc `id`. */
static void release_pins(const allocgc *g, const char *id, FILE *errs)
{
    char path[PATH_MAX];
    size_t idlen = strlen(id);
    snprintf(path, sizeof path, "%s/binds", g->data_dir);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, id, idlen) != 0 || e->d_name[idlen] != '-') {
            continue;
        }
        char staging[PATH_MAX];
        drv_err err;
        if (snprintf(staging, sizeof staging, "%s/%s", path, e->d_name) >= (int)sizeof staging) {
            continue;
        }
        if (pin_release(staging, &err) < 0) {
            buf b = BUF_INIT;
            fprintf(errs, "gc: alloc %s: stale bind pin left: %s\n", id, esc_msg(&b, err.msg));
            buf_free(&b);
        }
    }
    closedir(d);
}

typedef struct report_ctx {
    FILE *errs;
    const char *id;
} report_ctx;

static void on_report(void *ud, const char *path, const char *why)
{
    report_ctx *r = ud;
    buf b = BUF_INIT;
    fprintf(r->errs, "gc: alloc %s: left in place: \"%s\": %s\n", r->id, esc_str(&b, path), why);
    buf_free(&b);
}

static void json_str(buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
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

int allocgc_apply(allocgc *g, const allocgc_container *cs, size_t ncs, int json, FILE *out,
                  FILE *errs, drv_err *err)
{
    state *allocs = NULL;
    int lock = -1;
    buf removed = BUF_INIT, kept = BUF_INIT, b = BUF_INIT;
    char size[32];

    if (g->n == 0) {
        if (json) {
            fprintf(out, "{\"removed\":[],\"kept\":[],\"freed_bytes\":0}\n");
        }
        return 0;
    }
    int rc = allocrec_open(g->data_dir, 1, &allocs, err);
    if (rc == 0) {
        rc = state_lock(allocs, "gc", &lock, err);
    }
    if (rc < 0) {
        state_close(allocs);
        return rc;
    }
    int ddfd = open(g->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int afd = ddfd >= 0 ? openat(ddfd, "alloc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    int afd_errno = errno;
    for (size_t i = 0; i < g->n; i++) {
        allocgc_cand *c = &g->c[i];
        const char *job = c->job ? esc_str(&b, c->job) : NULL;
        char jobtxt[300];
        snprintf(jobtxt, sizeof jobtxt, job ? "job \"%s\"" : "%s", job ? job : "no record");
        /* containers of the alloc, any state */
        buf names = BUF_INIT;
        size_t nc = 0, running = 0;
        for (size_t k = 0; k < ncs; k++) {
            if (cs[k].alloc_id == NULL || strcmp(cs[k].alloc_id, c->alloc_id) != 0) {
                continue;
            }
            buf_puts(&names, " ");
            buf_puts(&names, cs[k].name ? cs[k].name : "?");
            nc++;
            running += cs[k].state == NULL || strcmp(cs[k].state, "exited") != 0;
        }
        if (nc > 0) {
            buf e = BUF_INIT;
            const char *cmd = c->kept_on_purpose && running == 0 ? "docker rm" : "docker rm -f";
            if (c->kept_on_purpose && running == 0) {
                fprintf(errs, "gc: kept alloc %s (%s): its container%s kept for inspection "
                        "(docker.cleanup.container = false); once inspected: %s%s\n",
                        c->alloc_id, jobtxt, nc > 1 ? "s are" : " is", cmd,
                        esc_str(&e, buf_str(&names)));
            } else {
                fprintf(errs, "gc: kept alloc %s (%s, %s): %zu container%s of it still "
                        "exist%s; remove with: %s%s\n", c->alloc_id, jobtxt, c->why, nc,
                        nc > 1 ? "s" : "", nc > 1 ? "" : "s", cmd, esc_str(&e, buf_str(&names)));
            }
            buf_puts(&kept, kept.len ? ",{\"alloc_id\":" : "{\"alloc_id\":");
            json_str(&kept, c->alloc_id);
            buf_puts(&kept, ",\"reason\":\"containers\",\"command\":");
            buf tmp = BUF_INIT;
            buf_puts(&tmp, cmd);
            buf_puts(&tmp, buf_str(&names));
            json_str(&kept, buf_str(&tmp));
            buf_puts(&kept, "}");
            buf_free(&tmp);
            buf_free(&e);
            buf_free(&names);
            g->kept++;
            continue;
        }
        buf_free(&names);
        {
            /* under the lock: an orphan's record may have appeared since (then
             * it is not one); a record may be gone (another gc removed it) */
            allocrec r;
            drv_err e;
            int rrc = allocrec_read(allocs, c->alloc_id, &r, &e);
            allocrec_free(&r);
            if (c->has_record ? rrc == DRV_ENOTFOUND : rrc != DRV_ENOTFOUND) {
                continue;
            }
        }
        release_pins(g, c->alloc_id, errs);
        rmtree_result res;
        memset(&res, 0, sizeof res);
        drv_err e;
        report_ctx rep = { .errs = errs, .id = c->alloc_id };
        int r = 0;
        if (afd >= 0) {
            r = rmtree_at(afd, c->alloc_id, on_report, &rep, &res, &e);
        } else if (afd_errno != ENOENT) {
            r = drv_err_set(&e, DRV_EIO, "cannot open \"%s/alloc\": %s", g->data_dir,
                            strerror(afd_errno));
        }
        if (r == 0 && c->has_record) {
            r = allocrec_remove(allocs, c->alloc_id, &e);
        }
        g->bytes += res.bytes;
        if (r < 0) {
            buf m = BUF_INIT;
            fprintf(errs, "gc: alloc %s (%s) not removed completely (its record stays): %s\n",
                    c->alloc_id, jobtxt, esc_msg(&m, e.msg));
            buf_free(&m);
            buf_puts(&kept, kept.len ? ",{\"alloc_id\":" : "{\"alloc_id\":");
            json_str(&kept, c->alloc_id);
            buf_puts(&kept, ",\"reason\":\"error\",\"error\":");
            json_str(&kept, e.msg);
            buf_puts(&kept, "}");
            g->failed++;
            continue;
        }
        g->removed++;
        allocgc_size(res.bytes, size, sizeof size);
        if (!json) {
            fprintf(out, "gc: removed alloc %s (%s, %s)\n", c->alloc_id, jobtxt, size);
        }
        buf_puts(&removed, removed.len ? ",{\"alloc_id\":" : "{\"alloc_id\":");
        json_str(&removed, c->alloc_id);
        buf_puts(&removed, ",\"job\":");
        if (c->job) {
            json_str(&removed, c->job);
        } else {
            buf_puts(&removed, "null");
        }
        buf_appendf(&removed, ",\"why\":\"%s\",\"bytes\":%llu}", c->why, res.bytes);
    }
    allocgc_size(g->bytes, size, sizeof size);
    if (json) {
        fprintf(out, "{\"removed\":[%s],\"kept\":[%s],\"freed_bytes\":%llu}\n",
                buf_str(&removed), buf_str(&kept), g->bytes);
    } else {
        fprintf(out, "gc: removed %zu alloc%s, %s freed; %zu kept\n", g->removed,
                g->removed == 1 ? "" : "s", size, g->kept + g->failed);
    }
    buf_free(&removed);
    buf_free(&kept);
    buf_free(&b);
    if (afd >= 0) {
        close(afd);
    }
    if (ddfd >= 0) {
        close(ddfd);
    }
    state_unlock(lock);
    state_close(allocs);
    if (g->failed > 0) {
        return drv_err_set(err, DRV_EIO, "gc: %zu alloc%s could not be removed completely",
                           g->failed, g->failed == 1 ? "" : "s");
    }
    return 0;
}

void allocgc_free(allocgc *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->c[i].alloc_id);
        free(g->c[i].job);
    }
    free(g->c);
    free(g->data_dir);
    memset(g, 0, sizeof *g);
}

void allocgc_containers_free(allocgc_container *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cs[i].alloc_id);
        free(cs[i].name);
        free(cs[i].state);
    }
    free(cs);
}
