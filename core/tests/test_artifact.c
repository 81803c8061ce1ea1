/*
 * test_artifact.c: artifact downloads on a real libuv loop with a real
 * http_client: local sources beneath an allowed root, checksums, unpacking
 * (tar.gz, tar.xz, tar.bz2, zip, gz) with libarchive, the attacks of issue 7
 * (symlinks, "../" and absolute entries, bombs, devices, private addresses)
 * and http:// against a tiny in-process HTTP server (200, 404, a request that
 * never answers, to test cancel).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "artifact.h"
#include "buf.h"
#include "http.h"
#include "test.h"

extern char **environ;

static const char hello_md5[] = "md5:b1946ac92492d2347c6235b4d2611184";
static const char hello_sha1[] = "sha1:f572d396fae9206628714fb2ce00f72e94f2258f";
static const char hello_sha256[] =
    "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
static const char hello_sha512[] =
    "sha512:e7c22b994c59d9cf2b48e549b1e24666636045930d3da7c1acb299d1c3b7f931"
    "f94aae41edda2c2b207a36e10f8bcb8d45223e54878f5b316e7ce3b6bc019629";
static const char zero_sha256[] =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/* --- files ------------------------------------------------------------ */

static char root[256];       /* per-test temporary tree */
static char src_dir[300];    /* fixtures: the allowed local root */
static char task_dir[300];   /* the task directory (exists) */
static char dest_dir[300];   /* task_dir/local (created by artifact) */
static char outside[300];    /* a "host" directory nothing may write into */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    struct stat st;
    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            remove_tree(path);
        } else {
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void fresh_tree(void)
{
    snprintf(root, sizeof root, "/tmp/drvctl-test-artifact-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(src_dir, sizeof src_dir, "%s/src", root);
    snprintf(task_dir, sizeof task_dir, "%s/task", root);
    snprintf(dest_dir, sizeof dest_dir, "%s/task/local", root);
    snprintf(outside, sizeof outside, "%s/host", root);
    mkdir(src_dir, 0755);
    mkdir(task_dir, 0755);
    mkdir(outside, 0755);
}

static void write_file(const char *path, const char *content, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fwrite(content, 1, len, f);
    fclose(f);
}

static int read_file(const char *path, buf *out)
{
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    buf_reset(out);
    if (f == NULL) {
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(out, chunk, n);
    }
    fclose(f);
    return 0;
}

/* Entries in dir, hidden ones included (a leftover temp file would show). */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Runs a command without a shell; returns its exit status. */
static int run_cmd(const char *const argv[])
{
    pid_t pid;
    int status;
    if (posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)(uintptr_t)argv, environ) != 0) {
        return -1;
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

/* --- a tiny HTTP server ----------------------------------------------- */

typedef struct conn {
    uv_tcp_t tcp;
    buf req;
    buf resp;
    uv_write_t wr;
    int responded;
} conn;

static uv_tcp_t server;
static int server_port;
static int open_conns;

static void on_conn_close(uv_handle_t *h)
{
    conn *c = h->data;
    buf_free(&c->req);
    buf_free(&c->resp);
    free(c);
    open_conns--;
}

static void on_written(uv_write_t *w, int status)
{
    conn *c = w->data;
    (void)status;
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    *b = uv_buf_init(malloc(suggested), (unsigned)suggested);
}

static void respond(conn *c)
{
    char path[256] = "";
    sscanf(buf_str(&c->req), "GET %255s", path);
    c->responded = 1;
    if (strcmp(path, "/slow/x.bin") == 0) {
        return;   /* never answers; the client cancels */
    }
    if (strcmp(path, "/files/hello.txt") == 0 || strcmp(path, "/files/hello.txt?v=1") == 0) {
        buf_puts(&c->resp, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n"
                           "Connection: close\r\n\r\nhello\n");
    } else {
        buf_puts(&c->resp, "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n"
                           "Connection: close\r\n\r\nnot found\n");
    }
    uv_buf_t b = uv_buf_init(c->resp.data, (unsigned)c->resp.len);
    c->wr.data = c;
    uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn *c = s->data;
    if (n > 0) {
        buf_append(&c->req, b->base, (size_t)n);
        if (!c->responded && strstr(buf_str(&c->req), "\r\n\r\n") != NULL) {
            respond(c);
        }
    } else if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, on_conn_close);
    }
    free(b->base);
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0) {
        return;
    }
    conn *c = calloc(1, sizeof *c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    open_conns++;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_close);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static int server_start(uv_loop_t *loop)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_init(loop, &server) != 0 ||
        uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 16, on_connection) != 0 ||
        uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len) != 0) {
        return -1;
    }
    server_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

