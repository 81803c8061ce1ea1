/*
 * artifact.c: download, verify and unpack one task artifact (see artifact.h).
 *
 * Life of a fetch: http_start streams the body into a hidden temporary file
 * in dest_dir (hashing as it goes) -> the digest is compared -> the file is
 * renamed to its final name, or `tar` (uv_spawn, no shell) unpacks it and it
 * is deleted -> on_done runs once -> the artifact is freed. Every failure
 * path unlinks the temporary file first.
 */
#include "artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

/* Bytes of tar's stderr kept for the error message. */
#define TAR_ERR_MAX 512

struct artifact {
    uv_loop_t *loop;
    char *source;             /* as the job wrote it, for messages */
    char *url;
    char *dest_dir;
    char *final_path;         /* dest_dir/name */
    char *tmp_path;           /* hidden download file; NULL once gone */
    int fd;
    int unpack, gzip;
    const EVP_MD *md;         /* NULL: no checksum */
    const char *md_name;
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned expected_len;
    EVP_MD_CTX *ctx;
    http_req *req;            /* non-NULL while downloading */
    uv_process_t proc;
    uv_pipe_t errpipe;
    int open_handles;         /* tar process + its stderr pipe */
    int64_t exit_status;
    int term_signal;
    buf tar_err;
    int canceled;
    drv_err err;              /* first failure (code 0: none yet) */
    artifact_done_cb on_done;
    void *ud;
};

/* --- helpers ------------------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static void hex_encode(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t sl = strlen(s), xl = strlen(suffix);
    return sl >= xl && strcmp(s + sl - xl, suffix) == 0;
}

/* "file://" + the path, percent-encoding everything but unreserved and '/'. */
static char *path_to_url(const char *path)
{
    buf b = BUF_INIT;
    buf_puts(&b, "file://");
    for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p) != NULL) {
            buf_append(&b, p, 1);
        } else {
            buf_appendf(&b, "%%%02X", *p);
        }
    }
    return b.data;
}

/* The percent-decoded last segment of the URL path, or NULL if there is no
 * usable file name. */
static char *url_file_name(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    p = strchr(p, '/');              /* end of the authority */
    if (p == NULL) {
        return NULL;
    }
    size_t plen = strcspn(p, "?#");
    const char *seg = p;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] == '/') {
            seg = p + i + 1;
        }
    }
    size_t slen = (size_t)(p + plen - seg);
    buf name = BUF_INIT;
    for (size_t i = 0; i < slen; i++) {
        int hi, lo;
        if (seg[i] == '%' && i + 2 < slen &&
            (hi = hexval((unsigned char)seg[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)seg[i + 2])) >= 0) {
            char ch = (char)(hi << 4 | lo);
            buf_append(&name, &ch, 1);
            i += 2;
        } else {
            buf_append(&name, &seg[i], 1);
        }
    }
    const char *n = buf_str(&name);
    if (n[0] == '\0' || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
        strchr(n, '/') != NULL || strlen(n) != name.len) {
        buf_free(&name);
        return NULL;
    }
    return name.data;
}

static int parse_checksum(artifact *a, const char *spec, drv_err *err)
{
    static const struct { const char *name; const EVP_MD *(*fn)(void); } algos[] = {
        { "md5", EVP_md5 }, { "sha1", EVP_sha1 }, { "sha256", EVP_sha256 },
        { "sha512", EVP_sha512 },
    };
    const char *colon = strchr(spec, ':');

    for (size_t i = 0; colon != NULL && i < sizeof algos / sizeof algos[0]; i++) {
        size_t nl = strlen(algos[i].name);
        if ((size_t)(colon - spec) != nl || strncasecmp(spec, algos[i].name, nl) != 0) {
            continue;
        }
        const EVP_MD *md = algos[i].fn();
        const char *hex = colon + 1;
        size_t want = (size_t)EVP_MD_get_size(md);
        if (strlen(hex) != 2 * want) {
            break;
        }
        for (size_t j = 0; j < want; j++) {
            int hi = hexval((unsigned char)hex[2 * j]), lo = hexval((unsigned char)hex[2 * j + 1]);
            if (hi < 0 || lo < 0) {
                return drv_err_set(err, DRV_EINVALID,
                                   "artifact \"%s\": invalid checksum: \"%s\"", a->source, spec);
            }
            a->expected[j] = (unsigned char)(hi << 4 | lo);
        }
        a->md = md;
        a->md_name = algos[i].name;
        a->expected_len = (unsigned)want;
        return 0;
    }
    return drv_err_set(err, DRV_EINVALID,
                       "artifact \"%s\": invalid checksum, want md5, sha1, sha256 or sha512 "
                       "followed by \":\" and the hex digest: \"%s\"", a->source, spec);
}

