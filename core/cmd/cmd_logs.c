/*
 * cmd_logs.c: `drvctl logs ALLOC TASK`: a task's collected output, read
 * from <data_dir>/alloc/<alloc_id>/alloc/logs/<task>.<stream>.N (logread.h),
 * so it works for foreground runs from another terminal and after the run
 * ended, with no agent.
 *
 * ALLOC is an alloc id or a unique prefix of one (at least 4 hex digits).
 * The alloc dir's top level is not visible to containers, but its alloc/
 * subtree is (/alloc): alloc/logs and every file in it are opened beneath
 * the alloc dir without following a symlink (a task can plant
 * logs/web.stdout.0 -> /etc/shadow: refused, exit 77).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "cmd.h"
#include "conf.h"
#include "esc.h"
#include "fs.h"
#include "logread.h"
#include "script.h"
#include "log.h"

/* An escaped partial line longer than this is printed as it is. */
#define PARTIAL_MAX ((size_t)64 * 1024)
#define MAX_CANDIDATES 20

static void usage(void)
{
    printf("Usage: drvctl logs [-config FILE] [-data-dir DIR] [-f] [-stderr] [-tail N] ALLOC TASK\n\n"
           "Prints what task TASK of allocation ALLOC wrote to its stdout (or stderr), as\n"
           "collected in <data_dir>/alloc/<alloc_id>/alloc/logs/<task>.stdout.N (rotated by\n"
           "the task's logs { max_files, max_file_size }). It reads the files directly, with\n"
           "no agent: it works while a foreground `drvctl run` runs (from another terminal)\n"
           "and after it ended.\n\n"
           "  ALLOC      an alloc id, or a unique prefix of one (at least 4 hex digits);\n"
           "             an ambiguous prefix lists the matching ids (exit 64)\n"
           "  TASK       a task of that allocation\n"
           "  -stderr    the task's stderr instead of its stdout\n"
           "  -tail N    only the last N lines (0 to %ld; default: everything kept)\n"
           "  -f         follow: print new output as the task writes it, across rotations,\n"
           "             until the task's output ends (the run that collects it ended or\n"
           "             was killed); on an ended task it prints what there is and exits 0\n\n"
           "The bytes are the task's own when stdout is not a terminal; on a terminal,\n"
           "control characters and invalid UTF-8 are escaped as `run` does. A log file\n"
           "that is a symbolic link, FIFO, device or hard link (a task can plant one in\n"
           "/alloc/logs) is refused (exit 77). No alloc matching ALLOC, or no such task:\n"
           "exit 66.\n", LOGREAD_MAX_TAIL);
    cmd_print_exit_codes();
}

typedef struct logs_out {
    int tty;
    buf pending;        /* tty: the partial line */
    buf line;           /* tty: one escaped line */
    int write_failed;
    int rc;
    drv_err err;
} logs_out;

static int out_write(logs_out *o, const char *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len) {
        o->write_failed = 1;
        return -1;
    }
    return 0;
}

/* tty: one escaped line (a \r right before its \n dropped, as run does). */
static int out_line(logs_out *o, const char *s, size_t n, int nl)
{
    if (nl && n > 0 && s[n - 1] == '\r') {
        n--;
    }
    buf_reset(&o->line);
    esc_append(&o->line, s, n);
    if (nl) {
        buf_puts(&o->line, "\n");
    }
    return out_write(o, o->line.data, o->line.len);
}

/* Bytes at the end of `s` that may begin a UTF-8 sequence still being
 * written: held back when a partial line is printed. */
static size_t utf8_tail(const char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)s[n - k];
        if ((c & 0xc0) != 0x80) {
            size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
            return need > k ? k : 0;
        }
    }
    return 0;
}

static int on_data(void *ud, const char *data, size_t len)
{
    logs_out *o = ud;
    if (!o->tty) {
        return out_write(o, data, len);
    }
    buf_append(&o->pending, data, len);
    size_t done = 0;
    const char *p = o->pending.data;
    while (done < o->pending.len) {
        const char *nl = memchr(p + done, '\n', o->pending.len - done);
        if (nl == NULL) {
            break;
        }
        if (out_line(o, p + done, (size_t)(nl - (p + done)), 1) < 0) {
            return -1;
        }
        done = (size_t)(nl - p) + 1;
    }
    buf_consume(&o->pending, done);
    if (o->pending.len >= PARTIAL_MAX) {
        size_t keep = utf8_tail(o->pending.data, o->pending.len);
        if (out_line(o, o->pending.data, o->pending.len - keep, 0) < 0) {
            return -1;
        }
        buf_consume(&o->pending, o->pending.len - keep);
    }
    return 0;
}

/* Caught up with the writer: what there is goes out now. */
static void on_idle(void *ud)
{
    logs_out *o = ud;
    if (o->tty && o->pending.len > 0) {
        size_t keep = utf8_tail(o->pending.data, o->pending.len);
        (void)out_line(o, o->pending.data, o->pending.len - keep, 0);
        buf_consume(&o->pending, o->pending.len - keep);
    }
    if (fflush(stdout) != 0) {
        o->write_failed = 1;
    }
}

