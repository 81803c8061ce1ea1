/* ports.c: host port allocation with a cross-process ledger (see ports.h). */
#include "ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "state.h"

/* Random picks before falling back to a linear scan (Nomad also tries 20). */
#define RANDOM_TRIES 20

typedef struct ledger ledger;

typedef struct alloc_ctx {
    const struct ledger *ledger;   /* NULL: no ledger (peek without a state dir) */
    const char *ip;
    int peek;
    int *chosen;             /* ports picked so far in this call */
    size_t nchosen;
    uint64_t rng;
} alloc_ctx;

/* --- bind probe ----------------------------------------------------------- */

static int bind_in_use(int type, const char *ip, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
        return 0;
    }
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    /* SO_REUSEADDR stays off: any holder of the port makes bind fail. */
    int in_use = bind(fd, (const struct sockaddr *)&sin, sizeof sin) < 0 && errno == EADDRINUSE;
    close(fd);
    return in_use;
}

int ports_bound(const char *ip, int port)
{
    const char *addrs[2] = { "0.0.0.0", ip };
    size_t naddrs = (ip != NULL && strcmp(ip, "0.0.0.0") != 0) ? 2 : 1;
    for (size_t i = 0; i < naddrs; i++) {
        if (bind_in_use(SOCK_STREAM, addrs[i], port) || bind_in_use(SOCK_DGRAM, addrs[i], port)) {
            return 1;
        }
    }
    return 0;
}

/* --- ledger --------------------------------------------------------------- */

/* Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22),
 * or 0 when unknown. Tells a live owner from a recycled pid. */
static unsigned long long proc_start(long pid)
{
    char path[64], line[1024];
    unsigned long long start = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');       /* comm may contain spaces */
    if (p == NULL) {
        return 0;
    }
    /* after ") " come fields 3.. ; starttime is field 22 */
    p++;
    for (int field = 3; field <= 22 && p != NULL; field++) {
        while (*p == ' ') {
            p++;
        }
        if (field == 22) {
            start = strtoull(p, NULL, 10);
            break;
        }
        p = strchr(p, ' ');
    }
    return start;
}

/* --- ledger: one record per alloc, state/ports-<alloc_id>.json ---------- */

#define REC_PREFIX "ports-"
#define REC_SUFFIX ".json"

typedef struct rec {
    char *alloc;                 /* alloc id (from the file name) */
    long pid;                    /* owner; <= 0: garbled record */
    unsigned long long start;
    int *ports;
    size_t nports;
    int live;
    int mine;                    /* owned by this process */
    buf raw;                     /* the file as read */
} rec;

struct ledger {
    rec *v;
    size_t n;
};

static void ledger_free(ledger *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].alloc);
        free(l->v[i].ports);
        buf_free(&l->v[i].raw);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int owner_live(long pid, unsigned long long start)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
        return 0;
    }
    if (start != 0) {
        unsigned long long now = proc_start(pid);
        return now == 0 || now == start;   /* unreadable /proc: trust the pid */
    }
    return 1;
}

static unsigned long long my_start(void)
{
    static unsigned long long start;
    static long for_pid;
    if (for_pid != (long)getpid()) {    /* recomputed in a forked child */
        start = proc_start((long)getpid());
        for_pid = (long)getpid();
    }
    return start;
}

static int rec_name(char *out, size_t len, const char *alloc)
{
    return snprintf(out, len, REC_PREFIX "%s" REC_SUFFIX, alloc) < (int)len && state_name_ok(out);
}

/* The number after `field` (e.g. "\"pid\":") at or after `from`, or -1. */
static long long field_num(const char *from, const char *field, const char **end)
{
    const char *p = strstr(from, field);
    if (p == NULL) {
        return -1;
    }
    p += strlen(field);
    if (*p < '0' || *p > '9') {
        return -1;
    }
    char *e = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &e, 10);
    if (errno != 0 || v > (unsigned long long)LLONG_MAX) {
        return -1;
    }
    if (end != NULL) {
        *end = e;
    }
    return (long long)v;
}

/* Parses a record written by rec_json. Strings are JSON-escaped there, so
 * the field names searched for cannot occur inside one. Garbled: pid = -1. */
