/* test_auth.c: credential helpers (credhelper.c) and registry auth
 * resolution (auth.c + lua/drv/registryauth.lua) with stub helpers: shell
 * scripts in a temp dir put first on PATH. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth.h"
#include "buf.h"
#include "credhelper.h"
#include "log.h"
#include "script.h"
#include "test.h"

static char tmpdir[64];
static script *lua;

#define REG "127.0.0.1:5443"
#define HUB "https://index.docker.io/v1/"

/* helper name -> script body; each records its pid and stdin in tmpdir */
static const struct { const char *name, *body; } STUBS[] = {
    { "rec", "echo $$ > \"$D/rec.pid\"; cat > \"$D/rec.in\"\n"
             "printf '{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"s3cret\"}\\n'\n" },
    { "token", "cat >/dev/null; printf '{\"Username\":\"<token>\",\"Secret\":\"tok-1\"}'\n" },
    { "sleep", "echo $$ > \"$D/sleep.pid\"; echo started >&2; sleep 1000\n" },
    { "huge", "exec yes s3cret\n" },
    { "fail", "cat >/dev/null; echo s3cret-on-stdout; printf 'boom: agent down\\n\\033[2J' >&2;"
              " exit 2\n" },
    { "bigerr", "head -c 100000 /dev/zero | tr '\\0' e >&2; exit 1\n" },
    { "notfound", "cat >/dev/null; echo 'credentials not found in native keychain'; exit 1\n" },
    { "empty", "printf '{\"ServerURL\":\"\",\"Username\":\"\",\"Secret\":\"\"}'\n" },
    { "noread", "printf '{\"Username\":\"u\",\"Secret\":\"p\"}'\n" },
    { "orphan", "cat >/dev/null; (sleep 1000 &); printf '{\"Username\":\"u\",\"Secret\":\"p\"}'\n" },
    { "escape", "cat >/dev/null; setsid sh -c 'echo $$ > \"$D/escape.pid\"; exec sleep 1000' &\n"
                "while [ ! -s \"$D/escape.pid\" ]; do sleep 0.01; done\n"
                "printf '{\"Username\":\"u\",\"Secret\":\"p\"}'\n" },
    { "escape2", "setsid sh -c 'echo $$ > \"$D/escape2.pid\"; exec sleep 1000' &\n"
                 "while [ ! -s \"$D/escape2.pid\" ]; do sleep 0.01; done; sleep 1000\n" },
    { "fds", "cat >/dev/null; if [ -e /proc/$$/fd/77 ]; then echo leaked; else echo closed; fi"
             " > \"$D/fds\"; ls /proc/$$/fd > \"$D/fdlist\"\n"
             "printf '{\"Username\":\"u\",\"Secret\":\"p\"}'\n" },
    { "garbage", "cat >/dev/null; echo 's3cret not json'\n" },
};

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void setup_stubs(void)
{
    char path[256];
    for (size_t i = 0; i < sizeof STUBS / sizeof STUBS[0]; i++) {
        buf b = BUF_INIT;
        buf_appendf(&b, "#!/bin/sh\nD='%s'; export D\n%s", tmpdir, STUBS[i].body);
        snprintf(path, sizeof path, "%s/docker-credential-%s", tmpdir, STUBS[i].name);
        write_file(path, buf_str(&b), 0755);
        buf_free(&b);
    }
    /* a program named like a hostile helper must never be found */
    snprintf(path, sizeof path, "%s/evil", tmpdir);
    mkdir(path, 0755);
    const char *old = getenv("PATH");
    buf p = BUF_INIT;
    buf_appendf(&p, "%s:%s", tmpdir, old != NULL ? old : "/usr/bin:/bin");
    setenv("PATH", buf_str(&p), 1);
    buf_free(&p);
}

static char *slurp(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    buf b = BUF_INIT;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }
    char chunk[256];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(&b, chunk, n);
    }
    fclose(f);
    char *s = drv_xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}

static void unlink_in(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
}

