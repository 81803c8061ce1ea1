/*
 * fs.h: small file-system helpers every command shares: read a whole text
 * file (refusing a NUL byte), mkdir -p with a mode, openat2 beneath a
 * directory without symlinks, and the directory the running binary lives in.
 */
#ifndef DRV_FS_H
#define DRV_FS_H

#include <sys/types.h>

#include "buf.h"
#include "err.h"

/// Reads a whole file into `out` (always NUL-terminated). A missing or
/// unreadable file is DRV_ENOINPUT ("<path>: cannot read <what>: <reason>");
/// a NUL byte inside is DRV_ESYNTAX naming path:line:col.
int fs_read_file(const char *path, const char *what, buf *out, drv_err *err);

/// mkdir -p: creates every missing component of `path` with `mode`
/// (existing ones are left as they are). DRV_EIO: "cannot create directory:
/// <reason>: \"<dir>\"".
int fs_mkdir_p(const char *path, mode_t mode, drv_err *err);

/// 1 when `path` is a directory (stat follows symlinks).
int fs_is_dir(const char *path);

/// Directory of the running binary, or "" if unknown.
const char *fs_exe_dir(void);

/// openat2(dirfd, name) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS and O_CLOEXEC added to `flags` (retried on EAGAIN):
/// a symlink anywhere gives ELOOP, leaving dirfd gives EXDEV. Returns the fd
/// or -1 with errno set. glibc 2.36 has no wrapper: this is the one caller
/// of the raw system call.
int fs_openat2(int dirfd, const char *name, int flags, mode_t mode);

#endif
