/* test_logread.c: reading rotated log files (logread.h) as logs.c writes
 * them: tail across files, follow across rotations with the real writer in
 * the same loop, gaps, truncation, and files a hostile task plants. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "logread.h"
#include "logs.h"
#include "test.h"

static char tmpdir[256];

static const char *fresh_dir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-logread-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return tmpdir;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static int open_dir(const char *dir)
{
    return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* --- a reader collecting into a buffer ----------------------------------- */

typedef struct sink {
    buf out;
    int ended;
    int rc;
    drv_err err;
    int idles;
    int stop_after;     /* > 0: on_data returns -1 once out.len >= it */
} sink;

static int sink_data(void *ud, const char *data, size_t len)
{
    sink *s = ud;
    buf_append(&s->out, data, len);
    return s->stop_after > 0 && s->out.len >= (size_t)s->stop_after ? -1 : 0;
}

static void sink_idle(void *ud)
{
    ((sink *)ud)->idles++;
}

static void sink_end(void *ud, int rc, const drv_err *err)
{
    sink *s = ud;
    s->ended++;
    s->rc = rc;
    if (err != NULL) {
        s->err = *err;
    }
}

/* Reads what there is (no follow); returns the reader's rc. */
static int read_all(const char *dir, const char *stream, long tail, sink *s)
{
    uv_loop_t loop;
    logread *r = NULL;
    drv_err err;
    uv_loop_init(&loop);
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .dir_name = dir, .task = "web", .stream = stream,
        .tail = tail, .on_data = sink_data, .on_idle = sink_idle, .on_end = sink_end, .ud = s,
    };
    int rc = logread_start(&r, &o, &err);
    close(dfd);
    if (rc < 0) {
        uv_loop_close(&loop);
        return rc;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    logread_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return s->ended == 1 ? s->rc : -999;
}

static int writes(logs *l, const char *text)
{
    return logs_write(l, FRAME_STDOUT, text, strlen(text), NULL);
}

/* ------------------------------------------------------------------------ */

TEST(names)
{
    ASSERT(logread_name_ok("web"));
    ASSERT(logread_name_ok("a.b_c-9"));
    ASSERT(!logread_name_ok(""));
    ASSERT(!logread_name_ok(".."));
    ASSERT(!logread_name_ok("a..b"));
    ASSERT(!logread_name_ok("a/b"));
    ASSERT(!logread_name_ok(".hidden"));
    ASSERT(!logread_name_ok("-x"));
    ASSERT(!logread_name_ok("a\nb"));
    char long_name[200];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ASSERT(!logread_name_ok(long_name));
}

TEST(tail_across_rotated_files)
{
    const char *dir = fresh_dir();
    logs *l = NULL;
    logs_opts lo = { .dir = dir, .task = "web", .max_files = 100, .max_file_size = 7 };
    ASSERT_INT_EQ(0, logs_open(&l, &lo, NULL));
    buf all = BUF_INIT;
    for (int i = 1; i <= 50; i++) {
        char line[32];
        snprintf(line, sizeof line, "line %d\n", i);
        ASSERT_INT_EQ(0, writes(l, line));
        buf_puts(&all, line);
    }
    logs_close(l);

    unsigned long *idx = NULL;
    size_t n = 0;
    int dfd = open_dir(dir);
    ASSERT_INT_EQ(0, logread_list(dfd, "web", "stdout", &idx, &n, NULL));
    close(dfd);
    ASSERT(n > 10);
    for (size_t i = 0; i < n; i++) {
        ASSERT_INT_EQ(i, idx[i]);
    }
    free(idx);

    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 3, &s));
    ASSERT_STR_EQ("line 48\nline 49\nline 50\n", buf_str(&s.out));
    buf_free(&s.out);

    sink s0 = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 0, &s0));
    ASSERT_INT_EQ(0, s0.out.len);

    sink e = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", -1, &e));
    ASSERT_STR_EQ(buf_str(&all), buf_str(&e.out));
    buf_free(&e.out);

    /* more lines asked for than there are: everything */
    sink m = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 1000000, &m));
    ASSERT_STR_EQ(buf_str(&all), buf_str(&m.out));
    buf_free(&m.out);

    /* stderr has its own (empty) file */
    sink se = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stderr", 5, &se));
    ASSERT_INT_EQ(0, se.out.len);
    buf_free(&all);
    remove_dir(dir);
}

