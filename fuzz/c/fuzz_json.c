/*
 * fuzz_json.c: libFuzzer harness for core/base/json.c (the strict JSON
 * reader of Docker's answers, pull progress lines and drvctl's state files)
 * and pull_line_parse (core/image/pull.c), its hot caller.
 *
 * Input: the document itself (so fuzz/corpus/json/ also seeds the Lua job
 * file fuzzer). It is read twice, as a tree (json_parse) and by the
 * scanner skipping it (json_skip + json_end): both must agree on whether
 * it is valid. A tree read is written back as canonical JSON, which must
 * read again to the same text; every string in it is valid UTF-8 without
 * NUL, and no container is nested beyond JSON_MAX_DEPTH.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "esc.h"
#include "json.h"
#include "pull.h"

static void json_fz_check_str(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = esc_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) {
            abort();
        }
        i += len;
    }
}

static void json_fz_str(buf *b, const char *s)
{
    json_fz_check_str(s);
    buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            buf_appendf(b, "\\%c", *p);
        } else if (*p < 0x20) {
            buf_appendf(b, "\\u%04x", *p);
        } else {
            buf_append(b, p, 1);
        }
    }
    buf_puts(b, "\"");
}

/* Canonical text of `v`; checks the depth on the way. */
static void json_fz_write(buf *b, const json_val *v, int depth)
{
    switch (v->t) {
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    case JSON_BOOL:
        buf_puts(b, v->b ? "true" : "false");
        break;
    case JSON_NUM:
        if (v->num.integral) {
            buf_appendf(b, "%lld", v->num.i);
        } else if (isfinite(v->num.d)) {
            char t[40];
            snprintf(t, sizeof t, "%.17g", v->num.d);
            buf_puts(b, t);
            if (strpbrk(t, ".e") == NULL) {
                buf_puts(b, ".0");    /* stays a non-integral number */
            }
        } else {
            buf_puts(b, "0");
        }
        break;
    case JSON_STR:
        json_fz_str(b, v->s);
        break;
    case JSON_ARR:
    case JSON_OBJ:
        if (depth >= JSON_MAX_DEPTH) {
            abort();
        }
        buf_puts(b, v->t == JSON_ARR ? "[" : "{");
        for (size_t i = 0; i < v->n; i++) {
            if (i > 0) {
                buf_puts(b, ",");
            }
            if (v->t == JSON_OBJ) {
                json_fz_str(b, v->k[i]);
                buf_puts(b, ":");
            }
            json_fz_write(b, &v->v[i], depth + 1);
        }
        buf_puts(b, v->t == JSON_ARR ? "]" : "}");
        break;
    }
}

/* The entry point's name: core/tests/test_fuzz_seeds.c includes every
 * harness under its own name and replays the committed corpus. */
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    json_scan j;
    int skip = json_scan_init(&j, in, size);
    if (skip == 0) {
        skip = json_skip(&j);
    }
    if (skip == 0) {
        skip = json_end(&j);
    }
    json_val v;
    int rc = json_parse(in, size, &v);
    if ((rc == 0) != (skip == 0)) {
        abort();
    }
    if (rc == 0) {
        buf a = BUF_INIT, b = BUF_INIT;
        json_val w;
        json_fz_write(&a, &v, 0);
        if (json_parse(a.data, a.len, &w) != 0) {
            abort();
        }
        json_fz_write(&b, &w, 0);
        if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
            abort();
        }
        json_free(&w);
        buf_free(&a);
        buf_free(&b);
    } else if (v.t != JSON_NULL || v.n != 0 || v.s != NULL) {
        abort();    /* a failed parse leaves nothing to free */
    }
    json_free(&v);

    /* a pull progress line: read only when it is valid JSON (an object
     * whose few known members have the right types) */
    pull_line l;
    drv_err err;
    pull_line_init(&l);
    int prc = pull_line_parse(&l, in, size, &err);
    if (prc == 0 && rc != 0) {
        abort();
    }
    pull_line_free(&l);
    return 0;
}
