/*
 * fuzz_lines.c: libFuzzer harness for core/docker/lines.c (the JSON-lines splitter
 * of image pull/load progress streams).
 *
 * Input: byte 0 picks max_line (0 = the 1 MiB default, else 1..127) and a
 * split seed; the rest is the stream. It is split twice, in one feed and in
 * pseudo-random pieces; both must deliver the same lines and agree on
 * whether the stream was rejected. Every delivered line is non-empty, has no
 * "\n", and is at most max_line bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "lines.h"

typedef struct lines_sink {
    buf transcript;     /* each line followed by "\n" */
    size_t max;
} lines_sink;

static int lines_collect(void *ud, const char *line, size_t len)
{
    lines_sink *s = ud;
    if (len == 0 || len > s->max || memchr(line, '\n', len) != NULL) {
        abort();
    }
    buf_append(&s->transcript, line, len);
    buf_append(&s->transcript, "\n", 1);
    return 0;
}

static int lines_run(const char *in, size_t len, size_t max, unsigned seed, int split, lines_sink *s)
{
    lines l;
    drv_err err;
    int rc = 0;
    size_t off = 0;

    lines_init(&l, max, lines_collect, s);
    s->max = l.max_line;
    while (off < len && rc == 0) {
        size_t n = len - off;
        if (split) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 23;
            if (n > len - off) {
                n = len - off;
            }
        }
        rc = lines_feed(&l, in + off, n, &err);
        off += n;
    }
    if (rc == 0) {
        rc = lines_finish(&l, &err);
    }
    lines_free(&l);
    return rc;
}


/* The entry point's name: core/tests/test_fuzz_seeds.c includes every
 * harness under its own name and replays the committed corpus. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t max = data[0] & 0x7f;
    unsigned seed = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    lines_sink a = { BUF_INIT, 0 }, b = { BUF_INIT, 0 };

    int rca = lines_run(in, len, max, seed, 0, &a);
    int rcb = lines_run(in, len, max, seed, 1, &b);
    if ((rca != 0) != (rcb != 0)) {
        abort();
    }
    /* both stop at the same over-long line, after the same lines */
    if (a.transcript.len != b.transcript.len ||
        (a.transcript.len > 0 && memcmp(a.transcript.data, b.transcript.data, a.transcript.len) != 0)) {
        abort();
    }
    buf_free(&a.transcript);
    buf_free(&b.transcript);
    return 0;
}
