/* log.c: levelled diagnostics to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "esc.h"

static int min_level = LOG_INFO;

void log_set_level(int level)
{
    min_level = level;
}

int log_get_level(void)
{
    return min_level;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *const names[] = { "debug: ", "", "warning: ", "error: " };
    va_list ap;

    if (level < min_level) {
        return;
    }
    /* messages quote job fields and Docker's answers: escaped (esc.h) */
    char small[1024];
    char *heap = NULL;
    const char *msg = small;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof small) {
        heap = drv_xmalloc((size_t)n + 1);
        va_start(ap, fmt);
        (void)vsnprintf(heap, (size_t)n + 1, fmt, ap);
        va_end(ap);
        msg = heap;
    }
    buf b = BUF_INIT;
    fprintf(stderr, "drvctl: %s%s\n", names[level], esc_msg(&b, msg));
    buf_free(&b);
    free(heap);
}
