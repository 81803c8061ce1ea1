/*
 * fuzz_httpd.c: libFuzzer harness for core/event/httpreq.c, the request
 * reader of the agent's API server (core/event/httpd.c): raw connection
 * bytes, possibly several pipelined requests.
 *
 * Input: byte 0 picks the size of the pieces of the second feed; the rest
 * is the connection's bytes. They are read twice, in one feed and cut into
 * pieces, with small bounds (head 512 bytes, body 1024): both reads must
 * see the same requests (method, path, decoded parameters, headers, body)
 * and both end in an error or neither (which status may differ: bytes both
 * malformed and over a bound are told by whichever shows first). Every
 * request read has an origin-form path with no dot segment, stays within
 * the bounds, and an error is 400, 413 or 431.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "httpreq.h"

#define FZ_HEAD 512
#define FZ_BODY 1024

/* Reads `in` in pieces of `step` bytes (0: all at once); describes every
 * request and the final state in `out`. */
static void httpd_fz_read(const char *in, size_t n, size_t step, buf *out)
{
    httpreq r;
    httpreq_init(&r, FZ_HEAD, FZ_BODY);
    size_t pos = 0;
    size_t avail = step ? (step < n ? step : n) : n;   /* bytes "received" */
    for (;;) {
        if (r.state == HTTPREQ_MORE) {
            if (pos == avail) {
                if (avail == n) {
                    break;
                }
                avail = step && avail + step < n ? avail + step : n;
                continue;
            }
            size_t used = httpreq_feed(&r, in + pos, avail - pos);
            if (used > avail - pos) {
                abort();
            }
            pos += used;
            if (r.state == HTTPREQ_MORE && pos != avail) {
                abort();    /* a request in progress takes every byte */
            }
            continue;
        }
        if (r.state == HTTPREQ_ERROR) {
            if (r.status != 400 && r.status != 413 && r.status != 431) {
                abort();
            }
            /* not the status: bytes both malformed and over a bound
             * are told either way, by which shows first in a piece */
            buf_puts(out, "error\n");
            break;
        }
        /* HTTPREQ_DONE */
        if (r.path == NULL || r.path[0] != '/' || r.query == NULL || r.method == NULL ||
            r.body.len > FZ_BODY || r.nheaders > HTTPREQ_MAX_HEADERS ||
            r.head_bytes > FZ_HEAD) {
            abort();
        }
        if (strstr(r.path, "/../") || strstr(r.path, "/./") ||
            (strlen(r.path) >= 2 && strcmp(r.path + strlen(r.path) - 2, "/.") == 0) ||
            (strlen(r.path) >= 3 && strcmp(r.path + strlen(r.path) - 3, "/..") == 0)) {
            abort();    /* no dot segment reaches a handler */
        }
        buf_appendf(out, "%s %s ? %s ka=%d\n", r.method, r.path, r.query, r.keep_alive);
        for (size_t i = 0; i < r.nparams; i++) {
            buf_appendf(out, " p %s=%s\n", r.params[i].name, r.params[i].value);
            if (httpreq_param(&r, r.params[i].name) == NULL) {
                abort();
            }
        }
        for (size_t i = 0; i < r.nheaders; i++) {
            for (const char *c = r.headers[i].name; *c; c++) {
                if (*c >= 'A' && *c <= 'Z') {
                    abort();    /* names are lower-cased */
                }
            }
            buf_appendf(out, " h %s: %s\n", r.headers[i].name, r.headers[i].value);
        }
        buf_appendf(out, " body %zu ", r.body.len);
        buf_append(out, r.body.data ? r.body.data : "", r.body.len);
        buf_puts(out, "\n");
        httpreq_next(&r);
    }
    buf_appendf(out, "end partial=%d\n", httpreq_partial(&r));
    httpreq_free(&r);
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
    size_t step = (size_t)(data[0] % 13) + 1;
    const char *in = (const char *)data + 1;
    buf a = BUF_INIT, b = BUF_INIT;
    httpd_fz_read(in, size - 1, 0, &a);
    httpd_fz_read(in, size - 1, step, &b);
    if (a.len != b.len || memcmp(buf_str(&a), buf_str(&b), a.len) != 0) {
        abort();
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}