static void rec_parse(rec *r)
{
    const char *t = buf_str(&r->raw);
    char want[300];
    r->pid = -1;
    snprintf(want, sizeof want, "{\"version\":1,\"alloc_id\":\"%s\",", r->alloc);
    if (strncmp(t, want, strlen(want)) != 0 || r->raw.len < 2 ||
        strcmp(t + r->raw.len - 2, "}\n") != 0) {
        return;
    }
    const char *p = strstr(t, "\"owner\":{");
    const char *q = p ? strstr(p, "\"ports\":[") : NULL;
    if (q == NULL) {
        return;
    }
    long long pid = field_num(p, "\"pid\":", NULL);
    long long start = field_num(p, "\"start\":", NULL);
    if (pid <= 0 || pid > INT_MAX || start < 0) {
        return;
    }
    size_t cap = 8;
    r->ports = drv_xcalloc(cap, sizeof *r->ports);
    const char *at = q;
    long long port;
    while ((port = field_num(at, "{\"port\":", &at)) >= 0) {
        if (port < 1 || port > 65535) {
            return;
        }
        if (r->nports == cap) {
            cap *= 2;
            int *nv = realloc(r->ports, cap * sizeof *nv);
            if (nv == NULL) {
                abort();
            }
            r->ports = nv;
        }
        r->ports[r->nports++] = (int)port;
    }
    r->pid = (long)pid;
    r->start = (unsigned long long)start;
}

/* Reads every record; stale ones (owner gone, pid reused, garbled) are
 * removed unless peeking. */
static int ledger_load(state *st, int peek, ledger *l, drv_err *err)
{
    char **names = NULL;
    size_t n = 0;
    memset(l, 0, sizeof *l);
    int rc = state_list(st, REC_PREFIX, &names, &n, err);
    if (rc < 0) {
        return rc;
    }
    l->v = drv_xcalloc(n + 1, sizeof *l->v);
    size_t plen = strlen(REC_PREFIX), slen = strlen(REC_SUFFIX);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len <= plen + slen || strcmp(names[i] + len - slen, REC_SUFFIX) != 0) {
            continue;
        }
        rec *r = &l->v[l->n];
        drv_err rerr;
        r->raw = (buf)BUF_INIT;
        if (state_read(st, names[i], &r->raw, &rerr) < 0) {
            buf_free(&r->raw);
            if (rerr.code == DRV_ENOTFOUND) {
                continue;     /* released meanwhile (a peek holds no lock) */
            }
            state_list_free(names);
            if (err != NULL) {
                *err = rerr;
            }
            return rerr.code;
        }
        r->alloc = drv_xmalloc(len - plen - slen + 1);
        memcpy(r->alloc, names[i] + plen, len - plen - slen);
        r->alloc[len - plen - slen] = '\0';
        rec_parse(r);
        r->mine = r->pid == (long)getpid() && (r->start == 0 || r->start == my_start());
        r->live = r->mine || owner_live(r->pid, r->start);
        l->n++;
        if (!r->live && !peek) {
            state_remove(st, names[i], NULL);
        }
    }
    state_list_free(names);
    return 0;
}

static void json_str(buf *out, const char *s)
{
    buf_puts(out, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_appendf(out, "\\%c", *p);
        } else if (*p < 0x20 || *p == 0x7f) {
            buf_appendf(out, "\\u%04x", *p);
        } else {
            buf_append(out, p, 1);
        }
    }
    buf_puts(out, "\"");
}

/* The record of `alloc`: `keep` (ports of an earlier record of ours), then
 * the requests of this alloc. */
static void rec_json(buf *out, const char *alloc, const rec *keep, const port_req *reqs,
                     const char *const *allocs, size_t n)
{
    int first = 1;
    buf_appendf(out, "{\"version\":1,\"alloc_id\":\"%s\",\"owner\":{\"pid\":%ld,\"start\":%llu},"
                "\"ports\":[", alloc, (long)getpid(), my_start());
    for (size_t i = 0; keep != NULL && i < keep->nports; i++) {
        buf_appendf(out, "%s{\"port\":%d}", first ? "" : ",", keep->ports[i]);
        first = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(allocs[i], alloc) == 0) {
            buf_appendf(out, "%s{\"port\":%d,\"key\":", first ? "" : ",", reqs[i].result);
            json_str(out, reqs[i].key);
            buf_puts(out, "}");
            first = 0;
        }
    }
    buf_puts(out, "]}\n");
}