/* 1 when no process of the group `pid` is left (kill(-pid, 0) fails). */
static int group_gone(const char *pidfile)
{
    char *s = slurp(pidfile);
    if (s == NULL) {
        return 0;
    }
    pid_t pid = (pid_t)atoi(s);
    free(s);
    for (int i = 0; i < 200; i++) {
        if (kill(-pid, 0) != 0 && errno == ESRCH) {
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

/* --- credhelper ------------------------------------------------------------ */

typedef struct hres {
    int called;
    int rc;
    long status;
    char out[256];
    char err[2048];
    size_t errlen;
    int err_truncated;
} hres;

static void on_helper(void *ud, int rc, const credhelper_result *res, const drv_err *err)
{
    hres *h = ud;
    h->called++;
    h->rc = rc;
    if (rc == 0) {
        h->status = res->exit_status;
        snprintf(h->out, sizeof h->out, "%s", buf_str(&res->out));
        snprintf(h->err, sizeof h->err, "%s", buf_str(&res->err));
        h->errlen = res->err.len;
        h->err_truncated = res->err_truncated;
    } else {
        snprintf(h->err, sizeof h->err, "%s", err->msg);
    }
}

static int run_helper(const char *name, const char *input, long timeout, hres *h)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    credhelper *ch = NULL;
    drv_err err;
    memset(h, 0, sizeof *h);
    int rc = credhelper_run(&loop, name, input, timeout, on_helper, h, &ch, &err);
    if (rc < 0) {
        snprintf(h->err, sizeof h->err, "%s", err.msg);
        uv_run(&loop, UV_RUN_DEFAULT);   /* the handles' close callbacks free it */
        uv_loop_close(&loop);
        return rc;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int closed = uv_loop_close(&loop);
    return closed == 0 ? 0 : -1000;
}

TEST(helper_gets_its_input_on_stdin_and_answers)
{
    hres h;
    unlink_in("rec.in");
    ASSERT_INT_EQ(0, run_helper("rec", REG, 0, &h));
    ASSERT_INT_EQ(1, h.called);
    ASSERT_INT_EQ(0, h.rc);
    ASSERT_INT_EQ(0, h.status);
    ASSERT_STR_EQ("{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"s3cret\"}\n", h.out);
    char *in = slurp("rec.in");
    ASSERT_STR_EQ(REG, in);
    free(in);
}

TEST(helper_that_does_not_read_stdin_still_answers)
{
    hres h;
    ASSERT_INT_EQ(0, run_helper("noread", REG, 0, &h));
    ASSERT_INT_EQ(0, h.rc);
    ASSERT_STR_EQ("{\"Username\":\"u\",\"Secret\":\"p\"}", h.out);
}

TEST(helper_failure_reports_status_and_stderr)
{
    hres h;
    ASSERT_INT_EQ(0, run_helper("fail", REG, 0, &h));
    ASSERT_INT_EQ(0, h.rc);
    ASSERT_INT_EQ(2, h.status);
    ASSERT_CONTAINS(h.err, "boom: agent down");
}

TEST(helper_timeout_kills_its_process_group)
{
    hres h;
    unlink_in("sleep.pid");
    ASSERT_INT_EQ(0, run_helper("sleep", REG, 300, &h));
    ASSERT_INT_EQ(1, h.called);
    ASSERT_INT_EQ(DRV_EIMAGE, h.rc);
    ASSERT_STR_EQ("helper \"docker-credential-sleep get\" timed out after 300 ms: started", h.err);
    ASSERT(group_gone("sleep.pid"));
}

TEST(helper_stdout_over_the_cap_is_killed_and_not_shown)
{
    hres h;
    ASSERT_INT_EQ(0, run_helper("huge", REG, 5000, &h));
    ASSERT_INT_EQ(DRV_EIMAGE, h.rc);
    ASSERT_STR_EQ("helper \"docker-credential-huge get\" wrote more than 65536 bytes on stdout",
                  h.err);
}

TEST(helper_stderr_is_capped)
{
    hres h;
    ASSERT_INT_EQ(0, run_helper("bigerr", REG, 5000, &h));
    ASSERT_INT_EQ(0, h.rc);
    ASSERT_INT_EQ(1, h.status);
    ASSERT_INT_EQ(CREDHELPER_OUTPUT_MAX, h.errlen);
    ASSERT_INT_EQ(1, h.err_truncated);
}

TEST(helper_children_holding_the_pipes_do_not_stall_it)
{
    hres h;
    uint64_t t0 = uv_hrtime();
    ASSERT_INT_EQ(0, run_helper("orphan", REG, 20000, &h));
    ASSERT_INT_EQ(0, h.rc);
    ASSERT_STR_EQ("{\"Username\":\"u\",\"Secret\":\"p\"}", h.out);
    ASSERT((uv_hrtime() - t0) / 1000000 < 10000);   /* not the timeout */
}

TEST(helper_descendant_in_another_session_is_cut_off_at_the_timeout)
{
    hres h;
    unlink_in("escape.pid");
    int rc = run_helper("escape", REG, 500, &h);
    char *s = slurp("escape.pid");
    if (s != NULL) {
        kill((pid_t)atoi(s), SIGKILL);
        free(s);
    }
    ASSERT_INT_EQ(0, rc);
    ASSERT_INT_EQ(1, h.called);
    ASSERT_INT_EQ(DRV_EIMAGE, h.rc);
    ASSERT_CONTAINS(h.err, "timed out after 500 ms");
    /* the same while the helper itself hangs: killed, then cut off */
    unlink_in("escape2.pid");
    rc = run_helper("escape2", REG, 500, &h);
    s = slurp("escape2.pid");
    if (s != NULL) {
        kill((pid_t)atoi(s), SIGKILL);
        free(s);
    }
    ASSERT_INT_EQ(0, rc);
    ASSERT_INT_EQ(1, h.called);
    ASSERT_INT_EQ(DRV_EIMAGE, h.rc);
    ASSERT_CONTAINS(h.err, "timed out after 500 ms");
}

TEST(helper_inherits_no_descriptor_but_its_pipes)
{
    /* like a libcurl socket to dockerd: open without O_CLOEXEC */
    int fd = open("/dev/null", O_RDONLY);
    ASSERT(fd >= 0);
    ASSERT_INT_EQ(77, dup2(fd, 77));
    close(fd);
    hres h;
    unlink_in("fds");
    ASSERT_INT_EQ(0, run_helper("fds", REG, 0, &h));
    close(77);
    ASSERT_INT_EQ(0, h.rc);
    char *s = slurp("fds");
    ASSERT_STR_EQ("closed\n", s);
    free(s);
}

TEST(helper_missing_or_badly_named_is_refused_at_start)
{
    hres h;
    ASSERT_INT_EQ(DRV_EIMAGE, run_helper("nosuch", REG, 0, &h));
    ASSERT_STR_EQ("helper \"docker-credential-nosuch\" not found on PATH", h.err);
    ASSERT_INT_EQ(0, h.called);
    const char *bad[] = { "../evil", "/bin/sh", "", "-x", "A", "a b", "evil/../rec", NULL };
    for (int i = 0; bad[i] != NULL; i++) {
        ASSERT_INT_EQ(DRV_EIMAGE, run_helper(bad[i], REG, 0, &h));
        ASSERT_CONTAINS(h.err, "credential helper name not allowed");
        ASSERT_INT_EQ(0, h.called);
    }
    ASSERT_INT_EQ(1, credhelper_name_ok("ecr-login"));
    ASSERT_INT_EQ(1, credhelper_name_ok("a.b_c-0"));
    ASSERT_INT_EQ(0, credhelper_name_ok(NULL));
    ASSERT_INT_EQ(0, credhelper_name_ok(".x"));
}

static void cancel_helper(uv_timer_t *t)
{
    credhelper_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

TEST(helper_cancel_kills_without_calling_back)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    hres h;
    memset(&h, 0, sizeof h);
    credhelper *ch = NULL;
    drv_err err;
    unlink_in("sleep.pid");
    ASSERT_INT_EQ(0, credhelper_run(&loop, "sleep", REG, 20000, on_helper, &h, &ch, &err));
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = ch;
    uv_timer_start(&t, cancel_helper, 300, 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_INT_EQ(0, uv_loop_close(&loop));
    ASSERT_INT_EQ(0, h.called);
    ASSERT((uv_hrtime() - t0) / 1000000 < 10000);
    ASSERT(group_gone("sleep.pid"));
}

/* --- auth_resolve ------------------------------------------------------------ */

typedef struct ares {
    int called;
    int returned;              /* auth_resolve had returned when called */
    int rc;
    char header[1024];
    int has_header;
    char msg[DRV_ERR_MSG_MAX];
} ares;

static int returned_flag;

static void on_auth(void *ud, int rc, const char *header, const drv_err *err)
{
    ares *a = ud;
    a->called++;
    a->returned = returned_flag;
    a->rc = rc;
    a->has_header = header != NULL;
    snprintf(a->header, sizeof a->header, "%s", header != NULL ? header : "");
    snprintf(a->msg, sizeof a->msg, "%s", err != NULL ? err->msg : "");
}

/* The JSON inside a padded base64url header ("" when not valid). */
static void unheader(const char *h, char *out, size_t cap)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(h), k = 0;
    out[0] = '\0';
    if (n % 4 != 0) {
        return;
    }
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            const char *p = h[i + j] == '=' ? NULL : strchr(A, h[i + j]);
            v[j] = p != NULL ? (int)(p - A) : -1;
        }
        if (v[0] < 0 || v[1] < 0 || k + 4 >= cap) {
            out[0] = '\0';
            return;
        }
        out[k++] = (char)((v[0] << 2) | (v[1] >> 4));
        if (v[2] >= 0) {
            out[k++] = (char)(((v[1] & 15) << 4) | (v[2] >> 2));
        }
        if (v[3] >= 0) {
            out[k++] = (char)(((v[2] & 3) << 6) | v[3]);
        }
    }
    out[k] = '\0';
}

static int resolve(const char *config, const char *helper, const auth_query *q, long timeout,
                   ares *a)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    auth_opts o = { &loop, lua, config, helper, timeout };
    auth_req *r = NULL;
    drv_err err;
    memset(a, 0, sizeof *a);
    returned_flag = 0;
    int rc = auth_resolve(&o, q, on_auth, a, &r, &err);
    returned_flag = 1;
    if (rc < 0) {
        uv_loop_close(&loop);
        return rc;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1000;
}

static const char *config_file(const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    write_file(path, text, 0600);
    return path;
}

TEST(auth_task_credentials_come_from_the_loop)
{
    ares a;
    auth_query q = { REG, REG "/x:1", "u", "s3cret", NULL, NULL, 0 };
    ASSERT_INT_EQ(0, resolve(config_file("{"), "rec", &q, 0, &a));
    ASSERT_INT_EQ(1, a.called);
    ASSERT_INT_EQ(1, a.returned);
    ASSERT_INT_EQ(0, a.rc);
    char json[512];
    unheader(a.header, json, sizeof json);
    ASSERT_CONTAINS(json, "\"username\":\"u\"");
    ASSERT_CONTAINS(json, "\"password\":\"s3cret\"");
    ASSERT_CONTAINS(json, "\"serveraddress\":\"127.0.0.1:5443\"");
}

TEST(auth_anonymous_when_nothing_is_configured)
{
    ares a;
    auth_query q = { "docker.io", "redis", NULL, NULL, NULL, NULL, 0 };
    ASSERT_INT_EQ(0, resolve(NULL, NULL, &q, 0, &a));
    ASSERT_INT_EQ(1, a.called);
    ASSERT_INT_EQ(1, a.returned);
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
}

TEST(auth_config_auths_entry)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    const char *path = config_file("{\"auths\":{\"https://" REG "/v1/\":"
                                   "{\"auth\":\"dGVzdHVzZXI6dGVzdHBhc3M=\"}},"
                                   "\"credsStore\":\"fail\"}");
    ASSERT_INT_EQ(0, resolve(path, "fail", &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    char json[512];
    unheader(a.header, json, sizeof json);
    ASSERT_CONTAINS(json, "\"username\":\"testuser\"");
    ASSERT_CONTAINS(json, "\"password\":\"testpass\"");
}

TEST(auth_config_cred_helper_gets_the_config_key)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    unlink_in("rec.in");
    ASSERT_INT_EQ(0, resolve(config_file("{\"credHelpers\":{\"" REG "\":\"rec\"},"
                                         "\"credsStore\":\"fail\"}"), "fail", &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(1, a.returned);
    char *in = slurp("rec.in");
    ASSERT_STR_EQ(REG, in);
    free(in);
    char json[512];
    unheader(a.header, json, sizeof json);
    ASSERT_CONTAINS(json, "\"username\":\"u\"");
    ASSERT_CONTAINS(json, "\"password\":\"s3cret\"");
}

TEST(auth_creds_store_for_hub_gets_the_hub_key)
{
    ares a;
    auth_query q = { "docker.io", "redis", NULL, NULL, NULL, NULL, 0 };
    unlink_in("rec.in");
    ASSERT_INT_EQ(0, resolve(config_file("{\"auths\":{\"" HUB "\":{}},\"credsStore\":\"rec\"}"),
                             NULL, &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    char *in = slurp("rec.in");
    ASSERT_STR_EQ(HUB, in);
    free(in);
    ASSERT_INT_EQ(1, a.has_header);
}

TEST(auth_agent_helper_gets_the_bare_host)
{
    ares a;
    auth_query q = { "docker.io", "redis", NULL, NULL, NULL, NULL, 0 };
    unlink_in("rec.in");
    ASSERT_INT_EQ(0, resolve(config_file("{}"), "rec", &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    char *in = slurp("rec.in");
    ASSERT_STR_EQ("docker.io", in);
    free(in);
    ASSERT_INT_EQ(0, resolve(NULL, "token", &q, 0, &a));
    char json[512];
    unheader(a.header, json, sizeof json);
    ASSERT_CONTAINS(json, "\"identitytoken\":\"tok-1\"");
    ASSERT(strstr(json, "username") == NULL);
}

TEST(auth_helper_not_found_or_empty_means_anonymous)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    ASSERT_INT_EQ(0, resolve(NULL, "notfound", &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
    ASSERT_INT_EQ(0, resolve(NULL, "empty", &q, 0, &a));
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
}

/* Runs resolve with stderr going to a file; returns what was logged. */
static char *resolve_logged(const char *helper, const auth_query *q, ares *a)
{
    char path[256];
    snprintf(path, sizeof path, "%s/stderr.log", tmpdir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    int lvl = log_get_level();
    log_set_level(LOG_DEBUG);
    resolve(NULL, helper, q, 0, a);
    log_set_level(lvl);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return slurp("stderr.log");
}

TEST(auth_helper_failure_names_helper_and_stderr_never_stdout)
{
    ares a;
    auth_query q = { REG, REG "/x:1", NULL, NULL, NULL, NULL, 0 };
    char *log = resolve_logged("fail", &q, &a);
    free(log);
    ASSERT_INT_EQ(1, a.called);
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
    ASSERT_STR_EQ("registry auth for \"127.0.0.1:5443\" from docker.auth.helper \"fail\": helper "
                  "failed with exit status 2: boom: agent down\\n\\x1b[2J", a.msg);
    ASSERT(strstr(a.msg, "s3cret") == NULL);
}

TEST(auth_soft_fail_pulls_anonymously_with_a_warning)
{
    ares a;
    auth_query q = { REG, REG "/x:1", NULL, NULL, NULL, NULL, 1 };
    char *log = resolve_logged("fail", &q, &a);
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
    ASSERT_CONTAINS(log, "helper failed with exit status 2: boom: agent down");
    ASSERT_CONTAINS(log, "auth_soft_fail is set: pulling \"127.0.0.1:5443/x:1\" without credentials");
    ASSERT(strstr(log, "s3cret") == NULL);
    free(log);
    /* credentials found: nothing secret in the debug line either */
    log = resolve_logged("rec", &q, &a);
    ASSERT_INT_EQ(1, a.has_header);
    ASSERT_CONTAINS(log, "from docker.auth.helper \"rec\": credentials");
    ASSERT(strstr(log, "s3cret") == NULL);
    ASSERT(strstr(log, a.header) == NULL);
    free(log);
}

TEST(auth_helper_timeout_and_garbage)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    ASSERT_INT_EQ(0, resolve(NULL, "sleep", &q, 200, &a));
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    ASSERT_STR_EQ("registry auth for \"127.0.0.1:5443\" from docker.auth.helper \"sleep\": "
                  "helper \"docker-credential-sleep get\" timed out after 200 ms: started", a.msg);
    ASSERT_INT_EQ(0, resolve(NULL, "garbage", &q, 0, &a));
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    ASSERT_CONTAINS(a.msg, "helper output is not a JSON object");
    ASSERT(strstr(a.msg, "s3cret") == NULL);
    ASSERT_INT_EQ(0, resolve(NULL, "nosuch", &q, 0, &a));
    ASSERT_STR_EQ("registry auth for \"127.0.0.1:5443\" from docker.auth.helper \"nosuch\": "
                  "helper \"docker-credential-nosuch\" not found on PATH", a.msg);
    ASSERT_INT_EQ(1, a.returned);
}

TEST(auth_config_file_problems_name_the_file)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    char path[256];
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    ASSERT_INT_EQ(0, resolve(path, "rec", &q, 0, &a));
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    buf want = BUF_INIT;
    buf_appendf(&want, "registry auth for \"127.0.0.1:5443\" from docker.auth.config \"%s\": "
                "cannot read: No such file or directory", path);
    ASSERT_STR_EQ(buf_str(&want), a.msg);
    buf_free(&want);
    /* a FIFO would block the loop: refused */
    snprintf(path, sizeof path, "%s/fifo.json", tmpdir);
    mkfifo(path, 0600);
    ASSERT_INT_EQ(0, resolve(path, NULL, &q, 0, &a));
    ASSERT_CONTAINS(a.msg, "fifo.json\": not a regular file");
    ASSERT_INT_EQ(0, resolve(tmpdir, NULL, &q, 0, &a));
    ASSERT_CONTAINS(a.msg, "not a regular file");
    /* too large */
    snprintf(path, sizeof path, "%s/big.json", tmpdir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 1100; i++) {
        fprintf(f, "%1024s", " ");
    }
    fclose(f);
    ASSERT_INT_EQ(0, resolve(path, NULL, &q, 0, &a));
    ASSERT_CONTAINS(a.msg, "big.json\": larger than 1048576 bytes");
    /* a malformed entry: the key, never the value */
    ASSERT_INT_EQ(0, resolve(config_file("{\"auths\":{\"" REG "\":{\"auth\":\"OnMzY3JldA==\"}}}"),
                             NULL, &q, 0, &a));
    ASSERT_CONTAINS(a.msg, "auths[\"127.0.0.1:5443\"].auth: empty username");
    ASSERT(strstr(a.msg, "OnMzY3JldA") == NULL);
    /* with soft fail: anonymous */
    q.soft_fail = 1;
    int lvl = log_get_level();
    log_set_level(LOG_ERROR + 1);
    ASSERT_INT_EQ(0, resolve(tmpdir, NULL, &q, 0, &a));
    log_set_level(lvl);
    ASSERT_INT_EQ(0, a.rc);
    ASSERT_INT_EQ(0, a.has_header);
}

TEST(auth_hostile_helper_names_are_refused)
{
    ares a;
    auth_query q = { REG, NULL, NULL, NULL, NULL, NULL, 0 };
    ASSERT_INT_EQ(0, resolve(config_file("{\"credHelpers\":{\"" REG "\":\"../evil\"}}"), NULL,
                             &q, 0, &a));
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    ASSERT_CONTAINS(a.msg, "helper name not allowed");
    ASSERT_INT_EQ(0, resolve(NULL, "/bin/true", &q, 0, &a));
    ASSERT_INT_EQ(DRV_EIMAGE, a.rc);
    ASSERT_CONTAINS(a.msg, "helper name not allowed");
}

static void cancel_auth(uv_timer_t *t)
{
    auth_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

TEST(auth_cancel_stops_the_helper_and_never_calls_back)
{
    const char *variants[] = { "sleep", NULL };   /* a helper running; a pending answer */
    for (int i = 0; i < 2; i++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        auth_opts o = { &loop, lua, NULL, variants[i], 20000 };
        auth_query q = { REG, NULL, variants[i] == NULL ? "u" : NULL, NULL, NULL, NULL, 0 };
        ares a;
        memset(&a, 0, sizeof a);
        auth_req *r = NULL;
        drv_err err;
        unlink_in("sleep.pid");
        ASSERT_INT_EQ(0, auth_resolve(&o, &q, on_auth, &a, &r, &err));
        if (variants[i] == NULL) {
            auth_cancel(r);     /* before the loop delivered the answer */
        } else {
            uv_timer_t t;
            uv_timer_init(&loop, &t);
            t.data = r;
            uv_timer_start(&t, cancel_auth, 300, 0);
            uv_run(&loop, UV_RUN_DEFAULT);
            ASSERT(group_gone("sleep.pid"));
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        ASSERT_INT_EQ(0, uv_loop_close(&loop));
        ASSERT_INT_EQ(0, a.called);
    }
}

int main(void)
{
    drv_err err;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/drvctl-test-auth-XXXXXX");
    if (mkdtemp(tmpdir) == NULL || script_open(&lua, "lua", &err) < 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR);
    setup_stubs();
    RUN(helper_gets_its_input_on_stdin_and_answers);
    RUN(helper_that_does_not_read_stdin_still_answers);
    RUN(helper_failure_reports_status_and_stderr);
    RUN(helper_timeout_kills_its_process_group);
    RUN(helper_stdout_over_the_cap_is_killed_and_not_shown);
    RUN(helper_stderr_is_capped);
    RUN(helper_children_holding_the_pipes_do_not_stall_it);
    RUN(helper_descendant_in_another_session_is_cut_off_at_the_timeout);
    RUN(helper_inherits_no_descriptor_but_its_pipes);
    RUN(helper_missing_or_badly_named_is_refused_at_start);
    RUN(helper_cancel_kills_without_calling_back);
    RUN(auth_task_credentials_come_from_the_loop);
    RUN(auth_anonymous_when_nothing_is_configured);
    RUN(auth_config_auths_entry);
    RUN(auth_config_cred_helper_gets_the_config_key);
    RUN(auth_creds_store_for_hub_gets_the_hub_key);
    RUN(auth_agent_helper_gets_the_bare_host);
    RUN(auth_helper_not_found_or_empty_means_anonymous);
    RUN(auth_helper_failure_names_helper_and_stderr_never_stdout);
    RUN(auth_soft_fail_pulls_anonymously_with_a_warning);
    RUN(auth_helper_timeout_and_garbage);
    RUN(auth_config_file_problems_name_the_file);
    RUN(auth_hostile_helper_names_are_refused);
    RUN(auth_cancel_stops_the_helper_and_never_calls_back);
    script_close(lua);
    buf rm = BUF_INIT;
    buf_appendf(&rm, "rm -rf '%s'", tmpdir);
    if (system(buf_str(&rm)) != 0) {
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    }
    buf_free(&rm);
    return test_summary();
}