static void on_end(void *ud, int rc, const drv_err *err)
{
    logs_out *o = ud;
    if (o->tty && o->pending.len > 0) {
        (void)out_line(o, o->pending.data, o->pending.len, 0);
        buf_reset(&o->pending);
    }
    if (fflush(stdout) != 0) {
        o->write_failed = 1;
    }
    o->rc = rc;
    if (rc < 0 && err != NULL) {
        o->err = *err;
    }
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "drvctl logs: <message>", escaped (it quotes arguments), and
 * returns the exit code for `code`. */
static int fail(int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    buf b = BUF_INIT;
    fprintf(stderr, "drvctl logs: %s\n", esc_str(&b, msg));
    buf_free(&b);
    return drv_err_exit_code(code);
}

/* -tail: decimal digits, 0..LOGREAD_MAX_TAIL. */
static int parse_tail(const char *s, long *out)
{
    long v = 0;
    if (s == NULL || s[0] == '\0') {
        return -1;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (*p - '0');
        if (v > LOGREAD_MAX_TAIL) {
            return -1;
        }
    }
    *out = v;
    return 0;
}

/* An alloc id as a directory name: hex digits and '-', at most 36. */
static int alloc_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 36) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

static int match_prefix(const char *id, const char *prefix)
{
    for (; *prefix != '\0'; prefix++, id++) {
        if (*id == '\0' || tolower((unsigned char)*id) != tolower((unsigned char)*prefix)) {
            return 0;
        }
    }
    return 1;
}

/* Finds the one alloc dir under `root_fd` that `prefix` names; exit code
 * on failure (message printed), 0 with *id set (malloc'd) on success. */
static int resolve_alloc(int root_fd, const char *alloc_root, const char *prefix, char **id)
{
    int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return fail(DRV_ENOINPUT, "cannot list allocations in \"%s\"", alloc_root);
    }
    char *found[MAX_CANDIDATES];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !alloc_id_ok(e->d_name) || !match_prefix(e->d_name, prefix)) {
            continue;
        }
        if (n < MAX_CANDIDATES) {
            found[n] = drv_xstrdup(e->d_name);
        }
        n++;
    }
    closedir(d);
    if (n == 1) {
        *id = found[0];
        return 0;
    }
    int rc;
    if (n == 0) {
        rc = fail(DRV_ENOINPUT, "no allocation matches \"%s\" in \"%s\"", prefix, alloc_root);
    } else {
        buf b = BUF_INIT;
        buf_appendf(&b, "%zu allocations match: ", n);
        for (size_t i = 0; i < n && i < MAX_CANDIDATES; i++) {
            buf_appendf(&b, "%s%s", i ? ", " : "", found[i]);
        }
        if (n > MAX_CANDIDATES) {
            buf_puts(&b, ", ...");
        }
        rc = fail(DRV_EUSAGE, "ambiguous alloc id prefix \"%s\": %s", prefix, buf_str(&b));
        buf_free(&b);
    }
    for (size_t i = 0; i < n && i < MAX_CANDIDATES; i++) {
        free(found[i]);
    }
    return rc;
}

/* The tasks of an alloc (its dirs but alloc/), comma-separated, for a message. */
static void list_tasks(int alloc_fd, buf *out)
{
    int fd = openat(alloc_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0) {
            close(fd);
        }
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_type == DT_DIR && logread_name_ok(e->d_name) &&
            strcmp(e->d_name, "alloc") != 0) {
            buf_appendf(out, "%s%s", out->len ? ", " : "", e->d_name);
        }
    }
    closedir(d);
}

