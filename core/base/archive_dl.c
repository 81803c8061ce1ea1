/*
 * archive_dl.c: libarchive, loaded on first use (see archive_dl.h).
 *
 * libarchive pulls in libxml2, ICU and libstdc++: about 5,700 of the
 * binary's 12,000 symbol relocations and 1.3 ms of every process start,
 * for a library only artifacts and `load` use. drvctl is therefore not
 * linked against it: the archive_* functions the core calls are defined
 * here, each forwarding to the real one, which dlopen finds the first time
 * any is called (or archive_dl_load asks). archive.h is included, so every
 * forwarder's signature is checked against the real declaration.
 */
#include "archive_dl.h"

#include <archive.h>
#include <archive_entry.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef DRV_ARCHIVE_SONAME
#define DRV_ARCHIVE_SONAME "libarchive.so.13"
#endif

/* Every function the core (and its tests) call. */
#define ARCHIVE_FUNCS(X)                                                                         \
    X(archive_read_new) X(archive_read_free) X(archive_read_support_filter_gzip)                 \
    X(archive_read_support_filter_bzip2) X(archive_read_support_filter_xz)                       \
    X(archive_read_support_format_tar) X(archive_read_support_format_gnutar)                     \
    X(archive_read_support_format_zip) X(archive_read_support_format_raw)                        \
    X(archive_read_open_fd) X(archive_read_open_filename) X(archive_read_next_header)            \
    X(archive_read_data) X(archive_read_data_block) X(archive_filter_code)                       \
    X(archive_error_string) X(archive_write_new) X(archive_write_free) X(archive_write_close)     \
    X(archive_write_header) X(archive_write_data) X(archive_write_data_block)                    \
    X(archive_write_finish_entry) X(archive_write_open_filename)                                 \
    X(archive_write_set_format_pax_restricted) X(archive_write_add_filter_gzip)                  \
    X(archive_write_disk_new) X(archive_write_disk_set_options) X(archive_entry_new)             \
    X(archive_entry_free) X(archive_entry_pathname) X(archive_entry_hardlink)                    \
    X(archive_entry_symlink) X(archive_entry_filetype) X(archive_entry_size)                     \
    X(archive_entry_size_is_set) X(archive_entry_set_pathname) X(archive_entry_set_perm)         \
    X(archive_entry_set_size) X(archive_entry_set_filetype) X(archive_entry_set_symlink)

