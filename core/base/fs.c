/* fs.c: whole-file reads, mkdir -p, the binary's directory (see fs.h). */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int fs_read_file(const char *path, const char *what, buf *out, drv_err *err)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        return drv_err_set(err, DRV_ENOINPUT, "%s: cannot read %s: %s", path, what, strerror(errno));
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        buf_append(out, chunk, n);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        return drv_err_set(err, DRV_ENOINPUT, "%s: cannot read %s", path, what);
    }
    if (out->data == NULL) {
        buf_append(out, "", 0);
    }
    /* C strings end at a NUL: text after one must not vanish unseen */
    const char *nul = memchr(out->data, '\0', out->len);
    if (nul != NULL) {
        size_t line = 1, col = 1;
        for (const char *p = out->data; p < nul; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return drv_err_set(err, DRV_ESYNTAX, "%s:%zu:%zu: NUL byte in %s", path, line, col, what);
    }
    return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, drv_err *err)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);

    if (len >= sizeof tmp) {
        return drv_err_set(err, DRV_EIO, "path too long: \"%s\"", path);
    }
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
                return drv_err_set(err, DRV_EIO, "cannot create directory: %s: \"%s\"",
                                   strerror(errno), tmp);
            }
            *p = c;
            if (c == '\0') {
                break;
            }
        }
    }
    return 0;
}

int fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *fs_exe_dir(void)
{
    static char dir[PATH_MAX];
    if (dir[0] == '\0') {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0) {
            return "";
        }
        dir[n] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash != NULL) {
            *slash = '\0';
        }
    }
    return dir;
}

int fs_openat2(int dirfd, const char *name, int flags, mode_t mode)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(unsigned)(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd;
    do {
        fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
    } while (fd < 0 && errno == EAGAIN);
    return (int)fd;
}
