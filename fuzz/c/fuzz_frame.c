/*
 * fuzz_frame.c: libFuzzer harness for core/docker/frame.c (Docker's multiplexed
 * stream parser).
 *
 * Input: byte 0 picks raw mode (bit 0) and a split seed; the rest is the
 * stream. The stream is parsed twice, once in one feed and once cut into
 * pieces at pseudo-random points, and both must deliver the same bytes to
 * the same streams, stop with the same result, and never deliver more
 * payload than was fed or a stream other than 0, 1 or 2.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

typedef struct frame_sink {
    buf transcript;     /* ('0' + stream, byte) pairs */
    size_t bytes;
} frame_sink;

static int frame_collect(void *ud, int stream, const char *data, size_t len)
{
    frame_sink *s = ud;
    if (stream < FRAME_STDIN || stream > FRAME_STDERR || len == 0) {
        abort();
    }
    for (size_t i = 0; i < len; i++) {
        char pair[2] = { (char)('0' + stream), data[i] };
        buf_append(&s->transcript, pair, 2);
    }
    s->bytes += len;
    return 0;
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
    int raw = data[0] & 1;
    unsigned seed = data[0] >> 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    frame_parser whole, split;
    frame_sink a = { BUF_INIT, 0 }, b = { BUF_INIT, 0 };
    drv_err ea, eb;

    frame_init(&whole, raw, frame_collect, &a);
    int rca = frame_feed(&whole, in, len, &ea);

    frame_init(&split, raw, frame_collect, &b);
    int rcb = 0;
    size_t off = 0;
    while (off < len && rcb == 0) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 17;
        if (n > len - off) {
            n = len - off;
        }
        rcb = frame_feed(&split, in + off, n, &eb);
        off += n;
    }
    /* a feed after an error keeps failing */
    if (rcb != 0 && frame_feed(&split, "", 0, &eb) == 0) {
        abort();
    }
    if (rca != rcb || a.bytes > len || a.bytes != b.bytes ||
        a.transcript.len != b.transcript.len ||
        (a.transcript.len > 0 && memcmp(a.transcript.data, b.transcript.data, a.transcript.len) != 0)) {
        abort();
    }
    if (rca == 0 && frame_pending(&whole) != frame_pending(&split)) {
        abort();
    }
    buf_free(&a.transcript);
    buf_free(&b.transcript);
    return 0;
}