static int ledger_taken(const alloc_ctx *c, int port)
{
    for (size_t i = 0; c->ledger != NULL && i < c->ledger->n; i++) {
        const rec *r = &c->ledger->v[i];
        for (size_t k = 0; r->live && k < r->nports; k++) {
            if (r->ports[k] == port) {
                return 1;
            }
        }
    }
    return 0;
}

/* The alloc id of each request: its alloc_id, else the key up to '/'. */
static char **req_allocs(const port_req *reqs, size_t n)
{
    char **v = drv_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].alloc_id != NULL) {
            v[i] = drv_xstrdup(reqs[i].alloc_id);
        } else {
            const char *k = reqs[i].key ? reqs[i].key : "";
            const char *sl = strchr(k, '/');
            size_t len = sl ? (size_t)(sl - k) : strlen(k);
            v[i] = drv_xmalloc(len + 1);
            memcpy(v[i], k, len);
            v[i][len] = '\0';
        }
    }
    return v;
}

static void free_allocs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* 1 if allocs[i] is the first request of its alloc. */
static int first_of_alloc(char *const *allocs, size_t i)
{
    for (size_t k = 0; k < i; k++) {
        if (strcmp(allocs[k], allocs[i]) == 0) {
            return 0;
        }
    }
    return 1;
}

static rec *ledger_find(ledger *l, const char *alloc)
{
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        if (strcmp(l->v[i].alloc, alloc) == 0) {
            return &l->v[i];
        }
    }
    return NULL;
}

/* --- selection ------------------------------------------------------------ */

static uint64_t next_rand(alloc_ctx *c)
{
    /* xorshift64*: plenty for spreading picks over a range */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 2685821657736338717ULL;
}

static int chosen(const alloc_ctx *c, int port)
{
    for (size_t i = 0; i < c->nchosen; i++) {
        if (c->chosen[i] == port) {
            return 1;
        }
    }
    return 0;
}

static int port_free(const alloc_ctx *c, int port)
{
    return !chosen(c, port) && !ledger_taken(c, port) && !ports_bound(c->ip, port);
}

/* "alloc/task/label" -> task and label (the key itself when not in that form). */
static void describe(const char *key, char *task, size_t tlen, char *label, size_t llen)
{
    const char *k = key ? key : "";
    const char *a = strchr(k, '/');
    const char *l = strrchr(k, '/');
    if (a != NULL && l != NULL && l > a) {
        snprintf(task, tlen, "%.*s", (int)(l - a - 1), a + 1);
        snprintf(label, llen, "%s", l + 1);
    } else {
        snprintf(task, tlen, "%s", k);
        snprintf(label, llen, "%s", k);
    }
}

static int pick_dynamic(alloc_ctx *c, int min, int max)
{
    uint64_t span = (uint64_t)(max - min) + 1;
    for (int i = 0; i < RANDOM_TRIES; i++) {
        int p = min + (int)(next_rand(c) % span);
        if (port_free(c, p)) {
            return p;
        }
    }
    int start = (int)(next_rand(c) % span);
    for (uint64_t i = 0; i < span; i++) {
        int p = min + (int)(((uint64_t)start + i) % span);
        if (port_free(c, p)) {
            return p;
        }
    }
    return 0;
}

