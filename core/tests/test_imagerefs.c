/*
 * test_imagerefs.c: image references and delayed removal (core/image/imagerefs.c)
 * against the scripted fake dockerd, with a real data dir per test: take,
 * release and the delay, reuse cancelling, images not acquired, in use,
 * 404, 409, other errors retried, several tags, cleanup disabled, a due
 * removal carried to the next open, holders of dead processes, and two
 * processes updating the record at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "fake_dockerd.h"
#include "http.h"
#include "imagerefs.h"
#include "log.h"
#include "test.h"

static char tmpdir[64];
static int ndirs;

#define FD(m, p, st, b, ...) { .method = (m), .path = (p), .status = (st), .body = (b), __VA_ARGS__ }
#define END { .method = NULL }

#define ID "sha256:aaaa"
#define INSPECT_1TAG FD("GET", "/images/sha256:aaaa/json", 200, \
    "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"reg/x:1\"]}")
#define LIST_NONE FD("GET", "/containers/json?all=1&filters=", 200, "[]")
#define DELETE_TAG FD("DELETE", "/images/reg/x:1", 200, "[{\"Untagged\":\"reg/x:1\"}]")

typedef struct fx {
    uv_loop_t loop;
    fake_dockerd fd;
    http_client *http;
    docker *docker;
    imagerefs *r;
    char data[128];
    char state[160];
    int closed;
} fx;

static void new_data_dir(fx *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->data, sizeof f->data, "%s/d%d", tmpdir, ndirs++);
    snprintf(f->state, sizeof f->state, "%s/state", f->data);
}

/* Starts the fake daemon and opens the references on f->data. */
static int fx_open(fx *f, const fd_step *steps, long delay_ms, int enabled)
{
    drv_err err;
    char ep[200];
    uv_loop_init(&f->loop);
    if (fake_dockerd_start(&f->fd, &f->loop, tmpdir, steps) != 0) {
        return -1;
    }
    snprintf(ep, sizeof ep, "unix://%s", f->fd.path);
    docker_opts o = { .endpoint = ep };
    http_client_new(&f->http, &f->loop, NULL);
    docker_new(&f->docker, f->http, &o, NULL);
    docker_set_api_version(f->docker, "1.41", NULL);
    imagerefs_opts io = {
        .loop = &f->loop, .docker = f->docker, .state_dir = f->state,
        .enabled = enabled, .delay_ms = delay_ms,
    };
    f->closed = 0;
    int rc = imagerefs_open(&f->r, &io, &err);
    if (rc < 0) {
        fprintf(stderr, "imagerefs_open: %s\n", err.msg);
    }
    return rc;
}

static void on_closed(void *ud)
{
    fx *f = ud;
    f->closed++;
    uv_stop(&f->loop);     /* the fake daemon's listener would keep it running */
}

/* Closes (waiting up to max_wait_ms) and tears everything down. */
static void fx_close(fx *f, long max_wait_ms)
{
    imagerefs_close(f->r, max_wait_ms, on_closed, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    http_client_close(f->http);
    fake_dockerd_close(&f->fd);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    docker_free(f->docker);
}

static void fx_free(fx *f)
{
    fake_dockerd_free(&f->fd);
}

/* The record file's text ("" when there is none). */
static const char *record(fx *f, buf *b)
{
    char path[256];
    buf_reset(b);
    snprintf(path, sizeof path, "%s/images.json", f->state);
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
            buf_append(b, chunk, n);
        }
        fclose(fp);
    }
    return buf_str(b);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

