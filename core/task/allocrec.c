/* allocrec.c: the durable record of one allocation (see allocrec.h). */
#include "allocrec.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"

int allocrec_id_ok(const char *id)
{
    static const int groups[] = { 8, 4, 4, 4, 12 };
    const char *p = id;
    if (id == NULL) {
        return 0;
    }
    for (size_t g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i++, p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) {
                return 0;
            }
        }
        if (g < 4 && *p++ != '-') {
            return 0;
        }
    }
    return *p == '\0';
}

int allocrec_ended(const allocrec *r)
{
    return r->status != NULL && strcmp(r->status, "ended") == 0;
}

allocrec_task *allocrec_add_task(allocrec *r, const char *task, const char *container)
{
    allocrec_task *nt = realloc(r->tasks, (r->ntasks + 1) * sizeof *nt);
    if (nt == NULL) {
        abort();
    }
    r->tasks = nt;
    allocrec_task *t = &r->tasks[r->ntasks++];
    memset(t, 0, sizeof *t);
    t->task = task ? drv_xstrdup(task) : NULL;
    t->container = container ? drv_xstrdup(container) : NULL;
    return t;
}

long long allocrec_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

/* --- encoding ------------------------------------------------------------ */

static void wstr(buf *b, const char *s)
{
    if (s == NULL) {
        buf_puts(b, "null");
        return;
    }
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

static const char *jbool(int v)
{
    return v ? "true" : "false";
}

void allocrec_encode(const allocrec *r, buf *out)
{
    buf_appendf(out, "{\"version\":%d,\"alloc_id\":", ALLOCREC_VERSION);
    wstr(out, r->alloc_id);
    buf_puts(out, ",\"job\":");
    wstr(out, r->job);
    buf_puts(out, ",\"group\":");
    wstr(out, r->group);
    buf_appendf(out, ",\"owner\":{\"pid\":%ld,\"start\":%llu,\"boot\":", r->owner.pid,
                r->owner.start);
    wstr(out, r->owner.boot);
    buf_appendf(out, "},\"created\":%lld,\"status\":", r->created_ms);
    wstr(out, r->status != NULL ? r->status : "running");
    buf_appendf(out, ",\"ended\":%lld,\"keep_containers\":%s,\"tasks\":[", r->ended_ms,
                jbool(r->keep_containers));
    for (size_t i = 0; i < r->ntasks; i++) {
        const allocrec_task *t = &r->tasks[i];
        buf_puts(out, i ? ",{\"task\":" : "{\"task\":");
        wstr(out, t->task);
        buf_puts(out, ",\"container\":");
        wstr(out, t->container);
        if (t->has_exit) {
            buf_appendf(out, ",\"exit_code\":%ld", t->exit_code);
        }
        buf_appendf(out, ",\"oom_killed\":%s", jbool(t->oom_killed));
        if (t->error != NULL) {
            buf_puts(out, ",\"error\":");
            wstr(out, t->error);
        }
        buf_appendf(out, ",\"left_behind\":%s,\"kept\":%s}", jbool(t->left_behind),
                    jbool(t->kept));
    }
    buf_puts(out, "]}\n");
}

/* --- decoding ------------------------------------------------------------ */

static long long jint(const json_val *o, const char *key, int *ok)
{
    const json_val *v = json_get(o, key);
    if (v == NULL) {
        return 0;
    }
    if (v->t != JSON_NUM || !v->num.integral) {
        *ok = 0;
        return 0;
    }
    return v->num.i;
}

static int jtrue(const json_val *o, const char *key)
{
    const json_val *v = json_get(o, key);
    return v != NULL && v->t == JSON_BOOL && v->b;
}

static char *jdup(const json_val *o, const char *key)
{
    const char *s = json_get_str(o, key);
    return s != NULL ? drv_xstrdup(s) : NULL;
}

int allocrec_decode(const char *s, size_t n, const char *what, allocrec *out, drv_err *err)
{
    json_val root;
    int ok = 1;
    memset(out, 0, sizeof *out);
    if (json_parse(s, n, &root) < 0 || root.t != JSON_OBJ) {
        if (root.t != JSON_NULL) {
            json_free(&root);
        }
        return drv_err_set(err, DRV_EINVALID, "%s: not an alloc record (invalid JSON)", what);
    }
    long long version = jint(&root, "version", &ok);
    const char *id = json_get_str(&root, "alloc_id");
    const json_val *tasks = json_get(&root, "tasks");
    const json_val *ow = json_get(&root, "owner");
    if (!ok || version < 1 || !allocrec_id_ok(id) || ow == NULL || ow->t != JSON_OBJ ||
        (tasks != NULL && tasks->t != JSON_ARR)) {
        json_free(&root);
        return drv_err_set(err, DRV_EINVALID, "%s: not an alloc record (version, alloc_id, "
                           "owner or tasks missing or malformed)", what);
    }
    out->version = version > 1000000 ? 1000000 : (int)version;
    out->newer = version > ALLOCREC_VERSION;
    out->alloc_id = drv_xstrdup(id);
    out->job = jdup(&root, "job");
    out->group = jdup(&root, "group");
    out->status = jdup(&root, "status");
    out->created_ms = jint(&root, "created", &ok);
    out->ended_ms = jint(&root, "ended", &ok);
    out->keep_containers = jtrue(&root, "keep_containers");
    long long pid = jint(ow, "pid", &ok);
    out->owner.pid = pid > 0 && pid < 0x7fffffffLL ? (long)pid : 0;
    const json_val *start = json_get(ow, "start");
    if (start != NULL && start->t == JSON_NUM && start->num.integral && start->num.i >= 0) {
        out->owner.start = (unsigned long long)start->num.i;
    }
    const char *boot = json_get_str(ow, "boot");
    snprintf(out->owner.boot, sizeof out->owner.boot, "%s", boot ? boot : "");
    for (size_t i = 0; tasks != NULL && i < tasks->n; i++) {
        const json_val *tv = &tasks->v[i];
        if (tv->t != JSON_OBJ) {
            continue;
        }
        allocrec_task *t = allocrec_add_task(out, json_get_str(tv, "task"),
                                             json_get_str(tv, "container"));
        const json_val *code = json_get(tv, "exit_code");
        if (code != NULL && code->t == JSON_NUM && code->num.integral) {
            t->has_exit = 1;
            t->exit_code = (long)code->num.i;
        }
        t->oom_killed = jtrue(tv, "oom_killed");
        t->error = jdup(tv, "error");
        t->left_behind = jtrue(tv, "left_behind");
        t->kept = jtrue(tv, "kept");
    }
    json_free(&root);
    if (!ok) {
        allocrec_free(out);
        return drv_err_set(err, DRV_EINVALID, "%s: not an alloc record (a number is malformed)",
                           what);
    }
    return 0;
}

/* --- files --------------------------------------------------------------- */

int allocrec_open(const char *data_dir, int create, state **out, drv_err *err)
{
    state *st = NULL;
    *out = NULL;
    int rc = create ? state_open(data_dir, &st, err) : state_open_existing(data_dir, &st, err);
    if (rc < 0 || st == NULL) {
        return rc;
    }
    rc = state_open_sub(st, ALLOCREC_DIR, create, out, err);
    state_close(st);
    return rc;
}

static int file_name(const char *id, char *name, size_t n)
{
    if (!allocrec_id_ok(id)) {
        return -1;
    }
    snprintf(name, n, "%s.json", id);
    return 0;
}

int allocrec_write(state *allocs, const allocrec *r, drv_err *err)
{
    char name[64];
    if (file_name(r->alloc_id, name, sizeof name) < 0) {
        return drv_err_set(err, DRV_EINTERNAL, "alloc record: invalid alloc id: \"%s\"",
                           r->alloc_id ? r->alloc_id : "");
    }
    buf b = BUF_INIT;
    allocrec_encode(r, &b);
    int rc = state_write(allocs, name, b.data, b.len, err);
    buf_free(&b);
    return rc;
}

int allocrec_read(state *allocs, const char *alloc_id, allocrec *out, drv_err *err)
{
    char name[64];
    memset(out, 0, sizeof *out);
    if (file_name(alloc_id, name, sizeof name) < 0) {
        return drv_err_set(err, DRV_EINVALID, "alloc record: invalid alloc id: \"%s\"",
                           alloc_id ? alloc_id : "");
    }
    buf b = BUF_INIT;
    int rc = state_read(allocs, name, &b, err);
    if (rc == 0) {
        char what[PATH_MAX];
        snprintf(what, sizeof what, "%s/%s", state_path(allocs), name);
        rc = allocrec_decode(b.data ? b.data : "", b.len, what, out, err);
        if (rc == 0 && strcmp(out->alloc_id, alloc_id) != 0) {
            allocrec_free(out);
            rc = drv_err_set(err, DRV_EINVALID, "%s: names another alloc: \"%s\"", what, alloc_id);
        }
    }
    buf_free(&b);
    return rc;
}

int allocrec_remove(state *allocs, const char *alloc_id, drv_err *err)
{
    char name[64];
    if (file_name(alloc_id, name, sizeof name) < 0) {
        return drv_err_set(err, DRV_EINVALID, "alloc record: invalid alloc id: \"%s\"",
                           alloc_id ? alloc_id : "");
    }
    return state_remove(allocs, name, err);
}

int allocrec_list(state *allocs, char ***ids, size_t *n, drv_err *err)
{
    char **names;
    size_t k = 0, total;
    int rc = state_list(allocs, "", &names, &total, err);
    if (rc < 0) {
        return rc;
    }
    for (size_t i = 0; i < total; i++) {
        size_t len = strlen(names[i]);
        if (len == 36 + 5 && strcmp(names[i] + 36, ".json") == 0) {
            names[i][36] = '\0';
            if (allocrec_id_ok(names[i])) {
                names[k++] = names[i];
                continue;
            }
        }
        free(names[i]);
    }
    names[k] = NULL;
    *ids = names;
    *n = k;
    return 0;
}

void allocrec_free(allocrec *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->ntasks; i++) {
        free(r->tasks[i].task);
        free(r->tasks[i].container);
        free(r->tasks[i].error);
    }
    free(r->tasks);
    free(r->alloc_id);
    free(r->job);
    free(r->group);
    free(r->status);
    memset(r, 0, sizeof *r);
}