/* mkdir -p with mode 0755. */
static int make_dirs(const char *dir, drv_err *err)
{
    char *path = drv_xstrdup(dir);
    int rc = 0;

    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            rc = drv_err_set(err, DRV_EIO, "cannot create directory \"%s\": %s", path,
                             strerror(errno));
            break;
        }
        *p = saved;
        if (saved == '\0') {
            break;
        }
    }
    free(path);
    return rc;
}

static void artifact_free(artifact *a)
{
    if (a->fd >= 0) {
        close(a->fd);
    }
    if (a->tmp_path != NULL) {
        unlink(a->tmp_path);
        free(a->tmp_path);
    }
    EVP_MD_CTX_free(a->ctx);
    buf_free(&a->tar_err);
    free(a->source);
    free(a->url);
    free(a->dest_dir);
    free(a->final_path);
    free(a);
}

/* Records the first failure. */
static void fail(artifact *a, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(artifact *a, int code, const char *fmt, ...)
{
    if (a->err.code != 0) {
        return;
    }
    char msg[DRV_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    drv_err_set(&a->err, code, "artifact \"%s\": %s", a->source, msg);
}

/* Reports the outcome and frees the artifact. */
static void complete(artifact *a)
{
    int rc = a->err.code;
    if (rc == 0 && a->canceled) {
        fail(a, DRV_ECANCELED, "canceled");
        rc = a->err.code;
    }
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    if (a->tmp_path != NULL) {
        unlink(a->tmp_path);
        free(a->tmp_path);
        a->tmp_path = NULL;
    }
    a->on_done(a->ud, rc, rc != 0 ? &a->err : NULL);
    artifact_free(a);
}

/* --- unpacking ------------------------------------------------------------ */

static void on_tar_handle_close(uv_handle_t *h)
{
    artifact *a = h->data;
    if (--a->open_handles > 0) {
        return;
    }
    if (a->err.code == 0 && !a->canceled &&
        (a->exit_status != 0 || a->term_signal != 0)) {
        const char *msg = buf_str(&a->tar_err);
        msg += strspn(msg, "\r\n");          /* gzip starts with a blank line */
        size_t len = strcspn(msg, "\r\n");
        if (a->term_signal != 0) {
            fail(a, DRV_EARTIFACT, "unpack failed: tar killed by signal %d", a->term_signal);
        } else if (len > 0) {
            fail(a, DRV_EARTIFACT, "unpack failed: tar exited with status %lld: %.*s",
                 (long long)a->exit_status, (int)len, msg);
        } else {
            fail(a, DRV_EARTIFACT, "unpack failed: tar exited with status %lld",
                 (long long)a->exit_status);
        }
    }
    complete(a);
}

static void on_tar_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    artifact *a = p->data;
    a->exit_status = exit_status;
    a->term_signal = term_signal;
    uv_close((uv_handle_t *)p, on_tar_handle_close);
}

static void on_tar_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char scratch[4096];
    (void)h;
    (void)suggested;
    *b = uv_buf_init(scratch, sizeof scratch);
}

static void on_tar_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    artifact *a = s->data;
    if (n > 0) {
        size_t keep = a->tar_err.len < TAR_ERR_MAX ? TAR_ERR_MAX - a->tar_err.len : 0;
        buf_append(&a->tar_err, b->base, (size_t)n < keep ? (size_t)n : keep);
    } else if (n < 0) {
        uv_close((uv_handle_t *)s, on_tar_handle_close);
    }
}

