/*
 * artifact.c: download, verify and unpack one task artifact (see artifact.h).
 *
 * Life of a fetch: the source is vetted (local: opened beneath its allowed
 * root without symlinks; http: every connection's address is vetted by
 * http.h's on_connect) -> bytes stream into a hidden temporary file in the
 * destination, which is opened beneath the task dir without following any
 * symlink, only once the first byte arrives (hashing and counting as it
 * goes) -> the digest is compared -> the file is renamed to its final name,
 * or a forked child unpacks it with libarchive into a staging directory and
 * merges that into the destination -> on_done runs once -> the artifact is
 * freed. Every failure path removes the temporary file and staging tree.
 */
#include "artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive_dl.h"
#include "buf.h"
#include "fs.h"
#include "netaddr.h"

#define CHILD_ERR_MAX 900       /* bytes of the unpacker's message kept */
#define READ_CHUNK (256 * 1024) /* local sources are copied in these steps */
#define MERGE_DEPTH_MAX 256

enum { MODE_KEEP, MODE_UNPACK, MODE_DECOMPRESS };

struct artifact {
    uv_loop_t *loop;
    char *source;             /* as the job wrote it, for messages */
    char *url;                /* http(s) sources */
    char *local_path, *local_root;
    char *task_dir, *dest;
    char *name;               /* final file name (keep), or the archive's */
    char *out_name;           /* decompress: the name without its suffix */
    char *tmp_name;           /* hidden download file in dest; NULL once gone */
    char *stage_name;         /* hidden unpack directory in dest, or NULL */
    int dest_fd;              /* -1 until the first byte */
    int fd;                   /* the temporary file */
    int src_fd;               /* local source */
    int mode;
    long long max_size, max_unpacked_bytes, max_unpacked_files;
    long long received;
    int allow_private;
    char refused[200];        /* why the last connection was refused */
    const EVP_MD *md;         /* NULL: no checksum */
    const char *md_name;
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned expected_len;
    EVP_MD_CTX *ctx;
    http_req *req;            /* non-NULL while downloading */
    uv_fs_t fsreq;            /* local copy: one read in flight */
    int reading;
    char *rbuf;
    pid_t pid;                /* unpacking child, 0 when none */
    uv_pipe_t errpipe;        /* its messages; EOF when it exits */
    int pipe_open;
    buf child_err;
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

static const char *why_open(int e)
{
    if (e == ELOOP) {
        return "a symlink is in the way (artifacts never follow symlinks)";
    }
    if (e == EXDEV) {
        return "it resolves outside its directory";
    }
    return strerror(e);
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

/* Removes `name` in dirfd and everything below it, never following a
 * symlink. Best effort. */
static void remove_tree_at(int dir, const char *name, int depth)
{
    if (unlinkat(dir, name, 0) == 0 || errno == ENOENT) {
        return;
    }
    int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && depth < MERGE_DEPTH_MAX) {
        DIR *d = fdopendir(fd);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                    remove_tree_at(dirfd(d), e->d_name, depth + 1);
                }
            }
            closedir(d);
        } else {
            close(fd);
        }
    } else if (fd >= 0) {
        close(fd);
    }
    unlinkat(dir, name, AT_REMOVEDIR);
}

/* Opens (creating missing components, mode 0755) task_dir/dest without
 * following any symlink or leaving task_dir. */
