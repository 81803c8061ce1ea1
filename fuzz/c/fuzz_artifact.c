/*
 * fuzz_artifact.c: libFuzzer harness for the string logic of core/task/artifact.c:
 * the checksum spec parser, the URL -> file name mapping and the address
 * classifier that refuses private destinations (static functions, so the
 * file is included).
 *
 * Input: "<checksum spec>\0<url>\0<address bytes>" (missing parts are empty).
 *  - parse_checksum accepts only "<algo>:<hex of the digest's length>";
 *  - url_file_name returns NULL or a non-empty name without "/" or NUL
 *    that is not "." or "..";
 *  - the first 4 bytes of the third part, as an IPv4 address and as the
 *    same address mapped into IPv6, get the same class.
 */
#include "../../core/task/artifact.c"

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

    /* the SSRF classifier: an IPv4 address and the same address mapped
     * into IPv6 (::ffff:a.b.c.d) are the same destination and must get
     * the same class */
    if (strlen(path) >= 4) {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
        memset(&v4, 0, sizeof v4);
        memset(&v6, 0, sizeof v6);
        v4.sin_family = AF_INET;
        memcpy(&v4.sin_addr, path, 4);
        v6.sin6_family = AF_INET6;
        v6.sin6_addr.s6_addr[10] = 0xff;
        v6.sin6_addr.s6_addr[11] = 0xff;
        memcpy(&v6.sin6_addr.s6_addr[12], path, 4);
        const char *c4 = artifact_addr_class((const struct sockaddr *)(const void *)&v4);
        const char *c6 = artifact_addr_class((const struct sockaddr *)(const void *)&v6);
        if ((c4 == NULL) != (c6 == NULL) || (c4 != NULL && strcmp(c4, c6) != 0)) {
            abort();
        }
    }
    free(spec);
    free(url);
    free(path);
    return 0;
}