/* --- running a fetch ---------------------------------------------------- */

typedef struct result {
    int done;
    int calls;
    int rc;
    drv_err err;
} result;

static uv_loop_t loop;

static void on_done(void *ud, int rc, const drv_err *err)
{
    result *r = ud;
    uv_stop(&loop);   /* the result may come from a timer: do not block after it */
    r->done = 1;
    r->calls++;
    r->rc = rc;
    if (err != NULL) {
        r->err = *err;
    }
}

static void on_cancel_timer(uv_timer_t *t)
{
    artifact_cancel(t->data);
}

static void on_timer_close(uv_handle_t *h)
{
    (void)h;
}

static http_client *client;
static int with_server;

/* A fresh loop and client (and the test server when `server` is set). */
static void loop_open(int serve)
{
    drv_err err;
    uv_loop_init(&loop);
    with_server = serve;
    if (serve && server_start(&loop) != 0) {
        fprintf(stderr, "cannot start the test server\n");
        exit(2);
    }
    if (http_client_new(&client, &loop, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        exit(2);
    }
}

/* Closes everything and checks that no handle was leaked. */
static void loop_close(void)
{
    http_client_close(client);
    client = NULL;
    if (with_server) {
        uv_close((uv_handle_t *)&server, NULL);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0 || open_conns != 0) {
        fprintf(stderr, "handles left open after a fetch\n");
        exit(2);
    }
}

/* Limits and switches for the next fetch (reset by fresh_tree's callers). */
static artifact_opts extra;

/* Runs one fetch to completion; with cancel_after_ms > 0 the fetch is
 * canceled after that delay. Local sources ("/..." or "file://...") are
 * allowed beneath src_dir. Returns the artifact_fetch code. */
static int run_fetch(const char *source, const char *checksum, const char *archive,
                     long cancel_after_ms, result *res, drv_err *err)
{
    artifact *a = NULL;
    static uv_timer_t timer;   /* closed after this returns */

    memset(res, 0, sizeof *res);
    artifact_opts o = extra;
    o.source = source;
    o.task_dir = task_dir;
    o.dest = o.dest ? o.dest : "local";
    o.checksum = checksum;
    o.archive = archive;
    o.timeout_ms = 10000;
    o.on_done = on_done;
    o.ud = res;
    if (source[0] == '/' || strncmp(source, "file://", 7) == 0) {
        o.local_path = o.local_path ? o.local_path : source[0] == '/' ? source : source + 7;
        o.local_root = o.local_root ? o.local_root : src_dir;
    }
    int rc = artifact_fetch(client, &loop, &o, &a, err);
    if (rc == 0 && cancel_after_ms > 0) {
        uv_timer_init(&loop, &timer);
        timer.data = a;
        uv_timer_start(&timer, on_cancel_timer, (uint64_t)cancel_after_ms, 0);
    }
    while (rc == 0 && !res->done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    if (rc == 0 && cancel_after_ms > 0) {
        uv_close((uv_handle_t *)&timer, on_timer_close);
    }
    memset(&extra, 0, sizeof extra);
    return rc;
}

/* run_fetch on a loop of its own, without the HTTP server. */
static int fetch(const char *source, const char *checksum, const char *archive,
                 result *res, drv_err *err)
{
    loop_open(0);
    int rc = run_fetch(source, checksum, archive, 0, res, err);
    loop_close();
    return rc;
}

static long long file_size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static char *file_url(const char *path)
{
    buf b = BUF_INIT;
    buf_appendf(&b, "file://%s", path);
    return b.data;
}

/* --- tests ------------------------------------------------------------ */

TEST(file_url_with_correct_checksum)
{
    static const char *const sums[] = { hello_md5, hello_sha1, hello_sha256, hello_sha512 };
    char path[512], got_path[512];
    buf b = BUF_INIT;
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/hello.txt", src_dir);
    write_file(path, "hello\n", 6);
    char *url = file_url(path);
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++) {
        ASSERT_INT_EQ(fetch(url, sums[i], NULL, &res, &err), 0);
        ASSERT_INT_EQ(res.calls, 1);
        ASSERT_INT_EQ(res.rc, 0);
        snprintf(got_path, sizeof got_path, "%s/hello.txt", dest_dir);
        ASSERT_INT_EQ(read_file(got_path, &b), 0);
        ASSERT_STR_EQ(buf_str(&b), "hello\n");
        ASSERT_INT_EQ(count_entries(dest_dir), 1);   /* no temp file left */
        unlink(got_path);
    }
    free(url);
    buf_free(&b);
    remove_tree(root);
}

TEST(file_url_with_wrong_checksum)
{
    char path[512], want[300];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/hello.txt", src_dir);
    write_file(path, "hello\n", 6);
    char *url = file_url(path);
    ASSERT_INT_EQ(fetch(url, zero_sha256, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_INT_EQ(res.err.code, DRV_EARTIFACT);
    snprintf(want, sizeof want, "artifact \"%s\": checksum mismatch: expected %s, got %s", url,
             zero_sha256, hello_sha256);
    ASSERT_STR_EQ(res.err.msg, want);
    ASSERT_INT_EQ(count_entries(dest_dir), 0);       /* nothing left behind */
    free(url);
    remove_tree(root);
}

TEST(plain_path_with_special_characters)
{
    char path[512], got_path[512];
    buf b = BUF_INIT;
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/my file%%20#1.txt", src_dir);
    write_file(path, "hello\n", 6);
    ASSERT_INT_EQ(fetch(path, hello_sha256, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got_path, sizeof got_path, "%s/my file%%20#1.txt", dest_dir);
    ASSERT_INT_EQ(read_file(got_path, &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "hello\n");
    buf_free(&b);
    remove_tree(root);
}

TEST(tar_gz_is_unpacked_and_deleted)
{
    char path[512], archive[512], got[512];
    buf b = BUF_INIT;
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/tree", src_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/tree/sub", src_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/tree/top.txt", src_dir);
    write_file(path, "top\n", 4);
    snprintf(path, sizeof path, "%s/tree/sub/inner.txt", src_dir);
    write_file(path, "inner\n", 6);
    snprintf(archive, sizeof archive, "%s/bundle.tar.gz", src_dir);
    snprintf(path, sizeof path, "%s/tree", src_dir);
    const char *const argv[] = { "tar", "-czf", archive, "-C", path, ".", NULL };
    ASSERT_INT_EQ(run_cmd(argv), 0);

    ASSERT_INT_EQ(fetch(archive, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/top.txt", dest_dir);
    ASSERT_INT_EQ(read_file(got, &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "top\n");
    snprintf(got, sizeof got, "%s/sub/inner.txt", dest_dir);
    ASSERT_INT_EQ(read_file(got, &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "inner\n");
    ASSERT_INT_EQ(count_entries(dest_dir), 2);       /* top.txt, sub; no archive */
    buf_free(&b);
    remove_tree(root);
}

TEST(archive_option_controls_unpacking)
{
    char path[512], tarfile[512], got[512];
    result res;
    drv_err err;
    struct stat st;
    fresh_tree();
    snprintf(path, sizeof path, "%s/a.txt", src_dir);
    write_file(path, "a\n", 2);
    snprintf(tarfile, sizeof tarfile, "%s/image.tar", src_dir);
    const char *const argv[] = { "tar", "-cf", tarfile, "-C", src_dir, "a.txt", NULL };
    ASSERT_INT_EQ(run_cmd(argv), 0);

    /* .tar stays a file by default (config.load needs it) */
    ASSERT_INT_EQ(fetch(tarfile, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/image.tar", dest_dir);
    ASSERT_INT_EQ(stat(got, &st), 0);
    ASSERT_INT_EQ(st.st_size, file_size_of(tarfile));
    ASSERT_INT_EQ(count_entries(dest_dir), 1);
    unlink(got);

    /* archive = "tar" forces unpacking */
    ASSERT_INT_EQ(fetch(tarfile, NULL, "tar", &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/a.txt", dest_dir);
    ASSERT_INT_EQ(stat(got, &st), 0);
    ASSERT_INT_EQ(count_entries(dest_dir), 1);
    remove_tree(root);
}

TEST(archive_false_keeps_tar_gz)
{
    char path[512], archive[512], got[512];
    result res;
    drv_err err;
    struct stat st;
    fresh_tree();
    snprintf(path, sizeof path, "%s/a.txt", src_dir);
    write_file(path, "a\n", 2);
    snprintf(archive, sizeof archive, "%s/x.tgz", src_dir);
    const char *const argv[] = { "tar", "-czf", archive, "-C", src_dir, "a.txt", NULL };
    ASSERT_INT_EQ(run_cmd(argv), 0);
    ASSERT_INT_EQ(fetch(archive, NULL, "false", &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/x.tgz", dest_dir);
    ASSERT_INT_EQ(stat(got, &st), 0);
    ASSERT_INT_EQ(count_entries(dest_dir), 1);
    remove_tree(root);
}

TEST(corrupt_archive_fails_and_is_deleted)
{
    char path[512];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/broken.tar.gz", src_dir);
    write_file(path, "this is not gzip\n", 17);
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "\": unpack failed: ");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(missing_file)
{
    char path[512];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "file://%s/nope.txt", src_dir);
    ASSERT_INT_EQ(fetch(path, hello_sha256, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "artifact \"file://");
    ASSERT_CONTAINS(err.msg, "/nope.txt\": local source refused: ");
    ASSERT_INT_EQ(res.calls, 0);
    ASSERT_INT_EQ(count_entries(task_dir), 0);
    remove_tree(root);
}

TEST(http_download)
{
    char url[256], got[512];
    buf b = BUF_INIT;
    result res;
    drv_err err;
    fresh_tree();
    loop_open(1);
    extra.allow_private = 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/hello.txt?v=1", server_port);
    int rc = run_fetch(url, hello_sha256, NULL, 0, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/hello.txt", dest_dir);    /* query dropped */
    ASSERT_INT_EQ(read_file(got, &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "hello\n");
    ASSERT_INT_EQ(count_entries(dest_dir), 1);
    buf_free(&b);
    remove_tree(root);
}

TEST(http_404)
{
    char url[256], want[512];
    result res;
    drv_err err;
    fresh_tree();
    loop_open(1);
    extra.allow_private = 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/missing/x.bin", server_port);
    int rc = run_fetch(url, NULL, NULL, 0, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    snprintf(want, sizeof want, "artifact \"%s\": download failed: HTTP 404", url);
    ASSERT_STR_EQ(res.err.msg, want);
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(http_connection_refused)
{
    result res;
    drv_err err;
    fresh_tree();
    loop_open(0);
    int rc = run_fetch("http://127.0.0.1:1/x.bin", NULL, NULL, 0, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "artifact \"http://127.0.0.1:1/x.bin\": download failed: ");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(cancel_during_download)
{
    char url[256];
    result res;
    drv_err err;
    fresh_tree();
    loop_open(1);
    extra.allow_private = 1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow/x.bin", server_port);
    int rc = run_fetch(url, NULL, NULL, 50, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_ECANCELED);
    ASSERT_CONTAINS(res.err.msg, "canceled");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(bad_options_fail_at_once)
{
    result res;
    drv_err err;
    fresh_tree();
    drv_err_clear(&err);
    ASSERT_INT_EQ(fetch("/x/y.txt", "sha256:abc", NULL, &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "artifact \"/x/y.txt\": invalid checksum");
    ASSERT_CONTAINS(err.msg, "\"sha256:abc\"");
    ASSERT_INT_EQ(fetch("/x/y.txt", "crc32:00000000", NULL, &res, &err), DRV_EINVALID);
    ASSERT_INT_EQ(fetch("/x/y.txt", NULL, "rar", &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "unsupported archive type");
    ASSERT_INT_EQ(fetch("ftp://h/y.txt", NULL, NULL, &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "unsupported source");
    ASSERT_INT_EQ(fetch("file:///etc/passwd", NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "local source refused: not beneath a directory in "
                    "client.artifact.local_dirs");
    ASSERT_INT_EQ(fetch("http://h/dir/", NULL, NULL, &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "file name");
    ASSERT_INT_EQ(res.calls, 0);
    ASSERT_INT_EQ(count_entries(task_dir), 0);
    remove_tree(root);
}

/* --- issue 7: sources ------------------------------------------------- */

TEST(local_source_must_be_a_regular_file_beneath_its_root)
{
    char path[512], link[512];
    result res;
    drv_err err;
    fresh_tree();
    /* /etc/shadow is not beneath the allowed root */
    ASSERT_INT_EQ(fetch("/etc/shadow", NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "artifact \"/etc/shadow\": local source refused: not beneath");
    /* a symlink inside the root pointing out of it */
    snprintf(link, sizeof link, "%s/shadow", src_dir);
    ASSERT_INT_EQ(symlink("/etc/shadow", link), 0);
    ASSERT_INT_EQ(fetch(link, NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "local source refused: a symlink is in the way");
    /* a symlinked directory component inside the root */
    snprintf(link, sizeof link, "%s/etc", src_dir);
    ASSERT_INT_EQ(symlink("/etc", link), 0);
    snprintf(path, sizeof path, "%s/etc/hostname", src_dir);
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "a symlink is in the way");
    /* /dev/zero with /dev allowed: not a regular file, refused before a byte */
    extra.local_root = "/dev";
    ASSERT_INT_EQ(fetch("/dev/zero", NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "artifact \"/dev/zero\": local source refused: not a regular file");
    /* a FIFO does not block the loop either */
    snprintf(path, sizeof path, "%s/fifo", src_dir);
    ASSERT_INT_EQ(mkfifo(path, 0644), 0);
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "not a regular file");
    ASSERT_INT_EQ(res.calls, 0);
    ASSERT_INT_EQ(count_entries(task_dir), 0);
    remove_tree(root);
}

TEST(size_limit_for_local_and_http_sources)
{
    char path[512], url[256];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/hello.txt", src_dir);
    write_file(path, "hello\n", 6);
    extra.max_size = 5;
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), DRV_EARTIFACT);
    ASSERT_CONTAINS(err.msg, "local source refused: 6 bytes, larger than 5 "
                    "(client.artifact.http_max_size)");
    extra.max_size = 6;
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    remove_tree(root);

    fresh_tree();
    loop_open(1);
    extra.allow_private = 1;
    extra.max_size = 5;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/hello.txt", server_port);
    int rc = run_fetch(url, NULL, NULL, 0, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "download failed: larger than 5 bytes "
                    "(client.artifact.http_max_size)");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);    /* the partial file is gone */
    remove_tree(root);
}

TEST(private_addresses_are_refused_unless_allowed)
{
    char url[256];
    result res;
    drv_err err;
    fresh_tree();
    loop_open(1);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/hello.txt", server_port);
    int rc = run_fetch(url, NULL, NULL, 0, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "download failed: refused to connect to 127.0.0.1, a loopback "
                    "address (client.artifact.allow_private = true allows it)");
    ASSERT_INT_EQ(count_entries(task_dir), 0);    /* not even local/ */
    ASSERT_INT_EQ(open_conns, 0);
    remove_tree(root);
}

static const char *cls4(const char *ip)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    inet_pton(AF_INET, ip, &in.sin_addr);
    return artifact_addr_class((struct sockaddr *)&in);
}

static const char *cls6(const char *ip)
{
    struct sockaddr_in6 in;
    memset(&in, 0, sizeof in);
    in.sin6_family = AF_INET6;
    inet_pton(AF_INET6, ip, &in.sin6_addr);
    return artifact_addr_class((struct sockaddr *)&in);
}

#define CLASS_EQ(got, want) do {                                        \
        const char *g_ = (got);                                         \
        const char *w_ = (want);                                        \
        if (w_ == NULL) { ASSERT(g_ == NULL); }                         \
        else { ASSERT(g_ != NULL); ASSERT_STR_EQ(g_, w_); }             \
    } while (0)

TEST(address_classes)
{
    CLASS_EQ(cls4("127.0.0.1"), "loopback");
    CLASS_EQ(cls4("127.255.1.2"), "loopback");
    CLASS_EQ(cls4("0.0.0.0"), "unspecified");
    CLASS_EQ(cls4("10.1.2.3"), "private");
    CLASS_EQ(cls4("172.16.0.1"), "private");
    CLASS_EQ(cls4("172.31.255.255"), "private");
    CLASS_EQ(cls4("172.32.0.1"), NULL);
    CLASS_EQ(cls4("192.168.1.1"), "private");
    CLASS_EQ(cls4("169.254.169.254"), "link-local");
    CLASS_EQ(cls4("100.64.0.1"), "shared (CGNAT)");
    CLASS_EQ(cls4("100.127.255.255"), "shared (CGNAT)");
    CLASS_EQ(cls4("100.128.0.1"), NULL);
    CLASS_EQ(cls4("224.0.0.1"), "multicast");
    CLASS_EQ(cls4("255.255.255.255"), "reserved");
    CLASS_EQ(cls4("8.8.8.8"), NULL);
    CLASS_EQ(cls4("198.18.0.1"), NULL);
    CLASS_EQ(cls6("::1"), "loopback");
    CLASS_EQ(cls6("::"), "unspecified");
    CLASS_EQ(cls6("::ffff:127.0.0.1"), "loopback");
    CLASS_EQ(cls6("::ffff:10.0.0.1"), "private");
    CLASS_EQ(cls6("::ffff:8.8.8.8"), NULL);
    CLASS_EQ(cls6("::127.0.0.1"), "loopback");
    CLASS_EQ(cls6("64:ff9b::a9fe:a9fe"), "link-local");
    CLASS_EQ(cls6("fe80::1"), "link-local");
    CLASS_EQ(cls6("fd00::1"), "private");
    CLASS_EQ(cls6("fc00::1"), "private");
    CLASS_EQ(cls6("ff02::1"), "multicast");
    CLASS_EQ(cls6("2001:db8::1"), NULL);
}

/* --- issue 7: destinations and archives ------------------------------- */

/* Makes dir/name.tar(.gz) from a python3 tarfile script body; `t` is the
 * open tarfile, `add(name, data)`, `link(name, target)` helpers exist. */
static int make_archive(const char *out, const char *mode, const char *body)
{
    buf prog = BUF_INIT;
    buf_appendf(&prog,
        "import io, sys, tarfile, zipfile\n"
        "out, mode = sys.argv[1], sys.argv[2]\n"
        "if mode == 'zip':\n"
        "    z = zipfile.ZipFile(out, 'w')\n"
        "    def add(n, d): z.writestr(n, d)\n"
        "    def link(n, t): raise SystemExit('no links in zip')\n"
        "else:\n"
        "    t = tarfile.open(out, mode)\n"
        "    def add(n, d):\n"
        "        i = tarfile.TarInfo(n); b = d.encode(); i.size = len(b); i.mode = 0o644\n"
        "        t.addfile(i, io.BytesIO(b))\n"
        "    def link(n, target, kind=tarfile.SYMTYPE):\n"
        "        i = tarfile.TarInfo(n); i.type = kind; i.linkname = target; t.addfile(i)\n"
        "    def node(n, kind):\n"
        "        i = tarfile.TarInfo(n); i.type = kind; t.addfile(i)\n"
        "%s\n"
        "(z if mode == 'zip' else t).close()\n", body);
    const char *const argv[] = { "python3", "-c", buf_str(&prog), out, mode, NULL };
    int rc = run_cmd(argv);
    buf_free(&prog);
    return rc;
}

TEST(symlinked_destination_is_never_followed)
{
    char path[512], arch[512], link[512];
    result res;
    drv_err err;
    fresh_tree();
    /* artifact 1: a tar that plants local/d -> the host directory */
    snprintf(arch, sizeof arch, "%s/plant.tar.gz", src_dir);
    buf body = BUF_INIT;
    buf_appendf(&body, "link('d', '%s')\n", outside);
    ASSERT_INT_EQ(make_archive(arch, "w:gz", buf_str(&body)), 0);
    buf_free(&body);
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(link, sizeof link, "%s/d", dest_dir);
    struct stat st;
    ASSERT_INT_EQ(lstat(link, &st), 0);
    ASSERT(S_ISLNK(st.st_mode));

    /* artifact 2: destination local/d, a plain file */
    snprintf(path, sizeof path, "%s/hello.txt", src_dir);
    write_file(path, "hello\n", 6);
    extra.dest = "local/d";
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "cannot open the destination \"local/d\": a symlink is in the way");

    /* artifact 3: destination local/d/sub (created below the symlink?) */
    extra.dest = "local/d/sub";
    ASSERT_INT_EQ(fetch(path, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);

    /* artifact 4: destination local, a tar with d/file (through the link) */
    snprintf(arch, sizeof arch, "%s/through.tar.gz", src_dir);
    ASSERT_INT_EQ(make_archive(arch, "w:gz", "add('d/file', 'pwned\\n')\n"), 0);
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "\"d\" exists in the destination as a symlink");

    /* artifact 5: one tar that plants the link and writes through it */
    snprintf(arch, sizeof arch, "%s/both.tar", src_dir);
    body = (buf)BUF_INIT;
    buf_appendf(&body, "link('e', '%s')\nadd('e/file', 'pwned\\n')\n", outside);
    ASSERT_INT_EQ(make_archive(arch, "w", buf_str(&body)), 0);
    buf_free(&body);
    ASSERT_INT_EQ(fetch(arch, NULL, "tar", &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);

    ASSERT_INT_EQ(count_entries(outside), 0);      /* the host dir is untouched */
    ASSERT_INT_EQ(count_entries(dest_dir), 1);     /* only d; no temp or staging */
    remove_tree(root);
}

TEST(dotdot_absolute_and_device_entries_are_refused)
{
    static const struct { const char *body; const char *msg; } cases[] = {
        { "add('ok.txt', 'x')\nadd('../escape.txt', 'x')\n", "escape.txt" },
        { "add('/tmp/drvctl-abs-escape.txt', 'x')\n", "drvctl-abs-escape.txt" },
        { "link('hl', '/etc/passwd', tarfile.LNKTYPE)\n", "hl" },
        { "link('hl2', '../host/x', tarfile.LNKTYPE)\n", "hl2" },
        { "node('null', tarfile.CHRTYPE)\n", "is a device node" },
        { "node('pipe', tarfile.FIFOTYPE)\n", "is a FIFO" },
    };
    char arch[512];
    result res;
    drv_err err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh_tree();
        snprintf(arch, sizeof arch, "%s/evil.tar.gz", src_dir);
        ASSERT_INT_EQ(make_archive(arch, "w:gz", cases[i].body), 0);
        ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
        ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
        ASSERT_CONTAINS(res.err.msg, "unpack failed: ");
        ASSERT_CONTAINS(res.err.msg, cases[i].msg);
        ASSERT_INT_EQ(count_entries(dest_dir), 0);   /* ok.txt is not kept either */
        ASSERT_INT_EQ(count_entries(outside), 0);
        ASSERT_INT_EQ(access("/tmp/drvctl-abs-escape.txt", F_OK), -1);
        snprintf(arch, sizeof arch, "%s/escape.txt", task_dir);
        ASSERT_INT_EQ(access(arch, F_OK), -1);
        remove_tree(root);
    }
}

TEST(formats_zip_xz_bz2_gz)
{
    static const struct { const char *file, *mode; } cases[] = {
        { "a.zip", "zip" }, { "a.tar.xz", "w:xz" }, { "a.tar.bz2", "w:bz2" },
        { "a.txz", "w:xz" }, { "a.tgz", "w:gz" },
    };
    char arch[512], got[512];
    buf b = BUF_INIT;
    result res;
    drv_err err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh_tree();
        snprintf(arch, sizeof arch, "%s/%s", src_dir, cases[i].file);
        ASSERT_INT_EQ(make_archive(arch, cases[i].mode,
                                   "add('top.txt', 'top\\n')\nadd('sub/in.txt', 'in\\n')\n"), 0);
        ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
        if (res.rc != 0) {
            fprintf(stderr, "%s: %s\n", cases[i].file, res.err.msg);
        }
        ASSERT_INT_EQ(res.rc, 0);
        snprintf(got, sizeof got, "%s/sub/in.txt", dest_dir);
        ASSERT_INT_EQ(read_file(got, &b), 0);
        ASSERT_STR_EQ(buf_str(&b), "in\n");
        ASSERT_INT_EQ(count_entries(dest_dir), 2);
        remove_tree(root);
    }
    /* a plain .gz becomes its file */
    fresh_tree();
    snprintf(got, sizeof got, "%s/notes.txt", src_dir);
    write_file(got, "hello\n", 6);
    const char *const gz[] = { "gzip", got, NULL };
    ASSERT_INT_EQ(run_cmd(gz), 0);
    snprintf(arch, sizeof arch, "%s/notes.txt.gz", src_dir);
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    snprintf(got, sizeof got, "%s/notes.txt", dest_dir);
    ASSERT_INT_EQ(read_file(got, &b), 0);
    ASSERT_STR_EQ(buf_str(&b), "hello\n");
    ASSERT_INT_EQ(count_entries(dest_dir), 1);
    buf_free(&b);
    remove_tree(root);
}

TEST(decompression_limits)
{
    char arch[512];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(arch, sizeof arch, "%s/many.tar.gz", src_dir);
    ASSERT_INT_EQ(make_archive(arch, "w:gz", "for i in range(5): add('f%d' % i, 'x')\n"), 0);
    extra.max_unpacked_files = 4;
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "more than 4 entries "
                    "(client.artifact.decompression_file_count_limit)");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    extra.max_unpacked_files = 5;
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, 0);
    remove_tree(root);

    /* 8 MiB of zeros, a few KiB compressed */
    fresh_tree();
    snprintf(arch, sizeof arch, "%s/bomb.tar.gz", src_dir);
    ASSERT_INT_EQ(make_archive(arch, "w:gz", "add('zeros', '\\0' * (8 << 20))\n"), 0);
    extra.max_unpacked_bytes = 1 << 20;
    ASSERT_INT_EQ(fetch(arch, NULL, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "more than 1048576 bytes unpacked "
                    "(client.artifact.decompression_size_limit)");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(cancel_during_local_copy)
{
    char path[512];
    result res;
    drv_err err;
    fresh_tree();
    snprintf(path, sizeof path, "%s/big.bin", src_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(ftruncate(fd, 4LL << 30), 0);   /* sparse: 4 GiB of zeros */
    close(fd);
    loop_open(0);
    int rc = run_fetch(path, NULL, NULL, 30, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_ECANCELED);
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
    remove_tree(root);
}

TEST(cancel_during_unpack)
{
    char arch[512];
    result res;
    drv_err err;
    fresh_tree();
    /* 2 GiB of zeros as 2048 concatenated gzip members of 1 MiB (cheap to
     * make): the unpacking child runs for seconds */
    snprintf(arch, sizeof arch, "cd '%s' && head -c 1M /dev/zero | gzip -1 > m.gz && "
             "for i in 1 2 3 4 5 6 7 8 9 10 11; do cat m.gz m.gz > m2.gz && mv m2.gz m.gz; "
             "done && mv m.gz zeros.gz", src_dir);
    const char *const argv[] = { "sh", "-c", arch, NULL };
    ASSERT_INT_EQ(run_cmd(argv), 0);
    snprintf(arch, sizeof arch, "%s/zeros.gz", src_dir);
    loop_open(0);
    extra.max_unpacked_bytes = 4LL << 30;
    int rc = run_fetch(arch, NULL, NULL, 300, &res, &err);
    loop_close();
    ASSERT_INT_EQ(rc, 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_ECANCELED);
    ASSERT_INT_EQ(count_entries(dest_dir), 0);   /* archive, staging and output gone */
    remove_tree(root);
}

int main(void)
{
    RUN(file_url_with_correct_checksum);
    RUN(file_url_with_wrong_checksum);
    RUN(plain_path_with_special_characters);
    RUN(tar_gz_is_unpacked_and_deleted);
    RUN(archive_option_controls_unpacking);
    RUN(archive_false_keeps_tar_gz);
    RUN(corrupt_archive_fails_and_is_deleted);
    RUN(missing_file);
    RUN(http_download);
    RUN(http_404);
    RUN(http_connection_refused);
    RUN(cancel_during_download);
    RUN(bad_options_fail_at_once);
    RUN(local_source_must_be_a_regular_file_beneath_its_root);
    RUN(size_limit_for_local_and_http_sources);
    RUN(private_addresses_are_refused_unless_allowed);
    RUN(address_classes);
    RUN(symlinked_destination_is_never_followed);
    RUN(dotdot_absolute_and_device_entries_are_refused);
    RUN(formats_zip_xz_bz2_gz);
    RUN(decompression_limits);
    RUN(cancel_during_local_copy);
    RUN(cancel_during_unpack);
    return test_summary();
}