static int open_dest(artifact *a)
{
    int fd = open(a->task_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        fail(a, DRV_EARTIFACT, "cannot open the task directory \"%s\": %s", a->task_dir,
             strerror(errno));
        return -1;
    }
    char *rel = drv_xstrdup(a->dest);
    char *save = NULL;
    for (char *comp = strtok_r(rel, "/", &save); comp != NULL; comp = strtok_r(NULL, "/", &save)) {
        if (strcmp(comp, ".") == 0) {
            continue;
        }
        if (strcmp(comp, "..") == 0) {
            fail(a, DRV_EARTIFACT, "destination escapes the task directory: \"%s\"", a->dest);
            close(fd);
            free(rel);
            return -1;
        }
        if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
            fail(a, DRV_EARTIFACT, "cannot create the destination \"%s\": %s", a->dest,
                 strerror(errno));
            close(fd);
            free(rel);
            return -1;
        }
        int next = fs_openat2(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        int e = errno;
        struct stat st;
        if (next < 0 && e == ENOTDIR && fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
            e = ELOOP;
        }
        close(fd);
        if (next < 0) {
            fail(a, DRV_EARTIFACT, "cannot open the destination \"%s\": %s", a->dest,
                 e == ENOTDIR ? "a component is not a directory" : why_open(e));
            free(rel);
            return -1;
        }
        fd = next;
    }
    free(rel);
    a->dest_fd = fd;
    return 0;
}

/* Opens the destination and a fresh hidden temporary file in it. */
static int open_tmp(artifact *a)
{
    if (a->dest_fd < 0 && open_dest(a) < 0) {
        return -1;
    }
    for (int tries = 0; tries < 16; tries++) {
        unsigned char rnd[6];
        char suffix[13];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            memset(rnd, tries, sizeof rnd);
        }
        hex_encode(rnd, sizeof rnd, suffix);
        buf t = BUF_INIT;
        buf_appendf(&t, ".%.100s.part.%s", a->name, suffix);
        int fd = openat(a->dest_fd, buf_str(&t),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0) {
            a->fd = fd;
            a->tmp_name = t.data;
            return 0;
        }
        int e = errno;
        buf_free(&t);
        if (e != EEXIST) {
            fail(a, DRV_EARTIFACT, "cannot create a file in \"%s\": %s", a->dest, strerror(e));
            return -1;
        }
    }
    fail(a, DRV_EARTIFACT, "cannot create a file in \"%s\"", a->dest);
    return -1;
}

static void drop_tmp(artifact *a)
{
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    if (a->tmp_name != NULL) {
        if (a->dest_fd >= 0) {
            unlinkat(a->dest_fd, a->tmp_name, 0);
        }
        free(a->tmp_name);
        a->tmp_name = NULL;
    }
    if (a->stage_name != NULL) {
        if (a->dest_fd >= 0) {
            remove_tree_at(a->dest_fd, a->stage_name, 0);
        }
        free(a->stage_name);
        a->stage_name = NULL;
    }
}

static void artifact_free(artifact *a)
{
    drop_tmp(a);
    if (a->dest_fd >= 0) {
        close(a->dest_fd);
    }
    if (a->src_fd >= 0) {
        close(a->src_fd);
    }
    EVP_MD_CTX_free(a->ctx);
    buf_free(&a->child_err);
    free(a->rbuf);
    free(a->source);
    free(a->url);
    free(a->local_path);
    free(a->local_root);
    free(a->task_dir);
    free(a->dest);
    free(a->name);
    free(a->out_name);
    free(a);
}

/* Reports the outcome and frees the artifact. */
static void complete(artifact *a)
{
    int rc = a->err.code;
    if (rc == 0 && a->canceled) {
        fail(a, DRV_ECANCELED, "canceled");
        rc = a->err.code;
    }
    drop_tmp(a);
    a->on_done(a->ud, rc, rc != 0 ? &a->err : NULL);
    artifact_free(a);
}

/* --- addresses ------------------------------------------------------------- */

const char *artifact_addr_class(const struct sockaddr *sa)
{
    return netaddr_class(sa);
}

static int on_http_connect(void *ud, const struct sockaddr *sa)
{
    artifact *a = ud;
    const char *cls = artifact_addr_class(sa);
    if (cls == NULL || a->allow_private) {
        return 0;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, host,
                  sizeof host);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, host,
                  sizeof host);
    }
    snprintf(a->refused, sizeof a->refused, "refused to connect to %s, a %s address "
             "(client.artifact.allow_private = true allows it)", host, cls);
    return 1;
}