static int allocate(alloc_ctx *c, int min, int max, port_req *reqs, size_t n, drv_err *err)
{
    char task[256], label[128];

    if (min < 1 || max > 65535 || min > max) {
        return drv_err_set(err, DRV_ECONFIG,
                           "agent config: invalid dynamic port range %d..%d (want 1 <= min <= max <= 65535)",
                           min, max);
    }
    /* static ports first, so a dynamic pick never takes one asked for later */
    for (size_t i = 0; i < n; i++) {
        int p = reqs[i].static_port;
        reqs[i].result = 0;
        if (p == 0) {
            continue;
        }
        describe(reqs[i].key, task, sizeof task, label, sizeof label);
        if (p < 1 || p > 65535) {
            return drv_err_set(err, DRV_EINVALID, "task \"%s\": static port %d (\"%s\") is out of range 1..65535",
                               task, p, label);
        }
        if (!port_free(c, p)) {
            return drv_err_set(err, DRV_EINVALID, "task \"%s\": static port %d (\"%s\") is already in use",
                               task, p, label);
        }
        reqs[i].result = p;
        c->chosen[c->nchosen++] = p;
    }
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].static_port != 0) {
            continue;
        }
        int p = pick_dynamic(c, min, max);
        if (p == 0) {
            describe(reqs[i].key, task, sizeof task, label, sizeof label);
            return drv_err_set(err, DRV_ETASK, "task \"%s\": no free dynamic port for \"%s\" in %d..%d",
                               task, label, min, max);
        }
        reqs[i].result = p;
        c->chosen[c->nchosen++] = p;
    }
    return 0;
}

static void ctx_init(alloc_ctx *c, const ledger *l, const char *ip, int peek, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    memset(c, 0, sizeof *c);
    c->ledger = l;
    c->ip = ip != NULL && *ip != '\0' ? ip : "0.0.0.0";
    c->peek = peek;
    c->chosen = drv_xcalloc(n + 1, sizeof *c->chosen);
    c->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
             (uint64_t)(uintptr_t)c;
    if (c->rng == 0) {
        c->rng = 0x9e3779b97f4a7c15ULL;
    }
}

static void clear_results(port_req *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        reqs[i].result = 0;
    }
}

/* Every alloc id must make a valid record name and have no live record of
 * another owner. */
static int check_allocs(ledger *l, char *const *allocs, size_t n, drv_err *err)
{
    char name[256];
    for (size_t i = 0; i < n; i++) {
        if (!rec_name(name, sizeof name, allocs[i])) {
            return drv_err_set(err, DRV_EINTERNAL, "ports: alloc id not usable in a state file "
                               "name: \"%s\"", allocs[i]);
        }
        rec *r = ledger_find(l, allocs[i]);
        if (r != NULL && r->live && !r->mine) {
            return drv_err_set(err, DRV_EINTERNAL, "ports: alloc already has ports owned by "
                               "process %ld: \"%s\"", r->pid, allocs[i]);
        }
    }
    return 0;
}

/* Writes one record per alloc of `reqs`; all or nothing. */
static int write_records(state *st, ledger *l, char *const *allocs, const port_req *reqs,
                         size_t n, drv_err *err)
{
    char name[256];
    int rc = 0;
    size_t done = 0;
    for (; rc == 0 && done < n; done++) {
        if (!first_of_alloc(allocs, done)) {
            continue;
        }
        rec *r = ledger_find(l, allocs[done]);
        buf b = BUF_INIT;
        rec_json(&b, allocs[done], r != NULL && r->mine ? r : NULL, reqs,
                 (const char *const *)allocs, n);
        rec_name(name, sizeof name, allocs[done]);
        rc = state_write(st, name, b.data, b.len, err);
        buf_free(&b);
    }
    if (rc < 0) {
        /* undo: our earlier records back as they were, new ones removed */
        for (size_t i = 0; i + 1 < done; i++) {
            if (!first_of_alloc(allocs, i)) {
                continue;
            }
            rec *r = ledger_find(l, allocs[i]);
            rec_name(name, sizeof name, allocs[i]);
            if (r != NULL && r->mine) {
                state_write(st, name, r->raw.data, r->raw.len, NULL);
            } else {
                state_remove(st, name, NULL);
            }
        }
    }
    return rc;
}