TEST(tail_without_trailing_newline_and_blank_lines)
{
    const char *dir = fresh_dir();
    put(dir, "web.stdout.0", "a\nb\n");
    put(dir, "web.stdout.1", "");
    put(dir, "web.stdout.2", "\n\nc");
    sink s1 = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 1, &s1));
    ASSERT_STR_EQ("c", buf_str(&s1.out));
    sink s3 = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 3, &s3));
    ASSERT_STR_EQ("\n\nc", buf_str(&s3.out));
    sink s5 = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 4, &s5));
    ASSERT_STR_EQ("b\n\n\nc", buf_str(&s5.out));
    buf_free(&s5.out);
    buf_free(&s1.out);
    buf_free(&s3.out);
    /* a single line without newline, asked for more */
    put(dir, "web.stderr.0", "only");
    sink s4 = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stderr", 7, &s4));
    ASSERT_STR_EQ("only", buf_str(&s4.out));
    buf_free(&s4.out);
    remove_dir(dir);
}

TEST(tail_reads_backwards_across_blocks)
{
    /* lines longer than the 64 KiB read block, across files */
    const char *dir = fresh_dir();
    buf big = BUF_INIT;
    for (int i = 0; i < 200000; i++) {
        buf_puts(&big, "x");
    }
    buf_puts(&big, "\n");
    buf f0 = BUF_INIT;
    buf_puts(&f0, "first\n");
    buf_puts(&f0, big.data);
    put(dir, "web.stdout.0", f0.data);
    put(dir, "web.stdout.1", big.data);
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 2, &s));
    ASSERT_INT_EQ(2 * big.len, s.out.len);
    sink t = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 3, &t));
    ASSERT_INT_EQ(6 + 2 * big.len, t.out.len);
    ASSERT(memcmp(t.out.data, "first\n", 6) == 0);
    buf_free(&s.out);
    buf_free(&t.out);
    buf_free(&big);
    buf_free(&f0);
    remove_dir(dir);
}

TEST(missing_files_and_no_files)
{
    const char *dir = fresh_dir();
    sink none = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", -1, &none));
    ASSERT_INT_EQ(0, none.out.len);
    /* a gap (index 1 deleted) and non-canonical names are skipped */
    put(dir, "web.stdout.0", "zero\n");
    put(dir, "web.stdout.2", "two\n");
    put(dir, "web.stdout.03", "not ours\n");
    put(dir, "web.stdout.x", "not ours\n");
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", -1, &s));
    ASSERT_STR_EQ("zero\ntwo\n", buf_str(&s.out));
    sink t = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", 2, &t));
    ASSERT_STR_EQ("zero\ntwo\n", buf_str(&t.out));
    buf_free(&s.out);
    buf_free(&t.out);
    remove_dir(dir);
}

TEST(a_planted_symlink_fifo_or_hard_link_is_refused)
{
    const char *dir = fresh_dir();
    char secret[300], path[300];
    snprintf(secret, sizeof secret, "%s.secret", dir);
    FILE *f = fopen(secret, "w");
    ASSERT(f != NULL);
    fputs("HOST SECRET\n", f);
    fclose(f);

    put(dir, "web.stdout.0", "mine\n");
    snprintf(path, sizeof path, "%s/web.stdout.1", dir);
    ASSERT_INT_EQ(0, symlink(secret, path));
    int dfd = open_dir(dir);
    drv_err err;
    ASSERT_INT_EQ(DRV_EDENIED, logread_open_file(dfd, "web", "stdout", 1, &err));
    ASSERT(strstr(err.msg, "symbolic link") != NULL);

    /* tail starts at the newest file: refused before a byte is printed */
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(DRV_EDENIED, read_all(dir, "stdout", 5, &s));
    ASSERT(s.out.len == 0 || strstr(buf_str(&s.out), "SECRET") == NULL);
    sink a = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    ASSERT_INT_EQ(DRV_EDENIED, read_all(dir, "stdout", -1, &a));
    ASSERT_STR_EQ("mine\n", buf_str(&a.out));
    buf_free(&a.out);
    unlink(path);

    /* a FIFO: refused without blocking */
    snprintf(path, sizeof path, "%s/web.stdout.1", dir);
    ASSERT_INT_EQ(0, mkfifo(path, 0644));
    ASSERT_INT_EQ(DRV_EDENIED, logread_open_file(dfd, "web", "stdout", 1, NULL));
    unlink(path);

    /* a hard link to another file */
    ASSERT_INT_EQ(0, link(secret, path));
    ASSERT_INT_EQ(DRV_EDENIED, logread_open_file(dfd, "web", "stdout", 1, NULL));
    unlink(path);

    /* missing */
    ASSERT_INT_EQ(DRV_ENOTFOUND, logread_open_file(dfd, "web", "stdout", 1, NULL));
    close(dfd);
    unlink(secret);
    remove_dir(dir);
}