/* --- unpacking (in a forked child) ---------------------------------------- */

static void child_fail(int errfd, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void child_fail(int errfd, const char *fmt, ...)
{
    char msg[CHILD_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n > 0) {
        ssize_t w = write(errfd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    _exit(1);
}

/* Moves every entry of src into dst: new names are renamed in, directories
 * present on both sides are merged, a file replaces a file or symlink. A
 * symlink in dst is never followed. */
static void merge(int errfd, int src, int dst, const char *where, int depth)
{
    if (depth > MERGE_DEPTH_MAX) {
        child_fail(errfd, "unpack failed: directories nested too deep at \"%s\"", where);
    }
    int dup_fd = dup(src);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (d == NULL) {
        child_fail(errfd, "unpack failed: cannot read the staging directory: %s", strerror(errno));
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        struct stat ss, ds;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0) {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s%s%s", where, where[0] ? "/" : "", n);
        if (fstatat(src, n, &ss, AT_SYMLINK_NOFOLLOW) != 0) {
            child_fail(errfd, "unpack failed: \"%s\": %s", path, strerror(errno));
        }
        if (fstatat(dst, n, &ds, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != ENOENT) {
                child_fail(errfd, "unpack failed: \"%s\": %s", path, strerror(errno));
            }
        } else if (S_ISDIR(ss.st_mode) && S_ISDIR(ds.st_mode)) {
            int s2 = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int d2 = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0) {
                child_fail(errfd, "unpack failed: \"%s\": %s", path, strerror(errno));
            }
            merge(errfd, s2, d2, path, depth + 1);
            close(s2);
            close(d2);
            continue;
        } else if (S_ISDIR(ss.st_mode) || S_ISDIR(ds.st_mode)) {
            child_fail(errfd, "unpack failed: \"%s\" exists in the destination as %s", path,
                       S_ISLNK(ds.st_mode) ? "a symlink (artifacts never follow symlinks)"
                       : S_ISDIR(ds.st_mode) ? "a directory" : "a file");
        }
        if (renameat(src, n, dst, n) != 0) {
            child_fail(errfd, "unpack failed: cannot move \"%s\" into place: %s", path,
                       strerror(errno));
        }
    }
    closedir(d);
}

static const char *entry_kind_refused(mode_t t)
{
    switch (t) {
    case AE_IFREG: case AE_IFDIR: case AE_IFLNK:
        return NULL;
    case AE_IFCHR: case AE_IFBLK:
        return "a device node";
    case AE_IFIFO:
        return "a FIFO";
    case AE_IFSOCK:
        return "a socket";
    default:
        return "of an unknown type";
    }
}

/* The child: archive on 3, destination directory on 4, messages to 5.
 * Never returns. */
static void child_unpack(const artifact *a)
{
    const int in_fd = 3, dst_fd = 4, errfd = 5;

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Confine the writes: inside a chroot of the destination, nothing the
     * archive names (absolute symlink targets included) is outside it.
     * Without root, chroot fails and libarchive's secure flags remain. */
    if (fchdir(dst_fd) != 0) {
        child_fail(errfd, "unpack failed: cannot enter the destination: %s", strerror(errno));
    }
    if (chroot(".") == 0 && chdir("/") != 0) {
        child_fail(errfd, "unpack failed: cannot enter the destination: %s", strerror(errno));
    }
    int stage = openat(dst_fd, a->stage_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (stage < 0 || fchdir(stage) != 0) {
        child_fail(errfd, "unpack failed: cannot enter the staging directory: %s",
                   strerror(errno));
    }

    struct archive *in = archive_read_new();
    struct archive *out = archive_write_disk_new();
    if (in == NULL || out == NULL) {
        child_fail(errfd, "unpack failed: out of memory");
    }
    archive_read_support_filter_gzip(in);
    archive_read_support_filter_bzip2(in);
    archive_read_support_filter_xz(in);
    if (a->mode == MODE_DECOMPRESS) {
        archive_read_support_format_raw(in);
    } else {
        archive_read_support_format_tar(in);
        archive_read_support_format_gnutar(in);
        archive_read_support_format_zip(in);
    }
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                   ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                   ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS |
                                   ARCHIVE_EXTRACT_TIME);
    if (archive_read_open_fd(in, in_fd, 64 * 1024) != ARCHIVE_OK) {
        child_fail(errfd, "unpack failed: %s", archive_error_string(in));
    }

    long long files = 0, bytes = 0;
    for (;;) {
        struct archive_entry *ent;
        int r = archive_read_next_header(in, &ent);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r < ARCHIVE_WARN) {
            child_fail(errfd, "unpack failed: %s", archive_error_string(in));
        }
        if (a->mode == MODE_DECOMPRESS) {
            if (archive_filter_code(in, 0) == ARCHIVE_FILTER_NONE) {
                child_fail(errfd, "unpack failed: not gzip, bzip2 or xz data");
            }
            archive_entry_set_pathname(ent, a->out_name);
            archive_entry_set_perm(ent, 0644);
            archive_entry_set_filetype(ent, AE_IFREG);
        }
        const char *path = archive_entry_pathname(ent);
        if (path == NULL) {
            path = "?";
        }
        if (++files > a->max_unpacked_files) {
            child_fail(errfd, "unpack failed: more than %lld entries "
                       "(client.artifact.decompression_file_count_limit)", a->max_unpacked_files);
        }
        const char *bad = entry_kind_refused(archive_entry_filetype(ent));
        if (bad != NULL && archive_entry_hardlink(ent) == NULL) {
            child_fail(errfd, "unpack failed: entry \"%s\" is %s", path, bad);
        }
        r = archive_write_header(out, ent);
        if (r < ARCHIVE_WARN) {
            child_fail(errfd, "unpack failed: entry \"%s\": %s", path, archive_error_string(out));
        }
        if (archive_entry_size_is_set(ent) && archive_entry_size(ent) > 0 &&
            archive_entry_size(ent) > a->max_unpacked_bytes - bytes) {
            child_fail(errfd, "unpack failed: more than %lld bytes unpacked "
                       "(client.artifact.decompression_size_limit)", a->max_unpacked_bytes);
        }
        for (;;) {
            const void *blk;
            size_t len;
            la_int64_t off;
            r = archive_read_data_block(in, &blk, &len, &off);
            if (r == ARCHIVE_EOF) {
                break;
            }
            if (r < ARCHIVE_WARN) {
                child_fail(errfd, "unpack failed: entry \"%s\": %s", path,
                           archive_error_string(in));
            }
            bytes += (long long)len;
            if (bytes > a->max_unpacked_bytes || off > a->max_unpacked_bytes) {
                child_fail(errfd, "unpack failed: more than %lld bytes unpacked "
                           "(client.artifact.decompression_size_limit)", a->max_unpacked_bytes);
            }
            if (archive_write_data_block(out, blk, len, off) < ARCHIVE_WARN) {
                child_fail(errfd, "unpack failed: entry \"%s\": %s", path,
                           archive_error_string(out));
            }
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            child_fail(errfd, "unpack failed: entry \"%s\": %s", path, archive_error_string(out));
        }
    }
    if (archive_write_close(out) < ARCHIVE_WARN) {
        child_fail(errfd, "unpack failed: %s", archive_error_string(out));
    }
    archive_write_free(out);
    archive_read_free(in);
    merge(errfd, stage, dst_fd, "", 0);
    _exit(0);
}

static void on_pipe_close(uv_handle_t *h)
{
    artifact *a = h->data;
    int status = 0;
    pid_t r;
    a->pipe_open = 0;
    do {
        r = waitpid(a->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    a->pid = 0;
    if (a->err.code == 0 && !a->canceled) {
        const char *msg = buf_str(&a->child_err);
        if (r < 0) {
            fail(a, DRV_EARTIFACT, "unpack failed: %s", strerror(errno));
        } else if (WIFSIGNALED(status)) {
            fail(a, DRV_EARTIFACT, "unpack failed: killed by signal %d", WTERMSIG(status));
        } else if (WEXITSTATUS(status) != 0 || msg[0] != '\0') {
            fail(a, DRV_EARTIFACT, "%s", msg[0] != '\0' ? msg : "unpack failed");
        }
    }
    complete(a);
}

static void on_child_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    static char scratch[1024];
    (void)h;
    (void)suggested;
    *b = uv_buf_init(scratch, sizeof scratch);
}

static void on_child_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    artifact *a = s->data;
    if (n > 0) {
        size_t keep = a->child_err.len < CHILD_ERR_MAX ? CHILD_ERR_MAX - a->child_err.len : 0;
        buf_append(&a->child_err, b->base, (size_t)n < keep ? (size_t)n : keep);
    } else if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
        uv_close((uv_handle_t *)s, on_pipe_close);
    }
}