TEST(take_release_removes_after_the_delay)
{
    static const fd_step s[] = { INSPECT_1TAG, LIST_NONE, DELETE_TAG, END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 300, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_CONTAINS(record(&f, &b), "\"holder\":\"a1/web\"");
    ASSERT_CONTAINS(record(&f, &b), "\"acquired\":true");
    ASSERT_CONTAINS(record(&f, &b), "\"released\":0");
    imagerefs_release(f.r, "a1/web");
    ASSERT_INT_EQ(0, count(record(&f, &b), "\"holder\""));
    ASSERT_INT_EQ(0, count(record(&f, &b), "\"released\":0"));
    /* nothing before the delay */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_close(&f, 2000);
    ASSERT_INT_EQ(1, f.closed);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_CONTAINS(buf_str(&f.fd.log), "ancestor");
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(close_carries_out_every_removal_due_by_then)
{
    static const fd_step s[] = {
        FD("GET", "/images/sha256:a1/json", 200, "{\"Id\":\"sha256:a1\",\"RepoTags\":[\"r/a:1\"]}"),
        FD("GET", "/images/sha256:a2/json", 200, "{\"Id\":\"sha256:a2\",\"RepoTags\":[\"r/a:2\"]}"),
        FD("GET", "/images/sha256:a3/json", 200, "{\"Id\":\"sha256:a3\",\"RepoTags\":[\"r/a:3\"]}"),
        LIST_NONE, LIST_NONE, LIST_NONE,
        FD("DELETE", "/images/r/a:1", 200, "[]", .delay_ms = 300),
        FD("DELETE", "/images/r/a:2", 200, "[]", .delay_ms = 300),
        FD("DELETE", "/images/r/a:3", 200, "[]", .delay_ms = 300),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "r/a:1", "sha256:a1", 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a2/web", "r/a:2", "sha256:a2", 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a3/web", "r/a:3", "sha256:a3", 1, NULL));
    imagerefs_release(f.r, "a1/web");
    imagerefs_release(f.r, "a2/web");
    imagerefs_release(f.r, "a3/web");
    /* as `drvctl gc` does: what is due now, one after the other, however
     * long each takes (within the hard stop) */
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(reuse_within_the_delay_cancels)
{
    static const fd_step s[] = { END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 300, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    /* another task takes it (id not known to it): the same image by name */
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a2/web", "reg/x:1", NULL, 0, NULL));
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.requests);
    const char *rec = record(&f, &b);
    ASSERT_INT_EQ(1, count(rec, "\"holder\""));
    ASSERT_CONTAINS(rec, "\"holder\":\"a2/web\"");
    ASSERT_CONTAINS(rec, "\"released\":0");
    ASSERT_CONTAINS(rec, "\"acquired\":true");   /* the first holder's answer stays */
    fx_free(&f);
    buf_free(&b);
}

TEST(counted_once_per_holder)
{
    static const fd_step s[] = { END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 300, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/db", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(2, count(record(&f, &b), "\"holder\""));
    imagerefs_release(f.r, "a1/web");
    ASSERT_CONTAINS(record(&f, &b), "\"released\":0");   /* a1/db still holds it */
    /* a bad holder or reference is refused */
    drv_err err;
    ASSERT_INT_EQ(DRV_EINVALID, imagerefs_take(f.r, "", "reg/x:1", NULL, 1, &err));
    ASSERT_INT_EQ(DRV_EINVALID, imagerefs_take(f.r, "a1/x", "reg/x:1\n", NULL, 1, &err));
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_free(&f);
    buf_free(&b);
}

TEST(not_acquired_is_never_removed)
{
    static const fd_step s[] = { END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "busybox:1", "sha256:bbbb", 0, NULL));
    ASSERT_CONTAINS(record(&f, &b), "\"acquired\":false");
    /* a second task that pulled it again does not make it drvctl's */
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a2/web", "busybox:1", "sha256:bbbb", 1, NULL));
    imagerefs_release(f.r, "a1/web");
    imagerefs_release(f.r, "a2/web");
    ASSERT_STR_EQ("", record(&f, &b));
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_free(&f);
    buf_free(&b);
}

TEST(the_first_holder_with_the_id_tells_whether_drvctl_acquired_it)
{
    static const fd_step s[] = { END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 3600000, 1));
    /* count = 2: one instance took the name before its create found the
     * image missing, the other took it after the pull that brought it */
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", NULL, 0, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a2/web", "reg/x:1", ID, 1, NULL));
    const char *rec = record(&f, &b);
    ASSERT_INT_EQ(1, count(rec, "\"refs\""));
    ASSERT_CONTAINS(rec, "\"acquired\":true");
    ASSERT_CONTAINS(rec, "\"id\":\"sha256:aaaa\"");
    /* but an image known to be there before stays the operator's */
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a3/web", "op/y:2", "sha256:cccc", 0, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a4/web", "op/y:2", "sha256:cccc", 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a5/web", "op/y:2", NULL, 1, NULL));
    rec = record(&f, &b);
    ASSERT_CONTAINS(rec, "\"refs\":[\"op/y:2\"],\"id\":\"sha256:cccc\",\"acquired\":false");
    fx_close(&f, 0);
    fx_free(&f);
    buf_free(&b);
}