TEST(writer_lock_tells_a_live_file_from_an_ended_one)
{
    const char *dir = fresh_dir();
    logs *l = NULL;
    logs_opts lo = { .dir = dir, .task = "web", .max_files = 10, .max_file_size = 4 };
    ASSERT_INT_EQ(0, logs_open(&l, &lo, NULL));
    int dfd = open_dir(dir);
    int fd = logread_open_file(dfd, "web", "stdout", 0, NULL);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(1, logread_writer_active(fd));
    ASSERT_INT_EQ(0, writes(l, "abcdef"));   /* rotates to index 1 */
    ASSERT_INT_EQ(0, logread_writer_active(fd));
    int fd1 = logread_open_file(dfd, "web", "stdout", 1, NULL);
    ASSERT(fd1 >= 0);
    ASSERT_INT_EQ(1, logread_writer_active(fd1));
    logs_close(l);
    ASSERT_INT_EQ(0, logread_writer_active(fd1));
    close(fd);
    close(fd1);
    close(dfd);
    remove_dir(dir);
}

/* --- follow with the real writer in the same loop ----------------------- */

typedef struct writer_run {
    logs *l;
    int next;
    int total;
    int close_at_end;
    buf written;
    uv_timer_t timer;
    sink s;
} writer_run;

static void on_write_tick(uv_timer_t *t)
{
    writer_run *w = t->data;
    /* a few lines per tick, sometimes split mid-line */
    for (int k = 0; k < 7 && w->next < w->total; k++, w->next++) {
        char line[64];
        int n = snprintf(line, sizeof line, "%d %s\n", w->next,
                         w->next % 5 == 0 ? "some longer text here" : "x");
        size_t half = (size_t)n / 2;
        (void)logs_write(w->l, FRAME_STDOUT, line, half, NULL);
        (void)logs_write(w->l, FRAME_STDOUT, line + half, (size_t)n - half, NULL);
        buf_append(&w->written, line, (size_t)n);
    }
    if (w->next >= w->total) {
        uv_timer_stop(t);
        if (w->close_at_end) {
            logs_close(w->l);
            w->l = NULL;
        }
    }
}

static void close_cb(uv_handle_t *h)
{
    (void)h;
}

TEST(follow_across_rotations_by_the_real_writer)
{
    const char *dir = fresh_dir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    writer_run w;
    memset(&w, 0, sizeof w);
    w.total = 2000;
    w.close_at_end = 1;
    logs_opts lo = { .dir = dir, .task = "web", .max_files = 1000, .max_file_size = 1000 };
    ASSERT_INT_EQ(0, logs_open(&w.l, &lo, NULL));
    /* some history before the follower starts */
    ASSERT_INT_EQ(0, writes(w.l, "before 1\nbefore 2\n"));
    buf_puts(&w.written, "before 1\nbefore 2\n");

    logread *r = NULL;
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .dir_name = dir, .task = "web", .stream = "stdout",
        .tail = -1, .follow = 1, .poll_ms = 20, .on_data = sink_data, .on_idle = sink_idle,
        .on_end = sink_end, .ud = &w.s,
    };
    ASSERT_INT_EQ(0, logread_start(&r, &o, NULL));
    close(dfd);
    uv_timer_init(&loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_write_tick, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);   /* ends when the writer closed and the reader saw it */
    ASSERT_INT_EQ(1, w.s.ended);
    ASSERT_INT_EQ(0, w.s.rc);
    ASSERT(w.s.idles > 0);
    ASSERT_INT_EQ(w.written.len, w.s.out.len);
    ASSERT(memcmp(w.written.data, w.s.out.data, w.written.len) == 0);
    logread_close(r);
    uv_close((uv_handle_t *)&w.timer, close_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    buf_free(&w.written);
    buf_free(&w.s.out);
    remove_dir(dir);
}