static void start_unpack(artifact *a)
{
    int p[2] = { -1, -1 };
    int in = -1;
    buf t = BUF_INIT;
    drv_err lib_err;

    /* libarchive is loaded lazily (archive_dl.h): here, not in the child */
    if (archive_dl_load(&lib_err) < 0) {
        fail(a, DRV_EARTIFACT, "unpack failed: %s", lib_err.msg);
        complete(a);
        return;
    }
    buf_appendf(&t, "%s.unpack", a->tmp_name);
    a->stage_name = t.data;
    if (mkdirat(a->dest_fd, a->stage_name, 0700) != 0) {
        fail(a, DRV_EARTIFACT, "unpack failed: cannot create a directory in \"%s\": %s", a->dest,
             strerror(errno));
        free(a->stage_name);
        a->stage_name = NULL;
        complete(a);
        return;
    }
    in = openat(a->dest_fd, a->tmp_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0 || pipe2(p, O_CLOEXEC) != 0) {
        fail(a, DRV_EARTIFACT, "unpack failed: %s", strerror(errno));
        if (in >= 0) {
            close(in);
        }
        complete(a);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* fds 3, 4, 5 as child_unpack expects, nothing else open */
        int fds[3] = { in, a->dest_fd, p[1] };
        for (int i = 0; i < 3; i++) {
            int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 16);
            if (moved < 0) {
                _exit(1);
            }
            fds[i] = moved;
        }
        for (int i = 0; i < 3; i++) {
            if (dup2(fds[i], 3 + i) < 0) {
                _exit(1);
            }
        }
        closefrom(6);
        child_unpack(a);
    }
    int e = errno;
    close(in);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        fail(a, DRV_EARTIFACT, "unpack failed: cannot fork: %s", strerror(e));
        complete(a);
        return;
    }
    a->pid = pid;
    uv_pipe_init(a->loop, &a->errpipe, 0);
    a->errpipe.data = a;
    a->pipe_open = 1;
    if (uv_pipe_open(&a->errpipe, p[0]) != 0 ||
        uv_read_start((uv_stream_t *)&a->errpipe, on_child_alloc, on_child_read) != 0) {
        kill(pid, SIGKILL);
        fail(a, DRV_EARTIFACT, "unpack failed: cannot watch the unpacker");
        uv_close((uv_handle_t *)&a->errpipe, on_pipe_close);
    }
}