TEST(in_use_is_kept)
{
    static const fd_step s[] = {
        INSPECT_1TAG,
        FD("GET", "/containers/json?all=1&filters=", 200, "[{\"Id\":\"c9\",\"Image\":\"reg/x:1\"}]"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT(strstr(buf_str(&f.fd.log), "DELETE") == NULL);
    /* the filter names the image by id */
    ASSERT_CONTAINS(buf_str(&f.fd.log), "%22ancestor%22%3A%5B%22sha256%3Aaaaa%22%5D");
    /* kept, looked at again later, no claim left */
    const char *rec = record(&f, &b);
    ASSERT_CONTAINS(rec, "\"id\":\"sha256:aaaa\"");
    ASSERT(strstr(rec, "\"claim\"") == NULL);
    ASSERT(strstr(rec, "\"released\":0") == NULL);
    fx_free(&f);
    buf_free(&b);
}

TEST(already_gone_is_done)
{
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 404, "{\"message\":\"No such image: sha256:aaaa\"}"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(delete_404_is_done)
{
    static const fd_step s[] = {
        INSPECT_1TAG, LIST_NONE,
        FD("DELETE", "/images/reg/x:1", 404, "{\"message\":\"No such image: reg/x:1\"}"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(conflict_409_keeps_it_for_later)
{
    static const fd_step s[] = {
        INSPECT_1TAG, LIST_NONE,
        FD("DELETE", "/images/reg/x:1", 409, "{\"message\":\"conflict: unable to remove "
           "repository reference \\\"reg/x:1\\\" (must force) - container 3894 is using its "
           "referenced image aaaa\"}"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_INT_EQ(1, count(buf_str(&f.fd.log), "DELETE"));
    const char *rec = record(&f, &b);
    ASSERT_CONTAINS(rec, "\"id\":\"sha256:aaaa\"");
    ASSERT(strstr(rec, "\"claim\"") == NULL);
    fx_free(&f);

    /* the next process (here: the next open, once the record is due again)
     * tries again: pretend the retry time came by rewriting "released" */
    char path[256];
    snprintf(path, sizeof path, "%s/images.json", f.state);
    const char *rel = strstr(buf_str(&b), "\"released\":");
    ASSERT(rel != NULL);
    buf fixed = BUF_INIT;
    buf_append(&fixed, b.data, (size_t)(rel - b.data));
    buf_puts(&fixed, "\"released\":1");
    buf_puts(&fixed, rel + strcspn(rel, ",}"));
    FILE *fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs(buf_str(&fixed), fp);
    fclose(fp);
    buf_free(&fixed);
    static const fd_step s2[] = { INSPECT_1TAG, LIST_NONE, DELETE_TAG, END };
    ASSERT_INT_EQ(0, fx_open(&f, s2, 0, 1));
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(other_errors_are_retried_three_times)
{
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 500, "{\"message\":\"boom\"}"),
        INSPECT_1TAG, LIST_NONE,
        FD("DELETE", "/images/reg/x:1", 500, "{\"message\":\"boom\"}"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    /* close waits (3 s between attempts); the third attempt's inspect gets
     * no answer from the script (500 "unexpected"): given up, recorded */
    fx_close(&f, 10000);
    ASSERT_INT_EQ(1, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_INT_EQ(3, count(buf_str(&f.fd.log), "GET /images/sha256:aaaa/json"));
    ASSERT_CONTAINS(record(&f, &b), "\"id\":\"sha256:aaaa\"");
    fx_free(&f);
    buf_free(&b);
}

TEST(several_tags_are_removed_by_id_forced)
{
    /* every tag of the image is one drvctl recorded */
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"reg/x:1\",\"reg/x:latest\"]}"),
        LIST_NONE,
        FD("DELETE", "/images/sha256:aaaa?force=1", 200, "[{\"Deleted\":\"sha256:aaaa\"}]"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/api", "reg/x", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    imagerefs_release(f.r, "a1/api");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(a_tag_drvctl_did_not_pull_keeps_the_image)
{
    /* a pull gave an image that was already here (as other/y:2 and
     * docker.io/library/busybox:1) a second name: only that name goes */
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"other/y:2\",\"reg/x:1\",\"busybox:1\"]}"),
        LIST_NONE,
        DELETE_TAG,
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(untags_each_of_drvctl_s_names_when_another_remains)
{
    /* "redis" and "docker.io/library/redis:latest" are the RepoTag
     * "redis:latest"; "reg/x:1" too is drvctl's; "mine:1" is not */
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"mine:1\",\"reg/x:1\",\"redis:latest\"]}"),
        LIST_NONE,
        FD("DELETE", "/images/redis:latest", 200, "[{\"Untagged\":\"redis:latest\"}]"),
        FD("GET", "/images/sha256:aaaa/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"mine:1\",\"reg/x:1\"]}"),
        LIST_NONE,
        DELETE_TAG,
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/db", "docker.io/library/redis", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    imagerefs_release(f.r, "a1/db");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(digest_only_images_are_removed_by_id)
{
    static const fd_step s[] = {
        FD("GET", "/images/sha256:aaaa/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[],\"RepoDigests\":[\"reg/x@sha256:dd\"]}"),
        LIST_NONE,
        FD("DELETE", "/images/sha256:aaaa", 200, "[{\"Deleted\":\"sha256:aaaa\"}]"),
        FD("GET", "/images/sha256:bbbb/json", 200,
           "{\"Id\":\"sha256:bbbb\",\"RepoTags\":null,"
           "\"RepoDigests\":[\"reg/x@sha256:dd\",\"reg/y@sha256:dd\"]}"),
        LIST_NONE,
        FD("DELETE", "/images/sha256:bbbb?force=1", 200, "[{\"Deleted\":\"sha256:bbbb\"}]"),
        END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x@sha256:dd", ID, 1, NULL));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a2/web", "reg/y@sha256:dd", "sha256:bbbb", 1, NULL));
    imagerefs_release(f.r, "a1/web");
    imagerefs_release(f.r, "a2/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT(strstr(buf_str(&f.fd.log), "DELETE /images/sha256:aaaa?") == NULL);
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(unknown_id_is_looked_up_by_reference)
{
    static const fd_step s[] = {
        FD("GET", "/images/reg/x:1/json", 200,
           "{\"Id\":\"sha256:aaaa\",\"RepoTags\":[\"reg/x:1\"]}"),
        LIST_NONE, DELETE_TAG, END,
    };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", NULL, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(cleanup_disabled_counts_nothing)
{
    static const fd_step s[] = { END };
    fx f;
    buf b = BUF_INIT;
    struct stat sb;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 0));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 1000);
    ASSERT_INT_EQ(1, f.closed);
    ASSERT_INT_EQ(0, f.fd.requests);
    ASSERT(stat(f.state, &sb) < 0);     /* not even the state dir */
    fx_free(&f);
    buf_free(&b);
}

TEST(due_removal_is_carried_to_the_next_open)
{
    static const fd_step none[] = { END };
    static const fd_step s[] = { INSPECT_1TAG, LIST_NONE, DELETE_TAG, END };
    fx f;
    buf b = BUF_INIT;
    new_data_dir(&f);
    /* a run whose delay is longer than it waits: the removal stays recorded */
    ASSERT_INT_EQ(0, fx_open(&f, none, 300, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    imagerefs_release(f.r, "a1/web");
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.requests);
    ASSERT_CONTAINS(record(&f, &b), "\"id\":\"sha256:aaaa\"");
    fx_free(&f);
    /* not yet due for the next process either */
    ASSERT_INT_EQ(0, fx_open(&f, none, 60000, 1));
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_free(&f);
    sleep_ms(400);
    /* the next process finds it due and removes it */
    ASSERT_INT_EQ(0, fx_open(&f, s, 300, 1));
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

/* A child that takes `n` references and then waits for `go` before it exits
 * (dies, with -1), without releasing. */
static pid_t child_taker(fx *f, const char *prefix, int n, int ready_w, int go_r)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    uv_loop_t loop;
    http_client *http;
    docker *d;
    imagerefs *r;
    char ep[200], holder[64];
    uv_loop_init(&loop);
    snprintf(ep, sizeof ep, "unix://%s/none.sock", tmpdir);
    docker_opts o = { .endpoint = ep };
    http_client_new(&http, &loop, NULL);
    docker_new(&d, http, &o, NULL);
    imagerefs_opts io = { .loop = &loop, .docker = d, .state_dir = f->state, .enabled = 1,
                          .delay_ms = 0 };
    int bad = imagerefs_open(&r, &io, NULL) < 0;
    for (int i = 0; i < n && !bad; i++) {
        snprintf(holder, sizeof holder, "%s%d/web", prefix, i);
        bad = imagerefs_take(r, holder, "reg/x:1", ID, 1, NULL) < 0;
    }
    char c = bad ? 'x' : 'k';
    if (write(ready_w, &c, 1) != 1) {
        _exit(3);
    }
    if (go_r >= 0 && read(go_r, &c, 1) < 0) {
        _exit(3);
    }
    _exit(bad ? 1 : 0);
}

TEST(holders_of_dead_processes_are_released)
{
    static const fd_step s[] = { INSPECT_1TAG, LIST_NONE, DELETE_TAG, END };
    fx f;
    buf b = BUF_INIT;
    int ready[2];
    char c = 0;
    int status;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, pipe(ready));
    pid_t pid = child_taker(&f, "dead", 1, ready[1], -1);
    ASSERT(pid > 0);
    ASSERT_INT_EQ(1, read(ready[0], &c, 1));
    ASSERT_INT_EQ('k', c);
    ASSERT_INT_EQ(pid, waitpid(pid, &status, 0));
    close(ready[0]);
    close(ready[1]);
    ASSERT_CONTAINS(record(&f, &b), "\"holder\":\"dead0/web\"");
    /* a pid that now belongs to another process (or to nobody) is not the
     * holder: the record names the holder's start time too */
    ASSERT_CONTAINS(record(&f, &b), "\"start\":");
    ASSERT_CONTAINS(record(&f, &b), "\"boot\":");
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, f.fd.unexpected);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(a_live_holder_with_a_reused_pid_looks_dead)
{
    static const fd_step s[] = { INSPECT_1TAG, LIST_NONE, DELETE_TAG, END };
    fx f;
    buf b = BUF_INIT;
    char path[256];
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, (const fd_step[]){ END }, 0, 1));
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    fx_close(&f, 0);
    fx_free(&f);
    /* the holder's pid is this very (live) process, but its start time is
     * not this process's: the pid was reused */
    const char *rec = record(&f, &b);
    const char *st = strstr(rec, "\"start\":");
    ASSERT(st != NULL);
    buf fixed = BUF_INIT;
    buf_append(&fixed, rec, (size_t)(st - rec));
    buf_puts(&fixed, "\"start\":1");
    buf_puts(&fixed, st + strcspn(st, ","));
    snprintf(path, sizeof path, "%s/images.json", f.state);
    FILE *fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs(buf_str(&fixed), fp);
    fclose(fp);
    buf_free(&fixed);
    ASSERT_INT_EQ(0, fx_open(&f, s, 0, 1));
    fx_close(&f, 1000);
    ASSERT_INT_EQ(0, fake_dockerd_unused(&f.fd));
    ASSERT_STR_EQ("", record(&f, &b));
    fx_free(&f);
    buf_free(&b);
}

TEST(two_processes_lose_no_reference)
{
    fx f;
    buf b = BUF_INIT;
    int ready[2], go[2];
    char c;
    int status;
    new_data_dir(&f);
    ASSERT_INT_EQ(0, pipe(ready));
    ASSERT_INT_EQ(0, pipe(go));
    pid_t p1 = child_taker(&f, "p", 60, ready[1], go[0]);
    pid_t p2 = child_taker(&f, "q", 60, ready[1], go[0]);
    ASSERT(p1 > 0 && p2 > 0);
    ASSERT_INT_EQ(1, read(ready[0], &c, 1));
    ASSERT_INT_EQ('k', c);
    ASSERT_INT_EQ(1, read(ready[0], &c, 1));
    ASSERT_INT_EQ('k', c);
    const char *rec = record(&f, &b);
    ASSERT_INT_EQ(120, count(rec, "\"holder\""));
    ASSERT_INT_EQ(1, count(rec, "\"refs\""));
    ASSERT_CONTAINS(rec, "\"holder\":\"p59/web\"");
    ASSERT_CONTAINS(rec, "\"holder\":\"q59/web\"");
    ASSERT_INT_EQ(2, write(go[1], "gg", 2));
    ASSERT_INT_EQ(p1, waitpid(p1, &status, 0));
    ASSERT_INT_EQ(0, status);
    ASSERT_INT_EQ(p2, waitpid(p2, &status, 0));
    ASSERT_INT_EQ(0, status);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    buf_free(&b);
}

TEST(an_unreadable_record_starts_over)
{
    fx f;
    buf b = BUF_INIT;
    char path[256];
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, (const fd_step[]){ END }, 0, 1));
    snprintf(path, sizeof path, "%s/images.json", f.state);
    FILE *fp = fopen(path, "w");
    ASSERT(fp != NULL);
    fputs("{\"images\":[{\"refs\":[\"a\\ud800\"]", fp);
    fclose(fp);
    ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
    ASSERT_INT_EQ(1, count(record(&f, &b), "\"refs\""));
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_free(&f);
    buf_free(&b);
}

/* Every truncation and a byte flipped at every offset of a valid record:
 * read without a crash (ASan build), the take still recorded. */
TEST(damaged_records_are_survived)
{
    static const char good[] =
        "{\"version\":1,\"images\":[\n{\"refs\":[\"reg/x:1\",\"r\\u00e9g\\ud83d\\ude00\"],"
        "\"id\":\"sha256:aaaa\",\"acquired\":true,\"holders\":[{\"holder\":\"a0/web\","
        "\"pid\":1,\"start\":2,\"boot\":\"x\"}],\"released\":-5,\"claim\":{\"pid\":99999999,"
        "\"start\":1e3,\"boot\":\"\"}}]}\n";
    fx f;
    buf b = BUF_INIT;
    char path[256];
    int level = log_get_level();
    new_data_dir(&f);
    ASSERT_INT_EQ(0, fx_open(&f, (const fd_step[]){ END }, 3600000, 1));
    snprintf(path, sizeof path, "%s/images.json", f.state);
    log_set_level(LOG_ERROR);
    size_t n = strlen(good);
    for (size_t i = 0; i <= 2 * n; i++) {
        char text[sizeof good];
        memcpy(text, good, n + 1);
        size_t len = n;
        if (i < n) {
            len = i;                     /* truncated */
        } else if (i - n < n) {
            text[i - n] ^= 0x5a;         /* one byte changed */
        }
        FILE *fp = fopen(path, "w");
        ASSERT(fp != NULL);
        fwrite(text, 1, len, fp);
        fclose(fp);
        ASSERT_INT_EQ(0, imagerefs_take(f.r, "a1/web", "reg/x:1", ID, 1, NULL));
        ASSERT_CONTAINS(record(&f, &b), "\"holder\":\"a1/web\"");
    }
    log_set_level(level);
    fx_close(&f, 0);
    ASSERT_INT_EQ(0, f.fd.requests);
    fx_free(&f);
    buf_free(&b);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-imagerefs-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    RUN(take_release_removes_after_the_delay);
    RUN(close_carries_out_every_removal_due_by_then);
    RUN(reuse_within_the_delay_cancels);
    RUN(counted_once_per_holder);
    RUN(not_acquired_is_never_removed);
    RUN(the_first_holder_with_the_id_tells_whether_drvctl_acquired_it);
    RUN(in_use_is_kept);
    RUN(already_gone_is_done);
    RUN(delete_404_is_done);
    RUN(conflict_409_keeps_it_for_later);
    RUN(other_errors_are_retried_three_times);
    RUN(several_tags_are_removed_by_id_forced);
    RUN(a_tag_drvctl_did_not_pull_keeps_the_image);
    RUN(untags_each_of_drvctl_s_names_when_another_remains);
    RUN(digest_only_images_are_removed_by_id);
    RUN(unknown_id_is_looked_up_by_reference);
    RUN(cleanup_disabled_counts_nothing);
    RUN(due_removal_is_carried_to_the_next_open);
    RUN(holders_of_dead_processes_are_released);
    RUN(a_live_holder_with_a_reused_pid_looks_dead);
    RUN(two_processes_lose_no_reference);
    RUN(an_unreadable_record_starts_over);
    RUN(damaged_records_are_survived);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    return test_summary();
}