static void start_tar(artifact *a)
{
    const char *args[12];
    int n = 0;
    args[n++] = "tar";
    args[n++] = "-x";
    if (a->gzip) {
        args[n++] = "-z";
    }
    args[n++] = "--no-same-owner";
    args[n++] = "--no-same-permissions";
    args[n++] = "-f";
    args[n++] = a->tmp_path;
    args[n++] = "-C";
    args[n++] = a->dest_dir;
    args[n] = NULL;

    uv_pipe_init(a->loop, &a->errpipe, 0);
    a->errpipe.data = a;
    a->proc.data = a;
    a->open_handles = 2;

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&a->errpipe;

    uv_process_options_t po;
    memset(&po, 0, sizeof po);
    po.file = "tar";
    po.args = (char **)(uintptr_t)args;
    po.exit_cb = on_tar_exit;
    po.stdio_count = 3;
    po.stdio = stdio;

    int rc = uv_spawn(a->loop, &a->proc, &po);
    a->proc.data = a;
    if (rc != 0) {
        fail(a, DRV_EARTIFACT, "unpack failed: cannot run tar: %s", uv_strerror(rc));
        uv_close((uv_handle_t *)&a->proc, on_tar_handle_close);
        uv_close((uv_handle_t *)&a->errpipe, on_tar_handle_close);
        return;
    }
    rc = uv_read_start((uv_stream_t *)&a->errpipe, on_tar_alloc, on_tar_read);
    if (rc != 0) {
        uv_close((uv_handle_t *)&a->errpipe, on_tar_handle_close);
    }
}

/* --- download --------------------------------------------------------------- */