/* --- download --------------------------------------------------------------- */

/* Takes the next bytes of the body; 0, or a negative code to stop. */
static int feed(artifact *a, const char *data, size_t len)
{
    if (a->err.code != 0) {
        return a->err.code;
    }
    if (a->fd < 0 && open_tmp(a) < 0) {
        return DRV_EARTIFACT;
    }
    a->received += (long long)len;
    if (a->received > a->max_size) {
        fail(a, DRV_EARTIFACT, "download failed: larger than %lld bytes "
             "(client.artifact.http_max_size)", a->max_size);
        return DRV_EARTIFACT;
    }
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
            fail(a, DRV_EARTIFACT, "download failed: cannot write in \"%s\": %s", a->dest,
                 strerror(errno));
            return DRV_EIO;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int on_http_data(void *ud, const char *data, size_t len)
{
    return feed(ud, data, len);
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

/* The whole body is in: verify, then rename or unpack. */
static void downloaded(artifact *a)
{
    if (a->err.code != 0 || a->canceled || verify(a) != 0) {
        complete(a);
        return;
    }
    if (a->fd < 0 && open_tmp(a) < 0) {      /* an empty body */
        complete(a);
        return;
    }
    if (close(a->fd) != 0) {
        a->fd = -1;
        fail(a, DRV_EARTIFACT, "download failed: cannot write in \"%s\": %s", a->dest,
             strerror(errno));
        complete(a);
        return;
    }
    a->fd = -1;
    if (a->mode != MODE_KEEP) {
        start_unpack(a);
        return;
    }
    if (renameat(a->dest_fd, a->tmp_name, a->dest_fd, a->name) != 0) {
        fail(a, DRV_EARTIFACT, "cannot rename to \"%s\" in \"%s\": %s", a->name, a->dest,
             strerror(errno));
    } else {
        free(a->tmp_name);
        a->tmp_name = NULL;
    }
    complete(a);
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
    } else if (rc < 0 && a->refused[0] != '\0') {
        fail(a, DRV_EARTIFACT, "download failed: %s", a->refused);
    } else if (rc < 0) {
        fail(a, DRV_EARTIFACT, "download failed: %s", err ? err->msg : drv_strerror(rc));
    } else if (status < 200 || status > 299) {
        fail(a, DRV_EARTIFACT, "download failed: HTTP %ld", status);
    }
    downloaded(a);
}

/* Local sources: one READ_CHUNK at a time on the thread pool, so the loop
 * (signals, cancel) stays responsive however large the file. */
static void read_next(artifact *a);

static void on_local_read(uv_fs_t *req)
{
    artifact *a = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    a->reading = 0;
    if (a->canceled || a->err.code != 0) {
        downloaded(a);
        return;
    }
    if (n < 0) {
        fail(a, DRV_EARTIFACT, "cannot read \"%s\": %s", a->local_path, uv_strerror((int)n));
        downloaded(a);
        return;
    }
    if (n == 0 || feed(a, a->rbuf, (size_t)n) != 0) {
        downloaded(a);
        return;
    }
    read_next(a);
}

static void read_next(artifact *a)
{
    uv_buf_t b = uv_buf_init(a->rbuf, READ_CHUNK);
    a->fsreq.data = a;
    int rc = uv_fs_read(a->loop, &a->fsreq, a->src_fd, &b, 1, -1, on_local_read);
    if (rc < 0) {
        fail(a, DRV_EARTIFACT, "cannot read \"%s\": %s", a->local_path, uv_strerror(rc));
        downloaded(a);
        return;
    }
    a->reading = 1;
}

/* --- public API ---------------------------------------------------------- */

static int set_mode(artifact *a, const char *arch, drv_err *err)
{
    static const char *const unpack_names[] = {
        ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip",
    };
    static const char *const unpack_opts[] = {
        "tar", "tar.gz", "tgz", "tar.bz2", "tbz2", "tar.xz", "txz", "zip",
    };
    static const char *const single[] = { ".gz", ".bz2", ".xz" };

    a->mode = MODE_KEEP;
    if (arch == NULL) {
        for (size_t i = 0; i < sizeof unpack_names / sizeof unpack_names[0]; i++) {
            if (ends_with(a->name, unpack_names[i])) {
                a->mode = MODE_UNPACK;
            }
        }
    } else if (strcmp(arch, "false") == 0) {
        return 0;
    } else {
        for (size_t i = 0; i < sizeof unpack_opts / sizeof unpack_opts[0]; i++) {
            if (strcmp(arch, unpack_opts[i]) == 0) {
                a->mode = MODE_UNPACK;
            }
        }
        for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
            if (strcmp(arch, single[i] + 1) == 0) {
                a->mode = MODE_DECOMPRESS;
            }
        }
        if (a->mode == MODE_KEEP) {
            return drv_err_set(err, DRV_EINVALID,
                               "artifact \"%s\": unsupported archive type, want tar, tar.gz, "
                               "tgz, tar.bz2, tbz2, tar.xz, txz, zip, gz, bz2, xz or false: "
                               "\"%s\"", a->source, arch);
        }
    }
    if (a->mode == MODE_KEEP && arch == NULL) {
        for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
            if (ends_with(a->name, single[i])) {
                a->mode = MODE_DECOMPRESS;
            }
        }
    }
    if (a->mode == MODE_DECOMPRESS) {
        size_t n = strlen(a->name);
        const char *dot = strrchr(a->name, '.');
        if (dot != NULL && dot != a->name) {
            n = (size_t)(dot - a->name);
        }
        a->out_name = drv_xcalloc(n + 1, 1);
        memcpy(a->out_name, a->name, n);
        if (strcmp(a->out_name, ".") == 0 || strcmp(a->out_name, "..") == 0 ||
            a->out_name[0] == '\0') {
            return drv_err_set(err, DRV_EINVALID, "artifact \"%s\": cannot derive a file name "
                               "from \"%s\"", a->source, a->name);
        }
    }
    return 0;
}

