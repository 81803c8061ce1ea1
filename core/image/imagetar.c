/* imagetar.c: the tagging files of an image archive (see imagetar.h). */
#include "imagetar.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <sys/stat.h>

/* Cleans an entry name into out ("./a//b/../c" -> "a/c"); returns 0, or -1
 * when it is too long. ".." above the root stays at the root, as it does for
 * Docker's extraction. */
static int clean_name(const char *name, char *out, size_t cap)
{
    size_t len = 0;
    const char *p = name;

    while (*p != '\0') {
        while (*p == '/') {
            p++;
        }
        const char *s = p;
        while (*p != '\0' && *p != '/') {
            p++;
        }
        size_t n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.')) {
            continue;
        }
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 0 && out[len - 1] != '/') {
                len--;
            }
            if (len > 0) {
                len--;
            }
            continue;
        }
        if (len + (len > 0) + n + 1 > cap) {
            return -1;
        }
        if (len > 0) {
            out[len++] = '/';
        }
        memcpy(out + len, s, n);
        len += n;
    }
    out[len] = '\0';
    return 0;
}

static int read_member(struct archive *a, struct archive_entry *e, const char *path,
                       const char *name, buf *dst, drv_err *err)
{
    if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e) != NULL ||
        archive_entry_symlink(e) != NULL) {
        return drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": %s is not a regular file",
                           path, name);
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > (la_int64_t)IMAGETAR_MAX_FILE) {
        return drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": %s is larger than %zu bytes",
                           path, name, IMAGETAR_MAX_FILE);
    }
    char chunk[16384];
    for (;;) {
        la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
        if (n == 0) {
            return 0;
        }
        if (n < 0) {
            return drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": cannot read %s: %s",
                               path, name, archive_error_string(a));
        }
        if (dst->len + (size_t)n > IMAGETAR_MAX_FILE) {
            return drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": %s is larger than %zu bytes",
                               path, name, IMAGETAR_MAX_FILE);
        }
        buf_append(dst, chunk, (size_t)n);
    }
}

int imagetar_read(const char *path, imagetar *out, drv_err *err)
{
    return imagetar_read_fd(-1, path, out, err);
}

int imagetar_read_fd(int fd, const char *path, imagetar *out, drv_err *err)
{
    static const char *const names[3] = { "manifest.json", "repositories", "index.json" };
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    int rc = 0;

    memset(out, 0, sizeof *out);
    buf *bufs[3] = { &out->manifest, &out->repositories, &out->index };
    int *seen[3] = { &out->has_manifest, &out->has_repositories, &out->has_index };

    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if ((fd >= 0 ? archive_read_open_fd(a, fd, 65536)
                 : archive_read_open_filename(a, path, 65536)) != ARCHIVE_OK) {
        rc = drv_err_set(err, DRV_EIMAGE, "cannot open image archive \"%s\": %s", path,
                         archive_error_string(a));
        goto out;
    }
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) {
            break;
        }
        if (r < ARCHIVE_WARN) {
            rc = drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": not a readable tar archive: %s",
                             path, archive_error_string(a));
            goto out;
        }
        const char *raw = archive_entry_pathname(e);
        char name[4096];
        if (raw == NULL || clean_name(raw, name, sizeof name) < 0) {
            rc = drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": an entry name is unreadable "
                             "or too long", path);
            goto out;
        }
        for (int i = 0; i < 3; i++) {
            if (strcmp(name, names[i]) != 0) {
                continue;
            }
            if (*seen[i]) {
                rc = drv_err_set(err, DRV_EIMAGE, "image archive \"%s\": %s is listed twice",
                                 path, names[i]);
                goto out;
            }
            *seen[i] = 1;
            rc = read_member(a, e, path, names[i], bufs[i], err);
            if (rc < 0) {
                goto out;
            }
        }
    }
out:
    archive_read_free(a);
    if (rc < 0) {
        imagetar_free(out);
    }
    return rc;
}

void imagetar_free(imagetar *t)
{
    buf_free(&t->manifest);
    buf_free(&t->repositories);
    buf_free(&t->index);
    memset(t, 0, sizeof *t);
}

/* Appends s[0..n) as a JSON string (bytes >= 0x80 as they are: lua-cjson
 * passes them through). */
static void json_string(buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_puts(out, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            buf_append(out, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            buf_append(out, esc, 6);
        } else {
            buf_append(out, &s[i], 1);
        }
    }
    buf_puts(out, "\"");
}

void imagetar_json(const imagetar *t, const char *image, buf *out)
{
    buf_puts(out, "{\"image\":");
    json_string(out, image, strlen(image));
    if (t->has_manifest) {
        buf_puts(out, ",\"manifest\":");
        json_string(out, buf_str(&t->manifest), t->manifest.len);
    }
    if (t->has_repositories) {
        buf_puts(out, ",\"repositories\":");
        json_string(out, buf_str(&t->repositories), t->repositories.len);
    }
    if (t->has_index) {
        buf_puts(out, ",\"index\":");
        json_string(out, buf_str(&t->index), t->index.len);
    }
    buf_puts(out, "}");
}