static int run_logs(const cmd_flags *f, const char *data_dir, long tail)
{
    const char *prefix = f->pos[0], *task = f->pos[1];
    buf path = BUF_INIT;
    buf_appendf(&path, "%s/alloc", data_dir);
    int root_fd = open(path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        int rc = fail(DRV_ENOINPUT, "no allocation matches \"%s\" in \"%s\"", prefix, path.data);
        buf_free(&path);
        return rc;
    }
    char *id = NULL;
    int rc = resolve_alloc(root_fd, path.data, prefix, &id);
    int alloc_fd = -1, logs_fd = -1;
    if (rc == 0) {
        alloc_fd = fs_openat2(root_fd, id, O_RDONLY | O_DIRECTORY, 0);
        if (alloc_fd < 0) {
            rc = fail(DRV_EDENIED, "refused: cannot open the alloc dir safely: \"%s/%s\"",
                      path.data, id);
        }
    }
    if (rc == 0) {
        int tfd = strcmp(task, "alloc") == 0 ? -1 :
                  fs_openat2(alloc_fd, task, O_PATH | O_DIRECTORY, 0);
        if (tfd < 0) {
            buf tasks = BUF_INIT;
            list_tasks(alloc_fd, &tasks);
            buf e1 = BUF_INIT, e2 = BUF_INIT;
            fprintf(stderr, "drvctl logs: alloc %s has no task \"%s\" (tasks: %s)\n", id,
                    esc_str(&e1, task), tasks.len ? esc_str(&e2, tasks.data) : "none");
            buf_free(&e1);
            buf_free(&e2);
            buf_free(&tasks);
            rc = drv_err_exit_code(DRV_ENOINPUT);
        } else {
            close(tfd);
        }
    }
    buf dir = BUF_INIT;
    if (rc == 0) {
        buf_appendf(&dir, "%s/%s/alloc/logs", path.data, id);
        logs_fd = fs_openat2(alloc_fd, "alloc/logs", O_RDONLY | O_DIRECTORY, 0);
        if (logs_fd < 0 && errno == ENOENT) {
            rc = fail(DRV_ENOINPUT, "no log directory: \"%s\"", dir.data);
        } else if (logs_fd < 0 && (errno == ELOOP || errno == EXDEV || errno == ENOTDIR)) {
            rc = fail(DRV_EDENIED, "refused: the log directory is a symbolic link or not a "
                      "directory: \"%s\"", dir.data);
        } else if (logs_fd < 0) {
            rc = fail(DRV_EIO, "cannot open the log directory: \"%s\"", dir.data);
        }
    }
    if (rc == 0) {
        uv_loop_t loop;
        logs_out o;
        logread *r = NULL;
        drv_err err;
        memset(&o, 0, sizeof o);
        o.tty = isatty(STDOUT_FILENO);
        uv_loop_init(&loop);
        logread_opts lo = {
            .loop = &loop, .dirfd = logs_fd, .dir_name = dir.data, .task = task,
            .stream = f->stderr_stream ? "stderr" : "stdout", .tail = tail,
            .follow = f->follow, .on_data = on_data, .on_idle = on_idle, .on_end = on_end,
            .ud = &o,
        };
        int lrc = logread_start(&r, &lo, &err);
        if (lrc < 0) {
            o.rc = lrc;
            o.err = err;
        } else {
            uv_run(&loop, UV_RUN_DEFAULT);
            logread_close(r);
            uv_run(&loop, UV_RUN_DEFAULT);
        }
        (void)uv_loop_close(&loop);
        if (o.rc < 0) {
            buf b = BUF_INIT;
            log_text(LOG_ERROR, esc_msg(&b, o.err.msg));
            buf_free(&b);
            rc = drv_err_exit_code(o.rc);
        } else if (o.write_failed) {
            rc = drv_err_exit_code(DRV_EIO);
        }
        buf_free(&o.pending);
        buf_free(&o.line);
    }
    if (logs_fd >= 0) {
        close(logs_fd);
    }
    if (alloc_fd >= 0) {
        close(alloc_fd);
    }
    close(root_fd);
    free(id);
    buf_free(&dir);
    buf_free(&path);
    return rc;
}

int cmd_logs(int argc, char **argv)
{
    cmd_flags f;
    int rc = cmd_parse_flags("logs", argc, argv, "config,data-dir,lua-dir,f,stderr,tail", &f);
    long tail = -1;

    if (rc != 0) {
        return rc;
    }
    if (f.help) {
        usage();
        return 0;
    }
    if (f.npos != 2) {
        fprintf(stderr, "drvctl logs: expected ALLOC and TASK arguments (see drvctl help logs)\n");
        return drv_err_exit_code(DRV_EUSAGE);
    }
    if (f.tail != NULL && parse_tail(f.tail, &tail) < 0) {
        return fail(DRV_EINVALID, "-tail must be a number of lines from 0 to 100000000: \"%s\"",
                    f.tail);
    }
    const char *prefix = f.pos[0];
    if (!alloc_id_ok(prefix)) {
        return fail(DRV_EINVALID, "not an alloc id or prefix of one (hex digits and '-'): "
                    "\"%s\"", prefix);
    }
    size_t hex = 0;
    for (const char *p = prefix; *p != '\0'; p++) {
        hex += *p != '-';
    }
    if (hex < 4) {
        return fail(DRV_EUSAGE, "alloc id prefix too short (at least 4 hex digits): \"%s\"",
                    prefix);
    }
    if (!logread_name_ok(f.pos[1])) {
        return fail(DRV_EINVALID, "task name not allowed: \"%s\"", f.pos[1]);
    }

    script *s = NULL;
    conf c;
    drv_err err;
    memset(&c, 0, sizeof c);
    drv_err_clear(&err);
    rc = script_open(&s, conf_lua_dir(f.lua_dir), &err);
    if (rc == 0) {
        rc = conf_load(&c, s, f.config, f.data_dir, &err);
        if (rc < 0 && c.problems.n > 0) {
            problems_print(&c.problems);
            err.msg[0] = '\0';
        }
    }
    if (rc == 0 && c.agent.data_dir == NULL) {
        rc = drv_err_set(&err, DRV_ECONFIG, "logs: no data_dir");
    }
    if (rc < 0) {
        if (err.msg[0] != '\0') {
            buf b = BUF_INIT;
            log_text(LOG_ERROR, esc_msg(&b, err.msg));
            buf_free(&b);
        }
        conf_free(&c);
        script_close(s);
        return drv_err_exit_code(rc);
    }
    rc = run_logs(&f, c.agent.data_dir, tail);
    conf_free(&c);
    script_close(s);
    return rc;
}
