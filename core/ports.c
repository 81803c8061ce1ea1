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

/* Random picks before falling back to a linear scan (Nomad also tries 20). */
#define RANDOM_TRIES 20

typedef struct alloc_ctx {
    const char *data_dir;    /* NULL: no ledger (peek without a data dir) */
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

static void entry_path(char *out, size_t len, const char *data_dir, int port)
{
    snprintf(out, len, "%s/state/ports/%d", data_dir, port);
}

/* Owner pid of a ledger entry: >0, 0 if absent, -1 if unreadable/garbled. */
static long entry_owner(const char *path, unsigned long long *start)
{
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    if (fscanf(f, "%ld %llu", &pid, start) != 2 || pid <= 0) {
        pid = -1;
    }
    fclose(f);
    return pid;
}

/* 1 if `port` is held by a live owner. Stale entries (owner gone, pid
 * recycled, garbled file) are removed unless peeking. */
static int ledger_taken(const alloc_ctx *c, int port)
{
    char path[PATH_MAX];
    unsigned long long start = 0;

    if (c->data_dir == NULL) {
        return 0;
    }
    entry_path(path, sizeof path, c->data_dir, port);
    long pid = entry_owner(path, &start);
    if (pid == 0) {
        return 0;
    }
    if (pid == (long)getpid()) {
        return 1;
    }
    int live = pid > 0 && !(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
    if (live && start != 0) {
        unsigned long long now = proc_start(pid);
        live = now == 0 || now == start;
    }
    if (!live && !c->peek) {
        unlink(path);
    }
    return live;
}

static int ledger_write(const char *data_dir, int port, const char *alloc, const char *key,
                        drv_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    entry_path(path, sizeof path, data_dir, port);
    snprintf(tmp, sizeof tmp, "%s/state/ports/.%d.%ld.tmp", data_dir, port, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return drv_err_set(err, DRV_EIO, "ports: cannot write \"%s\": %s", tmp, strerror(errno));
    }
    fprintf(f, "%ld %llu %s\n%s\n", (long)getpid(), proc_start((long)getpid()),
            alloc && *alloc ? alloc : "-", key ? key : "");
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return drv_err_set(err, DRV_EIO, "ports: cannot write \"%s\": %s", path, strerror(e));
    }
    return 0;
}

/* mkdir -p with `mode` for the last component and 0755 above it. */
static int mkdirs(const char *path, mode_t mode, drv_err *err)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        return drv_err_set(err, DRV_EIO, "ports: path too long: \"%s\"", path);
    }
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                return drv_err_set(err, DRV_EIO, "ports: cannot create \"%s\": %s", p, strerror(errno));
            }
            *s = '/';
        }
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST) {
        return drv_err_set(err, DRV_EIO, "ports: cannot create \"%s\": %s", p, strerror(errno));
    }
    return 0;
}

static int lock_ledger(const char *data_dir, int *fd, drv_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/state/ports", data_dir);
    int rc = mkdirs(path, 0700, err);
    if (rc < 0) {
        return rc;
    }
    snprintf(path, sizeof path, "%s/state/ports.lock", data_dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) {
        return drv_err_set(err, DRV_EIO, "ports: cannot open \"%s\": %s", path, strerror(errno));
    }
    while (flock(*fd, LOCK_EX) < 0) {
        if (errno != EINTR) {
            int e = errno;
            close(*fd);
            *fd = -1;
            return drv_err_set(err, DRV_EIO, "ports: cannot lock \"%s\": %s", path, strerror(e));
        }
    }
    return 0;
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

static void ctx_init(alloc_ctx *c, const char *data_dir, const char *ip, int peek, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    memset(c, 0, sizeof *c);
    c->data_dir = data_dir;
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

int ports_reserve(const char *data_dir, const char *ip, int min, int max,
                  const char *owner_alloc, port_req *reqs, size_t n, drv_err *err)
{
    alloc_ctx c;
    int fd = -1;

    if (data_dir == NULL || *data_dir == '\0') {
        return drv_err_set(err, DRV_EINTERNAL, "ports: no data dir for the port ledger");
    }
    int rc = lock_ledger(data_dir, &fd, err);
    if (rc < 0) {
        return rc;
    }
    ctx_init(&c, data_dir, ip, 0, n);
    rc = allocate(&c, min, max, reqs, n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = ledger_write(data_dir, reqs[i].result, owner_alloc, reqs[i].key, err);
        if (rc < 0) {
            ports_release(data_dir, reqs, i);   /* all or nothing */
        }
    }
    if (rc < 0) {
        clear_results(reqs, n);
    }
    close(fd);    /* drops the lock */
    free(c.chosen);
    return rc;
}

int ports_peek(const char *data_dir, const char *ip, int min, int max,
               port_req *reqs, size_t n, drv_err *err)
{
    alloc_ctx c;
    ctx_init(&c, data_dir != NULL && *data_dir != '\0' ? data_dir : NULL, ip, 1, n);
    int rc = allocate(&c, min, max, reqs, n, err);
    if (rc < 0) {
        clear_results(reqs, n);
    }
    free(c.chosen);
    return rc;
}

int ports_release(const char *data_dir, const port_req *reqs, size_t n)
{
    char path[PATH_MAX];
    int rc = 0;

    /* No lock needed: only this process writes or removes its own entries
     * while it lives. */
    for (size_t i = 0; data_dir != NULL && i < n; i++) {
        unsigned long long start = 0;
        if (reqs[i].result <= 0) {
            continue;
        }
        entry_path(path, sizeof path, data_dir, reqs[i].result);
        if (entry_owner(path, &start) == (long)getpid() && unlink(path) < 0 && errno != ENOENT) {
            rc = DRV_EIO;
        }
    }
    return rc;
}