/* Opens a local source: a regular file beneath local_root, no symlinks. */
static int open_local(artifact *a, drv_err *err)
{
    const char *root = a->local_root, *path = a->local_path;
    size_t rl = root ? strlen(root) : 0;
    while (rl > 1 && root[rl - 1] == '/') {
        rl--;
    }
    if (root == NULL || root[0] != '/' || path[0] != '/' || strncmp(path, root, rl) != 0 ||
        (path[rl] != '/' && rl > 1) || path[rl + (rl > 1)] == '\0') {
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": local source refused: not "
                           "beneath a directory in client.artifact.local_dirs", a->source);
    }
    const char *rel = path + rl + (rl > 1);
    while (*rel == '/') {
        rel++;
    }
    int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) {
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": cannot open the local "
                           "directory \"%s\": %s", a->source, root, strerror(errno));
    }
    int fd = fs_openat2(rfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
    int e = errno;
    close(rfd);
    if (fd < 0) {
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": local source refused: %s",
                           a->source, why_open(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": local source refused: not a "
                           "regular file", a->source);
    }
    if (st.st_size > a->max_size) {
        close(fd);
        return drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": local source refused: %lld "
                           "bytes, larger than %lld (client.artifact.http_max_size)", a->source,
                           (long long)st.st_size, a->max_size);
    }
    a->src_fd = fd;
    return 0;
}