TEST(follow_with_max_files_deleting_behind_a_tail)
{
    /* the writer keeps 3 files; the follower starts with -tail 2 and keeps
     * up: every byte from its start on, in order, once */
    const char *dir = fresh_dir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    writer_run w;
    memset(&w, 0, sizeof w);
    w.total = 600;
    w.close_at_end = 1;
    logs_opts lo = { .dir = dir, .task = "web", .max_files = 3, .max_file_size = 256 };
    ASSERT_INT_EQ(0, logs_open(&w.l, &lo, NULL));
    ASSERT_INT_EQ(0, writes(w.l, "old 1\nold 2\nold 3\n"));
    buf_puts(&w.written, "old 2\nold 3\n");
    logread *r = NULL;
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .dir_name = dir, .task = "web", .stream = "stdout",
        .tail = 2, .follow = 1, .poll_ms = 20, .on_data = sink_data, .on_end = sink_end,
        .ud = &w.s,
    };
    ASSERT_INT_EQ(0, logread_start(&r, &o, NULL));
    close(dfd);
    uv_timer_init(&loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_write_tick, 1, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, w.s.rc);
    ASSERT_INT_EQ(w.written.len, w.s.out.len);
    ASSERT(memcmp(w.written.data, w.s.out.data, w.written.len) == 0);
    logread_close(r);
    uv_close((uv_handle_t *)&w.timer, close_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    buf_free(&w.written);
    buf_free(&w.s.out);
    remove_dir(dir);
}

TEST(follow_on_an_ended_task_prints_what_there_is_and_ends)
{
    const char *dir = fresh_dir();
    put(dir, "web.stdout.0", "done 1\n");
    put(dir, "web.stdout.1", "done 2");
    uv_loop_t loop;
    uv_loop_init(&loop);
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    logread *r = NULL;
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .task = "web", .stream = "stdout", .tail = -1,
        .follow = 1, .poll_ms = 10, .on_data = sink_data, .on_end = sink_end, .ud = &s,
    };
    ASSERT_INT_EQ(0, logread_start(&r, &o, NULL));
    close(dfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(1, s.ended);
    ASSERT_INT_EQ(0, s.rc);
    ASSERT_STR_EQ("done 1\ndone 2", buf_str(&s.out));
    logread_close(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    buf_free(&s.out);
    remove_dir(dir);
}

/* The task truncates its own file while a follower reads it: no error, the
 * bytes written after the truncation come through. */
typedef struct trunc_run {
    logs *l;
    int step;
    char path[300];
    uv_timer_t timer;
} trunc_run;

static void on_trunc_tick(uv_timer_t *t)
{
    trunc_run *tr = t->data;
    switch (tr->step++) {
    case 0:
        (void)writes(tr->l, "aaaa\nbbbb\n");
        break;
    case 5:
        if (truncate(tr->path, 0) != 0) {
            perror("truncate");
        }
        break;
    case 10:
        (void)writes(tr->l, "after\n");
        break;
    case 15:
        logs_close(tr->l);
        tr->l = NULL;
        uv_timer_stop(t);
        break;
    default:
        break;
    }
}

TEST(follow_survives_a_truncated_file)
{
    const char *dir = fresh_dir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    trunc_run tr;
    memset(&tr, 0, sizeof tr);
    snprintf(tr.path, sizeof tr.path, "%s/web.stdout.0", dir);
    logs_opts lo = { .dir = dir, .task = "web", .max_files = 5, .max_file_size = 1 << 20 };
    ASSERT_INT_EQ(0, logs_open(&tr.l, &lo, NULL));
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 0 };
    logread *r = NULL;
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .task = "web", .stream = "stdout", .tail = -1,
        .follow = 1, .poll_ms = 5, .on_data = sink_data, .on_end = sink_end, .ud = &s,
    };
    ASSERT_INT_EQ(0, logread_start(&r, &o, NULL));
    close(dfd);
    uv_timer_init(&loop, &tr.timer);
    tr.timer.data = &tr;
    uv_timer_start(&tr.timer, on_trunc_tick, 10, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, s.rc);
    ASSERT_STR_EQ("aaaa\nbbbb\nafter\n", buf_str(&s.out));
    logread_close(r);
    uv_close((uv_handle_t *)&tr.timer, close_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    buf_free(&s.out);
    remove_dir(dir);
}

