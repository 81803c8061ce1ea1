/*
 * test_artifact.c: artifact downloads on a real libuv loop with a real
 * http_client: file:// and plain paths, checksums, tar.gz unpacking, and
 * http:// against a tiny in-process HTTP server (200, 404, a request that
 * never answers, to test cancel).
 */
#include <dirent.h>
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
static char src_dir[300];    /* fixtures */
static char dest_dir[300];   /* download destination (created by artifact) */

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
    snprintf(dest_dir, sizeof dest_dir, "%s/task/local", root);
    mkdir(src_dir, 0755);
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

static void on_done(void *ud, int rc, const drv_err *err)
{
    result *r = ud;
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

static uv_loop_t loop;
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

/* Runs one fetch to completion; with cancel_after_ms > 0 the fetch is
 * canceled after that delay. Returns the artifact_fetch code. */
static int run_fetch(const char *source, const char *checksum, const char *archive,
                     long cancel_after_ms, result *res, drv_err *err)
{
    artifact *a = NULL;
    static uv_timer_t timer;   /* closed after this returns */

    memset(res, 0, sizeof *res);
    artifact_opts o = { source, dest_dir, checksum, archive, 10000, on_done, res };
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
    ASSERT_CONTAINS(res.err.msg, "unpack failed: tar exited with status 2: ");
    ASSERT_CONTAINS(res.err.msg, "not in gzip format");
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
    ASSERT_INT_EQ(fetch(path, hello_sha256, NULL, &res, &err), 0);
    ASSERT_INT_EQ(res.calls, 1);
    ASSERT_INT_EQ(res.rc, DRV_EARTIFACT);
    ASSERT_CONTAINS(res.err.msg, "artifact \"file://");
    ASSERT_CONTAINS(res.err.msg, "/nope.txt\": download failed: ");
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
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
    ASSERT_INT_EQ(fetch("/x/y.txt", NULL, "zip", &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "unsupported archive type");
    ASSERT_INT_EQ(fetch("ftp://h/y.txt", NULL, NULL, &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "unsupported source");
    ASSERT_INT_EQ(fetch("http://h/dir/", NULL, NULL, &res, &err), DRV_EINVALID);
    ASSERT_CONTAINS(err.msg, "file name");
    ASSERT_INT_EQ(res.calls, 0);
    ASSERT_INT_EQ(count_entries(dest_dir), 0);
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
    return test_summary();
}