static int setup(artifact *a, const artifact_opts *o, drv_err *err)
{
    const char *src = o->source;

    if (o->local_path != NULL) {
        a->local_path = drv_xstrdup(o->local_path);
        a->local_root = o->local_root ? drv_xstrdup(o->local_root) : NULL;
        const char *slash = strrchr(a->local_path, '/');
        const char *n = slash ? slash + 1 : a->local_path;
        if (n[0] != '\0' && strcmp(n, ".") != 0 && strcmp(n, "..") != 0) {
            a->name = drv_xstrdup(n);
        }
    } else if (has_prefix_ci(src, "http://") || has_prefix_ci(src, "https://")) {
        a->url = drv_xstrdup(src);
        a->name = url_file_name(a->url);
    } else {
        return drv_err_set(err, DRV_EINVALID,
                           "artifact \"%s\": unsupported source, want an http:// or https:// "
                           "URL (or a local file beneath client.artifact.local_dirs)", src);
    }
    if (o->task_dir == NULL || o->task_dir[0] != '/') {
        return drv_err_set(err, DRV_EINTERNAL, "artifact \"%s\": task directory is not "
                           "absolute: \"%s\"", src, o->task_dir ? o->task_dir : "");
    }
    if (a->name == NULL) {
        return drv_err_set(err, DRV_EINVALID,
                           "artifact \"%s\": cannot derive a file name from the URL path", src);
    }
    int rc = set_mode(a, o->archive, err);
    if (rc != 0) {
        return rc;
    }
    if (o->checksum != NULL && o->checksum[0] != '\0') {
        rc = parse_checksum(a, o->checksum, err);
        if (rc != 0) {
            return rc;
        }
        a->ctx = EVP_MD_CTX_new();
        if (a->ctx == NULL || EVP_DigestInit_ex(a->ctx, a->md, NULL) != 1) {
            return drv_err_set(err, DRV_EINTERNAL, "artifact \"%s\": cannot start checksum", src);
        }
    }
    if (a->local_path != NULL) {
        return open_local(a, err);
    }
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
    a->fd = a->dest_fd = a->src_fd = -1;
    a->source = drv_xstrdup(o->source);
    a->task_dir = drv_xstrdup(o->task_dir ? o->task_dir : "");
    a->dest = drv_xstrdup(o->dest && o->dest[0] ? o->dest : ".");
    a->max_size = o->max_size > 0 ? o->max_size : ARTIFACT_DEFAULT_MAX_SIZE;
    a->max_unpacked_bytes = o->max_unpacked_bytes > 0 ? o->max_unpacked_bytes
                                                      : ARTIFACT_DEFAULT_UNPACK_BYTES;
    a->max_unpacked_files = o->max_unpacked_files > 0 ? o->max_unpacked_files
                                                      : ARTIFACT_DEFAULT_UNPACK_FILES;
    a->allow_private = o->allow_private;
    a->on_done = o->on_done;
    a->ud = o->ud;

    int rc = setup(a, o, err);
    if (rc != 0) {
        artifact_free(a);
        return rc;
    }

    if (a->local_path != NULL) {
        a->rbuf = drv_xmalloc(READ_CHUNK);
        uv_buf_t b = uv_buf_init(a->rbuf, READ_CHUNK);
        a->fsreq.data = a;
        rc = uv_fs_read(loop, &a->fsreq, a->src_fd, &b, 1, -1, on_local_read);
        if (rc < 0) {
            drv_err_set(err, DRV_EARTIFACT, "artifact \"%s\": cannot read \"%s\": %s", a->source,
                        a->local_path, uv_strerror(rc));
            artifact_free(a);
            return DRV_EARTIFACT;
        }
        a->reading = 1;
    } else {
        long rt = o->read_timeout_ms > 0 ? o->read_timeout_ms : ARTIFACT_DEFAULT_READ_TIMEOUT_MS;
        http_opts ho;
        memset(&ho, 0, sizeof ho);
        ho.method = "GET";
        ho.url = a->url;
        ho.timeout_ms = o->timeout_ms;
        ho.connect_timeout_ms = rt < 30000 ? rt : 30000;
        ho.low_speed_time_s = rt < 1000 ? 1 : rt / 1000;
        ho.protocols = "http,https";
        ho.no_proxy = 1;
        ho.on_connect = on_http_connect;
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
    } else if (a->pid > 0) {
        kill(a->pid, SIGKILL);
    }
    /* a local read in flight ends in on_local_read, which sees `canceled` */
}