TEST(a_consumer_can_stop_early)
{
    const char *dir = fresh_dir();
    put(dir, "web.stdout.0", "0123456789\n");
    sink s = { BUF_INIT, 0, 0, { 0, "" }, 0, 1 };
    ASSERT_INT_EQ(0, read_all(dir, "stdout", -1, &s));
    ASSERT_INT_EQ(11, s.out.len);
    buf_free(&s.out);
    remove_dir(dir);
}

/* A consumer that pauses after every chunk and resumes from a timer. */
typedef struct slow {
    sink s;
    logread *r;
    uv_timer_t timer;
    int pauses;
} slow;

static void on_resume(uv_timer_t *t);

static int slow_data(void *ud, const char *data, size_t len)
{
    slow *w = ud;
    buf_append(&w->s.out, data, len);
    logread_pause(w->r);
    w->pauses++;
    uv_timer_start(&w->timer, on_resume, 1, 0);
    return 0;
}

static void on_resume(uv_timer_t *t)
{
    slow *w = t->data;
    logread_resume(w->r);
}

static void slow_end(void *ud, int rc, const drv_err *err)
{
    slow *w = ud;
    sink_end(&w->s, rc, err);
}

TEST(pause_and_resume)
{
    const char *dir = fresh_dir();
    buf big = BUF_INIT;
    for (int i = 0; i < 50000; i++) {
        buf_appendf(&big, "%d\n", i);
    }
    put(dir, "web.stdout.0", big.data);
    put(dir, "web.stdout.1", big.data);
    uv_loop_t loop;
    uv_loop_init(&loop);
    slow w;
    memset(&w, 0, sizeof w);
    uv_timer_init(&loop, &w.timer);
    w.timer.data = &w;
    int dfd = open_dir(dir);
    logread_opts o = {
        .loop = &loop, .dirfd = dfd, .task = "web", .stream = "stdout", .tail = -1,
        .follow = 1, .poll_ms = 5, .on_data = slow_data, .on_end = slow_end, .ud = &w,
    };
    ASSERT_INT_EQ(0, logread_start(&w.r, &o, NULL));
    close(dfd);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(1, w.s.ended);
    ASSERT_INT_EQ(0, w.s.rc);
    ASSERT(w.pauses > 2);
    ASSERT_INT_EQ(2 * big.len, w.s.out.len);
    ASSERT(memcmp(w.s.out.data, big.data, big.len) == 0);
    ASSERT(memcmp(w.s.out.data + big.len, big.data, big.len) == 0);
    logread_close(w.r);
    uv_close((uv_handle_t *)&w.timer, close_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    buf_free(&w.s.out);
    buf_free(&big);
    remove_dir(dir);
}

int main(void)
{
    RUN(names);
    RUN(tail_across_rotated_files);
    RUN(tail_without_trailing_newline_and_blank_lines);
    RUN(tail_reads_backwards_across_blocks);
    RUN(missing_files_and_no_files);
    RUN(a_planted_symlink_fifo_or_hard_link_is_refused);
    RUN(writer_lock_tells_a_live_file_from_an_ended_one);
    RUN(follow_across_rotations_by_the_real_writer);
    RUN(follow_with_max_files_deleting_behind_a_tail);
    RUN(follow_on_an_ended_task_prints_what_there_is_and_ends);
    RUN(follow_survives_a_truncated_file);
    RUN(a_consumer_can_stop_early);
    RUN(pause_and_resume);
    return test_summary();
}