static struct {
#define DECLARE(name) __typeof__(name) *name;
    ARCHIVE_FUNCS(DECLARE)
#undef DECLARE
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char why[256];

static void load(void)
{
    void *lib = dlopen(DRV_ARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "cannot load %s: %s", DRV_ARCHIVE_SONAME, e ? e : "?");
        return;
    }
#define RESOLVE(name)                                                                            \
    *(void **)(&fn.name) = dlsym(lib, #name);                                                    \
    if (fn.name == NULL) {                                                                       \
        snprintf(why, sizeof why, "%s has no %s", DRV_ARCHIVE_SONAME, #name);                    \
        memset(&fn, 0, sizeof fn);                                                               \
        dlclose(lib);                                                                            \
        return;                                                                                  \
    }
    ARCHIVE_FUNCS(RESOLVE)
#undef RESOLVE
    loaded = 1;
}

static int ready(void)
{
    pthread_once(&once, load);
    return loaded;
}

int archive_dl_load(drv_err *err)
{
    if (ready()) {
        return 0;
    }
    return drv_err_set(err, DRV_EINTERNAL, "libarchive: %s", why);
}

/* The forwarders. Without the library the constructors return NULL (the
 * callers' out-of-memory path); nothing else can be called without an
 * archive or entry one of them made. */
struct archive *archive_read_new(void) { return ready() ? fn.archive_read_new() : NULL; }
struct archive *archive_write_new(void) { return ready() ? fn.archive_write_new() : NULL; }
struct archive *archive_write_disk_new(void) { return ready() ? fn.archive_write_disk_new() : NULL; }
struct archive_entry *archive_entry_new(void) { return ready() ? fn.archive_entry_new() : NULL; }

#define FWD1(ret, name, t1)                                                                      \
    ret name(t1 a1) { return ready() ? fn.name(a1) : (ret)ARCHIVE_FATAL; }
#define FWD1P(ret, name, t1)                                                                     \
    ret name(t1 a1) { return ready() ? fn.name(a1) : NULL; }
#define FWD1V(name, t1)                                                                          \
    void name(t1 a1) { if (ready()) { fn.name(a1); } }
#define FWD2(ret, name, t1, t2)                                                                  \
    ret name(t1 a1, t2 a2) { return ready() ? fn.name(a1, a2) : (ret)ARCHIVE_FATAL; }
#define FWD2V(name, t1, t2)                                                                      \
    void name(t1 a1, t2 a2) { if (ready()) { fn.name(a1, a2); } }
#define FWD3(ret, name, t1, t2, t3)                                                              \
    ret name(t1 a1, t2 a2, t3 a3) { return ready() ? fn.name(a1, a2, a3) : (ret)ARCHIVE_FATAL; }
#define FWD4(ret, name, t1, t2, t3, t4)                                                          \
    ret name(t1 a1, t2 a2, t3 a3, t4 a4)                                                         \
    {                                                                                            \
        return ready() ? fn.name(a1, a2, a3, a4) : (ret)ARCHIVE_FATAL;                           \
    }

FWD1(int, archive_read_free, struct archive *)
FWD1(int, archive_read_support_filter_gzip, struct archive *)
FWD1(int, archive_read_support_filter_bzip2, struct archive *)
FWD1(int, archive_read_support_filter_xz, struct archive *)
FWD1(int, archive_read_support_format_tar, struct archive *)
FWD1(int, archive_read_support_format_gnutar, struct archive *)
FWD1(int, archive_read_support_format_zip, struct archive *)
FWD1(int, archive_read_support_format_raw, struct archive *)
FWD3(int, archive_read_open_fd, struct archive *, int, size_t)
FWD3(int, archive_read_open_filename, struct archive *, const char *, size_t)
FWD2(int, archive_read_next_header, struct archive *, struct archive_entry **)
FWD3(la_ssize_t, archive_read_data, struct archive *, void *, size_t)
FWD4(int, archive_read_data_block, struct archive *, const void **, size_t *, la_int64_t *)
FWD2(int, archive_filter_code, struct archive *, int)
FWD1P(const char *, archive_error_string, struct archive *)
FWD1(int, archive_write_free, struct archive *)
FWD1(int, archive_write_close, struct archive *)
FWD2(int, archive_write_header, struct archive *, struct archive_entry *)
FWD3(la_ssize_t, archive_write_data, struct archive *, const void *, size_t)
FWD4(la_ssize_t, archive_write_data_block, struct archive *, const void *, size_t, la_int64_t)
FWD1(int, archive_write_finish_entry, struct archive *)
FWD2(int, archive_write_open_filename, struct archive *, const char *)
FWD1(int, archive_write_set_format_pax_restricted, struct archive *)
FWD1(int, archive_write_add_filter_gzip, struct archive *)
FWD2(int, archive_write_disk_set_options, struct archive *, int)
FWD1V(archive_entry_free, struct archive_entry *)
FWD1P(const char *, archive_entry_pathname, struct archive_entry *)
FWD1P(const char *, archive_entry_hardlink, struct archive_entry *)
FWD1P(const char *, archive_entry_symlink, struct archive_entry *)
FWD1(__LA_MODE_T, archive_entry_filetype, struct archive_entry *)
FWD1(la_int64_t, archive_entry_size, struct archive_entry *)
FWD1(int, archive_entry_size_is_set, struct archive_entry *)
FWD2V(archive_entry_set_pathname, struct archive_entry *, const char *)
FWD2V(archive_entry_set_perm, struct archive_entry *, __LA_MODE_T)
FWD2V(archive_entry_set_size, struct archive_entry *, la_int64_t)
FWD2V(archive_entry_set_filetype, struct archive_entry *, unsigned int)
FWD2V(archive_entry_set_symlink, struct archive_entry *, const char *)