static int on_http_data(void *ud, const char *data, size_t len)
{
    artifact *a = ud;

    if (a->ctx != NULL && EVP_DigestUpdate(a->ctx, data, len) != 1) {
        fail(a, DRV_EINTERNAL, "checksum computation failed");
        return DRV_EINTERNAL;
    }
    while (len > 0) {
        ssize_t n = write(a->fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail(a, DRV_EARTIFACT, "download failed: cannot write \"%s\": %s", a->tmp_path,
                 strerror(errno));
            return DRV_EIO;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Compares the digest; returns 0 when it matches (or there is none). */
static int verify(artifact *a)
{
    if (a->ctx == NULL) {
        return 0;
    }
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned got_len = 0;
    if (EVP_DigestFinal_ex(a->ctx, got, &got_len) != 1) {
        fail(a, DRV_EINTERNAL, "checksum computation failed");
        return -1;
    }
    if (got_len == a->expected_len && memcmp(got, a->expected, got_len) == 0) {
        return 0;
    }
    char want_hex[2 * EVP_MAX_MD_SIZE + 1], got_hex[2 * EVP_MAX_MD_SIZE + 1];
    hex_encode(a->expected, a->expected_len, want_hex);
    hex_encode(got, got_len, got_hex);
    fail(a, DRV_EARTIFACT, "checksum mismatch: expected %s:%s, got %s:%s", a->md_name, want_hex,
         a->md_name, got_hex);
    return -1;
}

static void on_http_done(void *ud, http_req *r, int rc, long status, const buf *body,
                         const drv_err *err)
{
    artifact *a = ud;
    (void)r;
    (void)body;

    a->req = NULL;
    if (a->err.code != 0) {
        /* on_data already recorded why it aborted */
    } else if (rc == DRV_ECANCELED || a->canceled) {
        a->canceled = 1;
    } else if (rc < 0) {
        fail(a, DRV_EARTIFACT, "download failed: %s", err ? err->msg : drv_strerror(rc));
    } else if (status < 200 || status > 299) {
        fail(a, DRV_EARTIFACT, "download failed: HTTP %ld", status);
    }
    if (a->err.code != 0 || a->canceled || verify(a) != 0) {
        complete(a);
        return;
    }
    if (close(a->fd) != 0) {
        a->fd = -1;
        fail(a, DRV_EARTIFACT, "download failed: cannot write \"%s\": %s", a->tmp_path,
             strerror(errno));
        complete(a);
        return;
    }
    a->fd = -1;
    if (a->unpack) {
        start_tar(a);
        return;
    }
    if (rename(a->tmp_path, a->final_path) != 0) {
        fail(a, DRV_EARTIFACT, "cannot rename to \"%s\": %s", a->final_path, strerror(errno));
    } else {
        free(a->tmp_path);
        a->tmp_path = NULL;
    }
    complete(a);
}

/* --- public API ---------------------------------------------------------- */

static int setup(artifact *a, const artifact_opts *o, drv_err *err)
{
    const char *src = o->source;

    if (src[0] == '/') {
        a->url = path_to_url(src);
    } else if (has_prefix_ci(src, "http://") || has_prefix_ci(src, "https://") ||
               has_prefix_ci(src, "file://")) {
        a->url = drv_xstrdup(src);
    } else {
        return drv_err_set(err, DRV_EINVALID,
                           "artifact \"%s\": unsupported source, want an http://, https:// "
                           "or file:// URL or an absolute path", src);
    }
    if (o->dest_dir == NULL || o->dest_dir[0] != '/') {
        return drv_err_set(err, DRV_EINTERNAL, "artifact \"%s\": destination is not absolute: "
                           "\"%s\"", src, o->dest_dir ? o->dest_dir : "");
    }
    char *name = url_file_name(a->url);
    if (name == NULL) {
        return drv_err_set(err, DRV_EINVALID,
                           "artifact \"%s\": cannot derive a file name from the URL path", src);
    }
    buf path = BUF_INIT;
    buf_appendf(&path, "%s/%s", a->dest_dir, name);
    a->final_path = path.data;

    const char *arch = o->archive;
    if (arch == NULL) {
        a->gzip = ends_with(name, ".tar.gz") || ends_with(name, ".tgz");
        a->unpack = a->gzip;
    } else if (strcmp(arch, "false") == 0) {
        a->unpack = 0;
    } else if (strcmp(arch, "tar") == 0) {
        a->unpack = 1;
    } else if (strcmp(arch, "tar.gz") == 0 || strcmp(arch, "tgz") == 0) {
        a->unpack = a->gzip = 1;
    } else {
        free(name);
        return drv_err_set(err, DRV_EINVALID,
                           "artifact \"%s\": unsupported archive type, want tar, tar.gz, tgz "
                           "or false: \"%s\"", src, arch);
    }

    if (o->checksum != NULL && o->checksum[0] != '\0') {
        int rc = parse_checksum(a, o->checksum, err);
        if (rc != 0) {
            free(name);
            return rc;
        }
        a->ctx = EVP_MD_CTX_new();
        if (a->ctx == NULL || EVP_DigestInit_ex(a->ctx, a->md, NULL) != 1) {
            free(name);
            return drv_err_set(err, DRV_EINTERNAL, "artifact \"%s\": cannot start checksum", src);
        }
    }

    drv_err derr;
    if (make_dirs(a->dest_dir, &derr) != 0) {
        free(name);
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": %s", src, derr.msg);
    }
    buf tmp = BUF_INIT;
    buf_appendf(&tmp, "%s/.%s.part.XXXXXX", a->dest_dir, name);
    free(name);
    a->fd = mkostemp(tmp.data, O_CLOEXEC);
    if (a->fd < 0) {
        int e = errno;
        buf_free(&tmp);
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": cannot create a file in \"%s\": %s",
                           src, a->dest_dir, strerror(e));
    }
    (void)fchmod(a->fd, 0644);
    a->tmp_path = tmp.data;
    return 0;
}

int artifact_fetch(http_client *c, uv_loop_t *loop, const artifact_opts *o,
                   artifact **out, drv_err *err)
{
    if (o->source == NULL || o->source[0] == '\0') {
        return drv_err_set(err, DRV_EINVALID, "artifact: source is empty");
    }
    if (o->on_done == NULL) {
        return drv_err_set(err, DRV_EINTERNAL, "artifact \"%s\": no completion callback",
                           o->source);
    }
    artifact *a = drv_xcalloc(1, sizeof *a);
    a->loop = loop;
    a->fd = -1;
    a->source = drv_xstrdup(o->source);
    a->dest_dir = drv_xstrdup(o->dest_dir ? o->dest_dir : "");
    /* "dir/" and "dir" name the same place */
    for (size_t n = strlen(a->dest_dir); n > 1 && a->dest_dir[n - 1] == '/'; n--) {
        a->dest_dir[n - 1] = '\0';
    }
    a->on_done = o->on_done;
    a->ud = o->ud;

    int rc = setup(a, o, err);
    if (rc != 0) {
        artifact_free(a);
        return rc;
    }

    http_opts ho;
    memset(&ho, 0, sizeof ho);
    ho.method = "GET";
    ho.url = a->url;
    ho.timeout_ms = o->timeout_ms;
    ho.on_data = on_http_data;
    ho.on_done = on_http_done;
    ho.ud = a;
    drv_err herr;
    drv_err_clear(&herr);
    rc = http_start(c, &ho, &a->req, &herr);
    if (rc != 0) {
        drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": download failed: %s", a->source,
                    herr.msg);
        artifact_free(a);
        return DRV_EARTIFACT;
    }
    if (out != NULL) {
        *out = a;
    }
    return 0;
}

void artifact_cancel(artifact *a)
{
    if (a == NULL || a->canceled) {
        return;
    }
    a->canceled = 1;
    if (a->req != NULL) {
        http_cancel(a->req);
    } else if (a->open_handles > 0 && !uv_is_closing((uv_handle_t *)&a->proc)) {
        uv_process_kill(&a->proc, SIGTERM);
    }
}
