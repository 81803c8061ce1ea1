/* log.c: levelled diagnostics to stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

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
    fputs("drvctl: ", stderr);
    fputs(names[level], stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