int ports_reserve(const char *data_dir, const char *ip, int min, int max,
                  port_req *reqs, size_t n, drv_err *err)
{
    alloc_ctx c;
    ledger l;
    state *st = NULL;
    int fd = -1;

    if (data_dir == NULL || *data_dir == '\0') {
        return drv_err_set(err, DRV_EINTERNAL, "ports: no data dir for the port ledger");
    }
    int rc = state_open(data_dir, &st, err);
    if (rc < 0) {
        return rc;
    }
    rc = state_lock(st, "ports", &fd, err);
    if (rc < 0) {
        state_close(st);
        return rc;
    }
    char **allocs = req_allocs(reqs, n);
    rc = ledger_load(st, 0, &l, err);
    if (rc == 0) {
        rc = check_allocs(&l, allocs, n, err);
    }
    ctx_init(&c, &l, ip, 0, n);
    if (rc == 0) {
        rc = allocate(&c, min, max, reqs, n, err);
    }
    if (rc == 0) {
        rc = write_records(st, &l, allocs, reqs, n, err);
    }
    if (rc < 0) {
        clear_results(reqs, n);
    }
    state_unlock(fd);
    state_close(st);
    free_allocs(allocs, n);
    ledger_free(&l);
    free(c.chosen);
    return rc;
}

int ports_peek(const char *data_dir, const char *ip, int min, int max,
               port_req *reqs, size_t n, drv_err *err)
{
    alloc_ctx c;
    ledger l;
    state *st = NULL;

    memset(&l, 0, sizeof l);
    if (data_dir != NULL && *data_dir != '\0') {
        drv_err e;
        /* an unreadable ledger only makes the peek less accurate */
        if (state_open_existing(data_dir, &st, &e) == 0 && st != NULL) {
            ledger_load(st, 1, &l, &e);
        }
    }
    ctx_init(&c, &l, ip, 1, n);
    int rc = allocate(&c, min, max, reqs, n, err);
    if (rc < 0) {
        clear_results(reqs, n);
    }
    free(c.chosen);
    ledger_free(&l);
    state_close(st);
    return rc;
}

int ports_release(const char *data_dir, const port_req *reqs, size_t n)
{
    char name[256];
    state *st = NULL;
    drv_err e;
    int fd = -1;
    int rc = 0;

    if (data_dir == NULL || *data_dir == '\0' || n == 0) {
        return 0;
    }
    if (state_open_existing(data_dir, &st, &e) < 0) {
        return DRV_EIO;
    }
    if (st == NULL) {
        return 0;
    }
    if (state_lock(st, "ports", &fd, &e) < 0) {
        state_close(st);
        return DRV_EIO;
    }
    char **allocs = req_allocs(reqs, n);
    for (size_t i = 0; i < n; i++) {
        if (!first_of_alloc(allocs, i) || !rec_name(name, sizeof name, allocs[i])) {
            continue;
        }
        rec r;
        memset(&r, 0, sizeof r);
        r.raw = (buf)BUF_INIT;
        if (state_read(st, name, &r.raw, &e) < 0) {
            rc = e.code == DRV_ENOTFOUND ? rc : DRV_EIO;
            buf_free(&r.raw);
            continue;
        }
        r.alloc = allocs[i];
        rec_parse(&r);
        int mine = r.pid == (long)getpid() && (r.start == 0 || r.start == my_start());
        if (mine) {
            /* the ports of this alloc that `reqs` does not name stay */
            rec keep = r;
            size_t k = 0;
            keep.ports = drv_xcalloc(r.nports + 1, sizeof *keep.ports);
            for (size_t p = 0; p < r.nports; p++) {
                int named = 0;
                for (size_t q = 0; q < n; q++) {
                    named |= reqs[q].result == r.ports[p] && strcmp(allocs[q], allocs[i]) == 0;
                }
                if (!named) {
                    keep.ports[k++] = r.ports[p];
                }
            }
            keep.nports = k;
            if (k == 0) {
                rc = state_remove(st, name, &e) < 0 ? DRV_EIO : rc;
            } else {
                buf b = BUF_INIT;
                rec_json(&b, allocs[i], &keep, reqs, NULL, 0);
                rc = state_write(st, name, b.data, b.len, &e) < 0 ? DRV_EIO : rc;
                buf_free(&b);
            }
            free(keep.ports);
        }
        free(r.ports);
        buf_free(&r.raw);
    }
    free_allocs(allocs, n);
    state_unlock(fd);
    state_close(st);
    return rc;
}
