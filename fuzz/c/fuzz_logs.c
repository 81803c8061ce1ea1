/*
 * fuzz_logs.c: libFuzzer harness for the log file index parser of
 * core/task/logs.c (logs_parse_name; the file is included for its private helpers), which decides
 * which files of a log directory the driver appends to and deletes.
 *
 * Input: "<file name>\0<task>\0<stream>". A match must be exactly
 * "<task>.<stream>.<decimal digits>", and the index must be that number.
 */
#include "../../core/task/logs.c"

#include <stdint.h>


/* The entry point's name: core/tests/test_fuzz_seeds.c includes every
 * harness under its own name and replays the committed corpus. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static char *logs_part(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    const uint8_t *stop = nul ? nul : end;
    char *s = drv_xmalloc((size_t)(stop - *p) + 1);
    memcpy(s, *p, (size_t)(stop - *p));
    s[stop - *p] = '\0';
    *p = nul ? nul + 1 : end;
    return s;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    char *name = logs_part(&p, end);
    char *task = logs_part(&p, end);
    char *stream = logs_part(&p, end);
    unsigned long idx = 0;

    if (logs_parse_name(name, task, stream, &idx)) {
        size_t tl = strlen(task), sl = strlen(stream);
        const char *d = name + tl + sl + 2;
        if (strncmp(name, task, tl) != 0 || name[tl] != '.' ||
            strncmp(name + tl + 1, stream, sl) != 0 || name[tl + 1 + sl] != '.' ||
            *d == '\0' || strspn(d, "0123456789") != strlen(d) ||
            strtoul(d, NULL, 10) != idx) {
            abort();
        }
    }
    free(name);
    free(task);
    free(stream);
    return 0;
}
