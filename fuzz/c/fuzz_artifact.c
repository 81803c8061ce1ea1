/*
 * fuzz_artifact.c: libFuzzer harness for the string logic of core/artifact.c:
 * the checksum spec parser, the URL -> file name mapping and the
 * path -> file:// URL encoding (static functions, so the file is included).
 *
 * Input: "<checksum spec>\0<url>\0<path>" (missing parts are empty).
 *  - parse_checksum accepts only "<algo>:<hex of the digest's length>";
 *  - url_file_name returns NULL or a non-empty name without "/" or NUL
 *    that is not "." or "..";
 *  - for an absolute path, url_file_name(path_to_url(path)) is the path's
 *    last segment whenever that segment is a usable name.
 */
#include "../../core/artifact.c"

#include <stdint.h>


/* The entry point's name: core/tests/test_fuzz_seeds.c includes every
 * harness under its own name and replays the committed corpus. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static char *artifact_part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    const uint8_t *stop = nul ? nul : end;
    char *s = drv_xmalloc((size_t)(stop - *p) + 1);
    memcpy(s, *p, (size_t)(stop - *p));
    s[stop - *p] = '\0';
    *p = nul ? nul + 1 : end;
    return s;
}

static void artifact_check_name(const char *n)
{
    if (n == NULL) {
        return;
    }
    if (n[0] == '\0' || strchr(n, '/') != NULL || strcmp(n, ".") == 0 || strcmp(n, "..") == 0) {
        abort();
    }
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *spec = artifact_part(&p, end);
    char *url = artifact_part(&p, end);
    char *path = artifact_part(&p, end);

    artifact a;
    char source[] = "fuzz";
    memset(&a, 0, sizeof a);
    a.source = source;
    drv_err err;
    int rc = parse_checksum(&a, spec, &err);
    if (rc == 0) {
        const char *colon = strchr(spec, ':');
        if (a.md == NULL || colon == NULL || a.expected_len == 0 ||
            strlen(colon + 1) != 2 * (size_t)a.expected_len) {
            abort();
        }
    } else if (rc != DRV_EINVALID || err.msg[0] == '\0') {
        abort();
    }

    char *name = url_file_name(url);
    artifact_check_name(name);
    free(name);

    if (path[0] == '/') {
        char *u = path_to_url(path);
        char *n = url_file_name(u);
        artifact_check_name(n);
        const char *last = strrchr(path, '/') + 1;
        int usable = last[0] != '\0' && strcmp(last, ".") != 0 && strcmp(last, "..") != 0;
        if (usable != (n != NULL) || (n != NULL && strcmp(n, last) != 0)) {
            abort();
        }
        free(n);
        free(u);
    }
    free(spec);
    free(url);
    free(path);
    return 0;
}
