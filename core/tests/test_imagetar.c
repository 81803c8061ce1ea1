/* test_imagetar.c: reading the tagging files of an image archive. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "imagetar.h"
#include "test.h"

typedef struct member {
    const char *name;
    const char *data;          /* NULL: a symlink to "other.json" */
    size_t len;                /* 0: strlen(data) */
} member;

static char path[64];

/* Writes the members to a fresh temp tar (gzip when gz); returns its path. */
static const char *make_tar(const member *m, size_t n, int gz)
{
    snprintf(path, sizeof path, "/tmp/test_imagetar.XXXXXX");
    int fd = mkstemp(path);
    close(fd);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (gz) {
        archive_write_add_filter_gzip(a);
    }
    archive_write_open_filename(a, path);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_perm(e, 0644);
        if (m[i].data == NULL) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, "other.json");
            archive_entry_set_size(e, 0);
            archive_write_header(a, e);
        } else {
            size_t len = m[i].len ? m[i].len : strlen(m[i].data);
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, (la_int64_t)len);
            archive_write_header(a, e);
            archive_write_data(a, m[i].data, len);
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return path;
}

static const char MANIFEST[] = "[{\"Config\":\"ab.json\",\"RepoTags\":[\"x:1\"]}]";

TEST(reads_manifest_and_repositories)
{
    member m[] = {
        { "ab.json", "{}", 0 },
        { "./manifest.json", MANIFEST, 0 },
        { "repositories", "{\"x\":{\"1\":\"ab\"}}", 0 },
        { "layer/layer.tar", "data", 0 },
    };
    imagetar t;
    drv_err err;
    ASSERT_INT_EQ(0, imagetar_read(make_tar(m, 4, 0), &t, &err));
    unlink(path);
    ASSERT_INT_EQ(1, t.has_manifest);
    ASSERT_INT_EQ(1, t.has_repositories);
    ASSERT_INT_EQ(0, t.has_index);
    ASSERT_STR_EQ(MANIFEST, buf_str(&t.manifest));
    buf json = BUF_INIT;
    imagetar_json(&t, "x:\"1\"", &json);
    ASSERT_STR_EQ("{\"image\":\"x:\\\"1\\\"\",\"manifest\":\"[{\\\"Config\\\":\\\"ab.json\\\","
                  "\\\"RepoTags\\\":[\\\"x:1\\\"]}]\",\"repositories\":\"{\\\"x\\\":{\\\"1\\\":"
                  "\\\"ab\\\"}}\"}", buf_str(&json));
    buf_free(&json);
    imagetar_free(&t);
}

TEST(gzip_and_cleaned_names)
{
    member m[] = { { "a/../b/./../manifest.json", MANIFEST, 0 }, { "/index.json", "{}", 0 } };
    imagetar t;
    ASSERT_INT_EQ(0, imagetar_read(make_tar(m, 2, 1), &t, NULL));
    unlink(path);
    ASSERT_INT_EQ(1, t.has_manifest);
    ASSERT_INT_EQ(1, t.has_index);
    ASSERT_STR_EQ(MANIFEST, buf_str(&t.manifest));
    imagetar_free(&t);
}

TEST(twice_refused)
{
    member m[] = { { "manifest.json", MANIFEST, 0 }, { "./manifest.json", "[]", 0 } };
    imagetar t;
    drv_err err;
    ASSERT_INT_EQ(DRV_EIMAGE, imagetar_read(make_tar(m, 2, 0), &t, &err));
    unlink(path);
    ASSERT_CONTAINS(err.msg, "manifest.json is listed twice");
}

TEST(symlink_refused)
{
    member m[] = { { "other.json", MANIFEST, 0 }, { "manifest.json", NULL, 0 } };
    imagetar t;
    drv_err err;
    ASSERT_INT_EQ(DRV_EIMAGE, imagetar_read(make_tar(m, 2, 0), &t, &err));
    unlink(path);
    ASSERT_CONTAINS(err.msg, "manifest.json is not a regular file");
}

TEST(huge_refused)
{
    size_t len = IMAGETAR_MAX_FILE + 1;
    char *big = malloc(len);
    memset(big, ' ', len);
    member m[] = { { "repositories", big, len } };
    imagetar t;
    drv_err err;
    ASSERT_INT_EQ(DRV_EIMAGE, imagetar_read(make_tar(m, 1, 0), &t, &err));
    unlink(path);
    free(big);
    ASSERT_CONTAINS(err.msg, "repositories is larger than");
}

TEST(not_a_tar)
{
    imagetar t;
    drv_err err;
    snprintf(path, sizeof path, "/tmp/test_imagetar.XXXXXX");
    int fd = mkstemp(path);
    ASSERT(write(fd, "hello, this is not a tar file at all\n", 37) == 37);
    close(fd);
    ASSERT_INT_EQ(DRV_EIMAGE, imagetar_read(path, &t, &err));
    unlink(path);
    ASSERT_CONTAINS(err.msg, "image archive");
    ASSERT_INT_EQ(DRV_EIMAGE, imagetar_read("/nonexistent/img.tar", &t, &err));
    ASSERT_CONTAINS(err.msg, "cannot open image archive \"/nonexistent/img.tar\"");
}

int main(void)
{
    RUN(reads_manifest_and_repositories);
    RUN(gzip_and_cleaned_names);
    RUN(twice_refused);
    RUN(symlink_refused);
    RUN(huge_refused);
    RUN(not_a_tar);
    return test_summary();
}
