/*
 * lines.c: newline splitter for JSON-lines streams (see lines.h).
 *
 * Complete lines inside one feed are delivered straight from the input;
 * only the unterminated tail is copied into `partial`. The length limit
 * counts the line without its "\n" and without one trailing "\r".
 */
#include "lines.h"

#include <string.h>

#define LINES_DEFAULT_MAX ((size_t)1 << 20)

void lines_init(lines *l, size_t max_line, lines_cb cb, void *ud)
{
    l->partial = (buf)BUF_INIT;
    l->max_line = max_line ? max_line : LINES_DEFAULT_MAX;
    l->cb = cb;
    l->ud = ud;
}

/* 1 when `n` bytes (possibly ending in "\r") exceed the limit. */
static int too_long(const lines *l, const char *s, size_t n)
{
    if (n <= l->max_line) {
        return 0;
    }
    return !(n == l->max_line + 1 && s[n - 1] == '\r');
}

static int long_error(lines *l, drv_err *err)
{
    buf_reset(&l->partial);
    return drv_err_set(err, DRV_EINVALID, "stream: line longer than %zu bytes", l->max_line);
}

static int deliver(lines *l, const char *s, size_t n, drv_err *err)
{
    if (too_long(l, s, n)) {
        return long_error(l, err);
    }
    if (n > 0 && s[n - 1] == '\r') {
        n--;
    }
    if (n == 0) {
        return 0;
    }
    return l->cb(l->ud, s, n);
}

int lines_feed(lines *l, const char *data, size_t len, drv_err *err)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        if (nl == NULL) {
            buf_append(&l->partial, data, len);
            if (too_long(l, l->partial.data, l->partial.len)) {
                return long_error(l, err);
            }
            return 0;
        }
        size_t n = (size_t)(nl - data);
        int rc;
        if (l->partial.len > 0) {
            buf_append(&l->partial, data, n);
            /* the callback may feed again: hand it a private copy's view */
            buf line = l->partial;
            l->partial = (buf)BUF_INIT;
            rc = deliver(l, line.data, line.len, err);
            buf_reset(&line);
            if (l->partial.data == NULL) {
                l->partial = line;      /* keep the allocation */
            } else {
                buf_free(&line);
            }
        } else {
            rc = deliver(l, data, n, err);
        }
        if (rc != 0) {
            return rc;
        }
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

int lines_finish(lines *l, drv_err *err)
{
    if (l->partial.len == 0) {
        return 0;
    }
    buf line = l->partial;
    l->partial = (buf)BUF_INIT;
    int rc = deliver(l, line.data, line.len, err);
    buf_free(&line);
    return rc;
}

void lines_free(lines *l)
{
    buf_free(&l->partial);
}
