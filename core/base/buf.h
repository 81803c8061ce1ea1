/*
 * buf.h: growable byte buffer, always NUL-terminated so it can be used as a
 * C string. Allocation failure aborts (the process cannot do anything useful
 * without memory, and every caller would otherwise repeat the same check).
 */
#ifndef DRV_BUF_H
#define DRV_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;     /* NUL-terminated; NULL until the first append */
    size_t len;     /* bytes used, excluding the terminator */
    size_t cap;     /* bytes allocated */
} buf;

#define BUF_INIT { NULL, 0, 0 }

void buf_append(buf *b, const void *data, size_t len);
void buf_appendf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_puts(buf *b, const char *s);
/// Removes the first `n` bytes (used by incremental parsers).
void buf_consume(buf *b, size_t n);
void buf_reset(buf *b);
void buf_free(buf *b);
/// Returns the contents as a string ("" when empty); valid until the next change.
const char *buf_str(const buf *b);

/// Allocation helpers that abort on failure.
void *drv_xmalloc(size_t n);
void *drv_xcalloc(size_t n, size_t size);
char *drv_xstrdup(const char *s);

#endif
